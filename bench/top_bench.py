#!/usr/bin/env python3
"""`gpuwatch top` against Debian's nvtop, side by side in tmux (issue 13).

Owns: the issue's benchmark of the live dashboard: same scenario, same
refresh, same terminal size, each tool in its own tmux session, CPU time,
peak RSS and time to first frame of each, and the ratios against the
targets.

    bench/top_bench.py [--build DIR] [--duration S] [--only gpuwatch|nvtop]
                       [--gpus G] [--procs P] [--size WxH] [--json FILE]

What it does:
  1. Starts P (default 200) live stand-in processes (`sleep`, children of
     this script, killed when it ends) and writes their real pids into a G-GPU
     (default 8) fake-NVML scenario from tests/nvml/gen_scenario.py, so both
     tools read /proc for every one of them (user, command, CPU, host memory).
  2. Puts a `libnvidia-ml.so.1` symlink to BUILD/tests/nvml/lib-full's fake
     library in a temporary folder and gives both tools LD_LIBRARY_PATH to it
     (nvtop dlopens "libnvidia-ml.so.1"; gpuwatch also gets
     GPUWATCH_NVML_LIBRARY). HOME and XDG_CONFIG_HOME point to that folder, so
     no user configuration is read or written.
  3. Each tool runs in its own tmux session (one private server, its
     socket in the temporary folder; SIZE default 200x60) at a 1 s refresh:
     `nvtop -d 10`, `gpuwatch top --interval 1000`. The pane runs this
     script as a launcher (`--launch`, see launch()): it
     waits on a FIFO, then posix_spawns the tool, so the time to first frame
     starts at the spawn, not at tmux's or python's start-up; capture-pane is
     then polled until the scenario's GPU name is on screen (resolution: one
     capture-pane call, printed). Before measuring, the script checks on the
     captured screen that nvtop shows all G fake GPUs (its "Device N"
     headers) and that one of the live pids is in its process list; it stops
     with exit 1 otherwise.
  4. Both run together for --duration seconds (default 300). Then, for each
     tool: peak RSS = VmHWM of /proc/PID/status (the tool's own address
     space: the launcher's pages are not counted), the last screen (saved
     with --keep), and /proc/PID/stat's utime+stime (10 ms ticks) and the
     schedstat ns of its live threads as cross-checks; then the tool gets
     SIGTERM (SIGKILL 5 s later) and the launcher reports getrusage of the
     reaped child (wait4: user+sys of every thread, exited ones included,
     in microseconds): that is the CPU time shown, also as ms per minute
     and % of a core.
  5. Prints the figures, the ratios gpuwatch/nvtop and the targets:
     CPU <= 1/2 of nvtop's, peak RSS <= nvtop's, first frame <= 50 ms.

`gpuwatch top` is detected from `gpuwatch --help` (its Commands: list); when
it is not there the script says "gpuwatch top: not built" and measures nvtop
alone. `--only nvtop` / `--only gpuwatch` run one tool.

nvtop: used from PATH when installed; else the Debian package (contrib) is
downloaded with apt-get into a private cache (~/.cache/gpuwatch-bench/nvtop,
the machine's apt sources are not changed, as scripts/deps.sh does for
NVIDIA's packages) and unpacked there; its runtime libraries (ncursesw,
libsystemd) are in Debian main. tmux is apt-get installed when missing.

Exit 0 when every run worked (targets are reported, not enforced), 1 when a
run failed, 2 on a bad command line. Quote figures from a release build
(meson setup -Dbuildtype=release). docs/testing.md, "Benchmarks: top".
"""
import argparse
import ctypes
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "nvml"))
from gen_scenario import scenario  # noqa: E402

FIRST_PID = 5010000  # gen_scenario.py's first pid
TARGET_CPU_RATIO = 0.5
TARGET_RSS_RATIO = 1.0
TARGET_FIRST_FRAME_MS = 50.0
GPU_MARK = "A100"  # gen_scenario.py's GPU name, shown by both tools
NVTOP_CACHE = os.path.expanduser("~/.cache/gpuwatch-bench/nvtop")
TICK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("top_bench: " + msg, flush=True)


# ------------------------------------------------------------ tools needed

