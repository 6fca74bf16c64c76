#!/usr/bin/python3
"""The long fault-injection run, by hand (as root):
    tests/faults/run.py --minutes N [--seed S] [--workers W]
Prints the seed, every fault injected and the checks' outcome; exit 1 when a
check fails (the daemons' logs are kept, the path is printed)."""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Finding, run_faults  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    ap.add_argument("--workers", type=int, default=1, choices=(1, 2))
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    print("seed %d" % seed, flush=True)
    try:
        report = run_faults(seed=seed, seconds=int(args.minutes * 60), workers=args.workers)
    except Finding as e:
        print("FAILED: %s" % e, flush=True)
        return 1
    print("faults injected: %d" % len(report["faults"]))
    for f in report["faults"]:
        print("  " + " ".join(f))
    print("writes: %s" % report["writes"])
    print("checks passed: acknowledged writes stored once, failed ones absent, replicas restored, "
          "no orphans, managers' views converge, short pauses keep their tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
