// The client's logic against a scripted socket: the test plays the server.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../../src/quotecast.js";
import { FakeSocket, sockets, resetSockets, until, fakeToken } from "../support/fake.js";

beforeEach(resetSockets);
/** Clients of the current test, closed even when it fails (no timer outlives it). */
const clients = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

/** A client on fake sockets that reconnects at once (jitter draws 0). */
function client(extra = {}) {
  const c = connect({
    url: "http://quotecast.test",
    token: fakeToken(),
    WebSocket: FakeSocket,
    random: () => 0,
    pingIntervalMs: 0,
    transport: "websocket",
    ...extra,
  });
  clients.push(c);
  return c;
}

/** @param {number} i */
const sock = (i) => until(() => sockets[i], `socket ${i}`);

const alert = (seq) => ({ type: "alert", channel: "alerts", seq, level: "info", kind: "k", message: `m${seq}`, ts: seq });

test("reliable channel: resumes with since = last seq, drops replayed duplicates, reports a reset stream as a gap", async () => {
  const c = client();
  const got = [];
  const gaps = [];
  c.on("gap", (g) => gaps.push(g));
  const h = c.subscribe({ channel: "alerts", since: 0 }, (m) => got.push(m.type === "gap" ? "gap" : m.seq));
  const s1 = await sock(0);
  s1.accept();
  const sub1 = s1.ops("subscribe")[0];
  assert.equal(sub1.since, 0);
  s1.push({ type: "ack", id: sub1.id, channel: "alerts", subscribed: true, since: 0, recovered: true, last_seq: 2 });
  s1.push(alert(1));
  s1.push(alert(2));
  assert.deepEqual((await h.ready).last_seq, 2);
  s1.drop(1006);
  assert.equal(c.state, "reconnecting");

  const s2 = await until(() => sockets[1], "a second socket");
  s2.accept();
  const sub2 = s2.ops("subscribe")[0];
  assert.equal(sub2.since, 2, "resumes after the last seq seen");
  s2.push({ type: "ack", id: sub2.id, channel: "alerts", subscribed: true, since: 2, recovered: true, last_seq: 3 });
  s2.push(alert(2)); // a duplicate, e.g. a replay overlapping what arrived live
  s2.push(alert(3));
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(c.stats.duplicatesDropped, 1);

  // The server restarted: its stream starts over below our cursor.
  s2.drop(1001, "shutting down");
  const s3 = await until(() => sockets[2], "a third socket");
  s3.accept();
  const sub3 = s3.ops("subscribe")[0];
  assert.equal(sub3.since, 3);
  s3.push({ type: "ack", id: sub3.id, channel: "alerts", subscribed: true, since: 3, recovered: false, last_seq: 1 });
  s3.push({ type: "snapshot", channel: "alerts", data: [alert(1)] });
  assert.deepEqual(got, [1, 2, 3, "gap", 1], "the gap is reported, then the new stream's messages");
  assert.deepEqual(gaps, [{ channel: "alerts", since: 3, lastSeq: 1, reset: true }]);
  c.close();
});

test("history trimmed (recovered:false, stream ahead): gap reported, only unseen snapshot messages delivered", async () => {
  const c = client();
  const got = [];
  c.subscribe({ channel: "alerts", since: 5 }, (m) => got.push(m.type === "gap" ? `gap>${m.since}` : m.seq));
  (await sock(0)).accept();
  const sub = sockets[0].ops("subscribe")[0];
  sockets[0].push({ type: "ack", id: sub.id, channel: "alerts", subscribed: true, since: 5, recovered: false, last_seq: 40 });
  sockets[0].push({ type: "snapshot", channel: "alerts", data: [alert(4), alert(20), alert(40)] });
  sockets[0].push(alert(41));
  assert.deepEqual(got, ["gap>5", 20, 40, 41]);
  c.close();
});

