"""What the web page's tests share: the page's display rules written out
from docs/web.md ("What the page shows"), the reading of a GPU card from the
DOM, and the checks of the security headers.
"""
import os
from decimal import ROUND_HALF_UP, Decimal

from serve_util import check

NA = "N/A"
CSP_MUST = ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
            "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]


def fixed(v, places):
    """JavaScript's toFixed: ties away from zero on the exact binary value."""
    q = Decimal(1).scaleb(-places)
    return str(Decimal(v).quantize(q, rounding=ROUND_HALF_UP))


def bytes_text(v):
    if v is None:
        return NA
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    i = 0
    v = float(v)
    while abs(v) >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    if i == 0:
        return fixed(v, 0) + " B"
    return fixed(v, 2 if v < 10 else 1 if v < 100 else 0) + " " + units[i]


def pct(v):
    return NA if v is None else fixed(v, 0) + " %"


def memory_text(used, total):
    s = bytes_text(used) + " of " + bytes_text(total)
    if used is not None and total:
        s += " (" + fixed(100.0 * used / total, 0) + " %)"
    return s


def temp_text(t, slowdown):
    s = NA if t is None else fixed(t, 0) + " °C"
    if slowdown is not None:
        s += " of " + fixed(slowdown, 0) + " °C slowdown"
    return s


def watts(v):
    return NA if v is None else fixed(v, 1 if v < 100 else 0) + " W"


def power_text(draw, limit):
    s = watts(draw)
    if limit is not None:
        s += " of " + watts(limit) + " limit"
    return s


# One object per GPU card: its texts, state, and how many pixels of the
# chart's canvases have the series colour (the data line, not the grid).
CARDS_JS = r"""
(() => {
  const hex = getComputedStyle(document.documentElement).getPropertyValue('--series').trim();
  const rgb = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
  return [...document.querySelectorAll('#gpus .gpu')].map(s => {
    const kv = {}, meters = {};
    s.querySelectorAll('.kv dt').forEach(dt => {
      const dd = dt.nextElementSibling;
      kv[dt.textContent] = dd.querySelector('span').textContent;
      const m = dd.querySelector('meter');
      if (m) meters[dt.textContent] = m.hidden || getComputedStyle(m).display === 'none';
    });
    let ink = 0;
    s.querySelectorAll('.chart canvas').forEach(c => {
      if (!c.width || !c.height) return;
      const x = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < x.length; i += 4)
        if (x[i + 3] >= 150 && Math.abs(x[i] - rgb[0]) < 40 && Math.abs(x[i + 1] - rgb[1]) < 40 &&
            Math.abs(x[i + 2] - rgb[2]) < 40) ink++;
    });
    const chart = s.querySelector('.chart');
    return {
      title: s.querySelector('h3').textContent, state: s.dataset.state,
      badge: s.querySelector('.badge').textContent,
      memory: kv['Memory'], util: kv['Utilisation'], temp: kv['Temperature'],
      power: kv['Power'], power_meter_hidden: meters['Power'],
      caption: s.querySelector('.procs caption').textContent,
      rows: [...s.querySelectorAll('.procs tbody tr')].map(r =>
        [...r.cells].map(c => c.textContent)),
      cmd_html: [...s.querySelectorAll('.procs td.cmd')].map(c => c.innerHTML),
      ink, points: Number(chart.dataset.points || 0),
    };
  });
})()
"""


def cards(b):
    return b.eval(CARDS_JS)


def check_headers(r, url):
    check(r["status"] == 200, "%s: status %d" % (url, r["status"]))
    h = r["headers"]
    check(h.get("content-type", "").startswith("text/html"),
          "%s: content-type %r" % (url, h.get("content-type")))
    csp = h.get("content-security-policy", "")
    for part in CSP_MUST:
        check(part in csp, "%s: CSP %r lacks %r" % (url, csp, part))
    check("unsafe-inline" not in csp and "unsafe-eval" not in csp, "%s: CSP %r" % (url, csp))
    check(h.get("x-content-type-options") == "nosniff", "%s: no nosniff" % url)
    check("etag" in h, "%s: no ETag" % url)


def expect_amd(amd, root):
    """Per AMD card of the fixture at root: memory from its sysfs files,
    temperature from its hwmon (tests/amd's readers)."""
    out = []
    for i, (_, dev) in enumerate(amd.cards(root)):
        used = amd.opt(os.path.join(dev, "mem_info_vram_used"))
        total = amd.opt(os.path.join(dev, "mem_info_vram_total"))
        if total is None:
            continue
        h = amd.hwmon(dev)
        n = amd.labelled(h, "edge") if h else None
        t = amd.num(os.path.join(h, "temp%d_input" % n)) / 1000.0 if n else None
        out.append({"index": i, "name": None, "memory": memory_text(used, total),
                    "temp_value": t, "processes": None})
    return out
