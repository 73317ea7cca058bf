#!/usr/bin/env python3
"""Benchmark of `gpuwatch serve` (issue 5), against the fake NVML with 8 GPUs.

    bench/serve_bench.py [--build DIR] [--lib LIBNVML] [--duration S] [--fill S]

Measures, in one run on this machine:
  1. wrk at 64 connections (2 threads, --latency) on gpuwatch's /metrics and
     /gpu/metrics, and on Debian's prometheus-node-exporter /metrics (default
     collectors) started here on a loopback port: requests/s, p50/p99
     latency, errors; the headline is gpuwatch /metrics req/s over
     node-exporter /metrics req/s. The daemon samples at 1 s meanwhile.
  2. RSS once the history rings are full: a daemon with interval_ms=10 and
     history_seconds=36 fills the default ring size (3600 rows per GPU, the
     size of 1 h at 1 s) in 36 s; VmRSS and gpuwatch_history_memory_bytes.
  3. Sampler CPU: gpuwatch_sampler_cpu_seconds_total (CPU clocks of the two
     sampler threads) over the fill run's rounds gives CPU per round; at 1 s
     that is CPU seconds per hour = per_round * 3600 and % of one core =
     per_round * 100. Also a direct 1 s-interval run of --idle seconds.
  5. Compressed scrapes (issue 12): wrk on /metrics without and with
     `Accept-Encoding: gzip`, next to nginx (Debian package nginx: apt-get
     install nginx) started here serving the same body as a static file, and
     with `gzip_static on` a .gz of it made at gpuwatch's level (6); req/s,
     body bytes and wire bytes (wrk's transfer / requests) per scrape, and the
     ratio gpuwatch / nginx for both, in the same run. --baseline BINARY adds
     an older gpuwatch's identity /metrics (to show it did not get slower).
Targets (issue 5): >= 30,000 req/s and p99 <= 5 ms on /metrics with 2 cores,
>= 10x node-exporter, RSS <= 12 MiB, sampler <= 0.2% of one core.
Targets (issue 12): gzip /metrics >= 0.8x nginx gzip_static; identity /metrics
not slower than before.
Exit 0 when every run worked (targets reported, not enforced), 1 otherwise.
Use a release build for figures you quote (meson setup -Dbuildtype=release).
Caveat: the fake NVML answers in microseconds; a real driver's calls cost more,
so sampler CPU on real hardware is higher (see docs/serve.md).
"""
import argparse
import gzip
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "nvml"))
from gen_scenario import scenario  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_daemon(binary, lib, scn, extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    env["GPUWATCH_NVML_LIBRARY"] = lib
    env["GPUWATCH_FAKE_NVML_SCENARIO"] = scn
    p = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--sources", "nvml,host",
                          "--log-level", "warning", "--set", "log_level=notice"] + extra,
                         stderr=subprocess.PIPE, text=True, env=env)
    end = time.time() + 20
    while time.time() < end:
        line = p.stderr.readline()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            for _ in range(200):
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=2) as r:
                        if r.status == 200:
                            return p, port
                except OSError:
                    time.sleep(0.05)
    p.kill()
    sys.exit("daemon did not start")


def stop(p):
    p.terminate()
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        for line in r.read().decode().split("\n"):
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return None


