#!/usr/bin/env python3
"""Integration tests of the NVML backend at its real boundary.

Runs the real `gpuwatch report --json` against the fake libnvidia-ml.so.1
(tests/nvml/fake_nvml.c) serving a scenario file, and compares every value of
the JSON (docs/report-json.md) with what the SCENARIO says, converting units
here (mW -> W, MHz -> Hz, C -> C, mJ -> J). This file has its own reader of
the scenario format (SCENARIOS.md); it never looks at gpuwatch's code.

    test_report.py CASE --libdir BUILD/tests/nvml

GPUWATCH_BIN names the binary; NVML_REAL_LIBRARY the real driver library.
Exit 0 pass, 1 fail, 77 skip.
"""
import argparse
import json
import math
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "scenarios")
ULLONG_MAX = 2 ** 64 - 1
LOST_CODES = ("GPU_IS_LOST", "UNKNOWN", "15", "999")
V1_MEMORY_CODES = ("NOT_SUPPORTED", "ARGUMENT_VERSION_MISMATCH", "FUNCTION_NOT_FOUND")

# ------------------------------------------------------------ scenario reader


def read_scenario(path):
    sc = {"driver": None, "nvml": None, "cuda": None, "gpus": [], "faults": []}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, _, val = line.partition(" ")
            val = val.strip()
            if key in ("driver", "nvml"):
                sc[key] = val
            elif key == "cuda":
                sc["cuda"] = int(val, 0)
            elif key in ("fault", "slow", "hang"):
                words = val.split()
                fault = {"verb": key, "fn": words[0], "gpu": None}
                if key == "fault":
                    fault["code"] = words[1]
                for w in words[2 if key == "fault" else 1:]:
                    k, _, v = w.partition("=")
                    if k == "gpu":
                        fault["gpu"] = int(v)
                sc["faults"].append(fault)
            elif key == "procname":
                pass
            elif key == "gpu":
                sc["gpus"].append({"v": {}, "compute": [], "graphics": [], "putil": [],
                                   "xid": []})
            else:
                g = sc["gpus"][-1]
                if key == "process":
                    w = val.split()
                    mem = None if w[2] == "unavailable" else int(w[2], 0)
                    g[w[0]].append((int(w[1]), mem))
                elif key == "putil":
                    g["putil"].append(tuple(int(x, 0) for x in val.split()))
                elif key == "xid":
                    g["xid"].append(int(val, 0))
                elif key in ("name", "uuid", "serial", "pci.bus_id"):
                    g["v"][key] = val
                elif val != "unsupported":
                    g["v"][key] = int(val, 0)
    return sc


def gpu_faulted(sc, gpu, fns, codes):
    for f in sc["faults"]:
        if f["verb"] == "fault" and f["fn"] in fns and f["code"] in codes and \
                (f["gpu"] is None or f["gpu"] == gpu):
            return True
    return False


# --------------------------------------------------------------- expectations

class Lib:
    """What a fake-library variant exports (see lib-*/exports.map)."""

    def __init__(self, variant):
        self.variant = variant
        self.metrics = variant != "minimal"
        self.mem_v2 = variant == "full"
        self.procs = variant != "minimal"
        self.handle_fn = "nvmlDeviceGetHandleByIndex" + ("_v2" if variant != "v1" else "")
        # replay counter, ECC, remapped rows, event sets: only the full variant
        self.health = variant == "full"


def scaled(v, key, factor):
    x = v.get(key)
    return None if x is None else x / factor


