// Loads the web page (docs/web.md) in headless Chromium and prints, as one
// JSON line, what bench/web_bench.py reports for one load:
//   node web_bench.mjs NODE_MODULES CHROMIUM URL GPUS [HOLD_S]
// With HOLD_S the page then stays open that long (the daemon's CPU with a
// page open is measured meanwhile).
// first_chart_ms / all_charts_ms: navigation start to the page's
// performance marks (the first chart drawn, every GPU's chart drawn);
// js_heap_bytes: the page's JS heap then; bytes: what came over the wire
// (encoded: compressed where gzip was negotiated) by request, the /events
// stream counted up to that moment.
import { createRequire } from "node:module";

const [nodeModules, chromium, url, gpus, hold] = process.argv.slice(2);
const require = createRequire(nodeModules.replace(/\/?$/, "/"));
const puppeteer = require("puppeteer-core");
const browser = await puppeteer.launch({ executablePath: chromium, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"] });
const page = await browser.newPage();
await page.setViewport({ width: 1280, height: 720 });
const cdp = await page.createCDPSession();
await cdp.send("Network.enable");
await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
const reqs = new Map();
cdp.on("Network.requestWillBeSent", (e) => reqs.set(e.requestId, { url: e.request.url, bytes: 0 }));
cdp.on("Network.dataReceived", (e) => {
  const r = reqs.get(e.requestId);
  if (r) r.streamed = (r.streamed || 0) + e.encodedDataLength;
});
cdp.on("Network.loadingFinished", (e) => {
  const r = reqs.get(e.requestId);
  if (r) r.bytes = e.encodedDataLength;
});
cdp.on("Network.responseReceived", (e) => {
  const r = reqs.get(e.requestId);
  if (r) r.encoding = e.response.headers["content-encoding"] || e.response.headers["Content-Encoding"] || "identity";
});
const errors = [];
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
page.on("pageerror", (e) => errors.push(e.message));
await page.goto(url, { waitUntil: "domcontentloaded" });
await page.waitForFunction((n) => document.body.dataset.charts === n, { timeout: 120000 }, gpus);
const marks = await page.evaluate(() => Object.fromEntries(
  ["gw-first-chart", "gw-all-charts"].map((n) => [n, (performance.getEntriesByName(n)[0] || {}).startTime])));
const m = await page.metrics();
const list = [...reqs.values()].map((r) => ({ url: r.url.replace(/^https?:\/\/[^/]+/, ""),
  bytes: r.bytes || r.streamed || 0, encoding: r.encoding || "" }));
console.log(JSON.stringify({ first_chart_ms: marks["gw-first-chart"],
  all_charts_ms: marks["gw-all-charts"], js_heap_bytes: m.JSHeapUsedSize, requests: list,
  errors }));
if (Number(hold) > 0) await new Promise((r) => setTimeout(r, Number(hold) * 1000));
await browser.close();
