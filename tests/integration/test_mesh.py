"""Service networking, phase 2: published ports through the routing mesh,
virtual IPs, user networks and their isolation, UDP. One real 4-node dev
cluster (network namespaces) for the module; clients are the test itself
(in the host's namespace, talking to the dev bridge's addresses) and
containers. No traffic leaves the namespaces the cluster made."""
import collections
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request

import pytest

from cluster import Cluster
from conftest import make_rootfs_tar, QUICK_STOP, wait_until
from test_network import node_leftovers

UDP_ECHO_C = r"""
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0) { perror("bind"); return 1; }
    char host[64] = "", buf[512], out[640];
    gethostname(host, sizeof(host));
    for (;;) {
        struct sockaddr_in from;
        socklen_t len = sizeof(from);
        ssize_t n = recvfrom(s, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &len);
        if (n < 0) continue;
        buf[n] = 0;
        int m = snprintf(out, sizeof(out), "%s:%s", host, buf);
        sendto(s, out, m, 0, (struct sockaddr *)&from, len);
    }
}
"""

# httpd answering with the task's hostname (its container id): which replica answered
WEB = ["sh", "-c", "hostname > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]


@pytest.fixture(scope="module")
def mesh_rootfs(tmp_path_factory):
    """busybox plus a static UDP echo server (bin/udpecho)."""
    d = tmp_path_factory.mktemp("meshfs")
    src = d / "udpecho.c"
    src.write_text(UDP_ECHO_C)
    binary = d / "udpecho"
    subprocess.run(["cc", "-static", "-O2", "-o", str(binary), str(src)], check=True)
    tar_path = make_rootfs_tar(str(d / "rootfs.tar"))
    with tarfile.open(tar_path, "a") as tar:
        ti = tar.gettarinfo(str(binary), arcname="bin/udpecho")
        ti.mode = 0o755
        with open(binary, "rb") as f:
            tar.addfile(ti, f)
    return tar_path


@pytest.fixture(scope="module")
def cluster(mesh_rootfs):
    c = Cluster(managers=1, workers=3, rootfs_tar=mesh_rootfs)
    try:
        yield c
        # user networks were made on every node: leaving removes their bridges too
        c.leader.cli("network", "create", "last")
        wait_until(lambda: all("shn" in n.exec("ip", "-o", "link").stdout for n in c.nodes),
                   timeout=20)
        for node in reversed(c.nodes):
            node.cli("swarm", "leave", "--force", timeout=120)
        problems = [p for node in c.nodes for p in node_leftovers(node)]
        assert not problems, problems
    finally:
        c.destroy()


@pytest.fixture
def lead(cluster):
    lead = cluster.leader
    yield lead
    for s in lead.api("GET", "/v1/services").json():
        lead.cli("service", "rm", s["name"], check=False)
    wait_until(lambda: not [t for t in lead.api("GET", "/v1/tasks").json()
                            if t["state"] in ("running", "assigned", "pending", "starting")],
               timeout=30)
    for n in lead.api("GET", "/v1/networks").json():
        if not n.get("builtin"):
            lead.cli("network", "rm", n["name"], check=False)


def http_get(addr, port, path="/index.html", timeout=2):
    with urllib.request.urlopen("http://%s:%d%s" % (addr, port, path), timeout=timeout) as r:
        return r.read().decode().strip()


def try_get(addr, port, timeout=2):
    try:
        return http_get(addr, port, timeout=timeout)
    except OSError:
        return None


def running(lead, name, n):
    return lead.wait_running(name, n, timeout=60)


def in_container(lead, task, *cmd):
    """Runs a busybox applet in a running task's network namespace. (busybox
    1.35's wget -T crashes: `timeout` bounds the call instead.)"""
    return subprocess.run(["timeout", "4", "nsenter", "-t", str(task["pid"]), "-n", "--",
                           "/bin/busybox"] + list(cmd), capture_output=True, text=True, timeout=30)


def test_published_port_answers_from_every_node_and_balances(cluster, lead):
    lead.cli("service", "create", *QUICK_STOP, "--name", "web", "--replicas", "3", "-p", "8088:80",
             "busybox", *WEB)
    tasks = running(lead, "web", 3)
    hostnames = {t["id"][:12] for t in tasks}
    # every node answers, including those without a replica
    for node in cluster.nodes:
        got = wait_until(lambda: try_get(node.addr, 8088), timeout=20,
                         msg="node %s does not answer on 8088" % node.name)
        assert got in hostnames, (got, hostnames)
    # on a node itself, 127.0.0.1 and the node's own address answer too
    for target in ("127.0.0.1", cluster.nodes[3].addr):
        r = cluster.nodes[3].exec("timeout", "5", "busybox", "wget", "-q", "-O", "-",
                                  "http://%s:8088/index.html" % target, check=False)
        assert r.stdout.strip() in hostnames, (target, r.stdout, r.stderr)
    # balanced once the nodes' rules hold every replica: they may trail the last
    # endpoints by the agent's pass gap (1 s, agent_net.c)
    def balanced():
        seen = collections.Counter(http_get(cluster.nodes[1].addr, 8088) for _ in range(30))
        assert set(seen) <= hostnames, (seen, hostnames)
        return seen if len(seen) >= 2 else None
    wait_until(balanced, timeout=10, msg="node 1 sends every request to one replica")
    svc = lead.service("web")
    assert svc["spec"]["ports"] == [{"published": 8088, "target": 80, "protocol": "tcp",
                                     "mode": "ingress"}]
    ls = lead.cli("service", "ls").stdout
    assert "*:8088->80/tcp" in ls, ls
    ps = lead.cli("service", "ps", "web").stdout
    assert "ADDR" in ps and tasks[0]["addr"] in ps, ps


def icmp_redirects_sent(node):
    """The node's Icmp OutRedirects counter (/proc/net/snmp of its namespace)."""
    lines = [l.split() for l in node.exec("cat", "/proc/net/snmp").stdout.splitlines()
             if l.startswith("Icmp:")]
    return int(dict(zip(lines[0], lines[1]))["OutRedirects"])


def test_a_node_sending_connections_on_sends_no_icmp_redirects(cluster, lead):
    # The test is a client on the nodes' LAN: a node sends 2 of its connections in 3
    # on to another node's replica out of the interface they came in by, and the
    # answers back to us the same way; with redirects on, the kernel checks each such
    # packet's source a second time and tells us to use the other node (net.h).
    lead.cli("service", "create", *QUICK_STOP, "--name", "redir", "--replicas", "3", "-p", "8090:80",
             "busybox", *WEB)
    hostnames = {t["id"][:12] for t in running(lead, "redir", 3)}
    via = cluster.nodes[1]
    wait_until(lambda: try_get(via.addr, 8090), timeout=20)

    def served_by_others():
        seen = {http_get(via.addr, 8090) for _ in range(12)}
        assert seen <= hostnames, (seen, hostnames)
        return len(seen) >= 2
    wait_until(served_by_others, timeout=10, msg="node 1 sends every request to one replica")
    assert [icmp_redirects_sent(n) for n in cluster.nodes] == [0] * len(cluster.nodes)


def test_killed_replica_is_replaced_and_the_port_keeps_answering(cluster, lead):
    lead.cli("service", "create", *QUICK_STOP, "--name", "heal", "--replicas", "3", "-p", "8081:80",
             "busybox", *WEB)
    tasks = running(lead, "heal", 3)
    wait_until(lambda: try_get(cluster.nodes[0].addr, 8081), timeout=20)
    victim = tasks[0]
    os.kill(victim["pid"], 9)
    # answers go on while the replica is replaced
    for _ in range(20):
        assert wait_until(lambda: try_get(cluster.nodes[2].addr, 8081), timeout=10)
    wait_until(lambda: len(lead.running_tasks("heal")) == 3 and
               victim["id"] not in [t["id"] for t in lead.running_tasks("heal")], timeout=30)
    new_names = {t["id"][:12] for t in lead.running_tasks("heal")}
    wait_until(lambda: {http_get(cluster.nodes[0].addr, 8081) for _ in range(12)} <= new_names,
               timeout=20)


def test_host_mode_publishes_only_where_a_task_runs(cluster, lead):
    worker = cluster.nodes[3]
    lead.cli("service", "create", *QUICK_STOP, "--name", "hostmode", "--constraint",
             "node.hostname==" + worker.name, "--publish",
             "published=8082,target=80,mode=host", "busybox", *WEB)
    t = running(lead, "hostmode", 1)[0]
    assert wait_until(lambda: try_get(worker.addr, 8082), timeout=20) == t["id"][:12]
    assert try_get(cluster.nodes[1].addr, 8082, timeout=1) is None


def test_udp_published_port(cluster, lead):
    lead.cli("service", "create", *QUICK_STOP, "--name", "echo", "--replicas", "2", "-p", "9053:53/udp",
             "busybox", "udpecho", "53")
    tasks = running(lead, "echo", 2)
    names = {t["id"][:12] for t in tasks}

    def ask():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1)
        try:
            s.sendto(b"ping", (cluster.nodes[2].addr, 9053))
            return s.recv(600).decode()
        except OSError:
            return None
        finally:
            s.close()

    answer = wait_until(ask, timeout=20)
    host, _, payload = answer.partition(":")
    assert host in names and payload == "ping", answer