def expected_device(sc, lib, gpu_index, snap_index):
    v = sc["gpus"][gpu_index]["v"]
    have = (lambda *ks: lib.metrics and all(k in v for k in ks))
    get = (lambda k: v.get(k) if lib.metrics else None)
    d = {"index": snap_index, "vendor": "nvidia", "source": "nvml",
         "source_index": gpu_index, "state": "ok", "state_reason": None}
    d["name"] = get("name")
    d["uuid"] = get("uuid")
    d["serial"] = get("serial")
    if have("pci.bus_id"):
        dom, bus, rest = v["pci.bus_id"].split(":")
        d["pci_bus_id"] = "%08X:%02X:%02X.0" % (int(dom, 16), int(bus, 16),
                                                 int(rest.split(".")[0], 16))
    else:
        d["pci_bus_id"] = None
    d["driver_version"] = sc["driver"] if lib.metrics else None
    d["library_version"] = sc["nvml"] if lib.metrics else None
    d["cuda_version"] = ("%d.%d" % (sc["cuda"] // 1000, sc["cuda"] % 1000 // 10)
                         if sc["cuda"] and lib.metrics else None)
    d["compute_capability"] = ({"major": v["cc.major"], "minor": v["cc.minor"]}
                               if have("cc.major", "cc.minor") else None)
    mem = {"total_bytes": None, "used_bytes": None, "free_bytes": None,
           "reserved_bytes": None}
    v2_faulted = gpu_faulted(sc, gpu_index, ("nvmlDeviceGetMemoryInfo_v2", "*"),
                             V1_MEMORY_CODES)
    if lib.mem_v2 and not v2_faulted and \
            have("memory.total", "memory.reserved", "memory.used", "memory.free"):
        d["memory_api"] = "v2"
        mem = {"total_bytes": v["memory.total"], "used_bytes": v["memory.used"],
               "free_bytes": v["memory.free"], "reserved_bytes": v["memory.reserved"]}
    elif have("memory.total", "memory.free"):
        # v1: "used" is everything not free (reserved included), no reserved
        d["memory_api"] = "v1"
        mem = {"total_bytes": v["memory.total"],
               "used_bytes": v["memory.total"] - v["memory.free"],
               "free_bytes": v["memory.free"], "reserved_bytes": None}
    else:
        d["memory_api"] = None
    d["memory"] = mem
    both = have("util.gpu", "util.memory")
    d["utilization"] = {
        "gpu_percent": v["util.gpu"] if both else None,
        "memory_percent": v["util.memory"] if both else None,
        "encoder_percent": get("util.encoder"),
        "decoder_percent": get("util.decoder"),
    }
    # a temperature of a million degrees or more is a driver's -1, not a reading
    temp = (lambda k: get(k) if get(k) is not None and get(k) < 1000000 else None)
    d["temperature"] = {
        "gpu_celsius": temp("temp"),
        "slowdown_celsius": temp("temp.slowdown"),
        "shutdown_celsius": temp("temp.shutdown"),
        "gpu_max_celsius": temp("temp.gpu_max"),
        "memory_max_celsius": temp("temp.mem_max"),
    }
    lim = have("power.min", "power.max")
    vv = v if lib.metrics else {}
    d["power"] = {
        "draw_watts": scaled(vv, "power.usage", 1000),
        "limit_watts": scaled(vv, "power.limit", 1000),
        "limit_min_watts": v["power.min"] / 1000 if lim else None,
        "limit_max_watts": v["power.max"] / 1000 if lim else None,
        "limit_default_watts": scaled(vv, "power.default", 1000),
        "energy_joules": scaled(vv, "energy", 1000),
    }
    hz = (lambda k: None if get(k) is None else get(k) * 1000000)
    d["clocks"] = {"sm_hz": hz("clock.sm"), "graphics_hz": hz("clock.graphics"),
                   "memory_hz": hz("clock.mem"), "max_sm_hz": hz("clock.max.sm"),
                   "max_graphics_hz": hz("clock.max.graphics"),
                   "max_memory_hz": hz("clock.max.mem")}
    d["fan"] = {"speed_percent": get("fan"), "rpm": None}
    ps = get("pstate")
    d["pstate"] = ps if ps is not None and 0 <= ps <= 15 else None
    ev = get("clock_events")
    d["clock_event_reasons"] = None if ev is None else {"mask": ev}
    d["pcie"] = {"gen": get("pcie.gen"), "width": get("pcie.width"),
                 "max_gen": get("pcie.max_gen"), "max_width": get("pcie.max_width")}
    mig = get("mig")
    d["mig_enabled"] = None if mig is None or mig > 1 else bool(mig)  # 0 off, 1 on
    hv = v if lib.health else {}
    ecc = "ecc.corrected" in hv and "ecc.uncorrected" in hv
    remap = all(k in hv for k in ("remap.correctable", "remap.uncorrectable",
                                  "remap.pending", "remap.failure"))
    # every GPU accepts Xid events unless the scenario says "events 0"; the
    # scenario's Xids all arrive before the first sample
    xids = sc["gpus"][gpu_index]["xid"]
    events = lib.health and v.get("events", 1) != 0
    d["health"] = {
        "pcie_replays": hv.get("pcie.replay"),
        "ecc_corrected": hv["ecc.corrected"] if ecc else None,
        "ecc_uncorrected": hv["ecc.uncorrected"] if ecc else None,
        "remapped_rows": {"correctable": hv["remap.correctable"],
                          "uncorrectable": hv["remap.uncorrectable"],
                          "pending": hv["remap.pending"] != 0,
                          "failure": hv["remap.failure"] != 0} if remap else None,
        "xid_last": (xids[-1] if xids else 0) if events else None,
        "xid_events": len(xids) if events else None,
    }
    return d


NULL_WHEN_LOST = {
    "memory": {"used_bytes": None, "free_bytes": None, "reserved_bytes": None},
    "utilization": {"gpu_percent": None, "memory_percent": None,
                    "encoder_percent": None, "decoder_percent": None},
    "temperature": {"gpu_celsius": None},
    "power": {"draw_watts": None, "limit_watts": None, "energy_joules": None},
    "clocks": {"sm_hz": None, "graphics_hz": None, "memory_hz": None},
    "fan": {"speed_percent": None},
    "pstate": None, "clock_event_reasons": None,
    "pcie": {"gen": None, "width": None}, "mig_enabled": None,
    "health": {"pcie_replays": None, "ecc_corrected": None, "ecc_uncorrected": None,
               "remapped_rows": None, "xid_last": None, "xid_events": None},
}


def expected_processes(sc, lib, gpu_index, snap_index, uuid, procinfo):
    if not lib.procs:
        return []
    g = sc["gpus"][gpu_index]
    rows = {}
    for kind in ("compute", "graphics"):
        for pid, mem in g[kind]:
            if mem is not None and mem == ULLONG_MAX:
                mem = None
            if pid in rows:
                if rows[pid]["gpu_memory_bytes"] is None:
                    rows[pid]["gpu_memory_bytes"] = mem
                continue
            rows[pid] = {"pid": pid, "device_index": snap_index, "device_uuid": uuid,
                         "kind": kind, "gpu_memory_bytes": mem, "sm_percent": None,
                         "memory_percent": None, "encoder_percent": None,
                         "decoder_percent": None, "name": None, "user": None,
                         "cmdline": None}
    mig_on = bool(g["v"].get("mig", 0))
    newest, garbage = {}, set()
    for pid, ts, smu, memu, enc, dec in g["putil"]:
        if mig_on or pid not in rows:
            continue  # MIG: no per-process util; pid not on this GPU
        if max(smu, memu, enc, dec) > 100:
            garbage.add(pid)
            continue
        if pid not in newest or ts >= newest[pid][0]:
            newest[pid] = (ts, smu, memu, enc, dec)
    if not mig_on:
        # NVML only returns samples of busy processes: no sample = idle (0 %);
        # only garbage samples = unknown
        for pid in rows:
            if pid not in newest and pid not in garbage:
                newest[pid] = (0, 0, 0, 0, 0)
    for pid, (_, smu, memu, enc, dec) in newest.items():
        rows[pid].update(sm_percent=smu, memory_percent=memu, encoder_percent=enc,
                         decoder_percent=dec)
    for pid, info in (procinfo or {}).items():
        if pid in rows:
            rows[pid].update(info)
    return [rows[p] for p in sorted(rows)]


def expected_report(sc, lib, procinfo=None):
    devices, procs, snap = [], [], 0
    lost = set()
    for i in range(len(sc["gpus"])):
        if gpu_faulted(sc, i, (lib.handle_fn,), ("NO_PERMISSION",)):
            continue
        d = expected_device(sc, lib, i, snap)
        if any(f["verb"] == "fault" and f["code"] in LOST_CODES and
               (f["gpu"] is None or f["gpu"] == i) for f in sc["faults"]):
            d.update(NULL_WHEN_LOST)
            d["state"] = "lost"
            del d["state_reason"]  # checked separately
            lost.add(snap)
        else:
            procs += expected_processes(sc, lib, i, snap, d["uuid"], procinfo)
        devices.append(d)
        snap += 1
    return devices, procs, lost


# ------------------------------------------------------------------ compare

def compare(actual, expected, path, errors):
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            errors.append("%s: expected an object, got %r" % (path, actual))
            return
        for k, ev in expected.items():
            if k not in actual:
                errors.append("%s.%s: missing" % (path, k))
            else:
                compare(actual[k], ev, "%s.%s" % (path, k), errors)
    elif isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            errors.append("%s: expected %d items, got %r" % (
                path, len(expected), actual if not isinstance(actual, list) else len(actual)))
            return
        for i, (a, e) in enumerate(zip(actual, expected)):
            compare(a, e, "%s[%d]" % (path, i), errors)
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if actual != expected or type(actual) != type(expected):
            errors.append("%s: expected %r, got %r" % (path, expected, actual))
    else:  # numbers: exact for ints, to the last bits for unit conversions
        if isinstance(actual, bool) or not isinstance(actual, (int, float)) or \
                not math.isclose(actual, expected, rel_tol=1e-12, abs_tol=0):
            errors.append("%s: expected %r, got %r" % (path, expected, actual))


# ------------------------------------------------------------------- runner

class Ctx:
    def __init__(self, args):
        self.bin = os.environ.get("GPUWATCH_BIN")
        self.libdir = args.libdir
        self.tmp = tempfile.mkdtemp(prefix="gw-nvml-")
        self.errors = []

    def lib(self, variant):
        return os.path.join(self.libdir, "lib-" + variant, "libnvidia-ml.so.1")

    def run(self, scenario, variant="full", extra=(), env_extra=None, library=None):
        env = dict(os.environ)
        env.pop("GPUWATCH_NVML_LIBRARY", None)
        if scenario:
            env["GPUWATCH_FAKE_NVML_SCENARIO"] = os.path.join(SCENARIOS, scenario)
        else:
            env.pop("GPUWATCH_FAKE_NVML_SCENARIO", None)
        env["GPUWATCH_FAKE_NVML_CALL_LOG"] = os.path.join(self.tmp, "calls.log")
        env.update(env_extra or {})
        cmd = [self.bin, "report", "--json", "--sources", "nvml,host"]
        if library != "":  # "": let gpuwatch pick (env or default name)
            cmd += ["--nvml-library", library or self.lib(variant)]
        cmd += list(extra)
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        try:
            rep = json.loads(p.stdout)
        except ValueError:
            self.fail("%s: output is not JSON (rc %d): %r / %r" % (
                " ".join(cmd), p.returncode, p.stdout[:300], p.stderr[:300]))
            rep = None
        return p.returncode, rep, p.stderr.decode(errors="replace")

    def calls(self):
        out = {}
        with open(os.path.join(self.tmp, "calls.log")) as f:
            for line in f:
                k, v = line.split()
                out[k] = int(v)
        return out

    def fail(self, msg):
        self.errors.append(msg)

    def check(self, cond, msg):
        if not cond:
            self.fail(msg)

    def source(self, rep, name="nvml"):
        for s in rep["sources"]:
            if s["name"] == name:
                return s
        self.fail("no source %s in %r" % (name, rep["sources"]))
        return {}


def check_full_report(ctx, scenario, variant="full", procinfo=None, extra=()):
    """Runs one scenario and compares every device and process value."""
    sc = read_scenario(os.path.join(SCENARIOS, scenario))
    lib = Lib(variant)
    rc, rep, err = ctx.run(scenario, variant, extra=extra)
    if rep is None:
        return None, None
    devices, procs, lost = expected_report(sc, lib, procinfo)
    ctx.check(rc == (3 if lost else 0), "%s/%s: exit %d, expected %d (stderr %r)" % (
        scenario, variant, rc, 3 if lost else 0, err))
    ctx.check(rep["schema"] == "gpuwatch.report/2", "schema %r" % rep["schema"])
    ctx.check(rep["cpu_only"] is (not devices), "cpu_only %r" % rep["cpu_only"])
    compare(rep["devices"], devices, scenario + ":devices", ctx.errors)
    compare(rep["processes"], procs, scenario + ":processes", ctx.errors)
    for i in lost:
        reason = rep["devices"][i]["state_reason"] or ""
        ctx.check("GPU is lost (15)" in reason or "Unknown Error (999)" in reason,
                  "lost device %d: reason %r names no NVML error" % (i, reason))
    src = ctx.source(rep)
    ctx.check(src.get("driver_version") == (sc["driver"] if lib.metrics else None),
              "source driver_version %r" % src.get("driver_version"))
    ctx.check(src.get("device_count") == len(devices), "source device_count %r" %
              src.get("device_count"))
    # a sample calls NVML at least once per device, unless nothing is exported
    ctx.check(isinstance(src.get("calls"), int) and
              (src["calls"] >= len(devices) - len(lost) if lib.metrics else src["calls"] == 0),
              "source calls %r" % src.get("calls"))
    # the summary adds up what the scenario says
    summ = rep["summary"]
    ctx.check(summ["gpu_count"] == len(devices), "summary gpu_count %r" % summ["gpu_count"])
    ctx.check(summ["gpus_lost"] == len(lost), "summary gpus_lost %r" % summ["gpus_lost"])
    ctx.check(summ["process_count"] == len(procs), "summary process_count %r" %
              summ["process_count"])
    with_mem = [d for d in devices if d["state"] == "ok" and
                d["memory"]["total_bytes"] is not None]
    if with_mem:
        ctx.check(summ["memory_total_bytes"] == sum(d["memory"]["total_bytes"]
                                                    for d in with_mem),
                  "summary memory_total_bytes %r" % summ["memory_total_bytes"])
    return rep, sc


# -------------------------------------------------------------------- cases

# Linux's PID_MAX_LIMIT on 64-bit machines: /proc/sys/kernel/pid_max can be
# set no higher, so a pid at or above it never names a live process.
PID_MAX_LIMIT = 4194304


def scenario_pids(path):
    """(line number, pid) of every pid a scenario file names."""
    out = []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            w = raw.split()
            if w and w[0] == "process" and len(w) > 2:
                out.append((n, int(w[2], 0)))
            elif w and w[0] in ("putil", "procname") and len(w) > 1:
                out.append((n, int(w[1], 0)))
    return out


def case_scenario_pids(ctx):
    """No scenario may name a pid that can exist: the tests expect those
    processes' name, user and command line to be absent, and on another
    machine pid 1005 was a kernel worker. Every committed scenario (here and
    tests/serve) and gen_scenario.py's output keep their pids above
    PID_MAX_LIMIT."""
    files = sorted(os.path.join(SCENARIOS, f) for f in os.listdir(SCENARIOS)
                   if f.endswith(".scn"))
    serve = os.path.join(HERE, "..", "serve", "scenarios")
    files += sorted(os.path.join(serve, f) for f in os.listdir(serve) if f.endswith(".scn"))
    gen = os.path.join(ctx.tmp, "gen.scn")
    subprocess.run([sys.executable, os.path.join(HERE, "gen_scenario.py"), "8", "200", gen],
                   check=True, timeout=60)
    files.append(gen)
    seen = 0
    for path in files:
        for line, pid in scenario_pids(path):
            seen += 1
            ctx.check(pid >= PID_MAX_LIMIT, "%s:%d: pid %d can name a live process (use %d "
                      "or more)" % (path, line, pid, PID_MAX_LIMIT))
    ctx.check(seen > 200, "only %d pids found: is the reader still right?" % seen)
    with open("/proc/sys/kernel/pid_max") as f:
        ctx.check(int(f.read()) <= PID_MAX_LIMIT, "pid_max above PID_MAX_LIMIT")


def case_zero(ctx):
    rc, rep, err = ctx.run("zero.scn")
    if not rep:
        return
    ctx.check(rc == 0, "exit %d" % rc)
    ctx.check(rep["cpu_only"] is True and rep["devices"] == [], "not CPU-only: %r" %
              rep["devices"])
    ctx.check("no NVIDIA GPU" in (rep["cpu_only_reason"] or ""),
              "cpu_only_reason %r" % rep["cpu_only_reason"])
    src = ctx.source(rep)
    ctx.check(src.get("driver_version") == "535.104.05", "driver %r" % src.get("driver_version"))
    ctx.check(src.get("library_version") == "12.535.104.05", "nvml %r" %
              src.get("library_version"))


def case_one(ctx):
    check_full_report(ctx, "one.scn")


def proc_fixture(ctx):
    """A /proc with two of one.scn's pids; returns (root, expected fields)."""
    root = os.path.join(ctx.tmp, "proc")
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    procs = {5004242: ("python3", ["python3", "train.py", "--epochs", "10"]),
             5000777: ("llama-server", ["/usr/bin/llama-server", "-m", "model.gguf"])}
    want = {}
    for pid, (comm, argv) in procs.items():
        d = os.path.join(root, str(pid))
        os.makedirs(d)
        fields = [str(pid), "(%s)" % comm] + ["S"] + ["0"] * 18 + ["424242"] + ["0"] * 30
        with open(os.path.join(d, "stat"), "w") as f:
            f.write(" ".join(fields) + "\n")
        with open(os.path.join(d, "comm"), "w") as f:
            f.write(comm + "\n")
        with open(os.path.join(d, "status"), "w") as f:
            f.write("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t%d\t%d\t%d\t%d\n"
                    % (comm, uid, uid, uid, uid))
        with open(os.path.join(d, "cmdline"), "wb") as f:
            f.write(b"\0".join(a.encode() for a in argv) + b"\0")
        want[pid] = {"name": comm, "user": user, "cmdline": " ".join(argv)}
    # owners (cgroup.h): a Kubernetes pod (named by the kubelet's log folder)
    # and a systemd service
    cid = "3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6"
    uid = "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
    pod_cg = ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/"
              "cri-containerd-%s.scope" % (uid.replace("-", "_"), cid))
    with open(os.path.join(root, "5004242", "cgroup"), "w") as f:
        f.write("0::%s\n" % pod_cg)
    with open(os.path.join(root, "5000777", "cgroup"), "w") as f:
        f.write("0::/system.slice/llama-server.service\n")
    pods = os.path.join(ctx.tmp, "pods")
    os.makedirs(os.path.join(pods, "ml-team_trainer-0_" + uid, "trainer"))
    none = {k: None for k in ("runtime", "container_id", "pod_uid", "pod", "namespace", "unit",
                              "slurm_job", "slurm_step")}
    want[5004242]["owner"] = dict(none, kind="kubernetes", runtime="containerd",
                                  container_id=cid, pod_uid=uid, pod="trainer-0",
                                  namespace="ml-team")
    want[5000777]["owner"] = dict(none, kind="systemd", unit="llama-server.service")
    os.environ["GPUWATCH_PODS_DIR"] = pods
    return root, want


