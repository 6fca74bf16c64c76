"""Node monitoring: GET /v1/nodes/stats (every node's latest sample, history
and tasks, kept by the leader), GET /metrics (Prometheus text format) and
`shoal node stats`, on one daemon and on a real two-node cluster."""
import json
import os
import re

import pytest

from cluster import Cluster
from conftest import QUICK_STOP, wait_until

SAMPLE_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_prometheus(text):
    """{name: [(labels, value)]}; fails on any line that is not HELP, TYPE or a sample,
    and on a sample whose family has no HELP and TYPE."""
    helps, types, samples = set(), set(), {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            assert line.split()[3] in ("gauge", "counter"), line
            types.add(line.split()[2])
        else:
            m = SAMPLE_LINE.match(line)
            assert m, "bad sample line: %r" % line
            name, _, labels_text, value = m.groups()
            labels = {}
            if labels_text:
                pos = 0
                while pos < len(labels_text):
                    lm = LABEL.match(labels_text, pos)
                    assert lm, "bad labels: %r" % line
                    labels[lm.group(1)] = lm.group(2)
                    pos = lm.end()
            assert name in helps and name in types, "no HELP/TYPE before %r" % line
            samples.setdefault(name, []).append((labels, float(value)))
    return samples


def check_sane(entry):
    latest = entry["latest"]
    assert latest is not None, entry
    cpus = latest["cpus"]
    assert cpus >= 1
    assert 0 <= latest["cpu_percent"] <= 100 * cpus, latest
    assert 0 < latest["mem_used"] <= latest["mem_total"], latest
    assert 0 < latest["disk_used"] <= latest["disk_total"], latest
    assert latest["load1"] >= 0 and latest["load5"] >= 0 and latest["load15"] >= 0
    assert latest["temp_c"] is None or -40 < latest["temp_c"] < 150
    assert latest["at"] > 0
    for p in entry["history"]:
        assert set(p) == {"at", "cpu_percent", "mem_used", "temp_c", "load1"}, p


def stats(d):
    r = d.api("GET", "/v1/nodes/stats")
    assert r.status == 200, r
    return r.json()


def test_single_node_stats_metrics_and_cli(fresh_daemon):
    d = fresh_daemon
    d.cli("service", "create", *QUICK_STOP, "--name", "mon", "busybox:latest", "sleep", "1000")
    [task] = d.wait_running("mon", 1)

    def task_sampled():
        [entry] = stats(d)
        ts = [t for t in entry["tasks"] if t["id"] == task["id"]]
        return (entry, ts[0]) if ts and ts[0]["mem_bytes"] > 0 else None

    entry, t = wait_until(task_sampled, timeout=15, msg=lambda: json.dumps(stats(d)))
    check_sane(entry)
    assert entry["status"] == "ready" and entry["hostname"]
    assert len(entry["history"]) >= 1
    assert t["service_name"] == "mon" and t["name"] == "mon.1" and t["cpu_percent"] >= 0

    r = d.api("GET", "/metrics")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    m = parse_prometheus(r.text)
    node = entry["node_id"]
    assert m["shoal_node_up"] == [({"node": node, "hostname": entry["hostname"]}, 1.0)]
    assert m["shoal_raft_leader"][0][1] == 1.0
    for name in ("shoal_node_cpu_percent", "shoal_node_memory_used_bytes",
                 "shoal_node_memory_total_bytes", "shoal_node_disk_used_bytes", "shoal_node_load1"):
        assert [l["node"] for l, _ in m[name]] == [node], name
    mem = [v for l, v in m["shoal_task_memory_bytes"] if l["task"] == task["id"]]
    assert mem and mem[0] > 0 and m["shoal_task_cpu_percent"]
    assert ({"service": "mon"}, 1.0) in m["shoal_service_replicas_running"]
    assert ({"service": "mon"}, 1.0) in m["shoal_service_replicas_desired"]

    out = d.cli("node", "stats").stdout.splitlines()
    assert out[0].split()[:3] == ["NODE", "HOSTNAME", "STATUS"] and "TEMP" in out[0]
    assert len(out) == 2 and entry["hostname"] in out[1] and "Ready" in out[1]
    assert json.loads(d.cli("node", "stats", "--format", "json").stdout)[0]["node_id"] == node
    d.cli("service", "rm", "mon")


def test_stats_outside_a_swarm(bare_daemon):
    d = bare_daemon
    entries = wait_until(lambda: stats(d) if stats(d)[0]["latest"] else None, timeout=10)
    assert len(entries) == 1
    check_sane(entries[0])
    m = parse_prometheus(d.api("GET", "/metrics").text)
    assert len(m["shoal_node_up"]) == 1


def test_cluster_stats_every_node(cluster1x1):
    c = cluster1x1
    leader, worker = c.nodes
    worker_id = c.node_id(worker)
    leader.cli("service", "create", *QUICK_STOP, "--name", "mon", "--constraint",
               "node.role==worker", "busybox:latest", "sleep", "1000")
    [task] = leader.wait_running("mon", 1)
    assert task["node_id"] == worker_id

    def all_sampled():
        es = stats(leader)
        w = [e for e in es if e["node_id"] == worker_id]
        ok = len(es) == 2 and all(e["latest"] for e in es) and w and \
            any(t["id"] == task["id"] and t["mem_bytes"] > 0 for t in w[0]["tasks"])
        return es if ok else None

    entries = wait_until(all_sampled, timeout=20, msg=lambda: json.dumps(stats(leader)))
    for e in entries:
        check_sane(e)
    assert {e["node_id"] for e in entries} == {c.node_id(leader), worker_id}

    m = parse_prometheus(leader.api("GET", "/metrics").text)
    assert {l["node"] for l, v in m["shoal_node_up"] if v == 1} == {e["node_id"] for e in entries}
    assert {l["node"] for l, _ in m["shoal_node_memory_used_bytes"]} == \
        {e["node_id"] for e in entries}
    assert [l["node"] for l, _ in m["shoal_task_memory_bytes"]] == [worker_id]

    # a worker has no cluster view; the leader's CLI shows both nodes
    assert worker.api("GET", "/v1/nodes/stats").status == 503
    out = leader.cli("node", "stats").stdout
    assert out.count("Ready") == 2

    # a node that goes down keeps its history and shows as down
    c.kill_node(worker)
    wait_until(lambda: [e for e in stats(leader) if e["node_id"] == worker_id][0]["status"]
               == "down", timeout=20)
    [w] = [e for e in stats(leader) if e["node_id"] == worker_id]
    assert w["history"] and w["latest"]
    m = parse_prometheus(leader.api("GET", "/metrics").text)
    assert ({"node": worker_id, "hostname": w["hostname"]}, 0.0) in m["shoal_node_up"]
    leader.cli("service", "rm", "mon")


def test_follower_manager_forwards_stats_to_the_leader(rootfs_tar):
    c = Cluster(managers=2, workers=0, rootfs_tar=rootfs_tar)
    try:
        follower = [d for d in c.nodes if d is not c.find_leader(c.nodes)][0]
        entries = wait_until(lambda: (lambda es: es if len(es) == 2 and all(e["latest"] for e in es)
                                      else None)(stats(follower)), timeout=20)
        for e in entries:
            check_sane(e)
        r = follower.api("GET", "/metrics")
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        m = parse_prometheus(r.text)
        assert len(m["shoal_node_up"]) == 2
        assert sorted(v for _, v in m["shoal_raft_leader"]) == [0.0, 1.0]
    finally:
        c.destroy()


# ---- stored history (through Raft): it survives a leader change ----

HISTORY_FIELDS = {"at", "step", "cpu_percent", "cpu_percent_max", "mem_used", "mem_used_max",
                  "load1", "load1_max", "temp_c", "temp_c_max", "disk_used"}


def node_metrics(d, node_id, query=""):
    r = d.api("GET", "/v1/nodes/%s/metrics%s" % (node_id, query))
    assert r.status == 200, r
    return r.json()


@pytest.fixture
def history_cluster():
    """Three managers writing a history row every 3 s (the test knob: the
    daemons of `shoal dev up` inherit its environment)."""
    os.environ["SHOAL_METRICS_HISTORY_EVERY_MS"] = "3000"
    try:
        c = Cluster(managers=3, workers=0)
    finally:
        del os.environ["SHOAL_METRICS_HISTORY_EVERY_MS"]
    try:
        yield c
    finally:
        c.destroy()


def test_metrics_history_survives_a_leader_change(history_cluster):
    c = history_cluster
    leader = c.find_leader(c.nodes)
    ids = {d.name: c.node_id(d) for d in c.nodes}
    wait_until(lambda: all(len(node_metrics(leader, i)["history"]) >= 3 for i in ids.values()),
               timeout=60, msg=lambda: json.dumps(node_metrics(leader, ids[leader.name])))
    before = {i: node_metrics(leader, i)["history"] for i in ids.values()}
    for points in before.values():
        for p in points:
            assert set(p) == HISTORY_FIELDS, p
            assert p["step"] == 3000 and 0 < p["mem_used"] <= p["mem_used_max"], p
            assert 0 <= p["cpu_percent"] <= p["cpu_percent_max"] and p["disk_used"] > 0, p
        ats = [p["at"] for p in points]
        assert ats == sorted(ats) and len(set(ats)) == len(ats), ats
    view = node_metrics(leader, leader.name)  # by hostname too
    assert view["node_id"] == ids[leader.name] and view["hostname"] == leader.name
    assert len(view["recent"]) >= 1 and set(view["recent"][0]) == {
        "at", "cpu_percent", "mem_used", "temp_c", "load1"}
    follower = [d for d in c.nodes if d is not leader][0]
    assert node_metrics(follower, ids[leader.name])["history"][:3] == before[ids[leader.name]][:3]

    c.kill_node(leader)
    survivors = [d for d in c.nodes if d is not leader]
    new = wait_until(lambda: c.find_leader(survivors), timeout=30)
    for node_id, points in before.items():  # the dead leader's own history too
        kept = node_metrics(new, node_id)["history"]
        assert kept[:len(points)] == points, (node_id, points, kept)
    # the new leader goes on writing rows
    last = max(p["at"] for p in before[ids[new.name]])
    wait_until(lambda: node_metrics(new, ids[new.name])["history"][-1]["at"] > last + 6000,
               timeout=60)

    # since and step: later points only; rows merged into buckets of an hour
    pts = node_metrics(new, ids[new.name])["history"]
    later = node_metrics(new, ids[new.name], "?since=%d" % (last + 1))["history"]
    assert later and all(p["at"] > last for p in later) and later == pts[-len(later):]
    hourly = node_metrics(new, ids[new.name], "?step=3600000")["history"]
    assert 1 <= len(hourly) <= 2 and all(p["step"] == 3600000 for p in hourly), hourly
    assert max(p["cpu_percent_max"] for p in hourly) == max(p["cpu_percent_max"] for p in pts)
    other = [d for d in survivors if d is not new][0]  # a follower forwards, query included
    forwarded = node_metrics(other, ids[new.name], "?step=3600000")["history"]
    assert 1 <= len(forwarded) <= 2 and all(p["step"] == 3600000 for p in forwarded), forwarded
    # errors: a malformed time, an unknown node
    assert new.api("GET", "/v1/nodes/%s/metrics?since=yesterday" % ids[new.name]).status == 400
    assert new.api("GET", "/v1/nodes/nosuchnode/metrics").status == 404
