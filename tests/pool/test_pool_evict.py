#!/usr/bin/env python3
"""test_pool_evict.py — eviction by exact bytes on the fake NVML library.

Three models share one GGUF file and differ by context, so their exact GPU
needs (S < M < L, from `gpuwatch place --json`, the same estimate `fit`
uses) differ by their KV caches. The test writes a one-GPU scenario whose
free memory it chooses from those needs, loads S then M (S least recently
used), asks for L, and checks which models the pool unloaded:
  - room for L as is: none;
  - room once either is unloaded: S (the least recently used) only;
  - room only once M is unloaded: M only (S would not be enough);
  - room only once both are: both;
  - S busy with a request in flight, or S pinned: M instead, S untouched;
  - both busy: the request waits until one finishes, then S goes;
  - L bigger than the GPU: 507 at once naming the need, nothing unloaded.
Then 32 concurrent clients across 4 models on 2 GPUs, with the ledger read
from its SQLite file after every answer: no GPU ever holds more
reservations than its usable memory.
"""
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inference  # noqa: E402
import pool_util as pu  # noqa: E402
from pool_util import check  # noqa: E402

MiB = 1 << 20
MARGIN = 64 * MiB
CTX = {"S": 512, "M": 16384, "L": 49152}


def needs(tmp, model):
    scn = pu.scenario(os.path.join(tmp, "big.scn"), [("Big", 80 << 30, 80 << 30)])
    env = dict(os.environ, GPUWATCH_NVML_LIBRARY=pu.FAKE_NVML, GPUWATCH_FAKE_NVML_SCENARIO=scn)
    import json
    import subprocess
    out = {}
    for name, ctx in CTX.items():
        r = subprocess.run([pu.BIN, "place", "--model", model, "--ctx", str(ctx), "--parallel",
                            "1", "--json", "--no-ledger"], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        out[name] = json.loads(r.stdout)["plan"]["gpu_bytes"]
    return out


def config(model, slow_s=False, pinned=None):
    cmd = pu.fault_command("ok", "--token-ms 300" if slow_s else "")
    text = "command = %s\nmargin = %d\nidle_ttl_s = 0\nhealth_interval_s = 0\n" % (cmd, MARGIN)
    for name, ctx in CTX.items():
        text += "[%s]\nmodel = %s\nctx = %d\n" % (name, model, ctx)
        if pinned == name:
            text += "pinned = true\n"
    return text


def states(pool):
    return {m["name"]: m["state"] for m in pool.pool_state()["models"]}


def run_case(tmp, model, n, label, extra, expect_unloaded, busy=(), pinned=None, expect=200,
             free=None, loads=("S", "M")):
    free = free or MARGIN + n["S"] + n["M"] + extra
    scn = pu.scenario(os.path.join(tmp, "one.scn"), [("One", 24 << 30, free)])
    sub = os.path.join(tmp, label.replace(" ", "_"))
    os.mkdir(sub)
    pool = pu.Pool(sub, config(model, slow_s=bool(busy), pinned=pinned), scn)
    never_loaded = set()
    try:
        for name in loads:
            st, _, body = pool.chat(name)
            check(st == 200 or (name == "M" and expect == 507),
                  "%s: %s loads (%s)" % (label, name, st))
            if st != 200:
                never_loaded.add(name)
            time.sleep(0.05)  # distinct last-use times: S is the least recently used
        threads = []
        results = {}
        for name, tokens in busy:  # a slow streaming request holds each busy model
            t = threading.Thread(target=lambda n=name, k=tokens: results.__setitem__(
                n, pool.stream_raw(n, k)))
            t.start()
            threads.append(t)
        if busy:
            pool.wait("busy models in flight",
                      lambda: all(pool.model(b)["in_flight"] == 1 for b, _ in busy))
        st, _, body = pool.chat("L")
        for t in threads:
            t.join()
        for name, _ in busy:  # never unloaded under a request: every stream whole
            status, events, complete = results.get(name, (None, [], False))
            check(status == 200 and complete and events[-1:] == ["[DONE]"],
                  "%s: %s's request in flight was served whole (%s, complete=%s)"
                  % (label, name, status, complete))
        check(st == expect, "%s: L answers %d (got %s: %s)" % (label, expect, st, body))
        s = states(pool)
        unloaded = sorted(k for k in loads if s[k] != "loaded" and k not in never_loaded)
        check(unloaded == sorted(expect_unloaded),
              "%s: unloaded %s (expected %s)" % (label, unloaded, sorted(expect_unloaded)))
        rows = pu.ledger_rows(pool.ledger)
        held = sum(b for r in rows for _, b in r[3])
        check(held <= free - MARGIN, "%s: reservations %d <= usable %d" % (label, held,
                                                                            free - MARGIN))
        if expect == 507:
            msg = body["error"]["message"] if isinstance(body, dict) else str(body)
            check("fits on no GPU" in msg and "'L'" in msg and "needs" in msg,
                  "%s: the 507 names the model, the need and what is held: %s" % (label, msg))
    finally:
        pool.stop()


def concurrent(tmp, model, n):
    """32 clients, 4 models, 2 GPUs that hold one model each: loads evict."""
    cap = MARGIN + n["M"] + n["S"] // 2
    scn = pu.scenario(os.path.join(tmp, "two.scn"), [("A", 24 << 30, cap), ("B", 24 << 30, cap)])
    cmd = pu.fault_command("ok", "--token-ms 2")
    text = "command = %s\nmargin = %d\nidle_ttl_s = 0\nhealth_interval_s = 0\nqueue_max = 64\n" % (
        cmd, MARGIN)
    names = ["m%d" % i for i in range(4)]
    for i, name in enumerate(names):
        text += "[%s]\nmodel = %s\nctx = %d\nparallel = 2\n" % (name, model, CTX["M"] if i % 2
                                                                   else CTX["S"])
    sub = os.path.join(tmp, "concurrent")
    os.mkdir(sub)
    pool = pu.Pool(sub, text, scn)
    codes, over = {}, []
    lock = threading.Lock()

    def audit():
        per = {}
        for _, _, _, devs in pu.ledger_rows(pool.ledger):
            for uuid, b in devs:
                per[uuid] = per.get(uuid, 0) + b
        bad = {u: b for u, b in per.items() if b > cap - MARGIN}
        if bad:
            over.append(bad)

    def client(seed):
        rnd = random.Random(seed)
        for _ in range(6):
            name = rnd.choice(names)
            try:
                if rnd.random() < 0.5:
                    st, _, _ = pool.chat(name, max_tokens=3)
                else:
                    st, _, complete = pool.stream_raw(name, 3)
                    st = st if complete else "cut"
            except OSError as e:
                st = type(e).__name__
            with lock:
                codes[st] = codes.get(st, 0) + 1
                audit()

    try:
        ts = [threading.Thread(target=client, args=(i,)) for i in range(32)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(not over, "32 clients x 4 models: no GPU over-committed after any answer (%s)"
              % over[:3])
        ok = codes.get(200, 0)
        check(ok > 0 and set(codes) == {200},
              "32 clients x 4 models: every request answered 200 (each model fits alone, so "
              "requests wait for busy ones): %s" % codes)
        st = pool.pool_state()
        check(st["evictions"] > 0, "models were evicted to make room (%d)" % st["evictions"])
    finally:
        pool.stop()
    rows = pu.ledger_rows(pool.ledger)
    check(rows == [], "after shutdown the ledger holds nothing (%s)" % rows)


def main():
    tmp = pu.tempdir()
    model = os.path.join(tmp, "model.gguf")
    inference.write_tiny_model(model, seed=3, n_layer=4, n_embd=256, n_head=4, n_head_kv=4,
                               n_ff=512, n_ctx_train=65536)
    n = needs(tmp, model)
    print("needs: " + ", ".join("%s %.1f MiB" % (k, v / MiB) for k, v in n.items()))
    if not check(n["S"] < n["M"] < n["L"] and n["L"] - n["M"] > 8 * MiB,
                 "the three contexts give distinct needs"):
        pu.finish()
    gap_m, gap_s = n["L"] - n["M"], n["L"] - n["S"]
    run_case(tmp, model, n, "no unload", n["L"] + MiB, [])
    run_case(tmp, model, n, "either frees enough", gap_s + MiB, ["S"])
    run_case(tmp, model, n, "only M frees enough", (gap_m + gap_s) // 2, ["M"])
    run_case(tmp, model, n, "both needed", gap_m // 2, ["S", "M"])
    run_case(tmp, model, n, "S in flight", gap_s + MiB, ["M"], busy=(("S", 12),))
    run_case(tmp, model, n, "S pinned", gap_s + MiB, ["M"], pinned="S")
    # both busy: it fits once one finishes, so the request waits, then S goes
    run_case(tmp, model, n, "both busy", gap_s + MiB, ["S"], busy=(("S", 5), ("M", 12)))
    # L alone is bigger than the GPU: 507 at once, S left loaded
    run_case(tmp, model, n, "never fits", 0, [], expect=507, free=MARGIN + n["L"] - MiB,
             loads=("S",))
    concurrent(tmp, model, n)
    pu.finish()


if __name__ == "__main__":
    main()
