"""Security regressions (issue 10): what each credential may call (the route
table's access levels), join-token rotation as a POST, and the network
listeners' limits (caps per listener and per address, request and idle
timeouts, TLS clients without a certificate)."""
import os
import re
import socket
import ssl
import subprocess
import tempfile

import pytest

from conftest import ROOT, SHOAL_BIN, dashboard_daemon, end_daemon, wait_until

# Short limits so that the tests see them act (the defaults are 1000/100/10 s/60 s).
MAX_CONNS = 30
MAX_PER_IP = 20
REQUEST_TIMEOUT = 2
IDLE_TIMEOUT = 3


@pytest.fixture(scope="module")
def sec():
    """A one-node swarm with the dashboard on 127.0.0.1 and short limits."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = dashboard_daemon(tmp, extra_args=["--max-connections", str(MAX_CONNS),
                                          "--max-connections-per-ip", str(MAX_PER_IP),
                                          "--request-timeout", str(REQUEST_TIMEOUT),
                                          "--idle-timeout", str(IDLE_TIMEOUT)])
    yield d
    end_daemon(d, tmp)


# ---- raw HTTP helpers: the status line only (streams never end) ----

def read_head(sock, timeout=15):
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def request(sock, method, path, token=None, body=b""):
    head = "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % (method, path, len(body))
    if token:
        head += "Authorization: Bearer %s\r\n" % token
    sock.sendall(head.encode() + b"\r\n" + body)


def status_of(port, method, path, token=None, body=b""):
    """(status, whole reply so far) of one request on a fresh dashboard connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        request(s, method, path, token, body)
        head = read_head(s)
    finally:
        s.close()
    m = re.match(rb"HTTP/1.1 (\d+)", head)
    assert m, head
    return int(m.group(1)), head


