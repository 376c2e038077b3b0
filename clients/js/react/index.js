// React hooks for quotecast. React is a peer dependency: imported here,
// never bundled into the SDK (src/quotecast.js has no imports at all).
//
// One connection per <QuotecastProvider>; every hook below it shares it and
// unsubscribes what it subscribed when its component unmounts.

import { createContext, createElement, useContext, useEffect, useState } from "react";
import { connect } from "../src/quotecast.js";

/** @typedef {import("../src/quotecast.js").QuotecastClient} QuotecastClient */
/** @typedef {import("../src/quotecast.js").ConnectOptions} ConnectOptions */

const ClientContext = createContext(/** @type {QuotecastClient | null} */ (null));

/**
 * What identifies a connection's options: functions and constructors are
 * left out, so an inline options object does not reconnect on each render.
 * @param {ConnectOptions} options
 */
function optionsKey(options) {
  const { url, token, transport, backoff, queueLimit, pingIntervalMs } = options;
  return JSON.stringify({ url, token, transport, backoff, queueLimit, pingIntervalMs });
}

/**
 * A client owned by the calling component: connected on mount, closed on
 * unmount or when the options change.
 * @param {ConnectOptions | undefined} options
 */
function useOwnedClient(options) {
  const [client, setClient] = useState(/** @type {QuotecastClient | null} */ (null));
  const key = options ? optionsKey(options) : null;
  useEffect(() => {
    if (!options) return undefined;
    const c = connect(options);
    setClient(c);
    return () => {
      c.close();
      setClient(null);
    };
    // `key` stands for the options (see optionsKey).
  }, [key]);
  return client;
}

/**
 * The connection state of `client`, re-rendering on every state event.
 * @param {QuotecastClient | null} client
 */
function useClientState(client) {
  const [state, setState] = useState(() => snapshotState(client));
  useEffect(() => {
    setState(snapshotState(client));
    if (!client) return undefined;
    return client.on("state", () => setState(snapshotState(client)));
  }, [client]);
  return state;
}

/** @param {QuotecastClient | null} client */
function snapshotState(client) {
  return {
    state: client ? client.state : /** @type {const} */ ("connecting"),
    health: client ? { ...client.health } : undefined,
  };
}

/**
 * Provides one shared connection to the hooks below it: pass `options` to
 * have it connect (and close on unmount), or a `client` you manage.
 * @param {{options?: ConnectOptions, client?: QuotecastClient, children?: any}} props
 */
export function QuotecastProvider(props) {
  const owned = useOwnedClient(props.client ? undefined : props.options);
  return createElement(ClientContext.Provider, { value: props.client ?? owned }, props.children);
}

/**
 * The connection and its state. With `options`, the component owns a
 * connection of its own; without, it is the provider's.
 * @param {ConnectOptions} [options]
 */
export function useQuotecast(options) {
  const shared = useContext(ClientContext);
  const owned = useOwnedClient(options);
  const client = options ? owned : shared;
  const { state, health } = useClientState(client);
  return { client, state, health };
}

/** The provider's client, or null while it connects. */
function useSharedClient() {
  return useContext(ClientContext);
}

/**
 * The latest price of `symbol` (snapshot, then every update), undefined
 * until the first one.
 * @param {string} symbol
 */
export function usePrice(symbol) {
  const client = useSharedClient();
  const [price, setPrice] = useState(() => client?.prices.get(symbol));
  useEffect(() => {
    if (!client || !symbol) return undefined;
    setPrice(client.prices.get(symbol));
    const sub = client.subscribe({ channel: "prices", symbols: [symbol] }, (m) => {
      if (m.type === "price" && m.symbol === symbol) setPrice(m);
      else if (m.type === "snapshot") {
        const p = m.data.find((x) => "symbol" in x && x.symbol === symbol);
        if (p) setPrice(/** @type {import("../src/quotecast.js").Price} */ (p));
      }
    });
    return () => sub.unsubscribe();
  }, [client, symbol]);
  return price;
}

/**
 * The latest window of a `metrics.*` subscription: every metric's value
 * (metrics unchanged since the previous window keep theirs), its `seq` and
 * `windowEnd`. A connection has one subscription per metrics channel: the
 * newest `useMetrics` of a channel is the one in force.
 * @param {string} channel
 * @param {Omit<import("../src/quotecast.js").SubscribeSpec, "channel">} [spec]
 */
export function useMetrics(channel, spec = {}) {
  const client = useSharedClient();
  const [view, setView] = useState(
    /** @type {{values: Record<string, import("../src/quotecast.js").MetricValue>, seq?: number, windowEnd?: number}} */ ({ values: {} }),
  );
  const key = JSON.stringify(spec);
  useEffect(() => {
    if (!client) return undefined;
    setView({ values: {} });
    /** @param {import("../src/quotecast.js").Metrics} m */
    const fold = (m) =>
      setView((v) => ({ values: { ...v.values, ...m.values }, seq: m.seq, windowEnd: m.window_end }));
    const sub = client.subscribe({ ...JSON.parse(key), channel }, (m) => {
      if (m.type === "metrics") fold(m);
      else if (m.type === "snapshot") {
        for (const x of m.data) if ("values" in x) fold(/** @type {any} */ (x));
      }
    });
    return () => sub.unsubscribe();
  }, [client, channel, key]);
  return view;
}

/**
 * Alerts, newest first (at most `limit`), each exactly once across
 * reconnects; `since` replays the history after that seq. Gaps the server
 * could not fill are listed in `gaps`.
 * @param {{since?: number, limit?: number, channel?: string}} [opts]
 */
export function useAlerts(opts = {}) {
  const { since, limit = 100, channel = "alerts" } = opts;
  const client = useSharedClient();
  const [view, setView] = useState(
    /** @type {{alerts: import("../src/quotecast.js").ReliableMessage[], gaps: import("../src/quotecast.js").GapEvent[]}} */ ({ alerts: [], gaps: [] }),
  );
  useEffect(() => {
    if (!client) return undefined;
    setView({ alerts: [], gaps: [] });
    const sub = client.subscribe({ channel, since }, (m) => {
      if (m.type === "gap") setView((v) => ({ ...v, gaps: [...v.gaps, m] }));
      else if (m.type === "alert" || m.type === "session" || m.type === "notification") {
        setView((v) => ({ ...v, alerts: [m, ...v.alerts].slice(0, limit) }));
      }
    });
    return () => sub.unsubscribe();
  }, [client, channel, since, limit]);
  return view;
}
