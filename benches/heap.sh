#!/usr/bin/env bash
# Heap bytes per idle authenticated connection, itemized by allocation site (issue 15).
# Runs the release gateway under valgrind's DHAT with one tokio worker, holds N idle
# authenticated connections (`load idle`), stops the gateway with SIGTERM, and reads DHAT's
# profile: the heap live at its peak (t-gmax) divided by N, then the largest sites per
# connection. Unlike RSS, this names what the bytes are (tokio channel blocks, task cells,
# tungstenite buffers...), and it does not move with the machine's load.
#
#   bash benches/heap.sh                  # N=2000, top 15 sites
#   N=5000 TOP=30 bash benches/heap.sh
#   OPENCLAW_BIN=/path/to/openclaw bash benches/heap.sh   # another build (names need
#       CARGO_PROFILE_RELEASE_DEBUG=line-tables-only; totals do not; it must be built with
#       --no-default-features: DHAT sees glibc's malloc, not mimalloc)
#
# The build here is without the default `mimalloc` feature, for the same reason: the bytes
# requested per connection are the same with either allocator (RSS differs: scale.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000} TOP=${TOP:-15}
TOKEN=Bench0123456789abcdefghijklmnopqrstuvwxyzAB
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install -y valgrind" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
. benches/bins.sh
BUILD_FLAGS=--no-default-features bench_bins CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
WORK=$(mktemp -d)
VPID=
cleanup() { [ -n "$VPID" ] && kill "$VPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/home/.openclaw"; echo '{}' > "$WORK/home/.openclaw/openclaw.json"
env -i HOME="$WORK/home" PATH="$PATH" OPENCLAW_GATEWAY_TOKEN=$TOKEN TOKIO_WORKER_THREADS=1 \
  valgrind --tool=dhat --dhat-out-file="$WORK/dhat.out" "$OPENCLAW_BIN" gateway --port 0 \
  > "$WORK/out" 2> "$WORK/err" &
VPID=$!
PORT=$(listening_port "$WORK/out" "$WORK/err" gateway) || exit 1
"$LOAD" idle --url "ws://127.0.0.1:$PORT" --token $TOKEN --connections "$N" --hold-seconds 10 \
  > "$WORK/idle" 2>&1 || { echo "load idle failed: $(tail -5 "$WORK/idle")" >&2; exit 1; }
kill -TERM "$VPID"; wait "$VPID" || true; VPID=
python3 - "$WORK/dhat.out" "$N" "$TOP" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2]); top = int(sys.argv[3])
ft = d["ftbl"]
total = sum(p.get("gb", 0) for p in d["pps"])
if total < 100 * n:
    sys.exit(f"DHAT saw {total:,} bytes for {n} connections: is the gateway built with mimalloc? "
             "(build it with --no-default-features)")
print(f"heap live at the peak: {total:,} bytes over {n} connections = **{total / n:,.0f} bytes per connection**\n")
noise = re.compile(r"memalign|aligned_malloc|__rdl|alloc_impl|^alloc |^allocate|UnknownInlined|box_new|"
                   r"^malloc|^calloc|^realloc|raw_vec|RawVec|do_reserve|finish_grow|reserve_rehash|"
                   r"grow_one|try_allocate|Vec<T,A>|^with_capacity|^new<|^pin<|^channel|chan::channel|"
                   r"spawn_inner|tokio::task::spawn::spawn|^\{closure#0\}<|^0x[0-9A-F]+$|bind_new_task|"
                   r"task::core::Cell|Pin<P> as core::future|^\{async_(fn|block)#0\}|AssertUnwindSafe")
print("| bytes / conn | blocks / conn | allocated at (innermost named frames) |")
print("|---|---|---|")
for p in sorted(d["pps"], key=lambda p: -p.get("gb", 0))[:top]:
    frames = [re.sub(r"^0x[0-9A-F]+: ", "", ft[i]) for i in p["fs"]]
    named = [f for f in frames if not noise.search(f)][:2]
    where = " ← ".join(re.sub(r" \(.*\)$", "", f)[:80] for f in named).replace("|", "\\|")
    print(f"| {p.get('gb', 0) / n:,.0f} | {p.get('gbk', 0) / n:.2f} | {where} |")
PY
