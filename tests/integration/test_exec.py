"""shoal exec: commands in running containers (output, exit code, -e, -w,
-u, stdin), errors, and the access an exec needs."""
import http.client
import json
import os
import tempfile

import pytest

from conftest import QUICK_STOP, dashboard_daemon, end_daemon, make_rootfs_tar, wait_until
import ptyutil


@pytest.fixture(scope="module")
def d(rootfs_tar):
    """A one-node swarm with busybox and the dashboard port (tokens)."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    dm = dashboard_daemon(tmp, rootfs_tar)
    dm.cli("run", "-d", "--name", "box", "busybox", "sleep", "1000")
    wait_until(lambda: [c for c in dm.api("GET", "/v1/containers").json()
                        if c["name"] == "box" and c["state"] == "running"])
    yield dm
    dm.cli("rm", "-f", "box", check=False)
    end_daemon(dm, tmp)


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


def test_user_names_from_the_containers_passwd(d, tmp_path):
    """-u NAME[:GROUP] as Docker: looked up in the container's /etc/passwd and /etc/group."""
    passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    group = "root:x:0:\nnogroup:x:65534:\nstaff:x:50:nobody\n"
    d.cli("exec", "box", "sh", "-c", "printf '%s' > /etc/passwd; printf '%s' > /etc/group"
          % (passwd, group))
    assert d.cli("exec", "-u", "nobody", "box", "id").stdout == \
        "uid=65534(nobody) gid=65534(nogroup) groups=50(staff),65534(nogroup)\n"  # kernel order
    assert d.cli("exec", "-u", "nobody:staff", "box", "id", "-g").stdout == "50\n"
    assert d.cli("exec", "-u", "123:staff", "box", "id", "-u").stdout == "123\n"
    r = d.cli("exec", "-u", "nobody:ghosts", "box", "true", check=False)
    assert r.returncode == 1 and "unable to find group ghosts" in r.stderr, r
    # a service's --user too: the image's files
    tar = make_rootfs_tar(str(tmp_path / "users.tar"), extra={
        "etc/passwd": passwd.encode(), "etc/group": group.encode()})
    d.import_image(tar, "users:latest")
    d.cli("service", "create", *QUICK_STOP, "--name", "asnobody", "--user", "nobody", "users",
          "sleep", "1000")
    t = d.wait_running("asnobody", 1)[0]
    with open("/proc/%d/status" % t["pid"]) as f:
        status = f.read()
    assert "\nUid:\t65534\t" in status and "\nGid:\t65534\t" in status, status
    d.cli("service", "rm", "asnobody")
    d.cli("service", "create", "-d", "--name", "asghost", "--user", "ghost", "users", "true")
    wait_until(lambda: any("unable to find user ghost" in t["error"] for t in d.tasks("asghost")),
               msg=lambda: json.dumps(d.tasks("asghost")))
    d.cli("service", "rm", "asghost")


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
    r = d.cli("exec", "-u", "ghost", "box", "true", check=False)
    assert r.returncode == 1 and "unable to find user ghost: no matching entries in passwd file" \
        in r.stderr, r
    r = d.cli("exec", "-u", "a b", "box", "true", check=False)
    assert r.returncode == 1 and "invalid user" in r.stderr, r
    r = d.cli("exec", "-w", "rel", "box", "true", check=False)
    assert r.returncode == 1 and "not an absolute path" in r.stderr, r
    d.cli("run", "--name", "ended", "busybox", "true")
    r = d.cli("exec", "ended", "true", check=False)
    assert r.returncode == 1 and "container ended is not running" in r.stderr, r
    d.cli("rm", "-f", "ended")


def test_exec_needs_write_access(d):
    conn = http.client.HTTPConnection("127.0.0.1", d.dashboard_port, timeout=10)
    try:
        conn.request("POST", "/v1/containers/box/exec", body=json.dumps({"cmd": ["true"]}),
                     headers={"Authorization": "Bearer " + d.ro,
                              "Content-Type": "application/json"})
        assert conn.getresponse().status == 403
    finally:
        conn.close()


def test_tty_through_a_pty(d):
    pid, fd = ptyutil.shoal(d, "exec", "-it", "box", "sh", rows=30, cols=100)
    try:
        ptyutil.check_shell(d, "box", pid, fd)
    finally:
        ptyutil.kill(pid)
        os.close(fd)


