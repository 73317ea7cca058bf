#!/usr/bin/env python3
"""`gpuwatch top` at its real boundaries: the plain lines of a pipe and
--once, and the full screen inside a real terminal (tmux: new-session -d,
send-keys, capture-pane), on the fake NVML with 1, 2 and 8 GPUs and on the
AMD fixture tree. Expected values come from the scenario files
(scenario.py), never from the program. Waits poll the screen until the
expected text appears, with a generous deadline; no fixed sleep decides a
result.

    test_top.py CASE --libdir BUILD/tests/nvml

GPUWATCH_BIN names the binary (an ASan build runs the same cases: its
reports go to files that must not exist at the end). Exit 0 pass, 1 fail,
77 skip.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import scenario

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("GPUWATCH_BIN", os.path.join(SRC, "build", "src", "cli", "gpuwatch"))
DEADLINE = 60.0  # seconds a wait may take before the test fails
SKIP = 77


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def base_env(tmp, scn, libdir):
    env = dict(os.environ)
    env["GPUWATCH_NVML_LIBRARY"] = os.path.join(libdir, "lib-full", "libnvidia-ml.so.1")
    if scn:
        env["GPUWATCH_FAKE_NVML_SCENARIO"] = scn
    # an ASan/UBSan build writes its reports here; the test fails on any
    env["ASAN_OPTIONS"] = "log_path=%s/asan:detect_leaks=1" % tmp
    env["UBSAN_OPTIONS"] = "log_path=%s/ubsan:print_stacktrace=1:halt_on_error=1" % tmp
    env.pop("NO_COLOR", None)
    return env


def sanitizer_reports(tmp):
    bad = [f for f in os.listdir(tmp) if f.startswith(("asan", "ubsan"))]
    out = ""
    for f in bad:
        with open(os.path.join(tmp, f), errors="replace") as fh:
            out += fh.read()[:4000]
    return out


# ------------------------------------------------------------- plain lines

LINE = re.compile(r'^gpu=(\d+) name="([^"]*)"((?: [a-z]+=\S+)+)$')


def parse_plain(text):
    gpus = []
    for line in text.splitlines():
        check("\x1b" not in line, "escape code in plain output: %r" % line)
        m = LINE.match(line)
        check(m, "not a plain GPU line: %r" % line)
        facts = dict(w.split("=", 1) for w in m.group(3).split())
        facts["gpu"], facts["name"] = m.group(1), m.group(2)
        gpus.append(facts)
    return gpus


def compare_plain(facts, sc, index):
    e = scenario.expected(sc["gpus"][index])
    check(facts["gpu"] == str(index), "gpu index %r != %d" % (facts["gpu"], index))
    for k in ("name", "util", "mem", "temp", "slowdown", "power", "limit", "fan", "pstate",
              "procs"):
        check(facts.get(k) == e[k], "gpu %d %s: %r, scenario says %r" % (index, k,
                                                                          facts.get(k), e[k]))
    check(facts["state"] == "ok", "gpu %d state %r" % (index, facts["state"]))
    check(re.match(r"^\d+\.\d+s$", facts["age"]), "gpu %d age %r" % (index, facts["age"]))


def case_once(args, tmp, name):
    path = os.path.join(scenario.SCENARIOS, name + ".scn")
    sc = scenario.read(path)
    env = base_env(tmp, path, args.libdir)
    p = subprocess.run([BIN, "top", "--once", "--sources", "nvml"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    check(p.returncode == 0, "rc %d: %s" % (p.returncode, p.stderr.decode(errors="replace")))
    gpus = parse_plain(p.stdout.decode())
    check(len(gpus) == len(sc["gpus"]), "%d lines for %d GPUs" % (len(gpus), len(sc["gpus"])))
    for i, g in enumerate(gpus):
        compare_plain(g, sc, i)


def case_pipe(args, tmp):
    """Not a TTY: one line per GPU per interval, read from a pipe."""
    path = os.path.join(scenario.SCENARIOS, "two.scn")
    sc = scenario.read(path)
    env = base_env(tmp, path, args.libdir)
    p = subprocess.Popen([BIN, "top", "--interval", "100", "--sources", "nvml"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = [p.stdout.readline().decode() for _ in range(3 * len(sc["gpus"]))]
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    gpus = parse_plain("".join(lines))
    for k, g in enumerate(gpus):
        compare_plain(g, sc, k % len(sc["gpus"]))


def case_lost_once(args, tmp):
    path = os.path.join(scenario.SCENARIOS, "lostopen.scn")
    env = base_env(tmp, path, args.libdir)
    p = subprocess.run([BIN, "top", "--once", "--sources", "nvml"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    gpus = parse_plain(p.stdout.decode())
    check(p.returncode == 3, "rc %d for a lost GPU" % p.returncode)
    lost = [g for g in gpus if g["state"] == "lost"]
    check(len(lost) == 1 and lost[0]["util"] == "N/A" and lost[0]["mem"] == "N/A",
          "lost GPU line: %r" % gpus)


# ------------------------------------------------------------- tmux

class Tmux:
    """One private tmux server (-L) running `gpuwatch top` in a detached
    session of a given size."""
    count = 0

    def __init__(self, tmp, env, argv, width=80, height=24, utf8=True):
        if not shutil.which("tmux"):
            raise SystemExit(SKIP)
        self.tmp = tmp
        Tmux.count += 1  # one server and exit file per session, never reused
        self.sock = "gwtop%d-%d" % (os.getpid(), Tmux.count)
        self.done = os.path.join(tmp, "exit%d" % Tmux.count)
        envs = " ".join("%s=%s" % (k, shlex_quote(v)) for k, v in sorted(env.items())
                        if k.startswith(("GPUWATCH_", "ASAN_", "UBSAN_", "LANG", "LC_",
                                         "NO_COLOR", "TERM")))
        cmd = "env %s %s; echo EXIT=$? > %s; sleep 600" % (
            envs, " ".join(shlex_quote(a) for a in argv), self.done)
        tm = ["tmux", "-L", self.sock, "-f", "/dev/null"] + (["-u"] if utf8 else [])
        self.tm = tm
        subprocess.run(tm + ["new-session", "-d", "-x", str(width), "-y", str(height),
                             "sh", "-c", cmd], check=True, env=self.tmux_env(utf8))

    @staticmethod
    def tmux_env(utf8):
        env = dict(os.environ)
        env["LANG"] = env["LC_ALL"] = "C.UTF-8" if utf8 else "C"
        env.pop("TMUX", None)
        return env

    def capture(self):
        p = subprocess.run(self.tm + ["capture-pane", "-p", "-t", "0"],
                           stdout=subprocess.PIPE, check=True)
        return p.stdout.decode("utf-8", errors="replace")

    def capture_sgr(self):
        """The screen with its attributes as SGR escape sequences (-e)."""
        p = subprocess.run(self.tm + ["capture-pane", "-p", "-e", "-t", "0"],
                           stdout=subprocess.PIPE, check=True)
        return p.stdout.decode("utf-8", errors="replace")

    def keys(self, *keys):
        subprocess.run(self.tm + ["send-keys", "-t", "0"] + list(keys), check=True)

    def literal(self, text):
        subprocess.run(self.tm + ["send-keys", "-t", "0", "-l", text], check=True)

    def resize(self, w, h):
        subprocess.run(self.tm + ["resize-window", "-t", "0", "-x", str(w), "-y", str(h)],
                       check=True)

    def wait(self, pred, what):
        end = time.monotonic() + DEADLINE
        screen = ""
        while time.monotonic() < end:
            screen = self.capture()
            if pred(screen):
                return screen
            time.sleep(0.05)
        raise Failed("timed out waiting for %s; screen:\n%s" % (what, screen))

    def wait_text(self, *texts):
        return self.wait(lambda s: all(t in s for t in texts), "%r" % (texts,))

    def quit(self, key="q"):
        """q (or key), then the program's exit status must be 0."""
        self.keys(key)
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end and not os.path.exists(self.done):
            time.sleep(0.05)
        check(os.path.exists(self.done), "top did not exit after q:\n" + self.capture())
        with open(self.done) as f:
            status = f.read().strip()
        check(status == "EXIT=0", "top exited with %s:\n%s" % (status, self.capture()))

    def close(self):
        subprocess.run(self.tm + ["kill-server"], stderr=subprocess.DEVNULL)


