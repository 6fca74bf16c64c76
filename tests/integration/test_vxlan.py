"""The VXLAN overlay (`swarm init --overlay vxlan`): nodes reach each other's
task subnets through a VXLAN device filled from the node list (fixed VNI,
MACs derived from the nodes' addresses, no learning). A real three-node
cluster in network namespaces (`shoal dev up --overlay vxlan`, one manager
and two workers, so both the store and the heartbeat answers carry the
mode); no traffic leaves them. Leaving the swarm and `dev down` must leave
nothing behind."""
import ipaddress
import json
import os
import subprocess
import urllib.request

import pytest

from cluster import Cluster
from conftest import QUICK_STOP, SHOAL_BIN, wait_until

VX = "shoal0vx"  # the daemon's default bridge shoal0 + "vx"
VNI = 4242
BIG = 200000  # bytes: many full-size frames through the tunnels


def sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("%s -> %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r.stdout


def ip_json(ns, *args):
    return json.loads(sh("ip", "-n", ns, "-j", *args) or "[]")


def vx_mac(addr):
    return "02:53:" + ":".join("%02x" % int(b) for b in addr.split("."))


def link_mtu(ns, name):
    return ip_json(ns, "link", "show", name)[0]["mtu"]


def leftovers(node):
    """What shoal made in a node's namespace and is still there."""
    ns = node.netns
    problems = []
    for link in ip_json(ns, "link", "show"):
        name = link["ifname"]
        if name in ("shoal0", VX) or name.startswith("vsh"):
            problems.append("%s: link %s" % (node.name, name))
    routes = sh("ip", "-n", ns, "route", "show", "proto", "213").strip()
    if routes:
        problems.append("%s: routes %s" % (node.name, routes))
    if "shoal0" in sh("ip", "netns", "exec", ns, "nft", "list", "tables"):
        problems.append("%s: nft table shoal0" % node.name)
    return problems


@pytest.fixture
def cluster(rootfs_tar):
    c = Cluster(managers=1, workers=2, rootfs_tar=rootfs_tar, overlay="vxlan")
    try:
        yield c
        lead = c.leader
        for s in lead.api("GET", "/v1/services").json():
            lead.cli("service", "rm", s["name"])
        wait_until(lambda: not [t for t in lead.api("GET", "/v1/tasks").json()
                                if t["state"] in ("running", "assigned", "pending")], timeout=30)
        for node in reversed(c.nodes):
            node.cli("swarm", "leave", "--force", timeout=120)
        problems = [p for node in c.nodes for p in leftovers(node)]
        assert not problems, problems
    finally:
        c.destroy()
    # `dev down`: the nodes' namespaces (and the devices in them) are gone
    left = [n for n in sh("ip", "netns", "list").split() if n.startswith("shoal-%s-" % c.name)]
    assert not left, left


def routes_of(node):
    return ip_json(node.netns, "route", "show", "proto", "213")


def check_node_overlay(c, node, subnets):
    ns = node.netns
    eth0 = link_mtu(ns, "eth0")
    dev = ip_json(ns, "-d", "link", "show", VX)[0]
    info = dev["linkinfo"]
    assert info["info_kind"] == "vxlan", dev
    data = info["info_data"]
    assert data["id"] == VNI and data["port"] == 4789, data
    assert data["local"] == node.addr and not data["learning"], data
    assert dev["address"] == vx_mac(node.addr), dev
    assert dev["mtu"] == eth0 - 50, (dev["mtu"], eth0)
    assert "UP" in dev["flags"], dev
    # tasks' packets must fit once wrapped: the bridge has the smaller MTU too
    assert link_mtu(ns, "shoal0") == eth0 - 50
    # one route per other node, through the device, the next hop the node itself
    others = [n for n in c.nodes if n is not node]
    want = sorted((subnets[n.addr], n.addr) for n in others)
    routes = routes_of(node)
    assert sorted((r["dst"], r["gateway"]) for r in routes) == want, routes
    assert all(r["dev"] == VX and "onlink" in r.get("flags", []) for r in routes), routes
    # written, not learned: a forwarding entry and a permanent neighbour per peer
    fdb = sh("bridge", "-n", ns, "fdb", "show", "dev", VX)
    neigh = ip_json(ns, "neigh", "show", "dev", VX)
    for n in others:
        assert "%s dst %s" % (vx_mac(n.addr), n.addr) in fdb, fdb
        assert {"dst": n.addr, "lladdr": vx_mac(n.addr)} in \
            [{"dst": e["dst"], "lladdr": e.get("lladdr")} for e in neigh], neigh
        assert all("PERMANENT" in e["state"] for e in neigh), neigh


def test_tasks_on_different_nodes_talk_through_vxlan(cluster):
    c = cluster
    lead = c.leader
    ids = {c.node_id(n): n for n in c.nodes}
    # node address -> its task subnet
    subnets = wait_until(lambda: (lambda v: v if len(v) == 3 and all(v.values()) else None)(
        {x["addr"].split(":")[0]: x.get("subnet") for x in c.nodes_view()}), timeout=10)
    # every node knows the mode: the manager from its store, workers from heartbeats
    for n in c.nodes:
        assert " Overlay: vxlan" in n.cli("info").stdout, n.name
    for n in c.nodes:
        wait_until(lambda: len(routes_of(n)) == 2, timeout=20, msg=lambda: routes_of(n))
        check_node_overlay(c, n, subnets)

    # a web server on every node, serving its own address and a big file
    lead.cli("service", "create", *QUICK_STOP, "--name", "web", "--mode", "global", "--network", "bridge",
             "busybox", "sh", "-c",
             "ip -o -4 addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 > /tmp/me && "
             "echo hello-from-$(cat /tmp/me) > /tmp/index.html && "
             "yes vxlan | head -c %d > /tmp/big && exec httpd -f -p 8080 -h /tmp" % BIG)
    webs = lead.wait_running("web", 3, timeout=40)
    assert sorted(ids[w["node_id"]].name for w in webs) == ["node-1", "node-2", "node-3"]
    for w in webs:
        node = ids[w["node_id"]]
        assert ipaddress.ip_address(w["addr"]) in ipaddress.ip_network(subnets[node.addr])
        # the task's own link has the overlay's MTU (both ends of its veth)
        assert link_mtu("shoal-" + w["id"], "eth0") == link_mtu(node.netns, "eth0") - 50
    # a client on every node fetches from every web server
    targets = " ".join(w["addr"] for w in webs)
    lead.cli("service", "create", *QUICK_STOP, "--name", "client", "--mode", "global", "--network", "bridge",
             "-e", "TARGETS=" + targets, "busybox", "sh", "-c",
             "ME=$(ip -o -4 addr show dev eth0 | awk '{print $4}' | cut -d/ -f1); "
             "while true; do for t in $TARGETS; do "
             "echo from=$ME got=$(wget -q -O - http://$t:8080/index.html) "
             "size=$(wget -q -O - http://$t:8080/big | wc -c); done; sleep 0.5; done")
    clients = lead.wait_running("client", 3, timeout=40)
    want = ["from=%s got=hello-from-%s size=%d" % (cl["addr"], w["addr"], BIG)
            for cl in clients for w in webs if cl["node_id"] != w["node_id"]]
    assert len(want) == 6

    def client_output():
        """Every client's output, read where it runs (`service logs` shows the local node's)."""
        out = ""
        for cl in clients:
            path = os.path.join(ids[cl["node_id"]].run_dir, "logs", cl["id"] + ".log")
            with open(path) as f:
                out += f.read()
        return out

    wait_until(lambda: all(x in client_output() for x in want), timeout=30,
               msg=lambda: "%s\n%s" % ([x for x in want if x not in client_output()],
                                       client_output()[-2000:]))
    # the nodes themselves reach other nodes' tasks through the tunnels too
    far = next(w for w in webs if ids[w["node_id"]] is not c.nodes[0])
    out = c.nodes[0].exec("busybox", "wget", "-q", "-O", "-",
                          "http://%s:8080/big" % far["addr"]).stdout
    assert len(out) == BIG

    # a restarted daemon finds its device again (not made anew) and the traffic goes on
    w3 = c.nodes[2]
    before = ip_json(w3.netns, "link", "show", VX)[0]["ifindex"]
    w3.restart()
    c.wait_nodes_ready(3)
    wait_until(lambda: len(routes_of(w3)) == 2, timeout=20, msg=lambda: routes_of(w3))
    assert ip_json(w3.netns, "link", "show", VX)[0]["ifindex"] == before
    check_node_overlay(c, w3, subnets)
    web3 = next(w for w in webs if ids[w["node_id"]] is w3)
    out = wait_until(lambda: c.nodes[0].exec("busybox", "wget", "-q", "-O", "-",
                                             "http://%s:8080/index.html" % web3["addr"],
                                             check=False).stdout, timeout=20)
    assert "hello-from-" + web3["addr"] in out


def test_user_network_and_published_port_over_vxlan(cluster):
    """A user network's /24s are routed through the tunnels too, its bridges take the
    overlay's MTU, and the routing mesh's connections to other nodes cross them whole."""
    c = cluster
    lead = c.leader
    lead.cli("network", "create", "--subnet", "10.66.0.0/16", "vxnet")
    lead.cli("service", "create", *QUICK_STOP, "--name", "big", "--mode", "global", "--network", "vxnet",
             "-p", "8089:8080", "busybox", "sh", "-c",
             "yes vxlan | head -c %d > /tmp/big && exec httpd -f -p 8080 -h /tmp" % BIG)
    webs = lead.wait_running("big", 3, timeout=40)
    assert all(w["addr"].startswith("10.66.") for w in webs), webs
    for n in c.nodes:
        # each node routes the other two nodes' /24s of both networks through the device
        wait_until(lambda: len(routes_of(n)) == 4, timeout=20, msg=lambda: routes_of(n))
        assert all(r["dev"] == VX for r in routes_of(n))
        bridges = [l["ifname"] for l in ip_json(n.netns, "link", "show", "type", "bridge")]
        shn = [b for b in bridges if b.startswith("shn")]
        assert len(shn) == 1, bridges
        assert link_mtu(n.netns, shn[0]) == link_mtu(n.netns, "eth0") - 50
    def whole(addr):
        """Three answers in a row carry the whole file (the forwarding entries are
        written just after the routes: the first tries may come before them)."""
        for _ in range(3):
            with urllib.request.urlopen("http://%s:8089/big" % addr, timeout=10) as r:
                if len(r.read()) != BIG:
                    return False
        return True

    # every node's published port serves the whole file, whichever replica answers
    for n in c.nodes:
        wait_until(lambda: whole(n.addr), timeout=20)
    # a device deleted by hand is made again (with its routes)
    w = c.nodes[1]
    sh("ip", "-n", w.netns, "link", "del", VX)
    wait_until(lambda: len(routes_of(w)) == 4, timeout=20, msg=lambda: routes_of(w))
    wait_until(lambda: whole(w.addr), timeout=20)


def test_bad_overlay_is_refused(bare_daemon, tmp_path):
    d = bare_daemon
    r = d.cli("swarm", "init", "--overlay", "bogus", check=False)
    assert r.returncode != 0 and "want direct or vxlan" in r.stderr, r.stderr
    r = d.api("POST", "/v1/swarm/init", {"overlay": 7})
    assert r.status == 400, r
    assert d.api("GET", "/v1/info").json()["swarm"]["state"] == "inactive"
    # `dev up` says so before making anything
    r = subprocess.run([SHOAL_BIN, "dev", "up", "-n", "2", "--name", "vxbad", "--dir",
                        str(tmp_path), "--overlay", "bogus"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "want direct or vxlan" in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())
    assert "shoal-vxbad-1" not in sh("ip", "netns", "list")
