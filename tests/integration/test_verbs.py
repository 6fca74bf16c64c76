"""What a Docker Swarm user types (issue 15): cluster-wide service logs.
Real dev clusters in network namespaces, real containers."""
import http.client
import json
import os
import re
import select
import ssl
import subprocess
import time

from conftest import SHOAL_BIN, wait_until

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"
TICKER = ["sh", "-c", 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.3; done']


def _prefix_node(line):
    """'talk.1.abcdef012345@node-2    | ...' -> 'node-2'."""
    m = re.match(r"^talk\.\d+\.[0-9a-f]{12}@(\S+)    \| ", line)
    return m.group(1) if m else None


def _ticker_on_three_nodes(c):
    lead = c.leader
    lead.cli("service", "create", "--name", "talk", "--replicas", "3", "--stop-grace-period", "1s",
             "busybox", *TICKER)
    ts = lead.wait_running("talk", 3, timeout=60)
    assert len({t["node_id"] for t in ts}) == 3, ts
    # every task said something already
    wait_until(lambda: len({_prefix_node(l) for l in lead.logs("talk").splitlines()}) == 3,
               timeout=30, msg=lambda: lead.logs("talk"))
    return lead


def test_service_logs_from_every_node_merged_by_time(cluster1x2):
    c = cluster1x2
    lead = _ticker_on_three_nodes(c)
    out = lead.logs("talk", "-t").splitlines()
    nodes = {_prefix_node(l) for l in out}
    assert nodes == {"node-1", "node-2", "node-3"}, out
    stamps = []
    for line in out:
        m = re.match(r"^talk\.\d+\.[0-9a-f]{12}@node-\d    \| (%s) tick \d+$" % TS, line)
        assert m, line
        stamps.append(m.group(1))
    assert stamps == sorted(stamps)  # interleaved by time, not node after node
    # --tail is per task; --raw and --no-task-ids as docker's
    wait_until(lambda: len(lead.logs("talk", "--tail", "2").splitlines()) == 6, timeout=10)
    raw = lead.logs("talk", "--raw", "--tail", "1").splitlines()
    assert len(raw) == 3 and all(re.match(r"^tick \d+$", l) for l in raw), raw
    short = lead.logs("talk", "--no-task-ids", "--tail", "1").splitlines()
    assert all(re.match(r"^talk\.\d+@node-\d    \| tick \d+$", l) for l in short), short
    # --since: a time in the future gives nothing, a duration the recent lines
    assert lead.logs("talk", "--since", "2999-01-01T00:00:00Z") == ""
    assert len(lead.logs("talk", "--since", "1h").splitlines()) >= 3
    res = lead.cli("service", "logs", "--since", "yesterday", "talk", check=False)
    assert res.returncode != 0 and "since" in res.stderr
    # one task: `shoal logs TASK`
    task = [t for t in lead.running_tasks("talk") if t["node_id"] == c.node_id(c.nodes[2])][0]
    # (the task may have said fewer than 3 lines yet on a busy machine)
    one_task = lambda: lead.cli("logs", "--tail", "3", task["id"][:12]).stdout.splitlines()
    wait_until(lambda: len(one_task()) == 3, timeout=10, msg=one_task)
    one = one_task()
    assert len(one) == 3 and all(_prefix_node(l) == "node-3" for l in one), one
    # a task whose container is on the asked node: still its task's logs, not the container's
    here = [t for t in lead.running_tasks("talk") if t["node_id"] == c.node_id(c.nodes[0])][0]
    mine = lead.cli("logs", "--tail", "1", here["id"]).stdout.splitlines()
    assert len(mine) == 1 and _prefix_node(mine[0]) == "node-1", mine


def test_service_logs_follow_sees_a_workers_new_lines(cluster1x2):
    c = cluster1x2
    lead = _ticker_on_three_nodes(c)
    p = subprocess.Popen([SHOAL_BIN, "-H", "unix://" + lead.sock, "service", "logs", "-f",
                          "--tail", "0", "talk"], stdout=subprocess.PIPE, text=True)
    try:
        seen = set()
        deadline = time.time() + 30
        while len(seen) < 3 and time.time() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 1)
            if r:
                line = p.stdout.readline()
                assert line, "the stream ended"
                seen.add(_prefix_node(line))
        assert seen == {"node-1", "node-2", "node-3"}, seen
    finally:
        p.kill()
        p.wait()


