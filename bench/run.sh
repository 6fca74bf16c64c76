#!/bin/bash
# Mean wall time of `run --rm busybox echo hi`, RUNS times in sequence (after one warm-up run):
# the floor (`crun run` alone of the same config.json and rootfs), `shoal run --rm` and
# `docker run --rm`, in one run. Each run's output is checked.
# Usage: bench/run.sh   (env: RUNS=100, SIDES="shoal docker", NET=host|bridge|default (shoal's
# --network; default: none given, i.e. the bridge; host is the default here: what `docker run`
# without a bridge does here))
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-100}
NET=${NET:-host}

RUN_ARGS_shoal="--network $NET"
[ "$NET" = default ] && RUN_ARGS_shoal=""
RUN_ARGS_docker=""

# One timed `run --rm` of the side; its output is checked. The side's options come from
# RUN_ARGS_<side>, set before the clock starts: a `$(run_args ...)` here would fork one more
# subshell per run (~0.5 ms here) that the floor's side does not pay.
run_once() {
    local side=$1 i=$2 out args_var=RUN_ARGS_$1
    # shellcheck disable=SC2086 # the options are words
    out=$(cli_to 0 "$side" run --rm ${!args_var} "$IMAGE" echo hi 2>&1)
    [ "$out" = hi ] || { echo "$side: run $i printed: $out" >&2; return 1; }
}

# One timed `crun run` of the floor bundle.
floor_once() {
    local i=$1 out
    out=$(crun --cgroup-manager=disabled --root="$WORK/crun-root" run --bundle "$WORK/floor" "floor-$i" 2>&1)
    [ "$out" = hi ] || { echo "floor: run $i printed: $out" >&2; return 1; }
}

# shoal's side alternates one floor run and one shoal run, so that both see the same load
# (the machine may be shared); Docker's side runs alone.
measure() {
    local side=$1 i t0 t1 t2 tf=0 ts=0
    [ "$side" = shoal ] && [ "$NET" != host ] && wait_bridge
    run_once "$side" 0
    [ "$side" = shoal ] && floor_bundle
    for i in $(seq "$RUNS"); do
        t0=$(now)
        [ "$side" = shoal ] && floor_once "$i"
        t1=$(now)
        run_once "$side" "$i"
        t2=$(now)
        tf=$(calc "$tf + $t1 - $t0")
        ts=$(calc "$ts + $t2 - $t1")
    done
    echo "run_ms $(calc "$ts * 1000 / $RUNS")"
    [ "$side" = shoal ] && echo "floor_ms $(calc "$tf * 1000 / $RUNS")"
    log "$side: $RUNS runs in $ts s"
}

# Until the node's network is up (~1 s after `swarm init`), a local container asking for the
# bridge gets the host's network instead: wait until one has its eth0, or the bridge side would
# measure the host network.
wait_bridge() {
    local i
    for i in $(seq 100); do
        # shellcheck disable=SC2086 # the options are words
        cli shoal run --rm $RUN_ARGS_shoal "$IMAGE" ls /sys/class/net | grep -qx eth0 && return 0
        sleep 0.1
    done
    echo "shoal: no eth0 in a container of the bridge network after 10 s" >&2
    return 1
}

# The floor's bundle in $WORK/floor: shoal's own config.json (taken from a running container,
# its command made `echo hi`, host network) over a plain copy of the rootfs, run by `crun run`
# the way shoal calls crun.
floor_bundle() {
    local b=$WORK/floor id src
    id=$(cli shoal run -d --network host "$IMAGE" sleep 60)
    src=$(grep -l '"sleep"' $(find "$SH/state" -path "*containers/*/config.json") | head -1)
    [ -n "$src" ] || { echo "floor: no config.json of a shoal container found" >&2; return 1; }
    mkdir -p "$b/rootfs"
    tar -C "$b/rootfs" -xf "$WORK/rootfs.tar"
    python3 - "$src" "$b/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["root"]["path"] = "rootfs"
c["process"]["args"] = ["echo", "hi"]
c["process"]["terminal"] = False
ns = c["linux"]["namespaces"]
c["linux"]["namespaces"] = [n for n in ns if n["type"] != "network"]
json.dump(c, open(sys.argv[2], "w"))
PY
    cli shoal rm -f "$id" >/dev/null 2>&1 || true
    floor_once 0
}

both measure
f=$(fig shoal floor_ms); s=$(fig shoal run_ms); d=$(fig docker run_ms)
printf 'run --rm echo hi (mean of %s, shoal --network %s)\n' "$RUNS" "$NET"
printf '  floor (crun run) %8s ms\n  shoal            %8s ms  shoal/floor  %s\n  docker           %8s ms  docker/floor %s\n' \
    "$f" "$s" "$(ratio "$s" "$f")" "$d" "$(ratio "$d" "$f")"
exit $FAILED
