#!/usr/bin/env python3
"""Cluster view benchmark (issue 14).

Part 1 -- direct polling: 16 real gpuwatch daemons on loopback (2-GPU,
8-GPU and CPU-only scenarios), one of them stopped with SIGSTOP (the kernel
still accepts its connections; it never answers). Runs `gpuwatch report
--cluster --json` ROUNDS times and prints, per run and as medians:
  - poll: the command's own poll time (its JSON "poll_seconds": from the
    first request to the last answer or cut), against the target
    2 x (slowest healthy peer's answer, the JSON's answer_seconds) + 5 ms;
  - wall: the whole command as a user waits for it (posix_spawn to exit:
    process start, the poll, printing) against the same target, and the
    same command over the 15 healthy peers only (what the hung peer adds is
    the difference);
  - --wait --peer-timeout 500: the hung peer's deadline is waited for once,
    never twice.

Part 2 -- Prometheus: a real Prometheus (Debian's package) scrapes 1,000
simulated nodes (1,000 scrape targets on one loopback fixture exporter, each
with its own instance label and gpuwatch's series for 0-8 GPUs); then
`gpuwatch report --cluster --prometheus URL --json` ROUNDS times: whole
command wall, split into Prometheus's own answer time (the JSON's
prometheus_seconds: its slowest query) and the rest; then the same with
Prometheus's answers replayed from a cache in front of it (its query
evaluation, which scales with the server's cores, left out): gpuwatch's
own time over 1,000 nodes' series, against the 100 ms target.

    python3 bench/cluster_bench.py --build BUILD [--rounds 20] [--nodes 1000]
"""
import argparse
import http.server
import json
import os
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "serve"))


def median(v):
    return statistics.median(v) if v else float("nan")


