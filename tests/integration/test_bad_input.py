"""Bad input through the CLI and straight to the API: a clear message, a
non-zero exit / 4xx status, the state unchanged, and the daemon still up."""
import json

import pytest

from conftest import wait_until

GRACE = ("--stop-grace-period", "1s")


@pytest.fixture(scope="module")
def baseline(module_daemon):
    d = module_daemon
    d.cli("service", "create", "--name", "web", "--replicas", "2", *GRACE, "busybox", "sleep", "1000")
    d.wait_running("web", 2)
    wait_until(lambda: d.service("web")["replicas_running"] == 2)
    return d


def state(d):
    svcs = d.cli_json("service", "ls")
    insp = json.loads(d.cli("service", "inspect", "web").stdout)
    tasks = sorted((t["id"], t["state"], t["desired_state"]) for t in d.api("GET", "/v1/tasks").json())
    imgs = d.api("GET", "/v1/images").json()
    nets = d.api("GET", "/v1/networks").json()
    return svcs, insp, tasks, imgs, nets


@pytest.fixture
def unchanged(baseline):
    """Yields the daemon; checks afterwards that nothing changed and that it still answers."""
    d = baseline
    before = state(d)
    yield d
    assert d.api("GET", "/v1/info").status == 200
    after = state(d)
    if after != before:
        # put the baseline back so that the next tests are not affected
        for s in d.api("GET", "/v1/services").json():
            if s["name"] != "web":
                d.api("DELETE", "/v1/services/" + s["id"])
        wait_until(lambda: len(d.api("GET", "/v1/tasks").json()) == len(before[2]))
    assert after == before


def expect_cli_error(d, args, *fragments):
    r = d.cli(*args, check=False)
    assert r.returncode != 0, (args, r)
    assert r.stderr.strip(), (args, r)
    for f in fragments:
        assert f in r.stderr, (args, r.stderr)
    return r


# ---- CLI ----

def test_create_unknown_image(unchanged):
    expect_cli_error(unchanged, ["service", "create", "--name", "x", "nosuch:img", "true"], "No such image")


@pytest.mark.parametrize("cmd", [
    ["service", "ps", "nosvc"],
    ["service", "scale", "nosvc=2"],
    ["service", "rm", "nosvc"],
    ["service", "inspect", "nosvc"],
    ["service", "update", "--replicas", "3", "nosvc"],
    ["service", "logs", "nosvc"],
])
def test_unknown_service(unchanged, cmd):
    expect_cli_error(unchanged, cmd, "nosvc", "not found")


def test_duplicate_name(unchanged):
    expect_cli_error(unchanged, ["service", "create", "--name", "web", "busybox", "true"], "already exists")


@pytest.mark.parametrize("flags,fragment", [
    (["--replicas", "-1"], "replicas"),
    (["--replicas", "x"], "replicas"),
    (["--limit-memory", "12Q"], "limit-memory"),
    (["--limit-cpu", "0"], "cpu"),
    (["--limit-cpu", "abc"], "limit-cpu"),
    (["--stop-grace-period", "10"], "stop-grace-period"),
    (["--restart-condition", "sometimes"], "restart"),
    (["--restart-delay", "soon"], "restart-delay"),
    (["--mode", "sideways"], "mode"),
    (["--mount", "type=nfs,dst=/x"], "mount"),
    (["--mount", "type=bind,src=relative/path,dst=/x"], "absolute"),
    (["--constraint", "node.role=manager"], "constraint"),
    (["--constraint", "foo==bar"], "foo"),
    (["--constraint", "node.role==king"], "node.role"),
    (["--limit-memory", "1k"], "memory"),
    (["--name", "bad name!"], "invalid service name"),
    (["--mount", "type=bind,src=/tmp"], "target"),
])
def test_bad_create_flags(unchanged, flags, fragment):
    expect_cli_error(unchanged, ["service", "create", "--name", "bad", *flags, "busybox", "true"], fragment)


