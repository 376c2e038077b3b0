// Type-level tests of quotecast.d.ts and react/index.d.ts, checked by
// `tsc --noEmit` (npm run typecheck). Every @ts-expect-error below must be
// an error, or tsc fails: wrong uses of the API do not type-check.
import { connect, type ServerMessage, type Price, type StateEvent } from "../src/quotecast.js";
import { usePrice, useAlerts, useMetrics, useQuotecast } from "../react/index.js";

const client = connect({ url: "http://127.0.0.1:8080", token: "t", backoff: { baseMs: 250 } });

client.on("state", (s: StateEvent) => {
  if (s.state === "closed") console.log(s.code, s.reason);
});
client.on("price", (p) => {
  const bps: number = p.spread_bps;
  void bps;
});
client.on("gap", (g) => {
  const reset: boolean = g.reset;
  void reset;
});

/** Every server message narrows on `type`. */
function describe(m: ServerMessage): string {
  switch (m.type) {
    case "price":
      return `${m.symbol} ${m.bid}/${m.ask}`;
    case "metrics":
      return Object.keys(m.values).join(",");
    case "alert":
      return `${m.level} ${m.message}`;
    case "status":
      return m.state === "lagging" ? String(m.skipped) : m.state;
    case "ack":
      return "id" in m ? String(m.id) : "";
    default:
      return m.type;
  }
}
void describe;

const sub = client.subscribe({ channel: "metrics.trading", metrics: ["trade_count"], window_ms: 1000, agg: "sum" });
sub.ready.then((ack) => ack.channel);
sub.on((m) => m.type === "gap" && m.lastSeq);
sub.unsubscribe();
client.send({ op: "ping" });

// @ts-expect-error: a subscription names its channel
client.subscribe({ symbols: ["EURUSD"] });
// @ts-expect-error: there is no such aggregation
client.subscribe({ channel: "metrics.trading", agg: "median" });
// @ts-expect-error: the client numbers ops itself
client.send({ op: "ping", id: 3 });
// @ts-expect-error: unknown event
client.on("prices", () => {});

function Hooks() {
  const p: Price | undefined = usePrice("EURUSD");
  const { alerts, gaps } = useAlerts({ since: 0 });
  const { values } = useMetrics("metrics.trading", { agg: "sum" });
  const { state } = useQuotecast();
  return [p?.mid, alerts.length, gaps.length, values.trade_count?.value, state];
}
void Hooks;
