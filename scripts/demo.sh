#!/bin/bash
# Sets everything up and runs shoal on this machine: Debian packages, build,
# install to /usr/local/bin, a daemon on the embedded defaults, a single-node
# swarm, a busybox image and a demo web service.
# Usage (as root): ./scripts/demo.sh      (stop with: ./scripts/demo.sh stop)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root (containers, mounts, cgroups)" >&2; exit 1; }
LOG=/var/log/shoal.log
PIDFILE=/run/shoal-demo.pid
PORT=${SHOAL_DEMO_PORT:-8080}
DASHBOARD_PORT=${SHOAL_DASHBOARD_PORT:-8081}

if [ "${1:-}" = stop ]; then
    shoal service rm demo 2>/dev/null || true
    shoal swarm leave --force 2>/dev/null || true
    # only the daemon this script started (other shoal daemons may run here)
    if [ -f "$PIDFILE" ]; then kill -TERM "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; fi
    echo "shoal stopped."
    exit 0
fi

scripts/deps.sh
make -j"$(nproc)"
install -m 0755 build/shoal /usr/local/bin/shoal

if ! shoal info >/dev/null 2>&1; then
    nohup shoal daemon --dashboard-addr "127.0.0.1:$DASHBOARD_PORT" >>"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 100); do shoal info >/dev/null 2>&1 && break; sleep 0.1; done
fi
shoal info >/dev/null || { echo "the daemon did not start; see $LOG" >&2; exit 1; }
if ! shoal node ls >/dev/null 2>&1; then
    shoal swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1  # a one-machine demo: loopback only
fi
if ! shoal image ls --format json | grep -q '"busybox:latest"'; then
    tar=$(mktemp --suffix=.tar)
    scripts/busybox-rootfs.sh "$tar"
    shoal image import "$tar" busybox:latest
    rm -f "$tar"
fi
mkdir -p /var/lib/shoal-demo/www
echo "<h1>Hello from shoal</h1>" > /var/lib/shoal-demo/www/index.html
if ! shoal service inspect demo >/dev/null 2>&1; then
    # two replicas behind a published port: the routing mesh balances between them
    shoal service create --name demo --replicas 2 --init -p "$PORT:80" \
        --mount type=bind,src=/var/lib/shoal-demo/www,dst=/www,readonly \
        busybox:latest httpd -f -p 80 -h /www
fi

echo
shoal node ls
echo
shoal service ls
echo
shoal service ps demo
echo
for _ in $(seq 50); do
    out=$(busybox wget -q -O - "http://127.0.0.1:$PORT/" 2>/dev/null) && break
    sleep 0.1
done
echo "curl http://127.0.0.1:$PORT/  ->  ${out:-no answer yet}"
echo "dashboard: $(shoal dashboard url 2>/dev/null || echo 'off (the daemon was started without --dashboard-addr)')"
cat <<EOT

shoal is running (daemon log: $LOG). Try:
  shoal service ps demo              the demo's two tasks (port 8080 balances over them)
  shoal service logs demo            its output
  shoal run --rm busybox echo hi     a one-off container
  shoal service create --name sleepers --replicas 5 busybox sleep 1000
  shoal service scale sleepers=10
  ./scripts/demo.sh stop             stop everything
EOT
