#!/bin/bash
# Requests per second and CPU per request through the routing mesh, against a replica directly
# and against HAProxy balancing over the same replicas, in one run, with and without keep-alive.
# Goal: the mesh at least 90% of direct and at least HAProxy's figure, in both modes.
#
# A `shoal dev` cluster of 3 nodes (network namespaces on a bridge) runs a service of 3 replicas
# of the backend, published on PORT (ingress mode: every node answers, nft DNAT round-robin to
# the replicas). The backend is nginx (BACKEND=nginx, the default: Debian's nginx-light binary,
# its libraries and a one-worker config packed by this script into an image with busybox, tens
# of thousands of requests/s) or busybox httpd (BACKEND=busybox: forks per connection, a few
# hundred a second, so the mesh's own cost does not show). wrk and HAProxy run in a client
# network namespace made here, on the cluster's bridge beside the nodes (.200, and .201 for the
# mesh's connections and .202 for HAProxy's, so that no target meets TIME_WAITs another left),
# with a route to each node's task subnet via that node, as a machine on the nodes' LAN would
# have. (The host's
# own namespace cannot be given those routes: every dev cluster on this machine uses the same
# task pool; tcp_tw_reuse=1 there, see below.) The same wrk run for each target:
#   direct   a replica's task address:80 (the replica on node MESH_NODE; routed via that node)
#   mesh     node MESH_NODE's address:PORT (DNAT + masquerade there; 2 of 3 connections then go
#            on to a replica on another node)
#   haproxy  HAProxy in the client namespace (127.0.0.1:PORT), `mode tcp`, `balance roundrobin`
#            over the 3 task addresses (HAPROXY_MODE=http for an HTTP proxy)
#   hostport (only when TARGETS names it) the same service's port PORT+1 published in host mode
#            (`mode=host`: DNAT to node MESH_NODE's own replica, no SNAT, no second node), on a
#            second address of node MESH_NODE (.211, reached from .203): direct's path plus the
#            mesh's translation on the node, so mesh/hostport is the cost of balancing over the
#            other nodes' replicas and hostport/direct that of the translation
# and each in two modes: `ka` (wrk's HTTP/1.1 keep-alive connections) and `close` (wrk sends
# `Connection: close`: a new connection per request). MODES="ka close" picks them.
# CPU per request: the machine's busy CPU time (/proc/stat: everything but idle and iowait, so
# the nodes' forwarding in softirq counts) over the measured run divided by the requests served,
# in microseconds; the busy time of the machine before the rounds (BASE_S seconds, nothing run)
# is printed as `background_busy_pct` to read it against (the machine may be shared): on a
# busy machine that figure counts the others' work too. Path CPU per request counts only the
# bench's own processes: wrk (/usr/bin/time), the replicas (their cgroups' CPU time), HAProxy
# and the ksoftirqd threads (user and system time, /proc/PID/stat), over the requests. The nodes'
# forwarding is in it: a packet sent on a veth is forwarded, through every namespace on its
# way, in softirq in the sender's context (wrk, a server, HAProxy) or in ksoftirqd (which may
# also run some of the others' softirq work). Client CPU per request is wrk's part of it.
# ROUNDS rounds, the targets interleaved; each figure is the median over the rounds.
# Prints `KEY VALUE` figure lines, then a table. Exits non-zero if a measurement failed, not if a
# goal is missed. Removes everything it made (client namespace, HAProxy, cluster, files) on any
# exit. Installs nothing: scripts/bench-deps.sh installs wrk, haproxy and nginx-light.
# Usage: bench/mesh.sh [quick]   (as root; env: THREADS=2 CONNS=32 DURATION=10 WARMUP=3 ROUNDS=3
#                         MODES="ka close" BACKEND=nginx PORT=8000 MESH_NODE=1 HAPROXY_MODE=tcp
#                         TARGETS="direct mesh haproxy" (or with hostport) BASE_S=3 SHOAL=build/shoal)
#   quick: DURATION=4 WARMUP=1 ROUNDS=1 (about a minute; the figures are noisier)
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
SHOAL=${SHOAL:-$REPO/build/shoal}
if [ "${1:-}" = quick ]; then DURATION=${DURATION:-4} WARMUP=${WARMUP:-1} ROUNDS=${ROUNDS:-1}; fi
THREADS=${THREADS:-2} CONNS=${CONNS:-32} DURATION=${DURATION:-10} WARMUP=${WARMUP:-3} ROUNDS=${ROUNDS:-3}
MODES=${MODES:-ka close} BACKEND=${BACKEND:-nginx} BASE_S=${BASE_S:-3}
PORT=${PORT:-8000}   # not 8080: `shoal dev up` serves the dashboard there on the manager
MESH_NODE=${MESH_NODE:-1} HAPROXY_MODE=${HAPROXY_MODE:-tcp}
read -r -a TARGETS <<<"${TARGETS:-direct mesh haproxy}"
NODES=3 REPLICAS=3

