#!/bin/bash
# Pull of a multi-layer image from a local registry: `shoal image pull` vs `docker pull` vs
# `skopeo copy docker://... dir:` (no daemon: the reference client). The image is made here
# from random (incompressible) files: LAYERS gzip layers of LAYER_MB each, pushed with skopeo to
# Debian's docker-registry, which runs on loopback inside each side's own namespaces (so each
# side pulls over loopback, from a registry it has to itself). Figures: wall time of the pull
# command, and the peak RSS of the side's daemon during it (sum of VmRSS of the stack's own
# processes, the registry excepted, polled every POLL s; skopeo: the client's own max RSS).
# Usage: bench/pull.sh   (env: LAYERS=5, LAYER_MB=20, SIDES="shoal docker skopeo", POLL=0.02)
source "$(dirname "$0")/lib.sh"
LAYERS=${LAYERS:-5}
LAYER_MB=${LAYER_MB:-20}
POLL=${POLL:-0.02}
REPO_TAG=bench/big:v1
for c in docker-registry skopeo nsenter gzip sha256sum /usr/bin/time; do
    command -v "$c" >/dev/null || die "missing $c: scripts/bench-deps.sh"
done

# ---- skopeo: no daemon; a namespace of its own with tini and a sleep in it ----
SK=$WORK/skopeo
skopeo_start() { mkdir -p "$SK"; ns_spawn "$SK" sleep infinity; sleep 0.2; ns_alive "$SK" || die "skopeo namespace"; }
skopeo_stop() { [ -d "$SK" ] || return 0; ns_stop "$SK"; rm -rf "$SK"; }
stack_dir_any() { case $1 in skopeo) echo "$SK" ;; *) stack_dir "$1" ;; esac; }

# in_ns SIDE CMD...: CMD in the side's network namespace (host mounts and PIDs).
in_ns() { local d; d=$(stack_dir_any "$1"); shift; nsenter --net="/proc/$(ns_init "$d")/ns/net" "$@"; }

# registry_up SIDE: docker-registry inside the side's namespaces (net, PID: it dies with them),
# the test image pushed to it; sets REG (host:port).
registry_up() {
    local side=$1 d init i
    d=$(stack_dir_any "$side"); init=$(ns_init "$d")
    REG=127.0.0.1:5$((RANDOM % 900 + 100))
    mkdir -p "$d/registry"
    printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
        "$d/registry/storage" "$REG" >"$d/registry/config.yml"
    nsenter --target "$init" --net --pid docker-registry serve "$d/registry/config.yml" \
        >"$d/registry/log" 2>&1 </dev/null &
    disown   # killed with the namespace: no "Killed" notice
    for i in $(seq 100); do
        in_ns "$side" bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1#*:}"' sh "$REG" 2>/dev/null && break
        sleep 0.1
    done
    in_ns "$side" bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1#*:}"' sh "$REG" ||
        { tail "$d/registry/log" >&2; die "$side: registry did not answer"; }
    in_ns "$side" skopeo copy --quiet --dest-tls-verify=false --format v2s2 \
        "oci:$WORK/layout:v1" "docker://$REG/$REPO_TAG" >&2
}

# daemon_pids SIDE: the side's own processes but the registry (and what nsenter left).
daemon_pids() {
    local p
    for p in $(ns_procs "$(stack_dir_any "$1")" own); do
        case $(cat "/proc/$p/comm" 2>/dev/null) in docker-registry | nsenter | sleep | "") ;; *) echo "$p" ;; esac
    done
}

# hwm_kb PID...: sum of VmHWM (peak RSS since the process started) in kB.
hwm_kb() { local p; for p in "$@"; do awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null; done | awk '{ s += $1 } END { print s + 0 }'; }

# peak_rss_while PID SIDE: until PID ends, poll the side's daemon RSS; prints the max (kB).
peak_rss_while() {
    local pid=$1 side=$2 max=0 r
    local pids
    while kill -0 "$pid" 2>/dev/null; do
        pids=$(daemon_pids "$side")
        [ -z "$pids" ] || ps -o comm= -p "$(echo $pids | tr ' ' ,)" >>"$WORK/$side.comms" 2>/dev/null || true
        r=$(rss_kb $pids)
        [ "$r" -gt "$max" ] && max=$r
        sleep "$POLL"
    done
    echo "$max"
}

pull_cmd() {
    case $1 in
    shoal) cli_to 0 shoal image pull -q "$REG/$REPO_TAG" ;;
    docker) cli_to 0 docker pull -q "$REG/$REPO_TAG" ;;
    skopeo) in_ns skopeo /usr/bin/time -f 'maxrss_kb %M' -o "$SK/time" \
        skopeo copy --quiet --src-tls-verify=false "docker://$REG/$REPO_TAG" "dir:$SK/out" ;;
    esac
}

measure() {
    local side=$1 dir t0 t1 pid peak idle
    dir=$(stack_dir_any "$side")
    registry_up "$side"
    idle=$(rss_kb $(daemon_pids "$side"))
    t0=$(now)
    pull_cmd "$side" >"$dir/pull.out" 2>&1 &
    pid=$!
    peak=$(peak_rss_while "$pid" "$side")
    wait "$pid" || { cat "$dir/pull.out" >&2; return 1; }
    t1=$(now)
    echo "pull_s $(calc "$t1 - $t0")"
    if [ "$side" = skopeo ]; then   # a client: its own peak, no daemon before or after
        peak=$(awk '/^maxrss_kb/ { print $2 }' "$SK/time")
        [ "$(du -sm "$SK/out" | cut -f1)" -ge "$((LAYERS * LAYER_MB))" ] || { echo "skopeo: dir: too small" >&2; return 1; }
        printf 'idle_mb -\nhwm_mb -\n'
    else
        echo "hwm_mb $(calc "$(hwm_kb $(daemon_pids "$side")) / 1024")"
        echo "idle_mb $(calc "$idle / 1024")"
        cli "$side" image inspect "$REG/$REPO_TAG" >/dev/null || { echo "$side: image not stored" >&2; return 1; }
        log "$side: processes seen during the pull: $(sort -u "$WORK/$side.comms" 2>/dev/null | tr '\n' ' ')"
    fi
    echo "peak_mb $(calc "$peak / 1024")"
    log "$side: pulled in $(calc "$t1 - $t0") s, peak RSS $(calc "$peak / 1024") MB"
}

log "making the image: $LAYERS layers of $LAYER_MB MB of random bytes"
make_layout "$WORK/layout"
log "image made: $(du -sm "$WORK/layout" | cut -f1) MB"
SIDES=${SIDES:-shoal docker skopeo}
export DOCKERD_ARGS="--insecure-registry 127.0.0.0/8 ${DOCKERD_ARGS:-}"
both measure
printf 'pull of %s x %s MB layers (gzip, random)\n' "$LAYERS" "$LAYER_MB"
printf '%-8s %10s %15s %15s %15s\n' side time_s RSS_before_MB peak_RSS_MB sum_VmHWM_MB
for s in $SIDES; do
    printf '%-8s %10s %15s %15s %15s\n' "$s" "$(fig "$s" pull_s)" "$(fig "$s" idle_mb)" "$(fig "$s" peak_mb)" "$(fig "$s" hwm_mb)"
done
printf 'shoal/docker time %s  peak RSS %s; shoal/skopeo time %s\n' \
    "$(ratio "$(fig shoal pull_s)" "$(fig docker pull_s)")" "$(ratio "$(fig shoal peak_mb)" "$(fig docker peak_mb)")" \
    "$(ratio "$(fig shoal pull_s)" "$(fig skopeo pull_s)")"
exit $FAILED
