"""Service networking, phase 1: a network namespace and an address per task
on a per-node bridge, routes between the nodes' subnets, NAT, and
`--network host`. Real two-node clusters in network namespaces (`shoal dev`);
no traffic leaves them. Each test checks that leaving the swarm removes
everything the daemons made: task namespaces, veths, the bridge, routes and
the nft table."""
import ipaddress
import json
import os
import re
import struct
import subprocess
import time

import pytest

from cluster import Cluster
from conftest import QUICK_STOP, SHOAL_BIN, wait_until

ROUTE_PROTO = "213"


def sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("%s -> %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r.stdout


def task_netns():
    return sorted(n for n in os.listdir("/run/netns") if n.startswith("shoal-")) \
        if os.path.isdir("/run/netns") else []


def node_leftovers(node):
    """What shoal made in a node's namespace and is still there."""
    ns = node.netns
    problems = []
    links = sh("ip", "-n", ns, "-o", "link", "show")
    for name in link_names(links):
        if name == "shoal0" or name.startswith("vsh") or name.startswith("shn"):
            problems.append("%s: link %s" % (node.name, name))
    routes = sh("ip", "-n", ns, "route", "show", "proto", ROUTE_PROTO).strip()
    if routes:
        problems.append("%s: routes %s" % (node.name, routes))
    tables = sh("ip", "netns", "exec", ns, "nft", "list", "tables")
    if "shoal0" in tables:
        problems.append("%s: nft table shoal0" % node.name)
    return problems


@pytest.fixture
def cluster(rootfs_tar):
    c = Cluster(managers=1, workers=1, rootfs_tar=rootfs_tar)
    try:
        yield c
        lead = c.leader
        task_ids = [t["id"] for t in lead.api("GET", "/v1/tasks").json()]
        for s in lead.api("GET", "/v1/services").json():
            lead.cli("service", "rm", s["name"])
        wait_until(lambda: not [t for t in lead.api("GET", "/v1/tasks").json()
                                if t["state"] in ("running", "assigned", "pending")], timeout=30)
        for node in reversed(c.nodes):
            node.cli("swarm", "leave", "--force", timeout=120)
        left = ["netns " + n for n in task_netns() if n in ["shoal-" + i for i in task_ids]]
        problems = left + [p for node in c.nodes for p in node_leftovers(node)]
        assert not problems, problems
    finally:
        c.destroy()


def node_subnets(c):
    return {n["id"]: n.get("subnet") for n in c.nodes_view()}


def running_task(lead, service):
    ts = lead.wait_running(service, 1, timeout=30)
    return ts[0]


def test_each_node_gets_a_subnet_and_each_task_an_address(cluster):
    c = cluster
    lead = c.leader
    subnets = wait_until(lambda: (lambda s: s if all(s.values()) else None)(node_subnets(c)),
                         timeout=10)
    assert sorted(subnets.values()) == ["10.42.0.0/24", "10.42.1.0/24"]
    lead.cli("service", "create", *QUICK_STOP, "--name", "web", "--network", "bridge", "--constraint",
             "node.role==worker", "busybox", "sh", "-c",
             "echo hello-from-web > /tmp/index.html && exec httpd -f -p 8080 -h /tmp")
    web = running_task(lead, "web")
    assert ipaddress.ip_address(web["addr"]) in ipaddress.ip_network(subnets[web["node_id"]])
    assert web["addr"] != ipaddress.ip_network(subnets[web["node_id"]])[1]  # .1 is the bridge
    # a task on the other node reaches it through the routes between the nodes
    lead.cli("service", "create", *QUICK_STOP, "--name", "client", "--network", "bridge", "--constraint",
             "node.role==manager", "-e", "TARGET=" + web["addr"], "busybox", "sh", "-c",
             "while true; do wget -q -O - http://$TARGET:8080/index.html; sleep 0.5; done")
    client = running_task(lead, "client")
    assert client["node_id"] != web["node_id"]
    assert ipaddress.ip_address(client["addr"]) in ipaddress.ip_network(subnets[client["node_id"]])
    wait_until(lambda: "hello-from-web" in lead.logs("client"), timeout=20,
               msg=lambda: lead.logs("client"))
    # the node itself (not a container) reaches the task on the other node too
    out = c.leader.exec("busybox", "wget", "-q", "-O", "-",
                        "http://%s:8080/index.html" % web["addr"]).stdout
    assert "hello-from-web" in out
    # the task's namespace is the one the agent made, named after the task
    assert "shoal-" + web["id"] in task_netns()


def test_host_network_keeps_the_nodes_network(cluster):
    c = cluster
    lead = c.leader
    lead.cli("service", "create", *QUICK_STOP, "--name", "hostweb", "--network", "host", "--constraint",
             "node.role==manager", "busybox", "sh", "-c",
             "echo on-the-host > /tmp/index.html && exec httpd -f -p 8081 -h /tmp")
    t = running_task(lead, "hostweb")
    assert "addr" not in t
    assert lead.service("hostweb")["spec"]["network"] == "host" \
        if "spec" in lead.service("hostweb") else True
    out = wait_until(lambda: c.leader.exec("busybox", "wget", "-q", "-O", "-",
                                           "http://127.0.0.1:8081/index.html", check=False).stdout,
                     timeout=10)
    assert "on-the-host" in out


def test_addresses_survive_a_daemon_restart(cluster):
    c = cluster
    lead = c.leader
    worker = c.nodes[1]
    lead.cli("service", "create", *QUICK_STOP, "--name", "keep", "--network", "bridge", "--constraint",
             "node.role==worker", "busybox", "sh", "-c",
             "echo kept > /tmp/index.html && exec httpd -f -p 8080 -h /tmp")
    first = running_task(lead, "keep")
    worker.restart()
    c.wait_nodes_ready(2)
    # the same task, still answering on its address (namespace and veth kept)
    out = wait_until(lambda: c.leader.exec("busybox", "wget", "-q", "-O", "-",
                                           "http://%s:8080/index.html" % first["addr"],
                                           check=False).stdout, timeout=20)
    assert "kept" in out
    assert running_task(lead, "keep")["id"] == first["id"]
    # a new task on that node does not get the restored task's address
    lead.cli("service", "create", *QUICK_STOP, "--name", "second", "--network", "bridge", "--constraint",
             "node.role==worker", "busybox", "sleep", "1000")
    second = running_task(lead, "second")
    assert second["addr"] != first["addr"]


def test_default_addr_pool_and_bridged_run(fresh_daemon):
    """A single node on the host's namespace: its own bridge (--bridge, conftest) and pool."""
    d = fresh_daemon
    pool = d.subnet
    node = wait_until(lambda: (lambda n: n if n.get("subnet") else None)(
        d.api("GET", "/v1/nodes").json()[0]), timeout=10)
    assert node["subnet"] == pool
    d.cli("service", "create", *QUICK_STOP, "--name", "b", "busybox", "sleep", "1000")
    t = d.wait_running("b", 1)[0]
    assert ipaddress.ip_address(t["addr"]) in ipaddress.ip_network(pool)
    assert d.service("b")["spec"]["network"] == "bridge"
    # `shoal run` in a swarm: bridged too; its eth0 has an address of the pool
    out = d.cli("run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert pool.rsplit(".", 1)[0] + "." in out, out
    out = d.cli("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link").stdout
    assert d.bridge in out, out


def link_names(ip_o_link):
    """Every name of the links in `ip -o link` output: a task's veth taken from the pool of
    namespaces made ahead has its name vsh<id> as an alternative name."""
    names = set()
    for line in ip_o_link.splitlines():
        names.add(line.split(":")[1].strip().split("@")[0])
        names.update(re.findall(r"altname (\S+)", line))
    return names


def links_on(bridge):
    return link_names(sh("ip", "-o", "link", "show", "master", bridge))


def task_links_on(bridge):
    return {n for n in links_on(bridge) if n.startswith("vsh")}


def links():
    return link_names(sh("ip", "-o", "link", "show"))


def test_a_bridged_containers_namespace_and_veth_go(fresh_daemon):
    """The removal unbinds the task's namespace and the kernel's teardown of it takes the
    veth; when something else still holds the namespace, the removal deletes the veth itself
    (after 2 s)."""
    d = fresh_daemon
    wait_until(lambda: "eth0" in d.cli("run", "--rm", "busybox", "ls", "/sys/class/net",
                                       check=False).stdout.split(), timeout=20)
    cid = d.cli("run", "-d", "busybox", "sleep", "1000").stdout.strip()
    veth, netns = "vsh" + cid[:11], "shoal-" + cid
    assert veth in links_on(d.bridge) and netns in task_netns()
    for _ in range(3):  # back to back: each removal overlaps the next start
        assert d.cli("run", "--rm", "busybox", "true", check=False).returncode == 0
    wait_until(lambda: task_links_on(d.bridge) == {veth}, timeout=10,
               msg=lambda: links_on(d.bridge))
    holder = subprocess.Popen(["ip", "netns", "exec", netns, "sleep", "30"])
    try:
        time.sleep(0.3)  # the holder in the namespace
        assert holder.poll() is None
        d.cli("rm", "-f", cid)
        assert veth not in links() and netns not in task_netns()
    finally:
        holder.kill()
        holder.wait()


POOL_SIZE = 2  # NET_POOL_SIZE


def pool_of(d):
    """The daemon's namespaces made ahead and their veths: named after a key, the FNV-1a hash
    of its state directory's device and inode (net_task.c), so that daemons on one host keep
    apart."""
    st = os.stat(d.state_dir)
    h = 2166136261
    for b in struct.pack("<QQ", st.st_dev, st.st_ino):
        h = ((h ^ b) * 16777619) & 0xffffffff
    key = "%08x" % h
    return ({n for n in task_netns() if n.startswith("shoal-pool-%s-" % key)},
            {name for name in links() if name.startswith("vsp" + key[:6])})


def netns_inode(name):
    return os.stat("/run/netns/" + name).st_ino


def test_namespaces_made_ahead_are_taken_and_leave_nothing(fresh_daemon):
    """The removal of a bridged container fills a pool of namespaces made ahead; a start takes
    one (bound at the task's path, its veth renamed onto the bridge, its address and route set
    then). Stopping the daemon leaves none of them, nor their veths; a daemon killed with -9
    removes its own at its next start."""
    d = fresh_daemon
    wait_until(lambda: "eth0" in d.cli("run", "--rm", "busybox", "ls", "/sys/class/net",
                                       check=False).stdout.split(), timeout=20)
    # ready: bound, and each veth on the bridge with its carrier (eth0 up inside, the last step)
    full = lambda: len(pool_of(d)[0]) == POOL_SIZE and len(
        [line for line in sh("ip", "-o", "link", "show", "master", d.bridge).splitlines()
         if ": vsp" in line and "LOWER_UP" in line]) >= POOL_SIZE
    wait_until(full, timeout=10, msg=lambda: str(pool_of(d)))
    made_ahead = {netns_inode(n) for n in pool_of(d)[0]}
    cid = d.cli("run", "-d", "busybox", "sleep", "1000").stdout.strip()
    assert netns_inode("shoal-" + cid) in made_ahead
    assert "vsh" + cid[:11] in links_on(d.bridge)  # its alternative name
    gateway = d.subnet.rsplit(".", 1)[0] + ".1"
    out = d.cli("exec", cid, "sh", "-c", "ip -o -4 addr show eth0; ip route; "
                "ping -c 1 -W 5 " + gateway).stdout
    assert d.subnet.rsplit(".", 1)[0] + "." in out and "default via " + gateway in out, out
    assert " 0% packet loss" in out, out
    d.cli("rm", "-f", cid)
    wait_until(full, timeout=10, msg=lambda: str(pool_of(d)))
    gone = lambda: pool_of(d) == (set(), set())
    d.stop()
    wait_until(gone, timeout=10, msg=lambda: str(pool_of(d)))  # the veths go with the namespaces
    d.start()
    assert d.cli("run", "--rm", "busybox", "true", check=False).returncode == 0
    wait_until(full, timeout=10, msg=lambda: str(pool_of(d)))
    cid = d.cli("run", "-d", "busybox", "sleep", "1000").stdout.strip()
    d.kill9()
    assert len(pool_of(d)[0]) == POOL_SIZE  # left behind
    d.start()
    wait_until(lambda: not pool_of(d)[0], timeout=10, msg=lambda: str(pool_of(d)))
    # the task's namespace, taken from the pool, stays with the task (live restore)
    assert "shoal-" + cid in task_netns() and "vsh" + cid[:11] in links_on(d.bridge)
    # one removal fills the pool again: the names of the count the daemon began again are
    # not those the task kept
    assert d.cli("run", "--rm", "busybox", "true", check=False).returncode == 0
    wait_until(full, timeout=10, msg=lambda: str(pool_of(d)))
    d.stop()
    assert "shoal-" + cid in task_netns() and "vsh" + cid[:11] in links_on(d.bridge)
    d.start()
    d.cli("rm", "-f", cid)
    assert "vsh" + cid[:11] not in links() and "shoal-" + cid not in task_netns()
    d.stop()
    wait_until(gone, timeout=10, msg=lambda: str(pool_of(d)))


def eth0_of(d, cid):
    """A container's eth0: its address and MAC."""
    out = d.cli("exec", cid, "sh", "-c", "ip -o -4 addr show eth0; cat /sys/class/net/eth0/address"
                ).stdout.split()
    return out[3].split("/")[0], out[-1]


def neighbour_mac(addr, dev):
    """The node's neighbour entry of `addr` on `dev`: its MAC, or None."""
    found = re.search(r"lladdr (\S+)", sh("ip", "neigh", "show", addr, "dev", dev))
    return found.group(1) if found else None


def test_an_address_given_again_answers_under_the_same_mac(fresh_daemon):
    """A container given the address a removed one had answers under the same MAC, so the
    node's neighbour entry of that address, kept from the first, leads to the second: with
    namespaces made ahead no port joins the bridge at a start, and nothing flushes that entry
    (the published port and virtual IP of a replaced task stayed dark in test_mesh). The
    bridge's own MAC is set, not the lowest of its ports', which changes as they go."""
    d = fresh_daemon
    wait_until(lambda: "eth0" in d.cli("run", "--rm", "busybox", "ls", "/sys/class/net",
                                       check=False).stdout.split(), timeout=20)
    wait_until(lambda: len(pool_of(d)[0]) == POOL_SIZE, timeout=10, msg=lambda: str(pool_of(d)))
    with open("/sys/class/net/%s/address" % d.bridge) as f:
        bridge_mac = f.read().strip()
    gateway = ipaddress.ip_address(d.subnet.rsplit(".", 1)[0] + ".1")
    assert bridge_mac == "02:54:" + ":".join("%02x" % b for b in gateway.packed), bridge_mac
    first = d.cli("run", "-d", "busybox", "sleep", "1000").stdout.strip()
    addr, first_mac = eth0_of(d, first)
    sh("busybox", "ping", "-c", "1", "-W", "5", addr)
    assert neighbour_mac(addr, d.bridge) == first_mac
    d.cli("rm", "-f", first)
    second = d.cli("run", "-d", "busybox", "sleep", "1000").stdout.strip()
    again, second_mac = eth0_of(d, second)
    assert again == addr  # the lowest free address: the one the first had
    assert neighbour_mac(addr, d.bridge) in (None, second_mac)
    assert " 0% packet loss" in sh("busybox", "ping", "-c", "1", "-W", "5", addr)
    with open("/sys/class/net/%s/address" % d.bridge) as f:
        assert f.read().strip() == bridge_mac
    d.cli("rm", "-f", second)


def test_run_right_after_swarm_init_waits_for_the_bridge(bare_daemon, rootfs_tar):
    """The node's network is set up in the second after `swarm init`: a `shoal run` in that
    second waits for its bridge instead of running on the host's network."""
    d = bare_daemon
    d.init_swarm()
    d.import_image(rootfs_tar)
    # a client that leaves while its run waits harms nothing
    gone = subprocess.Popen([SHOAL_BIN, "-H", "unix://" + d.sock, "run", "--rm", "busybox",
                             "true"])
    time.sleep(0.05)
    gone.kill()
    gone.wait()
    out = d.cli("run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert d.subnet.rsplit(".", 1)[0] + "." in out, out


def test_network_create_takes_dockers_overlay_driver(fresh_daemon):
    d = fresh_daemon
    r = d.cli("network", "create", "-d", "macvlan", "mv", check=False)
    assert r.returncode != 0 and "driver 'macvlan' is not supported" in r.stderr, r.stderr
    assert "mv" not in [n["name"] for n in d.api("GET", "/v1/networks").json()]
    d.cli("network", "create", "-d", "overlay", "ov")
    d.cli("network", "create", "--driver=overlay", "ov2")
    names = [n["name"] for n in d.api("GET", "/v1/networks").json()]
    assert "ov" in names and "ov2" in names
    d.cli("network", "rm", "ov", "ov2")


def test_bad_addr_pool_and_network_are_refused(bare_daemon):
    d = bare_daemon
    r = d.cli("swarm", "init", "--default-addr-pool", "10.0.0.0/30", check=False)
    assert r.returncode != 0 and "/8 and /23" in r.stderr, r.stderr
    r = d.cli("swarm", "init", "--default-addr-pool", "nonsense", check=False)
    assert r.returncode != 0 and "CIDR" in r.stderr, r.stderr
    r = d.cli("service", "create", "--network", "a/b", "busybox", "true", check=False)
    assert r.returncode != 0 and "bridge, host or a network" in r.stderr, r.stderr


def test_namespace_of_an_unfinished_container_is_removed_at_start(fresh_daemon):
    """A daemon killed between making a task's namespace and writing its record: the
    marker <state>/agent/<id>.netns lets the next start remove the namespace."""
    d = fresh_daemon
    cid = "feed" + os.urandom(11).hex()[:21]
    sh("ip", "netns", "add", "shoal-" + cid)
    try:
        open(os.path.join(d.state_dir, "agent", cid + ".netns"), "w").close()
        d.restart()
        wait_until(lambda: "shoal-" + cid not in task_netns(), timeout=10)
        assert not os.path.exists(os.path.join(d.state_dir, "agent", cid + ".netns"))
    finally:
        sh("ip", "netns", "del", "shoal-" + cid, check=False)


def bridges_in(node):
    links = sh("ip", "-n", node.netns, "-o", "link", "show", "type", "bridge")
    return {line.split(":")[1].strip() for line in links.splitlines()}


def network_bridge(lead, name):
    net = [n for n in lead.api("GET", "/v1/networks").json() if n["name"] == name][0]
    return "shn" + net["id"][:12]


def test_bridge_of_a_network_removed_while_a_node_was_down_goes(cluster):
    """The node learns at its next start that the network went (or was made again under the
    same name): its old bridge is deleted, the new one made."""
    c = cluster
    lead, worker = c.leader, c.nodes[1]
    lead.cli("network", "create", "old")
    first = network_bridge(lead, "old")
    wait_until(lambda: first in bridges_in(worker), timeout=20, msg=lambda: bridges_in(worker))
    lead.cli("network", "create", "gone")
    gone = network_bridge(lead, "gone")
    wait_until(lambda: gone in bridges_in(worker), timeout=20, msg=lambda: bridges_in(worker))
    worker.stop()
    lead.cli("network", "rm", "old", "gone")
    lead.cli("network", "create", "old")
    second = network_bridge(lead, "old")
    assert second != first
    assert {first, gone} <= bridges_in(worker)  # a stopped daemon leaves its bridges be
    worker.start()
    c.wait_nodes_ready(2)
    wait_until(lambda: second in bridges_in(worker) and not {first, gone} & bridges_in(worker),
               timeout=20, msg=lambda: bridges_in(worker))


@pytest.mark.parametrize("saved", ['{"x": {"bridge": "lo", "slice": 1}, "y": 5, "z": {}}',
                                   "not json {", ""])
def test_a_damaged_saved_network_list_harms_nothing(fresh_daemon, saved):
    """networks.local names the bridges made before a restart; only names shoal gives its
    bridges are ever taken from it."""
    d = fresh_daemon
    wait_until(lambda: os.path.exists(os.path.join(d.state_dir, "networks.local")), timeout=20)
    d.stop()
    with open(os.path.join(d.state_dir, "networks.local"), "w") as f:
        f.write(saved)
    d.start()
    d.cli("service", "create", *QUICK_STOP, "--name", "after", "busybox", "sleep", "1000")
    assert d.wait_running("after", 1, timeout=30)[0]["addr"]
    assert "UP" in sh("ip", "link", "show", "lo")
    assert d.bridge in sh("ip", "-o", "link", "show", "type", "bridge")


def network_passes(d):
    with open(d.log_path) as f:
        return sum("network pass" in line for line in f)


def test_a_burst_of_replicas_makes_few_network_passes(fresh_daemon):
    """Each replica's start is a commit that changes the service's endpoints (its virtual IP's
    rules): the node's network passes (ip, nft) coalesce, and the rules end with all of them."""
    d = fresh_daemon
    d.extra_args.append("--debug")  # one log line per pass
    d.restart()
    d.cli("network", "create", "burst")
    wait_until(lambda: network_passes(d) > 0, timeout=20)
    before, t0 = network_passes(d), time.monotonic()
    d.cli("service", "create", *QUICK_STOP, "-d", "--name", "web", "--replicas", "30", "--network", "burst",
          "busybox", "sleep", "1000")
    addrs = [t["addr"] for t in d.wait_running("web", 30, timeout=120)]
    starting = time.monotonic() - t0
    ruleset = lambda: sh("nft", "list", "ruleset")

    def holds_every_replica():
        rules = ruleset()  # one `nft list` a poll, not one per address
        return "mod 30 map" in rules and all(re.search(r"\b%s\b" % re.escape(a), rules)
                                             for a in addrs)
    wait_until(holds_every_replica, timeout=20, msg=ruleset)
    time.sleep(2)  # what a pass still deferred would do
    passes = network_passes(d) - before
    # one pass a second at most (the agent's gap) while the replicas start, and the last one
    assert passes <= 2 + int(starting), (passes, starting)
