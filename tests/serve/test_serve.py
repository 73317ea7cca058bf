#!/usr/bin/env python3
"""Integration tests of `gpuwatch serve` over real loopback HTTP, with the
fake NVML library serving scenario files (tests/serve/scenarios). Every
expected value is read from the scenario file here, never from gpuwatch.

    test_serve.py CASE        (cases: see CASES at the bottom)
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import (DEADLINE, HERE, Daemon, Prometheus, _die_with_parent, check, close, promtool,  # noqa: E402
                        fail, num, parse_prom, parse_scenario, series, wait_for)

TWO = os.path.join(HERE, "scenarios", "two.scn")
PRESSURE = os.path.join(HERE, "scenarios", "pressure.scn")
MIB = 1048576.0


def with_faults(base, lines):
    """Writes base + fault lines into a temporary scenario; returns its path."""
    fd, path = tempfile.mkstemp(suffix=".scn")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
        with open(base) as b:
            f.write(b.read())
    return path


def check_device(d, g, where):
    """A device object of the API against one scenario GPU."""
    check(d["name"] == g["name"], "%s: name %r" % (where, d["name"]))
    check(d["uuid"] == g["uuid"], "%s: uuid %r" % (where, d["uuid"]))
    check(d["state"] == "ok", "%s: state %r" % (where, d["state"]))
    m = d["memory"]
    for k, sk in (("total_bytes", "memory.total"), ("used_bytes", "memory.used"),
                  ("free_bytes", "memory.free")):
        check(m[k] == num(g, sk), "%s: memory.%s %r != %r" % (where, k, m[k], num(g, sk)))
    check(d["utilization"]["gpu_percent"] == num(g, "util.gpu"), where + ": util.gpu")
    check(d["utilization"]["memory_percent"] == num(g, "util.memory"), where + ": util.memory")
    check(d["temperature"]["gpu_celsius"] == num(g, "temp"), where + ": temp")
    pw = num(g, "power.usage")
    got = d["power"]["draw_watts"]
    check((got is None) if pw is None else close(got, pw / 1000.0), "%s: power %r" % (where, got))
    cc = d["compute_capability"]
    check(cc == {"major": num(g, "cc.major"), "minor": num(g, "cc.minor")}, where + ": cc")
    fan = num(g, "fan")
    check(d["fan"]["speed_percent"] == fan, "%s: fan %r" % (where, d["fan"]["speed_percent"]))
    check(d["sample_age_seconds"] is not None and d["sample_age_seconds"] >= 0, where + ": age")


def case_endpoints():
    # Processes: this test and a child, so their names come from /proc.
    child = subprocess.Popen(["sleep", "60"], preexec_fn=_die_with_parent)
    with open(TWO) as f:
        text = f.read().replace(" 5004242 ", " %d " % os.getpid()).replace(" 5004343 ", " %d " % child.pid)
    scn = with_faults(TWO, [])
    with open(scn, "w") as f:
        f.write(text)
    system, gpus = parse_scenario(scn)
    # The child's name changes when it execs sleep; the daemon caches a name
    # per pid and start time, so it must not look before then.
    def child_comm():
        with open("/proc/%d/comm" % child.pid) as f:
            return f.read().strip() == "sleep"
    wait_for(child_comm, "the child to exec sleep")
    comm = {}
    for pid in (os.getpid(), child.pid):
        with open("/proc/%d/comm" % pid) as f:
            comm[pid] = f.read().strip()
    d = Daemon(scenario=scn)
    h = d.json("/health")
    check(h["status"] == "ok", "health status %r (%s)" % (h["status"], h["reason"]))
    check(len(h["gpus"]) == 2, "health gpus %d" % len(h["gpus"]))
    for i, g in enumerate(gpus):
        check_device(h["gpus"][i], g, "health gpu %d" % i)
    pool = h["pool"]
    check(pool["gpu_count"] == 2, "pool gpu_count")
    check(pool["memory_total_bytes"] == sum(num(g, "memory.total") for g in gpus), "pool total")
    check(pool["memory_free_bytes"] == sum(num(g, "memory.free") for g in gpus), "pool free")

    info = d.json("/gpu/info")
    check(info["available"] is True and info["gpu_count"] == 2, "info availability")
    nv = [s for s in info["sources"] if s["name"] == "nvml"]
    check(len(nv) == 1 and nv[0]["driver_version"] == system["driver"],
          "info nvml driver %r" % nv)
    check([x["uuid"] for x in info["gpus"]] == [g["uuid"] for g in gpus], "info uuids")

    m = d.json("/gpu/metrics")
    a = m["aggregates"]
    check(a["memory_used_bytes"] == sum(num(g, "memory.used") for g in gpus), "agg used")
    check(a["memory_total_bytes"] == sum(num(g, "memory.total") for g in gpus), "agg total")
    check(close(a["utilization_gpu_mean_percent"],
                sum(num(g, "util.gpu") for g in gpus) / 2.0), "agg util")
    check(close(a["utilization_memory_mean_percent"],
                sum(num(g, "util.memory") for g in gpus) / 2.0), "agg mem util")
    check(close(a["temperature_mean_celsius"], sum(num(g, "temp") for g in gpus) / 2.0), "agg temp")
    powers = [num(g, "power.usage") for g in gpus if num(g, "power.usage") is not None]
    check(close(a["power_total_watts"], sum(powers) / 1000.0), "agg power %r" % a["power_total_watts"])
    for i, g in enumerate(gpus):
        check_device(m["gpus"][i], g, "metrics gpu %d" % i)

    for i, g in enumerate(gpus):
        for ident in (str(i), g["uuid"], g["uuid"].lower()):
            one = d.json("/gpu/metrics/" + urllib.parse.quote(ident))
            check_device(one["gpu"], g, "metrics/" + ident)
    for ident, want in (("2", 404), ("99999999999", 404), ("GPU-00000000-0000-0000-0000-000000000000", 404),
                        ("%25%25", 400), ("-1", 400), ("1.5x%20y", 400), ("a" * 120, 400), ("", 400)):
        e = d.json("/gpu/metrics/" + ident, want)
        check(e["error"]["code"] == want and e["error"]["message"], "error body for %r" % ident)

    p = d.json("/gpu/processes")
    got = sorted((x["pid"], x["device_index"], x["gpu_memory_bytes"]) for x in p["processes"])
    want = sorted((pid, i, int(mem)) for i, g in enumerate(gpus) for _, pid, mem in g["process"])
    check(got == want, "processes %r != %r" % (got, want))
    names = {x["pid"]: x["name"] for x in p["processes"]}
    for pid, name in comm.items():
        check(names.get(pid) == name, "process %d name %r, /proc says %r" % (pid, names.get(pid), name))

    # HEAD: same headers, no body.
    st, hh, body = d.request("HEAD", "/gpu/metrics")
    check(st == 200 and body == b"", "HEAD status %d body %r" % (st, body[:50]))
    check(int(hh["content-length"]) > 0, "HEAD content-length")
    # Bad methods: 405 with Allow, JSON body.
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        st, hh, body = d.request(method, "/gpu/metrics")
        check(st == 405, "%s status %d" % (method, st))
        check(hh.get("allow") == "GET, HEAD", "%s Allow %r" % (method, hh.get("allow")))
        check(json.loads(body)["error"]["code"] == 405, method + " body")
    st, hh, body = d.get("/no/such/thing")
    check(st == 404 and json.loads(body)["error"]["code"] == 404, "unknown path")
    # Keep-alive: one connection serves many requests (scrapers reuse it).
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
    for path in ("/metrics", "/health", "/gpu/metrics/0", "/nope", "/metrics"):
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        check(r.getheader("connection", "").lower() != "close", "%s closes the connection" % path)
        if path == "/health":
            sock = c.sock
    c.request("GET", "/gpu/info")
    c.getresponse().read()
    check(c.sock is sock, "the connection was not reused")
    c.close()
    d.stop()
    child.kill()
    child.wait()
    os.unlink(scn)


def case_cache():
    """Bodies are rendered once per snapshot and shared: with no new snapshot
    (interval 1 h) repeated requests get byte-identical bodies, including
    the render-time fields (data age, request counters); once a snapshot
    is published (SIGHUP with a short interval) the bodies change."""
    tmp = tempfile.mkdtemp()
    conf = os.path.join(tmp, "c.conf")
    with open(conf, "w") as f:
        f.write("interval_ms = 3600000\ndeadline_ms = 3600000\n")
    d = Daemon(scenario=TWO, args=["--config", conf])
    for path in ("/health", "/gpu/info", "/gpu/metrics", "/gpu/processes", "/metrics"):
        first = d.get(path)[2]
        time.sleep(0.05)
        for _ in range(3):
            again = d.get(path)[2]
            check(again == first, "%s rendered twice for one snapshot" % path)
    before = d.get("/metrics")[2]
    with open(conf, "w") as f:
        f.write("interval_ms = 100\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: d.get("/metrics")[2] != before, "a new snapshot after SIGHUP", d)
    d.stop()
    shutil.rmtree(tmp)


def snapshot_seconds(stamp):
    """An API timestamp ("2024-01-02T03:04:05.678Z", UTC) in seconds."""
    import calendar
    t = time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + int(stamp[20:23]) / 1000.0


def cadence_run(process_ms, enough):
    """A daemon sampling every 50 ms with process lists every process_ms:
    reads /gpu/processes (every snapshot must carry the scenario's
    processes) until enough(set of snapshot times seen) is true, stops it,
    and returns (snapshot times, memory reads, compute process-list calls)
    from the fake library's call log."""
    _, gpus = parse_scenario(TWO)
    want = sorted((pid, i) for i, g in enumerate(gpus) for _, pid, _ in g["process"])
    log = tempfile.mktemp(suffix=".calls")
    d = Daemon(scenario=TWO, args=["--interval-ms", "50", "--set",
                                   "process_interval_ms=%d" % process_ms],
               env={"GPUWATCH_FAKE_NVML_CALL_LOG": log})
    seen = set()

    def read():
        p = d.json("/gpu/processes")
        got = sorted((x["pid"], x["device_index"]) for x in p["processes"])
        check(got == want, "processes %r, want %r" % (got, want))
        seen.add(snapshot_seconds(p["timestamp"]))
        return enough(seen)
    wait_for(read, "snapshots (process interval %d ms)" % process_ms, d)
    d.stop()
    calls = {}
    with open(log) as f:
        for line in f:
            k, v = line.split()
            calls[k] = int(v)
    os.unlink(log)
    mem = sum(v for k, v in calls.items() if k.startswith("nvmlDeviceGetMemoryInfo"))
    procs = sum(v for k, v in calls.items() if k.startswith("nvmlDeviceGetComputeRunningProcesses"))
    return seen, mem, procs