log() { echo "[$(date +%T)] $*" >&2; }
die() { echo "$(basename "$0"): $*" >&2; exit 1; }
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (dev cluster, namespaces)"
[ -x "$SHOAL" ] || die "no shoal binary at $SHOAL (make, or set SHOAL=)"
case $BACKEND in nginx) NEED_BACKEND=nginx ;; busybox) NEED_BACKEND= ;; *) die "BACKEND: nginx or busybox" ;; esac
for c in wrk haproxy ip python3 busybox timeout pgrep nsenter /usr/bin/time $NEED_BACKEND; do
    command -v "$c" >/dev/null || die "missing $c: run scripts/bench-deps.sh"
done
case $HAPROXY_MODE in tcp | http) ;; *) die "HAPROXY_MODE: tcp or http" ;; esac
for m in $MODES; do case $m in ka | close) ;; *) die "MODES: ka and/or close" ;; esac; done
for t in "${TARGETS[@]}"; do case $t in direct | mesh | haproxy | hostport) ;; *) die "TARGETS: direct mesh haproxy hostport" ;; esac; done
has_target() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
for t in direct mesh haproxy; do has_target $t || die "TARGETS: direct, mesh and haproxy are always measured"; done

# A 10.213.X.0/24 no other dev cluster routes now (tests/integration/cluster.py _free_prefix;
# test clusters start at 150, `shoal dev up` defaults to 0, so start at 90).
free_prefix() {
    local taken x h
    taken=$(awk 'NR > 1 && substr($2, 7, 2) == "0A" && substr($2, 5, 2) == "D5" { print substr($2, 3, 2) }' /proc/net/route)
    for x in $(seq 90 249) $(seq 1 89); do
        printf -v h '%02X' "$x"
        grep -qx "$h" <<<"$taken" || { echo "10.213.$x"; return; }
    done
    die "no free 10.213.X.0/24 subnet"
}

NAME=bm$(($$ % 1000000))    # dev cluster name: 1 to 8 of [a-z0-9]
PFX=$(free_prefix)
WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/shoal-bench-mesh.XXXXXX")
CLNS=shoalbench-$NAME CLV=sbc-$NAME CLADDR=$PFX.200
# Each target is reached from an address of its own (see the client namespace below).
MESH_SRC=$PFX.201 HAPROXY_SRC=$PFX.202 HOSTPORT_SRC=$PFX.203 HOSTPORT_ADDR=$PFX.211
HAPROXY_PID=
SOCK=unix://$WORK/$NAME/node-1/run/shoal.sock

