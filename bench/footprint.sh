#!/bin/bash
# Memory of the orchestrator itself with TASKS tasks (busybox sleep) up: the sum of VmRSS of
# every process of the stack but the containers' own. Swarm: dockerd + containerd + one
# containerd-shim per task; shoal: the daemon + any helper it runs. Read SETTLE s after the
# tasks are all running.   Usage: bench/footprint.sh   (env: TASKS=20, SETTLE=5, SIDES=...)
source "$(dirname "$0")/lib.sh"
TASKS=${TASKS:-20}

measure() {
    local side=$1 out pids
    out=$(cli "$side" service create -d --name fp --replicas "$TASKS" "$IMAGE" sleep 1000 2>&1) ||
        { echo "$out" >&2; return 1; }
    wait_replicas "$side" fp "$TASKS" 300
    sleep "${SETTLE:-5}"
    pids=$(ns_procs "$(stack_dir "$side")" own)
    echo "rss_mb $(calc "$(rss_kb $pids) / 1024")"
    echo "procs $(echo $pids | wc -w)"
    log "$side: $(ps -o comm= -p "$(echo $pids | tr ' ' ,)" | sort | uniq -c | awk '{ printf "%s %s; ", $1, $2 }')" \
        "$(ns_procs "$(stack_dir "$side")" tasks | wc -l) processes in containers (not counted)"
}

both measure
printf 'footprint, %s tasks up (RSS, containers excluded)  shoal %8s MB (%s procs)  swarm %8s MB (%s procs)  shoal/swarm %s\n' \
    "$TASKS" "$(fig shoal rss_mb)" "$(fig shoal procs)" "$(fig docker rss_mb)" "$(fig docker procs)" \
    "$(ratio "$(fig shoal rss_mb)" "$(fig docker rss_mb)")"
exit $FAILED
