// Serves the terminal page and the SDK from the working tree, and passes
// every other request (REST, WebSocket upgrades, SSE) to a real quotecast.
// Used only while the binary under test does not serve `/` itself; the
// Origin header is rewritten to the upstream's own origin, as a dev proxy
// does, so the server's Origin policy sees its own page.

import http from "node:http";
import net from "node:net";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { repoRoot } from "./server.js";

const FILES = {
  "/": ["clients/terminal/index.html", "text/html; charset=utf-8"],
  "/client.js": ["clients/js/src/quotecast.js", "text/javascript; charset=utf-8"],
};

/**
 * @param {number} upstreamPort
 * @returns {Promise<{base: string, close: () => Promise<void>}>}
 */
export async function startPageServer(upstreamPort) {
  const upstreamOrigin = `http://127.0.0.1:${upstreamPort}`;
  const sockets = new Set();
  const server = http.createServer(async (req, res) => {
    const pathname = new URL(req.url ?? "/", "http://x").pathname;
    const file = FILES[pathname];
    if (file && req.method === "GET") {
      const body = await readFile(path.join(repoRoot, file[0]));
      res.writeHead(200, { "content-type": file[1], "cache-control": "no-store" });
      res.end(body);
      return;
    }
    const headers = { ...req.headers, host: `127.0.0.1:${upstreamPort}` };
    if (headers.origin) headers.origin = upstreamOrigin;
    const up = http.request(
      { host: "127.0.0.1", port: upstreamPort, path: req.url, method: req.method, headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  // WebSocket: replay the request head upstream, then splice the sockets.
  server.on("upgrade", (req, client, head) => {
    const up = net.connect(upstreamPort, "127.0.0.1", () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i];
        const lower = name.toLowerCase();
        const value = lower === "origin" ? upstreamOrigin : lower === "host" ? `127.0.0.1:${upstreamPort}` : req.rawHeaders[i + 1];
        lines.push(`${name}: ${value}`);
      }
      up.write(lines.join("\r\n") + "\r\n\r\n");
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    for (const s of [client, up]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    up.on("close", () => client.destroy());
    client.on("close", () => up.destroy());
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", () => r(undefined)));
  const port = /** @type {import("node:net").AddressInfo} */ (server.address()).port;
  return {
    base: `http://127.0.0.1:${port}`,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
