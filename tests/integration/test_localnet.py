"""route_localnet (the kube-proxy CVE-2020-8558 pattern): published ports
answer on 127.0.0.1, which needs route_localnet=1; while it is 1, packets to
127.0.0.0/8 from other interfaces are dropped, and the value found before is
put back when the last published port goes and at leave. Everything happens
in the namespaces of a dev cluster: the host's own setting is not touched."""
import subprocess
import sys

import pytest

from cluster import Cluster
from conftest import QUICK_STOP, wait_until

WEB = ["sh", "-c", "hostname > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]

# Sends one TCP SYN as a raw Ethernet frame (so the sender's kernel does not
# turn 127.0.0.1 into its own loopback) to DST_IP:PORT via the peer with
# DST_MAC, from the interface holding SRC_IP; prints "answered" when a SYN-ACK
# or RST comes back within a few seconds, else "silent".
PROBE = r"""
import fcntl, os, random, socket, struct, sys, time
dst_mac, dst_ip, port, src_ip, ifname = sys.argv[1:6]
port = int(port)

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((ifname, 0))
src_mac = s.getsockname()[4]
sport = random.randint(20000, 60000)
src, dst = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
tcp = struct.pack("!HHIIBBHHH", sport, port, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
tcp = tcp[:16] + struct.pack("!H", csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
frame = bytes.fromhex(dst_mac.replace(":", "")) + src_mac + b"\x08\x00" + ip + tcp
s.settimeout(0.2)
end = time.time() + 3
for attempt in range(3):
    s.send(frame)
    until = time.time() + 1
    while time.time() < until:
        try:
            pkt = s.recv(2048)
        except socket.timeout:
            continue
        iph = pkt[14:34]
        if len(pkt) < 54 or iph[9] != 6:
            continue
        sp, dp = struct.unpack("!HH", pkt[34:38])
        flags = pkt[47]
        if sp == port and dp == sport and flags & 0x14:
            print("answered")
            sys.exit(0)
print("silent")
"""

LISTENER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""


def in_ns(netns, *cmd, **kw):
    return subprocess.run(["nsenter", "--net=/run/netns/" + netns, "--"] + list(cmd),
                          capture_output=True, text=True, timeout=60, **kw)


def localnet_values(node):
    r = in_ns(node.netns, "sh", "-c", "grep . /proc/sys/net/ipv4/conf/*/route_localnet")
    assert r.returncode == 0, r
    return dict(line.rsplit(":", 1) for line in r.stdout.split())


def unchanged(node, before):
    """The values found before, on the interfaces there still are; interfaces
    made since (bridge, veths) have the default's."""
    now = localnet_values(node)
    default = before["/proc/sys/net/ipv4/conf/default/route_localnet"]
    return all(now[k] == v for k, v in before.items() if k in now) and \
        all(v == default for k, v in now.items() if k not in before) and \
        now["/proc/sys/net/ipv4/conf/all/route_localnet"] == \
        before["/proc/sys/net/ipv4/conf/all/route_localnet"]


def link_of(netns, addr):
    """(interface, MAC) holding addr in the namespace."""
    r = in_ns(netns, "ip", "-o", "addr", "show")
    for line in r.stdout.splitlines():
        fields = line.split()
        if fields[2] == "inet" and fields[3].split("/")[0] == addr:
            ifname = fields[1].split("@")[0]
            link = in_ns(netns, "ip", "-o", "link", "show", ifname).stdout.split()
            return ifname, link[link.index("link/ether") + 1]
    raise AssertionError("no interface with %s in %s: %s" % (addr, netns, r.stdout))


def probe(sender, target, dst_ip, port):
    """Does target answer a SYN to dst_ip:port sent to its MAC from sender's namespace?"""
    _, target_mac = link_of(target.netns, target.addr)
    ifname, _ = link_of(sender.netns, sender.addr)
    r = in_ns(sender.netns, sys.executable, "-c", PROBE, target_mac, dst_ip, str(port),
              sender.addr, ifname)
    assert r.returncode == 0, r
    return r.stdout.strip()


@pytest.fixture
def cluster(rootfs_tar):
    c = Cluster(managers=1, workers=1, rootfs_tar=rootfs_tar)
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture
def listeners(cluster):
    """Listeners in the manager's namespace: one host-local on 127.0.0.1, one
    on its address (the probe's control)."""
    node = cluster.leader
    procs = []
    try:
        for addr, port in (("127.0.0.1", 9931), (node.addr, 9932)):
            p = subprocess.Popen(["nsenter", "--net=/run/netns/" + node.netns, "--",
                                  sys.executable, "-c", LISTENER, addr, str(port)],
                                 stdout=subprocess.PIPE, text=True)
            procs.append(p)
            assert p.stdout.readline().strip() == "ready"
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_route_localnet_restored_and_127_never_reachable_from_outside(cluster, listeners):
    lead, other = cluster.nodes
    # a new namespace inherits the host's value: start from the kernel's default
    r = in_ns(lead.netns, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/conf/all/route_localnet")
    assert r.returncode == 0, r
    before = localnet_values(lead)
    assert before["/proc/sys/net/ipv4/conf/all/route_localnet"] == "0", before
    # the probe works: the listener on the node's address answers
    assert probe(other, lead, lead.addr, 9932) == "answered"
    assert probe(other, lead, "127.0.0.1", 9931) == "silent"

    # no published port: route_localnet is left alone
    lead.cli("service", "create", *QUICK_STOP, "--name", "plain", "busybox", "sleep", "1000")
    lead.wait_running("plain", 1)
    assert unchanged(lead, before), localnet_values(lead)

    lead.cli("service", "create", *QUICK_STOP, "--name", "pub", "-p", "8095:80", "busybox", *WEB)
    lead.wait_running("pub", 1)
    wait_until(lambda: localnet_values(lead)["/proc/sys/net/ipv4/conf/all/route_localnet"] == "1",
               timeout=20)
    # published ports answer on 127.0.0.1 of the node...
    r = wait_until(lambda: (lambda r: r if r.returncode == 0 else None)(
        in_ns(lead.netns, "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:8095/index.html")),
        timeout=20)
    assert r.stdout.strip()
    # ...but 127/8 is not reachable from another interface
    assert probe(other, lead, "127.0.0.1", 9931) == "silent"

    # the last published port goes: the value found before is back
    lead.cli("service", "rm", "pub")
    wait_until(lambda: unchanged(lead, before), timeout=20,
               msg=lambda: localnet_values(lead))

    lead.cli("service", "update", "--publish-add", "8096:80", "plain")
    wait_until(lambda: localnet_values(lead)["/proc/sys/net/ipv4/conf/all/route_localnet"] == "1",
               timeout=20)
    for node in reversed(cluster.nodes):
        node.cli("swarm", "leave", "--force", timeout=120)
    # after leaving: the value found before, and still nothing answers on 127/8 from outside
    assert unchanged(lead, before), localnet_values(lead)
    assert probe(other, lead, "127.0.0.1", 9931) == "silent"
    assert probe(other, lead, lead.addr, 9932) == "answered"
