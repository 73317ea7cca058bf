#!/usr/bin/env python3
"""Benchmark of `gpuwatch pool` (issue: the model-server pool), fake NVML GPUs.

    bench/pool_bench.py [--build DIR] [--duration S] [--rounds N] [--loads N]
                        [--start-ms MS] [--connections N] [--keep]

Measures, in one run on this machine (nothing is built: it runs DIR's
src/cli/gpuwatch, bench/pool_decide and tests/nvml/lib-full/libnvidia-ml.so.1;
`meson compile -C DIR` first):

  1. Proxy overhead. The backend is nginx (Debian package nginx) answering
     like llama-server (GET /health -> {"status":"ok"}; POST
     /v1/chat/completions -> a fixed ~290-byte chat.completion JSON), started
     AS the pool's child through its command template (a small sh wrapper
     that writes the nginx conf for {port} and execs nginx in the foreground,
     one process). wrk (Debian package wrk) POSTs
     {"model":"m1","messages":[{"role":"user","content":"hi"}]} through a Lua
     script, -t2 -cN (default 16) --latency, against: the backend direct (its
     port from GET /api/v1/pool), a second nginx doing proxy_pass to it with a
     tuned upstream (keepalive 32, proxy_http_version 1.1, Connection ""),
     the same nginx with the default proxy_pass (HTTP/1.0, a new upstream
     connection per request), and the pool (model parallel = 64, so its slot
     limit does not throttle). Rounds alternate the targets; medians are
     reported. Then the same targets at one connection (-t1 -c1): the
     latency one request adds when nothing queues. Added latency = p50 of
     the target - p50 of direct. Server CPU per request from /proc (process
     group ticks over the run) for the pool and the proxying nginx.
  2. Cold load. A model whose child is a bash wrapper (it records
     $EPOCHREALTIME at its first line, then execs a tiny Python server that
     answers /health 503 "Loading model" until --start-ms after its bind,
     then 200, and records when it first answered 200, when it read the
     chat request and when it had sent its answer). The client records when
     it sent the request and when the first byte of the answer came. Per
     load: spawn = exec - request sent; ready->first byte = first byte -
     first /health 200 the child sent (and from the moment it became ready,
     which adds the pool's /health poll interval); the pool's own cost =
     total - the server's own start (exec -> ready) - the child's time on
     the request. --loads cold loads (after one uncounted warm-up), each
     after POST /models/unload; median and max. The wrapper's own start
     (fork + exec + bash to its first line, timed from Python) is printed:
     spawn figures include it.
  3. Placement decision: bench/pool_decide (see its header) times
     gw_pool_decide in process on 8 GPUs of 80 GiB, with no eviction and
     with 2 of 6 idle candidates evicted, next to gw_place alone.
Targets (issue: gpuwatch pool): pool >= 0.8x nginx proxy_pass (tuned
upstream) requests/s and <= 0.2 ms added p50; a cold load costs <= 5 ms
beyond the server's own start (spawn + ready->first byte); a placement
decision <= 10 us. Targets are reported, not enforced.
Exit 0 when every run worked, 1 otherwise; a section whose tools are
missing (nginx, wrk) prints SKIP and does not fail the run.
Use a release build (build-bench) for figures you quote. On a 2-core machine
wrk, the proxy and the backend share the cores: compare the ratios, which
see the same contention, rather than the absolute figures.
"""
import argparse
import atexit
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_NAME = "m1"
COLD_NAME = "m2"
CHAT_BODY = ('{"id":"chatcmpl-5c1b0e7a9d2f","object":"chat.completion","created":1733300000,'
             '"model":"m1","choices":[{"index":0,"message":{"role":"assistant","content":'
             '"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":'
             '{"completion_tokens":9,"prompt_tokens":9,"total_tokens":18}}')
REQUEST_BODY = '{"model":"m1","messages":[{"role":"user","content":"hi"}]}'

# --------------------------------------------------------------- processes

STARTED = []        # Popen objects, each the leader of its own process group
TMP = {"dir": None, "keep": False}


def spawn(argv, **kw):
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    STARTED.append(p)
    return p


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except OSError:
        return False


