#!/usr/bin/env bash
# `health` req/s on 50 connections with Prometheus metrics on vs off (`gateway.metrics.enabled: false` skips the per-request histogram and serves no /metrics), measured in the
# same run, alternating gateways round by round (the machine is shared and noisy); one
# /metrics scrape a second against the "on" gateway, as a Prometheus would (more often than
# its default 15 s). Prints each round and the median ratio on/off (target ≥ 0.97).
#
#   bash benches/metrics-overhead.sh            # ROUNDS=5 SECS=5 CONNS=50 by default
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5} SECS=${SECS:-5} CONNS=${CONNS:-50}
TOKEN=Bench0123456789abcdefghijklmnopqrstuvwxyzAB
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release --bin openclaw
cargo bench -q --bench load --no-run 2>/dev/null
BIN=$CARGO_TARGET_DIR/release/openclaw
. benches/gateways.sh

rps() { # $1 = port
  cargo bench -q --bench load -- rpc --url "ws://127.0.0.1:$1" --token $TOKEN \
    --connections "$CONNS" --seconds "$SECS" --method health --json 2>/dev/null |
    field reqPerSec
}

ON=$(start "$BIN" '{}')
OFF=$(start "$BIN" '{ gateway: { metrics: { enabled: false } } }')
( while sleep 1; do curl -s -o /dev/null "http://127.0.0.1:$ON/metrics" || break; done ) &
SCRAPER=$!
trap 'kill $SCRAPER 2>/dev/null; stop_gateways' EXIT
ratios=()
for r in $(seq "$ROUNDS"); do
  off=$(rps "$OFF"); on=$(rps "$ON")
  ratio=$(python3 -c "print(round($on/$off, 3))")
  ratios+=("$ratio")
  echo "round $r: off $off req/s, on $on req/s, on/off $ratio"
done
python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:]]; print(f'median on/off: {statistics.median(r)} (min {min(r)}, max {max(r)}) over {len(r)} rounds of {\"$SECS\"} s, {\"$CONNS\"} connections')" "${ratios[@]}"