@pytest.mark.parametrize("cmd,fragment", [
    (["service", "scale", "web=x"], 'invalid replicas "x"'),
    (["service", "scale", "web=-1"], 'invalid replicas "-1"'),
    (["service", "scale", "web"], "web"),
    (["service", "update", "--replicas", "-1", "web"], "replicas"),
    (["service", "update", "--image", "nosuch:img", "web"], "No such image"),
    (["service", "update", "--env-add", "NOEQUALS", "web"], "NOEQUALS"),
    (["service", "logs", "--tail", "x", "web"], "tail"),
    (["service", "create", "--name", "noimg"], "requires at least 1 argument"),
    (["service", "create", "--bogus-flag", "busybox"], "bogus-flag"),
])
def test_bad_other_commands(unchanged, cmd, fragment):
    expect_cli_error(unchanged, cmd, fragment)


def test_image_rm_in_use(unchanged):
    expect_cli_error(unchanged, ["image", "rm", "busybox:latest"], "service web uses it")


# ---- API ----

def api_error(d, method, path, status, *fragments, **kw):
    r = d.api(method, path, **kw)
    assert r.status == status, (method, path, r)
    msg = r.json()["message"]
    assert msg, r
    for f in fragments:
        assert f in msg, (f, msg)
    return msg


def test_api_malformed_json(unchanged):
    api_error(unchanged, "POST", "/v1/services", 400, "malformed JSON",
              raw=b'{"image": "busybox", "args": [', headers={"Content-Type": "application/json"})
    api_error(unchanged, "POST", "/v1/services", 400, "malformed JSON", raw=b"not json at all")
    api_error(unchanged, "POST", "/v1/services/web/update", 400, "malformed JSON", raw=b"{,}")
    api_error(unchanged, "POST", "/v1/services/web/scale", 400, raw=b"{replicas: 3}")
    api_error(unchanged, "POST", "/v1/swarm/init", 400, raw=b"{")
    api_error(unchanged, "POST", "/v1/containers/run", 400, raw=b"[1,")


@pytest.mark.parametrize("body", [b"[]", b'"busybox"', b"42", b"null", b"true",
                                  b'[{"image": "busybox"}]'])
def test_api_not_an_object(unchanged, body):
    api_error(unchanged, "POST", "/v1/services", 400, raw=body)
    api_error(unchanged, "POST", "/v1/services/web/update", 400, raw=body)
    api_error(unchanged, "POST", "/v1/services/web/scale", 400, raw=body)


def test_api_empty_body(unchanged):
    api_error(unchanged, "POST", "/v1/services", 400, raw=b"")
    api_error(unchanged, "POST", "/v1/services/web/scale", 400, raw=b"")


def test_api_body_too_large(unchanged):
    big = json.dumps({"image": "busybox", "env": ["K=" + "x" * (1 << 20)]}).encode()
    r = unchanged.api("POST", "/v1/services", raw=big)
    assert r.status == 413, r
    r = unchanged.api("POST", "/v1/services/web/update", raw=big)
    assert r.status == 413, r


def test_api_body_just_under_limit_is_parsed(unchanged):
    """A large but allowed body is read whole and then rejected for its content, not its size."""
    body = json.dumps({"image": "busybox", "env": ["K=" + "x" * 1000], "pad": "y" * (1000 * 1000)}).encode()
    assert len(body) < (1 << 20)
    api_error(unchanged, "POST", "/v1/services", 400, "unknown field", raw=body)


@pytest.mark.parametrize("spec,fragment", [
    ({"image": "busybox", "colour": "blue"}, "unknown field 'colour'"),
    ({"image": "busybox", "mounts": [{"type": "bind", "source": "/tmp", "target": "/t", "bogus": 1}]},
     "unknown field"),
    ({"image": "busybox", "update_config": {"parallelism": 1, "nope": 2}}, "nope"),
    ({"image": "busybox", "limits": {"memory": 67108864, "gpus": 1}}, "gpus"),
])
def test_api_unknown_fields(unchanged, spec, fragment):
    api_error(unchanged, "POST", "/v1/services", 400, fragment, body=spec)


