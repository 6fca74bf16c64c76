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
make test
if [ -z "${SHOAL_SKIP_ASAN:-}" ]; then
    make -j"$(nproc)" test-asan
fi
