# Shared code of the benchmarks; sourced by bench/*.sh (bash).
#
# Each stack (a shoal daemon, or dockerd with its containerd) runs in its own network, mount
# and PID namespaces: `unshare` + tini as PID 1. So its traffic stays on its own loopback, and
# when the stack stops, the kernel ends every process left in it (shims, containers) and drops
# every mount it made. What can outlive it is removed by the stop functions: the temporary
# directory and Docker's cgroup parent.
#
# A benchmark runs both sides in turn with `run_side SIDE FN`; FN prints `KEY VALUE` figure
# lines, read back with `fig SIDE KEY`. The stack functions of a side are SIDE_start and
# SIDE_stop; `cli SIDE ARGS...` runs that side's docker-like CLI.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
SHOAL=${SHOAL:-$REPO/build/shoal}
DOCKER=${DOCKER:-/usr/bin/docker}   # Debian's client, same version as its dockerd
IMAGE=busybox:latest

log() { echo "[$(date +%T)] $*" >&2; }
die() { echo "$(basename "$0"): $*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }   # calc '(1.5 - 0.2) * 1000'

NEEDED=(unshare tini ip busybox)
[[ " ${SIDES:-docker} " == *" docker "* ]] && NEEDED+=("$DOCKER" dockerd)   # only when Docker is run
for c in "${NEEDED[@]}"; do
    command -v "$c" >/dev/null || die "missing $c: run scripts/bench-deps.sh"
done
[ "$(id -u)" -eq 0 ] || die "must run as root (daemons, namespaces, cgroups)"

WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/shoal-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# make_rootfs OUT.tar: a busybox root filesystem: Debian's static busybox + one symlink per applet.
make_rootfs() {
    local r=$WORK/rootfs
    [ -f "$1" ] && return
    mkdir -p "$r"/{bin,dev,etc,proc,sys,tmp,root}
    cp "$(command -v busybox)" "$r/bin/busybox"
    for a in $("$r/bin/busybox" --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
    echo 'root:x:0:' >"$r/etc/group"
    tar -C "$r" -cf "$1" .
}

# make_layout DIR [BASE.tar]: an OCI layout with tag v1: LAYERS gzip layers of LAYER_MB of
# random bytes, above BASE.tar when given (a root filesystem, so that the image runs).
make_layout() {
    local dir=$1 base=${2:-} i t diff dig size layers="" diffs="" cfg cdig man
    mkdir -p "$dir/blobs/sha256" "$WORK/layer"
    for i in ${base:+0} $(seq "$LAYERS"); do
        t=$WORK/layer.tar
        if [ "$i" = 0 ]; then
            cp "$base" "$t"
        else
            rm -rf "$WORK/layer"/*; mkdir -p "$WORK/layer/data$i"
            head -c "$((LAYER_MB * 1048576))" /dev/urandom >"$WORK/layer/data$i/blob"
            tar -C "$WORK/layer" -cf "$t" .
        fi
        diff=$(sha256sum <"$t" | cut -d' ' -f1)
        gzip -1 -n -f "$t"
        dig=$(sha256sum <"$t.gz" | cut -d' ' -f1)
        size=$(stat -c %s "$t.gz")
        mv "$t.gz" "$dir/blobs/sha256/$dig"
        layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dig\",\"size\":$size}"
        diffs+="${diffs:+,}\"sha256:$diff\""
    done
    rm -rf "$WORK/layer"
    cfg="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diffs]}}"
    cdig=$(printf %s "$cfg" | sha256sum | cut -d' ' -f1)
    printf %s "$cfg" >"$dir/blobs/sha256/$cdig"
    man="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cdig\",\"size\":${#cfg}},\"layers\":[$layers]}"
    printf %s "$man" >"$dir/blobs/sha256/$(printf %s "$man" | sha256sum | cut -d' ' -f1)"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
    echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$(printf %s "$man" | sha256sum | cut -d' ' -f1)\",\"size\":${#man},\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}" >"$dir/index.json"
}

# ns_spawn DIR CMD...: run CMD in new net/mount/pid namespaces with lo up and tini as PID 1;
# output is appended to DIR/log, the unshare PID written to DIR/ns.pid.
ns_spawn() {
    local dir=$1; shift
    unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private \
        sh -c 'ip link set lo up && exec tini -- "$@"' sh "$@" >>"$dir/log" 2>&1 &
    echo $! >"$dir/ns.pid"
}

# ns_init DIR: host PID of the namespace's PID 1 (tini).
ns_init() { pgrep -P "$(cat "$1/ns.pid")" | head -1; }

# ns_alive DIR
ns_alive() { [ -f "$1/ns.pid" ] && kill -0 "$(cat "$1/ns.pid")" 2>/dev/null; }

# ns_stop DIR: SIGTERM to the daemon (through tini), SIGKILL to the namespace after 30 s.
ns_stop() {
    local dir=$1 i
    ns_alive "$dir" || return 0
    kill -TERM "$(ns_init "$dir")" 2>/dev/null || true
    for i in $(seq 300); do ns_alive "$dir" || return 0; sleep 0.1; done
    log "$dir: daemon did not stop in 30 s, killing its namespace"
    kill -KILL "$(cat "$dir/ns.pid")" 2>/dev/null || true   # --kill-child: its PID 1 dies too
    wait "$(cat "$dir/ns.pid")" 2>/dev/null || true
}

# ns_procs DIR own|tasks: host PIDs of the stack's own processes (in its PID namespace, tini
# excepted), or of its containers' processes (descendants in other PID namespaces).
ns_procs() {
    ps -e -o pid=,ppid=,pidns= | awk -v init="$(ns_init "$1")" -v mode="$2" '
        { pp[$1] = $2; ns[$1] = $3 }
        END {
            for (p in pp) {
                for (q = pp[p]; q > 1 && q != init; q = pp[q]) ;
                if (q != init) continue
                if ((mode == "own") == (ns[p] == ns[init])) print p
            }
        }'
}

# rss_kb PID...: sum of VmRSS in kB.
rss_kb() { local p; for p in "$@"; do awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null; done | awk '{ s += $1 } END { print s + 0 }'; }

# pss_kb PID...: sum of Pss (/proc/PID/smaps_rollup: shared pages divided among their users) in kB.
pss_kb() { local p; for p in "$@"; do awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '{ s += $1 } END { print s + 0 }'; }

# uss_kb PID...: sum of Private_Clean + Private_Dirty (smaps_rollup: pages no other process maps) in kB.
uss_kb() { local p; for p in "$@"; do awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s + 0 }' "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '{ s += $1 } END { print s + 0 }'; }

# ---- Docker Swarm ----
DK=$WORK/docker
# docker_spawn: dockerd up in its namespace on $DK's data (made on the first call).
docker_spawn() {
    mkdir -p "$DK"
    # --iptables/--ip6tables=false: no firewall rules (own netns anyway); --bridge=none: no
    # docker0, so containers not given a network get none; own cgroup parent, removed at stop.
    ns_spawn "$DK" dockerd --data-root "$DK/data" --exec-root "$DK/exec" --pidfile "$DK/pid" \
        -H "unix://$DK/docker.sock" --iptables=false --ip6tables=false --bridge=none \
        --storage-driver=overlay2 --cgroup-parent="/shoal-bench-$$" --log-level=warn ${DOCKERD_ARGS:-}
    local i
    for i in $(seq 300); do
        "$DOCKER" -H "unix://$DK/docker.sock" version >/dev/null 2>&1 && break
        ns_alive "$DK" || { tail -20 "$DK/log" >&2; die "dockerd exited"; }
        sleep 0.1
    done
    cli docker version >/dev/null || { tail -20 "$DK/log" >&2; die "dockerd did not answer in 30 s"; }
}
docker_start() {
    make_rootfs "$WORK/rootfs.tar"
    docker_spawn
    cli docker swarm init --advertise-addr 127.0.0.1 >/dev/null
    cli docker import "$WORK/rootfs.tar" "$IMAGE" >/dev/null
    log "docker: dockerd $(cli docker version -f '{{.Server.Version}}') up, swarm initialised, $IMAGE imported"
}
# docker_restart: dockerd stopped and started again on the same data, as after a reboot.
docker_restart() {
    ns_stop "$DK"
    docker_spawn
    log "docker: dockerd restarted"
}
docker_stop() {
    [ -d "$DK" ] || return 0
    if ns_alive "$DK"; then
        cli_to 60 docker swarm leave --force >/dev/null 2>&1 || true
        local ids; ids=$(cli_to 30 docker ps -aq 2>/dev/null) || true
        [ -z "$ids" ] || cli_to 60 docker rm -f $ids >/dev/null 2>&1 || true
    fi
    ns_stop "$DK"
    find /sys/fs/cgroup/*/"shoal-bench-$$" -depth -type d -exec rmdir {} + 2>/dev/null || true
    rm -rf "$DK"
}

# ---- shoal ----
SH=$WORK/shoal
# shoal_spawn: the daemon up in its namespace on $SH's state (made on the first call).
shoal_spawn() {
    [ -x "$SHOAL" ] || die "no shoal binary at $SHOAL (make, or set SHOAL=)"
    mkdir -p "$SH/state" "$SH/run"
    # shellcheck disable=SC2086 # SHOAL_DAEMON_ARGS: more options, e.g. --debug
    ns_spawn "$SH" "$SHOAL" daemon --state-dir "$SH/state" --socket "$SH/shoal.sock" --run-dir "$SH/run" \
        ${SHOAL_DAEMON_ARGS:-}
    local i
    for i in $(seq 300); do
        [ -S "$SH/shoal.sock" ] && return 0
        ns_alive "$SH" || { tail -20 "$SH/log" >&2; die "shoal daemon exited"; }
        sleep 0.1
    done
    tail -20 "$SH/log" >&2; die "shoal daemon made no socket in 30 s"
}
shoal_start() {
    make_rootfs "$WORK/rootfs.tar"
    shoal_spawn
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cli shoal swarm init --advertise-addr "127.0.0.1:$port" >/dev/null
    cli shoal image import "$WORK/rootfs.tar" "$IMAGE" >/dev/null
    log "shoal: daemon up, swarm initialised on 127.0.0.1:$port, $IMAGE imported"
}
# shoal_restart: the daemon stopped and started again on the same state, as after a reboot
# (its socket file is left by the old one: removed, so that the wait sees the new one's).
shoal_restart() {
    ns_stop "$SH"
    rm -f "$SH/shoal.sock"
    shoal_spawn
    log "shoal: daemon restarted"
}
shoal_stop() {
    [ -d "$SH" ] || return 0
    ns_alive "$SH" && { cli_to 60 shoal swarm leave --force >/dev/null 2>&1 || true; }
    ns_stop "$SH"
    rm -rf "$SH"
}

# cli_to SECS SIDE ARGS...: the side's CLI against its daemon, killed after SECS (0: no limit,
# and no extra timeout process in the way of what is timed). cli SIDE ARGS...: with a 120 s limit.
cli_to() {
    local t=$1 side=$2 bin sock
    shift 2
    case $side in docker) bin=$DOCKER sock=$DK/docker.sock ;; shoal) bin=$SHOAL sock=$SH/shoal.sock ;; esac
    if [ "$t" = 0 ]; then "$bin" -H "unix://$sock" "$@"; else timeout "$t" "$bin" -H "unix://$sock" "$@"; fi
}
cli() { cli_to "${CLI_TIMEOUT:-120}" "$@"; }