cleanup() {
    local rc=$?
    set +e
    if [ -n "$HAPROXY_PID" ]; then kill "$HAPROXY_PID" 2>/dev/null; wait "$HAPROXY_PID" 2>/dev/null; fi
    if [ $rc -ne 0 ] && [ -s "$WORK/haproxy.log" ]; then log "haproxy's output:"; tail -20 "$WORK/haproxy.log" >&2; fi
    ip netns del "$CLNS" 2>/dev/null       # takes the veth pair with it
    ip link del "$CLV" 2>/dev/null
    if [ -d "$WORK/$NAME" ]; then
        "$SHOAL" dev down --name "$NAME" --dir "$WORK" >/dev/null 2>"$WORK/down.err" ||
            { log "shoal dev down failed:"; cat "$WORK/down.err" >&2; }
    fi
    if grep -q " $WORK" /proc/mounts; then
        log "mounts left under $WORK, not removing it"
    else
        rm -rf --one-file-system "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cl() { "$SHOAL" -H "$SOCK" "$@"; }
in_client() { ip netns exec "$CLNS" "$@"; }

# wait_for SECS WHAT CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
    local secs=$1 what=$2 _
    shift 2
    for _ in $(seq $((secs * 5))); do "$@" && return 0; sleep 0.2; done
    die "$what: not after $secs s"
}

# json_of PY < JSON: evaluate a Python expression over the parsed JSON `j`, print its lines.
json_of() { python3 -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# ---- cluster and service ----
log "dev cluster $NAME on $PFX.0/24 in $WORK"
"$SHOAL" dev up -n "$NODES" --name "$NAME" --subnet "$PFX.0/24" --dir "$WORK" >"$WORK/up.log"
"$REPO/scripts/busybox-rootfs.sh" "$WORK/busybox.tar"
cl image import "$WORK/busybox.tar" busybox:latest >/dev/null

# nginx_rootfs OUT.tar: busybox (for the shell that writes index.html) plus the host's nginx,
# the libraries ldd names, and a config: one worker, no logs, keep-alive for as many requests as
# a client sends, the answer from /www (index.html: the container's hostname, as with busybox).
nginx_rootfs() {
    local r=$WORK/nginx-root lib
    mkdir -p "$r"
    tar -C "$r" -xf "$WORK/busybox.tar"
    mkdir -p "$r/usr/sbin" "$r/etc/nginx" "$r/var/lib/nginx" "$r/var/log/nginx" "$r/run"
    cp "$(command -v nginx)" "$r/usr/sbin/nginx"
    for lib in $(ldd "$(command -v nginx)" | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }'); do
        mkdir -p "$r$(dirname "$lib")"
        cp -L "$lib" "$r$lib"
    done
    cat >"$r/etc/nginx/nginx.conf" <<'CONF'
user root;
worker_processes 1;
daemon off;
pid /run/nginx.pid;
error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {
        listen 80 backlog=4096 reuseport;
        root /www;
    }
}
CONF
    tar -C "$r" -cf "$1" .
}
case $BACKEND in
nginx)
    nginx_rootfs "$WORK/nginx.tar"
    cl image import "$WORK/nginx.tar" nginx:bench >/dev/null
    SERVE=(nginx:bench sh -c 'hostname > /www/index.html && exec nginx') SERVER_COMM=nginx ;;
busybox) SERVE=(busybox sh -c 'hostname > /tmp/index.html && exec httpd -f -p 80 -h /tmp') SERVER_COMM=httpd ;;
esac
nodes_ready() {
    [ "$(cl node ls --format json | json_of 'len([n for n in j if n["status"] == "ready" and n.get("subnet")])')" = "$NODES" ]
}
wait_for 30 "$NODES nodes ready with a subnet" nodes_ready
HOSTPORT_PUB=()
has_target hostport && HOSTPORT_PUB=(-p "published=$((PORT + 1)),target=80,mode=host")
cl service create --name web --replicas "$REPLICAS" -p "$PORT:80" "${HOSTPORT_PUB[@]}" "${SERVE[@]}" >/dev/null
tasks_up() {
    cl service ps --format json web >"$WORK/tasks.json" &&
        [ "$(json_of 'len([t for t in j if t["state"] == "running" and t.get("addr")])' <"$WORK/tasks.json")" = "$REPLICAS" ]
}
wait_for 60 "$REPLICAS replicas running with an address" tasks_up
# "ADDR NODE-HOSTNAME ID" of each running replica
json_of '"\n".join("%s %s %s" % (t["addr"], t["node_hostname"], t["id"][:12]) for t in j if t["state"] == "running")' \
    <"$WORK/tasks.json" >"$WORK/replicas"
