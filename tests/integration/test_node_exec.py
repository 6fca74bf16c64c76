"""Commands and files on node sets, Salt style (issue 16): `shoal node exec`
and `shoal node cp` on a dev cluster (one manager, two workers; each node a
daemon in its own network and UTS namespace, so `hostname` names the node,
while the filesystem is the host's)."""
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time

import pytest

from cluster import Cluster
from conftest import SHOAL_BIN, free_port, wait_until

NAMED = ["sh", "-c", 'echo "hello from $(hostname)"; echo "env $SHOAL_NODE"']


@pytest.fixture(scope="module")
def c():
    cl = Cluster(managers=1, workers=2)
    yield cl
    cl.destroy()


def node_exec(c, *args, via=None):
    return (via or c.leader).cli("node", "exec", *args, check=False, timeout=120)


def nodes_in(out):
    """The nodes whose prefixed lines appear in the output."""
    return {m.group(1) for m in re.finditer(r"^(node-\d+): hello from \1$", out, re.M)}


def test_exec_runs_on_every_node_with_prefixed_lines_and_a_summary(c):
    r = node_exec(c, "--", *NAMED)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for n in ("node-1", "node-2", "node-3"):
        assert "%s: hello from %s" % (n, n) in lines, r.stdout
        assert "%s: env %s" % (n, n) in lines, r.stdout
    assert lines[-1] == "3 nodes: 3 ok", r.stdout


def test_exec_target_forms(c):
    assert nodes_in(node_exec(c, "node-[12]", "--", *NAMED).stdout) == {"node-1", "node-2"}
    assert nodes_in(node_exec(c, "*-3", "--", *NAMED).stdout) == {"node-3"}
    assert nodes_in(node_exec(c, "-E", "node-[23]", "--", *NAMED).stdout) == {"node-2", "node-3"}
    # the regex matches whole names
    r = node_exec(c, "-E", "node", "--", *NAMED)
    assert r.returncode == 1 and "no node matches the target" in r.stderr, r.stderr
    assert nodes_in(node_exec(c, "-L", "node-1,node-3", "--", *NAMED).stdout) == {"node-1",
                                                                                "node-3"}
    assert nodes_in(node_exec(c, "--managers", "--", *NAMED).stdout) == {"node-1"}
    assert nodes_in(node_exec(c, "--workers", "--", *NAMED).stdout) == {"node-2", "node-3"}
    c.leader.cli("node", "update", "--label-add", "rack=top", "node-2")
    c.leader.cli("node", "update", "--label-add", "rack=bottom", "node-3")
    assert nodes_in(node_exec(c, "-G", "rack=top", "--", *NAMED).stdout) == {"node-2"}
    assert nodes_in(node_exec(c, "-G", "rack", "--", *NAMED).stdout) == {"node-2", "node-3"}
    # forms combine: all must match
    assert nodes_in(node_exec(c, "-G", "rack", "*-3", "--", *NAMED).stdout) == {"node-3"}


def test_a_failing_node_makes_the_exit_non_zero_and_group_prints_blocks(c):
    cmd = ["sh", "-c", 'echo "out of $(hostname)"; [ "$(hostname)" != node-3 ] || exit 3']
    r = node_exec(c, "--group", "--", *cmd)
    assert r.returncode == 1, r.stdout
    out = r.stdout.splitlines()
    for n in ("node-1", "node-2", "node-3"):
        i = out.index("%s:" % n)
        assert out[i + 1] == "    out of %s" % n, r.stdout
    assert out[-1] == "3 nodes: 2 ok, 1 failed (node-3: exit 3)", r.stdout
    assert "node-3: exit 3" in r.stderr


def test_timeout_kills_the_process_group(c):
    start = time.monotonic()
    r = node_exec(c, "--timeout", "2", "-L", "node-2", "--", "sh", "-c",
                  "sleep 313 & echo started; sleep 314")
    assert time.monotonic() - start < 20
    assert r.returncode == 1
    assert "node-2: started" in r.stdout
    assert r.stdout.splitlines()[-1] == "1 node: 0 ok, 1 failed (node-2: timed out)", r.stdout
    assert "timed out" in r.stderr
    # the background child went with its group
    wait_until(lambda: subprocess.run(["pgrep", "-f", "sleep 31[34]"]).returncode != 0,
               timeout=5)


