#!/usr/bin/env bash
# Audit events per second sustained with rotation on (maxBytes 256 KiB: a rotation every
# ~1,500 events) vs off (64 MiB, never reached), in the same run, alternating round by round:
# full handshake loops (each one writes conn.open, auth.ok and conn.close) as fast as WORKERS
# loops go. After the run every rotated file is read back: every seq from 1 to the last must
# appear exactly once ("0 lost").
#
#   bash benches/audit-rotation.sh        # ROUNDS=3 SECS=5 WORKERS=8 by default
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} SECS=${SECS:-5} WORKERS=${WORKERS:-8}
TOKEN=Bench0123456789abcdefghijklmnopqrstuvwxyzAB
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release --bin openclaw
cargo bench -q --bench load --no-run 2>/dev/null
BIN=$CARGO_TARGET_DIR/release/openclaw
. benches/gateways.sh
trap stop_gateways EXIT
CONF='{ gateway: { rateLimit: { enabled: false } }, audit: { maxBytes: %s, keep: 100000 } }'
ON=$(start "$BIN" "$(printf "$CONF" 262144)")
OFF=$(start "$BIN" "$(printf "$CONF" 67108864)")
written() { curl -s "http://127.0.0.1:$1/metrics" | sed -n 's/^openclaw_gateway_audit_events_written_total //p'; }
eps() { # $1 = port: audit events written per second during SECS of handshake loops
  local a b
  a=$(written "$1")
  cargo bench -q --bench load -- handshakes --url "ws://127.0.0.1:$1" --token $TOKEN \
    --workers "$WORKERS" --seconds "$SECS" --json > /dev/null 2>&1
  sleep 0.5
  b=$(written "$1")
  python3 -c "print(round(($b - $a) / $SECS))"
}
ratios=()
for r in $(seq "$ROUNDS"); do
  off=$(eps "$OFF"); on=$(eps "$ON")
  ratio=$(python3 -c "print(round($on/$off, 3))")
  ratios+=("$ratio")
  echo "round $r: rotation off $off events/s, on $on events/s, on/off $ratio"
done
python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:]]; print(f'median on/off: {statistics.median(r)} (min {min(r)}, max {max(r)})')" "${ratios[@]}"
# 0 lost: read every file of the rotating gateway back.
HOME_ON=$(dirname "$(grep -l "127.0.0.1:$ON" /tmp/tmp.*/out 2>/dev/null | head -1)")
python3 - "$HOME_ON/.openclaw/logs" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
files = glob.glob(os.path.join(d, "audit.jsonl*"))
seqs = []
for f in files:
    for line in open(f):
        seqs.append(json.loads(line)["seq"])
seqs.sort()
n = len(seqs)
ok = seqs == list(range(1, n + 1))
print(f"rotating gateway: {len(files)} files, {n} events, seq 1..{seqs[-1] if seqs else 0} each exactly once: {ok}")
sys.exit(0 if ok else 1)
PY
