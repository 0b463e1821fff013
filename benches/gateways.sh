# Sourced by the bench scripts: start release gateways on port 0 with throwaway HOMEs and
# kill them on exit. Needs TOKEN set; `start BIN CONFIG` echoes the bound port.
# start() runs in a command substitution (a subshell), so pids go through a file.
PIDS=$(mktemp)
stop_gateways() { while read -r p; do kill "$p" 2>/dev/null || true; done < "$PIDS"; rm -f "$PIDS"; }

start() { # $1 = binary, $2 = config (JSON5); echoes the port
  local home; home=$(mktemp -d)
  mkdir -p "$home/.openclaw"
  printf '%s' "${2:-{\}}" > "$home/.openclaw/openclaw.json"
  env -i HOME="$home" PATH="$PATH" OPENCLAW_GATEWAY_TOKEN=$TOKEN "$1" gateway --port 0 \
    > "$home/out" 2> "$home/err" &
  echo $! >> "$PIDS"
  for _ in $(seq 100); do
    if grep -Eq 'listening on wss?://127.0.0.1:' "$home/out" 2>/dev/null; then
      sed -En 's/^listening on wss?:\/\/127.0.0.1:([0-9]*)$/\1/p' "$home/out" | head -1
      return
    fi
    sleep 0.05
  done
  echo "gateway did not start: $(cat "$home/err")" >&2; exit 1
}

field() { # $1 = JSON field of the load tool's last JSON line (ERR … when it saw errors)
  python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d[sys.argv[1]] if d.get("errors",0)==0 else "ERR "+str(d))' "$1"
}

# old_bin: sets OLD_BIN, building BASE_REV in a throwaway git worktree when OLD_BIN is unset
# (the worktree is removed by cleanup_old_bin, which the caller's EXIT trap should run).
old_bin() {
  [ -n "${OLD_BIN:-}" ] && return 0
  : "${BASE_REV:?set BASE_REV (a git revision) or OLD_BIN (a binary)}"
  WT=$(mktemp -d)/base
  git worktree add -q --detach "$WT" "$BASE_REV"
  (cd "$WT" && CARGO_TARGET_DIR="$WT/target" cargo build -q --release --bin openclaw)
  OLD_BIN="$WT/target/release/openclaw"
}
cleanup_old_bin() { if [ -n "${WT:-}" ]; then git worktree remove --force "$WT" 2>/dev/null || true; fi; }
