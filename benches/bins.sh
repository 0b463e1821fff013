# Sourced by the bench scripts, from the repository root with CARGO_TARGET_DIR exported.

# bench_bins [VAR=value ...]: sets OPENCLAW_BIN (a release build of the working tree, built
# with the given cargo settings and the flags in BUILD_FLAGS, unless OPENCLAW_BIN is already
# set) and LOAD (the `load` bench binary, benches/load.rs).
bench_bins() {
  # The load binary first: `cargo bench` also builds the package's `openclaw` (default
  # features) into the same release directory, over a gateway built with BUILD_FLAGS.
  LOAD=$(cargo bench --bench load --no-run 2>&1 | sed -En 's/.*Executable .*\((.*)\)$/\1/p' | tail -1)
  [ -x "$LOAD" ] || { echo "cannot find the load bench binary" >&2; exit 2; }
  if [ -z "${OPENCLAW_BIN:-}" ]; then
    # shellcheck disable=SC2086 # BUILD_FLAGS is a list of flags
    env "$@" cargo build -q --release --bin openclaw ${BUILD_FLAGS:-}
    OPENCLAW_BIN=$CARGO_TARGET_DIR/release/openclaw
  fi
}

# listening_port OUT ERR NAME: waits (≤ 60 s) for a server's "listening on ws[s]://127.0.0.1:PORT"
# line in OUT and echoes PORT; otherwise prints NAME and the tail of ERR and fails.
listening_port() {
  local out=$1 err=$2 name=$3 port
  for _ in $(seq 600); do
    port=$(sed -En 's/^listening on wss?:\/\/127\.0\.0\.1:([0-9]+)$/\1/p' "$out" 2>/dev/null | head -1 || true)
    if [ -n "$port" ]; then echo "$port"; return 0; fi
    sleep 0.1
  done
  echo "$name did not start: $(tail -5 "$err")" >&2
  return 1
}
