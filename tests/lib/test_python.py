"""test_python.py — the Python package `gpuwatch` (python/gpuwatch) over
the built libgpuwatch, with Debian's pytest: devices against the scenario
files, bf16 answers for a table of real GPUs (NVIDIA by compute capability
in a scenario, AMD by the KFD gfx target and Intel by PCI id in copies of
the fixture trees), the watcher's callbacks firing and clearing with
hysteresis, the batch finder on simulated jobs (linear, non-linear, a noisy
neighbour) that raise the frameworks' out-of-memory errors, and progress
reports. Expected values are facts about the GPUs and the scenarios' own
numbers, never the library's output.

Environment (meson sets it): GPUWATCH_BUILD_ROOT, GPUWATCH_SOURCE_ROOT.
"""
import json
import os
import random
import shutil
import sys
import threading
import time

import pytest

BUILD = os.environ["GPUWATCH_BUILD_ROOT"]
SOURCE = os.environ["GPUWATCH_SOURCE_ROOT"]
FAKE_NVML = os.path.join(BUILD, "tests", "nvml", "lib-full", "libnvidia-ml.so.1")
FIXTURES = os.path.join(SOURCE, "tests", "fixtures")
os.environ.setdefault("GPUWATCH_LIBRARY", os.path.join(BUILD, "src", "lib", "libgpuwatch.so.1"))
sys.path.insert(0, os.path.join(SOURCE, "python"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "top"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

import gpuwatch  # noqa: E402
import scenario  # noqa: E402  (tests/top: its own reader of the scenario format)
from simjob import OutOfMemoryError, SimJob, XlaRuntimeError, set_used  # noqa: E402

GIB = 1 << 30
MIB = 1 << 20


def nvml_monitor(path):
    os.environ["GPUWATCH_FAKE_NVML_SCENARIO"] = path
    return gpuwatch.Monitor(sources="nvml", nvml_library=FAKE_NVML)


def write_scenario(tmp_path, gpus, name="t.scn"):
    """gpus: [dict of scenario keys]; returns the file's path."""
    lines = ["driver 550.54.15", "nvml 12.550.54.15", "cuda 12040"]
    for g in gpus:
        lines.append("gpu")
        lines += ["%s %s" % kv for kv in g.items()]
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def gpu(name, total, cc=None, used=0, used_file=None, i=0):
    g = {"name": name, "uuid": "GPU-%08x-0000-4000-8000-000000000000" % i,
         "pci.bus_id": "00000000:%02X:00.0" % (i + 1), "memory.total": total,
         "memory.reserved": 0, "memory.used": used, "memory.free": total - used}
    if cc:
        g["cc.major"], g["cc.minor"] = cc
    if used_file:
        g["memory.used.file"] = used_file
    return g


# ------------------------------------------------------------- devices

def test_devices_match_scenario():
    path = os.path.join(SOURCE, "tests", "nvml", "scenarios", "eight.scn")
    sc = scenario.read(path)
    with nvml_monitor(path) as m:
        devs = m.devices()
        assert len(devs) == len(sc["gpus"]) == 8
        for d, g in zip(devs, (g["v"] for g in sc["gpus"])):
            assert d.name == g["name"] and d.uuid == g["uuid"]
            assert d.vendor == "nvidia" and d.state == "ok"
            assert d.memory_total == int(g["memory.total"])
            free, total = m.mem_get_info(d.index)
            assert total == int(g["memory.total"])
            assert free == int(g["memory.free"])
            assert m.mem_get_info(d.index, fresh=True) == (free, total)
        with pytest.raises(gpuwatch.GpuwatchError) as e:
            m.mem_get_info(8)
        assert "there are 8 devices" in str(e.value) and e.value.code == -14


def test_cpu_only_host(tmp_path):
    os.environ.pop("GPUWATCH_FAKE_NVML_SCENARIO", None)  # the fake answers DRIVER_NOT_LOADED
    with gpuwatch.Monitor(sources="nvml", nvml_library=FAKE_NVML) as m:
        assert m.devices() == []
        with pytest.raises(gpuwatch.GpuwatchError) as e:
            m.mem_get_info(0)
        assert "no GPU here" in str(e.value)


def test_metric_numbers_match_header():
    """The enum values the package hard-codes are the header's."""
    text = open(os.path.join(SOURCE, "include", "gpuwatch.h")).read()

    def position(enum_first, name):
        body = text[text.index(enum_first):]
        body = body[:body.index("}")]
        names = [ln.strip().split()[0].rstrip(",=") for ln in body.splitlines()
                 if ln.strip().startswith("GW_")]
        return names.index(name)
    assert position("GW_METRIC_MEM_TOTAL = 0", "GW_METRIC_MEM_TOTAL") == gpuwatch.METRIC_MEM_TOTAL
    assert position("GW_METRIC_MEM_TOTAL = 0", "GW_METRIC_MEM_USED") == gpuwatch.METRIC_MEM_USED
    assert position("GW_METRIC_MEM_TOTAL = 0", "GW_METRIC_UTIL_GPU") == gpuwatch.METRIC_UTIL_GPU
    assert position("GW_METRIC_MEM_TOTAL = 0", "GW_METRIC_TEMP") == gpuwatch.METRIC_TEMP
    assert position("GW_DEVICE_UUID = 0", "GW_DEVICE_ARCH") == gpuwatch._TEXT_ARCH
    assert position("GW_DEVICE_UUID = 0", "GW_DEVICE_NAME") == gpuwatch._TEXT_NAME


# ---------------------------------------------------------------- bf16

NVIDIA_BF16 = [  # (GPU, compute capability, bf16): NVIDIA's CUDA GPU table
    ("Tesla V100-SXM2-32GB", (7, 0), False),
    ("Tesla T4", (7, 5), False),
    ("NVIDIA GeForce RTX 2080", (7, 5), False),
    ("NVIDIA A100-SXM4-80GB", (8, 0), True),
    ("NVIDIA GeForce RTX 3090", (8, 6), True),
    ("NVIDIA L40S", (8, 9), True),
    ("NVIDIA H100 80GB HBM3", (9, 0), True),
    ("NVIDIA B200", (10, 0), True),
]


def test_bf16_nvidia(tmp_path):
    gpus = [gpu(n, 16 * GIB, cc, i=i) for i, (n, cc, _) in enumerate(NVIDIA_BF16)]
    gpus.append(gpu("Unknown GPU", 8 * GIB, None, i=len(gpus)))
    with nvml_monitor(write_scenario(tmp_path, gpus)) as m:
        for i, (name, cc, want) in enumerate(NVIDIA_BF16):
            got, why = m.bf16_support(i)
            assert got is want, "%s: %s (%s)" % (name, got, why)
            assert "%d.%d" % cc in why
        got, why = m.bf16_support(len(NVIDIA_BF16))
        assert got is None and "compute capability" in why


AMD_BF16 = [  # (GPU, gfx_target_version of its KFD node, LLVM target, bf16)
    ("Instinct MI250X", 90010, "gfx90a", True),
    ("Instinct MI300X", 90402, "gfx942", True),
    ("Instinct MI100", 90008, "gfx908", False),
    ("Radeon VII", 90006, "gfx906", False),
    ("Radeon RX 6900 XT", 100300, "gfx1030", False),
    ("Radeon RX 7900 XTX", 110000, "gfx1100", True),
    ("Radeon 780M", 110003, "gfx1103", True),
    ("Radeon RX 9070 XT", 120001, "gfx1201", True),
]


def with_kfd(tmp_path, fixture, gfx):
    root = tmp_path / ("%s-%d" % (fixture, gfx))
    shutil.copytree(os.path.join(FIXTURES, fixture), root, symlinks=True)
    props = root / "sys/class/kfd/kfd/topology/nodes/1/properties"
    text = props.read_text().splitlines()
    props.write_text("\n".join("gfx_target_version %d" % gfx if ln.startswith("gfx_target")
                               else ln for ln in text) + "\n")
    return str(root)


@pytest.mark.parametrize("name,gfx,target,want", AMD_BF16)
def test_bf16_amd(tmp_path, name, gfx, target, want):
    root = with_kfd(tmp_path, "rdna3", gfx)
    with gpuwatch.Monitor(sources="amdgpu", sys_root=os.path.join(root, "sys"),
                          proc_root=os.path.join(root, "proc")) as m:
        (d,) = m.devices()
        assert d.arch == target
        got, why = m.bf16_support(0)
        assert got is want, "%s: %s" % (name, why)
        assert target in why


def test_bf16_amd_fixtures_and_no_kfd():
    cases = [("mi300", ["gfx942"], [True]), ("two_amd", ["gfx1100", "gfx1030"], [True, False]),
             ("apu", ["gfx1103"], [True]), ("oldkernel", [None], [None])]
    for fixture, targets, wants in cases:
        root = os.path.join(FIXTURES, fixture)
        with gpuwatch.Monitor(sources="amdgpu", sys_root=os.path.join(root, "sys"),
                              proc_root=os.path.join(root, "proc")) as m:
            devs = m.devices()
            assert [d.arch for d in devs] == targets, fixture
            for i, want in enumerate(wants):
                got, why = m.bf16_support(i)
                assert got is want, "%s %d: %s" % (fixture, i, why)
                if want is None:
                    assert "KFD" in why


INTEL_BF16 = [  # (GPU, PCI device id, bf16)
    ("Arc A770 (DG2, Xe-HPG)", 0x56A0, True),
    ("Data Center GPU Max 1550 (Xe-HPC)", 0x0BD5, True),
    ("Arc B580 (Xe2-HPG)", 0xE20B, True),
    ("Iris Xe, Alder Lake-P (Xe-LP)", 0x46A6, False),
    ("unlisted id", 0x1234, None),
]


@pytest.mark.parametrize("name,pci_id,want", INTEL_BF16)
def test_bf16_intel(tmp_path, name, pci_id, want):
    root = tmp_path / "arc"
    shutil.copytree(os.path.join(FIXTURES, "arc_xe"), root, symlinks=True)
    dev = os.path.realpath(root / "sys/class/drm/card0/device")
    with open(os.path.join(dev, "device"), "w") as f:
        f.write("0x%04x\n" % pci_id)
    with gpuwatch.Monitor(sources="intel", sys_root=str(root / "sys"),
                          proc_root=str(root / "proc")) as m:
        got, why = m.bf16_support(0)
        assert got is want, "%s: %s" % (name, why)


# ------------------------------------------------------------- watcher

def test_watcher_fires_and_clears(tmp_path):
    used = tmp_path / "used0"
    total = 80 * GIB
    set_used(used, int(0.2 * total))
    path = write_scenario(tmp_path, [gpu("NVIDIA A100-SXM4-80GB", total, (8, 0),
                                         used_file=str(used)),
                                     gpu("NVIDIA A100-SXM4-80GB", total, (8, 0), i=1)])
    events = []
    lock = threading.Lock()

    def on(ev):
        with lock:
            events.append((ev["device"], ev["previous"], ev["level"], ev["ratio"]))

    with nvml_monitor(path) as m, gpuwatch.Watcher(on, interval=0.01, warn=0.9, critical=0.97,
                                                   hysteresis=0.05, monitor=m) as w:
        def at(ratio):
            set_used(used, int(ratio * total))
            n = w.samples
            deadline = time.monotonic() + 20
            while w.samples < n + 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert w.samples >= n + 2

        for r in (0.5, 0.91, 0.88, 0.98, 0.95, 0.915, 0.84, 0.89):
            at(r)
        with lock:
            got = list(events)
        assert w.level(0) == "normal" and w.level(1) == "normal"
        assert not w.errors
    # 0.88 stays warning (>= 0.90 - 0.05), 0.95 stays critical (>= 0.97 -
    # 0.05), 0.915 -> warning, 0.84 -> normal, 0.89 stays normal (< 0.90)
    assert [(p, l) for _, p, l, _ in got] == [("normal", "warning"), ("warning", "critical"),
                                              ("critical", "warning"), ("warning", "normal")]
    assert all(abs(r - want) < 1e-6 for (*_, r), want in zip(got, [0.91, 0.98, 0.915, 0.84]))
    assert all(d == 0 for d, *_ in got)


def test_watcher_callback_error_is_kept(tmp_path):
    used = tmp_path / "used0"
    set_used(used, 79 * GIB)
    path = write_scenario(tmp_path, [gpu("A100", 80 * GIB, (8, 0), used_file=str(used))])

    def boom(ev):
        raise ValueError("callback failed")
    with nvml_monitor(path) as m, gpuwatch.Watcher(boom, interval=0.01, monitor=m) as w:
        deadline = time.monotonic() + 20
        while not w.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert isinstance(w.errors[0], ValueError)
        with pytest.raises(gpuwatch.GpuwatchError) as e:
            gpuwatch.Watcher(boom, warn=0.99, critical=0.5, monitor=m)
        assert "critical" in str(e.value)


# -------------------------------------------------------- batch finder

def largest_fitting(job, lo, hi, neighbour=0):
    best = None
    for b in range(lo, hi + 1):
        if job.fits(b, neighbour):
            best = b
    return best


def run_finder(tmp_path, job_args, lo=1, hi=4096, procs_file=None, **kw):
    used = tmp_path / "used0"
    set_used(used, 0)
    total = 80 * GIB
    g = gpu("NVIDIA A100-SXM4-80GB", total, (8, 0), used_file=str(used))
    if procs_file:
        g["processes.file"] = procs_file
    path = write_scenario(tmp_path, [g])
    m = nvml_monitor(path)
    job = SimJob(str(used), total, **job_args)
    r = gpuwatch.find_batch_size(job.step, lo, hi, device=0, cleanup=job.cleanup, monitor=m,
                                 **kw)
    return m, job, r


@pytest.mark.parametrize("error", ["torch", "jax", "hip"])
def test_batch_linear(tmp_path, error):
    need = lambda b: 2 * GIB + b * 45 * MIB
    m, job, r = run_finder(tmp_path, dict(need=need, error=error), margin=0.1)
    with m:
        limit = largest_fitting(job, 1, 4096)
        assert r.largest_ok == limit and r.smallest_oom == limit + 1
        assert r.batch == int(limit * 0.9)
        assert r.ooms == sum(1 for _, ok in job.trials if not ok) >= 1
        assert r.trials == len(job.trials) <= 4
        assert job.order_errors == 0  # cleanup ran after every trial, OOM or not
        assert abs(r.bytes_per_sample - 45 * MIB) < 0.01 * 45 * MIB


def test_batch_nonlinear(tmp_path):
    # attention-like: a quadratic term on top of the linear one
    need = lambda b: 1 * GIB + b * 20 * MIB + b * b * 64 * 1024
    m, job, r = run_finder(tmp_path, dict(need=need), margin=0.05)
    with m:
        limit = largest_fitting(job, 1, 4096)
        assert r.largest_ok == limit and r.smallest_oom == limit + 1
        assert r.batch == int(limit * 0.95)
        assert job.order_errors == 0


@pytest.mark.parametrize("listed", [True, False], ids=["process-list", "device-only"])
def test_batch_noisy_neighbour(tmp_path, listed):
    rng = random.Random(7)
    neighbour = lambda: rng.choice([3, 4, 5, 6]) * GIB
    need = lambda b: 2 * GIB + b * 60 * MIB
    procs = str(tmp_path / "procs") if listed else None
    m, job, r = run_finder(tmp_path, dict(need=need, neighbour=neighbour, procs_file=procs),
                           margin=0.05, procs_file=procs)
    with m:
        # whatever ran, ran with the neighbour of that moment
        assert (r.largest_ok, True) in job.trials
        assert r.smallest_oom is None or r.smallest_oom > r.largest_ok
        # the answer fits even when the neighbour holds the most it ever does
        assert job.fits(r.batch, neighbour=6 * GIB)
        # and the search went on until the bracket was within what the
        # neighbour's 3 GiB swing spans in batch sizes
        band = 3 * GIB // (60 * MIB)
        assert r.largest_ok >= largest_fitting(job, 1, 4096, neighbour=6 * GIB) - band
        if r.smallest_oom:
            assert r.smallest_oom - r.largest_ok <= band + 1
        assert job.order_errors == 0
        assert r.measured == ("process" if listed else "device")
        if listed:  # the job's own memory was measured: the model is exact
            assert abs(r.bytes_per_sample - 60 * MIB) < 0.01 * 60 * MIB


def test_batch_cache(tmp_path):
    cache = str(tmp_path / "cache" / "batch-sizes.json")
    need = lambda b: 2 * GIB + b * 45 * MIB
    m, job, r = run_finder(tmp_path, dict(need=need), cache_key="esm2/seq1024", dtype="bf16",
                           cache_path=cache)
    with m:
        assert not r.from_cache
        data = json.load(open(cache))
        (e,) = data["entries"]
        assert (e["key"], e["dtype"], e["batch"]) == ("esm2/seq1024", "bf16", r.batch)
        assert e["device"] == "GPU-00000000-0000-4000-8000-000000000000"
        job.trials.clear()
        r2 = gpuwatch.find_batch_size(job.step, 1, 4096, device=0, cleanup=job.cleanup,
                                      monitor=m, cache_key="esm2/seq1024", dtype="bf16",
                                      cache_path=cache)
        assert r2.from_cache and r2.batch == r.batch and job.trials == []
        r3 = gpuwatch.find_batch_size(job.step, 1, 4096, device=0, cleanup=job.cleanup,
                                      monitor=m, cache_key="esm2/seq1024", dtype="bf16",
                                      cache_path=cache, refresh=True)
        assert not r3.from_cache and r3.largest_ok == r.largest_ok


def test_batch_errors(tmp_path):
    need = lambda b: 2 * GIB + b * 45 * MIB
    with pytest.raises(gpuwatch.GpuwatchError) as e:
        run_finder(tmp_path, dict(need=need), lo=5000, hi=6000)
    assert "(lo)" in str(e.value)

    def broken(batch):
        raise KeyError("not an OOM")
    with pytest.raises(KeyError):
        gpuwatch.find_batch_size(broken, 1, 64)
    # no device: doubling and bisection only
    calls = []

    def cpu_job(b):
        calls.append(b)
        if b > 100:
            raise MemoryError()
    r = gpuwatch.find_batch_size(cpu_job, 1, 1000, margin=0)
    assert r.batch == 100 and r.smallest_oom == 101 and r.bytes_per_sample == 0
    assert r.measured == "none"


def test_batch_interrupt_propagates():
    """Ctrl-C inside a trial stops the search and reaches the caller (it
    must not be swallowed by the ctypes callback and taken as a success)."""
    calls = []

    def step(b):
        calls.append(b)
        if b >= 8:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        gpuwatch.find_batch_size(step, 1, 1 << 20)
    assert calls[-1] == 8 and len(calls) == 4  # 1, 2, 4, 8: nothing after it


def test_closed_and_bad_handles(tmp_path):
    path = os.path.join(SOURCE, "tests", "nvml", "scenarios", "two.scn")
    m = nvml_monitor(path)
    assert len(m.devices()) == 2
    with pytest.raises(gpuwatch.GpuwatchError):
        m.mem_get_info(-1)  # never a read outside the table
    m.close()
    for call in (m.devices, m.sample, lambda: m.mem_get_info(0), lambda: m.bf16_support(0)):
        with pytest.raises(gpuwatch.GpuwatchError):
            call()
    m.close()  # twice is fine


def test_watcher_stopped_from_its_callback(tmp_path):
    used = tmp_path / "used0"
    set_used(used, 79 * GIB)
    path = write_scenario(tmp_path, [gpu("A100", 80 * GIB, (8, 0), used_file=str(used))])
    seen = []
    holder = {}

    def once(ev):
        seen.append(ev["level"])
        holder["w"].stop()
    with nvml_monitor(path) as m:
        holder["w"] = w = gpuwatch.Watcher(once, interval=0.01, warn=0.5, critical=0.99,
                                          hysteresis=0.1, monitor=m)
        for i in range(60):  # a running watcher would call at each flip
            set_used(used, (79 if i % 2 else 10) * GIB)
            time.sleep(0.01)
        assert seen == ["warning"]
        with pytest.raises(gpuwatch.GpuwatchError):
            w.level(0)


@pytest.mark.parametrize("exc,want", [
    (OutOfMemoryError("x"), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"), True),
    (XlaRuntimeError("RESOURCE_EXHAUSTED: Out of memory"), True),
    (type("ResourceExhaustedError", (Exception,), {})("OOM when allocating tensor"), True),
    (type("OutOfMemoryError", (Exception,), {})("cupy"), True),
    (MemoryError(), True),
    (RuntimeError("shape mismatch"), False),
    (type("BoomError", (Exception,), {})("not memory"), False),
    (ValueError("bad batch"), False),
])
def test_is_oom_error(exc, want):
    assert gpuwatch.is_oom_error(exc) is want


# ------------------------------------------------------------- progress

def test_report_progress(tmp_path):
    folder = tmp_path / "progress"
    os.environ["GPUWATCH_PROGRESS"] = "dir:" + str(folder)
    try:
        gpuwatch.report_progress("embed", "GPU-1234", 40, 100, "seqs", "shard 3")
        (f,) = [p for p in folder.iterdir() if p.suffix == ".json"]
        rec = json.loads(f.read_text())
        assert (rec["job"], rec["gpu"], rec["done"], rec["total"], rec["unit"]) == \
            ("embed", "GPU-1234", 40, 100, "seqs")
        with pytest.raises(gpuwatch.GpuwatchError) as e:
            gpuwatch.report_progress("embed", "GPU-1234", 101, 100)
        assert "done" in str(e.value)
    finally:
        del os.environ["GPUWATCH_PROGRESS"]


# ------------------------------------------------------------ dashboard

def dash_env(tmp_path):
    path = os.path.join(SOURCE, "tests", "nvml", "scenarios", "two.scn")
    env = dict(os.environ, GPUWATCH_FAKE_NVML_SCENARIO=path, GPUWATCH_NVML_LIBRARY=FAKE_NVML,
               PYTHONPATH=os.path.join(SOURCE, "python"))
    env.pop("GPUWATCH_PROGRESS", None)
    return env, scenario.read(path)


def test_dashboard_pipe(tmp_path):
    import subprocess
    env, sc = dash_env(tmp_path)
    env["DASH_JOB"] = "dash-test"
    env["GPUWATCH_PROGRESS"] = "dir:" + str(tmp_path / "progress")
    done = tmp_path / "done"
    out = subprocess.run([sys.executable, os.path.join(SOURCE, "tests", "lib", "dashboard_job.py"),
                          "100", "10", "0.2", str(done)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) >= 3  # the first draw, some intervals, the last draw
    for ln in lines:
        assert ln.startswith("gpuwatch ") and "\x1b" not in ln
        stamp = ln.split()[1]
        assert time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
    last = lines[-1].split(" ", 2)[2]
    gpus = [dict(kv.split("=") for kv in part.split()) for part in last.split(" | ")]
    assert [g["gpu"] for g in gpus] == ["0", "1"]
    for g, s in zip(gpus, sc["gpus"]):
        v = s["v"]
        assert (g["done"], g["total"], g["pct"]) == ("100", "100", "100.0")
        assert int(g["mem_total"]) == v["memory.total"]
        assert int(g["mem_used"]) == v["memory.used"]
        util = v.get("util.gpu")
        assert g["util"] == ("-" if util is None else "%d" % util)
    assert float(gpus[0]["rate"]) > 0
    assert done.read_text() == "0\n"  # no error in the dashboard
    # the job's progress reached gpuwatch (what `gpuwatch top` shows)
    recs = [json.loads(p.read_text()) for p in (tmp_path / "progress").glob("*.json")]
    assert sorted((r["gpu"], r["done"]) for r in recs) == sorted(
        (s["v"]["uuid"], 100) for s in sc["gpus"])


def test_dashboard_tty(tmp_path):
    import shlex
    import subprocess
    env, sc = dash_env(tmp_path)
    done = tmp_path / "done"
    session = "gw-dash-%d" % os.getpid()
    cmd = " ".join(shlex.quote(a) for a in [
        sys.executable, os.path.join(SOURCE, "tests", "lib", "dashboard_job.py"), "100", "10",
        "0.1", str(done)])
    tmux = ["tmux", "-L", session, "-f", "/dev/null"]
    envs = " ".join("%s=%s" % (k, shlex.quote(env[k])) for k in (
        "GPUWATCH_FAKE_NVML_SCENARIO", "GPUWATCH_NVML_LIBRARY", "PYTHONPATH", "GPUWATCH_LIBRARY"))
    subprocess.run(tmux + ["new-session", "-d", "-s", session, "-x", "160", "-y", "20",
                           "env LANG=C.UTF-8 %s %s" % (envs, cmd)], check=True, timeout=30)
    try:
        deadline = time.monotonic() + 60
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done.exists()
        screen = subprocess.run(tmux + ["capture-pane", "-p", "-t", session], check=True,
                                capture_output=True, text=True, timeout=30).stdout
    finally:
        done.unlink(missing_ok=True)
        subprocess.run(tmux + ["kill-server"], timeout=30)
    rows = [ln for ln in screen.splitlines() if ln.startswith("GPU ")]
    assert len(rows) == 2, screen  # redrawn in place: one row per GPU, never scrolled
    for i, (row, s) in enumerate(zip(rows, sc["gpus"])):
        v = s["v"]
        assert row.startswith("GPU %d %s" % (i, v["name"][:18]))
        assert "100/100" in row and "100.0%" in row and "seq/s" in row
        assert "\u2588" * 20 in row  # a full bar
        used = v["memory.used"]  # IEC units, one decimal; bytes below 1 KiB
        text = "%d B" % used if used < 1024 else "%.1f GiB" % (used / 2.0 ** 30)
        assert "mem %s/%.1f GiB" % (text, v["memory.total"] / 2.0 ** 30) in row, row
