#!/usr/bin/env bash
# Old binary vs new, in the same run: `health` req/s on CONNS connections and full
# handshakes/s (WORKERS loops of open → challenge → connect → hello-ok → close), alternating
# the two gateways round by round (the machine is shared and noisy). Prints each round and
# the median ratio new/old for both.
#
#   BASE_REV=e50d442 bash benches/compare-revs.sh     # builds BASE_REV in a git worktree
#   OLD_BIN=/path/to/openclaw bash benches/compare-revs.sh
#   (ROUNDS=5 SECS=5 CONNS=50 WORKERS=8 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5} SECS=${SECS:-5} CONNS=${CONNS:-50} WORKERS=${WORKERS:-8}
TOKEN=Bench0123456789abcdefghijklmnopqrstuvwxyzAB
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release --bin openclaw
cargo bench -q --bench load --no-run 2>/dev/null
NEW=$CARGO_TARGET_DIR/release/openclaw
. benches/gateways.sh
cleanup() { stop_gateways; cleanup_old_bin; }
trap cleanup EXIT
old_bin

rps() { cargo bench -q --bench load -- rpc --url "ws://127.0.0.1:$1" --token $TOKEN \
  --connections "$CONNS" --seconds "$SECS" --method health --json 2>/dev/null | field reqPerSec; }
hs() { cargo bench -q --bench load -- handshakes --url "ws://127.0.0.1:$1" --token $TOKEN \
  --workers "$WORKERS" --seconds "$SECS" --json 2>/dev/null | field handshakesPerSec; }

OLD=$(start "$OLD_BIN")
CUR=$(start "$NEW")
r_rps=(); r_hs=()
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then # alternate which goes first
    o1=$(rps "$OLD"); n1=$(rps "$CUR"); o2=$(hs "$OLD"); n2=$(hs "$CUR")
  else
    n1=$(rps "$CUR"); o1=$(rps "$OLD"); n2=$(hs "$CUR"); o2=$(hs "$OLD")
  fi
  a=$(python3 -c "print(round($n1/$o1, 3))"); b=$(python3 -c "print(round($n2/$o2, 3))")
  r_rps+=("$a"); r_hs+=("$b")
  echo "round $r: health old $o1 new $n1 req/s (new/old $a); handshakes old $o2 new $n2 /s (new/old $b)"
done
med() { python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[2:]]; print(f'{sys.argv[1]}: median new/old {statistics.median(r):.3f} (min {min(r)}, max {max(r)})')" "$@"; }
med "health req/s, $CONNS connections" "${r_rps[@]}"
med "handshakes/s, $WORKERS workers" "${r_hs[@]}"
