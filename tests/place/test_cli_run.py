#!/usr/bin/env python3
"""`gpuwatch place` and `gpuwatch run` end to end, on given GPUs (--gpu) and
a ledger in a temporary folder. The test command is a small script (named
llama-server / job) that writes its argv, the GPU selection variables and
what the ledger holds while it runs into a JSON file, then exits as told.
Expected plans are worked out by hand in the comments.

Nothing here depends on how fast the machine is: a command that must outlive
a step waits for the test to create SHOW_OUT.go (mode "wait") instead of
sleeping a fixed time, and every wait has the generous DEADLINE."""
import json, os, signal, sqlite3, subprocess, sys, tempfile, time

BIN = os.environ["GPUWATCH_BIN"]
DEADLINE = 120  # seconds: only "never" may fail a wait, not a busy machine
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


SCRIPT = r'''#!/usr/bin/env python3
import json, os, signal, sqlite3, sys, time
out = os.environ["SHOW_OUT"]
def ledger_rows():
    db = sqlite3.connect(os.environ["GPUWATCH_LEDGER"])
    rows = db.execute("SELECT r.id, r.pid, d.uuid, d.bytes FROM reservations r "
                      "JOIN reservation_devices d ON d.reservation_id = r.id ORDER BY r.id, d.pos").fetchall()
    db.close()
    return rows
def dump(extra=None):
    doc = {"argv": sys.argv, "pid": os.getpid(),
           "env": {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
                                                   "ONEAPI_DEVICE_SELECTOR", "GPUWATCH_RESERVATION")},
           "ledger": ledger_rows()}
    if extra:
        doc.update(extra)
    with open(out + ".tmp", "w") as f:
        json.dump(doc, f)
    os.rename(out + ".tmp", out)
mode = os.environ.get("SHOW_MODE", "exit0")
if mode == "term":
    def on_term(sig, frame):
        dump({"got": sig})
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    dump({"ready": True})
    time.sleep(600)
    sys.exit(9)
dump()
if mode == "wait":  # until the test says go (a safety limit if it died)
    end = time.time() + 600
    while not os.path.exists(out + ".go") and time.time() < end:
        time.sleep(0.02)
if mode == "fail":
    sys.exit(3)
if mode == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sys.exit(0)
'''


def live_rows(ledger):
    if not os.path.exists(ledger):
        return []
    db = sqlite3.connect(ledger)
    rows = db.execute("SELECT id FROM reservations").fetchall()
    db.close()
    return rows


