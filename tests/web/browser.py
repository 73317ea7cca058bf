"""Headless Chromium for the web page's tests, driven through driver.mjs.

  ensure()            -> (node_modules, chromium): puppeteer-core (pinned)
                         installed once under BUILD/tests/web/npm; exits 77
                         (meson: skipped) naming the reason when npm cannot
                         install it, and fails when Chromium is missing
                         (scripts/deps.sh test installs Debian's chromium).
  Browser()           one Chromium; .open(url, ...), .eval(js), .wait(js),
                      .click(sel), .type(sel, text), .screenshot(name),
                      .errors(), .requests(), .close()
  ARTEFACTS           where screenshots go (BUILD/tests/web/artefacts)
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(os.environ.get("GPUWATCH_BUILD_ROOT", "."))
PUPPETEER = "puppeteer-core@25.16.0"
ARTEFACTS = os.path.join(BUILD, "tests", "web", "artefacts")
DEADLINE_MS = 120000  # only "never" fails a test (tests/serve/serve_util.py)


def ensure():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("FAIL: Chromium is not installed (scripts/deps.sh test installs Debian's chromium)")
        sys.exit(1)
    if not shutil.which("node") or not shutil.which("npm"):
        print("SKIP: node/npm not installed (needed for puppeteer-core)")
        sys.exit(77)
    work = os.path.join(BUILD, "tests", "web", "npm")
    nm = os.path.join(work, "node_modules")
    if not os.path.isfile(os.path.join(nm, "puppeteer-core", "package.json")):
        os.makedirs(work, exist_ok=True)
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", work, PUPPETEER],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            print("SKIP: npm could not install %s: %s" % (PUPPETEER, r.stderr[-500:]))
            sys.exit(77)
    os.makedirs(ARTEFACTS, exist_ok=True)
    return nm, chromium


class Browser:
    def __init__(self):
        nm, chromium = ensure()
        self.p = subprocess.Popen(["node", os.path.join(HERE, "driver.mjs"), nm, chromium],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def cmd(self, **c):
        self.p.stdin.write(json.dumps(c) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("the browser driver died (command %r)" % c)
        out = json.loads(line)
        if "error" in out and c["op"] != "wait":
            raise RuntimeError("browser: %s" % out["error"])
        return out

    def open(self, url, width=1280, height=720, dark=False, headers=None):
        return self.cmd(op="open", url=url, width=width, height=height, dark=dark,
                        headers=headers or {})

    def eval(self, js):
        return self.cmd(op="eval", js=js).get("value")

    def wait(self, js, what, timeout_ms=DEADLINE_MS):
        """Waits until js is truthy; fails the test naming `what` otherwise."""
        out = self.cmd(op="wait", js=js, timeout_ms=timeout_ms)
        if "error" in out:
            print("FAIL: %s: %s" % (what, out["error"]), file=sys.stderr)
            print("page text:\n" + (self.eval("document.body.innerText") or "")[:3000],
                  file=sys.stderr)
            sys.exit(1)
        return out.get("value")

    def click(self, selector):
        self.cmd(op="click", selector=selector)

    def type(self, selector, text):
        self.cmd(op="type", selector=selector, text=text)

    def key(self, key):
        self.cmd(op="key", key=key)

    def screenshot(self, name):
        path = os.path.join(ARTEFACTS, name + ".png")
        self.cmd(op="screenshot", path=path)
        return path

    def errors(self):
        return self.cmd(op="log")["errors"]

    def requests(self):
        return self.cmd(op="log")["requests"]

    def close(self):
        try:
            self.cmd(op="close")
        except (RuntimeError, BrokenPipeError, json.JSONDecodeError):
            pass
        self.p.wait(30)
