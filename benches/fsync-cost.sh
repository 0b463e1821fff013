#!/usr/bin/env bash
# What one audit batch's durability costs on this machine: CPU time (user + system, from
# getrusage) and wall time per `write` of one ~150-byte line + `fdatasync`, the audit
# writer's pattern, against `write` alone, in a scratch file under DIR (default: a fresh
# directory under $TMPDIR, i.e. the filesystem the benches' gateways keep their state on).
# Issue 15: a login's `auth.ok` is fsynced before its `hello-ok`, so every handshake pays
# about one of these on top of what the bare server does.
#
#   bash benches/fsync-cost.sh            # N=3000
#   DIR=/dev/shm bash benches/fsync-cost.sh   # tmpfs, where fdatasync has nothing to do
set -euo pipefail
N=${N:-3000}
if [ -z "${DIR:-}" ]; then
  DIR=$(mktemp -d)
  trap 'rm -rf "$DIR"' EXIT
fi
python3 - "$DIR" "$N" <<'PY'
import os, resource, sys, time
d, n = sys.argv[1], int(sys.argv[2])
path = os.path.join(d, f"fsync-cost.{os.getpid()}")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
line = b"x" * 150 + b"\n"
def run(sync):
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    for _ in range(n):
        os.write(fd, line)
        if sync:
            os.fdatasync(fd)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / n * 1e6
    sys_ = (r1.ru_stime - r0.ru_stime) / n * 1e6
    return cpu, sys_, (t1 - t0) / n * 1e6
try:
    w = run(False)
    s = run(True)
finally:
    os.close(fd)
    os.unlink(path)
print(f"| in {d} ({n} each) | CPU µs / op | of it system | wall µs / op |")
print("|---|---|---|---|")
print(f"| write | {w[0]:.1f} | {w[1]:.1f} | {w[2]:.1f} |")
print(f"| write + fdatasync | {s[0]:.1f} | {s[1]:.1f} | {s[2]:.1f} |")
PY
