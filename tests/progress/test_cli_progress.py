#!/usr/bin/env python3
"""`gpuwatch progress`, `run`'s progress variables and the daemon's
/api/v1/progress and gpuwatch_job_progress_* families (issue 13).

Cases (argv[1]; all when none):
  dir      reports into a folder: the file's record, the start kept across
           reports (rate), GPUWATCH_JOB / GPUWATCH_GPUS / GPUWATCH_PROGRESS
           defaults, a folder writable by others refused, usage errors (exit 2)
  run      `gpuwatch run -- sh -c env` shows GPUWATCH_JOB (the reservation id),
           GPUWATCH_PROGRESS (dir:...) and GPUWATCH_GPUS (the placed UUID), and
           a progress report from inside the job lands in that folder
  daemon   a real `gpuwatch serve` (fake NVML, two.scn): reports by --daemon,
           GPUWATCH_PROGRESS=http://..., and discovery (GPUWATCH_DAEMON);
           GET /api/v1/progress; /metrics families with job/gpu/uuid labels
           (uuid of index "0" from the scenario) passing promtool; garbage JSON
           -> 400 naming the problem; the table's limit -> 503; run through
           the daemon exports the daemon's route
  concurrent  reports and scrapes from several connections at once
  door     read_only -> 403; a configured token is required (401 without it,
           the CLI with --token / GPUWATCH_TOKEN succeeds)
Expected values come from what the test sent and the scenario file, never
from gpuwatch's own output. The daemon's default port is never used: every
client gets GPUWATCH_DAEMON pointing at a closed port unless a case sets it.
"""
import atexit
import http.client
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "serve"))
from serve_util import (DEADLINE, FAKE_NVML, Daemon, check, fail, parse_prom,  # noqa: E402
                        parse_scenario, promtool, series)

BIN = os.environ["GPUWATCH_BIN"]
TWO = os.path.join(HERE, "..", "serve", "scenarios", "two.scn")


def mkdtemp(prefix):
    """A private folder, removed when the test exits."""
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    return d


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def client_env(extra=None):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("GPUWATCH_") and k not in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
                                                        "XDG_RUNTIME_DIR")}
    e["GPUWATCH_DAEMON"] = "http://127.0.0.1:%d" % closed_port()
    if extra:
        e.update(extra)
    return e


def progress(*args, env=None):
    p = subprocess.run([BIN, "progress", *args], env=env or client_env(), capture_output=True,
                       text=True, timeout=DEADLINE)
    check("runtime error" not in p.stderr and "Sanitizer" not in p.stderr,
          "sanitizer report: " + p.stderr)
    return p


def load(path):
    with open(path) as f:
        return json.load(f)


