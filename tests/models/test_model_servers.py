#!/usr/bin/env python3
"""`gpuwatch report --ollama / --llama-server`: model servers' loaded
models, against fixture servers on loopback that answer with the documented
shapes (../shared/reference/exporters-and-apis.md: Ollama's GET /api/version
and /api/ps; llama-server's /health, /props, /slots), and with what
misbehaving servers do: garbage, HTTP 500, an answer that never comes, a
connection reset, nothing listening, a model still loading. Processes are
tied to their model (a /proc fixture under the fake NVML's one.scn): an
Ollama runner through its blob digest, a llama-server found among the GPU
processes at its --host/--port.

The daemon asks the same servers on a thread of its own: /health's
model_servers, the gpuwatch_model_* families (promtool clean), and the
model of each process in /gpu/processes and its series.

    test_model_servers.py CASE   CASE: models | faults | attribution | llama | usage | daemon
"""
import http.server
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("GPUWATCH_BIN", "gpuwatch")
ROOT = os.environ.get("GPUWATCH_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GPUWATCH_BUILD_ROOT", os.path.join(ROOT, "build"))
SCENARIO = os.path.join(ROOT, "tests", "nvml", "scenarios", "one.scn")
FAKE_NVML = os.path.join(BUILD, "tests", "nvml", "lib-full", "libnvidia-ml.so.1")
GIB = 1024 ** 3
D1 = "6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa"
D2 = "0d2b6a5f00c7d1c3a57f1d1b8aa0b9a2e3f4a5b6c7d8e9f00112233445566778"

PS = {"models": [
    {"name": "llama3.1:8b", "model": "llama3.1:8b", "size": 6654289920, "digest": D1,
     "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                 "parameter_size": "8.0B", "quantization_level": "Q4_K_M"},
     "expires_at": "2026-12-03T14:38:31.83753-07:00", "size_vram": 6654289920,
     "context_length": 8192},
    {"name": "qwen2.5:72b", "model": "qwen2.5:72b", "size": 51539607552,
     "digest": "sha256:" + D2,
     "details": {"family": "qwen2", "parameter_size": "72.7B", "quantization_level": "Q4_K_M"},
     "expires_at": "2026-12-03T21:40:00Z", "size_vram": 21139292160},
    {"name": "nomic-embed-text:latest", "size": 849346560, "digest": "x",
     "details": {"family": "nomic-bert"}, "size_vram": 0},
]}


# llama-server --metrics (two families re-exported) with what must not be:
# a family of another name, a histogram, a label value trying to end the line
LLAMA_METRICS = """# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 1234
# HELP llamacpp:requests_processing Number of requests processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing{slot="0"} 1
# TYPE evil_metric gauge
evil_metric 666
# TYPE llamacpp:latency histogram
llamacpp:latency_bucket{le="1"} 3
# TYPE llamacpp:injected gauge
llamacpp:injected{a="b\\"} 1\nfoo 2"} 7
"""


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


