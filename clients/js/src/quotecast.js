// quotecast browser/Node client: one ES module, no dependencies.
//
// The server serves this very file at /client.js, so it is plain modern
// JavaScript with its types in quotecast.d.ts beside it (checked with tsc).
// It is one file because a browser importing /client.js fetches nothing else.
//
// Layout, in the order a message travels:
//   backoff / JWT helpers   pure functions, unit-tested on their own
//   OpQueue                 bounded offline queue of client ops
//   WsTransport, SseTransport, parseSse   the two wire formats
//   Subscriptions           desired state: what to (re)subscribe, cursors
//   Client                  connection state machine, routing, liveness
//   connect()               the entry point

/** Close codes after which reconnecting cannot help. */
const CLOSE_FORBIDDEN = 4003;
const CLOSE_TOKEN_EXPIRED = 4001;
/** Reliable channels of the protocol; others are learnt from their acks. */
const RELIABLE_CHANNELS = ["alerts", "sessions", "notifications"];

// ---------------------------------------------------------------- helpers

/**
 * Delay before reconnect attempt `attempt` (0-based): "full jitter", a
 * uniform draw in [0, min(cap, base * 2^attempt)), so a fleet of clients
 * cut off together does not come back together.
 * @param {number} attempt
 * @param {{baseMs: number, capMs: number}} backoff
 * @param {() => number} random
 */
export function backoffDelay(attempt, backoff, random = Math.random) {
  const ceiling = Math.min(backoff.capMs, backoff.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * The `exp` claim of a JWT in milliseconds, or undefined when it cannot be
 * read (the server is the judge of a token; this is only for scheduling).
 * @param {string} token
 */
export function tokenExpiry(token) {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)));
    return typeof json.exp === "number" ? json.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The WebSocket and SSE endpoints for `url`, which may be the server's base
 * (`http://host:8080`), its WebSocket URL (`ws://host:8080/v1/ws`) or
 * relative to the page (`/`).
 * @param {string} url
 * @param {string | undefined} base the page's location, when in a browser
 */
export function endpoints(url, base) {
  const u = new URL(url, base);
  const secure = u.protocol === "https:" || u.protocol === "wss:";
  const host = u.host;
  return {
    ws: `${secure ? "wss" : "ws"}://${host}/v1/ws`,
    sse: `${secure ? "https" : "http"}://${host}/v1/sse`,
  };
}

// ------------------------------------------------------------ offline queue

/**
 * Ops sent while no connection is open, flushed in order on reconnect. At
 * most `limit`: the oldest is dropped (and handed to `onDrop`) to make room.
 */
export class OpQueue {
  /**
   * @param {number} limit
   * @param {(op: object) => void} onDrop
   */
  constructor(limit, onDrop) {
    this.limit = limit;
    this.onDrop = onDrop;
    /** @type {any[]} */
    this.ops = [];
  }

  /** @param {object} op */
  push(op) {
    this.ops.push(op);
    while (this.ops.length > this.limit) {
      const dropped = /** @type {object} */ (this.ops.shift());
      this.onDrop(dropped);
    }
  }

  /** Empties the queue, returning its ops oldest first. */
  drain() {
    const ops = this.ops;
    this.ops = [];
    return ops;
  }

  get length() {
    return this.ops.length;
  }
}

// ---------------------------------------------------------------- transports

/**
 * One WebSocket connection. Reports `open`, each parsed message, activity
 * and one final `close` with the close code and reason.
 */
class WsTransport {
  /**
   * @param {string} url
   * @param {string} token
   * @param {any} WebSocketImpl
   * @param {import("./quotecast.js").TransportEvents} on
   */
  constructor(url, token, WebSocketImpl, on) {
    this.kind = "websocket";
    this.on = on;
    this.closed = false;
    this.opened = false;
    const ws = new WebSocketImpl(`${url}?access_token=${encodeURIComponent(token)}`);
    this.ws = ws;
    ws.onopen = () => {
      this.opened = true;
      on.open();
    };
    ws.onmessage = (/** @type {{data: any}} */ ev) => {
      if (typeof ev.data !== "string") return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        on.activity();
        return;
      }
      on.message(msg);
    };
    ws.onclose = (/** @type {{code: number, reason: string}} */ ev) =>
      this.finish(ev.code || 1006, ev.reason || "");
    ws.onerror = () => {
      // Browsers follow with a close event; some runtimes (Node 20's
      // WebSocket) do not when the connection fails before opening.
      if (!this.opened && !this.closed) this.close(1006, "connection failed");
    };
  }

  /** @param {object} op */
  send(op) {
    if (this.ws.readyState === 1) this.ws.send(JSON.stringify(op));
  }

  /** Whether ops can change subscriptions in place (SSE must reopen). */
  get live() {
    return true;
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  close(code, reason) {
    if (this.closed) return;
    this.finish(code, reason);
    try {
      this.ws.close(code, reason);
    } catch {
      // Codes a client may not send (1006) or a socket still connecting.
      this.ws.close();
    }
  }

  /**
   * @param {number} code
   * @param {string} reason
   * @param {number} [status]
   */
  finish(code, reason, status) {
    if (this.closed) return;
    this.closed = true;
    this.on.close({ code, reason, opened: this.opened, status });
  }
}