def case_cadence():
    """Process lists on a slower cadence than the rest. Counted in rounds
    and in the daemon's own clock, never in how fast this machine is:
    - lists every hour: only the first round reads them, yet 20 snapshots
      later every one still carries the scenario's processes, and the fake
      library saw a handful of process-list calls against two memory reads
      per round (one per GPU);
    - lists every 200 ms: once the snapshots seen span a second of the
      daemon's clock, the lists were read again (more calls than once)."""
    seen, mem, once = cadence_run(3600000, lambda s: len(s) >= 20)
    check(mem >= 2 * len(seen), "memory reads %d for %d snapshots" % (mem, len(seen)))
    check(0 < once and once * 5 <= mem,
          "process-list calls %d vs memory reads %d: read in every round?" % (once, mem))
    seen, mem, again = cadence_run(200, lambda s: max(s) - min(s) >= 1.0)
    check(again > once, "process-list calls %d over a second at 200 ms, %d for one read: "
          "never read again" % (again, once))


def case_limits():
    d = Daemon(scenario=TWO, args=["--set", "connection_timeout_s=2",
                                   "--set", "max_request_bytes=4096"])
    # Oversized request: headers beyond max_request_bytes.
    st, _, _ = d.get("/health", headers={"X-Big": "y" * 8000})
    check(st in (413, 414, 431), "oversized request answered %d" % st)
    st, _, _ = d.get("/health?" + "q" * 6000)
    check(st in (413, 414, 431), "oversized URL answered %d" % st)
    # Request bodies: no endpoint takes one; a small one is discarded (405
    # here), a large one is refused.
    c = socket.create_connection(("127.0.0.1", d.port), timeout=DEADLINE)
    c.sendall(b"POST /gpu/metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    check(c.recv(100).startswith(b"HTTP/1.1 405"), "small POST body not answered 405")
    c.close()
    c = socket.create_connection(("127.0.0.1", d.port), timeout=DEADLINE)
    c.sendall(b"POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
    try:
        for _ in range(10):
            c.sendall(b"x" * 20000)
    except OSError:
        pass
    # The server answers 413 and closes without waiting for the rest of the
    # declared body; the close may reset the connection before the status
    # line arrives, so a reset or an empty read counts as refused too. Not
    # refusing would leave this read waiting for 120,000 more bytes.
    c.settimeout(DEADLINE)
    try:
        got = c.recv(100)
    except ConnectionResetError:
        got = b""
    except socket.timeout:
        fail("a 200 kB request body was not refused")
    check(got == b"" or got.startswith(b"HTTP/1.1 413"), "large body answered %r" % got[:40])
    c.close()
    check(d.get("/health")[0] == 200, "serving after a refused body")
    # Slow client: half a request, then silence. Others are served
    # meanwhile; the slow one is closed by the idle timeout (2 s here). A
    # server without one would keep it open for ever: DEADLINE tells the two
    # apart on any machine.
    slow = socket.create_connection(("127.0.0.1", d.port))
    slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    st, _, _ = d.get("/health")
    check(st == 200, "served %d while a slow client holds a connection" % st)
    slow.settimeout(DEADLINE)
    data = b"x"
    try:
        while data:
            data = slow.recv(4096)
    except ConnectionResetError:
        pass
    except socket.timeout:
        fail("an idle half request was kept open %d s (connection_timeout_s=2)" % DEADLINE)
    slow.close()
    # Many connections from one address beyond the per-IP limit are refused,
    # the server keeps serving afterwards.
    d.stop()
    d = Daemon(scenario=TWO, args=["--set", "max_connections_per_ip=4"])
    # Hold four served connections before the fifth arrives. Make sure the
    # server has accepted (and counted) all four: with a thread pool, two
    # threads accepting at once could otherwise count the fifth before the
    # fourth. And the daemon's own start-up probe may still count against
    # the address for a moment after it closed: when one of the four is
    # refused for that reason, let go of all four and try again.
    def served(s):
        s.settimeout(DEADLINE)
        head = b""
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            while len(head) < 12:
                part = s.recv(12 - len(head))
                if not part:
                    break
                head += part
        except OSError:
            return False
        return head.startswith(b"HTTP/1.1 200")
    def four_served():
        socks = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(4)]
        if all([served(s) for s in socks]):
            return socks
        for s in socks:
            s.close()
        return None
    socks = wait_for(four_served, "four connections from one address all served", d)
    # The fifth is closed at once; one neither served nor closed within
    # DEADLINE would be a hang.
    extra = socket.create_connection(("127.0.0.1", d.port))
    extra.settimeout(DEADLINE)
    try:
        extra.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        got = extra.recv(100)
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    except socket.timeout:
        fail("5th connection from one IP neither served nor closed")
    check(not got.startswith(b"HTTP/1.1 200"), "5th connection from one IP was served")
    for s in socks + [extra]:
        s.close()
    # The closed connections stop counting once the server has seen them go.
    def health_ok():
        try:
            return d.get("/health")[0] == 200
        except OSError:
            return False
    wait_for(health_ok, "an answer after refusing over-limit connections", d)
    d.stop()


def case_cpuonly():
    # A library present but no driver (no scenario): CPU-only.
    d = Daemon(scenario=None)
    h = d.json("/health")
    check(h["status"] == "cpu-only", "status %r" % h["status"])
    check("NVML" in h["reason"], "reason %r" % h["reason"])
    check(h["gpus"] == [], "gpus in cpu-only")
    info = d.json("/gpu/info")
    check(info["available"] is False and info["gpu_count"] == 0, "info in cpu-only")
    e = d.json("/gpu/metrics", 503)
    check(e["error"]["code"] == 503 and "no GPU" in e["error"]["message"], "metrics 503 body")
    e = d.json("/gpu/metrics/0", 503)
    st, h2, body = d.get("/metrics")
    s, _ = parse_prom(body.decode())
    check(series(s, "gpuwatch_cpu_only") == 1, "gpuwatch_cpu_only")
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) * 1024
    check(series(s, "gpuwatch_host_memory_total_bytes") == total, "host memory total")
    d.stop(signal.SIGINT)


