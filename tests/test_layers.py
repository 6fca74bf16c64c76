"""The folders' include graph follows the layer table (scripts/check_layers.py,
docs/design.md "Layers"): a new include across the layers fails the suite."""
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SCRIPT = os.path.join(ROOT, "scripts", "check_layers.py")


def run(src=None):
    args = [sys.executable, SCRIPT] + ([str(src)] if src else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_src_follows_the_layers():
    res = run()
    assert res.returncode == 0, res.stdout + res.stderr


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_new_violation_fails(tmp_path):
    write(tmp_path / "base" / "util.h", "")
    write(tmp_path / "model" / "task.c", '#include "model/task.h"\n#include "base/util.h"\n')
    res = run(tmp_path)
    assert res.returncode == 0, res.stdout
    write(tmp_path / "model" / "cidr.c", '#include "agent/net.h"\n')
    write(tmp_path / "agent" / "net.h", "")
    res = run(tmp_path)
    assert res.returncode == 1
    assert "src/model/cidr.c: includes agent/net.h" in res.stdout


def test_unplaced_folder_fails(tmp_path):
    write(tmp_path / "base" / "util.h", "")
    write(tmp_path / "registry" / "push.c", '#include "base/util.h"\n')
    res = run(tmp_path)
    assert res.returncode == 1
    assert "src/registry/" in res.stdout