def case_procinfo(ctx):
    """name, user, command line and owner (cgroup) of each process from a
    /proc fixture; the human report's OWNER column says who owns it."""
    root, want = proc_fixture(ctx)
    check_full_report(ctx, "one.scn", procinfo=want, extra=["--proc-root", root])
    env = dict(os.environ, GPUWATCH_FAKE_NVML_SCENARIO=os.path.join(SCENARIOS, "one.scn"))
    p = subprocess.run([ctx.bin, "report", "--sources", "nvml", "--nvml-library", ctx.lib("full"),
                        "--proc-root", root], env=env, capture_output=True, text=True,
                       timeout=60)
    rows = {l.split()[0]: l for l in p.stdout.splitlines() if l.strip()[:1].isdigit()}
    ctx.check("pod:ml-team/trainer-0" in rows.get("5004242", ""),
              "OWNER of the pod's process: %r" % rows.get("5004242"))
    ctx.check("llama-server.service" in rows.get("5000777", "").split("/usr/bin")[0],
              "OWNER of the service: %r" % rows.get("5000777"))


def case_two(ctx):
    check_full_report(ctx, "two.scn")


def case_eight(ctx):
    check_full_report(ctx, "eight.scn")


def case_lost(ctx):
    rep, _ = check_full_report(ctx, "lost.scn")
    if rep:
        src = ctx.source(rep)
        ctx.check(src.get("state") == "degraded", "source state %r" % src.get("state"))
        ctx.check("GPU 1 lost" in (src.get("message") or ""), "message %r" % src.get("message"))


