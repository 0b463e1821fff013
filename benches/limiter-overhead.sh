#!/usr/bin/env bash
# `health` req/s on 50 connections with the request rate limit on vs off, measured in the
# same run, alternating gateways round by round (the machine is shared and noisy). The "on"
# gateway has a budget no client reaches (so every request pays the check but none is
# refused); "off" has no limiter. Prints each round and the median ratio on/off.
#
#   bash benches/limiter-overhead.sh            # ROUNDS=5 SECS=5 CONNS=50 by default
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5} SECS=${SECS:-5} CONNS=${CONNS:-50}
TOKEN=Bench0123456789abcdefghijklmnopqrstuvwxyzAB
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release --bin openclaw
cargo bench -q --bench load --no-run 2>/dev/null
BIN=$CARGO_TARGET_DIR/release/openclaw
. benches/gateways.sh
trap stop_gateways EXIT

rps() { # $1 = port
  cargo bench -q --bench load -- rpc --url "ws://127.0.0.1:$1" --token $TOKEN \
    --connections "$CONNS" --seconds "$SECS" --method health --json 2>/dev/null |
    field reqPerSec
}

ON=$(start "$BIN" '{ gateway: { rateLimit: { maxRequests: 4000000000, windowMs: 60000, maxConnections: 1000, exemptLoopback: false } } }')
OFF=$(start "$BIN" '{ gateway: { rateLimit: { enabled: false } } }')
ratios=()
for r in $(seq "$ROUNDS"); do
  off=$(rps "$OFF"); on=$(rps "$ON")
  ratio=$(python3 -c "print(round($on/$off, 3))")
  ratios+=("$ratio")
  echo "round $r: off $off req/s, on $on req/s, on/off $ratio"
done
python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:]]; print(f'median on/off: {statistics.median(r)} (min {min(r)}, max {max(r)}) over {len(r)} rounds of {\"$SECS\"} s, {\"$CONNS\"} connections')" "${ratios[@]}"
