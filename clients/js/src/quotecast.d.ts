// Types of quotecast.js: the client API and every server message of
// docs/PROTOCOL.md. Hand-written so that the served file is the source.

// ------------------------------------------------------------ server messages

/** First message on every connection. */
export interface Welcome {
  type: "welcome";
  conn: string;
  shard: number;
  /** UNIX ms. */
  server_time: number;
  /** UNIX ms at which the token expires. */
  session_expires: number;
  heartbeat_ms: number;
  max_rate_hz: number;
}

/** A per-symbol or per-metric refusal inside an ack. */
export interface AckItemError {
  symbol?: string;
  metric?: string;
  code: ErrorCode;
}

/** Reply to a `subscribe` of `prices` or a `metrics.*` channel. */
export interface SubscribeAck {
  type: "ack";
  id: number;
  channel: string;
  subscribed: string[];
  errors?: AckItemError[];
  /** metrics channels: the window and aggregation in force. */
  window_ms?: number;
  agg?: Agg;
}

/** Reply to a `subscribe` of a reliable channel (`alerts`, `sessions`, `notifications`). */
export interface ReliableAck {
  type: "ack";
  id: number;
  channel: string;
  subscribed: true;
  since?: number;
  /** false: the history did not reach back to `since`; a snapshot follows. */
  recovered: boolean;
  last_seq: number;
  filtered?: boolean;
}

/** Reply to an `unsubscribe`. */
export interface UnsubscribeAck {
  type: "ack";
  id: number;
  channel: string;
  unsubscribed?: string[];
  subscribed?: string[];
}

/** Reply to an `auth` refresh. */
export interface AuthAck {
  type: "ack";
  id: number;
  op: "auth";
  session_expires: number;
}

export type Ack = SubscribeAck | ReliableAck | UnsubscribeAck | AuthAck;

/** The best bid/ask of one symbol across venues. */
export interface Price {
  type: "price";
  symbol: string;
  /** Per symbol, strictly increasing; a jump means conflated values. */
  seq: number;
  bid: number;
  bid_size: number;
  bid_src: string;
  ask: number;
  ask_size: number;
  ask_src: string;
  mid: number;
  spread: number;
  spread_bps: number;
  /** UNIX µs at which the aggregator published it. */
  ts: number;
}

/** One metric's value in a window. */
export interface MetricValue {
  value: number;
  /** Change since the previous window; absent when that had no value. */
  delta?: number;
}

/** A closed window of a `metrics.*` subscription (changed metrics only). */
export interface Metrics {
  type: "metrics";
  channel: string;
  /** The window's index: window_end / window_ms - 1. */
  seq: number;
  window_end: number;
  values: Record<string, MetricValue>;
}

/** Fields every reliable message has. */
export interface ReliableBase {
  channel: string;
  /** Per stream, from 1, no gaps. */
  seq: number;
  /** UNIX µs. */
  ts: number;
  /** Further published fields. */
  [field: string]: unknown;
}

export interface Alert extends ReliableBase {
  type: "alert";
  level: "info" | "warning" | "critical";
  kind: string;
  message: string;
}

export interface SessionEvent extends ReliableBase {
  type: "session";
  session: string;
  status: "started" | "paused" | "completed" | "expired" | "emergency_stopped";
}

export interface Notification extends ReliableBase {
  type: "notification";
}

/** A value of a configured keyed channel. */
export interface Keyed {
  type: "keyed";
  channel: string;
  key: string;
  seq: number;
  data: Record<string, unknown>;
  ts: number;
}

export type ReliableMessage = Alert | SessionEvent | Notification;

/** Current values after a subscribe (prices, metrics) or the held history after `recovered:false`. */
export interface Snapshot {
  type: "snapshot";
  channel: string;
  data: Array<Price | Metrics | ReliableMessage | Keyed | Record<string, unknown>>;
}

export type Status =
  | { type: "status"; state: "lagging"; skipped: number }
  | { type: "status"; state: "ok" }
  | { type: "status"; state: "feed_stale"; since: number };