def metrics_of(d):
    st, h, body = d.get("/metrics")
    check(st == 200, "/metrics status %d" % st)
    check(h.get("content-type") == "text/plain; version=0.0.4; charset=utf-8",
          "/metrics content-type %r" % h.get("content-type"))
    return body.decode()


def case_metrics():
    system, gpus = parse_scenario(TWO)
    d = Daemon(scenario=TWO, args=["--metrics-compat", "dcgm,nvidia_smi", "--metrics-processes"])
    text = metrics_of(d)
    s, fams = parse_prom(text)
    for i, g in enumerate(gpus):
        lab = {"gpu": i, "uuid": g["uuid"]}
        for fam, key, scale in (("gpuwatch_gpu_memory_used_bytes", "memory.used", 1),
                                ("gpuwatch_gpu_memory_total_bytes", "memory.total", 1),
                                ("gpuwatch_gpu_memory_free_bytes", "memory.free", 1),
                                ("gpuwatch_gpu_utilization_ratio", "util.gpu", 0.01),
                                ("gpuwatch_gpu_memory_utilization_ratio", "util.memory", 0.01),
                                ("gpuwatch_gpu_temperature_celsius", "temp", 1),
                                ("gpuwatch_gpu_power_watts", "power.usage", 0.001),
                                ("gpuwatch_gpu_energy_joules_total", "energy", 0.001),
                                ("gpuwatch_gpu_sm_clock_hertz", "clock.sm", 1e6),
                                ("gpuwatch_gpu_fan_speed_ratio", "fan", 0.01),
                                ("gpuwatch_gpu_slowdown_temperature_celsius", "temp.slowdown", 1)):
            want = num(g, key)
            got = series(s, fam, **lab)
            if want is None:
                check(got is None, "%s gpu %d present (%r) though unsupported" % (fam, i, got))
            else:
                check(got is not None and close(got, want * scale),
                      "%s gpu %d = %r, want %r" % (fam, i, got, want * scale))
        check(series(s, "gpuwatch_gpu_state", state="ok", **lab) == 1, "state ok gpu %d" % i)
        check(series(s, "gpuwatch_gpu_state", state="lost", **lab) == 0, "state lost gpu %d" % i)
        check(series(s, "gpuwatch_gpu_info", name=g["name"], **lab) == 1, "info gpu %d" % i)
        # dcgm-exporter names, labels and units
        dl = {"gpu": i, "UUID": g["uuid"], "modelName": g["name"],
              "DCGM_FI_DRIVER_VERSION": system["driver"]}
        check(series(s, "DCGM_FI_DEV_FB_USED", **dl) == num(g, "memory.used") // (1 << 20),
              "DCGM_FI_DEV_FB_USED gpu %d" % i)
        check(series(s, "DCGM_FI_DEV_FB_FREE", **dl) == num(g, "memory.free") // (1 << 20),
              "DCGM_FI_DEV_FB_FREE gpu %d" % i)
        check(series(s, "DCGM_FI_DEV_GPU_UTIL", **dl) == num(g, "util.gpu"), "DCGM util")
        check(series(s, "DCGM_FI_DEV_GPU_TEMP", **dl) == num(g, "temp"), "DCGM temp")
        # nvidia_gpu_exporter: uuid lowercase without GPU-
        u = g["uuid"][4:].lower()
        check(series(s, "nvidia_smi_memory_used_bytes", uuid=u) == num(g, "memory.used"),
              "nvidia_smi_memory_used_bytes gpu %d" % i)
        check(close(series(s, "nvidia_smi_utilization_gpu_ratio", uuid=u), num(g, "util.gpu") / 100),
              "nvidia_smi_utilization_gpu_ratio")
        check(series(s, "nvidia_smi_gpu_info", uuid=u, name=g["name"], index=i) == 1, "nvsmi info")
    # health: GPU 0 has every counter and two Xids (31, then 43); GPU 1 none
    g0 = {"gpu": 0, "uuid": gpus[0]["uuid"]}
    for fam, want in (("gpuwatch_gpu_pcie_replays_total", num(gpus[0], "pcie.replay")),
                      ("gpuwatch_gpu_ecc_corrected_errors_total", num(gpus[0], "ecc.corrected")),
                      ("gpuwatch_gpu_ecc_uncorrected_errors_total",
                       num(gpus[0], "ecc.uncorrected")),
                      ("gpuwatch_gpu_remapped_rows_correctable",
                       num(gpus[0], "remap.correctable")),
                      ("gpuwatch_gpu_remapped_rows_uncorrectable",
                       num(gpus[0], "remap.uncorrectable")),
                      ("gpuwatch_gpu_row_remap_pending", num(gpus[0], "remap.pending")),
                      ("gpuwatch_gpu_row_remap_failure", num(gpus[0], "remap.failure")),
                      ("gpuwatch_gpu_xid_last", 43), ("gpuwatch_gpu_xid_errors_total", 2)):
        check(series(s, fam, **g0) == want, "%s gpu 0 = %r, want %r" % (fam, series(s, fam, **g0),
                                                                        want))
        check(series(s, fam, gpu=1) is None, "%s gpu 1 present though not read" % fam)
    dl0 = {"gpu": 0, "UUID": gpus[0]["uuid"]}
    for fam, want in (("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", num(gpus[0], "pcie.replay")),
                      ("DCGM_FI_DEV_XID_ERRORS", 43),
                      ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", num(gpus[0], "remap.correctable")),
                      ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
                       num(gpus[0], "remap.uncorrectable")),
                      ("DCGM_FI_DEV_ROW_REMAP_FAILURE", num(gpus[0], "remap.failure"))):
        check(series(s, fam, **dl0) == want, "%s gpu 0 = %r, want %r" % (fam, series(s, fam, **dl0),
                                                                         want))
    check(fams["gpuwatch_gpu_xid_errors_total"][0] == "counter", "xid errors is a counter")
    check(fams["gpuwatch_gpu_energy_joules_total"][0] == "counter", "energy is a counter")
    check(fams["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"][0] == "counter", "dcgm energy counter")
    procs = [(i, pid, int(mem)) for i, g in enumerate(gpus) for _, pid, mem in g["process"]]
    for i, pid, mem in procs:
        check(series(s, "gpuwatch_gpu_process_memory_bytes", gpu=i, pid=pid) == mem,
              "process %d memory" % pid)
    check(series(s, "gpuwatch_scrapes_total", format="prometheus", encoding="identity") is not None,
          "self metric scrapes")
    check(series(s, "gpuwatch_sampling_rounds_total") >= 1, "self metric rounds")
    d.stop()


