#!/bin/bash
# Time from `service create --replicas N busybox sleep 1000` to N tasks running (as the CLI's
# `service ls` reports, polled every $POLL_S), for each N in $CONVERGE_NS and each networking mode
# in $CONVERGE_MODES: `host` (--network host: no per-task network) and `net` (a user network the
# bench creates: a network namespace, a veth and an address per task). Sides: the runtime-only
# floor, shoal and Docker Swarm (Swarm in host mode only: it has no overlay without its own
# networking stack here), in one run.
#
# The floor (in shoal's side, each N of a mode just before shoal's, so that both see the same
# load): N prepared bundles (shoal's own config.json of a running task of the mode, each over an
# overlay of the rootfs, prepared before the clock starts) started with `crun run -d` the way
# shoal calls crun (--cgroup-manager=disabled, own --root), $FLOOR_PARALLEL at a time (shoal's
# thread pool has 16 threads), timed until every `crun run -d` has returned (the container
# runs). In `net` mode each start first makes what shoal makes per task (in shoal's network
# namespace, beside its bridges): a network namespace, a veth on a bridge, the address,
# loopback, the route, by the same rtnetlink requests shoal sends (bench/floor_net.c: shoal's
# src/agent/net_task.c in a plain program that then execs crun); FLOOR_NET=ip: with two `ip
# -batch` runs instead, the floor of sessions 7 to 9 (two execs more per task: slower).
# Also the CPU time: the floor's processes', and shoal's daemon with the children it reaped
# (crun, ip, nft), from the create to the last poll: what the load of a shared machine moves less.
# Usage: bench/converge.sh   (env: CONVERGE_NS="20 100", CONVERGE_MODES="host net",
# TIMEOUT=300, SIDES="shoal docker", FLOOR_PARALLEL=16, FLOOR_NET=netlink (or ip), POLL_S=0.02: `service ls` every 20 ms;
# SHOAL_DAEMON_ARGS=--debug: also the network passes of each create, from the daemon's log)
# "floor" as a side: the floor is measured within shoal's side (each N just before shoal's).
if [[ " ${SIDES:-} " == *" floor "* ]]; then
    SIDES=$(echo " $SIDES " | sed 's/ floor / /g')
    [[ " $SIDES " == *" shoal "* ]] || SIDES="shoal $SIDES"
    SIDES=$(echo $SIDES)
fi
source "$(dirname "$0")/lib.sh"
NS=${CONVERGE_NS:-20 100}
MODES=${CONVERGE_MODES:-host net}
FLOOR_PARALLEL=${FLOOR_PARALLEL:-16}
FLOOR_NET=${FLOOR_NET:-netlink}
FL=$WORK/floor
export POLL_S=${POLL_S:-0.02}
NET=convnet

# in_stack CMD...: CMD in shoal's network namespace (the mount namespace stays the host's).
in_stack() { nsenter --net="/proc/$(ns_init "$SH")/ns/net" "$@"; }

network_of() { case $1 in host) echo host ;; net) echo "$NET" ;; esac; }

# cpu_ms PID: CPU time of the process and of its children it has reaped (crun, ip, nft), in ms.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15 + $16 + $17) * 1000 / hz }' "/proc/$1/stat"; }

# passes: the network passes the shoal daemon logged so far (with SHOAL_DAEMON_ARGS=--debug).
passes() { grep -c 'network pass' "$SH/log" || true; }

# converge SIDE NAME N MODE: create the service, wait for N running; prints the seconds, and for
# shoal the daemon's CPU meanwhile in ms (its own and its children's), else "-".
converge() {
    local side=$1 name=$2 n=$3 mode=$4 t0 t1 out pid="" c0=0 cpu=-
    [ "$side" = shoal ] && pid=$(pgrep -P "$(ns_init "$SH")" -x shoal | head -1) && c0=$(cpu_ms "$pid")
    t0=$(now)
    out=$(cli "$side" service create -d --name "$name" --replicas "$n" --network "$(network_of "$mode")" \
        "$IMAGE" sleep 1000 2>&1) || { echo "$out" >&2; return 1; }
    wait_replicas "$side" "$name" "$n" "${TIMEOUT:-300}"
    t1=$(now)
    [ -z "$pid" ] || cpu=$(($(cpu_ms "$pid") - c0))
    echo "$(calc "$t1 - $t0") $cpu"
}

# remove SIDE NAME: the service, and wait until its containers are gone.
remove() { cli "$1" service rm "$2" >/dev/null; wait_no_tasks "$1" 120; }

# ---- the floor ----

