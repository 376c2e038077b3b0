// What the binary serves to browsers is this directory's source, byte for
// byte: /client.js = src/quotecast.js, / = clients/terminal/index.html
// (embedded at build time). Skipped only while the binary answers 404 on
// /v1/sse, i.e. before the server side of issue 11 is merged.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { startServer, hasSse, repoRoot } from "../support/server.js";

const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

test("GET /client.js is src/quotecast.js and GET / is the terminal page, byte for byte", async (t) => {
  const server = await startServer();
  cleanups.push(() => server.stop());
  if (!(await hasSse(server.base))) {
    return t.skip("binary answers 404 on /v1/sse: the server side of issue 11 is not in this build");
  }
  for (const [route, file, type] of [
    ["/client.js", "clients/js/src/quotecast.js", "javascript"],
    ["/", "clients/terminal/index.html", "text/html"],
  ]) {
    const res = await fetch(`${server.base}${route}`);
    assert.equal(res.status, 200, route);
    assert.match(res.headers.get("content-type") ?? "", new RegExp(type), route);
    const served = Buffer.from(await res.arrayBuffer());
    const source = await readFile(path.join(repoRoot, file));
    assert.ok(served.equals(source), `${route} differs from ${file}: rebuild the binary (cargo build)`);
  }
});