export interface Pong {
  type: "pong";
  id: number;
  server_time: number;
}

export type ErrorCode =
  | "bad_request"
  | "unknown_op"
  | "unknown_channel"
  | "unknown_symbol"
  | "unknown_metric"
  | "unknown_field"
  | "forbidden"
  | "not_entitled"
  | "rate_limited"
  | "too_many_subscriptions"
  | "message_too_large"
  | "token_expired"
  | "internal";

export interface ErrorMessage {
  type: "error";
  id?: number;
  code: ErrorCode | string;
  message?: string;
}

/** The last event of an SSE stream, in place of a close frame. */
export interface CloseMessage {
  type: "close";
  code: number;
  reason: string;
}

/** Every message the server sends. */
export type ServerMessage =
  | Welcome
  | Ack
  | Snapshot
  | Price
  | Metrics
  | Alert
  | SessionEvent
  | Notification
  | Keyed
  | Status
  | Pong
  | ErrorMessage
  | CloseMessage;

// ------------------------------------------------------------------ client ops

export type Agg = "sum" | "avg" | "min" | "max" | "last" | "count" | "delta";

/** What one `subscribe` op names (the SDK adds `op` and `id`). */
export interface SubscribeSpec {
  channel: string;
  /** prices */
  symbols?: string[];
  /** metrics.*: default every metric of the channel */
  metrics?: string[];
  /** metrics.*: dimension → value, all must match */
  filters?: Record<string, string>;
  window_ms?: number;
  window?: "day" | "hour";
  agg?: Agg;
  /** reliable channels: replay everything after this seq */
  since?: number;
  /** reliable channels: equality or set membership on data fields */
  filter?: Record<string, string | string[]>;
  /** keyed channels */
  keys?: string[];
}

export type ClientOp =
  | ({ op: "subscribe"; id: number } & SubscribeSpec)
  | { op: "unsubscribe"; id: number; channel: string; symbols?: string[]; metrics?: string[] }
  | { op: "ping"; id: number }
  | { op: "auth"; id: number; token: string };

/** An op as given to `send()`: the client numbers it. */
export type OutgoingOp = ClientOp extends infer T ? (T extends { id: number } ? Omit<T, "id"> : never) : never;

// ---------------------------------------------------------------- the client

export type ConnectionState = "connecting" | "open" | "lagging" | "feed_stale" | "reconnecting" | "closed";

export interface StateEvent {
  state: ConnectionState;
  /** reconnecting/closed: the close code (403 refusals are 4003, 401 are 4001). */
  code?: number;
  reason?: string;
  /** reconnecting: attempt number (from 1) and the delay before it. */
  attempt?: number;
  delayMs?: number;
  transport?: "websocket" | "sse";
  lagging?: boolean;
  feedStale?: boolean;
  skipped?: number;
  feedStaleSince?: number;
}

/** A reliable stream could not be replayed from where the client was. */
export interface GapEvent {
  type?: "gap";
  channel: string;
  /** The cursor the client asked to resume from. */
  since: number | undefined;
  /** The stream's last seq per the server. */
  lastSeq: number;
  /** true: the stream started over (a restarted server); cursors start from 0. */
  reset: boolean;
  /** true: the gap is in the channel's broadcast stream (`tenant: "*"`), which has seqs of its own. */
  broadcast?: boolean;
}

export interface BackoffOptions {
  /** First delay ceiling, ms (default 500). */
  baseMs: number;
  /** Largest delay ceiling, ms (default 30000). */
  capMs: number;
}