def test_virtual_ip_balances_between_containers(cluster, lead):
    lead.cli("service", "create", *QUICK_STOP, "--name", "vipweb", "--replicas", "2", "busybox", *WEB)
    tasks = running(lead, "vipweb", 2)
    vip = lead.service("vipweb")["vip"]
    assert vip.startswith("10.42.255."), vip
    lead.cli("service", "create", *QUICK_STOP, "--name", "vipclient", "busybox", "sleep", "1000")
    client = running(lead, "vipclient", 1)[0]
    seen = set()
    # the nodes' rules follow a burst of endpoint changes within the agent's
    # pass gap (1 s, agent_net.c): both replicas answer within a few seconds
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        r = in_container(lead, client, "wget", "-q", "-O", "-",
                         "http://%s/index.html" % vip)
        assert r.returncode == 0, r.stderr
        seen.add(r.stdout.strip())
    assert seen <= {t["id"][:12] for t in tasks} and len(seen) == 2, seen


def test_user_networks_are_isolated(cluster, lead):
    r = lead.cli("network", "create", "--subnet", "10.77.0.0/16", "front")
    assert r.returncode == 0
    lead.cli("network", "create", "back")
    nets = {n["name"]: n for n in lead.api("GET", "/v1/networks").json()}
    assert nets["front"]["subnet"] == "10.77.0.0/16"
    assert nets["back"]["subnet"] == "10.43.0.0/16"
    assert {"bridge", "host"} <= set(nets)
    lead.cli("service", "create", *QUICK_STOP, "--name", "fsrv", "--network", "front", "--constraint",
             "node.hostname==" + cluster.nodes[1].name, "busybox", *WEB)
    srv = running(lead, "fsrv", 1)[0]
    assert srv["addr"].startswith("10.77."), srv
    lead.cli("service", "create", *QUICK_STOP, "--name", "fcli", "--network", "front", "--constraint",
             "node.hostname==" + cluster.nodes[2].name, "busybox", "sleep", "1000")
    lead.cli("service", "create", *QUICK_STOP, "--name", "bcli", "--network", "back", "--constraint",
             "node.hostname==" + cluster.nodes[2].name, "busybox", "sleep", "1000")
    lead.cli("service", "create", *QUICK_STOP, "--name", "dcli", "--constraint",
             "node.hostname==" + cluster.nodes[1].name, "busybox", "sleep", "1000")
    fcli = running(lead, "fcli", 1)[0]
    bcli = running(lead, "bcli", 1)[0]
    dcli = running(lead, "dcli", 1)[0]
    assert bcli["addr"].startswith("10.43."), bcli

    def get(task, target):
        return in_container(lead, task, "wget", "-q", "-O", "-",
                            "http://%s/index.html" % target)

    # same network, other node: reachable by address and by virtual IP
    r = wait_until(lambda: (lambda r: r if r.returncode == 0 else None)(get(fcli, srv["addr"])),
                   timeout=20)
    assert r.stdout.strip() == srv["id"][:12]
    assert get(fcli, lead.service("fsrv")["vip"]).stdout.strip() == srv["id"][:12]
    # another network, same node as the client or as the server: refused
    assert get(bcli, srv["addr"]).returncode != 0
    assert get(bcli, lead.service("fsrv")["vip"]).returncode != 0
    assert get(dcli, srv["addr"]).returncode != 0
    ins = json.loads(lead.cli("network", "inspect", "front").stdout)[0]
    assert ins["services"] == ["fcli", "fsrv"]
    r = lead.cli("network", "rm", "front", check=False)
    assert r.returncode != 0 and "in use by service" in r.stderr, r.stderr