def to_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    x = float(m.group(1))
    return x / 1000 if m.group(2) == "us" else x * 1000 if m.group(2) == "s" else x


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def to_bytes(v):
    m = re.match(r"([\d.]+)([KMG]?B)", v)
    return float(m.group(1)) * {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[m.group(2)]


def wrk(url, duration, pid=None, headers=()):
    c0 = cpu_ticks(pid) if pid else 0
    hdr = [a for h in headers for a in ("-H", h)]
    out = subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % duration, "--latency"] + hdr + [url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    c1 = cpu_ticks(pid) if pid else 0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    hz = os.sysconf("SC_CLK_TCK")
    us = (c1 - c0) / hz * 1e6 / max(total, 1) if pid else 0.0
    xfer = re.search(r"Transfer/sec:\s+(\S+)", out)
    wire = to_bytes(xfer.group(1)) / rps if xfer and rps else 0.0
    return {"rps": rps, "p50": to_ms(lat["50"]), "p99": to_ms(lat["99"]), "us_per_req": us,
            "non2xx": int(errs.group(1)) if errs else 0, "socket": sock.group(1) if sock else "none",
            "wire_bytes": wire}


def body_of(port, path, headers=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read(), r.headers.get("Content-Encoding")


NGINX_CONF = """daemon off;
worker_processes %(workers)d;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(tmp)s/body;
    proxy_temp_path %(tmp)s/proxy;
    fastcgi_temp_path %(tmp)s/fastcgi;
    uwsgi_temp_path %(tmp)s/uwsgi;
    scgi_temp_path %(tmp)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        root %(root)s;
        location = /metrics {
            default_type "text/plain; version=0.0.4; charset=utf-8";
            gzip_static on;
        }
    }
}
"""


def gzip_scrapes(binary, lib, scn, duration, tmp, workers, baseline=None, rounds=3):
    """Section 5: gpuwatch /metrics identity and gzip next to nginx serving
    the same body (static file; gzip_static with a level-6 .gz). Returns ok."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        print("  gzip scrapes: nginx not installed (apt-get install nginx): section skipped")
        return False
    ok = True
    d, port = start_daemon(binary, lib, scn, ["--interval-ms", "1000"])
    plain, _ = body_of(port, "/metrics")
    gz, enc = body_of(port, "/metrics", {"Accept-Encoding": "gzip"})
    ok = ok and enc == "gzip" and gzip.decompress(gz) == plain
    root = os.path.join(tmp, "www")
    os.makedirs(root)
    with open(os.path.join(root, "metrics"), "wb") as f:
        f.write(plain)
    with open(os.path.join(root, "metrics.gz"), "wb") as f:
        f.write(gzip.compress(plain, compresslevel=6))
    for path in (tmp, root, os.path.join(root, "metrics"), os.path.join(root, "metrics.gz")):
        os.chmod(path, 0o755)  # nginx's workers run as nobody when started as root
    ng_port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"tmp": tmp, "root": root, "port": ng_port, "workers": workers})
    ng = subprocess.Popen([nginx, "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            ng_gz, ng_enc = body_of(ng_port, "/metrics", {"Accept-Encoding": "gzip"})
            break
        except OSError:
            time.sleep(0.05)
    else:
        print("  gzip scrapes: nginx did not start (%s)" % conf)
        stop(d)
        ng.kill()
        return False
    ok = ok and ng_enc == "gzip" and gzip.decompress(ng_gz) == plain
    gz_hdr = ["Accept-Encoding: gzip"]
    runs = [("gpuwatch identity", port, d.pid, []), ("nginx static", ng_port, None, []),
            ("gpuwatch gzip", port, d.pid, gz_hdr), ("nginx gzip_static", ng_port, None, gz_hdr)]
    res = {}
    for name, p, pid, hdr in runs:
        r = wrk("http://127.0.0.1:%d/metrics" % p, duration, pid, hdr)
        res[name] = r
        ok = ok and r["non2xx"] == 0
        print("  %-20s %10.0f req/s   p50 %7.2f ms   p99 %7.2f ms   %7.0f wire bytes/req   "
              "non-2xx %d   socket errors: %s" %
              (name, r["rps"], r["p50"], r["p99"], r["wire_bytes"], r["non2xx"], r["socket"]))
    ng.terminate()
    ng.wait(10)
    if baseline:
        # Alternating runs, medians: a shared machine's load drifts over a
        # minute, and both binaries should see the same drift.
        b, bport = start_daemon(baseline, lib, scn, ["--interval-ms", "1000"])
        old_size = len(body_of(bport, "/metrics")[0])
        cur, old = [], []
        for _ in range(rounds):
            cur.append(wrk("http://127.0.0.1:%d/metrics" % port, duration, d.pid))
            old.append(wrk("http://127.0.0.1:%d/metrics" % bport, duration, b.pid))
        stop(b)
        med = lambda v, k: sorted(x[k] for x in v)[len(v) // 2]  # noqa: E731
        res["baseline identity"] = {"rps": med(old, "rps")}
        res["alternating identity"] = {"rps": med(cur, "rps")}
        for name, v in (("this build", cur), ("baseline", old)):
            print("  identity, %d alternating runs, %-10s median %6.0f req/s %s, server CPU "
                  "median %.1f us/req %s" % (rounds, name, med(v, "rps"), [round(x["rps"]) for x in v],
                                              med(v, "us_per_req"),
                                              [round(x["us_per_req"], 1) for x in v]))
        # The pages differ (new series since the baseline): bytes/s is the
        # fairer comparison of the serving path itself.
        print("  (baseline: %s) page %d bytes vs this build's %d: identity bytes/s this build / "
              "baseline %.2fx" % (baseline, old_size, len(plain),
                                  med(cur, "rps") * len(plain) / max(med(old, "rps") * old_size, 1e-9)))
    stop(d)
    idr = res["gpuwatch identity"]["rps"] / max(res["nginx static"]["rps"], 1e-9)
    gzr = res["gpuwatch gzip"]["rps"] / max(res["nginx gzip_static"]["rps"], 1e-9)
    print("  /metrics body: %d bytes identity, %d gzip (gpuwatch, level 6), %d gzip (nginx .gz)" %
          (len(plain), len(gz), len(ng_gz)))
    print("  gpuwatch / nginx: identity %.2fx, gzip %.2fx (target >= 0.8x)%s" %
          (idr, gzr, "" if not baseline else "; identity vs baseline %.2fx (medians)" %
           (res["alternating identity"]["rps"] / max(res["baseline identity"]["rps"], 1e-9))))
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--lib")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--fill", type=int, default=36)
    ap.add_argument("--idle", type=int, default=30)
    ap.add_argument("--only-gzip", action="store_true", help="run section 5 only")
    ap.add_argument("--baseline", help="an older gpuwatch binary: its identity /metrics too")
    ap.add_argument("--nginx-workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs against --baseline")
    a = ap.parse_args()
    binary = os.path.join(a.build, "src", "cli", "gpuwatch")
    lib = a.lib or os.path.join(a.build, "tests", "nvml", "lib-full", "libnvidia-ml.so.1")
    for tool in ("wrk", "prometheus-node-exporter"):
        if not shutil.which(tool):
            sys.exit("%s not installed (scripts/deps.sh test)" % tool)
    tmp = tempfile.mkdtemp()
    scn = os.path.join(tmp, "eight.scn")
    with open(scn, "w") as f:
        f.write(scenario(8, 40))
    ok = True
    print("gpuwatch serve benchmark: 8 fake GPUs, 40 processes, %d CPUs, load average %.2f, %s" %
          (os.cpu_count(), os.getloadavg()[0], binary))
    if a.only_gzip:
        ok = gzip_scrapes(binary, lib, scn, a.duration, tmp, a.nginx_workers, a.baseline, a.rounds)
        shutil.rmtree(tmp)
        return 0 if ok else 1

    # 1. throughput and latency at 64 connections, node-exporter alongside.
    d, port = start_daemon(binary, lib, scn, ["--interval-ms", "1000"])
    ne_port = free_port()
    # --web.max-requests=0: node-exporter's default (40 concurrent) would
    # answer 503 to part of the 64 connections; measure it unthrottled.
    ne = subprocess.Popen(["prometheus-node-exporter", "--web.listen-address=127.0.0.1:%d" % ne_port,
                           "--web.max-requests=0"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    res = {}
    for name, url, pid in (("gpuwatch /metrics", "http://127.0.0.1:%d/metrics" % port, d.pid),
                           ("gpuwatch /gpu/metrics", "http://127.0.0.1:%d/gpu/metrics" % port, d.pid),
                           ("node-exporter /metrics", "http://127.0.0.1:%d/metrics" % ne_port, ne.pid)):
        r = wrk(url, a.duration, pid)
        res[name] = r
        ok = ok and (r["non2xx"] == 0 or name.startswith("node"))
        print("  %-24s %10.0f req/s   p50 %7.2f ms   p99 %7.2f ms   server CPU %7.1f us/req   "
              "non-2xx %d   socket errors: %s" %
              (name, r["rps"], r["p50"], r["p99"], r["us_per_req"], r["non2xx"], r["socket"]))
    ne.terminate()
    ne.wait(10)
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port) as r:
        size = len(r.read())
    ratio = res["gpuwatch /metrics"]["rps"] / max(res["node-exporter /metrics"]["rps"], 1e-9)
    cratio = res["node-exporter /metrics"]["us_per_req"] / max(res["gpuwatch /metrics"]["us_per_req"], 1e-9)
    print("  /metrics body %d bytes; gpuwatch /metrics vs node-exporter /metrics: %.1fx req/s, "
          "%.1fx less server CPU per request" % (size, ratio, cratio))
    print("  RSS after the load: %d KiB" % rss_kib(d.pid))
    # idle at 1 s: direct sampler CPU
    c0 = metric(port, "gpuwatch_sampler_cpu_seconds_total")
    p0 = metric(port, "process_cpu_seconds_total")
    time.sleep(a.idle)
    c1 = metric(port, "gpuwatch_sampler_cpu_seconds_total")
    p1 = metric(port, "process_cpu_seconds_total")
    print("  idle %d s at 1 s: sampler CPU %.4f s (%.3f%% of a core, %.1f s/hour); whole process %.4f s" %
          (a.idle, c1 - c0, (c1 - c0) / a.idle * 100, (c1 - c0) / a.idle * 3600, p1 - p0))
    stop(d)

    # 2./3. rings full (3600 rows per GPU) and CPU per round.
    d, port = start_daemon(binary, lib, scn, ["--interval-ms", "10", "--set", "history_seconds=%d" % a.fill])
    r0 = metric(port, "gpuwatch_sampling_rounds_total")
    c0 = metric(port, "gpuwatch_sampler_cpu_seconds_total")
    time.sleep(a.fill + 2)
    r1 = metric(port, "gpuwatch_sampling_rounds_total")
    c1 = metric(port, "gpuwatch_sampler_cpu_seconds_total")
    hist = metric(port, "gpuwatch_history_memory_bytes")
    rss = rss_kib(d.pid)
    per_round = (c1 - c0) / max(r1 - r0, 1)
    print("  rings full (%d rows/GPU): RSS %d KiB (%.1f MiB), history %.2f MiB" %
          (a.fill * 100, rss, rss / 1024.0, hist / 1048576.0))
    print("  sampler CPU per round (8 GPUs, %d rounds): %.1f us -> %.2f s/hour at 1 s = %.4f%% of a core" %
          (r1 - r0, per_round * 1e6, per_round * 3600, per_round * 100))
    stop(d)

    # 4. latency while a driver call hangs: GPU 0's power read blocks for an
    # hour from the 4th round on; the daemon serves the stale snapshot.
    hung = os.path.join(tmp, "hung.scn")
    with open(hung, "w") as f:
        f.write("hang nvmlDeviceGetPowerUsage gpu=0 after=3\n" + scenario(8, 40))
    d, port = start_daemon(binary, lib, hung, ["--interval-ms", "1000", "--set", "deadline_ms=1500"])
    end = time.time() + 30
    while time.time() < end and not metric(port, "gpuwatch_sampling_stalled"):
        time.sleep(0.2)
    stalled = metric(port, "gpuwatch_sampling_stalled") == 1
    ok = ok and stalled
    for path in ("/metrics", "/health"):
        r = wrk("http://127.0.0.1:%d%s" % (port, path), a.duration)
        ok = ok and r["non2xx"] == 0
        print("  while hung %-13s %10.0f req/s   p50 %7.2f ms   p99 %7.2f ms   non-2xx %d (stalled: %s)" %
              (path, r["rps"], r["p50"], r["p99"], r["non2xx"], stalled))
    print("  stale age after the run: %.1f s" % metric(port, "gpuwatch_sample_age_seconds"))
    stop(d)

    # 5. compressed scrapes next to nginx.
    ok = gzip_scrapes(binary, lib, scn, a.duration, tmp, a.nginx_workers, a.baseline, a.rounds) and ok
    shutil.rmtree(tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
