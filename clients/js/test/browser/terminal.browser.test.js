// The terminal page in headless Chromium (the system's browser, driven by
// puppeteer-core; nothing is downloaded) against the real quotecast.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import puppeteer from "puppeteer-core";
import { startServer, token, publish, repoRoot } from "../support/server.js";
import { startPageServer } from "../support/page-server.js";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
/** Where the screenshot goes (CI may point it at its artifacts). */
const OUT = process.env.TEST_OUTPUT_DIR || path.join(repoRoot, "clients/js/test-output/browser");
const DEADLINE_MS = 20000;

const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

/** The page's origin: the binary itself once it serves `/`, else our page server in front of it. */
async function pageBase(server) {
  const res = await fetch(`${server.base}/`);
  const type = res.headers.get("content-type") || "";
  await res.body?.cancel();
  if (res.status === 200 && type.includes("text/html")) return { base: server.base, via: "binary" };
  const pages = await startPageServer(server.port);
  cleanups.push(() => pages.close());
  return { base: pages.base, via: "page server (binary does not serve / yet)" };
}

test("terminal page: loads, prices tick in the DOM, published alerts appear once across a reconnect, screenshot saved", async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM`);
  const server = await startServer();
  cleanups.push(() => server.stop());
  const { base, via } = await pageBase(server);
  console.log(`# page served by ${via} at ${base}`);

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // A loaded 2-core machine may take long to start Chromium.
    timeout: 60000,
    // No background networking: this machine's network is closed, and
    // Chromium's own connections would only be refused.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.setViewport({ width: 1440, height: 860 });
  // The DOM is enough: the checks below wait for what they need, each with a deadline.
  await page.goto(`${base}/?token=${token({ sub: "trader", tenant: "local", roles: ["TRADER", "ADMIN"] })}`, {
    waitUntil: "domcontentloaded",
    timeout: 60000,
  });

  await page.waitForFunction(() => /^(open|lagging)$/.test(document.getElementById("conn")?.textContent ?? ""), { timeout: DEADLINE_MS });
  const seqCell = 'tr[data-symbol="EURUSD"] td.seq';
  await page.waitForFunction((sel) => /^\d+$/.test(document.querySelector(sel)?.textContent ?? ""), { timeout: DEADLINE_MS }, seqCell);
  const first = Number(await page.$eval(seqCell, (el) => el.textContent));
  await page.waitForFunction((sel, n) => Number(document.querySelector(sel)?.textContent) > n, { timeout: DEADLINE_MS }, seqCell, first);
  const bid = await page.$eval('tr[data-symbol="EURUSD"] td.bid', (el) => el.textContent);
  assert.match(bid ?? "", /^\d+\.\d+$/, "a formatted bid");

  const message = `browser test alert ${Date.now()}`;
  await publish(server.base, { channel: "alerts", tenant: "local", data: { level: "critical", kind: "loss_limit", message } });
  await page.waitForFunction((m) => [...document.querySelectorAll("#alerts li .text")].some((el) => el.textContent === m), { timeout: DEADLINE_MS }, message);
  const copies = await page.$$eval("#alerts li .text", (els, m) => els.filter((el) => el.textContent === m).length, message);
  assert.equal(copies, 1, "the alert is shown once");

  // The connection drops (closed under the page's feet); an alert published
  // meanwhile and one after the reconnect each show once, and so does the first.
  await page.evaluate(() => window.quotecast.transport.close(4000, "test drop"));
  const during = `${message} / during the drop`;
  const later = `${message} / after the reconnect`;
  await publish(server.base, { channel: "alerts", tenant: "local", data: { level: "warning", kind: "risk_limit", message: during } });
  await page.waitForFunction(() => Number(document.getElementById("reconnects")?.textContent) >= 1, { timeout: DEADLINE_MS });
  await page.waitForFunction(() => /^(open|lagging)$/.test(document.getElementById("conn")?.textContent ?? ""), { timeout: DEADLINE_MS });
  await publish(server.base, { channel: "alerts", tenant: "local", data: { level: "info", kind: "note", message: later } });
  await page.waitForFunction((m) => [...document.querySelectorAll("#alerts li .text")].some((el) => el.textContent === m), { timeout: DEADLINE_MS }, later);
  for (const m of [message, during, later]) {
    const n = await page.$$eval("#alerts li .text", (els, t) => els.filter((el) => el.textContent === t).length, m);
    assert.equal(n, 1, `"${m}" shown exactly once across the reconnect`);
  }

  // Let the metrics panel draw a few windows before the picture.
  await page.waitForFunction(() => document.querySelectorAll("#spark polyline").length === 1, { timeout: DEADLINE_MS });
  mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, "terminal.png");
  await page.screenshot({ path: file });
  console.log(`# screenshot: ${file}`);
  assert.ok(existsSync(file));
  assert.deepEqual(errors, [], "no script errors on the page");
});
