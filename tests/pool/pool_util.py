"""Helpers for the `gpuwatch pool` tests (python3 stdlib only).

Pool: writes a pool file, starts the real binary on a free loopback port
with the fake NVML library and a scenario, waits for its "serving" line, and
stops it with SIGTERM (checking it exits 0 and leaves no child behind).
Ledger: read straight from the SQLite file, so what a test checks about
reservations never comes from gpuwatch's own answers.
"""
import ctypes
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("GPUWATCH_BIN", "gpuwatch")
BUILD = os.environ.get("GPUWATCH_BUILD_ROOT", ".")
HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_NVML = os.environ.get("GPUWATCH_FAKE_NVML",
                           os.path.join(BUILD, "tests/nvml/lib-full/libnvidia-ml.so.1"))
FAULT = os.path.join(HERE, "fault_server.py")
# Waits end as soon as the awaited thing happens; only "never" fails a test
# (scripts/test-stressed.sh runs the suite on one busy core).
DEADLINE = 120

FAILURES = []


def check(cond, msg):
    if cond:
        print("ok   " + msg)
    else:
        print("FAIL " + msg)
        FAILURES.append(msg)
    return cond


def finish():
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def fault_command(mode="ok", extra=""):
    return ("%s %s --mode %s -m {model} --host {host} --port {port} -c {ctx} -np {parallel} "
            "--alias {name} {placement} %s" % (sys.executable, FAULT, mode, extra)).strip()


def scenario(path, gpus):
    """Writes a fake-NVML scenario: gpus is a list of (name, total, free)."""
    lines = ["driver 550.54.15", "nvml 12.550.54.15", "cuda 12040", ""]
    for i, (name, total, free) in enumerate(gpus):
        lines += ["gpu", "name %s" % name, "uuid GPU-%08d-0000-0000-0000-000000000000" % i,
                  "pci.bus_id 00000000:%02x:00.0" % (i + 1), "cc.major 8", "cc.minor 0",
                  "memory.total %d" % total, "memory.used %d" % (total - free),
                  "memory.free %d" % free, "temp 40", "temp.slowdown 90", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


class Pool:
    def __init__(self, tmp, config, scn=None, env_extra=None, args=()):
        self.tmp = tmp
        self.port = free_port()
        self.conf = os.path.join(tmp, "pool.conf")
        self.ledger = os.path.join(tmp, "ledger.db")
        with open(self.conf, "w") as f:
            f.write("ledger = %s\n" % self.ledger)
            f.write(config)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_POOL_")}
        env["GPUWATCH_NVML_LIBRARY"] = FAKE_NVML
        if scn:
            env["GPUWATCH_FAKE_NVML_SCENARIO"] = scn
        env.update(env_extra or {})
        self.log_path = os.path.join(tmp, "pool.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([BIN, "pool", "-c", self.conf, "--listen",
                                      "127.0.0.1:%d" % self.port] + list(args),
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=_die_with_parent)
        end = time.time() + DEADLINE
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

    def request(self, method, path, body=None, headers=None, timeout=DEADLINE):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
        return r.status, dict(r.getheaders()), raw

    def json(self, method, path, body=None, **kw):
        status, headers, raw = self.request(method, path, body, **kw)
        try:
            return status, headers, json.loads(raw)
        except ValueError:
            return status, headers, raw

    def chat(self, model, stream=False, max_tokens=4, **kw):
        return self.json("POST", "/v1/chat/completions",
                         {"model": model, "stream": stream, "max_tokens": max_tokens,
                          "messages": [{"role": "user", "content": "hi"}]}, **kw)

    def stream_raw(self, model, max_tokens=4, read_limit=None):
        """Streams a chat answer; returns (status, [data payloads], complete)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        c.request("POST", "/v1/chat/completions",
                  body=json.dumps({"model": model, "stream": True, "max_tokens": max_tokens,
                                   "messages": [{"role": "user", "content": "hi"}]}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        events, complete = [], True
        buf = b""
        try:
            while True:
                chunk = r.read1(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n\n" in buf:
                    ev, buf = buf.split(b"\n\n", 1)
                    if ev.startswith(b"data: "):
                        events.append(ev[6:].decode())
                if read_limit and len(events) >= read_limit:
                    break
        except (http.client.IncompleteRead, ConnectionError, OSError):
            complete = False
        status = r.status
        c.close()
        return status, events, complete

    def pool_state(self):
        return self.json("GET", "/api/v1/pool")[2]

    def model(self, name):
        for m in self.pool_state()["models"]:
            if m["name"] == name:
                return m
        return None

    def wait(self, what, pred, deadline=DEADLINE):
        end = time.time() + deadline
        while time.time() < end:
            if pred():
                return True
            time.sleep(0.05)
        check(False, "timed out waiting for " + what)
        return False

    def stop(self):
        """SIGTERM; checks exit 0. Returns the log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        check(self.proc.returncode == 0, "pool exits 0 on SIGTERM (got %s)" % self.proc.returncode)
        self.log.close()
        return self.text()


def ledger_rows(path):
    """[(id, owner, pid, [(uuid, bytes)])] straight from the ledger file."""
    if not os.path.exists(path):
        return []
    db = sqlite3.connect(path, timeout=30)
    try:
        rows = db.execute("SELECT id, owner, pid FROM reservations ORDER BY id").fetchall()
        out = []
        for rid, owner, pid in rows:
            devs = db.execute("SELECT uuid, bytes FROM reservation_devices "
                              "WHERE reservation_id = ? ORDER BY pos", (rid,)).fetchall()
            out.append((rid, owner, pid, devs))
        return out
    finally:
        db.close()


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


def fit_bytes(model_path, ctx, parallel, scn):
    """The model's GPU need as `gpuwatch fit --json` computes it on one GPU
    of the scenario (the pool must reserve exactly what fit plans)."""
    env = dict(os.environ, GPUWATCH_NVML_LIBRARY=FAKE_NVML, GPUWATCH_FAKE_NVML_SCENARIO=scn)
    r = subprocess.run([BIN, "fit", model_path, "--ctx", str(ctx), "--parallel", str(parallel),
                        "--json"], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError("fit failed: " + r.stderr)
    return json.loads(r.stdout)


def tempdir():
    return tempfile.mkdtemp(prefix="gw-pool-")
