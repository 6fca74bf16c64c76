"""Volumes (issue 16): create / ls / inspect / rm / prune as Docker's, the
records services make for the volumes they mount, the node holding a
volume, its size and the tasks using it; backups (by hand, on schedule,
with a hook), restores by hand and on first start on another node."""
import json
import os
import shutil
import tarfile
import tempfile

import pytest

from conftest import Daemon, end_daemon, pid_alive, wait_until

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


# ---- backups (one daemon with a backup dir) ----


@pytest.fixture(scope="module")
def bd(rootfs_tar):
    """A one-node swarm whose daemon.json names a backup dir."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = Daemon(tmp)
    d.backup_dir = os.path.join(tmp, "backups")
    d.configure({"backup-dir": d.backup_dir})
    d.start()
    d.init_swarm()
    d.import_image(rootfs_tar)
    yield d
    end_daemon(d, tmp)


def backups(d, name):
    return json.loads(d.cli("volume", "backups", "--format", "json", name).stdout)


def archive_files(path):
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()}


def test_backup_by_hand_with_hook_then_restore(bd):
    d = bd
    d.cli("volume", "create", "--backup", "1h", "--keep", "3", "--hook", "echo dumped-$((6*7)) > /data/dump.sql", "pg")
    v = inspect(d, "pg")
    assert v["backup"] == {"schedule": "1h", "interval_s": 3600, "keep": 3,
                           "hook": "echo dumped-$((6*7)) > /data/dump.sql"}, v
    with open(os.path.join(d.backup_dir, "pg", "policy.json")) as f:
        assert json.load(f)["keep"] == 3
    d.cli("service", "create", "--name", "pgsvc", *GRACE, "--mount", "type=volume,src=pg,dst=/data",
          "busybox", "sh", "-c", "echo v1 > /data/state; exec sleep 1000")
    d.wait_running("pgsvc", 1)
    data = inspect(d, "pg")["mountpoint"]
    wait_until(lambda: os.path.exists(os.path.join(data, "state")))
    # the schedule's first backup comes at once (no backup yet), then one an hour
    wait_until(lambda: len(backups(d, "pg")) == 1, timeout=10)
    name = d.cli("volume", "backup", "pg").stdout.strip()
    bs = backups(d, "pg")
    assert bs[0]["name"] == name and name.startswith("pg-") and name.endswith(".tar.gz"), bs
    path = os.path.join(d.backup_dir, "pg", name)
    files = archive_files(path)
    assert files["./state"] == b"v1\n" and files["./dump.sql"] == b"dumped-42\n", files
    with open(path + ".sha256") as f:
        assert f.read().split() == [bs[0]["sha256"], name]
    table = d.cli("volume", "backups", "pg").stdout
    assert "BACKUP" in table and name in table
    # retention: 3 kept
    for _ in range(3):
        d.cli("volume", "backup", "pg")
    assert len(backups(d, "pg")) == 3
    # a restore by hand is refused while a task uses the volume
    r = d.cli("volume", "restore", "pg", check=False)
    assert r.returncode != 0 and "in use by task" in r.stderr, r
    d.cli("service", "scale", "pgsvc=0")
    wait_until(lambda: all(t["state"] != "running" for t in d.tasks("pgsvc")))
    with open(os.path.join(data, "state"), "w") as f:
        f.write("clobbered\n")
    with open(os.path.join(data, "junk"), "w") as f:
        f.write("junk\n")
    oldest = backups(d, "pg")[-1]["name"]
    out = d.cli("volume", "restore", "--from", oldest, "pg").stdout
    assert "restored from " + oldest in out, out
    with open(os.path.join(data, "state")) as f:
        assert f.read() == "v1\n"
    assert not os.path.exists(os.path.join(data, "junk"))
    r = d.cli("volume", "restore", "--from", "pg-nosuch.tar.gz", "pg", check=False)
    assert r.returncode != 0 and "has no backup pg-nosuch" in r.stderr, r
    # a corrupt archive is refused, the data untouched
    newest = backups(d, "pg")[0]
    with open(newest["path"], "r+b") as f:
        f.seek(30)
        f.write(b"\xff\x00\xff\x00")
    r = d.cli("volume", "restore", "pg", check=False)
    assert r.returncode != 0 and "is corrupt" in r.stderr, r
    with open(os.path.join(data, "state")) as f:
        assert f.read() == "v1\n"
    remove_service(d, "pgsvc")
    d.cli("volume", "rm", "pg")
    assert not os.path.exists(os.path.join(d.backup_dir, "pg", "policy.json"))
    assert len(backups_on_disk(d, "pg")) == 3  # the backups outlive the volume


def backups_on_disk(d, name):
    return [f for f in os.listdir(os.path.join(d.backup_dir, name)) if f.endswith(".tar.gz")]


def test_scheduled_backups_every_few_seconds(bd):
    d = bd
    d.cli("volume", "create", "--backup", "2s", "--keep", "2", "tick")
    d.cli("service", "create", "--name", "ticker", *GRACE, "--mount", "type=volume,src=tick,dst=/t",
          "busybox", "sh", "-c", "while true; do date >> /t/log; sleep 1; done")
    d.wait_running("ticker", 1)
    seen = set()

    def three_made():
        seen.update(b["name"] for b in backups(d, "tick"))
        assert len(backups_on_disk(d, "tick")) <= 2  # keep 2
        return len(seen) >= 3

    wait_until(three_made, timeout=20)
    # the daemon restarts, the container runs on (live restore): the schedule goes on
    d.restart()
    made = len(seen)
    wait_until(lambda: three_made() and len(seen) >= made + 2, timeout=20)
    remove_service(d, "ticker")
    d.cli("volume", "rm", "tick")


STACK_WITH_BACKUPS = """\
services:
  db:
    image: busybox:latest
    command: sh -c "echo rows > /data/table; exec sleep 1000"
    stop_grace_period: 1s
    volumes: [data:/data]
