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
# Then, unless LINKED=0, a node with a mutual-TLS link: the manager and the worker of a two-node
# `shoal dev` cluster, after set-up and after restart (LINKED=only: that part alone).
# Usage: bench/footprint.sh   (env: TASKS=20, SETTLE=5, KIND=service|run, SIDES=..., LINKED=1|0|only)
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

[ "${LINKED:-1}" = only ] || both measure

# A node of a real cluster keeps a mutual-TLS link to the others, so OpenSSL is loaded and
# initialised in it: a `shoal dev` cluster of one manager and one worker (its own namespaces
# and bridge), each daemon read as the cluster is set up, then after both were stopped and
# started again on their state; each time SETTLE s after the start and LINK_LATE s after it
# (default 65: after the daemon's first memory trim, which runs every 60 s). Shoal only (a
# two-node Swarm needs a second host).
LINK_LATE=${LINK_LATE:-65}
LINK_NAME=fp$((RANDOM % 100))
LINK_DEV=$WORK/dev
dev_nodes() { "$SHOAL" dev ls --name "$LINK_NAME" --dir "$LINK_DEV" --format json; }
# node_pid I: the daemon PID of node I (1: the manager, 2: the worker).
# (setsid, nsenter, unshare and sh exec one another: the PID of restart_node's job is the daemon's.)
node_pid() {
    if [ -f "$LINK_DEV/restart-$1.pid" ]; then cat "$LINK_DEV/restart-$1.pid"; return; fi
    dev_nodes | python3 -c "import json, sys; print(json.load(sys.stdin)[$1 - 1]['pid'])"
}

# sample_node PID NAME: NAME_rss_mb, _pss_mb, _uss_mb, and NAME_tls_rss_mb, the RSS of the
# libcrypto and libssl mappings (/proc/PID/smaps).
sample_node() {
    echo "$2_rss_mb $(calc "$(rss_kb "$1") / 1024")"
    echo "$2_pss_mb $(calc "$(pss_kb "$1") / 1024")"
    echo "$2_uss_mb $(calc "$(uss_kb "$1") / 1024")"
    echo "$2_tls_rss_mb $(awk '/^[0-9a-f]+-/ { lib = ($6 ~ /lib(crypto|ssl)\.so/) }
        lib && /^Rss:/ { s += $2 } END { printf "%.3f", s / 1024 }' "/proc/$1/smaps")"
}

# restart_node I: the node's daemon stopped (SIGTERM) and started again with the same command
# line, in the node's network namespace and a UTS namespace named as the node.
restart_node() {
    local pid cmd i sock
    pid=$(node_pid "$1")
    mapfile -d '' cmd <"/proc/$pid/cmdline"
    sock=$(dev_nodes | python3 -c "import json, sys; print(json.load(sys.stdin)[$1 - 1]['socket'])")
    kill -TERM "$pid"
    for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$sock"
    setsid nsenter --net="/run/netns/shoal-$LINK_NAME-$1" unshare --uts sh -c \
        'hostname "$0"; exec "$@"' "node-$1" "$SHOAL" "${cmd[@]:1}" </dev/null >>"$LINK_DEV/restart-$1.log" 2>&1 &
    echo $! >"$LINK_DEV/restart-$1.pid"
    for i in $(seq 300); do [ -S "$sock" ] && return 0; sleep 0.1; done
    echo "node $1: no socket 30 s after its restart" >&2; return 1
}

linked_down() {
    local i
    for i in 1 2; do [ -f "$LINK_DEV/restart-$i.pid" ] && kill -TERM "$(cat "$LINK_DEV/restart-$i.pid")" 2>/dev/null; done
    sleep 1
    "$SHOAL" dev down --name "$LINK_NAME" --dir "$LINK_DEV" >/dev/null 2>&1 || log "dev down failed"
}

linked_measure() {
    local state
    "$SHOAL" dev up -n 2 --name "$LINK_NAME" --subnet "10.213.$((200 + RANDOM % 50)).0/24" --dir "$LINK_DEV" >/dev/null
    for state in setup restart; do
        [ "$state" = restart ] && { restart_node 1; restart_node 2; }
        sleep "${SETTLE:-5}"
        sample_node "$(node_pid 1)" "link_${state}_manager"
        sample_node "$(node_pid 2)" "link_${state}_worker"
        sleep "$((LINK_LATE - ${SETTLE:-5}))"
        sample_node "$(node_pid 1)" "link_${state}_late_manager"
        sample_node "$(node_pid 2)" "link_${state}_late_worker"
    done
}
if [[ " ${SIDES:-shoal docker} " == *" shoal "* && "${LINKED:-1}" != 0 ]]; then
    (set -e; trap linked_down EXIT; linked_measure) >"$WORK/link.fig" || { log "linked nodes: FAILED"; FAILED=1; }
fi
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
if [ "${LINKED:-1}" != only ]; then
    echo "footprint (containers' own processes excluded; $KIND)"
    echo "after set-up (the daemons that initialised the swarm and imported the image):"
    rows setup
    echo "after restart (stopped and started again on the same state, as after a reboot: the goals' state):"
    rows restart
fi
if [ -f "$WORK/link.fig" ]; then
    link() { awk -v k="link_$1" '$1 == k { print $2 }' "$WORK/link.fig"; }
    echo "a node with its mutual-TLS link (2-node dev cluster, shoal only; _late: ${LINK_LATE} s after its start), MB:"
    for state in setup setup_late restart restart_late; do
        for node in manager worker; do
            printf '%-13s %-8s RSS %6s  PSS %6s  USS %6s  (libcrypto + libssl RSS %s)\n' "$state" "$node" \
                "$(link "${state}_${node}_rss_mb")" "$(link "${state}_${node}_pss_mb")" \
                "$(link "${state}_${node}_uss_mb")" "$(link "${state}_${node}_tls_rss_mb")"
        done
    done
fi
exit $FAILED