# floor_setup MODE: the floor's config.json of MODE, from a running shoal task of that mode (its
# bind mounts' files that live in shoal's directories copied, as the task goes before the floor
# runs), and, for `net`, a bridge like the node's (.1 of a /24) in shoal's network namespace.
floor_setup() {
    local mode=$1 src
    mkdir -p "$FL/$mode" "$FL/lower" "$FL/crun"
    # the placement shoal asks for its bundles and crun's state (dir_spread_subdirs: ext4's
    # top-directory flag), so that both sides allocate their inodes alike
    chattr +T "$FL" "$FL/crun" 2>/dev/null || true
    [ -n "$(ls -A "$FL/lower")" ] || tar -C "$FL/lower" -xf "$WORK/rootfs.tar"
    converge shoal "convref$mode" 1 "$mode" >/dev/null
    src=$(grep -l '"sleep"' $(find "$SH/state" -path "*containers/*/config.json") | head -1)
    [ -n "$src" ] || { echo "floor: no config.json of a shoal task found" >&2; return 1; }
    python3 - "$src" "$FL/$mode/config.json" "$SH" "$FL/$mode/files" <<'PY'
import json, os, shutil, sys
src, out, shoal_dir, files = sys.argv[1:]
c = json.load(open(src))
c["process"]["terminal"] = False
os.makedirs(files, exist_ok=True)
for i, m in enumerate(c.get("mounts", [])):
    s = m.get("source", "")
    if s.startswith(shoal_dir + "/") and os.path.isfile(s):
        m["source"] = shutil.copy(s, os.path.join(files, "%d-%s" % (i, os.path.basename(s))))
json.dump(c, open(out, "w"))
PY
    remove shoal "convref$mode"
    if [ "$mode" = net ] && ! in_stack ip link show cfl0 >/dev/null 2>&1; then
        in_stack ip -batch - <<EOF
link add cfl0 type bridge
addr add 10.199.0.1/24 dev cfl0
link set cfl0 up
EOF
    fi
}

# floor_bundles MODE N: N bundles floorI/ (config.json, overlay of the rootfs).
floor_bundles() {
    local mode=$1 n=$2 i b
    for i in $(seq "$n"); do
        b=$FL/b$i
        mkdir -p "$b/upper" "$b/work" "$b/rootfs"
        mount -t overlay overlay -o "lowerdir=$FL/lower,upperdir=$b/upper,workdir=$b/work" "$b/rootfs"
        python3 - "$FL/$mode/config.json" "$b" "$i" "$mode" <<'PY'
import json, sys
src, b, i, mode = sys.argv[1:]
c = json.load(open(src))
c["root"]["path"] = b + "/rootfs"
c["hostname"] = "floor%s" % i
for ns in c["linux"]["namespaces"]:
    if ns["type"] == "network" and mode == "net":
        ns["path"] = "/run/netns/shoal-floor%s" % i  # as shoal names them (net_netns_path)
json.dump(c, open(b + "/config.json", "w"))
PY
    done
}

# The script run per floor container (by xargs): [network], then `crun run -d`; and the
# netlink helper of the `net` floor, built from shoal's source.
floor_start_script() {
    cc -std=c11 -D_GNU_SOURCE -O2 -I "$REPO/src" -o "$FL/floor_net" "$REPO/bench/floor_net.c" \
        "$REPO/src/base/err.c" "$REPO/src/agent/net_addr.c"
    cat >"$FL/start1.sh" <<'EOF'
#!/bin/sh
# start1.sh FLOORDIR MODE I NETWAY
fl=$1 mode=$2 i=$3 netway=$4
crun="crun --cgroup-manager=disabled --root=$fl/crun run -d --bundle $fl/b$i floor$i"
if [ "$mode" = net ] && [ "$netway" = netlink ]; then
    exec "$fl/floor_net" "floor$i" cfl0 1500 "10.199.0.$((i % 250 + 2))" $crun </dev/null >/dev/null
fi
if [ "$mode" = net ]; then
    ip -batch - <<E || exit 1
netns add shoal-floor$i
link add vfl$i type veth peer name eth0 netns shoal-floor$i
link set vfl$i master cfl0 up
E
    ip -n shoal-floor$i -batch - <<E || exit 1
link set lo up
addr add 10.199.0.$((i % 250 + 2))/24 dev eth0
link set eth0 up
route add default via 10.199.0.1
E
fi
exec $crun </dev/null >/dev/null
EOF
    chmod +x "$FL/start1.sh"
}

# floor_clean N: kill and delete the floor's containers, their namespaces and overlays.
floor_clean() {
    local n=$1 i
    for i in $(seq "$n"); do
        crun --root="$FL/crun" kill "floor$i" KILL 2>/dev/null || true
    done
    for i in $(seq "$n"); do
        crun --cgroup-manager=disabled --root="$FL/crun" delete -f "floor$i" >/dev/null 2>&1 || true
        [ -e "/run/netns/shoal-floor$i" ] && ip netns del "shoal-floor$i"
        umount "$FL/b$i/rootfs" 2>/dev/null || true
        rm -rf "$FL/b$i"
    done
}

