"""Secrets and configs (issue 15): create/ls/inspect/rm as Docker Swarm's,
names unique regardless of case, data never shown for secrets nor to the
read-only dashboard token, size limit, encryption at rest."""
import base64
import glob
import http.client
import json
import os
import re
import tempfile

import pytest

from cluster import Cluster
from conftest import Daemon, dashboard_daemon, end_daemon, wait_until
from test_security import status_of

SECRET = b"s3cr3t-Pa55w0rd-\x01\x02-zebra-quokka"


@pytest.fixture(scope="module")
def sd(rootfs_tar):
    """A one-node swarm with the dashboard on 127.0.0.1, busybox imported."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = dashboard_daemon(tmp, rootfs_tar)
    yield d
    end_daemon(d, tmp)


def inspect(d, kind, name):
    return json.loads(d.cli(kind, "inspect", name).stdout)


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_secret_create_ls_inspect_rm(sd, tmp_path):
    sid = sd.cli("secret", "create", "db_pass", write(tmp_path, "pw", SECRET)).stdout.strip()
    assert len(sid) == 25
    out = sd.cli("secret", "ls").stdout
    assert "db_pass" in out and sid in out and "ID" in out
    listed = sd.cli_json("secret", "ls")
    assert [s["name"] for s in listed] == ["db_pass"]
    for view in [sd.cli("secret", "inspect", "db_pass").stdout,
                 sd.cli("secret", "inspect", sid[:8]).stdout,
                 sd.cli("secret", "ls", "--format", "json").stdout,
                 sd.api("GET", "/v1/secrets/db_pass").text]:
        assert "db_pass" in view
        assert "data" not in view and base64.b64encode(SECRET).decode() not in view
    # from stdin
    sd.cli("secret", "create", "from_stdin", "-", input="hello\n")
    assert inspect(sd, "secret", "from_stdin")[0]["name"] == "from_stdin"
    assert sd.cli("secret", "rm", "db_pass", "from_stdin").returncode == 0
    assert sd.cli_json("secret", "ls") == []
    r = sd.cli("secret", "inspect", "db_pass", check=False)
    assert r.returncode != 0 and "not found" in r.stderr


def test_config_inspect_shows_data(sd, tmp_path):
    sd.cli("config", "create", "nginx.conf", write(tmp_path, "c", b"worker_processes 1;\n"))
    [c] = inspect(sd, "config", "nginx.conf")
    assert base64.b64decode(c["data"]) == b"worker_processes 1;\n"
    assert [x["name"] for x in sd.cli_json("config", "ls")] == ["nginx.conf"]
    # configs and secrets are separate namespaces
    sd.cli("secret", "create", "nginx.conf", write(tmp_path, "s", b"x"))
    sd.cli("secret", "rm", "nginx.conf")
    sd.cli("config", "rm", "nginx.conf")


def test_secret_bad_input(sd, tmp_path):
    r = sd.cli("secret", "create", "nofile", str(tmp_path / "missing"), check=False)
    assert r.returncode != 0 and "missing" in r.stderr
    big = write(tmp_path, "big", b"x" * (500 * 1024 + 1))
    r = sd.cli("secret", "create", "big", big, check=False)
    assert r.returncode != 0 and "500 KB" in r.stderr
    # the server checks too (an API client bypassing the CLI)
    r = sd.api("POST", "/v1/secrets", {"name": "big",
                                       "data": base64.b64encode(b"x" * (500 * 1024 + 1)).decode()})
    assert r.status == 400 and "500 KB" in r.text
    assert sd.api("POST", "/v1/secrets", {"name": "e", "data": ""}).status == 400
    assert sd.api("POST", "/v1/secrets", {"name": "e", "data": "!!!!"}).status == 400
    assert sd.api("POST", "/v1/secrets", {"name": "e", "data": "eA==", "x": "1"}).status == 400
    r = sd.cli("secret", "create", "bad/name", write(tmp_path, "b", b"x"), check=False)
    assert r.returncode != 0 and "invalid secret name" in r.stderr
    exactly = write(tmp_path, "max", b"y" * (500 * 1024))
    sd.cli("secret", "create", "Token", exactly)
    r = sd.cli("secret", "create", "token", write(tmp_path, "t", b"other"), check=False)
    assert r.returncode != 0 and "regardless of case" in r.stderr, r.stderr
    r = sd.cli("secret", "create", "Token", write(tmp_path, "t", b"other"), check=False)
    assert r.returncode != 0 and "already exists" in r.stderr
    # found in another case, removed by its name
    assert inspect(sd, "secret", "TOKEN")[0]["name"] == "Token"
    sd.cli("secret", "rm", "token")
    assert sd.cli_json("secret", "ls") == []
    r = sd.cli("secret", "rm", "nosuch", check=False)
    assert r.returncode != 0 and "not found" in r.stderr


def test_read_only_token_never_reads_secret_data(sd, tmp_path):
    sd.cli("secret", "create", "ro_check", write(tmp_path, "s", SECRET))
    sd.cli("config", "create", "ro_conf", write(tmp_path, "c", b"conf-bytes"))
    port = sd.dashboard_port
    status, head = status_of(port, "GET", "/v1/secrets", sd.ro)
    assert status == 200
    status, head = status_of(port, "GET", "/v1/secrets/ro_check", sd.ro)
    assert status == 200 and SECRET not in head
    status, head = status_of(port, "GET", "/v1/configs/ro_conf", sd.ro)
    assert status == 403
    for path in ["/v1/configs", "/v1/secrets", "/v1/secrets/ro_check"]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        conn.request("GET", path, headers={"Authorization": "Bearer " + sd.ro})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 200 and b"ro_" in body, (path, body)
        assert b"data" not in body and base64.b64encode(b"conf-bytes") not in body, body
    status, head = status_of(port, "POST", "/v1/secrets", sd.ro, b'{"name":"x","data":"eA=="}')
    assert status == 403
    status, head = status_of(port, "DELETE", "/v1/secrets/ro_check", sd.ro)
    assert status == 403
    status, _ = status_of(port, "GET", "/v1/configs/ro_conf", sd.admin)
    assert status == 200
    sd.cli("secret", "rm", "ro_check")
    sd.cli("config", "rm", "ro_conf")


def files_holding(root, needles):
    """Paths of the files under root that hold any of the byte strings."""
    found = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if not os.path.isfile(p):
                continue
            with open(p, "rb") as f:
                data = f.read()
            if any(x in data for x in needles):
                found.append(p)
    return found


def test_secret_encrypted_at_rest(sd, tmp_path):
    """The secret's bytes (raw or base64) are in no file of the state dir:
    not the Raft log segments, not a snapshot; the data key is 0600."""
    secret = b"at-rest-" + os.urandom(12).hex().encode() + b"-plaintext"
    needles = [secret, base64.b64encode(secret), base64.b64encode(b"x" + secret)[4:-4],
               base64.b64encode(b"xy" + secret)[4:-4]]
    # a config is stored as given: the grep sees it (the check can fail)
    sd.cli("config", "create", "visible", write(tmp_path, "c", b"conf-" + secret))
    sd.cli("secret", "create", "at_rest", write(tmp_path, "s", secret))
    raft = os.path.join(sd.state_dir, "raft")
    assert files_holding(raft, needles), "the config should be found in the log"
    sd.cli("config", "rm", "visible")
    # enough entries for a snapshot (threshold 512), which holds the secret too
    for i in range(280):
        r = sd.api("POST", "/v1/configs", {"name": "filler%d" % i, "data": "eA=="})
        assert r.status == 201, r.text
    for i in range(280):
        assert sd.api("DELETE", "/v1/configs/filler%d" % i).status == 200
    snaps = [n for n in os.listdir(raft) if n.startswith("snapshot")]
    assert snaps, os.listdir(raft)
    assert files_holding(sd.state_dir, [secret, base64.b64encode(secret)]) == []
    key = os.path.join(sd.state_dir, "ca", "secrets.key")
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert inspect(sd, "secret", "at_rest")[0]["name"] == "at_rest"
    sd.cli("secret", "rm", "at_rest")



def test_ca_key_and_join_secrets_sealed_in_the_log(sd):
    """The CA's private key and the join tokens' secrets are in no file of the
    Raft log (segments, snapshots) in clear, before and after a rotation: the
    store keeps them sealed with the managers' data key (issue 10)."""
    raft = os.path.join(sd.state_dir, "raft")
    with open(os.path.join(sd.state_dir, "ca", "ca.key")) as f:
        key_lines = [l.encode() for l in f.read().splitlines() if l and not l.startswith("-----")]
    assert key_lines
    for rotate in (False, True):
        if rotate:
            sd.cli("swarm", "join-token", "--rotate", "worker")
        tokens = [sd.cli("swarm", "join-token", "-q", role).stdout.strip()
                  for role in ("worker", "manager")]
        secrets = [t.rsplit("-", 1)[1].encode() for t in tokens]
        assert all(len(x) >= 16 for x in secrets), tokens
        assert files_holding(raft, key_lines + secrets) == []
    # the cluster still signs: a service's task starts and the token answers
    assert sd.api("GET", "/v1/swarm/join-token/worker").status == 200