export interface ConnectOptions {
  /** Server base (`http://host:8080`), its WebSocket URL, or a path relative to the page. */
  url: string;
  token?: string;
  /** Called for a first token, before `exp` (then the `auth` op) and after 4001. */
  tokenProvider?: () => string | Promise<string>;
  /** default "auto": WebSocket, SSE after `wsFailuresBeforeSse` failed opens. */
  transport?: "auto" | "websocket" | "sse";
  backoff?: Partial<BackoffOptions>;
  /** Ops sent while offline that are kept (default 100). */
  queueLimit?: number;
  /** `ping` op period (default 10000; 0 = off). */
  pingIntervalMs?: number;
  /** A ping op answered by nothing for this long closes and reconnects (default 10000). */
  pongTimeoutMs?: number;
  /** A handshake not open by then is abandoned and retried (default 10000). */
  connectTimeoutMs?: number;
  /** Refresh this long before `exp` (default 30000). */
  refreshBeforeExpMs?: number;
  wsFailuresBeforeSse?: number;
  maxSymbolsPerOp?: number;
  /** For tests: the jitter source. */
  random?: () => number;
  /** A WebSocket constructor (default globalThis.WebSocket). */
  WebSocket?: unknown;
  /** A fetch (default globalThis.fetch), used by SSE. */
  fetch?: typeof fetch;
}

/** Messages a subscription handle receives. */
export type HandleMessage = ServerMessage | (GapEvent & { type: "gap" });

export interface Subscription {
  readonly id: number;
  readonly channel: string;
  /** Resolves with the first ack; rejects when the server refuses the subscription. */
  readonly ready: Promise<SubscribeAck | ReliableAck>;
  on(fn: (msg: HandleMessage) => void): () => void;
  unsubscribe(): void;
}

export interface EventMap {
  state: StateEvent;
  gap: GapEvent;
  queue_overflow: { op: ClientOp };
  message: ServerMessage;
  welcome: Welcome;
  ack: Ack;
  snapshot: Snapshot;
  price: Price;
  metrics: Metrics;
  alert: Alert;
  session: SessionEvent;
  notification: Notification;
  keyed: Keyed;
  status: Status;
  pong: Pong;
  error: ErrorMessage;
}

export interface Health {
  lagging: boolean;
  feedStale: boolean;
  skipped: number;
  feedStaleSince: number | undefined;
}

export interface QuotecastClient {
  readonly state: ConnectionState;
  readonly health: Health;
  readonly welcome: Welcome | undefined;
  /** The transport in use now. */
  readonly kind: "websocket" | "sse";
  /** reconnects: attempts scheduled; duplicatesDropped: reliable messages already delivered; gaps: gap events. */
  readonly stats: { reconnects: number; duplicatesDropped: number; gaps: number; messages: number };
  /** The latest price of each subscribed symbol. */
  readonly prices: Map<string, Price>;
  on<K extends keyof EventMap>(event: K, fn: (payload: EventMap[K]) => void): () => void;
  subscribe(spec: SubscribeSpec, onMessage?: (msg: HandleMessage) => void): Subscription;
  send(op: OutgoingOp): Promise<ServerMessage>;
  ping(): Promise<Pong>;
  close(code?: number, reason?: string): void;
}

/** Opens a connection that reconnects, resubscribes and resumes until `close()`. */
export function connect(options: ConnectOptions): QuotecastClient;

/** Full-jitter backoff: uniform in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt: number, backoff: BackoffOptions, random?: () => number): number;

/** A JWT's `exp` in ms, or undefined. */
export function tokenExpiry(token: string): number | undefined;

/** The WebSocket and SSE URLs of a server. */
export function endpoints(url: string, base?: string): { ws: string; sse: string };

/** Parses SSE text into complete events and the unfinished rest. */
export function parseSse(text: string): {
  events: { event: string; data: string; id: string | undefined }[];
  rest: string;
  comments: number;
};

/** The bounded offline queue. */
export class OpQueue {
  constructor(limit: number, onDrop: (op: object) => void);
  readonly limit: number;
  readonly length: number;
  push(op: object): void;
  drain(): object[];
}

/** The class behind connect(); use connect(). */
export class Client {
  constructor(options: ConnectOptions);
}

/** Events the transports report to the client (internal). */
export interface TransportEvents {
  open(): void;
  message(msg: unknown): void;
  activity(): void;
  close(info: { code: number; reason: string; opened: boolean; status?: number }): void;
}
