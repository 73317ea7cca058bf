#!/usr/bin/env python3
"""A llama-server double for `gpuwatch pool` that misbehaves on purpose.

Stdlib only (Python 3.11). It takes llama-server's command line and serves
its routes over HTTP/1.1 keep-alive (ThreadingHTTPServer; chunked streaming
framed by hand), and one --mode per run says how it misbehaves:

    ok                normal
    slow-start        every route answers 503 "Loading model" for --start-ms
                      (default 2000) after the bind, then normal
    never-ready       every route answers 503 "Loading model" forever
    no-listen         never binds the port; sleeps (connection refused)
    exit-at-start     "error: failed to load model 'PATH'" on stderr, exit 1
    port-taken        bind, and if the port is taken print llama-server's
                      "couldn't bind HTTP server socket, hostname: H, port: P"
                      and exit 1; otherwise normal. (Every mode does this on a
                      failed bind; port-taken also binds without SO_REUSEADDR.)
    crash-mid-stream  a streaming completion sends 2 chunks then the process
                      exits with os._exit(3); a non-streaming one exits 3
                      before answering
    http500           every completion/embedding request answers 500
                      {"error":{"code":500,"message":"simulated failure",
                      "type":"server_error"}}; /health is ok
    garbage           /health ok; every completion/embedding request gets
                      the raw bytes "this is not http\\r\\n\\r\\n" and the
                      connection closed
    hang-after-ready  once the first completion request has been answered,
                      every request (health included, on any connection)
                      blocks forever; the process stays alive
    hang-mid-stream   a streaming completion sends 2 chunks then blocks
                      forever (health and other requests still answer;
                      non-streaming completions are normal)
    chunked-garbage   a streaming completion sends its headers, one valid
                      chunk, then the malformed chunk-size line "zz\\r\\n"
                      and closes (non-streaming completions are normal)
    ignore-sigterm    SIGTERM is logged and ignored (SIGKILL needed)

Command line (llama-server's flags; unknown ones are ignored):

    fault_server.py [--mode MODE] -m PATH [--port P] [--host H] [-c N]
        [-np N] [-ngl N] [-ts A,B] [--alias NAME] [--start-ms MS]
        [--token-ms MS] [--record FILE]

--port 0 binds an ephemeral port (the listening line tells which).
-np N > 0 gives N slots: completions past N concurrent ones queue, as in
llama-server. Without -np there is no limit.

Routes: GET /health, /v1/health, /v1/models, /models, /props, /slots,
/slow?ms=N, /fault/stats (counters: requests, completions, in-flight and
the most in flight at once, pid); POST /v1/chat/completions,
/chat/completions, /v1/completions, /completions, /completion,
/v1/embeddings, /embeddings. Answers name the model (--alias, else the
file name of -m): "model" fields, and chat content "ok from ALIAS".
Streaming sends N = max_tokens (or max_completion_tokens / n_predict;
default 8) SSE events "data: {chunk}\\n\\n", each after --token-ms ms
(default 5), then "data: [DONE]\\n\\n"; the last chunk carries
finish_reason "length" and usage.

stderr, flushed line by line, like llama-server:
    fault_server: args mode=.. model=.. host=.. port=.. ctx=.. parallel=..
        ngl=.. ts=.. alias=.. argv=[json] CUDA_VISIBLE_DEVICES=<v|<unset>>
        HIP_VISIBLE_DEVICES=<v|<unset>> pid=N
    main: server is listening on http://HOST:PORT - starting the main loop
    srv  log_server_r: request: METHOD PATH CLIENT STATUS model=ALIAS

--record FILE appends one JSON object a line (one write(2) each, O_APPEND):
    {"event":"start","pid","argv","env","args"}
    {"event":"listening","host","port"}
    {"event":"request","method","path","headers","body"}  (before answering;
        body is the parsed JSON, else the text, else null)
    {"event":"signal","signal":"SIGTERM","action":"exit"|"ignored"}
    {"event":"exit","code","reason"}
SIGTERM (and SIGINT), except in ignore-sigterm: close the server, exit 0.
"""
import http.server
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