GRACE = ["--stop-grace-period", "1s", "--detach"]


def test_service_reads_secret_and_config(sd, tmp_path):
    sd.cli("secret", "create", "api_key", write(tmp_path, "k", SECRET))
    sd.cli("secret", "create", "other", write(tmp_path, "o", b"second-secret"))
    sd.cli("config", "create", "app.conf", write(tmp_path, "c", b"color=blue\n"))
    sd.cli("service", "create", "--name", "reader", *GRACE, "--secret", "API_KEY",
           "--secret", "source=other,target=/etc/other.txt,mode=0400,uid=100",
           "--config", "app.conf", "--config", "source=app.conf,target=/etc/app.conf",
           "busybox", "sh", "-c",
           "cat /run/secrets/api_key; echo; ls -ln /etc/other.txt; cat /etc/other.txt; echo; "
           "cat /app.conf /etc/app.conf; grep -c /run/secrets /proc/mounts; sleep 1000")
    sd.wait_running("reader", 1)
    want = SECRET.decode("latin-1")
    logs = wait_until(lambda: (lambda t: t if "color=blue" in t else None)(sd.logs("reader")),
                      timeout=30)
    assert SECRET.decode() in logs, logs
    assert "second-secret" in logs and "-r--------" in logs and " 100 " in logs, logs
    assert logs.count("color=blue") == 2, logs
    # the spec names the secret by its stored name; inspect shows who uses it
    spec = sd.service("reader")["spec"]
    assert [s["source"] for s in spec["secrets"]] == ["api_key", "other"]
    assert spec["secrets"][0]["target"] == "/run/secrets/api_key"
    assert inspect(sd, "secret", "api_key")[0]["services"] == ["reader"]
    # removal refused while in use
    r = sd.cli("secret", "rm", "api_key", check=False)
    assert r.returncode != 0 and "in use by service reader" in r.stderr, r.stderr
    r = sd.cli("config", "rm", "app.conf", check=False)
    assert r.returncode != 0 and "in use" in r.stderr
    # the data is on a tmpfs of the run dir, never in the state dir
    assert files_holding(sd.state_dir, [SECRET, b"second-secret"]) == []
    with open("/proc/mounts") as f:
        assert any(" tmpfs " in l and "/secrets/" in l for l in f)
    # rotation: a new secret replaces the old one
    sd.cli("secret", "create", "api_key_v2", write(tmp_path, "k2", b"rotated-value"))
    sd.cli("service", "update", "--secret-rm", "api_key", "--secret-add",
           "source=api_key_v2,target=api_key", "--detach", "reader")
    wait_until(lambda: "rotated-value" in sd.logs("reader"), timeout=60)
    sd.cli("secret", "rm", "api_key")  # no longer used
    sd.cli("service", "rm", "reader")
    wait_until(lambda: sd.tasks("reader") == [] if sd.api("GET", "/v1/services/reader").status == 200 else True)
    def unmounted():
        with open("/proc/mounts") as f:
            return not any("/secrets/" in l for l in f if sd.run_dir in l)
    wait_until(unmounted, timeout=30)
    for name in ["api_key_v2", "other"]:
        sd.cli("secret", "rm", name)
    sd.cli("config", "rm", "app.conf")


