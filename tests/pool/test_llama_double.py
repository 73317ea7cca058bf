#!/usr/bin/env python3
"""test_llama_double.py — the real inference double (llama_double.mjs: llama-
server's command line and routes on node-llama-cpp) that the pool's tests
launch as their model server.

Checks, against a tiny dense model written here (inference.py): /health goes
503 "Loading model" -> 200, /v1/models and /props, a non-streaming chat
(greedy: deterministic, fast), a streaming chat (role chunk, one chunk per
token, a finish chunk, [DONE]; the same text as non-streaming), completions,
embeddings (n_embd floats per input), the OpenAI error shapes, -np slots
under concurrent requests, a client that disconnects mid-stream (generation
stops, "client disconnected" on stderr, the double keeps serving), SIGTERM
(exit 0 within 5 s), and the failures: no GW_NODE_MODULES, a model that does
not load. Exit 0 pass, 1 fail, 77 skip (no node/npm, or Node < 20).
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inference  # noqa: E402

fails = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Double:
    """A running llama_double.mjs; its stderr is collected line by line."""

    def __init__(self, nm, *args):
        self.port = free_port()
        self.cmd = inference.double_command(nm) + [*args, "--port", str(self.port)]
        self.lines = []
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def log(self):
        return "\n".join(self.lines)

    def wait_log(self, text, timeout):
        end = time.monotonic() + timeout
        while True:
            if any(text in x for x in self.lines):
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.02)

    def request(self, method, path, body=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            c.request(method, path, body=data, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw), r
            except ValueError:
                return r.status, raw, r
        finally:
            c.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def sse_events(raw):
    """The data: payloads of an event stream, in order."""
    return [blk[len("data: "):] for blk in raw.split("\n\n") if blk.startswith("data: ")]


def wait_ready(d, timeout=60):
    """Polls /health; returns (statuses seen, seconds to 200) or (seen, None)."""
    seen, t0 = [], time.monotonic()
    while time.monotonic() - t0 < timeout:
        if d.proc.poll() is not None:
            return seen, None
        try:
            st, body, _ = d.request("GET", "/health", timeout=2)
        except OSError:
            time.sleep(0.01)
            continue
        if not seen or seen[-1][0] != st:
            seen.append((st, body))
        if st == 200:
            return seen, time.monotonic() - t0
        time.sleep(0.01)
    return seen, None


def chat(d, content, **kw):
    body = {"model": "tiny-a", "messages": [{"role": "system", "content": "You are a test."},
                                            {"role": "user", "content": content}], **kw}
    return d.request("POST", "/v1/chat/completions", body)


def check_error(st, body, code, what):
    ok = st == code and isinstance(body, dict) and isinstance(body.get("error"), dict) and \
        body["error"].get("code") == code and isinstance(body["error"].get("message"), str) and \
        isinstance(body["error"].get("type"), str)
    check(ok, f"{what}: {code} with the OpenAI error shape (got {st} {body!r:.200})")


def stream_chat(d, content, max_tokens):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    c.request("POST", "/v1/chat/completions", body=json.dumps(
        {"model": "tiny-a", "stream": True, "max_tokens": max_tokens,
         "messages": [{"role": "system", "content": "You are a test."},
                      {"role": "user", "content": content}]}),
        headers={"Content-Type": "application/json"})
    r = c.getresponse()
    raw = r.read().decode()
    c.close()
    return r.status, r.getheader("Content-Type", ""), raw


def disconnect_mid_stream(d):
    """Reads the first chunks of a long stream, then drops the connection."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    body = json.dumps({"stream": True, "max_tokens": -1,
                       "messages": [{"role": "user", "content": "Tell a very long story."}]}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while got.count(b"data: ") < 3:
        part = s.recv(4096)
        if not part:
            break
        got += part
    s.close()
    return got.count(b"data: ")


def main():
    nm = inference.ensure_node_modules()
    if nm is None:
        return 77
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tiny.gguf")
        t0 = time.monotonic()
        info = inference.write_tiny_model(path, seed=1)
        check(info["size"] < 2 * 1024 * 1024 and os.path.getsize(path) == info["size"],
              f"tiny model written: {info['size']} bytes in {time.monotonic() - t0:.2f} s")
        other = inference.write_tiny_model(os.path.join(tmp, "other.gguf"), seed=2, n_layer=3, n_embd=96,
                                           n_head=6, n_head_kv=3, wtype="F16")
        check(other["size"] != info["size"], f"a second model of another shape: {other['size']} bytes")

        failures_at_start(nm, tmp)

        d = Double(nm, "-m", path, "-np", "2", "-c", "2048", "--alias", "tiny-a", "--embeddings",
                   "-ngl", "99", "--tensor-split", "1,1", "--flash-attn", "on", "--jinja", "--no-webui")
        try:
            serve_checks(d, info)
            # SIGTERM: clean exit
            t0 = time.monotonic()
            d.proc.send_signal(signal.SIGTERM)
            try:
                rc = d.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                rc = None
            check(rc == 0, f"SIGTERM: exit {rc} in {time.monotonic() - t0:.2f} s (want 0 within 5 s)")
        finally:
            d.stop()
        if fails:
            print("---- double's stderr\n" + d.log()[-6000:])

        # the second model serves too (distinct seed: distinct answer)
        d2 = Double(nm, "--model", other["path"], "--ctx-size", "512", "--parallel", "1")
        try:
            _, ready = wait_ready(d2)
            check(ready is not None, "second model (F16, 3 layers): /health 200")
            st, body, _ = d2.request("GET", "/v1/models")
            check(st == 200 and body["data"][0]["id"] == "other.gguf", f"no --alias: id is the file name ({body!r:.120})")
            st, body, _ = chat(d2, "Say hello.")
            check(st == 200 and body["choices"][0]["message"]["content"], "second model answers")
            d2.proc.send_signal(signal.SIGINT)
            check(d2.proc.wait(timeout=5) == 0, "SIGINT: exit 0")
        finally:
            d2.stop()
    total = time.monotonic() - t_all
    check(total < 60, f"whole test in {total:.1f} s (< 60 s)")
    if fails:
        print("FAIL:\n  " + "\n  ".join(fails))
        return 1
    print("ok: llama_double behaves as llama-server")
    return 0