test("live jump in a reliable stream is reported as a gap, never hidden", async () => {
  const c = client();
  const gaps = [];
  c.on("gap", (g) => gaps.push(g));
  c.subscribe({ channel: "alerts" });
  (await sock(0)).accept();
  const sub = sockets[0].ops("subscribe")[0];
  assert.equal(sub.since, undefined, "no since: live from now");
  sockets[0].push({ type: "ack", id: sub.id, channel: "alerts", subscribed: true, recovered: true, last_seq: 10 });
  sockets[0].push(alert(11));
  sockets[0].push(alert(14));
  assert.deepEqual(gaps, [{ channel: "alerts", since: 11, lastSeq: 13, reset: false }]);
  c.close();
});

test("broadcast messages count on their own stream: no false duplicate or gap, resumed with broadcast_since", async () => {
  const c = client();
  const got = [];
  const gaps = [];
  c.on("gap", (g) => gaps.push(g));
  c.subscribe({ channel: "alerts", since: 0 }, (m) => got.push(m.broadcast ? `b${m.seq}` : m.seq));
  const s1 = await sock(0);
  s1.accept();
  const sub1 = s1.ops("subscribe")[0];
  s1.push({ type: "ack", id: sub1.id, channel: "alerts", subscribed: true, since: 0, recovered: true, last_seq: 0,
            broadcast: { since: null, recovered: true, last_seq: 0 } });
  for (const seq of [1, 2, 3]) s1.push(alert(seq));
  s1.push({ ...alert(1), broadcast: true }); // seq 1 of the broadcast stream: not a duplicate
  s1.push(alert(4));
  assert.deepEqual(got, [1, 2, 3, "b1", 4]);
  assert.deepEqual(gaps, []);
  s1.drop(1006);
  const s2 = await until(() => sockets[1], "a second socket");
  s2.accept();
  const sub2 = s2.ops("subscribe")[0];
  assert.deepEqual([sub2.since, sub2.broadcast_since], [4, 1], "each stream resumes from its own cursor");
  c.close();
});

test("offline queue: ops sent while disconnected are bounded, oldest dropped with an event, rest flushed after resubscribing", async () => {
  const c = client({ queueLimit: 3 });
  const dropped = [];
  c.on("queue_overflow", (e) => dropped.push(e.op.id));
  c.subscribe({ channel: "prices", symbols: ["EURUSD"] });
  const replies = [1, 2, 3, 4, 5].map(() => c.send({ op: "ping" }));
  assert.deepEqual(dropped, [1, 2], "the two oldest of five made room");
  await assert.rejects(replies[0], /dropped from the offline queue/);
  await assert.rejects(replies[1], /dropped from the offline queue/);
  (await sock(0)).accept();
  const sent = sockets[0].sent;
  assert.equal(sent[0].op, "subscribe", "resubscription goes first");
  assert.deepEqual(sent.slice(1).map((o) => o.id), [3, 4, 5]);
  sockets[0].push({ type: "pong", id: 5, server_time: 1 });
  assert.equal((await replies[4]).type, "pong");
  c.close();
});

test("never reconnects after 4003, nor after 4001 with a static token", async () => {
  for (const code of [4003, 4001]) {
    resetSockets();
    const c = client();
    const states = [];
    c.on("state", (s) => states.push(s));
    const h = c.subscribe({ channel: "prices", symbols: ["EURUSD"] });
    (await sock(0)).accept();
    sockets[0].drop(code, "bye");
    await until(() => c.state === "closed", `closed after ${code}`);
    assert.deepEqual(states.at(-1), { state: "closed", code, reason: "bye" });
    await assert.rejects(h.ready);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sockets.length, 1, `no reconnect after ${code}`);
  }
});

test("4001 with a token provider: a new token is fetched and the client reconnects with it", async () => {
  let n = 0;
  const tokens = [fakeToken(3600, "a"), fakeToken(3600, "b")];
  const c = client({ token: undefined, tokenProvider: () => tokens[Math.min(n++, 1)] });
  await until(() => sockets[0], "first socket");
  (await sock(0)).accept();
  assert.ok(sockets[0].url.includes(encodeURIComponent(tokens[0])));
  sockets[0].drop(4001, "token_expired");
  const s2 = await until(() => sockets[1], "reconnect with a new token");
  assert.ok(s2.url.includes(encodeURIComponent(tokens[1])));
  c.close();
});