def test_bad_network_and_port_input(cluster, lead):
    def fails(*args, want):
        r = lead.cli(*args, check=False)
        assert r.returncode != 0 and want in r.stderr, (args, r.stderr)

    lead.cli("network", "create", "--subnet", "10.78.0.0/16", "one")
    fails("network", "create", "--subnet", "10.78.128.0/17", "two", want="overlaps network one")
    fails("network", "create", "--subnet", "10.42.5.0/24", "three", want="prefix must be /8 to /23")
    fails("network", "create", "--subnet", "10.42.0.0/20", "three", want="overlaps network bridge")
    fails("network", "create", "--subnet", cluster.prefix + ".0/23", "four",
          want="overlaps a network of this host")
    fails("network", "create", "--subnet", "nonsense", "five", want="CIDR")
    fails("network", "create", "one", want="already exists")
    fails("network", "create", "bridge", want="already exists")
    fails("network", "rm", "bridge", want="built-in")
    fails("network", "rm", "nope", want="not found")
    fails("service", "create", "--network", "nope", "busybox", "true", want="network nope not found")
    lead.cli("service", "create", *QUICK_STOP, "--name", "p1", "-p", "8090:80", "busybox", *WEB)
    fails("service", "create", "--name", "p2", "-p", "8090:81", "busybox", *WEB,
          want="port 8090/tcp is already published by service p1")
    fails("service", "create", "--name", "p3", "-p", "2377:80", "busybox", *WEB,
          want="cluster port")
    # the dev cluster's managers serve their dashboard on 8080
    fails("service", "create", "--name", "p3", "-p", "8080:80", "busybox", *WEB,
          want="port 8080/tcp is in use on this manager")
    fails("service", "create", "--name", "p4", "-p", "80:x", "busybox", *WEB,
          want="target port")
    fails("service", "create", "--name", "p5", "-p", "70000:80", "busybox", *WEB, want="65535")
    fails("service", "create", "--name", "p6", "-p", "published=1,target=2,mode=bogus", "busybox",
          *WEB, want="mode=ingress|host")
    fails("service", "create", "--name", "p7", "--network", "host", "-p", "8091:80", "busybox",
          *WEB, want="host network")
    names = [s["name"] for s in lead.api("GET", "/v1/services").json()]
    assert names == ["p1"], names
    # the same port over UDP is another port
    lead.cli("service", "create", *QUICK_STOP, "--name", "p8", "-p", "8090:80/udp", "busybox", "sleep",
             "1000")
    # update: add and remove ports
    lead.cli("service", "update", "--publish-add", "8092:80", "--publish-rm", "8090", "p1")
    ports = lead.service("p1")["spec"]["ports"]
    assert [p["published"] for p in ports] == [8092], ports
    fails("service", "update", "--publish-add", "8090:80/udp", "p1",
          want="port 8090/udp is already published by service p8")
    # ports given up (by update, by removal) can be taken again
    lead.cli("service", "create", *QUICK_STOP, "--name", "p9", "-p", "8090:80", "busybox", "sleep", "1000")
    lead.cli("service", "rm", "p1")
    lead.cli("service", "update", "--publish-add", "8092:80", "p9")
    assert [p["published"] for p in lead.service("p9")["spec"]["ports"]] == [8090, 8092]


