#!/usr/bin/env bash
# CI for the JavaScript client (clients/js) and the terminal page.
#
#   QUOTECAST_BIN=target/debug/quotecast CHROMIUM=/usr/bin/chromium clients/js/ci.sh
#
# Steps: npm ci (devDependencies only: typescript, react, puppeteer-core;
# no browser download), tsc over the SDK, the hooks and the type tests,
# unit tests, end-to-end tests against QUOTECAST_BIN, the headless Chromium
# test of the page. Node >= 20. Exits non-zero on the first failure.
set -euo pipefail

: "${QUOTECAST_BIN:?set QUOTECAST_BIN to the quotecast binary to test (e.g. target/debug/quotecast)}"
# A relative path is taken from where the script was called.
QUOTECAST_BIN="$(realpath -m "$QUOTECAST_BIN")"
export QUOTECAST_BIN
cd "$(dirname "$0")"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$QUOTECAST_BIN" ] || { echo "QUOTECAST_BIN=$QUOTECAST_BIN is not an executable" >&2; exit 1; }
[ -x "$CHROMIUM" ] || { echo "no Chromium at $CHROMIUM (apt-get install -y chromium)" >&2; exit 1; }

# Node 20 has WebSocket behind a flag; later versions have it on.
WS_FLAG=""
if ! node -e 'process.exit(typeof WebSocket === "undefined" ? 1 : 0)'; then
  WS_FLAG="--experimental-websocket"
fi

echo "== npm ci (clients/js)"
npm ci --no-audit --no-fund

echo "== tsc (checkJs, strict) over src/quotecast.js, react/index.js, test/types.ts"
npx tsc -p tsconfig.json

echo "== SDK and hooks unit tests"
node $WS_FLAG --test test/unit/*.test.js

echo "== end-to-end tests against $QUOTECAST_BIN"
node $WS_FLAG --test --test-concurrency=1 test/e2e/*.test.js

echo "== terminal page in headless Chromium ($CHROMIUM)"
node $WS_FLAG --test test/browser/*.test.js