def test_service_secret_bad_input(sd, tmp_path):
    r = sd.cli("service", "create", "--name", "nosecret", *GRACE, "--secret", "missing",
               "busybox", "true", check=False)
    assert r.returncode != 0 and "secret not found: missing" in r.stderr, r.stderr
    r = sd.cli("service", "create", "--name", "badref", *GRACE, "--secret",
               "source=x,color=red", "busybox", "true", check=False)
    assert r.returncode != 0 and "color" in r.stderr
    r = sd.cli("service", "create", "--name", "badref", *GRACE, "--secret",
               "source=x,mode=999", "busybox", "true", check=False)
    assert r.returncode != 0 and "mode" in r.stderr
    assert sd.api("GET", "/v1/services/nosecret").status == 404


# ---- a cluster: the key reaches managers only, the data only nodes that use it ----

def container_pids(node):
    pids = []
    for rec in glob.glob(os.path.join(node.state_dir, "agent", "*.json")):
        with open(rec) as f:
            pids.append(json.load(f)["pid"])
    return pids


def test_cluster_secret_only_where_used(rootfs_tar, tmp_path):
    c = Cluster(managers=2, workers=2, rootfs_tar=rootfs_tar)
    try:
        lead, m2, w1, w2 = c.nodes
        key = open(os.path.join(lead.state_dir, "ca", "secrets.key"), "rb").read()
        # a joined manager has the managers' data key; workers have none
        assert open(os.path.join(m2.state_dir, "ca", "secrets.key"), "rb").read() == key
        for w in (w1, w2):
            assert not os.path.exists(os.path.join(w.state_dir, "ca", "secrets.key"))
        # created through the follower (forwarded to the leader)
        secret = b"cluster-" + os.urandom(8).hex().encode()
        m2.cli("secret", "create", "db", write(tmp_path, "s", secret))
        w1_id = c.node_id(w1)
        lead.cli("node", "update", "--label-add", "zone=a", w1_id)
        lead.cli("service", "create", "--name", "uses", "--constraint", "node.labels.zone==a",
                 "--secret", "db", "--stop-grace-period", "1s", "--detach", "busybox",
                 "sleep", "1000")
        ts = lead.wait_running("uses", 1, timeout=60)
        assert ts[0]["node_id"] == w1_id
        # the container on w1 reads it, through its own root
        pids = wait_until(lambda: container_pids(w1), timeout=30)
        with open("/proc/%d/root/run/secrets/db" % pids[0], "rb") as f:
            assert f.read() == secret
        # no node wrote it to disk; the worker without the task has no copy at all
        for n in c.nodes:
            assert files_holding(n.state_dir, [secret, base64.b64encode(secret)]) == [], n.name
        assert files_holding(w2.run_dir, [secret, base64.b64encode(secret)]) == []
        assert not os.path.exists(os.path.join(w2.run_dir, "secrets"))
        # a promoted worker gets the key with its manager certificate; demoted, it drops it
        w2_id = c.node_id(w2)
        lead.cli("node", "promote", w2_id)
        w2key = os.path.join(w2.state_dir, "ca", "secrets.key")
        wait_until(lambda: os.path.exists(w2key), timeout=30)
        assert open(w2key, "rb").read() == key
        assert os.stat(w2key).st_mode & 0o777 == 0o600
        lead.cli("node", "demote", w2_id)
        wait_until(lambda: not os.path.exists(w2key), timeout=30)
        lead.cli("service", "rm", "uses")
        wait_until(lambda: lead.cli("secret", "rm", "db", check=False).returncode == 0,
                   timeout=30)
    finally:
        c.destroy()


