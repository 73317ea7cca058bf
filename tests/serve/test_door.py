#!/usr/bin/env python3
"""Integration tests of what stands at the daemon's door: TLS (with reload
on SIGHUP), bearer and basic auth, read_only, the refusal to start beyond
loopback without either, gpuwatch_http_requests_total{route,code}, and a
real Prometheus scraping over TLS with a bearer token and with basic auth.

    test_door.py CASE        (cases: see CASES at the bottom)

Certificates are made here with `openssl req`, basic-auth hashes with
`openssl passwd` and Python's crypt, so nothing expected comes from
gpuwatch. "Beyond loopback" is listen = 0.0.0.0:0, reached through
127.0.0.1: the rules follow the listen address, so this works on any host.
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import (BIN, DEADLINE, HERE, Daemon, Prometheus, _die_with_parent,  # noqa: E402
                        check, fail, parse_prom, series, wait_for)

TWO = os.path.join(HERE, "scenarios", "two.scn")
TOKEN = "door-test-token"
TMP = tempfile.mkdtemp(prefix="gw-door-")


def tmp(name):
    return os.path.join(TMP, name)


def make_cert(name, cn="localhost"):
    """A self-signed EC certificate for 127.0.0.1 and localhost; returns
    (cert path, key path). The certificate is its own CA."""
    cert, key = tmp(name + ".crt"), tmp(name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=DEADLINE)
    return cert, key


def der(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def sha512_crypt(pw):
    return subprocess.run(["openssl", "passwd", "-6", pw], check=True, capture_output=True,
                          text=True, timeout=DEADLINE).stdout.strip()


def bcrypt_hash(pw):
    """A bcrypt hash (cost 4: cheap, still bcrypt) from Python's crypt module
    (gone in Python 3.13), else htpasswd or mkpasswd."""
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        return crypt.crypt(pw, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    except ImportError:
        pass
    if shutil.which("htpasswd"):
        out = subprocess.run(["htpasswd", "-nbBC", "4", "u", pw], check=True, capture_output=True,
                             text=True, timeout=DEADLINE).stdout
        return out.strip().split(":", 1)[1]
    if shutil.which("mkpasswd"):
        return subprocess.run(["mkpasswd", "-m", "bcrypt", "-R", "4", pw], check=True,
                              capture_output=True, text=True, timeout=DEADLINE).stdout.strip()
    fail("no way to make a bcrypt hash: Python's crypt, htpasswd (apache2-utils) or mkpasswd (whois)")


class DoorDaemon(Daemon):
    """A daemon that may listen beyond loopback (0.0.0.0) and over TLS;
    requests go to 127.0.0.1 with `auth` (an Authorization value) unless a
    request gives its own headers."""

    def __init__(self, args=(), cafile=None, auth=None, **kw):
        self.cafile = cafile
        self.auth = auth
        super().__init__(args=args, **kw)

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            m = re.search(r"listening on https?://[0-9.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def conn(self, timeout=DEADLINE):
        if self.cafile:
            ctx = ssl.create_default_context(cafile=self.cafile)
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, headers=None, timeout=DEADLINE, body=None):
        h = dict(headers) if headers is not None else ({"Authorization": self.auth} if self.auth else {})
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            hdrs = {}
            for k, v in r.getheaders():  # repeated headers (WWW-Authenticate) joined
                hdrs[k.lower()] = hdrs[k.lower()] + ", " + v if k.lower() in hdrs else v
            return r.status, hdrs, data
        finally:
            c.close()

    def served_cert(self):
        """The certificate the daemon presents now (DER)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE) as s:
            with ctx.wrap_socket(s) as t:
                return t.getpeercert(binary_form=True)