def shlex_quote(s):
    import shlex
    return shlex.quote(s)


def top_argv(extra=()):
    return [BIN, "top", "--interval", "200", "--sources", "nvml,host"] + list(extra)


def expect_gpus_on_screen(t, sc, compact=False):
    for i, g in enumerate(sc["gpus"]):
        e = scenario.expected(g)
        texts = [e["mem"], e["temp_screen"], e["power_screen"]]
        if not compact:
            texts += ["GPU %d  %s" % (i, e["name"]), e["util"]]
        t.wait_text(*texts)


def table_pids(screen):
    """PIDs of the process table, in screen order."""
    out, on = [], False
    for line in screen.splitlines():
        if re.match(r"^\s*PID", line):
            on = True
            continue
        if on:
            m = re.match(r"^\s*(\d+)\s", line)
            if not m:
                break
            out.append(int(m.group(1)))
    return out


def with_tmux(args, tmp, scn_path, fn, width=80, height=24, extra_env=None, argv=None,
              utf8=True):
    env = base_env(tmp, scn_path, args.libdir)
    env["LANG"] = env["LC_ALL"] = "C.UTF-8" if utf8 else "C"
    env["TERM"] = "tmux-256color" if utf8 else "screen"
    env.update(extra_env or {})
    t = Tmux(tmp, env, argv or top_argv(), width, height, utf8)
    try:
        fn(t)
    finally:
        t.close()
    rep = sanitizer_reports(tmp)
    check(not rep, "sanitizer report:\n" + rep)