class Handler(http.server.BaseHTTPRequestHandler):
    mode = "ok"

    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        """Ollama's POST /api/embed: loads the model (idle modes)."""
        n = int(self.headers.get("Content-Length") or 0)
        req = json.loads(self.rfile.read(n) or b"{}")
        self.server.embeds.append(req)
        if self.path != "/api/embed" or self.server.mode == "idle-broken":
            self.send(500, {"error": "model failed to load"})
            return
        self.server.loaded = req.get("model")
        self.send(200, {"model": req.get("model"), "embeddings": [[0.1, 0.2]]})

    def do_GET(self):
        mode = self.server.mode
        if mode.startswith("idle"):
            return self.idle(mode)
        if mode.startswith("llama"):
            return self.llama(mode)
        if mode == "slow":
            time.sleep(6)
            return
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            self.connection.close()
            return
        if self.path == "/api/version":
            self.send(200, {"version": "0.5.1"})
        elif self.path == "/api/ps":
            if mode == "garbage":
                self.send(200, b"<html>not json</html>", "text/html")
            elif mode == "500":
                self.send(500, {"error": "boom"})
            elif mode == "empty":
                self.send(200, {"models": []})
            else:
                self.send(200, PS)
        else:
            self.send(404, {"error": "not found"})


    def idle(self, mode):
        """A server with no model loaded until a probe loads its smallest."""
        if self.path == "/api/version":
            self.send(200, {"version": "0.9.7"})
        elif self.path == "/api/tags":
            self.send(200, {"models": [{"name": "llama3.1:8b", "size": 4920753328},
                                       {"name": "all-minilm:22m", "size": 45960996},
                                       {"name": "nameless", "size": 1}, {"size": 0}]})
        elif self.path == "/api/ps":
            m = self.server.loaded
            vram = 0 if mode == "idle-cpu" else 45960996
            self.send(200, {"models": [{"name": m, "size": 45960996, "size_vram": vram}]
                            if m else []})
        else:
            self.send(404, {"error": "not found"})

    def llama(self, mode):
        if self.path == "/health":
            if mode == "llama-loading":
                self.send(503, {"error": {"code": 503, "message": "Loading model",
                                          "type": "unavailable_error"}})
            else:
                self.send(200, {"status": "ok"})
        elif self.path == "/props":
            self.send(200, {"default_generation_settings": {"n_ctx": 4096, "temperature": 0.8},
                            "total_slots": 2, "model_path": "/models/tiny-q4.gguf",
                            "build_info": "b4321-abcdef0"})
        elif self.path == "/slots":
            self.send(200, [{"id": 0, "is_processing": True}, {"id": 1, "is_processing": False}])
        elif self.path == "/metrics":
            self.send(200, LLAMA_METRICS.encode(), "text/plain; version=0.0.4")
        else:
            self.send(404, {"error": {"code": 404, "message": "File Not Found"}})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def serve(mode):
    s = Server(("127.0.0.1", 0), Handler)
    s.mode = mode
    s.embeds = []
    s.loaded = None
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s, "http://127.0.0.1:%d" % s.server_address[1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def report(args, proc_root=None, json_out=True):
    env = dict(os.environ, GPUWATCH_FAKE_NVML_SCENARIO=SCENARIO)
    cmd = [BIN, "report", "--sources", "nvml", "--nvml-library", FAKE_NVML] + args
    if json_out:
        cmd.append("--json")
    if proc_root:
        cmd += ["--proc-root", proc_root]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    return p.returncode, (json.loads(p.stdout) if json_out and p.stdout else p.stdout), p.stderr


def case_models():
    """Every documented field of /api/ps, in the JSON and the human text."""
    srv, url = serve("ok")
    rc, rep, err = report(["--ollama", url])
    check(rc == 0, "rc %d: %s" % (rc, err))
    servers = rep["model_servers"]
    check(len(servers) == 1, "servers %r" % servers)
    s = servers[0]
    check(s["kind"] == "ollama" and s["url"] == url and s["up"] is True and s["error"] is None,
          "server %r" % s)
    check(s["version"] == "0.5.1", "version %r" % s["version"])
    by = {m["name"]: m for m in s["models"]}
    check(list(by) == ["llama3.1:8b", "qwen2.5:72b", "nomic-embed-text:latest"], "names %r" % list(by))
    m = by["llama3.1:8b"]
    check(m["size_bytes"] == 6654289920 and m["vram_bytes"] == 6654289920 and m["location"] == "GPU",
          "llama %r" % m)
    check(m["digest"] == D1 and m["family"] == "llama" and m["parameter_size"] == "8.0B" and
          m["quantization"] == "Q4_K_M" and m["context_length"] == 8192, "llama details %r" % m)
    check(m["expires_at"].startswith("2026-12-03T21:38:31.837"), "expiry (UTC) %r" % m["expires_at"])
    q = by["qwen2.5:72b"]
    check(q["digest"] == D2, "sha256: prefix dropped: %r" % q["digest"])
    check(q["location"] == "%.0f%% GPU" % (100.0 * 21139292160 / 51539607552), "split %r" % q)
    check(q["context_length"] is None, "no context_length: null, not 0: %r" % q)
    n = by["nomic-embed-text:latest"]
    check(n["location"] == "CPU" and n["vram_bytes"] == 0 and n["digest"] is None and
          n["expires_at"] is None, "cpu model %r" % n)
    rc, text, err = report(["--ollama", url], json_out=False)
    check(rc == 0, "human rc %d: %s" % (rc, err))
    check("Model server: ollama %s (version 0.5.1), 3 models loaded" % url in text, text)
    lines = {l.split()[0]: l for l in text.splitlines() if l.startswith("  ") and l.split()}
    check("GPU  size 6.20 GiB, VRAM 6.20 GiB, 8.0B Q4_K_M llama, ctx 8192" in lines["llama3.1:8b"],
          lines.get("llama3.1:8b"))
    check(" 41% GPU  size 48.00 GiB, VRAM 19.69 GiB" in lines["qwen2.5:72b"], lines.get("qwen2.5:72b"))
    check(" CPU  size 0.79 GiB, VRAM 0.00 GiB" in lines["nomic-embed-text:latest"], text)
    srv.shutdown()


def case_faults():
    """Servers that misbehave are each down with the reason, the good one is
    up, and the one that never answers is given up on (its deadline named)."""
    good, gurl = serve("ok")
    bad = {mode: serve(mode) for mode in ("garbage", "500", "slow", "reset")}
    refused = "http://127.0.0.1:%d" % free_port()
    urls = [gurl] + [u for _, u in bad.values()] + [refused]
    rc, rep, err = report(["--ollama", ",".join(urls)])
    check(rc == 0, "rc %d: %s" % (rc, err))
    got = {s["url"]: s for s in rep["model_servers"]}
    check(list(got) == urls, "every server listed, in order: %r" % list(got))
    check(got[gurl]["up"] and len(got[gurl]["models"]) == 3, "good %r" % got[gurl])
    why = {m: got[u]["error"] or "" for m, (_, u) in bad.items()}
    for m, (_, u) in bad.items():
        check(got[u]["up"] is False and got[u]["models"] == [], "%s: %r" % (m, got[u]))
    check("not JSON" in why["garbage"], "garbage: %r" % why["garbage"])
    check("HTTP 500" in why["500"], "500: %r" % why["500"])
    check("no answer within 2000 ms" in why["slow"], "slow: %r" % why["slow"])
    check("reset" in why["reset"] or "closed" in why["reset"], "reset: %r" % why["reset"])
    check("nothing listens" in (got[refused]["error"] or ""), "refused: %r" % got[refused])
    # `none` asks nothing; the default probe lists nothing when nobody answers
    rc, rep, err = report(["--ollama", "none"])
    check(rc == 0 and rep["model_servers"] == [], "none: %r" % rep.get("model_servers"))
    for s, _ in [(good, 0)] + list(bad.values()):
        s.shutdown()


def case_attribution():
    """A runner started on a loaded model's blob is labelled with the model."""
    srv, url = serve("ok")
    root = proc_fixture({
        5004242: ["/usr/bin/ollama", "runner", "--model",
                  "/usr/share/ollama/.ollama/models/blobs/sha256-" + D1, "--ctx-size", "8192"],
        5000777: ["/usr/bin/ollama", "runner", "--model",
                  "/root/.ollama/models/blobs/sha256-" + "f" * 64]})
    rc, rep, err = report(["--ollama", url], proc_root=root)
    check(rc == 0, "rc %d: %s" % (rc, err))
    model = {p["pid"]: p.get("model") for p in rep["processes"]}
    check(model.get(5004242) == "llama3.1:8b", "runner of llama3.1:8b: %r" % model)
    check(model.get(5000777) is None, "a blob no server has loaded: %r" % model)
    check(model.get(5005150) is None, "a process without /proc: %r" % model)
    rc, text, err = report(["--ollama", url], proc_root=root, json_out=False)
    rows = {l.split()[0]: l.split() for l in text.splitlines() if l.strip()[:1].isdigit()}
    check(rows.get("5004242", [])[6:7] == ["llama3.1:8b"] and rows.get("5000777", [])[6:7] == ["-"],
          "MODEL column: %r" % {k: rows.get(k) for k in ("5004242", "5000777")})
    srv.shutdown()


def proc_fixture(argvs):
    """A /proc with these pids' stat, comm and cmdline; returns its root."""
    root = tempfile.mkdtemp(prefix="gw-models-proc-")
    for pid, argv in argvs.items():
        d = os.path.join(root, str(pid))
        os.makedirs(d)
        comm = os.path.basename(argv[0])[:15]
        with open(os.path.join(d, "stat"), "w") as f:
            f.write("%d (%s) S %s 4242 %s\n" % (pid, comm, " ".join(["0"] * 18), " ".join(["0"] * 30)))
        with open(os.path.join(d, "comm"), "w") as f:
            f.write(comm + "\n")
        with open(os.path.join(d, "cmdline"), "wb") as f:
            f.write(b"\0".join(a.encode() for a in argv) + b"\0")
    return root


def case_llama():
    """llama-servers found among the GPU processes (at --host/--port) and
    one named with --llama-server: model, context, slots; a process tied to
    its server's model; a server that loads or is not there is down."""
    srv, url = serve("llama")
    loading, lurl = serve("llama-loading")
    port = srv.server_address[1]
    gone = free_port()
    root = proc_fixture({
        5004242: ["/opt/llama.cpp/bin/llama-server", "-m", "/models/tiny-q4.gguf", "--host",
                  "0.0.0.0", "--port", str(port), "-c", "4096"],
        5000777: ["llama-server", "--port=%d" % gone, "-m", "/models/other.gguf"]})
    rc, rep, err = report(["--ollama", "none", "--llama-server", lurl], proc_root=root)
    check(rc == 0, "rc %d: %s" % (rc, err))
    got = {s["url"]: s for s in rep["model_servers"]}
    check(set(got) == {url, lurl, "http://127.0.0.1:%d" % gone}, "servers %r" % list(got))
    s = got[url]
    check(s["kind"] == "llama.cpp" and s["up"] and s["pid"] == 5004242 and
          s["version"] == "b4321-abcdef0", "found server %r" % s)
    check(s["slots"] == {"total": 2, "busy": 1}, "slots %r" % s["slots"])
    check([m["name"] for m in s["models"]] == ["tiny-q4.gguf"] and
          s["models"][0]["context_length"] == 4096, "model %r" % s["models"])
    check(got[lurl]["up"] is False and "503" in got[lurl]["error"] and
          "loading" in got[lurl]["error"] and got[lurl]["pid"] is None, "loading %r" % got[lurl])
    g = got["http://127.0.0.1:%d" % gone]
    check(g["up"] is False and g["pid"] == 5000777 and "nothing listens" in g["error"],
          "a llama-server process nobody answers for: %r" % g)
    model = {p["pid"]: p.get("model") for p in rep["processes"]}
    check(model.get(5004242) == "tiny-q4.gguf", "llama-server's model: %r" % model)
    check(model.get(5000777) is None, "no model from a server that is down: %r" % model)
    rc, text, err = report(["--ollama", "none"], proc_root=root, json_out=False)
    check("Model server: llama.cpp %s pid 5004242 (version b4321-abcdef0), 1 model loaded, "
          "slots 1/2 busy" % url in text, text)
    rc, rep, err = report(["--ollama", "none", "--llama-server", "none"], proc_root=root)
    check(rc == 0 and rep["model_servers"] == [], "none: %r" % rep.get("model_servers"))
    srv.shutdown()
    loading.shutdown()


def case_usage():
    for opt in ("--ollama", "--llama-server"):
        for bad in ("", "ftp://x:1", "http://127.0.0.1:1,,http://127.0.0.1:2"):
            rc, _, err = report([opt, bad], json_out=False)
            check(rc == 2 and opt in err, "%s %r: rc %d %r" % (opt, bad, rc, err))


def get(url, path):
    import urllib.request
    with urllib.request.urlopen(url + path, timeout=10) as r:
        return r.read().decode()


def case_daemon():
    """gpuwatch serve with an Ollama server, a hung one and a llama-server
    found among the processes: /health, /metrics, /gpu/processes."""
    srv, ourl = serve("ok")
    hung, hurl = serve("slow")
    llama, lurl = serve("llama")
    root = proc_fixture({
        5004242: ["/usr/bin/ollama", "runner", "--model", "/m/blobs/sha256-" + D1],
        5000777: ["llama-server", "-m", "/models/tiny-q4.gguf", "--port",
                  str(llama.server_address[1])]})
    port = free_port()
    d_url = "http://127.0.0.1:%d" % port
    env = dict(os.environ, GPUWATCH_FAKE_NVML_SCENARIO=SCENARIO)
    log = open(os.path.join(root, "serve.log"), "w")
    d = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:%d" % port, "--sources", "nvml",
                          "--nvml-library", FAKE_NVML, "--proc-root", root, "--metrics-processes",
                          "--set", "ollama=%s,%s" % (ourl, hurl), "--set",
                          "model_servers_interval_ms=200", "--set", "interval_ms=200"],
                         env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline:
            try:
                health = json.loads(get(d_url, "/health"))
                ms = {s["url"]: s for s in health.get("model_servers", [])}
                procs = json.loads(get(d_url, "/gpu/processes"))["processes"]
                models = {p["pid"]: p.get("model") for p in procs}
                if (ms.get(ourl, {}).get("up") and ms.get(lurl, {}).get("up") and
                        hurl in ms and models.get(5000777)):
                    break
            except (OSError, ValueError):
                pass
            check(d.poll() is None, "serve exited")
            time.sleep(0.1)
        ms = {s["url"]: s for s in health["model_servers"]}
        check(set(ms) == {ourl, hurl, lurl}, "/health model_servers %r" % list(ms))
        check(len(ms[ourl]["models"]) == 3 and ms[lurl]["pid"] == 5000777, "servers %r" % ms)
        check(ms[hurl]["up"] is False and "2000 ms" in ms[hurl]["error"], "hung %r" % ms[hurl])
        check(models.get(5004242) == "llama3.1:8b" and models.get(5000777) == "tiny-q4.gguf",
              "/gpu/processes models %r" % models)
        text = get(d_url, "/metrics")
        for line in ('gpuwatch_model_server_up{kind="ollama",url="%s"} 1' % ourl,
                     'gpuwatch_model_server_up{kind="ollama",url="%s"} 0' % hurl,
                     'gpuwatch_model_server_up{kind="llama.cpp",url="%s"} 1' % lurl,
                     'gpuwatch_model_server_slots{kind="llama.cpp",url="%s",state="busy"} 1' % lurl,
                     'gpuwatch_model_vram_bytes{kind="ollama",url="%s",model="qwen2.5:72b"} '
                     '21139292160' % ourl,
                     'gpuwatch_model_size_bytes{kind="ollama",url="%s",model="llama3.1:8b"} '
                     '6654289920' % ourl):
            check(line in text.splitlines(), "no line %r in /metrics" % line)
        lines = text.splitlines()
        check('llamacpp_prompt_tokens_total{server="%s"} 1234' % lurl in lines and
              'llamacpp_requests_processing{server="%s",slot="0"} 1' % lurl in lines,
              "llama-server's families re-exported with a server label")
        check(not any(l.startswith(("evil_metric", "foo ", "llamacpp_latency", "llamacpp:"))
                      for l in lines),
              "only llamacpp:* counters and gauges are re-exported")
        inj = [l for l in lines if l.startswith("llamacpp_injected")]
        check(all(l.count("\n") == 0 for l in inj), "injected %r" % inj)
        check(any(l.startswith("gpuwatch_gpu_process_memory_bytes{") and 'pid="5004242"' in l and
                  'model="llama3.1:8b"' in l for l in text.splitlines()), "process model label")
        import shutil
        if shutil.which("promtool"):
            p = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                               capture_output=True, timeout=60)
            check(p.returncode == 0, "promtool: %s%s" % (p.stdout, p.stderr))
    finally:
        d.terminate()
        d.wait(timeout=30)
        log.close()
        for s in (srv, hung, llama):
            s.shutdown()