def ensure_tmux():
    if shutil.which("tmux"):
        return "tmux"
    log("tmux missing: apt-get install tmux")
    subprocess.run(["apt-get", "install", "-y", "-qq", "tmux"], check=False,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if not shutil.which("tmux"):
        sys.exit("top_bench: tmux is needed (apt-get install tmux)")
    return "tmux"


def apt_uri():
    try:
        with open("/etc/apt/sources.list.d/debian.sources") as f:
            for line in f:
                if line.startswith("URIs:"):
                    return line.split()[1]
    except OSError:
        pass
    with open("/etc/apt/sources.list") as f:
        for line in f:
            if line.startswith("deb "):
                return line.split()[1]
    raise RuntimeError("no Debian mirror in the apt sources")


def ensure_nvtop(explicit):
    """nvtop's path: --nvtop, PATH, the private cache, or downloaded into it."""
    if explicit:
        return explicit
    found = shutil.which("nvtop")
    if found:
        return found
    cached = os.path.join(NVTOP_CACHE, "root", "usr", "bin", "nvtop")
    if os.access(cached, os.X_OK):
        return cached
    log("nvtop missing: downloading Debian's package (contrib) into " + NVTOP_CACHE)
    shutil.rmtree(NVTOP_CACHE, ignore_errors=True)
    for d in ("lists/partial", "debs", "root"):
        os.makedirs(os.path.join(NVTOP_CACHE, d))
    with open(os.path.join(NVTOP_CACHE, "c.sources"), "w") as f:
        f.write("Types: deb\nURIs: %s\nSuites: bookworm\nComponents: main contrib\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" % apt_uri())
    o = ["-o", "APT::Sandbox::User=root", "-o", "Dir::Etc::SourceList=/dev/null", "-o", "Dir::Etc::SourceParts=" + NVTOP_CACHE,
         "-o", "Dir::State::Lists=" + NVTOP_CACHE + "/lists",
         "-o", "Dir::Cache=" + NVTOP_CACHE + "/cache"]
    subprocess.run(["apt-get"] + o + ["update", "-qq"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get"] + o + ["download", "nvtop"], check=True,
                   cwd=os.path.join(NVTOP_CACHE, "debs"), stdout=subprocess.DEVNULL)
    for deb in glob.glob(os.path.join(NVTOP_CACHE, "debs", "*.deb")):
        subprocess.run(["dpkg", "-x", deb, os.path.join(NVTOP_CACHE, "root")], check=True)
    shutil.rmtree(os.path.join(NVTOP_CACHE, "lists"), ignore_errors=True)
    shutil.rmtree(os.path.join(NVTOP_CACHE, "cache"), ignore_errors=True)
    missing = [l for l in subprocess.run(["ldd", cached], capture_output=True,
                                         text=True).stdout.splitlines() if "not found" in l]
    if missing:
        log("nvtop needs libraries: apt-get install libncursesw6 libsystemd0 libtinfo6")
        subprocess.run(["apt-get", "install", "-y", "-qq", "libncursesw6", "libsystemd0",
                        "libtinfo6"], check=False)
    return cached


def has_top(gw):
    """True when `gpuwatch --help` lists a top command."""
    try:
        out = subprocess.run([gw, "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    on = False
    for line in out.splitlines():
        if line.startswith("Commands:"):
            on = True
        elif on and not line.strip():
            on = False
        elif on and line.split()[:1] == ["top"]:
            return True
    return False


def top_command(gw):
    """`gpuwatch top` at a 1 s refresh, with --interval when it has one."""
    help_text = subprocess.run([gw, "top", "--help"], capture_output=True, text=True,
                               timeout=30).stdout
    cmd = [gw, "top"]
    if "--interval" in help_text:
        cmd += ["--interval", "1000"]
    return cmd


# ----------------------------------------------------- the live stand-ins

def die_with_parent():
    """In a stand-in between fork and exec: SIGKILL when this script dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def start_standins(n, seconds):
    procs = []
    for _ in range(n):
        procs.append(subprocess.Popen(["sleep", str(int(seconds))], preexec_fn=die_with_parent,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
    return procs


def live_scenario(gpus, pids):
    """gen_scenario's text with its pids FIRST_PID+i replaced by pids[i]."""
    real = {str(FIRST_PID + i): str(p) for i, p in enumerate(pids)}
    out = []
    for line in scenario(gpus, len(pids)).splitlines():
        w = line.split(" ")
        if w[0] == "process" and len(w) >= 3:
            w[2] = real[w[2]]
        elif w[0] == "putil" and len(w) >= 2:
            w[1] = real[w[1]]
        out.append(" ".join(w))
    return "\n".join(out) + "\n"


# -------------------------------------------------------------------- tmux

class Tmux:
    def __init__(self, size, tmp):
        self.sock = os.path.join(tmp, "tmux.sock")  # goes with tmp: no stale sockets
        self.w, self.h = size

    def run(self, *args, check=True):
        return subprocess.run(["tmux", "-S", self.sock] + list(args), capture_output=True,
                              text=True, check=check)

    def start(self, name, cmd, env, tmp):
        """A session whose pane runs this script's launcher (see launch()),
        waiting on a FIFO to start cmd. Returns the launcher's files."""
        files = {k: os.path.join(tmp, "%s.%s" % (name, k)) for k in ("gate", "ready", "pid",
                                                                       "rusage")}
        os.mkfifo(files["gate"])
        args = ["new-session", "-d", "-s", name, "-x", str(self.w), "-y", str(self.h)]
        for k, v in env.items():
            args += ["-e", "%s=%s" % (k, v)]
        self.run(*(args + [sys.executable, os.path.abspath(__file__), "--launch",
                           files["gate"], files["ready"], files["pid"], files["rusage"],
                           "--"] + cmd))
        self.run("set-option", "-t", name, "remain-on-exit", "on")
        if not wait_file(files["ready"], 30):
            raise RuntimeError("tmux session %s did not start: %s" % (name, self.capture(name)))
        return files

    def capture(self, name):
        return self.run("capture-pane", "-p", "-t", name, check=False).stdout

    def dead(self, name):
        return self.run("display-message", "-p", "-t", name, "#{pane_dead}",
                        check=False).stdout.strip() == "1"

    def kill(self):
        self.run("kill-server", check=False)


def wait_file(path, limit):
    """Waits up to limit seconds for path; True when it is there."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def launch(gate, ready, pidfile, rufile, cmd):
    """The pane's process: says it is ready, waits for the gate, spawns cmd
    (so its start-up is not python's), and when cmd ends writes its rusage
    (getrusage of the child: every thread, microseconds) to rufile."""
    def put(path, text):
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)
    put(ready, str(os.getpid()))
    with open(gate) as f:
        f.readline()
    pid = os.posix_spawnp(cmd[0], cmd, dict(os.environ))
    put(pidfile, str(pid))
    _, status, ru = os.wait4(pid, 0)
    put(rufile, json.dumps({"utime": ru.ru_utime, "stime": ru.ru_stime, "status": status}))
    return 0


def first_frame(tmux, name, gate, limit=30.0):
    """Opens the pane's gate (the tool is spawned) and polls capture-pane
    until the GPU name shows. Returns (ms, screen, ms per capture)."""
    t0 = time.perf_counter()
    with open(gate, "w") as f:
        f.write("go\n")
    polls = 0
    while time.perf_counter() - t0 < limit:
        screen = tmux.capture(name)
        polls += 1
        if GPU_MARK in screen:
            t = time.perf_counter() - t0
            return t * 1000.0, screen, t * 1000.0 / polls
        if tmux.dead(name):
            break
    return None, tmux.capture(name), None


# ---------------------------------------------------------------- figures

def proc_figures(pid):
    """CPU seconds (utime+stime, all threads) and VmHWM/VmRSS in KiB."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    hwm = rss = None
    threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    sched_ns = 0  # on-CPU ns of the live threads (finer than ticks; exited threads missing)
    for stat in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            with open(stat) as f:
                sched_ns += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return {"cpu_s": cpu, "sched_cpu_s": sched_ns / 1e9, "vmhwm_kib": hwm, "vmrss_kib": rss,
            "threads": threads}


def stop_tool(r):
    """SIGTERM (then SIGKILL) the tool; its rusage from the launcher:
    {"rusage_cpu_s": user+sys} or {} when it did not come."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.kill(r["pid"], sig)
        except ProcessLookupError:
            pass
        if wait_file(r["files"]["rusage"], wait):
            with open(r["files"]["rusage"]) as f:
                ru = json.load(f)
            return {"rusage_cpu_s": ru["utime"] + ru["stime"]}
    return {}


def check_nvtop_screen(screen, gpus, pids):
    shown = sorted({int(m) for m in re.findall(r"Device (\d+) \[", screen)})
    problems = []
    if shown != list(range(gpus)):
        problems.append("nvtop shows devices %r, want 0..%d" % (shown, gpus - 1))
    if not any(re.search(r"(^|\s)%d\s" % p, screen) for p in pids):
        problems.append("no live stand-in pid in nvtop's process list")
    return problems


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def print_table(results, args):
    log("%d GPUs, %d live processes, %d s at 1 s refresh, tmux %dx%d" % (
        args.gpus, args.procs, args.duration, args.size[0], args.size[1]))
    print("%-14s %9s %11s %7s %9s %13s %12s %8s" % (
        "tool", "CPU s", "CPU ms/min", "%core", "sched s", "peak RSS MiB", "first frame",
        "threads"))
    for name, r in results.items():
        if r.get("rusage_cpu_s") is not None:  # precise, and includes the exit
            r["stat_cpu_s"], r["cpu_s"] = r["cpu_s"], r["rusage_cpu_s"]
        per_min = r["cpu_s"] * 1000.0 * 60.0 / r["elapsed_s"]
        print("%-14s %9.3f %11.1f %7.3f %9.4f %13.2f %9s ms %8d" % (
            name, r["cpu_s"], per_min, 100.0 * r["cpu_s"] / r["elapsed_s"], r["sched_cpu_s"],
            r["vmhwm_kib"] / 1024.0, fmt(r["first_frame_ms"], ".1f"), r["threads"]))
    print("  CPU s: getrusage of the reaped child (every thread, from the spawn to its exit"
          " on SIGTERM);\n  else utime+stime of /proc/PID/stat (%d ms ticks); sched s:"
          " schedstat of the live threads; peak RSS: VmHWM" % (1000 // TICK))
    for name, r in results.items():
        if r.get("stat_cpu_s") is not None:
            print("  %s: /proc/PID/stat at the end said %.2f s" % (name, r["stat_cpu_s"]))
    for name, r in results.items():
        print("  %s: %s" % (name, r["command"]))
        if r.get("capture_ms") is not None:
            print("  %s: first frame resolution %.1f ms (one capture-pane)" % (
                name, r["capture_ms"]))
    g, n = results.get("gpuwatch top"), results.get("nvtop")
    if not (g and n):
        return
    cpu_g = g["cpu_s"] / g["elapsed_s"]
    cpu_n = n["cpu_s"] / n["elapsed_s"]
    cpu_ratio = cpu_g / cpu_n if cpu_n else None
    rss_ratio = g["vmhwm_kib"] / n["vmhwm_kib"]
    print("ratio gpuwatch/nvtop: CPU %s, peak RSS %.2f" % (fmt(cpu_ratio, ".2f"), rss_ratio))
    ok = lambda c: "PASS" if c else "MISS"
    print("targets: CPU <= 1/2 nvtop: %s; RSS <= nvtop: %s; first frame <= %.0f ms: %s" % (
        ok(cpu_ratio is not None and cpu_ratio <= TARGET_CPU_RATIO),
        ok(rss_ratio <= TARGET_RSS_RATIO), TARGET_FIRST_FRAME_MS,
        ok(g["first_frame_ms"] is not None and g["first_frame_ms"] <= TARGET_FIRST_FRAME_MS)))
    if cpu_n == 0:
        print("  nvtop used less than one clock tick (%d ms): run longer" % (1000 // TICK))


# -------------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(TOP, "build"),
                    help="meson build folder (gpuwatch and tests/nvml/lib-full)")
    ap.add_argument("--gpuwatch", help="gpuwatch binary (default BUILD/src/cli/gpuwatch)")
    ap.add_argument("--lib", help="fake libnvidia-ml.so.1 (default BUILD/tests/nvml/lib-full)")
    ap.add_argument("--nvtop", help="nvtop binary (default: PATH, else downloaded)")
    ap.add_argument("--duration", type=float, default=300.0)
    ap.add_argument("--only", choices=("gpuwatch", "nvtop"))
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--procs", type=int, default=200)
    ap.add_argument("--size", default="200x60", help="tmux window, WxH")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--keep", help="save each tool's first and last screen in this folder")
    args = ap.parse_args()
    m = re.fullmatch(r"(\d+)x(\d+)", args.size)
    if not m or args.duration <= 0 or args.gpus < 1 or args.procs < 0:
        ap.error("bad --size, --duration, --gpus or --procs")
    args.size = (int(m.group(1)), int(m.group(2)))
    args.gpuwatch = args.gpuwatch or os.path.join(args.build, "src", "cli", "gpuwatch")
    args.lib = args.lib or os.path.join(args.build, "tests", "nvml", "lib-full",
                                        "libnvidia-ml.so.1")
    return args


def tools_to_run(args):
    """[(name, argv, extra env)] for the tools this run measures."""
    tools = []
    if args.only != "gpuwatch":
        tools.append(("nvtop", [ensure_nvtop(args.nvtop), "-d", "10"], {}))
    if args.only != "nvtop":
        if os.access(args.gpuwatch, os.X_OK) and has_top(args.gpuwatch):
            tools.append(("gpuwatch top", top_command(args.gpuwatch),
                          {"GPUWATCH_NVML_LIBRARY": args.lib}))
        else:
            print("gpuwatch top: not built (%s has no top command)" % args.gpuwatch)
            if args.only == "gpuwatch":
                sys.exit(1)
    return tools


def measure(args, tools, tmp, pids):
    """Starts every tool, checks its first screen, waits, reads figures."""
    tmux = Tmux(args.size, tmp)
    env = {"LD_LIBRARY_PATH": tmp, "GPUWATCH_FAKE_NVML_SCENARIO": os.path.join(tmp, "live.scn"),
           "HOME": tmp, "XDG_CONFIG_HOME": tmp, "LANG": "C.UTF-8"}
    results, failed = {}, False
    try:
        for name, cmd, extra in tools:
            session = name.split()[0]
            files = tmux.start(session, cmd, dict(env, **extra), tmp)
            ms, screen, per_capture = first_frame(tmux, session, files["gate"])
            with open(files["pid"]) as f:
                pid = int(f.read())
            results[name] = {"pid": pid, "files": files, "session": session,
                             "command": " ".join(cmd),
                             "first_frame_ms": ms, "capture_ms": per_capture,
                             "started": time.monotonic(), "first_screen": screen}
            problems = [] if ms is not None else ["no frame with %r within 30 s" % GPU_MARK]
            if name == "nvtop" and ms is not None:
                time.sleep(1.5)  # the process list comes with the second refresh
                problems += check_nvtop_screen(tmux.capture(session), args.gpus, pids)
            elif ms is not None:  # its layout is its own: say what is missing, go on
                time.sleep(1.5)
                screen = tmux.capture(session)
                if screen.count(GPU_MARK) < args.gpus or \
                        not any(re.search(r"(^|\s)%d\s" % p, screen) for p in pids):
                    log("%s: warning: the screen does not show %d x %r and a live pid:\n%s"
                        % (name, args.gpus, GPU_MARK, screen))
            if problems:
                log("%s: %s; screen:\n%s" % (name, "; ".join(problems), tmux.capture(session)))
                failed = True
                return results, failed
            log("%s: first frame after %.1f ms; running %g s" % (name, ms, args.duration))
        time.sleep(args.duration)
        for name, r in results.items():
            if tmux.dead(r["session"]):
                log("%s exited during the run:\n%s" % (name, tmux.capture(r["session"])))
                failed = True
                continue
            r.update(proc_figures(r["pid"]))
            r["elapsed_s"] = time.monotonic() - r["started"]
            r["last_screen"] = tmux.capture(r["session"])
        for name, r in results.items():
            r.update(stop_tool(r))
    finally:
        tmux.kill()
    return results, failed


def main():
    if len(sys.argv) > 6 and sys.argv[1] == "--launch" and sys.argv[6] == "--":
        return launch(*sys.argv[2:6], sys.argv[7:])
    args = parse_args()
    ensure_tmux()
    if not os.path.exists(args.lib):
        sys.exit("top_bench: no fake NVML at %s (build with -Dtests=true, or --lib)" % args.lib)
    tools = tools_to_run(args)
    if not tools:
        return 1
    tmp = tempfile.mkdtemp(prefix="gw-top-bench-")
    standins = start_standins(args.procs, args.duration + 600)
    try:
        os.symlink(os.path.abspath(args.lib), os.path.join(tmp, "libnvidia-ml.so.1"))
        with open(os.path.join(tmp, "live.scn"), "w") as f:
            f.write(live_scenario(args.gpus, [p.pid for p in standins]))
        results, failed = measure(args, tools, tmp, [p.pid for p in standins])
    finally:
        for p in standins:
            p.kill()
        for p in standins:
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    done = {k: v for k, v in results.items() if "cpu_s" in v}
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        for name, r in results.items():
            for which in ("first_screen", "last_screen"):
                if r.get(which):
                    with open(os.path.join(args.keep, "%s.%s.txt" % (
                            r["session"], which.split("_")[0])), "w") as f:
                        f.write(r[which])
    if done:
        print_table(done, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpus": args.gpus, "procs": args.procs, "duration_s": args.duration,
                       "size": "%dx%d" % args.size,
                       "tools": {k: {x: y for x, y in v.items()
                                     if not x.endswith("screen") and x != "files"}
                                 for k, v in results.items()}}, f, indent=1)
    return 1 if failed or len(done) != len(tools) else 0


if __name__ == "__main__":
    sys.exit(main())