test("the provider is asked again before exp and the new token goes out as an auth op", async () => {
  const fresh = fakeToken(3600, "u1");
  const c = client({ token: fakeToken(2), tokenProvider: () => fresh, refreshBeforeExpMs: 1500 });
  (await sock(0)).accept();
  const auth = await until(() => sockets[0].ops("auth")[0], "an auth op", 5000);
  assert.equal(auth.token, fresh);
  sockets[0].push({ type: "ack", id: auth.id, op: "auth", session_expires: Date.now() + 3600e3 });
  assert.equal(sockets.length, 1, "refreshed in place, no reconnect");
  c.close();
});

test("ping-op liveness: a silent connection is closed and replaced", async () => {
  const c = client({ pingIntervalMs: 40, pongTimeoutMs: 40 });
  (await sock(0)).accept();
  await until(() => sockets[0].ops("ping").length > 0, "a ping op");
  await until(() => sockets[0].closedWith, "the silent socket closed");
  assert.equal(sockets[0].closedWith.code, 4000);
  await until(() => sockets[1], "a new socket");
  c.close();
});

test("backoff grows while the server stays away and resets after a successful open", async () => {
  const c = client({ random: () => 0.999, backoff: { baseMs: 10, capMs: 80 } });
  const delays = [];
  c.on("state", (s) => s.state === "reconnecting" && delays.push(s.delayMs));
  for (let i = 0; i < 5; i++) {
    const s = await until(() => sockets[i], `socket ${i}`);
    s.drop(1006);
  }
  assert.deepEqual(delays, [9, 19, 39, 79, 79]);
  const s = await until(() => sockets[5], "socket 5");
  s.accept();
  s.drop(1006);
  assert.equal(delays.at(-1), 9, "attempts start over after an open");
  c.close();
});

test("prices: one server subscription per symbol however many handles; unsubscribed when the last goes", async () => {
  const c = client();
  (await sock(0)).accept();
  const a = c.subscribe({ channel: "prices", symbols: ["EURUSD", "GBPUSD"] });
  const b = c.subscribe({ channel: "prices", symbols: ["EURUSD"] });
  const s = sockets[0];
  assert.deepEqual(s.ops("subscribe").map((o) => o.symbols), [["EURUSD", "GBPUSD"]]);
  a.unsubscribe();
  assert.deepEqual(s.ops("unsubscribe").map((o) => o.symbols), [["GBPUSD"]]);
  b.unsubscribe();
  assert.deepEqual(s.ops("unsubscribe").map((o) => o.symbols), [["GBPUSD"], ["EURUSD"]]);
  c.close();
});

test("resubscribes everything after a reconnect, minus what the server refused", async () => {
  const c = client();
  const got = [];
  c.subscribe({ channel: "prices", symbols: ["EURUSD", "NOPE"] }, (m) => got.push(m.type));
  c.subscribe({ channel: "metrics.trading", metrics: ["trade_count"], window_ms: 1000, agg: "sum" });
  (await sock(0)).accept();
  const [p] = sockets[0].ops("subscribe");
  sockets[0].push({ type: "ack", id: p.id, channel: "prices", subscribed: ["EURUSD"], errors: [{ symbol: "NOPE", code: "unknown_symbol" }] });
  sockets[0].push({ type: "snapshot", channel: "prices", data: [{ type: "price", symbol: "EURUSD", seq: 1 }] });
  sockets[0].push({ type: "price", symbol: "EURUSD", seq: 2 });
  assert.deepEqual(got, ["snapshot", "price"]);
  sockets[0].drop(1006);
  const s2 = await until(() => sockets[1], "reconnect");
  s2.accept();
  const subs = s2.ops("subscribe");
  assert.deepEqual(subs[0], { op: "subscribe", channel: "prices", symbols: ["EURUSD"], id: subs[0].id });
  assert.deepEqual(subs[1], { op: "subscribe", channel: "metrics.trading", metrics: ["trade_count"], window_ms: 1000, agg: "sum", id: subs[1].id });
  c.close();
});