MODES = (
    "ok", "slow-start", "never-ready", "no-listen", "exit-at-start",
    "port-taken", "crash-mid-stream", "http500", "garbage",
    "hang-after-ready", "hang-mid-stream", "chunked-garbage",
    "ignore-sigterm",
)

EMBEDDING = [0.125, -0.25, 0.375, -0.5, 0.625, -0.75, 0.875, -1.0]


def log(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class Args:
    mode = "ok"
    model = ""
    host = "127.0.0.1"
    port = 8080
    ctx = 4096
    parallel = 0
    ngl = None
    ts = None
    alias = None
    start_ms = 2000
    token_ms = 5
    record = None


# flag -> (attribute, converter)
FLAGS = {}
for _names, _attr, _conv in (
    (("--mode",), "mode", str),
    (("-m", "--model"), "model", str),
    (("--host",), "host", str),
    (("--port",), "port", int),
    (("-c", "--ctx-size"), "ctx", int),
    (("-np", "--parallel"), "parallel", int),
    (("-ngl", "--n-gpu-layers", "--gpu-layers"), "ngl", str),
    (("-ts", "--tensor-split"), "ts", str),
    (("-a", "--alias"), "alias", str),
    (("--start-ms",), "start_ms", int),
    (("--token-ms",), "token_ms", int),
    (("--record",), "record", str),
):
    for _n in _names:
        FLAGS[_n] = (_attr, _conv)


def parse_args(argv):
    """Exact matches only; anything unknown (and its value) is skipped."""
    a = Args()
    i = 0
    while i < len(argv):
        tok = argv[i]
        name, eq, val = tok.partition("=")
        if name in FLAGS and tok.startswith("--") and eq:
            i += 1
        elif tok in FLAGS:
            name = tok
            if i + 1 >= len(argv):
                log(f"error: missing value for {tok}")
                sys.exit(2)
            val = argv[i + 1]
            i += 2
        else:
            if tok in ("-h", "--help"):
                sys.stdout.write(__doc__)
                sys.exit(0)
            i += 1
            continue
        attr, conv = FLAGS[name]
        try:
            setattr(a, attr, conv(val))
        except ValueError:
            log(f"error: invalid value for {name}: '{val}'")
            sys.exit(2)
    if a.mode not in MODES:
        log(f"error: unknown --mode '{a.mode}' (one of: {', '.join(MODES)})")
        sys.exit(2)
    return a


ARGS = Args()
ALIAS = ""
RECORD_LOCK = threading.Lock()


def record(obj):
    if not ARGS.record:
        return
    line = (json.dumps(obj, sort_keys=True) + "\n").encode()
    with RECORD_LOCK:
        try:
            fd = os.open(ARGS.record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as e:
            log(f"fault_server: cannot write record {ARGS.record}: {e}")


def die(code, reason):
    """Exit now from any thread, skipping every cleanup but the record."""
    record({"event": "exit", "code": code, "reason": reason})
    log(f"fault_server: exit {code} ({reason})")
    sys.stdout.flush()
    os._exit(code)


def block_forever():
    threading.Event().wait()


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.ready = threading.Event()  # the model counts as loaded
        self.hung = threading.Event()
        self.slots = None
        self.requests = 0
        self.completions = 0
        self.inflight = 0
        self.max_inflight = 0

    def loading(self):
        return not self.ready.is_set()


STATE = State()
SERVER = None


def now():
    return int(time.time())


def err_body(code, message, etype):
    return {"error": {"code": code, "message": message, "type": etype}}


def n_tokens(body):
    for k in ("max_tokens", "max_completion_tokens", "n_predict"):
        v = body.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return 8


def prompt_tokens(body):
    text = ""
    msgs = body.get("messages")
    if isinstance(msgs, list):
        for m in msgs:
            if isinstance(m, dict) and isinstance(m.get("content"), str):
                text += " " + m["content"]
    p = body.get("prompt")
    if isinstance(p, str):
        text += " " + p
    elif isinstance(p, list):
        text += " ".join(x for x in p if isinstance(x, str))
    return max(1, len(text.split()))


def usage(body, n):
    pt = prompt_tokens(body)
    return {"prompt_tokens": pt, "completion_tokens": n, "total_tokens": pt + n}


def piece(i):
    return f"ok from {ALIAS}" if i == 0 else f" {i}"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault_server"
    sys_version = ""

    # ------------------------------------------------------------ logging
    def log_request(self, code="-", size="-"):
        if isinstance(code, http.HTTPStatus):
            code = code.value
        path = getattr(self, "path", "-")
        method = getattr(self, "command", "-")
        log(f"srv  log_server_r: request: {method} {path} "
            f"{self.client_address[0]} {code} model={ALIAS}")

    def log_message(self, fmt, *args):
        log("srv  " + (fmt % args))

    # ------------------------------------------------------------ helpers
    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            data = b""
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, code, obj, extra_headers=()):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def start_chunked(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
        self.wfile.flush()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def sse(self, obj):
        text = obj if isinstance(obj, str) else json.dumps(obj)
        self.write_chunk(b"data: " + text.encode() + b"\n\n")

    # ------------------------------------------------------------ dispatch
    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def dispatch(self):
        if STATE.hung.is_set():
            block_forever()
        try:
            raw = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self.send_json(400, err_body(400, "bad request body", "invalid_request_error"))
            return
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        url = urllib.parse.urlsplit(self.path)
        route = url.path
        with STATE.lock:
            STATE.requests += 1
        record({"event": "request", "method": self.command, "path": self.path,
                "headers": dict(self.headers.items()), "body": body})
        try:
            self.route(route, url, body)
        except (BrokenPipeError, ConnectionResetError) as e:
            log(f"srv  fault_server: client went away on {route}: {e}")
            self.close_connection = True

    def route(self, route, url, body):
        get = self.command in ("GET", "HEAD")
        if route in ("/slow",) and get:
            return self.slow(url)
        if route == "/fault/stats" and get:
            with STATE.lock:
                stats = {"model": ALIAS, "mode": ARGS.mode, "pid": os.getpid(),
                         "requests": STATE.requests, "completions": STATE.completions,
                         "inflight": STATE.inflight, "max_inflight": STATE.max_inflight}
            return self.send_json(200, stats)
        if STATE.loading():
            return self.send_json(503, err_body(503, "Loading model", "unavailable_error"))
        if route in ("/health", "/v1/health") and get:
            return self.send_json(200, {"status": "ok"})
        if route in ("/v1/models", "/models") and get:
            return self.send_json(200, self.models())
        if route == "/props" and get:
            return self.send_json(200, self.props())
        if route == "/slots" and get:
            n = ARGS.parallel if ARGS.parallel > 0 else 1
            return self.send_json(200, [{"id": i, "n_ctx": ARGS.ctx, "is_processing": False}
                                        for i in range(n)])
        kinds = {"/v1/chat/completions": "chat", "/chat/completions": "chat",
                 "/v1/completions": "text", "/completions": "text", "/completion": "text",
                 "/v1/embeddings": "embed", "/embeddings": "embed"}
        if route in kinds and self.command == "POST":
            if not isinstance(body, dict):
                return self.send_json(400, err_body(400, "request body is not a JSON object",
                                                    "invalid_request_error"))
            return self.completion(kinds[route], body)
        if route in kinds or route in ("/health", "/v1/health", "/v1/models", "/models",
                                       "/props", "/slots", "/slow", "/fault/stats"):
            return self.send_json(405, err_body(405, "Method Not Allowed", "invalid_request_error"))
        return self.send_json(404, err_body(404, "File Not Found", "not_found_error"))

    # ------------------------------------------------------------ routes
    def slow(self, url):
        q = urllib.parse.parse_qs(url.query)
        try:
            ms = int(q.get("ms", ["100"])[0])
        except ValueError:
            ms = 100
        time.sleep(max(0, ms) / 1000.0)
        self.send_json(200, {"model": ALIAS, "slept_ms": ms})

    def models(self):
        return {"object": "list",
                "models": [{"name": ALIAS, "model": ALIAS, "type": "model"}],
                "data": [{"id": ALIAS, "object": "model", "created": now(),
                          "owned_by": "llamacpp",
                          "meta": {"n_ctx_train": ARGS.ctx, "path": ARGS.model}}]}

    def props(self):
        return {"default_generation_settings": {"n_ctx": ARGS.ctx, "model": ALIAS,
                                                "params": {"n_predict": -1}},
                "total_slots": ARGS.parallel if ARGS.parallel > 0 else 1,
                "model_path": ARGS.model, "model_alias": ALIAS,
                "chat_template": "", "build_info": "fault_server",
                "fault_server": {"mode": ARGS.mode, "ngl": ARGS.ngl,
                                 "tensor_split": ARGS.ts, "pid": os.getpid()}}

    def completion(self, kind, body):
        stream = bool(body.get("stream")) and kind != "embed"
        mode = ARGS.mode
        if mode == "http500":
            return self.send_json(500, err_body(500, "simulated failure", "server_error"))
        if mode == "garbage":
            self.close_connection = True
            self.wfile.write(b"this is not http\r\n\r\n")
            self.wfile.flush()
            log(f"srv  log_server_r: request: {self.command} {self.path} "
                f"{self.client_address[0]} garbage model={ALIAS}")
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if mode == "crash-mid-stream" and not stream:
            die(3, "crash-mid-stream before answering")
        if STATE.slots is not None:
            STATE.slots.acquire()
        with STATE.lock:
            STATE.completions += 1
            STATE.inflight += 1
            STATE.max_inflight = max(STATE.max_inflight, STATE.inflight)
        try:
            if kind == "embed":
                self.embeddings(body)
            elif stream:
                self.stream(kind, body)
            else:
                self.answer(kind, body)
        finally:
            with STATE.lock:
                STATE.inflight -= 1
            if STATE.slots is not None:
                STATE.slots.release()
        if mode == "hang-after-ready":
            log("fault_server: hang-after-ready: answered one completion, hanging now")
            STATE.hung.set()

    def embeddings(self, body):
        inp = body.get("input", body.get("content", ""))
        items = inp if isinstance(inp, list) else [inp]
        pt = sum(max(1, len(x.split())) if isinstance(x, str) else 1 for x in items)
        self.send_json(200, {
            "object": "list", "model": ALIAS,
            "data": [{"object": "embedding", "index": i, "embedding": list(EMBEDDING)}
                     for i in range(len(items))],
            "usage": {"prompt_tokens": pt, "total_tokens": pt}})

    def answer(self, kind, body):
        n = n_tokens(body)
        text = "".join(piece(i) for i in range(n)) if kind == "text" else f"ok from {ALIAS}"
        if kind == "chat":
            obj = {"id": f"chatcmpl-fault-{os.getpid()}", "object": "chat.completion",
                   "created": now(), "model": ALIAS, "system_fingerprint": "b0-fault",
                   "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text}}],
                   "usage": usage(body, n)}
        else:
            obj = {"id": f"cmpl-fault-{os.getpid()}", "object": "text_completion",
                   "created": now(), "model": ALIAS, "system_fingerprint": "b0-fault",
                   "choices": [{"index": 0, "text": text, "logprobs": None,
                                "finish_reason": "length"}],
                   "usage": usage(body, n)}
        self.send_json(200, obj)

    def chunk(self, kind, body, i, n):
        last = i == n - 1
        if kind == "chat":
            delta = {"content": piece(i)}
            if i == 0:
                delta["role"] = "assistant"
            obj = {"id": f"chatcmpl-fault-{os.getpid()}", "object": "chat.completion.chunk",
                   "created": now(), "model": ALIAS, "system_fingerprint": "b0-fault",
                   "choices": [{"index": 0, "delta": delta,
                                "finish_reason": "length" if last else None}]}
        else:
            obj = {"id": f"cmpl-fault-{os.getpid()}", "object": "text_completion",
                   "created": now(), "model": ALIAS, "system_fingerprint": "b0-fault",
                   "choices": [{"index": 0, "text": piece(i), "logprobs": None,
                                "finish_reason": "length" if last else None}]}
        if last:
            obj["usage"] = usage(body, n)
        return obj

    def stream(self, kind, body):
        n = n_tokens(body)
        mode = ARGS.mode
        self.start_chunked()
        for i in range(n):
            time.sleep(max(0, ARGS.token_ms) / 1000.0)
            if mode == "chunked-garbage" and i == 1:
                self.wfile.write(b"zz\r\nthis is not a chunk\r\n")
                self.wfile.flush()
                self.close_connection = True
                log("fault_server: chunked-garbage: wrote a malformed chunk size, closing")
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if i == 2 and mode == "crash-mid-stream":
                die(3, "crash-mid-stream after 2 chunks")
            if i == 2 and mode == "hang-mid-stream":
                log("fault_server: hang-mid-stream: 2 chunks sent, hanging this request")
                block_forever()
            self.sse(self.chunk(kind, body, i, n))
        if mode == "crash-mid-stream":  # fewer than 3 tokens asked for
            die(3, "crash-mid-stream after the last chunk")
        if mode == "hang-mid-stream":
            block_forever()
        if mode == "chunked-garbage":
            self.wfile.write(b"zz\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        self.sse("[DONE]")
        self.end_chunked()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class Server6(Server):
    address_family = socket.AF_INET6


def on_sigterm(signum, frame):
    name = signal.Signals(signum).name
    if ARGS.mode == "ignore-sigterm" and signum == signal.SIGTERM:
        log(f"fault_server: ignoring {name}")
        record({"event": "signal", "signal": name, "action": "ignored"})
        return
    log(f"fault_server: {name}, shutting down")
    record({"event": "signal", "signal": name, "action": "exit"})
    if SERVER is not None:
        try:
            SERVER.socket.close()
        except OSError:
            pass
    die(0, name)


def main(argv):
    global ARGS, ALIAS, SERVER
    ARGS = parse_args(argv)
    model_file = os.path.basename(ARGS.model) if ARGS.model else "model"
    ALIAS = ARGS.alias or model_file
    env = {k: os.environ.get(k, "<unset>")
           for k in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")}
    log(f"fault_server: args mode={ARGS.mode} model={ARGS.model} host={ARGS.host} "
        f"port={ARGS.port} ctx={ARGS.ctx} parallel={ARGS.parallel} ngl={ARGS.ngl} "
        f"ts={ARGS.ts} alias={ALIAS} argv={json.dumps(argv)} "
        f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} "
        f"HIP_VISIBLE_DEVICES={env['HIP_VISIBLE_DEVICES']} pid={os.getpid()}")
    record({"event": "start", "pid": os.getpid(), "argv": argv, "env": dict(os.environ),
            "args": {k: getattr(ARGS, k) for k in vars(Args) if not k.startswith("_")}})
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    log(f"build: 0 (fault_server) mode {ARGS.mode}")
    log(f"main: loading model '{ARGS.model}'")

    if ARGS.mode == "exit-at-start":
        log("llama_model_load: error loading model: fault_server exit-at-start")
        log(f"error: failed to load model '{ARGS.model}'")
        die(1, "exit-at-start")
    if ARGS.mode == "no-listen":
        log("fault_server: no-listen: not binding the port")
        while True:
            time.sleep(3600)

    if ARGS.parallel > 0:
        STATE.slots = threading.BoundedSemaphore(ARGS.parallel)
    cls = Server6 if ":" in ARGS.host else Server
    if ARGS.mode == "port-taken":
        cls = type("StrictServer", (cls,), {"allow_reuse_address": False})
    try:
        SERVER = cls((ARGS.host, ARGS.port), Handler)
    except OSError as e:
        log(f"main: couldn't bind HTTP server socket, hostname: {ARGS.host}, "
            f"port: {ARGS.port} ({e.strerror or e})")
        die(1, "bind failed")
    port = SERVER.server_address[1]
    if ARGS.mode == "slow-start":
        def loaded():
            log("main: model loaded")
            STATE.ready.set()
        timer = threading.Timer(ARGS.start_ms / 1000.0, loaded)
        timer.daemon = True
        timer.start()
    elif ARGS.mode != "never-ready":
        STATE.ready.set()
    record({"event": "listening", "host": ARGS.host, "port": port})
    log(f"main: HTTP server is listening, hostname: {ARGS.host}, port: {port}, "
        f"http threads: {ARGS.parallel or 'unlimited'}")
    log(f"main: server is listening on http://{ARGS.host}:{port} - starting the main loop")
    if STATE.ready.is_set():
        log("main: model loaded")
    t = threading.Thread(target=SERVER.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True)
    t.start()
    while True:  # the main thread stays free to run signal handlers
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1:])