def case_unknown(ctx):
    check_full_report(ctx, "unknown.scn")


def case_noperm(ctx):
    rep, _ = check_full_report(ctx, "noperm.scn")
    if rep:
        src = ctx.source(rep)
        msg = src.get("message") or ""
        ctx.check("GPU 1 skipped" in msg and "Insufficient Permissions" in msg,
                  "skipped GPU not named: %r" % msg)
        ctx.check(src.get("state") == "degraded", "source state %r" % src.get("state"))


def case_handleerr(ctx):
    """A handle error other than NO_PERMISSION: the GPU is listed in state
    "error" with the NVML error, nothing else known; the other GPU is whole."""
    sc = read_scenario(os.path.join(SCENARIOS, "handleerr.scn"))
    rc, rep, err = ctx.run("handleerr.scn")
    if not rep:
        return
    ctx.check(rc == 3, "exit %d, want 3 (a GPU in error)" % rc)
    ctx.check(len(rep["devices"]) == 2, "devices %d" % len(rep["devices"]))
    if len(rep["devices"]) != 2:
        return
    bad = rep["devices"][0]
    compare(bad, {"state": "error", "source_index": 0, "name": None, "uuid": None,
                  "memory": {"total_bytes": None, "used_bytes": None},
                  "temperature": {"gpu_celsius": None}}, "devices[0]", ctx.errors)
    want = "nvmlDeviceGetHandleByIndex_v2: Insufficient External Power (8)"
    ctx.check(want in (bad["state_reason"] or ""), "reason %r, want %r" % (
        bad["state_reason"], want))
    good = expected_device(sc, Lib("full"), 1, 1)
    compare(rep["devices"][1], good, "devices[1]", ctx.errors)
    compare(rep["processes"], expected_processes(sc, Lib("full"), 1, 1, good["uuid"], None),
            "processes", ctx.errors)


