"""Cleanup (#16): task history limit, prune commands, system df, automatic image GC, and
the cluster totals of `shoal info`."""
import io
import json
import os
import pty
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from conftest import QUICK_STOP, SHOAL_BIN, Daemon, make_rootfs_tar, wait_until


def _tiny_tar(path, text):
    """An image that only holds one file: importable, small, distinct by its text."""
    with tarfile.open(path, "w") as tar:
        data = text.encode()
        ti = tarfile.TarInfo("note.txt")
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def tars(tmp_path_factory):
    d = tmp_path_factory.mktemp("prune")
    return {
        "old": _tiny_tar(str(d / "old.tar"), "old\n"),
        "new": _tiny_tar(str(d / "new.tar"), "new\n"),
        "unused": _tiny_tar(str(d / "unused.tar"), "unused\n"),
        "used": make_rootfs_tar(str(d / "used.tar"), extra={"used.txt": b"used\n"}),
    }


def _image_ids(d):
    return {i["id"]: i for i in d.api("GET", "/v1/images").json()}


def _id_of(d, ref):
    r = d.api("GET", "/v1/images/" + ref)
    assert r.status == 200, r
    return r.json()["id"]


def _slot_tasks(d, service, slot):
    return [t for t in d.tasks(service) if t.get("slot") == slot]


def test_task_history_limit_keeps_n_tasks_per_slot(daemon):
    d = daemon
    d.cli("swarm", "update", "--task-history-limit", "3")
    try:
        assert d.cli_json("info")["swarm"]["task_history_limit"] == 3
        sw = json.loads(d.cli("swarm", "inspect").stdout)
        assert sw[0]["spec"] == {"task_history_limit": 3} and sw[0]["id"], sw
        d.cli("service", "create", "--detach", "--name", "crashy", "--restart-delay", "100ms",
              "busybox", "sh", "-c", "exit 1")
        # many restarts: the store never holds more than the limit for the slot
        seen = set()

        def restarted_enough():
            ts = _slot_tasks(d, "crashy", 1)
            assert len(ts) <= 3, json.dumps(ts, indent=1)
            seen.update(t["id"] for t in ts)
            return len(seen) >= 8

        wait_until(restarted_enough, timeout=60, interval=0.05)
        ts = _slot_tasks(d, "crashy", 1)
        dead = [t for t in ts if t["desired_state"] != "running"]
        assert len(dead) >= 2, json.dumps(ts, indent=1)
    finally:
        d.cli("service", "rm", "crashy", check=False)
        d.cli("swarm", "update", "--task-history-limit", "5")
    assert d.cli_json("info")["swarm"]["task_history_limit"] == 5


def test_swarm_update_rejects_a_bad_limit(daemon):
    r = daemon.cli("swarm", "update", "--task-history-limit", "many", check=False)
    assert r.returncode == 2 and "task-history-limit" in r.stderr
    r = daemon.api("POST", "/v1/swarm/update", {"task_history_limit": -7})
    assert r.status == 400, r


def test_info_shows_cluster_totals(daemon):
    d = daemon
    d.cli("service", "create", *QUICK_STOP, "--name", "sleepy", "--replicas", "2", "busybox", "sleep", "1000")
    try:
        c = d.cli_json("info")["swarm"]["cluster"]
        assert c["nodes"] == 1 and c["nodes_ready"] == 1 and c["nodes_down"] == 0
        assert c["managers"] == 1 and c["services"] >= 1
        assert c["tasks_running"] >= 2 and c["tasks"] >= c["tasks_running"]
        assert c["cpus"] >= 1 and c["memory"] > 0
        out = d.cli("info").stdout
        assert "Nodes: 1 (1 ready, 0 down)" in out and "Managers: 1" in out, out
        assert "Task History Retention Limit: 5" in out, out
    finally:
        d.cli("service", "rm", "sleepy")


def test_image_prune_removes_dangling_then_unused_never_a_used_one(daemon, tars, rootfs_tar):
    d = daemon
    d.import_image(tars["old"], "prunea:1")
    old = _id_of(d, "prunea:1")
    d.import_image(tars["new"], "prunea:1")  # the old one loses its tag: dangling
    new = _id_of(d, "prunea:1")
    d.import_image(tars["unused"], "unusedimg:1")
    unused = _id_of(d, "unusedimg:1")
    d.import_image(tars["used"], "usedimg:1")
    used = _id_of(d, "usedimg:1")
    assert old != new and _image_ids(d)[old]["tags"] == []
    d.cli("service", "create", *QUICK_STOP, "--name", "user", "usedimg:1", "sleep", "1000")
    try:
        out = d.cli("image", "prune", "-f").stdout
        assert "deleted: " + old in out and "Total reclaimed space:" in out, out
        ids = _image_ids(d)
        assert old not in ids and {new, unused, used} <= set(ids)

        out = d.cli("image", "prune", "-a", "-f").stdout
        assert "untagged: prunea:1" in out and "deleted: " + unused in out, out
        ids = _image_ids(d)
        assert new not in ids and unused not in ids and used in ids
        # the service still runs, and a new task of it can start (its layers are there)
        d.cli("service", "update", "--force", "user")
        d.wait_running("user", 1)
    finally:
        d.cli("service", "rm", "user")
        d.import_image(rootfs_tar)  # -a took busybox:latest (no service used it)