def run_json(bin_, args):
    """The command's wall time as a shell sees it: posix_spawn to exit, its
    output going to files (no pipe for this process to drain meanwhile)."""
    argv = [bin_, "report", "--cluster", "--json"] + args
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        acts = [(os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        t = time.perf_counter()
        pid = os.posix_spawn(bin_, argv, os.environ, file_actions=acts)
        _, status = os.waitpid(pid, 0)
        wall = time.perf_counter() - t
        rc = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if rc not in (0, 3):
        sys.exit("report --cluster failed (%d): %s" % (rc, stderr))
    return wall, json.loads(stdout)


def part_direct(bin_, build, rounds):
    os.environ.setdefault("GPUWATCH_BIN", bin_)
    os.environ.setdefault("GPUWATCH_FAKE_NVML",
                          os.path.join(build, "tests/nvml/lib-full/libnvidia-ml.so.1"))
    import serve_util as su
    su.BIN = bin_
    su.FAKE_NVML = os.environ["GPUWATCH_FAKE_NVML"]
    scn = os.path.join(ROOT, "tests", "nvml", "scenarios")
    daemons = []
    for i in range(16):
        kind = i % 3
        if kind == 2:
            daemons.append(su.Daemon(args=["--sources", "host"], nvml=False))
        else:
            daemons.append(su.Daemon(scenario=os.path.join(scn, "two.scn" if kind == 0 else "eight.scn")))
    hung = daemons[7]
    hung.proc.send_signal(signal.SIGSTOP)
    urls = ["http://127.0.0.1:%d" % d.port for d in daemons]
    healthy = [u for d, u in zip(daemons, urls) if d is not hung]
    print("Part 1: 16 loopback daemons (2-GPU, 8-GPU, CPU-only), one SIGSTOPped; %d rounds" % rounds)
    polls, targets, walls, walls_ok, slowest = [], [], [], [], []
    try:
        for _ in range(3):  # warm the page cache and the daemons
            run_json(bin_, ["--peers", ",".join(urls)])
        for _ in range(rounds):
            wall, doc = run_json(bin_, ["--peers", ",".join(urls)])
            answers = [n["answer_seconds"] for n in doc["nodes"] if n["up"]]
            assert len(answers) == 15, doc["totals"]
            s = max(answers)
            slowest.append(s)
            polls.append(doc["poll_seconds"])
            targets.append(2 * s + 0.005)
            walls.append(wall)
            wall_ok, _ = run_json(bin_, ["--peers", ",".join(healthy)])
            walls_ok.append(wall_ok)
        met = sum(p <= t for p, t in zip(polls, targets))
        print("  slowest healthy answer       median %.2f ms (max %.2f ms)" %
              (median(slowest) * 1e3, max(slowest) * 1e3))
        print("  poll with the hung peer      median %.2f ms (max %.2f ms); target 2 x slowest "
              "+ 5 ms = median %.2f ms; met in %d/%d runs" %
              (median(polls) * 1e3, max(polls) * 1e3, median(targets) * 1e3, met, rounds))
        print("  whole command, hung peer     median %.2f ms (max %.2f ms)" %
              (median(walls) * 1e3, max(walls) * 1e3))
        print("  whole command, 15 healthy    median %.2f ms: the hung peer adds %.2f ms" %
              (median(walls_ok) * 1e3, (median(walls) - median(walls_ok)) * 1e3))
        wt = [w / t for w, t in zip(walls, targets)]
        print("  whole command / target       median %.2fx (max %.2fx); met in %d/%d runs" %
              (median(wt), max(wt), sum(x <= 1 for x in wt), rounds))
        wall, doc = run_json(bin_, ["--peers", ",".join(urls), "--wait", "--peer-timeout", "500"])
        print("  --wait --peer-timeout 500    whole command %.0f ms, poll %.0f ms (the hung "
              "peer's deadline once, never twice)" % (wall * 1e3, doc["poll_seconds"] * 1e3))
    finally:
        hung.proc.send_signal(signal.SIGCONT)
        for d in daemons:
            d.stop()


GPU_MIX = [8, 4, 4, 2, 1, 0, 8, 4]


def exposition(i):
    """gpuwatch's series of simulated node i (what its /metrics says)."""
    out = ['gpuwatch_build_info{version="0.1.0"} 1']
    n = GPU_MIX[i % len(GPU_MIX)]
    for g in range(n):
        lab = 'gpu="%d",uuid="GPU-%08d-%04d"' % (g, i, g)
        total = 80 * 2 ** 30
        used = ((i * 7 + g * 13) % 70) * 2 ** 30
        out += ['gpuwatch_gpu_info{%s,name="NVIDIA A100-SXM4-80GB",vendor="nvidia",source="nvml",'
                'pci_bus_id="00000000:%02x:00.0",driver_version="550.54.15",compute_capability="8.0"} 1'
                % (lab, g + 1),
                'gpuwatch_gpu_memory_total_bytes{%s} %d' % (lab, total),
                'gpuwatch_gpu_memory_used_bytes{%s} %d' % (lab, used),
                'gpuwatch_gpu_memory_free_bytes{%s} %d' % (lab, total - used),
                'gpuwatch_gpu_utilization_ratio{%s} 0.%02d' % (lab, (i + g) % 100),
                'gpuwatch_gpu_temperature_celsius{%s} %d' % (lab, 40 + g),
                'gpuwatch_gpu_slowdown_temperature_celsius{%s} 87' % lab,
                'gpuwatch_gpu_up{%s} %d' % (lab, not (i % 50 == 7 and g == 0))]
        if i % 50 == 7 and g == 0:  # one node in 50 has lost its first GPU
            out.append('gpuwatch_gpu_placement_blocked{%s,reason="lost"} 1' % lab)
        if i % 10 == 3:  # reservations still pending on one node in 10
            out.append('gpuwatch_gpu_placement_pending_bytes{%s} %d' % (lab, 2 ** 30))
        for st in ("ok", "lost", "error", "stale"):
            lost = i % 50 == 7 and g == 0
            out.append('gpuwatch_gpu_state{%s,state="%s"} %d' % (lab, st, st == ("lost" if lost else "ok")))
    out += ["gpuwatch_host_memory_total_bytes %d" % (512 * 2 ** 30),
            "gpuwatch_host_memory_available_bytes %d" % (400 * 2 ** 30)]
    if n and i % 4 == 0:
        out += ['gpuwatch_model_size_bytes{kind="ollama",url="http://127.0.0.1:11434",'
                'model="llama3.1:8b"} 6654289920',
                'gpuwatch_model_vram_bytes{kind="ollama",url="http://127.0.0.1:11434",'
                'model="llama3.1:8b"} 6654289920']
    return ("\n".join(out) + "\n").encode()


class BodyServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """A loopback HTTP server answering each GET with body_of(path), as
    content_type; queue: its listen backlog (the default 5 drops SYNs of
    requests that come at once, which then wait 1 s to be retried)."""
    daemon_threads = True

    def __init__(self, body_of, content_type, queue):
        self.request_queue_size = queue

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                b = body_of(self.path)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)
        super().__init__(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Exporter(BodyServer):
    """Node i's series at /node/i; 1,000 targets are scraped in bursts."""

    def __init__(self, n):
        self.bodies = [exposition(i) for i in range(n)]
        super().__init__(lambda path: self.bodies[int(path.rsplit("/", 1)[1])],
                         "text/plain; version=0.0.4", 1024)


class CachingProxy(BodyServer):
    """GET passed to upstream once per URL, then answered from memory; 13
    queries come at once."""

    def __init__(self, upstream):
        import urllib.request
        cache, lock = {}, threading.Lock()

        def body_of(path):
            with lock:
                b = cache.get(path)
            if b is None:
                with urllib.request.urlopen(upstream + path, timeout=60) as r:
                    b = r.read()
                with lock:
                    cache[path] = b
            return b
        super().__init__(body_of, "application/json", 128)


def part_prometheus(bin_, rounds, n_nodes):
    import serve_util as su
    exp = Exporter(n_nodes)
    port = exp.server_address[1]
    cfg = ["  - job_name: gpuwatch\n    scrape_interval: 15s\n    scrape_timeout: 10s\n"
           "    static_configs:\n"]
    for i in range(n_nodes):
        cfg.append("      - targets: ['127.0.0.1:%d']\n        labels: {__metrics_path__: '/node/%d', "
                   "instance: 'node-%04d:19400'}\n" % (port, i, i))
    series = sum(b.count(b"\n") for b in exp.bodies)
    gpus = sum(GPU_MIX[i % len(GPU_MIX)] for i in range(n_nodes))
    print("\nPart 2: a real Prometheus scraping %d simulated nodes (%d GPUs, %d series)" %
          (n_nodes, gpus, series))
    with su.Prometheus("".join(cfg)) as prom:
        su.DEADLINE = 600
        t0 = time.time()
        prom.wait_true(['count(up{job="gpuwatch"} == 1) == bool %d' % n_nodes,
                        'count(gpuwatch_gpu_memory_total_bytes{job="gpuwatch"}) == bool %d' % gpus])
        print("  every target scraped after %.0f s" % (time.time() - t0))
        walls, proms = [], []
        for _ in range(3):
            run_json(bin_, ["--prometheus", prom.url])
        for _ in range(rounds):
            wall, doc = run_json(bin_, ["--prometheus", prom.url])
            assert doc["totals"]["nodes"] == n_nodes and doc["totals"]["gpus"] == gpus, doc["totals"]
            walls.append(wall)
            proms.append(doc["prometheus_seconds"])
        # The same answers again from a cache in front of Prometheus: what
        # gpuwatch itself takes over 1,000 nodes' series, Prometheus's own
        # query evaluation (which depends on the server's cores) left out.
        cache = CachingProxy(prom.url)
        run_json(bin_, ["--prometheus", cache.url])  # fills the cache
        cwalls = []
        for _ in range(rounds):
            wall, doc = run_json(bin_, ["--prometheus", cache.url])
            assert doc["totals"]["nodes"] == n_nodes and doc["totals"]["gpus"] == gpus, doc["totals"]
            cwalls.append(wall)
        cache.shutdown()
        print("  whole command   median %.1f ms (min %.1f, max %.1f); target <= 100 ms: %s" %
              (median(walls) * 1e3, min(walls) * 1e3, max(walls) * 1e3,
               "met" if median(walls) <= 0.1 else "NOT met"))
        print("  of which: Prometheus answering (its slowest query)  median %.1f ms; "
              "gpuwatch's own  median %.1f ms" %
              (median(proms) * 1e3, median([w - p for w, p in zip(walls, proms)]) * 1e3))
        print("  the same answers from a cache (gpuwatch alone: start, the queries, decode, "
              "nodes, JSON out)  median %.1f ms (min %.1f, max %.1f); target <= 100 ms: %s" %
              (median(cwalls) * 1e3, min(cwalls) * 1e3, max(cwalls) * 1e3,
               "met" if median(cwalls) <= 0.1 else "NOT met"))
    exp.shutdown()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--only", choices=["direct", "prometheus"])
    a = ap.parse_args()
    bin_ = os.path.join(os.path.abspath(a.build), "src", "cli", "gpuwatch")
    if a.only != "prometheus":
        part_direct(bin_, os.path.abspath(a.build), a.rounds)
    if a.only != "direct":
        part_prometheus(bin_, a.rounds, a.nodes)


if __name__ == "__main__":
    main()
