#!/usr/bin/env python3
"""Tests of contrib/: the Prometheus alerting rules and the Grafana dashboard.

    test_contrib.py CASE        (cases: see CASES at the bottom)

rules       `promtool check rules`; `promtool test rules` on
            gpuwatch-rules.test.yml; that test file makes every alert fire
            and clear (an evaluation without the alert before and after one
            with it), and removing any one alert from the rules makes it fail;
            every alert has a severity label and summary/description
            annotations and is described in docs/grafana-and-alerts.md; every
            metric the rules or their test series name is one gpuwatch renders.
dashboard   the Grafana JSON's structure: unique panel ids, no overlapping
            panels, the datasource a `${datasource}` variable everywhere, the
            job/instance/gpu variables, every panel with targets, every
            selector filtered by the variables, every metric name known.
prometheus  a real gpuwatch daemon (fake NVML: 3 GPUs, GPU 1 nearly full and
            over its slowdown temperature, GPU 2 lost) scraped by a real
            Prometheus on loopback: every dashboard expression and variable
            query, with the variables replaced by concrete values, goes through
            `promtool query instant` (a parse error fails); every expression
            whose metrics all appear in the daemon's source (src/http/*.c, read
            now, so metrics added later are checked once they exist) must
            return data, and those must cover the core panels; the alert
            expressions find exactly the GPUs the scenario makes alert.

Python stdlib only (no YAML module): the rules and their tests are read with
the few patterns their own layout uses, and the YAML itself is checked by
promtool.
"""
import glob
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("GPUWATCH_SOURCE_ROOT",
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(SRC, "tests", "serve"))
from serve_util import DEADLINE, Daemon, Prometheus, check, fail  # noqa: E402

RULES = os.path.join(SRC, "contrib", "prometheus", "gpuwatch-rules.yml")
RULES_TEST = os.path.join(SRC, "tests", "contrib", "gpuwatch-rules.test.yml")
DASHBOARD = os.path.join(SRC, "contrib", "grafana", "gpuwatch.json")
DOC = os.path.join(SRC, "docs", "grafana-and-alerts.md")
GEN_SCENARIO = os.path.join(SRC, "tests", "nvml", "gen_scenario.py")

# Series Prometheus itself adds to every scrape.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling", "scrape_series_added"}
# Metrics issue 12 adds to the daemon (docs of that decisions). A name
# here only passes the spelling check; whether it must return data is decided
# from the source (source_metrics), so once the daemon renders it, the
# dashboard's panels on it are checked for data too.
ANNOUNCED = {"gpuwatch_placement_reservations", "gpuwatch_gpu_placement_reserved_bytes",
             "gpuwatch_gpu_clock_event_active"}
# The panels an operator opens the dashboard for: these metrics must be among
# the ones whose expressions are required to return data.
CORE = {"gpuwatch_gpu_memory_used_bytes", "gpuwatch_gpu_memory_total_bytes",
        "gpuwatch_gpu_utilization_ratio", "gpuwatch_gpu_temperature_celsius",
        "gpuwatch_gpu_slowdown_temperature_celsius", "gpuwatch_gpu_power_watts",
        "gpuwatch_gpu_power_limit_watts", "gpuwatch_gpu_up", "gpuwatch_gpu_state", "up"}
DS = {"type": "prometheus", "uid": "${datasource}"}


def tool(name):
    path = shutil.which(name)
    if not path:
        fail("%s not installed (Debian package prometheus; scripts/deps.sh test)" % name)
    return path


def source_metrics():
    """Metric names the daemon's renderer spells out: every string literal
    starting with gpuwatch_ or process_ in src/http/*.c."""
    names = set()
    for path in glob.glob(os.path.join(SRC, "src", "http", "*.c")):
        with open(path) as f:
            names.update(re.findall(r'"((?:gpuwatch|process)_[a-z0-9_]+)', f.read()))
    check("gpuwatch_gpu_memory_used_bytes" in names,
          "no metric names found in %s/src/http/*.c" % SRC)
    return names


