import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, OpQueue, tokenExpiry, endpoints } from "../../src/quotecast.js";
import { fakeToken } from "../support/fake.js";

const backoff = { baseMs: 100, capMs: 5000 };

test("full jitter: delay is uniform in [0, min(cap, base*2^attempt))", () => {
  for (let attempt = 0; attempt < 12; attempt++) {
    const ceiling = Math.min(5000, 100 * 2 ** attempt);
    assert.equal(backoffDelay(attempt, backoff, () => 0), 0);
    assert.equal(backoffDelay(attempt, backoff, () => 0.5), Math.floor(ceiling / 2));
    const top = backoffDelay(attempt, backoff, () => 0.999999);
    assert.ok(top < ceiling && top >= ceiling - 1, `attempt ${attempt}: ${top} vs ${ceiling}`);
  }
});

test("full jitter: the ceiling doubles, then stays at the cap, and draws spread out", () => {
  const max = (a) => backoffDelay(a, backoff, () => 0.999999);
  assert.ok(max(1) > max(0) && max(2) > max(1) && max(5) > max(4));
  assert.equal(max(6), max(40), "capped");
  assert.ok(max(1000) < 5000, "a huge attempt count neither overflows nor passes the cap");
  const draws = new Set(Array.from({ length: 50 }, () => backoffDelay(6, backoff)));
  assert.ok(draws.size > 10, "Math.random jitter spreads clients out");
  for (const d of draws) assert.ok(d >= 0 && d < 5000);
});

test("offline queue keeps the newest `limit` ops and hands each dropped one over, oldest first", () => {
  const dropped = [];
  const q = new OpQueue(100, (op) => dropped.push(op));
  for (let i = 0; i < 105; i++) q.push({ op: "ping", id: i });
  assert.equal(q.length, 100);
  assert.deepEqual(dropped.map((o) => o.id), [0, 1, 2, 3, 4]);
  const drained = q.drain();
  assert.deepEqual(drained.map((o) => o.id), Array.from({ length: 100 }, (_, i) => i + 5));
  assert.equal(q.length, 0);
});

test("token expiry is read from the JWT, undefined for a non-JWT", () => {
  const exp = tokenExpiry(fakeToken(60));
  assert.ok(exp && Math.abs(exp - (Date.now() + 60000)) < 2000);
  assert.equal(tokenExpiry("not-a-jwt"), undefined);
  assert.equal(tokenExpiry("a.!!!.c"), undefined);
});

test("endpoints derive from a base, a ws URL or a page-relative path", () => {
  assert.deepEqual(endpoints("http://h:8080"), { ws: "ws://h:8080/v1/ws", sse: "http://h:8080/v1/sse" });
  assert.deepEqual(endpoints("wss://h/v1/ws"), { ws: "wss://h/v1/ws", sse: "https://h/v1/sse" });
  assert.deepEqual(endpoints("/", "https://t.example/page?x=1"), {
    ws: "wss://t.example/v1/ws",
    sse: "https://t.example/v1/sse",
  });
});
