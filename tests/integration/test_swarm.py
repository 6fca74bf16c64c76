"""swarm init / leave and node ls."""
import socket

from conftest import pid_alive, wait_until


def test_init_node_ls_shows_leader(bare_daemon):
    d = bare_daemon
    info = d.api("GET", "/v1/info").json()
    assert info["swarm"]["state"] == "inactive"
    # nodes need a swarm
    r = d.cli("node", "ls", check=False)
    assert r.returncode != 0
    assert "not a swarm manager" in r.stderr

    d.init_swarm()
    out = d.cli("node", "ls").stdout
    lines = out.strip().splitlines()
    header = lines[0].split()
    for col in ("HOSTNAME", "STATUS", "AVAILABILITY"):
        assert col in header, out
    assert "MANAGER STATUS" in lines[0], out
    assert len(lines) == 2, out
    row = lines[1]
    assert socket.gethostname() in row, out
    assert "Ready" in row and "Active" in row and "Leader" in row, out

    nodes = d.cli_json("node", "ls")
    assert len(nodes) == 1
    n = nodes[0]
    assert n["hostname"] == socket.gethostname()
    assert n["status"] == "ready"
    assert n["availability"] == "active"
    assert n["manager_status"] == "leader"
    assert n["role"] == "manager"
    assert n["id"] == info["node_id"]

    info = d.api("GET", "/v1/info").json()
    assert info["swarm"]["state"] == "active"
    assert info["swarm"]["is_leader"] is True
    assert info["swarm"]["addr"] == "127.0.0.1:%d" % d.port
    # node inspect by hostname and id
    assert d.api("GET", "/v1/nodes/" + n["id"]).json()["id"] == n["id"]
    assert d.api("GET", "/v1/nodes/" + n["hostname"]).json()["id"] == n["id"]
    assert d.api("GET", "/v1/nodes/nope-no-such-node").status == 404


def test_init_twice_fails(bare_daemon):
    d = bare_daemon
    d.init_swarm()
    before = d.api("GET", "/v1/info").json()
    r = d.cli("swarm", "init", "--advertise-addr", "127.0.0.1:%d" % d.port, check=False)
    assert r.returncode != 0
    assert "already part of a swarm" in r.stderr
    r = d.api("POST", "/v1/swarm/init", {"advertise_addr": "127.0.0.1:%d" % d.port})
    assert r.status == 409, r
    assert "already part of a swarm" in r.json()["message"]
    after = d.api("GET", "/v1/info").json()
    assert after == before


def test_leave_force_tears_down(fresh_daemon):
    d = fresh_daemon
    d.cli("service", "create", "--name", "web", "--replicas", "2", "--stop-grace-period", "1s",
          "busybox", "sleep", "1000")
    tasks = d.wait_running("web", 2)
    pids = [t["pid"] for t in tasks]
    assert all(pid_alive(p) for p in pids)

    # a manager needs --force
    r = d.cli("swarm", "leave", check=False)
    assert r.returncode != 0
    assert "--force" in r.stderr
    assert d.api("GET", "/v1/info").json()["swarm"]["state"] == "active"

    d.cli("swarm", "leave", "--force", timeout=60)
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=20)
    info = d.cli("info").stdout
    assert "Swarm: inactive" in info, info
    assert d.api("GET", "/v1/info").json()["swarm"]["state"] == "inactive"
    r = d.cli("service", "ls", check=False)
    assert r.returncode != 0 and "not a swarm manager" in r.stderr
    # leaving again: not in a swarm
    r = d.cli("swarm", "leave", "--force", check=False)
    assert r.returncode != 0
    assert "not part of a swarm" in r.stderr

    # can init again, with a clean state
    d.init_swarm()
    assert d.cli_json("service", "ls") == []
    assert len(d.cli_json("node", "ls")) == 1


def test_leave_survives_restart_policy(fresh_daemon):
    """Leave with a service that restarts fast must not hang (tasks are replaced while stopping)."""
    d = fresh_daemon
    d.cli("service", "create", "--name", "flappy", "--replicas", "3", "--restart-delay", "0s",
          "--stop-grace-period", "1s", "busybox", "sh", "-c", "sleep 0.2")
    wait_until(lambda: len(d.tasks("flappy")) >= 4, timeout=20)
    d.cli("swarm", "leave", "--force", timeout=60)
    assert d.api("GET", "/v1/info").json()["swarm"]["state"] == "inactive"