def metric_names(expr):
    """Metric names an expression selects: identifiers outside string
    literals that are gpuwatch's, Prometheus's scrape series, or up."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    out = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_:$])([A-Za-z_:][A-Za-z0-9_:]*)", bare):
        n = m.group(1)
        if n.startswith("gpuwatch_") or n.startswith("process_") or n in SYNTHETIC:
            out.add(n)
    return out


def selectors(expr):
    """(name, label matchers text or None) for every metric selector."""
    out = []
    for m in re.finditer(r"(?<![A-Za-z0-9_:$\"])((?:gpuwatch|process|scrape)_[a-z0-9_]+|up)\b"
                         r"(\s*\{([^}]*)\})?", expr):
        out.append((m.group(1), m.group(3)))
    return out


# ------------------------------------------------------------------- rules

def parse_rules(text):
    """[{alert, expr, for, labels{}, annotations{}}] from the rules file's
    layout: `- alert: NAME`, then `expr:` inline or as a `|` block, `for:`,
    `labels:` / `annotations:` maps of `key: value` (values possibly folded
    with `>-`)."""
    lines = text.split("\n")
    alerts, cur, section, block = [], None, None, None
    for line in lines:
        m = re.match(r"^(\s*)- alert:\s*(\S+)\s*$", line)
        if m:
            cur = {"alert": m.group(2), "expr": "", "for": None, "labels": {},
                   "annotations": {}, "_indent": len(m.group(1))}
            alerts.append(cur)
            section, block = None, None
            continue
        if cur is None or not line.strip() or line.strip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= cur["_indent"]:
            cur, section, block = None, None, None
            continue
        if block is not None:
            if indent > block[0]:
                target, key = block[1], block[2]
                target[key] = (target[key] + " " + line.strip()).strip()
                continue
            block = None
        m = re.match(r"^\s*(expr|for|labels|annotations):\s*(.*?)\s*$", line)
        if m and indent == cur["_indent"] + 2:
            key, val = m.group(1), m.group(2)
            if key in ("labels", "annotations"):
                section = key
            elif key == "expr":
                section = None
                if val in ("|", ">", "|-", ">-"):
                    block = (indent, cur, "expr")
                else:
                    cur["expr"] = val
            else:
                section = None
                cur["for"] = val
            continue
        m = re.match(r"^\s*([a-z_]+):\s*(.*?)\s*$", line)
        if m and section:
            key, val = m.group(1), m.group(2)
            if val in ("|", ">", "|-", ">-"):
                cur[section][key] = ""
                block = (indent, cur[section], key)
            else:
                cur[section][key] = val.strip('"')
    for a in alerts:
        del a["_indent"]
    return alerts


def parse_rule_tests(text):
    """{alertname: [(eval_time minutes, fires?)]} and the input series, from
    the test file's `- eval_time:` / `alertname:` / `exp_alerts:` entries."""
    evals, ev, series = {}, None, []
    for line in text.split("\n"):
        s = line.strip()
        m = re.match(r"^- eval_time:\s*(\d+)m$", s)
        if m:
            ev = {"t": int(m.group(1))}
            continue
        m = re.match(r"^alertname:\s*(\S+)$", s)
        if m and ev is not None:
            ev["name"] = m.group(1)
            continue
        m = re.match(r"^exp_alerts:\s*(\[\])?$", s)
        if m and ev is not None and "name" in ev:
            evals.setdefault(ev["name"], []).append((ev["t"], m.group(1) is None))
            ev = None
            continue
        m = re.match(r"^- series:\s*'(.*)'$", s)
        if m:
            series.append(m.group(1))
    return evals, series