def case_lostopen(ctx):
    """A GPU lost before gpuwatch starts (its handle answers GPU_IS_LOST):
    listed as lost with the reason and no identity; GPU 0 is whole."""
    sc = read_scenario(os.path.join(SCENARIOS, "lostopen.scn"))
    rc, rep, err = ctx.run("lostopen.scn")
    if not rep:
        return
    ctx.check(rc == 3, "exit %d, want 3 (a GPU lost)" % rc)
    ctx.check(len(rep["devices"]) == 2, "devices %d" % len(rep["devices"]))
    if len(rep["devices"]) != 2:
        return
    compare(rep["devices"][1], dict(NULL_WHEN_LOST, state="lost", source_index=1, name=None,
                                    uuid=None), "devices[1]", ctx.errors)
    ctx.check("GPU is lost (15)" in (rep["devices"][1]["state_reason"] or ""),
              "reason %r" % rep["devices"][1]["state_reason"])
    good = expected_device(sc, Lib("full"), 0, 0)
    compare(rep["devices"][0], good, "devices[0]", ctx.errors)
    compare(rep["processes"], expected_processes(sc, Lib("full"), 0, 0, good["uuid"], None),
            "processes", ctx.errors)


def case_noprocs(ctx):
    """--no-processes: no process rows and not one process call to NVML."""
    rc, rep, _ = ctx.run("one.scn", extra=["--no-processes"])
    if rep:
        ctx.check(rc == 0 and rep["processes"] == [], "rc %d processes %r" % (
            rc, rep["processes"][:2]))
        c = ctx.calls()
        asked = {k: n for k, n in c.items() if "Process" in k}
        ctx.check(not asked, "process calls made: %r" % asked)


def case_unified(ctx):
    """No NVML memory figure (unified memory): the host's meminfo, said so."""
    sc = read_scenario(os.path.join(SCENARIOS, "unified.scn"))
    root = os.path.join(ctx.tmp, "proc")
    os.makedirs(root)
    total_kb, avail_kb = 127535296, 119823104
    with open(os.path.join(root, "meminfo"), "w") as f:
        f.write("MemTotal:       %d kB\nMemFree:        1000 kB\n"
                "MemAvailable:   %d kB\nBuffers:        0 kB\n" % (total_kb, avail_kb))
    rc, rep, err = ctx.run("unified.scn", extra=["--proc-root", root])
    if not rep:
        return
    want = expected_device(sc, Lib("full"), 0, 0)
    want["memory_api"] = "meminfo"
    want["memory"] = {"total_bytes": total_kb * 1024, "free_bytes": avail_kb * 1024,
                      "used_bytes": (total_kb - avail_kb) * 1024, "reserved_bytes": None}
    ctx.check(rc == 0, "exit %d" % rc)
    compare(rep["devices"], [want], "devices", ctx.errors)
    compare(rep["processes"], expected_processes(sc, Lib("full"), 0, 0, want["uuid"], None),
            "processes", ctx.errors)


def case_odd(ctx):
    check_full_report(ctx, "odd.scn")


def case_unterminated(ctx):
    """Strings without a NUL: every one shown is only X's and shorter than
    the largest NVML buffer (96); figures are unaffected."""
    rc, rep, err = ctx.run("unterminated.scn")
    if not rep:
        return
    ctx.check(rc == 0, "exit %d (stderr %r)" % (rc, err))
    d = rep["devices"][0] if rep["devices"] else {}
    for key in ("name", "uuid", "serial", "driver_version", "library_version"):
        v = d.get(key)
        ctx.check(isinstance(v, str) and 0 < len(v) < 96 and set(v) == {"X"},
                  "%s = %r" % (key, v))
    ctx.check(d.get("memory", {}).get("used_bytes") == 21474836480, "memory %r" % d.get("memory"))


def case_memv1(ctx):
    check_full_report(ctx, "memv1.scn")


def case_procgrow(ctx):
    check_full_report(ctx, "procgrow.scn")
    c = ctx.calls()
    # size query + exactly one fill: count*2+5 covered the growth
    ctx.check(c.get("nvmlDeviceGetComputeRunningProcesses_v2") == 2,
              "compute list calls %r (expected 2: count*2+5 retry)" %
              c.get("nvmlDeviceGetComputeRunningProcesses_v2"))


def case_mig(ctx):
    check_full_report(ctx, "mig.scn")