test("lagging and feed_stale status become state events; ok returns to open", async () => {
  const c = client();
  const states = [];
  c.on("state", (s) => states.push(s.state));
  (await sock(0)).accept();
  sockets[0].push({ type: "status", state: "lagging", skipped: 12 });
  assert.equal(c.health.skipped, 12);
  sockets[0].push({ type: "status", state: "ok" });
  sockets[0].push({ type: "status", state: "feed_stale", since: 1000 });
  assert.equal(c.health.feedStaleSince, 1000);
  sockets[0].push({ type: "status", state: "ok" });
  assert.deepEqual(states, ["open", "lagging", "open", "feed_stale", "open"]);
  c.close();
  assert.equal(c.state, "closed");
});

test("auto transport: after WebSocket fails to open twice, the same subscriptions go over SSE", async () => {
  const urls = [];
  const body = [
    'event: ack\ndata: {"type":"ack","id":1,"channel":"prices","subscribed":["EURUSD"]}\n\n',
    ': heartbeat\n\n',
    'event: price\nid: p1\ndata: {"type":"price","symbol":"EURUSD","seq":9}\n\n',
  ].join("");
  const fakeFetch = async (url) => {
    urls.push(String(url));
    const stream = new ReadableStream({
      start(ctl) {
        ctl.enqueue(new TextEncoder().encode(body));
      },
    });
    return new Response(stream, { status: 200, headers: { "content-type": "text/event-stream" } });
  };
  const c = client({ fetch: fakeFetch, transport: "auto" });
  const got = [];
  c.subscribe({ channel: "prices", symbols: ["EURUSD"] }, (m) => got.push(m.seq));
  (await sock(0)).drop(1006);
  const s2 = await until(() => sockets[1], "second try");
  s2.drop(1006);
  await until(() => got.length > 0, "a price over SSE");
  assert.equal(c.kind, "sse");
  assert.equal(c.state, "open");
  const u = new URL(urls[0]);
  assert.equal(u.pathname, "/v1/sse");
  assert.ok(u.searchParams.get("access_token"));
  const subs = JSON.parse(u.searchParams.get("subs"));
  assert.deepEqual(subs.map((o) => [o.op, o.channel, o.symbols]), [["subscribe", "prices", ["EURUSD"]]]);
  assert.deepEqual(got, [9]);
  c.close();
});

test("SSE: no stream while nothing is subscribed; the first subscribe opens it, a second reopens it with both", async () => {
  const urls = [];
  const fakeFetch = async (url, init) => {
    urls.push(new URL(String(url)));
    const stream = new ReadableStream({
      start(ctl) {
        init?.signal?.addEventListener("abort", () => ctl.error(new Error("aborted")));
      },
    });
    return new Response(stream, { status: 200, headers: { "content-type": "text/event-stream" } });
  };
  const c = client({ fetch: fakeFetch, transport: "sse" });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(urls.length, 0, "no stream without a subscription");
  c.subscribe({ channel: "prices", symbols: ["EURUSD"] });
  await until(() => urls.length === 1, "the first stream");
  await until(() => c.state === "open", "open");
  c.subscribe({ channel: "alerts", since: 4 });
  await until(() => urls.length === 2, "the stream reopened");
  const subs = JSON.parse(urls[1].searchParams.get("subs"));
  assert.deepEqual(subs.map((o) => [o.channel, o.symbols ?? o.since]), [["prices", ["EURUSD"]], ["alerts", 4]]);
  await assert.rejects(c.ping(), /cannot be sent over SSE/);
  c.close();
});
