#!/usr/bin/env python3
"""Checks the pool's fault double (fault_server.py) does what it advertises,
one mode per child process on a free loopback port: HTTP/1.1 keep-alive and
hand-made chunked framing (read off the raw socket), the llama-server
command line, stderr lines and --record, and each mode's misbehaviour.

    python3 tests/pool/test_fault_server.py      (exit 0: all pass; 1: a failure)
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fault_server.py")
PY = sys.executable or "python3"
MODEL = "/models/fault-7b.Q4_K_M.gguf"

FAILS = []
PASSES = 0
PROCS = []
TMP = tempfile.mkdtemp(prefix="fault_server_test.")


def check(name, cond, detail=""):
    global PASSES
    if cond:
        PASSES += 1
        print(f"PASS {name}", flush=True)
    else:
        FAILS.append(name)
        print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
    return cond


# ------------------------------------------------------------------ processes

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Child:
    def __init__(self, mode, *extra, port=None, env=None, record=False):
        self.port = port or free_port()
        self.errpath = os.path.join(TMP, f"{mode}.{self.port}.stderr")
        self.record = os.path.join(TMP, f"{mode}.{self.port}.jsonl") if record else None
        argv = [PY, SERVER, "--mode", mode, "-m", MODEL, "--port", str(self.port),
                "--host", "127.0.0.1", "-c", "2048", "-np", "2", "-ngl", "99", *extra]
        if self.record:
            argv += ["--record", self.record]
        e = dict(os.environ)
        e.pop("CUDA_VISIBLE_DEVICES", None)
        e.pop("HIP_VISIBLE_DEVICES", None)
        e.update(env or {})
        self.err = open(self.errpath, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.err, env=e)
        PROCS.append(self.proc)

    def stderr(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def records(self):
        with open(self.record) as f:
            return [json.loads(line) for line in f if line.strip()]

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def alive(self):
        return self.proc.poll() is None

    def term(self, timeout=3):
        self.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = self.wait(timeout)
        return rc, time.monotonic() - t0

    def kill(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait()

    def wait_listening(self, timeout=5):
        """Until a TCP connect succeeds (any HTTP status)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive():
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def wait_ready(self, timeout=5):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive():
                return False
            try:
                c = Conn(self.port, 1)
                st, _, _ = c.request("GET", "/health")
                c.close()
                if st == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False


# ------------------------------------------------------------------ raw HTTP

class Framing(Exception):
    pass


