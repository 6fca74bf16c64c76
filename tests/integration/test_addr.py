"""Addresses and host names on a network that looks like real boards: each
node is a network namespace with its own address on a LAN (a bridge in a
"switch" namespace that also holds the gateway), a default route, its own
host name, /etc/hosts and /etc/resolv.conf (a mount namespace per daemon);
daemons started by hand, not through `shoal dev`, and swarms made the way
the Docker tutorials do: `swarm init` without --advertise-addr, `swarm join`
by the manager's host name. Nothing leaves the namespaces; all is removed at
the end."""
import json
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from conftest import BUSYBOX, Daemon, QUICK_STOP, SHOAL_BIN, wait_until


def sh(*args, check=True):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("%s -> %d\n%s%s" % (" ".join(map(str, args)), r.returncode, r.stdout,
                                                  r.stderr))
    return r


class Board(Daemon):
    """A node with its own namespaces (net, mount, uts); the daemon is the
    process that entered them, so its pid names them all."""

    def __init__(self, lab, index, addrs, default_route=True):
        self.hostname = "node%d" % index
        super().__init__(os.path.join(lab.dir, self.hostname))
        self.index = index
        self.netns = "%s-%d" % (lab.name, index)
        self.addr = addrs[0]
        sh("ip", "netns", "add", self.netns)
        sh("ip", "-n", lab.switch, "link", "add", "%s-p%d" % (lab.name, index), "type", "veth",
           "peer", "name", "eth0", "netns", self.netns)
        sh("ip", "-n", lab.switch, "link", "set", "%s-p%d" % (lab.name, index), "master", "br0",
           "up")
        for a in addrs:
            sh("ip", "-n", self.netns, "addr", "add", a + "/24", "dev", "eth0")
        sh("ip", "-n", self.netns, "link", "set", "eth0", "up")
        sh("ip", "-n", self.netns, "link", "set", "lo", "up")
        if default_route:
            sh("ip", "-n", self.netns, "route", "add", "default", "via", lab.gateway)
        self.hosts = os.path.join(self.base, "hosts")
        with open(self.hosts, "w") as f:
            f.write("127.0.0.1 localhost\n%s" % lab.hosts_lines)
        # no DNS server: a name that is not in /etc/hosts fails at once
        self.resolv = os.path.join(self.base, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")

    def start(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        # / made private first: the bind mounts stay in this namespace (the
        # task namespaces under /run/netns still propagate, as on a host)
        script = ("mount --make-private / && "
                  "{ ! mountpoint -q /etc/hosts || mount --make-private /etc/hosts; } && "
                  "mount --bind %s /etc/hosts && mount --bind %s /etc/resolv.conf && "
                  "hostname %s && exec nsenter --net=/run/netns/%s %s daemon --state-dir %s "
                  "--run-dir %s --socket %s" % (self.hosts, self.resolv, self.hostname, self.netns,
                                                SHOAL_BIN, self.state_dir, self.run_dir, self.sock))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["unshare", "--mount", "--uts", "--propagation", "unchanged",
                                      "sh", "-c", script], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        if os.environ.get("SHOAL_PID_LOG"):  # which test ran which daemon (sanitizer reports)
            with open(os.environ["SHOAL_PID_LOG"], "a") as f:
                f.write("%d %s\n" % (self.proc.pid, os.environ.get("PYTEST_CURRENT_TEST", "")))

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited:\n" + self.log_tail())
            return os.path.exists(self.sock) and self.api("GET", "/v1/info").status == 200

        wait_until(ready, timeout=20)

    def enter(self, *cmd, check=True):
        """Runs cmd as a program of this board (its network, hosts file, host name)."""
        return sh("nsenter", "-t", self.proc.pid, "-m", "-u", "-n", "--", *cmd, check=check)

    def swarm_addr(self):
        return self.api("GET", "/v1/info").json()["swarm"].get("addr")


class Lab:
    def __init__(self):
        self.name = "sha%d" % (os.getpid() % 10000)
        self.prefix = "10.214.%d" % (os.getpid() % 250)
        self.gateway = self.prefix + ".254"
        self.switch = self.name + "-sw"
        self.dir = tempfile.mkdtemp(prefix="shoal-addr-")
        self.boards = []
        self.hosts_lines = "".join("%s.%d node%d.local.lan node%d\n" % (self.prefix, i, i, i)
                                   for i in range(1, 5))
        # a name with two addresses: one of the switch's, where nothing listens on 2377 (and
        # that getaddrinfo sorts first, as closer to node4's), then the manager. Not a
        # worker's: workers listen on 2377 too, for the managers' node-level requests.
        self.unused = self.prefix + ".5"
        self.hosts_lines += "%s managers.local.lan\n%s.1 managers.local.lan\n" % (
            self.unused, self.prefix)
        sh("ip", "netns", "add", self.switch)
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch, "addr", "add", self.gateway + "/24", "dev", "br0")
        sh("ip", "-n", self.switch, "addr", "add", self.unused + "/24", "dev", "br0")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")

    def add(self, addrs, default_route=True):
        b = Board(self, len(self.boards) + 1, addrs, default_route)
        self.boards.append(b)
        b.start()
        return b

    def destroy(self):
        errors = []
        for b in reversed(self.boards):
            errors += ["%s: %s" % (b.hostname, e) for e in b.teardown()]
        for b in self.boards:
            sh("ip", "netns", "del", b.netns, check=False)
        sh("ip", "netns", "del", self.switch, check=False)
        if not errors:
            shutil.rmtree(self.dir, ignore_errors=True)
        return errors


@pytest.fixture(scope="module")
def lab():
    lab = Lab()
    try:
        p = lab.prefix
        lab.add([p + ".1"])  # the manager
        lab.add([p + ".2"])  # joins by name, no --advertise-addr
        lab.add([p + ".3"])  # joins with --advertise-addr eth0
        # two addresses and no default route: ambiguous
        lab.add([p + ".4", "10.215.%d.4" % (os.getpid() % 250)], default_route=False)
    except BaseException:
        lab.destroy()
        raise
    yield lab
    errors = lab.destroy()
    left = [ns for ns in sh("ip", "netns", "list").stdout.split() if ns.startswith(lab.name + "-")]
    assert not errors and not left, "\n".join(errors) + " namespaces left: %s" % left


def token(board, role="worker"):
    return board.cli("swarm", "join-token", "-q", role).stdout.strip()


def node_view(manager, hostname):
    return manager.api("GET", "/v1/nodes/" + hostname).json()


def test_init_advertises_the_default_route_address(lab):
    n1 = lab.boards[0]
    out = n1.cli("swarm", "init").stdout
    assert n1.swarm_addr() == n1.addr + ":2377"
    # the printed join command is usable from another board
    assert "shoal swarm join --token SHOAL-" in out and " %s:2377\n" % n1.addr in out, out
    assert node_view(n1, "node1")["addr"] == n1.addr + ":2377"
    assert "127.0.0.1" not in out


def test_join_by_host_name(lab, rootfs_tar):
    n1, n2 = lab.boards[0], lab.boards[1]
    out = n2.cli("swarm", "join", "--token", token(n1), "node1.local.lan:2377").stdout
    assert "joined a swarm as a worker" in out
    # the worker advertises its own address (the one toward the manager)
    assert n2.swarm_addr() == n2.addr + ":2377"
    rows = n1.cli_json("node", "ls")
    assert {r["hostname"]: r["addr"] for r in rows}["node2"] == n2.addr + ":2377", rows
    assert node_view(n1, "node2")["addr"] == n2.addr + ":2377"
    assert node_view(n1, "node2")["status"] == "ready"
    # the name is kept, to be resolved again
    with open(os.path.join(n2.state_dir, "swarm.json")) as f:
        assert json.load(f)["join_addr"] == "node1.local.lan:2377"

    # a task on the worker is reached through the worker's address
    n1.import_image(rootfs_tar)
    n1.cli("service", "create", *QUICK_STOP, "-d", "--name", "far", "--constraint", "node.hostname==node2",
           "busybox", "sleep", "100000")
    task = n1.wait_running("far", 1, timeout=60)[0]
    routes = lambda: sh("ip", "-n", n1.netns, "route", "show", "proto", "213").stdout
    wait_until(lambda: "via %s " % n2.addr in routes(), timeout=30, msg=routes)
    assert "127.0.0.1" not in routes()
    ping = lambda: sh("nsenter", "--net=/run/netns/" + n1.netns, BUSYBOX, "ping", "-c", "1",
                      "-W", "1", task["addr"], check=False).returncode == 0
    wait_until(ping, timeout=30, msg=lambda: "no answer from the task at %s" % task["addr"])
    n1.cli("service", "rm", "far")
    wait_until(lambda: n1.api("GET", "/v1/services/far").status == 404, timeout=30)


def test_cli_reaches_a_manager_by_host_name(lab):
    n1, n2 = lab.boards[0], lab.boards[1]
    certs = os.path.join(lab.dir, "admin")
    n1.cli("swarm", "admin-cert", "-o", certs)
    r = n2.enter(SHOAL_BIN, "-H", "tcp://node1.local.lan:2377", "--tls-dir", certs, "node", "ls")
    assert "node1" in r.stdout and "node2" in r.stdout, r.stdout
    r = n2.enter(SHOAL_BIN, "-H", "tcp://nosuch.invalid:2377", "--tls-dir", certs, "node", "ls",
                 check=False)
    assert r.returncode != 0 and "cannot resolve nosuch.invalid" in r.stderr, r.stderr


def test_advertise_an_interface_name(lab):
    n1, n3 = lab.boards[0], lab.boards[2]
    n3.cli("swarm", "join", "--advertise-addr", "eth0", "--token", token(n1), "node1.local.lan")
    assert n3.swarm_addr() == n3.addr + ":2377"
    wait_until(lambda: node_view(n1, "node3").get("status") == "ready", timeout=30)
    assert node_view(n1, "node3")["addr"] == n3.addr + ":2377"


def test_names_in_join_errors(lab):
    n1, n4 = lab.boards[0], lab.boards[3]
    r = n4.cli("swarm", "join", "--token", token(n1), "nosuch.invalid:2377", check=False)
    assert r.returncode != 0
    assert "cannot resolve nosuch.invalid" in r.stderr, r.stderr
    # a name that resolves, to a port nobody listens on
    r = n4.cli("swarm", "join", "--token", token(n1), "node3.local.lan:2400", check=False)
    assert r.returncode != 0
    assert "cannot connect to node3.local.lan:2400 (%s)" % lab.boards[2].addr in r.stderr, r.stderr
    r = n4.cli("swarm", "join", "--token", token(n1), "bad/name", check=False)
    assert r.returncode != 0 and "invalid address" in r.stderr, r.stderr
    assert n4.api("GET", "/v1/info").json()["swarm"]["state"] == "inactive"


def test_ambiguous_host_is_refused_with_the_candidates(lab):
    n1, n4 = lab.boards[0], lab.boards[3]
    other = "10.215.%d.4" % (os.getpid() % 250)
    r = n4.cli("swarm", "init", check=False)
    assert r.returncode != 0
    assert n4.addr in r.stderr and other in r.stderr and "--advertise-addr" in r.stderr, r.stderr
    r = n4.cli("swarm", "init", "--advertise-addr", "eth0", check=False)
    assert r.returncode != 0 and n4.addr in r.stderr and other in r.stderr, r.stderr
    r = n4.cli("swarm", "init", "--advertise-addr", "wlan0", check=False)
    assert r.returncode != 0 and "wlan0" in r.stderr and "eth0" in r.stderr, r.stderr
    r = n4.cli("swarm", "init", "--listen-addr", "wlan0:2377", check=False)
    assert r.returncode != 0 and "--listen-addr" in r.stderr and "wlan0" in r.stderr, r.stderr
    # a specific listen address is advertised
    r = n4.cli("swarm", "init", "--listen-addr", other + ":2400", check=False)
    assert r.returncode == 0, r.stderr
    assert n4.swarm_addr() == other + ":2400"
    assert other + ":2400" in r.stdout
    n4.cli("swarm", "leave", "--force")
    assert n4.api("GET", "/v1/info").json()["swarm"]["state"] == "inactive"
    # joining is not ambiguous: the address toward the manager is taken; and every address
    # of the manager's name is tried in turn
    first = n4.enter("getent", "ahostsv4", "managers.local.lan").stdout.split()[0]
    assert first == lab.unused, first
    n4.cli("swarm", "join", "--token", token(n1), "managers.local.lan")
    assert n4.swarm_addr() == n4.addr + ":2377"
    wait_until(lambda: node_view(n1, "node4").get("status") == "ready", timeout=30)


def test_restart_keeps_the_addresses(lab):
    """The manager listens on 0.0.0.0:2377 and advertises its address, after a restart too."""
    n1 = lab.boards[0]
    n1.stop()
    n1.start()
    wait_until(lambda: n1.swarm_addr() == n1.addr + ":2377", timeout=30)
    listening = sh("nsenter", "--net=/run/netns/" + n1.netns, "ss", "-Hltn").stdout
    assert "0.0.0.0:2377" in listening, listening
    for name in ("node2", "node3", "node4"):
        wait_until(lambda: node_view(n1, name).get("status") == "ready", timeout=60)


def test_busy_cluster_port_leaves_the_node_out_of_the_swarm(bare_daemon):
    """A listen address that cannot be bound fails init cleanly: not half a manager."""
    d = bare_daemon
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        r = d.cli("swarm", "init", "--listen-addr", "127.0.0.1:%d" % port, "--default-addr-pool",
                  d.pool, check=False)
        assert r.returncode != 0 and "cluster port 127.0.0.1:%d" % port in r.stderr, r.stderr
        assert d.api("GET", "/v1/info").json()["swarm"]["state"] == "inactive"
    finally:
        busy.close()
    d.cli("swarm", "init", "--listen-addr", "127.0.0.1:%d" % d.port, "--default-addr-pool", d.pool)
    assert d.api("GET", "/v1/info").json()["swarm"]["addr"] == "127.0.0.1:%d" % d.port


def test_a_restarted_worker_finds_the_manager_by_name(lab):
    """The managers a worker remembers are gone (addresses changed): the name it joined
    through is resolved again and brings it back."""
    n1, n2 = lab.boards[0], lab.boards[1]
    n2.stop()
    path = os.path.join(n2.state_dir, "swarm.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["managers"] = [lab.prefix + ".99:2377"]  # nobody there
    with open(path, "w") as f:
        json.dump(cfg, f)
    n2.start()
    wait_until(lambda: "session with node1.local.lan:2377 established" in n2.log_tail(200),
               timeout=60, msg=lambda: n2.log_tail(30))
    wait_until(lambda: node_view(n1, "node2").get("status") == "ready", timeout=30)
