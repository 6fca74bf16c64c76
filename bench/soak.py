#!/usr/bin/python3
"""bench/soak: --cycles create/update/rm cycles of a service (with a published
port) and a `run --rm` container on one daemon (swarm initialised), then:
RSS and open fds of the daemon back within 10% of the baseline (taken after
--warmup cycles), and nothing left: mounts, cgroups and netns of the
containers it ran, veths on its bridge, nft rules naming its bridge or
subnet, files in its state dir (logs, layers, bundles) beyond the baseline's.

Usage (as root): bench/soak.py [--cycles 1000] [--warmup 5]
(SHOAL_BIN: the binary). Prints the figures; exit 1 when a check fails.
tests/integration/test_soak.py runs 20 cycles in the suite."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("SHOAL_BIN", os.path.join(ROOT, "build", "shoal"))

from conftest import Daemon, make_rootfs_tar, wait_until  # noqa: E402

# the store's own files come and go (sqlite journal); raft's segments and
# snapshots rotate (compared by count, not by name)
VOLATILE = ("-wal", "-shm", "-journal", ".tmp")
RAFT_DIR = "raft"
RAFT_FILES_MAX = 16  # libraft keeps a few segments and two snapshots (+ .meta)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def state_files(d):
    out = set()
    for dirpath, dirnames, filenames in os.walk(d.state_dir):
        for n in filenames + [x for x in dirnames]:
            p = os.path.relpath(os.path.join(dirpath, n), d.state_dir)
            if not p.endswith(VOLATILE) and not p.startswith(RAFT_DIR + "/"):
                out.add(p)
    return out


NET_POOL_SIZE = 2  # src/agent/net.h


def bridge_ports(d):
    r = subprocess.run(["ip", "-o", "link", "show", "master", d.bridge], capture_output=True, text=True)
    return len(r.stdout.splitlines())


def veths(d):
    """The task veths on d's bridge: not the spare ones of the pool of namespaces made ahead
    (named vsp..., NET_POOL_SIZE of them at rest); a pooled one a task took has the alternative
    name vsh<task id>."""
    r = subprocess.run(["ip", "-o", "link", "show", "master", d.bridge], capture_output=True, text=True)
    return [l.split(":")[1].strip() for l in r.stdout.splitlines()
            if not l.split(":")[1].strip().startswith("vsp") or "altname vsh" in l]


def nft_rules(d):
    r = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True)
    prefix = d.subnet.rsplit(".", 2)[0] + "."
    return sorted(l.strip() for l in r.stdout.splitlines() if d.bridge in l or prefix in l)


def netns_of(ids):
    return [i for i in ids if os.path.exists("/run/netns/shoal-%s" % i)]


def cycle(d, i):
    name = "soak%d" % i
    d.cli("service", "create", "--name", name, "--replicas", "1", "--stop-grace-period", "1s",
          "-p", "%d:80" % (18000 + i % 1000), "busybox", "sleep", "100000")
    d.wait_running(name, 1, timeout=60)
    d.cli("service", "update", "--env-add", "CYCLE=%d" % i, name)
    d.wait_running(name, 1, timeout=60, version=d.service(name)["version"])
    d.tasks(name)  # remembered for the leftover checks
    d.cli("service", "rm", name)
    out = d.cli("run", "--rm", "busybox", "echo", "soak%d" % i).stdout.strip()
    if out != "soak%d" % i:
        raise AssertionError("run --rm printed %r" % out)


def settle(d):
    wait_until(lambda: d.api("GET", "/v1/tasks").json() == [] and
               d.api("GET", "/v1/containers").json() == [] and not veths(d), timeout=60,
               msg=lambda: "tasks %s, veths %s" % (d.api("GET", "/v1/tasks").json(), veths(d)))


def snapshot(d):
    pid = d.proc.pid
    raft = os.path.join(d.state_dir, RAFT_DIR)
    return {"rss_kb": rss_kb(pid), "fds": fd_count(pid), "files": state_files(d),
            "nft": nft_rules(d), "raft_files": len(os.listdir(raft)) if os.path.isdir(raft) else 0}


def soak(cycles, warmup=5, log=print):
    base = tempfile.mkdtemp(prefix="shoal-soak-")
    d = Daemon(base)
    problems = []
    try:
        d.start()
        d.init_swarm()
        d.import_image(make_rootfs_tar(os.path.join(base, "busybox.tar")))
        for i in range(warmup):
            cycle(d, i)
        settle(d)
        b = snapshot(d)
        t0 = time.monotonic()
        for i in range(warmup, warmup + cycles):
            cycle(d, i)
            if (i - warmup + 1) % 100 == 0:
                log("%d cycles, rss %d kB, fds %d" % (i - warmup + 1, rss_kb(d.proc.pid), fd_count(d.proc.pid)))
        dt = time.monotonic() - t0
        settle(d)
        time.sleep(2)  # a last reap tick
        a = snapshot(d)
        log("%d cycles in %.0f s; rss %d -> %d kB (%+.1f%%), fds %d -> %d" % (
            cycles, dt, b["rss_kb"], a["rss_kb"], 100.0 * (a["rss_kb"] - b["rss_kb"]) / b["rss_kb"],
            b["fds"], a["fds"]))
        if a["rss_kb"] > b["rss_kb"] * 1.1:
            problems.append("RSS grew more than 10%%: %d -> %d kB" % (b["rss_kb"], a["rss_kb"]))
        if a["fds"] > b["fds"] * 1.1:
            problems.append("fds grew more than 10%%: %d -> %d (%s)" % (
                b["fds"], a["fds"], sorted(os.readlink("/proc/%d/fd/%s" % (d.proc.pid, f))
                                           for f in os.listdir("/proc/%d/fd" % d.proc.pid))))
        extra = sorted(a["files"] - b["files"])
        if extra:
            problems.append("files left in the state dir: %s" % extra[:20])
        if a["raft_files"] > max(b["raft_files"], RAFT_FILES_MAX):
            problems.append("raft files pile up: %d -> %d" % (b["raft_files"], a["raft_files"]))
        if a["nft"] != b["nft"]:
            problems.append("nft rules changed: %s" % sorted(set(a["nft"]) ^ set(b["nft"]))[:20])
        leftovers = d.leftovers()  # processes, mounts, bundles, cgroups of every task it saw
        problems += leftovers
        ns = netns_of(d.known_ids)
        if ns:
            problems.append("netns left: %s" % ns[:20])
        v = veths(d)
        if v:
            problems.append("veths left: %s" % v)
        spare = bridge_ports(d) - len(v)
        if spare > NET_POOL_SIZE:
            problems.append("%d spare veths on the bridge, more than the pool's %d" % (spare, NET_POOL_SIZE))
        return {"cycles": cycles, "seconds": round(dt), "rss_kb": (b["rss_kb"], a["rss_kb"]),
                "raft_files": (b["raft_files"], a["raft_files"]),
                "fds": (b["fds"], a["fds"]), "problems": problems}
    finally:
        errors = d.teardown()
        if errors:
            problems += errors
        shutil.rmtree(base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    r = soak(args.cycles, args.warmup)
    print(json.dumps(r))
    for p in r["problems"]:
        print("FAIL: " + p)
    if not r["problems"]:
        print("checks passed: RSS and fds within 10%, no leftover mounts, cgroups, netns, veths, "
              "nft rules or state files")
    return 1 if r["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
