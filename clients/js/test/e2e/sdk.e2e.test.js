// The SDK against the real quotecast binary over real sockets.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../../src/quotecast.js";
import { startServer, token, publish, waitFor } from "../support/server.js";
import { startProxy } from "../support/proxy.js";

/** Every server and client a test started, stopped at the end whatever happens. */
const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

/** @param {import("../../src/quotecast.js").QuotecastClient} c */
const onState = (c) => (fn) => c.on("state", fn);

const alert = (n) => ({
  channel: "alerts",
  tenant: "e2e",
  data: { level: "warning", kind: "test", message: `alert ${n}` },
});

test("connects, subscribes, gets the ack, then the snapshot, then live updates", async () => {
  const server = await startServer();
  cleanups.push(() => server.stop());
  const c = connect({ url: server.base, token: token(), transport: "websocket" });
  cleanups.push(() => c.close());
  const seen = [];
  const h = c.subscribe({ channel: "prices", symbols: ["EURUSD", "GBPUSD"] }, (m) => seen.push(m));
  const ack = await h.ready;
  assert.deepEqual([...ack.subscribed].sort(), ["EURUSD", "GBPUSD"]);
  await waitFor((fn) => h.on(fn), () => (seen.filter((m) => m.type === "price").length >= 5 ? true : undefined), "5 live prices");
  assert.equal(seen[0].type, "snapshot", "the snapshot comes before any live value");
  assert.ok(seen[0].data.every((p) => ["EURUSD", "GBPUSD"].includes(p.symbol)));
  const prices = seen.filter((m) => m.type === "price");
  for (const p of prices) {
    assert.ok(["EURUSD", "GBPUSD"].includes(p.symbol));
    assert.ok(p.ask >= p.bid && typeof p.spread_bps === "number" && p.ts > 0);
  }
  const eur = prices.filter((p) => p.symbol === "EURUSD").map((p) => p.seq);
  assert.deepEqual(eur, [...eur].sort((a, b) => a - b), "seq increases per symbol");
  // Up; a loaded machine may legitimately make the server report `lagging`.
  assert.ok(["open", "lagging"].includes(c.state), c.state);
  assert.equal(c.welcome?.type, "welcome");
  const pong = await c.ping();
  assert.equal(pong.type, "pong");
});

test("a dropped connection (no restart) reconnects with backoff and resumes alerts with no gap and no duplicate", async () => {
  const server = await startServer();
  cleanups.push(() => server.stop());
  const proxy = await startProxy(server.port);
  cleanups.push(() => proxy.close());
  await publish(server.base, [alert(1), alert(2), alert(3)]);

  const c = connect({
    url: `http://127.0.0.1:${proxy.port}`,
    token: token({ tenant: "e2e" }),
    transport: "websocket",
    backoff: { baseMs: 200, capMs: 2000 },
    // Node 20's WebSocket may hang on a connection cut mid-handshake: cut it.
    connectTimeoutMs: 3000,
  });
  cleanups.push(() => c.close());
  const got = [];
  const gaps = [];
  c.on("gap", (g) => gaps.push(g));
  const h = c.subscribe({ channel: "alerts", since: 0 }, (m) => m.type === "alert" && got.push(m.seq));
  await waitFor((fn) => h.on(fn), () => (got.length >= 3 ? true : undefined), "the 3 replayed alerts");

  const reconnecting = [];
  c.on("state", (s) => s.state === "reconnecting" && reconnecting.push(s));
  proxy.refuse(true);
  proxy.cut();
  // While the client is away (and its retries are refused), more alerts happen.
  await waitFor(onState(c), (s) => (s?.state === "reconnecting" && s.attempt >= 2 ? true : undefined), "two refused reconnect attempts");
  await publish(server.base, [alert(4), alert(5), alert(6)]);
  proxy.refuse(false);
  await waitFor(onState(c), () => (c.state === "open" ? true : undefined), "open again");
  await publish(server.base, alert(7));
  await waitFor((fn) => h.on(fn), () => (got.length >= 7 ? true : undefined), "alerts 4..7");
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7], "every alert exactly once, in order");
  assert.deepEqual(gaps, [], "no gap: the history covered the outage");
  assert.ok(reconnecting.length >= 2, "it retried");
  assert.ok(reconnecting[0].code === 1006 || reconnecting[0].code >= 1000, "close code reported");
  assert.ok(reconnecting.every((s) => s.delayMs >= 0 && s.delayMs < 2000), "delays within the cap");
});