def test_service_logs_over_tcp_with_the_admin_certificate(cluster1x2, tmp_path):
    c = cluster1x2
    lead = _ticker_on_three_nodes(c)
    certs = str(tmp_path / "certs")
    lead.cli("swarm", "admin-cert", "-o", certs)
    host = "tcp://%s:2377" % lead.addr
    res = c.nodes[1].exec(SHOAL_BIN, "-H", host, "--tls-dir", certs, "service", "logs", "--tail",
                          "1", "talk")
    assert {_prefix_node(l) for l in res.stdout.splitlines()} == {"node-1", "node-2", "node-3"}
    # the node-level route is for node certificates only
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    ctx.check_hostname = False
    ctx.load_cert_chain(os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem"))
    conn = http.client.HTTPSConnection(c.nodes[2].addr, 2377, context=ctx, timeout=10)
    conn.request("POST", "/v1/node/logs", body=json.dumps({"service": "00", "tasks": []}))
    assert conn.getresponse().status == 403
    conn.close()


def test_node_ps_and_listing_filters_quiet_and_templates(cluster1x2):
    c = cluster1x2
    lead = c.leader
    lead.cli("service", "create", "--name", "web", "--replicas", "3", "--stop-grace-period", "1s",
             "busybox", "sleep", "1000")
    lead.cli("service", "create", "--name", "db", "--stop-grace-period", "1s", "busybox", "sleep",
             "1000")
    ts = lead.wait_running("web", 3, timeout=60)
    lead.wait_running("db", 1, timeout=60)
    # node ps: the current node by default, or the nodes named
    worker_tasks = [t for t in ts if t["node_id"] == c.node_id(c.nodes[2])]
    on_worker = [t for t in lead.api("GET", "/v1/tasks").json()
                 if t["node_id"] == c.node_id(c.nodes[2])]
    out = lead.cli("node", "ps", "node-3").stdout.splitlines()
    assert out[0].split()[:3] == ["ID", "NAME", "IMAGE"]
    assert len(out) == 1 + len(on_worker) and all("node-3" in l for l in out[1:]), out
    mine = lead.cli("node", "ps", "-q").stdout.split()
    all_lead = [t for t in lead.api("GET", "/v1/tasks").json()
                if t["node_id"] == c.node_id(lead)]
    assert sorted(mine) == sorted(t["id"][:12] for t in all_lead)
    full = lead.cli("node", "ps", "--no-trunc", "-q", "node-1", "node-2", "node-3").stdout.split()
    assert len(full) == 4 and all(len(i) == 25 for i in full), full
    # service ps --filter
    res = lead.cli("service", "ps", "--filter", "node=node-3", "-q", "web").stdout.split()
    assert res == [t["id"][:12] for t in worker_tasks]
    assert lead.cli("service", "ps", "--filter", "desired-state=shutdown", "-q", "web").stdout == ""
    res = lead.cli("service", "ps", "--no-trunc", "--format", "{{.ID}}", "db").stdout.split()
    assert res == [lead.tasks("db")[0]["id"]]
    # -q, --filter and templates on listings
    assert sorted(lead.cli("service", "ls", "-q").stdout.split()) == sorted(
        s["id"][:12] for s in lead.api("GET", "/v1/services").json())
    out = lead.cli("service", "ls", "--filter", "name=we", "--format", "{{.Name}} {{.Replicas}}")
    assert out.stdout == "web 3/3\n"
    line = lead.cli("service", "ls", "--filter", "name=db", "--format", "{{json .}}").stdout
    assert json.loads(line)["Name"] == "db" and json.loads(line)["Replicas"] == "1/1"
    out = lead.cli("service", "ls", "--format", "table {{.Name}}\\t{{.Mode}}").stdout.splitlines()
    assert out[0].split() == ["NAME", "MODE"] and sorted(out[1:]) == [
        "db     replicated", "web    replicated"], out
    out = lead.cli("node", "ls", "--filter", "role=x", check=False)
    assert out.returncode != 0 and "invalid filter 'role'" in out.stderr
    hosts = lead.cli("node", "ls", "--format", "{{.Hostname}}").stdout.split()
    assert sorted(h.rstrip("*") for h in hosts) == ["node-1", "node-2", "node-3"], hosts
    assert lead.cli("network", "ls", "--filter", "name=bridge", "--format", "{{.Name}}").stdout
    assert lead.cli("image", "ls", "-q").stdout.strip()
    # shoal ps shows the node's task containers too (docker's NAME.SLOT.TASKID)
    names = lead.cli("ps", "--format", "{{.Names}}").stdout.split()
    assert sorted(names) == sorted("%s.%s" % (t["name"], t["id"]) for t in all_lead), names
    assert lead.cli("ps", "-q", "--filter", "name=db.1.").stdout.split() == [
        t["id"][:12] for t in all_lead if t["name"] == "db.1"]
    res = lead.cli("service", "ls", "--format", "{{.Nope}}", check=False)
    assert res.returncode != 0 and 'no field "Nope"' in res.stderr


def test_service_rollback_to_the_previous_spec(daemon):
    d = daemon
    d.cli("service", "create", "--name", "rb", "--stop-grace-period", "1s", "busybox", "sleep",
          "1000")
    d.wait_running("rb", 1)
    res = d.cli("service", "rollback", "rb", check=False)
    assert res.returncode != 0 and "no previous spec" in res.stderr
    d.cli("service", "update", "--args", "sleep 999", "rb")
    d.wait_running("rb", 1, version=2)
    assert d.service("rb")["previous_spec"]["args"] == ["sleep", "1000"]
    out = d.cli("service", "rollback", "rb").stdout
    assert "rollback: manually requested rollback" in out
    t = d.wait_running("rb", 1, version=3)[0]
    assert d.service("rb")["spec"]["args"] == ["sleep", "1000"]
    with open("/proc/%d/cmdline" % t["pid"]) as f:
        assert f.read().split("\0")[:2] == ["sleep", "1000"]
    # update --rollback goes back again (the rolled-back spec is the previous one now)
    d.cli("service", "update", "--rollback", "rb")
    d.wait_running("rb", 1, version=4)
    assert d.service("rb")["spec"]["args"] == ["sleep", "999"]
    res = d.cli("service", "update", "--rollback", "--args", "x", "rb", check=False)
    assert res.returncode == 2 and "--rollback takes no other change" in res.stderr
    d.cli("service", "rm", "rb")


def test_update_failure_action_rollback_and_pause(daemon):
    d = daemon
    d.cli("service", "create", "--name", "ar", "--replicas", "2", "--stop-grace-period", "1s",
          "--restart-delay", "200ms", "busybox", "sleep", "1000")
    d.wait_running("ar", 2)
    res = d.cli("service", "update", "--update-failure-action", "sometimes", "ar", check=False)
    assert res.returncode == 2 and "--update-failure-action" in res.stderr
    # the new tasks exit 1: the update rolls back by itself
    d.cli("service", "update", "-d", "--update-failure-action", "rollback", "--args", "false", "ar")
    wait_until(lambda: d.service("ar").get("update_state") == "rollback_completed", timeout=60,
               msg=lambda: json.dumps(d.service("ar"), indent=1))
    svc = d.service("ar")
    assert svc["spec"]["args"] == ["sleep", "1000"] and svc["previous_spec"]["args"] == ["false"]
    d.wait_running("ar", 2, version=svc["version"])
    # pause: the update stops after the first failed task, the other old task keeps running
    d.cli("service", "update", "-d", "--update-failure-action", "pause", "--args", "false", "ar")
    wait_until(lambda: d.service("ar").get("update_state") == "paused", timeout=60)
    v = d.service("ar")["version"]
    old_running = [t for t in d.running_tasks("ar") if t["spec_version"] < v]
    assert len(old_running) == 1, d.tasks("ar")
    d.cli("service", "rm", "ar")


def test_update_force_constraints_and_limits(daemon):
    d = daemon
    d.cli("service", "create", "--name", "up", "--stop-grace-period", "1s", "busybox", "sleep",
          "1000")
    first = d.wait_running("up", 1)[0]
    # --force replaces the task though nothing else changed
    d.cli("service", "update", "--force", "up")
    t = d.wait_running("up", 1, version=2)[0]
    assert t["id"] != first["id"] and d.service("up")["spec"]["force_update"] == 1
    d.cli("service", "update", "--limit-memory", "64M", "--limit-cpu", "0.5", "up")
    spec = d.service("up")["spec"]
    assert spec["limits"]["memory"] == 64 * 1024 * 1024 and spec["limits"]["cpus"] == 0.5
    d.cli("service", "update", "--limit-memory", "32M", "up")
    spec = d.service("up")["spec"]
    assert spec["limits"]["memory"] == 32 * 1024 * 1024 and spec["limits"]["cpus"] == 0.5
    d.cli("service", "update", "--constraint-add", "node.role==manager", "--constraint-add",
          "node.role!=worker", "up")
    assert d.service("up")["spec"]["constraints"] == ["node.role==manager", "node.role!=worker"]
    d.cli("service", "update", "--constraint-rm", "node.role!=worker", "up")
    assert d.service("up")["spec"]["constraints"] == ["node.role==manager"]
    d.wait_running("up", 1, version=d.service("up")["version"])
    res = d.cli("service", "update", "--constraint-add", "bogus", "up", check=False)
    assert res.returncode == 2 and "bogus" in res.stderr
    d.cli("service", "rm", "up")


def test_join_with_labels_for_constraints(cluster1x2):
    c = cluster1x2
    lead, w = c.leader, c.nodes[2]
    w.cli("swarm", "leave")
    wait_until(lambda: w.api("GET", "/v1/info").json()["swarm"]["state"] == "inactive")
    target = "%s:2377" % lead.addr
    res = w.cli("swarm", "join", "--label", "bad key=x", "--token", c.token("worker"),
                "--advertise-addr", w.addr, target, check=False)
    assert res.returncode != 0 and 'invalid --label "bad key=x"' in res.stderr, res.stderr
    w.cli("swarm", "join", "--label", "rack=top", "--label", "zone=b", "--token",
          c.token("worker"), "--advertise-addr", w.addr, target)
    c.wait_nodes_ready(3)
    node = json.loads(lead.cli("node", "inspect", c.node_id(w)).stdout)
    node = node[0] if isinstance(node, list) else node
    assert node["labels"] == {"rack": "top", "zone": "b"}, node
    lead.cli("service", "create", "--name", "ontop", "--constraint", "node.labels.rack==top",
             "--replicas", "2", "--stop-grace-period", "1s", "busybox", "sleep", "1000")
    ts = lead.wait_running("ontop", 2)
    assert {t["node_id"] for t in ts} == {c.node_id(w)}, ts
    lead.cli("service", "rm", "ontop")


def test_update_network_caps_restart_flags(daemon):
    d = daemon
    d.cli("network", "create", "upnet1")
    d.cli("network", "create", "upnet2")
    d.cli("service", "create", "--name", "upf", "--stop-grace-period", "1s", "--cap-drop",
          "NET_RAW", "busybox", "sleep", "1000")
    d.wait_running("upf", 1)
    d.cli("service", "update", "--network-add", "upnet1", "--cap-add", "NET_RAW", "--cap-drop",
          "CHOWN", "--restart-condition", "on-failure", "--restart-delay", "2s",
          "--stop-grace-period", "2s", "upf")
    spec = d.service("upf")["spec"]
    assert spec["network"] == "upnet1", spec
    assert spec["cap_add"] == ["CAP_NET_RAW"] and spec["cap_drop"] == ["CAP_CHOWN"], spec
    assert (spec["restart_condition"], spec["restart_delay_ms"],
            spec["stop_grace_period_ms"]) == ("on-failure", 2000, 2000), spec
    d.wait_running("upf", 1, version=d.service("upf")["version"])
    res = d.cli("service", "update", "--network-add", "upnet2", "upf", check=False)
    assert res.returncode != 0 and "--network-rm upnet1" in res.stderr, res.stderr
    res = d.cli("service", "update", "--network-rm", "upnet2", "upf", check=False)
    assert res.returncode != 0 and "not on network upnet2" in res.stderr, res.stderr
    d.cli("service", "update", "--network-rm", "upnet1", "--network-add", "upnet2", "upf")
    assert d.service("upf")["spec"]["network"] == "upnet2"
    t = d.wait_running("upf", 1, version=d.service("upf")["version"])[0]
    d.cli("service", "update", "--network-rm", "upnet2", "upf")
    assert d.service("upf")["spec"].get("network", "bridge") == "bridge"  # the default
    d.wait_running("upf", 1, version=d.service("upf")["version"])
    d.cli("service", "rm", "upf")
    d.cli("network", "rm", "upnet1", "upnet2")


def test_engine_labels_from_daemon_json(bare_daemon, rootfs_tar):
    d = bare_daemon
    d.configure({"labels": ["board=pi4", "disk=ssd"]})
    d.restart()
    d.init_swarm()
    d.import_image(rootfs_tar)
    node = d.cli_json("node", "ls")[0]["id"]
    assert json.loads(d.cli("node", "inspect", node).stdout)[0]["engine_labels"] == {
        "board": "pi4", "disk": "ssd"}
    d.cli("service", "create", "--name", "onpi4", "--constraint", "engine.labels.board==pi4",
          "--stop-grace-period", "1s", "busybox", "sleep", "1000")
    d.wait_running("onpi4", 1)
    d.cli("service", "create", "-d", "--name", "onpi5", "--constraint",
          "engine.labels.board==pi5", "busybox", "sleep", "1000")
    why = "no suitable node (scheduling constraints not satisfied on 1 node)"
    wait_until(lambda: d.tasks("onpi5") and d.tasks("onpi5")[0]["error"] == why)
    d.cli("service", "rm", "onpi4", "onpi5")
