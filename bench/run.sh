#!/bin/bash
# Mean wall time of `run --rm busybox echo hi`, RUNS times in sequence (after one warm-up run),
# `shoal run --rm` vs `docker run --rm`. Each run's output is checked.
# Usage: bench/run.sh   (env: RUNS=100, SIDES="shoal docker")
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-100}

measure() {
    local side=$1 i t0 t1 out
    out=$(cli "$side" run --rm "$IMAGE" echo hi 2>&1)
    [ "$out" = hi ] || { echo "$side: run printed: $out" >&2; return 1; }
    t0=$(now)
    for i in $(seq "$RUNS"); do
        out=$(cli_to 0 "$side" run --rm "$IMAGE" echo hi 2>&1)
        [ "$out" = hi ] || { echo "$side: run $i printed: $out" >&2; return 1; }
    done
    t1=$(now)
    echo "run_ms $(calc "($t1 - $t0) * 1000 / $RUNS")"
    log "$side: $RUNS runs in $(calc "$t1 - $t0") s"
}

both measure
s=$(fig shoal run_ms); d=$(fig docker run_ms)
printf 'run --rm echo hi (mean of %s)  shoal %8s ms  docker %8s ms  shoal/docker %s\n' "$RUNS" "$s" "$d" "$(ratio "$s" "$d")"
exit $FAILED
