#!/bin/bash
# Sets everything up and runs the whole test suite: Debian packages, build,
# unit + integration tests, then the same suite under ASan+UBSan.
# Usage: sudo ./scripts/test.sh            (CI runs exactly this)
#        SHOAL_SKIP_ASAN=1 ./scripts/test.sh   (skip the sanitizer pass)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "test.sh: run as root (containers, mounts, cgroups)" >&2; exit 1; }
scripts/deps.sh
# playwright-core for the dashboard's browser tests, into tests/ui/node_modules
(cd tests/ui && npm install --no-audit --no-fund)
make -j"$(nproc)"
if [ -n "${SHOAL_SKIP_ASAN:-}" ]; then
    make test
    exit 0
fi
# The sanitizer build (CPU-bound) at the lowest priority while `make test` waits on its
# daemons; its log is printed only if it fails.
mkdir -p build-asan
nice -n 19 make -j"$(nproc)" asan >build-asan/build.log 2>&1 &
asan_build=$!
trap 'kill "$asan_build" 2>/dev/null || true' EXIT
make test
wait "$asan_build" || { cat build-asan/build.log; exit 1; }
trap - EXIT
make -j"$(nproc)" test-asan