/**
 * Splits Server-Sent Events text into events. Tolerant by design: CRLF or
 * LF line ends, comment lines (heartbeats), multi-line `data:`, a missing
 * space after the colon, unknown fields ignored. Returns the complete events
 * and the unfinished tail to prepend to the next chunk.
 * @param {string} text
 * @returns {{events: {event: string, data: string, id: string | undefined}[], rest: string, comments: number}}
 */
export function parseSse(text) {
  const events = [];
  let comments = 0;
  const blocks = text.split(/\r?\n\r?\n/);
  const rest = /** @type {string} */ (blocks.pop());
  for (const block of blocks) {
    let event = "message";
    /** @type {string[]} */
    const data = [];
    /** @type {string | undefined} */
    let id;
    for (const line of block.split(/\r?\n/)) {
      if (line === "") continue;
      if (line.startsWith(":")) {
        comments++;
        continue;
      }
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (data.length > 0) events.push({ event, data: data.join("\n"), id });
  }
  return { events, rest, comments };
}

/**
 * One Server-Sent Events stream over fetch (so status codes are visible
 * and no EventSource is needed). It cannot carry ops: subscriptions are in
 * the URL (`subs=`), so a change reopens the stream.
 */
class SseTransport {
  /**
   * @param {string} url
   * @param {string} token
   * @param {object[]} subs subscribe ops
   * @param {typeof fetch} fetchImpl
   * @param {import("./quotecast.js").TransportEvents} on
   */
  constructor(url, token, subs, fetchImpl, on) {
    this.kind = "sse";
    this.on = on;
    this.closed = false;
    this.opened = false;
    /** The last `id:` seen; kept for diagnostics (resume uses `since`). */
    this.lastEventId = /** @type {string | undefined} */ (undefined);
    this.abort = new AbortController();
    const query = new URLSearchParams({ access_token: token, subs: JSON.stringify(subs) });
    this.run(`${url}?${query}`, fetchImpl).catch((/** @type {any} */ e) =>
      this.finish(1006, String(e && e.message ? e.message : e)),
    );
  }

  /**
   * @param {string} url
   * @param {typeof fetch} fetchImpl
   */
  async run(url, fetchImpl) {
    const res = await fetchImpl(url, {
      headers: { accept: "text/event-stream" },
      signal: this.abort.signal,
    });
    if (!res.ok || !res.body) {
      let reason = `http_${res.status}`;
      try {
        const body = await res.json();
        reason = body.reason || body.error || reason;
      } catch {
        // Not JSON: the status says enough.
      }
      this.finish(httpCloseCode(res.status), reason, res.status);
      return;
    }
    this.opened = true;
    this.on.open();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      const { events, rest, comments } = parseSse(buf);
      buf = rest;
      if (comments > 0) this.on.activity();
      for (const ev of events) {
        if (ev.id !== undefined) this.lastEventId = ev.id;
        this.deliver(ev.data);
      }
    }
    this.finish(1006, "stream ended");
  }

  /** @param {string} data */
  deliver(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this.on.activity();
      return;
    }
    // The server ends a stream with a `close` event in place of a close frame.
    if (msg && msg.type === "close") {
      this.finish(msg.code || 1006, msg.reason || "");
      this.abort.abort();
      return;
    }
    this.on.message(msg);
  }

  send() {
    // Ops cannot travel on SSE; the client reopens with new `subs` instead.
  }

  get live() {
    return false;
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  close(code, reason) {
    this.finish(code, reason);
    this.abort.abort();
  }

  /**
   * @param {number} code
   * @param {string} reason
   * @param {number} [status]
   */
  finish(code, reason, status) {
    if (this.closed) return;
    this.closed = true;
    this.on.close({ code, reason, opened: this.opened, status });
  }
}

/**
 * The close code an HTTP refusal of a stream stands for, so both transports
 * report one vocabulary: 401 is a token problem, 403 a refusal.
 * @param {number} status
 */
function httpCloseCode(status) {
  if (status === 401) return CLOSE_TOKEN_EXPIRED;
  if (status === 403) return CLOSE_FORBIDDEN;
  return 1006;
}

// ------------------------------------------------------------- subscriptions

let nextHandleId = 1;

/**
 * What the application wants subscribed, independent of any connection:
 * the source of every (re)subscribe, and the `since` cursors of reliable
 * channels.
 */
class Subscriptions {
  constructor() {
    /** @type {Map<number, import("./quotecast.js").Subscription & {[k: string]: any}>} */
    this.handles = new Map();
    /** symbol -> number of handles that want it */
    this.symbols = new Map();
    /** metrics channel -> the handle whose spec is in force */
    this.metrics = new Map();
    /** reliable channel -> last seq delivered on this connection's stream */
    this.cursors = new Map();
    /** channels learnt to be reliable from their acks */
    this.reliable = new Set(RELIABLE_CHANNELS);
  }

