#!/usr/bin/env python3
"""The placement/reservation routes of `gpuwatch serve` over real loopback
HTTP, against the fake NVML library serving tests/serve/scenarios/two.scn.
Expected sizes come from the scenario file (memory.free per GPU), never
from gpuwatch's own output.

    test_place.py CASE        (cases: api, concurrency)
"""
import http.client
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import DEADLINE, HERE, Daemon, check, fail, num, parse_scenario  # noqa: E402

TWO = os.path.join(HERE, "scenarios", "two.scn")
GIB = 1 << 30
MIB = 1 << 20
TOKEN = "place-test-token"


def want(got, status, what):
    st, _, body = got
    check(st == status, "%s: status %d, want %d: %r" % (what, st, status, body))
    if status >= 400 and status != 409:  # 409: the plan with its reason
        check(isinstance(body, dict) and set(body) == {"error"} and
              body["error"]["code"] == status and body["error"]["message"],
              "%s: error body %r" % (what, body))
    return body


def reservations(d):
    return want(d.call("GET", "/api/v1/reservations"), 200, "list")["reservations"]


def placement_of(d, uuid):
    h = d.json("/health")
    check("placement" in h, "/health has no placement member: %r" % list(h))
    devs = [x for x in h["placement"]["devices"] if x["uuid"] == uuid]
    check(len(devs) == 1, "/health placement lists %s %d times" % (uuid, len(devs)))
    return h["placement"], devs[0]["reservations"]


