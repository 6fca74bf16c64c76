"""Runs each C unit test (tests/unit, linked into build/unit_tests) as a pytest case."""
import os
import subprocess

import pytest

UNIT_BIN = os.environ.get("UNIT_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "unit_tests"))


def _names():
    out = subprocess.run([UNIT_BIN, "--list"], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("name", _names())
def test_unit(name):
    res = subprocess.run([UNIT_BIN, name], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
