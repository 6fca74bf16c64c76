#!/usr/bin/env python3
"""bench/flood: a manager under a connection flood keeps serving.

A manager (dashboard on, default limits) and a worker joined to it run on
loopback in a network and mount namespace of their own. Against each network
listener in turn (the dashboard, then the cluster port), the bench keeps up to
CONNS connections open for SECONDS, from many 127.0.x.y source addresses, each
sending half a request and nothing more; whatever the daemon closes is opened
again. Meanwhile, every 0.5 s, it times `shoal info` on the Unix socket and
checks that the worker is still Ready (its heartbeats, one TLS connection each,
get through). Reported per listener: connections opened, most held at once,
the daemon's most file descriptors, `shoal info` median and worst time, and
whether the worker stayed Ready. Fails if `shoal info` failed or the worker
was marked down.

Usage (as root): bench/flood.py [--conns N] [--seconds S]   (SHOAL_BIN: the binary)"""
import argparse
import errno
import os
import resource
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
INNER = "SHOAL_FLOOD_INNER"


def reexec_in_namespaces():
    """Loopback only, and the daemons' bridges and mounts vanish with us."""
    env = dict(os.environ, **{INNER: "1"})
    cmd = ["unshare", "--net", "--mount", "--fork", "--", "sh", "-c",
           'ip link set lo up && exec "$0" "$@"', sys.executable] + sys.argv
    os.execvpe("unshare", cmd, env)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


class Flood:
    """Keeps up to `target` half-sent requests open against port."""

    OPEN_PER_ROUND = 400

    def __init__(self, port, target, payload):
        self.port, self.target, self.payload = port, target, payload
        self.ep = select.epoll()
        self.socks = {}  # fd -> (socket, sent)
        self.opened = self.closed_by_daemon = self.most_held = 0
        self.next_source = 0

    def source(self):
        # 50 connections per address: under the per-address cap (100), so the
        # listener's cap is what the daemon has to enforce
        i = self.next_source // 50
        self.next_source += 1
        return "127.0.%d.%d" % (1 + (i // 250) % 250, 2 + i % 250)

    def top_up(self):
        for _ in range(min(self.OPEN_PER_ROUND, self.target - len(self.socks))):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.bind((self.source(), 0))
                rc = s.connect_ex(("127.0.0.1", self.port))
            except OSError:
                s.close()
                return
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                continue
            self.socks[s.fileno()] = [s, False]
            self.ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP)
            self.opened += 1

    def drop(self, fd):
        s = self.socks.pop(fd)[0]
        self.ep.unregister(fd)
        s.close()

    def pump(self, timeout):
        self.top_up()
        for fd, ev in self.ep.poll(timeout):
            entry = self.socks.get(fd)
            if entry is None:
                continue
            s, sent = entry
            if ev & (select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
                try:
                    gone = s.recv(4096) == b""
                except OSError:
                    gone = True
                if gone:
                    self.closed_by_daemon += 1
                    self.drop(fd)
                    continue
            if ev & select.EPOLLOUT and not sent:
                try:
                    s.send(self.payload)
                except OSError:
                    self.closed_by_daemon += 1
                    self.drop(fd)
                    continue
                entry[1] = True
                self.ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
        self.most_held = max(self.most_held, len(self.socks))

    def close(self):
        for fd in list(self.socks):
            self.drop(fd)
        self.ep.close()


def worker_ready(manager):
    nodes = manager.api("GET", "/v1/nodes", timeout=10).json()
    return len(nodes) == 2 and all(n["status"] == "ready" for n in nodes)


def run_flood(name, port, payload, manager, conns, seconds):
    flood = Flood(port, conns, payload)
    infos, most_fds, ready, info_ok = [], 0, True, True
    end = time.monotonic() + seconds
    next_probe = time.monotonic()
    while time.monotonic() < end:
        flood.pump(0.05)
        if time.monotonic() >= next_probe:
            next_probe = time.monotonic() + 0.5
            t0 = time.monotonic()
            res = manager.cli("info", check=False, timeout=60)
            infos.append(time.monotonic() - t0)
            info_ok = info_ok and res.returncode == 0
            ready = ready and worker_ready(manager)
            most_fds = max(most_fds, fd_count(manager.proc.pid))
    flood.close()
    print("%-10s opened %6d  closed by the daemon %6d  held at most %5d  daemon fds at most %5d  "
          "shoal info median %.3f s worst %.3f s  worker Ready throughout: %s"
          % (name, flood.opened, flood.closed_by_daemon, flood.most_held, most_fds,
             statistics.median(infos), max(infos), "yes" if ready else "NO"), flush=True)
    return info_ok and ready


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conns", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/flood.py: must run as root (the daemons, namespaces)")
    if INNER not in os.environ:
        reexec_in_namespaces()
    from conftest import Daemon, free_port, wait_until  # noqa: E402 - needs sys.path

    hard = raise_fd_limit()
    conns = min(args.conns, hard - 500)
    base = tempfile.mkdtemp(prefix="shoal-flood-")
    manager, worker = Daemon(os.path.join(base, "m")), Daemon(os.path.join(base, "w"))
    manager.dashboard_port = free_port()
    manager.extra_args = ["--dashboard-addr", "127.0.0.1:%d" % manager.dashboard_port]
    ok = False
    try:
        manager.start()
        manager.init_swarm()
        worker.start()
        token = manager.cli("swarm", "join-token", "-q", "worker").stdout.strip()
        worker.cli("swarm", "join", "--token", token, "--advertise-addr",
                   "127.0.0.1:%d" % worker.port, "127.0.0.1:%d" % manager.port)
        wait_until(lambda: worker_ready(manager), timeout=60)
        print("# flood: %d connections held against each listener for %g s (%s)"
              % (conns, args.seconds, time.strftime("%F %T UTC", time.gmtime())), flush=True)
        ok = run_flood("dashboard", manager.dashboard_port,
                       b"GET /v1/nodes HTTP/1.1\r\nHost: x\r\n", manager, conns, args.seconds)
        # on the cluster port: the first bytes of a TLS ClientHello, never finished
        ok = run_flood("cluster", manager.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                       manager, conns, args.seconds) and ok
    finally:
        for d in (worker, manager):
            errors = d.teardown() if d.proc is not None else []
            if errors:
                print("teardown: %s" % errors, file=sys.stderr)
        shutil.rmtree(base, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
