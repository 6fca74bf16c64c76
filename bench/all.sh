#!/bin/bash
# Run every benchmark: tables to stdout and bench/out/summary.txt, each script's table to
# bench/out/NAME.txt and its log to bench/out/NAME.log. Exits non-zero if any side of any
# benchmark failed. Usage: bench/all.sh   (the env knobs of each script apply)
set -uo pipefail
cd "$(dirname "$0")"
mkdir -p out
exec > >(tee out/summary.txt)
rc=0
echo "# shoal vs Docker Swarm, $(date -u '+%F %T UTC'), $(nproc) cores, $(uname -r), shoal $(git -C .. rev-parse --short HEAD)"
for b in converge run footprint; do
    ./$b.sh 2>"out/$b.log" | tee "out/$b.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || { rc=1; echo "($b: a side failed: bench/out/$b.log says why)"; }
done
exit $rc
