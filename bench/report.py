#!/usr/bin/env python3
"""Benchmark of `gpuwatch report --json` against the fake NVML (issue 3).

    bench/report.py [--build DIR] [--runs N] [--gpus G] [--procs P]
                    [--mig-gpus M] [--mig-instances K]

Generates a scenario with G GPUs and P processes (tests/nvml/gen_scenario.py,
default 8 and 200), then runs the real gpuwatch binary N times (default 30,
after 3 warm-up runs) against build/tests/nvml/lib-full/libnvidia-ml.so.1 and
prints:
  - whole-process wall time (spawn to exit, median / min / p90 / max) and
    CPU time (user+sys from wait4);
  - peak RSS of the process (GNU time's %M over 5 runs, median / max);
  - NVML calls per full sample (the nvml source's `calls` in the JSON) and
    NVML calls per run including open (the fake library's call log).
Then the same on a MIG host (docs/mig.md): M GPUs (default 4) in MIG mode,
K MIG devices each (default 7 x 1g.10gb), the P processes spread over them,
and the ratio of its median wall time to the first run's.
Targets: <= 5 ms wall (median), <= 4 MiB peak RSS; the MIG host's report
<= 1.5x the 8-GPU one. Exit 0 when the runs worked (targets are reported,
not enforced), 1 when a run failed.
Use a release build for figures you quote (meson setup -Dbuildtype=release).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "nvml"))
from gen_scenario import scenario  # noqa: E402

TARGET_MS = 5.0
TARGET_RSS_MIB = 4.0
TARGET_MIG_RATIO = 1.5


def run_once(cmd, env):
    """Wall time of one run, spawn to reaped exit. posix_spawn (vfork-like)
    keeps python's own fork cost out of the figure."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    t0 = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    os.close(devnull)
    return wall, os.waitstatus_to_exitcode(status), ru.ru_utime + ru.ru_stime


def peak_rss_kib(cmd, env):
    """Peak RSS of one run, measured by GNU time: the rusage of a child forked
    from python would include python's own pages (counted before exec)."""
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return int(p.stderr.decode().strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--gpuwatch")
    ap.add_argument("--lib")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--procs", type=int, default=200)
    ap.add_argument("--mig-gpus", type=int, default=4)
    ap.add_argument("--mig-instances", type=int, default=7)
    a = ap.parse_args()
    gw = a.gpuwatch or os.path.join(a.build, "src", "cli", "gpuwatch")
    lib = a.lib or os.path.join(a.build, "tests", "nvml", "lib-full", "libnvidia-ml.so.1")
    for f in (gw, lib):
        if not os.path.exists(f):
            print("bench: %s missing (build it first: ninja -C %s)" % (f, a.build))
            return 1
    whole = measure(a, gw, lib, a.gpus, 0)
    if whole is None:
        return 1
    if a.mig_gpus <= 0:
        return 0
    mig = measure(a, gw, lib, a.mig_gpus, a.mig_instances)
    if mig is None:
        return 1
    ratio = mig / whole
    print("MIG host / %d GPUs: %.2fx the median wall time  target <= %.1fx: %s"
          % (a.gpus, ratio, TARGET_MIG_RATIO, "ok" if ratio <= TARGET_MIG_RATIO else "OVER"))
    return 0


def measure(a, gw, lib, gpus, migs):
    """One scenario's runs, printed; returns the median wall time in ms, or
    None when a run failed."""
    tmp = tempfile.mkdtemp(prefix="gw-bench-")
    scn = os.path.join(tmp, "bench.scn")
    with open(scn, "w") as f:
        f.write(scenario(gpus, a.procs, migs))
    log = os.path.join(tmp, "calls.log")
    env = dict(os.environ, GPUWATCH_FAKE_NVML_SCENARIO=scn, GPUWATCH_FAKE_NVML_CALL_LOG=log)
    env.pop("GPUWATCH_NVML_LIBRARY", None)
    cmd = [gw, "report", "--json", "--nvml-library", lib]

    # one checked run: the JSON is right-sized and says how many calls a sample took
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, check=False)
    rep = json.loads(out.stdout)
    nvml = next(s for s in rep["sources"] if s["name"] == "nvml")
    if len(rep["devices"]) != gpus * (1 + migs) or nvml["state"] != "ok":
        print("bench: unexpected report: %d devices, nvml %s (%s)" % (
            len(rep["devices"]), nvml["state"], nvml["message"]))
        return None
    with open(log) as f:
        per_run = {k: int(v) for k, v in (line.split() for line in f)}

    for _ in range(3):
        run_once(cmd, env)
    walls, cpus = [], []
    for _ in range(a.runs):
        w, rc, cpu = run_once(cmd, env)
        if rc != 0:
            print("bench: gpuwatch exit %d" % rc)
            return None
        walls.append(w * 1000)
        cpus.append(cpu * 1000)
    floor = sorted(run_once([gw, "--version"], env)[0] * 1000 for _ in range(a.runs))
    rss, rss_floor = [], float("nan")
    if os.path.exists("/usr/bin/time"):
        rss = [peak_rss_kib(cmd, env) / 1024 for _ in range(5)]
        rss_floor = statistics.median(peak_rss_kib([gw, "--version"], env) / 1024
                                      for _ in range(5))
    walls.sort()
    med = statistics.median(walls)
    rss_med, rss_max = (statistics.median(rss), max(rss)) if rss else (float("nan"),) * 2
    p90 = walls[min(len(walls) - 1, int(round(0.9 * (len(walls) - 1))))]
    host = "%d GPUs" % gpus
    if migs:
        host = "%d GPUs in MIG mode x %d MIG devices" % (gpus, migs)
    print("gpuwatch report --json, fake NVML: %s, %d processes (%d in the report), "
          "%d runs" % (host, a.procs, len(rep["processes"]), a.runs))
    print("  wall time   median %.2f ms  (min %.2f, p90 %.2f, max %.2f)  target <= %.1f ms: %s"
          % (med, walls[0], p90, walls[-1], TARGET_MS, "ok" if med <= TARGET_MS else "OVER"))
    print("  CPU time    median %.2f ms user+sys (what the run costs when the machine is busy)"
          % statistics.median(cpus))
    print("  floor       median %.2f ms for `gpuwatch --version` (process start on this machine)"
          % statistics.median(floor))
    print("  peak RSS    median %.2f MiB (max %.2f)  target <= %.1f MiB: %s"
          % (rss_med, rss_max, TARGET_RSS_MIB, "ok" if rss_max <= TARGET_RSS_MIB else "OVER"))
    print("  RSS floor   %.2f MiB for `gpuwatch --version` (the binary and its shared libraries)"
          % rss_floor)
    print("  NVML calls  %d per full sample (%.1f per device), %d per run incl. init/open/shutdown"
          % (nvml["calls"], nvml["calls"] / len(rep["devices"]), per_run["total"]))
    print("  in-process  sample took %.3f ms (sample_duration_seconds)"
          % (rep["sample_duration_seconds"] * 1000))
    for f in (scn, log):
        os.unlink(f)
    os.rmdir(tmp)
    return med


if __name__ == "__main__":
    sys.exit(main())
