"""Multi-node clusters for the integration tests, made with `shoal dev`: one
network namespace, address, hostname, state directory and daemon per node on
one bridge, joined with real tokens over mutual TLS. Traffic stays inside
the namespaces the test made; `destroy` removes everything."""
import glob
import json
import os
import signal
import subprocess
import tempfile

from conftest import SHOAL_BIN, Daemon, wait_until

_count = [0]


def _run(*args, check=True, timeout=120):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("%s -> %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def _routed_prefixes():
    """The 10.213.X.0/24 subnets this machine routes now (other clusters)."""
    taken = set()
    with open("/proc/net/route") as f:
        for line in f.readlines()[1:]:
            dst = int(line.split()[1], 16).to_bytes(4, "little")
            if dst[0] == 10 and dst[1] == 213:
                taken.add(dst[2])
    return taken


def _free_prefix(start):
    """A /24 no other dev cluster uses (another test run may be going on)."""
    taken = _routed_prefixes()
    for x in list(range(start, 250)) + list(range(1, start)):
        if x not in taken:
            return "10.213.%d" % x
    raise AssertionError("no free 10.213.X.0/24 subnet")


class _NodeProcess:
    """What the tests use of a Popen: the daemon's pid inside the namespace."""

    def __init__(self, node):
        self.node = node

    @property
    def pid(self):
        return self.node.daemon_pid()

    def poll(self):
        return None if self.node.daemon_pid() else 0


class DevNode(Daemon):
    """A node of a dev cluster: the conftest's clients, and process control
    through the node's namespace."""

    def __init__(self, cluster, index, addr):
        super().__init__(os.path.join(cluster.dir, cluster.name, "node-%d" % index))
        self.cluster = cluster
        self.index = index
        self.name = "node-%d" % index
        self.addr = addr
        self.port = 2377
        self.netns = "shoal-%s-%d" % (cluster.name, index)
        self.veth = "sh-%s-%d" % (cluster.name, index)  # the LAN's end, in cluster.lan
        self.proc = _NodeProcess(self)

    def netns_pids(self):
        r = _run("ip", "netns", "pids", self.netns, check=False)
        return [int(p) for p in r.stdout.split()]

    def daemon_pid(self):
        for pid in self.netns_pids():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if len(argv) > 1 and argv[1] == b"daemon" and self.state_dir.encode() in argv:
                return pid
        return None

    def start(self):
        log = open(self.log_path, "ab")
        subprocess.Popen([SHOAL_BIN, "dev", "exec", self.name, "--name", self.cluster.name, "--dir",
                          self.cluster.dir, "--", SHOAL_BIN, "daemon", "--state-dir", self.state_dir,
                          "--run-dir", self.run_dir, "--socket", self.sock] + list(self.extra_args),
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
        log.close()
        wait_until(lambda: self.api("GET", "/v1/info").status == 200, timeout=20)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        pid = self.daemon_pid()
        if pid:
            os.kill(pid, sig)
            wait_until(lambda: self.daemon_pid() is None, timeout=timeout)

    def kill9(self):
        self.stop(sig=signal.SIGKILL)

    def restart(self):
        self.stop()
        self.start()

    def exec(self, *cmd, check=True):
        return _run(SHOAL_BIN, "dev", "exec", self.name, "--name", self.cluster.name, "--dir",
                    self.cluster.dir, "--", *cmd, check=check)


class Cluster:
    def __init__(self, managers=1, workers=0, rootfs_tar=None, overlay=None):
        _count[0] += 1
        self.name = "c%d%d" % (os.getpid() % 10000, _count[0] % 100)
        self.prefix = _free_prefix(150 + _count[0] % 100)
        self.dir = tempfile.mkdtemp(prefix="shoal-cl-")
        n = managers + workers
        _run(SHOAL_BIN, "dev", "up", "-n", str(n), "--managers", str(managers), "--name", self.name,
             "--subnet", self.prefix + ".0/24", "--dir", self.dir,
             *(["--overlay", overlay] if overlay else []))
        self.nodes = [DevNode(self, i, "%s.%d" % (self.prefix, i)) for i in range(1, n + 1)]
        self.leader = self.nodes[0]
        if rootfs_tar:
            self.leader.import_image(rootfs_tar)
        self.wait_nodes_ready(n)
        wait_until(lambda: sorted(x["manager_status"] for x in self.nodes_view()
                                  if x["role"] == "manager")
                   == ["leader"] + ["reachable"] * (managers - 1), timeout=30,
                   msg=lambda: json.dumps(self.nodes_view(), indent=1))

    def token(self, role, via=None):
        return (via or self.leader).cli("swarm", "join-token", "-q", role).stdout.strip()

    def node_id(self, d):
        return d.api("GET", "/v1/info").json()["node_id"]

    def nodes_view(self, via=None):
        r = (via or self.leader).api("GET", "/v1/nodes")
        assert r.status == 200, r
        return r.json()

    def wait_nodes_ready(self, n, via=None, timeout=20):
        wait_until(lambda: len([x for x in self.nodes_view(via) if x["status"] == "ready"]) == n,
                   timeout=timeout, msg=lambda: json.dumps(self.nodes_view(via), indent=1))

    def find_leader(self, among):
        for d in among:
            try:
                if d.api("GET", "/v1/info", timeout=2).json()["swarm"]["is_leader"]:
                    return d
            except Exception:  # noqa: BLE001
                pass
        return None

    def kill_node(self, d):
        """A board dies: its daemon and its containers (bridged ones run in namespaces of
        their own: found through the node's container records)."""
        pids = d.netns_pids()
        for rec in glob.glob(os.path.join(d.state_dir, "agent", "*.json")):
            try:
                with open(rec) as f:
                    r = json.load(f)
                with open("/proc/%d/stat" % r["pid"]) as f:
                    start = int(f.read().rsplit(")", 1)[1].split()[19])
                if start == r["start_time"]:  # not a reused pid
                    pids.append(r["pid"])
            except (OSError, ValueError, KeyError, IndexError):
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        wait_until(lambda: not d.netns_pids(), timeout=10)

    @property
    def lan(self):
        """The namespace of the cluster's bridge, where the nodes' veth ends are."""
        return "shoal-%s-lan" % self.name

    def cut_link(self, d):
        _run("ip", "-n", self.lan, "link", "set", d.veth, "down")

    def restore_link(self, d):
        _run("ip", "-n", self.lan, "link", "set", d.veth, "up")

    def destroy(self):
        _run(SHOAL_BIN, "dev", "down", "--name", self.name, "--dir", self.dir, check=False)
        leftovers = [l for l in open("/proc/mounts") if self.dir in l]
        assert not leftovers, leftovers
        os.rmdir(self.dir) if os.path.isdir(self.dir) and not os.listdir(self.dir) else None
