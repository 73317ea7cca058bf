#!/usr/bin/env python3
"""The web page (docs/web.md) in headless Chromium on the fake-NVML scenarios
(1, 2 and 8 GPUs) and on an AMD sysfs fixture: every GPU's values as the
scenario file states them (read here, never from gpuwatch), a chart drawn on
each GPU, the processes, no console error or CSP violation, the security
headers, a phone-width and a dark-mode rendering, and the keyboard path.
Screenshots land in BUILD/tests/web/artefacts.
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(SRC, "tests", "serve"))
sys.path.insert(0, os.path.join(SRC, "tests", "amd"))
import serve_util as su  # noqa: E402
from serve_util import check  # noqa: E402
import browser as br  # noqa: E402
import webcheck as wc  # noqa: E402

SCN = os.path.join(SRC, "tests", "nvml", "scenarios")


def expect_nvml(path):
    """Per GPU, what the page must show, from the scenario file."""
    _, gpus = su.parse_scenario(path)
    out = []
    for i, g in enumerate(gpus):
        used, total = su.num(g, "memory.used"), su.num(g, "memory.total")
        pw, lim = su.num(g, "power.usage"), su.num(g, "power.limit")
        pids = {pid for _, pid, _ in g["process"]}
        out.append({
            "index": i,
            "name": g.get("name"),
            "memory": wc.memory_text(used, total),
            "util": "GPU %s · memory %s" % (wc.pct(su.num(g, "util.gpu")),
                                            wc.pct(su.num(g, "util.memory"))),
            "temp": wc.temp_text(su.num(g, "temp"), su.num(g, "temp.slowdown")),
            "power": wc.power_text(None if pw is None else pw / 1000.0,
                                   None if lim is None else lim / 1000.0),
            "processes": len(pids),
        })
    return out


def check_page(b, d, want, name, base_checks=True):
    """Opens the page on daemon d and checks it against want (expect_*)."""
    url = "http://127.0.0.1:%d/" % d.port
    r = b.open(url)
    if base_checks:
        wc.check_headers(r, url)
    n = len(want)
    b.wait("document.querySelectorAll('#gpus .gpu').length === %d" % n, name + ": %d GPU cards" % n)
    b.wait("document.body.dataset.charts === '%d'" % n, name + ": %d charts drawn" % n)
    # the processes event follows the first snapshot
    b.wait("[...document.querySelectorAll('.procs caption')].every(c => c.textContent !== 'Processes')",
           name + ": process lists shown")
    # a line needs two points (the history, then the first live sample)
    b.wait("[...document.querySelectorAll('.chart')].every(c => Number(c.dataset.points) >= 2)",
           name + ": every chart has 2 points")
    cards = wc.cards(b)
    check(len(cards) == n, "%s: %d cards, want %d" % (name, len(cards), n))
    for w, c in zip(want, cards):
        what = "%s GPU %d" % (name, w["index"])
        title = "GPU %d · %s" % (w["index"], w["name"] or "")
        check(c["title"] == title if w["name"] else c["title"].startswith(title),
              "%s: title %r" % (what, c["title"]))
        check(c["state"] == "ok", "%s: state %r, want ok" % (what, c["state"]))
        for k in ("memory", "util", "temp", "power"):
            if k in w:
                check(c[k] == w[k], "%s: %s shows %r, want %r" % (what, k, c[k], w[k]))
        if w.get("temp_value") is not None:
            t = wc.fixed(w["temp_value"], 0) + " °C"
            check(c["temp"].startswith(t), "%s: temperature %r, want %s" % (what, c["temp"], t))
        if w["processes"] is not None:
            want_caption = "Processes (%d)" % w["processes"] if w["processes"] else "No processes"
            check(c["caption"] == want_caption,
                  "%s: %r, want %r" % (what, c["caption"], want_caption))
        check(c["ink"] > 50, "%s: the chart's canvas is blank (%d inked pixels)" % (what, c["ink"]))
    errs = b.errors()
    check(not errs, "%s: console errors: %s" % (name, errs))
    b.screenshot(name)


BROWSER_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                  "image/webp,*/*;q=0.8")


def http_checks():
    """The page's files over plain HTTP: negotiation of "/", ETag and 304,
    gzip, unknown files, and the event types the page listens to."""
    import gzip
    import json
    import re
    d = su.Daemon(scenario=os.path.join(SCN, "two.scn"))
    st, h, body = d.get("/")
    check(st == 200 and h["content-type"] == "application/json" and json.loads(body)["endpoints"],
          "/ without Accept: %d %r" % (st, h.get("content-type")))
    check("Accept" in h.get("vary", ""), "/ JSON: Vary %r" % h.get("vary"))
    st, h, page = d.get("/", headers={"Accept": BROWSER_ACCEPT})
    check(st == 200 and h["content-type"].startswith("text/html"), "/ for a browser: %r" % h)
    check("Accept" in h.get("vary", ""), "/ HTML: Vary %r" % h.get("vary"))
    st, h2, page2 = d.get("/ui/")
    check(st == 200 and page2 == page and h2["etag"] == h["etag"], "/ui/ is the page")
    for name in ("app.js", "app.css", "dygraph.min.js"):
        st, h, plain = d.get("/ui/" + name)
        check(st == 200 and h.get("etag", "").startswith('"'), "/ui/%s: %d %r" % (name, st, h))
        check(h.get("cache-control") == "no-cache", "/ui/%s: cache-control %r" % (name, h))
        check("content-security-policy" in h, "/ui/%s: no CSP" % name)
        st, h304, b304 = d.get("/ui/" + name, headers={"If-None-Match": h["etag"]})
        check(st == 304 and not b304 and h304.get("etag") == h["etag"],
              "/ui/%s revalidated: %d, %d bytes" % (name, st, len(b304)))
        st, _, _ = d.get("/ui/" + name, headers={"If-None-Match": '"other"'})
        check(st == 200, "/ui/%s with another ETag: %d" % (name, st))
        check(h304.get("vary") == h.get("vary"), "/ui/%s: 304 Vary %r" % (name, h304))
        st, hz, z = d.get("/ui/" + name, headers={"Accept-Encoding": "gzip"})
        check(st == 200 and hz.get("content-encoding") == "gzip" and gzip.decompress(z) == plain,
              "/ui/%s gzip: %r" % (name, hz))
        check(len(z) < len(plain), "/ui/%s: gzip is not smaller" % name)
        # two representations, two tags; each revalidates as itself
        check(hz["etag"] != h["etag"], "/ui/%s: gzip and identity share ETag %s" % (name, h["etag"]))
        st, _, _ = d.get("/ui/" + name, headers={"Accept-Encoding": "gzip",
                                                 "If-None-Match": hz["etag"]})
        check(st == 304, "/ui/%s gzip revalidated: %d" % (name, st))
        st, _, _ = d.get("/ui/" + name, headers={"If-None-Match": hz["etag"]})
        check(st == 200, "/ui/%s identity with the gzip tag: %d" % (name, st))
    for bad in ("/ui/nope.js", "/ui/..%2fapp.js", "/ui/app.js/"):
        st, h, _ = d.get(bad)
        check(st == 404, "%s: %d" % (bad, st))
    st, h, _ = d.get("/ui/app.js", headers={"Accept-Encoding": "identity;q=0, *;q=0"})
    check(st == 406, "/ui/app.js with no acceptable coding: %d" % st)
    # history answers are compressed too (a chart's hour is tens of KB)
    st, h, z = d.get("/api/v1/history?gpu=0&metric=memory_used", headers={"Accept-Encoding": "gzip"})
    check(st == 200 and h.get("content-encoding") == "gzip" and json.loads(gzip.decompress(z)),
          "history gzip: %d %r" % (st, h))
    # every event type the daemon counts is one the page listens to
    _, _, js = d.get("/ui/app.js")
    listened = set(re.findall(r'"([a-z_]+)"', re.search(rb"EVENT_TYPES = \[(.*?)\]", js, re.S)
                              .group(1).decode()))
    counted = set(d.json("/api/v1/events")["counts"])
    check(counted and counted == listened,
          "event types: the daemon counts %r, the page listens to %r" % (counted, listened))
    d.stop()


def main():
    http_checks()
    b = br.Browser()
    try:
        # 1, 2 and 8 GPUs
        for scn in ("one", "two", "eight"):
            path = os.path.join(SCN, scn + ".scn")
            d = su.Daemon(scenario=path)
            want = expect_nvml(path)
            check_page(b, d, want, "nvml-" + scn)
            if scn == "two":
                # GPU 1 has no power reading: N/A, and no meter drawn as 0
                cards = wc.cards(b)
                check(cards[1]["power"] == "N/A", "two: GPU 1 power %r" % cards[1]["power"])
                check(cards[1]["power_meter_hidden"], "two: GPU 1's unknown power has a meter")
            if scn == "eight":
                # phone width: one column, nothing wider than the screen
                b.open("http://127.0.0.1:%d/" % d.port, width=390, height=844)
                b.wait("document.body.dataset.charts === '8'", "eight at 390 px: charts")
                sw = b.eval("document.documentElement.scrollWidth")
                check(sw <= 391, "eight at 390 px: the page is %d px wide" % sw)
                b.screenshot("nvml-eight-phone")
                # dark mode: the colours change with the system's
                light = b.eval("getComputedStyle(document.documentElement)"
                               ".getPropertyValue('--bg').trim()")
                b.open("http://127.0.0.1:%d/" % d.port, dark=True)
                b.wait("document.body.dataset.charts === '8'", "eight dark: charts")
                dark = b.eval("getComputedStyle(document.documentElement)"
                              ".getPropertyValue('--bg').trim()")
                check(light != dark, "dark mode: background %r in both" % dark)
                check(not b.errors(), "eight dark: console errors %s" % b.errors())
                b.screenshot("nvml-eight-dark")
                # keyboard: Tab reaches the token field, then its button
                b.key("Tab")
                first = b.eval("document.activeElement && document.activeElement.id")
                b.key("Tab")
                second = b.eval("document.activeElement && document.activeElement.id")
                check(first == "token-input" and second == "token-set",
                      "keyboard: Tab focused %r then %r" % (first, second))
            d.stop()
        # MIG (docs/mig.md): a card per MIG device, saying whose part it is
        sys.path.insert(0, os.path.join(SRC, "tests", "nvml"))
        import test_mig as mig
        path = os.path.join(SCN, "mig_h100.scn")
        gpus = mig.scenario(path)
        migs = mig.expected_devices(gpus)
        d = su.Daemon(scenario=path)
        b.open("http://127.0.0.1:%d/" % d.port)
        n = len(gpus) + len(migs)
        b.wait("document.body.dataset.charts === '%d'" % n, "mig: %d charts" % n)
        cards = wc.cards(b)
        for m in migs:
            c = cards[m["index"]]
            title = "MIG %d · %s of GPU %d · GI %d" % (m["index"], m["profile"], m["parent"], m["gi"])
            check(c["title"] == title, "mig: card title %r, want %r" % (c["title"], title))
            want = wc.memory_text(m["used"], m["total"])
            check(c["memory"] == want, "mig: %s memory %r, want %r" % (m["uuid"], c["memory"], want))
        check(not b.errors(), "mig: console errors %s" % b.errors())
        b.screenshot("nvml-mig-h100")
        d.stop()
        # AMD (sysfs + fdinfo fixture)
        import test_amd_report as amd  # tests/amd: the fixture's own readers
        with tempfile.TemporaryDirectory() as tmp:
            root = amd.copy_fixture("rdna3", tmp)
            want = wc.expect_amd(amd, root)
            d = su.Daemon(args=["--sources", "amdgpu,host", "--sys-root", os.path.join(root, "sys"),
                                "--proc-root", os.path.join(root, "proc")], nvml=False)
            check_page(b, d, want, "amd-rdna3")
            d.stop()
    finally:
        b.close()
    print("ok")


if __name__ == "__main__":
    main()
