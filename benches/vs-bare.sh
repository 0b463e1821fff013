#!/usr/bin/env bash
# Issue 15's wall-time figures: the gateway against the bare tokio-tungstenite echo server
# (`load echo-server`, a separate process with the gateway's own `ws_config()`), same run,
# alternating which goes first each round (the machine is shared and noisy):
#   - `health` req/s on 1 connection and on 50 connections (one request in flight each),
#   - full handshakes/s with WORKERS loops (open → challenge → connect → hello-ok → close),
#   - server CPU (user + system, /proc/PID/stat) per request and per handshake, and how much
#     of it is system time (socket calls, and the gateway's audit fsyncs).
# Prints each round and the median ratio gateway/bare of each figure.
# With TMPDIR=/dev/shm the gateway keeps its state (and audit log) on tmpfs, where fsync
# costs next to nothing: the difference is what the audit's durability costs here.
#
#   bash benches/vs-bare.sh            # ROUNDS=3 SECS=4 WORKERS=8
#   OPENCLAW_BIN=/path/to/openclaw bash benches/vs-bare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} SECS=${SECS:-4} WORKERS=${WORKERS:-8}
TOKEN=Bench0123456789abcdefghijklmnopqrstuvwxyzAB
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
. benches/bins.sh
bench_bins
. benches/gateways.sh
WORK=$(mktemp -d)
ECHO_PID=
cleanup() { stop_gateways; [ -n "$ECHO_PID" ] && kill "$ECHO_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

GW_PORT=$(start "$OPENCLAW_BIN")
GW_PID=$(tail -1 "$PIDS")
"$LOAD" echo-server --port 0 > "$WORK/echo.out" 2> "$WORK/echo.err" &
ECHO_PID=$!
ECHO_PORT=$(listening_port "$WORK/echo.out" "$WORK/echo.err" "echo server") || exit 1

ticks() { awk '{print $14 + $15, $15}' "/proc/$1/stat"; }  # utime + stime, stime (clock ticks)
HZ=$(getconf CLK_TCK)
# run PID PORT KIND ARG -> "units/s µs-of-server-CPU-per-unit µs-of-it-system-time"
run() {
  local pid=$1 port=$2 kind=$3 arg=$4 t0 t1 json n rate
  t0=$(ticks "$pid")
  if [ "$kind" = rpc ]; then
    json=$("$LOAD" rpc --url "ws://127.0.0.1:$port" --token $TOKEN --connections "$arg" \
      --seconds "$SECS" --method health --json 2>/dev/null | tail -1)
  else
    json=$("$LOAD" handshakes --url "ws://127.0.0.1:$port" --token $TOKEN --workers "$arg" \
      --seconds "$SECS" --json 2>/dev/null | tail -1)
  fi
  t1=$(ticks "$pid")
  python3 - "$json" "$kind" "$t0" "$t1" "$HZ" <<'PY'
import json, sys
d = json.loads(sys.argv[1]); kind = sys.argv[2]
if d.get("errors", 0):
    sys.exit(f"load errors: {d}")
n = d["ok"] if kind == "rpc" else d["handshakes"]
rate = d["reqPerSec"] if kind == "rpc" else d["handshakesPerSec"]
(c0, s0), (c1, s1) = (map(int, a.split()) for a in sys.argv[3:5])
us = lambda ticks: ticks / int(sys.argv[5]) * 1e6 / max(n, 1)
print(f"{rate:.0f} {us(c1 - c0):.2f} {us(s1 - s0):.2f}")
PY
}

declare -A R
for r in $(seq "$ROUNDS"); do
  for case in "rpc 1" "rpc 50" "hs $WORKERS"; do
    set -- $case
    if [ $((r % 2)) = 1 ]; then
      g=$(run "$GW_PID" "$GW_PORT" "$1" "$2"); e=$(run "$ECHO_PID" "$ECHO_PORT" "$1" "$2")
    else
      e=$(run "$ECHO_PID" "$ECHO_PORT" "$1" "$2"); g=$(run "$GW_PID" "$GW_PORT" "$1" "$2")
    fi
    read -r gr gc gs <<< "$g"; read -r er ec es <<< "$e"
    echo "round $r $1 $2: gateway $gr/s $gc µs CPU each ($gs system); bare $er/s $ec µs CPU each ($es system)"
    R["$1 $2"]+="$g $e;"
  done
done
python3 - "${R[rpc 1]}" "${R[rpc 50]}" "${R[hs $WORKERS]}" "$WORKERS" <<'PY'
import statistics, sys
names = ["`health` on 1 connection", "`health` on 50 connections", f"handshakes, {sys.argv[4]} workers"]
print("\n| figure | throughput gateway/bare (median) | server CPU per unit gateway/bare (median) | CPU µs per unit, gateway / bare (of it system) |")
print("|---|---|---|---|")
for name, rounds in zip(names, sys.argv[1:4]):
    tp, cpu, g_us, g_sys, e_us, e_sys = [], [], [], [], [], []
    for r in filter(None, rounds.split(";")):
        g, gc, gs, e, ec, es = map(float, r.split())
        tp.append(g / e); cpu.append(gc / ec)
        g_us.append(gc); g_sys.append(gs); e_us.append(ec); e_sys.append(es)
    m = statistics.median
    print(f"| {name} | {m(tp):.2f} ({min(tp):.2f}–{max(tp):.2f}) | {m(cpu):.2f}× ({min(cpu):.2f}–{max(cpu):.2f}) "
          f"| {m(g_us):.1f} ({m(g_sys):.1f}) / {m(e_us):.1f} ({m(e_sys):.1f}) |")
PY