with tempfile.TemporaryDirectory() as tmp:
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir)
    for name in ("llama-server", "job"):
        p = os.path.join(bindir, name)
        with open(p, "w") as f:
            f.write(SCRIPT)
        os.chmod(p, 0o755)
    ledger = os.path.join(tmp, "state", "ledger.db")
    show = os.path.join(tmp, "show.json")
    base_env = dict(os.environ)
    base_env.update({"PATH": bindir + ":" + os.environ["PATH"], "GPUWATCH_LEDGER": ledger,
                     "SHOW_OUT": show})

    def run(*args, mode="exit0", env=None, timeout=DEADLINE):
        e = dict(base_env)
        e["SHOW_MODE"] = mode
        e.update(env or {})
        if os.path.exists(show):
            os.unlink(show)
        return subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=timeout)

    def shown():
        with open(show) as f:
            return json.load(f)

    def wait_until(pred, what):
        end = time.time() + DEADLINE
        while time.time() < end:
            v = pred()
            if v:
                return v
            time.sleep(0.02)
        check(False, "timed out waiting for " + what)
        return None

    def go():
        """Lets a "wait" command finish."""
        with open(show + ".go", "w"):
            pass

    def gone(pid):
        """pid has exited (a zombie counts: its reservation is dead too)."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    GIB = 1 << 30
    two24 = ["--gpu", "24GiB", "--gpu", "24GiB"]

    # --- place: best fit on 24/12/16 for 10 GiB is the 12 (GPU 1)
    r = run("place", "--mem", "10GiB", "--gpu", "24GiB", "--gpu", "12GiB", "--gpu", "16GiB", "--json")
    check(r.returncode == 0, f"place exit 0 ({r.returncode} {r.stderr})")
    doc = json.loads(r.stdout)
    check(doc["schema"] == "gpuwatch.plan/1", "plan schema")
    p = doc["plan"]
    check(p["fits"] and [d["index"] for d in p["devices"]] == [1], f"best fit picks GPU 1: {p}")
    check(p["devices"][0]["bytes"] == 10 * GIB, "expected use 10 GiB")
    check(not os.path.exists(ledger), "place does not create the ledger")
    r = run("place", "--mem", "30GiB", "--gpu", "24GiB")
    check(r.returncode == 1 and "Does not fit" in r.stdout and "30.00 GiB" in r.stdout,
          f"place: does not fit, with the reason ({r.returncode} {r.stdout})")
    r = run("place", "--gpu", "24GiB")
    check(r.returncode == 2 and "no memory need" in r.stderr, "place without a need is a usage error")
    r = run("place", "--mem", "1GiB", "--gpu", "24GiB,state=melted")
    check(r.returncode == 2 and "state" in r.stderr, "bad --gpu spec names the key")
    r = run("place", "--mem", "1GiB", "--gpu", "24GiB", "--devices", "3")
    check(r.returncode == 2 and "no GPU '3'" in r.stderr, "unknown --devices entry")
    r = run("place", "--mem", "4GiB", "--gpu", "24GiB,state=lost", "--gpu", "8GiB", "--json")
    p = json.loads(r.stdout)["plan"]
    check([d["index"] for d in p["devices"]] == [1] and p["excluded"][0]["reason"] == "lost",
          "a lost GPU is skipped and listed")

    # --- dry run: 40 layers + output = 41 x 1 GiB on 24+24: targets 20.5 -> 21/20
    r = run("run", "--dry-run", "--json", "--layers", "40", "--layer-size", "1GiB", *two24,
            "--", "llama-server", "-m", "m.gguf")
    check(r.returncode == 0, f"dry run exit 0 ({r.stderr})")
    d = json.loads(r.stdout)
    check(d["env"] == {"CUDA_VISIBLE_DEVICES": "GPU-given-0,GPU-given-1"}, f"dry-run env {d['env']}")
    check(d["argv"] == ["llama-server", "-m", "m.gguf", "-ngl", "41", "--tensor-split", "21,20"],
          f"dry-run argv {d['argv']}")
    check(not os.path.exists(ledger), "dry run reserves nothing")
    r = run("run", "--dry-run", "--layers", "40", "--layer-size", "1GiB", *two24,
            "--", "llama-server", "-ngl", "10", "--tensor-split=1,1")
    check("command: llama-server -ngl 10 --tensor-split=1,1\n" in r.stdout,
          f"user's -ngl / --tensor-split kept, nothing added: {r.stdout}")
    r = run("run", "--dry-run", "--json", "--layers", "40", "--layer-size", "1GiB", *two24, "--", "job")
    check(json.loads(r.stdout)["argv"] == ["job"], "no llama flags for other commands")
    r = run("run", "--dry-run", "--json", "--mem", "4GiB", "--gpu", "16GiB,vendor=amd,index=3",
            "--", "job")
    check(json.loads(r.stdout)["env"] == {"HIP_VISIBLE_DEVICES": "3"}, "AMD: HIP_VISIBLE_DEVICES")
    r = run("run", "--dry-run", "--json", "--mem", "4GiB", "--gpu", "16GiB,vendor=intel,index=1",
            "--", "job")
    check(json.loads(r.stdout)["env"] == {"ONEAPI_DEVICE_SELECTOR": "level_zero:1"},
          "Intel: ONEAPI_DEVICE_SELECTOR")

    # --- real runs: env and flags as planned, reservation held while running
    r = run("run", "--layers", "40", "--layer-size", "1GiB", *two24, "--", "llama-server", "-m", "x")
    check(r.returncode == 0, f"run exit 0 ({r.returncode} {r.stderr})")
    s = shown()
    check(s["argv"][1:] == ["-m", "x", "-ngl", "41", "--tensor-split", "21,20"], f"argv {s['argv']}")
    check(s["env"]["CUDA_VISIBLE_DEVICES"] == "GPU-given-0,GPU-given-1", "CUDA_VISIBLE_DEVICES by uuid")
    rows = s["ledger"]
    check([(u, b) for _, _, u, b in rows] == [("GPU-given-0", 21 * GIB), ("GPU-given-1", 20 * GIB)],
          f"ledger held the plan while running: {rows}")
    check(all(pid == s["pid"] for _, pid, _, _ in rows), "the reservation is owned by the command")
    check(str(rows[0][0]) == s["env"]["GPUWATCH_RESERVATION"], "GPUWATCH_RESERVATION is its id")
    check(live_rows(ledger) == [], "released after a normal exit")

    r = run("run", "--mem", "8GiB", *two24, "--", "job", mode="fail")
    check(r.returncode == 3, f"run passes the command's failure status ({r.returncode})")
    check(len(shown()["ledger"]) == 1, "held while the failing command ran")
    check(live_rows(ledger) == [], "released after a failure")

    r = run("run", "--mem", "8GiB", *two24, "--", "job", mode="kill")
    check(r.returncode == 128 + 9, f"killed command -> 137 ({r.returncode})")
    check(live_rows(ledger) == [], "released after the command was killed")

    r = run("run", "--mem", "30GiB", "--gpu", "24GiB", "--", "job")
    check(r.returncode == 1 and "Does not fit" in r.stderr, f"does not fit -> 1 ({r.returncode} {r.stderr})")
    check(not os.path.exists(show), "the command did not run")
    r = run("run", "--mem", "8GiB", "--gpu", "24GiB", "--", "no-such-command-here")
    check(r.returncode == 127, f"unknown command -> 127 ({r.returncode})")
    check(live_rows(ledger) == [], "released when the command cannot start")
    r = run("run", "--mem", "8GiB", "--gpu", "24GiB", "job")
    check(r.returncode == 2 and "--" in r.stderr, "a command without '--' is a usage error")
    r = run("run", "--json", "--mem", "8GiB", "--gpu", "24GiB", "--", "job")
    check(r.returncode == 2 and "--dry-run" in r.stderr, "--json without --dry-run is a usage error")
    check(not os.path.exists(show), "nothing ran")

    # --- signals are forwarded; two runs never share the same memory
    e = dict(base_env)
    e.update({"SHOW_MODE": "term"})
    if os.path.exists(show):
        os.unlink(show)
    holder = subprocess.Popen([BIN, "run", "--mem", "16GiB", "--gpu", "24GiB", "--", "job"],
                              env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: os.path.exists(show), "the holder's command to start")
    r = run("run", "--mem", "16GiB", "--gpu", "24GiB", "--", "job", env={"SHOW_OUT": show + "2"})
    check(r.returncode == 1 and "16.00 GiB reserved" in r.stderr,
          f"a second 16 GiB on the same 24 GiB GPU is refused, naming the reservation: {r.stderr}")
    r = run("place", "--mem", "7GiB", "--gpu", "24GiB")
    check(r.returncode == 0, "place sees the 8 GiB left (7 fits)")
    r = run("place", "--mem", "9GiB", "--gpu", "24GiB")
    check(r.returncode == 1, "place sees the reservation (9 does not fit)")
    holder.send_signal(signal.SIGTERM)
    out, err = holder.communicate(timeout=DEADLINE)
    check(holder.returncode == 0, f"SIGTERM forwarded, the command exited 0 ({holder.returncode} {err})")
    check(shown().get("got") == signal.SIGTERM, "the command received SIGTERM")
    check(live_rows(ledger) == [], "released after the forwarded signal")

    # --- run itself SIGKILLed: the command keeps the reservation, then it is auto-released
    e = dict(base_env)
    e.update({"SHOW_MODE": "wait"})
    for f in (show, show + ".go"):
        if os.path.exists(f):
            os.unlink(f)
    # (the command inherits run's stdout: DEVNULL, so waiting for run does not wait for it)
    runner = subprocess.Popen([BIN, "run", "--mem", "16GiB", "--gpu", "24GiB", "--", "job"], env=e,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: os.path.exists(show), "run's command to start")
    child = shown()["pid"]
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=DEADLINE)
    check(not gone(child), "the command outlives a killed run")
    r = run("place", "--mem", "9GiB", "--gpu", "24GiB")
    check(r.returncode == 1, "with run killed, its command still holds the reservation")
    go()
    wait_until(lambda: gone(child), "the command to exit")
    r = run("place", "--mem", "20GiB", "--gpu", "24GiB")
    check(r.returncode == 0, f"once the command is gone its reservation no longer counts: {r.stdout}")
    r = run("run", "--mem", "20GiB", "--gpu", "24GiB", "--", "job")
    check(r.returncode == 0 and live_rows(ledger) == [], "the next run reaps it and releases its own")

    # --- --lease: run renews it while the command runs. Lease 6 s, renewed
    # every 2 s: the expiry moves on while the command waits, however long
    # this machine takes to get there (4 s of slack before a lapse).
    e = dict(base_env)
    e.update({"SHOW_MODE": "wait"})
    for f in (show, show + ".go"):
        if os.path.exists(f):
            os.unlink(f)
    leased = subprocess.Popen([BIN, "run", "--lease", "6", "--mem", "4GiB", "--gpu", "24GiB", "--",
                               "job"], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(lambda: os.path.exists(show), "the leased command to start")

    def expiry():
        db = sqlite3.connect(ledger)
        exp = db.execute("SELECT expires_ns FROM reservations").fetchall()
        db.close()
        return exp
    first = expiry()
    check(len(first) == 1 and first[0][0] is not None, f"one leased reservation: {first}")
    if len(first) == 1 and first[0][0] is not None:
        later = wait_until(lambda: (lambda x: x if len(x) == 1 and x[0][0] > first[0][0] else None)(
            expiry()), "the lease to be renewed")
        check(later and later[0][0] > time.time_ns(),
              f"the lease is renewed while running: {first} -> {later}")
    go()
    leased.communicate(timeout=DEADLINE)
    check(leased.returncode == 0 and live_rows(ledger) == [], "leased run released at exit")

    # --- a GGUF model through the estimator (tests/estimate/model_writer.py)
    writer = os.path.join(os.environ.get("GPUWATCH_SOURCE_ROOT", "."), "tests/estimate/model_writer.py")
    if os.path.exists(writer):
        model = os.path.join(tmp, "m.gguf")
        shape = {"arch": "llama", "n_layer": 12, "n_embd": 2048, "n_head": 16, "n_head_kv": 4,
                 "n_ff": 5632, "n_vocab": 32000, "wtype": "Q4_K", "n_ctx_train": 16384}
        subprocess.run([sys.executable, writer, model, json.dumps(shape)], check=True,
                       capture_output=True, timeout=120)
        fit = json.loads(run("fit", model, "-c", "4096", "--gpu", "80GiB", "--json").stdout)
        want = fit["requested"]["devices"][0]["memory"]["total"]
        r = run("place", "--model", model, "--ctx", "4096", "--gpu", "80GiB", "--json")
        p = json.loads(r.stdout)["plan"]
        check(p["fits"] and p["ngl"] == 13 and p["n_layers"] == 13, f"model plan: all 13 units ({p})")
        check(p["gpu_bytes"] == want, f"one-GPU plan uses the estimator's device total "
                                      f"({p['gpu_bytes']} vs {want})")
        check(p["host_bytes"] == fit["requested"]["host"]["total"], "host part from the estimator")
        r = run("run", "--dry-run", "--json", "--model", model, "--ctx", "4096", "--gpus", "2",
                "--gpu", "24GiB", "--gpu", "24GiB", "--", "llama-server", "-m", model)
        d = json.loads(r.stdout)
        a = d["argv"]
        check(a[:3] == ["llama-server", "-m", model] and a[3:5] == ["-ngl", "13"] and
              a[5] == "--tensor-split" and a[7:] == ["-c", "4096"], f"model run argv {a}")
        check(sum(int(x) for x in a[6].split(",")) == 13, "tensor split covers every layer")
        # each split is re-estimated: the expected use per GPU is the estimator's own
        # figure for exactly that split (fit -ts), compute buffers included
        ts = a[6]
        fit2 = json.loads(run("fit", model, "-c", "4096", "--gpu", "24GiB", "--gpu", "24GiB",
                              "-ts", ts, "--json").stdout)
        want2 = [x["memory"]["total"] for x in fit2["requested"]["devices"]]
        got2 = [x["bytes"] for x in d["plan"]["devices"]]
        check(got2 == want2, f"two-GPU plan uses the estimator's per-GPU totals ({got2} vs {want2})")
        r = run("place", "--model", model, "--mem", "1GiB", "--gpu", "8GiB")
        check(r.returncode == 2 and "only one of" in r.stderr, "--model with --mem is a usage error")
    else:
        print("skip: no tests/estimate/model_writer.py")

    # --- one grammar for sizes and numbers (issue 12): NaN, infinities,
    # negatives, overflow and junk are usage errors naming option and value
    for opt, bad in (("--mem", ["nan", "inf", "-1GiB", "1e3G", "0x10", "18446744073709551616",
                                "20000000000GiB", "1.5", "8G junk", "0"]),
                     ("--margin", ["nan", "-1", "inf", "1e3"]),
                     ("--layers", ["nan", "-1", "1.5", "0", "100000"]),
                     ("--ctx", ["nan", "-1", "4294967296", "1e3"]),
                     ("--gpus", ["nan", "-1", "0", "4097"]),
                     ("--max-temp", ["nan", "inf", "-inf", "1e3", "0x50", "1000"])):
        for v in bad:
            for cmd in ("place", "run"):
                extra = ["--mem", "1GiB"] if opt != "--mem" else []
                tail = ["--", "job"] if cmd == "run" else []
                for form in ([opt, v], [f"{opt}={v}"]):
                    r = run(cmd, *form, *extra, "--gpu", "8GiB", "--dry-run" if cmd == "run"
                            else "--json", *tail)
                    check(r.returncode == 2 and opt in r.stderr and f"'{v}'" in r.stderr,
                          f"{cmd} {form}: {r.returncode} {r.stderr!r}")
    for spec in ("nan", "inf", "-8GiB", "8GiB,free=nan", "8GiB,total=inf", "8GiB,temp=nan",
                 "8GiB,limit=inf", "8GiB,temp=1e3", "8GiB,index=-1", "8GiB,index=nan"):
        r = run("place", "--mem", "1GiB", "--gpu", spec)
        check(r.returncode == 2 and f"--gpu '{spec}'" in r.stderr, f"place --gpu {spec}: "
              f"{r.returncode} {r.stderr!r}")
    for v in ("nan", "-1", "0", "1e3", "1.5"):
        r = run("run", "--lease", v, "--mem", "1GiB", "--gpu", "8GiB", "--", "job")
        check(r.returncode == 2 and "--lease" in r.stderr and f"'{v}'" in r.stderr,
              f"run --lease {v}: {r.returncode} {r.stderr!r}")

print(f"{'FAILED' if failures else 'ok'}: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
