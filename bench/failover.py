#!/usr/bin/env python3
"""bench/failover: how fast a shoal cluster heals, on a `shoal dev` cluster of
3 managers + 2 workers on this machine, and how fast dev clusters come and go.

  time from a worker's death (daemon and containers killed) to its replicas
  running elsewhere (goal < 5 s); time from the leader's death to the next
  accepted write (goal < 2 s); `shoal dev up -n 10` and `shoal dev down`.

Usage (as root): bench/failover.py [--runs N]   (SHOAL_BIN: the binary)."""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SHOAL = os.environ.get("SHOAL_BIN", os.path.join(ROOT, "build", "shoal"))
DIR = tempfile.mkdtemp(prefix="shoal-bench-")
NAME = "bfo"


def sh(*args, check=True, env=None, timeout=60):
    res = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=timeout)
    if check and res.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(args), res.stdout, res.stderr))
    return res


def node_cli(node, *args, check=True):
    sock = "unix://%s/%s/%s/run/shoal.sock" % (DIR, NAME, node)
    return sh(SHOAL, "-H", sock, *args, check=check)


def dev(*args, name=NAME):
    return sh(SHOAL, "dev", *args, "--name", name, "--dir", DIR, timeout=120)


def kill_node(node):
    """A board dies: every process in its network namespace."""
    ns = "shoal-%s-%s" % (NAME, node.split("-")[1])
    pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def wait(fn, timeout=60, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fn():
                return time.monotonic()
        except Exception:  # noqa: BLE001 - polled until the deadline
            pass
        time.sleep(step)
    sys.exit("timed out")


def running_on(node, service):
    out = node_cli(node, "service", "ps", "--format", "json", service, check=False).stdout
    return [t for t in json.loads(out) if t["desired_state"] == "running" and t["state"] == "running"]


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def dev_up_down(runs):
    ups, downs = [], []
    for _ in range(runs):
        ups.append(timed(lambda: dev("up", "-n", "10", name="bup")))
        downs.append(timed(lambda: dev("down", name="bup")))
    return min(ups), min(downs)


def failover():
    dev("up", "-n", "5", "--managers", "3")
    tar = os.path.join(DIR, "busybox.tar")
    sh(os.path.join(ROOT, "scripts", "busybox-rootfs.sh"), tar)
    node_cli("node-1", "image", "import", tar, "busybox:latest")
    node_cli("node-1", "service", "create", "--name", "web", "--replicas", "6",
             "--stop-grace-period", "1s", "busybox", "sleep", "100000")
    tasks = running_on("node-1", "web")
    nodes = {n["hostname"]: n["id"] for n in json.loads(node_cli("node-1", "node", "ls", "--format", "json").stdout)}
    victim_id = nodes["node-5"]
    assert any(t["node_id"] == victim_id for t in tasks), "no replica on node-5"
    t0 = time.monotonic()
    kill_node("node-5")
    t1 = wait(lambda: len([t for t in running_on("node-1", "web") if t["node_id"] != victim_id]) == 6)
    worker = t1 - t0
    t0 = time.monotonic()
    kill_node("node-1")
    t1 = wait(lambda: node_cli("node-2", "service", "scale", "-d", "web=7", check=False).returncode == 0,
              step=0.01)
    leader = t1 - t0
    dev("down")
    return worker, leader


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/failover.py: run as root")
    try:
        up, down = dev_up_down(args.runs)
        worker, leader = failover()
    finally:
        sh(SHOAL, "dev", "down", "--name", NAME, "--dir", DIR, check=False)
        sh(SHOAL, "dev", "down", "--name", "bup", "--dir", DIR, check=False)
    print("failover benchmark (shoal %s, %d cores)" % (SHOAL, os.cpu_count()))
    print("  %-44s %8.2f s   (goal < 5 s)" % ("worker death -> its replicas running elsewhere", worker))
    print("  %-44s %8.2f s   (goal < 2 s)" % ("leader death -> next accepted write", leader))
    print("  %-44s %8.2f s   (goal < 2 s, best of %d)" % ("shoal dev up -n 10", up, args.runs))
    print("  %-44s %8.2f s   (goal < 0.5 s, best of %d)" % ("shoal dev down (10 nodes)", down, args.runs))


if __name__ == "__main__":
    main()
