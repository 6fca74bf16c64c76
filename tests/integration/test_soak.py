"""The soak's short run (bench/soak.py, issue 10): 20 create/update/rm cycles
of a service and `run --rm` containers on one daemon; RSS and fds back within
10% of the baseline, nothing left behind (mounts, cgroups, netns, veths, nft
rules, files in the state dir). The 1,000 cycles run by hand (docs/benchmarks.md).
Normal pass only: under ASan the RSS figure means nothing."""
import importlib.util
import os

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

pytestmark = pytest.mark.skipif(bool(os.environ.get("SHOAL_SANITIZER_DIR")),
                                reason="the soak runs in the normal pass only")


def _soak_module():
    spec = importlib.util.spec_from_file_location("soak", os.path.join(ROOT, "bench", "soak.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_soak_short_run():
    r = _soak_module().soak(int(os.environ.get("SHOAL_SOAK_CYCLES", "20")))
    assert not r["problems"], r
