#!/usr/bin/env bash
# Churn soak: quotecast-soak starts a release quotecast on loopback and churns
# clients against it for SECONDS (default 600); then the server log is checked
# for panics.
# Usage: tools/scripts/soak.sh [SECONDS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-600}
THREADS=${2:-64}
OUT=${OUT:-results/soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
cargo build --release -q
cargo build --release -q -p quotecast-soak
ulimit -n 65536 2>/dev/null || true
target/release/quotecast-soak --server-bin target/release/quotecast \
  --server-log "$OUT/server.log" \
  --seconds "$SECONDS_TO_RUN" --threads "$THREADS" --json "$OUT/soak.json"
if grep -qi "panicked" "$OUT/server.log"; then
  echo "server log has panics:"; grep -i -A5 "panicked" "$OUT/server.log"; exit 1
fi
echo "soak passed; figures in $OUT/soak.json"
