#!/usr/bin/env python3
"""libgpuwatch for applications (issue 15): the cost of asking for free
memory, and how many trials the batch-size finder needs.

Owns: the two benchmarks of the issue, each against its peer in the same
run, on the fake NVML (tests/nvml):

  1. mem_get_info per call on an 8-GPU scenario (eight.scn):
     - from C through the shared library (bench/lib_memget): cached, fresh,
       and a bare read of the memory table;
     - from Python (python/gpuwatch): gpuwatch.mem_get_info(i) cached and
       fresh, against pynvml's nvmlDeviceGetMemoryInfo(handle) (Debian's
       python3-pynvml, unpacked by scripts/deps.sh) loading the same fake
       libnvidia-ml.so.1; and, as the floor under both, an empty Python
       method call. Each figure is the best of 5 rounds of N calls in a
       fresh interpreter.
  2. Trials to converge of gpuwatch.find_batch_size against plain doubling
     then binary search (PyTorch Lightning's BatchSizeFinder "binsearch"
     mode, written here from its documented behaviour: double until the
     first OOM, then halve the interval until it is one wide) over the same
     range [1, 65536], on simulated jobs (tests/lib/simjob.py) on an 80 GiB
     GPU: linear ones at five per-sample sizes, non-linear (a quadratic
     term) ones, and linear ones beside a neighbour whose memory changes at
     every trial (3-6 GiB), once with NVML's process list (the job's own
     memory is measured) and once with device memory only. Trials and OOMs
     per workload, totals, and the ratio; the target is <= half the trials
     per family and, in every workload, never more OOMs. The answer column: largest batch that ran, each
     finder (with a neighbour the limit itself moves between trials).

    bench/lib_bench.py [--build DIR] [--calls N] [--real-nvml]

With --real-nvml (a machine with an NVIDIA GPU and its driver) part 1 runs
against the driver's libnvidia-ml.so.1 instead, where pynvml's call reaches
the kernel driver as it does in production.
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
sys.path.insert(0, os.path.join(TOP, "python"))
GIB, MIB = 1 << 30, 1 << 20

PY_TIMING = r'''
import os, sys, timeit
n = int(sys.argv[1]); what = sys.argv[2]
def best(fn):
    return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e9
if what == "gpuwatch":
    import gpuwatch
    devs = gpuwatch.devices()
    k = len(devs)
    i = min(3, k - 1)
    cached = best(lambda: gpuwatch.mem_get_info(i))
    fresh = best(lambda: gpuwatch.mem_get_info(i, fresh=True))
    print("gpus %d cached_ns %.1f fresh_ns %.1f" % (k, cached, fresh))
elif what == "pynvml":
    import pynvml
    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(min(3, pynvml.nvmlDeviceGetCount() - 1))
    print("cached_ns %.1f" % best(lambda: pynvml.nvmlDeviceGetMemoryInfo(h)))
else:
    class M:
        def get(self, i):
            return None
    m = M()
    print("floor_ns %.1f" % best(lambda: m.get(3)))
'''


def kv(text):
    w = text.split()
    return {w[i]: float(w[i + 1]) for i in range(0, len(w) - 1, 2)}


def bench_memget(a, tmp):
    fake_dir = os.path.join(a.build, "tests", "nvml", "lib-full")
    env = dict(os.environ,
               GPUWATCH_LIBRARY=os.path.join(a.build, "src", "lib", "libgpuwatch.so.1"),
               PYTHONPATH=os.pathsep.join([os.path.join(TOP, "python"), os.path.join(
                   TOP, ".deps", "nvidia", "root", "usr", "lib", "python3", "dist-packages")]))
    if not a.real_nvml:  # the fake library for both, and no sysfs / proc GPU of this host
        env.update(GPUWATCH_FAKE_NVML_SCENARIO=os.path.join(
            TOP, "tests", "nvml", "scenarios", "eight.scn"),
            GPUWATCH_NVML_LIBRARY=os.path.join(fake_dir, "libnvidia-ml.so.1"),
            GPUWATCH_SYS_ROOT=tmp, GPUWATCH_PROC_ROOT=tmp, LD_LIBRARY_PATH=fake_dir)

    def run(cmd):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if r.returncode:
            sys.exit("bench: %s failed: %s" % (cmd[:3], r.stderr[-2000:]))
        return kv(r.stdout)
    c = run([os.path.join(a.build, "bench", "lib_memget"), str(a.calls * 5)])
    py = [sys.executable, "-c", PY_TIMING, str(a.calls)]
    g, p, f = run(py + ["gpuwatch"]), run(py + ["pynvml"]), run(py + ["floor"])
    print("mem_get_info per call, %s NVML, %d GPUs (best of 5 x %d calls):" % (
        "the driver's" if a.real_nvml else "fake", c["devices"], a.calls))
    print("  C        cached %7.1f ns   fresh %7.1f ns   table read %5.1f ns" % (
        c["cached_ns"], c["fresh_ns"], c["table_ns"]))
    print("  Python   gpuwatch cached %7.1f ns   fresh %7.1f ns" % (g["cached_ns"],
                                                                    g["fresh_ns"]))
    print("  Python   pynvml nvmlDeviceGetMemoryInfo %7.1f ns" % p["cached_ns"])
    print("  Python   floor: an empty method call %7.1f ns" % f["floor_ns"])
    ratio = p["cached_ns"] / g["cached_ns"]
    print("  ratio pynvml / gpuwatch cached: %.2fx from Python (target >= 10x: %s); "
          "%.1fx from C" % (ratio, "met" if ratio >= 10 else "MISSED",
                            p["cached_ns"] / c["cached_ns"]))
    print("  the most any Python call can gain over pynvml here: %.1fx (pynvml / floor)" %
          (p["cached_ns"] / f["floor_ns"]))
    return ratio


def lightning_binsearch(step, cleanup, lo, hi):
    """Doubling from lo until the first OOM, then binary search until the
    interval is one wide; returns (largest that ran, trials, ooms)."""
    from gpuwatch import is_oom_error
    low, high, size, trials, ooms = 0, None, lo, 0, 0
    while True:
        trials += 1
        try:
            step(size)
            ok = True
        except Exception as e:  # noqa: BLE001
            if not is_oom_error(e):
                raise
            ok = False
        cleanup()
        if ok:
            low = size
            if high is None:
                if size >= hi:
                    break
                size = min(size * 2, hi)
                continue
        else:
            ooms += 1
            high = size
        if high - low <= 1:
            break
        size = (low + high) // 2
    return low, trials, ooms


def workloads():
    lin = [(("linear %g MiB/sample" % p), (lambda p: lambda b: 2 * GIB + int(b * p * MIB))(p),
            None) for p in (0.5, 3, 17, 45, 210)]
    quad = [("quadratic %d KiB/sample^2" % q,
             (lambda q: lambda b: 1 * GIB + b * 8 * MIB + b * b * q * 1024)(q), None)
            for q in (4, 64, 1024)]
    noisy = [("45 MiB/sample, neighbour seed %d" % s, lambda b: 2 * GIB + b * 45 * MIB, s)
             for s in (1, 2, 3, 4, 5)]
    return [("linear", lin, True), ("non-linear", quad, True),
            ("noisy neighbour", noisy, True),
            ("noisy neighbour, no process list", noisy, False)]


def bench_batch(a, tmp):
    os.environ["GPUWATCH_LIBRARY"] = os.path.join(a.build, "src", "lib", "libgpuwatch.so.1")
    import gpuwatch
    from simjob import SimJob, set_used
    total = 80 * GIB
    used, procs = os.path.join(tmp, "used0"), os.path.join(tmp, "procs0")
    set_used(used, 0)
    scn = os.path.join(tmp, "a100.scn")
    with open(scn, "w") as f:
        f.write("driver 550.54.15\nnvml 12.550.54.15\ncuda 12040\ngpu\n"
                "name NVIDIA A100-SXM4-80GB\nuuid GPU-00000000-0000-4000-8000-000000000000\n"
                "pci.bus_id 00000000:07:00.0\ncc.major 8\ncc.minor 0\nmemory.total %d\n"
                "memory.reserved 0\nmemory.used 0\nmemory.free %d\nmemory.used.file %s\n"
                "processes.file %s\n" % (total, total, used, procs))
    os.environ["GPUWATCH_FAKE_NVML_SCENARIO"] = scn
    mon = gpuwatch.Monitor(sources="nvml", nvml_library=os.path.join(
        a.build, "tests", "nvml", "lib-full", "libnvidia-ml.so.1"))
    lo, hi = 1, 65536
    print("\nbatch-size finder vs doubling + binary search (Lightning's binsearch), "
          "range [%d, %d], 80 GiB GPU:" % (lo, hi))
    print("  %-34s %14s %14s %10s" % ("workload", "gpuwatch t/oom", "doubling t/oom",
                                      "answer"))
    verdicts = []
    for family, cases, listed in workloads():
        sums = [0, 0, 0, 0]
        more_ooms = 0  # workloads where gpuwatch ran out of memory more often
        if os.path.exists(procs):
            os.unlink(procs)  # no process list: device-level memory only
        for name, need, seed in cases:
            rng = random.Random(seed)
            nb = (lambda: rng.choice([3, 4, 5, 6]) * GIB) if seed else None
            job = SimJob(used, total, need, neighbour=nb, procs_file=procs if listed else None)
            r = gpuwatch.find_batch_size(job.step, lo, hi, device=0, cleanup=job.cleanup,
                                         monitor=mon, margin=0)
            rng = random.Random(seed)
            job2 = SimJob(used, total, need, neighbour=nb, procs_file=procs if listed else None)
            best, t2, o2 = lightning_binsearch(job2.step, job2.cleanup, lo, hi)
            print("  %-34s %9d/%-4d %9d/%-4d %5d/%-5d" % (name[:34], r.trials, r.ooms, t2, o2,
                                                          r.largest_ok, best))
            sums = [sums[0] + r.trials, sums[1] + r.ooms, sums[2] + t2, sums[3] + o2]
            more_ooms += r.ooms > o2
        ratio = sums[0] / sums[2]
        ok = ratio <= 0.5 and more_ooms == 0
        verdicts.append(ok)
        print("  %-34s %9d/%-4d %9d/%-4d  trials %.2fx, more OOMs in %d of %d: %s" % (
            ("= " + family)[:34], sums[0], sums[1], sums[2], sums[3], ratio, more_ooms,
            len(cases), "met" if ok else "MISSED"))
    mon.close()
    return all(verdicts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--calls", type=int, default=200000)
    ap.add_argument("--real-nvml", action="store_true",
                    help="mem_get_info part only, against the driver's libnvidia-ml.so.1 "
                         "(a machine with an NVIDIA GPU)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_memget(a, tmp)
        if not a.real_nvml:
            bench_batch(a, tmp)


if __name__ == "__main__":
    main()
