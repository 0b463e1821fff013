#!/usr/bin/env bash
# Issue 15, point 5: RSS per idle authenticated connection at 10,000 and at the largest count
# the open-file limit allows, for the release gateway and the bare tokio-tungstenite echo
# server (a fresh server process per N: `load report`'s idle runs, RSS with N minus RSS idle,
# divided by N), as a Markdown table with gateway/bare ratios; then connection churn
# (`load churn`: 10,000 open → hello-ok → close cycles against each, RSS and fd count before
# and after). Markdown on stdout, progress on stderr.
#
#   bash benches/scale.sh                 # SIZES=10000,<max>  CYCLES=10000  WORKERS=4
#   MAX=15000 bash benches/scale.sh       # another largest count
#   SIZES=1000 CYCLES=500 bash benches/scale.sh   # quick check
#
# <max> = the gateway's connection ceiling (soft RLIMIT_NOFILE − max(64, limit/16), see
# actors/src/guard/conncap.rs) − 250 of margin; the load client (one process, one fd per
# connection) raises its soft limit to the hard one and the servers it spawns inherit it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release --bin openclaw
cargo bench -q --bench load --no-run 2>/dev/null

NOFILE=$(ulimit -Hn)
if [ "$NOFILE" = unlimited ]; then NOFILE=$(cat /proc/sys/fs/nr_open); fi
RESERVE=$(( NOFILE / 16 > 64 ? NOFILE / 16 : 64 ))
CEILING=$(( NOFILE - RESERVE ))
MAX=${MAX:-$(( CEILING - 250 ))}
SIZES=${SIZES:-10000,$MAX}
CYCLES=${CYCLES:-10000} WORKERS=${WORKERS:-4}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "## Scale run $(date -u +%FT%TZ), git $(git rev-parse --short HEAD)"
echo
echo "- RLIMIT_NOFILE hard $NOFILE → gateway connection ceiling $CEILING; sizes $SIZES"
echo "- ip_local_port_range $(tr '\t' ' ' < /proc/sys/net/ipv4/ip_local_port_range)," \
  "tcp_rmem $(tr '\t' ' ' < /proc/sys/net/ipv4/tcp_rmem), tcp_wmem $(tr '\t' ' ' < /proc/sys/net/ipv4/tcp_wmem)," \
  "fs.nr_open $(cat /proc/sys/fs/nr_open)"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo

# 1. RSS per idle connection: the idle runs of `report` (its throughput part kept short).
echo "[scale] idle runs: report --idle-sizes $SIZES" >&2
cargo bench -q --bench load -- report --idle-sizes "$SIZES" --startup-runs 0 \
  --health-conns 1 --seconds 1 --workers 2 --connect-parallel 32 > "$OUT/report.md"
awk '/^## Idle authenticated connections/{on=1; next} /^## /{on=0} on && /^\| (ours|echo) \|/' \
  "$OUT/report.md" > "$OUT/idle.rows"
python3 - "$OUT/idle.rows" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    c = [x.strip() for x in line.strip().strip('|').split('|')]
    # server | N | opened | open errors | open time | RSS idle | RSS with N | KiB/conn | RSS after closing | alive | client KiB/conn
    rows[(c[0], int(c[1]))] = c
print("### RSS per idle authenticated connection (fresh server process per N)\n")
print("| N | gateway opened (errors) | gateway RSS idle → with N | gateway KiB/conn | bare opened (errors) | bare RSS idle → with N | bare KiB/conn | gateway/bare | gateway − bare KiB/conn | client KiB/conn |")
print("|---|---|---|---|---|---|---|---|---|---|")
for n in sorted({k[1] for k in rows}):
    g, e = rows.get(("ours", n)), rows.get(("echo", n))
    if not g or not e:
        print(f"| {n} | missing run: {g or e} |")
        continue
    gk, ek = float(g[7]), float(e[7])
    ratio = f"{gk / ek:.2f}×" if ek > 0 else "–"
    print(f"| {n} | {g[2]} ({g[3]}) | {g[5]} → {g[6]} | **{gk:.1f}** | {e[2]} ({e[3]}) | {e[5]} → {e[6]} | {ek:.1f} | **{ratio}** | {gk - ek:.1f} | {g[10]} |")
EOF
echo

# 2. Churn.
echo "[scale] churn --cycles $CYCLES --workers $WORKERS" >&2
rc=0
cargo bench -q --bench load -- churn --cycles "$CYCLES" --workers "$WORKERS" --json \
  > "$OUT/churn.json" || rc=$?
python3 - "$OUT/churn.json" <<'EOF'
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(f"### Churn: {d['cycles']} open → hello-ok → close cycles ({d['workers']} workers, after {d['warmup']} warm-up cycles)\n")
print("| server | RSS before → after (KiB) | Δ RSS | after/before | fds before → after | Δ fds | cycles/s | errors | settle ms |")
print("|---|---|---|---|---|---|---|---|---|")
for name, label in (("gateway", "gateway"), ("echo", "bare")):
    s = d[name]
    b, a, dl, r = s["before"], s["after"], s["delta"], s["ratioAfterBefore"]
    print(f"| {label} | {b['rssKib']} → {a['rssKib']} | {dl['rssKib']:+d} KiB | {r['rss']:.3f} | {b['fds']} → {a['fds']} | {dl['fds']:+d} | {s['cyclesPerSec']:.0f} | {s['errors']} | {s['settleMs']:.0f} |")
t, p = d["thresholds"], d["pass"]
print(f"\nGateway thresholds: fds after ≤ before + {t['fdSlack']}, RSS growth ≤ {t['rssSlackKib']} KiB, every cycle ok: "
      f"{'PASS' if p['all'] else 'FAIL'} (fds {p['fds']}, rss {p['rss']}, cycles {p['cycles']}); "
      f"gateway log: {d['gatewayLog']['warn']} WARN, {d['gatewayLog']['error']} ERROR.")
EOF
echo
echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$rc"