volumes:
  data:
    labels:
      shoal.backup: 2s
      shoal.backup.keep: "2"
      shoal.backup.hook: "echo dumped > /data/dump.sql"
      tier: db
"""


def test_stack_volume_labels_give_the_backup_policy(bd, tmp_path):
    d = bd
    (tmp_path / "compose.yml").write_text(STACK_WITH_BACKUPS)
    out = d.cli("stack", "deploy", "-c", str(tmp_path / "compose.yml"), "bk").stdout
    assert "Creating volume bk_data" in out, out
    v = inspect(d, "bk_data")
    assert v["backup"] == {"schedule": "2s", "interval_s": 2, "keep": 2,
                           "hook": "echo dumped > /data/dump.sql"}, v
    assert v["labels"]["tier"] == "db" and v["labels"]["com.docker.stack.namespace"] == "bk", v
    d.wait_running("bk_db", 1)

    def dumped():
        bs = backups(d, "bk_data")
        return bs and archive_files(bs[0]["path"]).get("./dump.sql") == b"dumped\n"

    wait_until(dumped, timeout=20)
    assert len(backups_on_disk(d, "bk_data")) <= 2
    # deploying again leaves the volume as it is
    out = d.cli("stack", "deploy", "-c", str(tmp_path / "compose.yml"), "bk").stdout
    assert "Creating volume" not in out, out
    d.cli("stack", "rm", "bk")
    wait_until(lambda: d.cli("volume", "rm", "bk_data", check=False).returncode == 0, timeout=20)


def test_backup_bad_input(bd, daemon):
    d = bd
    for args, why in [(("--backup", "5x"), "invalid backup schedule"),
                      (("--backup", "500ms"), "invalid backup schedule"),
                      (("--backup", "daily", "--keep", "0"), "keep must be a number of backups from 1"),
                      (("--hook", "true"), "need --backup"),
                      (("--keep", "3"), "need --backup")]:
        r = d.cli("volume", "create", *args, "badvol", check=False)
        assert r.returncode != 0 and why in r.stderr, (args, r)
    assert "badvol" not in names(d)
    # the backup dir not writable (a file where the volume's directory goes)
    with open(os.path.join(d.backup_dir, "blocked"), "w") as f:
        f.write("not a directory")
    r = d.cli("volume", "create", "--backup", "daily", "blocked", check=False)
    assert r.returncode != 0 and "is not writable" in r.stderr, r
    assert "blocked" not in names(d)
    # a daemon without a backup dir says how to set one
    r = daemon.cli("volume", "create", "--backup", "daily", "nodir", check=False)
    assert r.returncode != 0 and '"backup-dir"' in r.stderr, r
    d.cli("volume", "create", "plain")
    r = d.cli("volume", "backup", "nosuchvol", check=False)
    assert r.returncode != 0 and "no such volume" in r.stderr, r
    # a volume without a policy can be backed up by hand
    assert d.cli("volume", "backup", "plain").stdout.startswith("plain-")
    d.cli("volume", "rm", "plain")


# ---- restore on first start (a dev cluster: every node sees the host's backup dir) ----


@pytest.fixture
def bcluster(rootfs_tar):
    """One manager and two workers whose daemon.json name the same backup dir."""
    from cluster import Cluster

    c = Cluster(managers=1, workers=2, rootfs_tar=rootfs_tar)
    try:
        c.backup_dir = os.path.join(c.dir, "backups")
        os.makedirs(c.backup_dir)
        for n in c.nodes[1:] + c.nodes[:1]:  # the leader last: the workers find it again
            with open(n.config_path, "w") as f:
                json.dump({"backup-dir": c.backup_dir, "allowed-registries": ["127.0.0.0/8"]}, f)
            n.extra_args = ["--config", n.config_path]
            n.restart()
        c.wait_nodes_ready(3, timeout=40)
        yield c
    finally:
        c.destroy()


def task_of(d, service):
    ts = d.running_tasks(service)
    return ts[0] if len(ts) == 1 else None


def node_by_id(c, node_id):
    return [n for n in c.nodes if c.node_id(n) == node_id][0]


def test_drained_task_restores_its_volume_on_another_node(bcluster):
    c = bcluster
    lead = c.leader
    lead.cli("volume", "create", "--backup", "1h", "--keep", "5", "--hook", "echo dumped > /data/dump.sql", "moving")
    lead.cli("service", "create", "--name", "mover", *GRACE, "--constraint", "node.role==worker",
             "--mount", "type=volume,src=moving,dst=/data", "busybox", "sh", "-c",
             "echo started-on-$(hostname); cat /data/payload 2>/dev/null || echo no-payload; exec sleep 1000")
    t1 = wait_until(lambda: task_of(lead, "mover"), timeout=60)
    n1 = node_by_id(c, t1["node_id"])
    data1 = os.path.join(n1.state_dir, "volumes", "moving", "_data")
    wait_until(lambda: os.path.isdir(data1))
    with open(os.path.join(data1, "payload"), "w") as f:
        f.write("payload-4711\n")
    v = inspect(lead, "moving")
    assert v["node_id"] == t1["node_id"] and [t["id"] for t in v["tasks"]] == [t1["id"]], v
    name = lead.cli("volume", "backup", "moving").stdout.strip()  # relayed to the worker
    files = archive_files(os.path.join(c.backup_dir, "moving", name))
    assert files["./payload"] == b"payload-4711\n" and files["./dump.sql"] == b"dumped\n", files
    lead.cli("node", "update", "--availability", "drain", t1["node_id"])
    t2 = wait_until(lambda: (lambda t: t if t and t["id"] != t1["id"] else None)(task_of(lead, "mover")),
                    timeout=60, msg=lambda: lead.tasks("mover"))
    assert t2["node_id"] != t1["node_id"]
    wait_until(lambda: "payload-4711" in lead.logs("mover"), timeout=20, msg=lambda: lead.logs("mover"))
    n2 = node_by_id(c, t2["node_id"])
    data2 = os.path.join(n2.state_dir, "volumes", "moving", "_data")
    with open(os.path.join(data2, "dump.sql")) as f:
        assert f.read() == "dumped\n"  # the hook's dump came along
    assert not [f for f in os.listdir(os.path.dirname(data2)) if f.startswith("_data.")]
    assert inspect(lead, "moving")["node_id"] == t2["node_id"]

    # a corrupt newest backup: the task on a node lacking the data does not start, and says why
    lead.cli("node", "update", "--availability", "active", t1["node_id"])
    newest = backups(lead, "moving")[0]["path"]
    with open(newest, "r+b") as f:
        f.seek(40)
        f.write(b"\x00\xff\x00\xff")
    lead_data = os.path.join(lead.state_dir, "volumes", "moving")
    shutil.rmtree(lead_data)  # `volume create` made it empty on the leader: now it lacks it
    r = lead.cli("service", "create", "--name", "broken", *GRACE, "--constraint", "node.role==manager",
                 "--restart-condition", "none", "--mount", "type=volume,src=moving,dst=/data",
                 "busybox", "sleep", "1000", check=False)
    assert r.returncode != 0 and "volume moving not restored" in r.stderr, r

    def failed_why():
        ts = [t for t in lead.tasks("broken") if t["state"] in ("failed", "rejected")]
        return ts[0] if ts else None

    t3 = wait_until(failed_why, timeout=60, msg=lambda: lead.tasks("broken"))
    assert "volume moving not restored, the task is not started" in t3["error"], t3
    assert "is corrupt" in t3["error"], t3
    assert not os.path.exists(os.path.join(lead_data, "_data"))  # never half-restored
    assert not [f for f in os.listdir(lead_data) if f.startswith("_data.")]
    assert "is corrupt" in lead.cli("service", "ps", "--no-trunc", "broken").stdout
    for s in ("broken", "mover"):
        lead.cli("service", "rm", s)