def run_rule_tests(rules_text):
    """promtool test rules with rules_text as the rules file (the test file
    names it by a relative path): (exit status, output)."""
    tmp = tempfile.mkdtemp()
    try:
        os.makedirs(os.path.join(tmp, "contrib", "prometheus"))
        os.makedirs(os.path.join(tmp, "tests", "contrib"))
        with open(os.path.join(tmp, "contrib", "prometheus", "gpuwatch-rules.yml"), "w") as f:
            f.write(rules_text)
        test = os.path.join(tmp, "tests", "contrib", "gpuwatch-rules.test.yml")
        shutil.copy(RULES_TEST, test)
        p = subprocess.run([tool("promtool"), "test", "rules", test], capture_output=True,
                           text=True, cwd=tmp)
        return p.returncode, p.stdout + p.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_rules():
    promtool = tool("promtool")
    p = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True)
    check(p.returncode == 0, "promtool check rules:\n" + p.stdout + p.stderr)
    with open(RULES) as f:
        text = f.read()
    alerts = parse_rules(text)
    names = [a["alert"] for a in alerts]
    m = re.search(r"SUCCESS: (\d+) rules found", p.stdout)
    check(m and int(m.group(1)) == len(alerts),
          "promtool counts %s rules, this test read %d alerts: %r"
          % (m and m.group(1), len(alerts), names))
    for want in ("GpuwatchScrapeDown", "GpuwatchGpuMemoryPressure", "GpuwatchGpuMemoryCritical",
                 "GpuwatchGpuLost", "GpuwatchGpuStale", "GpuwatchGpuOverSlowdownTemperature"):
        check(want in names, "no alert %s in %s" % (want, RULES))
    check(len(set(names)) == len(names), "alert names repeat: %r" % names)
    known = source_metrics() | SYNTHETIC
    for a in alerts:
        what = a["alert"]
        check(a["expr"], "%s: no expr" % what)
        check(a["for"] and re.match(r"^\d+[smh]$", a["for"]), "%s: no for: duration" % what)
        check(a["labels"].get("severity") in ("warning", "critical"),
              "%s: severity %r" % (what, a["labels"].get("severity")))
        for k in ("summary", "description"):
            check(a["annotations"].get(k), "%s: no %s annotation" % (what, k))
        used = metric_names(a["expr"])
        check(used, "%s: no metric in %r" % (what, a["expr"]))
        check(used <= known, "%s: metrics gpuwatch does not render: %r" % (what, used - known))
    check(any(a["expr"].startswith('up{job="gpuwatch"}') for a in alerts),
          "no alert on up for the gpuwatch job")
    thresholds = {a["alert"]: a["expr"] for a in alerts}
    check(thresholds["GpuwatchGpuMemoryPressure"].rstrip().endswith(">= 0.90") and
          thresholds["GpuwatchGpuMemoryCritical"].rstrip().endswith(">= 0.97"),
          "memory thresholds are no longer the daemon's defaults (0.9 / 0.97), "
          "which docs/grafana-and-alerts.md says they are")

    # The unit tests pass.
    p = subprocess.run([promtool, "test", "rules", RULES_TEST], capture_output=True, text=True)
    check(p.returncode == 0, "promtool test rules:\n" + p.stdout + p.stderr)
    # Their shape: every alert fires at some evaluation and is absent at one
    # before and one after it.
    with open(RULES_TEST) as f:
        evals, series = parse_rule_tests(f.read())
    check(set(evals) == set(names), "alerts without tests: %r; tests of unknown alerts: %r"
          % (set(names) - set(evals), set(evals) - set(names)))
    for name, ev in evals.items():
        fire = [t for t, on in ev if on]
        check(fire, "%s never fires in the tests" % name)
        check(any(not on and t < min(fire) for t, on in ev),
              "%s: no evaluation without the alert before it fires" % name)
        check(any(not on and t > max(fire) for t, on in ev),
              "%s: no evaluation after it fires showing it cleared" % name)
    for s in series:
        used = metric_names(s.split("{")[0])
        check(used and used <= known, "test series %s: not a metric gpuwatch renders" % s)
    # The tests depend on each alert: with any one removed they fail.
    blocks = re.split(r"(?m)^(?=[ \t]*- alert: )", text)
    check(len(blocks) == len(alerts) + 1, "could not split the rules file by alert")
    for i in range(1, len(blocks)):
        name = re.match(r"\s*- alert: (\S+)", blocks[i]).group(1)
        rc, out = run_rule_tests("".join(blocks[:i] + blocks[i + 1:]))
        check(rc != 0, "the tests still pass without %s:\n%s" % (name, out))
        check(name in out, "without %s, the failure does not name it:\n%s" % (name, out))
    rc, out = run_rule_tests(text)
    check(rc == 0, "the copied rules fail: %s" % out)
    # The operator's page explains every alert.
    with open(DOC) as f:
        doc = f.read()
    for name in names:
        check("`%s`" % name in doc, "%s is not described in %s" % (name, DOC))


