#!/usr/bin/env bash
# The test command (README "Run the tests"):
#  1. the compatibility tier: the real OpenClaw CLI, openclaw-node and the real headless
#     node host (`openclaw node run`, over ws, through an ssh tunnel from `tunnels:` to a
#     private loopback sshd, and over pinned wss) against our gateway built exactly as users
#     build it (no test features); needs openssh-server/-client (installed by .ci/run);
#  2. unit and end-to-end tests, with the `fault-injection` feature on (it only adds the
#     test-only `debug.panic` method used by the crash-isolation test).
# Tests whose real part is missing (sshd, network namespaces, IPv6 loopback) skip unless
# OPENCLAW_TEST_REQUIRE lists it (`.ci/run` sets sshd,netns); then they fail.
# Ends with one line "N passed, M failed" over everything.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "OPENCLAW_TEST_REQUIRE=${OPENCLAW_TEST_REQUIRE:-} (parts listed there fail instead of skipping)"
cargo build --bin openclaw
bash tests/compat/run.sh target/debug/openclaw | tee "$log"
cargo test --workspace --features fault-injection 2>&1 | tee -a "$log"
awk '
  /^test result:/ { p += $4; f += $6 }
  /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
  END { printf "%d passed, %d failed\n", p, f; exit (f > 0) }
' "$log"