def case_screen(args, tmp, name, size=None):
    path = os.path.join(scenario.SCENARIOS, name + ".scn")
    sc = scenario.read(path)
    compact = len(sc["gpus"]) >= 8

    def run(t):
        t.wait_text("gpuwatch top", "%d GPU" % len(sc["gpus"]))
        expect_gpus_on_screen(t, sc, compact)
        pids = {pid for g in sc["gpus"] for _, pid, _ in g["procs"]}
        screen = t.wait(lambda s: len(table_pids(s)) >= min(len(pids), 3), "process rows")
        shown = table_pids(screen)
        check(set(shown) <= pids, "table shows pids %r not in the scenario %r" % (shown, pids))
        t.quit("C-c" if name == "one" else "q")  # Ctrl-C quits cleanly too
    w, h = size or ((120, 40) if compact else (80, 24))
    with_tmux(args, tmp, path, run, w, h)


def case_keys(args, tmp):
    """Sort (F6/s cycles, I inverts), filter (/), help (?) on 8 GPUs."""
    path = os.path.join(scenario.SCENARIOS, "eight.scn")
    sc = scenario.read(path)
    mem = {}
    for gi, g in enumerate(sc["gpus"]):
        for _, pid, m in g["procs"]:
            mem[(pid, gi)] = m

    def run(t):
        t.wait_text("sort GPU-MEM")
        # default: GPU memory, largest first
        s = t.wait(lambda x: len(table_pids(x)) >= 5, "rows")
        for _ in range(6):  # GPU-MEM -> SM% -> CPU% -> HOST-MEM -> MODEL -> COMMAND -> PID
            t.keys("s")
        # a capture can fall between the header's and the rows' redraw (tmux
        # takes the frame in pieces): wait for a screen whose rows are in order
        s = t.wait(lambda x: "sort PID" in x and len(table_pids(x)) >= 5 and
                   table_pids(x) == sorted(table_pids(x)), "sort by PID")
        pids = table_pids(s)
        check(pids == sorted(pids), "PID sort ascending: %r" % pids)
        all_pids = sorted(p for p, _ in mem)
        check(pids == all_pids[:len(pids)], "first rows %r, scenario's %r" % (pids, all_pids))
        t.keys("I")
        s = t.wait(lambda x: "sort PID (rev)" in x and len(table_pids(x)) >= 5 and
                   table_pids(x) == sorted(table_pids(x), reverse=True), "inverted sort")
        pids = table_pids(s)
        check(pids == sorted(all_pids, reverse=True)[:len(pids)], "reversed: %r" % pids)
        t.keys("F6")
        t.wait_text("sort USER")  # F6 also cycles: PID -> USER
        # filter on one pid: only its rows remain
        target = all_pids[len(all_pids) // 2]
        t.keys("/")
        t.wait_text("Filter:")
        t.literal(str(target))
        t.keys("Enter")
        s = t.wait(lambda x: "filter: %d" % target in x and table_pids(x) == [target],
                   "filtered table")
        t.keys("Escape")
        t.wait(lambda x: len(table_pids(x)) > 1, "filter cleared")
        t.keys("?")
        t.wait_text("gpuwatch top - keys", "SIGTERM, then SIGKILL")
        t.keys("x")
        t.wait(lambda x: "gpuwatch top - keys" not in x, "help closed")
        t.quit()
    with_tmux(args, tmp, path, run, 120, 40)


def kill_scenario(tmp, pid):
    src = os.path.join(scenario.SCENARIOS, "two.scn")
    dst = os.path.join(tmp, "kill.scn")
    with open(src) as f, open(dst, "w") as out:
        text = f.read()
        out.write(text.replace("process compute 5002002 2147483648",
                               "process compute %d 2147483648" % pid))
    return dst


def filter_to(t, pid):
    """Waits for pid's row, then filters the table (/) down to it alone."""
    t.wait_text(str(pid))
    t.keys("/")
    t.literal(str(pid))
    t.keys("Enter")
    t.wait(lambda x: table_pids(x) == [pid], "the child's row alone")


def case_kill(args, tmp):
    """k asks; n keeps the process; k then y sends SIGTERM and it dies."""
    child = subprocess.Popen(["sleep", "1000"])
    try:
        path = kill_scenario(tmp, child.pid)

        def run(t):
            filter_to(t, child.pid)
            t.keys("k")
            t.wait_text("Send SIGTERM to PID %d" % child.pid, "[y/N]")
            t.keys("n")
            t.wait_text("cancelled")
            check(child.poll() is None, "the child died although the kill was cancelled")
            t.keys("k")
            t.wait_text("Send SIGTERM to PID %d" % child.pid)
            t.keys("y")
            t.wait_text("sent SIGTERM to PID %d" % child.pid)
            try:
                rc = child.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                raise Failed("the child survived the confirmed SIGTERM")
            check(rc == -signal.SIGTERM, "child ended with %r, not SIGTERM" % rc)
            t.quit()
        with_tmux(args, tmp, path, run)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def mouse(button, x, y):
    """An xterm mouse report (X10 encoding, what ncurses reads from
    tmux-256color's kmous=\\E[M): button code, 0-based column and row."""
    return "\033[M" + chr(32 + button) + chr(33 + x) + chr(33 + y)


def case_mouse(args, tmp):
    """A click selects the row under it; the wheel moves the selection (the
    k prompt or refusal names the selected pid)."""
    path = os.path.join(scenario.SCENARIOS, "eight.scn")

    def expect_selected(t, events, pid, what):
        """After events, k names pid (its prompt, or why it cannot)."""
        for e in events:
            t.literal(e)
        t.keys("k")
        s = t.wait(lambda x: re.search(r"(to|signal) PID %d\b" % pid, x), "%s: pid %d" % (what, pid))
        if "[y/N]" in s:
            t.keys("n")
        t.keys("Home", "End", "Home")  # clears the status line; selection at row 1

    def run(t):
        s = t.wait(lambda x: len(table_pids(x)) >= 6, "rows")
        rows = table_pids(s)
        lines = s.splitlines()
        y = next(i for i, l in enumerate(lines) if re.match(r"^\s*%d\s" % rows[3], l))
        expect_selected(t, [mouse(0, 2, y), mouse(3, 2, y)], rows[3], "click on row 4")
        expect_selected(t, [mouse(65, 2, y), mouse(65, 2, y)], rows[2], "wheel down twice")
        expect_selected(t, [mouse(65, 2, y), mouse(65, 2, y), mouse(64, 2, y)], rows[1],
                        "wheel down twice, up once")
        t.quit()
    with_tmux(args, tmp, path, run, width=160, height=50)


def case_kill_denied(args, tmp):
    """Run as another user (nobody), top must refuse to signal our child:
    k names the reason instead of asking, and the child lives on."""
    if os.getuid() != 0 or not shutil.which("setpriv"):
        print("SKIP: needs root and setpriv to run top as another user")
        raise SystemExit(SKIP)
    os.chmod(tmp, 0o1777)  # nobody reads the scenario and writes sanitizer logs
    child = subprocess.Popen(["sleep", "1000"])
    try:
        path = kill_scenario(tmp, child.pid)
        os.chmod(path, 0o644)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + top_argv()

        def run(t):
            filter_to(t, child.pid)
            t.keys("k")
            t.wait_text("cannot signal PID %d: not permitted" % child.pid)
            s = t.capture()
            check("[y/N]" not in s, "asked to signal a process it may not signal")
            check(child.poll() is None, "the child died")
            t.quit()
        with_tmux(args, tmp, path, run, argv=argv)
    finally:
        child.kill()
        child.wait()


def table_row(screen, pid):
    """The cells of pid's row: PID USER GPU GPU-MEM SM% CPU% HOST-MEM MODEL
    COMMAND."""
    for line in screen.splitlines():
        w = line.split()
        if w and w[0] == str(pid):
            return w
    return None


def case_cpu(args, tmp):
    """CPU % and host memory of a GPU process come from /proc: a busy child
    shows CPU above 0 and its resident memory as /proc/PID/statm says;
    MODEL is the file name its --model names."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass",
                              "--model", "/models/tiny-test.Q4_0.gguf"])
    try:
        path = kill_scenario(tmp, child.pid)
        page = os.sysconf("SC_PAGE_SIZE")

        def rss():
            with open("/proc/%d/statm" % child.pid) as f:
                return scenario.bytes_short(int(f.read().split()[1]) * page)

        def ok(screen):
            r = table_row(screen, child.pid)
            return (r and r[5] != "N/A" and float(r[5]) > 0 and r[6] == rss() and
                    r[7] == "tiny-test.Q4_0.gguf")

        def run(t):
            t.wait(ok, "CPU %% > 0, host memory %s and model tiny-test.Q4_0.gguf for the "
                   "busy child" % rss())
            t.quit()
        with_tmux(args, tmp, path, run)
    finally:
        child.kill()
        child.wait()


def case_resize(args, tmp):
    path = os.path.join(scenario.SCENARIOS, "two.scn")
    sc = scenario.read(path)

    def run(t):
        expect_gpus_on_screen(t, sc)
        t.resize(200, 60)
        s = t.wait(lambda x: len(x.splitlines()) >= 59 and "F1/? help" in x.splitlines()[-1],
                   "a 200x60 frame")
        check(max(len(l) for l in s.splitlines()) > 100, "frame did not widen")
        expect_gpus_on_screen(t, sc)
        for w, h in ((30, 8), (12, 3), (1, 1)):  # tiny screens: clipped, no crash
            t.resize(w, h)
            t.wait(lambda x: len(x.splitlines()) <= h and x.strip(), "a %dx%d frame" % (w, h))
        t.keys("?")  # the help box at a tiny size too
        t.keys("x")
        t.resize(80, 24)
        t.wait(lambda x: len(x.splitlines()) <= 24 and "F1/? help" in x.splitlines()[-1],
               "back to 80x24")
        expect_gpus_on_screen(t, sc)
        t.quit()
    with_tmux(args, tmp, path, run)


def case_lost(args, tmp):
    """GPU 1 lost mid-run (as tests/serve case_lost) shows LOST; GPU 0 goes on."""
    src = os.path.join(scenario.SCENARIOS, "two.scn")
    path = os.path.join(tmp, "lost.scn")
    with open(src) as f, open(path, "w") as out:
        out.write(f.read())
        out.write("\nfault nvmlDeviceGetMemoryInfo_v2 GPU_IS_LOST gpu=1 after=4\n"
                  "fault * GPU_IS_LOST gpu=1 after=200\n")
    sc = scenario.read(src)
    e0 = scenario.expected(sc["gpus"][0])

    def run(t):
        s = t.wait(lambda x: re.search(r"GPU 1 .*LOST \d+s", x), "GPU 1 shown as lost")
        check(e0["mem"] in s, "GPU 0 values gone while GPU 1 is lost")
        t.wait_text("gpu_lost" if False else "lost")
        t.quit()
    with_tmux(args, tmp, path, run, 100, 30)


def case_stale(args, tmp):
    """A driver call that hangs mid-run: the sampler publishes stale copies
    and the screen says STALE with a growing age; top still quits on q."""
    src = os.path.join(scenario.SCENARIOS, "two.scn")
    path = os.path.join(tmp, "hang.scn")
    with open(src) as f, open(path, "w") as out:
        out.write(f.read() + "\nhang nvmlDeviceGetTemperature gpu=0 after=6\n")

    def run(t):
        s = t.wait(lambda x: re.search(r"GPU 0 .*STALE (\d+)s", x), "GPU 0 shown as stale")
        age = int(re.search(r"GPU 0 .*STALE (\d+)s", s).group(1))
        t.wait(lambda x: (lambda m: m and int(m.group(1)) > age)(
            re.search(r"GPU 0 .*STALE (\d+)s", x)), "the stale age to grow")
        t.quit()
    with_tmux(args, tmp, path, run, 100, 30)


def case_dumb(args, tmp):
    """TERM=dumb: plain lines in the terminal, usable."""
    path = os.path.join(scenario.SCENARIOS, "one.scn")
    sc = scenario.read(path)
    e = scenario.expected(sc["gpus"][0])

    def run(t):
        s = t.wait_text('gpu=0 name="%s"' % e["name"], "mem=" + e["mem"])
        check("\x1b" not in s, "escape codes with TERM=dumb")
    with_tmux(args, tmp, path, run, extra_env={"TERM": "dumb"})


def case_ascii(args, tmp):
    """LANG=C: only ASCII on the screen, values still there."""
    path = os.path.join(scenario.SCENARIOS, "two.scn")
    sc = scenario.read(path)

    def run(t):
        expect_gpus_on_screen(t, sc)
        s = t.wait_text("[")
        bad = [c for c in s if ord(c) > 126]
        check(not bad, "non-ASCII on a LANG=C screen: %r" % bad[:10])
        t.quit()
    with_tmux(args, tmp, path, run, utf8=False)


def colours_of(sgr):
    """The foreground colours set in a capture -e: ('256', n) or ('8', n)."""
    out = set()
    for params in re.findall(r"\x1b\[([0-9;]*)m", sgr):
        p = params.split(";")
        for i, x in enumerate(p):
            if x == "38" and i + 2 < len(p) and p[i + 1] == "5":
                out.add(("256", int(p[i + 2])))
            elif x.isdigit() and 30 <= int(x) <= 37:
                out.add(("8", int(x) - 30))
    return out


def case_colors(args, tmp):
    """256 colours on a 256-colour terminal, 8 on an 8-colour one, none with
    NO_COLOR (and --no-color)."""
    path = os.path.join(scenario.SCENARIOS, "two.scn")
    sc = scenario.read(path)
    e = scenario.expected(sc["gpus"][0])
    seen = {}
    for label, extra, argv in (("256", {"TERM": "tmux-256color"}, None),
                               ("8", {"TERM": "screen"}, None),
                               ("no_color", {"NO_COLOR": "1"}, None),
                               ("flag", {}, top_argv(["--no-color"]))):
        def run(t):
            t.wait_text(e["mem"])
            seen[label] = colours_of(t.capture_sgr())
            t.quit()
        with_tmux(args, tmp, path, run, extra_env=extra, argv=argv)
    check(any(k == "256" and n > 15 for k, n in seen["256"]),
          "no 256-colour index on a 256-colour terminal: %r" % seen["256"])
    check(seen["8"] and all(k == "8" or n < 8 for k, n in seen["8"]),
          "colours beyond 8 on an 8-colour terminal: %r" % seen["8"])
    check(not seen["no_color"], "colours with NO_COLOR: %r" % seen["no_color"])
    check(not seen["flag"], "colours with --no-color: %r" % seen["flag"])


def case_amd(args, tmp):
    """The AMD fixture tree (sysfs + procfs): names and memory from the tree."""
    fix = os.path.join(SRC, "tests", "fixtures", "two_amd")
    root = os.path.join(tmp, "two_amd")
    shutil.copytree(fix, root, symlinks=True)
    for dirpath, _, files in os.walk(os.path.join(root, "sys")):
        if "pcie_bw" in files:  # a fifo in the real tree; never read whole
            os.remove(os.path.join(dirpath, "pcie_bw"))
            os.mkfifo(os.path.join(dirpath, "pcie_bw"))
    totals = []
    for dirpath, _, files in os.walk(os.path.join(root, "sys")):
        if "mem_info_vram_total" in files and "mem_info_vram_used" in files:
            with open(os.path.join(dirpath, "mem_info_vram_total")) as f:
                total = int(f.read().split()[0])
            with open(os.path.join(dirpath, "mem_info_vram_used")) as f:
                used = int(f.read().split()[0])
            totals.append("%.0f/%.0fMiB" % (used / scenario.MIB, total / scenario.MIB))
    check(totals, "fixture has no VRAM files")
    argv = [BIN, "top", "--interval", "200", "--sources", "amdgpu,host",
            "--sys-root", os.path.join(root, "sys"), "--proc-root", os.path.join(root, "proc")]

    def run(t):
        t.wait_text(*sorted(set(totals)))
        t.quit()
    with_tmux(args, tmp, None, run, 100, 30, argv=argv)


def case_progress(args, tmp):
    """A job's progress record in the no-daemon store (JOB@GPU.json under
    $GPUWATCH_PROGRESS_DIR): one bar with the percentage, done/total and
    unit, the rate and the ETA the record implies; a stale record is not
    shown."""
    import json
    store = os.path.join(tmp, "progress")
    os.makedirs(store, mode=0o700)
    now = float(int(time.time()))
    rec = {"job": "train-42", "gpu": "0", "done": 450, "total": 1000, "unit": "steps",
           "message": "epoch 3", "started": now - 20, "start_done": 50, "updated": now,
           "pid": os.getpid()}
    with open(os.path.join(store, "train-42@0.json"), "w") as f:
        json.dump(rec, f)
    stale = dict(rec, job="old-job", updated=now - 3600, started=now - 3700)
    with open(os.path.join(store, "old-job@0.json"), "w") as f:
        json.dump(stale, f)
    rate = (rec["done"] - rec["start_done"]) / (rec["updated"] - rec["started"])
    eta = int((rec["total"] - rec["done"]) / rate + 0.5)
    texts = ["train-42@0", "%d%%" % (100 * rec["done"] // rec["total"]),
             "%d/%d steps" % (rec["done"], rec["total"]), "%.1f/s" % rate,
             "ETA %d:%02d" % (eta // 60, eta % 60), "epoch 3"]
    path = os.path.join(scenario.SCENARIOS, "two.scn")

    def run(t):
        s = t.wait_text(*texts)
        check("old-job" not in s, "a stale record is shown")
        t.quit()
    with_tmux(args, tmp, path, run, 100, 30, extra_env={"GPUWATCH_PROGRESS_DIR": store})


def pressure_scenario(tmp):
    """two.scn with GPU 1 at 93% of its memory: memory pressure (warning)."""
    with open(os.path.join(scenario.SCENARIOS, "two.scn")) as f:
        text = f.read()
    head, sep, gpu1 = text.rpartition("\ngpu\n")
    gpu1 = gpu1.replace("memory.used 0", "memory.used 4000000000").replace(
        "memory.free 4139778048", "memory.free 139778048")
    path = os.path.join(tmp, "pressure.scn")
    with open(path, "w") as f:
        f.write(head + sep + gpu1)
    return path


def expect_pressure(t):
    s = t.wait(lambda x: re.search(r"WARNING: .*memory", x, re.I), "the pressure banner")
    check(re.search(r"^\d\d:\d\d:\d\d warning .*memory", s, re.M | re.I),
          "no memory pressure line in the event log:\n" + s)


def case_pressure(args, tmp):
    """Memory pressure from the sampler's event stream: banner and log pane."""
    path = pressure_scenario(tmp)

    def run(t):
        expect_pressure(t)
        t.quit()
    with_tmux(args, tmp, path, run, 100, 30)