def case_v1only(ctx):
    """An old driver without any _v2/_v3 names: the same figures, memory v1."""
    rep, _ = check_full_report(ctx, "one.scn", variant="v1")
    c = ctx.calls()
    ctx.check(c.get("nvmlInit") == 1 and c.get("nvmlDeviceGetMemoryInfo", 0) >= 1,
              "v1 names not used: %r" % c)


def case_minimal(ctx):
    """Only init/count/handle exported: the GPU is there, every metric null."""
    check_full_report(ctx, "one.scn", variant="minimal")


def case_noinit(ctx):
    rc, rep, _ = ctx.run("one.scn", "noinit")
    if rep:
        ctx.check(rc == 0 and rep["cpu_only"], "rc %d cpu_only %r" % (rc, rep["cpu_only"]))
        reason = rep["cpu_only_reason"] or ""
        ctx.check("nvmlInit" in reason and "does not export" in reason, "reason %r" % reason)


def case_initfail(ctx):
    rc, rep, _ = ctx.run("initfail.scn")
    if rep:
        ctx.check(rc == 0 and rep["cpu_only"], "rc %d cpu_only %r" % (rc, rep["cpu_only"]))
        want = "NVML: nvmlInit_v2 failed: Driver Not Loaded (9)"
        ctx.check(want in (rep["cpu_only_reason"] or ""), "reason %r, want %r" % (
            rep["cpu_only_reason"], want))
        src = ctx.source(rep)
        ctx.check(src.get("state") in ("failed", "unavailable") and src.get("error"),
                  "source %r" % src)


def case_nolib(ctx):
    missing = os.path.join(ctx.tmp, "nowhere", "libnvidia-ml.so.1")
    rc, rep, _ = ctx.run("one.scn", library=missing)
    if rep:
        ctx.check(rc == 0 and rep["cpu_only"], "rc %d cpu_only %r" % (rc, rep["cpu_only"]))
        want = "NVML: cannot load %s: " % missing
        ctx.check(want in (rep["cpu_only_reason"] or ""), "reason %r" % rep["cpu_only_reason"])


def case_libname(ctx):
    """Without --nvml-library: $GPUWATCH_NVML_LIBRARY, else the soname
    libnvidia-ml.so.1 through the dynamic loader's search path."""
    sc = read_scenario(os.path.join(SCENARIOS, "one.scn"))
    uuid = sc["gpus"][0]["v"]["uuid"]
    # the default name, found on LD_LIBRARY_PATH (the v1-only variant: its
    # figures differ from the full one's, so we know which was loaded)
    rc, rep, _ = ctx.run("one.scn", library="", env_extra={
        "LD_LIBRARY_PATH": os.path.dirname(ctx.lib("v1"))})
    if rep:
        ctx.check([d["uuid"] for d in rep["devices"]] == [uuid] and
                  rep["devices"][0]["memory_api"] == "v1",
                  "default name did not load lib-v1: %r" % rep["devices"][:1])
    # the environment variable wins over the default name
    rc, rep, _ = ctx.run("one.scn", library="", env_extra={
        "LD_LIBRARY_PATH": os.path.dirname(ctx.lib("v1")),
        "GPUWATCH_NVML_LIBRARY": ctx.lib("full")})
    if rep:
        ctx.check(rep["devices"] and rep["devices"][0]["memory_api"] == "v2",
                  "GPUWATCH_NVML_LIBRARY not used: %r" % rep["devices"][:1])


def case_real(ctx):
    """NVIDIA's own libnvidia-ml.so.1 on this driverless machine."""
    real = os.environ.get("NVML_REAL_LIBRARY", "")
    if not os.path.exists(real):
        print("SKIP: no real libnvidia-ml.so.1 at %r" % real)
        sys.exit(77)
    rc, rep, _ = ctx.run(None, library=real)
    if rep and rep["devices"]:
        print("SKIP: this machine has a working NVIDIA driver; run scripts/gpu-smoke")
        sys.exit(77)
    if rep:
        ctx.check(rc == 0 and rep["cpu_only"] is True, "rc %d cpu_only %r" % (rc, rep["cpu_only"]))
        reason = rep["cpu_only_reason"] or ""
        ctx.check(reason.startswith("NVML: ") and "Driver Not Loaded" in reason,
                  "reason %r lacks NVML's error" % reason)
        ctx.check(rep["host"]["memory_total_bytes"], "no host memory in CPU-only mode")


def case_calllog(ctx):
    """Init once / shutdown once, never _v3 (535.x trap), memory through v2,
    and a full sample's call count as the source reports it."""
    rep, sc = check_full_report(ctx, "one.scn")
    c = ctx.calls()
    ctx.check(c.get("nvmlInit_v2") == 1 and c.get("nvmlShutdown") == 1,
              "init/shutdown not balanced once: %r" % c)
    v3 = {k: n for k, n in c.items() if k.endswith("_v3") and "Pci" not in k}
    ctx.check(not v3, "called the 535.x _v3 process lists: %r" % v3)
    ctx.check("nvmlDeviceGetMemoryInfo" not in c, "v1 memory called on a v2 driver")
    if rep:
        ctx.check(0 < ctx.source(rep)["calls"] <= c["total"],
                  "source calls %r vs log total %r" % (ctx.source(rep)["calls"], c["total"]))


def case_human(ctx):
    """The human report says which memory call was used and shows N/A."""
    env = dict(os.environ, GPUWATCH_FAKE_NVML_SCENARIO=os.path.join(SCENARIOS, "two.scn"))
    p = subprocess.run([ctx.bin, "report", "--sources", "nvml,host", "--nvml-library",
                        ctx.lib("full")], env=env, stdout=subprocess.PIPE, timeout=120)
    out = p.stdout.decode(errors="replace")
    ctx.check(p.returncode == 0, "exit %d" % p.returncode)
    ctx.check("NVIDIA T400 4GB" in out and "N/A" in out, "no N/A for unsupported: %r" % out)
    ctx.check("v2" in out, "memory api not shown: %r" % out)
    ctx.check("HEALTH" not in out, "a HEALTH line for healthy GPUs: %r" % out)
    # one.scn: Xids 63 then 94, and a row remap waiting for a reset
    env["GPUWATCH_FAKE_NVML_SCENARIO"] = os.path.join(SCENARIOS, "one.scn")
    p = subprocess.run([ctx.bin, "report", "--sources", "nvml,host", "--nvml-library",
                        ctx.lib("full")], env=env, stdout=subprocess.PIPE, timeout=120)
    out = p.stdout.decode(errors="replace")
    ctx.check("HEALTH   last Xid 94 (2 seen); row remap pending (reset the GPU)" in out,
              "no HEALTH line for one.scn's Xids and pending remap: %r" % out)