def test_no_match_and_unknown_names_are_clear_errors(c):
    r = node_exec(c, "nothing*", "--", "true")
    assert r.returncode == 1 and "no node matches the target" in r.stderr, r.stderr
    r = node_exec(c, "-L", "node-1,node-9", "--", "true")
    assert r.returncode == 1 and "no node is named 'node-9'" in r.stderr, r.stderr
    r = node_exec(c, "-E", "node-(", "--", "true")
    assert r.returncode == 1 and "invalid regular expression" in r.stderr, r.stderr
    r = node_exec(c, "--", "/no/such/command")
    assert r.returncode == 1 and "cannot run '/no/such/command'" in r.stderr, r.stderr
    r = c.leader.cli("node", "exec", "node-1", check=False)
    assert r.returncode == 2 and "the command is missing" in r.stderr


def test_output_is_capped_per_node(c):
    r = node_exec(c, "-L", "node-2", "--", "sh", "-c", "yes 0123456789abcdef | head -c 3000000")
    assert r.returncode == 0, r.stderr
    assert "node-2: [output truncated at 1 MiB]" in r.stdout
    kept = sum(len(l) - len("node-2: ") + 1 for l in r.stdout.splitlines()
               if l.startswith("node-2: 0123"))
    assert 1024 * 1024 - 20 <= kept <= 1024 * 1024 + 20


def test_node_cp_pushes_a_file_with_its_mode(c, tmp_path):
    src = tmp_path / "tool.sh"
    src.write_text("#!/bin/sh\necho tool ran on $(hostname)\n")
    os.chmod(src, 0o750)
    dest = tmp_path / "dest"
    dest.mkdir()
    r = c.leader.cli("node", "cp", str(src), "--workers", str(dest) + "/", check=False)
    assert r.returncode == 0, r.stderr
    for n in ("node-2", "node-3"):
        assert "%s: %s/tool.sh (%d bytes, mode 0750)" % (n, dest, src.stat().st_size) \
            in r.stdout.splitlines(), r.stdout
    assert r.stdout.splitlines()[-1] == "2 nodes: 2 ok"
    # what landed runs on each targeted node
    r = node_exec(c, "--workers", "--", str(dest / "tool.sh"))
    assert r.returncode == 0, r.stderr
    assert {"node-2: tool ran on node-2", "node-3: tool ran on node-3"} <= set(
        r.stdout.splitlines())
    assert os.stat(dest / "tool.sh").st_mode & 0o7777 == 0o750
    # a file name as DEST, a glob target
    r = c.leader.cli("node", "cp", str(src), "node-1", str(dest / "renamed"))
    assert "node-1: %s/renamed" % dest in r.stdout and (dest / "renamed").read_bytes() == \
        src.read_bytes()
    # the cap
    big = tmp_path / "big"
    big.write_bytes(b"x" * (512 * 1024 + 1))
    r = c.leader.cli("node", "cp", str(big), str(dest) + "/", check=False)
    assert r.returncode == 1 and "larger than 512 KiB" in r.stderr, r.stderr
    r = c.leader.cli("node", "cp", str(src), "relative/path", check=False)
    assert r.returncode == 2 and "absolute path" in r.stderr


def test_every_call_is_an_event_with_who_what_and_where(c):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(c.leader.sock)
    s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while b"event: change" not in buf:  # subscribed
        buf += s.recv(4096)
    node_exec(c, "-L", "node-2,node-3", "--", "echo", "audited")
    deadline = time.monotonic() + 10
    while b"event: node-exec" not in buf and time.monotonic() < deadline:
        buf += s.recv(4096)
    s.close()
    m = re.search(rb"event: node-exec\r?\ndata: (.*)\r?\n", buf)
    assert m, buf
    ev = json.loads(m.group(1))
    assert ev["action"] == "exec" and ev["who"] == "local", ev
    assert ev["argv"] == ["echo", "audited"] and ev["nodes"] == ["node-2", "node-3"], ev


