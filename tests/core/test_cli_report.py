#!/usr/bin/env python3
"""`gpuwatch report` on a CPU-only host (fixture /proc, host source only):
exit codes, the CPU-only line, JSON schema and values, --help/--version and
usage errors. Values are checked against the fixture written here."""
import json, os, subprocess, sys, tempfile

BIN = os.environ["GPUWATCH_BIN"]
failures = []

def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)

def run(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=60)

with tempfile.TemporaryDirectory() as root:
    def w(rel, text):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    w("meminfo", "MemTotal:       32768000 kB\nMemAvailable:   30000000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n")
    w("loadavg", "0.50 0.40 0.30 1/100 999\n")
    w("stat", "cpu  1 2 3 4 5 6 7 8 0 0\n" + "".join(f"cpu{i} 1 1 1 1 0 0 0 0 0 0\n" for i in range(8)))
    w("sys/kernel/hostname", "fixture-host\n")
    env = {"GPUWATCH_PROC_ROOT": root}

    r = run("report", "--json", "--sources", "host", env=env)
    check(r.returncode == 0, f"report --json exit 0 (got {r.returncode}, {r.stderr})")
    doc = json.loads(r.stdout)
    check(doc["schema"] == "gpuwatch.report/2", "schema name")
    check(doc["cpu_only"] is True, "cpu_only true")
    check(doc["cpu_only_reason"] == "no GPU found", "cpu_only_reason")
    check(doc["devices"] == [] and doc["processes"] == [], "no devices/processes")
    h = doc["host"]
    check(h["hostname"] == "fixture-host", "hostname from proc/sys/kernel/hostname")
    check(h["memory_total_bytes"] == 32768000 * 1024, "MemTotal in bytes")
    check(h["memory_available_bytes"] == 30000000 * 1024, "MemAvailable in bytes")
    check(h["cpu_count"] == 8, "cpu count from cpuN lines")
    check(h["load_average"] == [0.5, 0.4, 0.3], "load average")
    check(h["cpu_percent"] is None, "cpu percent null on one sample")
    s = doc["summary"]
    check(s["gpu_count"] == 0 and s["memory_total_bytes"] is None, "summary empty pool is null")
    check([x["name"] for x in doc["sources"]] == ["host"], "only the host source")

    r = run("report", "--sources", "host", env=env)
    check(r.returncode == 0, "human report exit 0")
    first = r.stdout.splitlines()[0] if r.stdout else ""
    check(first == "CPU-only mode: no GPU found", f"first line is the CPU-only line: {first!r}")
    check("RAM available 28.61 / 31.25 GiB" in r.stdout, "human RAM figures")

    r = run("report", "--sources", "host,bogus", env=env)
    check(r.returncode == 2 and "bogus" in r.stderr, "unknown source is a usage error naming it")
    r = run("report", "--frobnicate")
    check(r.returncode == 2 and "--frobnicate" in r.stderr, "unknown option exit 2")
    r = run("report", "--sources")
    check(r.returncode == 2 and "needs a value" in r.stderr, "missing option value exit 2")
    for bad in ("0", "abc", "600001"):
        r = run("report", "--call-timeout", bad, "--sources", "host", env=env)
        check(r.returncode == 2 and "--call-timeout" in r.stderr, f"--call-timeout {bad} refused")
    r = run("report", "--call-timeout=250", "--sources", "host", env=env)
    check(r.returncode == 0, "--call-timeout=250 accepted")
    # a wedged driver: nvmlInit_v2 never returns; report gives up at its
    # deadline naming the source instead of hanging
    fake = os.path.join(os.environ["GPUWATCH_BUILD_ROOT"], "tests/nvml/lib-full/libnvidia-ml.so.1")
    scn = os.path.join(os.environ["GPUWATCH_SOURCE_ROOT"], "tests/nvml/scenarios/inithang.scn")
    if os.path.exists(fake):
        r = run("report", "--timeout", "1", "--nvml-library", fake,
                env={**env, "GPUWATCH_FAKE_NVML_SCENARIO": scn})
        check(r.returncode == 1, f"hung NVML: exit 1 (got {r.returncode})")
        check("'nvml' did not answer within 1 s" in r.stderr, f"hung NVML named: {r.stderr!r}")
    else:
        check(False, "fake NVML library not built: " + fake)
    for bad in ("-1", "x", "86401"):
        r = run("report", "--timeout", bad, env=env)
        check(r.returncode == 2 and "--timeout" in r.stderr, f"--timeout {bad} refused")
    # --watch / -l and --id / -i (issue 13): the table, bad values, CPU-only
    r = run("report", "--list-options")
    rows = {l.split("\t")[0]: l.split("\t")[1:] for l in r.stdout.splitlines()}
    check(rows.get("--watch") == ["-l", "SEC"] and rows.get("--id") == ["-i", "GPU[,GPU]"],
          f"--list-options lists --watch -l and --id -i: {rows}")
    for bad in ("0", "-1", "-0.5", "nan", "NaN", "inf", "abc", "", "1e3", "0x10", "0.05",
                " 1", "86401"):
        for spelling in (["--watch", bad], [f"--watch={bad}"], ["-l", bad]):
            r = run("report", "--sources", "host", *spelling, env=env)
            check(r.returncode == 2 and "gpuwatch report: --watch: " in r.stderr and not r.stdout,
                  f"{spelling} refused (rc {r.returncode}, {r.stderr!r})")
    r = run("report", "--sources", "host", "--id", "0", env=env)
    check(r.returncode == 2 and "--id: no GPU '0' here (no GPU found)" in r.stderr,
          f"--id on a CPU-only host names the id: {r.stderr!r}")
    for bad in ("", "-1", "0,,1", "a b"):
        r = run("report", "--sources", "host", "-i", bad, env=env)
        check(r.returncode == 2 and "gpuwatch report: --id: " in r.stderr, f"-i {bad!r} refused")
    # --watch on a terminal: each frame clears the screen as watch(1) does,
    # and Ctrl-C (SIGINT) ends it with exit 0
    import pty, select, signal, time
    master, slave = pty.openpty()
    p = subprocess.Popen([BIN, "report", "--sources", "host", "--watch", "0.1"], stdout=slave,
                         stderr=subprocess.PIPE, env={**os.environ, **env, "TERM": "xterm"})
    os.close(slave)
    seen, deadline = b"", time.monotonic() + 90
    while seen.count(b"\x1b[H\x1b[2J") < 3 and time.monotonic() < deadline:
        if select.select([master], [], [], 1)[0]:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
    check(seen.count(b"\x1b[H\x1b[2J") >= 3 and b"Every 0.1s: gpuwatch report" in seen
          and b"CPU-only mode: no GPU found" in seen, f"tty frames cleared: {seen[:200]!r}")
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=90)
    except subprocess.TimeoutExpired:
        p.kill()
    os.close(master)
    check(p.returncode == 0, f"--watch on a tty: exit {p.returncode} after SIGINT")

    r = run("report", "--help")
    check(r.returncode == 0 and "--json" in r.stdout and "Exit status" in r.stdout, "report --help")
    r = run("--version")
    check(r.returncode == 0 and r.stdout.startswith("gpuwatch "), "--version")
    r = run()
    check(r.returncode == 2, "no command is a usage error")
    r = run("nonsense")
    check(r.returncode == 2 and "unknown command" in r.stderr, "unknown command")

print(f"{'FAILED' if failures else 'ok'}: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
