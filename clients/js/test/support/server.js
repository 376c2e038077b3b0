// Starts the real quotecast binary for end-to-end tests and mints its tokens.
//
// The binary comes from QUOTECAST_BIN, else the worktree's debug build. It
// prints `quotecast listening on ADDR` once every shard accepts; we wait for
// that line with a deadline, never a fixed sleep.

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (clients/js/test/support → ../../../..). */
export const repoRoot = path.resolve(here, "../../../..");
export const SECRET = "quotecast-js-e2e-secret";
const READY = "quotecast listening on ";
/** Generous: a loaded 2-core machine may take seconds to start a debug build. */
export const DEADLINE_MS = 20000;

/** The quotecast binary under test. */
export function binary() {
  const bin = process.env.QUOTECAST_BIN || path.join(repoRoot, "target/debug/quotecast");
  if (!existsSync(bin)) {
    throw new Error(`quotecast binary not found at ${bin}: run cargo build or set QUOTECAST_BIN`);
  }
  return bin;
}

/**
 * A running server. `port` 0 picks a free one; a restart passes the old port.
 * @param {{port?: number, args?: string[]}} [opts]
 */
export async function startServer(opts = {}) {
  const args = ["serve", "--listen", `127.0.0.1:${opts.port ?? 0}`, "--shards", "1", ...(opts.args || [])];
  const child = spawn(binary(), args, {
    env: { ...process.env, QUOTECAST_JWT_HS256_SECRET: SECRET },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-20000);
  });
  const addr = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`quotecast not ready within ${DEADLINE_MS} ms:\n${stderr}`));
    }, DEADLINE_MS);
    child.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.trim().startsWith(READY));
      if (line) {
        clearTimeout(timer);
        resolve(line.trim().slice(READY.length).trim());
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`quotecast exited (${code}) before ready:\n${stderr}`));
    });
  });
  child.stdout.resume();
  const port = Number(String(addr).split(":").pop());
  return {
    child,
    port,
    base: `http://127.0.0.1:${port}`,
    stderr: () => stderr,
    /** Stops it: SIGTERM (drain), SIGKILL after 10 s. */
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** @param {string | Buffer} b */
const b64url = (b) => Buffer.from(b).toString("base64url");

/**
 * An HS256 token signed with the test secret, as the server expects.
 * @param {{sub?: string, tenant?: string, roles?: string[], ttlS?: number, symbols?: string[]}} [c]
 */
export function token(c = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: c.sub ?? "u1",
    tenant: c.tenant ?? "local",
    roles: c.roles ?? ["TRADER"],
    iat: now,
    exp: now + (c.ttlS ?? 3600),
    ...(c.symbols ? { symbols: c.symbols } : {}),
  };
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac("sha256", SECRET).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/**
 * Publishes events with `POST /v1/publish` and a SERVICE token; resolves
 * with the JSON reply (202 once the batch is in every shard's history).
 * @param {string} base
 * @param {object | object[]} events
 */
export async function publish(base, events) {
  const res = await fetch(`${base}/v1/publish`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token({ sub: "svc", roles: ["SERVICE"] })}`,
      "content-type": "application/json",
    },
    body: JSON.stringify(events),
  });
  const body = await res.json();
  if (res.status !== 202) throw new Error(`publish: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/**
 * Resolves with the first value `take` returns that is not undefined,
 * checking at once (with `undefined`: what already happened counts) and on
 * every event `on` reports; rejects after the deadline.
 * @template T
 * @param {(fn: (x: any) => void) => () => void} on
 * @param {(x: any) => T | undefined} take
 * @param {string} what
 * @param {number} [ms]
 * @returns {Promise<T>}
 */
export function waitFor(on, take, what, ms = DEADLINE_MS) {
  const now = take(undefined);
  if (now !== undefined) return Promise.resolve(now);
  return new Promise((resolve, reject) => {
    /** @type {() => void} */
    let off = () => {};
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    off = on((x) => {
      const v = take(x);
      if (v !== undefined) {
        clearTimeout(timer);
        off();
        resolve(v);
      }
    });
  });
}

/** Whether the binary serves SSE yet (404 means the server side is not merged). */
export async function hasSse(base) {
  const res = await fetch(`${base}/v1/sse?channel=prices&symbols=EURUSD&access_token=${token()}`);
  const status = res.status;
  await res.body?.cancel();
  return status !== 404;
}
