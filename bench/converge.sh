#!/bin/bash
# Time from `service create --replicas N busybox sleep 1000` to N tasks running (as the CLI's
# `service ls` reports, polled every 50 ms), shoal vs Docker Swarm, for each N in $CONVERGE_NS.
# Usage: bench/converge.sh   (env: CONVERGE_NS="20 100", TIMEOUT=300, SIDES="shoal docker")
source "$(dirname "$0")/lib.sh"
NS=${CONVERGE_NS:-20 100}

measure() {
    local side=$1 n t0 t1 out
    for n in $NS; do
        t0=$(now)
        out=$(cli "$side" service create -d --name "conv$n" --replicas "$n" "$IMAGE" sleep 1000 2>&1) ||
            { echo "$out" >&2; return 1; }
        wait_replicas "$side" "conv$n" "$n" "${TIMEOUT:-300}"
        t1=$(now)
        echo "converge$n $(calc "$t1 - $t0")"
        log "$side: N=$n converged in $(calc "$t1 - $t0") s"
        cli "$side" service rm "conv$n" >/dev/null
        wait_no_tasks "$side" 120
    done
}

both measure
for n in $NS; do
    s=$(fig shoal "converge$n"); d=$(fig docker "converge$n")
    printf 'converge N=%-4s shoal %8s s  swarm %8s s  shoal/swarm %s\n' "$n" "$s" "$d" "$(ratio "$s" "$d")"
done
exit $FAILED