log "replicas: $(tr '\n' ' ' <"$WORK/replicas")"
DIRECT=$(awk -v n="node-$MESH_NODE" '$2 == n { print $1; exit }' "$WORK/replicas")
[ -n "$DIRECT" ] || die "no replica on node-$MESH_NODE (spread scheduling expected one per node)"
MESH=$PFX.$MESH_NODE

# ---- client namespace: on the cluster's bridge, routes to the task subnets ----
# The bridge is in the cluster's LAN namespace, shoal-NAME-lan (docs/design.md, `shoal dev`);
# a shoal from before that (SHOAL=) has it in this machine's namespace.
ip netns add "$CLNS"
if [ -e "/run/netns/shoal-$NAME-lan" ]; then
    ip link add "$CLV" netns "shoal-$NAME-lan" type veth peer name eth0 netns "$CLNS"
    ip -n "shoal-$NAME-lan" link set "$CLV" master "shoal-$NAME" up
else
    ip link add "$CLV" type veth peer name eth0 netns "$CLNS"
    ip link set "$CLV" master "shoal-$NAME" up
fi
in_client ip link set lo up
in_client ip addr add "$CLADDR/24" dev eth0
in_client ip addr add "$MESH_SRC/24" dev eth0
in_client ip addr add "$HAPROXY_SRC/24" dev eth0
in_client ip addr add "$HOSTPORT_SRC/24" dev eth0
in_client ip link set eth0 up
# One source address per target: direct from .200, the mesh from .201 (a route to node-1 with
# that source), HAProxy's connections to the replicas from .202 (`source` on its server lines).
# With one address for all three, a replica would see the same (address, port) pair come as a
# direct connection and, seconds later, as a mesh connection (DNAT, no SNAT: served on node-1)
# or an HAProxy one, each with its own TCP timestamp offset (Linux derives it from the
# connection's two addresses): the new SYN then fails the PAWS check against the TIME_WAIT the
# previous target's connection left there (nginx closes first), and waits a 1 s SYN
# retransmission. By hand: 2,192 SYNs retransmitted in a 4 s close-mode run of the mesh after
# direct, TcpExtPAWSTimewait counting them in the replica's namespace. That is an artifact of
# measuring three paths from one client within the 60 s of TIME_WAIT, not of any of them.
in_client ip route add "$MESH/32" dev eth0 src "$MESH_SRC"
# The host-mode port on a second address of the node, from a source address of its own: from
# .201 to the node's own address, its connections and the mesh's served by the same replica
# would share reply tuples (replica:80 -> .201:port) with entries the other left in node-1's
# conntrack table, and such a clash drops the SYN.
if has_target hostport; then
    NODE_NS=shoal-$NAME-$MESH_NODE
    NODE_IF=$(ip -n "$NODE_NS" -o -4 addr show | awk -v a="$MESH" 'index($4, a "/") == 1 { print $2; exit }')
    [ -n "$NODE_IF" ] || die "no interface with $MESH in $NODE_NS"
    ip -n "$NODE_NS" addr add "$HOSTPORT_ADDR/32" dev "$NODE_IF"
    in_client ip route add "$HOSTPORT_ADDR/32" dev eth0 src "$HOSTPORT_SRC"
fi
# wrk opens a connection per request (busybox httpd closes after each answer): ~4,000 a second
# from one address to one destination, many of them closed by wrk first, so a 10 s run leaves
# ~14,000 of the 28,000 local ports in TIME_WAIT towards that destination for a minute. Without
# reuse of those ports, a run to the same destination within that minute crawled (by hand:
# 3,800 -> 600 requests/s), which would penalise whichever target came back first.
in_client sysctl -q -w net.ipv4.tcp_tw_reuse=1
# nginx without keep-alive: tens of thousands of connections a second, all the ports there are
in_client sysctl -q -w net.ipv4.ip_local_port_range="1024 65535"
cl node ls --format json | json_of '"\n".join("%s %s" % (n["subnet"], n["addr"].split(":")[0]) for n in j)' |
    while read -r subnet via; do in_client ip route add "$subnet" via "$via"; done