@pytest.mark.parametrize("spec", [
    {"image": 5},
    {"image": ""},
    {"name": "x"},
    {"image": "busybox", "name": 7},
    {"image": "busybox", "replicas": "3"},
    {"image": "busybox", "replicas": -1},
    {"image": "busybox", "replicas": 1.5},
    {"image": "busybox", "args": "sleep 1000"},
    {"image": "busybox", "args": ["sleep", 1000]},
    {"image": "busybox", "env": "A=1"},
    {"image": "busybox", "env": [1]},
    {"image": "busybox", "env": ["NOEQUALS"]},
    {"image": "busybox", "mounts": {"type": "bind"}},
    {"image": "busybox", "mounts": ["/tmp:/tmp"]},
    {"image": "busybox", "mounts": [{"type": "bind", "source": "/tmp", "target": "rel"}]},
    {"image": "busybox", "mounts": [{"type": "volume", "source": "../etc", "target": "/x"}]},
    {"image": "busybox", "mounts": [{"type": "bind", "source": "/tmp", "target": "/t", "readonly": "yes"}]},
    {"image": "busybox", "restart_condition": "sometimes"},
    {"image": "busybox", "restart_condition": 1},
    {"image": "busybox", "restart_delay_ms": -5},
    {"image": "busybox", "restart_delay_ms": "1s"},
    {"image": "busybox", "limits": {"cpus": 0}},
    {"image": "busybox", "limits": {"cpus": "1"}},
    {"image": "busybox", "limits": {"memory": 10}},
    {"image": "busybox", "limits": {"memory": "64m"}},
    {"image": "busybox", "limits": []},
    {"image": "busybox", "init": "yes"},
    {"image": "busybox", "mode": "sideways"},
    {"image": "busybox", "mode": "global", "replicas": 2},
    {"image": "busybox", "constraints": "node.role==manager"},
    {"image": "busybox", "constraints": ["node.role=manager"]},
    {"image": "busybox", "constraints": ["foo==bar"]},
    {"image": "busybox", "constraints": [5]},
    {"image": "busybox", "stop_grace_period_ms": -1},
    {"image": "busybox", "stop_grace_period_ms": "10s"},
    {"image": "busybox", "update_config": {"parallelism": -1}},
    {"image": "busybox", "update_config": "fast"},
    {"image": "busybox", "ports": "80:80"},
    {"image": "busybox", "ports": [80]},
    {"image": "busybox", "ports": [{"published": 80}]},
    {"image": "busybox", "ports": [{"published": "80", "target": 80}]},
    {"image": "busybox", "ports": [{"published": 80, "target": 0}]},
    {"image": "busybox", "ports": [{"published": 80, "target": 80, "protocol": "sctp"}]},
    {"image": "busybox", "ports": [{"published": 80, "target": 80, "mode": 1}]},
    {"image": "busybox", "ports": [{"published": 80, "target": 80, "extra": 1}]},
    {"image": "busybox", "ports": [{"published": 80, "target": 80},
                                   {"published": 80, "target": 81}]},
    {"image": "busybox", "network": 5},
    {"image": "busybox", "network": ""},
])
def test_api_wrong_types(unchanged, spec):
    api_error(unchanged, "POST", "/v1/services", 400, body=spec)


@pytest.mark.parametrize("spec,fragment", [
    ({"image": "busybox", "name": 123}, "name: expected a string"),
    ({"image": 5}, "image: expected a string"),
    ({"image": "busybox", "network": 5}, "network: expected a string"),
    ({"image": "busybox", "limits": {"memory": "lots"}}, "limits.memory: expected an integer"),
    ({"image": "busybox", "limits": {"cpus": "1"}}, "limits.cpus: expected a number"),
    ({"image": "busybox", "replicas": "3"}, "replicas: expected an integer"),
    ({"image": "busybox", "restart_condition": 1}, "restart_condition: expected a string"),
    ({"image": "busybox", "ports": [{"published": "80", "target": 80}]},
     "published: expected an integer"),
    ({"image": "busybox", "labels": ["a=b"]}, "labels must be an object of strings"),
    ({"image": "busybox", "labels": {"a": 1}}, "labels.a: expected a string"),
])
def test_api_wrong_types_say_what_was_expected(unchanged, spec, fragment):
    msg = api_error(unchanged, "POST", "/v1/services", 400, fragment, body=spec)
    assert "''" not in msg and "at least" not in msg, msg


