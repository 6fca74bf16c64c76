#!/bin/bash
# Scale bench in the spirit of Nomad's C1M: one shoal manager, thousands of simulated nodes with
# real sessions (join, mutual TLS heartbeats), 100,000 tasks placed by the real scheduler through
# Raft. bench/c1m.py does the work (see its docstring for what is measured); this runs it in a
# private network namespace (the manager's cluster port on its own loopback, no routes or
# firewall rules of the machine touched), as root.
# Usage: bench/c1m.sh [quick|normal|long] [c1m.py options]   (bench/c1m.py --help)
#   quick   500 nodes, 10,000 tasks (a minute or two)
#   normal  5,000 nodes, 100,000 tasks (the default)
#   long    5,000 nodes, 1,000,000 tasks
# env: SHOAL=build/shoal
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "c1m.sh: must run as root (network namespace)" >&2; exit 1; }
/usr/bin/python3 -c 'import cryptography' 2>/dev/null ||
    { echo "c1m.sh: missing python3-cryptography (apt-get install python3-cryptography)" >&2; exit 1; }
# a TLS connection kept per simulated node: many descriptors on both sides (the daemon keeps
# half of its limit for the connections it accepts, 3 each, and the bench raises its cap)
ulimit -Hn 200000 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
exec unshare --net --fork --kill-child=TERM sh -c 'ip link set lo up && sysctl -q -w net.ipv4.ip_local_port_range="1024 65535" &&
    exec /usr/bin/python3 "$0" "$@"' "$BENCH/c1m.py" "$@"
