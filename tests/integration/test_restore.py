"""Daemon restart: live restore of running containers, state kept across a
clean stop (SIGTERM) and a crash (kill -9), containers that exit while the
daemon is down."""
import os
import signal

import pytest

from conftest import pid_alive, wait_until

GRACE = ("--stop-grace-period", "1s")


def _setup(d, rootfs_tar):
    d.cli("image", "import", rootfs_tar, "busybox:2")
    d.cli("service", "create", "--name", "web", "--replicas", "3", *GRACE, "busybox", "sleep", "1000")
    d.cli("service", "create", "--name", "ticker", *GRACE, "busybox", "sh", "-c",
          "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done")
    web = d.wait_running("web", 3)
    ticker = d.wait_running("ticker", 1)
    return {t["id"]: t["pid"] for t in web + ticker}


def _snapshot(d):
    svcs = d.api("GET", "/v1/services").json()
    for s in svcs:
        for k in ("replicas_running", "update_status"):
            s.pop(k, None)
    imgs = sorted(d.api("GET", "/v1/images").json(), key=lambda i: i["id"])
    return svcs, imgs


def _check_restored(d, before_tasks, before_snapshot):
    assert _snapshot(d) == before_snapshot
    now = {t["id"]: t["pid"] for t in d.running_tasks("web") + d.running_tasks("ticker")}
    assert now == before_tasks, "live restore must keep the same task ids and pids"
    # and they stay that way: no task is replaced after the restart
    for s in ("web", "ticker"):
        assert all(t["desired_state"] == "running" for t in d.tasks(s)), d.tasks(s)
    for pid in before_tasks.values():
        assert pid_alive(pid)
    # logs of a restored container keep flowing
    n = len(d.logs("ticker").splitlines())
    wait_until(lambda: len(d.logs("ticker").splitlines()) > n + 2)
    # the restored daemon still manages its services: kill -9 a task -> replaced
    victim = [t for t in d.running_tasks("web") if t["slot"] == 2][0]
    os.kill(victim["pid"], signal.SIGKILL)
    wait_until(lambda: [t for t in d.running_tasks("web") if t["slot"] == 2 and t["id"] != victim["id"]])
    # and writes work (raft log reloaded)
    d.cli("service", "scale", "web=4")
    d.wait_running("web", 4)
    d.cli("service", "create", "--name", "after", *GRACE, "busybox:2", "sleep", "1000")
    d.wait_running("after", 1)
    node = d.cli_json("node", "ls")[0]
    assert node["status"] == "ready" and node["manager_status"] == "leader"


def test_restart_sigterm_live_restore(fresh_daemon, rootfs_tar):
    d = fresh_daemon
    tasks = _setup(d, rootfs_tar)
    snap = _snapshot(d)
    d.stop(signal.SIGTERM)
    # containers keep running while the daemon is down
    assert all(pid_alive(p) for p in tasks.values())
    d.start()
    _check_restored(d, tasks, snap)


def test_restart_after_kill9_live_restore(fresh_daemon, rootfs_tar):
    d = fresh_daemon
    tasks = _setup(d, rootfs_tar)
    snap = _snapshot(d)
    d.kill9()
    assert all(pid_alive(p) for p in tasks.values())
    d.start()
    _check_restored(d, tasks, snap)


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_container_exits_while_daemon_down(fresh_daemon, rootfs_tar, how):
    d = fresh_daemon
    tasks = _setup(d, rootfs_tar)
    victim = [t for t in d.running_tasks("web") if t["slot"] == 1][0]
    if how == "sigterm":
        d.stop(signal.SIGTERM)
    else:
        d.kill9()
    os.kill(victim["pid"], signal.SIGKILL)
    wait_until(lambda: not pid_alive(victim["pid"]))
    d.start()

    def replaced():
        ts = d.tasks("web")
        old = [t for t in ts if t["id"] == victim["id"]][0]
        new = [t for t in ts if t["slot"] == 1 and t["desired_state"] == "running" and t["state"] == "running"]
        return old["state"] in ("failed", "complete") and new and new[0]["id"] != victim["id"] and (old, new[0])
    old, new = wait_until(replaced)
    assert old["desired_state"] == "shutdown"
    assert pid_alive(new["pid"])
    # the others were restored, not replaced
    others = {tid: pid for tid, pid in tasks.items() if tid != victim["id"]}
    now = {t["id"]: t["pid"] for t in d.running_tasks("web") + d.running_tasks("ticker")}
    for tid, pid in others.items():
        assert now.get(tid) == pid
    d.wait_running("web", 3)


def test_restart_keeps_stopped_service_history_and_left_swarm(fresh_daemon):
    """A node that left the swarm stays out of it after a restart."""
    d = fresh_daemon
    d.cli("service", "create", "--name", "web", *GRACE, "busybox", "sleep", "1000")
    pid = d.wait_running("web", 1)[0]["pid"]
    d.cli("swarm", "leave", "--force")
    wait_until(lambda: not pid_alive(pid))
    d.restart()
    assert d.api("GET", "/v1/info").json()["swarm"]["state"] == "inactive"
    d.init_swarm()
    assert d.cli_json("service", "ls") == []


def test_run_detached_survives_restart(fresh_daemon):
    d = fresh_daemon
    cid = d.cli("run", "-d", "--name", "keeper", "busybox", "sleep", "1000").stdout.strip()
    def mine():
        return [c for c in d.api("GET", "/v1/containers").json() if c["id"] == cid]
    wait_until(lambda: mine() and mine()[0]["state"] == "running")
    d.restart()
    assert mine() and mine()[0]["state"] == "running"
    d.cli("rm", "-f", "keeper")
    wait_until(lambda: not mine())  # rm -f answers before the removal ends: see test_run.py


def test_restart_during_rolling_update(fresh_daemon):
    d = fresh_daemon
    d.cli("service", "create", "--name", "u", "--replicas", "3", "--update-delay", "500ms", *GRACE,
          "busybox", "sleep", "1000")
    old = d.wait_running("u", 3)
    d.cli("service", "update", "-d", "--env-add", "X=1", "u")
    wait_until(lambda: any(t["spec_version"] == 2 for t in d.tasks("u")))
    d.restart()
    d.wait_running("u", 3, version=2, timeout=40)
    for t in old:
        assert not pid_alive(t["pid"])
    assert d.service("u")["update_status"] == "completed"


def test_exit_while_down_restart_none_not_replaced(fresh_daemon):
    d = fresh_daemon
    d.cli("service", "create", "--name", "once", "--restart-condition", "none", "--restart-delay", "100ms",
          *GRACE, "busybox", "sleep", "1000")
    t = d.wait_running("once", 1)[0]
    d.stop()
    os.kill(t["pid"], signal.SIGKILL)
    wait_until(lambda: not pid_alive(t["pid"]))
    d.start()
    wait_until(lambda: d.tasks("once")[0]["state"] == "failed")
    ts = d.tasks("once")
    assert len(ts) == 1 and ts[0]["id"] == t["id"]
    assert "exited while the daemon was stopped" in ts[0]["error"]
    # negative check over several restart delays: still no replacement
    for _ in range(10):
        assert len(d.tasks("once")) == 1
        import time
        time.sleep(0.1)