def in_task_fs(task, *cmd):
    """A busybox applet in the task's network and mount namespaces and root:
    it reads the task's own /etc/resolv.conf."""
    return subprocess.run(["timeout", "8", "nsenter", "-t", str(task["pid"]), "-n", "-m", "-r",
                           "--", "/bin/busybox"] + list(cmd), capture_output=True, text=True,
                          timeout=30)


def test_dns_names_of_services(cluster, lead):
    lead.cli("service", "create", *QUICK_STOP, "--name", "dnsweb", "--replicas", "2", "busybox", *WEB)
    lead.cli("network", "create", "other")
    lead.cli("service", "create", *QUICK_STOP, "--name", "elsewhere", "--network", "other", "busybox",
             "sleep", "1000")
    lead.cli("service", "create", *QUICK_STOP, "--name", "dnsclient", "busybox", "sleep", "1000")
    web = running(lead, "dnsweb", 2)
    client = running(lead, "dnsclient", 1)[0]
    other = running(lead, "elsewhere", 1)[0]
    vip = lead.service("dnsweb")["vip"]
    r = in_task_fs(client, "cat", "/etc/resolv.conf")
    assert "nameserver 10.42." in r.stdout, r.stdout
    r = wait_until(lambda: (lambda r: r if vip in r.stdout else None)(
        in_task_fs(client, "nslookup", "dnsweb")), timeout=20)
    # DNS names match in any case (RFC 4343), as service names are unique regardless of case
    r = in_task_fs(client, "nslookup", "DnsWEB")
    assert vip in r.stdout, r.stdout
    r = in_task_fs(client, "nslookup", "tasks.dnsweb")
    assert {t["addr"] for t in web} <= set(r.stdout.split()), r.stdout
    # the name works for real traffic through the virtual IP
    r = in_task_fs(client, "wget", "-q", "-O", "-", "http://dnsweb/index.html")
    assert r.stdout.strip() in {t["id"][:12] for t in web}, (r.stdout, r.stderr)
    # a task of another network does not see the service's name
    r = in_task_fs(other, "nslookup", "dnsweb")
    assert vip not in r.stdout, r.stdout
    r = in_task_fs(client, "nslookup", "elsewhere")
    assert lead.service("elsewhere")["vip"] not in r.stdout, r.stdout