  /** @param {string} channel */
  isReliable(channel) {
    return this.reliable.has(channel);
  }

  /** @param {string} channel */
  isMetrics(channel) {
    return channel.startsWith("metrics.");
  }
}

// ----------------------------------------------------------------- the client

/**
 * A connection to quotecast that survives disconnects. See connect().
 */
export class Client {
  /** @param {import("./quotecast.js").ConnectOptions} options */
  constructor(options) {
    if (!options || !options.url) throw new TypeError("connect: url is required");
    if (!options.token && !options.tokenProvider) {
      throw new TypeError("connect: token or tokenProvider is required");
    }
    const g = /** @type {any} */ (globalThis);
    this.options = {
      transport: options.transport || "auto",
      backoff: { baseMs: 500, capMs: 30000, ...(options.backoff || {}) },
      queueLimit: options.queueLimit ?? 100,
      pingIntervalMs: options.pingIntervalMs ?? 10000,
      pongTimeoutMs: options.pongTimeoutMs ?? 10000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10000,
      refreshBeforeExpMs: options.refreshBeforeExpMs ?? 30000,
      wsFailuresBeforeSse: options.wsFailuresBeforeSse ?? 2,
      maxSymbolsPerOp: options.maxSymbolsPerOp ?? 200,
      random: options.random || Math.random,
      WebSocket: options.WebSocket || g.WebSocket,
      fetch: options.fetch || (g.fetch && g.fetch.bind(g)),
    };
    const base = g.location ? g.location.href : undefined;
    this.urls = endpoints(options.url, base);
    this.token = options.token;
    this.tokenProvider = options.tokenProvider;
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    this.subs = new Subscriptions();
    /** The latest price of each subscribed symbol, for late joiners. */
    this.prices = new Map();
    this.queue = new OpQueue(this.options.queueLimit, (/** @type {any} */ op) => {
      this.rejectOp(op.id, new Error("dropped from the offline queue"));
      this.emit("queue_overflow", { op });
    });
    /** @type {Map<number, {resolve: Function, reject: Function, handles: any[]}>} */
    this.pending = new Map();
    this.nextOpId = 1;
    this.attempt = 0;
    this.wsFailures = 0;
    this.kind = this.options.transport === "sse" ? "sse" : "websocket";
    /** @type {import("./quotecast.js").ConnectionState} */
    this.state = "connecting";
    this.health = { lagging: false, feedStale: false, skipped: 0, feedStaleSince: undefined };
    /** @type {import("./quotecast.js").Welcome | undefined} */
    this.welcome = undefined;
    this.stats = { reconnects: 0, duplicatesDropped: 0, gaps: 0, messages: 0 };
    /** @type {any} */
    this.transport = undefined;
    /** @type {any} */
    this.timers = { reconnect: 0, refresh: 0, ping: 0, reopen: 0, connect: 0 };
    this.lastHeard = 0;
    this.stopped = false;
    /** SSE with no subscription: no stream until the first subscribe. */
    this.sseIdle = false;
    this.start();
  }

  // ------------------------------------------------------------ public API