test("server killed and restarted: the SDK reconnects with backoff, resubscribes, and reports the alerts gap (history was in memory)", async () => {
  let server = await startServer();
  const port = server.port;
  cleanups.push(() => server.stop());
  await publish(server.base, [alert(1), alert(2)]);
  const c = connect({
    url: server.base,
    token: token({ tenant: "e2e" }),
    transport: "websocket",
    backoff: { baseMs: 100, capMs: 1000 },
    connectTimeoutMs: 5000,
  });
  cleanups.push(() => c.close());
  const got = [];
  const gaps = [];
  c.on("gap", (g) => gaps.push(g));
  const h = c.subscribe({ channel: "alerts", since: 0 }, (m) => m.type === "alert" && got.push(m.message));
  const prices = [];
  c.subscribe({ channel: "prices", symbols: ["EURUSD"] }, (m) => m.type === "price" && prices.push(m));
  await waitFor((fn) => h.on(fn), () => (got.length >= 2 ? true : undefined), "the 2 alerts");

  const states = [];
  c.on("state", (s) => states.push(s));
  await server.stop("SIGKILL");
  await waitFor(onState(c), (s) => (s?.state === "reconnecting" && s.attempt >= 2 ? true : undefined), "retries while down");
  server = await startServer({ port });
  await waitFor(onState(c), () => (c.state === "open" ? true : undefined), "reconnected to the new process");
  const gap = await waitFor((fn) => c.on("gap", fn), () => gaps[0], "the gap event");
  assert.equal(gap.channel, "alerts");
  assert.equal(gap.reset, true, "the new process's stream starts over");
  await publish(server.base, alert(3));
  await waitFor((fn) => h.on(fn), () => (got.includes("alert 3") ? true : undefined), "an alert of the new process");
  assert.deepEqual(got, ["alert 1", "alert 2", "alert 3"], "no duplicate, nothing replayed twice");
  const before = prices.length;
  await waitFor((fn) => c.on("price", fn), () => (prices.length > before ? true : undefined), "prices after the restart");
  const retries = states.filter((s) => s.state === "reconnecting");
  assert.ok(retries.length >= 2, "retried while the server was down");
  for (const r of retries) {
    const ceiling = Math.min(1000, 100 * 2 ** (r.attempt - 1));
    assert.ok(r.delayMs >= 0 && r.delayMs < ceiling, `attempt ${r.attempt}: ${r.delayMs} ms within [0, ${ceiling})`);
  }
});

test("a token provider refreshes ahead of exp with the auth op, on the same connection", async () => {
  const server = await startServer();
  cleanups.push(() => server.stop());
  let calls = 0;
  const c = connect({
    url: server.base,
    // The first token lives 15 s and is refreshed 14 s ahead: at most ~1 s
    // after the open, however slowly a loaded machine opens it.
    tokenProvider: () => token({ ttlS: calls++ === 0 ? 15 : 3600 }),
    refreshBeforeExpMs: 14000,
    transport: "websocket",
  });
  cleanups.push(() => c.close());
  const acks = [];
  c.on("ack", (a) => "op" in a && a.op === "auth" && acks.push(a));
  await waitFor((fn) => c.on("ack", fn), () => acks[0], "the auth ack");
  assert.ok(acks[0].session_expires > Date.now() + 3000e3, "the server took the long-lived token");
  assert.equal(c.stats.reconnects, 0);
  assert.equal(calls, 2);
});