def test_api_unknown_image_and_duplicate(unchanged):
    api_error(unchanged, "POST", "/v1/services", 404, "No such image", body={"image": "nosuch:img"})
    api_error(unchanged, "POST", "/v1/services", 409, "already exists", body={"image": "busybox", "name": "web"})


@pytest.mark.parametrize("patch,fragment", [
    ({"replicas": "3"}, "replicas"),
    ({"replicas": -2}, "replicas"),
    ({"image": "nosuch:img"}, "No such image"),
    ({"env_add": ["NOEQUALS"]}, "NOEQUALS"),
    ({"env_add": "A=1"}, "env_add"),
    ({"args": "sleep"}, "args"),
    ({"colour": "blue"}, "colour"),
    ({"update_config": {"parallelism": "x"}}, "parallelism"),
    ({"publish_add": "80:80"}, "publish_add"),
    ({"publish_add": [{"published": 80}]}, "a port needs a target"),
    ({"publish_rm": [80]}, "publish_rm"),
])
def test_api_bad_update(unchanged, patch, fragment):
    api_error(unchanged, "POST", "/v1/services/web/update", 400 if "image" not in patch else 404,
              fragment, body=patch)


@pytest.mark.parametrize("body", [{"replicas": "2"}, {"replicas": -1}, {"replicas": 2, "x": 1}, {},
                                  {"replicas": 2.5}, {"replicas": None}])
def test_api_bad_scale(unchanged, body):
    api_error(unchanged, "POST", "/v1/services/web/scale", 400, body=body)


def test_api_unknown_objects_and_routes(unchanged):
    d = unchanged
    api_error(d, "GET", "/v1/services/nosvc", 404, "nosvc")
    api_error(d, "DELETE", "/v1/services/nosvc", 404, "nosvc")
    api_error(d, "GET", "/v1/services/nosvc/tasks", 404)
    api_error(d, "POST", "/v1/services/nosvc/scale", 404, body={"replicas": 1})
    api_error(d, "POST", "/v1/services/nosvc/update", 404, body={"replicas": 1})
    api_error(d, "GET", "/v1/no/such/route", 404)
    api_error(d, "DELETE", "/v1/containers/nope", 404, "No such container")
    api_error(d, "DELETE", "/v1/images/nope:1", 404)
    api_error(d, "GET", "/v1/services/web/logs?tail=x", 400, "tail")
    r = d.api("PUT", "/v1/services")
    assert r.status == 405, r
    api_error(d, "POST", "/v1/images/import", 400, "name")
    api_error(d, "POST", "/v1/images/import?name=Bad%20Name", 400, raw=b"x" * 10)
    api_error(d, "POST", "/v1/images/load", 400, raw=b"")
    api_error(d, "POST", "/v1/images/load", 400, raw=b"garbage" * 100)
    api_error(d, "POST", "/v1/containers/run", 400, body={"args": ["true"]})
    api_error(d, "POST", "/v1/containers/run", 404, "No such image", body={"image": "nosuch", "args": ["true"]})


