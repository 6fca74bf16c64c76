"""--mode global-job and --max-concurrent (issue #15) on a 2-node dev cluster:
one task per node, run to completion once, at most N at a time."""
import json
import time

from conftest import wait_until


def test_global_job_completes_once_per_node_max_concurrent_one(cluster1x1):
    c = cluster1x1
    lead = c.leader
    lead.cli("service", "create", "-d", "--name", "gj", "--mode", "global-job",
             "--max-concurrent", "1", "busybox", "sleep", "1")
    live_at_once = set()

    def run_over():
        ts = lead.tasks("gj")
        live_at_once.add(len([t for t in ts if t["state"] in ("assigned", "preparing",
                                                                "starting", "running")]))
        runs = lead.service("gj").get("runs") or []
        return runs and runs[-1].get("state")
    state = wait_until(run_over, timeout=60, interval=0.05,
                       msg=lambda: json.dumps(lead.tasks("gj"), indent=1))
    assert state == "complete", lead.service("gj")
    assert max(live_at_once) == 1, live_at_once
    ts = lead.tasks("gj")
    assert sorted(t["state"] for t in ts) == ["complete", "complete"], ts
    assert len({t["node_id"] for t in ts}) == 2, ts
    assert lead.service("gj")["spec"]["max_concurrent"] == 1
    time.sleep(2)  # done for good: no task runs again
    assert len(lead.tasks("gj")) == 2
    line = [l for l in lead.cli("service", "ls").stdout.splitlines() if " gj " in l + " "]
    assert line and "global-job" in line[0] and "(2/2 completed)" in line[0], line
    lead.cli("service", "rm", "gj")