def case_smoke(ctx):
    """scripts/gpu-smoke against a stand-in nvidia-smi that reads the same
    scenario: PASS when they agree, exit 1 naming the field when they don't."""
    smoke = os.path.join(HERE, "..", "..", "scripts", "gpu-smoke")
    fake_smi = os.path.join(HERE, "fake-nvidia-smi")
    runs = (("two.scn", "full", 0, 0, ()), ("eight.scn", "full", 0, 0, ()),
            # nvidia-smi 2 MiB off: the GPU's and process 5002002's memory differ
            ("two.scn", "full", 2, 1, ("FAIL gpu 0 memory.used", "FAIL pid 5002002")),
            # a v1 driver counts reserved memory as used: nvidia-smi does not
            ("one.scn", "v1", 0, 1, ("FAIL gpu 0 memory.used",)))
    for scenario, variant, skew, want_rc, want_lines in runs:
        env = dict(os.environ, GPUWATCH_FAKE_NVML_SCENARIO=os.path.join(SCENARIOS, scenario),
                   FAKE_SMI_SKEW_MIB=str(skew))
        p = subprocess.run([sys.executable, smoke, "--gpuwatch", ctx.bin, "--nvidia-smi",
                            fake_smi, "--nvml-library", ctx.lib(variant)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        out = p.stdout.decode(errors="replace")
        ctx.check(p.returncode == want_rc, "gpu-smoke %s/%s skew %d: exit %d, want %d:\n%s" % (
            scenario, variant, skew, p.returncode, want_rc, out))
        for line in want_lines:
            ctx.check(line in out, "%r not in:\n%s" % (line, out))
        if not want_rc:
            ctx.check(" pid " in out or scenario != "eight.scn", "no process compared:\n" + out)
    # NVIDIA's own nvidia-smi on this driverless machine: "cannot run" (2)
    real_smi = os.environ.get("NVIDIA_SMI_REAL", "")
    real_lib = os.environ.get("NVML_REAL_LIBRARY", "")
    if os.path.exists(real_smi) and os.path.exists(real_lib):
        env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(real_lib))
        p = subprocess.run([sys.executable, smoke, "--gpuwatch", ctx.bin, "--nvidia-smi",
                            real_smi], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        out = p.stdout.decode(errors="replace")
        if "couldn't communicate with the NVIDIA driver" in out or p.returncode != 0:
            ctx.check(p.returncode == 2 and "nvidia-smi exit 9" in out,
                      "real nvidia-smi without driver: exit %d:\n%s" % (p.returncode, out))


def run_raw(ctx, scenario, args, env_extra=None):
    """gpuwatch report ARGS on the full library; (rc, stdout, stderr) as text."""
    env = dict(os.environ, GPUWATCH_FAKE_NVML_SCENARIO=os.path.join(SCENARIOS, scenario),
               GPUWATCH_FAKE_NVML_CALL_LOG=os.path.join(ctx.tmp, "calls.log"))
    env.update(env_extra or {})
    p = subprocess.run([ctx.bin, "report", "--sources", "nvml,host", "--nvml-library",
                        ctx.lib("full")] + list(args), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def check_selected(ctx, rep, sc, keep, what):
    """rep shows exactly the GPUs keep (scenario indexes), with their values."""
    devices, procs, _ = expected_report(sc, Lib("full"))
    want_d = [d for d in devices if d["index"] in keep]
    want_p = [p for p in procs if p["device_index"] in keep]
    errors = []
    compare(rep["devices"], want_d, what + ":devices", errors)
    compare(rep["processes"], want_p, what + ":processes", errors)
    ctx.errors.extend(errors)
    ctx.check(rep["summary"]["gpu_count"] == len(keep), "%s: summary gpu_count %r" % (
        what, rep["summary"]["gpu_count"]))
    ctx.check(rep["summary"]["process_count"] == len(want_p), "%s: summary process_count %r"
              % (what, rep["summary"]["process_count"]))


def case_select(ctx):
    """report --id / -i: GPUs by index, UUID (any case) and PCI bus id in the
    spellings of nvidia-smi, lspci and the short form; values as the
    scenario says; an id naming no GPU, or not an id at all, is exit 2
    naming it."""
    sc = read_scenario(os.path.join(SCENARIOS, "eight.scn"))
    v = [g["v"] for g in sc["gpus"]]
    bus = lambda i: v[i]["pci.bus_id"].split(":", 1)[1]  # "07:00.0"
    forms = [
        (["--id", "2"], {2}),
        (["-i", "0,7"], {0, 7}),
        (["--id=5,1"], {1, 5}),
        (["-i", v[4]["uuid"]], {4}),
        (["-i", v[4]["uuid"].lower()], {4}),
        (["-i", v[6]["uuid"].upper().replace("GPU-", "gpu-")], {6}),
        (["--id", v[3]["pci.bus_id"]], {3}),           # 00000000:37:00.0
        (["--id", "0000:" + bus(3)], {3}),             # lspci: 0000:37:00.0
        (["--id", bus(3).lower()], {3}),               # 37:00.0
        (["--id", bus(3)[:-2]], {3}),                  # 37:00, function 0
        (["-i", "1,%s,%s,1" % (v[1]["uuid"], bus(2))], {1, 2}),  # repeats: once each
    ]
    for args, keep in forms:
        rc, rep, err = ctx.run("eight.scn", extra=args)
        if rep is None:
            continue
        ctx.check(rc == 0, "%r: exit %d (%s)" % (args, rc, err))
        check_selected(ctx, rep, sc, keep, " ".join(args))
    # the human report shows only the GPUs asked for
    rc, out, err = run_raw(ctx, "eight.scn", ["-i", "3"])
    ctx.check(rc == 0 and "GPU 3  NVIDIA A100-SXM4-80GB" in out and "GPU 0 " not in out and
              "Summary: 1 GPU," in out, "human -i 3: rc %d %r" % (rc, out[:400]))
    for bad in ("8", "4294967295", "GPU-00000000-0000-0000-0000-000000000000", "ff:00.0",
                "0000:07:00.1", "3,nope"):
        rc, out, err = run_raw(ctx, "eight.scn", ["--json", "--id", bad])
        name = bad.split(",")[-1]
        ctx.check(rc == 2 and "--id: no GPU '%s' here (GPUs: 0..7)" % name in err and not out,
                  "unknown --id %r: rc %d stderr %r" % (bad, rc, err))
    for bad in ("", ",", "1,", "-1", "1.5", "a b", "1:2:3:4", "zz:00.0", "07:20.0",
                "07:00.8", "4294967296", "x" * 100):
        rc, out, err = run_raw(ctx, "eight.scn", ["-i", bad])
        ctx.check(rc == 2 and "gpuwatch report: --id: " in err and not out,
                  "bad --id %r: rc %d stderr %r" % (bad, rc, err))


def read_frames(proc, n, is_end, limit=90):
    """Reads lines from proc.stdout until n frames ended (is_end(line));
    kills proc after limit seconds (a hang fails the test, it never waits
    for a time to pass). Returns the lines read."""
    timer = threading.Timer(limit, proc.kill)
    timer.start()
    lines, frames = [], 0
    try:
        while frames < n:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.decode(errors="replace"))
            frames += bool(is_end(lines[-1]))
    finally:
        timer.cancel()
    return lines


def start_watch(ctx, scenario, args):
    env = dict(os.environ, GPUWATCH_FAKE_NVML_SCENARIO=os.path.join(SCENARIOS, scenario),
               GPUWATCH_FAKE_NVML_CALL_LOG=os.path.join(ctx.tmp, "calls.log"))
    return subprocess.Popen([ctx.bin, "report", "--sources", "nvml,host", "--nvml-library",
                             ctx.lib("full")] + list(args), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def stop_watch(ctx, proc, sig, what):
    proc.send_signal(sig)
    try:
        rest, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, err = proc.communicate()
        ctx.fail("%s: still running 90 s after signal %d" % (what, sig))
    ctx.check(proc.returncode == 0, "%s: exit %r after signal %d (stderr %r)" % (
        what, proc.returncode, sig, err))
    return rest.decode(errors="replace")


def case_watch(ctx):
    """report --watch / -l: N frames from one open monitor (NVML initialised
    once, shut down once), each with the scenario's values; SIGINT and
    SIGTERM end it with exit 0; --json is JSON Lines; frames for a pipe are
    plain text separated by one blank line."""
    sc = read_scenario(os.path.join(SCENARIOS, "eight.scn"))
    n = 4
    p = start_watch(ctx, "eight.scn", ["--json", "--watch", "0.1", "-i", "0,3"])
    lines = read_frames(p, n, lambda l: True)
    stop_watch(ctx, p, signal.SIGINT, "--json --watch")
    ctx.check(len(lines) == n, "JSON Lines: %d lines before SIGINT, want %d" % (len(lines), n))
    stamps = []
    for i, line in enumerate(lines):
        ctx.check(line.endswith("}\n") and line.count("\n") == 1, "frame %d not one line" % i)
        try:
            rep = json.loads(line)
        except ValueError:
            ctx.fail("frame %d is not JSON: %r" % (i, line[:200]))
            continue
        stamps.append(rep["timestamp"])
        if i == 0:  # process utilisation comes from samples newer than the last read
            check_selected(ctx, rep, sc, {0, 3}, "frame 0")
        else:
            devices, _, _ = expected_report(sc, Lib("full"))
            compare(rep["devices"], [d for d in devices if d["index"] in (0, 3)],
                    "frame %d:devices" % i, ctx.errors)
            ctx.check(sorted({q["device_index"] for q in rep["processes"]}) == [0, 3],
                      "frame %d: processes on %r" % (i, {q["device_index"]
                                                          for q in rep["processes"]}))
    ctx.check(stamps == sorted(stamps) and len(set(stamps)) == len(stamps),
              "timestamps not increasing: %r" % stamps)
    c = ctx.calls()
    ctx.check(c.get("nvmlInit_v2") == 1 and c.get("nvmlShutdown") == 1,
              "one monitor for %d frames: init %r, shutdown %r" % (
                  n, c.get("nvmlInit_v2"), c.get("nvmlShutdown")))

    # human frames for a pipe, -l, SIGTERM
    p = start_watch(ctx, "two.scn", ["-l", "0.1"])
    lines = read_frames(p, 3, lambda l: l.startswith("Sources:"))
    rest = stop_watch(ctx, p, signal.SIGTERM, "-l 0.1")
    text = "".join(lines)
    frames = text.split("\n\n")
    ctx.check(len(frames) == 3, "3 frames separated by blank lines: got %d" % len(frames))
    for i, f in enumerate(frames):
        ctx.check(f.startswith("Every 0.1s: gpuwatch report   ") and
                  "GPU 1  NVIDIA T400 4GB" in f and "\nSources: nvml ok" in f,
                  "frame %d: %r" % (i, f[:300]))
    ctx.check("\x1b" not in text + rest, "escape codes written to a pipe")
    # options that do not go together, values that are no interval
    rc, out, err = run_raw(ctx, "two.scn", ["--json", "--pretty", "--watch", "1"])
    ctx.check(rc == 2 and "--pretty cannot go with --watch" in err, "--pretty --watch: %r" % err)
    rc, out, err = run_raw(ctx, "two.scn", ["-l", "1", "-i", "9"])
    ctx.check(rc == 2 and "no GPU '9' here (GPUs: 0..1)" in err,
              "--watch with an unknown --id: rc %d %r" % (rc, err))


CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--libdir", required=True)
    args = ap.parse_args()
    ctx = Ctx(args)
    if not ctx.bin or not os.path.exists(ctx.bin):
        print("GPUWATCH_BIN not set or missing: %r" % ctx.bin)
        return 1
    try:
        CASES[args.case](ctx)
    finally:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    for e in ctx.errors:
        print("FAIL:", e)
    print("%s: %s" % (args.case, "FAIL (%d)" % len(ctx.errors) if ctx.errors else "ok"))
    return 1 if ctx.errors else 0


if __name__ == "__main__":
    sys.exit(main())
