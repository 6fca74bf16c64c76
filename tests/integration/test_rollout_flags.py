"""Rolling-update and rollback settings of issue #15 end to end: --update-order,
--update-monitor, --update-max-failure-ratio, --rollback-*, on real tasks."""
import json

from conftest import wait_until

GRACE = ("--stop-grace-period", "1s")


def running_ids(d, name):
    return {t["id"] for t in d.tasks(name) if t["state"] == "running"}


def test_update_order_start_first_keeps_a_task_running(daemon):
    d = daemon
    d.cli("service", "create", "--name", "sf", *GRACE, "--update-order", "start-first",
          "--update-monitor", "2s", "busybox", "sleep", "1000")
    old = d.wait_running("sf", 1)[0]
    uc = d.service("sf")["spec"]["update_config"]
    assert uc["order"] == "start-first" and uc["monitor_ms"] == 2000, uc
    d.cli("service", "update", "-d", "--args", "sleep 999", "sf")
    # the new task runs while the old one still does: the service never has none
    both = wait_until(lambda: len(running_ids(d, "sf")) == 2, timeout=30,
                      msg=lambda: json.dumps(d.tasks("sf"), indent=1))
    assert both
    new = d.wait_running("sf", 1, version=2)[0]
    assert new["id"] != old["id"]
    wait_until(lambda: running_ids(d, "sf") == {new["id"]}, timeout=30)
    # back to stop-first: never two at once
    d.cli("service", "update", "-d", "--update-order", "stop-first", "--args", "sleep 998", "sf")
    seen = set()

    def converged():
        seen.add(len(running_ids(d, "sf")))
        return [t for t in d.running_tasks("sf") if t["spec_version"] == 3]
    wait_until(converged, timeout=30)
    assert 2 not in seen, seen
    d.cli("service", "rm", "sf")


def test_update_flags_bad_values(daemon):
    d = daemon
    for flag, value in (("--update-order", "sideways"), ("--update-monitor", "5"),
                        ("--update-max-failure-ratio", "2")):
        r = d.cli("service", "create", "--name", "bad", flag, value, "busybox", "true", check=False)
        assert r.returncode != 0 and flag in r.stderr, r.stderr
    r = d.api("POST", "/v1/services", {"name": "bad", "image": "busybox",
                                       "update_config": {"order": "whenever"}})
    assert r.status == 400 and "order" in r.text, r
    r = d.api("POST", "/v1/services", {"name": "bad", "image": "busybox",
                                       "update_config": {"max_failure_ratio": 1.5}})
    assert r.status == 400 and "max_failure_ratio" in r.text, r
    assert d.api("GET", "/v1/services/bad").status == 404


def test_rollback_flags_set_the_rollback_config(daemon):
    d = daemon
    d.cli("service", "create", "--name", "rbc", *GRACE, "--replicas", "2",
          "--rollback-parallelism", "0", "--rollback-delay", "1s", "--rollback-monitor", "1s",
          "--rollback-failure-action", "continue", "--rollback-max-failure-ratio", "0.5",
          "--rollback-order", "start-first", "busybox", "sleep", "1000")
    d.wait_running("rbc", 2)
    rc = d.service("rbc")["spec"]["rollback_config"]
    assert rc == {"parallelism": 0, "delay_ms": 1000, "monitor_ms": 1000,
                  "failure_action": "continue", "max_failure_ratio": 0.5,
                  "order": "start-first"}, rc
    r = d.cli("service", "update", "--rollback-failure-action", "rollback", "rbc", check=False)
    assert r.returncode != 0 and "--rollback-failure-action" in r.stderr, r.stderr
    d.cli("service", "update", "--rollback-parallelism", "1", "--args", "sleep 999", "rbc")
    d.wait_running("rbc", 2, version=2)
    assert d.service("rbc")["spec"]["rollback_config"]["parallelism"] == 1
    # `service rollback` rolls back with the rollback_config of the spec it returns to
    # (parallelism 0, start-first: both new tasks start beside the old ones)
    d.cli("service", "rollback", "-d", "rbc")
    wait_until(lambda: len(running_ids(d, "rbc")) == 4, timeout=30,
               msg=lambda: json.dumps(d.tasks("rbc"), indent=1))
    wait_until(lambda: d.service("rbc").get("update_state") == "rollback_completed", timeout=30,
               msg=lambda: json.dumps(d.service("rbc"), indent=1))
    assert d.service("rbc")["spec"]["args"] == ["sleep", "1000"]
    d.wait_running("rbc", 2, version=3)
    d.cli("service", "rm", "rbc")
