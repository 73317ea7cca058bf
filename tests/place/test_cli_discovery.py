#!/usr/bin/env python3
"""Daemon discovery of `place` / `run` against servers that are not
gpuwatch (issue 12: dcgm-exporter on 9400 answered /health with 404 and
`place` called that "connection refused").

A stand-in HTTP server on a loopback port answers 404 / 200 with bodies
that are not gpuwatch's / garbage / a response trickled out slowly /
nothing at all / 503; `place` and `run --dry-run` must say
"127.0.0.1:PORT answers but is not gpuwatch (...what it answered...)" and
fall back to the local ledger, never say "connection refused"; a server
that does not answer, or answers 5xx, is an error with no fallback. Then
IPv6: the Host header of a daemon URL on [::1] carries brackets (the
stand-in records it) and a real `gpuwatch serve` on [::1] is used.

Nothing here depends on the machine's speed: the trickle finishes well
inside the client's 5 s deadline and the silent server is waited out by
the client's own deadline."""
import os, re, socket, socketserver, subprocess, sys, tempfile, threading, time

BIN = os.environ["GPUWATCH_BIN"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def http(status, body, ctype="text/plain"):
    b = body.encode()
    return (b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
            % (status, ctype.encode(), len(b))) + b


# name -> (bytes to send, per-byte delay or None, close without answering?)
ANSWERS = {
    "404": (http(404, "404 page not found\n"), None),  # dcgm-exporter's answer
    "200-json": (http(200, '{"status":"ok","version":"3.3"}', "application/json"), None),
    "200-html": (http(200, "<html><body>Grafana</body></html>", "text/html"), None),
    "200-service": (http(200, '{"service":"node_exporter"}', "application/json"), None),
    "garbage": (b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02", None),
    "empty": (b"", None),
    "slow-404": (http(404, "not here, slowly\n"), 0.004),
    "503": (http(503, "down for maintenance"), None),
    "silent": (None, None),
}


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(30)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(4096)
            if not chunk:
                break
            data += chunk
        self.server.seen.append(data.decode("latin-1"))
        send, delay = ANSWERS[self.server.mode]
        if send is None:  # accept, read, never answer: the client's deadline ends it
            self.server.release.wait(30)
            return
        if delay:
            for i in range(len(send)):
                self.request.sendall(send[i:i + 1])
                time.sleep(delay)
        else:
            self.request.sendall(send)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Server6(Server):
    address_family = socket.AF_INET6


def serve(cls, host):
    srv = cls((host, 0), Handler)
    srv.mode = "404"
    srv.seen = []
    srv.release = threading.Event()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


tmp = tempfile.mkdtemp(prefix="gw-discovery-")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_") or k == "GPUWATCH_BIN"}
ENV["GPUWATCH_LEDGER"] = os.path.join(tmp, "ledger.db")


def gw(*args, env=None):
    e = dict(ENV)
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60, env=e,
                          stdin=subprocess.DEVNULL)


PLACE = ["place", "--mem", "1GiB", "--sources", "host", "--json"]
RUN = ["run", "--mem", "1GiB", "--sources", "host", "--dry-run", "--json", "--", "true"]

srv = serve(Server, "127.0.0.1")
port = srv.server_address[1]
url = "http://127.0.0.1:%d" % port
who = "127.0.0.1:%d answers but is not gpuwatch" % port
for mode in ("404", "200-json", "200-html", "200-service", "garbage", "empty", "slow-404"):
    srv.mode = mode
    for how, args, env in (("--daemon", PLACE + ["--daemon", url], None),
                           ("GPUWATCH_DAEMON", PLACE, {"GPUWATCH_DAEMON": url}),
                           ("run", RUN[:1] + ["--daemon=" + url] + RUN[1:], None)):
        r = gw(*args, env=env)
        what = "%s via %s: rc %d %r" % (mode, how, r.returncode, r.stderr)
        check(who in r.stderr, what + ": no 'answers but is not gpuwatch'")
        check("connection refused" not in r.stderr, what + ": says connection refused")
        check("using the local ledger" in r.stderr, what + ": no fallback line")
        check("local ledger" in r.stdout, what + ": not planned locally: %r" % r.stdout[:200])
        check(r.stderr.count("\n") >= 1 and all(c.isprintable() for c in r.stderr.replace("\n", "")),
              what + ": unprintable bytes in the message")
    # what it answered is named
    if mode in ("404", "slow-404"):
        check("HTTP %s" % mode.split("-")[-1] in r.stderr, "%s: status not named: %r" % (mode, r.stderr))
srv.mode = "404"
check("404 page not found" in gw(*PLACE, "--daemon", url).stderr, "404: its body is not shown")
srv.mode = "200-json"
check("HTTP 200" in gw(*PLACE, "--daemon", url).stderr, "200: not named")

# No fallback when it might be a gpuwatch in trouble: 5xx, or no answer.
srv.mode = "503"
r = gw(*PLACE, "--daemon", url)
check(r.returncode == 1 and "HTTP 503" in r.stderr and "local ledger" not in r.stdout,
      "503: %d %r" % (r.returncode, r.stderr))
srv.mode = "silent"
r = gw(*PLACE, "--daemon", url)
srv.release.set()
check(r.returncode == 1 and "no answer within" in r.stderr and "local ledger" not in r.stdout,
      "silent: %d %r" % (r.returncode, r.stderr))
srv.release.clear()

# Nothing listening is still "connection refused", with the fallback.
free = socket.socket()
free.bind(("127.0.0.1", 0))
closed = free.getsockname()[1]
free.close()
r = gw(*PLACE, "--daemon", "http://127.0.0.1:%d" % closed)
check("connection refused" in r.stderr and "local ledger" in r.stdout, "refused: %r" % r.stderr)

# Every probe sent the Host header of the URL.
check(srv.seen and all(("\r\nHost: 127.0.0.1:%d\r\n" % port) in s for s in srv.seen),
      "IPv4 Host header: %r" % srv.seen[:1])
srv.shutdown()

# IPv6: the Host header is [::1]:PORT, and a real daemon on [::1] is used.
try:
    s6 = socket.socket(socket.AF_INET6)
    s6.bind(("::1", 0))
    s6.close()
    have6 = True
except OSError as e:
    have6 = False
    print("skip IPv6: this host has no IPv6 loopback (%s)" % e)
if have6:
    srv6 = serve(Server6, "::1")
    p6 = srv6.server_address[1]
    r = gw(*PLACE, "--daemon", "http://[::1]:%d" % p6)
    check(srv6.seen and ("\r\nHost: [::1]:%d\r\n" % p6) in srv6.seen[0],
          "IPv6 Host header: %r" % srv6.seen[:1])
    check("[::1]:%d answers but is not gpuwatch" % p6 in r.stderr, "IPv6 note: %r" % r.stderr)
    srv6.shutdown()

    d = subprocess.Popen([BIN, "serve", "--listen", "[::1]:0", "--sources", "host",
                          "--set", "ledger=" + os.path.join(tmp, "d.db")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        dport = None
        for line in d.stderr:
            m = re.search(r"listening on http://\[::1\]:(\d+)", line)
            if m:
                dport = int(m.group(1))
                break
        check(dport is not None, "daemon on [::1] did not start")
        if dport:
            du = "http://[::1]:%d" % dport
            r = gw(*PLACE, "--daemon", du)
            end = time.time() + 60
            while "503" in r.stderr and time.time() < end:  # before its first snapshot
                time.sleep(0.05)
                r = gw(*PLACE, "--daemon", du)
            check(('"via":"daemon %s"' % du) in r.stdout and not r.stderr.strip().startswith(
                "gpuwatch place: [::1]"), "real daemon on [::1]: %d %r %r"
                % (r.returncode, r.stdout[:300], r.stderr))
    finally:
        d.terminate()
        d.wait(30)

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