def case_promtool():
    d = Daemon(scenario=TWO)
    text = metrics_of(d)
    d.stop()
    rc, out = promtool(text)
    check(rc == 0 and out.strip() == "", "native /metrics not promtool-clean (rc %d):\n%s" % (rc, out))
    # Lost GPU and stale states must be clean too.
    lost = with_faults(TWO, ["fault * GPU_IS_LOST gpu=1"])
    d = Daemon(scenario=lost)
    text = metrics_of(d)
    d.stop()
    os.unlink(lost)
    rc, out = promtool(text)
    check(rc == 0 and out.strip() == "", "native /metrics with a lost GPU (rc %d):\n%s" % (rc, out))
    d = Daemon(scenario=TWO, args=["--metrics-compat", "dcgm,nvidia_smi"])
    text = metrics_of(d)
    d.stop()
    rc, out = promtool(text)
    # dcgm-exporter's own names fail the linter (camelCase labels, counter
    # without _total): they must parse (exit 1 = parse error), lint is 3.
    check(rc in (0, 3), "compat /metrics does not parse (rc %d):\n%s" % (rc, out))
    check("error while linting" not in out.lower() or rc == 3, out)
    # The one-line evil label values: escaping must keep the text parseable.
    evil = with_faults(TWO, [])
    with open(evil) as f:
        body = f.read().replace("name NVIDIA T400 4GB", 'name Evil "GPU" \\ back\\slash')
    with open(evil, "w") as f:
        f.write(body)
    d = Daemon(scenario=evil)
    text = metrics_of(d)
    d.stop()
    os.unlink(evil)
    rc, out = promtool(text)
    check(rc == 0, "escaped label values break the format (rc %d):\n%s" % (rc, out))
    s, _ = parse_prom(text)
    check(series(s, "gpuwatch_gpu_info", gpu=1) == 1, "evil name series")
    check(any('name="Evil \\"GPU\\" \\\\ back\\\\slash"' in line for line in text.split("\n")),
          "label value not escaped as the format says")


def case_prometheus():
    """A real Prometheus scrapes the daemon; its stored values must equal the
    scenario's."""
    _, gpus = parse_scenario(TWO)
    d = Daemon(scenario=TWO, args=["--interval-ms", "200"])
    prom = Prometheus(Prometheus.job("127.0.0.1:%d" % d.port))
    query = prom.query
    try:
        # One scrape on a busy machine may run past its 1 s timeout; then
        # Prometheus marks the series stale until the next one. Read
        # everything from a moment after a successful scrape.
        last = [None]

        def stored():
            try:
                got = (query("gpuwatch_gpu_memory_used_bytes"), query('up{job="gpuwatch"}'),
                       query("gpuwatch_gpu_temperature_celsius"),
                       query('gpuwatch_gpu_state{state="ok"}'))
            except OSError as e:
                last[0] = repr(e)
                return None
            last[0] = got
            res, up, t, st = got
            if len(up) == 1 and up[0]["value"][1] == "1" and len(res) == len(t) == len(st) == 2:
                return got
            return None
        end = time.time() + DEADLINE
        got = None
        while got is None and time.time() < end:
            got = stored()
            if got is None:
                time.sleep(0.5)
        check(got is not None, "Prometheus never held both GPUs' series after a successful "
              "scrape; last answer %r" % (last[0],))
        res, up, t, st = got
        for r in res:
            i = int(r["metric"]["gpu"])
            check(r["metric"]["uuid"] == gpus[i]["uuid"], "uuid label in Prometheus")
            check(float(r["value"][1]) == num(gpus[i], "memory.used"), "stored memory used gpu %d" % i)
        check(sorted(float(r["value"][1]) for r in t) == sorted(num(g, "temp") for g in gpus),
              "stored temperatures %r" % t)
        check(all(r["value"][1] == "1" for r in st), "stored states %r" % st)
        # The scrape itself was clean: no samples dropped for format reasons.
        bad = query("scrape_samples_scraped{job=\"gpuwatch\"} - scrape_samples_post_metric_relabeling{job=\"gpuwatch\"}")
        check(all(float(r["value"][1]) == 0 for r in bad), "samples dropped %r" % bad)
    finally:
        prom.stop()
        d.stop()


def case_lost():
    _, gpus = parse_scenario(TWO)
    scn = with_faults(TWO, ["fault nvmlDeviceGetMemoryInfo_v2 GPU_IS_LOST gpu=1 after=4",
                            "fault * GPU_IS_LOST gpu=1 after=200"])
    d = Daemon(scenario=scn, args=["--interval-ms", "100"])
    h = wait_for(lambda: (lambda x: x if x["status"] == "degraded" else None)(d.json("/health")),
                 "GPU 1 to be lost", d)
    check(h["gpus"][1]["state"] == "lost", "gpu 1 state %r" % h["gpus"][1]["state"])
    check("GPU 1 lost" in h["reason"], "reason %r" % h["reason"])
    check(h["gpus"][0]["state"] == "ok", "gpu 0 state %r" % h["gpus"][0]["state"])
    check_device(h["gpus"][0], gpus[0], "gpu 0 while gpu 1 is lost")
    s, _ = parse_prom(metrics_of(d))
    lab = {"gpu": 1, "uuid": gpus[1]["uuid"]}
    check(series(s, "gpuwatch_gpu_state", state="lost", **lab) == 1, "lost state series")
    check(series(s, "gpuwatch_gpu_state", state="ok", **lab) == 0, "ok state series of lost gpu")
    check(series(s, "gpuwatch_gpu_up", **lab) == 0, "gpu_up of lost gpu")
    check(series(s, "gpuwatch_gpu_memory_used_bytes", **lab) is None, "lost gpu has memory series")
    check(series(s, "gpuwatch_gpu_memory_used_bytes", gpu=0) == num(gpus[0], "memory.used"),
          "gpu 0 memory series")
    # GPU 0 keeps updating: its sample time moves on.
    t0 = d.json("/gpu/metrics/0")["timestamp"]
    wait_for(lambda: d.json("/gpu/metrics/0")["timestamp"] != t0, "gpu 0 to update", d)
    ev = d.json("/api/v1/events")
    lost = [e for e in ev["events"] if e["type"] == "gpu_lost"]
    check(len(lost) == 1 and lost[0]["gpu"] == 1 and lost[0]["uuid"] == gpus[1]["uuid"],
          "gpu_lost events %r" % lost)
    check(ev["counts"]["gpu_lost"] == 1, "gpu_lost count")
    check("event gpu_lost" in d.log(), "gpu_lost not logged")
    d.stop()
    os.unlink(scn)


