#!/usr/bin/env bash
# /metrics scrape time with N idle authenticated connections open (default 10,000), against
# the same scrape with none, in the same run: median of 20 scrapes each (curl time_total).
#   bash benches/metrics-scrape.sh            (N=10000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000} SCRAPES=${SCRAPES:-20}
TOKEN=Bench0123456789abcdefghijklmnopqrstuvwxyzAB
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release --bin openclaw
cargo bench -q --bench load --no-run 2>/dev/null
. benches/gateways.sh
trap stop_gateways EXIT
PORT=$(start "$CARGO_TARGET_DIR/release/openclaw" '{ gateway: { rateLimit: { maxConnections: 20000, maxRequests: 100000 } } }')
scrape() { for _ in $(seq "$SCRAPES"); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$PORT/metrics"; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]*1000}'; }
EMPTY=$(scrape)
BYTES=$(curl -s "http://127.0.0.1:$PORT/metrics" | wc -c)
READY=$(mktemp)
cargo bench -q --bench load -- idle --url "ws://127.0.0.1:$PORT" --token $TOKEN --connections "$N" --hold-seconds 40 2> "$READY" > /dev/null &
LOAD=$!
for _ in $(seq 600); do grep -q READY "$READY" && break; sleep 0.2; done
grep -q READY "$READY" || { echo "idle connections never ready: $(tail -3 "$READY")"; exit 1; }
OPEN=$(curl -s "http://127.0.0.1:$PORT/metrics" | sed -n 's/^openclaw_gateway_connections_open //p')
FULL=$(scrape)
kill "$LOAD" 2>/dev/null || true
echo "metrics scrape: ${EMPTY} ms with 0 connections, ${FULL} ms with ${OPEN} open (median of $SCRAPES, ${BYTES} bytes)"