def stop_group(p, grace=15.0):
    """SIGTERM to p's process group, SIGKILL after grace; reaps p."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    end = time.time() + 2
    while _group_alive(p.pid) and time.time() < end:
        time.sleep(0.05)
    if _group_alive(p.pid):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass
    if p in STARTED:
        STARTED.remove(p)


def _ours(pid, tmp):
    """Whether pid is still a process started under our temp folder."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return tmp.encode() in f.read()
    except OSError:
        return False


def cleanup():
    for p in list(reversed(STARTED)):
        stop_group(p)
    tmp = TMP["dir"]
    if not tmp:
        return
    # The pool's children run in their own sessions (the pool stops them on
    # SIGTERM and they die with it); any left over wrote its pid here.
    piddir = os.path.join(tmp, "pids")
    if os.path.isdir(piddir):
        for name in os.listdir(piddir):
            try:
                with open(os.path.join(piddir, name)) as f:
                    pid = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if _ours(pid, tmp):
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(pid, sig)
                    except OSError:
                        pass
                    time.sleep(0.3)
                    if not _ours(pid, tmp):
                        break
                print("note: a child the pool left running (pid %d) was stopped" % pid)
    if not TMP["keep"]:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("kept %s" % tmp)
    TMP["dir"] = None


def _on_signal(sig, frame):
    raise SystemExit(128 + sig)


