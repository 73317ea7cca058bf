#!/usr/bin/env python3
"""Concurrency and crash safety of the reservations ledger, with the real
ledger code in many processes (tests/place/ledger_storm.c).

1. Concurrent reservers: CLIENTS processes reserve and release against the
   same ledger file and four test GPUs (24/24/16/8 GiB, 1 GiB margin) for
   SECONDS, while a watcher re-checks every few ms that no device's live
   reservations exceed its usable memory. Afterwards: every request was
   granted, refused with a reason, or an idempotent replay; no id was
   granted twice; the final ledger is consistent and not over-committed.
2. Crash safety: a reserving process is SIGKILLed at a random moment,
   KILLS times, against one ledger file that lives on across the kills;
   after each kill the ledger is consistent, not over-committed, and every
   reservation acknowledged so far (ACK printed after the commit) is still
   there unless a client had started releasing it. Every other kill waits
   for the process's first ACK before its random delay, so kills after
   acknowledgements happen however slowly this machine starts processes.

Default size: 16 clients x 4 s and 15 kills (keeps the suite short on a
shared 2-core machine); GW_PLACE_FULL=1 runs the issue's full size,
64 clients x 20 s and 50 kills.
"""
import os, random, re, signal, sqlite3, subprocess, sys, tempfile, time

STORM = sys.argv[1]
FULL = os.environ.get("GW_PLACE_FULL") == "1"
CLIENTS, SECONDS, KILLS = (64, 20, 50) if FULL else (16, 4, 15)
DEADLINE = 120  # seconds: only "never" may fail a wait, not a busy machine
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def parse(out):
    acks, dups, releasing, refused, summary = [], [], set(), 0, None
    for line in out.splitlines():
        w = line.split(" ", 1)
        if w[0] == "ACK":
            acks.append(int(w[1]))
        elif w[0] == "DUP":
            dups.append(int(w[1]))
        elif w[0] == "RELEASING":
            releasing.add(int(w[1]))
        elif w[0] == "REFUSED":
            refused += 1
            check(len(w) > 1 and w[1].strip(), "a refusal carries a reason")
        elif w[0] == "SUMMARY":
            summary = [int(x) for x in w[1].split()]
    return acks, dups, releasing, refused, summary


def ledger_check(path):
    r = subprocess.run([STORM, "check", path], capture_output=True, text=True, timeout=DEADLINE)
    live = {int(l.split()[1]) for l in r.stdout.splitlines() if l.startswith("LIVE ")}
    return r.returncode, r.stdout, live


def concurrent(tmp):
    path = os.path.join(tmp, "conc.db")
    me = str(os.getpid())
    procs = [subprocess.Popen([STORM, "reserve", path, str(SECONDS), str(i + 1), me],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(CLIENTS)]
    # the watcher keeps one read-only handle: start it once the schema exists
    deadline = time.time() + DEADLINE
    while time.time() < deadline:
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            ok = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'reservations'").fetchone()[0]
            db.close()
            if ok:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.01)
    watcher = subprocess.Popen([STORM, "watch", path, str(SECONDS)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    all_acks, total = [], [0, 0, 0, 0]
    for p in procs:
        out, err = p.communicate(timeout=SECONDS + DEADLINE)
        check(p.returncode == 0, f"client exit {p.returncode}: {err.strip()} {out[-300:]}")
        acks, dups, _, refused, summary = parse(out)
        check(summary is not None, "client printed its summary")
        if summary:
            attempts, granted, ref, dup = summary
            check(attempts == granted + ref + dup, f"every request answered: {summary}")
            check(granted == len(acks) and ref == refused and dup == len(dups),
                  f"summary matches the lines: {summary}")
            total = [a + b for a, b in zip(total, summary)]
        all_acks += acks
    wout, werr = watcher.communicate(timeout=SECONDS + DEADLINE)
    check(watcher.returncode == 0, f"watcher saw no over-commit: {wout[-500:]} {werr}")
    check(len(all_acks) == len(set(all_acks)), "no reservation id granted twice")
    rc, out, _ = ledger_check(path)
    check(rc == 0, f"final ledger consistent, not over-committed: {out[-500:]}")
    check(total[1] > 0 and total[2] > 0, f"the storm both granted and refused: {total}")
    print(f"concurrent: {CLIENTS} clients x {SECONDS} s: attempts {total[0]}, granted {total[1]}, "
          f"refused {total[2]}, idempotent replays {total[3]}; {wout.strip()}", flush=True)


def crashes(tmp):
    path = os.path.join(tmp, "crash.db")
    me = str(os.getpid())
    rng = random.Random(7)
    acked, releasing = set(), set()
    killed_with_output = 0
    most_required = 0
    for k in range(KILLS):
        # few releases, so many acknowledged reservations must survive each kill
        p = subprocess.Popen([STORM, "reserve", path, "30", str(1000 + k), me, "5"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        fd, buf = p.stdout.fileno(), b""
        if k % 2:  # after its first acknowledgement (lines are flushed one by one)
            while not re.search(rb"(^|\n)ACK \d+\n", buf):
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
        time.sleep(rng.uniform(0.02, 0.4))
        p.send_signal(signal.SIGKILL)
        while True:  # every line it printed, read here (no buffer in between)
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
        p.stdout.close()
        p.wait(timeout=DEADLINE)
        out = buf.decode()
        check(p.returncode == -signal.SIGKILL, f"kill {k}: process was killed ({p.returncode})")
        acks, _, rel, _, _ = parse(out)
        if acks:
            killed_with_output += 1
        acked |= set(acks)
        releasing |= rel
        rc, cout, live = ledger_check(path)
        check(rc == 0, f"kill {k}: ledger consistent after restart: {cout[-400:]}")
        most_required = max(most_required, len(acked - releasing))
        missing = (acked - releasing) - live
        check(not missing, f"kill {k}: acknowledged reservations lost: {sorted(missing)[:10]}")
    check(killed_with_output > 0, "some kills landed after acknowledgements")
    print(f"crash: {KILLS} SIGKILLs, {len(acked)} acknowledged reservations tracked, "
          f"up to {most_required} required present at a restart", flush=True)


with tempfile.TemporaryDirectory() as tmp:
    concurrent(tmp)
    crashes(tmp)

print(f"{'FAILED' if failures else 'ok'}: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