def test_admin_certificate_may_read_only_token_and_workers_may_not(c, tmp_path):
    """The admin certificate over TCP may; the read-only dashboard token, and a
    direct call of the node route with an admin or a worker certificate get 403."""
    lead = c.leader
    certs = str(tmp_path / "certs")
    lead.cli("swarm", "admin-cert", "-o", certs)
    host = "tcp://%s:2377" % lead.addr
    r = c.nodes[1].exec(SHOAL_BIN, "-H", host, "--tls-dir", certs, "node", "exec", "-L",
                        "node-3", "--", "hostname", check=False)
    assert r.returncode == 0 and "node-3: node-3" in r.stdout, r.stderr
    # who: the certificate's role and CN, in the manager's log (and its events stream)
    assert re.search(r'node exec by admin \S+: .*"argv":\["hostname"\]', lead.log_tail(200)), \
        lead.log_tail(30)
    # an admin certificate may not ask a node directly (node route: managers only)
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    ctx.check_hostname = False
    ctx.load_cert_chain(os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem"))
    for addr in (lead.addr, c.nodes[2].addr):
        conn = http.client.HTTPSConnection(addr, 2377, context=ctx, timeout=10)
        conn.request("POST", "/v1/node/exec", body=json.dumps({"argv": ["true"]}))
        assert conn.getresponse().status == 403
        conn.close()
    # a worker's certificate reaches a manager's node routes, never this one
    wtls = os.path.join(c.nodes[1].state_dir, "tls")
    wctx = ssl.create_default_context(cafile=os.path.join(wtls, "ca.crt"))
    wctx.check_hostname = False
    wctx.load_cert_chain(os.path.join(wtls, "node.crt"), os.path.join(wtls, "node.key"))
    conn = http.client.HTTPSConnection(lead.addr, 2377, context=wctx, timeout=10)
    conn.request("POST", "/v1/node/exec", body=json.dumps({"argv": ["true"]}))
    resp = conn.getresponse()
    assert resp.status == 403 and b"only managers" in resp.read()
    conn.close()
    # the read-only dashboard token: 403
    port = free_port()
    lead.stop()
    lead.extra_args = ["--dashboard-addr", "%s:%d" % (lead.addr, port)]
    lead.start()
    try:
        c.wait_nodes_ready(3, timeout=30)
        ro = lead.dashboard_token()
        body = json.dumps({"argv": ["true"]})
        conn = http.client.HTTPConnection(lead.addr, port, timeout=10)
        conn.request("POST", "/v1/nodes/exec", body=body,
                     headers={"Authorization": "Bearer " + ro})
        resp = conn.getresponse()
        assert resp.status == 403 and b"read-only" in resp.read()
        conn.close()
    finally:
        lead.stop()
        lead.extra_args = []
        lead.start()
        c.wait_nodes_ready(3, timeout=30)


def test_a_node_with_node_exec_false_refuses(c, tmp_path):
    """Last: a dev node restarted by the tests keeps its name in the cluster but not
    its UTS namespace (`hostname` then says the machine's name)."""
    w = c.nodes[2]
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"node-exec": False}))
    w.stop()
    w.extra_args = ["--config", str(cfg)]
    w.start()
    try:
        c.wait_nodes_ready(3, timeout=30)
        r = node_exec(c, "--", "echo", "ok")
        assert r.returncode == 1
        assert {"node-1: ok", "node-2: ok"} <= set(r.stdout.splitlines()), r.stdout
        assert "node-3: ok" not in r.stdout
        assert re.search(r"node-3: error: .*node-exec\": false", r.stderr), r.stderr
        assert r.stdout.splitlines()[-1] == "3 nodes: 2 ok, 1 failed (node-3: refused)"
        r = c.leader.cli("node", "cp", "/etc/hostname", "node-3", "/tmp/", check=False)
        assert r.returncode == 1 and "refuses" in r.stderr
    finally:
        w.stop()
        w.extra_args = []
        w.start()
        c.wait_nodes_ready(3, timeout=30)
