// gpuwatch dashboard (docs/web.md). Plain JS, no framework; Dygraph (the
// charting library, served beside this file) draws the memory charts.
//
// Data flow: one EventSource on /events?include=processes gives the state
// (a "snapshot" event: the /health body; a "processes" event: the
// /gpu/processes body) on every sample, and each event of the daemon's log
// as it happens. Each chart starts from /api/v1/history (the daemon's whole
// history window, averaged to about CHART_POINTS points) and grows with
// the snapshots. Nothing polls: the cluster view alone is re-read, at most
// every CLUSTER_MS and only while snapshots arrive.
//
// Safety: every string from the daemon (command lines, user names, model
// names, notes, peers' answers) reaches the page as a text node or an
// attribute value set through the DOM, never as HTML. The token lives in
// this page's memory only and is sent only with actions.
"use strict";

(function () {
  const CHART_POINTS = 600;
  const CHART_REDRAW_MS = 1000;
  const CLUSTER_MS = 10000;
  const MAX_EVENTS = 200;
  const GIB = 1024 * 1024 * 1024;
  // The daemon's event types (src/sampler/events.h): EventSource delivers
  // named events only to listeners of that name.
  const EVENT_TYPES = [
    "memory_pressure_warning", "memory_pressure_critical", "memory_pressure_cleared",
    "gpu_lost", "gpu_recovered", "thermal_slowdown", "thermal_cleared",
    "process_started", "process_exited", "sampling_stalled", "sampling_resumed",
    "xid_error", "ecc_uncorrected_errors", "row_remap",
  ];

  const page = {
    snap: null,       // the newest /health body
    procs: null,      // the newest /gpu/processes body
    token: null,      // given by the user; memory only
    cards: new Map(), // GPU key -> card
    layout: "",       // the GPU keys the cards were built for
    frame: 0,         // a requestAnimationFrame is pending
    lastRedraw: 0,
    eventSeqs: new Set(),
    clusterAt: 0,
    clusterBusy: false,
    firstChart: false,
  };

  // ------------------------------------------------------------ helpers

  function $(id) { return document.getElementById(id); }

  // An element with properties and children (strings become text nodes).
  function h(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const k in props || {}) {
      if (k === "class") e.className = props[k];
      else if (k.startsWith("aria-") || k === "role" || k === "scope") e.setAttribute(k, props[k]);
      else e[k] = props[k];
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  const isNum = (v) => typeof v === "number" && isFinite(v);
  const na = "N/A";

  function bytes(v) {
    if (!isNum(v)) return na;
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0) : v.toFixed(0)) + " " + units[i];
  }
  const pct = (v) => isNum(v) ? v.toFixed(0) + " %" : na;
  const celsius = (v) => isNum(v) ? v.toFixed(0) + " °C" : na;
  const watts = (v) => isNum(v) ? v.toFixed(v < 100 ? 1 : 0) + " W" : na;
  const mhz = (v) => isNum(v) ? (v / 1e6).toFixed(0) + " MHz" : na;
  function age(s) {
    if (!isNum(s)) return na;
    if (s < 90) return s.toFixed(s < 10 ? 1 : 0) + " s";
    if (s < 5400) return (s / 60).toFixed(0) + " min";
    return (s / 3600).toFixed(1) + " h";
  }
  function clock(t) {
    const d = t instanceof Date ? t : new Date(t);
    return isNaN(d) ? na : d.toLocaleTimeString();
  }
  const gpuKey = (g) => g.uuid || "index:" + g.index;

  // Sets a meter; a value the daemon does not know leaves it empty (never 0).
  function setMeter(m, v, max, high) {
    if (isNum(v) && isNum(max) && max > 0) {
      m.max = max;
      m.value = Math.min(v, max);
      m.high = isNum(high) ? high : max * 0.9;
      m.optimum = 0;
      m.hidden = false;
    } else {
      m.hidden = true;
    }
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function authHeaders() {
    return page.token ? { Authorization: "Bearer " + page.token } : {};
  }

  // ------------------------------------------------------------ GPU cards

  function gpuState(g, snap) {
    const interval = intervalSeconds();
    if (g.state === "lost") return ["lost", "st-lost"];
    if (g.state === "error") return ["error", "st-error"];
    const stale = g.state === "stale" || snap.stale ||
      (isNum(g.sample_age_seconds) && g.sample_age_seconds > 3 * interval + 1);
    if (stale) {
      const a = isNum(g.sample_age_seconds) ? g.sample_age_seconds : snap.data_age_seconds;
      return ["stale " + age(a), "st-stale"];
    }
    return [g.state || "ok", "st-ok"];
  }

  function buildCard(g) {
    const c = { key: gpuKey(g), index: g.index, points: [], chart: null, pending: false };
    // a row of the card's list: the text, and a meter under it when asked
    const kv = (label, meterLabel) => {
      const text = h("span");
      const dd = h("dd", {}, text);
      if (meterLabel) {
        text.meter = h("meter", { "aria-label": meterLabel });
        dd.append(text.meter);
      }
      c.kv.append(h("dt", {}, label), dd);
      return text;
    };
    c.title = h("h3");
    c.badge = h("span", { class: "badge" });
    c.caption = h("div", { class: "caption" });
    c.chartEl = h("div", { class: "chart", role: "img" });
    c.readout = h("div", { class: "readout", "aria-live": "off" });
    c.kv = h("dl", { class: "kv" });
    c.mem = kv("Memory", "memory used of total");
    c.util = kv("Utilisation");
    c.temp = kv("Temperature", "temperature against the slowdown threshold");
    c.power = kv("Power", "power draw against the limit");
    c.clocks = kv("Clocks");
    c.fan = kv("Fan");
    c.procBody = h("tbody");
    c.procCaption = h("caption", {}, "Processes");
    c.procTable = h("table", { class: "grid procs" }, c.procCaption,
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "PID"), h("th", { scope: "col" }, "User"),
        h("th", { scope: "col", class: "num" }, "Memory"), h("th", { scope: "col" }, "Command"),
        h("th", { scope: "col" }, "Model"))),
      c.procBody);
    c.root = h("section", { class: "gpu", "aria-label": "GPU " + g.index },
      h("header", {}, c.title, c.badge), c.caption, c.chartEl, c.readout, c.kv, c.procTable);
    c.root.dataset.uuid = g.uuid || "";
    c.root.dataset.index = String(g.index);
    return c;
  }

  function updateCard(c, g, snap) {
    // a MIG device (docs/mig.md) says which GPU it is a part of
    c.title.textContent = g.mig
      ? "MIG " + g.index + " · " + (g.mig.profile || "MIG device") + " of GPU " +
        g.mig.parent_index + " · GI " + g.mig.gpu_instance_id
      : "GPU " + g.index + " · " + (g.name || "unknown");
    c.root.classList.toggle("mig", !!g.mig);
    const [word, cls] = gpuState(g, snap);
    c.badge.textContent = word;
    c.badge.className = "badge " + cls;
    c.root.classList.toggle("lost", g.state === "lost");
    c.root.dataset.state = word.split(" ")[0];
    const m = g.memory || {};
    c.total = m.total_bytes;
    c.mem.textContent = bytes(m.used_bytes) + " of " + bytes(m.total_bytes) +
      (isNum(m.used_bytes) && isNum(m.total_bytes) && m.total_bytes > 0
        ? " (" + (100 * m.used_bytes / m.total_bytes).toFixed(0) + " %)" : "");
    setMeter(c.mem.meter, m.used_bytes, m.total_bytes);
    const u = g.utilization || {};
    c.util.textContent = "GPU " + pct(u.gpu_percent) + " · memory " + pct(u.memory_percent);
    const t = g.temperature || {};
    c.temp.textContent = celsius(t.gpu_celsius) +
      (isNum(t.slowdown_celsius) ? " of " + celsius(t.slowdown_celsius) + " slowdown" : "");
    setMeter(c.temp.meter, t.gpu_celsius, t.slowdown_celsius, t.slowdown_celsius * 0.9);
    const p = g.power || {};
    c.power.textContent = watts(p.draw_watts) +
      (isNum(p.limit_watts) ? " of " + watts(p.limit_watts) + " limit" : "");
    setMeter(c.power.meter, p.draw_watts, p.limit_watts);
    const k = g.clocks || {};
    c.clocks.textContent = "SM " + mhz(k.sm_hz) + " · memory " + mhz(k.memory_hz);
    c.fan.textContent = pct(g.fan ? g.fan.speed_percent : null);
    c.caption.textContent = "Memory used (GiB), last " + age(windowSeconds()) +
      ", local time";
    c.chartEl.setAttribute("aria-label", "Chart of the memory used on GPU " + g.index +
      " over the last " + age(windowSeconds()) + ", of " + bytes(m.total_bytes));
  }

  function updateProcesses() {
    const byGpu = new Map();
    for (const p of (page.procs && page.procs.processes) || []) {
      if (!byGpu.has(p.device_index)) byGpu.set(p.device_index, []);
      byGpu.get(p.device_index).push(p);
    }
    for (const c of page.cards.values()) {
      const list = (byGpu.get(c.index) || []).sort(
        (a, b) => (b.gpu_memory_bytes || 0) - (a.gpu_memory_bytes || 0));
      const rows = list.map((p) => h("tr", {},
        h("td", {}, String(p.pid)), h("td", {}, p.user || na),
        h("td", { class: "num" }, bytes(p.gpu_memory_bytes)),
        h("td", { class: "cmd", title: p.cmdline || "" }, p.cmdline || p.name || na),
        h("td", {}, p.model || "")));
      c.procBody.replaceChildren(...rows);
      c.procCaption.textContent = list.length ? "Processes (" + list.length + ")" : "No processes";
    }
  }

  // ------------------------------------------------------------ charts

  // The chart's resolution: the sampling interval, or coarser so that the
  // window holds about CHART_POINTS points.
  function stepSeconds() {
    return Math.max(intervalSeconds(), windowSeconds() / CHART_POINTS);
  }

  // The daemon's sampling interval (/health's sampling), 1 s until known.
  function intervalSeconds() {
    const s = page.snap && page.snap.sampling;
    return s && isNum(s.interval_seconds) ? s.interval_seconds : 1;
  }

  function windowSeconds() {
    const s = page.snap && page.snap.sampling;
    return s && isNum(s.history_seconds) && s.history_seconds > 0 ? s.history_seconds : 3600;
  }

  function chartOptions(c) {
    return {
      labels: ["time", "used"], // units and axis: the caption above the chart
      valueRange: isNum(c.total) && c.total > 0 ? [0, c.total / GIB * 1.02] : null,
      colors: [cssVar("--series")],
      axisLineColor: cssVar("--line"),
      gridLineColor: cssVar("--line"),
      strokeWidth: 1.5,
      fillGraph: true,
      connectSeparatedPoints: false, // N/A is a gap, never a 0
      drawGapEdgePoints: true,       // a lone sample shows as a dot
      legend: "never",
      showLabelsOnHighlight: false,
      axisLabelWidth: 48,
      yAxisLabelWidth: 40,
      xAxisHeight: 18,
      highlightCallback: (ev, x, pts) => {
        const v = pts.length ? pts[0].yval : null;
        c.readout.textContent = clock(new Date(x)) + ": " +
          (isNum(v) ? v.toFixed(2) + " GiB" : na);
      },
      unhighlightCallback: () => { c.readout.textContent = ""; },
      drawCallback: (g, initial) => {
        c.chartEl.dataset.points = String(c.points.length);
        if (initial && !page.firstChart) {
          page.firstChart = true;
          performance.mark("gw-first-chart");
        }
      },
    };
  }

  function drawChart(c) {
    if (!window.Dygraph || !c.points.length) return;
    if (!c.chart) {
      c.chart = new window.Dygraph(c.chartEl, c.points, chartOptions(c));
      // how many charts are drawn: what the tests and bench/web_bench wait for
      const drawn = [...page.cards.values()].filter((x) => x.chart).length;
      document.body.dataset.charts = String(drawn);
      if (drawn === page.cards.size) performance.mark("gw-all-charts");
    } else {
      c.chart.updateOptions({ file: c.points,
        valueRange: isNum(c.total) && c.total > 0 ? [0, c.total / GIB * 1.02] : null });
    }
  }

  async function loadHistory(c) {
    const win = windowSeconds();
    const step = stepSeconds();
    const q = "gpu=" + encodeURIComponent(c.key.startsWith("index:") ? String(c.index) : c.key) +
      "&metric=memory_used&since=" + win + "&step=" + step;
    let pts = [];
    try {
      const r = await fetch("/api/v1/history?" + q);
      if (r.ok) pts = (await r.json()).points || [];
    } catch (e) {
      pts = []; // the chart then starts with the live samples
    }
    const live = c.points;
    const first = live.length ? live[0][0].getTime() : Infinity;
    c.points = pts.filter((p) => p[0] * 1000 < first)
      .map((p) => [new Date(p[0] * 1000), isNum(p[1]) ? p[1] / GIB : null])
      .concat(live);
    c.historyLoaded = true;
    drawChart(c);
  }

  function addLivePoint(c, g, snap) {
    const t = new Date(snap.timestamp);
    if (isNaN(t)) return;
    const used = g.state === "ok" && g.memory && isNum(g.memory.used_bytes)
      ? g.memory.used_bytes / GIB : null;
    const last = c.points[c.points.length - 1];
    if (last && last[0].getTime() >= t.getTime()) return;
    // Live samples at the history's resolution: a sample closer than one
    // step to the one before the newest replaces the newest, so the chart
    // shows the latest value and keeps about CHART_POINTS points.
    const prev = c.points[c.points.length - 2];
    if (last && last.live && prev && t.getTime() - prev[0].getTime() < stepSeconds() * 1000)
      c.points.pop();
    const pt = [t, used];
    pt.live = true;
    c.points.push(pt);
    const from = t.getTime() - windowSeconds() * 1000;
    let drop = 0;
    while (drop < c.points.length && c.points[drop][0].getTime() < from) drop++;
    if (drop) c.points.splice(0, drop);
  }

  function recolourCharts() {
    for (const c of page.cards.values())
      if (c.chart) c.chart.updateOptions({ colors: [cssVar("--series")],
        axisLineColor: cssVar("--line"), gridLineColor: cssVar("--line") });
  }

  // ------------------------------------------------------------ panes

  function kvRows(dl, rows) {
    dl.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  function updateHost(snap) {
    const x = snap.host || {};
    $("host").textContent = x.hostname || "";
    const used = isNum(x.memory_total_bytes) && isNum(x.memory_available_bytes)
      ? x.memory_total_bytes - x.memory_available_bytes : null;
    kvRows($("host-kv"), [
      ["CPU", pct(x.cpu_percent) + (isNum(x.cpu_count) ? " of " + x.cpu_count + " cores" : "")],
      ["Load", Array.isArray(x.load_average) ? x.load_average.map((v) => isNum(v) ? v.toFixed(2) : na).join(" ") : na],
      ["RAM", bytes(used) + " used of " + bytes(x.memory_total_bytes)],
      ["Swap", isNum(x.swap_total_bytes) && x.swap_total_bytes > 0
        ? bytes(x.swap_total_bytes - x.swap_free_bytes) + " used of " + bytes(x.swap_total_bytes)
        : "none"],
    ]);
  }

  function updateStatus(snap) {
    const st = snap.status || "unknown";
    $("status").textContent = "live · " + st + " · sampled " + clock(snap.timestamp) +
      (isNum(snap.data_age_seconds) ? " (" + age(snap.data_age_seconds) + " ago)" : "");
    $("status").dataset.state = st;
    const b = $("banner");
    let msg = "";
    if (snap.stale) msg = "Data is stale: the last good sample is " + age(snap.data_age_seconds) + " old.";
    else if (snap.reason) msg = snap.reason;
    b.textContent = msg;
    b.hidden = !msg;
    $("version").textContent = "gpuwatch " + (snap.version || "");
  }

  function updateReservations(snap) {
    const rows = [];
    const seen = new Set();
    for (const d of (snap.placement && snap.placement.devices) || []) {
      for (const r of d.reservations || []) {
        // a reservation on several GPUs has a row per GPU, one Cancel
        let btn = "";
        if (!seen.has(r.id)) {
          seen.add(r.id);
          btn = h("button", { type: "button" }, "Cancel");
          btn.setAttribute("aria-label", "Cancel reservation " + r.id);
          btn.dataset.id = r.id;
          btn.addEventListener("click", () => cancelReservation(r.id, btn));
        }
        rows.push(h("tr", {}, h("td", {}, String(d.index)), h("td", {}, r.id),
          h("td", {}, r.owner || na), h("td", {}, isNum(r.pid) && r.pid > 0 ? String(r.pid) : na),
          h("td", { class: "num" }, bytes(r.bytes)), h("td", {}, r.note || ""), h("td", {}, btn)));
      }
    }
    const body = $("res").tBodies[0];
    // Rebuilt only when the list changes: a rebuild would steal the focus
    // from a Cancel button once a second.
    const sig = rows.map((r) => r.textContent).join("|");
    if (body.dataset.sig !== sig) {
      body.replaceChildren(...rows);
      body.dataset.sig = sig;
    }
    $("res").hidden = !rows.length;
    const msg = $("res-msg");
    if (!snap.placement) msg.textContent = "Placement is not available on this daemon.";
    else if (!msg.dataset.sticky) msg.textContent = rows.length ? "" : "No reservations.";
  }

  async function cancelReservation(id, btn) {
    const msg = $("res-msg");
    btn.disabled = true;
    try {
      const r = await fetch("/api/v1/reservations/" + encodeURIComponent(id),
        { method: "DELETE", headers: authHeaders() });
      let why = "";
      try { why = (await r.json()).error.message || ""; } catch (e) { why = ""; }
      if (r.ok) {
        msg.textContent = "Released " + id + ".";
        msg.dataset.sticky = "1";
        return; // its row goes with the next snapshot; the button stays off
      }
      if (r.status === 401)
        msg.textContent = "Cancelling needs the daemon's token: enter it above (" + why + ").";
      else msg.textContent = "Could not cancel " + id + ": HTTP " + r.status + (why ? ": " + why : "");
      msg.dataset.sticky = "1";
    } catch (e) {
      msg.textContent = "Could not cancel " + id + ": " + e.message;
    }
    btn.disabled = false;
  }

  function updateModels(snap) {
    const rows = [];
    for (const s of snap.model_servers || []) {
      const state = s.up ? "up" : "down" + (s.error ? ": " + s.error : "");
      const models = s.models && s.models.length ? s.models : [null];
      for (const m of models)
        rows.push(h("tr", {}, h("td", {}, s.url || na), h("td", {}, s.kind || na),
          h("td", {}, state), h("td", {}, m ? m.name || na : "none loaded"),
          h("td", { class: "num" }, m ? bytes(m.vram_bytes) : ""),
          h("td", {}, m ? m.location || na : "")));
    }
    $("models").tBodies[0].replaceChildren(...rows);
    $("models-pane").hidden = !rows.length;
  }

  async function refreshCluster() {
    if (!page.snap || !page.snap.cluster_view) {
      $("cluster-pane").hidden = true;
      return;
    }
    if (page.clusterBusy || Date.now() - page.clusterAt < CLUSTER_MS) return;
    page.clusterBusy = true;
    page.clusterAt = Date.now();
    try {
      const r = await fetch("/api/v1/cluster");
      if (r.status === 404) { $("cluster-pane").hidden = true; return; }
      if (!r.ok) return;
      const v = await r.json();
      const rows = (v.nodes || []).map((n) => {
        let used = 0, total = 0;
        for (const g of n.gpus || []) { // the cluster view's flat GPU rows (docs/cluster.md)
          if (isNum(g.memory_used_bytes)) used += g.memory_used_bytes;
          if (isNum(g.memory_total_bytes)) total += g.memory_total_bytes;
        }
        return h("tr", {}, h("td", {}, n.name || n.url || na), h("td", {}, n.kind || na),
          h("td", {}, n.up ? (n.status || "up") : "down" + (n.error ? ": " + n.error : "")),
          h("td", { class: "num" }, String((n.gpus || []).length)),
          h("td", { class: "num" }, total ? bytes(used) + " of " + bytes(total) : na),
          h("td", { class: "num" }, age(n.data_age_seconds)));
      });
      $("cluster").tBodies[0].replaceChildren(...rows);
      $("cluster-pane").hidden = false;
    } catch (e) {
      // keep what is shown; the next snapshot tries again
    } finally {
      page.clusterBusy = false;
    }
  }

  // ------------------------------------------------------------ events

  const SEVERITY = { critical: "st-crit", warning: "st-warn", info: "st-ok" };

  function addEvent(e, top) {
    if (!e || page.eventSeqs.has(e.seq)) return;
    page.eventSeqs.add(e.seq);
    const sev = e.severity || "info";
    const li = h("li", {}, h("span", { class: "sev " + (SEVERITY[sev] || "") }, sev), " ",
      clock(e.time), " ", isNum(e.gpu) ? "GPU " + e.gpu + " · " : "", e.message || e.type);
    li.dataset.type = e.type;
    li.dataset.seq = String(e.seq);
    const list = $("events");
    if (top) list.prepend(li); else list.append(li);
    $("no-events").hidden = true;
    while (list.children.length > MAX_EVENTS) {
      page.eventSeqs.delete(Number(list.lastChild.dataset.seq));
      list.lastChild.remove();
    }
  }

  // The log as the daemon has it now: at every (re)connection, so events
  // of a gap are not missed and a restarted daemon (its numbers begin
  // again at 1) is not mistaken for one already shown.
  function resetEvents() {
    page.eventSeqs.clear();
    $("events").replaceChildren();
    $("no-events").hidden = false;
    loadEvents();
  }

  async function loadEvents() {
    try {
      const r = await fetch("/api/v1/events");
      if (!r.ok) return;
      const v = await r.json();
      const evs = (v.events || []).slice(-MAX_EVENTS).reverse();
      for (const e of evs) addEvent(e, false);
    } catch (e) {
      // the live stream still adds new ones
    }
  }

  // ------------------------------------------------------------ render

  function render() {
    page.frame = 0;
    const snap = page.snap;
    if (!snap) return;
    updateStatus(snap);
    updateHost(snap);
    const gpus = snap.gpus || [];
    const layout = gpus.map(gpuKey).join(",");
    if (layout !== page.layout) {
      const old = page.cards;
      page.cards = new Map();
      for (const g of gpus) {
        const c = old.get(gpuKey(g)) || buildCard(g);
        c.index = g.index;
        page.cards.set(c.key, c);
      }
      for (const [k, c] of old)
        if (!page.cards.has(k) && c.chart) c.chart.destroy();
      $("gpus").replaceChildren(...[...page.cards.values()].map((c) => c.root));
      page.layout = layout;
    }
    $("no-gpus").hidden = gpus.length > 0;
    $("no-gpus").textContent = gpus.length ? "" : "No GPU on this host" +
      (snap.reason ? ": " + snap.reason : ".");
    for (const g of gpus) {
      const c = page.cards.get(gpuKey(g));
      updateCard(c, g, snap);
      if (!c.historyLoaded && !c.historyAsked) { c.historyAsked = true; loadHistory(c); }
    }
    updateProcesses();
    updateReservations(snap);
    updateModels(snap);
    const now = performance.now();
    // (a frame early is fine: samples a second apart must each be drawn)
    if (now - page.lastRedraw >= CHART_REDRAW_MS - 200) {
      page.lastRedraw = now;
      for (const c of page.cards.values()) if (c.historyLoaded) drawChart(c);
    }
  }

  function schedule() {
    if (!page.frame) page.frame = requestAnimationFrame(render);
  }

  function onSnapshot(ev) {
    let snap;
    try { snap = JSON.parse(ev.data); } catch (e) { return; }
    page.snap = snap;
    for (const g of snap.gpus || []) {
      const c = page.cards.get(gpuKey(g));
      if (c) addLivePoint(c, g, snap);
    }
    schedule();
    refreshCluster();
  }

  function connect() {
    const es = new EventSource("/events?include=processes");
    es.addEventListener("snapshot", onSnapshot);
    es.addEventListener("processes", (ev) => {
      try { page.procs = JSON.parse(ev.data); } catch (e) { return; }
      schedule();
    });
    for (const t of EVENT_TYPES)
      es.addEventListener(t, (ev) => {
        try { addEvent(JSON.parse(ev.data), true); } catch (e) { /* not JSON: skip */ }
      });
    es.onopen = () => {
      $("status").dataset.conn = "open";
      resetEvents();
    };
    es.onerror = () => {
      $("status").dataset.conn = "lost";
      $("status").textContent = "connection lost; reconnecting… (last sample " +
        (page.snap ? clock(page.snap.timestamp) : "none") + ")";
    };
  }

  function setupToken() {
    const input = $("token-input"), set = $("token-set"), clear = $("token-clear");
    const apply = () => {
      page.token = input.value.trim() || null;
      input.value = "";
      input.placeholder = page.token ? "given (hidden)" : "not given";
      clear.hidden = !page.token;
      $("res-msg").dataset.sticky = "";
      $("res-msg").textContent = page.token ? "Token given: actions send it." : "";
    };
    set.addEventListener("click", apply);
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
    clear.addEventListener("click", () => { input.value = ""; apply(); });
  }

  function start() {
    // dygraphs' legend plugin writes style attributes, which the page's
    // Content-Security-Policy refuses; the readout under each chart is ours.
    if (window.Dygraph && Array.isArray(window.Dygraph.PLUGINS) && window.Dygraph.Plugins)
      window.Dygraph.PLUGINS = window.Dygraph.PLUGINS.filter(
        (p) => p !== window.Dygraph.Plugins.Legend);
    setupToken();
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", recolourCharts);
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
