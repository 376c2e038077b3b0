// A loopback TCP proxy the tests can cut: a dropped connection without a
// server restart (what a flaky network or a load balancer does).

import net from "node:net";

/**
 * @param {number} upstreamPort
 * @returns {Promise<{port: number, cut: () => void, refuse: (on: boolean) => void, close: () => Promise<void>}>}
 */
export async function startProxy(upstreamPort) {
  /** @type {Set<net.Socket>} */
  const open = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(upstreamPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      open.add(s);
      s.on("close", () => open.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", () => r(undefined)));
  const addr = /** @type {net.AddressInfo} */ (server.address());
  return {
    port: addr.port,
    /** Drops every connection through the proxy, as a network fault would. */
    cut() {
      for (const s of open) s.destroy();
    },
    /** While on, new connections are closed at once. */
    refuse(on) {
      refusing = on;
    },
    close() {
      for (const s of open) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
