#!/bin/bash
# Time for the NODES nodes of a dev cluster (`shoal dev up`) to all run one new image from a
# registry, against NODES independent pulls of it. The image: busybox plus LAYERS gzip layers of
# LAYER_MB MB of random bytes (make_layout), pushed with skopeo to Debian's docker-registry,
# which listens on node-1's addresses inside node-1's network namespace (node-1 is the leader).
#
# - cluster: `shoal service create --mode global` of the image, timed until the command
#   returns (it waits for every task to run): the leader pulls once from the registry
#   (loopback), the other nodes fetch the layers from it over the cluster port.
# - independent: NODES `skopeo copy docker://NODE1:PORT/... dir:` at once, one in each node's
#   namespace, over the bridge: NODES downloads with digest checks and no unpacking, a floor
#   for NODES nodes each pulling for itself (as Docker Swarm nodes do).
#
# UPLINK_MBIT=N: the registry's answers (source port PORT) leave node-1 at N Mbit/s at most, on
# loopback (the leader's pull) and on eth0 (the independent copies, sharing it), so the
# registry is behind a slow uplink while the cluster's own network stays fast.
#
# Usage: bench/distribute.sh [quick]   (as root; env: NODES=5, LAYERS=4, LAYER_MB=25,
#                                       UPLINK_MBIT (none); quick: 2 layers of 5 MB)
SIDES=shoal # lib.sh: no Docker here
source "$(dirname "$0")/lib.sh"
if [ "${1:-}" = quick ]; then LAYERS=2 LAYER_MB=5; fi
NODES=${NODES:-5}
LAYERS=${LAYERS:-4}
LAYER_MB=${LAYER_MB:-25}
NAME=bdist$((RANDOM % 100))
SUBNET=10.213.$((200 + RANDOM % 50))
DEV=$WORK/dev
PORT=5000
REPO_TAG=bench/dist:v1
for c in docker-registry skopeo gzip sha256sum ip; do
    command -v "$c" >/dev/null || die "missing $c: scripts/bench-deps.sh"
done

cluster_down() {
    [ -d "$DEV/$NAME" ] || return 0
    [ -z "${REG_PID:-}" ] || { kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; }
    "$SHOAL" dev down --name "$NAME" --dir "$DEV" >/dev/null 2>&1 || log "dev down failed"
}
trap 'cluster_down; rm -rf "$WORK"' EXIT

leader() { timeout 600 "$SHOAL" -H "unix://$DEV/$NAME/node-1/run/shoal.sock" "$@"; }
in_node() { local i=$1; shift; ip netns exec "shoal-$NAME-$i" "$@"; }

registry_up() {
    mkdir -p "$WORK/registry"
    printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 0.0.0.0:%s\n' \
        "$WORK/registry/storage" "$PORT" >"$WORK/registry/config.yml"
    in_node 1 docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 </dev/null &
    REG_PID=$!
    local i
    for i in $(seq 100); do
        in_node 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && break
        sleep 0.1
    done
    in_node 1 skopeo copy --quiet --dest-tls-verify=false --format v2s2 \
        "oci:$WORK/layout:v1" "docker://127.0.0.1:$PORT/$REPO_TAG" >&2
}

# uplink DEV: registry traffic out of DEV in node-1 capped at UPLINK_MBIT (an htb class).
uplink() {
    in_node 1 tc qdisc add dev "$1" root handle 1: htb default 10
    in_node 1 tc class add dev "$1" parent 1: classid 1:1 htb rate "${UPLINK_MBIT}mbit" quantum 60000
    in_node 1 tc class add dev "$1" parent 1: classid 1:10 htb rate 100gbit quantum 60000
    in_node 1 tc filter add dev "$1" parent 1: protocol ip u32 match ip sport "$PORT" 0xffff flowid 1:1
}

independent() {
    local i t0 t1 pids=()
    t0=$(now)
    for i in $(seq "$NODES"); do
        in_node "$i" skopeo copy --quiet --src-tls-verify=false \
            "docker://$SUBNET.1:$PORT/$REPO_TAG" "dir:$WORK/sk$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || die "a skopeo copy failed"; done
    t1=$(now)
    rm -rf "$WORK"/sk*
    calc "$t1 - $t0"
}

cluster() {
    local t0 t1 running
    t0=$(now)
    leader service create --name dist --mode global "127.0.0.1:$PORT/$REPO_TAG" sleep 1000 >/dev/null
    t1=$(now)
    running=$(leader service ps dist --format json | grep -o '"state": *"running"' | wc -l)
    [ "$running" -eq "$NODES" ] || die "cluster: $running of $NODES tasks running"
    calc "$t1 - $t0"
}

log "making the image: busybox + $LAYERS layers of $LAYER_MB MB of random bytes"
make_rootfs "$WORK/rootfs.tar"
make_layout "$WORK/layout" "$WORK/rootfs.tar"
log "image made: $(du -sm "$WORK/layout" | cut -f1) MB; starting a $NODES-node dev cluster"
"$SHOAL" dev up -n "$NODES" --name "$NAME" --subnet "$SUBNET.0/24" --dir "$DEV" >/dev/null
registry_up
if [ -n "${UPLINK_MBIT:-}" ]; then uplink lo; uplink eth0; log "registry uplink: $UPLINK_MBIT Mbit/s"; fi
IND=$(independent)
log "independent: $NODES skopeo copies in $IND s"
CL=$(cluster)
log "cluster: $NODES tasks running in $CL s"
LIMIT="not limited"
[ -z "${UPLINK_MBIT:-}" ] || LIMIT="$UPLINK_MBIT Mbit/s"
printf '%s nodes, image of busybox + %s x %s MB layers (gzip, random), registry uplink %s\n' \
    "$NODES" "$LAYERS" "$LAYER_MB" "$LIMIT"
printf '%-40s %8s\n' "cluster: one pull + distribution (s)" "$CL" "independent: $NODES skopeo copies (s)" "$IND"
printf 'cluster/independent %s\n' "$(ratio "$CL" "$IND")"