def answered_get(d, path):
    """GET that must be answered while a sampling call hangs. The hang lasts
    an hour, so an endpoint that waited for the sampler would never answer:
    the request's deadline (DEADLINE) tells the two apart, not a figure of
    how fast this machine answers."""
    try:
        st, _, body = d.get(path, timeout=DEADLINE)
    except OSError as e:
        fail("%s not answered while sampling hangs: %r\n%s" % (path, e, d.log()))
    return st, body


def case_hang():
    """GPU 0's power call hangs (an hour) from the 4th round on: every
    endpoint still answers, NVML's GPUs are marked stale with a growing age
    while the host source stays fresh (a deadline per source), and SIGTERM
    still stops the daemon."""
    scn = with_faults(TWO, ["hang nvmlDeviceGetPowerUsage gpu=0 after=3"])
    d = Daemon(scenario=scn, args=["--interval-ms", "100", "--set", "deadline_ms=300"])
    h = wait_for(lambda: (lambda x: x if x["stale"] else None)(d.json("/health")),
                 "stale data", d)
    check(h["status"] == "degraded", "status while hung %r" % h["status"])
    check(all(g["state"] == "stale" for g in h["gpus"]), "gpu states %r" % [g["state"] for g in h["gpus"]])
    check(h["sampling"]["stalled"] is True, "sampling.stalled")
    src = {x["name"]: x for x in h["sources"]}
    check(src["nvml"]["state"] == "failed" and "has not answered" in src["nvml"]["message"],
          "nvml source while hung %r" % src["nvml"])
    check(src["host"]["state"] == "ok", "the host source is not held up: %r" % src["host"])
    age1 = h["data_age_seconds"]
    for path in ("/health", "/gpu/info", "/gpu/metrics", "/gpu/metrics/0", "/gpu/processes",
                 "/metrics", "/api/v1/events", "/api/v1/history?gpu=0&metric=memory_used"):
        st, _ = answered_get(d, path)
        check(st == 200, "%s answered %d while hung" % (path, st))
    # The stale copies keep being published: the data's age grows past a
    # second (the sampler's own clock, however slowly this machine runs).
    h2 = wait_for(lambda: (lambda x: x if x["data_age_seconds"] > age1 + 1.0 and
                           x["gpus"][0]["sample_age_seconds"] > 1.0 else None)(d.json("/health")),
                  "the data age to grow from %r by a second" % age1, d)
    check(h2["stale"] and h2["gpus"][0]["state"] == "stale", "fresh again while hung: %r" % h2)
    s, _ = parse_prom(metrics_of(d))
    check(series(s, "gpuwatch_sampling_stalled") == 1, "stalled metric")
    check(series(s, "gpuwatch_gpu_state", gpu=0, state="stale") == 1, "stale state series")
    check(series(s, "gpuwatch_sample_age_seconds") > 1.0, "sample age metric")
    ev = d.json("/api/v1/events")
    check(ev["counts"]["sampling_stalled"] == 1, "sampling_stalled count %r" % ev["counts"])
    d.stop()
    check("still blocked" in d.log(), "no log line about the abandoned round:\n" + d.log())
    os.unlink(scn)