def test_autolock_unlock(bare_daemon, tmp_path):
    d = bare_daemon
    out = d.cli("swarm", "init", "--autolock", "--advertise-addr", "127.0.0.1:%d" % d.port,
                "--listen-addr", "127.0.0.1:%d" % d.port, "--default-addr-pool", d.pool).stdout
    d.swarm_active = True
    m = re.search(r"(SWMKEY-1-\S+)", out)
    assert m, out
    unlock_key = m.group(1)
    ca = os.path.join(d.state_dir, "ca")
    # only the sealed key is on disk
    assert not os.path.exists(os.path.join(ca, "secrets.key"))
    assert os.path.exists(os.path.join(ca, "secrets.key.locked"))
    d.cli("secret", "create", "before", write(tmp_path, "s", b"locked-secret"))
    # not locked while the daemon runs
    r = d.cli("swarm", "unlock", input=unlock_key + "\n", check=False)
    assert r.returncode != 0 and "not locked" in r.stderr
    d.restart()
    wait_until(lambda: d.api("GET", "/v1/info").json()["swarm"]["is_leader"], timeout=30)
    r = d.cli("secret", "create", "after", write(tmp_path, "s", b"x"), check=False)
    assert r.returncode != 0 and "locked" in r.stderr and "swarm unlock" in r.stderr, r.stderr
    # listing still works: names and ids are not locked
    assert [s["name"] for s in d.cli_json("secret", "ls")] == ["before"]
    r = d.cli("swarm", "unlock", input="SWMKEY-1-" + "A" * 44 + "\n", check=False)
    assert r.returncode != 0 and "invalid unlock key" in r.stderr, r.stderr
    r = d.cli("swarm", "unlock", input="garbage\n", check=False)
    assert r.returncode != 0 and "invalid unlock key" in r.stderr
    d.cli("swarm", "unlock", input=unlock_key + "\n")
    d.cli("secret", "create", "after", write(tmp_path, "s", b"x"))
    assert files_holding(d.state_dir, [b"locked-secret"]) == []
    d.cli("secret", "rm", "before", "after")


