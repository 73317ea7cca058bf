#!/usr/bin/env python3
"""Scraping at scale (issue 12): content negotiation on the cached bodies
(gzip / identity from Accept-Encoding, OpenMetrics from Accept), one
rendering per snapshot shared by every request, per-process series opt-in
(metrics_processes), clock-event reasons as 0/1 series, scrape counters by
format and coding, and the placement ledger's gauges. Real daemon over
loopback HTTP against the fake NVML; expected values come from the
scenario files, never from gpuwatch.

    test_scrape.py CASE        (cases: see CASES at the bottom)
"""
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import (DEADLINE, HERE, Daemon, Prometheus, check, close, promtool,  # noqa: E402
                        num, parse_prom, parse_scenario, series, wait_for)

TWO = os.path.join(HERE, "scenarios", "two.scn")
PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# Prometheus 2.42's own scrape Accept header.
PROM_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
               "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
REASONS = ["gpu_idle", "applications_clocks", "sw_power_cap", "hw_slowdown", "sync_boost",
           "sw_thermal", "hw_thermal", "hw_power_brake"]  # NVML bit order, 1 << i


def fetch(d, path, headers=None):
    """GET with exactly `headers` (http.client adds no Accept-Encoding of
    its own here). Returns (status, {lower-case header: value}, raw body)."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
    try:
        c.putrequest("GET", path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def frozen_daemon(args=(), scenario=TWO):
    """A daemon whose snapshot does not change for the test (interval 1 h):
    every body of it is rendered once. Returns (daemon, tmpdir)."""
    tmp = tempfile.mkdtemp()
    conf = os.path.join(tmp, "c.conf")
    with open(conf, "w") as f:
        f.write("interval_ms = 3600000\ndeadline_ms = 3600000\n")
    return Daemon(scenario=scenario, args=["--config", conf] + list(args)), tmp


def vary_tokens(h):
    return {t.strip().lower() for t in h.get("vary", "").split(",") if t.strip()}


def parse_openmetrics(text):
    """Checks the OpenMetrics 1.0.0 rules the rewrite owns and returns
    (samples, {family: type}): '# EOF' once, last; every sample after its
    family's TYPE and inside its block; a counter family named without
    _total and its samples named family_total; an unknown/gauge family's
    samples named exactly the family; no UNIT lines."""
    check(text.endswith("# EOF\n"), "OpenMetrics text does not end with '# EOF'")
    check(text.count("# EOF") == 1, "'# EOF' more than once")
    body = text[: -len("# EOF\n")]
    types, current, samples = {}, None, {}
    prom_like = []
    for line in body.split("\n")[:-1]:
        check(not line.startswith("# UNIT"), "UNIT line %r" % line)
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            check(typ in ("counter", "gauge", "unknown"), "type %r" % line)
            check(name not in types, "family %s twice" % name)
            if typ == "counter":
                check(not name.endswith("_total"), "counter family %s keeps _total" % name)
            types[name] = typ
            current = name
            continue
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            check(current is None or name != current, "HELP after TYPE for %s" % name)
            continue
        check(not line.startswith("#"), "comment %r" % line)
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        want = current + "_total" if types.get(current) == "counter" else current
        check(name == want, "sample %s in family %s (%s)" % (name, current, types.get(current)))
        prom_like.append(line)
    for ln in prom_like:
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$", ln)
        check(m, "bad sample line %r" % ln)
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples, types


def prom_samples_raw(text):
    out = {}
    for ln in text.split("\n"):
        if ln and not ln.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$", ln)
            check(m, "bad sample line %r" % ln)
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


# ------------------------------------------------------------------ cases

def case_negotiate():
    """The Accept-Encoding / Accept matrix on /metrics and the JSON bodies:
    the coding chosen, Content-Encoding only on gzip, Vary on all, gzip
    decompressing to exactly the identity body, 406 when nothing is
    acceptable, OpenMetrics when Accept prefers it."""
    d, tmp = frozen_daemon(["--metrics-compat", "dcgm,nvidia_smi", "--metrics-processes"])
    matrix = [  # (Accept-Encoding or None for no header, expected coding)
        (None, "identity"), ("", "identity"), ("gzip", "gzip"), ("x-gzip", "gzip"),
        ("gzip, deflate, br", "gzip"), ("br", "identity"), ("gzip;q=0", "identity"),
        ("gzip;q=0.5", "gzip"), ("gzip;q=0.5, identity;q=0.8", "identity"),
        ("identity;q=0, gzip", "gzip"), ("*", "gzip"), ("*;q=0, identity", "identity"),
        ("gzip;q=0, *", "identity"), ("gzip;q=7, identity", "identity"),
        ("\x7f;;==,,gzip", "gzip"), ("identity;q=0", 406), ("*;q=0", 406),
        ("gzip;q=0, identity;q=0", 406),
    ]
    for path in ("/metrics", "/health", "/gpu/info", "/gpu/metrics", "/gpu/processes"):
        st, h, ident = fetch(d, path)
        check(st == 200, "%s: %d" % (path, st))
        check("content-encoding" not in h, "%s identity has Content-Encoding" % path)
        for ae, want in matrix:
            hdr = {} if ae is None else {"Accept-Encoding": ae}
            st, h, body = fetch(d, path, hdr)
            if want == 406:
                check(st == 406, "%s Accept-Encoding %r: status %d, want 406" % (path, ae, st))
                msg = json.loads(body)["error"]["message"]
                check("gzip" in msg and "identity" in msg, "406 message %r" % msg)
                continue
            check(st == 200, "%s Accept-Encoding %r: status %d" % (path, ae, st))
            check("accept-encoding" in vary_tokens(h), "%s %r: Vary %r" % (path, ae, h.get("vary")))
            if path == "/metrics":
                check("accept" in vary_tokens(h), "/metrics Vary lacks Accept: %r" % h.get("vary"))
            if want == "gzip":
                check(h.get("content-encoding") == "gzip", "%s %r: Content-Encoding %r" %
                      (path, ae, h.get("content-encoding")))
                check(int(h["content-length"]) == len(body), "gzip Content-Length")
                plain = gzip.decompress(body)
                check(plain == ident, "%s %r: gunzip differs from the identity body" % (path, ae))
                check(len(body) < len(ident), "%s: gzip not smaller (%d >= %d)" %
                      (path, len(body), len(ident)))
            else:
                check("content-encoding" not in h, "%s %r: Content-Encoding %r" %
                      (path, ae, h.get("content-encoding")))
                check(body == ident, "%s %r: identity body differs" % (path, ae))
    # Formats.
    st, h, prom = fetch(d, "/metrics")
    check(h.get("content-type") == PROM_TYPE, "default type %r" % h.get("content-type"))
    for accept, om in ((None, False), ("*/*", False), ("application/json", False),
                       ("text/plain;version=0.0.4", False), (PROM_ACCEPT, True),
                       ("application/openmetrics-text", True),
                       ("text/plain;q=0.9, application/openmetrics-text;q=0.5", False),
                       ("application/openmetrics-text;version=2.0.0", False),
                       ("application/openmetrics-text;q=0", False), (";;garbage,,\"", False)):
        for ae in (None, "gzip"):
            hdr = {}
            if accept is not None:
                hdr["Accept"] = accept
            if ae:
                hdr["Accept-Encoding"] = ae
            st, h, body = fetch(d, "/metrics", hdr)
            check(st == 200, "Accept %r: %d" % (accept, st))
            if ae:
                check(h.get("content-encoding") == "gzip", "Accept %r gzip: no Content-Encoding" % accept)
                body = gzip.decompress(body)
            check(h.get("content-type") == (OM_TYPE if om else PROM_TYPE),
                  "Accept %r: Content-Type %r" % (accept, h.get("content-type")))
            if om:
                samples, types = parse_openmetrics(body.decode())
                # exactly the Prometheus page's samples
                check(samples == prom_samples_raw(prom.decode()),
                      "OpenMetrics samples differ from the Prometheus page's")
                check(types.get("gpuwatch_gpu_energy_joules") == "counter", "energy family")
                check(types.get("DCGM_FI_DEV_PCIE_REPLAY_COUNTER") == "unknown",
                      "dcgm counter without _total: %r" % types.get("DCGM_FI_DEV_PCIE_REPLAY_COUNTER"))
                check(types.get("gpuwatch_gpu_info") == "gauge", "info gauge")
            else:
                check(body == prom, "Accept %r: not the Prometheus page" % accept)
    # HEAD negotiates the same way (headers only).
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
    c.request("HEAD", "/metrics", headers={"Accept-Encoding": "gzip"})
    r = c.getresponse()
    r.read()
    check(r.status == 200 and r.getheader("Content-Encoding") == "gzip", "HEAD gzip")
    c.close()
    d.stop()
    shutil.rmtree(tmp)


def case_shared():
    """One rendering per snapshot: repeated scrapes in every representation
    return the same bytes although the scrape counters move on (a second
    rendering would show them), and the counters count by format/coding."""
    d, tmp = frozen_daemon()
    reps = {"prom/identity": {}, "prom/gzip": {"Accept-Encoding": "gzip"},
            "om/identity": {"Accept": PROM_ACCEPT},
            "om/gzip": {"Accept": PROM_ACCEPT, "Accept-Encoding": "gzip"}}
    first = {}
    for _ in range(3):
        for name, hdr in reps.items():
            st, _, body = fetch(d, "/metrics", hdr)
            check(st == 200, name)
            if name in first:
                check(body == first[name], "%s: two scrapes of one snapshot differ" % name)
            first[name] = body
    for path in ("/health", "/gpu/metrics"):
        a = fetch(d, path, {"Accept-Encoding": "gzip"})[2]
        b = fetch(d, path, {"Accept-Encoding": "gzip"})[2]
        check(a == b, "%s gzip bodies differ within a snapshot" % path)
    check(gzip.decompress(first["prom/gzip"]) == first["prom/identity"], "gzip of the shared text")
    check(gzip.decompress(first["om/gzip"]) == first["om/identity"], "om gzip of the shared text")
    # the counters, read in a new snapshot: 3 of each so far (counted once answered)
    before = first["prom/identity"]
    with open(os.path.join(tmp, "c.conf"), "w") as f:
        f.write("interval_ms = 100\n")
    d.proc.send_signal(signal.SIGHUP)
    text = wait_for(lambda: (lambda b: b if b != before else None)(fetch(d, "/metrics")[2]),
                    "a new snapshot", d).decode()
    s, _ = parse_prom(text)
    for fmt, enc, n in (("prometheus", "identity", 3), ("prometheus", "gzip", 3),
                        ("openmetrics", "identity", 3), ("openmetrics", "gzip", 3)):
        got = series(s, "gpuwatch_scrapes_total", format=fmt, encoding=enc)
        check(got is not None and got >= n, "scrapes %s/%s = %r, want >= %d" % (fmt, enc, got, n))
    d.stop()
    shutil.rmtree(tmp)


def case_processes():
    """metrics_processes: per-process series off by default, on with the
    switch or the key, and switched by a live reload; the per-GPU process
    count is always there."""
    _, gpus = parse_scenario(TWO)
    procs = [(i, pid, int(mem)) for i, g in enumerate(gpus) for _, pid, mem in g["process"]]
    check(procs, "scenario has processes")

    def page(d):
        st, _, body = fetch(d, "/metrics")
        check(st == 200, "/metrics %d" % st)
        return parse_prom(body.decode())[0]

    def has_pid(s):
        return any(dict(ls).get("pid") for (_, ls) in s)

    def counts_ok(s):
        for i, g in enumerate(gpus):
            check(series(s, "gpuwatch_gpu_processes", gpu=i) == len(g["process"]),
                  "gpuwatch_gpu_processes gpu %d" % i)

    tmp = tempfile.mkdtemp()
    conf = os.path.join(tmp, "c.conf")
    with open(conf, "w") as f:
        f.write("interval_ms = 100\n")
    d = Daemon(scenario=TWO, args=["--config", conf])
    s = page(d)
    check(not has_pid(s), "a pid label with metrics_processes off")
    check(series(s, "gpuwatch_gpu_process_memory_bytes", gpu=0) is None, "process family off")
    counts_ok(s)
    check(len(d.json("/gpu/processes")["processes"]) == len(procs), "/gpu/processes still lists")
    # live: on
    with open(conf, "w") as f:
        f.write("interval_ms = 100\nmetrics_processes = true\n")
    d.proc.send_signal(signal.SIGHUP)
    s = wait_for(lambda: (lambda x: x if has_pid(x) else None)(page(d)), "pid series after reload", d)
    for i, pid, mem in procs:
        check(series(s, "gpuwatch_gpu_process_memory_bytes", gpu=i, pid=pid) == mem, "pid %d" % pid)
    counts_ok(s)
    # live: off again
    with open(conf, "w") as f:
        f.write("interval_ms = 100\nmetrics_processes = false\n")
    d.proc.send_signal(signal.SIGHUP)
    s = wait_for(lambda: (lambda x: x if not has_pid(x) else None)(page(d)), "no pid after reload", d)
    counts_ok(s)
    d.stop()
    # the switch and the key
    for args in (["--metrics-processes"], ["--set", "metrics_processes=true"]):
        d = Daemon(scenario=TWO, args=args)
        s = page(d)
        check(has_pid(s), "%r: no pid series" % args)
        counts_ok(s)
        d.stop()
    # who owns a process (its cgroup) as labels of its series: a pod named
    # by the kubelet's log folder, and a systemd service
    i0, pid0, mem0 = procs[0]
    i1, pid1, mem1 = procs[-1]
    uid = "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
    proc = os.path.join(tmp, "proc")
    cgroups = {pid0: "/kubepods.slice/kubepods-pod%s.slice/crio-%s.scope" % (uid.replace("-", "_"),
                                                                            "ab" * 32),
               pid1: "/system.slice/vllm.service"}
    for pid, cg in cgroups.items():
        d = os.path.join(proc, str(pid))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "stat"), "w") as f:
            f.write("%d (python3) S %s 4242 %s\n" % (pid, " ".join(["0"] * 18), " ".join(["0"] * 30)))
        for name, text in (("comm", "python3\n"), ("status", "Name:\tpython3\nUid:\t0\t0\t0\t0\n"),
                           ("cmdline", "python3\0serve.py\0"), ("cgroup", "0::%s\n" % cg)):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
    pods = os.path.join(tmp, "pods")
    os.makedirs(os.path.join(pods, "ml-team_trainer-0_" + uid))
    d = Daemon(scenario=TWO, args=["--metrics-processes", "--proc-root", proc],
               env={"GPUWATCH_PODS_DIR": pods})
    s = page(d)
    check(series(s, "gpuwatch_gpu_process_memory_bytes", gpu=i0, pid=pid0, owner="kubernetes",
                 pod="trainer-0", namespace="ml-team", pod_uid=uid, container_id="ab" * 32) == mem0,
          "pod labels of pid %d" % pid0)
    check(series(s, "gpuwatch_gpu_process_memory_bytes", gpu=i1, pid=pid1, owner="systemd",
                 unit="vllm.service") == mem1, "unit label of pid %d" % pid1)
    st, _, body = fetch(d, "/metrics")
    rc, out = promtool(body.decode())
    check(rc == 0, "promtool with owner labels: %s" % out)
    d.stop()
    e = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    p = subprocess.run([os.environ.get("GPUWATCH_BIN", "gpuwatch"), "serve", "--config", "/dev/null",
                        "--metrics-processes", "--print-config"], capture_output=True, text=True,
                       timeout=DEADLINE, env=e)
    check(p.returncode == 0 and "metrics_processes = true" in p.stdout, "print-config %r" % p.stdout)
    shutil.rmtree(tmp)


def clock_scenario(masks):
    """TWO with `clock_events MASK` for each GPU (None: not served)."""
    with open(TWO) as f:
        lines = f.read().split("\n")
    out, gpu = [], -1
    for ln in lines:
        out.append(ln)
        if ln.strip() == "gpu":
            gpu += 1
            if masks[gpu] is not None:
                out.append("clock_events 0x%x" % masks[gpu])
    fd, path = tempfile.mkstemp(suffix=".scn")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(out))
    return path


def case_clockevents():
    """gpuwatch_gpu_clock_event_active per reason bit, read from a scenario
    with known masks; absent for a GPU without the mask; the JSON agrees;
    DCGM_FI_DEV_CLOCK_THROTTLE_REASONS is the mask with metrics_compat=dcgm."""
    masks = [0x24, 0x89]  # sw_power_cap+sw_thermal; gpu_idle+hw_slowdown+hw_power_brake
    scn = clock_scenario(masks)
    _, gpus = parse_scenario(scn)
    d = Daemon(scenario=scn, args=["--metrics-compat", "dcgm"])
    text = fetch(d, "/metrics")[2].decode()
    s, fams = parse_prom(text)
    check(fams["gpuwatch_gpu_clock_event_active"][0] == "gauge", "clock event type")
    for i, mask in enumerate(masks):
        for bit, reason in enumerate(REASONS):
            got = series(s, "gpuwatch_gpu_clock_event_active", gpu=i, uuid=gpus[i]["uuid"],
                         reason=reason)
            check(got == (1 if mask >> bit & 1 else 0),
                  "gpu %d reason %s = %r (mask 0x%x)" % (i, reason, got, mask))
        check(series(s, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", gpu=i, UUID=gpus[i]["uuid"]) == mask,
              "dcgm throttle reasons gpu %d" % i)
        j = d.json("/gpu/metrics/%d" % i)["gpu"]["clock_event_reasons"]
        check(j["mask"] == mask and j["active"] == [r for b, r in enumerate(REASONS) if mask >> b & 1],
              "JSON clock events gpu %d: %r" % (i, j))
    d.stop()
    os.unlink(scn)
    # GPU 1 without a mask: no series for it, GPU 0's still there.
    scn = clock_scenario([0x4, None])
    d = Daemon(scenario=scn)
    s, _ = parse_prom(fetch(d, "/metrics")[2].decode())
    check(series(s, "gpuwatch_gpu_clock_event_active", gpu=1, reason="gpu_idle") is None,
          "clock events for a GPU without the mask")
    check(series(s, "gpuwatch_gpu_clock_event_active", gpu=0, reason="sw_power_cap") == 1, "gpu 0")
    d.stop()
    os.unlink(scn)


def case_promtool():
    """promtool check metrics on every combination: processes on/off, compat
    none / dcgm,nvidia_smi, identity / gzip (decompressed), clock events
    present; a placement ledger in all of them."""
    scn = clock_scenario([0x24, 0x1])
    for procs in (False, True):
        for compat in ("none", "dcgm,nvidia_smi"):
            args = ["--metrics-compat", compat] + (["--metrics-processes"] if procs else [])
            d = Daemon(scenario=scn, args=args)
            for ae in (None, "gzip"):
                st, h, body = fetch(d, "/metrics", {"Accept-Encoding": ae} if ae else {})
                check(st == 200, "status %d" % st)
                text = (gzip.decompress(body) if ae else body).decode()
                parse_prom(text)
                rc, out = promtool(text)
                what = "promtool processes=%s compat=%s coding=%s" % (procs, compat, ae or "identity")
                if compat == "none":
                    check(rc == 0 and not out.strip(), "%s (rc %d):\n%s" % (what, rc, out))
                else:  # dcgm-exporter's own names lint (rc 3) but must parse
                    check(rc in (0, 3), "%s does not parse (rc %d):\n%s" % (what, rc, out))
                    lint = [ln for ln in out.split("\n") if ln.strip() and not ln.startswith("DCGM_")
                            and not ln.startswith("nvidia_smi_")]
                    check(not lint, "%s: lint beyond the compat families:\n%s" % (what, out))
            d.stop()
    os.unlink(scn)


def case_openmetrics():
    """A real Prometheus (2.42: its default Accept prefers OpenMetrics 1.0.0,
    and it sends Accept-Encoding: gzip) scrapes the daemon with every family
    on: the scrapes arrive as OpenMetrics + gzip, every sample of the page is
    ingested (none dropped), counters are stored under their _total names,
    the compat counters typed unknown under their own names."""
    _, gpus = parse_scenario(TWO)
    scn = clock_scenario([0x24, 0x1])
    d = Daemon(scenario=scn, args=["--interval-ms", "200", "--metrics-compat", "dcgm,nvidia_smi",
                                   "--metrics-processes"])
    prom = Prometheus(Prometheus.job("127.0.0.1:%d" % d.port), prefix="gw-scrape-prom-")
    query, log = prom.query, prom.log
    try:
        def stored():
            try:
                up = query('up{job="gpuwatch"}')
                om = query('gpuwatch_scrapes_total{format="openmetrics",encoding="gzip"}')
                energy = query("gpuwatch_gpu_energy_joules_total")
            except OSError:
                return None
            if up and up[0]["value"][1] == "1" and om and float(om[0]["value"][1]) >= 1 and energy:
                return energy
            return None
        energy = wait_for(stored, "Prometheus to store an OpenMetrics+gzip scrape", d)
        check(close(float(energy[0]["value"][1]), num(gpus[0], "energy") / 1000.0),
              "stored energy %r" % energy)
        dcgm = query('DCGM_FI_DEV_PCIE_REPLAY_COUNTER{gpu="0"}')
        check(dcgm and float(dcgm[0]["value"][1]) == num(gpus[0], "pcie.replay"),
              "dcgm counter kept its name: %r" % dcgm)
        check(not query("DCGM_FI_DEV_PCIE_REPLAY_COUNTER_total"), "a _total added to a compat name")
        ce = query('gpuwatch_gpu_clock_event_active{gpu="0",reason="sw_thermal"}')
        check(ce and ce[0]["value"][1] == "1", "clock event stored %r" % ce)
        pm = query("gpuwatch_gpu_process_memory_bytes")
        check(len(pm) == sum(len(g["process"]) for g in gpus), "process series stored %r" % pm)
        # Every sample of our page was ingested. The page's sample count is
        # the same in every snapshot of this scenario but for
        # gpuwatch_http_requests_total, whose non-zero (route, code) cells
        # grow as requests arrive: those are compared as Prometheus stored
        # them in its latest scrape (one expression, one evaluation time).
        st, _, body = fetch(d, "/metrics", {"Accept": PROM_ACCEPT})
        page = parse_openmetrics(body.decode())[0]
        n = sum(1 for k in page if k[0] != "gpuwatch_http_requests_total")
        got = query('scrape_samples_scraped{job="gpuwatch"} - on() '
                    'count(gpuwatch_http_requests_total{job="gpuwatch"})')
        check(got and float(got[0]["value"][1]) == n,
              "scraped %r samples beside the request counter, page has %d" % (got, n))
        bad = query('scrape_samples_scraped{job="gpuwatch"} - '
                    'scrape_samples_post_metric_relabeling{job="gpuwatch"}')
        check(all(float(r["value"][1]) == 0 for r in bad), "samples dropped %r" % bad)
        errs = [ln for ln in log if "append failed" in ln or "parse" in ln.lower() and "error" in ln]
        check(not errs, "Prometheus complained:\n" + "".join(errs[:5]))
    finally:
        prom.stop()
        d.stop()
        os.unlink(scn)


def case_reservations():
    """The placement gauges follow the ledger: 0 before, the reservation's
    count and bytes on its GPU right after POST (the cached page is not
    served once a reservation changed), 0 after DELETE; without a ledger
    the families are absent."""
    _, gpus = parse_scenario(TWO)
    d, tmp = frozen_daemon()

    def gauges():
        for ae in (None, "gzip"):  # every representation renders its own then
            st, _, body = fetch(d, "/metrics", {"Accept-Encoding": ae} if ae else {})
            check(st == 200, "/metrics %d" % st)
            text = (gzip.decompress(body) if ae else body).decode()
            s, _ = parse_prom(text)
            out = [(series(s, "gpuwatch_placement_reservations", gpu=i, uuid=g["uuid"]),
                    series(s, "gpuwatch_gpu_placement_reserved_bytes", gpu=i, uuid=g["uuid"]))
                   for i, g in enumerate(gpus)]
            if ae is None:
                first = out
            check(out == first, "gzip page disagrees: %r vs %r" % (out, first))
        return first
    check(gauges() == [(0, 0), (0, 0)], "before: %r" % gauges())
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
    c.request("POST", "/api/v1/reservations", body=json.dumps({"mem": "1GiB", "devices": [1],
                                                              "owner": "scrape-test"}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    res = json.loads(r.read())
    c.close()
    check(r.status == 201, "reserve: %d %r" % (r.status, res))
    rid = res["reservation"]["id"]
    want = [(0, 0), (1, 1 << 30)]
    check(res["reservation"]["devices"] == [{"uuid": gpus[1]["uuid"], "bytes": 1 << 30}], "placed %r" % res)
    check(gauges() == want, "after reserve: %r" % gauges())
    # OpenMetrics too
    st, _, body = fetch(d, "/metrics", {"Accept": PROM_ACCEPT})
    s, _ = parse_openmetrics(body.decode())
    key = ("gpuwatch_gpu_placement_reserved_bytes", '{gpu="1",uuid="%s"}' % gpus[1]["uuid"])
    check(s.get(key) == 1 << 30, "OpenMetrics reserved bytes %r" % s.get(key))
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
    c.request("DELETE", "/api/v1/reservations/%d" % rid)
    r = c.getresponse()
    r.read()
    c.close()
    check(r.status == 200, "delete %d" % r.status)
    check(gauges() == [(0, 0), (0, 0)], "after delete: %r" % gauges())
    d.stop()
    shutil.rmtree(tmp)
    # No ledger: placement unavailable, the families absent.
    d = Daemon(scenario=TWO, env={"GPUWATCH_LEDGER": "/proc/nonexistent/ledger.db"})
    text = fetch(d, "/metrics")[2].decode()
    check("gpuwatch_placement_reservations" not in text, "placement gauges without a ledger")
    d.stop()


def case_concurrent():
    """16 keep-alive clients scrape every representation at once while
    snapshots are published every 50 ms: each representation is made by
    whichever request comes first, under the publication's lock; every
    answer is a whole, valid page (run under TSan by scripts/test.sh)."""
    d = Daemon(scenario=TWO, args=["--interval-ms", "50"])
    reps = [({}, False, False), ({"Accept-Encoding": "gzip"}, True, False),
            ({"Accept": PROM_ACCEPT}, False, True),
            ({"Accept": PROM_ACCEPT, "Accept-Encoding": "gzip"}, True, True)]
    errors = []

    def client(k):
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
        try:
            for i in range(60):
                hdr, gz, om = reps[(k + i) % len(reps)]
                path = "/metrics" if i % 3 else "/health"
                c.putrequest("GET", path, skip_accept_encoding=True)
                for key, v in hdr.items():
                    c.putheader(key, v)
                c.endheaders()
                r = c.getresponse()
                body = r.read()
                if r.status != 200:
                    errors.append("%s %r: %d" % (path, hdr, r.status))
                    return
                if gz:
                    body = gzip.decompress(body)
                text = body.decode()
                if path == "/health":
                    json.loads(text)
                elif om and not text.endswith("# EOF\n"):
                    errors.append("OpenMetrics page without # EOF")
                elif not om and (not text.endswith("\n") or "# EOF" in text):
                    errors.append("Prometheus page malformed")
        except Exception as e:  # noqa: BLE001 - any failure of a client fails the case
            errors.append(repr(e))
        finally:
            c.close()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    check(not errors, "concurrent scrapes: %s" % errors[:5])
    d.stop()


CASES = {
    "negotiate": case_negotiate, "shared": case_shared, "processes": case_processes,
    "clockevents": case_clockevents, "promtool": case_promtool, "openmetrics": case_openmetrics,
    "reservations": case_reservations, "concurrent": case_concurrent,
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print("usage: test_scrape.py {%s}" % ",".join(CASES), file=sys.stderr)
        sys.exit(2)
    CASES[sys.argv[1]]()
    print("ok " + sys.argv[1])