# stack_dir SIDE
stack_dir() { case $1 in docker) echo "$DK" ;; shoal) echo "$SH" ;; esac; }

# replicas_running SIDE SERVICE: running task count of a service, as its CLI reports it (the
# same template and awk for both sides: a python3 per poll took ~100 ms, more than the poll).
replicas_running() {
    cli "$1" service ls --filter "name=$2" --format '{{.Name}} {{.Replicas}}' |
        awk -v n="$2" '$1 == n { split($2, r, "/"); print r[1] + 0; f = 1 } END { if (!f) print 0 }'
}

# wait_replicas SIDE SERVICE N TIMEOUT_S: poll until N tasks run (every $POLL_S, default 0.05 s);
# fails on timeout.
wait_replicas() {
    local end; end=$(calc "$(now) + $4")
    while [ "$(replicas_running "$1" "$2")" -lt "$3" ]; do
        awk "BEGIN { exit !($(now) > $end) }" && { echo "$1: $2: not $3 tasks running after $4 s" >&2; return 1; }
        sleep "${POLL_S:-0.05}"
    done
}

# wait_no_tasks SIDE TIMEOUT_S: poll until no container process is left in the stack.
wait_no_tasks() {
    local i
    for i in $(seq $(($2 * 10))); do
        [ -z "$(ns_procs "$(stack_dir "$1")" tasks)" ] && return 0
        sleep 0.1
    done
    echo "$1: container processes still running after $2 s" >&2; return 1
}

# run_side SIDE FN: start the side's stack, run FN SIDE, stop the stack. FN's stdout (figure
# lines) goes to $WORK/SIDE.fig. Returns non-zero, with the reason on stderr, if the side failed.
run_side() {
    local rc
    set +e
    (set -e; trap "$1_stop" EXIT; "$1_start"; "$2" "$1") >"$WORK/$1.fig"
    rc=$?
    set -e
    [ $rc -eq 0 ] || log "$1: FAILED (exit $rc), see the messages above"
    return $rc
}

# fig SIDE KEY: a figure printed by the side's FN; "FAILED" if it has none, "-" if not run.
fig() {
    [ -f "$WORK/$1.fig" ] || { echo -; return; }
    awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print "FAILED" }' "$WORK/$1.fig"
}

# ratio A B: A / B, or "-" when either is not a number.
ratio() { [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]] && calc "$1 / $2" || echo -; }

# both FN: run FN for shoal then for docker; sets FAILED=1 if a side failed.
FAILED=0
both() { local s; for s in ${SIDES:-shoal docker}; do run_side "$s" "$1" || FAILED=1; done; }

machine() { echo "$(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), $(. /etc/os-release; echo "$PRETTY_NAME")"; }
