#!/usr/bin/env python3
"""test_pool_e2e.py — `gpuwatch pool` end to end with real llama.cpp.

The pool launches tests/pool/llama_double.mjs (llama-server's command line
and routes on node-llama-cpp) through its command template, on the fake NVML
library's two GPUs. Checked here, each against something the pool does not
compute itself:
  - a chat request loads the model and is answered by llama.cpp; a streamed
    one arrives as several SSE chunks ending with [DONE]; embeddings work;
  - while it is loaded, the ledger file holds its reservation, owned by the
    child's pid (the pid the double reports), on the GPU /health lists it on;
  - the child got that GPU by UUID in CUDA_VISIBLE_DEVICES and -ngl (its
    /proc/PID/environ and cmdline);
  - a client that disconnects mid-stream: llama.cpp says it cancelled;
  - Prometheus' promtool accepts /metrics;
  - after idle_ttl_s the model is unloaded: the child is gone and the
    ledger row released;
  - with --cpu-only, the child runs with -ngl 0, no GPU visible and no
    reservation.
Skips (77) when node/npm are missing, like the estimator's llama.cpp tests.
"""
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inference  # noqa: E402
import pool_util as pu  # noqa: E402
from pool_util import check  # noqa: E402

TWO = os.path.join(HERE, "..", "serve", "scenarios", "two.scn")


def command(nm):
    argv = inference.double_command(nm)
    return " ".join(argv) + (" -m {model} --host {host} --port {port} -c {ctx} -np {parallel} "
                             "--alias {name} --embeddings {placement}")


def proc_env(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)


def proc_argv(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def gpu_run(tmp, nm, models):
    text = "command = %s\nidle_ttl_s = 3\nmargin = 64MiB\n" % command(nm)
    text += "".join("[%s]\nmodel = %s\nctx = 512\n" % (n, p) for n, p in models.items())
    pool = pu.Pool(tmp, text, TWO)
    try:
        st, _, body = pool.chat("alpha", max_tokens=6)
        content = body["choices"][0]["message"]["content"] if st == 200 else body
        check(st == 200 and content and body["usage"]["completion_tokens"] >= 1,
              "chat loads alpha and llama.cpp answers: %r" % content)
        m = pool.model("alpha")
        pid = m["pid"]
        rows = pu.ledger_rows(pool.ledger)
        mine = [r for r in rows if r[1] == "pool:alpha"]
        check(len(mine) == 1 and mine[0][2] == pid,
              "the ledger holds one reservation owned by the child pid %s: %s" % (pid, rows))
        uuid = mine[0][3][0][0] if mine else None
        st, _, h = pool.json("GET", "/health")
        on = [g["uuid"] for g in h["gpus"] if "alpha" in g["models"]]
        check(on == [uuid], "/health lists alpha on its reserved GPU %s (%s)" % (uuid, on))
        env = proc_env(pid)
        check(env.get(b"CUDA_VISIBLE_DEVICES", b"").decode() == uuid,
              "the child sees only that GPU by UUID (CUDA_VISIBLE_DEVICES=%s)"
              % env.get(b"CUDA_VISIBLE_DEVICES"))
        argv = proc_argv(pid)
        # 2 layers + the output layer, all on the GPU: -ngl 3
        check("-ngl" in argv and argv[argv.index("-ngl") + 1] == "3",
              "the child got -ngl 3, every layer on the GPU (%s)" % argv)
        st, events, complete = pool.stream_raw("beta", 8)
        check(st == 200 and complete and len(events) >= 3 and events[-1] == "[DONE]",
              "a streamed chat loads beta and arrives in %d SSE events ending [DONE]" % len(events))
        # a client that leaves mid-stream: llama.cpp must stop generating
        import socket
        sock = socket.create_connection(("127.0.0.1", pool.port), timeout=pu.DEADLINE)
        req = json.dumps({"model": "beta", "stream": True, "max_tokens": 4000,
                          "messages": [{"role": "user", "content": "go on"}]}).encode()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n" % len(req) + req)
        got = b""
        while got.count(b"data: ") < 3:
            got += sock.recv(65536)
        sock.close()
        pool.wait("llama.cpp told of the disconnect",
                  lambda: b"client disconnected" in pool.request("GET", "/api/v1/pool/beta/log")[2])
        check(pool.model("beta")["in_flight"] == 0, "the disconnected request left its slot")
        metrics = pool.request("GET", "/metrics")[2].decode()
        check('gpuwatch_pool_requests_total{model="beta",code="client_gone"} 1' in metrics,
              "and counts as client_gone, not as a server error")
        st, _, emb = pool.json("POST", "/v1/embeddings", {"model": "beta", "input": ["a", "b"]})
        check(st == 200 and len(emb["data"]) == 2 and len(emb["data"][0]["embedding"]) == 64,
              "embeddings through the pool (%s)" % st)
        st, _, metrics = pool.request("GET", "/metrics")
        promtool = shutil.which("promtool")
        if promtool:
            r = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True)
            check(r.returncode == 0, "promtool check metrics accepts /metrics: %s"
                  % r.stderr.decode()[-500:])
        pool.wait("idle unload of alpha", lambda: pool.model("alpha")["state"] == "unloaded",
                  deadline=60)
        check(not pu.pid_alive(pid), "the unloaded child %d is gone" % pid)
        check(not [r for r in pu.ledger_rows(pool.ledger) if r[1] == "pool:alpha"],
              "its reservation is released")
        m = pool.model("alpha")
        check(m["unloads_idle"] == 1 and m["reservation"] is None, "counted as an idle unload")
    finally:
        pool.stop()


def cpu_run(tmp, nm, models):
    text = "command = %s\nidle_ttl_s = 0\n" % command(nm)
    text += "".join("[%s]\nmodel = %s\nctx = 512\n" % (n, p) for n, p in models.items())
    pool = pu.Pool(tmp, text, TWO, args=["--cpu-only"])
    try:
        st, _, body = pool.chat("alpha", max_tokens=4)
        check(st == 200, "cpu only: chat answered (%s)" % st)
        m = pool.model("alpha")
        argv = proc_argv(m["pid"])
        env = proc_env(m["pid"])
        check(argv[argv.index("-ngl") + 1] == "0" and env.get(b"CUDA_VISIBLE_DEVICES") == b"",
              "cpu only: -ngl 0 and no GPU visible")
        check(pu.ledger_rows(pool.ledger) == [] and m["reservation"] is None,
              "cpu only: nothing reserved")
        st, _, h = pool.json("GET", "/health")
        check(h["cpu_only"] is True and h["gpu_monitoring"] is False and h["gpus"] == [],
              "cpu only: /health says so")
    finally:
        pool.stop()


def main():
    nm = inference.ensure_node_modules()
    if not nm:
        sys.exit(77)
    tmp = pu.tempdir()
    models = {}
    for i, name in enumerate(("alpha", "beta")):
        models[name] = os.path.join(tmp, name + ".gguf")
        inference.write_tiny_model(models[name], seed=10 + i)
    os.mkdir(os.path.join(tmp, "gpu"))
    gpu_run(os.path.join(tmp, "gpu"), nm, models)
    os.mkdir(os.path.join(tmp, "cpu"))
    cpu_run(os.path.join(tmp, "cpu"), nm, models)
    pu.finish()


if __name__ == "__main__":
    main()