# ------------------------------------------------------------------ helpers

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def find_nginx():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def http_req(port, method, path, body=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body,
                  headers={"Content-Type": "application/json"} if body is not None else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_http(port, method, path, body=None, deadline=30.0, proc=None):
    end = time.time() + deadline
    last = None
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            return None, "exited %d" % proc.returncode
        try:
            st, raw = http_req(port, method, path, body, timeout=5)
            if st == 200:
                return st, raw
            last = "HTTP %d %r" % (st, raw[:200])
        except OSError as e:
            last = str(e)
        time.sleep(0.05)
    return None, last


def to_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    x = float(m.group(1))
    return {"us": x / 1000, "ms": x, "s": x * 1000, "m": x * 60000}[m.group(2)]


def group_ticks(pgid):
    """utime + stime of every process in process group pgid (clock ticks)."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5: pgrp
            total += int(fields[11]) + int(fields[12])
    return total


def wrk(url, duration, lua, threads, conns, pgid=None):
    t0 = group_ticks(pgid) if pgid else 0
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--latency",
                          "-s", lua, url], capture_output=True, text=True,
                         timeout=duration + 60)
    t1 = group_ticks(pgid) if pgid else 0
    txt = out.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", txt)
    if out.returncode != 0 or not m:
        raise RuntimeError("wrk %s failed (%d):\n%s%s" % (url, out.returncode, txt, out.stderr))
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", txt, re.M))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", txt)
    sock = re.search(r"Socket errors: (.*)", txt)
    total = int(re.search(r"(\d+) requests in", txt).group(1))
    hz = os.sysconf("SC_CLK_TCK")
    return {"rps": float(m.group(1)), "p50": to_ms(lat["50"]), "p99": to_ms(lat["99"]),
            "requests": total, "non2xx": int(errs.group(1)) if errs else 0,
            "socket": sock.group(1).strip() if sock else "",
            "cpu_us": (t1 - t0) / hz * 1e6 / max(total, 1) if pgid else None}


def median(v):
    return statistics.median(v) if v else float("nan")


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def make_model(path, seed):
    out = subprocess.run([sys.executable, os.path.join(TOP, "tests", "pool", "inference.py"), path,
                          json.dumps({"seed": seed})], capture_output=True, text=True, timeout=120)
    if out.returncode != 0 or not os.path.exists(path):
        raise RuntimeError("writing %s failed: %s" % (path, out.stderr))
    return path


class Pool:
    """`gpuwatch pool` on a free loopback port, its stderr in a log file."""

    def __init__(self, binary, env, tmp, tag, conf_text):
        self.port = free_port()
        self.conf = write(os.path.join(tmp, "pool-%s.conf" % tag), conf_text)
        self.log_path = os.path.join(tmp, "pool-%s.log" % tag)
        self.log = open(self.log_path, "w")
        self.proc = spawn([binary, "pool", "-c", self.conf, "--listen", "127.0.0.1:%d" % self.port],
                          stdout=self.log, stderr=subprocess.STDOUT, env=env)
        end = time.time() + 60
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("pool exited %d:\n%s" % (self.proc.returncode, self.text()))
            if "serving" in self.text():
                return
            time.sleep(0.02)
        raise RuntimeError("pool did not start:\n" + self.text())

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def json(self, method, path, body=None):
        st, raw = http_req(self.port, method, path, body)
        return st, json.loads(raw) if raw else None

    def model(self, name):
        for m in self.json("GET", "/api/v1/pool")[1]["models"]:
            if m["name"] == name:
                return m
        return None

    def stop(self):
        stop_group(self.proc, grace=30)
        self.log.close()
        return self.proc.returncode


def pool_env(lib, scn):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    env["GPUWATCH_NVML_LIBRARY"] = lib
    env["GPUWATCH_FAKE_NVML_SCENARIO"] = scn
    env["LC_ALL"] = "C"  # bash's $EPOCHREALTIME with a '.'
    return env


# --------------------------------------------------- section 1: the proxy

BACKEND_CONF = """daemon off;
master_process off;
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path @DIR@/tmp/body;
    proxy_temp_path @DIR@/tmp/proxy;
    fastcgi_temp_path @DIR@/tmp/fastcgi;
    uwsgi_temp_path @DIR@/tmp/uwsgi;
    scgi_temp_path @DIR@/tmp/scgi;
    server {
        listen 127.0.0.1:@PORT@ reuseport;
        location = /health { default_type application/json; return 200 '{"status":"ok"}'; }
        location = /v1/chat/completions { default_type application/json; return 200 '%s'; }
        location / { return 404; }
    }
}
""" % CHAT_BODY

BACKEND_SH = """#!/bin/sh
# backend.sh BENCH_TMP PORT: nginx answering like llama-server on PORT, in
# the foreground (the pool's child; it stops it with SIGTERM).
d="$1/backend-$2"
mkdir -p "$d/tmp" || exit 1
echo $$ > "$1/pids/backend-$2"
sed -e "s|@PORT@|$2|g" -e "s|@DIR@|$d|g" "$1/backend.conf.in" > "$d/nginx.conf" || exit 1
exec %s -e "$d/error.log" -p "$d/" -c "$d/nginx.conf"
"""

PROXY_CONF = """daemon off;
worker_processes %(workers)d;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path %(dir)s/tmp/body;
    proxy_temp_path %(dir)s/tmp/proxy;
    fastcgi_temp_path %(dir)s/tmp/fastcgi;
    uwsgi_temp_path %(dir)s/tmp/uwsgi;
    scgi_temp_path %(dir)s/tmp/scgi;
    upstream backend {
        server 127.0.0.1:%(backend)d;
        keepalive 32;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:%(tuned)d;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    server {
        listen 127.0.0.1:%(plain)d;
        location / { proxy_pass http://127.0.0.1:%(backend)d; }
    }
}
"""

LUA = """wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
""" % REQUEST_BODY


def proxy_section(a, binary, lib, scn, tmp, results):
    nginx = find_nginx()
    missing = [n for n, ok in (("nginx", nginx), ("wrk", shutil.which("wrk"))) if not ok]
    if missing:
        print("SKIP 1. proxy overhead: %s not installed (apt-get install nginx wrk; "
              "scripts/deps.sh)" % " and ".join(missing))
        return True
    write(os.path.join(tmp, "backend.conf.in"), BACKEND_CONF)
    backend_sh = write(os.path.join(tmp, "backend.sh"), BACKEND_SH % nginx, 0o755)
    lua = write(os.path.join(tmp, "post.lua"), LUA)
    model = make_model(os.path.join(tmp, "m1.gguf"), 1)
    conf = ("command = /bin/sh %s %s {port}\nledger = %s\nidle_ttl_s = 0\n\n"
            "[%s]\nmodel = %s\nparallel = %d\nctx = 4096\n" %
            (backend_sh, tmp, os.path.join(tmp, "ledger-proxy.db"), MODEL_NAME, model, a.parallel))
    pool = Pool(binary, pool_env(lib, scn), tmp, "proxy", conf)
    ok = True
    try:
        st, _ = pool.json("POST", "/models/load", json.dumps({"model": MODEL_NAME}))
        m = pool.model(MODEL_NAME)
        if st != 200 or not m or m["state"] not in ("loaded", "ready"):
            raise RuntimeError("the nginx backend did not load (%s, %s):\n%s" %
                               (st, m, pool.text()))
        backend = m["port"]
        pdir = os.path.join(tmp, "proxy")
        os.makedirs(os.path.join(pdir, "tmp"))
        tuned, plain = free_port(), free_port()
        pconf = write(os.path.join(pdir, "nginx.conf"),
                      PROXY_CONF % {"workers": a.nginx_workers, "dir": pdir, "backend": backend,
                                    "tuned": tuned, "plain": plain})
        for path in (tmp, pdir):
            os.chmod(path, 0o755)
        os.chmod(os.path.join(pdir, "tmp"), 0o777)  # workers run as nobody when root starts nginx
        ng = spawn([nginx, "-e", os.path.join(pdir, "error.log"), "-p", pdir + "/", "-c", pconf],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        targets = [("direct", backend, None), ("nginx keepalive", tuned, ng.pid),
                   ("nginx default", plain, ng.pid), ("pool", pool.port, pool.proc.pid)]
        for name, port, proc in targets:
            st, raw = wait_http(port, "POST", "/v1/chat/completions", REQUEST_BODY,
                                proc=ng if proc == ng.pid else None)
            if st != 200 or raw != CHAT_BODY.encode():
                raise RuntimeError("%s (port %d) does not answer the chat request: %s" %
                                   (name, port, raw))
        print("  backend: nginx as the pool's child, pid %s port %d (%d-byte answer); proxy "
              "nginx: %d workers; pool: parallel %d; wrk -t%d -c%d -d%ds, %d round(s)" %
              (m.get("pid"), backend, len(CHAT_BODY), a.nginx_workers, a.parallel, a.threads,
               a.connections, a.duration, a.rounds))
        runs = {}
        loads = [("loaded", a.threads, a.connections, targets),
                 ("1 conn", 1, 1, [t for t in targets if t[0] != "nginx default"])]
        for rnd in range(a.rounds):
            for load, th, cn, tg in loads:
                for name, port, pgid in tg:
                    r = wrk("http://127.0.0.1:%d/v1/chat/completions" % port, a.duration, lua,
                            th, cn, pgid)
                    runs.setdefault((load, name), []).append(r)
                    bad = r["non2xx"] or r["socket"]
                    ok = ok and not bad
                    print("  round %d %-7s %-16s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms%s%s" %
                          (rnd + 1, load, name, r["rps"], r["p50"], r["p99"],
                           "  cpu %.1f us/req" % r["cpu_us"] if r["cpu_us"] is not None else "",
                           "  non-2xx %d socket errors: %s" % (r["non2xx"], r["socket"])
                           if bad else ""))
        results["runs"] = runs
        for (load, name), v in runs.items():
            results[(load, name)] = {k: median([x[k] for x in v]) if v[0][k] is not None else None
                                     for k in ("rps", "p50", "p99", "cpu_us")}
        stop_group(ng)
        results["proxy_log"] = pool.text()
    finally:
        rc = pool.stop()
        if rc != 0:
            print("  pool exited %s on SIGTERM (expected 0)" % rc)
            ok = False
    return ok


# ------------------------------------------------- section 2: cold loads

COLD_SH = """#!/bin/bash
# cold.sh BENCH_TMP PORT START_MS: records its exec time, then runs the server.
t=$EPOCHREALTIME
echo "exec $t $POOL_BENCH_T0" >> "$1/cold.rec"
[ -n "$POOL_BENCH_T0" ] && exit 0
echo $$ > "$1/pids/cold-$2"
exec %s -S -E "$1/cold_server.py" "$1/cold.rec" "$2" "$3"
"""

COLD_SERVER = r'''
# A llama-server stand-in for the cold-load measurement: answers /health 503
# "Loading model" until start_ms after its bind, then 200; records (CLOCK
# REALTIME ns) its start, bind, readiness, its first /health 200, and for the
# first chat request when it was read and when its answer was sent.
import socket, sys, threading, time
T_START = time.time_ns()
REC, PORT, START_MS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", PORT))
s.listen(128)
T_BIND = time.time_ns()
READY_AT = T_BIND + START_MS * 1000000
MARK = {}
LOCK = threading.Lock()
LOADING = b'{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}'
OK = b'{"status":"ok"}'
CHAT = CHAT_BODY_BYTES

def send(c, status, body):
    c.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % (status, b"OK" if status == 200 else b"Error", len(body)) + body)

def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, rest = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1]
            n = 0
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    n = int(v)
            while len(rest) < n:
                d = c.recv(65536)
                if not d:
                    return
                rest += d
            buf = rest[n:]
            now = time.time_ns()
            if now < READY_AT:
                send(c, 503, LOADING)
            elif path == b"/health":
                with LOCK:
                    if "first200" not in MARK:
                        MARK["first200"] = time.time_ns()
                send(c, 200, OK)
            elif path == b"/v1/chat/completions":
                send(c, 200, CHAT)
                out = time.time_ns()
                with LOCK:
                    if "req_in" not in MARK:
                        MARK["req_in"], MARK["resp_out"] = now, out
                        with open(REC, "a") as f:
                            for k, v in (("start", T_START), ("bind", T_BIND),
                                         ("ready", READY_AT), ("first200", MARK.get("first200", 0)),
                                         ("req_in", now), ("resp_out", out)):
                                f.write("%s %d\n" % (k, v))
            else:
                send(c, 404, b'{"error":{"code":404,"message":"File Not Found"}}')
    except OSError:
        pass
    finally:
        c.close()

while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''


def epoch_ns(v):
    """bash's $EPOCHREALTIME (seconds.microseconds) in ns."""
    sec, _, frac = v.partition(".")
    return int(sec) * 1000000000 + int((frac + "000000")[:6]) * 1000


def read_rec(path, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with open(path) as f:
                rec = {}
                for line in f:
                    k, v = line.split()
                    rec[k] = epoch_ns(v) if k == "exec" else int(v)
            if "resp_out" in rec:
                return rec
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    return None


def chat_timed(port):
    """One chat request on a fresh connection: (t_sent, t_first_byte, status) in ns."""
    body = REQUEST_BODY.replace('"m1"', '"%s"' % COLD_NAME).encode()
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        t_sent = time.time_ns()
        s.sendall(req)
        first = s.recv(65536)
        t_fb = time.time_ns()
        buf = first
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1]) if head else 0
        m = re.search(rb"(?i)content-length:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        while len(rest) < n:
            d = s.recv(65536)
            if not d:
                break
            rest += d
        return t_sent, t_fb, status
    finally:
        s.close()


def cold_section(a, binary, lib, scn, tmp, results):
    cold_sh = write(os.path.join(tmp, "cold.sh"), COLD_SH % sys.executable, 0o755)
    write(os.path.join(tmp, "cold_server.py"),
          COLD_SERVER.replace("CHAT_BODY_BYTES", repr(CHAT_BODY.encode())))
    rec_path = os.path.join(tmp, "cold.rec")
    # The wrapper's own start: exec + bash to its first line, timed by a bash
    # that notes $EPOCHREALTIME just before it execs the wrapper as the pool
    # does (/bin/bash cold.sh ...). It is inside every spawn figure.
    calib = []
    env = pool_env(lib, scn)
    for _ in range(10):
        if os.path.exists(rec_path):
            os.remove(rec_path)
        subprocess.run(["/bin/bash", "-c", 'export POOL_BENCH_T0=$EPOCHREALTIME; '
                        'exec /bin/bash "$0" "$1" 0 0', cold_sh, tmp], env=env, check=True)
        with open(rec_path) as f:
            w = f.read().split()
        calib.append((epoch_ns(w[1]) - epoch_ns(w[2])) / 1e6)
    model = make_model(os.path.join(tmp, "m2.gguf"), 2)
    conf = ("command = /bin/bash %s %s {port} %d\nledger = %s\nidle_ttl_s = 0\n\n"
            "[%s]\nmodel = %s\n" % (cold_sh, tmp, a.start_ms,
                                    os.path.join(tmp, "ledger-cold.db"), COLD_NAME, model))
    pool = Pool(binary, env, tmp, "cold", conf)
    ok = True
    rows = []
    try:
        for i in range(a.loads + 1):
            st, _ = pool.json("POST", "/models/unload", json.dumps({"model": COLD_NAME}))
            m = pool.model(COLD_NAME)
            if st != 200 or m["state"] != "unloaded":
                raise RuntimeError("unload: %s %s" % (st, m))
            if os.path.exists(rec_path):
                os.remove(rec_path)
            time.sleep(0.2)  # let the old child's exit settle
            t_sent, t_fb, status = chat_timed(pool.port)
            rec = read_rec(rec_path)
            if status != 200 or not rec or not rec.get("first200") or "exec" not in rec:
                print("  cold load %d: status %d, record %s" % (i, status, rec))
                ok = False
                continue
            m = pool.model(COLD_NAME)
            row = {
                "spawn": (rec["exec"] - t_sent) / 1e6,
                "server_start": (rec["ready"] - rec["exec"]) / 1e6,
                "py_start": (rec["start"] - rec["exec"]) / 1e6,
                "r2fb_first200": (t_fb - rec["first200"]) / 1e6,
                "r2fb_ready": (t_fb - rec["ready"]) / 1e6,
                "poll_gap": (rec["first200"] - rec["ready"]) / 1e6,
                "to_req": (rec["req_in"] - rec["first200"]) / 1e6,
                "child": (rec["resp_out"] - rec["req_in"]) / 1e6,
                "back": (t_fb - rec["resp_out"]) / 1e6,
                "total": (t_fb - t_sent) / 1e6,
                "pool_load_s": m.get("last_load_seconds"),
            }
            row["own"] = row["total"] - row["server_start"] - row["child"]
            if i == 0:
                print("  warm-up load (not counted): spawn %.2f ms, ready->first byte %.2f ms" %
                      (row["spawn"], row["r2fb_first200"]))
                continue
            rows.append(row)
            print("  load %2d  spawn %6.2f ms  server start %7.1f ms  ready->1st byte %5.2f ms "
                  "(from ready %5.2f: poll gap %5.2f)  child %4.2f  total %7.1f ms  pool own %5.2f "
                  "ms" % (i, row["spawn"], row["server_start"], row["r2fb_first200"],
                          row["r2fb_ready"], row["poll_gap"], row["child"], row["total"],
                          row["own"]))
        results["cold"] = rows
        results["cold_calib"] = calib
        results["cold_log"] = pool.text()
    finally:
        rc = pool.stop()
        if rc != 0:
            print("  pool exited %s on SIGTERM (expected 0)" % rc)
            ok = False
    return ok and len(rows) == a.loads


# --------------------------------------------- section 3: the decision

def decide_section(a, decide_bin, lib, scn, tmp, results):
    model = os.path.join(tmp, "m32.gguf")
    out = subprocess.run([sys.executable, os.path.join(TOP, "tests", "pool", "inference.py"),
                          model, json.dumps({"seed": 3, "n_layer": 32})],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        print("  writing the 32-layer model failed: %s" % out.stderr)
        return False
    env = pool_env(lib, scn)
    r = subprocess.run([decide_bin, "--ledger-dir", tmp, model] + (["--quick"] if a.quick else []),
                       capture_output=True, text=True, env=env, timeout=600)
    for line in r.stdout.splitlines():
        print("  " + line)
    if r.returncode != 0:
        print("  pool_decide failed (%d): %s" % (r.returncode, r.stderr.strip()))
        return False
    cases = {}
    for line in r.stdout.splitlines():
        kv = dict(re.findall(r"(\w+)=(\S+)", line))
        if "case" in kv:
            cases[kv["case"]] = kv
    results["decide"] = cases
    return bool(cases)


# ------------------------------------------------------------------ summary

def verdict(ok):
    return "ok" if ok else "MISSED"


def summary(a, results):
    print()
    print("=" * 100)
    print("SUMMARY (medians; targets from the issue)")
    print("=" * 100)
    if ("loaded", "pool") in results:
        runs = results["runs"]

        def paired(load, name, key, base, f):
            """f(target's run r, base's run r) per round: median, min, max."""
            v = [f(x[key], y[key]) for x, y in zip(runs[(load, name)], runs[(load, base)])]
            return median(v), min(v), max(v)

        def rng(t, fmt="%.2f"):
            return (fmt + ".." + fmt) % (t[1], t[2])

        for load, th, cn, names in (("loaded", a.threads, a.connections,
                                     ("direct", "nginx keepalive", "nginx default", "pool")),
                                    ("1 conn", 1, 1, ("direct", "nginx keepalive", "pool"))):
            print("1. proxy overhead, wrk -t%d -c%d, POST /v1/chat/completions (%d-byte answer)%s" %
                  (th, cn, len(CHAT_BODY), "" if cn > 1 else ": nothing queues"))
            print("   %-16s %9s %8s %8s %24s %22s %8s" %
                  ("target", "req/s", "p50 ms", "p99 ms", "added p50 ms (range)",
                   "x nginx ka (range)", "cpu us"))
            for name in names:
                r = results[(load, name)]
                add = paired(load, name, "p50", "direct", lambda x, y: x - y)
                rat = paired(load, name, "rps", "nginx keepalive", lambda x, y: x / y)
                print("   %-16s %9.0f %8.3f %8.3f %9.3f (%s) %9.2fx (%s) %8s" %
                      (name, r["rps"], r["p50"], r["p99"], add[0], rng(add, "%.3f"), rat[0], rng(rat),
                       "%.1f" % r["cpu_us"] if r["cpu_us"] is not None else "-"))
        print("   (medians over %d rounds; added p50 and x nginx are paired within each round; "
              "cpu: the proxy's own CPU per request)" % a.rounds)
        ratio = paired("loaded", "pool", "rps", "nginx keepalive", lambda x, y: x / y)[0]
        add16 = paired("loaded", "pool", "p50", "direct", lambda x, y: x - y)[0]
        ng16 = paired("loaded", "nginx keepalive", "p50", "direct", lambda x, y: x - y)[0]
        add1 = paired("1 conn", "pool", "p50", "direct", lambda x, y: x - y)[0]
        ng1 = paired("1 conn", "nginx keepalive", "p50", "direct", lambda x, y: x - y)[0]
        p99_1 = paired("1 conn", "pool", "p99", "direct", lambda x, y: x - y)[0]
        p99_16 = paired("loaded", "pool", "p99", "direct", lambda x, y: x - y)[0]
        print("   target >= 0.8x nginx keepalive req/s at %d connections: %.2fx  %s" %
              (a.connections, ratio, verdict(ratio >= 0.8)))
        print("   target <= 0.2 ms added p50: %.3f ms at 1 connection %s (nginx adds %.3f); "
              "%.3f ms at %d connections %s (nginx adds %.3f)" %
              (add1, verdict(add1 <= 0.2), ng1, add16, a.connections, verdict(add16 <= 0.2), ng16))
        print("   p99 added: %.3f ms at 1 connection, %.3f ms at %d connections" %
              (p99_1, p99_16, a.connections))
    else:
        print("1. proxy overhead: %s" % ("not run" if a.only not in (None, "proxy") else
                                          "skipped or failed"))
    rows = results.get("cold")
    if rows:
        def mm(k):
            v = [r[k] for r in rows]
            return "%7.2f %7.2f" % (median(v), max(v))
        print("2. cold load, %d loads, server ready %d ms after its bind (median, max in ms)" %
              (len(rows), a.start_ms))
        print("   the wrapper's exec -> its first line (bash's start), measured apart: "
              "median %.2f, max %.2f: inside spawn" % (median(results["cold_calib"]),
                                          max(results["cold_calib"])))
        for k, label in (("spawn", "request sent -> child exec'd (spawn)"),
                         ("r2fb_first200", "child's first /health 200 -> first byte"),
                         ("poll_gap", "  (child ready -> its first /health 200: poll gap)"),
                         ("r2fb_ready", "child ready -> first byte (incl. the poll gap)"),
                         ("to_req", "  first /health 200 -> request at the child"),
                         ("child", "  the child's own time on the request"),
                         ("back", "  child's answer sent -> first byte at the client"),
                         ("server_start", "server's own start (exec -> ready)"),
                         ("total", "total: request sent -> first byte"),
                         ("own", "pool's own cost: total - server start - child time")):
            print("   %-55s %s" % (label, mm(k)))
        wrap = median(results["cold_calib"])
        net = [r["own"] - wrap for r in rows]
        print("   %-55s %s" % ("pool's own cost less the wrapper's start (%.2f)" % wrap,
                               "%7.2f %7.2f" % (median(net), max(net))))
        sp = median([r["spawn"] for r in rows])
        rf = median([r["r2fb_first200"] for r in rows])
        rr = median([r["r2fb_ready"] for r in rows])
        print("   target <= 5 ms beyond the server's own start (medians, ms):")
        print("     spawn + first /health 200 -> first byte        %5.2f (raw), %5.2f less the "
              "wrapper's start  %s" % (sp + rf, sp + rf - wrap, verdict(sp + rf - wrap <= 5.0)))
        print("     spawn + child ready -> first byte (poll gap)   %5.2f (raw), %5.2f less the "
              "wrapper's start  %s; max per load %.2f" %
              (sp + rr, sp + rr - wrap, verdict(sp + rr - wrap <= 5.0), max(net)))
    else:
        print("2. cold load: %s" % ("not run" if a.only not in (None, "cold") else "failed"))
    cases = results.get("decide")
    if cases:
        print("3. placement decision (pool_decide: 8 GPUs x 80 GiB, 6 idle candidates, "
              "32-layer model; ns per call, median of batches)")
        print("   %-36s %11s %11s %8s %8s" % ("case", "median ns", "cpu ns", "evicted", "refines"))
        for name, kv in cases.items():
            print("   %-36s %11s %11s %8s %8s" % (name, kv["median_ns"], kv["cpu_median_ns"],
                                                   kv["evicted"], kv["refines"]))
        for name in ("fits", "evict2", "evict2-trim"):
            if name in cases:
                ns = float(cases[name]["median_ns"])
                print("   target <= 10 us, %-12s %8.1f us  %s" % (name, ns / 1000,
                                                                 verdict(ns <= 10000)))
    else:
        print("3. placement decision: %s" % ("not run" if a.only not in (None, "decide") else
                                              "failed"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(TOP, "build-bench"))
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the wrk runs")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=64, help="the proxied model's slots")
    ap.add_argument("--nginx-workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--loads", type=int, default=10, help="cold loads")
    ap.add_argument("--start-ms", type=int, default=300, help="the cold server's own start")
    ap.add_argument("--quick", action="store_true", help="pool_decide's short batches")
    ap.add_argument("--only", choices=("proxy", "cold", "decide"))
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    binary = os.path.join(build, "src", "cli", "gpuwatch")
    decide_bin = os.path.join(build, "bench", "pool_decide")
    lib = os.path.join(build, "tests", "nvml", "lib-full", "libnvidia-ml.so.1")
    scn = os.path.join(TOP, "tests", "serve", "scenarios", "two.scn")
    for path in (binary, decide_bin, lib, scn):
        if not os.path.exists(path):
            sys.exit("pool_bench: %s missing: meson compile -C %s" % (path, a.build))
    helped = subprocess.run([binary, "pool", "--help"], capture_output=True, timeout=30)
    if helped.returncode != 0:
        sys.exit("pool_bench: %s has no working `pool` command (stale build?): meson compile -C %s"
                 % (binary, a.build))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    atexit.register(cleanup)
    tmp = tempfile.mkdtemp(prefix="pool_bench.")
    TMP["dir"], TMP["keep"] = tmp, a.keep
    os.makedirs(os.path.join(tmp, "pids"))
    os.chmod(tmp, 0o755)
    print("gpuwatch pool benchmark: %s, %d CPUs, load average %.2f, fake NVML %s" %
          (binary, os.cpu_count(), os.getloadavg()[0], os.path.basename(scn)))
    results = {}
    ok = True
    sections = [("proxy", "1. proxy overhead: direct vs nginx proxy_pass vs pool",
                 lambda: proxy_section(a, binary, lib, scn, tmp, results)),
                ("cold", "2. cold load: spawn and ready -> first byte",
                 lambda: cold_section(a, binary, lib, scn, tmp, results)),
                ("decide", "3. placement decision (bench/pool_decide)",
                 lambda: decide_section(a, decide_bin, lib, scn, tmp, results))]
    try:
        for key, title, fn in sections:
            if a.only and a.only != key:
                continue
            print()
            print(title)
            try:
                sect_ok = fn()
            except (RuntimeError, OSError, subprocess.SubprocessError, KeyError, ValueError) as e:
                print("  FAILED: %s" % e)
                sect_ok = False
            ok = ok and sect_ok
        summary(a, results)
    finally:
        cleanup()
    print("\n%s" % ("all runs worked" if ok else "some runs FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
