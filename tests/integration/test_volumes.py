"""Volumes (issue 16): create / ls / inspect / rm / prune as Docker's, the
records services make for the volumes they mount, the node holding a
volume, its size and the tasks using it."""
import json
import os

from conftest import pid_alive, wait_until

GRACE = ("--stop-grace-period", "1s")


def inspect(d, name):
    return json.loads(d.cli("volume", "inspect", name).stdout)[0]


def names(d, *args):
    return d.cli("volume", "ls", "-q", *args).stdout.split()


def remove_service(d, name):
    pids = [t["pid"] for t in d.tasks(name) if t.get("pid")]
    d.cli("service", "rm", name)
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=20)


def test_create_ls_inspect_rm(daemon):
    d = daemon
    assert d.cli("volume", "create", "--label", "tier=db", "--label", "owner=ops", "vdata").stdout.strip() == "vdata"
    v = inspect(d, "vdata")
    assert v["name"] == "vdata" and v["labels"] == {"tier": "db", "owner": "ops"}
    assert v["node_id"] and v["node"], v  # created on this (the leader's) node
    assert v["mountpoint"] == os.path.join(d.state_dir, "volumes", "vdata", "_data")
    assert os.path.isdir(v["mountpoint"])
    with open(os.path.join(v["mountpoint"], "blob"), "wb") as f:
        f.write(b"x" * 100000)
    assert inspect(d, "vdata")["size"] >= 100000
    assert v["services"] == [] and v["tasks"] == [] and v["dangling"] is True
    table = d.cli("volume", "ls").stdout
    assert "NAME" in table and "vdata" in table and "SIZE" in table
    assert "vdata" in names(d)
    # a duplicate name, a bad name, a bad label, an unknown volume: clear errors
    r = d.cli("volume", "create", "vdata", check=False)
    assert r.returncode != 0 and "already exists" in r.stderr, r
    r = d.cli("volume", "create", "bad/name", check=False)
    assert r.returncode != 0 and "invalid volume name" in r.stderr, r
    r = d.cli("volume", "create", "--label", "=v", "x1", check=False)
    assert r.returncode != 0 and "key is empty" in r.stderr, r
    r = d.cli("volume", "inspect", "nosuchvol", check=False)
    assert r.returncode != 0 and "no such volume" in r.stderr.lower(), r
    r = d.cli("volume", "ls", "--filter", "colour=red", check=False)
    assert r.returncode != 0 and "invalid filter" in r.stderr, r
    assert d.cli("volume", "rm", "vdata").returncode == 0
    assert "vdata" not in names(d)
    assert not os.path.exists(os.path.join(d.state_dir, "volumes", "vdata"))
    r = d.cli("volume", "rm", "vdata", check=False)
    assert r.returncode != 0


def test_service_creates_its_volume_and_rm_is_refused(daemon):
    d = daemon
    d.cli("service", "create", "--name", "vsvc", *GRACE, "--mount", "type=volume,src=svcdata,dst=/data",
          "busybox", "sh", "-c", "echo hello > /data/f; exec sleep 1000")
    t = d.wait_running("vsvc", 1)[0]
    v = inspect(d, "svcdata")
    assert v["services"] == ["vsvc"] and v["dangling"] is False
    assert [x["id"] for x in v["tasks"]] == [t["id"]]
    assert v["node_id"] == t["node_id"]
    wait_until(lambda: inspect(d, "svcdata")["size"] > 0)
    assert "svcdata" in names(d, "--filter", "dangling=false")
    assert "svcdata" not in names(d, "--filter", "dangling=true")
    r = d.cli("volume", "rm", "svcdata", check=False)
    assert r.returncode != 0 and "in use by service vsvc" in r.stderr, r
    # prune keeps what a service mounts
    d.cli("volume", "prune", "-f")
    assert "svcdata" in names(d)
    remove_service(d, "vsvc")
    assert inspect(d, "svcdata")["tasks"] == []
    assert "svcdata" in names(d, "--filter", "dangling=true")
    d.cli("volume", "rm", "svcdata")


def test_prune_and_system_prune_volumes(daemon):
    d = daemon
    d.cli("volume", "create", "old1")
    d.cli("volume", "create", "old2")
    d.cli("volume", "create", "kept")
    d.cli("service", "create", "--name", "keeper", *GRACE, "--mount", "type=volume,src=kept,dst=/k",
          "busybox", "sleep", "1000")
    d.wait_running("keeper", 1)
    r = d.cli("volume", "prune", check=False, input="")
    assert r.returncode != 0 and "--force" in r.stderr, r  # no terminal to confirm on
    out = d.cli("volume", "prune", "-f").stdout
    assert "Deleted Volumes:" in out and "old1" in out and "old2" in out, out
    assert names(d) == ["kept"]
    d.cli("volume", "create", "old3")
    d.cli("system", "prune", "-f")  # without --volumes: volumes stay
    assert "old3" in names(d)
    out = d.cli("system", "prune", "-f", "--volumes").stdout
    assert "old3" in out and names(d) == ["kept"], out
    remove_service(d, "keeper")
    d.cli("volume", "rm", "kept")