def case_dir():
    tmp = mkdtemp("gw-progress-")
    folder = os.path.join(tmp, "p")
    p = progress("--job", "train-1", "--gpu", "GPU-x", "--unit", "steps", "--message",
                 "epoch 1 caf\u00e9", "--dir", folder, "10/100")
    check(p.returncode == 0 and p.stdout == "" and p.stderr == "",
          "dir report: rc %d out %r err %r" % (p.returncode, p.stdout, p.stderr))
    check(stat.S_IMODE(os.stat(folder).st_mode) == 0o700, "folder not 0700")
    f = os.path.join(folder, "train-1@GPU-x.json")
    r1 = load(f)
    check((r1["job"], r1["gpu"], r1["done"], r1["total"], r1["unit"], r1["message"]) ==
          ("train-1", "GPU-x", 10, 100, "steps", "epoch 1 caf\u00e9"), "record %r" % r1)
    check(r1["started"] == r1["updated"] and r1["start_done"] == 10, "first report %r" % r1)
    p = progress("--job", "train-1", "--gpu", "GPU-x", "--dir", folder, "30/100")
    check(p.returncode == 0, "second report: " + p.stderr)
    r2 = load(f)
    check(r2["started"] == r1["started"] and r2["start_done"] == 10 and r2["done"] == 30,
          "the start is kept: %r" % r2)
    check(sorted(os.listdir(folder)) == ["train-1@GPU-x.json"], "temporary left behind: %r"
          % os.listdir(folder))
    # defaults: GPUWATCH_JOB, GPUWATCH_GPUS (first entry), GPUWATCH_PROGRESS=dir:
    other = os.path.join(tmp, "q")
    env = client_env({"GPUWATCH_JOB": "envjob", "GPUWATCH_GPUS": "GPU-a,GPU-b",
                      "CUDA_VISIBLE_DEVICES": "GPU-c", "GPUWATCH_PROGRESS": "dir:" + other})
    p = progress("5", env=env)
    check(p.returncode == 0, "env defaults: " + p.stderr)
    r = load(os.path.join(other, "envjob@GPU-a.json"))
    check(r["done"] == 5 and r["total"] == 0, "unknown total: %r" % r)
    # CUDA_VISIBLE_DEVICES when GPUWATCH_GPUS is unset; --local with XDG_RUNTIME_DIR
    xdg = os.path.join(tmp, "xdg")
    os.mkdir(xdg, 0o700)
    env = client_env({"GPUWATCH_JOB": "j2", "CUDA_VISIBLE_DEVICES": "3,4", "XDG_RUNTIME_DIR": xdg})
    p = progress("--local", "1/2", env=env)
    check(p.returncode == 0, "--local: " + p.stderr)
    check(os.path.exists(os.path.join(xdg, "gpuwatch", "progress", "j2@3.json")),
          "XDG folder: %r" % list(os.walk(xdg)))
    # no daemon answers: discovery falls back to the folder
    env = client_env({"GPUWATCH_PROGRESS_DIR": os.path.join(tmp, "fb")})
    p = progress("--job", "fb", "--gpu", "0", "1/2", env=env)
    check(p.returncode == 0 and os.path.exists(os.path.join(tmp, "fb", "fb@0.json")),
          "fallback to the folder: " + p.stderr)
    # a folder others may write into is refused, and nothing is written
    bad = os.path.join(tmp, "bad")
    os.mkdir(bad)
    os.chmod(bad, 0o777)
    p = progress("--job", "j", "--gpu", "0", "--dir", bad, "1/2")
    check(p.returncode == 1 and "writable by group or others" in p.stderr and not os.listdir(bad),
          "world-writable folder: rc %d %r" % (p.returncode, p.stderr))
    # usage errors: exit 2 with the reason
    for args, needle in ((["--gpu", "0", "1/2", "--dir", folder], "no job"),
                         (["--job", "j", "1/2", "--dir", folder], "no GPU"),
                         (["--job", "a b", "--gpu", "0", "1/2", "--dir", folder], "job 'a b'"),
                         (["--job", "j", "--gpu", "0", "3/2", "--dir", folder], "more than total"),
                         (["--job", "j", "--gpu", "0", "x/2", "--dir", folder], "whole numbers"),
                         (["--job", "j", "--gpu", "0", "--message", "a\x1bb", "1", "--dir", folder],
                          "message"),
                         (["--job", "j", "--gpu", "0", "1", "--dir", folder, "--local"], "exclude"),
                         (["--job", "j", "--gpu", "0", "--dir", folder], "missing DONE")):
        p = progress(*args)
        check(p.returncode == 2 and needle in p.stderr,
              "%r: rc %d, stderr %r (want %r)" % (args, p.returncode, p.stderr, needle))