# ---- HAProxy over the same replicas ----
{
    printf 'global\n    maxconn 4096\n'
    printf 'defaults\n    mode %s\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n' "$HAPROXY_MODE"
    printf 'frontend fe\n    bind 127.0.0.1:%s\n    default_backend be\n' "$PORT"
    printf 'backend be\n    balance roundrobin\n'
    awk -v src="$HAPROXY_SRC" '{ printf "    server %s %s:80 source %s\n", $3, $1, src }' "$WORK/replicas"
} >"$WORK/haproxy.cfg"
in_client haproxy -c -q -f "$WORK/haproxy.cfg" || die "haproxy rejects $WORK/haproxy.cfg"
ip netns exec "$CLNS" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!   # not through a function (a subshell): ip netns exec execs haproxy, same pid

declare -A URL=([direct]="http://$DIRECT/index.html" [mesh]="http://$MESH:$PORT/index.html"
                [haproxy]="http://127.0.0.1:$PORT/index.html" [hostport]="http://$HOSTPORT_ADDR:$((PORT + 1))/index.html")
NT=${#TARGETS[@]}

# answers URL: the body is the hostname (container id) of one of the replicas.
answers() {
    local body
    body=$(in_client timeout 3 busybox wget -q -O - "$1" 2>/dev/null) || return 1
    awk -v b="$body" '$3 == b { f = 1 } END { exit !f }' "$WORK/replicas"
}
for t in "${TARGETS[@]}"; do wait_for 20 "$t (${URL[$t]}) answering with a replica's hostname" answers "${URL[$t]}"; done

# ---- measurements ----
# to_ms VALUE: wrk's "1.95ms" / "420.09us" / "1.01s" in ms.
to_ms() {
    awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0
        printf "%.2f", u == "us" ? n / 1000 : u == "s" ? n * 1000 : u == "m" ? n * 60000 : n }'
}
# busy_ticks: the machine's CPU time so far, idle and iowait excepted (user nice system irq
# softirq steal of /proc/stat's cpu line), in clock ticks.
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
TICK=$(getconf CLK_TCK)
# proc_ticks PID...: user and system time of these processes, in clock ticks; a process gone
# counts 0.
proc_ticks() {
    local p s=0 v
    for p in "$@"; do
        v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || v=0
        s=$((s + ${v:-0}))
    done
    echo "$s"
}
# The replicas' CPU time counters: the cgroups of the processes whose hostname (UTS namespace)
# is a replica's, cpuacct.usage (cgroup v1, nanoseconds) or cpu.stat's usage_usec (v2). They
# count every process of the task, the children busybox httpd forks per connection and does
# not wait for included.
CPUACCT=$(awk '$3 == "cgroup" && $4 ~ /(^|,)cpuacct(,|$)/ { print $2; exit }' /proc/mounts)
SERVER_CPU=()
for p in $(pgrep -x "$SERVER_COMM"); do
    h=$(nsenter -t "$p" -u hostname 2>/dev/null) || continue
    awk -v h="$h" '$3 == h { f = 1 } END { exit !f }' "$WORK/replicas" || continue
    if [ -n "$CPUACCT" ]; then
        f=$CPUACCT$(awk -F: '$2 ~ /(^|,)cpuacct(,|$)/ { print $3 }' "/proc/$p/cgroup")/cpuacct.usage
    else
        f=/sys/fs/cgroup$(awk -F: '$1 == "0" { print $3 }' "/proc/$p/cgroup")/cpu.stat
    fi
    [ -r "$f" ] || die "no $f for $SERVER_COMM $p"
    [[ " ${SERVER_CPU[*]} " == *" $f "* ]] || SERVER_CPU+=("$f")
