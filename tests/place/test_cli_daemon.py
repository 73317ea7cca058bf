#!/usr/bin/env python3
"""`gpuwatch run` / `place` through the daemon: a real `gpuwatch serve` on an
ephemeral loopback port with the fake NVML library serving
tests/serve/scenarios/two.scn. Expected devices and sizes come from the
scenario file (best fit: the smallest GPU whose free memory holds the need),
never from gpuwatch's output.

Covers: the reservation is listed by the daemon while CMD runs, with the
planned bytes and device; CUDA_VISIBLE_DEVICES is that GPU's UUID; it is gone
after CMD exits 0, exits 3, is killed by SIGTERM through run, and cannot be
executed; a daemon with a token refuses run without it (clear 401, no
fallback) and accepts it with it; nothing listening falls back to the local
ledger with one stderr line; --dry-run and place say which path they used.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "serve"))
from serve_util import (DEADLINE, FAKE_NVML, Daemon, check, fail, num,  # noqa: E402
                        parse_scenario, wait_for)

BIN = os.environ["GPUWATCH_BIN"]
TWO = os.path.join(HERE, "..", "serve", "scenarios", "two.scn")
GIB = 1 << 30
TOKEN = "client-test-token"

SCRIPT = r'''#!/usr/bin/env python3
import json, os, sys, time
out = os.environ["SHOW_OUT"]
doc = {"pid": os.getpid(), "argv": sys.argv,
       "env": {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "GPUWATCH_RESERVATION")}}
with open(out + ".tmp", "w") as f:
    json.dump(doc, f)
os.rename(out + ".tmp", out)
# wait until the test has looked at the daemon (it removes the file); the
# limit only stops a command whose test died
end = time.time() + 600
while os.path.exists(out) and time.time() < end:
    time.sleep(0.02)
sys.exit(int(os.environ.get("SHOW_RC", "0")))
'''


def client_env(tmp, extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    e["GPUWATCH_BIN"] = BIN
    e["GPUWATCH_NVML_LIBRARY"] = FAKE_NVML
    e["GPUWATCH_FAKE_NVML_SCENARIO"] = TWO
    e["SHOW_OUT"] = os.path.join(tmp, "show.json")
    if extra:
        e.update(extra)
    return e


def reservations(d, token=None):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
    try:
        c.request("GET", "/api/v1/reservations")
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    check(r.status == 200, "GET /api/v1/reservations: %d %r" % (r.status, body[:200]))
    return json.loads(body)["reservations"]


def clean(err, what):
    """The command's stderr has no sanitizer report (ASan/LSan change the
    exit status, UBSan does not)."""
    check("runtime error" not in err and "Sanitizer" not in err, "%s: sanitizer: %s" % (what, err))


def start_run(args, env, script):
    return subprocess.Popen([BIN, "run", "--sources", "nvml"] + args + ["--", script],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def wait_show(path, proc):
    end = time.time() + DEADLINE
    while time.time() < end:
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        if proc.poll() is not None:
            fail("run ended before CMD started: rc %d\n%s" % (proc.returncode, proc.stderr.read()))
        time.sleep(0.02)
    proc.kill()
    fail("CMD never started")


def main():
    _, gpus = parse_scenario(TWO)
    # best fit for 1 GiB: the smallest free memory that holds it
    fitting = [g for g in gpus if num(g, "memory.free") >= GIB]
    check(fitting, "scenario has no GPU with 1 GiB free")
    best = min(fitting, key=lambda g: num(g, "memory.free"))
    want_uuid = best["uuid"]

    tmp = tempfile.mkdtemp(prefix="gw-client-")
    script = os.path.join(tmp, "job")
    with open(script, "w") as f:
        f.write(SCRIPT)
    os.chmod(script, 0o755)
    show = os.path.join(tmp, "show.json")
    local_ledger = os.path.join(tmp, "local.db")

    d = Daemon(scenario=TWO)
    url = "http://127.0.0.1:%d" % d.port
    env = client_env(tmp)

    # --dry-run says which path it took and reserves nothing
    p = subprocess.run([BIN, "run", "--sources", "nvml", "--daemon", url, "--mem", "1GiB",
                        "--dry-run", "--", script], env=env, capture_output=True, text=True,
                       timeout=DEADLINE)
    check(p.returncode == 0, "dry-run rc %d: %s" % (p.returncode, p.stderr))
    check("via daemon " + url in p.stdout, "dry-run does not say via daemon:\n" + p.stdout)
    check("CUDA_VISIBLE_DEVICES=" + want_uuid in p.stdout, "dry-run env:\n" + p.stdout)
    check(reservations(d) == [], "dry-run reserved something")
    # place through the daemon (GPUWATCH_DAEMON)
    p = subprocess.run([BIN, "place", "--sources", "nvml", "--mem", "1GiB", "--json"],
                       env=dict(env, GPUWATCH_DAEMON=url), capture_output=True, text=True,
                       timeout=DEADLINE)
    check(p.returncode == 0, "place rc %d: %s" % (p.returncode, p.stderr))
    doc = json.loads(p.stdout)
    check(doc.get("via") == "daemon " + url, "place via %r" % doc.get("via"))
    check([x["uuid"] for x in doc["plan"]["devices"]] == [want_uuid], "place plan %r" % doc)

    # normal exit, failure, SIGTERM through run, cannot exec
    for case, rc_want in (("exit0", 0), ("exit3", 3), ("term", 128 + signal.SIGTERM)):
        if os.path.exists(show):
            os.unlink(show)
        e = dict(env, SHOW_RC="3" if case == "exit3" else "0")
        proc = start_run(["--daemon", url, "--mem", "1GiB", "--lease", "30"], e, script)
        got = wait_show(show, proc)
        check(got["env"]["CUDA_VISIBLE_DEVICES"] == want_uuid,
              "%s: CUDA_VISIBLE_DEVICES %r, want %r" % (case, got["env"]["CUDA_VISIBLE_DEVICES"],
                                                        want_uuid))
        rs = reservations(d)
        check(len(rs) == 1, "%s: daemon lists %d reservations while CMD runs" % (case, len(rs)))
        r = rs[0]
        check(str(r["id"]) == got["env"]["GPUWATCH_RESERVATION"],
              "%s: GPUWATCH_RESERVATION %r, daemon id %r" % (case, got["env"]["GPUWATCH_RESERVATION"],
                                                             r["id"]))
        check([(x["uuid"], x["bytes"]) for x in r["devices"]] == [(want_uuid, GIB)],
              "%s: reserved %r" % (case, r["devices"]))
        # handed to the command itself, as the local path does: the
        # reservation lives exactly as long as the command
        check(r["pid"] == got["pid"], "%s: owner pid %r, the command is %d (run %d)"
              % (case, r["pid"], got["pid"], proc.pid))
        check(r["expires_ns"] is not None, "%s: lease not passed" % case)
        if case == "term":
            proc.send_signal(signal.SIGTERM)  # run forwards it; the script dies of it
        else:
            os.unlink(show)
        out, err = proc.communicate(timeout=DEADLINE)
        check(proc.returncode == rc_want, "%s: rc %d, want %d: %s" % (case, proc.returncode,
                                                                      rc_want, err))
        check("via daemon " + url in err, "%s: no 'via daemon' in %r" % (case, err))
        clean(err, case)
        check(reservations(d) == [], "%s: reservation left after exit" % case)
    # the lease is renewed through the daemon while CMD runs (6 s lease,
    # renewed every 2 s): wait for the expiry to move, however long that
    # takes on this machine
    if os.path.exists(show):
        os.unlink(show)
    proc = start_run(["--daemon", url, "--mem", "1GiB", "--lease", "6"], env, script)
    wait_show(show, proc)
    first = reservations(d)
    check(len(first) == 1 and first[0]["expires_ns"], "lease: reservations %r" % first)
    later, = wait_for(lambda: (lambda x: (x,) if len(x) != 1 or x[0]["expires_ns"] >
                               first[0]["expires_ns"] else None)(reservations(d)),
                      "the lease to be renewed", d)
    check(len(later) == 1 and later[0]["id"] == first[0]["id"],
          "lease 6 s: the reservation lapsed while run renewed it: %r -> %r" % (first, later))
    os.unlink(show)
    out, err = proc.communicate(timeout=DEADLINE)
    check(proc.returncode == 0 and "warning" not in err, "lease: rc %d: %s" % (proc.returncode, err))
    check(reservations(d) == [], "lease: reservation left")
    p = subprocess.run([BIN, "run", "--sources", "nvml", "--daemon", url, "--mem", "1GiB", "--",
                        os.path.join(tmp, "no-such-program")], env=env, capture_output=True,
                       text=True, timeout=DEADLINE)
    check(p.returncode == 127, "cannot-exec rc %d: %s" % (p.returncode, p.stderr))
    clean(p.stderr, "cannot-exec")
    check(reservations(d) == [], "cannot-exec: reservation left")
    # does not fit: 409 with the plan, exit 1, nothing held
    total = sum(num(g, "memory.total") for g in gpus)
    p = subprocess.run([BIN, "run", "--sources", "nvml", "--daemon", url, "--mem", str(total),
                        "--", script], env=env, capture_output=True, text=True, timeout=DEADLINE)
    check(p.returncode == 1, "too big: rc %d: %s" % (p.returncode, p.stderr))
    clean(p.stderr, "too big")
    check(reservations(d) == [], "too big: reservation left")
    d.stop()

    # run releases explicitly (DELETE), not only through the daemon noticing
    # that run's pid is gone: a daemon whose proc root keeps run "alive" (a
    # copy of its stat, made before it execs gpuwatch) must still see nothing
    fake_proc = os.path.join(tmp, "proc")
    os.mkdir(fake_proc)
    d = Daemon(scenario=TWO, args=["--sources", "nvml", "--set", "proc_root=" + fake_proc])
    url = "http://127.0.0.1:%d" % d.port
    if os.path.exists(show):
        os.unlink(show)
    proc = subprocess.Popen(["sh", "-c", 'read x; exec "$@"', "sh", BIN, "run", "--sources",
                             "nvml", "--daemon", url, "--mem", "1GiB", "--", script],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    os.mkdir(os.path.join(fake_proc, str(proc.pid)))
    with open("/proc/%d/stat" % proc.pid) as f, \
            open(os.path.join(fake_proc, str(proc.pid), "stat"), "w") as g:
        g.write(f.read())
    proc.stdin.write("go\n")
    proc.stdin.close()
    proc.stdin = None  # communicate() must not flush it
    got = wait_show(show, proc)
    # the reservation now belongs to the command: keep it "alive" in the fake
    # proc root too, so only an explicit DELETE can free it
    os.mkdir(os.path.join(fake_proc, str(got["pid"])))
    with open("/proc/%d/stat" % got["pid"]) as f, \
            open(os.path.join(fake_proc, str(got["pid"]), "stat"), "w") as g:
        g.write(f.read())
    rs = reservations(d)
    check(len(rs) == 1 and rs[0]["pid"] == got["pid"], "fake proc: reservations %r" % rs)
    os.unlink(show)
    out, err = proc.communicate(timeout=DEADLINE)
    check(proc.returncode == 0, "fake proc: rc %d: %s" % (proc.returncode, err))
    check(reservations(d) == [], "run did not DELETE its reservation on the daemon")
    d.stop()

    # a daemon with a token: no token -> clear 401, no fallback; token -> works
    d = Daemon(scenario=TWO, args=["--set", "token=" + TOKEN])
    url = "http://127.0.0.1:%d" % d.port
    env = client_env(tmp, {"GPUWATCH_LEDGER": local_ledger})
    if os.path.exists(show):
        os.unlink(show)
    p = subprocess.run([BIN, "run", "--sources", "nvml", "--daemon", url, "--mem", "1GiB", "--",
                        script], env=env, capture_output=True, text=True, timeout=DEADLINE)
    check(p.returncode == 1, "no token: rc %d: %s" % (p.returncode, p.stderr))
    check("401" in p.stderr and "token" in p.stderr, "no token: message %r" % p.stderr)
    clean(p.stderr, "no token")
    check("local ledger" not in p.stderr, "no token: fell back: %r" % p.stderr)
    check(not os.path.exists(show), "no token: CMD ran")
    check(not os.path.exists(local_ledger), "no token: the local ledger was used")
    for how in ("flag", "env"):
        if os.path.exists(show):
            os.unlink(show)
        args = ["--daemon", url, "--mem", "1GiB"]
        e = dict(env)
        if how == "flag":
            args += ["--token", TOKEN]
        else:
            e["GPUWATCH_TOKEN"] = TOKEN
        proc = start_run(args, e, script)
        wait_show(show, proc)
        check(len(reservations(d)) == 1, "token by %s: not reserved on the daemon" % how)
        os.unlink(show)
        out, err = proc.communicate(timeout=DEADLINE)
        check(proc.returncode == 0, "token by %s: rc %d: %s" % (how, proc.returncode, err))
        check(reservations(d) == [], "token by %s: reservation left" % how)
    d.stop()

    # nothing listens: the local ledger, said in one stderr line. The port
    # stays bound (never listened on) until the end, so connecting is refused
    # and no other test's daemon can be given it meanwhile.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    free_port = s.getsockname()[1]
    if os.path.exists(show):
        os.unlink(show)
    url = "http://127.0.0.1:%d" % free_port
    proc = start_run(["--mem", "1GiB"], dict(env, GPUWATCH_DAEMON=url), script)
    got = wait_show(show, proc)
    check(got["env"]["CUDA_VISIBLE_DEVICES"] == want_uuid, "fallback: env %r" % got["env"])
    os.unlink(show)
    out, err = proc.communicate(timeout=DEADLINE)
    check(proc.returncode == 0, "fallback: rc %d: %s" % (proc.returncode, err))
    clean(err, "fallback")
    lines = [x for x in err.splitlines() if "no daemon at " + url in x]
    check(len(lines) == 1 and "local ledger" in lines[0], "fallback line: %r" % err)
    check(os.path.exists(local_ledger), "fallback: the local ledger was not used")
    # --local never asks the daemon (no line)
    p = subprocess.run([BIN, "run", "--sources", "nvml", "--local", "--mem", "1GiB", "--dry-run",
                        "--", script], env=dict(env, GPUWATCH_DAEMON=url), capture_output=True,
                       text=True, timeout=DEADLINE)
    check(p.returncode == 0 and "no daemon" not in p.stderr and
          "via local ledger " + local_ledger in p.stdout, "--local: %r %r" % (p.stdout, p.stderr))
    # a bad URL is a usage error
    p = subprocess.run([BIN, "run", "--daemon", "https://x:1", "--mem", "1GiB", "--", script],
                       env=env, capture_output=True, text=True, timeout=DEADLINE)
    check(p.returncode == 2 and "http://HOST:PORT" in p.stderr, "bad URL: %d %r" % (p.returncode,
                                                                                   p.stderr))
    s.close()
    print("ok")


if __name__ == "__main__":
    main()