def case_api():
    _, gpus = parse_scenario(TWO)
    free = [num(g, "memory.free") for g in gpus]
    uuid = [g["uuid"] for g in gpus]
    check(free[1] < free[0] and 2 * GIB < free[1] < 4 * GIB,
          "scenario: GPU 1 must be the small one with 2..4 GiB free: %r" % free)
    tmp = tempfile.mkdtemp()
    models = os.path.join(tmp, "models")
    os.mkdir(models)
    outside = os.path.join(tmp, "outside.gguf")
    with open(outside, "wb") as f:
        f.write(b"GGUF")
    os.symlink(outside, os.path.join(models, "link.gguf"))
    d = Daemon(scenario=TWO, args=["--set", "token=" + TOKEN, "--set", "model_dirs=" + models])

    # Plan is a dry run: best fit picks the smallest GPU that holds it, with
    # the scenario's free memory as usable; nothing is reserved.
    plan = want(d.call("POST", "/api/v1/plan", {"mem": "1GiB"}), 200, "plan 1 GiB")["plan"]
    check(plan["fits"] and [x["index"] for x in plan["devices"]] == [1], "plan 1 GiB: %r" % plan)
    check(plan["devices"][0]["bytes"] == GIB, "plan bytes %r" % plan["devices"][0])
    check(plan["devices"][0]["usable_bytes"] == free[1], "usable %r != scenario free %d"
          % (plan["devices"][0]["usable_bytes"], free[1]))
    plan = want(d.call("POST", "/api/v1/plan", {"mem": free[1] + 1}), 200, "plan > GPU 1")["plan"]
    check([x["index"] for x in plan["devices"]] == [0], "plan just over GPU 1: %r" % plan)
    check(plan["devices"][0]["usable_bytes"] == free[0], "usable GPU 0 %r" % plan["devices"][0])
    plan = want(d.call("POST", "/api/v1/plan", {"mem": free[0] + 1}), 409, "plan > every GPU")["plan"]
    check(not plan["fits"] and plan["reason"], "no fit needs a reason: %r" % plan)
    check(reservations(d) == [], "a plan reserved something")

    # Bad requests.
    want(d.call("POST", "/api/v1/plan", raw="{not json"), 400, "garbage JSON")
    want(d.call("POST", "/api/v1/reservations", raw="[1,2", token=TOKEN), 400, "garbage JSON reserve")
    want(d.call("POST", "/api/v1/plan", {"mem": "1GiB", "memm": 1}), 400, "unknown member")
    want(d.call("POST", "/api/v1/plan", raw=""), 400, "empty body")
    big = json.dumps({"mem": "1GiB", "note": "x" * (70 * 1024)})
    want(d.call("POST", "/api/v1/reservations", raw=big, token=TOKEN), 413, "70 KiB body")
    want(d.call("POST", "/api/v1/plan", raw=big), 413, "70 KiB plan body")
    check(d.get("/health")[0] == 200, "serving after a refused body")
    # Far beyond the cap the server answers without reading the rest; the
    # close may reset the connection before the status line arrives.
    c = socket.create_connection(("127.0.0.1", d.port), timeout=DEADLINE)
    c.sendall(b"POST /api/v1/reservations HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n")
    try:
        for _ in range(100):
            c.sendall(b"x" * 20000)
    except OSError:
        pass
    try:
        got = c.recv(100)
    except ConnectionResetError:
        got = b""
    except socket.timeout:
        fail("a 4 MB request body was not refused")
    check(got == b"" or got.startswith(b"HTTP/1.1 413"), "4 MB body answered %r" % got[:40])
    c.close()
    # Model files: only under model_dirs, after resolving symlinks and "..".
    for m in ("/etc/passwd", outside, os.path.join(models, "link.gguf"),
              os.path.join(models, "..", "outside.gguf")):
        st, _, body = d.call("POST", "/api/v1/plan", {"model": m})
        want((st, None, body), 403, "model %s" % m)
        check("model director" in body["error"]["message"], "model %s: %r" % (m, body))
    check(reservations(d) == [], "a refused request reserved something")

    # Method and route errors.
    st, h, _ = d.call("GET", "/api/v1/plan")
    check(st == 405 and h.get("allow") == "POST", "GET /api/v1/plan: %d %r" % (st, h.get("allow")))
    st, h, _ = d.call("PUT", "/api/v1/reservations", {"mem": 1}, token=TOKEN)
    check(st == 405 and "POST" in h.get("allow", "") and "GET" in h.get("allow", ""),
          "PUT collection: %d %r" % (st, h.get("allow")))
    st, h, _ = d.call("POST", "/api/v1/reservations/1", {}, token=TOKEN)
    check(st == 405 and "DELETE" in h.get("allow", ""), "POST one: %d %r" % (st, h.get("allow")))
    want(d.call("GET", "/api/v1/reservations/1/nope"), 404, "unknown sub-route")
    want(d.call("GET", "/api/v1/reservations/999999"), 404, "unknown id")
    want(d.call("DELETE", "/api/v1/reservations/999999", token=TOKEN), 404, "delete unknown id")
    want(d.call("GET", "/api/v1/reservations/abc"), 400, "bad id")

    # Mutating calls need the token.
    req = {"mem": "2GiB", "owner": "place-test"}
    want(d.call("POST", "/api/v1/reservations", req), 401, "reserve without token")
    want(d.call("POST", "/api/v1/reservations", req, token="wrong"), 401, "reserve, wrong token")
    check(reservations(d) == [], "an unauthorised reserve reserved")

    # Reserve twice with one Idempotency-Key: one reservation.
    key = {"Idempotency-Key": "job-42"}
    first = want(d.call("POST", "/api/v1/reservations", req, token=TOKEN, headers=key), 201, "reserve")
    res = first["reservation"]
    check(not first["replayed"] and res["key"] == "job-42" and res["owner"] == "place-test",
          "reservation %r" % first)
    check(res["devices"] == [{"uuid": uuid[1], "bytes": 2 * GIB}], "reserved devices %r" % res)
    again = want(d.call("POST", "/api/v1/reservations", req, token=TOKEN, headers=key), 200, "replay")
    check(again["replayed"] and again["reservation"]["id"] == res["id"], "replay %r" % again)
    rid = str(res["id"])
    lst = reservations(d)
    check([r["id"] for r in lst] == [res["id"]], "list after two keyed reserves: %r" % lst)
    got = want(d.call("GET", "/api/v1/reservations/" + rid), 200, "get")["reservation"]
    check(got["devices"] == res["devices"] and got["expires_ns"] is None, "get %r" % got)

    # The reservation counts: GPU 1 now has free - 2 GiB; 2 GiB goes to GPU 0.
    plan = want(d.call("POST", "/api/v1/plan", {"mem": "2GiB"}), 200, "plan after reserve")["plan"]
    check([x["index"] for x in plan["devices"]] == [0], "2 GiB after the reservation: %r" % plan)
    plan = want(d.call("POST", "/api/v1/plan", {"mem": free[1] - 2 * GIB, "devices": [1]}), 200,
                "exactly what is left on GPU 1")["plan"]
    check(plan["devices"][0]["usable_bytes"] == free[1] - 2 * GIB, "left on GPU 1 %r" % plan)
    want(d.call("POST", "/api/v1/plan", {"mem": free[1] - 2 * GIB + 1, "devices": [1]}), 409,
         "one byte more than is left on GPU 1")

    # /health: the strategy and the reservation on the GPU it was placed on.
    pl, on1 = placement_of(d, uuid[1])
    check(pl["strategy"] == "best-fit", "strategy %r" % pl["strategy"])
    check([(r["id"], r["bytes"], r["owner"]) for r in on1] == [(res["id"], 2 * GIB, "place-test")],
          "health GPU 1 %r" % on1)
    check(placement_of(d, uuid[0])[1] == [], "health GPU 0 lists a reservation")

    # Renew: a lease from now.
    body = {"lease_s": 60}
    want(d.call("POST", "/api/v1/reservations/%s/renew" % rid, body), 401, "renew without token")
    t0 = time.time_ns()
    ren = want(d.call("POST", "/api/v1/reservations/%s/renew" % rid, body, token=TOKEN), 200,
               "renew")["reservation"]
    t1 = time.time_ns()
    check(t0 + 60 * 10**9 <= ren["expires_ns"] <= t1 + 60 * 10**9, "renewed expiry %r" % ren)
    want(d.call("POST", "/api/v1/reservations/999999/renew", body, token=TOKEN), 404, "renew unknown")
    want(d.call("POST", "/api/v1/reservations/%s/renew" % rid, raw="nope", token=TOKEN), 400,
         "renew garbage")

    # Delete.
    want(d.call("DELETE", "/api/v1/reservations/" + rid), 401, "delete without token")
    want(d.call("DELETE", "/api/v1/reservations/" + rid, token=TOKEN), 200, "delete")
    want(d.call("GET", "/api/v1/reservations/" + rid), 404, "get after delete")
    check(reservations(d) == [], "list after delete")
    check(placement_of(d, uuid[1])[1] == [], "health after delete")
    plan = want(d.call("POST", "/api/v1/plan", {"mem": "2GiB"}), 200, "plan after delete")["plan"]
    check([x["index"] for x in plan["devices"]] == [1], "GPU 1 free again: %r" % plan)
    d.stop()

    # Without model_dirs every model file is refused, with a clear message.
    d = Daemon(scenario=TWO)
    st, _, body = d.call("POST", "/api/v1/plan", {"model": os.path.join(models, "link.gguf")})
    want((st, None, body), 403, "model without model_dirs")
    check("no model directory is configured" in body["error"]["message"], "message %r" % body)
    d.stop()
    shutil.rmtree(tmp)


