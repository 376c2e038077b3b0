import { test } from "node:test";
import assert from "node:assert/strict";
import { parseSse } from "../../src/quotecast.js";

test("parseSse splits events, keeps the unfinished tail, counts heartbeats", () => {
  const text =
    ": heartbeat\n\n" +
    'event: price\ndata: {"type":"price","seq":1}\n\n' +
    'event: alert\r\nid: 7\r\ndata:{"type":"alert","seq":7}\r\n\r\n' +
    "event: price\ndata: {\"ty";
  const { events, rest, comments } = parseSse(text);
  assert.equal(comments, 1);
  assert.deepEqual(events, [
    { event: "price", data: '{"type":"price","seq":1}', id: undefined },
    { event: "alert", data: '{"type":"alert","seq":7}', id: "7" },
  ]);
  assert.equal(rest, 'event: price\ndata: {"ty');
  const next = parseSse(rest + 'pe":"price"}\n\n');
  assert.deepEqual(next.events, [{ event: "price", data: '{"type":"price"}', id: undefined }]);
  assert.equal(next.rest, "");
});

test("parseSse joins multi-line data and ignores unknown fields and data-less blocks", () => {
  const { events } = parseSse("retry: 100\nfoo: bar\ndata: a\ndata: b\n\nid: 3\n\n");
  assert.deepEqual(events, [{ event: "message", data: "a\nb", id: undefined }]);
});
