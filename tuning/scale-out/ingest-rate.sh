#!/usr/bin/env bash
# How many venue quotes per second one node takes in: from the built-in
# simulator (asked for more than it can make) and from NATS (a replay file
# pushed by `quotecast bridge` at fixed rates). Loopback only; every process
# is started here and killed at the end; each run is bounded.
#
#   cargo build --release && bash tuning/scale-out/ingest-rate.sh
#
# Env: BIN (default target/release/quotecast), SECS (sim run, default 10),
# QUOTES (quotes per NATS run, default 2000000), RATES (default "200000 400000").
set -euo pipefail
BIN=${BIN:-target/release/quotecast}
SECS=${SECS:-10}
QUOTES=${QUOTES:-2000000}
RATES=${RATES:-200000 400000}
command -v nats-server >/dev/null || { echo "needs nats-server (apt-get install nats-server)"; exit 1; }
[ -x "$BIN" ] || { echo "needs $BIN (cargo build --release)"; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The aggregator's quote counter (or a series named $2) from /metrics on port $1.
metric() {
  curl -sf "http://127.0.0.1:$1/metrics" |
    awk -v name="${2:-quotecast_aggregator_quotes_total}" '$1 == name { print $2 }'
}
# Starts the server with "$@" on a free port; prints the port once it listens.
serve() {
  local port; port=$(free_port)
  "$BIN" serve --listen "127.0.0.1:$port" "$@" >"$tmp/serve.$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && { echo "$port"; return; }
    sleep 0.1
  done
  echo "server did not start: $(tail -5 "$tmp/serve.$port.log")" >&2; exit 1
}
stop_last() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

# 1000 symbols × 5 venues, the same universe for both feeds.
python3 - "$tmp" "$QUOTES" <<'EOF'
import json, sys, random
tmp, n = sys.argv[1], int(sys.argv[2])
symbols = [f"S{i:04d}" for i in range(1000)]
venues = [f"LP{i}" for i in range(1, 6)]
with open(f"{tmp}/config.toml", "w") as f:
    f.write(f"[feed]\nsymbols = {json.dumps(symbols)}\nvenues = {json.dumps(venues)}\nsim_events_rate = 0\n")
rnd = random.Random(7)
with open(f"{tmp}/quotes.jsonl", "w") as f:
    for i in range(n):
        bid = round(1.0 + rnd.random() * 0.01, 5)
        f.write(json.dumps({"symbol": symbols[i % 1000], "venue": venues[i % 5], "bid": bid,
                            "bid_size": 1000000, "ask": round(bid + 0.0002, 5), "ask_size": 1000000}) + "\n")
EOF

echo "built-in simulator, asked for 5,000,000 quotes/s for ${SECS}s:"
port=$(serve --config "$tmp/config.toml" --sim-rate 5000000)
sleep 1
q0=$(metric "$port"); sleep "$SECS"; q1=$(metric "$port")
echo "  $(( (q1 - q0) / SECS )) quotes/s"
stop_last

np=$(free_port)
nats-server -a 127.0.0.1 -p "$np" -js -sd "$tmp/js" >"$tmp/nats.log" 2>&1 &
pids+=($!)
sleep 1
for rate in $RATES; do
  port=$(serve --config "$tmp/config.toml" --nats-url "nats://127.0.0.1:$np")
  sleep 1
  q0=$(metric "$port")
  start=$(date +%s.%N)
  "$BIN" bridge --to "nats://127.0.0.1:$np" --rate "$rate" "$tmp/quotes.jsonl" >/dev/null
  sleep 1 # let the node drain what is in flight
  q1=$(metric "$port")
  took=$(echo "$(date +%s.%N) - $start - 1" | bc)
  got=$(( q1 - q0 ))
  slow=$(metric "$port" quotecast_bus_slow_consumer_events_total)
  printf '  NATS at %s quotes/s: %s of %s received (%.1f%% lost) in %.1fs, %s slow-consumer events\n' \
    "$rate" "$got" "$QUOTES" "$(echo "100 * ($QUOTES - $got) / $QUOTES" | bc -l)" "$took" "${slow:-0}"
  stop_last
done
