"""Cleanup (#16): task history limit, prune commands, system df, automatic image GC, and
the cluster totals of `shoal info`."""
import json

from conftest import wait_until


def _slot_tasks(d, service, slot):
    return [t for t in d.tasks(service) if t.get("slot") == slot]


def test_task_history_limit_keeps_n_tasks_per_slot(daemon):
    d = daemon
    d.cli("swarm", "update", "--task-history-limit", "3")
    try:
        assert d.cli_json("info")["swarm"]["task_history_limit"] == 3
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
    d.cli("service", "create", "--name", "sleepy", "--replicas", "2", "busybox", "sleep", "1000")
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