done
[ ${#SERVER_CPU[@]} -eq "$REPLICAS" ] || die "found ${#SERVER_CPU[@]} cgroups of the replicas' $SERVER_COMM, expected $REPLICAS"
read -r -a KSOFTIRQD <<<"$(pgrep '^ksoftirqd/' | tr '\n' ' ')"
# path_us: CPU time so far of the replicas, HAProxy and ksoftirqd, in microseconds.
path_us() {
    local f s=0
    for f in "${SERVER_CPU[@]}"; do
        s=$((s + $(awk 'NF == 1 { print int($1 / 1000) } $1 == "usage_usec" { print $2 }' "$f")))
    done
    echo $((s + $(proc_ticks "$HAPROXY_PID" "${KSOFTIRQD[@]}") * 1000000 / TICK))
}
# measure TARGET MODE ROUND: warm-up, then the measured wrk run; prints "TARGET MODE ROUND
# requests/s p50_ms p99_ms errors cpu_us_per_request client_cpu_us_per_request
# path_cpu_us_per_request" (errors: socket errors + non-2xx answers).
measure() {
    local t=$1 m=$2 r=$3 out rps reqs b0 b1 p0 p1 client hdr=()
    [ "$m" = close ] && hdr=(-H 'Connection: close')
    log "round $r, $t ($m): ${URL[$t]}: ${WARMUP} s warm-up, then wrk -t$THREADS -c$CONNS -d${DURATION}s --latency ${hdr[*]}"
    in_client wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "${hdr[@]}" "${URL[$t]}" >/dev/null
    b0=$(busy_ticks) p0=$(path_us)
    out=$(/usr/bin/time -f '%U %S' -o "$WORK/time" ip netns exec "$CLNS" \
        wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" "${URL[$t]}")
    b1=$(busy_ticks) p1=$(path_us)
    echo "$out" >"$WORK/wrk-$t-$m-$r.txt"
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    reqs=$(awk '/ requests in / { print $1 }' <<<"$out")
    [[ $rps =~ ^[0-9.]+$ && $reqs =~ ^[0-9]+$ && $reqs -gt 0 ]] ||
        { echo "$out" >&2; die "$t ($m): no requests in wrk's output"; }
    client=$(awk -v n="$reqs" 'NF == 2 { printf "%.3f", ($1 + $2) * 1000000 / n }' "$WORK/time")
    echo "$t $m $r $rps $(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")" \
        "$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")" \
        "$(awk '/Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
                /Non-2xx or 3xx/ { e += $NF } END { print e + 0 }' <<<"$out")" \
        "$(calc "($b1 - $b0) * 1000000 / $TICK / $reqs")" "$client" \
        "$(calc "$client + ($p1 - $p0) / $reqs")"
}
# median: of the numbers on stdin.
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# col TARGET MODE N: column N of the target's rounds in that mode.
col() { awk -v t="$1" -v m="$2" -v n="$3" '$1 == t && $2 == m { print $n }' "$WORK/rounds"; }

b0=$(busy_ticks)
sleep "$BASE_S"
background=$(calc "($(busy_ticks) - $b0) * 100 / $TICK / $BASE_S / $(nproc)")
echo "# bench/mesh $(date -u '+%F %T UTC'), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $(uname -r), shoal $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "# wrk -t$THREADS -c$CONNS -d${DURATION}s --latency (after ${WARMUP} s warm-up), $ROUNDS rounds, modes: $MODES, $BACKEND x $REPLICAS on $NODES nodes, haproxy mode $HAPROXY_MODE"
echo "background_busy_pct $background"
# Rounds interleave the targets, each round starting one further along, so that load from
# elsewhere on the machine falls on all of them alike; each figure is the median over rounds.
: >"$WORK/rounds"
for r in $(seq "$ROUNDS"); do
    for m in $MODES; do
        for i in $(seq 0 $((NT - 1))); do
            t=${TARGETS[$(((i + r - 1) % NT))]}
            measure "$t" "$m" "$r" >>"$WORK/rounds"
            echo "${t}_${m}_rps_r$r $(awk -v t="$t" -v m="$m" -v r="$r" '$1 == t && $2 == m && $3 == r { print $4 }' "$WORK/rounds")"
        done
    done
done
for m in $MODES; do
    for t in "${TARGETS[@]}"; do
        echo "${t}_${m}_rps $(col "$t" "$m" 4 | median)"
        echo "${t}_${m}_p50_ms $(col "$t" "$m" 5 | median)"
        echo "${t}_${m}_p99_ms $(col "$t" "$m" 6 | median)"
        echo "${t}_${m}_errors $(col "$t" "$m" 7 | awk '{ s += $1 } END { print s + 0 }')"
        echo "${t}_${m}_cpu_us_per_req $(col "$t" "$m" 8 | median)"
        echo "${t}_${m}_client_cpu_us_per_req $(col "$t" "$m" 9 | median)"
        echo "${t}_${m}_path_cpu_us_per_req $(col "$t" "$m" 10 | median)"
    done
done | tee "$WORK/figs"
fig() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/figs"; }
for m in $MODES; do
    md=$(calc "$(fig "mesh_${m}_rps") / $(fig "direct_${m}_rps")")
    mh=$(calc "$(fig "mesh_${m}_rps") / $(fig "haproxy_${m}_rps")")
    echo "mesh_over_direct_$m $md"
    echo "mesh_over_haproxy_$m $mh"
    echo "goal_mesh_90pct_of_direct_$m $(awk -v r="$md" 'BEGIN { print (r >= 0.9) ? "met" : "not_met" }')"
    echo "goal_mesh_at_least_haproxy_$m $(awk -v r="$mh" 'BEGIN { print (r >= 1) ? "met" : "not_met" }')"
    if has_target hostport; then
        echo "hostport_over_direct_$m $(calc "$(fig "hostport_${m}_rps") / $(fig "direct_${m}_rps")")"
        echo "mesh_over_hostport_$m $(calc "$(fig "mesh_${m}_rps") / $(fig "hostport_${m}_rps")")"
    fi
done | tee -a "$WORK/figs"

echo
echo "median of $ROUNDS rounds; requests/s of each round in brackets; CPU: the machine's busy"
echo "CPU time per request, microseconds (background before the rounds: $background% busy); path:"
echo "the bench's own processes' (wrk, replicas, HAProxy, ksoftirqd); client: wrk's part of it"
printf '%-6s %-8s %-28s %-26s %8s %8s %9s %8s %8s %7s\n' mode target url "requests/s" "CPU us" "path us" "client us" "p50 ms" "p99 ms" errors
for m in $MODES; do
    for t in "${TARGETS[@]}"; do
        printf '%-6s %-8s %-28s %-26s %8s %8s %9s %8s %8s %7s\n' "$m" "$t" "${URL[$t]#http://}" \
            "$(fig "${t}_${m}_rps") [$(col "$t" "$m" 4 | paste -sd' ')]" "$(fig "${t}_${m}_cpu_us_per_req")" \
            "$(fig "${t}_${m}_path_cpu_us_per_req")" "$(fig "${t}_${m}_client_cpu_us_per_req")" \
            "$(fig "${t}_${m}_p50_ms")" "$(fig "${t}_${m}_p99_ms")" "$(fig "${t}_${m}_errors")"
    done
done
for m in $MODES; do
    g1=$(fig "goal_mesh_90pct_of_direct_$m") g2=$(fig "goal_mesh_at_least_haproxy_$m")
    echo "$m: mesh/direct $(fig "mesh_over_direct_$m") (goal >= 0.9: ${g1/_/ }), mesh/haproxy $(fig "mesh_over_haproxy_$m") (goal >= 1: ${g2/_/ })"
    if has_target hostport; then
        echo "$m: hostport/direct $(fig "hostport_over_direct_$m") (the translation), mesh/hostport $(fig "mesh_over_hostport_$m") (the other nodes' replicas)"
    fi
done
