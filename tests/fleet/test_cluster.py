#!/usr/bin/env python3
"""`gpuwatch report --cluster`: the cluster view over real gpuwatch daemons
on loopback (fake-NVML scenarios: 2 GPUs, 8 GPUs, CPU-only; one stopped
with SIGSTOP, which the kernel keeps accepting connections for but which
never answers), fixture peers that misbehave (garbage, HTTP 500, a reset, a
body that is not gpuwatch's, an answer slower than the deadline, a refused
token), bare Ollama nodes (/api/ps shapes from
../shared/reference/exporters-and-apis.md), and a real Prometheus scraping
three daemons (`--prometheus` must give the same view as direct polling).
Expected figures come from the scenario files, never from gpuwatch.

Placement across nodes (`place --cluster`, the daemon's POST
/api/v1/plan?scope=cluster) is checked against a choice computed here from
the scenarios and the reservations made on the nodes; the daemon's GET
/api/v1/cluster keeps a hung peer's last good data with its age.

    test_cluster.py CASE   CASE: direct | faults | token | ollama | prometheus | usage | place | daemon
"""
import http.client
import http.server
import json
import os
import resource
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("GPUWATCH_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "serve"))
import serve_util as su  # noqa: E402
from serve_util import check, fail, Daemon, Prometheus, parse_scenario, num  # noqa: E402

BIN = su.BIN
SCN = os.path.join(ROOT, "tests", "nvml", "scenarios")
TWO, EIGHT = os.path.join(SCN, "two.scn"), os.path.join(SCN, "eight.scn")
LOST = os.path.join(SCN, "lost.scn")  # GPU 1 falls off the bus at once


def run(args, env=None, timeout=su.DEADLINE):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_") or k == "GPUWATCH_BIN"}
    e.update(env or {})
    p = subprocess.run([BIN, "report", "--cluster"] + args, capture_output=True, text=True,
                       env=e, timeout=timeout)
    check("runtime error" not in p.stderr and "LeakSanitizer" not in p.stderr,
          "sanitizer report:\n" + p.stderr)
    return p


def cluster_json(args, want_rc=None, env=None):
    p = run(args + ["--json"], env=env)
    if want_rc is not None:
        check(p.returncode == want_rc, "exit %d, want %d: %s" % (p.returncode, want_rc, p.stderr))
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        fail("not JSON (exit %d): %r\n%s" % (p.returncode, p.stdout[:500], p.stderr))
    check(doc["schema"] == "gpuwatch.cluster/1", "schema %r" % doc.get("schema"))
    return doc, p


def url(d):
    return "http://127.0.0.1:%d" % d.port


def expect_node(node, scenario, what):
    """node (cluster JSON) shows scenario's GPUs: count, names, uuids,
    memory total/used/free."""
    _, gpus = parse_scenario(scenario)
    check(node["up"], "%s: down: %s" % (what, node["error"]))
    check(node["cpu_only"] is False, "%s: cpu_only %r" % (what, node["cpu_only"]))
    check(len(node["gpus"]) == len(gpus), "%s: %d GPUs, scenario has %d" %
          (what, len(node["gpus"]), len(gpus)))
    for g, s in zip(node["gpus"], gpus):
        check(g["name"] == s["name"] and g["uuid"] == s["uuid"], "%s: GPU %r vs %r" % (what, g, s))
        for key, skey in (("memory_total_bytes", "memory.total"), ("memory_used_bytes", "memory.used"),
                          ("memory_free_bytes", "memory.free")):
            check(g[key] == num(s, skey), "%s: GPU %d %s %r, scenario %r" %
                  (what, g["index"], key, g[key], num(s, skey)))
        check(g["state"] == "ok", "%s: GPU %d state %r" % (what, g["index"], g["state"]))
    return gpus


def host_ram():
    with open("/proc/meminfo") as f:
        return int(next(line for line in f if line.startswith("MemTotal:")).split()[1]) * 1024


# ---------------------------------------------------------------- fixtures

class Peer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """A fixture HTTP server on 127.0.0.1:0; behave(handler) answers each
    request. Records the requests (path, Authorization)."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # peers are asked at once: the default 5 drops SYNs

    def __init__(self, behave):
        self.behave, self.seen = behave, []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.seen.append((self.path, self.headers.get("Authorization")))
                outer.behave(self)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(n)
                outer.seen.append((self.path, self.headers.get("Authorization")))
                outer.behave(self)

            def send(self, code, body, ctype="application/json"):
                b = body if isinstance(body, bytes) else body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)
        super().__init__(("127.0.0.1", 0), H)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]


def reset(h):
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    h.connection.close()


def until_close(h, body, status="200 OK"):
    """An answer as Go's net/http gives one to an HTTP/1.0 request past its
    buffer (Ollama, Prometheus): no Content-Length, the body ends where the
    connection does."""
    h.wfile.write(("HTTP/1.0 %s\r\nContent-Type: application/json\r\n\r\n%s" % (status, body)).encode())
    h.close_connection = True


def go_style(h, body):
    """Go's net/http with an answer past its 2 KB buffer (Ollama's /api/ps
    with a few models): chunked for an HTTP/1.1 request (which gpuwatch
    never sends: its clients speak HTTP/1.0 to stay out of chunked coding),
    until the close for an HTTP/1.0 one."""
    if h.request_version == "HTTP/1.0":
        return until_close(h, body)
    b = body.encode()
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(b), b))


def cut_short(h):
    """A Content-Length the answer does not keep: the connection closes
    after 10 of 1000 bytes."""
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"service\"")
    h.close_connection = True


def sleepy(seconds):
    def behave(h):
        time.sleep(seconds)
        h.send(200, "{}")
    return behave


# ---------------------------------------------------------------- cases

def straggler_run(once, human=False):
    """once() with the straggler rule on, asked again (at most twice) when
    one of the three healthy daemons was cut as a straggler: on a starved
    CPU a healthy daemon can answer later than twice the others + 2 ms,
    which is the rule's documented price, not what these checks are about.
    The hung daemon is cut every time."""
    for _ in range(3):
        r = once()
        cut = (r.stdout.count("not waited for") > 1 if human else
               any("not waited for" in (n["error"] or "") for n in r["nodes"][:3]))
        if not cut:
            break
    return r


def case_direct():
    """2 GPUs, 8 GPUs, CPU-only, a hung daemon (SIGSTOP) and a port where
    nothing listens: the healthy three as their scenarios say, the other two
    unreachable with the reason; the totals add up the healthy ones; the
    hung one costs no deadline (the straggler rule) and, with --wait, only
    its own deadline once."""
    a, b = Daemon(scenario=TWO), Daemon(scenario=EIGHT)
    c = Daemon(args=["--sources", "host"], nvml=False)
    hung = Daemon(scenario=TWO)
    hung.proc.send_signal(signal.SIGSTOP)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_url = "http://127.0.0.1:%d" % dead.getsockname()[1]
    dead.close()  # nothing listens there now
    try:
        # b by host name: libcurl asks it, in the same poll as the others
        peers = ",".join([url(a), "http://localhost:%d" % b.port, url(c), url(hung), dead_url])
        doc = straggler_run(lambda: cluster_json(["--peers", peers, "--peer-timeout", "30000"],
                                                 want_rc=3)[0])
        nodes = doc["nodes"]
        check([n["url"] for n in nodes] == peers.split(","), "node order %r" % [n["url"] for n in nodes])
        g2 = expect_node(nodes[0], TWO, "2-GPU node")
        g8 = expect_node(nodes[1], EIGHT, "8-GPU node")
        cpu = nodes[2]
        check(cpu["up"] and cpu["cpu_only"] is True and cpu["gpus"] == [], "CPU-only node %r" % cpu)
        check(cpu["host"]["memory_total_bytes"] == host_ram(), "CPU-only RAM %r" % cpu["host"])
        check(cpu["status"] == "cpu-only", "CPU-only status %r" % cpu["status"])
        check(not nodes[3]["up"] and "no answer" in nodes[3]["error"], "hung node %r" % nodes[3])
        check(nodes[3]["data_age_seconds"] is None, "hung node has data %r" % nodes[3])
        check(not nodes[4]["up"] and nodes[4]["error"], "dead node %r" % nodes[4])
        t = doc["totals"]
        want_total = sum(num(g, "memory.total") for g in g2 + g8)
        want_free = sum(num(g, "memory.free") for g in g2 + g8)
        check(t["nodes"] == 5 and t["nodes_up"] == 3 and t["nodes_unreachable"] == 2, "totals %r" % t)
        check(t["gpus"] == 10 and t["cpu_only_nodes"] == 1, "totals %r" % t)
        check(t["memory_total_bytes"] == want_total and t["memory_free_bytes"] == want_free,
              "VRAM totals %r, want %d / %d" % (t, want_total, want_free))
        # The straggler rule: the 30 s deadline of the hung peer is never waited for.
        check(doc["poll_seconds"] < 20, "the hung peer was waited for: %r" % doc["poll_seconds"])
        # --wait: the hung peer gets its whole (short) deadline, once.
        doc, _ = cluster_json(["--peers", url(a) + "," + url(hung), "--wait", "--peer-timeout", "700"],
                              want_rc=3)
        check("within 700 ms" in doc["nodes"][1]["error"], "--wait error %r" % doc["nodes"][1])
        # curl's own timer may fire a fraction of a millisecond early
        check(0.65 <= doc["poll_seconds"], "--wait returned before the deadline: %r" % doc["poll_seconds"])
        # The report for people names each node and the unreachable ones' reason.
        p = straggler_run(lambda: run(["--peers", peers]), human=True)
        check(p.returncode == 3, "human exit %d: %s" % (p.returncode, p.stderr))
        out = p.stdout
        check(out.startswith("Distributed Nodes Report: 5 nodes (3 up, 2 unreachable), 10 GPUs"),
              "headline: %r" % out[:200])
        check("2 GPUs" in out and "8 GPUs" in out and "CPU-only, RAM" in out, out)
        check(out.count("UNREACHABLE") == 2, out)
        for s in parse_scenario(EIGHT)[1]:
            check(s["name"] in out, "GPU %s not listed:\n%s" % (s["name"], out))
        # All healthy: exit 0.
        p = run(["--peers", url(a) + "," + url(c), "--wait"])
        check(p.returncode == 0, "healthy exit %d: %s" % (p.returncode, p.stderr))
        # http:// peers with an IP address never load libcurl: without it they
        # still answer; a peer that needs it (a host name) says which library.
        nocurl = {"GPUWATCH_CURL_LIBRARY": "/nonexistent/libcurl.so.4"}
        doc, _ = cluster_json(["--peers", url(a) + "," + url(c), "--wait"], want_rc=0, env=nocurl)
        expect_node(doc["nodes"][0], TWO, "2-GPU node without libcurl")
        p = run(["--peers", url(a) + ",http://localhost:%d" % c.port], env=nocurl)
        check(p.returncode == 1 and "/nonexistent/libcurl.so.4" in p.stderr,
              "no libcurl for a host name: exit %d: %s" % (p.returncode, p.stderr))
    finally:
        hung.proc.send_signal(signal.SIGCONT)
    for d in (a, b, c, hung):
        d.stop()


def case_faults():
    """Peers that misbehave: each node's own error, the healthy one intact."""
    good = Daemon(scenario=TWO)
    peers = {
        "garbage": Peer(lambda h: h.send(200, "<html>not json")),
        "500": Peer(lambda h: h.send(500, '{"error":"boom"}')),
        "other": Peer(lambda h: h.send(200, '{"status":"ok","gpus":[]}')),
        "badgpus": Peer(lambda h: h.send(200, '{"service":"gpuwatch","gpus":{"0":1}}')),
        "reset": Peer(reset),
        "slow": Peer(sleepy(5)),
        "huge": Peer(lambda h: h.send(200, "[" + "1," * (5 << 20) + "1]")),
        "hugeeof": Peer(lambda h: until_close(h, "[" + "1," * (5 << 20) + "1]")),
        "cut": Peer(cut_short),
        "eof500": Peer(lambda h: until_close(h, '{"error":"boom"}', "503 Service Unavailable")),
    }
    order = ["garbage", "500", "other", "badgpus", "reset", "slow", "huge", "hugeeof", "cut", "eof500"]
    lst = ",".join([url(good)] + [peers[k].url for k in order])
    doc, _ = cluster_json(["--peers", lst, "--wait", "--peer-timeout", "1500"], want_rc=3)
    nodes = doc["nodes"]
    expect_node(nodes[0], TWO, "healthy node beside faulty ones")
    want = {"garbage": "not JSON", "500": "HTTP 500", "other": "not a gpuwatch daemon",
            "badgpus": "no \"gpus\" array", "reset": "", "slow": "within 1500 ms",
            "huge": "longer than", "hugeeof": "longer than", "cut": "closed after 10 of 1000",
            "eof500": "HTTP 503"}
    for k, n in zip(order, nodes[1:]):
        check(not n["up"] and n["error"] and want[k] in n["error"],
              "%s peer: %r (want an error with %r)" % (k, n, want[k]))
        check(n["gpus"] == [] and n["data_age_seconds"] is None, "%s peer shows data %r" % (k, n))
    check(doc["poll_seconds"] < 4.5, "a slow peer delayed past its deadline: %r" % doc["poll_seconds"])
    # A socket that cannot even be opened (the open-file limit) fails its
    # node at once, with the reason, not at its deadline.
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_") or k == "GPUWATCH_BIN"}
    p = subprocess.run([BIN, "report", "--cluster", "--json", "--wait", "--peer-timeout", "20000",
                        "--peers", ",".join([url(good)] * 24)], capture_output=True, text=True, env=e,
                       timeout=su.DEADLINE,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (12, 12)))
    doc = json.loads(p.stdout)
    errs = [n["error"] for n in doc["nodes"] if not n["up"]]
    check(p.returncode == 3 and errs and all("Too many open files" in x for x in errs) and
          len(errs) < 24, "open-file limit: exit %d, errors %r" % (p.returncode, errs))
    check(doc["poll_seconds"] < 10, "sockets never opened waited for the deadline: %r" % doc["poll_seconds"])
    good.stop()