class Conn:
    """One keep-alive connection; responses parsed strictly off the socket."""

    def __init__(self, port, timeout=3):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.buf = b""
        self.raw = b""  # everything received, for checks on the exact bytes

    def close(self):
        self.sock.close()

    def send(self, method, path, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self.sock.sendall((head + "\r\n").encode() + data)

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d
        self.raw += d

    def readline(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def readn(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_eof(self):
        try:
            while True:
                self._fill()
        except (EOFError, ConnectionResetError):
            pass
        out, self.buf = self.buf, b""
        return out

    def head(self):
        status = self.readline().decode()
        parts = status.split(" ", 2)
        if len(parts) < 2 or parts[0] != "HTTP/1.1":
            raise Framing(f"bad status line {status!r}")
        headers = {}
        while True:
            line = self.readline()
            if not line:
                break
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        return int(parts[1]), headers

    def chunk(self):
        """One chunk's data (b"" for the last), framing checked strictly."""
        line = self.readline()
        try:
            size = int(line.split(b";")[0], 16)
        except ValueError:
            raise Framing(f"bad chunk size line {line!r}")
        if size == 0:
            if self.readline() != b"":
                raise Framing("trailer after the last chunk")
            return b""
        data = self.readn(size)
        if self.readn(2) != b"\r\n":
            raise Framing("chunk data not followed by CRLF")
        return data

    def body(self, headers):
        if "chunked" in headers.get("transfer-encoding", ""):
            out = b""
            while True:
                d = self.chunk()
                if not d:
                    return out
                out += d
        return self.readn(int(headers.get("content-length", "0")))

    def request(self, method, path, body=None):
        self.send(method, path, body)
        st, h = self.head()
        b = self.body(h)
        try:
            j = json.loads(b) if b else None
        except ValueError:
            j = None
        return st, h, j


def sse_events(data):
    return [blk[len(b"data: "):].decode() for blk in data.split(b"\n\n")
            if blk.startswith(b"data: ")]


def stream_chunks(conn, path, body):
    """Send a streaming request; return (status, headers, [chunk data...])
    read one chunk at a time, stopping at the last chunk or at EOF/timeout
    (then the exception is the last item)."""
    conn.send("POST", path, body)
    st, h = conn.head()
    chunks = []
    while True:
        try:
            d = conn.chunk()
        except (EOFError, ConnectionResetError, socket.timeout, Framing) as e:
            chunks.append(e)
            return st, h, chunks
        if not d:
            return st, h, chunks
        chunks.append(d)


CHAT = {"model": "x", "messages": [{"role": "user", "content": "hello there"}]}


def chat(n=None, stream=False):
    b = dict(CHAT, stream=stream)
    if n is not None:
        b["max_tokens"] = n
    return b


# ------------------------------------------------------------------ modes

def test_ok():
    c = Child("ok", "--alias", "alpha", "--token-ms", "20", "-ts", "3,1",
              "--flash-attn", "on", "-cb", "--jinja", "--no-webui",
              env={"CUDA_VISIBLE_DEVICES": "1,0"}, record=True)
    try:
        check("ok: ready (health 200)", c.wait_ready())
        err = c.stderr()
        check("ok: args line", "fault_server: args mode=ok model=" + MODEL in err
              and " ctx=2048 parallel=2 ngl=99 ts=3,1 alias=alpha " in err, err[:400])
        check("ok: env line", "CUDA_VISIBLE_DEVICES=1,0 HIP_VISIBLE_DEVICES=<unset>" in err, err[:400])
        check("ok: listening line",
              f"main: server is listening on http://127.0.0.1:{c.port}" in err, err[-400:])

        k = Conn(c.port)
        st, h, j = k.request("GET", "/health")
        check("ok: /health", st == 200 and j == {"status": "ok"}, (st, j))
        st, h, j = k.request("GET", "/v1/models")
        check("ok: /v1/models", st == 200 and j["data"][0]["id"] == "alpha", j)
        st, h, j = k.request("GET", "/props")
        check("ok: /props", st == 200 and j["default_generation_settings"]["n_ctx"] == 2048
              and j["total_slots"] == 2 and j["model_path"] == MODEL, j)
        st, h, j = k.request("POST", "/v1/chat/completions", chat())
        check("ok: chat non-stream", st == 200 and "content-length" in h
              and j["object"] == "chat.completion" and j["model"] == "alpha"
              and j["choices"][0]["message"]["content"] == "ok from alpha"
              and j["usage"]["completion_tokens"] == 8 and j["usage"]["prompt_tokens"] == 2, (h, j))

        t0 = time.monotonic()
        st, h, chunks = stream_chunks(k, "/v1/chat/completions", chat(5, True))
        dt = time.monotonic() - t0
        ok_frame = all(isinstance(x, bytes) for x in chunks)
        check("ok: stream chunked framing valid", st == 200 and ok_frame
              and h.get("transfer-encoding") == "chunked" and "content-length" not in h
              and h.get("content-type", "").startswith("text/event-stream"), (st, h, chunks[-1:]))
        ev = sse_events(b"".join(x for x in chunks if isinstance(x, bytes)))
        objs = [json.loads(e) for e in ev[:-1]] if ev else []
        check("ok: stream 5 chunks + [DONE]", len(ev) == 6 and ev[-1] == "[DONE]"
              and all(o["model"] == "alpha" and o["object"] == "chat.completion.chunk" for o in objs)
              and objs[0]["choices"][0]["delta"]["content"] == "ok from alpha"
              and objs[-1]["choices"][0]["finish_reason"] == "length"
              and objs[-1]["usage"]["completion_tokens"] == 5, ev)
        check("ok: --token-ms paces the stream", dt >= 0.09, f"{dt:.3f}s")
        st, h, chunks = stream_chunks(k, "/v1/chat/completions", chat(stream=True))
        check("ok: stream default 8 tokens", len(sse_events(b"".join(chunks))) == 9, len(chunks))

        st, h, j = k.request("POST", "/v1/completions", {"prompt": "a b c", "max_tokens": 3})
        check("ok: completions", st == 200 and j["object"] == "text_completion"
              and j["model"] == "alpha" and j["choices"][0]["text"] == "ok from alpha 1 2", j)
        st, h, chunks = stream_chunks(k, "/v1/completions",
                                      {"prompt": "a", "max_tokens": 2, "stream": True})
        ev = sse_events(b"".join(chunks))
        check("ok: completions stream", len(ev) == 3 and ev[-1] == "[DONE]"
              and json.loads(ev[1])["choices"][0]["text"] == " 1", ev)
        st, h, j = k.request("POST", "/v1/embeddings", {"input": ["a", "b c", "d"]})
        check("ok: embeddings", st == 200 and j["model"] == "alpha" and len(j["data"]) == 3
              and all(len(d["embedding"]) == 8 for d in j["data"])
              and j["data"][0]["embedding"] == j["data"][2]["embedding"], j)
        t0 = time.monotonic()
        st, h, j = k.request("GET", "/slow?ms=300")
        dt = time.monotonic() - t0
        check("ok: /slow?ms=300", st == 200 and j == {"model": "alpha", "slept_ms": 300}
              and dt >= 0.29, (st, j, dt))
        st, h, j = k.request("GET", "/nope")
        check("ok: 404", st == 404 and j["error"]["code"] == 404, (st, j))
        st, h, j = k.request("GET", "/fault/stats")
        check("ok: /fault/stats", st == 200 and j["completions"] == 6 and j["model"] == "alpha"
              and j["pid"] == c.proc.pid, j)
        # all of the above rode one connection: keep-alive works after chunked answers
        check("ok: one keep-alive connection", k.raw.count(b"HTTP/1.1 ") == 12, k.raw.count(b"HTTP/1.1 "))
        k.close()

        # -np 2: a third concurrent completion queues for a slot
        ks = [Conn(c.port) for _ in range(3)]
        t0 = time.monotonic()
        for x in ks:
            x.send("POST", "/v1/chat/completions", chat(8, True))
        done = []
        for x in ks:
            x.head()
            done.append(len(sse_events(x.body({"transfer-encoding": "chunked"}))))
            x.close()
        dt = time.monotonic() - t0
        k = Conn(c.port)
        st, h, j = k.request("GET", "/fault/stats")
        k.close()
        check("ok: -np 2 slots (third request queues)", done == [9, 9, 9]
              and j["max_inflight"] == 2 and dt >= 0.3, (done, j, f"{dt:.3f}s"))

        err = c.stderr()
        check("ok: request log line", "srv  log_server_r: request: POST /v1/chat/completions "
              "127.0.0.1 200 model=alpha" in err, err[-600:])
        rc, dt = c.term()
        check("ok: SIGTERM exits 0 promptly", rc == 0 and dt < 2, (rc, dt))
        rec = c.records()
        start = rec[0]
        check("ok: record start", start["event"] == "start" and start["pid"] == c.proc.pid
              and start["env"].get("CUDA_VISIBLE_DEVICES") == "1,0"
              and "HIP_VISIBLE_DEVICES" not in start["env"]
              and start["argv"][start["argv"].index("-ts") + 1] == "3,1", start)
        reqs = [r for r in rec if r["event"] == "request"]
        chats = [r for r in reqs if r["path"] == "/v1/chat/completions"]
        check("ok: record requests", len(reqs) == 17 and len(chats) == 6
              and chats[1]["body"]["max_tokens"] == 5 and chats[1]["body"]["stream"] is True
              and chats[0]["headers"].get("Content-Type") == "application/json", reqs[:2])
        check("ok: record exit", rec[-1] == {"event": "exit", "code": 0, "reason": "SIGTERM"}, rec[-2:])
    finally:
        c.kill()


def test_slow_start():
    c = Child("slow-start", "--start-ms", "800")
    try:
        t0 = time.monotonic()
        check("slow-start: listening", c.wait_listening())
        k = Conn(c.port)
        st, h, j = k.request("GET", "/health")
        check("slow-start: 503 loading", st == 503 and j == {"error": {
            "code": 503, "message": "Loading model", "type": "unavailable_error"}}, (st, j))
        st, h, j = k.request("POST", "/v1/chat/completions", chat())
        check("slow-start: completions 503 while loading", st == 503, st)
        k.close()
        ready = c.wait_ready(5)
        dt = time.monotonic() - t0
        check("slow-start: 200 after --start-ms", ready and 0.75 <= dt < 3, f"{dt:.3f}s")
        check("slow-start: 'model loaded' logged", "main: model loaded" in c.stderr())
    finally:
        c.kill()


def test_never_ready():
    c = Child("never-ready")
    try:
        check("never-ready: listening", c.wait_listening())
        sts = []
        for _ in range(4):
            k = Conn(c.port)
            sts.append(k.request("GET", "/health")[0])
            k.close()
            time.sleep(0.15)
        check("never-ready: health always 503", sts == [503] * 4, sts)
        rc, dt = c.term()
        check("never-ready: SIGTERM exits 0", rc == 0, rc)
    finally:
        c.kill()


def test_no_listen():
    c = Child("no-listen")
    try:
        time.sleep(0.4)
        refused = 0
        for _ in range(3):
            try:
                socket.create_connection(("127.0.0.1", c.port), 0.5).close()
            except ConnectionRefusedError:
                refused += 1
            time.sleep(0.1)
        check("no-listen: connection refused while alive", refused == 3 and c.alive(), refused)
        rc, dt = c.term()
        check("no-listen: SIGTERM exits 0", rc == 0, rc)
    finally:
        c.kill()


def test_exit_at_start():
    c = Child("exit-at-start")
    try:
        rc = c.wait(3)
        check("exit-at-start: exits 1", rc == 1, rc)
        check("exit-at-start: error line", f"error: failed to load model '{MODEL}'" in c.stderr(),
              c.stderr())
    finally:
        c.kill()


def test_port_taken():
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))
    hold.listen(1)
    port = hold.getsockname()[1]
    try:
        for mode in ("port-taken", "ok"):
            c = Child(mode, port=port)
            try:
                rc = c.wait(3)
                check(f"{mode}: port occupied -> exit 1", rc == 1, rc)
                line = f"couldn't bind HTTP server socket, hostname: 127.0.0.1, port: {port}"
                check(f"{mode}: port occupied -> bind error line", line in c.stderr(), c.stderr())
            finally:
                c.kill()
    finally:
        hold.close()
    c = Child("port-taken")
    try:
        check("port-taken: free port -> behaves like ok", c.wait_ready())
        k = Conn(c.port)
        st, h, j = k.request("POST", "/v1/chat/completions", chat())
        check("port-taken: free port -> answers", st == 200, st)
        k.close()
    finally:
        c.kill()


def test_crash_mid_stream():
    c = Child("crash-mid-stream")
    try:
        check("crash-mid-stream: ready", c.wait_ready())
        k = Conn(c.port)
        st, h, chunks = stream_chunks(k, "/v1/chat/completions", chat(8, True))
        good = [x for x in chunks if isinstance(x, bytes)]
        check("crash-mid-stream: 2 chunks then EOF", st == 200 and len(good) == 2
              and isinstance(chunks[-1], (EOFError, ConnectionResetError)), chunks)
        k.close()
        check("crash-mid-stream: exit 3", c.wait(3) == 3, c.proc.returncode)
    finally:
        c.kill()
    c = Child("crash-mid-stream")
    try:
        check("crash-mid-stream: ready (2)", c.wait_ready())
        k = Conn(c.port)
        k.send("POST", "/v1/chat/completions", chat())
        got = k.read_to_eof()
        check("crash-mid-stream: non-stream gets no answer", got == b"", got)
        k.close()
        check("crash-mid-stream: non-stream exit 3", c.wait(3) == 3, c.proc.returncode)
    finally:
        c.kill()


def test_http500():
    c = Child("http500")
    try:
        check("http500: health ok", c.wait_ready())
        k = Conn(c.port)
        want = {"error": {"code": 500, "message": "simulated failure", "type": "server_error"}}
        for path, body in (("/v1/chat/completions", chat(stream=True)),
                           ("/v1/completions", {"prompt": "x"}),
                           ("/v1/embeddings", {"input": "x"})):
            st, h, j = k.request("POST", path, body)
            check(f"http500: {path} -> 500", st == 500 and j == want, (st, j))
        st, h, j = k.request("GET", "/health")
        check("http500: health still 200", st == 200, st)
        k.close()
    finally:
        c.kill()


def test_garbage():
    c = Child("garbage")
    try:
        check("garbage: health ok", c.wait_ready())
        k = Conn(c.port)
        k.send("POST", "/v1/chat/completions", chat())
        got = k.read_to_eof()
        check("garbage: raw non-HTTP bytes then close", got == b"this is not http\r\n\r\n", got)
        k.close()
        check("garbage: still alive", c.alive())
    finally:
        c.kill()


def test_hang_after_ready():
    c = Child("hang-after-ready")
    try:
        check("hang-after-ready: ready", c.wait_ready())
        k = Conn(c.port)
        st, h, j = k.request("POST", "/v1/chat/completions", chat())
        check("hang-after-ready: first completion answered", st == 200, st)
        k.sock.settimeout(0.6)
        try:
            k.request("GET", "/health")
            same = "answered"
        except socket.timeout:
            same = "timeout"
        k.close()
        k = Conn(c.port, 0.6)
        try:
            k.request("GET", "/health")
            new = "answered"
        except socket.timeout:
            new = "timeout"
        k.close()
        check("hang-after-ready: health hangs (same and new connection)",
              same == new == "timeout", (same, new))
        check("hang-after-ready: process alive", c.alive())
        rc, dt = c.term()
        check("hang-after-ready: SIGTERM still exits 0", rc == 0, rc)
    finally:
        c.kill()


def test_hang_mid_stream():
    c = Child("hang-mid-stream")
    try:
        check("hang-mid-stream: ready", c.wait_ready())
        k = Conn(c.port, 0.8)
        st, h, chunks = stream_chunks(k, "/v1/chat/completions", chat(8, True))
        good = [x for x in chunks if isinstance(x, bytes)]
        check("hang-mid-stream: 2 chunks then silence", st == 200 and len(good) == 2
              and isinstance(chunks[-1], socket.timeout), chunks)
        k2 = Conn(c.port)
        st, h, j = k2.request("GET", "/health")
        check("hang-mid-stream: health still 200", st == 200, st)
        k2.close()
        k.close()
        check("hang-mid-stream: process alive", c.alive())
    finally:
        c.kill()


def test_chunked_garbage():
    c = Child("chunked-garbage")
    try:
        check("chunked-garbage: ready", c.wait_ready())
        k = Conn(c.port)
        st, h, chunks = stream_chunks(k, "/v1/chat/completions", chat(8, True))
        check("chunked-garbage: chunked headers, then a bad size line",
              st == 200 and h.get("transfer-encoding") == "chunked"
              and isinstance(chunks[-1], Framing) and "zz" in str(chunks[-1]), chunks)
        check("chunked-garbage: raw bytes hold 'zz\\r\\n'", b"\r\nzz\r\n" in k.raw, k.raw[-80:])
        k.close()
        k = Conn(c.port)
        st, h, j = k.request("POST", "/v1/chat/completions", chat())
        check("chunked-garbage: non-stream is normal", st == 200, st)
        k.close()
    finally:
        c.kill()


def test_ignore_sigterm():
    c = Child("ignore-sigterm")
    try:
        check("ignore-sigterm: ready", c.wait_ready())
        c.proc.send_signal(signal.SIGTERM)
        time.sleep(0.7)
        check("ignore-sigterm: survives SIGTERM", c.alive() and c.wait_ready(1))
        check("ignore-sigterm: logged", "fault_server: ignoring SIGTERM" in c.stderr())
        c.proc.send_signal(signal.SIGKILL)
        check("ignore-sigterm: dies on SIGKILL", c.wait(3) == -signal.SIGKILL, c.proc.returncode)
    finally:
        c.kill()


def main():
    t0 = time.monotonic()
    tests = [test_ok, test_slow_start, test_never_ready, test_no_listen, test_exit_at_start,
             test_port_taken, test_crash_mid_stream, test_http500, test_garbage,
             test_hang_after_ready, test_hang_mid_stream, test_chunked_garbage,
             test_ignore_sigterm]
    try:
        for t in tests:
            try:
                t()
            except Exception as e:  # a crash in a test is a failure, not the end
                check(f"{t.__name__}: raised", False, repr(e))
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
    dt = time.monotonic() - t0
    print(f"{PASSES} passed, {len(FAILS)} failed in {dt:.1f}s"
          + (f" (children's stderr and records in {TMP})" if FAILS else ""))
    if not FAILS:
        shutil.rmtree(TMP, ignore_errors=True)
    if FAILS:
        print("failed: " + ", ".join(FAILS))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
