"""The web dashboard (--dashboard-addr): tokens, assets, the event stream, and
browser tests (tests/ui/dashboard.test.mjs: headless Chromium driven by
playwright-core) against a real 1-manager, 2-worker dev cluster."""
import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from cluster import Cluster
from conftest import ROOT, SHOAL_BIN, dashboard_daemon, end_daemon, wait_until

UI_TESTS = os.path.join(ROOT, "tests", "ui")
CHROMIUM = "/usr/bin/chromium"
# The browser test's screenshots: docs/screenshots (the README's and docs' pictures) only when
# asked (SHOAL_SCREENSHOT_DIR=docs/screenshots), else a directory of the run's, so that a test
# run leaves the tracked pictures alone.
SCREENSHOTS = os.path.abspath(os.environ.get("SHOAL_SCREENSHOT_DIR") or
                              tempfile.mkdtemp(prefix="shoal-screenshots-"))


def http_get(port, path, headers=None, method="GET", body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def bearer(token):
    return {"Authorization": "Bearer " + token}


@pytest.fixture(scope="module")
def dash():
    """A one-node swarm with the dashboard on 127.0.0.1."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = dashboard_daemon(tmp)
    yield d
    end_daemon(d, tmp)


def test_url_names_the_address_and_tokens_survive_a_restart(dash):
    url = dash.cli("dashboard", "url").stdout.strip()
    assert url == "http://127.0.0.1:%d/ui/#token=%s" % (dash.dashboard_port, dash.ro)
    assert dash.ro != dash.admin and len(dash.ro) == 32
    assert oct(os.stat(os.path.join(dash.state_dir, "dashboard.json")).st_mode & 0o777) == "0o600"
    dash.restart()
    assert dash.cli("dashboard", "url", "--admin").stdout.strip().endswith("#token=" + dash.admin)


def test_url_route_is_local_only_and_needs_the_flag(dash, bare_daemon):
    status, _, _ = http_get(dash.dashboard_port, "/v1/dashboard/url?admin=1", bearer(dash.ro))
    assert status in (400, 403)
    r = bare_daemon.cli("dashboard", "url", check=False)
    assert r.returncode == 1 and "--dashboard-addr" in r.stderr


def test_assets_have_types_and_cache_headers(dash):
    status, h, body = http_get(dash.dashboard_port, "/ui/")
    assert status == 200 and h["Content-Type"].startswith("text/html")
    assert h["Cache-Control"] == "no-cache" and b"app.js?v=" in body and b"{{VERSION}}" not in body
    status, h, body = http_get(dash.dashboard_port, "/ui/app.js")
    assert status == 200 and h["Content-Type"].startswith("text/javascript")
    assert "immutable" in h["Cache-Control"] and b"EventSource" in body
    assert http_get(dash.dashboard_port, "/ui/style.css")[1]["Content-Type"].startswith("text/css")
    assert http_get(dash.dashboard_port, "/ui/nope.js")[0] == 404
    status, h, _ = http_get(dash.dashboard_port, "/")
    assert status == 302 and h["Location"] == "/ui/"


def test_tokens_gate_the_api(dash):
    port = dash.dashboard_port
    for headers in ({}, bearer("x" * 32), bearer(dash.ro[:-1] + "0" if dash.ro[-1] != "0" else dash.ro[:-1] + "1")):
        status, h, body = http_get(port, "/v1/nodes", headers)
        assert status == 401 and b"access denied" in body and h["WWW-Authenticate"] == "Bearer"
    assert http_get(port, "/v1/nodes", bearer(dash.ro))[0] == 200
    assert http_get(port, "/v1/nodes?token=" + dash.ro)[0] == 200
    spec = b'{"name":"x","image":"busybox","replicas":1}'
    status, _, body = http_get(port, "/v1/services", bearer(dash.ro), "POST", spec)
    assert status == 403 and b"read-only" in body
    # the admin token writes (the image is missing: the API's own answer, past the gate)
    status, _, body = http_get(port, "/v1/services", bearer(dash.admin), "POST", spec)
    assert status not in (401, 403), body
    # the jobs' views read with the read-only token; OAR's delete is a write
    for path in ("/v1/jobs/gantt", "/v1/resources", "/oarapi/resources.json"):
        assert http_get(port, path, bearer(dash.ro))[0] == 200, path
    status, _, body = http_get(port, "/oarapi/jobs/1.json", bearer(dash.ro), "DELETE")
    assert status == 403 and b"read-only" in body
    assert http_get(port, "/oarapi/jobs/1.json", bearer(dash.admin), "DELETE")[0] == 404
    # local-socket-only routes stay local even for the admin token
    assert http_get(port, "/v1/swarm/admin-cert", bearer(dash.admin))[0] == 403


def read_events(sock, want, timeout=5):
    """Reads the SSE stream until `want` 'event: change' blocks arrived."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while data.count(b"event: change") < want and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_event_stream_announces_changes_on_both_listeners(dash):
    node_id = dash.api("GET", "/v1/info").json()["node_id"]
    tcp = socket.create_connection(("127.0.0.1", dash.dashboard_port))
    tcp.sendall(b"GET /v1/events?token=%s HTTP/1.1\r\nHost: x\r\n\r\n" % dash.ro.encode())
    unix = socket.socket(socket.AF_UNIX)
    unix.connect(dash.sock)
    unix.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        for s in (tcp, unix):
            first = read_events(s, 1)
            assert b"text/event-stream" in first and b'data: {"version":' in first
        # a burst of changes: coalesced, but the last one is announced
        for i in range(5):
            assert dash.api("POST", "/v1/nodes/%s/update" % node_id,
                            {"labels_add": {"burst": str(i)}}).status == 200
        for s in (tcp, unix):
            data = read_events(s, 1)
            assert b"event: change" in data, data
    finally:
        tcp.close()
        unix.close()
    # the daemon noticed the readers leaving and keeps serving
    assert http_get(dash.dashboard_port, "/v1/nodes", bearer(dash.ro))[0] == 200


# ---- the browser ----

def browser_tools():
    """node, npm, Chromium and playwright-core (npm-installed into tests/ui): a
    missing one fails the test with what to install (scripts/test.sh does it)."""
    missing = [t for t in ("node", "npm") if shutil.which(t) is None]
    if not os.access(CHROMIUM, os.X_OK):
        missing.append("chromium (%s)" % CHROMIUM)
    if missing:
        pytest.fail("browser tests need %s: run scripts/deps.sh (apt-get install chromium nodejs "
                    "npm)" % ", ".join(missing))
    if not os.path.isdir(os.path.join(UI_TESTS, "node_modules", "playwright-core")):
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=UI_TESTS,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            pytest.fail("npm install in tests/ui failed (playwright-core):\n%s%s"
                        % (r.stdout, r.stderr))


@pytest.fixture(scope="module")
def dash_cluster(rootfs_tar):
    c = Cluster(managers=1, workers=2, rootfs_tar=rootfs_tar)
    try:
        lead = c.leader
        # restart node-1 with the dashboard on its namespace's loopback
        lead.dashboard_port = 8080
        lead.extra_args = ["--dashboard-addr", "127.0.0.1:%d" % lead.dashboard_port]
        lead.restart()
        c.wait_nodes_ready(3, timeout=30)
        yield c
    finally:
        c.destroy()


def test_dashboard_in_a_browser(dash_cluster):
    browser_tools()
    c = dash_cluster
    lead = c.leader
    lead.cli("service", "create", "--name", "web", "--replicas", "4", "--stop-grace-period", "1s",
             "-p", "8090:80", "busybox", "sleep", "1000")
    lead.cli("service", "create", "--name", "cache", "--replicas", "2", "--stop-grace-period",
             "1s", "busybox", "sleep", "1000")
    lead.wait_running("web", 4, timeout=60)
    lead.wait_running("cache", 2, timeout=60)
    token = lead.dashboard_token()
    env = dict(os.environ, DASHBOARD_BASE="http://127.0.0.1:%d" % lead.dashboard_port,
               DASHBOARD_TOKEN=token, SHOAL_BIN=SHOAL_BIN, SHOAL_SOCK=lead.sock, SERVICE="web",
               HOSTNAMES=",".join(n["hostname"] for n in c.nodes_view()),
               SCREENSHOT_DIR=SCREENSHOTS, CHROMIUM=CHROMIUM)
    # The dashboard listens on node-1's loopback: the browser runs in its namespace.
    r = subprocess.run(["ip", "netns", "exec", lead.netns, "node", "--test",
                        "--test-reporter=spec", os.path.join(UI_TESTS, "dashboard.test.mjs")],
                       cwd=UI_TESTS, env=env, capture_output=True, text=True, timeout=300)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, "browser tests failed:\n%s\n%s\ndaemon log:\n%s" % (
        r.stdout[-6000:], r.stderr[-3000:], lead.log_tail())
    for name in ("visualizer", "nodes", "services", "events", "scaled", "denied", "gantt",
                 "resources"):
        assert os.path.getsize(os.path.join(SCREENSHOTS, "dashboard-%s.png" % name)) > 1000