def case_token():
    """A daemon beyond loopback (0.0.0.0) with a token: reads need it. No
    token: the node says the token was refused; --peer-token-file (and
    $GPUWATCH_PEER_TOKEN) send it."""
    tmp = tempfile.mkdtemp(prefix="gw-cluster-")
    tok = os.path.join(tmp, "token")
    with open(tok, "w") as f:
        f.write("s3cret-token\nsecond line ignored\n")
    d = TlsDaemon("s3cret-token", scenario=TWO, args=["--listen", "0.0.0.0:0", "--token-file", tok])
    doc, _ = cluster_json(["--peers", url(d)], want_rc=3)
    check(not doc["nodes"][0]["up"] and "401" in doc["nodes"][0]["error"] and
          "token" in doc["nodes"][0]["error"], "no token: %r" % doc["nodes"][0])
    doc, _ = cluster_json(["--peers", url(d), "--peer-token-file", tok], want_rc=0)
    expect_node(doc["nodes"][0], TWO, "with --peer-token-file")
    doc, _ = cluster_json(["--peers", url(d)], want_rc=0, env={"GPUWATCH_PEER_TOKEN": "s3cret-token"})
    expect_node(doc["nodes"][0], TWO, "with GPUWATCH_PEER_TOKEN")
    # The token goes to gpuwatch peers only, never to an Ollama node.
    ol = Peer(lambda h: h.send(200, '{"models":[]}' if h.path == "/api/ps" else '{"version":"0.5.7"}'))
    cluster_json(["--peers", url(d), "--ollama-nodes", ol.url, "--wait", "--peer-token-file", tok])
    check(ol.seen and all(a is None for _, a in ol.seen), "token sent to Ollama: %r" % ol.seen)
    d.proc.terminate()
    d.proc.wait(su.DEADLINE)
    # HTTPS: a daemon with a self-signed certificate; trusted with --peer-ca,
    # refused (certificate problem named) without.
    cert, key = os.path.join(tmp, "peer.crt"), os.path.join(tmp, "peer.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days",
                    "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=su.DEADLINE)
    t = TlsDaemon("s3cret-token", cafile=cert, scenario=EIGHT, args=["--listen", "0.0.0.0:0", "--token-file", tok,
                                         "--tls-cert-file", cert, "--tls-key-file", key])
    https = "https://127.0.0.1:%d" % t.port
    doc, _ = cluster_json(["--peers", https, "--peer-token-file", tok, "--peer-ca", cert], want_rc=0)
    expect_node(doc["nodes"][0], EIGHT, "https peer")
    doc, _ = cluster_json(["--peers", https, "--peer-token-file", tok], want_rc=3)
    check(not doc["nodes"][0]["up"] and "certificate" in doc["nodes"][0]["error"].lower(),
          "untrusted https peer: %r" % doc["nodes"][0])
    t.proc.terminate()
    t.proc.wait(su.DEADLINE)


class TlsDaemon(Daemon):
    """A daemon beyond loopback, maybe over TLS: its port is read from its
    "listening on" line whatever the scheme and address; not health-checked
    here (reads need the token)."""

    def __init__(self, token, cafile=None, **kw):
        super().__init__(wait=False, **kw)
        if not self._ready.wait(su.DEADLINE) or self.port is None:
            fail("daemon did not start:\n" + self.log())
        import http.client
        import ssl

        def healthy():  # the first snapshot is published (/health 200)
            if cafile:
                c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=su.DEADLINE,
                                                context=ssl.create_default_context(cafile=cafile))
            else:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=su.DEADLINE)
            try:
                c.request("GET", "/health", headers={"Authorization": "Bearer " + token})
                return c.getresponse().status == 200
            finally:
                c.close()
        su.wait_for(healthy, "/health 200", self)

    def _read(self):
        import re
        for line in self._stderr:
            self.lines.append(line)
            m = re.search(r"listening on https?://[0-9.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()


GIB = 1024 ** 3
PS = {"models": [
    {"name": "llama3.1:8b", "model": "llama3.1:8b", "size": 6654289920, "size_vram": 6654289920,
     "digest": "6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa",
     "details": {"family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_K_M"},
     "expires_at": "2026-12-03T12:00:00Z", "context_length": 8192},
    {"name": "qwen2:7b", "model": "qwen2:7b", "size": 5 * GIB, "size_vram": 0,
     "details": {"family": "qwen2"}, "expires_at": "2026-12-03T12:00:00Z"}]}


def ollama(ps, version="0.5.7", go=False):
    def behave(h):
        if h.path == "/api/ps" and go:
            go_style(h, json.dumps(ps))
        elif h.path == "/api/ps":
            h.send(200, json.dumps(ps))
        elif h.path == "/api/version":
            h.send(200, json.dumps({"version": version}))
        else:
            h.send(404, "{}")
    return Peer(behave)


def case_ollama():
    """Bare Ollama nodes: their loaded models and where they live; one that
    answers garbage is down with the reason; an idle one says so."""
    busy, idle = ollama(PS, go=True), ollama({"models": []}, "0.6.0")
    bad = Peer(lambda h: h.send(200, "{\"models\": 5}"))
    doc, _ = cluster_json(["--ollama-nodes", ",".join(p.url for p in (busy, idle, bad)), "--wait"], want_rc=3)
    n = doc["nodes"]
    check(n[0]["kind"] == "ollama" and n[0]["up"] and n[0]["version"] == "0.5.7", "busy %r" % n[0])
    check(n[0]["cpu_only"] is None and n[0]["gpus"] == [], "Ollama GPUs are unknown: %r" % n[0])
    m = {x["name"]: x for x in n[0]["models"]}
    check(set(m) == {"llama3.1:8b", "qwen2:7b"}, "models %r" % list(m))
    check(m["llama3.1:8b"]["location"] == "GPU" and m["qwen2:7b"]["location"] == "CPU", "where %r" % m)
    check(m["llama3.1:8b"]["size_bytes"] == 6654289920 and m["llama3.1:8b"]["quantization"] == "Q4_K_M",
          "model %r" % m["llama3.1:8b"])
    check(m["llama3.1:8b"]["server"] == busy.url, "server %r" % m["llama3.1:8b"])
    check(n[1]["up"] and n[1]["models"] == [] and n[1]["version"] == "0.6.0", "idle %r" % n[1])
    check(not n[2]["up"] and "/api/ps" in n[2]["error"], "garbage Ollama %r" % n[2])
    check(doc["totals"]["models"] == 2, "totals %r" % doc["totals"])
    # A gpuwatch peer whose daemon asks that Ollama: its models come through
    # the peer's /health (model_servers), details and digest intact.
    d = Daemon(scenario=TWO, args=["--set", "ollama=" + busy.url,
                                   "--set", "model_servers_interval_ms=200"])
    su.wait_for(lambda: any(m["models"] for m in d.json("/health")["model_servers"]),
                "the peer's model servers", d)
    doc, _ = cluster_json(["--peers", url(d)], want_rc=0)
    pm = {x["name"]: x for x in doc["nodes"][0]["models"]}
    check(set(pm) == {"llama3.1:8b", "qwen2:7b"} and pm["llama3.1:8b"]["server"] == busy.url,
          "peer's models %r" % pm)
    check(pm["llama3.1:8b"]["digest"] == PS["models"][0]["digest"] and
          pm["llama3.1:8b"]["context_length"] == 8192 and pm["qwen2:7b"]["location"] == "CPU",
          "peer's model details %r" % pm)
    d.stop()
    out = run(["--ollama-nodes", busy.url + "," + idle.url, "--wait"]).stdout
    check("llama3.1:8b" in out and "on GPU" in out and "on CPU" in out, out)
    check("no model loaded (--probe" in out, out)
    # --probe: the idle node's smallest model asked for one embedding, then
    # /api/ps says where it went: inferred, never measured; the busy node
    # is not probed.
    state = {"loaded": False}

    def probing(h):
        if h.path == "/api/tags":
            h.send(200, json.dumps({"models": [{"name": "big:70b", "size": 40 * GIB},
                                               {"name": "tiny:1b", "size": GIB}]}))
        elif h.path == "/api/embed":
            check(json.loads(h.body).get("model") == "tiny:1b", "probe asked %r" % h.body)
            state["loaded"] = True
            h.send(200, json.dumps({"model": "tiny:1b", "embeddings": [[0.1, 0.2]]}))
        elif h.path == "/api/ps":
            models = [{"name": "tiny:1b", "size": GIB, "size_vram": GIB}] if state["loaded"] else []
            h.send(200, json.dumps({"models": models}))
        else:
            h.send(200, json.dumps({"version": "0.6.1"}))
    probe = Peer(probing)
    doc, _ = cluster_json(["--ollama-nodes", busy.url + "," + probe.url, "--probe", "--wait"], want_rc=0)
    pr = doc["nodes"][1]["probe"]
    check(pr and pr["model"] == "tiny:1b" and pr["result"] == "GPU (inferred)" and pr["seconds"] is not None,
          "probe %r" % pr)
    check(doc["nodes"][0]["probe"] is None and not any(p == "/api/embed" for p, _ in busy.seen),
          "a busy node was probed: %r" % busy.seen)
    state["loaded"] = False  # idle again
    out = run(["--ollama-nodes", probe.url, "--probe"]).stdout
    check("GPU (inferred)" in out and "tiny:1b" in out, out)


def case_prometheus():
    """A real Prometheus scrapes three daemons (2 GPUs, 8 GPUs, CPU-only);
    --prometheus gives the same nodes, GPUs and figures as polling them."""
    hot = os.path.join(tempfile.mkdtemp(prefix="gw-cluster-"), "hot.scn")
    with open(TWO) as f, open(hot, "w") as o:  # GPU 0 at 95 C, over its 87 C slowdown
        o.write(f.read().replace("\ntemp 38\n", "\ntemp 95\n", 1))
    ds = [Daemon(scenario=hot), Daemon(scenario=EIGHT), Daemon(args=["--sources", "host"], nvml=False),
          Daemon(scenario=LOST)]
    targets = ", ".join("'127.0.0.1:%d'" % d.port for d in ds)
    cfg = ("  - job_name: gpuwatch\n    static_configs:\n      - targets: [%s]\n" % targets +
           "  - job_name: other\n    static_configs:\n      - targets: ['127.0.0.1:1']\n")
    with Prometheus(cfg) as prom:
        prom.wait_true(['count(up{job="gpuwatch"} == 1) == bool 4',
                        'count(gpuwatch_gpu_memory_total_bytes{job="gpuwatch"}) == bool 11',
                        'count(gpuwatch_gpu_state{job="gpuwatch",state="lost"} == 1) == bool 1',
                        'count(gpuwatch_host_memory_total_bytes{job="gpuwatch"}) == bool 4'])
        direct, _ = cluster_json(["--peers", ",".join(url(d) for d in ds), "--wait"], want_rc=3)
        via, _ = cluster_json(["--prometheus", prom.url], want_rc=3)
        lost = [g for g in direct["nodes"][3]["gpus"] if g["state"] == "lost"]
        check(len(lost) == 1 and lost[0]["memory_free_bytes"] is None, "lost GPU direct %r" % lost)
        check(via["source"] == "prometheus" and via["prometheus"] == prom.url, "source %r" % via)
        check(len(via["nodes"]) == 4, "Prometheus nodes: %r (the 'other' job must not count)" %
              [n["url"] for n in via["nodes"]])
        by_port = {n["url"].rsplit(":", 1)[1]: n for n in via["nodes"]}
        for d, dn in zip(ds, direct["nodes"]):
            pn = by_port[str(d.port)]
            check(pn["kind"] == "prometheus" and pn["up"] and pn["version"] == dn["version"],
                  "node %r vs %r" % (pn, dn))
            check(pn["cpu_only"] == dn["cpu_only"] and pn["status"] == dn["status"],
                  "status %r vs %r" % (pn["status"], dn["status"]))
            check(len(pn["gpus"]) == len(dn["gpus"]), "GPU count %r vs %r" % (pn["gpus"], dn["gpus"]))
            for pg, dg in zip(pn["gpus"], dn["gpus"]):
                # a lost GPU: its state (gpuwatch_gpu_placement_blocked); its
                # identity depends on whether it was read before the loss
                keys = ("index", "name", "uuid", "vendor", "state", "memory_total_bytes",
                        "memory_free_bytes", "reservations_pending_bytes")
                for k in keys if dg["state"] == "ok" else ("index", "state"):
                    check(pg[k] == dg[k], "GPU %s: %s %r via Prometheus, %r direct" %
                          (dg["uuid"], k, pg[k], dg[k]))
                if dg["state"] == "ok":  # used via Prometheus: total - free (reserved included)
                    check(pg["memory_used_bytes"] == dg["memory_total_bytes"] - dg["memory_free_bytes"],
                          "GPU %s used %r via Prometheus" % (dg["uuid"], pg["memory_used_bytes"]))
            check(pn["host"]["memory_total_bytes"] == dn["host"]["memory_total_bytes"],
                  "RAM %r vs %r" % (pn["host"], dn["host"]))
        # the hot GPU: its temperature via the follow-up query; no plan uses it
        hot_node = by_port[str(ds[0].port)]
        check(hot_node["gpus"][0]["temperature_celsius"] == 95 ==
              direct["nodes"][0]["gpus"][0]["temperature_celsius"], "hot GPU %r" % hot_node["gpus"][0])
        # 15G: best fit would be that 19.7 GiB-free GPU, were it not too hot
        p = subprocess.run([BIN, "place", "--cluster", "--prometheus", prom.url, "--mem", "15G", "--json"],
                           capture_output=True, text=True, timeout=su.DEADLINE)
        plan = json.loads(p.stdout)
        check(plan["fits"] and plan["plan"]["devices"][0]["uuid"] != hot_node["gpus"][0]["uuid"],
              "a plan used the hot GPU: %r" % plan)
        for k in ("nodes", "nodes_up", "gpus", "cpu_only_nodes", "memory_total_bytes",
                  "memory_free_bytes"):
            check(via["totals"][k] == direct["totals"][k], "totals %s: %r vs %r" %
                  (k, via["totals"][k], direct["totals"][k]))
        # A target that stops answering: down, via Prometheus too.
        ds[2].proc.send_signal(signal.SIGSTOP)
        try:
            prom.wait_true(['count(up{job="gpuwatch"} == 0) == bool 1'])
            via, _ = cluster_json(["--prometheus", prom.url], want_rc=3)
            check(via["totals"]["nodes_unreachable"] == 1, "totals %r" % via["totals"])
            n = [x for x in via["nodes"] if x["url"].endswith(":%d" % ds[2].port)][0]
            check(not n["up"] and "up == 0" in n["error"], "stopped target %r" % n)
        finally:
            ds[2].proc.send_signal(signal.SIGCONT)
        # Another job name: nothing of gpuwatch's.
        via, _ = cluster_json(["--prometheus", prom.url, "--prometheus-job", "other"])
        check(all(not n["gpus"] for n in via["nodes"]), "job=other has GPUs: %r" % via["nodes"])
    # Prometheus gone: an error naming it, exit 1.
    p = run(["--prometheus", prom.url, "--json"])
    check(p.returncode == 1 and "Prometheus" in p.stderr, "Prometheus down: %d %r" % (p.returncode, p.stderr))
    for d in ds:
        d.stop()


def case_usage():
    """Bad command lines: exit 2 naming the problem."""
    for args, want in ((["--peers", "ftp://x:1"], "not an http"),
                       (["--peers", "http://x:99999"], "bad port"),
                       (["--peers", "http://x:1/api"], "only scheme://host[:port]"),
                       (["--peer-timeout", "0", "--peers", "http://x:1"], "--peer-timeout"),
                       ([], "no peers"),
                       (["--watch", "1", "--peers", "http://127.0.0.1:1"], "--watch")):
        p = run(args)
        check(p.returncode == 2 and want in p.stderr, "%r: exit %d %r" % (args, p.returncode, p.stderr))
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_") or k == "GPUWATCH_BIN"}
    p = subprocess.run([BIN, "report", "--peers", "http://x:1"], capture_output=True, text=True, env=e)
    check(p.returncode == 2 and "--cluster" in p.stderr, "--peers without --cluster: %r" % p.stderr)
    p = run(["--peer-token-file", "/nonexistent/token", "--peers", "http://127.0.0.1:1"])
    check(p.returncode == 1 and "/nonexistent/token" in p.stderr, "token file: %r" % p.stderr)
    # a token is never cut short: over 255 characters is refused, file or environment
    tmp = tempfile.mkdtemp(prefix="gw-cluster-")
    long_tok = os.path.join(tmp, "token")
    with open(long_tok, "w") as f:
        f.write("t" * 300 + "\n")
    p = run(["--peer-token-file", long_tok, "--peers", "http://127.0.0.1:1"])
    check(p.returncode == 2 and "first line must hold 1..255" in p.stderr, "long token file: %r" % p.stderr)
    p = run(["--peers", "http://127.0.0.1:1"], env={"GPUWATCH_PEER_TOKEN": "t" * 300})
    check(p.returncode == 2 and "GPUWATCH_PEER_TOKEN" in p.stderr, "long token env: %r" % p.stderr)
    # GPUWATCH_PEERS is the default list.
    d = Daemon(scenario=TWO)
    doc, _ = cluster_json([], want_rc=0, env={"GPUWATCH_PEERS": url(d)})
    expect_node(doc["nodes"][0], TWO, "$GPUWATCH_PEERS")
    d.stop()


GIB_ = 1024 ** 3


def expected_gpu(nodes, need):
    """The (node position, GPU index) best-fit must choose for a plain size:
    among every GPU of every node whose free memory minus its pending
    reservations holds need, the one with the least of it (ties: the first
    node, the lowest index)."""
    best = None
    for i, (scn, pending) in enumerate(nodes):
        for k, g in enumerate(parse_scenario(scn)[1]):
            usable = num(g, "memory.free") - pending.get(k, 0)
            if usable >= need and (best is None or usable < best[0]):
                best = (usable, i, k)
    return best and best[1:]


def reserve(d, uuid, size):
    body = json.dumps({"mem": size, "devices": [uuid], "lease_s": 600, "owner": "test"})
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=su.DEADLINE)
    c.request("POST", "/api/v1/reservations", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    check(r.status == 201, "reservation: %d %r" % (r.status, data))


def case_place():
    """place --cluster: the node and GPU best-fit picks across nodes, the
    same as computed from the scenarios; a reservation on that GPU moves it
    elsewhere; what fits nowhere says so per node (exit 1)."""
    a, b = Daemon(scenario=TWO), Daemon(scenario=EIGHT)
    c = Daemon(args=["--sources", "host"], nvml=False)
    peers = ",".join(url(d) for d in (a, b, c))
    for size in (3, 18, 70):
        want = expected_gpu([(TWO, {}), (EIGHT, {})], size * GIB_)
        p = subprocess.run([BIN, "place", "--cluster", "--wait", "--peers", peers, "--mem", "%dG" % size,
                            "--json"], capture_output=True, text=True, timeout=su.DEADLINE)
        check(p.returncode == 0, "place %dG: exit %d %s" % (size, p.returncode, p.stderr))
        doc = json.loads(p.stdout)
        check(doc["schema"] == "gpuwatch.cluster_plan/1" and doc["fits"], "plan %r" % doc)
        check(doc["node"]["url"] == url((a, b)[want[0]]), "%dG went to %r, want node %d" %
              (size, doc["node"], want[0]))
        check([x["index"] for x in doc["plan"]["devices"]] == [want[1]],
              "%dG on GPUs %r, want %d" % (size, doc["plan"]["devices"], want[1]))
        check(doc["nodes"][2]["reason"] == "CPU-only" and not doc["nodes"][2]["fits"], "CPU node %r" % doc["nodes"][2])
    # A reservation on the chosen GPU of the 8-GPU node counts there.
    want = expected_gpu([(TWO, {}), (EIGHT, {})], 70 * GIB_)
    uuid = parse_scenario(EIGHT)[1][want[1]]["uuid"]
    reserve(b, uuid, "10GiB")
    su.wait_for(lambda: any(dv["pending_bytes"] == 10 * GIB_ for dv in b.json("/health")["placement"]["devices"]),
                "the reservation in /health", b)
    want2 = expected_gpu([(TWO, {}), (EIGHT, {want[1]: 10 * GIB_})], 70 * GIB_)
    check(want2 != want, "test setup: the reservation changes nothing")
    p = subprocess.run([BIN, "place", "--cluster", "--wait", "--peers", peers, "--mem", "70G", "--json"],
                       capture_output=True, text=True, timeout=su.DEADLINE)
    doc = json.loads(p.stdout)
    check([x["index"] for x in doc["plan"]["devices"]] == [want2[1]],
          "with a reservation: GPUs %r, want %d" % (doc["plan"]["devices"], want2[1]))
    # Fits nowhere: exit 1, each node's reason.
    p = subprocess.run([BIN, "place", "--cluster", "--wait", "--peers", peers, "--mem", "500G"],
                       capture_output=True, text=True, timeout=su.DEADLINE)
    check(p.returncode == 1 and "Does not fit on any node" in p.stdout and "CPU-only" in p.stdout,
          "500G: %d %r" % (p.returncode, p.stdout))
    # Options that are per host do not go with --cluster.
    p = subprocess.run([BIN, "place", "--cluster", "--wait", "--peers", peers, "--mem", "1G", "--devices", "0"],
                       capture_output=True, text=True, timeout=su.DEADLINE)
    check(p.returncode == 2 and "--devices" in p.stderr, "--devices: %r" % p.stderr)
    for d in (a, b, c):
        d.stop()


def case_daemon():
    """A daemon with peers: GET /api/v1/cluster polls them in the
    background; a peer that hangs is shown down with the age of its last
    good data (growing) while the others stay fresh; POST
    /api/v1/plan?scope=cluster chooses as place --cluster does. Without
    peers both answer 404 naming the keys."""
    a, b = Daemon(scenario=TWO), Daemon(scenario=EIGHT)
    seed = Daemon(args=["--sources", "host", "--set", "peers=%s,%s" % (url(a), url(b)),
                        "--set", "cluster_interval_ms=200", "--set", "peer_timeout_ms=500"],
                  nvml=False)
    doc = su.wait_for(lambda: seed.get("/api/v1/cluster")[0] == 200 and seed.json("/api/v1/cluster"),
                      "a cluster view", seed)
    expect_node(doc["nodes"][0], TWO, "seed's view of node a")
    expect_node(doc["nodes"][1], EIGHT, "seed's view of node b")
    st, _, plan = seed.call("POST", "/api/v1/plan?scope=cluster", {"mem": "70GiB"})
    want = expected_gpu([(TWO, {}), (EIGHT, {})], 70 * GIB_)
    check(st == 200 and plan["node"]["url"] == url(b) and
          [x["index"] for x in plan["plan"]["devices"]] == [want[1]], "cluster plan %d %r" % (st, plan))
    st, _, plan = seed.call("POST", "/api/v1/plan?scope=cluster", {"mem": "900GiB"})
    check(st == 409 and not plan["fits"], "900GiB: %d %r" % (st, plan))
    st, _, plan = seed.call("POST", "/api/v1/plan?scope=cluster", {"mem": "1GiB", "bogus": 1})
    check(st == 400, "bad member: %d %r" % (st, plan))
    st, _, plan = seed.call("POST", "/api/v1/plan?scope=galaxy", {"mem": "1GiB"})
    check(st == 400, "bad scope: %d %r" % (st, plan))
    a.proc.send_signal(signal.SIGSTOP)
    try:
        n = su.wait_for(lambda: (lambda n: not n["up"] and n)(seed.json("/api/v1/cluster")["nodes"][0]),
                        "node a down", seed)
        check("no answer within 500 ms" in n["error"] and len(n["gpus"]) == 2, "hung node %r" % n)
        age = n["data_age_seconds"]
        su.wait_for(lambda: seed.json("/api/v1/cluster")["nodes"][0]["data_age_seconds"] > age + 0.5,
                    "the hung node's data age to grow", seed)
        nb = seed.json("/api/v1/cluster")["nodes"][1]
        check(nb["up"] and nb["data_age_seconds"] < 5, "node b not fresh beside a hung one: %r" % nb)
        # A plan never goes to a node that is down, even with its last good data.
        st, _, plan = seed.call("POST", "/api/v1/plan?scope=cluster", {"mem": "3GiB"})
        check(st == 200 and plan["node"]["url"] == url(b) and "unreachable" in plan["nodes"][0]["reason"],
              "plan with a hung node: %r" % plan)
    finally:
        a.proc.send_signal(signal.SIGCONT)
    plain = Daemon(scenario=TWO)
    st, _, body = plain.get("/api/v1/cluster")
    check(st == 404 and b"peers" in body, "no peers: %d %r" % (st, body))
    st, _, plan = plain.call("POST", "/api/v1/plan?scope=cluster", {"mem": "1GiB"})
    check(st == 404, "cluster plan without peers: %d %r" % (st, plan))
    for d in (seed, a, b, plain):
        d.stop()


CASES = {"place": case_place, "daemon": case_daemon, "direct": case_direct, "faults": case_faults, "token": case_token, "ollama": case_ollama,
         "prometheus": case_prometheus, "usage": case_usage}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        fail("usage: test_cluster.py %s" % "|".join(CASES))
    CASES[sys.argv[1]]()
    print("ok: cluster " + sys.argv[1])