def case_hangfresh():
    """A hung source beside a healthy one keeps the healthy one's devices
    fresh (issue 14 item 8): NVML hangs in GPU 0's power call from its 4th
    round on, the amdgpu source reads a copy of the rdna3 fixture tree. The
    NVIDIA GPUs go stale (the reason names nvml) and keep indexes 0 and 1,
    while a new value written to the AMD GPU's sysfs file shows up at index
    2 and the amdgpu and host sources stay ok."""
    root = os.environ.get("GPUWATCH_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
    tmp = tempfile.mkdtemp(prefix="gw-hangfresh-")
    fx = os.path.join(tmp, "rdna3")
    shutil.copytree(os.path.join(root, "tests/fixtures/rdna3"), fx, symlinks=True)
    busy = os.path.join(os.path.realpath(os.path.join(fx, "sys/class/drm/card0/device")),
                        "gpu_busy_percent")
    check(busy.startswith(tmp), "fixture copy resolves outside the copy: %s" % busy)
    scn = with_faults(TWO, ["hang nvmlDeviceGetPowerUsage gpu=0 after=3"])
    d = Daemon(scenario=scn, args=["--sources", "nvml,amdgpu,host", "--sys-root", fx + "/sys",
                                   "--proc-root", fx + "/proc", "--interval-ms", "100"])
    # deadline_ms: the default 2 s, ample for the healthy sources on a busy machine
    m = wait_for(lambda: (lambda x: x if x["gpus"][0]["state"] == "stale" else None)(
        d.json("/gpu/metrics")), "the NVIDIA GPUs to go stale", d)
    g = m["gpus"]
    check([x["source"] for x in g] == ["nvml", "nvml", "amdgpu"], "sources %r" % g)
    check([x["index"] for x in g] == [0, 1, 2], "indexes %r" % [x["index"] for x in g])
    check([x["state"] for x in g] == ["stale", "stale", "ok"], "states %r" % [x["state"] for x in g])
    check("source 'nvml' has not answered" in g[1]["state_reason"], "reason %r" % g[1]["state_reason"])
    check(m["stale"] is True, "a publication with a hung source's copies is stale")
    with open(busy) as f:
        new = 77 if int(f.read().strip()) != 77 else 78
    with open(busy, "w") as f:  # in place: the source holds the file open, as in sysfs
        f.write("%d\n" % new)
    m = wait_for(lambda: (lambda x: x if x["gpus"][2]["utilization"]["gpu_percent"] == new and
                           x["gpus"][2]["state"] == "ok" else None)(d.json("/gpu/metrics")),
                 "the AMD GPU to show the new busy percent %d" % new, d)
    check([x["state"] for x in m["gpus"][:2]] == ["stale", "stale"],
          "NVIDIA states after the AMD update %r" % [x["state"] for x in m["gpus"]])
    h = d.json("/health")
    src = {x["name"]: x for x in h["sources"]}
    check(src["nvml"]["state"] == "failed", "nvml source %r" % src["nvml"])
    check(src["amdgpu"]["state"] == "ok" and src["host"]["state"] == "ok",
          "healthy sources %r" % h["sources"])
    check(h["status"] == "degraded" and h["sampling"]["stalled"] is True, "health %r" % h)
    ev = d.json("/api/v1/events")
    check(ev["counts"]["sampling_stalled"] == 1, "sampling_stalled count %r" % ev["counts"])
    check(not [e for e in ev["events"] if e["type"] == "gpu_lost"], "a stale GPU is not lost")
    d.stop()
    check("source 'nvml' still blocked" in d.log(), "no log line about the abandoned source:\n" + d.log())
    os.unlink(scn)
    shutil.rmtree(tmp)


def case_recover():
    """Every round after the 3rd takes 2 s (deadline 400 ms): the daemon goes
    stale, then publishes the round when it returns, and logs the resume."""
    _, gpus = parse_scenario(TWO)
    scn = with_faults(TWO, ["slow nvmlDeviceGetPowerUsage 2000 gpu=0 after=3"])
    d = Daemon(scenario=scn, args=["--interval-ms", "100", "--set", "deadline_ms=400"])
    wait_for(lambda: d.json("/health")["stale"], "stale data", d)
    # The next slow round may already be overdue again by the time a second
    # request is made: check the fresh document itself.
    h = wait_for(lambda: (lambda x: None if x["stale"] else x)(d.json("/health")),
                 "fresh data after the slow round", d)
    check(h["status"] == "ok", "status after recovery %r (%s)" % (h["status"], h["reason"]))
    check_device(h["gpus"][0], gpus[0], "gpu 0 after recovery")
    ev = d.json("/api/v1/events")
    check(ev["counts"]["sampling_stalled"] >= 1 and ev["counts"]["sampling_resumed"] >= 1,
          "stall/resume counts %r" % ev["counts"])
    d.stop()
    os.unlink(scn)


def case_history():
    _, gpus = parse_scenario(TWO)
    d = Daemon(scenario=TWO, args=["--interval-ms", "50", "--set", "history_seconds=2"])
    # 2 s of history at 50 ms = 40 rows: wait until the ring is full, then
    # past a wrap: it must keep exactly 40 rows, the newest ones.
    q = "/api/v1/history?gpu=0&metric=memory_used"
    wait_for(lambda: len(d.json(q)["points"]) >= 40, "a full ring", d)
    first = d.json(q)["points"][0][0]
    wait_for(lambda: d.json(q)["points"][0][0] > first, "the ring to wrap", d)
    r = d.json(q)
    check(r["unit"] == "bytes" and r["metric"] == "memory_used", "history header %r" % r)
    pts = r["points"]
    check(len(pts) == 40, "ring holds %d points (capacity 40)" % len(pts))
    check(all(v == num(gpus[0], "memory.used") for _, v in pts), "history values %r" % pts[:3])
    ts = [t for t, _ in pts]
    check(ts == sorted(ts) and len(set(ts)) == len(ts), "timestamps not increasing")
    # The last second holds at most 3 half-second buckets, and at least one
    # once a round has landed in it (on a busy machine, poll for that).
    q1 = "/api/v1/history?gpu=%s&metric=temperature&since=1&step=0.5" % gpus[1]["uuid"]
    r = wait_for(lambda: (lambda x: x if x["points"] else None)(d.json(q1)),
                 "a round in the last second", d)
    check(r["uuid"] == gpus[1]["uuid"] and r["unit"] == "celsius", "history by uuid")
    check(1 <= len(r["points"]) <= 3, "since=1 step=0.5 gives %d buckets" % len(r["points"]))
    check(all(v == num(gpus[1], "temp") for _, v in r["points"]), "temp history %r" % r["points"])
    r = d.json("/api/v1/history?gpu=1&metric=power")
    check(r["points"] and all(v is None for _, v in r["points"]),
          "unsupported metric must be null, got %r" % r["points"][:3])
    for q, want in (("gpu=0", 400), ("metric=memory_used", 400), ("gpu=0&metric=bogus", 400),
                    ("gpu=0&metric=memory_used&since=-4", 400), ("gpu=0&metric=memory_used&step=x", 400),
                    ("gpu=7&metric=memory_used", 404), ("gpu=%25&metric=memory_used", 400)):
        e = d.json("/api/v1/history?" + q, want)
        check(e["error"]["code"] == want, q)
    d.stop()


def read_sse(d, want_types, timeout=DEADLINE, path="/events", want_n=1):
    """Opens path and collects (event, data) until every type in want_types
    was seen want_n times."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    s.sendall(b"GET " + path.encode() +
              b" HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    buf = b""
    seen = {}
    end = time.time() + timeout
    while time.time() < end and not all(len(seen.get(t, ())) >= want_n for t in want_types):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            ev, data = None, None
            for line in block.split(b"\n"):
                line = line.split(b"\r\n")[-1] if b"\r\n" in line else line
                if line.startswith(b"event: "):
                    ev = line[7:].decode()
                elif line.startswith(b"data: "):
                    data = line[6:].decode()
            if ev:
                seen.setdefault(ev, []).append(data)
    s.close()
    return seen, buf


def case_events():
    _, gpus = parse_scenario(PRESSURE)
    d = Daemon(scenario=PRESSURE, args=["--interval-ms", "100"])
    ev = wait_for(lambda: (lambda x: x if x["counts"]["thermal_slowdown"] else None)(
        d.json("/api/v1/events")), "events", d)
    by = {}
    for e in ev["events"]:
        by.setdefault(e["type"], []).append(e)
    used = num(gpus[0], "memory.used") / num(gpus[0], "memory.total")
    check(0.90 <= used < 0.97, "scenario sanity")
    w = by.get("memory_pressure_warning", [])
    check(len(w) == 1 and w[0]["gpu"] == 0 and w[0]["uuid"] == gpus[0]["uuid"],
          "memory warning events %r" % w)
    check(close(w[0]["value"], used, rel=1e-9), "warning value %r" % w[0]["value"])
    check("memory_pressure_critical" not in by, "critical raised at %.3f" % used)
    t = by.get("thermal_slowdown", [])
    check(len(t) == 1 and t[0]["gpu"] == 0 and t[0]["value"] == num(gpus[0], "temp"),
          "thermal events %r" % t)
    # Repeated identical samples raise nothing more (hysteresis, no flapping).
    d.wait_rounds(10)
    ev2 = d.json("/api/v1/events")
    check(ev2["counts"]["memory_pressure_warning"] == 1 and ev2["counts"]["thermal_slowdown"] == 1,
          "events repeated: %r" % ev2["counts"])
    check(d.json("/api/v1/events?after=%d" % ev2["last_seq"])["events"] == [], "after= filter")
    d.json("/api/v1/events?after=x", 400)
    s, _ = parse_prom(metrics_of(d))
    check(series(s, "gpuwatch_events_total", type="memory_pressure_warning") == 1, "events_total")
    seen, _ = read_sse(d, ["snapshot"])
    check("snapshot" in seen, "no snapshot on /events: %r" % list(seen))
    snap = json.loads(seen["snapshot"][0])
    check(len(snap["gpus"]) == 2 and snap["gpus"][0]["uuid"] == gpus[0]["uuid"], "SSE snapshot body")
    # include=processes (the web page): the /gpu/processes body after the
    # first snapshot, then only when the list changed (read every 5 s here:
    # 12 snapshots at 100 ms bring it once or twice, never every time)
    seen, _ = read_sse(d, ["snapshot"], path="/events?include=processes", want_n=12)
    procs = [json.loads(x) for x in seen.get("processes", [])]
    check(1 <= len(procs) <= 3, "processes events with 12 snapshots: %d" % len(procs))
    want = sorted(pid for g in gpus for _, pid, _ in g["process"])
    check(sorted(p["pid"] for p in procs[0]["processes"]) == want,
          "SSE processes %r, want pids %r" % (procs[0], want))
    for bad in ("bogus", "processes,x", "processes;"):
        st, _, body = d.get("/events?include=" + bad)
        check(st == 400 and b"include" in body, "include=%s: %d %r" % (bad, st, body[:200]))
    d.stop()
    # A GPU lost while a client listens arrives as an SSE event.
    scn = with_faults(TWO, ["fault * GPU_IS_LOST gpu=1 after=120"])
    d = Daemon(scenario=scn, args=["--interval-ms", "100"])
    seen, _ = read_sse(d, ["gpu_lost"])
    check("gpu_lost" in seen, "gpu_lost not streamed: %r\n%s" % (list(seen), d.log()))
    e = json.loads(seen["gpu_lost"][0])
    check(e["gpu"] == 1 and e["severity"] == "critical", "streamed event %r" % e)
    d.stop()
    os.unlink(scn)


def case_sse():
    """16 clients open and drop /events streams for 5 s while snapshots are
    published every 20 ms: every stream starts with a snapshot, and
    afterwards the daemon still answers and stops (a waiting-list corruption
    once made the publisher loop forever holding the server lock). Each
    client makes at least one stream, however late it starts."""
    d = Daemon(scenario=TWO, args=["--interval-ms", "20"])
    stop = time.time() + 5
    errors, firsts = [], []

    def one_stream():
        s = socket.create_connection(("127.0.0.1", d.port), timeout=DEADLINE)
        try:
            s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            buf = b""
            # until the first event is whole (or the server closes)
            while True:
                at = buf.find(b"event: ")
                if at >= 0 and b"\n\n" in buf[at:]:
                    break
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            at = buf.find(b"event: ")
            firsts.append(buf[at:at + 15] if at >= 0 else buf[:80])
            # then drop it somewhere in the middle of the stream
            linger = time.time() + 0.2
            s.settimeout(0.05)
            while time.time() < linger:
                try:
                    if not s.recv(65536):
                        break
                except socket.timeout:
                    pass
        finally:
            s.close()

    def churn():
        while True:
            try:
                one_stream()
            except OSError as e:
                errors.append(repr(e))
            if time.time() >= stop:
                break

    ts = [threading.Thread(target=churn) for _ in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "stream errors %r" % errors[:3])
    bad = [f for f in firsts if f != b"event: snapshot"]
    check(len(firsts) >= 16 and not bad, "%d streams, %d did not start with a snapshot: %r" % (
        len(firsts), len(bad), bad[:3]))
    st, _ = answered_get(d, "/health")
    check(st == 200, "health after SSE churn %d" % st)
    d.stop()
    # sse_max_clients: streams beyond the limit get a JSON 503.
    d = Daemon(scenario=TWO, args=["--set", "sse_max_clients=2"])
    held = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=DEADLINE)
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        check(s.recv(4096).startswith(b"HTTP/1.1 200"), "stream within the limit refused")
        held.append(s)
    st, h, body = d.get("/events")
    check(st == 503 and json.loads(body)["error"]["code"] == 503, "third stream: %d %r" % (st, body[:80]))
    for s in held:
        s.close()
    d.stop()


def case_load():
    """200 concurrent keep-alive clients against the JSON and Prometheus
    endpoints: every client is answered (each makes at least one request,
    however late its thread starts on a busy machine), no request fails,
    and once all 200 are being served RSS does not keep growing over 10 s
    more of that load. Requests wait up to DEADLINE: the pass condition is
    that every one is answered, not how many fit in the time."""
    scn = os.path.join(os.environ.get("GPUWATCH_SOURCE_ROOT", HERE + "/../.."), "tests/nvml/scenarios/eight.scn")
    if not os.path.exists(scn):
        scn = TWO
    d = Daemon(scenario=scn, args=["--interval-ms", "200", "--set", "max_connections=1024",
                                   "--set", "max_connections_per_ip=512", "--set", "threads=2"])
    paths = ["/metrics", "/gpu/metrics", "/health", "/gpu/metrics/1", "/gpu/processes"]
    nclients = 200
    errors, counts = [], [0] * nclients
    lock = threading.Lock()
    answered = [0]
    all_answered = threading.Event()
    stop = threading.Event()

    def client(k):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
        n = 0
        try:
            while True:
                c.request("GET", paths[(k + n) % len(paths)])
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(r.status)
                n += 1
                if n == 1:
                    with lock:
                        answered[0] += 1
                        if answered[0] == nclients:
                            all_answered.set()
                if stop.is_set():
                    break
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()
            counts[k] = n

    threads = [threading.Thread(target=client, args=(k,)) for k in range(nclients)]
    for t in threads:
        t.start()
    all_answered.wait(DEADLINE)
    rss0 = d.rss_kib()
    time.sleep(10)  # steady load: a duration, not a pass condition
    rss1 = d.rss_kib()
    stop.set()
    for t in threads:
        t.join()
    check(not errors, "%d errors, first %r\n%s" % (len(errors), errors[:5], d.log()[-6000:]))
    check(all(c > 0 for c in counts), "%d of %d clients got no answer at all\n%s" % (
        sum(1 for c in counts if c == 0), nclients, d.log()[-6000:]))
    print("load: %d requests, RSS %d -> %d KiB" % (sum(counts), rss0, rss1))
    with open("/proc/%d/maps" % d.proc.pid) as f:
        maps = f.read()
    # ASan's quarantine holds freed memory, TSan's shadow grows with every
    # address touched: under either, RSS says nothing about leaks
    if "libasan" not in maps and "libtsan" not in maps:
        check(rss1 - rss0 < 8 * 1024, "RSS grew from %d to %d KiB under steady load" % (rss0, rss1))
    st, _, _ = d.get("/health")
    check(st == 200, "health after load")
    d.stop()


def case_ops():
    tmp = tempfile.mkdtemp()
    conf = os.path.join(tmp, "gpuwatch.conf")
    with open(conf, "w") as f:
        f.write("# test\nlog_level = info\nmetrics_compat = none\n")
    d = Daemon(scenario=TWO, args=["--config", conf])
    s, _ = parse_prom(metrics_of(d))
    check(series(s, "DCGM_FI_DEV_FB_USED", gpu=0) is None, "dcgm family before reload")
    with open(conf, "w") as f:
        f.write("log_level = debug\nmetrics_compat = dcgm\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in d.log(), "reload log line", d)

    def has_dcgm():
        s2, _ = parse_prom(metrics_of(d))
        return series(s2, "DCGM_FI_DEV_FB_USED", gpu=0) is not None
    wait_for(has_dcgm, "dcgm family after SIGHUP", d)
    # A broken file on reload keeps the running configuration.
    with open(conf, "w") as f:
        f.write("interval_ms = fast\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in d.log(), "reload failure line", d)
    check("gpuwatch.conf:1" in d.log(), "reload error does not name file:line")
    check(d.get("/health")[0] == 200, "still serving after a bad reload")
    # POST /api/v1/reload: allowed on loopback without a token.
    st, _, _ = d.request("POST", "/api/v1/reload")
    check(st == 202, "reload endpoint %d" % st)
    d.stop()

    # Beyond loopback without a token: refused, exit 1, says why.
    e = dict(os.environ)
    p = subprocess.run([os.environ.get("GPUWATCH_BIN", "gpuwatch"), "serve", "--listen", "0.0.0.0:0",
                        "--sources", "host"], capture_output=True, text=True, timeout=DEADLINE, env=e)
    check(p.returncode == 1 and "token" in p.stderr, "non-loopback without token: rc %d %r" % (p.returncode, p.stderr))
    # With a token file: starts; mutating endpoint needs the token.
    tok = os.path.join(tmp, "token")
    with open(tok, "w") as f:
        f.write("s3cret-token\n")
    d = Daemon(scenario=TWO, args=["--token-file", tok])
    st, _, _ = d.request("POST", "/api/v1/reload")
    check(st == 401, "reload without token %d" % st)
    st, _, _ = d.request("POST", "/api/v1/reload", headers={"Authorization": "Bearer wrong"})
    check(st == 401, "reload with a wrong token %d" % st)
    st, _, _ = d.request("POST", "/api/v1/reload", headers={"Authorization": "Bearer s3cret-token"})
    check(st == 202, "reload with the token %d" % st)
    check(d.get("/health")[0] == 200, "reads need no token")
    d.stop()
    # Environment overrides the file; flags override the environment.
    with open(conf, "w") as f:
        f.write("interval_ms = 5000\nhistory_seconds = 60\n")
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    e["GPUWATCH_INTERVAL_MS"] = "700"
    e["GPUWATCH_HISTORY_SECONDS"] = "120"
    p = subprocess.run([os.environ.get("GPUWATCH_BIN", "gpuwatch"), "serve", "--config", conf,
                        "--set", "history_seconds=30", "--print-config"],
                       capture_output=True, text=True, timeout=DEADLINE, env=e)
    check(p.returncode == 0, "print-config rc %d %s" % (p.returncode, p.stderr))
    got = dict(line.split(" = ", 1) for line in p.stdout.strip().split("\n"))
    check(got["interval_ms"] == "700" and got["history_seconds"] == "30", "precedence %r" % got)
    # Bad values name the key; unknown keys are refused.
    for args, word in ((["--set", "interval_ms=0"], "interval_ms"), (["--set", "nope=1"], "nope"),
                       (["--listen", "localhost"], "listen")):
        p = subprocess.run([os.environ.get("GPUWATCH_BIN", "gpuwatch"), "serve", "--print-config"] + args,
                           capture_output=True, text=True, timeout=DEADLINE, env=e)
        check(p.returncode == 1 and word in p.stderr, "%r: rc %d %r" % (args, p.returncode, p.stderr))
    shutil.rmtree(tmp)


def case_journal():
    """Under systemd (JOURNAL_STREAM naming the daemon's own stderr, by its
    st_dev:st_ino) log lines carry sd-daemon "<N>" priority prefixes instead
    of timestamps; a JOURNAL_STREAM naming another file (inherited by a
    process whose stderr was redirected) leaves them plain (issue 12: any
    value was trusted). The real libnvidia-ml.so.1 without a driver gives
    CPU-only mode with NVML's reason, never a crash."""
    for value in ("8:1234", "", "garbage", "%d:%d" % (os.stat("/").st_dev, os.stat("/").st_ino)):
        d = Daemon(scenario=None, env={"JOURNAL_STREAM": value})
        d.stop()
        lines = [line for line in d.lines if line.strip()]
        check(lines and not any(re.match(r"<[3-7]>", line) for line in lines),
              "JOURNAL_STREAM=%r (not stderr) gave journal lines %r" % (value, lines[:2]))
        check(any(re.match(r"\d{4}-\d\d-\d\dT", line) for line in lines),
              "JOURNAL_STREAM=%r: no timestamped lines %r" % (value, lines[:2]))
    real = os.environ.get("NVML_REAL_LIBRARY", "")
    env = {"JOURNAL_STREAM": "@stderr"}
    if os.path.exists(real):
        env["GPUWATCH_NVML_LIBRARY"] = real
    d = Daemon(scenario=None, env=env)
    h = d.json("/health")
    check(h["status"] == "cpu-only" and "NVML" in h["reason"], "health %r %r" % (h["status"], h["reason"]))
    d.stop()
    lines = [line for line in d.lines if line.strip()]
    check(lines and all(re.match(r"<[3-7]>", line) for line in lines), "log lines %r" % lines[:3])
    check(any(line.startswith("<5>") and "listening on" in line for line in lines), "notice prefix")


def case_amd():
    """The daemon is not NVML-only: the amdgpu source on the rdna3 fixture
    tree (tests/fixtures, laid out as the kernel does) through /gpu/metrics
    and /metrics, compared with the fixture's own sysfs files."""
    root = os.environ.get("GPUWATCH_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
    fx = os.path.join(root, "tests/fixtures/rdna3")
    dev = os.path.realpath(os.path.join(fx, "sys/class/drm/card0/device"))
    if not os.path.exists(os.path.join(dev, "mem_info_vram_used")):
        fail("fixture tree %s missing" % fx)

    def rd(name):
        with open(os.path.join(dev, name)) as f:
            return int(f.read().strip())
    d = Daemon(nvml=False, args=["--sources", "amdgpu,host", "--sys-root", fx + "/sys",
                                 "--proc-root", fx + "/proc"])
    m = d.json("/gpu/metrics")
    g = m["gpus"][0]
    check(g["vendor"] == "amd" and g["source"] == "amdgpu", "source %r" % g["source"])
    check(g["memory"]["used_bytes"] == rd("mem_info_vram_used"), "vram used %r" % g["memory"])
    check(g["memory"]["total_bytes"] == rd("mem_info_vram_total"), "vram total %r" % g["memory"])
    check(g["utilization"]["gpu_percent"] == rd("gpu_busy_percent"), "busy %r" % g["utilization"])
    text = metrics_of(d)
    smp, _ = parse_prom(text)
    check(series(smp, "gpuwatch_gpu_memory_used_bytes", gpu=0) == rd("mem_info_vram_used"), "metric")
    d.stop()
    rc, out = promtool(text)
    check(rc == 0 and not out.strip(), "promtool on the AMD page (rc %d): %s" % (rc, out))


def case_docs():
    """Every key of the configuration is documented in docs/gpuwatch.conf.md
    and man/gpuwatch.conf.5 with the default the program uses."""
    root = os.environ.get("GPUWATCH_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    p = subprocess.run([os.environ.get("GPUWATCH_BIN", "gpuwatch"), "serve", "--print-config",
                        "--config", "/dev/null"], capture_output=True, text=True, timeout=DEADLINE, env=e)
    check(p.returncode == 0, p.stderr)
    defaults = dict(line.split(" = ", 1) if " = " in line else (line.rstrip(" ="), "")
                    for line in p.stdout.strip().split("\n"))
    with open(os.path.join(root, "docs/gpuwatch.conf.md")) as f:
        md = f.read()
    with open(os.path.join(root, "man/gpuwatch.conf.5")) as f:
        man = f.read()
    for key, val in defaults.items():
        row = [line for line in md.split("\n") if line.startswith("| `%s` |" % key)]
        check(len(row) == 1, "docs/gpuwatch.conf.md has no row for %s" % key)
        doc_default = row[0].split("|")[2].strip().strip("`")
        check(doc_default == val or (val == "" and doc_default in ("", "(none)")),
              "%s: documented default %r, program default %r" % (key, doc_default, val))
        check(("\\fB%s\\fR" % key) in man or (".B %s" % key) in man, "man page lacks %s" % key)


CASES = {
    "endpoints": case_endpoints, "cache": case_cache, "cadence": case_cadence, "limits": case_limits, "cpuonly": case_cpuonly,
    "metrics": case_metrics, "promtool": case_promtool, "prometheus": case_prometheus,
    "lost": case_lost, "hang": case_hang, "hangfresh": case_hangfresh, "recover": case_recover, "history": case_history,
    "events": case_events, "sse": case_sse, "load": case_load, "ops": case_ops, "journal": case_journal, "amd": case_amd, "docs": case_docs,
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print("usage: test_serve.py {%s}" % ",".join(CASES), file=sys.stderr)
        sys.exit(2)
    CASES[sys.argv[1]]()
    print("ok " + sys.argv[1])
