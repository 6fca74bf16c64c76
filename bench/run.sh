#!/bin/bash
# Mean wall time of `run --rm busybox echo hi`, RUNS times in sequence (after one warm-up run):
# the floor (`crun run` alone of the same config.json and rootfs), `shoal run --rm` and
# `docker run --rm`, in one run. Each run's output is checked.
# Usage: bench/run.sh   (env: RUNS=100, SIDES="shoal docker", NET=host|bridge (shoal's --network,
# default host: what `docker run` without a bridge does here))
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-100}
NET=${NET:-host}

run_args() { case $1 in shoal) echo "--network $NET" ;; *) ;; esac; }

measure() {
    local side=$1 i t0 t1 out
    out=$(cli "$side" run --rm $(run_args "$side") "$IMAGE" echo hi 2>&1)
    [ "$out" = hi ] || { echo "$side: run printed: $out" >&2; return 1; }
    t0=$(now)
    for i in $(seq "$RUNS"); do
        out=$(cli_to 0 "$side" run --rm $(run_args "$side") "$IMAGE" echo hi 2>&1)
        [ "$out" = hi ] || { echo "$side: run $i printed: $out" >&2; return 1; }
    done
    t1=$(now)
    echo "run_ms $(calc "($t1 - $t0) * 1000 / $RUNS")"
    log "$side: $RUNS runs in $(calc "$t1 - $t0") s"
    [ "$side" = shoal ] && measure_floor
    return 0
}

# The floor: shoal's own config.json (taken from a running container, its command made
# `echo hi`, host network) over a plain copy of the rootfs, run by `crun run` the way shoal
# calls crun, RUNS times. Printed as floor_ms by the shoal side.
measure_floor() {
    local b=$WORK/floor id i t0 t1 out src
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
    local crun=(crun --cgroup-manager=disabled --root="$WORK/crun-root")
    t0=$(now)
    for i in $(seq "$RUNS"); do
        out=$("${crun[@]}" run --bundle "$b" "floor-$i" 2>&1)
        [ "$out" = hi ] || { echo "floor: run $i printed: $out" >&2; return 1; }
    done
    t1=$(now)
    echo "floor_ms $(calc "($t1 - $t0) * 1000 / $RUNS")"
}

both measure
f=$(fig shoal floor_ms); s=$(fig shoal run_ms); d=$(fig docker run_ms)
printf 'run --rm echo hi (mean of %s, shoal --network %s)\n' "$RUNS" "$NET"
printf '  floor (crun run) %8s ms\n  shoal            %8s ms  shoal/floor  %s\n  docker           %8s ms  docker/floor %s\n' \
    "$f" "$s" "$(ratio "$s" "$f")" "$d" "$(ratio "$d" "$f")"
exit $FAILED