# --------------------------------------------------------------- dashboard

def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(d):
    """Every panel, rows' nested panels (collapsed rows) included."""
    out = []
    for p in d["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def walk(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield path + "/" + k, k, v
            yield from walk(v, path + "/" + k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, "%s[%d]" % (path, i))


def dashboard_targets(d):
    """[(panel title, refId, expr)] of every panel."""
    out = []
    for p in all_panels(d):
        for t in p.get("targets", []):
            out.append((p["title"], t.get("refId"), t.get("expr")))
    return out


def variable_queries(d):
    """{name: (inner selector expression, label)} of label_values variables."""
    out = {}
    for v in d["templating"]["list"]:
        if v["type"] != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.match(r"^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$", q)
        check(m, "variable %s: not a label_values(SELECTOR, LABEL) query: %r" % (v["name"], q))
        out[v["name"]] = (m.group(1), m.group(2))
    return out


def case_dashboard():
    d = load_dashboard()
    check(isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 38,
          "schemaVersion %r (want >= 38)" % d.get("schemaVersion"))
    check(d.get("uid") and d.get("title"), "dashboard uid/title missing")
    check(d.get("id") is None, "dashboard id must be null (Grafana assigns it on import)")
    check("__inputs" not in d, "__inputs: the datasource is chosen by the ${datasource} variable")
    # Variables: a datasource variable of type prometheus, then job, instance
    # and gpu from the datasource, each filtered by the ones before it.
    tv = {v["name"]: v for v in d["templating"]["list"]}
    check(tv.get("datasource", {}).get("type") == "datasource" and
          tv["datasource"].get("query") == "prometheus",
          "no datasource variable of type prometheus: %r" % tv.get("datasource"))
    for name in ("job", "instance", "gpu"):
        check(name in tv and tv[name]["type"] == "query", "no query variable %s" % name)
        check(tv[name].get("datasource") == DS,
              "variable %s datasource %r" % (name, tv[name].get("datasource")))
    vq = variable_queries(d)
    check(vq["instance"][1] == "instance" and '$job' in vq["instance"][0],
          "instance variable %r" % (vq["instance"],))
    check(vq["gpu"][1] == "gpu" and '$job' in vq["gpu"][0] and '$instance' in vq["gpu"][0],
          "gpu variable %r" % (vq["gpu"],))
    for name in ("instance", "gpu"):
        check(tv[name].get("multi") and tv[name].get("includeAll"),
              "variable %s: multi-value with All expected" % name)
    # Every datasource reference is the variable (or Grafana's own, for the
    # built-in annotations): a hard-coded uid breaks on every other Grafana.
    for path, key, val in walk(d):
        if key != "datasource":
            continue
        if (isinstance(val, dict) and val.get("type") == "grafana"
                and path.startswith("/annotations")):
            continue
        check(val == DS, "%s = %r, want %r" % (path, val, DS))
    panels = all_panels(d)
    ids = [p.get("id") for p in panels]
    check(all(isinstance(i, int) for i in ids), "panel without an integer id: %r" % ids)
    check(len(set(ids)) == len(ids),
          "panel ids repeat: %r" % sorted(i for i in ids if ids.count(i) > 1))
    # Layout: inside the 24-column grid, no two panels overlapping.
    boxes = []
    for p in panels:
        g = p.get("gridPos")
        check(g and all(isinstance(g.get(k), int) for k in "xywh"),
              "%s: gridPos %r" % (p.get("title"), g))
        check(g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0,
              "%s: gridPos %r outside the grid" % (p["title"], g))
        for q, h in boxes:
            if (g["x"] < h["x"] + h["w"] and h["x"] < g["x"] + g["w"] and
                    g["y"] < h["y"] + h["h"] and h["y"] < g["y"] + g["h"]):
                fail("panels %r and %r overlap" % (p["title"], q))
        boxes.append((p["title"], g))
    known = source_metrics() | ANNOUNCED | SYNTHETIC
    n = 0
    for p in panels:
        if p["type"] == "row":
            continue
        check(p.get("title"), "panel %d has no title" % p["id"])
        check(p.get("datasource") == DS,
              "%s: panel datasource %r" % (p["title"], p.get("datasource")))
        targets = p.get("targets")
        check(targets, "%s: no targets" % p["title"])
        refs = [t.get("refId") for t in targets]
        check(all(refs) and len(set(refs)) == len(refs), "%s: refIds %r" % (p["title"], refs))
        for t in targets:
            n += 1
            what = "%s/%s" % (p["title"], t.get("refId"))
            expr = t.get("expr")
            check(expr and expr.strip(), "%s: no expr" % what)
            used = metric_names(expr)
            check(used, "%s: no metric in %r" % (what, expr))
            check(used <= known, "%s: unknown metric names %r" % (what, sorted(used - known)))
            # Every selector filtered by the dashboard's variables, or the
            # panel shows other jobs', hosts' or GPUs' series.
            for name, matchers in selectors(expr):
                check(matchers is not None, "%s: %s without a label selector" % (what, name))
                want = ['job=~"$job"', 'instance=~"$instance"']
                if name.startswith("gpuwatch_gpu_") or name.startswith("gpuwatch_placement_"):
                    want.append('gpu=~"$gpu"')
                for w in want:
                    check(w in matchers, "%s: %s{%s} lacks %s" % (what, name, matchers, w))
    check(n >= len(CORE), "only %d targets" % n)


# -------------------------------------------------------------- prometheus

def scenario(path):
    """3 GPUs from gen_scenario.py: GPU 1 at 98% of its memory and 1 °C over
    its slowdown temperature, GPU 2 lost after its first samples. Returns the
    3 GPUs' uuids."""
    p = subprocess.run([sys.executable, GEN_SCENARIO, "3", "9"], capture_output=True, text=True,
                       check=True)
    parts = p.stdout.split("\ngpu\n")
    check(len(parts) == 4, "gen_scenario.py 3 9: %d GPU blocks" % (len(parts) - 1))

    def val(block, key):
        return int(re.search(r"(?m)^%s (\S+)$" % re.escape(key), block).group(1))

    def put(block, key, value):
        return re.sub(r"(?m)^%s \S+$" % re.escape(key), "%s %d" % (key, value), block)

    g1 = parts[2]
    total, reserved = val(g1, "memory.total"), val(g1, "memory.reserved")
    used = total * 98 // 100
    check(total - reserved - used > 0, "scenario arithmetic")
    g1 = put(g1, "memory.used", used)
    g1 = put(g1, "memory.free", total - reserved - used)
    g1 = put(g1, "temp", val(g1, "temp.slowdown") + 1)
    parts[2] = g1
    text = "\ngpu\n".join(parts)
    # As tests/serve's case_lost: memory reads fail first, then every call.
    text = ("fault nvmlDeviceGetMemoryInfo_v2 GPU_IS_LOST gpu=2 after=4\n"
            "fault * GPU_IS_LOST gpu=2 after=200\n" + text)
    with open(path, "w") as f:
        f.write(text)
    return re.findall(r"(?m)^uuid (\S+)$", text)


class ContribPrometheus(Prometheus):
    """serve_util's real Prometheus scraping target, plus promtool queries."""

    def __init__(self, target):
        super().__init__(Prometheus.job(target), prefix="gw-contrib-prom-")

    def promtool(self, expr):
        """`promtool query instant` of expr: the result list; fails the test
        on any error (a parse error above all), naming the expression."""
        p = subprocess.run([tool("promtool"), "query", "instant", "-o", "json", self.url, expr],
                           capture_output=True, text=True, timeout=DEADLINE)
        if p.returncode != 0:
            fail("promtool query instant %r: exit %d\n%s%s"
                 % (expr, p.returncode, p.stdout, p.stderr))
        try:
            res = json.loads(p.stdout)
        except ValueError:
            fail("promtool query instant %r: not JSON: %r" % (expr, p.stdout[:300]))
        if isinstance(res, dict):  # a scalar or string result
            return [res]
        return res or []


def substitute(expr, values):
    """Replaces Grafana's variables the way Grafana does for Prometheus:
    a multi-value as (a|b), All as the variable's allValue."""
    for k in sorted(values, key=len, reverse=True):
        expr = expr.replace("${%s}" % k, values[k]).replace("$" + k, values[k])
    check("$" not in expr, "variable left after substitution: %r" % expr)
    return expr


def gpus_of(result):
    return sorted(r["metric"].get("gpu") for r in result)


def case_prometheus():
    d = load_dashboard()
    tmp = tempfile.mkdtemp()
    scn = os.path.join(tmp, "dash.scn")
    scenario(scn)
    # metrics_processes: the per-process series are opt-in (issue 12); an
    # unknown GPUWATCH_ variable is ignored by daemons without the key.
    dmn = Daemon(scenario=scn, args=["--interval-ms", "200"],
                 env={"GPUWATCH_METRICS_PROCESSES": "true"})
    prom = None
    try:
        # One reservation, so the placement series have something to show.
        c = http.client.HTTPConnection("127.0.0.1", dmn.port, timeout=DEADLINE)
        c.request("POST", "/api/v1/reservations",
                  body=json.dumps({"mem": "1GiB", "note": "contrib test"}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        body = r.read()
        c.close()
        check(r.status in (200, 201), "reservation: %d %r" % (r.status, body[:300]))

        target = "127.0.0.1:%d" % dmn.port
        prom = ContribPrometheus(target)
        concrete = {"job": "gpuwatch", "instance": target, "gpu": "(0|1|2)",
                    "__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
        everything = dict(concrete, instance=".+", gpu=".+")
        one = dict(concrete, gpu="0")
        in_source = source_metrics() | SYNTHETIC

        def wait_data(expr, what):
            end = time.time() + DEADLINE
            while True:
                res = prom.promtool(expr)
                if res:
                    return res
                if time.time() > end:
                    fail("%s: %r returned no data\nPrometheus log:\n%s\ngpuwatch log:\n%s"
                         % (what, expr, "".join(prom.log[-10:]), dmn.log()[-2000:]))
                time.sleep(0.5)

        # The variables' own queries: label_values(SELECTOR, LABEL) is
        # Grafana's; SELECTOR is PromQL and must find the label.
        for name, (sel, lab) in variable_queries(d).items():
            res = wait_data(substitute(sel, concrete), "variable " + name)
            check(all(lab in r["metric"] for r in res),
                  "variable %s: no %s label in %r" % (name, lab, res[:2]))
        res = wait_data(substitute(variable_queries(d)["gpu"][0], concrete), "variable gpu")
        check(sorted(set(r["metric"]["gpu"] for r in res)) == ["0", "1", "2"],
              "gpu variable finds %r" % res)

        required, covered = 0, set()
        for title, ref, expr in dashboard_targets(d):
            what = "%s/%s" % (title, ref)
            for vals in (everything, one):
                prom.promtool(substitute(expr, vals))  # parses, or fails the test
            used = metric_names(expr)
            if used <= in_source:
                wait_data(substitute(expr, concrete), what)
                required += 1
                covered |= used
        check(CORE <= covered,
              "core metrics not required to return data: %r" % sorted(CORE - covered))
        print("%d dashboard expressions parsed, %d returned data"
              % (len(dashboard_targets(d)), required))

        # The alert expressions against the scenario: GPU 1 is nearly full
        # and over slowdown, GPU 2 lost, the GPU count steady.
        with open(RULES) as f:
            alerts = {a["alert"]: a["expr"] for a in parse_rules(f.read())}
        want = {"GpuwatchGpuMemoryPressure": ["1"], "GpuwatchGpuMemoryCritical": ["1"],
                "GpuwatchGpuNearSlowdownTemperature": ["1"],
                "GpuwatchGpuOverSlowdownTemperature": ["1"], "GpuwatchGpuLost": ["2"]}
        for name, expr in alerts.items():
            prom.promtool(expr)
        for name, gpus in want.items():
            last = [None]

            def match(expr=alerts[name], gpus=gpus):
                last[0] = prom.promtool(expr)
                return gpus_of(last[0]) == gpus
            end = time.time() + DEADLINE
            while not match():
                check(time.time() < end, "%s: expression %r finds %r, want GPUs %r"
                      % (name, alerts[name], last[0], gpus))
                time.sleep(0.5)
            check(all(r["metric"].get("job") == "gpuwatch" and r["metric"].get("instance") == target
                      and r["metric"].get("uuid") for r in last[0]),
                  "%s: labels %r" % (name, last[0]))
        check(prom.promtool(alerts["GpuwatchGpuCountDropped"]) == [],
              "GpuwatchGpuCountDropped on a steady GPU count")
    finally:
        if prom:
            prom.stop()
        try:
            dmn.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# -------------------------------------------------------------- kubernetes

K8S = os.path.join(SRC, "contrib", "kubernetes", "gpuwatch.yaml")
BIN = os.environ.get("GPUWATCH_BIN", "gpuwatch")


def case_kubernetes():
    """contrib/kubernetes/gpuwatch.yaml: a DaemonSet and a headless Service
    (parsed as YAML), whose container runs options gpuwatch serve takes and
    variables that are its keys, with what the node must give it: host pids,
    the host's /proc and /var/log/pods read-only, the port the Service and
    the probes name; the scrape annotations say that port and /metrics."""
    import yaml  # python3-yaml (scripts/deps.sh)
    with open(K8S) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by = {d["kind"]: d for d in docs}
    check(set(by) == {"Namespace", "DaemonSet", "Service"}, "kinds %r" % list(by))
    ds, svc = by["DaemonSet"], by["Service"]
    spec = ds["spec"]["template"]["spec"]
    check(spec.get("hostPID") is True, "hostPID")
    check(ds["spec"]["selector"]["matchLabels"] == ds["spec"]["template"]["metadata"]["labels"]
          == svc["spec"]["selector"], "the Service and the DaemonSet select the same pods")
    (c,) = spec["containers"]
    args = c["args"]
    check(args[0] == "serve", "args %r" % args)
    help_text = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True).stdout
    for a in args[1:]:
        if a.startswith("--"):
            check(re.search(r"^\s+%s\b" % re.escape(a), help_text, re.M), "serve has no %s" % a)
    port = int(args[args.index("--listen") + 1].rsplit(":", 1)[1])
    keys = subprocess.run([BIN, "serve", "--config", "/dev/null", "--print-config"],
                          capture_output=True, text=True).stdout
    known = {l.split(" = ")[0].lstrip("# ").strip() for l in keys.splitlines() if " = " in l}
    env = {e["name"]: e["value"] for e in c["env"]}
    for name in env:
        if name.startswith("GPUWATCH_") and name not in ("GPUWATCH_PROC_ROOT", "GPUWATCH_PODS_DIR"):
            check(name[9:].lower() in known, "%s is no configuration key" % name)
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in spec["volumes"]}
    for var, host in (("GPUWATCH_PROC_ROOT", "/proc"), ("GPUWATCH_PODS_DIR", "/var/log/pods")):
        m = mounts.get(env.get(var))
        check(m and m.get("readOnly") is True and vols[m["name"]]["hostPath"]["path"] == host,
              "%s: the host's %s, read-only" % (var, host))
    check(os.path.dirname(env["GPUWATCH_LEDGER"]) in mounts, "the ledger's folder is writable")
    (cp,) = c["ports"]
    check(cp["containerPort"] == port, "containerPort %r, --listen port %d" % (cp, port))
    for probe in ("readinessProbe", "livenessProbe"):
        check(c[probe]["httpGet"]["port"] == cp["name"] and c[probe]["httpGet"]["path"] == "/health",
              probe)
    ann = svc["metadata"]["annotations"]
    check(ann["prometheus.io/scrape"] == "true" and int(ann["prometheus.io/port"]) == port and
          ann["prometheus.io/path"] == "/metrics", "scrape annotations %r" % ann)
    check(svc["spec"]["ports"][0]["targetPort"] == cp["name"], "Service targetPort")


CASES = {"rules": case_rules, "dashboard": case_dashboard, "prometheus": case_prometheus,
         "kubernetes": case_kubernetes}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print("usage: test_contrib.py {%s}" % ",".join(CASES), file=sys.stderr)
        sys.exit(2)
    CASES[sys.argv[1]]()
    print("ok " + sys.argv[1])
