// A thin remote control of headless Chromium (puppeteer-core) for the web
// page's tests (tests/web/browser.py): one JSON command per line on stdin,
// one JSON answer per line on stdout. It decides nothing; the Python tests
// hold the expectations.
//
//   node driver.mjs NODE_MODULES CHROMIUM
//
// Commands: {"op": "open", "url", "width", "height", "dark", "headers"} -> {"status",
// "headers"} (a new page replaces the old one); {"op": "eval", "js"} -> {"value"};
// {"op": "wait", "js", "timeout_ms"} -> {"value"} (js becomes truthy) or {"error"};
// {"op": "click", "selector"}; {"op": "type", "selector", "text"};
// {"op": "key", "key"}; {"op": "screenshot", "path"};
// {"op": "log"} -> {"errors": [...], "requests": [[url, status, bytes]]}
// (console errors, page errors, CSP violations and failed requests since open);
// {"op": "metrics"} -> puppeteer's page.metrics(); {"op": "close"}.
import { createRequire } from "node:module";
import readline from "node:readline";

const [nodeModules, chromium] = process.argv.slice(2);
const require = createRequire(nodeModules.replace(/\/?$/, "/"));
const puppeteer = require("puppeteer-core");

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"],
});
let page = null;
let errors = [];
let requests = [];

async function open(cmd) {
  if (page) await page.close();
  errors = [];
  requests = [];
  page = await browser.newPage();
  await page.setViewport({ width: cmd.width || 1280, height: cmd.height || 720 });
  await page.emulateMediaFeatures([
    { name: "prefers-color-scheme", value: cmd.dark ? "dark" : "light" }]);
  if (cmd.headers) await page.setExtraHTTPHeaders(cmd.headers);
  await page.evaluateOnNewDocument(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      console.error("CSP violation: " + e.violatedDirective + " at " + e.sourceFile + ":" +
                    e.lineNumber));
  });
  page.on("console", (m) => { if (m.type() === "error") errors.push("console: " + m.text()); });
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  page.on("requestfailed", (r) => {
    // an EventSource torn down when the page closes or reconnects is not an error
    if (!r.url().includes("/events")) errors.push("request failed: " + r.url() + " " +
                                                  (r.failure() || {}).errorText);
  });
  page.on("response", async (r) => {
    let n = null;
    try { n = Number(r.headers()["content-length"] || 0) || null; } catch (e) { n = null; }
    requests.push([r.url(), r.status(), n]);
  });
  const r = await page.goto(cmd.url, { waitUntil: "domcontentloaded" });
  return { status: r.status(), headers: r.headers() };
}

async function run(cmd) {
  switch (cmd.op) {
  case "open": return open(cmd);
  case "eval": return { value: await page.evaluate(cmd.js) };
  case "wait":
    try {
      const h = await page.waitForFunction(cmd.js, { timeout: cmd.timeout_ms || 60000,
                                                    polling: 50 });
      return { value: await h.jsonValue() };
    } catch (e) {
      return { error: "not within " + (cmd.timeout_ms || 60000) + " ms: " + cmd.js };
    }
  case "click": await page.click(cmd.selector); return {};
  case "type": await page.type(cmd.selector, cmd.text); return {};
  case "key": await page.keyboard.press(cmd.key); return {};
  case "screenshot": await page.screenshot({ path: cmd.path, fullPage: true }); return {};
  case "log": return { errors, requests };
  case "metrics": return { value: await page.metrics() };
  case "close": await browser.close(); process.exit(0);
  }
  return { error: "unknown op " + cmd.op };
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  let out;
  try {
    out = await run(JSON.parse(line));
  } catch (e) {
    out = { error: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}
await browser.close();