# floor_check MODE N: every floor container runs (and in `net` mode has its address).
floor_check() {
    local running
    running=$(crun --root="$FL/crun" list 2>/dev/null | awk '$1 ~ /^floor/ && $3 == "running"' | wc -l)
    [ "$running" -eq "$2" ] || { echo "floor: $running of $2 running" >&2; return 1; }
    # (2>/dev/null: ip complains of every stale file in /run/netns while naming the peer's netns)
    [ "$1" != net ] || ip -n shoal-floor1 -4 addr show eth0 2>/dev/null | grep -q 'inet 10\.199\.0\.' ||
        { echo "floor: shoal-floor1 has no address" >&2; return 1; }
}

# floor MODE N: seconds to start N prepared bundles, and their CPU time in ms (xargs and what it
# waited for: the ip and crun processes).
floor() {
    local mode=$1 n=$2 t0 t1 rc=0 cpu TIMEFORMAT='%U %S'
    floor_bundles "$mode" "$n"
    rm -f "$FL/failed"
    t0=$(now)
    cpu=$({ time (seq "$n" | in_stack xargs -P "$FLOOR_PARALLEL" -I{} "$FL/start1.sh" "$FL" "$mode" {} "$FLOOR_NET" \
        2>"$FL/err" || touch "$FL/failed"); } 2>&1)
    t1=$(now)
    [ ! -e "$FL/failed" ] || { cat "$FL/err" >&2; rc=1; }
    floor_check "$mode" "$n" || rc=1
    [ $rc -eq 0 ] || { floor_clean "$n"; echo "floor: a start failed ($mode, N=$n)" >&2; return 1; }
    echo "$(calc "$t1 - $t0") $(awk "BEGIN { printf \"%d\", (${cpu% *} + ${cpu#* }) * 1000 }")"
}

floor_cleanup_all() { rm -rf "$FL"; }   # the bridge goes with shoal's network namespace

measure() {
    local side=$1 n mode s sc f="" fc out
    trap 'floor_cleanup_all' RETURN
    for mode in $MODES; do
        [ "$side" = docker ] && [ "$mode" != host ] && continue
        if [ "$side" = shoal ]; then
            [ "$mode" = net ] && cli shoal network create "$NET" >/dev/null
            floor_setup "$mode"
            floor_start_script
        fi
        for n in $NS; do
            if [ "$side" = shoal ]; then
                out=$(floor "$mode" "$n")   # (a failure stops the side: set -e)
                read -r f fc <<<"$out"
                echo "floor_${mode}_$n $f"
                echo "floorcpu_${mode}_$n $fc"
            fi
            p0=$([ "$side" = shoal ] && passes || echo 0)
            # the floor's containers are deleted after shoal's timed create, not before it: on
            # this disk (ext4 without a journal) each new inode skips the inodes deleted in the
            # last minutes, so a cleanup just before one side's clock slows that side only
            out=$(converge "$side" "conv$n" "$n" "$mode") || { [ "$side" != shoal ] || floor_clean "$n"; return 1; }
            [ "$side" != shoal ] || floor_clean "$n"
            read -r s sc <<<"$out"
            echo "converge_${mode}_$n $s"
            echo "cpu_${mode}_$n $sc"
            log "$side: $mode N=$n converged in $s s, CPU $sc ms${f:+ (floor $f s, CPU $fc ms)}"
            if [ "$side" = shoal ] && [ "$(passes)" -gt 0 ]; then
                sleep 2   # the passes of the last commits (not timed)
                log "shoal: $mode N=$n: $(($(passes) - p0)) network passes from the create to 2 s after"
            fi
            remove "$side" "conv$n"
        done
    done
}

both measure
for mode in $MODES; do
    for n in $NS; do
        f=$(fig shoal "floor_${mode}_$n"); s=$(fig shoal "converge_${mode}_$n"); d=$(fig docker "converge_${mode}_$n")
        [ "$mode" = host ] || d=-
        printf 'converge %-4s N=%-4s floor %7s s  shoal %7s s  swarm %7s s  shoal/floor %5s  shoal/swarm %s\n' \
            "$mode" "$n" "$f" "$s" "$d" "$(ratio "$s" "$f")" "$(ratio "$s" "$d")"
        f=$(fig shoal "floorcpu_${mode}_$n"); s=$(fig shoal "cpu_${mode}_$n")
        printf '         %-4s N=%-4s CPU: floor %7s ms  shoal daemon %7s ms  shoal/floor %5s\n' \
            "$mode" "$n" "$f" "$s" "$(ratio "$s" "$f")"
    done
done
exit $FAILED
