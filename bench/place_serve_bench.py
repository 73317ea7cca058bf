#!/usr/bin/env python3
"""Reservation throughput of `gpuwatch serve` through real HTTP (issue 7):
POST /api/v1/reservations over loopback, keep-alive, against the fake NVML
with 8 GPUs of 80 GB, so every reservation (1 MiB each, no lease) is
granted for the whole run.

    bench/place_serve_bench.py [--build DIR] [--lib LIBNVML] [--duration S]
                               [--connections N] [--threads N] [--ledger PATH]

Runs wrk (-t2, N connections, a Lua script that POSTs the JSON body) three
times: steady state (each wrk thread keeps <= 32 reservations live, DELETEing
the oldest, like bench/place_bench.c's ledger figure), the same steady state
after --live (default 5,000) more reservations were made and kept (issue 16:
a plan must not read every live reservation), and then without releases
(the ledger grows all run: planning reads every live reservation, so the rate
falls as it grows). Prints reservations/s (201s per second), p50/p99
latency, the daemon's CPU per request, and checks that the ledger then holds
exactly the counted reservations (GET /api/v1/reservations). Each reservation is one ledger transaction
(synchronous=NORMAL, WAL); the ledger lives in a temporary directory unless
--ledger says where (put it on the disk you care about: tmpfs is faster).
Target (issue 7): >= 2,000 reservations/s. Exit 0 when the run worked
(target reported, not enforced), 1 otherwise. Quote figures from a release
build (meson setup -Dbuildtype=release).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from serve_bench import TOP, cpu_ticks, scenario, start_daemon, stop, to_ms  # noqa: E402

# Steady state: each wrk thread keeps at most KEEP reservations live and
# releases the oldest (DELETE) beyond that, as bench/place_bench.c's ledger
# figure does; "reservations/s" counts the 201s only.
LUA = """
local body = '{"mem": "1MiB", "owner": "bench"}'
local hdr = {["Content-Type"] = "application/json"}
local ids = {}
reserved, released, other = 0, 0, 0
request = function()
  if KEEP >= 0 and #ids > KEEP then
    return wrk.format("DELETE", "/api/v1/reservations/" .. table.remove(ids, 1))
  end
  return wrk.format("POST", "/api/v1/reservations", hdr, body)
end
response = function(status, headers, b)
  if status == 201 then
    reserved = reserved + 1
    local id = b:match('"reservation":{"id":(%d+)')
    if id then ids[#ids + 1] = id end
  elseif status == 200 then
    released = released + 1
  else
    other = other + 1
  end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local r, d, o = 0, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("reserved"); d = d + t:get("released"); o = o + t:get("other")
  end
  io.write(string.format("RESERVED %d RELEASED %d OTHER %d\\n", r, d, o))
end
"""


def run(base, lua_path, keep, connections, duration, pid):
    with open(lua_path, "w") as f:
        f.write("KEEP = %d\n" % keep + LUA)
    c0 = cpu_ticks(pid)
    out = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % duration, "--latency",
                          "-s", lua_path, base + "/api/v1/reservations"],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    c1 = cpu_ticks(pid)
    m = re.search(r"RESERVED (\d+) RELEASED (\d+) OTHER (\d+)", out)
    secs = re.search(r"requests in ([\d.]+)(m?s)", out)
    if not m or not secs:
        print(out)
        sys.exit("wrk gave no figure")
    reserved, released, other = (int(x) for x in m.groups())
    elapsed = float(secs.group(1)) / (1000 if secs.group(2) == "ms" else 1)
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    sock = re.search(r"Socket errors: (.*)", out)
    return {"rps": reserved / elapsed, "reserved": reserved, "released": released,
            "other": other, "p50": to_ms(lat["50"]), "p99": to_ms(lat["99"]),
            "cpu_us": (c1 - c0) / os.sysconf("SC_CLK_TCK") * 1e6 / max(reserved + released, 1),
            "socket": sock.group(1) if sock else "none"}


def preload(base, n):
    """Creates n more live reservations (one keep-alive connection)."""
    import http.client
    host, port = base[len("http://"):].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    body = json.dumps({"mem": "1MiB", "owner": "preload"})
    for _ in range(n):
        c.request("POST", "/api/v1/reservations", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            sys.exit("preload: HTTP %d" % r.status)
    c.close()


def held(base):
    with urllib.request.urlopen(base + "/api/v1/reservations", timeout=60) as r:
        return len(json.loads(r.read())["reservations"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--lib")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="daemon HTTP threads")
    ap.add_argument("--growth", type=int, default=5, help="seconds of the no-release run")
    ap.add_argument("--ledger")
    ap.add_argument("--live", type=int, default=5000,
                    help="live reservations made before the second steady run")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    binary = os.path.join(a.build, "src", "cli", "gpuwatch")
    lib = a.lib or os.path.join(a.build, "tests", "nvml", "lib-full", "libnvidia-ml.so.1")
    tmp = tempfile.mkdtemp(prefix="gw-place-bench-")
    try:
        scn = os.path.join(tmp, "8.scn")
        with open(scn, "w") as f:
            f.write(scenario(8, 0))
        lua = os.path.join(tmp, "post.lua")
        ledger = a.ledger or os.path.join(tmp, "ledger.db")
        p, port = start_daemon(binary, lib, scn, ["--set", "ledger=" + ledger,
                                                  "--set", "threads=%d" % a.threads])
        base = "http://127.0.0.1:%d" % port
        try:
            steady = run(base, lua, 32, a.connections, a.duration, p.pid)
            live = held(base)
            preload(base, a.live)
            loaded_before = held(base)
            loaded = run(base, lua, 32, a.connections, a.duration, p.pid)
            loaded_after = held(base)
            growing = run(base, lua, -1, a.connections, a.growth, p.pid)
            live2 = held(base)
        finally:
            stop(p)
        print("POST /api/v1/reservations through HTTP: wrk -t2 -c%d, daemon threads=%d, "
              "8 fake GPUs, 1 MiB each, ledger %s" % (a.connections, a.threads, ledger))
        ok = True
        for name, r, secs, h, before in (
                ("steady (<= 32 live per wrk thread, oldest DELETEd)", steady, a.duration, live, 0),
                ("steady beside %d live reservations" % (loaded_before - live), loaded, a.duration,
                 loaded_after, loaded_before),
                ("growing (no release: the ledger grows all run)", growing, a.growth, live2,
                 loaded_after)):
            print("%s, %d s:" % (name, secs))
            print("  reservations/s     %10.0f   (target >= 2,000)" % r["rps"])
            print("  granted / released %10d / %d   other answers %d, socket errors: %s"
                  % (r["reserved"], r["released"], r["other"], r["socket"]))
            print("  latency p50 / p99  %7.2f ms / %.2f ms (all requests)" % (r["p50"], r["p99"]))
            print("  daemon CPU         %10.1f us per request" % r["cpu_us"])
            # wrk counts answers that arrived; a request cut at the end may
            # have been carried out uncounted, at most one per connection: a
            # POST (one more held than counted) or a DELETE (one fewer).
            want = before + r["reserved"] - r["released"]
            good = r["other"] == 0 and want - a.connections <= h <= want + a.connections
            print("  ledger holds       %10d   afterwards (%s)" % (h, "as counted" if good else
                                                                     "MISMATCH: %d counted" % want))
            ok = ok and good
        print("target (steady) %s; beside %d live: %s (issue 16: >= 2,000/s)" % (
            "met" if steady["rps"] >= 2000 else "NOT met", a.live,
            "met" if loaded["rps"] >= 2000 else "NOT met"))
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
