"""shoal exec: commands in running containers (output, exit code, -e, -w,
-u, stdin), errors, and the access an exec needs."""
import http.client
import json
import shutil
import tempfile

import pytest

from conftest import Daemon, free_port, wait_until


@pytest.fixture(scope="module")
def d(rootfs_tar):
    """A one-node swarm with busybox and the dashboard port (tokens)."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    dm = Daemon(tmp)
    dm.dashboard_port = free_port()
    dm.extra_args = ["--dashboard-addr", "127.0.0.1:%d" % dm.dashboard_port]
    dm.start()
    dm.init_swarm()
    dm.import_image(rootfs_tar)
    dm.cli("run", "-d", "--name", "box", "busybox", "sleep", "1000")
    wait_until(lambda: [c for c in dm.api("GET", "/v1/containers").json()
                        if c["name"] == "box" and c["state"] == "running"])
    yield dm
    dm.cli("rm", "-f", "box", check=False)
    errors = dm.teardown()
    if not errors:
        shutil.rmtree(tmp, ignore_errors=True)
    assert not errors, "\n".join(errors) + "\ndaemon log:\n" + dm.log_tail()


def test_output_and_exit_code(d):
    r = d.cli("exec", "box", "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert r.returncode == 7, r
    assert r.stdout == "out\n" and r.stderr == "err\n", r
    r = d.cli("exec", "box", "true")
    assert r.returncode == 0 and r.stdout == ""
    big = d.cli("exec", "box", "seq", "1", "20000").stdout
    assert big.splitlines()[-1] == "20000" and len(big.splitlines()) == 20000


def test_env_workdir_user(d):
    r = d.cli("exec", "-e", "A=1", "-e", "B=two words", "-w", "/tmp", "-u", "1000:1001", "box",
              "sh", "-c", 'echo "$A,$B"; pwd; id -u; id -g')
    assert r.stdout == "1,two words\n/tmp\n1000\n1001\n", r
    # the container's own settings otherwise
    r = d.cli("exec", "box", "sh", "-c", "pwd; id -u")
    assert r.stdout == "/\n0\n", r


def test_stdin_piped(d):
    r = d.cli("exec", "-i", "box", "cat", input="hi\nthere\n")
    assert r.stdout == "hi\nthere\n", r
    # without -i the command's stdin is empty
    r = d.cli("exec", "box", "cat", input="ignored\n")
    assert r.stdout == "", r


def test_errors(d):
    r = d.cli("exec", "nosuch", "true", check=False)
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr, r
    r = d.cli("exec", "box", "/no/such/binary", check=False)
    assert r.returncode != 0, r
    r = d.cli("exec", "box", check=False)
    assert r.returncode == 2 and "requires a container and a command" in r.stderr, r
    r = d.cli("exec", "-u", "root", "box", "true", check=False)
    assert r.returncode == 1 and "expected uid[:gid]" in r.stderr, r
    r = d.cli("exec", "-w", "rel", "box", "true", check=False)
    assert r.returncode == 1 and "not an absolute path" in r.stderr, r


def test_exec_needs_write_access(d):
    ro = d.cli("dashboard", "url").stdout.strip().split("#token=")[1]
    conn = http.client.HTTPConnection("127.0.0.1", d.dashboard_port, timeout=10)
    try:
        conn.request("POST", "/v1/containers/box/exec", body=json.dumps({"cmd": ["true"]}),
                     headers={"Authorization": "Bearer " + ro,
                              "Content-Type": "application/json"})
        assert conn.getresponse().status == 403
    finally:
        conn.close()


def test_task_on_a_worker_from_the_manager(rootfs_tar):
    from cluster import Cluster
    c = Cluster(managers=1, workers=1, rootfs_tar=rootfs_tar)
    try:
        lead = c.leader
        worker_id = c.node_id(c.nodes[1])
        lead.cli("service", "create", "--name", "far", "--constraint", "node.role==worker",
                 "--stop-grace-period", "1s", "busybox", "sleep", "1000")
        task = lead.wait_running("far", 1, timeout=60)[0]
        assert task["node_id"] == worker_id
        r = lead.cli("exec", "-e", "X=far", task["id"][:12], "sh", "-c",
                     'echo "$X $(hostname)"; echo e >&2; exit 4', check=False)
        assert r.returncode == 4 and r.stderr == "e\n", r
        assert r.stdout.startswith("far "), r
        r = lead.cli("exec", "-i", task["id"], "cat", input="through the manager\n")
        assert r.stdout == "through the manager\n", r
        # on the worker itself the CLI reaches the task's container directly
        r = c.nodes[1].cli("exec", task["id"], "true", check=False)
        assert r.returncode == 0, r
    finally:
        c.destroy()