def start_fails(args, env=None):
    """Runs `gpuwatch serve ARGS` expecting it to refuse to start: returns
    stderr (checked to exit 1)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    e.update(env or {})
    p = subprocess.run([BIN, "serve", "--sources", "host"] + list(args), capture_output=True,
                       text=True, timeout=DEADLINE, env=e)
    check(p.returncode == 1, "serve %s: exit %d, want 1:\n%s" % (args, p.returncode, p.stderr))
    return p.stderr


# ------------------------------------------------------------------- TLS

def case_tls():
    cert, key = make_cert("a")
    d = DoorDaemon(scenario=TWO, cafile=cert, args=["--tls-cert-file", cert, "--tls-key-file", key])
    check(re.search(r"listening on https://127\.0\.0\.1:", d.log()), "no https in the log line")
    st, h, body = d.get("/health")
    check(st == 200 and json.loads(body)["status"] == "ok", "https /health %d" % st)
    check(d.served_cert() == der(cert), "served certificate is not tls_cert_file")
    # Plain HTTP on the TLS port gets no HTTP answer.
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
    try:
        c.request("GET", "/health")
        got = c.getresponse().status
    except (http.client.HTTPException, OSError):
        got = None
    finally:
        c.close()
    check(got is None, "plain HTTP on the TLS port answered %r" % got)
    # place speaks plain HTTP: it says the daemon may serve only HTTPS,
    # rather than a bare "Connection reset by peer".
    p = subprocess.run([BIN, "place", "--mem", "1GiB", "--sources", "host", "--daemon",
                        "http://127.0.0.1:%d" % d.port], capture_output=True, text=True,
                       timeout=DEADLINE)
    check(p.returncode != 0 and "serving only HTTPS" in p.stderr, "place on a TLS daemon: %r" % p.stderr)
    # curl with the CA, as an operator would check it.
    if shutil.which("curl"):
        p = subprocess.run(["curl", "-sS", "--cacert", cert, "https://127.0.0.1:%d/gpu/info" % d.port],
                           capture_output=True, text=True, timeout=DEADLINE)
        check(p.returncode == 0 and json.loads(p.stdout)["gpu_count"] == 2, "curl: %s" % p.stderr)
    d.stop()

    # Start-up errors name the file and what is wrong.
    other_cert, other_key = make_cert("other")
    err = start_fails(["--tls-cert-file", cert])
    check("tls_key_file" in err and "both" in err, "one TLS file: %r" % err)
    err = start_fails(["--tls-cert-file", tmp("missing.crt"), "--tls-key-file", key])
    check("tls_cert_file %s: no such file" % tmp("missing.crt") in err, "missing cert: %r" % err)
    err = start_fails(["--tls-cert-file", cert, "--tls-key-file", cert])
    check("tls_key_file %s: not a PEM private key" % cert in err, "cert as key: %r" % err)
    with open(tmp("junk.crt"), "w") as f:
        f.write("hello\n")
    err = start_fails(["--tls-cert-file", tmp("junk.crt"), "--tls-key-file", key])
    check("tls_cert_file %s: not a PEM certificate" % tmp("junk.crt") in err, "junk cert: %r" % err)
    err = start_fails(["--tls-cert-file", cert, "--tls-key-file", other_key])
    check(cert in err and other_key in err and "do not match" in err, "mismatched key: %r" % err)


def case_tlsreload():
    """SIGHUP serves the new certificate without refusing a connection; a bad
    new certificate keeps the old one and the log says why."""
    a_cert, a_key = make_cert("ra", cn="first")
    b_cert, b_key = make_cert("rb", cn="second")
    c_cert, c_key = make_cert("rc", cn="third")
    cur_cert, cur_key = tmp("cur.crt"), tmp("cur.key")
    shutil.copy(a_cert, cur_cert)
    shutil.copy(a_key, cur_key)
    d = DoorDaemon(scenario=TWO, cafile=a_cert, args=["--tls-cert-file", cur_cert, "--tls-key-file", cur_key])
    check(d.served_cert() == der(a_cert), "first certificate not served")

    # A client opening a new TLS connection per request, all through the
    # reloads: every one must be answered (by either certificate).
    stop, errors, answered = threading.Event(), [], [0]

    def hammer():
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        while not stop.is_set():
            c = http.client.HTTPSConnection("127.0.0.1", d.port, timeout=DEADLINE, context=ctx)
            try:
                c.request("GET", "/health")
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors.append("status %d" % r.status)
                answered[0] += 1
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(e))
            finally:
                c.close()
    t = threading.Thread(target=hammer, daemon=True)
    t.start()
    wait_for(lambda: answered[0] >= 3, "the client's first answers", d)

    reloads = [0]

    def reload_to(cert, key, want_line):
        shutil.copy(cert, cur_cert)
        shutil.copy(key, cur_key)
        n = d.log().count(want_line)
        before = answered[0]
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: d.log().count(want_line) > n, "reload line %r" % want_line, d)
        wait_for(lambda: answered[0] >= before + 3, "answers after the reload", d)
        reloads[0] += 1

    reload_to(b_cert, b_key, "reload: serving " + cur_cert)
    check(d.served_cert() == der(b_cert), "second certificate not served after SIGHUP")
    # Bad: key does not match; not PEM; missing. Each keeps the second.
    reload_to(c_cert, b_key, "keeping the running certificate")
    check("do not match" in d.log(), "mismatch reason not logged:\n" + d.log())
    check(d.served_cert() == der(b_cert), "a mismatched pair replaced the certificate")
    with open(tmp("junk"), "w") as f:
        f.write("junk\n")
    n = d.log().count("keeping the running certificate")
    shutil.copy(tmp("junk"), cur_cert)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: d.log().count("keeping the running certificate") > n, "junk cert reload", d)
    check("tls_cert_file %s: not a PEM certificate" % cur_cert in d.log(), "junk reason:\n" + d.log())
    os.unlink(cur_cert)
    n = d.log().count("keeping the running certificate")
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: d.log().count("keeping the running certificate") > n, "missing cert reload", d)
    check("tls_cert_file %s: no such file" % cur_cert in d.log(), "missing reason:\n" + d.log())
    check(d.served_cert() == der(b_cert), "a failed reload replaced the certificate")
    # POST /api/v1/reload works the same way.
    shutil.copy(c_cert, cur_cert)
    shutil.copy(c_key, cur_key)
    n = d.log().count("reload: serving")
    d.cafile = b_cert  # the certificate served until this reload
    st, _, _ = d.request("POST", "/api/v1/reload", headers={})
    check(st == 202, "POST /api/v1/reload %d" % st)
    wait_for(lambda: d.log().count("reload: serving") > n, "reload through the API", d)
    check(d.served_cert() == der(c_cert), "third certificate not served after POST reload")
    stop.set()
    t.join(DEADLINE)
    check(not errors, "requests failed across certificate reloads: %r" % errors[:5])
    d.stop()


# ------------------------------------------------------------------ auth

def write(name, text):
    with open(tmp(name), "w") as f:
        f.write(text)
    return tmp(name)


def case_auth():
    """The access matrix: bearer and basic, loopback and beyond."""
    tok = write("token", TOKEN + "\n")
    users = write("users", "# test users\nalice:%s\nbob:%s\n" % (bcrypt_hash("wonderland"),
                                                                  sha512_crypt("builder")))
    ok_bearer = {"Authorization": "Bearer " + TOKEN}
    ok_alice, ok_bob = {"Authorization": basic("alice", "wonderland")}, {"Authorization": basic("bob", "builder")}
    bad = [{}, {"Authorization": "Bearer nope"}, {"Authorization": basic("alice", "wrong")},
           {"Authorization": basic("mallory", "wonderland")}, {"Authorization": "Basic !!!"},
           {"Authorization": "Digest x"}, {"Authorization": basic("alice", "wonderland")[:-2]}]

    def www(h):
        return h.get("www-authenticate", "")

    for where in ("loopback", "beyond"):
        listen = ["--listen", "0.0.0.0:0"] if where == "beyond" else []
        d = DoorDaemon(scenario=TWO, auth=ok_bearer["Authorization"],
                       args=listen + ["--token-file", tok, "--basic-auth-file", users])
        for good in (ok_bearer, ok_alice, ok_bob, ok_alice):  # alice twice: the cached path
            st, _, _ = d.request("POST", "/api/v1/reload", headers=good)
            check(st == 202, "%s: reload with %s: %d" % (where, good, st))
            # the web page's files follow the rules of /metrics (docs/web.md)
            for path in ("/metrics", "/ui/app.js", "/ui/"):
                st, _, _ = d.request("GET", path, headers=good)
                check(st == 200, "%s: %s with %s: %d" % (where, path, good, st))
        for b in bad:
            st, h, body = d.request("POST", "/api/v1/reload", headers=b)
            check(st == 401, "%s: reload with %r: %d" % (where, b, st))
            check("Bearer" in www(h) and "Basic" in www(h), "%s: WWW-Authenticate %r" % (where, www(h)))
            check(json.loads(body)["error"]["code"] == 401, "401 body")
            for path in ("/metrics", "/ui/app.js", "/ui/"):
                st, h, _ = d.request("GET", path, headers=b)
                if where == "loopback":
                    check(st == 200, "loopback read of %s with %r: %d" % (path, b, st))
                else:
                    check(st == 401 and "Basic" in www(h),
                          "beyond: read of %s with %r: %d" % (path, b, st))
        # Beyond loopback an unknown path does not tell 404 from 401.
        st, _, _ = d.request("GET", "/no/such", headers={})
        check(st == (404 if where == "loopback" else 401), "%s: unknown path %d" % (where, st))
        st, _, _ = d.request("GET", "/no/such", headers=ok_alice)
        check(st == 404, "%s: unknown path with credentials %d" % (where, st))
        d.stop()

    # basic_auth_file alone (no token): only Basic is offered.
    d = DoorDaemon(scenario=TWO, args=["--listen", "0.0.0.0:0", "--basic-auth-file", users],
                   auth=ok_bob["Authorization"])
    st, h, _ = d.request("GET", "/health", headers={})
    check(st == 401 and www(h).startswith("Basic") and "Bearer" not in www(h), "basic only: %r" % www(h))
    # Reload: the file is re-read (carol in, bob out); a bad file keeps it.
    conf = write("door.conf", "basic_auth_file = %s\n" % users)
    d.stop()
    d = DoorDaemon(scenario=TWO, args=["--listen", "0.0.0.0:0", "--config", conf],
                   auth=ok_bob["Authorization"])
    write("users", "alice:%s\ncarol:%s\n" % (bcrypt_hash("wonderland"), sha512_crypt("c4rol")))
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: d.request("GET", "/health", headers={"Authorization": basic("carol", "c4rol")})[0] == 200,
             "carol after the reload", d)
    check(d.request("GET", "/health", headers=ok_bob)[0] == 401, "bob still in after the reload")
    write("users", "alice:%s\ndave:plaintext\n" % bcrypt_hash("wonderland"))
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "%s:2: user 'dave'" % users in d.log(), "the bad line named on reload", d)
    check(d.request("GET", "/health", headers={"Authorization": basic("carol", "c4rol")})[0] == 200,
          "a bad basic_auth_file dropped the running users")
    d.stop()

    # At start a bad line refuses to start, naming FILE:LINE.
    write("users", "alice:%s\n\nweb:$apr1$abc$0123456789abcdefghijkl\n" % sha512_crypt("x"))
    err = start_fails(["--basic-auth-file", users])
    check("%s:3: user 'web'" % users in err and "MD5" in err, "apr1 line: %r" % err)
    write("users", "alice:wonderland\n")
    err = start_fails(["--basic-auth-file", users])
    check("%s:1: user 'alice'" % users in err and "plaintext" in err, "plaintext line: %r" % err)
    err = start_fails(["--basic-auth-file", tmp("nope")])
    check("basic_auth_file %s: no such file" % tmp("nope") in err, "missing file: %r" % err)


def case_refuse():
    """Beyond loopback with neither credentials nor read_only: no start, and
    the message names both ways out."""
    err = start_fails(["--listen", "0.0.0.0:0"])
    for word in ("token", "basic_auth_file", "read_only", "0.0.0.0:0"):
        check(word in err, "refusal does not name %r: %r" % (word, err))
    # Each way out starts.
    tok = write("token2", "t\n")
    users = write("users2", "u:%s\n" % sha512_crypt("p"))
    for extra, auth in ((["--token-file", tok], "Bearer t"), (["--basic-auth-file", users], basic("u", "p")),
                        (["--read-only"], None)):
        d = DoorDaemon(scenario=TWO, args=["--listen", "0.0.0.0:0"] + extra, auth=auth)
        check(d.request("GET", "/health", headers={})[0] == (200 if auth is None else 401),
              "%s: /health without credentials" % extra)
        d.stop()


# ------------------------------------------------------------- read_only

MARK = "gwdoor-secret-arg-4242"


def case_readonly():
    # A child whose command line carries MARK, listed as a GPU process.
    # One process (no grandchild could outlive it holding the test's
    # output pipes), its output not inherited.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", MARK],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    with open(TWO) as f:
        text = f.read().replace(" 5004242 ", " %d " % child.pid)
    scn = write("ro.scn", text)
    wait_for(lambda: MARK in open("/proc/%d/cmdline" % child.pid).read().replace("\0", " "),
             "the child to exec")
    with open("/proc/%d/comm" % child.pid) as f:
        comm = f.read().strip()
    ledger_env = {"GPUWATCH_LEDGER": tmp("ledger.db")}
    note = "gpuwatch run -- python train.py --secret=" + MARK
    # Without read_only the command line and the note are served (so the
    # checks below can fail).
    d = DoorDaemon(scenario=scn, env=ledger_env)
    wait_for(lambda: MARK in d.get("/gpu/processes")[2].decode(), "cmdline in /gpu/processes", d)
    st, _, body = d.request("POST", "/api/v1/reservations",
                            body=json.dumps({"mem": "1MiB", "note": note, "lease_s": 3600}),
                            headers={"Content-Type": "application/json"})
    check(st == 201, "reservation %d %r" % (st, body))
    check(MARK in d.get("/api/v1/reservations")[2].decode(), "note not listed without read_only")
    d.stop()

    for listen in ([], ["--listen", "0.0.0.0:0"]):
        d = DoorDaemon(scenario=scn, env=ledger_env, args=listen + ["--read-only"])
        check("read-only" in d.log(), "start line does not say read-only")
        # Mutating routes: 403 with the reason, also with a body.
        for method, path, body in (("POST", "/api/v1/reload", None),
                                   ("POST", "/api/v1/reservations", json.dumps({"mem": "1MiB"})),
                                   ("DELETE", "/api/v1/reservations/1", None),
                                   ("POST", "/api/v1/reservations/1/renew", "{}")):
            st, _, b = d.request(method, path, body=body, headers={"Content-Type": "application/json"})
            check(st == 403, "%s %s read-only: %d" % (method, path, st))
            check(json.loads(b)["error"]["message"] == "read-only daemon: read_only = true",
                  "403 reason %r" % b)
        # Reads open (beyond loopback too, no credentials), no MARK anywhere.
        wait_for(lambda: d.json("/gpu/processes")["process_count"] == 2, "processes listed", d)
        procs = d.json("/gpu/processes")["processes"]
        check(all(p["cmdline"] is None for p in procs), "cmdline served read-only: %r" % procs)
        check(any(p["pid"] == child.pid and p["name"] == comm for p in procs),
              "the process itself is still listed: %r" % procs)
        res = d.json("/api/v1/reservations")
        check(len(res["reservations"]) == 1 and res["reservations"][0]["note"] is None,
              "note served read-only: %r" % res)
        for path in ("/", "/health", "/gpu/info", "/gpu/metrics", "/gpu/metrics/0", "/gpu/processes",
                     "/metrics", "/api/v1/events", "/api/v1/reservations", "/api/v1/reservations/1",
                     "/api/v1/history?gpu=0&metric=memory_used"):
            st, _, b = d.get(path)
            check(st == 200, "%s read-only: %d" % (path, st))
            check(MARK.encode() not in b, "%s carries the command line read-only" % path)
        # The SSE stream's first snapshot event neither.
        s = socket.create_connection(("127.0.0.1", d.port), timeout=DEADLINE)
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while b"event: snapshot" not in got or b"\n\n" not in got[got.index(b"event: snapshot"):]:
            chunk = s.recv(65536)
            check(chunk, "SSE stream closed early")
            got += chunk
        s.close()
        check(b"placement" in got and MARK.encode() not in got, "SSE snapshot carries the command line")
        d.stop()
    child.kill()
    child.wait()


# --------------------------------------------------------------- counter

def counts(d):
    st, _, body = d.get("/metrics", headers={})
    check(st == 200, "/metrics %d" % st)
    s, fams = parse_prom(body.decode())
    check(fams.get("gpuwatch_http_requests_total", ("",))[0] == "counter", "family type")
    return {(dict(ls)["route"], dict(ls)["code"]): v for (n, ls), v in s.items()
            if n == "gpuwatch_http_requests_total"}


def case_counter():
    tok = write("token3", TOKEN + "\n")
    d = DoorDaemon(scenario=TWO, args=["--token-file", tok, "--interval-ms", "100"])
    before = counts(d)
    seq = [("GET", "/health", {}, 200)] * 3 + [
        ("GET", "/no/such", {}, 404), ("GET", "/nope", {}, 404),
        ("POST", "/gpu/metrics", {}, 405),
        ("POST", "/api/v1/reload", {}, 401),
        ("POST", "/api/v1/reload", {"Authorization": "Bearer " + TOKEN}, 202),
        ("GET", "/gpu/metrics/0", {}, 200), ("GET", "/gpu/metrics/7", {}, 404),
        ("GET", "/api/v1/reservations/abc", {}, 400),
        ("HEAD", "/gpu/info", {}, 200),
    ]
    for method, path, h, want in seq:
        st, _, _ = d.request(method, path, headers=h)
        check(st == want, "%s %s: %d, want %d" % (method, path, st, want))
    want = {("/health", "200"): 3, ("other", "404"): 2, ("/gpu/metrics", "405"): 1,
            ("/api/v1/reload", "401"): 1, ("/api/v1/reload", "202"): 1,
            ("/gpu/metrics/{id}", "200"): 1, ("/gpu/metrics/{id}", "404"): 1,
            ("/api/v1/reservations/{id}", "400"): 1, ("/gpu/info", "200"): 1,
            }

    def delta():
        after = counts(d)
        keys = set(before) | set(after)
        dl = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
        return {k: v for k, v in dl.items() if v}
    # The page is rendered once per snapshot: wait for one rendered after
    # the sequence (counts only grow, so "every count reached" is that).
    got = wait_for(lambda: (lambda x: x if all(x.get(k, 0) >= v for k, v in want.items()) else None)(delta()),
                   "a /metrics page counting the whole sequence", d)
    scrapes = got.pop(("/metrics", "200"), 0)
    check(scrapes >= 1, "the scrapes themselves were not counted")
    check(got == want, "request counts by route/code: %r, want %r" % (got, want))
    d.stop()


# ------------------------------------------------------------ Prometheus

def run_prometheus(extra, queries, d):
    """Runs Prometheus with one scrape job on d (extra: the job's scheme,
    TLS and auth lines) and waits until every query has a sample with value
    1 (queries are boolean expressions)."""
    with Prometheus(Prometheus.job("127.0.0.1:%d" % d.port, extra), prefix="gw-door-prom-") as p:
        p.wait_true(queries, d)


def case_prometheus_tls():
    """A real Prometheus scrapes over TLS with a bearer token, beyond
    loopback (so /metrics itself needs the token)."""
    cert, key = make_cert("prom")
    tok = write("token4", TOKEN + "\n")
    d = DoorDaemon(scenario=TWO, cafile=cert, auth="Bearer " + TOKEN,
                   args=["--listen", "0.0.0.0:0", "--token-file", tok,
                         "--tls-cert-file", cert, "--tls-key-file", key, "--interval-ms", "200"])
    check(d.request("GET", "/metrics", headers={})[0] == 401, "/metrics open without the token")
    run_prometheus("    scheme: https\n"
                   "    tls_config:\n      ca_file: %s\n"
                   "    authorization:\n      type: Bearer\n      credentials_file: %s\n" % (cert, tok),
                   ['up{job="gpuwatch"}', 'count(gpuwatch_gpu_memory_used_bytes{job="gpuwatch"}) == bool 2'], d)
    # Prometheus asks for gzip (Accept-Encoding: gzip; this test's own
    # requests do not) and gets it, over TLS. The page counts as of its
    # rendering, and the current snapshot's cached page may have been
    # rendered for Prometheus's first scrape: wait for a later one.
    def gzip_scrapes(s):
        return sum(series(s, "gpuwatch_scrapes_total", format=f, encoding="gzip") or 0
                   for f in ("prometheus", "openmetrics"))

    def counted():
        st, _, body = d.get("/metrics")
        s, _ = parse_prom(body.decode())
        return s if gzip_scrapes(s) >= 1 else None
    s = wait_for(counted, "a page counting Prometheus's gzip scrapes", d)
    check((series(s, "gpuwatch_http_requests_total", route="/metrics", code="200") or 0) >=
          gzip_scrapes(s), "the scrapes were not counted as /metrics 200")
    check(series(s, "gpuwatch_http_requests_total", route="/metrics", code="401") == 1,
          "Prometheus was refused (or the test's own 401 not counted)")
    d.stop()


def case_prometheus_basic():
    """A real Prometheus scrapes with HTTP basic auth (bcrypt) beyond loopback."""
    users = write("users5", "prom:%s\n" % bcrypt_hash("scrape-pw"))
    d = DoorDaemon(scenario=TWO, auth=basic("prom", "scrape-pw"),
                   args=["--listen", "0.0.0.0:0", "--basic-auth-file", users, "--interval-ms", "200"])
    check(d.request("GET", "/metrics", headers={})[0] == 401, "/metrics open without credentials")
    run_prometheus("    basic_auth:\n      username: prom\n      password: scrape-pw\n",
                   ['up{job="gpuwatch"}', 'count(gpuwatch_gpu_memory_used_bytes{job="gpuwatch"}) == bool 2'], d)
    d.stop()


CASES = {
    "tls": case_tls, "tlsreload": case_tlsreload, "auth": case_auth, "refuse": case_refuse,
    "readonly": case_readonly, "counter": case_counter, "prometheus-tls": case_prometheus_tls,
    "prometheus-basic": case_prometheus_basic,
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print("usage: test_door.py {%s}" % ",".join(CASES), file=sys.stderr)
        sys.exit(2)
    try:
        CASES[sys.argv[1]]()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print("ok " + sys.argv[1])