def case_run():
    tmp = mkdtemp("gw-progress-run-")
    ledger = os.path.join(tmp, "ledger.db")
    folder = os.path.join(tmp, "progress")
    env = client_env({"GPUWATCH_LEDGER": ledger, "GPUWATCH_PROGRESS_DIR": folder})
    job = "env; %s progress 7/9 --unit steps" % BIN
    p = subprocess.run([BIN, "run", "--mem", "1GiB", "--gpu", "16GiB", "--quiet", "--", "sh", "-c",
                        job], env=env, capture_output=True, text=True, timeout=DEADLINE)
    check(p.returncode == 0, "run rc %d: %s" % (p.returncode, p.stderr))
    check("runtime error" not in p.stderr and "Sanitizer" not in p.stderr, "sanitizer: " + p.stderr)
    got = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    check(got.get("GPUWATCH_PROGRESS") == "dir:" + folder, "GPUWATCH_PROGRESS %r" %
          got.get("GPUWATCH_PROGRESS"))
    check(got.get("GPUWATCH_GPUS") == "GPU-given-0", "GPUWATCH_GPUS %r" % got.get("GPUWATCH_GPUS"))
    check(got.get("GPUWATCH_JOB") == got.get("GPUWATCH_RESERVATION") and
          re.fullmatch(r"\d+", got.get("GPUWATCH_JOB", "")), "GPUWATCH_JOB %r" % got)
    r = load(os.path.join(folder, "%s@GPU-given-0.json" % got["GPUWATCH_JOB"]))
    check((r["done"], r["total"], r["unit"]) == (7, 9, "steps"), "job's report %r" % r)
    # a job id the caller chose is kept
    p = subprocess.run([BIN, "run", "--mem", "1GiB", "--gpu", "16GiB", "--quiet", "--", "sh", "-c",
                        "env"], env=dict(env, GPUWATCH_JOB="pipeline-7"), capture_output=True,
                       text=True, timeout=DEADLINE)
    check("GPUWATCH_JOB=pipeline-7\n" in p.stdout, "caller's job id: " + p.stdout)