def test_api_garbage_http(unchanged):
    """Raw garbage on the socket does not take the daemon down."""
    import socket
    for payload in (b"\x00\x01\x02garbage\r\n\r\n", b"GET /v1/info HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                    b"POST /v1/services HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ima"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(unchanged.sock)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()
        assert unchanged.api("GET", "/v1/info").status == 200


def _chunked_post(d, path, body, chunk):
    from conftest import UnixHTTPConnection
    c = UnixHTTPConnection(d.sock)
    try:
        c.putrequest("POST", path)
        c.putheader("Transfer-Encoding", "chunked")
        c.putheader("Content-Type", "application/json")
        c.endheaders()
        for i in range(0, len(body), chunk):
            part = body[i:i + chunk]
            c.send(b"%x\r\n" % len(part) + part + b"\r\n")
        c.send(b"0\r\n\r\n")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_api_chunked_too_large(unchanged):
    big = json.dumps({"image": "busybox", "env": ["K=" + "x" * (2 << 20)]}).encode()
    status, body = _chunked_post(unchanged, "/v1/services", big, 65536)
    assert status == 413, body


def test_api_content_length_lie(unchanged):
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(unchanged.sock)
    s.sendall(b"POST /v1/services HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n{")
    assert b" 413 " in s.recv(500)
    s.close()


def test_api_chunked_body_accepted(baseline):
    d = baseline
    body = json.dumps({"image": "busybox", "name": "chunky", "args": ["sleep", "1000"],
                       "stop_grace_period_ms": 1000}).encode()
    status, resp = _chunked_post(d, "/v1/services", body, 7)
    assert status == 201, resp
    d.wait_running("chunky", 1)
    d.cli("service", "rm", "chunky")
    wait_until(lambda: not [t for t in d.api("GET", "/v1/tasks").json() if t["service_name"] == "chunky"])


@pytest.mark.parametrize("body,status,fragment", [
    ({}, 400, "invalid network name"),
    ({"name": 5}, 400, "name: expected a string"),
    ({"name": "a b"}, 400, "invalid network name"),
    ({"name": "n", "subnet": 10}, 400, "CIDR"),
    ({"name": "n", "subnet": "10.1.0.0/30"}, 400, "/8 to /23"),
    ({"name": "n", "colour": "red"}, 400, "colour"),
    ({"name": "bridge"}, 409, "already exists"),
])
def test_api_bad_network(unchanged, body, status, fragment):
    api_error(unchanged, "POST", "/v1/networks", status, fragment, body=body)


def test_names_unique_regardless_of_case(unchanged):
    """Names are unique regardless of case (swarmkit's rule) and found in any
    case: `Web` after `web` is refused with the reason, `service inspect WEB`
    finds `web`."""
    d = unchanged
    expect_cli_error(d, ["service", "create", "--name", "WEB", "busybox", "true"],
                     "service WEB already exists", "conflicts with service web",
                     "regardless of case")
    api_error(d, "POST", "/v1/services", 409, "regardless of case",
              body={"image": "busybox", "name": "wEb"})
    assert d.service("WEB")["id"] == d.service("web")["id"]
    api_error(d, "POST", "/v1/networks", 409, "conflicts with network bridge",
              body={"name": "BRIDGE"})


def test_network_names_unique_regardless_of_case(baseline):
    d = baseline
    d.cli("network", "create", "A_B.c-d")
    try:
        expect_cli_error(d, ["network", "create", "a_b.c-d"], "conflicts with network A_B.c-d")
        assert d.api("GET", "/v1/networks/a_b.C-D").json()["name"] == "A_B.c-d"
        names = [n["name"] for n in d.api("GET", "/v1/networks").json()]
        assert names.count("A_B.c-d") == 1 and "a_b.c-d" not in names, names
        # a service names the network in any case; its spec keeps the network's own name
        d.cli("service", "create", "--name", "oncase", "--network", "a_b.C-D", *GRACE, "busybox",
              "sleep", "1000")
        assert d.service("oncase")["spec"]["network"] == "A_B.c-d"
        assert d.api("GET", "/v1/networks/A_B.c-d").json()["services"] == ["oncase"]
    finally:
        d.cli("service", "rm", "oncase", check=False)
        wait_until(lambda: not [t for t in d.api("GET", "/v1/tasks").json()
                                if t["service_name"] == "oncase"], timeout=30)
        d.cli("network", "rm", "a_b.c-d")
    assert "A_B.c-d" not in [n["name"] for n in d.api("GET", "/v1/networks").json()]