def closed_by_server(sock, timeout=60):
    """True once the server closed `sock` (EOF or reset), reading what comes."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        return True
    except socket.timeout:
        return False


def route_table():
    """(method, pattern, access) of every route in src/api/routes.c."""
    text = open(os.path.join(ROOT, "src", "api", "routes.c")).read()
    table = text[text.index("} routes[] = {"):]
    table = table[:table.index("};")]
    rows = re.findall(r'\{"(\w+)", "([^"]+)", \w+, (\w+), (?:true|false)\}', table)
    assert len(rows) > 30, rows
    return rows


def concrete(pattern):
    return pattern.replace("/*/", "/nosuch/").replace("/*", "/worker")


# ---- access levels ----

def test_read_only_token_against_every_route(sec):
    """The read-only dashboard token reads cluster state (READ) and gets 403 on
    every secret, every write, every node-only and local-only route."""
    port = sec.dashboard_port
    worker_token = sec.cli("swarm", "join-token", "-q", "worker").stdout.strip()
    manager_token = sec.cli("swarm", "join-token", "-q", "manager").stdout.strip()
    seen = []
    for method, pattern, access in route_table():
        path = concrete(pattern)
        status, head = status_of(port, method, path, sec.ro, b"{}" if method == "POST" else b"")
        seen.append((method, pattern, access, status))
        if access in ("READ", "PUBLIC"):
            assert status not in (401, 403), (method, pattern, head)
        else:
            assert status == 403 and b"read-only" in head, (method, pattern, access, head)
        assert worker_token.encode() not in head and manager_token.encode() not in head
    # the routes that matter most, by name
    assert ("GET", "/v1/swarm/join-token/*", "SECRET", 403) in seen
    assert ("POST", "/v1/swarm/join-token/*/rotate", "WRITE", 403) in seen
    # nothing changed: the tokens are the same
    assert sec.cli("swarm", "join-token", "-q", "worker").stdout.strip() == worker_token
    assert sec.cli("swarm", "join-token", "-q", "manager").stdout.strip() == manager_token


def test_admin_token_reads_secrets_but_not_local_routes(sec):
    port = sec.dashboard_port
    status, head = status_of(port, "GET", "/v1/swarm/join-token/manager", sec.admin)
    assert status == 200
    for method, pattern, access in route_table():
        if access == "LOCAL":
            status, head = status_of(port, method, concrete(pattern), sec.admin,
                                      b"{}" if method == "POST" else b"")
            assert status == 403, (method, pattern, head)


def test_no_get_changes_state_and_rotation_is_a_post(sec):
    before = sec.cli("swarm", "join-token", "-q", "worker").stdout.strip()
    r = sec.api("GET", "/v1/swarm/join-token/worker?rotate=1")
    assert r.status == 400 and "POST" in r.json()["message"], r
    assert sec.cli("swarm", "join-token", "-q", "worker").stdout.strip() == before
    # the CLI rotates with a POST (local socket) ...
    out = sec.cli("swarm", "join-token", "--rotate", "worker").stdout
    assert "Successfully rotated worker join token." in out
    after = sec.cli("swarm", "join-token", "-q", "worker").stdout.strip()
    assert after != before
    # ... and so does the admin dashboard token
    status, _ = status_of(sec.dashboard_port, "POST", "/v1/swarm/join-token/worker/rotate",
                          sec.admin)
    assert status == 200
    assert sec.cli("swarm", "join-token", "-q", "worker").stdout.strip() not in (before, after)


# ---- the cluster port: TLS without a client certificate ----

def tls_connect(port, source="127.0.0.1"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    try:
        return ctx.wrap_socket(raw)
    except Exception:
        raw.close()
        raise


def test_cluster_port_without_certificate_is_refused_and_closed(sec):
    """A bearer token means nothing on the cluster port: without a client
    certificate only joining is open; the refusal is a 403 and the end of
    the connection."""
    for method, path in (("GET", "/v1/swarm/join-token/manager"), ("GET", "/v1/nodes"),
                         ("POST", "/v1/swarm/join-token/worker/rotate"),
                         ("POST", "/v1/services")):
        s = tls_connect(sec.port)
        try:
            request(s, method, path, sec.admin)
            head = read_head(s)
            assert head.startswith(b"HTTP/1.1 403"), (path, head)
            assert b"client certificate" in head
            assert closed_by_server(s), path
        finally:
            s.close()


def test_cluster_port_closes_an_unfinished_request(sec):
    s = tls_connect(sec.port)
    try:
        s.sendall(b"POST /v1/cluster/join HTTP/1.1\r\nHost: x\r\nContent-Le")
        assert closed_by_server(s, timeout=REQUEST_TIMEOUT * 20)
    finally:
        s.close()


# ---- caps ----

def hold(port, n, source, tls=False):
    """Opens n connections that each send half a request; returns (held, refused)."""
    held, refused = [], 0
    for _ in range(n):
        try:
            if tls:
                s = tls_connect(port, source)
            else:
                s = socket.create_connection(("127.0.0.1", port), timeout=15,
                                             source_address=(source, 0))
            s.sendall(b"GET /v1/nodes HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            refused += 1
    return held, refused


def still_open(socks):
    """The sockets the server has not closed (a non-blocking peek)."""
    alive = []
    for s in socks:
        try:
            s.setblocking(False)
            data = s.recv(1, socket.MSG_PEEK) if not isinstance(s, ssl.SSLSocket) else s.recv(1)
            if data:
                alive.append(s)
        except (BlockingIOError, ssl.SSLWantReadError):
            alive.append(s)
        except (ConnectionResetError, OSError, ssl.SSLError):
            pass
    return alive


@pytest.mark.parametrize("listener", ["dashboard", "cluster"])
def test_connection_caps_and_the_unix_socket_still_answers(sec, listener):
    """Connections past the per-address cap, then past the listener's cap,
    are closed at once; the daemon keeps answering on its Unix socket; the
    held half-sent requests are closed after the request timeout."""
    port = sec.dashboard_port if listener == "dashboard" else sec.port
    tls = listener == "cluster"
    # not from 127.0.0.1: that is this node's own address, which the cluster
    # port lets past its caps (nodes' heartbeats must get through a flood)
    a, _ = hold(port, MAX_PER_IP + 5, "127.0.0.3", tls)
    b, _ = hold(port, MAX_CONNS - MAX_PER_IP + 5, "127.0.0.4", tls)
    try:
        if tls:
            node = tls_connect(port, "127.0.0.1")  # the cap is full: not for a node
            node.close()
        # what the server kept: at most the caps (refused ones are closed at once)
        wait_until(lambda: len(still_open(a)) <= MAX_PER_IP, timeout=30)
        wait_until(lambda: len(still_open(a)) + len(still_open(b)) <= MAX_CONNS, timeout=30)
        assert sec.cli("info").returncode == 0
        assert sec.api("GET", "/v1/info").status == 200
        assert ("http: refused a connection" if listener == "dashboard"
                else "cluster port: refused a connection") in sec.log_tail(400)
        # the half-sent requests time out; the listener serves again
        wait_until(lambda: not still_open(a) and not still_open(b), timeout=60)
    finally:
        for s in a + b:
            s.close()
    if tls:
        s = tls_connect(port)
        request(s, "GET", "/v1/nodes")
        assert read_head(s).startswith(b"HTTP/1.1 403")
        s.close()
    else:
        assert status_of(port, "GET", "/v1/nodes", sec.ro)[0] == 200


# ---- timeouts ----

def test_idle_connection_closed_but_event_stream_lives(sec):
    port = sec.dashboard_port
    stream = socket.create_connection(("127.0.0.1", port), timeout=15)
    stream.sendall(b"GET /v1/events?token=%s HTTP/1.1\r\nHost: x\r\n\r\n" % sec.ro.encode())
    assert b"text/event-stream" in read_head(stream)
    idle = socket.create_connection(("127.0.0.1", port), timeout=15)
    silent = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        request(idle, "GET", "/v1/info", sec.ro)
        assert read_head(idle).startswith(b"HTTP/1.1 200")
        # a keep-alive connection with nothing to do, and one that never sent
        # anything, are both closed by the daemon
        assert closed_by_server(idle, timeout=IDLE_TIMEOUT * 20)
        assert closed_by_server(silent, timeout=REQUEST_TIMEOUT * 20)
        # the event stream, older than both, still carries news
        node_id = sec.api("GET", "/v1/info").json()["node_id"]
        assert sec.api("POST", "/v1/nodes/%s/update" % node_id,
                       {"labels_add": {"idle": "1"}}).status == 200
        stream.settimeout(15)
        data = b""
        while b"event: change" not in data:
            chunk = stream.recv(65536)
            assert chunk, data
            data += chunk
    finally:
        for s in (stream, idle, silent):
            s.close()


@pytest.mark.parametrize("flag,value", [("--max-connections", "0"),
                                        ("--max-connections-per-ip", "-1"),
                                        ("--request-timeout", "10s"),
                                        ("--idle-timeout", "")])
def test_limit_flags_are_checked(flag, value):
    r = subprocess.run([SHOAL_BIN, "daemon", flag, value], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and flag in r.stderr and "whole number" in r.stderr, r


def test_cluster_port_without_certificate_cannot_upload(sec):
    """An upload from a peer without a certificate is not spooled to disk
    before the refusal: its bodies are small and kept in memory."""
    spool = os.path.join(sec.state_dir, "tmp")
    for path, size in (("/v1/images/import?name=x", 50 * 1024 * 1024),
                       ("/v1/images/load", 50 * 1024 * 1024),
                       ("/v1/cluster/join", 100 * 1024)):
        s = tls_connect(sec.port)
        try:
            s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % (path.encode(), size) + b"x" * 65536)
            head = read_head(s)
            assert head.startswith(b"HTTP/1.1 413"), (path, head)
            assert b"64 KiB" in head
        finally:
            s.close()
        assert not [f for f in os.listdir(spool) if f.startswith("upload-")]
    # the join route still works for what it needs (a small body): its own answer
    s = tls_connect(sec.port)
    try:
        request(s, "POST", "/v1/cluster/join", body=b'{"token":"SHOAL-1-x"}')
        head = read_head(s)
        assert not head.startswith(b"HTTP/1.1 413") and not head.startswith(b"HTTP/1.1 403"), head
    finally:
        s.close()


def test_dashboard_reads_no_body_without_a_token(sec):
    """A body without a token is refused at once (401), before it is read."""
    s = socket.create_connection(("127.0.0.1", sec.dashboard_port), timeout=15)
    try:
        s.sendall(b"POST /v1/services HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{")
        head = read_head(s)
        assert head.startswith(b"HTTP/1.1 401"), head
    finally:
        s.close()
    # with a token, the body is read and the API answers
    status, head = status_of(sec.dashboard_port, "POST", "/v1/services", sec.admin, b"{}")
    assert status == 400, head  # the spec's fault, past the gate
