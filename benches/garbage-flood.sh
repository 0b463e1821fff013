#!/usr/bin/env bash
# Issue 14, defect 7: a legitimate client's `health` p50/p99 alone and while N authenticated
# connections send only invalid frames, against the old binary and the new one in the same
# run (alternating, ROUNDS times). The ratio under-flood/alone is the figure to compare.
#
#   BASE_REV=979c82e bash benches/garbage-flood.sh     # builds BASE_REV in a git worktree
#   OLD_BIN=/path/to/openclaw bash benches/garbage-flood.sh
#   (ROUNDS=3 SECS=5 CONNS=200 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} SECS=${SECS:-5} CONNS=${CONNS:-200}
TOKEN=Bench0123456789abcdefghijklmnopqrstuvwxyzAB
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release --bin openclaw
cargo bench -q --bench load --no-run 2>/dev/null
NEW=$CARGO_TARGET_DIR/release/openclaw
. benches/gateways.sh
LOG=$(mktemp)
cleanup() { stop_gateways; cleanup_old_bin; rm -f "$LOG"; }
trap cleanup EXIT
old_bin

run() { cargo bench -q --bench load -- garbage --url "ws://127.0.0.1:$1" --token $TOKEN \
  --connections "$CONNS" --seconds "$SECS" --json 2>"$LOG" || cat "$LOG" >&2; }
row() { python3 -c 'import json,sys; d=json.loads(sys.argv[2]); a=d["alone"]; u=d["underFlood"]
print("| %s | %.3f / %.3f | %.3f / %.3f | %.1f× / %.1f× | %d | %d | %d |" % (sys.argv[1],
  a["p50"], a["p99"], u["p50"], u["p99"], d["p50Ratio"], d["p99Ratio"], d["garbageSent"],
  d["closed1008"], d["underFloodErrors"]))' "$1" "$2"; }

echo "| gateway | alone p50 / p99 ms | under flood p50 / p99 ms | ratio p50 / p99 | garbage frames sent | closed 1008 | legit errors |"
echo "|---|---|---|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
  OLD=$(start "$OLD_BIN"); row "old (round $r)" "$(run "$OLD")"; stop_gateways; PIDS=$(mktemp)
  CUR=$(start "$NEW"); row "new (round $r)" "$(run "$CUR")"; stop_gateways; PIDS=$(mktemp)
done
