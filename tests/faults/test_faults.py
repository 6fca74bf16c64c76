"""The fault harness's short run (tests/faults/harness.py): ~60 s of seeded
random faults (kill -9 of the leader, a follower, a worker; link down; nft
drops between two nodes; paused daemons) on 3 managers + 1 worker while a
client writes; then every check of the harness. SHOAL_FAULTS_SEED and
SHOAL_FAULTS_SECONDS override the seed (printed) and the length; the long
run is tests/faults/run.py.

Runs in the normal pass of the suite only: under ASan the daemons are too slow
for the recovery timeouts to mean anything."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import DEFAULT_SEED, run_faults  # noqa: E402

pytestmark = pytest.mark.skipif(bool(os.environ.get("SHOAL_SANITIZER_DIR")),
                                reason="the fault harness runs in the normal pass only")


def test_faults_short_run():
    seed = int(os.environ.get("SHOAL_FAULTS_SEED", DEFAULT_SEED))
    seconds = int(os.environ.get("SHOAL_FAULTS_SECONDS", "60"))
    print("fault injection seed %d (replay: tests/faults/run.py --seed %d)" % (seed, seed))
    report = run_faults(seed=seed, seconds=seconds)
    assert report["faults"], report
    assert report["acknowledged"] > 0, report