def test_unhealthy_task_leaves_the_rotation(cluster, lead):
    lead.cli("service", "create", *QUICK_STOP, "--name", "hc", "--replicas", "2", "-p", "8083:80",
             "--health-cmd", "test -f /tmp/ok", "--health-interval", "200ms",
             "--health-retries", "2", "busybox", "sh", "-c",
             "touch /tmp/ok && hostname > /tmp/index.html && exec httpd -f -p 80 -h /tmp")
    wait_until(lambda: [t.get("health") for t in lead.running_tasks("hc")] == ["healthy"] * 2,
               timeout=30, msg=lambda: lead.tasks("hc"))
    tasks = lead.running_tasks("hc")
    node = cluster.nodes[1].addr
    wait_until(lambda: len({try_get(node, 8083) for _ in range(10)} - {None}) == 2, timeout=20)
    victim = tasks[0]
    r = in_task_fs(victim, "rm", "/tmp/ok")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: any(t["id"] == victim["id"] and t.get("health") == "unhealthy"
                           for t in lead.tasks("hc")), timeout=20, msg=lambda: lead.tasks("hc"))
    # from now on no answer comes from the unhealthy task
    wait_until(lambda: all(try_get(node, 8083) != victim["id"][:12] for _ in range(10)),
               timeout=10)
    assert victim["id"][:12] not in {try_get(node, 8083) for _ in range(20)}
    # and a new healthy task takes its place
    wait_until(lambda: len([t for t in lead.running_tasks("hc") if t.get("health") == "healthy"
                            and t["id"] != victim["id"]]) == 2, timeout=30)
