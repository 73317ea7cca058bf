#!/usr/bin/env python3
"""test_pool_stop.py — SIGTERM while answers are streaming.

A pool whose model server (tests/pool/fault_server.py, mode ok) streams
tokens as fast as it can is stopped while 16 clients read long streams.
libmicrohttpd aborts the process if it is stopped with a connection still
suspended, and the front suspends a stream's connection each time its server
has nothing new (front.c, invariant L4): a stream caught between two chunks
at the stop once did that, about one stop in six. Each round must end with
exit 0 (pool_util's stop checks it), every client's stream ended (cut or
complete, never hung), no reservation left in the ledger and no model server
left alive.
"""
import json
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inference  # noqa: E402
import pool_util as pu  # noqa: E402
from pool_util import check  # noqa: E402

ROUNDS = 6
CLIENTS = 16


def one_round(tmp, model, n):
    record = os.path.join(tmp, "record-%d.jsonl" % n)
    cmd = pu.fault_command("ok", "--token-ms 0 --record %s" % record)
    sub = os.path.join(tmp, "r%d" % n)
    os.makedirs(sub)
    pool = pu.Pool(sub, "idle_ttl_s = 0\nstop_grace_s = 2\n[m]\nmodel = %s\ncommand = %s\n"
                   "parallel = %d\n" % (model, cmd, CLIENTS), os.path.join(
                       pu.HERE, "..", "serve", "scenarios", "two.scn"))
    st, _, _ = pool.json("POST", "/models/load", {"model": "m"})
    check(st == 200, "round %d: the model loads (%s)" % (n, st))
    results = []
    started = threading.Semaphore(0)

    def client():
        started.release()
        try:
            results.append(pool.stream_raw("m", max_tokens=10 ** 7))
        except OSError as e:  # the pool went away before answering
            results.append((None, [], False, str(e)))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for _ in threads:
        started.acquire()
    pool.wait("streams under way", lambda: pool.model("m")["in_flight"] >= CLIENTS // 2)
    pool.stop()  # checks exit 0
    for t in threads:
        t.join(pu.DEADLINE)
    check(all(not t.is_alive() for t in threads),
          "round %d: every client's stream ended after the stop" % n)
    check(pu.ledger_rows(pool.ledger) == [], "round %d: no reservation left" % n)
    pids = [json.loads(l)["pid"] for l in open(record) if '"start"' in l]
    alive = [p for p in pids if pu.pid_alive(p)]
    check(not alive, "round %d: no model server left (%s)" % (n, alive))


def main():
    tmp = pu.tempdir()
    model = os.path.join(tmp, "m.gguf")
    inference.write_tiny_model(model, seed=7)
    for n in range(ROUNDS):
        one_round(tmp, model, n)
    pu.finish()


if __name__ == "__main__":
    main()