def test_container_prune_removes_stopped_run_containers(daemon):
    d = daemon
    d.cli("run", "--name", "leftover", "busybox", "true")
    ps = d.cli("ps", "-a").stdout
    assert "leftover" in ps, ps
    # a container whose exit is still being cleaned up is pruned at the next try
    out = wait_until(lambda: (lambda o: o if "Deleted Containers:" in o else None)(
        d.cli("container", "prune", "-f").stdout), timeout=10)
    assert "Total reclaimed space:" in out, out
    assert "leftover" not in d.cli("ps", "-a").stdout


def test_system_df_agrees_with_what_exists(daemon, tars):
    d = daemon
    d.import_image(tars["unused"], "dfunused:1")
    df = d.cli_json("system", "df")
    images = d.api("GET", "/v1/images").json()
    assert df["images"]["total"] == len(images)
    assert df["images"]["size"] == sum(i.get("size", 0) for i in images)
    unused = [i for i in images if i["tags"] == ["dfunused:1"]]
    assert df["images"]["reclaimable"] >= unused[0]["size"] > 0
    assert df["images"]["active"] < df["images"]["total"]
    out = d.cli("system", "df").stdout
    assert "Images" in out and "Local Volumes" in out and "Build Cache" in out, out
    d.cli("image", "rm", "dfunused:1")


def test_system_prune_without_force_and_no_tty_refuses(daemon):
    r = daemon.cli("system", "prune", check=False, input="y\n")
    assert r.returncode == 1 and "not a terminal" in r.stderr and "--force" in r.stderr, r
    r = daemon.cli("image", "prune", "-a", check=False, input="")
    assert r.returncode == 1 and "not a terminal" in r.stderr, r


def _prune_on_a_terminal(d, answer, *args):
    """Runs `shoal ARGS` with a terminal as standard input, answering the prompt."""
    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode())
        return subprocess.run([SHOAL_BIN, "-H", "unix://" + d.sock] + list(args), stdin=slave,
                              capture_output=True, text=True, timeout=30)
    finally:
        os.close(slave)
        os.close(master)


def test_prune_asks_on_a_terminal(daemon, tars):
    d = daemon
    d.import_image(tars["old"], "asked:1")
    old = _id_of(d, "asked:1")
    d.import_image(tars["new"], "asked:1")
    r = _prune_on_a_terminal(d, "n\n", "image", "prune")
    assert r.returncode == 1 and "Are you sure" in r.stdout and "Aborted" in r.stdout, r
    assert old in _image_ids(d)
    r = _prune_on_a_terminal(d, "y\n", "image", "prune")
    assert r.returncode == 0 and "deleted: " + old in r.stdout, r
    assert old not in _image_ids(d)
    d.cli("image", "rm", "asked:1")


def test_system_prune_force(daemon, tars):
    d = daemon
    d.import_image(tars["old"], "sysprune:1")
    old = _id_of(d, "sysprune:1")
    d.import_image(tars["new"], "sysprune:1")
    d.cli("run", "--name", "leftover2", "busybox", "true")
    wait_until(lambda: "leftover2" in d.cli("ps", "-a").stdout)
    out = d.cli("system", "prune", "-f").stdout
    assert "deleted: " + old in out, out
    # its container, unless its exit was still being cleaned up: then the next prune
    wait_until(lambda: "leftover2" not in d.cli("ps", "-a").stdout
               or not d.cli("system", "prune", "-f").stdout, timeout=10)
    _id_of(d, "busybox:latest")  # tagged: not dangling, kept
    d.cli("image", "rm", "sysprune:1")


def test_automatic_image_gc_removes_unused_keeps_used(rootfs_tar, tars):
    """A daemon whose GC threshold is always passed (1%): unused images go, least recently
    used first, once older than the minimum age (10 s); a service's image stays."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = Daemon(tmp)
    d.configure({"image-gc-high-percent": 1, "image-gc-low-percent": 0})
    d.start()
    try:
        d.init_swarm()
        d.import_image(rootfs_tar)
        d.import_image(tars["unused"], "gcunused:1")
        unused = _id_of(d, "gcunused:1")
        d.import_image(tars["used"], "gcused:1")
        used = _id_of(d, "gcused:1")
        d.cli("service", "create", *QUICK_STOP, "--name", "gcuser", "gcused:1", "sleep", "1000")
        wait_until(lambda: unused not in _image_ids(d), timeout=40)
        assert used in _image_ids(d)
        assert "image gc: disk" in d.log_tail(200)
        d.cli("service", "update", "--force", "gcuser")  # its layers are still there
        d.wait_running("gcuser", 1)
        d.cli("service", "rm", "gcuser")
    finally:
        errors = d.teardown()
    if not errors:
        shutil.rmtree(tmp, ignore_errors=True)
    assert not errors, "\n".join(errors) + "\ndaemon log:\n" + d.log_tail()


def test_gc_percents_are_checked(tmp_path):
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"image-gc-high-percent": 50, "image-gc-low-percent": 60}))
    r = subprocess.run(
        [SHOAL_BIN, "daemon", "--config", str(cfg), "--state-dir",
         str(tmp_path / "s"), "--run-dir", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "image-gc-low-percent (60) must be below" in r.stderr, r
