// The React hooks on a real client over scripted sockets, rendered with
// react-test-renderer (React is a devDependency here, a peer for users).
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createElement as h } from "react";
import TestRenderer from "react-test-renderer";
import { QuotecastProvider, useQuotecast, usePrice, useMetrics, useAlerts } from "../../react/index.js";
import { FakeSocket, sockets, resetSockets, until, fakeToken } from "../support/fake.js";

const { act } = TestRenderer;
globalThis.IS_REACT_ACT_ENVIRONMENT = true;
beforeEach(resetSockets);

const options = {
  url: "http://quotecast.test",
  token: fakeToken(),
  WebSocket: FakeSocket,
  transport: /** @type {const} */ ("websocket"),
  pingIntervalMs: 0,
  random: () => 0,
};

function Price({ symbol }) {
  const p = usePrice(symbol);
  return h("span", null, `${symbol}=${p ? p.bid : "-"}`);
}

function State() {
  const { state } = useQuotecast();
  return h("b", null, state);
}

/** Renders inside act and waits for the provider's socket. */
async function mount(tree) {
  let r;
  await act(async () => {
    r = TestRenderer.create(tree);
  });
  const s = await until(() => sockets[0], "the provider's socket");
  await act(async () => s.accept());
  return { r, s };
}

const text = (r) => JSON.stringify(r.toJSON());

test("one shared connection per provider; usePrice renders snapshot and updates; unmount unsubscribes", async () => {
  let show = true;
  const App = ({ both }) =>
    h(QuotecastProvider, { options }, h(State), h(Price, { symbol: "EURUSD" }), both ? h(Price, { symbol: "GBPUSD" }) : null);
  const { r, s } = await mount(h(App, { both: show }));
  assert.equal(sockets.length, 1, "one connection for every hook");
  assert.match(text(r), /"open"/);
  const subs = s.ops("subscribe");
  // Hooks that mounted before the socket opened go out as one op.
  assert.deepEqual(subs.flatMap((o) => o.symbols).sort(), ["EURUSD", "GBPUSD"]);
  await act(async () => {
    s.push({ type: "ack", id: subs[0].id, channel: "prices", subscribed: subs[0].symbols });
    s.push({ type: "snapshot", channel: "prices", data: [{ type: "price", symbol: "EURUSD", seq: 1, bid: 1.1 }] });
    s.push({ type: "price", symbol: "GBPUSD", seq: 4, bid: 1.27 });
    s.push({ type: "price", symbol: "EURUSD", seq: 2, bid: 1.2 });
  });
  assert.match(text(r), /EURUSD=1.2/);
  assert.match(text(r), /GBPUSD=1.27/);
  show = false;
  await act(async () => r.update(h(App, { both: show })));
  assert.deepEqual(s.ops("unsubscribe").map((o) => o.symbols), [["GBPUSD"]], "the unmounted hook's symbol only");
  await act(async () => r.unmount());
  assert.equal(s.closedWith?.code, 1000, "the provider closes its connection on unmount");
});

test("useAlerts lists each alert once, newest first, and shows gaps; useMetrics folds windows", async () => {
  let alertsView;
  let metricsView;
  function Panel() {
    alertsView = useAlerts({ since: 0, limit: 10 });
    metricsView = useMetrics("metrics.trading", { metrics: ["trade_count", "trade_volume"], window_ms: 1000, agg: "sum" });
    return null;
  }
  const App = ({ panel }) => h(QuotecastProvider, { options }, panel ? h(Panel) : null);
  const { r, s } = await mount(h(App, { panel: true }));
  const [alertsSub] = s.ops("subscribe").filter((o) => o.channel === "alerts");
  const [metricsSub] = s.ops("subscribe").filter((o) => o.channel === "metrics.trading");
  assert.equal(alertsSub.since, 0);
  assert.deepEqual(metricsSub.metrics, ["trade_count", "trade_volume"]);
  const alert = (seq) => ({ type: "alert", channel: "alerts", seq, level: "info", kind: "k", message: `m${seq}`, ts: 1 });
  await act(async () => {
    s.push({ type: "ack", id: alertsSub.id, channel: "alerts", subscribed: true, since: 0, recovered: true, last_seq: 2 });
    s.push(alert(1));
    s.push(alert(2));
    s.push(alert(2));
    s.push(alert(5));
    s.push({ type: "metrics", channel: "metrics.trading", seq: 10, window_end: 11000, values: { trade_count: { value: 3 } } });
    s.push({ type: "metrics", channel: "metrics.trading", seq: 10, window_end: 11000, values: { trade_volume: { value: 900 } } });
    s.push({ type: "metrics", channel: "metrics.trading", seq: 11, window_end: 12000, values: { trade_count: { value: 4, delta: 1 } } });
  });
  assert.deepEqual(alertsView.alerts.map((a) => a.seq), [5, 2, 1], "newest first, the duplicate dropped");
  assert.deepEqual(alertsView.gaps, [{ type: "gap", channel: "alerts", since: 2, lastSeq: 4, reset: false }]);
  assert.deepEqual(metricsView.values, { trade_count: { value: 4, delta: 1 }, trade_volume: { value: 900 } });
  assert.equal(metricsView.seq, 11);
  await act(async () => r.update(h(App, { panel: false })));
  assert.deepEqual(s.ops("unsubscribe").map((o) => o.channel).sort(), ["alerts", "metrics.trading"]);
  await act(async () => r.unmount());
});

test("useQuotecast(options) owns its connection and reports its state", async () => {
  let seen;
  function Own() {
    seen = useQuotecast(options);
    return null;
  }
  const { r, s } = await mount(h(Own));
  assert.equal(seen.state, "open");
  await act(async () => s.drop(4003, "forbidden"));
  assert.equal(seen.state, "closed");
  await act(async () => r.unmount());
});
