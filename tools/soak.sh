#!/usr/bin/env bash
# Churn soak: starts a release quotecast on loopback, runs quotecast-soak
# against it for SECONDS (default 600), then checks the server log for panics.
# Usage: tools/soak.sh [SECONDS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-600}
THREADS=${2:-64}
OUT=${OUT:-results/soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
cargo build --release -q
cargo build --release -q -p quotecast-soak
export QUOTECAST_JWT_HS256_SECRET=soak-secret-$$
ulimit -n 65536 2>/dev/null || true
target/release/quotecast serve --listen 127.0.0.1:0 --shards 1 \
  >"$OUT/server.out" 2>"$OUT/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  ADDR=$(sed -n 's/^quotecast listening on //p' "$OUT/server.out" | head -1)
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "server did not start"; cat "$OUT/server.log"; exit 1; }
TOKEN=$(target/release/quotecast token --sub soak --tenant local --roles TRADER,ADMIN --ttl 2h)
target/release/quotecast-soak --addr "$ADDR" --pid "$SERVER" --token "$TOKEN" \
  --seconds "$SECONDS_TO_RUN" --threads "$THREADS" --json "$OUT/soak.json"
if grep -qi "panicked" "$OUT/server.log"; then
  echo "server log has panics:"; grep -i -A5 "panicked" "$OUT/server.log"; exit 1
fi
kill -0 $SERVER || { echo "server died"; exit 1; }
echo "soak passed; figures in $OUT/soak.json"
