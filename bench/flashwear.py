#!/usr/bin/python3
"""bench/flashwear: bytes an idle daemon writes per hour (boards run on SD
cards). An idle single-node manager (swarm initialised, no service) and the
idle worker of a 2-node `shoal dev` cluster (1 manager + 1 worker, no task),
measured side by side from /proc/PID/io over --seconds (after --settle):
write_bytes (what reached the block layer: the wear) and wchar (every
write(2), sockets included), extrapolated to an hour. Goal: under 1 MB/hour
of write_bytes for the idle worker. The state directories are on the disk
(--dir, default /var/tmp), not tmpfs, so write_bytes means something.

Usage (as root): bench/flashwear.py [--seconds 180] [--settle 20] [--dir /var/tmp]
(SHOAL_BIN: the binary). Exit 1 when the idle worker is over the goal."""
import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("SHOAL_BIN", os.path.join(ROOT, "build", "shoal"))

GOAL = 1 << 20


def proc_io(pid):
    out = {}
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            k, v = line.split(":")
            out[k] = int(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=180)
    ap.add_argument("--settle", type=int, default=20)
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    tempfile.tempdir = args.dir  # the clusters' and the daemon's state on the disk

    from cluster import Cluster
    from conftest import Daemon

    base = tempfile.mkdtemp(prefix="shoal-fw-")
    single = Daemon(base)
    cl = None
    try:
        single.start()
        single.init_swarm()
        cl = Cluster(managers=1, workers=1)
        pids = {"idle manager (single node)": single.proc.pid,
                "idle manager (2-node cluster)": cl.nodes[0].daemon_pid(),
                "idle worker (2-node cluster)": cl.nodes[1].daemon_pid()}
        time.sleep(args.settle)
        before = {k: proc_io(p) for k, p in pids.items()}
        t0 = time.monotonic()
        time.sleep(args.seconds)
        after = {k: proc_io(p) for k, p in pids.items()}
        dt = time.monotonic() - t0
        print("idle daemons, %d s measured after %d s settling, extrapolated to an hour:" % (
            dt, args.settle))
        worker_wb = 0
        for k in pids:
            wb = (after[k]["write_bytes"] - before[k]["write_bytes"]) * 3600 / dt
            wc = (after[k]["wchar"] - before[k]["wchar"]) * 3600 / dt
            print("  %-31s write_bytes %10.0f B/h (%.3f MB/h)   wchar %12.0f B/h" % (
                k, wb, wb / (1 << 20), wc))
            if "worker" in k:
                worker_wb = wb
        ok = worker_wb < GOAL
        print("idle worker %s the goal of 1 MB/hour" % ("meets" if ok else "misses"))
        return 0 if ok else 1
    finally:
        single.teardown()
        shutil.rmtree(base, ignore_errors=True)
        if cl:
            cl.destroy()


if __name__ == "__main__":
    sys.exit(main())
