#!/usr/bin/env bash
# Instructions per handshake and per `health` request, counted by valgrind's callgrind, for
# our gateway and for the bare tokio-tungstenite echo server (`load echo-server`, the ceiling
# of this stack) in the same run. Unlike wall time, instruction counts do not move with the
# load of a shared machine, so a regression shows up as a number (issue 15).
#
#   bash benches/instructions.sh                 # release build of the working tree
#   OPENCLAW_BIN=/path/to/openclaw bash benches/instructions.sh
#   (SECS=8 per phase; ANNOTATE=1 also prints the top functions of the handshake phase —
#    build with CARGO_PROFILE_RELEASE_DEBUG=line-tables-only for names with lines)
#
# Method: each server runs under callgrind; after a warm-up, the counters are zeroed
# (callgrind_control -z), one client runs sequential handshakes (or requests on one
# connection) for SECS seconds, the counters are dumped (-d), and the dump's total
# instructions (Ir, all threads, user space only) are divided by the count the client
# reports. Kernel time (syscalls, fsync) is not counted: wall-time ratios are in the other
# benches.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-8}
TOKEN=Bench0123456789abcdefghijklmnopqrstuvwxyzAB
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install -y valgrind" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
. benches/bins.sh
bench_bins
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ "${KEEP:-0}" = 1 ] && echo "kept $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT

# start NAME CMD... : runs CMD (which includes the valgrind call), waits for its
# "listening on" line, sets PORT/PID.
vg() { echo valgrind --tool=callgrind --callgrind-out-file="$WORK/$1.%p.out"; }
start() {
  local name=$1; shift
  "$@" > "$WORK/$name.log" 2> "$WORK/$name.err" &
  PID=$!; PIDS+=("$PID")
  PORT=$(listening_port "$WORK/$name.log" "$WORK/$name.err" "$name") || exit 1
}

field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])[sys.argv[1]])' "$1"; }

# phase PID KIND -> instructions per unit: zero, run the client, dump, divide.
phase() {
  local pid=$1 kind=$2 n out before
  callgrind_control -z "$pid" >/dev/null
  if [ "$kind" = handshake ]; then
    n=$("$LOAD" handshakes --url "ws://127.0.0.1:$PORT" --token $TOKEN --workers 1 \
      --seconds "$SECS" --timeout-ms 60000 --json 2>/dev/null | field handshakes)
  else
    n=$("$LOAD" rpc --url "ws://127.0.0.1:$PORT" --token $TOKEN --connections 1 \
      --seconds "$SECS" --method health --timeout-ms 60000 --json 2>/dev/null | field ok)
  fi
  before=$(ls "$WORK" | grep -c '\.out' || true)
  callgrind_control -d "$kind" "$pid" >/dev/null
  for _ in $(seq 100); do
    [ "$(ls "$WORK" | grep -c '\.out' || true)" -gt "$before" ] && break
    sleep 0.1
  done
  sleep 0.5
  out=$(ls -t "$WORK"/*.out* | head -1)
  python3 - "$out" "$n" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
ir = None
for line in open(path, errors="replace"):
    if line.startswith("totals:") or line.startswith("summary:"):
        ir = int(line.split()[1])
print(f"{ir / n:.0f} {n} {path}")
PY
}

report() { # name pid -> "hs_ir req_ir"
  local name=$1 pid=$2 hs req
  # warm-up: a few handshakes and requests before counting
  "$LOAD" handshakes --url "ws://127.0.0.1:$PORT" --token $TOKEN --workers 1 --seconds 1 \
    --timeout-ms 60000 --json >/dev/null 2>&1 || true
  hs=$(phase "$pid" handshake)
  req=$(phase "$pid" request)
  echo "$name ${hs%% *} ${req%% *} $(echo "$hs" | cut -d' ' -f2) $(echo "$req" | cut -d' ' -f2) $(echo "$hs" | cut -d' ' -f3)"
}

# One tokio worker each: under valgrind (which runs one thread at a time) idle workers
# searching for work would otherwise burn instructions that are not the request's.
export TOKIO_WORKER_THREADS=1
start echo $(vg echo) "$LOAD" echo-server --port 0
E=$(report echo "$PID")
HOME_GW=$WORK/home; mkdir -p "$HOME_GW/.openclaw"; echo '{}' > "$HOME_GW/.openclaw/openclaw.json"
start gateway env -i HOME="$HOME_GW" PATH="$PATH" OPENCLAW_GATEWAY_TOKEN=$TOKEN TOKIO_WORKER_THREADS=1 \
  $(vg gateway) "$OPENCLAW_BIN" gateway --port 0
G=$(report gateway "$PID")

python3 - "$E" "$G" <<'PY'
import sys
e, g = (s.split() for s in sys.argv[1:3])
print("| server | instructions / handshake | instructions / `health` request | handshakes counted | requests counted |")
print("|---|---|---|---|---|")
for name, row in (("bare echo server", e), ("openclaw gateway", g)):
    print(f"| {name} | {int(row[1]):,} | {int(row[2]):,} | {row[3]} | {row[4]} |")
print(f"| **ratio gateway / bare** | **{int(g[1]) / int(e[1]):.2f}×** | **{int(g[2]) / int(e[2]):.2f}×** | | |")
PY
if [ "${ANNOTATE:-0}" = 1 ]; then
  echo; echo "Top functions (inclusive) of the gateway's handshake phase:"
  callgrind_annotate --inclusive=yes "$(echo "$G" | cut -d' ' -f6)" 2>/dev/null | sed -n '1,60p'
fi
