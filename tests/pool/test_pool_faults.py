#!/usr/bin/env python3
"""test_pool_faults.py — the pool against misbehaving model servers.

Each model of one pool runs tests/pool/fault_server.py in one mode; every
fault must give the documented answer (docs/pool.md "Faults"), release the
model's reservation at once (read from the ledger file) and leave no child
behind (pids from the double's --record file, checked in /proc after the
pool stops). Bad requests (unknown model, bad JSON, over max_body_bytes, a
full queue, a missing token) get their 4xx with OpenAI's error shape.
"""
import json
import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inference  # noqa: E402
import pool_util as pu  # noqa: E402
from pool_util import check  # noqa: E402

MODES = {
    "ok": "", "slow": "--start-ms 3000", "never": "", "exit": "", "crash": "",
    "e500": "", "garbage": "", "hang": "", "hangstream": "", "badchunk": "", "stubborn": "",
    "busy": "--token-ms 400",
}
MODE_OF = {"ok": "ok", "slow": "slow-start", "never": "never-ready", "exit": "exit-at-start",
           "crash": "crash-mid-stream", "e500": "http500", "garbage": "garbage",
           "hang": "hang-after-ready", "hangstream": "hang-mid-stream",
           "badchunk": "chunked-garbage", "stubborn": "ignore-sigterm", "busy": "ok"}


def config(tmp, model, record, port_lo):
    # load_timeout_s leaves the slow starter (3 s) room on a busy machine
    text = ("load_timeout_s = 10\nhealth_interval_s = 1\nrequest_timeout_s = 3\n"
            "stop_grace_s = 1\nidle_ttl_s = 0\nmax_body_bytes = 64KiB\nmargin = 0\n"
            "ports = %d-%d\n" % (port_lo, port_lo + 40))
    text += "[broken]\nmodel = %s\ncommand = %s\n" % (os.path.join(tmp, "not-a-model.gguf"),
                                                       pu.fault_command())
    for name, extra in MODES.items():
        cmd = pu.fault_command(MODE_OF[name], "%s --record %s" % (extra, record))
        text += "[%s]\nmodel = %s\ncommand = %s\n" % (name, model, cmd)
        if name == "busy":
            text += "parallel = 1\nqueue_max = 1\n"
        if name == "hangstream":  # its hung requests keep their slots
            text += "parallel = 4\n"
    return text


def err_of(body):
    return body["error"]["message"] if isinstance(body, dict) and "error" in body else str(body)


def reservation_of(pool, name):
    owner = "pool:" + name
    return [r for r in pu.ledger_rows(pool.ledger) if r[1] == owner]


