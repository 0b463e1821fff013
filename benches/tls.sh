#!/usr/bin/env bash
# TLS: our gateway over wss vs a bare tokio-rustls + tungstenite echo server (the load tool's
# `echo-server --tls`: same TLS stack and settings, no gateway logic), in the same run,
# alternating round by round: `health` req/s on 1 and 50 connections, full TLS + protocol
# handshakes/s, RSS per idle wss connection, and p99 latency with the certificate replaced
# every 0.5 s vs without. Release builds.
#
#   bash benches/tls.sh            # ROUNDS=3 SECS=5 IDLE=1000 by default
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} SECS=${SECS:-5} IDLE=${IDLE:-1000}
TOKEN=Bench0123456789abcdefghijklmnopqrstuvwxyzAB
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release --bin openclaw
cargo bench -q --bench load --no-run 2>/dev/null
BIN=$CARGO_TARGET_DIR/release/openclaw
LOAD=$(ls -t "$CARGO_TARGET_DIR"/release/deps/load-* | grep -v '\.d$' | head -1)
. benches/gateways.sh
trap stop_gateways EXIT

# Our gateway with a user pair we can replace; four more pairs for the rotation.
D=$(mktemp -d)
for i in 0 1 2 3 4; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -days 30 -nodes \
    -subj /CN=bench -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$D/k$i.pem" -out "$D/c$i.pem" 2>/dev/null
done
cp "$D/c0.pem" "$D/cert.pem"; cp "$D/k0.pem" "$D/key.pem"
GW=$(start "$BIN" "{ gateway: { tls: { enabled: true, autoGenerate: false, certPath: \"$D/cert.pem\", keyPath: \"$D/key.pem\" } } }")
GW_PID=$(tail -1 "$PIDS")
"$LOAD" echo-server --tls --port 0 > "$D/echo.out" 2>/dev/null &
echo $! >> "$PIDS"
for _ in $(seq 100); do grep -q listening "$D/echo.out" && break; sleep 0.05; done
ECHO=$(sed -n 's/^listening on wss:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$D/echo.out")

rpc() { "$LOAD" rpc --url "wss://127.0.0.1:$1" --token $TOKEN --connections "$2" --seconds "$SECS" \
  --method health --json 2>/dev/null | field "$3"; }
hs() { "$LOAD" handshakes --url "wss://127.0.0.1:$1" --token $TOKEN --workers 8 --seconds "$SECS" \
  --json 2>/dev/null | field handshakesPerSec; }
p99() { "$LOAD" rpc --url "wss://127.0.0.1:$1" --token $TOKEN --connections 50 --seconds "$SECS" \
  --method health --json 2>/dev/null |
  python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d["latencyMs"]["p99"], "(errors", str(d.get("errors",0)) + ")")'; }
ratio() { python3 -c "print(round($1/$2, 3))"; }

r1=(); r50=(); rh=()
for r in $(seq "$ROUNDS"); do
  g1=$(rpc "$GW" 1 reqPerSec); e1=$(rpc "$ECHO" 1 reqPerSec)
  g50=$(rpc "$GW" 50 reqPerSec); e50=$(rpc "$ECHO" 50 reqPerSec)
  gh=$(hs "$GW"); eh=$(hs "$ECHO")
  r1+=("$(ratio "$g1" "$e1")"); r50+=("$(ratio "$g50" "$e50")"); rh+=("$(ratio "$gh" "$eh")")
  echo "round $r: health/1 gw $g1 echo $e1 | health/50 gw $g50 echo $e50 | handshakes gw $gh echo $eh"
done
med() { python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[2:]]; print(f'{sys.argv[1]}: median gw/echo {statistics.median(r):.3f} (min {min(r)}, max {max(r)})')" "$@"; }
med "health req/s, 1 connection" "${r1[@]}"
med "health req/s, 50 connections" "${r50[@]}"
med "handshakes/s, 8 workers" "${rh[@]}"

# RSS per idle authenticated wss connection.
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
before=$(rss "$GW_PID")
"$LOAD" idle --url "wss://127.0.0.1:$GW" --token $TOKEN --connections "$IDLE" --hold-seconds 4 \
  > /dev/null 2> "$D/idle.err" &
IDLE_PID=$!
for _ in $(seq 400); do grep -q READY "$D/idle.err" && break; sleep 0.05; done
sleep 1
during=$(rss "$GW_PID")
wait "$IDLE_PID" || true
python3 -c "print(f'RSS per idle wss connection: {($during-$before)/$IDLE:.1f} KiB ({$IDLE} connections, {$before} -> {$during} KiB)')"

# p99 of health on 50 connections, without and with the pair replaced every 0.5 s.
p_quiet=$(p99 "$GW")
( for i in $(seq $((SECS * 2 + 4))); do
    j=$((1 + i % 4)); cp "$D/k$j.pem" "$D/key.new"; cp "$D/c$j.pem" "$D/cert.new"
    mv "$D/key.new" "$D/key.pem"; mv "$D/cert.new" "$D/cert.pem"; sleep 0.5
  done ) &
ROT=$!
p_rot=$(p99 "$GW")
kill "$ROT" 2>/dev/null || true
echo "p99 health latency, 50 connections: ${p_quiet} ms quiet, ${p_rot} ms while rotating every 0.5 s"
rm -rf "$D"
