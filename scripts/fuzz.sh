#!/bin/bash
# Runs one libFuzzer target for a while (docs/fuzzing.md).
# Usage: scripts/fuzz.sh TARGET MINUTES [LIBFUZZER-OPTION...]
#        scripts/fuzz.sh --list
# TARGET is a tests/fuzz/fuzz_TARGET.c (http, dns, image, ...). New inputs the run
# finds go to build-fuzz/corpus/TARGET (kept between runs, not committed);
# crashes to build-fuzz/artifacts/TARGET/, replayed with
#   build-fuzz/fuzz_TARGET build-fuzz/artifacts/TARGET/crash-...
# Extra options go to libFuzzer, e.g. -jobs=2 -workers=2 or -max_len=65536.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --list ]; then
    ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/fuzz_||; s|\.c$||'
    exit 0
fi
[ $# -ge 2 ] || { sed -n '3,4s/^# //p' "$0" >&2; exit 2; }
target=$1 minutes=$2
shift 2
[ -f "tests/fuzz/fuzz_$target.c" ] || { echo "fuzz.sh: no target '$target' (see --list)" >&2; exit 2; }
[[ "$minutes" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: MINUTES must be a whole number, 1 or more" >&2; exit 2; }
make fuzz
mkdir -p "build-fuzz/corpus/$target" "build-fuzz/artifacts/$target"
# The suite's sanitizer settings (log files) would hide the reports.
unset ASAN_OPTIONS LSAN_OPTIONS
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
exec "build-fuzz/fuzz_$target" -max_total_time=$((minutes * 60)) -timeout=30 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$target/" \
    "$@" "build-fuzz/corpus/$target" "tests/fuzz/corpus/$target"