def test_tty_input_typed_at_once(d):
    pid, fd = ptyutil.shoal(d, "exec", "-it", "box", "sh", "-c", "read x; echo got-$x; exit 9")
    try:
        os.write(fd, b"abc\n")  # before the terminal exists in the container
        out = ptyutil.read_until(fd, b"got-abc")
        if b"got-abc" not in out:  # what the CLI and the daemon said, to know why
            try:
                code, rest = ptyutil.finish(pid, fd, timeout=5)
            except AssertionError as e:  # it runs on
                code, rest = "none", str(e)
            raise AssertionError("read %r, then %r; CLI exit %s; daemon log:\n%s"
                                 % (out, rest, code, d.log_tail()))
        assert ptyutil.finish(pid, fd)[0] == 9
    finally:
        ptyutil.kill(pid)
        os.close(fd)


def test_interactive_stdin_is_streamed(d):
    import subprocess
    from conftest import SHOAL_BIN
    p = subprocess.Popen([SHOAL_BIN, "-H", "unix://" + d.sock, "exec", "-i", "box", "sh", "-c",
                          "while read l; do echo got-$l; done"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    p.stdin.write("one\n")
    p.stdin.flush()
    assert p.stdout.readline() == "got-one\n"  # before stdin ended
    p.stdin.write("two\n")
    p.stdin.close()
    assert p.stdout.read() == "got-two\n"
    assert p.wait(timeout=20) == 0



def test_client_gone_kills_the_command(d):
    import subprocess
    from conftest import SHOAL_BIN
    for args in (["box"], ["-i", "box"]):
        p = subprocess.Popen([SHOAL_BIN, "-H", "unix://" + d.sock, "exec"] + args +
                             ["sh", "-c", "echo started; exec sleep 777"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline() == "started\n"
        assert "sleep 777" in d.cli("exec", "box", "ps").stdout
        p.kill()
        p.wait()
        wait_until(lambda: "sleep 777" not in d.cli("exec", "box", "ps").stdout, timeout=10)
    # nothing left behind in the daemon's run directory either
    import os
    exec_dir = os.path.join(d.run_dir, "exec")
    wait_until(lambda: os.listdir(exec_dir) == [], timeout=10, msg=lambda: os.listdir(exec_dir))


def test_task_on_a_worker_from_the_manager(rootfs_tar, tmp_path):
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
        # SERVICE.SLOT names the running task; a terminal through the manager
        pid, fd = ptyutil.shoal(lead, "exec", "-it", "far.1", "sh", rows=30, cols=100)
        try:
            assert b"# " in ptyutil.read_until(fd, b"# ")
            os.write(fd, b"echo $((6*7))\n")
            assert b"42" in ptyutil.read_until(fd, b"42")
            ptyutil.check_resize(pid, fd)
            os.write(fd, b"exit 5\n")
            assert ptyutil.finish(pid, fd)[0] == 5
        finally:
            ptyutil.kill(pid)
            os.close(fd)
        # over -H tcp:// with the admin certificate, stdin streamed
        import ssl
        from conftest import SHOAL_BIN
        certs = str(tmp_path / "certs")
        lead.cli("swarm", "admin-cert", "-o", certs)
        host = "tcp://%s:2377" % lead.addr
        r = c.nodes[1].exec("sh", "-c", "echo over-tcp | %s -H %s --tls-dir %s exec -i far.1 cat"
                            % (SHOAL_BIN, host, certs))
        assert r.stdout == "over-tcp\n", r
        # Docker's upgraded stream through the manager to the worker's task
        import socket
        head, s = upgraded_exec(lead.sock, task["id"], {"cmd": ["sh", "-c", "cat; exit 6"],
                                                        "interactive": True})
        assert head.startswith("HTTP/1.1 101 "), head
        s.sendall(b"via-manager\n")
        s.shutdown(socket.SHUT_WR)
        frames = frames_of(read_all(s))
        s.close()
        assert joined(frames, 1) == b"via-manager\n" and frames[-1] == (3, b"6"), frames
        exec_id = [l.split(": ", 1)[1] for l in head.split("\r\n")
                   if l.startswith("X-Shoal-Exec-Id: ")][0]
        assert lead.api("GET", "/v1/exec/%s/json" % exec_id).json()["exit_code"] == 6
        # the node-level route is for managers only
        ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
        ctx.check_hostname = False
        ctx.load_cert_chain(os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem"))
        conn = http.client.HTTPSConnection(c.nodes[1].addr, 2377, context=ctx, timeout=10)
        conn.request("POST", "/v1/node/containers/%s/exec" % task["id"],
                     body=json.dumps({"cmd": ["true"]}))
        assert conn.getresponse().status == 403
        conn.close()
    finally:
        c.destroy()


# ---- Docker's hijacked stream: Connection: Upgrade, Upgrade: tcp ----

def upgraded_exec(sock_path, ref, body):
    """Speaks the upgrade by hand, as a Docker client does: the answer's
    head (text) and the socket, now a raw two-way stream."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(sock_path)
    data = json.dumps(body).encode()
    s.sendall(b"POST /v1/containers/%s/exec HTTP/1.1\r\nHost: shoal\r\n"
              b"Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
              b"Content-Length: %d\r\n\r\n" % (ref.encode(), len(data)) + data)
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        assert b, head
        head += b
    return head.decode(), s


def read_all(s):
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


def frames_of(data):
    """Docker's multiplexed frames: [(stream, payload)]."""
    frames = []
    while data:
        assert len(data) >= 8 and data[1:4] == b"\0\0\0", data
        size = int.from_bytes(data[4:8], "big")
        frames.append((data[0], data[8:8 + size]))
        data = data[8 + size:]
    return frames


def joined(frames, stream):
    return b"".join(p for s, p in frames if s == stream)


def test_upgraded_exec_multiplexed(d):
    head, s = upgraded_exec(d.sock, "box", {"cmd": ["sh", "-c", "echo out; echo err >&2; exit 7"]})
    assert head.startswith("HTTP/1.1 101 UPGRADED\r\n"), head
    assert "Upgrade: tcp\r\n" in head and "Connection: Upgrade\r\n" in head, head
    assert "Content-Type: application/vnd.docker.multiplexed-stream\r\n" in head, head
    frames = frames_of(read_all(s))
    s.close()
    assert joined(frames, 1) == b"out\n" and joined(frames, 2) == b"err\n", frames
    assert frames[-1] == (3, b"7"), frames  # the exit code ends the stream
    # an error before the command runs is a normal answer, as Docker's
    head, s = upgraded_exec(d.sock, "nosuchbox", {"cmd": ["true"]})
    s.close()
    assert head.startswith("HTTP/1.1 404 "), head


def test_upgraded_exec_stdin(d):
    head, s = upgraded_exec(d.sock, "box", {"cmd": ["sh", "-c", "while read l; do echo got-$l; done"],
                                            "interactive": True})
    assert head.startswith("HTTP/1.1 101 "), head
    s.sendall(b"one\n")
    got = b""
    while b"got-one\n" not in got:  # before its stdin ended
        got += s.recv(4096)
    import socket
    s.sendall(b"two\n")
    s.shutdown(socket.SHUT_WR)  # the end of its stdin, as docker's CloseWrite
    frames = frames_of(got + read_all(s))
    s.close()
    assert joined(frames, 1) == b"got-one\ngot-two\n", frames
    assert frames[-1] == (3, b"0"), frames


def test_upgraded_exec_tty(d):
    head, s = upgraded_exec(d.sock, "box", {"cmd": ["sh"], "tty": True, "interactive": True,
                                            "rows": 30, "cols": 100})
    assert head.startswith("HTTP/1.1 101 "), head
    assert "Content-Type: application/vnd.docker.raw-stream\r\n" in head, head
    got = b""
    while b"# " not in got:
        got += s.recv(4096)
    s.sendall(b"stty size; echo $((6*7))\n")
    while b"42" not in got:
        got += s.recv(4096)
    assert b"30 100" in got, got
    # resize as Docker's /exec/ID/resize, the id in the 101's X-Shoal-Exec-Id
    exec_id = [l.split(": ", 1)[1] for l in head.split("\r\n") if l.startswith("X-Shoal-Exec-Id: ")]
    assert exec_id, head
    assert d.api("POST", "/v1/exec/%s/resize?h=40&w=120" % exec_id[0]).status == 200
    s.sendall(b"stty size\n")
    while b"40 120" not in got:
        got += s.recv(4096)
    s.sendall(b"exit 3\n")
    got += read_all(s)
    s.close()
    assert got.endswith(b"exit 3\r\n"), got  # raw bytes: no frames
    # the exit code read after, as Docker's exec inspect
    r = d.api("GET", "/v1/exec/%s/json" % exec_id[0])
    assert r.status == 200 and r.json() == {"id": exec_id[0], "running": False, "exit_code": 3}, r
    assert d.api("GET", "/v1/exec/nosuch-1/json").status == 404
