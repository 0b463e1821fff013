#!/usr/bin/env bash
# Issue 15: handshakes while many clients stay listed in presence (a fleet of UIs or node
# hosts connected, new clients and CLI calls arriving): every `hello-ok` carries the whole
# presence list. Old binary vs new in the same run: each gateway first gets LISTED idle
# authenticated `ui` clients (listed in presence), then, alternating old/new each round,
#   - full `cli` handshakes/s with WORKERS loops, and the gateway's CPU per handshake,
#   - `system-presence` req/s on 1 connection (the same list as a method).
# Prints each round and the median ratio new/old of each figure.
#
#   BASE_REV=b14cd2c bash benches/presence-scale.sh    # builds BASE_REV in a git worktree
#   OLD_BIN=/path/to/openclaw bash benches/presence-scale.sh
#   (LISTED=1000 ROUNDS=3 SECS=4 WORKERS=8 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
LISTED=${LISTED:-1000} ROUNDS=${ROUNDS:-3} SECS=${SECS:-4} WORKERS=${WORKERS:-8}
TOKEN=Bench0123456789abcdefghijklmnopqrstuvwxyzAB
# One fd per listed client in each gateway (they inherit this shell's limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
. benches/bins.sh
bench_bins
. benches/gateways.sh
WORK=$(mktemp -d)
HOLDERS=()
cleanup() {
  for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_gateways; cleanup_old_bin; rm -rf "$WORK"
}
trap cleanup EXIT
old_bin

# hold PORT NAME: LISTED idle `ui` clients on the gateway at PORT, until cleanup.
hold() {
  "$LOAD" idle --url "ws://127.0.0.1:$1" --token $TOKEN --connections "$LISTED" \
    --client-mode ui --hold-seconds 3600 --json > "$WORK/$2.out" 2> "$WORK/$2.err" &
  HOLDERS+=("$!")
  for _ in $(seq 1200); do
    if grep -q '^READY' "$WORK/$2.err"; then
      local n; n=$(sed -En 's/^READY ([0-9]+).*/\1/p' "$WORK/$2.err")
      [ "$n" = "$LISTED" ] || { echo "$2: only $n of $LISTED idle clients connected" >&2; exit 1; }
      return 0
    fi
    sleep 0.1
  done
  echo "$2: idle clients not ready: $(tail -3 "$WORK/$2.err")" >&2; exit 1
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# hs PID PORT -> "handshakes/s µs-of-CPU-per-handshake"
hs() {
  local t0 t1 json
  t0=$(ticks "$1")
  json=$("$LOAD" handshakes --url "ws://127.0.0.1:$2" --token $TOKEN --workers "$WORKERS" \
    --seconds "$SECS" --json 2>/dev/null | tail -1)
  t1=$(ticks "$1")
  python3 - "$json" "$t0" "$t1" "$HZ" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
if d.get("errors", 0):
    sys.exit(f"load errors: {d}")
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4]) * 1e6
print(f"{d['handshakesPerSec']:.0f} {cpu / max(d['handshakes'], 1):.1f}")
PY
}
presence_rps() {
  "$LOAD" rpc --url "ws://127.0.0.1:$1" --token $TOKEN --connections 1 --seconds "$SECS" \
    --method system-presence --json 2>/dev/null | field reqPerSec
}

OLD=$(start "$OLD_BIN"); OLD_PID=$(tail -1 "$PIDS")
NEW=$(start "$OPENCLAW_BIN"); NEW_PID=$(tail -1 "$PIDS")
hold "$OLD" old
hold "$NEW" new
echo "$LISTED idle ui clients listed on each gateway"
r_hs=(); r_cpu=(); r_pr=()
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    o=$(hs "$OLD_PID" "$OLD"); n=$(hs "$NEW_PID" "$NEW"); op=$(presence_rps "$OLD"); np=$(presence_rps "$NEW")
  else
    n=$(hs "$NEW_PID" "$NEW"); o=$(hs "$OLD_PID" "$OLD"); np=$(presence_rps "$NEW"); op=$(presence_rps "$OLD")
  fi
  set -- $o $n
  a=$(python3 -c "print(round($3/$1, 3))"); b=$(python3 -c "print(round($4/$2, 3))")
  c=$(python3 -c "print(round($np/$op, 3))")
  r_hs+=("$a"); r_cpu+=("$b"); r_pr+=("$c")
  echo "round $r: handshakes/s old $1 new $3 (new/old $a); CPU µs/handshake old $2 new $4 (new/old $b); system-presence req/s old $op new $np (new/old $c)"
done
med() { python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[2:]]; print(f'{sys.argv[1]}: median new/old {statistics.median(r):.3f} (min {min(r)}, max {max(r)})')" "$@"; }
med "handshakes/s, $WORKERS workers, $LISTED listed" "${r_hs[@]}"
med "CPU per handshake" "${r_cpu[@]}"
med "system-presence req/s" "${r_pr[@]}"
