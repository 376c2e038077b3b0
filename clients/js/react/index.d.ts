// Types of the React hooks (react/index.js).
import type { ReactNode, ReactElement } from "react";
import type {
  ConnectOptions,
  QuotecastClient,
  ConnectionState,
  Health,
  Price,
  MetricValue,
  SubscribeSpec,
  ReliableMessage,
  GapEvent,
} from "../src/quotecast.js";

/** One shared connection for the hooks below it: from `options` (owned) or a given `client`. */
export function QuotecastProvider(props: {
  options?: ConnectOptions;
  client?: QuotecastClient;
  children?: ReactNode;
}): ReactElement;

/** The connection and its state; with `options`, a connection owned by the component. */
export function useQuotecast(options?: ConnectOptions): {
  client: QuotecastClient | null;
  state: ConnectionState;
  health: Health | undefined;
};

/** The latest price of a symbol; undefined until the first. */
export function usePrice(symbol: string): Price | undefined;

/** The latest window of a metrics channel subscription. */
export function useMetrics(
  channel: string,
  spec?: Omit<SubscribeSpec, "channel">,
): { values: Record<string, MetricValue>; seq?: number; windowEnd?: number };

/** Reliable messages newest first, each once; gaps the server could not fill. */
export function useAlerts(opts?: { since?: number; limit?: number; channel?: string }): {
  alerts: ReliableMessage[];
  gaps: GapEvent[];
};
