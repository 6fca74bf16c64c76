#!/bin/bash
# Memory of the orchestrator itself, idle and with TASKS tasks (busybox sleep) up: the sum of
# VmRSS, of Pss and of private pages (USS) (smaps_rollup), of every process of the stack but the containers' own.
# Swarm: dockerd + containerd (+ one containerd-shim per task); shoal: the daemon + any helper
# it runs. Idle: SETTLE s after the stack is up (swarm initialised, busybox imported); with
# tasks: SETTLE s after they are all running. KIND=service: `service create --replicas TASKS`;
# KIND=run: TASKS times `run -d` (Docker without Swarm's tasks, shoal's plain containers).
# Both are read twice: "after set-up", by the processes that initialised the swarm and
# imported the image, then, the tasks removed, "after restart": the daemon stopped and started
# again on the same state, as a node is after a reboot or an upgrade (what a board runs most
# of its life); the goals are of that state (docs/benchmarks.md, Footprint).
# Usage: bench/footprint.sh   (env: TASKS=20, SETTLE=5, KIND=service|run, SIDES=...)
source "$(dirname "$0")/lib.sh"
TASKS=${TASKS:-20}
KIND=${KIND:-service}

# sample SIDE NAME: NAME_rss_mb, NAME_pss_mb, NAME_procs figure lines of the stack's own processes.
sample() {
    local side=$1 pids
    pids=$(ns_procs "$(stack_dir "$side")" own)
    echo "$2_rss_mb $(calc "$(rss_kb $pids) / 1024")"
    echo "$2_pss_mb $(calc "$(pss_kb $pids) / 1024")"
    echo "$2_uss_mb $(calc "$(uss_kb $pids) / 1024")"
    echo "$2_procs $(echo $pids | wc -w)"
    log "$side, $2: $(ps -o comm= -p "$(echo $pids | tr ' ' ,)" | sort | uniq -c | awk '{ printf "%s %s; ", $1, $2 }')" \
        "$(ns_procs "$(stack_dir "$side")" tasks | wc -l) processes in containers (not counted)"
}

# start_tasks SIDE: TASKS sleeps up, as KIND says; returns once they all run.
start_tasks() {
    local side=$1 out i
    if [ "$KIND" = service ]; then
        out=$(cli "$side" service create -d --name fp --replicas "$TASKS" "$IMAGE" sleep 1000 2>&1) ||
            { echo "$out" >&2; return 1; }
        wait_replicas "$side" fp "$TASKS" 300
        return
    fi
    for i in $(seq "$TASKS"); do
        out=$(cli "$side" run -d "$IMAGE" sleep 1000 2>&1) || { echo "$out" >&2; return 1; }
    done
    for i in $(seq 300); do
        [ "$(ns_procs "$(stack_dir "$side")" tasks | wc -l)" -ge "$TASKS" ] && return 0
        sleep 0.1
    done
    echo "$side: not $TASKS containers running after 30 s" >&2; return 1
}

# remove_containers SIDE: the `run -d` containers gone again once sampled (the stack's end
# would not remove their network namespaces and cgroups on the host).
remove_containers() {
    local names
    names=$(cli "$1" ps -a --format '{{.Names}}')   # shoal's `rm` takes no `ps -q` short ID
    # shellcheck disable=SC2086 # one word per name
    [ -z "$names" ] || cli "$1" rm -f $names >/dev/null
}

# stop_tasks SIDE: what start_tasks started removed; returns once no container process is left.
stop_tasks() {
    if [ "$KIND" = service ]; then cli "$1" service rm fp >/dev/null; else remove_containers "$1"; fi
    wait_no_tasks "$1" 120
}

# measure_state SIDE PREFIX: PREFIX_idle_* then PREFIX_tasks_* figures; the tasks removed after.
measure_state() {
    sleep "${SETTLE:-5}"
    sample "$1" "$2_idle"
    start_tasks "$1"
    sleep "${SETTLE:-5}"
    sample "$1" "$2_tasks"
    stop_tasks "$1"
}

measure() {
    measure_state "$1" setup
    "$1_restart"
    measure_state "$1" restart
}

both measure
row() {
    printf '%-28s shoal %8s MB  swarm %8s MB  shoal/swarm %s\n' "$1" "$(fig shoal "$2")" "$(fig docker "$2")" \
        "$(ratio "$(fig shoal "$2")" "$(fig docker "$2")")"
}
rows() {
    local state=$1
    row "idle, RSS" "${state}_idle_rss_mb"
    row "idle, PSS" "${state}_idle_pss_mb"
    row "idle, USS (private)" "${state}_idle_uss_mb"
    row "$TASKS tasks up, RSS" "${state}_tasks_rss_mb"
    row "$TASKS tasks up, PSS" "${state}_tasks_pss_mb"
    row "$TASKS tasks up, USS (private)" "${state}_tasks_uss_mb"
    printf 'processes: idle shoal %s swarm %s; %s tasks up shoal %s swarm %s\n' "$(fig shoal "${state}_idle_procs")" \
        "$(fig docker "${state}_idle_procs")" "$TASKS" "$(fig shoal "${state}_tasks_procs")" "$(fig docker "${state}_tasks_procs")"
}
echo "footprint (containers' own processes excluded; $KIND)"
echo "after set-up (the daemons that initialised the swarm and imported the image):"
rows setup
echo "after restart (stopped and started again on the same state, as after a reboot: the goals' state):"
rows restart
exit $FAILED
