"""`shoal dev`: N-node clusters on this machine, one network namespace and
daemon per node on one bridge. Each test uses its own cluster name and
subnet and always runs `dev down` at the end; network traffic stays inside
the namespaces the tests make."""
import glob
import json
import os
import signal
import subprocess

import pytest

from cluster import _free_prefix
from conftest import SHOAL_BIN, wait_until
import ptyutil

DEV_DIR = "/var/lib/shoal-dev"


def shoal(*args, check=True, timeout=60):
    r = subprocess.run([SHOAL_BIN, *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("shoal %s -> %d\nstdout: %s\nstderr: %s"
                             % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def netns_list():
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def link_exists(name):
    return os.path.exists("/sys/class/net/" + name)


def pid_running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path + "/")]


class DevCluster:
    """One `shoal dev` cluster, named after the test and its pid, on its own
    /24 so that tests never share addresses."""

    count = 0

    def __init__(self, tag):
        DevCluster.count += 1
        self.name = "%s%05d%02d" % (tag, os.getpid() % 100000, DevCluster.count % 100)
        self.subnet = _free_prefix(100 + DevCluster.count) + ".0/24"
        self.prefix = self.subnet.rsplit(".", 1)[0]
        self.dir = os.path.join(DEV_DIR, self.name)

    def up(self, n, *extra, check=True):
        return shoal("dev", "up", "-n", str(n), "--name", self.name, "--subnet", self.subnet,
                     *extra, check=check)

    def down(self, check=True):
        return shoal("dev", "down", "--name", self.name, check=check)

    def ls_json(self):
        return json.loads(shoal("dev", "ls", "--name", self.name, "--format", "json").stdout)

    def exec(self, node, *cmd, check=True):
        return shoal("dev", "exec", node, "--name", self.name, "--", *cmd, check=check)

    def addr(self, i):
        return "%s.%d" % (self.prefix, i)

    def netns(self, i):
        return "shoal-%s-%d" % (self.name, i)

    def state(self):
        with open(os.path.join(self.dir, "cluster.json")) as f:
            return json.load(f)

    def assert_gone(self, pids):
        assert not [ns for ns in netns_list() if ns.startswith("shoal-%s-" % self.name)]
        assert not link_exists("shoal-" + self.name)
        assert not glob.glob("/sys/class/net/sh-%s-*" % self.name)
        assert not [p for p in pids if pid_running(p)]
        assert not mounts_under(self.dir)
        assert not os.path.exists(self.dir)


@pytest.fixture
def dev(request):
    c = DevCluster("t")
    yield c
    c.down(check=False)


def tcp_reaches(netns, addr, port):
    """Connects from inside a namespace (the only place our traffic goes)."""
    code = ("import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), 2);"
            "s.close()")
    r = subprocess.run(["ip", "netns", "exec", netns, "python3", "-c", code, addr, str(port)],
                       capture_output=True, text=True, timeout=10)
    return r.returncode == 0


def test_up_ls_exec_down(dev):
    r = dev.up(3)
    assert "node-3" in r.stdout and dev.addr(3) in r.stdout
    assert "shoal dev exec node-1 --name %s -- shoal node ls" % dev.name in r.stdout

    nodes = dev.ls_json()
    assert [n["name"] for n in nodes] == ["node-1", "node-2", "node-3"]
    assert all(n["alive"] for n in nodes)
    assert [n["role"] for n in nodes] == ["manager", "worker", "worker"]
    table = shoal("dev", "ls", "--name", dev.name).stdout
    assert table.count("alive") == 3, table

    # Each node's daemon answers on its own socket with its own hostname.
    info = dev.exec("node-2", "shoal", "info").stdout
    assert "Hostname: node-2" in info, info
    assert "Node Address: %s:2377" % dev.addr(2) in info, info
    assert dev.exec("3", "sh", "-c", "echo $SHOAL_HOST").stdout.strip() == \
        "unix://%s/node-3/run/shoal.sock" % dev.dir

    # One swarm: the manager sees every node ready, by hostname.
    listing = dev.exec("node-1", "shoal", "node", "ls", "--format", "json").stdout
    seen = {n["hostname"]: n for n in json.loads(listing)}
    assert sorted(seen) == ["node-1", "node-2", "node-3"]
    assert all(n["status"] == "ready" for n in seen.values())

    # Nodes reach each other on the bridge, from inside their namespaces.
    assert tcp_reaches(dev.netns(2), dev.addr(1), 2377)
    assert tcp_reaches(dev.netns(3), dev.addr(1), 2377)

    pids = [n["pid"] for n in nodes]
    dev.down()
    dev.assert_gone(pids)


def test_lan_has_a_namespace_of_its_own(dev):
    """The bridge between the nodes is in shoal-NAME-lan, where it calls no
    netfilter hook (whatever br_netfilter does in this machine's namespace);
    this machine keeps a veth end with the subnet's last address, and reaches
    the nodes through it."""
    dev.up(2)
    lan = "shoal-%s-lan" % dev.name
    assert dev.state()["lan_netns"] == lan
    assert lan in netns_list()
    assert not glob.glob("/sys/class/net/sh-%s-*" % dev.name)
    here = subprocess.run(["ip", "-o", "addr", "show", "shoal-" + dev.name], capture_output=True,
                          text=True, check=True).stdout
    assert " %s.254/24 " % dev.prefix in here, here
    links = subprocess.run(["ip", "-n", lan, "-o", "link", "show", "master", "shoal-" + dev.name],
                           capture_output=True, text=True, check=True).stdout
    ports = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
    assert ports == ["host", "sh-%s-1" % dev.name, "sh-%s-2" % dev.name], links
    if os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables"):
        for kind in ("iptables", "ip6tables", "arptables"):
            r = subprocess.run(["ip", "netns", "exec", lan, "cat",
                                "/proc/sys/net/bridge/bridge-nf-call-" + kind],
                               capture_output=True, text=True, check=True)
            assert r.stdout.strip() == "0", (kind, r.stdout)
    code = ("import socket,sys; s=socket.create_connection((sys.argv[1], 2377), 2); s.close()")
    subprocess.run(["python3", "-c", code, dev.addr(2)], check=True, timeout=10)
    pids = [n["pid"] for n in dev.state()["nodes"]]
    dev.down()
    dev.assert_gone(pids)
    assert lan not in netns_list()


def test_managers_and_state_file(dev):
    dev.up(4, "--managers", "2")
    state = dev.state()
    assert state["subnet"] == dev.subnet
    assert [n["role"] for n in state["nodes"]] == ["manager", "manager", "worker", "worker"]
    assert [n["netns"] for n in state["nodes"]] == [dev.netns(i) for i in range(1, 5)]
    listing = json.loads(dev.exec("node-2", "shoal", "node", "ls", "--format", "json").stdout)
    assert sorted(n["role"] for n in listing) == ["manager", "manager", "worker", "worker"]


def test_up_twice_fails_and_down_twice_is_fine(dev):
    dev.up(1)
    r = dev.up(1, check=False)
    assert r.returncode != 0
    assert "dev cluster '%s' exists: run `shoal dev down --name %s` first" % (dev.name, dev.name) \
        in r.stderr
    assert dev.ls_json()[0]["alive"], "the failed up must not harm the running cluster"
    pid = dev.state()["nodes"][0]["pid"]
    dev.down()
    dev.down()
    dev.assert_gone([pid])


def test_down_after_partial_up(dev):
    """What an interrupted `up` leaves (namespaces, links, a daemon and its
    directory but no state file) goes too."""
    dev.up(2)
    pids = [n["pid"] for n in dev.state()["nodes"]]
    os.unlink(os.path.join(dev.dir, "cluster.json"))
    dev.down()
    dev.assert_gone(pids)


def test_down_stops_containers(dev, rootfs_tar):
    dev.up(3)
    dev.exec("node-1", "shoal", "image", "import", rootfs_tar, "busybox:latest")
    dev.exec("node-1", "shoal", "service", "create", "--name", "sleepy", "--replicas", "3",
             "busybox", "sleep", "1000")
    records = wait_until(lambda: len(glob.glob(dev.dir + "/node-*/state/agent/*.json")) == 3
                         and glob.glob(dev.dir + "/node-*/state/agent/*.json"), timeout=30)
    pids = [n["pid"] for n in dev.state()["nodes"]]
    ids = []
    for rec in records:
        with open(rec) as f:
            r = json.load(f)
        pids.append(r["pid"])
        ids.append(r["id"])
    assert mounts_under(dev.dir)
    dev.down()
    dev.assert_gone(pids)
    for cid in ids:
        assert not glob.glob("/sys/fs/cgroup/*/shoal/%s" % cid)
        assert not os.path.exists("/sys/fs/cgroup/shoal/%s" % cid)


@pytest.mark.parametrize("args,message", [
    (["-n", "0"], "invalid node count 0"),
    (["-n", "251"], "invalid node count 251"),
    (["-n", "2", "--managers", "3"], "invalid manager count 3"),
    (["-n", "2", "--subnet", "10.213.0.0/28x"], "invalid subnet"),
    (["-n", "2", "--name", "Bad-Name"], "invalid name"),
    (["-n", "2", "--name", "muchtoolong"], "invalid name"),
    ([], "the number of nodes is required"),
])
def test_bad_up_arguments(args, message):
    r = shoal("dev", "up", *args, check=False)
    assert r.returncode == 2, r
    assert message in r.stderr, r.stderr


def test_subnet_overlapping_a_route_is_refused(dev):
    with open("/proc/net/route") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    routed = [r for r in rows if r[7] != "00000000"]
    if not routed:
        pytest.skip("no route but the default one")
    dst = int(routed[0][1], 16).to_bytes(4, "little")
    subnet = "%d.%d.%d.0/24" % (dst[0], dst[1], dst[2])
    r = shoal("dev", "up", "-n", "1", "--name", dev.name, "--subnet", subnet, check=False)
    assert r.returncode == 1
    assert "subnet overlaps the route" in r.stderr, r.stderr
    assert not os.path.exists(dev.dir)


def test_exec_unknown_node_and_cluster(dev):
    dev.up(2)
    r = dev.exec("node-3", "true", check=False)
    assert r.returncode == 1
    assert "no node 'node-3' in dev cluster '%s'" % dev.name in r.stderr
    r = dev.exec("web", "true", check=False)
    assert r.returncode == 1
    r = shoal("dev", "exec", "node-1", "--name", "nosuch", "--", "true", check=False)
    assert r.returncode == 1 and "no dev cluster 'nosuch'" in r.stderr, r.stderr
    r = dev.exec("node-1", "sh", "-c", "exit 7", check=False)
    assert r.returncode == 7


def test_own_dir_through_a_symlink(tmp_path):
    """--dir may be relative or a symlink: `down` still finds every mount."""
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(str(real), str(tmp_path / "link"))
    c = DevCluster("d")
    try:
        r = subprocess.run([SHOAL_BIN, "dev", "up", "-n", "2", "--name", c.name, "--subnet",
                            c.subnet, "--dir", "link"], cwd=str(tmp_path), capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "--dir %s" % real in r.stdout
        info = shoal("dev", "exec", "node-1", "--name", c.name, "--dir", str(tmp_path / "link"),
                     "--", "shoal", "info").stdout
        assert "Hostname: node-1" in info
    finally:
        shoal("dev", "down", "--name", c.name, "--dir", str(real))
    assert not os.path.exists(str(real / c.name))
    assert not [ns for ns in netns_list() if ns.startswith("shoal-%s-" % c.name)]


def pid_ns_members(ns):
    out = []
    for p in glob.glob("/proc/[0-9]*"):
        try:
            if os.readlink(p + "/ns/pid") == ns and pid_running(int(p[6:])):
                out.append(int(p[6:]))
        except (OSError, ValueError):
            pass
    return out


def test_down_ends_the_containers_of_a_dead_daemon(dev, rootfs_tar):
    """A node's daemon killed (-9) with running tasks: its containers live on,
    reparented to init; `down` still ends every process, mount, cgroup and
    network namespace the cluster made, found from any trace they left."""
    dev.up(2)
    dev.exec("node-1", "shoal", "image", "import", rootfs_tar, "busybox:latest")
    dev.exec("node-1", "shoal", "service", "create", "--name", "sleepy", "--replicas", "4",
             "--health-cmd", "sleep 1000", "--health-interval", "200ms", "busybox", "sh", "-c",
             "sleep 1000 & sleep 1000")
    records = wait_until(lambda: len(glob.glob(dev.dir + "/node-2/state/agent/*.json")) >= 1
                         and glob.glob(dev.dir + "/node-2/state/agent/*.json"), timeout=60)
    daemon = [n["pid"] for n in dev.state()["nodes"]][1]
    ctrs = []
    for rec in records:
        with open(rec) as f:
            r = json.load(f)
        wait_until(lambda: len(pid_ns_members(os.readlink("/proc/%d/ns/pid" % r["pid"]))) >= 3,
                   timeout=30)  # sh, its two sleeps; health checks too
        ctrs.append((r["id"], os.readlink("/proc/%d/ns/pid" % r["pid"])))
    os.kill(daemon, signal.SIGKILL)
    wait_until(lambda: not pid_running(daemon), timeout=10)
    assert all(pid_ns_members(ns) for _, ns in ctrs)
    # as if it had been killed before writing its record: crun's state, the
    # bundle and the namespace marker are the traces left
    os.unlink(records[0])
    dev.down()
    dev.assert_gone([daemon])
    for cid, ns in ctrs:
        assert not pid_ns_members(ns), cid
        assert not glob.glob("/sys/fs/cgroup/*/shoal/%s" % cid)
        assert not os.path.exists("/sys/fs/cgroup/shoal/%s" % cid)
        assert "shoal-" + cid not in netns_list()


# ---- -v HOST_DIR:DIR and `dev shell` ----

def mount_points():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def dev_shell(dev, *args, check=True):
    return shoal("dev", "shell", *args[:1], "--name", dev.name, *args[1:], check=check)


def test_volume_shared_by_every_node(dev, tmp_path):
    host = tmp_path / "data"                        # made by `up`
    top = "/srv/shoal-t-%s" % dev.name              # DIR's missing parent: made, then removed
    target = top + "/data"
    r = dev.up(3, "-v", "%s:%s" % (host, target))
    assert host.is_dir()
    assert dev.state()["volumes"] == [{"host": str(host), "dir": target, "made": top}]
    (host / "file").write_text("from the host\n")
    for i in (1, 2, 3):
        out = dev_shell(dev, "node-%d" % i, "--", "cat", target + "/file").stdout
        assert out == "from the host\n"
        assert dev.exec(str(i), "cat", target + "/file").stdout == "from the host\n"
    # the daemon's processes see it: written from a node, read on the host
    dev.exec("node-2", "sh", "-c", "echo from node-2 > %s/back" % target)
    assert (host / "back").read_text() == "from node-2\n"
    # the mounts are the nodes' own: the host's view is untouched
    assert target not in mount_points()
    assert os.listdir(target) == []
    pids = [n["pid"] for n in dev.ls_json()]
    # a node whose daemon died has no mount namespace left to enter: said so
    os.kill(pids[2], signal.SIGKILL)
    wait_until(lambda: not pid_running(pids[2]), timeout=10)
    r = dev_shell(dev, "node-3", "--", "ls", target)
    assert "node-3's daemon is not running: its -v directories are not mounted" in r.stderr
    dev.down()
    dev.assert_gone(pids)
    assert target not in mount_points()
    assert not os.path.exists(top)
    assert (host / "file").read_text() == "from the host\n"   # the data stays


@pytest.mark.parametrize("volume,message", [
    ("data:/data", "HOST_DIR 'data' is not an absolute path"),
    ("/srv/x:data", "DIR 'data' is not an absolute path"),
    ("/srv/x", "want HOST_DIR:DIR"),
    ("/srv/x:/data:ro", "no ':' in paths"),
    ("/srv/x:/", "DIR '/' is reserved"),
    ("/srv/x:/etc", "DIR '/etc' is reserved"),
    ("/srv/x:/proc/data", "is under /proc, which is reserved"),
    ("/srv/x:/var/lib", "would cover or lie in the cluster's directory"),
    ("/srv/x:/data/../etc", "want a plain absolute path"),
    ("/srv/x:/data/", "want a plain absolute path"),
])
def test_bad_volumes_are_refused(dev, volume, message):
    host = "/srv/x"
    existed = os.path.exists(host)
    r = dev.up(1, "-v", volume, check=False)
    assert r.returncode == 2, r
    assert message in r.stderr, r.stderr
    assert not os.path.exists(dev.dir)
    assert not [ns for ns in netns_list() if ns.startswith("shoal-%s-" % dev.name)]
    assert os.path.exists(host) == existed


def test_volume_given_twice_or_on_a_file(dev, tmp_path):
    r = dev.up(1, "-v", "%s:/data" % tmp_path, "-v", "%s:/data" % tmp_path, check=False)
    assert r.returncode == 2 and "DIR '/data' given twice" in r.stderr, r.stderr
    (tmp_path / "f").write_text("")
    r = dev.up(1, "-v", "%s/f:/data" % tmp_path, check=False)
    assert r.returncode == 2 and "exists and is not a directory" in r.stderr, r.stderr
    assert not os.path.exists(dev.dir)
    r = shoal("dev", "exec", "node-1", "--name", dev.name, "-v", "/a:/b", "--", "true",
              check=False)
    assert r.returncode == 2 and "-v is an option of `dev up`" in r.stderr, r.stderr


def test_volume_cluster_with_containers_goes_down(dev, rootfs_tar, tmp_path):
    """Tasks bind DIR (the node's view) and write to the host's directory; `down`
    ends them and leaves nothing, their mounts being in the nodes' namespaces."""
    host = tmp_path / "shared"
    target = "/srv/shoal-t-%s" % dev.name
    dev.up(2, "-v", "%s:%s" % (host, target))
    dev.exec("node-1", "shoal", "image", "import", rootfs_tar, "busybox:latest")
    dev.exec("node-1", "shoal", "service", "create", "--name", "writer", "--replicas", "2",
             "--mount", "type=bind,src=%s,dst=/shared" % target, "busybox", "sh", "-c",
             "touch /shared/task-$$-$(cat /proc/sys/kernel/random/uuid); sleep 1000")
    wait_until(lambda: len(list(host.glob("task-*"))) >= 2, timeout=60)
    pids = [n["pid"] for n in dev.ls_json()]
    dev.down()
    dev.assert_gone(pids)
    assert target not in mount_points() and not os.path.exists(target)


def test_shell_runs_in_the_node(dev):
    dev.up(2)
    r = dev_shell(dev, "node-2", "--", "ip", "-o", "-4", "addr", "show", "eth0")
    assert " %s/24 " % dev.addr(2) in r.stdout, r.stdout
    assert dev_shell(dev, "node-2", "--", "hostname").stdout.strip() == "node-2"
    # node-1 by default; SHOAL_HOST and `shoal` on PATH: the CLI works inside
    r = shoal("dev", "shell", "--name", dev.name, "--", "sh", "-c",
              "hostname; echo $SHOAL_HOST; shoal node ls --format json")
    lines = r.stdout.splitlines()
    assert lines[0] == "node-1"
    assert lines[1] == "unix://%s/node-1/run/shoal.sock" % dev.dir
    assert sorted(n["hostname"] for n in json.loads("\n".join(lines[2:]))) == \
        ["node-1", "node-2"]
    assert dev_shell(dev, "2", "--", "sh", "-c", "exit 5", check=False).returncode == 5
    r = dev_shell(dev, "node-3", "--", "true", check=False)
    assert r.returncode == 1 and "no node 'node-3'" in r.stderr, r.stderr


def test_interactive_shell_through_a_pty(dev):
    dev.up(2)
    env = dict(os.environ, SHELL="/bin/sh", PS1="$ ")
    pid, fd = ptyutil.spawn([SHOAL_BIN, "dev", "shell", "node-2", "--name", dev.name], env)
    try:
        ptyutil.read_until(fd, b"$ ")
        os.write(fd, b"echo $((6*7)); hostname\n")
        out = ptyutil.read_until(fd, b"node-2\r\n")
        assert b"42\r\n" in out and b"node-2\r\n" in out, out
        os.write(fd, b"exit 3\n")
        assert ptyutil.finish(pid, fd)[0] == 3
    finally:
        ptyutil.kill(pid)
        os.close(fd)