def test_unlock_key_show_and_rotate(bare_daemon, tmp_path):
    d = bare_daemon
    r = d.cli("swarm", "unlock-key", check=False)
    assert r.returncode != 0 and "not a swarm manager" in r.stderr, r.stderr
    out = d.cli("swarm", "init", "--autolock", "--advertise-addr", "127.0.0.1:%d" % d.port,
                "--listen-addr", "127.0.0.1:%d" % d.port, "--default-addr-pool", d.pool).stdout
    d.swarm_active = True
    old = re.search(r"(SWMKEY-1-\S+)", out).group(1)
    assert d.cli("swarm", "unlock-key", "-q").stdout.strip() == old
    assert old in d.cli("swarm", "unlock-key").stdout
    d.cli("secret", "create", "kept", write(tmp_path, "s", b"rotated-secret"))
    out = d.cli("swarm", "unlock-key", "--rotate").stdout
    assert out.startswith("Successfully rotated manager unlock key.\n"), out
    new = re.search(r"(SWMKEY-1-\S+)", out).group(1)
    assert new != old and d.cli("swarm", "unlock-key", "-q").stdout.strip() == new
    d.restart()
    wait_until(lambda: d.api("GET", "/v1/info").json()["swarm"]["is_leader"], timeout=30)
    # locked: the key is not shown, secrets are refused
    r = d.cli("swarm", "unlock-key", check=False)
    assert r.returncode != 0 and "locked" in r.stderr, r.stderr
    r = d.cli("swarm", "unlock", input=old + "\n", check=False)
    assert r.returncode != 0 and "invalid unlock key" in r.stderr, r.stderr
    d.cli("swarm", "unlock", input=new + "\n")
    assert d.cli("swarm", "unlock-key", "-q").stdout.strip() == new
    d.cli("secret", "create", "after", write(tmp_path, "s", b"x"))
    assert files_holding(d.state_dir, [b"rotated-secret"]) == []
    d.cli("secret", "rm", "kept", "after")


def _read(path):
    with open(path) as f:
        return f.read()


def _sealed_once_synced(locked):
    """The key file a joined manager got, once it has resealed it with the stored unlock key
    (its first tick after the join, within a second: a new seal of the same key): a change
    seen after this one is the rotation's."""
    first = _read(locked)
    try:
        wait_until(lambda: _read(locked) != first, timeout=3)
    except AssertionError:
        pass  # resealed before `first` was read
    return _read(locked)


def test_unlock_key_rotation_reaches_the_other_manager(bare_daemon, tmp_path):
    d1 = bare_daemon
    addr1 = "127.0.0.1:%d" % d1.port
    out = d1.cli("swarm", "init", "--autolock", "--advertise-addr", addr1, "--listen-addr", addr1,
                 "--default-addr-pool", d1.pool).stdout
    d1.swarm_active = True
    old = re.search(r"(SWMKEY-1-\S+)", out).group(1)
    d2 = Daemon(str(tmp_path / "d2"))
    d2.start()
    try:
        addr2 = "127.0.0.1:%d" % d2.port
        token = d1.cli("swarm", "join-token", "-q", "manager").stdout.strip()
        d2.cli("swarm", "join", "--token", token, "--advertise-addr", addr2, "--listen-addr",
               addr2, addr1)
        d2.swarm_active = True
        wait_until(lambda: d2.cli("swarm", "unlock-key", "-q", check=False).stdout.strip() == old,
                   timeout=30)
        locked = os.path.join(d2.state_dir, "ca", "secrets.key.locked")
        sealed_before = _sealed_once_synced(locked)
        new = d1.cli("swarm", "unlock-key", "--rotate", "-q").stdout.strip()
        assert new.startswith("SWMKEY-1-") and new != old

        def resealed():
            with open(locked) as f:
                return f.read() != sealed_before
        wait_until(resealed, timeout=10)  # the other manager's file, within a tick
        assert d2.cli("swarm", "unlock-key", "-q").stdout.strip() == new
        d2.restart()
        r = d2.cli("swarm", "unlock", input=old + "\n", check=False)
        assert r.returncode != 0 and "invalid unlock key" in r.stderr, r.stderr
        d2.cli("swarm", "unlock", input=new + "\n")
        wait_until(lambda: d2.cli("swarm", "unlock-key", "-q", check=False).stdout.strip() == new,
                   timeout=30)
    finally:
        errors = d2.teardown()
        assert not errors, "\n".join(errors) + "\n" + d2.log_tail()
