#!/usr/bin/env bash
# The test command (README "Run the tests"):
#  1. the compatibility tier: the real OpenClaw CLI and openclaw-node against our gateway
#     built exactly as users build it (no test features);
#  2. unit and end-to-end tests, with the `fault-injection` feature on (it only adds the
#     test-only `debug.panic` method used by the crash-isolation test).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bin openclaw
bash tests/compat/run.sh target/debug/openclaw
cargo test --workspace --features fault-injection