class Daemon:
    """`gpuwatch serve` on a free loopback port with a scenario."""

    def __init__(self, env, tmp):
        import socket
        sk = socket.socket()
        sk.bind(("127.0.0.1", 0))
        self.port = sk.getsockname()[1]
        sk.close()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(tmp, "serve.log"), "w")
        self.p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:%d" % self.port,
                                   "--interval-ms", "200", "--sources", "nvml,host"],
                                  env=env, stdout=self.log, stderr=subprocess.STDOUT)
        import urllib.request
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(self.url + "/gpu/metrics", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            check(self.p.poll() is None, "serve exited")
            time.sleep(0.05)
        raise Failed("serve did not answer")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=60)
        self.log.close()


def route_requests(url):
    """{route: requests answered} from the daemon's /metrics."""
    import urllib.request
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r'^gpuwatch_http_requests_total\{route="([^"]*)",code="\d+"\} (\d+)$',
                         text, re.M):
        out[m.group(1)] = out.get(m.group(1), 0) + int(m.group(2))
    return out


def case_connect(args, tmp):
    """--connect: the daemon's values (plain --once and the screen), its
    events (the pressure banner), its job progress records, and its /events
    stream followed: a GPU lost while top runs reaches the log through the
    stream (the event history is read once, never polled)."""
    path = pressure_scenario(tmp)
    with open(path, "a") as f:  # GPU 0 lost a few seconds in (the daemon samples every 200 ms)
        f.write("\nfault nvmlDeviceGetMemoryInfo_v2 GPU_IS_LOST gpu=0 after=40\n"
                "fault * GPU_IS_LOST gpu=0 after=100000\n")
    sc = scenario.read(path)
    d = Daemon(base_env(tmp, path, args.libdir), tmp)
    try:
        p = subprocess.run([BIN, "top", "--once", "--connect", d.url], env=base_env(tmp, None,
                           args.libdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        check(p.returncode in (0, 3), "rc %d: %r" % (p.returncode, p.stderr))
        gpus = parse_plain(p.stdout.decode())
        check(len(gpus) == len(sc["gpus"]), "%d lines" % len(gpus))
        for i, g in enumerate(gpus):
            if g["state"] == "ok":
                compare_plain(g, sc, i)
        argv = [BIN, "top", "--interval", "200", "--connect", d.url]
        # A job's progress reported to the daemon (POST /api/v1/progress)
        # is shown from its GET /api/v1/progress.
        p = subprocess.run([BIN, "progress", "--daemon", d.url, "--job", "remote-7", "--gpu", "1",
                            "--unit", "batches", "30/120"], env=base_env(tmp, None, args.libdir),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        check(p.returncode == 0, "gpuwatch progress to the daemon: rc %d %r"
              % (p.returncode, p.stderr))
        before = route_requests(d.url)

        def run(t):
            t.wait_text(d.url)
            expect_gpus_on_screen(t, sc)  # GPU 0 is lost some 8 s in (40 samples)
            expect_pressure(t)
            t.wait_text("remote-7@1", "30/120 batches", "25%")
            s = t.wait(lambda x: re.search(r"^\d\d:\d\d:\d\d critical .*GPU 0", x, re.M) and
                       re.search(r"GPU 0 .*LOST", x), "GPU 0 lost, in its header and the log")
            time.sleep(1.0)  # several publications: a polling client would ask again
            t.quit()
        # the local library must not matter: point it nowhere
        with_tmux(args, tmp, None, run, 100, 30, argv=argv,
                  extra_env={"GPUWATCH_NVML_LIBRARY": "/nonexistent/libnvidia-ml.so.1"})
        time.sleep(0.5)  # the counters are rendered with the next publication
        after = route_requests(d.url)
        polls = after.get("/api/v1/events", 0) - before.get("/api/v1/events", 0)
        streams = after.get("/events", 0) - before.get("/events", 0)
        check(polls == 1, "top asked /api/v1/events %d times (want once: the history)" % polls)
        check(streams == 1, "top opened /events %d times (want 1)" % streams)
    finally:
        d.stop()
    p = subprocess.run([BIN, "top", "--once", "--connect", "http://127.0.0.1:1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    check(p.returncode == 1 and b"127.0.0.1:1" in p.stderr, "unreachable daemon: %r" % (p,))


CASES = {
    "pressure": case_pressure,
    "connect": case_connect,
    "progress": case_progress,
    "once-one": lambda a, t: case_once(a, t, "one"),
    "once-two": lambda a, t: case_once(a, t, "two"),
    "once-eight": lambda a, t: case_once(a, t, "eight"),
    "pipe": case_pipe,
    "lost-once": case_lost_once,
    "screen-one": lambda a, t: case_screen(a, t, "one"),
    "screen-two": lambda a, t: case_screen(a, t, "two"),
    "screen-eight": lambda a, t: case_screen(a, t, "eight"),
    "screen-eight-80x24": lambda a, t: case_screen(a, t, "eight", (80, 24)),
    "keys": case_keys,
    "kill": case_kill,
    "kill-denied": case_kill_denied,
    "mouse": case_mouse,
    "resize": case_resize,
    "cpu": case_cpu,
    "lost": case_lost,
    "stale": case_stale,
    "dumb": case_dumb,
    "ascii": case_ascii,
    "amd": case_amd,
    "colors": case_colors,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--libdir", required=True)
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.libdir, "lib-full", "libnvidia-ml.so.1")):
        print("SKIP: no fake NVML library")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="gw-top-")
    try:
        CASES[args.case](args, tmp)
    except Failed as e:
        print("FAIL %s: %s" % (args.case, e))
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok %s" % args.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
