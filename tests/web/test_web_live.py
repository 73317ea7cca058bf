#!/usr/bin/env python3
"""The web page while things change (docs/web.md), in headless Chromium:
 - a GPU's memory moves: the text follows and the chart gains points;
 - a GPU is lost mid-run and comes back: the card says lost, then ok, and the
   event log shows both events as they happen;
 - a process whose command line holds <script> and an <img onerror>: shown as
   text, nothing runs, no CSP violation;
 - a GPU lost since before the start (its history holds no value): no line
   is drawn (N/A is never 0);
 - the page opened as the daemon starts (history empty): cards and charts
   come with the first samples;
 - a daemon behind a token: the page reads, Cancel without the token is
   refused and says why, with the token the reservation is released;
 - the model-server and cluster panes: an Ollama double on loopback (its
   answer shaped as Ollama's GET /api/ps; a model name that is markup) and
   a second real daemon as the cluster's peer.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(SRC, "tests", "serve"))
import serve_util as su  # noqa: E402
from serve_util import check  # noqa: E402
import browser as br  # noqa: E402
import webcheck as wc  # noqa: E402

GIB = 1 << 30
TOKEN = "web-test-token"


def scenario(tmp, used_file, lost_file, procs_file):
    """Two GPUs: GPU 0's used memory and process list from files, GPU 1
    lost while lost_file exists."""
    path = os.path.join(tmp, "live.scn")
    with open(path, "w") as f:
        f.write("driver 550.54.15\nnvml 12.550.54.15\ncuda 12040\n")
        for i in range(2):
            f.write("gpu\nname NVIDIA L4\nuuid GPU-%08x-1111-2222-3333-444444444444\n" % (0xe0 + i))
            f.write("memory.total %d\nmemory.reserved 0\nmemory.used %d\nmemory.free %d\n"
                    % (24 * GIB, 2 * GIB, 22 * GIB))
            f.write("util.gpu 10\nutil.memory 5\ntemp 50\ntemp.slowdown 90\n"
                    "power.usage 70000\npower.limit 72000\n")
            if i == 0:
                f.write("memory.used.file %s\nprocesses.file %s\n" % (used_file, procs_file))
            else:
                f.write("lost.file %s\n" % lost_file)
    return path


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def card(b, i):
    return wc.cards(b)[i]


def live(b, tmp):
    used_file = os.path.join(tmp, "used")
    lost_file = os.path.join(tmp, "lost")
    procs_file = os.path.join(tmp, "procs")
    write(used_file, str(2 * GIB))
    # a real process whose command line is markup (the daemon reads /proc)
    evil = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)",
                             "<script>window.__pwned=1</script>",
                             "<img src=x onerror=window.__pwned=2>"])
    try:
        write(procs_file, "%d %d\n" % (evil.pid, GIB))
        # a 10-minute window: the chart's step is the 1 s interval, so
        # every sample is a point (an hour would be one point per 6 s)
        d = su.Daemon(scenario=scenario(tmp, used_file, lost_file, procs_file),
                      args=["--set", "history_seconds=600"])
        b.open("http://127.0.0.1:%d/" % d.port)
        b.wait("document.body.dataset.charts === '2'", "live: 2 charts")

        # memory moves: text follows, the chart gains points
        before = card(b, 0)["points"]
        write(used_file, str(10 * GIB))
        want = wc.memory_text(10 * GIB, 24 * GIB)
        b.wait("document.querySelector('#gpus .gpu .kv dd span').textContent === %s"
               % json.dumps(want), "live: memory text becomes %r" % want)
        b.wait("Number(document.querySelector('#gpus .gpu .chart').dataset.points) >= %d"
               % (before + 3), "live: GPU 0's chart gains points")

        # the command line is text
        b.wait("document.querySelector('#gpus .gpu .procs td.cmd') !== null", "live: process row")
        c = card(b, 0)
        row = [r for r in c["rows"] if r[0] == str(evil.pid)]
        check(row, "live: pid %d not listed: %r" % (evil.pid, c["rows"]))
        check("<script>window.__pwned=1</script>" in row[0][3]
              and "<img src=x onerror=window.__pwned=2>" in row[0][3],
              "live: the command line is not shown as text: %r" % row[0][3])
        check(any("&lt;script&gt;" in h for h in c["cmd_html"]),
              "live: the command cell's markup is %r" % c["cmd_html"])
        check(b.eval("window.__pwned === undefined && document.querySelectorAll("
                     "'#gpus script, #gpus img').length === 0"),
              "live: the command line's markup ran or became elements")

        # GPU 1 lost mid-run, then back
        check(card(b, 1)["state"] == "ok", "live: GPU 1 starts %r" % card(b, 1)["state"])
        write(lost_file, "")
        b.wait("document.querySelectorAll('#gpus .gpu')[1].dataset.state === 'lost'",
               "live: GPU 1 shows lost")
        b.wait("document.querySelector('#events li[data-type=gpu_lost]') !== null",
               "live: the event log shows gpu_lost")
        b.screenshot("live-gpu-lost")
        os.unlink(lost_file)
        b.wait("document.querySelectorAll('#gpus .gpu')[1].dataset.state === 'ok'",
               "live: GPU 1 shows ok again")
        b.wait("document.querySelector('#events li[data-type=gpu_recovered]') !== null",
               "live: the event log shows gpu_recovered")
        errs = b.errors()
        check(not errs, "live: console errors %s" % errs)
        b.screenshot("live")
        d.stop()
    finally:
        evil.kill()
        evil.wait()


def lost_from_start(b):
    d = su.Daemon(scenario=os.path.join(SRC, "tests", "nvml", "scenarios", "lostopen.scn"))
    b.open("http://127.0.0.1:%d/" % d.port)
    b.wait("document.body.dataset.charts === '2'", "lostopen: 2 charts")
    b.wait("[...document.querySelectorAll('.chart')].every(c => Number(c.dataset.points) >= 2)",
           "lostopen: 2 points per chart")
    c0, c1 = wc.cards(b)
    check(c1["state"] == "lost", "lostopen: GPU 1 state %r" % c1["state"])
    check(c1["memory"].startswith("N/A"), "lostopen: GPU 1 memory %r" % c1["memory"])
    check(c0["ink"] > 50, "lostopen: GPU 0 has no line (%d)" % c0["ink"])
    check(c1["ink"] == 0, "lostopen: GPU 1's unknown memory is drawn (%d pixels)" % c1["ink"])
    check(not b.errors(), "lostopen: console errors %s" % b.errors())
    b.screenshot("lostopen")
    d.stop()


def fresh(b):
    """The page opened while the daemon starts: no history yet."""
    d = su.Daemon(scenario=os.path.join(SRC, "tests", "nvml", "scenarios", "two.scn"), wait=False)
    end = time.time() + su.DEADLINE
    while d.port is None and time.time() < end:
        time.sleep(0.01)
    check(d.port is not None, "fresh: daemon did not listen")
    b.open("http://127.0.0.1:%d/" % d.port)
    b.wait("document.body.dataset.charts === '2'", "fresh: charts from the first samples")
    check(not b.errors(), "fresh: console errors %s" % b.errors())
    d.stop()


def token(b):
    d = su.Daemon(scenario=os.path.join(SRC, "tests", "nvml", "scenarios", "two.scn"),
                  args=["--set", "token=" + TOKEN])
    st, _, res = d.call("POST", "/api/v1/reservations", {"mem": "1GiB", "owner": "web-test",
                                                       "note": "<b>bold</b>"}, TOKEN)
    check(st == 201, "token: reserve answered %d %r" % (st, res))
    rid = str(res["reservation"]["id"])
    b.open("http://127.0.0.1:%d/" % d.port)
    sel = "#res button[data-id=%s]" % json.dumps(rid)
    b.wait("document.querySelector(%s) !== null" % json.dumps(sel), "token: reservation row")
    row = b.eval("[...document.querySelector(%s).closest('tr').cells].map(c => c.textContent)"
                 % json.dumps(sel))
    check(row[1] == rid and row[2] == "web-test" and row[4] == wc.bytes_text(GIB)
          and row[5] == "<b>bold</b>", "token: reservation row %r" % row)
    # without the token: refused, and the page says why
    b.click(sel)
    b.wait("document.getElementById('res-msg').textContent.includes('token')",
           "token: the refusal names the token")
    msg = b.eval("document.getElementById('res-msg').textContent")
    check("this endpoint needs" in msg and "[object" not in msg,
          "token: the refusal does not give the daemon's reason: %r" % msg)
    st, _, _ = d.call("GET", "/api/v1/reservations/" + rid)
    check(st == 200, "token: the reservation went without the token (%d)" % st)
    # with it
    b.type("#token-input", TOKEN)
    b.click("#token-set")
    b.click(sel)
    b.wait("document.getElementById('res-msg').textContent.startsWith('Released')",
           "token: released with the token")
    st, _, _ = d.call("GET", "/api/v1/reservations/" + rid)
    check(st == 404, "token: the reservation is still there (%d)" % st)
    b.wait("document.querySelector(%s) === null" % json.dumps(sel), "token: row gone")
    # the only console errors allowed: the 401 the refused Cancel got
    errs = [e for e in b.errors() if "401" not in e]
    check(not errs, "token: console errors %s" % errs)
    check(b.eval("document.body.innerHTML.includes(%s)" % json.dumps(TOKEN)) is False,
          "token: the token is written into the page")
    b.screenshot("token")
    d.stop()


OLLAMA_MODEL = "<img src=x onerror=window.__pwned=3>:7b"
OLLAMA_PS = {"models": [{"name": OLLAMA_MODEL, "model": OLLAMA_MODEL, "size": 6654289920,
                         "digest": "6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa",
                         "details": {"family": "llama", "parameter_size": "8.0B",
                                     "quantization_level": "Q4_K_M"},
                         "expires_at": "2026-12-03T21:40:00Z", "size_vram": 6654289920}]}


def ollama_double():
    """An HTTP server answering Ollama's GET /api/version and /api/ps."""
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = {"/api/version": {"version": "0.5.7"}, "/api/ps": OLLAMA_PS}.get(self.path)
            data = json.dumps(body).encode() if body is not None else b"{}"
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def panes(b):
    two = os.path.join(SRC, "tests", "nvml", "scenarios", "two.scn")
    eight = os.path.join(SRC, "tests", "nvml", "scenarios", "eight.scn")
    ol = ollama_double()
    peer = su.Daemon(scenario=eight)
    d = su.Daemon(scenario=two, args=[
        "--set", "ollama=http://127.0.0.1:%d" % ol.server_address[1],
        "--set", "model_servers_interval_ms=200",
        "--set", "peers=http://127.0.0.1:%d" % peer.port, "--set", "cluster_interval_ms=200"])
    b.open("http://127.0.0.1:%d/" % d.port)
    b.wait("!document.getElementById('models-pane').hidden && "
           "document.querySelector('#models tbody tr') !== null", "panes: model servers shown")
    row = b.eval("[...document.querySelector('#models tbody tr').cells].map(c => c.textContent)")
    check(row[0] == "http://127.0.0.1:%d" % ol.server_address[1] and row[1] == "ollama"
          and row[2] == "up" and row[3] == OLLAMA_MODEL and row[4] == wc.bytes_text(6654289920),
          "panes: model row %r" % row)
    check(b.eval("window.__pwned === undefined && !document.querySelector('#models img')"),
          "panes: the model name's markup ran")
    b.wait("!document.getElementById('cluster-pane').hidden && "
           "document.querySelector('#cluster tbody tr') !== null", "panes: cluster shown")
    nodes = b.eval("[...document.querySelectorAll('#cluster tbody tr')].map("
                   "r => [...r.cells].map(c => c.textContent))")
    _, gpus = su.parse_scenario(eight)
    used = sum(su.num(g, "memory.used") for g in gpus)
    total = sum(su.num(g, "memory.total") for g in gpus)
    check(len(nodes) == 1 and nodes[0][1] == "gpuwatch" and nodes[0][2] == "ok"
          and nodes[0][3] == "8" and nodes[0][4] == wc.bytes_text(used) + " of " +
          wc.bytes_text(total), "panes: cluster rows %r" % nodes)
    check(not b.errors(), "panes: console errors %s" % b.errors())
    b.screenshot("panes")
    d.stop()
    peer.stop()
    ol.shutdown()


def main():
    b = br.Browser()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            live(b, tmp)
        lost_from_start(b)
        fresh(b)
        token(b)
        panes(b)
    finally:
        b.close()
    print("ok")


if __name__ == "__main__":
    main()
