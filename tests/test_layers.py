"""The folders' include graph follows the layer table (scripts/check_layers.py,
docs/design.md "Layers"): a new include across the layers fails the suite."""
import importlib.util
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


def load_script():
    spec = importlib.util.spec_from_file_location("check_layers", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_table_has_no_cycle():
    layers = load_script()
    assert layers.table_cycle(layers.ALLOWED) is None
    assert "api" not in layers.ALLOWED["daemon"]


def test_cycle_in_table_fails(tmp_path):
    layers = load_script()
    table = {"base": set(), "api": {"base", "daemon"}, "daemon": {"base", "api"}}
    assert layers.table_cycle(table) == ["api", "daemon", "api"]
    write(tmp_path / "base" / "util.h", "")
    errors, _, _ = layers.check(str(tmp_path), table)
    assert "the layer table has a cycle: api -> daemon -> api" in errors