def failures_at_start(nm, tmp):
    env = dict(os.environ)
    env.pop("GW_NODE_MODULES", None)
    r = subprocess.run(["node", inference.DOUBLE, "-m", "x.gguf", "--port", str(free_port())],
                       capture_output=True, text=True, env=env, timeout=30)
    check(r.returncode == 1 and "GW_NODE_MODULES" in r.stderr,
          f"no GW_NODE_MODULES: exit {r.returncode}, says why ({r.stderr.strip()[:120]})")
    bad = os.path.join(tmp, "bad.gguf")
    with open(bad, "wb") as f:
        f.write(b"GGUF" + b"\0" * 60)
    r = subprocess.run(inference.double_command(nm) + ["-m", bad, "--port", str(free_port())],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "exiting due to model loading error" in r.stderr,
          f"a model that does not load: exit {r.returncode} ({r.stderr.strip().splitlines()[-1:]})")
    r = subprocess.run(inference.double_command(nm) + ["--port", "1"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 1 and "-m PATH" in r.stderr, f"no -m: usage error, exit {r.returncode}")


def serve_checks(d, info):
    seen, ready = wait_ready(d)
    statuses = [s for s, _ in seen]
    check(ready is not None, f"/health 200 within 60 s (after {ready if ready is None else round(ready, 2)} s; "
          f"saw {statuses})")
    if ready is None:
        return
    check(statuses in ([200], [503, 200]), f"/health goes 503 -> 200 (or straight 200): {statuses}")
    for st, body in seen:
        if st == 503:
            check(body == {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
                  f"503 body while loading: {body}")
    check(d.wait_log("main: server is listening on http://127.0.0.1:%d - starting the main loop" % d.port, 2),
          "stderr: llama-server's 'server is listening' line")
    check(d.wait_log("ignoring unsupported llama-server option --flash-attn on", 0) and
          d.wait_log("ignoring unsupported llama-server option --no-webui", 0),
          "unknown llama-server flags: a note each")

    st, body, _ = d.request("GET", "/v1/models")
    check(st == 200 and body.get("object") == "list" and len(body.get("data", [])) == 1 and
          body["data"][0]["id"] == "tiny-a" and body["data"][0]["object"] == "model",
          f"/v1/models: one model, id from --alias ({body!r:.160})")
    st2, body2, _ = d.request("GET", "/models")
    check(st2 == 200 and body2["data"][0]["id"] == "tiny-a", "/models too")
    st, body, _ = d.request("GET", "/props")
    check(st == 200 and body.get("total_slots") == 2 and
          body.get("default_generation_settings", {}).get("n_ctx") == 1024,
          f"/props: total_slots 2, n_ctx per slot 1024 ({str(body)[:160]})")

    # non-streaming chat: greedy, fast, deterministic
    chat(d, "warm up")
    t0 = time.monotonic()
    st, body, resp = chat(d, "Hello world, what is a GPU?")
    dt = time.monotonic() - t0
    content = body["choices"][0]["message"]["content"] if st == 200 else None
    usage = body.get("usage", {}) if st == 200 else {}
    check(st == 200 and body.get("object") == "chat.completion" and content and
          body["choices"][0]["message"]["role"] == "assistant", f"chat: content {content!r}")
    check(usage.get("completion_tokens") == 16 and usage.get("prompt_tokens", 0) > 0 and
          usage.get("total_tokens") == usage.get("completion_tokens", 0) + usage.get("prompt_tokens", 0) and
          body["choices"][0]["finish_reason"] == "length",
          f"chat: default max_tokens 16, usage {usage}, finish {body['choices'][0]['finish_reason']}")
    check(dt < 1.0, f"chat: 16 tokens in {dt * 1000:.0f} ms (< 1 s)")
    check(body.get("model") == "tiny-a" and resp.getheader("X-Double-Model") == "tiny-a" and
          body.get("system_fingerprint", "").startswith("llama_double/tiny-a/"),
          f"chat: model, X-Double-Model, fingerprint ({body.get('system_fingerprint')})")
    st, again, _ = chat(d, "Hello world, what is a GPU?")
    check(st == 200 and again["choices"][0]["message"]["content"] == content, "chat: greedy, same answer twice")
    st, short, _ = chat(d, "Hello world, what is a GPU?", max_tokens=3)
    check(st == 200 and short["usage"]["completion_tokens"] == 3, f"chat: max_tokens 3 ({short.get('usage')})")

    # streaming chat
    st, ctype, raw = stream_chat(d, "Hello world, what is a GPU?", 16)
    events = sse_events(raw)
    check(st == 200 and ctype.startswith("text/event-stream"), f"stream: 200 {ctype}")
    check(len(events) >= 3 and events[-1] == "[DONE]", f"stream: {len(events)} events, last {events[-1:]}")
    chunks = []
    try:
        chunks = [json.loads(e) for e in events[:-1]]
        valid = all(c.get("object") == "chat.completion.chunk" for c in chunks)
    except ValueError:
        valid = False
    check(valid and len(chunks) >= 2, f"stream: {len(chunks)} chat.completion.chunk JSON chunks")
    if valid and chunks:
        check(chunks[0]["choices"][0]["delta"].get("role") == "assistant", "stream: first chunk has the role")
        check(chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop"),
              f"stream: final chunk finish_reason {chunks[-1]['choices'][0]['finish_reason']}")
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        n_content = sum(1 for c in chunks if c["choices"][0]["delta"].get("content"))
        check(text == content, f"stream: same text as non-streaming ({text!r})")
        check(n_content >= 2, f"stream: {n_content} content chunks (one per token)")

    # completions
    st, body, _ = d.request("POST", "/v1/completions", {"prompt": "The GPU pool", "max_tokens": 5})
    check(st == 200 and body.get("object") == "text_completion" and body["choices"][0]["text"] and
          body["usage"]["completion_tokens"] == 5, f"completions: {str(body)[:160]}")

    # embeddings
    st, body, _ = d.request("POST", "/v1/embeddings", {"model": "tiny-a", "input": ["hello world", "gpu pool"]})
    vecs = [x.get("embedding") for x in body.get("data", [])] if st == 200 else []
    check(st == 200 and body.get("object") == "list" and len(vecs) == 2 and
          all(len(v) == info["n_embd"] and all(isinstance(f, float) for f in v) for v in vecs) and
          [x["index"] for x in body["data"]] == [0, 1] and vecs[0] != vecs[1] and
          body.get("usage", {}).get("prompt_tokens", 0) > 0,
          f"embeddings: 2 inputs -> 2 vectors of {info['n_embd']} floats ({str(body)[:120]})")
    st, body, _ = d.request("POST", "/v1/embeddings", {"input": "hello world"})
    check(st == 200 and len(body["data"]) == 1 and body["data"][0]["embedding"] == vecs[0] if vecs else False,
          "embeddings: a string input, same vector as in the array")

    # errors
    st, body, _ = d.request("GET", "/v1/nothing")
    check_error(st, body, 404, "unknown route")
    st, body, _ = d.request("POST", "/v1/chat/completions", b"{not json")
    check_error(st, body, 400, "bad JSON")
    st, body, _ = d.request("POST", "/v1/chat/completions", {"messages": []})
    check_error(st, body, 400, "no messages")
    st, body, _ = chat(d, "word " * 1200)
    check_error(st, body, 400, "prompt over the slot's context")

    # -np 2: three concurrent requests all answered, never more than 2 slots
    results = []

    def one():
        results.append(chat(d, "Hello world, what is a GPU?", max_tokens=200)[0])
    ts = [threading.Thread(target=one) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    slots = {x.split("id ")[1].split("|")[0].strip() for x in d.lines if x.startswith("slot launch_slot_")}
    check(results == [200, 200, 200] and slots <= {"0", "1"}, f"-np 2: 3 concurrent requests {results}, slots {sorted(slots)}")

    # client disconnect mid-stream
    n_before = len(d.lines)
    got = disconnect_mid_stream(d)
    check(got >= 3, f"disconnect: read {got} chunks before dropping the connection")
    check(d.wait_log("client disconnected", 5), "disconnect: double logs 'client disconnected'")
    time.sleep(0.2)
    stopped = [x for x in d.lines[n_before:] if "stop processing: n_tokens" in x]
    n_tok = int(stopped[-1].split("n_tokens = ")[1].split(",")[0]) if stopped else None
    check(n_tok is not None and n_tok < 1000, f"disconnect: generation stopped early (n_tokens {n_tok} of 1024)")
    st, body, _ = chat(d, "Hello world, what is a GPU?")
    check(st == 200 and body["choices"][0]["message"]["content"] == content, "disconnect: double keeps serving")
    check(any("log_server_r: request: POST /v1/chat/completions" in x for x in d.lines),
          "stderr: a line per request")


if __name__ == "__main__":
    sys.exit(main())