def post(port, body, token=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    c.request("POST", "/api/v1/progress", body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    if not conn:
        c.close()
    return r.status, data


def case_daemon():
    _, gpus = parse_scenario(TWO)
    d = Daemon(scenario=TWO)
    url = "http://127.0.0.1:%d" % d.port
    check(d.json("/api/v1/progress") == {"progress": []}, "empty table")
    p = progress("--daemon", url, "--job", "embed", "--gpu", "0", "--unit", "docs", "--message",
                 'say "hi"', "100/1000")
    check(p.returncode == 0, "--daemon: rc %d %s" % (p.returncode, p.stderr))
    p = progress("--job", "embed", "--gpu", "0", "400/1000",
                 env=client_env({"GPUWATCH_PROGRESS": url + "/api/v1/progress"}))
    check(p.returncode == 0, "GPUWATCH_PROGRESS=http: " + p.stderr)
    p = progress("--job", "embed", "--gpu", gpus[1]["uuid"], "5", env=client_env({"GPUWATCH_DAEMON": url}))
    check(p.returncode == 0, "discovered daemon: " + p.stderr)
    doc = d.json("/api/v1/progress")["progress"]
    check([(x["job"], x["gpu"], x["done"], x["total"]) for x in doc] ==
          [("embed", "0", 400, 1000), ("embed", gpus[1]["uuid"], 5, 0)], "list %r" % doc)
    e = doc[0]
    # the second report named neither unit nor message: the unit is kept
    check(e["start_done"] == 100 and e["started"] <= e["updated"] and e["unit"] == "docs" and
          e["message"] == "", "kept start and unit %r" % e)
    if e["updated"] > e["started"]:
        want = 300 / (e["updated"] - e["started"])
        check(abs(e["rate"] - want) <= want * 1e-3, "rate %r want %r" % (e["rate"], want))
    check(doc[1]["rate"] is None and doc[1]["eta_seconds"] is None, "one report: no rate %r" % doc[1])
    # /metrics: the three families, labels job/gpu/uuid, promtool clean
    st, _, body = d.get("/metrics")
    text = body.decode()
    check(st == 200, "/metrics %d" % st)
    rc, out = promtool(text)
    check(rc == 0 and not out.strip(), "promtool: " + out)
    samples, _ = parse_prom(text)
    uuid0 = gpus[0]["uuid"]
    v = series(samples, "gpuwatch_job_progress_done", job="embed", gpu="0", uuid=uuid0)
    check(v == 400, "progress_done of gpu 0 (uuid %s): %r\n%s" % (uuid0, v, text[-2000:]))
    check(series(samples, "gpuwatch_job_progress_total_units", job="embed", gpu="0", uuid=uuid0) == 1000,
          "progress_total")
    check(series(samples, "gpuwatch_job_progress_done", job="embed", gpu=gpus[1]["uuid"],
                 uuid=gpus[1]["uuid"]) == 5, "done by uuid")
    check(series(samples, "gpuwatch_job_progress_total_units", job="embed", gpu=gpus[1]["uuid"],
                 uuid=gpus[1]["uuid"]) is None, "no total series when the total is unknown")
    ts = series(samples, "gpuwatch_job_progress_updated_timestamp_seconds", job="embed", gpu="0",
                uuid=uuid0)
    check(ts is not None and abs(ts - e["updated"]) < 0.01, "updated %r vs %r" % (ts, e["updated"]))
    # garbage -> 400 naming what was wrong; the CLI maps a 400 to exit 2
    for body, needle in ((b"{nope", "not JSON"),
                         (b'{"job":"j","gpu":"0"}', 'missing \\"done\\"'),
                         (b'{"job":"j","gpu":"0","done":3,"total":2}', "more than total"),
                         (b'{"job":"j","gpu":"0","done":1,"colour":2}', 'unknown member \\"colour\\"'),
                         (b'{"job":"a/b","gpu":"0","done":1}', "job 'a/b'"),
                         (b"", "not JSON")):
        st, data = post(d.port, body)
        check(st == 400 and needle in data.decode(), "%r: %d %r" % (body, st, data))
    # the table's limit: 4096 records, then 503 naming it
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
    have = len(d.json("/api/v1/progress")["progress"])
    for i in range(4096 - have):
        st, data = post(d.port, json.dumps({"job": "fill-%d" % i, "gpu": "0", "done": 1}), conn=c)
        check(st == 200, "fill %d: %d %r" % (i, st, data))
    st, data = post(d.port, b'{"job":"one-more","gpu":"0","done":1}', conn=c)
    check(st == 503 and b"4096" in data, "full table: %d %r" % (st, data))
    st, data = post(d.port, b'{"job":"embed","gpu":"0","done":500,"total":1000}', conn=c)
    check(st == 200, "an existing record still updates when full: %d %r" % (st, data))
    c.close()
    d.stop()


def case_door():
    token = "progress-token"
    d = Daemon(scenario=TWO, args=["--set", "read_only=true"])
    url = "http://127.0.0.1:%d" % d.port
    st, data = post(d.port, b'{"job":"j","gpu":"0","done":1}')
    check(st == 403 and b"read-only" in data, "read_only: %d %r" % (st, data))
    p = progress("--daemon", url, "--job", "j", "--gpu", "0", "1")
    check(p.returncode == 1 and "403" in p.stderr, "CLI against read_only: %r" % p.stderr)
    check(d.json("/api/v1/progress") == {"progress": []}, "read_only stored nothing")
    d.stop()
    tok = os.path.join(mkdtemp("gw-progress-door-"), "token")
    with open(tok, "w") as f:
        f.write(token + "\n")
    d = Daemon(scenario=TWO, args=["--token-file", tok])
    url = "http://127.0.0.1:%d" % d.port
    st, data = post(d.port, b'{"job":"j","gpu":"0","done":1}')
    check(st == 401, "no token: %d %r" % (st, data))
    st, data = post(d.port, b'{"job":"j","gpu":"0","done":1}', token="wrong")
    check(st == 401, "wrong token: %d %r" % (st, data))
    p = progress("--daemon", url, "--job", "j", "--gpu", "0", "1")
    check(p.returncode == 1 and "401" in p.stderr, "CLI without token: %r" % p.stderr)
    p = progress("--daemon", url, "--token", token, "--job", "j", "--gpu", "0", "2/4")
    check(p.returncode == 0, "--token: " + p.stderr)
    p = progress("--daemon", url, "--job", "j", "--gpu", "1", "3/4",
                 env=client_env({"GPUWATCH_TOKEN": token}))
    check(p.returncode == 0, "GPUWATCH_TOKEN: " + p.stderr)
    check(len(d.json("/api/v1/progress")["progress"]) == 2, "both stored")
    d.stop()


def case_run_daemon():
    """run through the daemon exports the daemon's route."""
    d = Daemon(scenario=TWO)
    url = "http://127.0.0.1:%d" % d.port
    env = client_env({"GPUWATCH_NVML_LIBRARY": FAKE_NVML, "GPUWATCH_FAKE_NVML_SCENARIO": TWO,
                      "GPUWATCH_DAEMON": url})
    p = subprocess.run([BIN, "run", "--sources", "nvml", "--mem", "1GiB", "--quiet", "--", "sh",
                        "-c", "env; %s progress 3/6" % BIN], env=env, capture_output=True,
                       text=True, timeout=DEADLINE)
    check(p.returncode == 0, "run via daemon: rc %d %s" % (p.returncode, p.stderr))
    check("runtime error" not in p.stderr and "Sanitizer" not in p.stderr, "sanitizer: " + p.stderr)
    got = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    check(got.get("GPUWATCH_PROGRESS") == url + "/api/v1/progress", "route %r" % got)
    doc = d.json("/api/v1/progress")["progress"]
    check([(x["job"], x["gpu"], x["done"], x["total"]) for x in doc] ==
          [(got["GPUWATCH_JOB"], got["GPUWATCH_GPUS"].split(",")[0], 3, 6)], "job's report %r" % doc)
    d.stop()


def case_concurrent():
    """Reports and scrapes at once from several connections (the table's lock
    and the /metrics re-rendering after a report; the 'threads' suite runs this
    under ThreadSanitizer): every job's last report is what the daemon shows."""
    import threading
    d = Daemon(scenario=TWO, args=["--set", "threads=4"])
    errors = []

    def reporter(k):
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
        for i in range(1, 101):
            st, data = post(d.port, json.dumps({"job": "c%d" % k, "gpu": "0", "done": i,
                                                "total": 100}), conn=c)
            if st != 200:
                errors.append((k, i, st, data))
        c.close()

    def scraper():
        for _ in range(50):
            st, _, body = d.get("/metrics")
            if st != 200:
                errors.append(("metrics", st))
            st, _, body = d.get("/api/v1/progress")
            if st != 200:
                errors.append(("list", st))

    ts = [threading.Thread(target=reporter, args=(k,)) for k in range(4)]
    ts += [threading.Thread(target=scraper) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "errors: %r" % errors[:5])
    doc = d.json("/api/v1/progress")["progress"]
    check([(x["job"], x["done"]) for x in doc] == [("c%d" % k, 100) for k in range(4)],
          "final records %r" % doc)
    samples, _ = parse_prom(d.get("/metrics")[2].decode())
    for k in range(4):
        check(series(samples, "gpuwatch_job_progress_done", job="c%d" % k) == 100,
              "/metrics after the last report, job c%d" % k)
    d.stop()


CASES = {"dir": case_dir, "run": case_run, "daemon": case_daemon, "door": case_door,
         "run-daemon": case_run_daemon, "concurrent": case_concurrent}

if __name__ == "__main__":
    names = sys.argv[1:] or list(CASES)
    for n in names:
        if n not in CASES:
            fail("unknown case %r" % n)
        CASES[n]()
    print("ok:", " ".join(names))
