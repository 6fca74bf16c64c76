#!/bin/bash
# Dashboard first paint with 100 nodes / 3,000 tasks (bench/dashboard.mjs): a real daemon
# serves the embedded page, Playwright answers its API calls with a synthetic cluster.
# Uses what the browser tests use (node, /usr/bin/chromium, playwright-core in tests/ui) and
# installs nothing else. Runs in its own network and mount namespaces (loopback only), so the
# daemon's bridge and mounts vanish with it.
# Usage: bench/dashboard.sh   (env: RUNS=5 NODES=100 TASKS=3000 SERVICES=50 SHOAL=build/shoal)
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
export SHOAL=${SHOAL:-$REPO/build/shoal} CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
die() { echo "$(basename "$0"): $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (the daemon, namespaces)"
[ -x "$SHOAL" ] || die "no $SHOAL: run make"
for c in node npm unshare ip "$CHROMIUM"; do
    command -v "$c" >/dev/null || die "missing $c: run scripts/deps.sh (chromium nodejs npm)"
done
if [ ! -d "$REPO/tests/ui/node_modules/playwright-core" ]; then   # the tests' own lock file
    (cd "$REPO/tests/ui" && npm ci --no-audit --no-fund >&2)
fi
exec unshare --net --mount --fork -- sh -c 'ip link set lo up && exec node "$0"' "$BENCH/dashboard.mjs"