  /**
   * Listens to an event; returns the function that stops listening.
   * @param {string} event
   * @param {Function} fn
   */
  on(event, fn) {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /**
   * Subscribes; the handle receives the channel's messages (prices: the
   * snapshot then price updates of its symbols; reliable channels: each
   * message once, in order). It stays subscribed across reconnects until
   * `unsubscribe()`.
   * @param {import("./quotecast.js").SubscribeSpec} spec
   * @param {(msg: any) => void} [onMessage]
   */
  subscribe(spec, onMessage) {
    if (!spec || typeof spec.channel !== "string") {
      throw new TypeError("subscribe: channel is required");
    }
    /** @type {any} */
    const handle = {
      id: nextHandleId++,
      channel: spec.channel,
      spec: { ...spec },
      listeners: new Set(onMessage ? [onMessage] : []),
      cursor: undefined,
      active: true,
      ack: undefined,
    };
    handle.ready = new Promise((resolve, reject) => {
      handle.resolve = resolve;
      handle.reject = reject;
    });
    // An unobserved refusal must not become an unhandled rejection.
    handle.ready.catch(() => {});
    handle.on = (/** @type {Function} */ fn) => {
      handle.listeners.add(fn);
      return () => handle.listeners.delete(fn);
    };
    handle.unsubscribe = () => this.unsubscribe(handle);
    const subs = this.subs;
    subs.handles.set(handle.id, handle);
    /** @type {any} */
    let op;
    if (spec.channel === "prices") {
      const fresh = [];
      for (const s of spec.symbols || []) {
        const n = subs.symbols.get(s) || 0;
        subs.symbols.set(s, n + 1);
        if (n === 0) fresh.push(s);
      }
      op = { op: "subscribe", channel: "prices", symbols: fresh };
      if (fresh.length === 0) {
        // Every symbol is already subscribed: hand over the latest we hold.
        handle.ack = { type: "ack", id: 0, channel: "prices", subscribed: [...(spec.symbols || [])] };
        handle.resolve(handle.ack);
        op = undefined;
        const wanted = /** @type {string[]} */ (spec.symbols || []);
        const data = wanted.map((s) => this.prices.get(s)).filter(Boolean);
        if (data.length) {
          queueMicrotask(() => {
            for (const fn of handle.listeners) fn({ type: "snapshot", channel: "prices", data });
          });
        }
      }
    } else if (subs.isMetrics(spec.channel)) {
      // One subscription per metrics channel per connection: this replaces.
      const old = subs.metrics.get(spec.channel);
      if (old) old.active = false;
      subs.metrics.set(spec.channel, handle);
      op = this.subscribeOp(handle, spec.since);
    } else {
      if (subs.isReliable(spec.channel)) handle.cursor = spec.since;
      // A new handle asks for its own `since` only; the others have theirs.
      op = this.subscribeOp(handle, spec.since);
    }
    if (op) this.sendSubscription(op, [handle]);
    return handle;
  }

  /**
   * Sends a client op now, or queues it while disconnected (bounded; the
   * oldest is dropped with a `queue_overflow` event). Returns the reply.
   * @param {object} op without `id`: the client numbers ops
   */
  send(op) {
    const full = { ...op, id: this.nextOpId++ };
    if (this.kind === "sse") {
      return Promise.reject(new Error("ops cannot be sent over SSE: subscribe() and unsubscribe() reopen the stream"));
    }
    return new Promise((resolve, reject) => {
      this.pending.set(full.id, { resolve, reject, handles: [] });
      if (this.isOpen() && this.transport.live) this.transport.send(full);
      else this.queue.push(full);
    });
  }

  /** Sends a `ping` op; resolves with the `pong`. */
  ping() {
    return this.send({ op: "ping" });
  }

  /**
   * Closes for good: no reconnect, every handle ends.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "client closed") {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimers();
    if (this.transport) this.transport.close(code, reason);
    this.setState("closed", { code, reason });
  }

  // ------------------------------------------------------ connection cycle

  start() {
    this.setState(this.stats.reconnects === 0 && this.attempt === 0 ? "connecting" : "reconnecting");
    this.openTransport().catch((e) => this.terminal(CLOSE_TOKEN_EXPIRED, String(e && e.message)));
  }

  async openTransport() {
    const token = await this.currentToken();
    if (this.stopped) return;
    if (token === undefined) return this.terminal(CLOSE_TOKEN_EXPIRED, "token_expired");
    this.token = token;
    this.welcome = undefined;
    const on = {
      open: () => this.onOpen(transport),
      message: (/** @type {any} */ m) => this.onMessage(transport, m),
      activity: () => (this.lastHeard = Date.now()),
      close: (/** @type {any} */ info) => this.onClose(transport, info),
    };
    /** @type {any} */
    let transport;
    if (this.kind === "sse") {
      // The stream's URL holds its subscriptions: built now, at the last
      // moment; with none there is nothing to ask for until the first.
      const subs = this.resubscribeOps();
      if (subs.length === 0) {
        this.transport = undefined;
        this.sseIdle = true;
        return;
      }
      transport = new SseTransport(this.urls.sse, token, subs, this.options.fetch, on);
    } else {
      transport = new WsTransport(this.urls.ws, token, this.options.WebSocket, on);
    }
    transport.token = token;
    this.transport = transport;
    // A handshake that neither opens nor fails (a black-holed network) is cut.
    clearTimeout(this.timers.connect);
    this.timers.connect = setTimeout(() => {
      if (!transport.opened) transport.close(1006, "connect timeout");
    }, this.options.connectTimeoutMs);
  }

  /**
   * A token that is not known to be expired: the static one, or the
   * provider's (asked again when the one held has expired).
   */
  async currentToken() {
    const held = this.token;
    const expired = held !== undefined && (tokenExpiry(held) ?? Infinity) <= Date.now();
    if (held !== undefined && !expired) return held;
    if (!this.tokenProvider) return undefined;
    const fresh = await this.tokenProvider();
    const exp = tokenExpiry(fresh);
    return exp !== undefined && exp <= Date.now() ? undefined : fresh;
  }

  /** @param {any} transport */
  onOpen(transport) {
    if (transport !== this.transport) return;
    this.lastHeard = Date.now();
    this.wsFailures = 0;
    if (transport.live) {
      for (const op of this.resubscribeOps()) transport.send(op);
    }
    for (const op of this.queue.drain()) {
      if (transport.live) transport.send(op);
      else this.rejectOp(op.id, new Error("ops cannot be sent over SSE"));
    }
    this.scheduleRefresh();
    this.schedulePing();
    this.setState("open");
  }

  /**
   * @param {any} transport
   * @param {{code: number, reason: string, opened: boolean, status?: number}} info
   */
  onClose(transport, info) {
    if (transport !== this.transport || this.stopped) return;
    this.clearTimers();
    for (const [id, p] of this.pending) {
      // Subscriptions are resent from state; other ops did not get a reply.
      if (p.handles.length === 0) p.reject(new Error(`connection closed (${info.code})`));
      this.pending.delete(id);
    }
    if (info.code === CLOSE_FORBIDDEN) return this.terminal(info.code, info.reason);
    if (info.code === CLOSE_TOKEN_EXPIRED) {
      // Only a new token can help; a static one (or the same again) cannot.
      this.token = undefined;
      return this.retryWithNewToken(info, transport.token);
    }
    if (this.kind === "sse" && this.options.transport === "auto" && !info.opened) {
      // No SSE endpoint (404) or no server at all: WebSocket is tried again.
      if (info.status === 404 || info.status === undefined) this.kind = "websocket";
    }
    if (!info.opened && this.kind === "websocket" && this.options.transport === "auto") {
      this.wsFailures++;
      if (this.wsFailures >= this.options.wsFailuresBeforeSse && this.options.fetch) {
        this.kind = "sse";
        this.wsFailures = 0;
      }
    }
    if (info.opened) this.attempt = 0;
    this.scheduleReconnect(info);
  }

  /**
   * @param {{code: number, reason: string}} info
   * @param {string} old the token the connection was refused with
   */
  async retryWithNewToken(info, old) {
    let fresh;
    try {
      fresh = this.tokenProvider ? await this.tokenProvider() : undefined;
    } catch {
      fresh = undefined;
    }
    if (this.stopped) return;
    const exp = fresh ? tokenExpiry(fresh) : undefined;
    if (!fresh || fresh === old || (exp !== undefined && exp <= Date.now())) {
      return this.terminal(info.code, info.reason || "token_expired");
    }
    this.token = fresh;
    this.scheduleReconnect(info);
  }

  /** @param {{code: number, reason: string}} info */
  scheduleReconnect(info) {
    const delayMs = backoffDelay(this.attempt, this.options.backoff, this.options.random);
    this.attempt++;
    this.stats.reconnects++;
    this.setState("reconnecting", {
      code: info.code,
      reason: info.reason,
      attempt: this.attempt,
      delayMs,
      transport: this.kind,
    });
    this.timers.reconnect = setTimeout(() => {
      if (this.stopped) return;
      this.openTransport().catch((e) => this.terminal(CLOSE_TOKEN_EXPIRED, String(e && e.message)));
    }, delayMs);
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  terminal(code, reason) {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimers();
    if (this.transport && !this.transport.closed) this.transport.close(1000, reason);
    for (const h of this.subs.handles.values()) {
      if (!h.ack) h.reject(Object.assign(new Error(reason), { code }));
    }
    this.setState("closed", { code, reason });
  }

  clearTimers() {
    for (const k of Object.keys(this.timers)) {
      clearTimeout(this.timers[k]);
      clearInterval(this.timers[k]);
      this.timers[k] = 0;
    }
  }

  isOpen() {
    return this.transport && this.transport.opened && !this.transport.closed;
  }

  // ------------------------------------------------------- token refresh

  /** Asks the provider for a new token ahead of `exp`, then sends `auth`. */
  scheduleRefresh() {
    clearTimeout(this.timers.refresh);
    if (this.stopped) return;
    const exp = this.token ? tokenExpiry(this.token) : undefined;
    if (!this.tokenProvider || exp === undefined) return;
    const wait = Math.max(0, exp - Date.now() - this.options.refreshBeforeExpMs);
    this.timers.refresh = setTimeout(() => this.refresh(), Math.min(wait, 2 ** 31 - 1));
  }

  async refresh() {
    let fresh;
    try {
      fresh = await /** @type {Function} */ (this.tokenProvider)();
    } catch (e) {
      this.emit("error", { type: "error", code: "token_provider", message: String(e) });
      return;
    }
    if (!fresh || fresh === this.token || this.stopped) return;
    this.token = fresh;
    if (this.transport && this.transport.live) {
      this.send({ op: "auth", token: fresh }).then(
        () => this.scheduleRefresh(),
        (e) => this.emit("error", { type: "error", code: "auth_refused", message: String(e && e.message) }),
      );
    } else {
      // SSE carries the token in its URL: reopen with the new one.
      this.reopen();
    }
  }

  // ------------------------------------------------------------- liveness

  /**
   * Browsers cannot see WebSocket pings, so liveness is the `ping` op (and
   * on SSE the heartbeat comments): a ping op followed by nothing at all
   * for `pongTimeoutMs` means the connection is dead even if the socket has
   * not noticed.
   */
  schedulePing() {
    clearInterval(this.timers.ping);
    const every = this.options.pingIntervalMs;
    if (!(every > 0)) return;
    /** When the unanswered ping went out (0: none outstanding). */
    let pingSentAt = 0;
    this.timers.ping = setInterval(() => {
      const transport = this.transport;
      if (!transport) return;
      const now = Date.now();
      if (!transport.live) {
        // SSE answers no ping: its heartbeat comments are the sign of life.
        const beat = this.welcome ? 2 * this.welcome.heartbeat_ms : 0;
        if (now - this.lastHeard > Math.max(every + this.options.pongTimeoutMs, beat)) {
          transport.close(4000, "no heartbeat");
        }
        return;
      }
      // Dead only when a ping went out and nothing at all came back in time,
      // so a timer delayed by a busy page never condemns a live connection.
      if (pingSentAt && this.lastHeard < pingSentAt) {
        if (now - pingSentAt > this.options.pongTimeoutMs) transport.close(4000, "no reply to ping");
        return;
      }
      pingSentAt = now;
      transport.send({ op: "ping", id: this.nextOpId++ });
    }, every);
  }

  // ------------------------------------------------------- subscriptions

  /**
   * The subscribe op for one non-price handle, resuming from `since` (and
   * the channel's broadcast stream from `broadcastSince`).
   * @param {any} handle
   * @param {number | undefined} since
   * @param {number | undefined} [broadcastSince]
   */
  subscribeOp(handle, since, broadcastSince) {
    const { channel, symbols, since: _asked, ...rest } = handle.spec;
    /** @type {any} */
    const op = { op: "subscribe", channel, ...rest };
    if (since !== undefined) op.since = since;
    if (broadcastSince !== undefined) op.broadcast_since = broadcastSince;
    return op;
  }

  /**
   * Where a reliable channel resumes: the lowest cursor of its handles, so
   * every handle gets what it has not seen (each drops its own duplicates).
   * `field` is `cursor` for the tenant's stream, `broadcastCursor` for the
   * broadcast stream beside it (its own `seq`s).
   * @param {string} channel
   * @param {"cursor" | "broadcastCursor"} [field]
   */
  channelCursor(channel, field = "cursor") {
    let lowest;
    for (const h of this.subs.handles.values()) {
      if (h.channel !== channel || h[field] === undefined) continue;
      if (lowest === undefined || h[field] < lowest) lowest = h[field];
    }
    return lowest;
  }

  /** Every op that recreates the desired state on a new connection. */
  resubscribeOps() {
    const ops = [];
    const symbols = [...this.subs.symbols.keys()];
    const priceHandles = [...this.subs.handles.values()].filter((h) => h.channel === "prices");
    for (let i = 0; i < symbols.length; i += this.options.maxSymbolsPerOp) {
      const chunk = symbols.slice(i, i + this.options.maxSymbolsPerOp);
      ops.push(this.track({ op: "subscribe", channel: "prices", symbols: chunk }, priceHandles));
    }
    const done = new Set();
    for (const h of this.subs.handles.values()) {
      if (h.channel === "prices" || done.has(h.channel)) continue;
      if (this.subs.isMetrics(h.channel) && this.subs.metrics.get(h.channel) !== h) continue;
      done.add(h.channel);
      const peers = [...this.subs.handles.values()].filter((o) => o.channel === h.channel);
      const reliable = this.subs.isReliable(h.channel);
      const since = reliable ? this.channelCursor(h.channel) : h.spec.since;
      const broadcastSince = reliable ? this.channelCursor(h.channel, "broadcastCursor") : undefined;
      ops.push(this.track(this.subscribeOp(h, since, broadcastSince), peers));
    }
    return ops;
  }

  /**
   * Numbers a subscription op and remembers which handles wait on its ack.
   * @param {any} op
   * @param {any[]} handles
   */
  track(op, handles) {
    op.id = this.nextOpId++;
    this.pending.set(op.id, { resolve: () => {}, reject: () => {}, handles });
    return op;
  }

  /**
   * @param {any} op
   * @param {any[]} handles
   */
  sendSubscription(op, handles) {
    if (this.sseIdle) {
      this.sseIdle = false;
      this.openTransport().catch((e) => this.terminal(CLOSE_TOKEN_EXPIRED, String(e && e.message)));
      return;
    }
    if (this.transport && !this.transport.live) return this.reopen();
    if (!this.isOpen()) return; // sent by resubscribeOps() on (re)connect
    this.transport.send(this.track(op, handles));
  }

  /** @param {any} handle */
  unsubscribe(handle) {
    const op = this.forget(handle);
    if (!op || !this.transport) return; // the next connection simply omits it
    if (!this.transport.live) this.reopen();
    else if (this.isOpen()) this.transport.send({ ...op, id: this.nextOpId++ });
  }

  /**
   * Removes a handle from the desired state; returns the unsubscribe op the
   * server needs, if any (a symbol another handle still wants stays).
   * @param {any} handle
   */
  forget(handle) {
    if (!this.subs.handles.delete(handle.id)) return undefined;
    handle.listeners.clear();
    /** @type {any} */
    let op;
    if (handle.channel === "prices") {
      const gone = [];
      for (const s of handle.spec.symbols || []) {
        const n = (this.subs.symbols.get(s) || 1) - 1;
        if (n <= 0) {
          this.subs.symbols.delete(s);
          this.prices.delete(s);
          gone.push(s);
        } else this.subs.symbols.set(s, n);
      }
      if (gone.length) op = { op: "unsubscribe", channel: "prices", symbols: gone };
    } else if (this.subs.isMetrics(handle.channel)) {
      if (this.subs.metrics.get(handle.channel) === handle) {
        this.subs.metrics.delete(handle.channel);
        op = { op: "unsubscribe", channel: handle.channel };
      }
    } else if (![...this.subs.handles.values()].some((h) => h.channel === handle.channel)) {
      op = { op: "unsubscribe", channel: handle.channel };
    }
    return op;
  }

  /** SSE only: reopens the stream with the current subscriptions, batched. */
  reopen() {
    if (this.timers.reopen) return;
    this.timers.reopen = setTimeout(() => {
      this.timers.reopen = 0;
      if (this.stopped || !this.transport) return;
      const old = this.transport;
      this.transport = undefined;
      old.close(1000, "resubscribe");
      this.openTransport().catch((e) => this.terminal(CLOSE_TOKEN_EXPIRED, String(e && e.message)));
    }, 20);
  }

  // -------------------------------------------------------------- routing

  /**
   * @param {any} transport
   * @param {any} msg
   */
  onMessage(transport, msg) {
    if (transport !== this.transport || !msg || typeof msg !== "object") return;
    this.lastHeard = Date.now();
    this.stats.messages++;
    switch (msg.type) {
      case "welcome":
        this.welcome = msg;
        break;
      case "ack":
        this.onAck(msg);
        break;
      case "error":
        this.onError(msg);
        break;
      case "pong":
        this.settle(msg.id, msg);
        break;
      case "status":
        this.onStatus(msg);
        break;
      case "snapshot":
        this.onSnapshot(msg);
        break;
      case "price":
        this.prices.set(msg.symbol, msg);
        this.toHandles(msg, (h) => h.channel === "prices" && hasSymbol(h, msg.symbol));
        break;
      default:
        if (typeof msg.channel === "string") this.onChannelMessage(msg);
    }
    this.emit("message", msg);
    this.emit(msg.type, msg);
  }

  /**
   * @param {number} id
   * @param {any} msg
   */
  settle(id, msg) {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    p.resolve(msg);
    return p;
  }

  /**
   * @param {number} id
   * @param {Error} err
   */
  rejectOp(id, err) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.reject(err);
  }

  /** @param {any} ack */
  onAck(ack) {
    const p = this.settle(ack.id, ack);
    if (!p) return;
    if (ack.last_seq !== undefined && typeof ack.channel === "string") {
      this.subs.reliable.add(ack.channel);
      this.onReliableAck(ack, p.handles);
    }
    for (const h of p.handles) {
      if (Array.isArray(ack.errors) && h.channel === "prices") this.dropRefused(h, ack.errors);
      if (!h.ack) {
        h.ack = ack;
        h.resolve(ack);
      }
    }
  }

  /**
   * Symbols the server refused (unknown, not entitled) are forgotten, so a
   * reconnect does not ask for them again.
   * @param {any} handle
   * @param {{symbol?: string}[]} errors
   */
  dropRefused(handle, errors) {
    for (const e of errors) {
      if (!e.symbol || !hasSymbol(handle, e.symbol)) continue;
      handle.spec.symbols = handle.spec.symbols.filter((/** @type {string} */ s) => s !== e.symbol);
      const n = (this.subs.symbols.get(e.symbol) || 1) - 1;
      if (n <= 0) this.subs.symbols.delete(e.symbol);
      else this.subs.symbols.set(e.symbol, n);
    }
  }

  /**
   * Resume bookkeeping: without `since` a handle starts at `last_seq`; with
   * `recovered:false` the gap is reported, never hidden, and when the stream
   * went backwards (a restarted server) the cursors start over.
   * @param {any} ack
   * @param {any[]} handles
   */
  onReliableAck(ack, handles) {
    this.onStreamStart(ack.channel, ack, handles, "cursor");
    // Tenant-wide channels also follow the broadcast stream, on seqs of its own.
    if (ack.broadcast) this.onStreamStart(ack.channel, ack.broadcast, handles, "broadcastCursor");
  }

  /**
   * One reliable stream's start in an ack (`since`, `recovered`, `last_seq`).
   * @param {string} channel
   * @param {any} start
   * @param {any[]} handles
   * @param {"cursor" | "broadcastCursor"} field
   */
  onStreamStart(channel, start, handles, field) {
    for (const h of handles) {
      if (h[field] === undefined) h[field] = start.recovered ? start.last_seq : h[field];
    }
    if (start.recovered !== false) return;
    const reset = start.since != null && start.last_seq < start.since;
    this.stats.gaps++;
    const gap = {
      channel,
      since: start.since,
      lastSeq: start.last_seq,
      reset,
      ...(field === "broadcastCursor" ? { broadcast: true } : {}),
    };
    for (const h of handles) {
      if (reset || h[field] === undefined) h[field] = 0;
      for (const fn of h.listeners) fn({ type: "gap", ...gap });
    }
    this.emit("gap", gap);
  }

  /** @param {any} msg */
  onError(msg) {
    const p = this.pending.get(msg.id);
    if (p) {
      this.pending.delete(msg.id);
      const err = Object.assign(new Error(`${msg.code}: ${msg.message || ""}`), { code: msg.code });
      p.reject(err);
      for (const h of p.handles) {
        // A refused subscription is dropped, so reconnects do not repeat it.
        if (!h.ack) {
          h.reject(err);
          this.forget(h);
        }
      }
    }
  }

  /** @param {any} msg */
  onStatus(msg) {
    if (msg.state === "lagging") {
      this.health.lagging = true;
      this.health.skipped = msg.skipped || 0;
    } else if (msg.state === "feed_stale") {
      this.health.feedStale = true;
      this.health.feedStaleSince = msg.since;
    } else if (msg.state === "ok") {
      // `ok` does not say which condition ended; both have when it comes.
      this.health.lagging = false;
      this.health.feedStale = false;
      this.health.feedStaleSince = undefined;
    }
    const next = this.health.feedStale ? "feed_stale" : this.health.lagging ? "lagging" : "open";
    if (this.state !== next && this.isOpen()) this.setState(next, { ...this.health });
  }

  /** @param {any} msg */
  onSnapshot(msg) {
    const data = Array.isArray(msg.data) ? msg.data : [];
    if (msg.channel === "prices") {
      for (const p of data) this.prices.set(p.symbol, p);
      for (const h of this.subs.handles.values()) {
        if (h.channel !== "prices") continue;
        const mine = data.filter((/** @type {any} */ p) => hasSymbol(h, p.symbol));
        if (mine.length) for (const fn of h.listeners) fn({ ...msg, data: mine });
      }
    } else if (this.subs.isReliable(msg.channel)) {
      // After recovered:false: the messages still held, each deduplicated;
      // their jumps are the gap the ack already reported.
      for (const m of data) this.onChannelMessage(m, true);
    } else {
      const h = this.subs.metrics.get(msg.channel);
      if (h) for (const fn of h.listeners) fn(msg);
      else this.toHandles(msg, (o) => o.channel === msg.channel);
    }
  }

  /**
   * @param {any} msg
   * @param {boolean} [held] from a snapshot of held messages
   */
  onChannelMessage(msg, held = false) {
    const channel = msg.channel;
    if (this.subs.isReliable(channel) && typeof msg.seq === "number") {
      // A broadcast (`tenant: "*"`) message counts on the broadcast stream's seqs.
      const field = msg.broadcast === true ? "broadcastCursor" : "cursor";
      for (const h of this.subs.handles.values()) {
        if (h.channel !== channel) continue;
        if (h[field] !== undefined && msg.seq <= h[field]) {
          this.stats.duplicatesDropped++;
          continue;
        }
        if (!held && h[field] !== undefined && msg.seq > h[field] + 1 && !h.spec.filter) {
          const gap = { channel, since: h[field], lastSeq: msg.seq - 1, reset: false };
          this.stats.gaps++;
          for (const fn of h.listeners) fn({ type: "gap", ...gap });
          this.emit("gap", gap);
        }
        h[field] = msg.seq;
        for (const fn of h.listeners) fn(msg);
      }
      return;
    }
    if (this.subs.isMetrics(channel)) {
      const h = this.subs.metrics.get(channel);
      if (h) for (const fn of h.listeners) fn(msg);
      return;
    }
    this.toHandles(msg, (h) => h.channel === channel);
  }

  /**
   * @param {any} msg
   * @param {(h: any) => boolean} which
   */
  toHandles(msg, which) {
    for (const h of this.subs.handles.values()) {
      if (which(h)) for (const fn of h.listeners) fn(msg);
    }
  }

  // --------------------------------------------------------------- events

  /**
   * @param {import("./quotecast.js").ConnectionState} state
   * @param {object} [detail]
   */
  setState(state, detail = {}) {
    this.state = state;
    this.emit("state", { state, ...detail });
  }

  /**
   * @param {string} event
   * @param {any} payload
   */
  emit(event, payload) {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(payload);
      } catch (e) {
        // One faulty listener must not stop delivery to the others.
        setTimeout(() => {
          throw e;
        });
      }
    }
  }
}

/**
 * @param {any} handle
 * @param {string} symbol
 */
function hasSymbol(handle, symbol) {
  return Array.isArray(handle.spec.symbols) && handle.spec.symbols.includes(symbol);
}

/**
 * Opens a connection to quotecast that reconnects, resubscribes and resumes
 * by itself until `close()`.
 * @param {import("./quotecast.js").ConnectOptions} options
 * @returns {import("./quotecast.js").QuotecastClient}
 */
export function connect(options) {
  return /** @type {any} */ (new Client(options));
}
