"""Helpers for the `gpuwatch serve` integration tests (python3 stdlib only).

Daemon: starts the real binary on an ephemeral loopback port, waits for its
"listening on" log line, and stops it with SIGTERM (checking it exits 0).
Scenario: reads a fake-NVML scenario file itself (tests/nvml/SCENARIOS.md
format), so expected values never come from gpuwatch.
"""
import atexit
import ctypes
import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time

BIN = os.environ.get("GPUWATCH_BIN", "gpuwatch")
BUILD = os.environ.get("GPUWATCH_BUILD_ROOT", ".")
HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_NVML = os.environ.get("GPUWATCH_FAKE_NVML",
                           os.path.join(BUILD, "tests/nvml/lib-full/libnvidia-ml.so.1"))


_LIVE = []

# How long a test waits for something that must happen (a daemon to start, a
# state to be reached, a request to be answered). Only "never" may fail a
# test, never a slow or busy machine: scripts/test-stressed.sh runs the suite
# on one core shared with a CPU burner. Waits end as soon as the thing
# happens, so a long deadline costs nothing when the test passes.
DEADLINE = 120


def _die_with_parent():
    """preexec_fn: SIGTERM the daemon if this test process dies, so a failed
    or killed test never leaves a daemon behind."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@atexit.register
def _reap():
    for p in _LIVE:
        if p.poll() is None:
            p.kill()
            p.wait()


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def close(a, b, rel=1e-6, abs_=1e-9):
    return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


def parse_scenario(path):
    """Returns (system dict, [gpu dict]). Values are strings; 'process' and
    'procname' lines are collected into lists."""
    system = {"procname": {}}
    gpus = []
    cur = system
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line == "gpu":
                cur = {"process": []}
                gpus.append(cur)
                continue
            key, _, val = line.partition(" ")
            if key == "process":
                kind, pid, mem = val.split()[:3]
                cur["process"].append((kind, int(pid), mem))
            elif key == "procname":
                pid, name = val.split(None, 1)
                system["procname"][int(pid)] = name
            elif key in ("fault", "slow", "hang"):
                system.setdefault("faults", []).append(line)
            else:
                cur[key] = val
    return system, gpus


def num(g, key):
    v = g.get(key)
    if v is None or v == "unsupported":
        return None
    return int(v, 0)


class Daemon:
    def __init__(self, args=(), scenario=None, env=None, nvml=True, wait=True):
        e = dict(os.environ)
        # The daemon reads GPUWATCH_<KEY>; keep only what the test sets.
        for k in list(e):
            if k.startswith("GPUWATCH_") and k not in ("GPUWATCH_BIN",):
                del e[k]
        if nvml:
            e["GPUWATCH_NVML_LIBRARY"] = FAKE_NVML
        if scenario:
            e["GPUWATCH_FAKE_NVML_SCENARIO"] = scenario
        # The placement API's ledger: a private file per daemon, never the
        # user's default one.
        self._ledger_dir = None
        if not (env and "GPUWATCH_LEDGER" in env) and "ledger" not in " ".join(args):
            import tempfile
            self._ledger_dir = tempfile.mkdtemp(prefix="gw-ledger-")
            e["GPUWATCH_LEDGER"] = os.path.join(self._ledger_dir, "ledger.db")
            atexit.register(lambda d=self._ledger_dir: __import__("shutil").rmtree(d, True))
        if env:
            e.update(env)
        srcs = [] if "--sources" in args else ["--sources", "nvml,host"]
        cmd = [BIN, "serve", "--listen", "127.0.0.1:0"] + srcs + list(args)
        self.cmd = cmd
        # JOURNAL_STREAM "@stderr": the DEV:INO of the daemon's real stderr
        # (a pipe made here), as systemd sets it for a unit's stream
        stderr, rfd = subprocess.PIPE, None
        if e.get("JOURNAL_STREAM") == "@stderr":
            rfd, stderr = os.pipe()
            st = os.fstat(stderr)
            e["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=stderr, env=e, text=True,
                                     preexec_fn=_die_with_parent)
        if rfd is not None:
            os.close(stderr)
        self._stderr = os.fdopen(rfd, "r") if rfd is not None else self.proc.stderr
        _LIVE.append(self.proc)
        self.lines = []
        self.port = None
        self._ready = threading.Event()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        if wait:
            if not self._ready.wait(DEADLINE) or self.port is None:
                self.proc.kill()
                fail("daemon did not start: %s\n%s" % (cmd, "".join(self.lines)))
            self.wait_health()

    def _read(self):
        for line in self._stderr:
            self.lines.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def log(self):
        return "".join(self.lines)

    def wait_health(self, timeout=DEADLINE):
        end = time.time() + timeout
        while time.time() < end:
            st, _, _ = self.get("/health")
            if st == 200:
                return
            time.sleep(0.05)
        fail("/health never answered 200:\n" + self.log())

    def request(self, method, path, headers=None, timeout=DEADLINE):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def call(self, method, path, body=None, token=None, headers=None, raw=None):
        """One request to the JSON API: body serialised (or raw bytes as
        given), `Authorization: Bearer token`; returns (status, headers,
        parsed JSON answer or None), checking that an answer is JSON."""
        import json
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            h["Content-Type"] = "application/json"
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            text = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()
        parsed = None
        if text:
            check(hdrs.get("content-type") == "application/json",
                  "%s %s: content-type %r" % (method, path, hdrs.get("content-type")))
            parsed = json.loads(text)
        return r.status, hdrs, parsed

    def json(self, path, want=200):
        import json
        st, h, body = self.get(path)
        check(st == want, "%s: status %d, want %d: %r" % (path, st, want, body[:300]))
        check(h.get("content-type") == "application/json",
              "%s: content-type %r" % (path, h.get("content-type")))
        return json.loads(body)

    def stop(self, sig=signal.SIGTERM, timeout=DEADLINE):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("daemon did not stop within %d s after signal %d" % (timeout, sig))
        self._t.join(5)
        check(rc == 0, "daemon exited %d after signal %d:\n%s" % (rc, sig, self.log()))
        check("stopped" in self.log(), "no 'stopped' line in the log:\n" + self.log())
        check("ERROR: LeakSanitizer" not in self.log(), "leaks:\n" + self.log())
        check("runtime error" not in self.log(), "UBSan:\n" + self.log())
        check("WARNING: ThreadSanitizer" not in self.log(), "TSan:\n" + self.log())

    def snapshot_time(self):
        """The published snapshot's timestamp (/health): it changes once per
        sampling round."""
        import json
        st, _, body = self.get("/health")
        check(st == 200, "/health status %d" % st)
        return json.loads(body)["timestamp"]

    def wait_rounds(self, n):
        """Returns once n more snapshots than the current one were published:
        "n sampling rounds later", however long they take on this machine."""
        seen = [self.snapshot_time()]
        wait_for(lambda: seen.append(self.snapshot_time()) or len(set(seen)) > n,
                 "%d more snapshots" % n, self)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def wait_for(pred, what, d=None, timeout=DEADLINE):
    """Polls pred until it returns something true and returns that; fails
    naming what (with the daemon's log) when DEADLINE passes first."""
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    fail("timed out waiting for " + what + ("\n" + d.log() if d else ""))


def parse_prom(text):
    """Parses exposition text into ({(name, frozenset(labels)): value},
    {family: (type, help)}) and checks the format rules on the way: HELP and
    TYPE once per family before its samples, a family's lines together, a
    series at most once, label values escaped."""
    samples, fams, seen_order, done = {}, {}, [], set()
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    check(text.endswith("\n"), "exposition does not end with a newline")
    current = None
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], line.split(" ")[2], line.split(" ", 3)[3]
            if current != name:
                check(name not in done, "family %s appears in two places" % name)
                if current:
                    done.add(current)
                current = name
            f = fams.setdefault(name, {})
            check(kind not in f, "two %s lines for %s" % (kind, name))
            f[kind] = rest
            continue
        check(not line.startswith("#"), "unexpected comment %r" % line)
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$", line)
        check(m, "bad sample line %r" % line)
        name, lab, val = m.group(1), m.group(2), m.group(3)
        fam = name
        if fam not in fams:
            for suffix in ("_total", "_bucket", "_sum", "_count"):
                if name.endswith(suffix) and name[: -len(suffix)] in fams:
                    fam = name[: -len(suffix)]
        check(fam in fams and "TYPE" in fams[fam], "sample %s before its TYPE" % name)
        check(fam == current, "sample of %s outside its family block" % name)
        labels = {}
        if lab:
            inner = lab[1:-1]
            pos = 0
            for lm in label_re.finditer(inner):
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
                if pos < len(inner) and inner[pos] == ",":
                    pos += 1
            check(pos == len(inner), "bad label set %r" % lab)
        key = (name, frozenset(labels.items()))
        check(key not in samples, "duplicate series %s%s" % (name, lab or ""))
        samples[key] = float(val)
    return samples, {k: (v.get("TYPE"), v.get("HELP")) for k, v in fams.items()}