def case_probe():
    """--probe: an idle Ollama server loads its smallest model for one
    embedding and says where it went, labelled inferred; a server with
    models loaded and runs without --probe are not touched."""
    gpu, gurl = serve("idle")
    cpu, curl = serve("idle-cpu")
    broken, burl = serve("idle-broken")
    busy, busy_url = serve("ok")
    rc, rep, err = report(["--ollama", ",".join([gurl, curl, burl, busy_url])])
    check(rc == 0 and all(s["probe"] is None for s in rep["model_servers"]), "no --probe: %r" % rep)
    check(not gpu.embeds and not cpu.embeds, "asked without --probe")
    rc, rep, err = report(["--ollama", ",".join([gurl, curl, burl, busy_url]), "--probe"])
    check(rc == 0, "rc %d: %s" % (rc, err))
    got = {s["url"]: s for s in rep["model_servers"]}
    p = got[gurl]["probe"]
    check(p["model"] == "nameless" and p["result"] == "GPU (inferred)" and p["error"] is None and
          p["seconds"] >= 0, "gpu probe %r" % p)
    check(gpu.embeds == [{"model": "nameless", "input": "gpuwatch probe"}], "%r" % gpu.embeds)
    check(got[curl]["probe"]["result"] == "CPU (inferred)", "cpu probe %r" % got[curl]["probe"])
    b = got[burl]["probe"]
    check(b["result"] is None and "HTTP 500" in b["error"] and b["seconds"] is None, "broken %r" % b)
    check(got[busy_url]["probe"] is None and not busy.embeds, "a server with models loaded")
    check(got[gurl]["models"] == [], "the probe is not shown as a loaded model: %r" % got[gurl])
    fresh, furl = serve("idle")  # gurl holds its model now, as Ollama would
    rc, text, err = report(["--ollama", furl, "--probe"], json_out=False)
    check(re.search(r"probe: nameless answered in \d+\.\d\d s: GPU \(inferred\)", text), text)
    for s in (gpu, cpu, broken, busy, fresh):
        s.shutdown()


CASES = {"daemon": case_daemon, "probe": case_probe, "models": case_models, "faults": case_faults, "attribution": case_attribution,
         "llama": case_llama, "usage": case_usage}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print(__doc__)
        return 2
    if not os.path.exists(FAKE_NVML):
        print("SKIP: no fake NVML library")
        return 77
    try:
        CASES[sys.argv[1]]()
    except Failed as e:
        print("FAIL %s: %s" % (sys.argv[1], e))
        return 1
    print("%s: ok" % sys.argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