def in_background(fn, *args):
    """Runs fn(*args) in a thread; returns (thread, result list)."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    t.start()
    return t, out


def others_answer_meanwhile(pool, what, still_waiting):
    """While a request waits (a load, a silent stream), the front answers others:
    a chat to the loaded model 'ok' and GET /health come back, and the waiting
    request is still waiting when they do (an event loop that blocked on it
    would answer them only after it)."""
    st_ok, _, _ = pool.chat("ok")
    st_health, _, _ = pool.json("GET", "/health")
    check(st_ok == 200 and st_health == 200 and still_waiting(),
          "%s: other requests are answered meanwhile (%s, %s)" % (what, st_ok, st_health))


def test_start_faults(pool):
    t, res = in_background(pool.chat, "slow")
    pool.wait("slow model loading", lambda: pool.model("slow")["state"] == "loading")
    others_answer_meanwhile(pool, "a model loading",
                            lambda: t.is_alive() and pool.model("slow")["state"] == "loading")
    t.join()
    st, _, body = res[0]
    check(st == 200 and pool.model("slow")["last_load_seconds"] >= 2.9,
          "slow start within load_timeout_s: 200 after %.2fs" % pool.model("slow")["last_load_seconds"])
    t0 = time.time()
    st, h, body = pool.chat("never")
    check(st == 503 and "not ready within load_timeout_s" in err_of(body),
          "never ready: 503 naming load_timeout_s: %s %s" % (st, err_of(body)))
    check(time.time() - t0 < pu.DEADLINE, "never ready: answered after the deadline, not hung")
    check(reservation_of(pool, "never") == [], "never ready: reservation released")
    st, h, body = pool.chat("exit")
    msg = err_of(body)
    check(st == 503 and "exited with status 1" in msg and "failed to load model" in msg,
          "exit at start: 503 with the exit and the log line: %s" % msg)
    st, h, body = pool.chat("exit")
    check(st == 503 and "Retry-After" in h and "tries again" in err_of(body),
          "exit at start, again: back-off answered with Retry-After (%s)" % h.get("Retry-After"))
    check(reservation_of(pool, "exit") == [], "exit at start: reservation released")


def test_answer_faults(pool):
    st, _, body = pool.chat("e500")
    check(st == 500 and err_of(body) == "simulated failure",
          "child's 500 passed through as it is: %s %s" % (st, body))
    st, _, body = pool.chat("garbage")
    check(st == 502 and "not HTTP" in err_of(body),
          "garbage answer: 502 naming it: %s" % err_of(body))
    st, events, complete = pool.stream_raw("crash", 8)
    errs = [e for e in events if e.startswith('{"error"')]
    check(st == 200 and len(events) >= 3 and not complete and errs and
          "exited with status 3" in errs[-1],
          "crash mid-stream: chunks, then an error event naming the exit, then a cut stream: "
          "%d events, complete=%s, %s" % (len(events), complete, errs[-1:] or None))
    check(reservation_of(pool, "crash") == [], "crash mid-stream: reservation released at once")
    m = pool.model("crash")
    check(m["state"] == "failed" and m["crashes"] == 1, "crash counted, model failed")
    st, h, body = pool.chat("crash")
    check(st == 503 and "Retry-After" in h, "crashed model in back-off: 503 + Retry-After")
    pool.wait("back-off over", lambda: (pool.model("crash")["retry_in_seconds"] or 0) <= 0)
    st, _, body = pool.chat("crash", max_tokens=1)
    check(st == 502 or st == 200 or st == 503,
          "after back-off the next request restarts it (%s)" % st)
    check(pool.model("crash")["loads"] == 2, "restarted: 2 loads (%d)" % pool.model("crash")["loads"])
    st, events, complete = pool.stream_raw("badchunk", 4)
    errs = [e for e in events if e.startswith('{"error"')]
    check(st == 200 and not complete and errs and "chunk" in errs[-1],
          "bad chunk framing: error event naming it: %s" % errs[-1:])
    t, res = in_background(pool.stream_raw, "hangstream", 8)
    pool.wait("the silent stream under way", lambda: pool.model("hangstream")["in_flight"] == 1)
    others_answer_meanwhile(pool, "a stream whose server went silent",
                            lambda: t.is_alive() and pool.model("hangstream")["in_flight"] == 1)
    t.join()
    st, events, complete = res[0]
    errs = [e for e in events if e.startswith('{"error"')]
    check(st == 200 and not complete and errs and "sent nothing for" in errs[-1],
          "stream that stops: request_timeout_s ends it with an error event: %s" % errs[-1:])


def test_hang(pool):
    st, _, _ = pool.chat("hang")
    check(st == 200, "hang-after-ready: first answer 200")
    t0 = time.time()
    st, _, body = pool.chat("hang")
    msg = err_of(body)
    check(st in (502, 503) and ("stopped answering /health" in msg or "sent nothing" in msg),
          "stops answering: in-flight request gets %s naming it within seconds: %s" % (st, msg))
    pool.wait("hung child killed", lambda: pool.model("hang")["state"] == "failed")
    check(time.time() - t0 < pu.DEADLINE, "hang detected in %.1fs" % (time.time() - t0))
    check(reservation_of(pool, "hang") == [], "hung child: reservation released")


def test_disconnect(pool, record):
    s = socket.create_connection(("127.0.0.1", pool.port), timeout=pu.DEADLINE)
    body = json.dumps({"model": "hangstream", "stream": True, "max_tokens": 8,
                       "messages": []}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    got = b""
    while got.count(b"data: ") < 2:
        got += s.recv(65536)
    pool.wait("request in flight", lambda: pool.model("hangstream")["in_flight"] == 1)
    s.close()
    pool.wait("client disconnect propagated",
              lambda: pool.model("hangstream")["in_flight"] == 0, deadline=10)


def test_requests(pool):
    st, _, body = pool.chat("nosuch")
    check(st == 404 and "does not exist" in err_of(body), "unknown model: 404")
    st, _, body = pool.json("POST", "/v1/chat/completions", b"{not json")
    check(st == 400 and "not JSON" in err_of(body), "bad JSON: 400 naming it: %s" % err_of(body))
    st, _, body = pool.json("POST", "/v1/chat/completions", {"messages": []})
    check(st == 400 and "no \"model\"" in err_of(body), "no model: 400")
    big = json.dumps({"model": "ok", "prompt": "x" * 70000})
    st, _, body = pool.json("POST", "/v1/completions", big.encode())
    check(st == 413 and "max_body_bytes" in err_of(body), "body over the limit: 413")
    # parallel 1, queue 1: one in flight, one queued, the third is refused
    out = []
    ts = [threading.Thread(target=lambda: out.append(pool.stream_raw("busy", 6)[0]))
          for _ in range(2)]
    ts[0].start()
    pool.wait("busy in flight", lambda: pool.model("busy")["in_flight"] == 1)
    ts[1].start()
    pool.wait("busy queued", lambda: pool.model("busy")["queued"] == 1)
    st, h, body = pool.chat("busy")
    check(st == 429 and h.get("Retry-After") == "1" and "queue_max" in err_of(body),
          "full queue: 429 with Retry-After")
    st, _, body = pool.json("POST", "/models/load", {"model": "busy"})
    check(st == 200 and body == {"success": True} and ts[0].is_alive(),
          "/models/load of a loaded model with every slot busy answers before the slot "
          "frees (%s)" % st)
    for t in ts:
        t.join()
    check(out == [200, 200], "queued request served after the first (%s)" % out)


def test_ports(pool, port_lo):
    used = {m["port"] for m in pool.pool_state()["models"] if m["port"]}
    check(port_lo not in used, "the occupied port %d was skipped (%s)" % (port_lo, sorted(used)))
    check(all(port_lo < p <= port_lo + 40 for p in used), "children on ports of the range")


def test_broken(pool):
    st, _, body = pool.chat("broken")
    check(st == 500 and "cannot be loaded" in err_of(body),
          "a file that is not a model: 500 with the estimator's message: %s" % err_of(body))
    st, _, _ = pool.json("POST", "/models/unload", {"model": "broken"})
    st, _, body = pool.chat("broken")
    check(st == 500 and pool.model("broken")["loads"] == 0,
          "and an unload does not make it loadable (%s)" % st)


def test_stop_while_loading(tmp, model):
    sub = os.path.join(tmp, "stop")
    os.mkdir(sub)
    pool = pu.Pool(sub, "load_timeout_s = 100\n[never]\nmodel = %s\ncommand = %s\n"
                   % (model, pu.fault_command("never-ready")),
                   os.path.join(pu.HERE, "..", "serve", "scenarios", "two.scn"))
    out = []

    def ask():
        try:
            out.append(pool.chat("never")[0])
        except OSError as e:
            out.append(type(e).__name__)
    t = threading.Thread(target=ask)
    t.start()
    pool.wait("loading", lambda: pool.model("never")["state"] == "loading")
    t0 = time.time()
    pool.stop()
    t.join()
    check(time.time() - t0 < 60 and out == [503],
          "SIGTERM during a load ends it at once: %.1fs, the request got %s"
          % (time.time() - t0, out))


def test_views(pool):
    st, _, h = pool.json("GET", "/health")
    check(st == 200 and h["allocation_strategy"] == "single_gpu_first" and
          len(h["gpus"]) == 2 and h["pool"]["models"] == len(MODES) + 1,
          "/health: strategy, GPUs, pool status")
    on_gpus = sorted(n for g in h["gpus"] for n in g["models"])
    loaded = sorted(m["name"] for m in pool.pool_state()["models"] if m["state"] == "loaded")
    check(on_gpus == loaded, "/health lists each loaded model on its GPU (%s / %s)"
          % (on_gpus, loaded))
    st, _, models = pool.json("GET", "/v1/models")
    check(st == 200 and sorted(m["id"] for m in models["data"]) == sorted(list(MODES) + ["broken"]),
          "/v1/models lists every model")
    st, _, text = pool.request("GET", "/metrics")
    text = text.decode()
    # the crash double died twice: mid-stream, then at the restart's request
    check('gpuwatch_pool_crashes_total{model="crash"} 2' in text and
          'gpuwatch_pool_load_failures_total{model="never"} 1' in text,
          "/metrics counts the crash and the failed load")
    st, _, log = pool.request("GET", "/api/v1/pool/exit/log")
    check(st == 200 and b"failed to load model" in log, "the model's log is served")


def main():
    tmp = pu.tempdir()
    model = os.path.join(tmp, "m.gguf")
    inference.write_tiny_model(model, seed=5)
    with open(os.path.join(tmp, "not-a-model.gguf"), "w") as f:
        f.write("this is not GGUF\n")
    record = os.path.join(tmp, "record.jsonl")
    hold = socket.socket()
    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port_lo = pu.free_port()
    hold.bind(("127.0.0.1", port_lo))
    hold.listen(1)  # the pool must skip this port
    scn = os.path.join(pu.HERE, "..", "serve", "scenarios", "two.scn")
    pool = pu.Pool(tmp, config(tmp, model, record, port_lo), scn)
    try:
        st, _, _ = pool.chat("ok")
        check(st == 200, "a healthy model answers")
        test_ports(pool, port_lo)
        test_start_faults(pool)
        test_answer_faults(pool)
        test_hang(pool)
        test_disconnect(pool, record)
        test_requests(pool)
        test_broken(pool)
        test_views(pool)
    finally:
        log = pool.stop()
        hold.close()
    pids = set()
    with open(record) as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("event") == "start":
                pids.add(ev["pid"])
    time.sleep(0.2)
    alive = [p for p in pids if pu.pid_alive(p)]
    check(pids and not alive, "no child left after the pool stopped (%d started, alive: %s)"
          % (len(pids), alive))
    check(pu.ledger_rows(pool.ledger) == [], "the ledger is empty after shutdown")
    test_stop_while_loading(tmp, model)
    if pu.FAILURES:
        print(log[-4000:])
    pu.finish()


if __name__ == "__main__":
    main()