def series(samples, metric_name, **labels):
    """Value of the series name{labels...} (labels given must match; others
    free); None when absent; fails when ambiguous."""
    found = [v for (n, ls), v in samples.items()
             if n == metric_name and all((k, str(val)) in ls for k, val in labels.items())]
    check(len(found) <= 1, "%s%s matches %d series" % (metric_name, labels, len(found)))
    return found[0] if found else None


def promtool(text):
    """`promtool check metrics` on exposition text: (exit status, output)."""
    import shutil
    tool = shutil.which("promtool")
    if not tool:
        fail("promtool not installed (Debian package prometheus; scripts/deps.sh test)")
    p = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


class Prometheus:
    """A real Prometheus (Debian's package) on 127.0.0.1:0 with the given
    scrape_configs (YAML list items, indented two spaces), every target
    scraped each second. Port 0: the kernel picks a free port and Prometheus
    logs it ("Listening on" address=127.0.0.1:PORT); a port picked here and
    handed over could be taken by another test in between. Waits until
    /-/ready answers. Use as a context manager, or call stop()."""

    def __init__(self, scrape_configs, prefix="gw-prom-"):
        import shutil
        import tempfile
        import urllib.request
        prom = shutil.which("prometheus")
        if not prom:
            fail("prometheus not installed (Debian package prometheus; scripts/deps.sh test)")
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n" + scrape_configs)
        self.log, self.port = [], None
        listening = threading.Event()
        self.p = subprocess.Popen([prom, "--config.file=" + cfg,
                                   "--storage.tsdb.path=" + os.path.join(self.tmp, "data"),
                                   "--web.listen-address=127.0.0.1:0", "--log.level=info"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=_die_with_parent)

        def drain():
            for line in self.p.stderr:  # keep reading: a full pipe stops Prometheus
                self.log.append(line)
                m = re.search(r'msg="Listening on" address=127\.0\.0\.1:(\d+)', line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    listening.set()
            listening.set()
        threading.Thread(target=drain, daemon=True).start()
        try:
            listening.wait(DEADLINE)
            check(self.port, "Prometheus did not say where it listens:\n" + self.log_tail())
            self.url = "http://127.0.0.1:%d" % self.port
            end = time.time() + DEADLINE
            while True:
                try:
                    with urllib.request.urlopen(self.url + "/-/ready", timeout=DEADLINE) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                check(time.time() < end, "Prometheus never ready:\n" + self.log_tail())
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def job(target, extra=""):
        """One scrape_configs item: job "gpuwatch" scraping target, with
        extra YAML lines (indented four spaces: scheme, tls_config, ...)."""
        return ("  - job_name: gpuwatch\n" + extra +
                "    static_configs:\n      - targets: ['%s']\n" % target)

    def log_tail(self, n=20):
        return "".join(self.log[-n:])

    def query(self, q):
        """An instant query through the HTTP API: the result list. Raises
        OSError when Prometheus does not answer."""
        import json
        import urllib.parse
        import urllib.request
        url = "%s/api/v1/query?query=%s" % (self.url, urllib.parse.quote(q))
        with urllib.request.urlopen(url, timeout=DEADLINE) as r:
            return json.load(r)["data"]["result"]

    def wait_true(self, queries, d=None):
        """Waits until every query (a boolean expression) has at least one
        sample and all its samples are 1; fails naming the last answers, the
        Prometheus log and the daemon's log otherwise."""
        last = [None]

        def all_true():
            try:
                got = [self.query(q) for q in queries]
            except OSError as e:
                last[0] = repr(e)
                return False
            last[0] = got
            return all(len(r) >= 1 and all(x["value"][1] == "1" for x in r) for r in got)
        end = time.time() + DEADLINE
        while not all_true():
            if time.time() >= end:
                fail("Prometheus never saw %r; last %r\n%s\n%s" %
                     (queries, last[0], self.log_tail(10), d.log()[-2000:] if d else ""))
            time.sleep(0.5)

    def stop(self):
        import shutil
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