def case_concurrency():
    """Many clients reserving at once never over-commit a GPU: per GPU the
    granted bytes stay within the scenario's free memory, every request is
    granted (201) or refused with a reason (409), and the ledger holds
    exactly the granted ones."""
    _, gpus = parse_scenario(TWO)
    free = {g["uuid"]: num(g, "memory.free") for g in gpus}
    d = Daemon(scenario=TWO, args=["--set", "threads=4"])
    n_threads, per_thread = 32, 16
    granted, refused, errors = [], [], []
    lock = threading.Lock()
    go = threading.Event()

    def client(t):
        go.wait()
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
        for i in range(per_thread):
            size = (256 + 97 * ((t * per_thread + i) % 13)) * MIB  # 256 MiB .. 1.4 GiB
            c.request("POST", "/api/v1/reservations", body=json.dumps(
                {"mem": size, "owner": "t%d" % t}), headers={"Content-Type": "application/json"})
            r = c.getresponse()
            body = json.loads(r.read())
            with lock:
                if r.status == 201:
                    granted.append(body["reservation"])
                elif r.status == 409 and not body["plan"]["fits"] and body["plan"]["reason"]:
                    refused.append(body)
                else:
                    errors.append((r.status, body))
        c.close()

    ts = [threading.Thread(target=client, args=(t,)) for t in range(n_threads)]
    for t in ts:
        t.start()
    go.set()
    for t in ts:
        t.join()
    check(not errors, "neither granted nor refused: %r" % errors[:3])
    check(len(granted) + len(refused) == n_threads * per_thread, "lost answers")
    check(granted and refused, "the storm must both fill the GPUs and be refused: %d/%d"
          % (len(granted), len(refused)))
    held = {}
    for r in granted:
        for dev in r["devices"]:
            held[dev["uuid"]] = held.get(dev["uuid"], 0) + dev["bytes"]
    for u, b in held.items():
        check(u in free and b <= free[u], "GPU %s over-committed: %d granted > %d free"
              % (u, b, free.get(u, 0)))
    lst = reservations(d)
    check(sorted(r["id"] for r in lst) == sorted(r["id"] for r in granted),
          "ledger holds %d reservations, %d were granted" % (len(lst), len(granted)))
    # Refusals were real: nothing is released, so room only shrinks; a
    # request refused then is larger than the room any GPU has now.
    room = max(free[u] - held.get(u, 0) for u in free)
    check(all(r["plan"]["need_bytes"] > room for r in refused),
          "a request was refused although it fitted (largest room now %d)" % room)
    d.stop()


CASES = {"api": case_api, "concurrency": case_concurrency}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print("usage: test_place.py {%s}" % ",".join(CASES), file=sys.stderr)
        sys.exit(2)
    CASES[sys.argv[1]]()
    print("ok " + sys.argv[1])
