"""shoal run / ps / rm (containers local to the node)."""
import os

import pytest

from conftest import pid_alive, wait_until
import ptyutil


def containers(d):
    return d.api("GET", "/v1/containers").json()


def by_name(d, name):
    return [c for c in containers(d) if c["name"] == name]


def test_run_rm_exit_code(daemon):
    d = daemon
    r = d.cli("run", "--rm", "--name", "hi3", "busybox", "sh", "-c", "echo hi; exit 3", check=False)
    assert r.returncode == 3, r
    assert r.stdout == "hi\n", r
    wait_until(lambda: not by_name(d, "hi3"))
    r = d.cli("run", "--rm", "busybox", "true", check=False)
    assert r.returncode == 0 and r.stdout == ""


def test_run_rm_is_gone_when_the_cli_returns(daemon):
    """As docker's: once `run --rm` returns, the container is removed, so a script can
    reuse its name at once."""
    d = daemon
    for i in range(3):
        r = d.cli("run", "--rm", "--name", "again", "busybox", "sh", "-c", f"exit {i}",
                  check=False)
        assert r.returncode == i, r
        assert not by_name(d, "again")


def test_run_output_and_env(daemon):
    d = daemon
    r = d.cli("run", "--rm", "-e", "GREETING=hello there", "busybox", "sh", "-c",
              'echo "$GREETING"; echo to-stderr >&2; seq 1 3')
    assert "hello there" in r.stdout
    assert "1\n2\n3\n" in r.stdout
    assert "to-stderr" in r.stdout + r.stderr


def test_run_init(daemon):
    d = daemon
    r = d.cli("run", "--rm", "--init", "busybox", "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline")
    assert r.stdout.startswith("/sbin/shoal-init"), r.stdout


def test_run_combined_short_flags(daemon):
    d = daemon
    r = d.cli("run", "-rm", "busybox", "true", check=False)
    assert r.returncode == 2 and "shoal run: unknown shorthand flag: 'r' in -rm" in r.stderr, r
    r = d.cli("service", "ps", "x", "-xa", check=False)
    assert r.returncode == 2 and "shoal service ps: unknown shorthand flag: 'x' in -xa" in r.stderr
    r = d.cli("service", "-q", "ls", check=False)  # a flag before the subcommand
    assert r.returncode == 2 and "shoal service: unknown shorthand flag: 'q' in -q" in r.stderr
    # booleans and a flag with its value combine
    r = d.cli("run", "--rm", "-eGREETING=hi", "busybox", "sh", "-c", 'echo "$GREETING"')
    assert r.stdout == "hi\n", r
    assert not by_name(d, "combined")
    r = d.cli("run", "-de", "K=V", "--name", "combined", "busybox", "sleep", "1000")
    wait_until(lambda: by_name(d, "combined") and by_name(d, "combined")[0]["state"] == "running")
    d.cli("rm", "-f", "combined")


def test_run_without_rm_is_kept(daemon):
    d = daemon
    r = d.cli("run", "--name", "kept", "busybox", "sh", "-c", "exit 5", check=False)
    assert r.returncode == 5
    c = wait_until(lambda: [c for c in by_name(d, "kept") if c["state"] == "exited"])[0]
    assert c["exit_code"] == 5
    assert "kept" not in d.cli("ps").stdout
    assert "kept" in d.cli("ps", "-a").stdout
    d.cli("rm", "kept")
    assert not by_name(d, "kept")


def test_run_detached_ps_rm(daemon):
    d = daemon
    r = d.cli("run", "-d", "--name", "bg", "busybox", "sleep", "1000")
    cid = r.stdout.strip()
    assert len(cid) >= 12 and all(ch in "0123456789abcdef" for ch in cid), r.stdout
    c = wait_until(lambda: [c for c in containers(d) if c["id"] == cid and c["state"] == "running"])[0]
    assert c["name"] == "bg" and c["image"] == "busybox:latest"
    assert cid[:12] in d.cli("ps").stdout
    assert cid[:12] in d.cli("ps", "-a").stdout
    ps = d.cli_json("ps", "-a")
    assert cid in [x["id"] for x in ps]
    # name taken
    r = d.cli("run", "-d", "--name", "bg", "busybox", "sleep", "1", check=False)
    assert r.returncode != 0 and "already in use" in r.stderr
    # a running container needs -f
    r = d.cli("rm", cid, check=False)
    assert r.returncode != 0 and r.stderr.strip()
    assert [c for c in containers(d) if c["id"] == cid]
    d.cli("rm", "-f", cid)
    wait_until(lambda: not [c for c in containers(d) if c["id"] == cid])
    assert cid[:12] not in d.cli("ps", "-a").stdout


def test_rm_force_is_synchronous(daemon):
    d = daemon
    cid = d.cli("run", "-d", "busybox", "sleep", "1000").stdout.strip()
    wait_until(lambda: [c for c in containers(d) if c["id"] == cid and c["state"] == "running"])
    try:
        d.cli("rm", "-f", cid)
        assert not [c for c in containers(d) if c["id"] == cid]
    finally:
        wait_until(lambda: not [c for c in containers(d) if c["id"] == cid])


def test_run_unknown_image(daemon):
    d = daemon
    before = containers(d)
    r = d.cli("run", "--rm", "nosuchimage:1", "true", check=False)
    assert r.returncode != 0
    assert "No such image" in r.stderr, r.stderr
    r = d.cli("run", "-d", "nosuchimage", "true", check=False)
    assert r.returncode != 0 and "No such image" in r.stderr
    assert containers(d) == before


def test_run_missing_command(daemon):
    d = daemon
    r = d.cli("run", "--rm", "busybox", "nope", check=False)
    assert r.returncode != 0
    assert "executable file `nope` not found" in r.stdout + r.stderr, r
    wait_until(lambda: not [c for c in containers(d) if c["state"] != "exited"])


def test_rm_unknown(daemon):
    d = daemon
    r = d.cli("rm", "no-such-container", check=False)
    assert r.returncode != 0 and "No such container" in r.stderr


def test_run_needs_swarm(bare_daemon):
    d = bare_daemon
    r = d.cli("run", "--rm", "busybox", "true", check=False)
    assert r.returncode != 0 and r.stderr.strip()


def test_fast_exit_output_never_lost(daemon):
    """A container that exits at once still delivers its output (regression: ~10% were lost)."""
    d = daemon
    for i in range(40):
        r = d.cli("run", "--rm", "busybox", "echo", "hi-%d" % i, check=False)
        assert (r.returncode, r.stdout) == (0, "hi-%d\n" % i), (i, r)


def test_fast_exit_service_logs_kept(daemon):
    d = daemon
    d.cli("service", "create", "-d", "--name", "quick", "--replicas", "6", "--restart-condition", "none",
          "busybox", "echo", "quick-done")
    wait_until(lambda: len([t for t in d.tasks("quick") if t["state"] == "complete"]) == 6)
    lines = [l for l in d.logs("quick").splitlines() if l.endswith("| quick-done")]
    assert len(lines) == 6, d.logs("quick")
    d.cli("service", "rm", "quick")


def test_run_user_workdir_hostname_entrypoint_volume(daemon, tmp_path):
    d = daemon
    (tmp_path / "in.txt").write_text("from the host\n")
    os.chmod(tmp_path, 0o755)  # readable by uid 1000
    os.chmod(tmp_path / "in.txt", 0o644)
    r = d.cli("run", "--rm", "-u", "1000:1001", "-w", "/tmp", "--hostname", "runhost",
              "-v", "%s:/data:ro" % tmp_path, "busybox", "sh", "-c",
              "id -u; id -g; pwd; hostname; cat /data/in.txt; touch /data/x 2>/dev/null || "
              "echo read-only")
    assert r.stdout == "1000\n1001\n/tmp\nrunhost\nfrom the host\nread-only\n", r
    r = d.cli("run", "--rm", "--entrypoint", "echo entry", "busybox", "args")
    assert r.stdout == "entry args\n", r
    r = d.cli("run", "--rm", "-u", "ghost", "busybox", "true", check=False)
    assert r.returncode != 0 and "unable to find user ghost" in r.stderr, r
    for bad, says in ((["-v", "/a"], "-v"), (["-w", "rel"], "--workdir"),
                      (["-u", "a b"], "--user")):
        r = d.cli("run", "--rm", *bad, "busybox", "true", check=False)
        assert r.returncode != 0 and says in r.stderr, (bad, r)


def test_run_it_through_a_pty(daemon):
    d = daemon
    pid, fd = ptyutil.shoal(d, "run", "-i", "-t", "--rm", "--name", "tty1", "busybox", "sh",
                            rows=30, cols=100)
    try:
        ptyutil.check_shell(d, "tty1", pid, fd)
    finally:
        ptyutil.kill(pid)
        os.close(fd)
    wait_until(lambda: not by_name(d, "tty1"))


def test_run_stdin_piped(daemon):
    d = daemon
    r = d.cli("run", "-i", "--rm", "busybox", "cat", input="hi\n")
    assert r.stdout == "hi\n", r
    r = d.cli("run", "-i", "--rm", "busybox", "sh", "-c", "read a; read b; echo $b-$a; exit 4",
              input="one\ntwo\n", check=False)
    assert r.returncode == 4 and r.stdout == "two-one\n", r
    # without -i the container's stdin is empty
    r = d.cli("run", "--rm", "busybox", "cat", input="ignored\n")
    assert r.stdout == "", r
    # -t without -i: a terminal, no input
    r = d.cli("run", "-t", "--rm", "busybox", "sh", "-c", "tty; exit 2", input="x\n",
              check=False)
    assert r.returncode == 2 and "/dev/pts/" in r.stdout, r
    # a container that cannot start: the reason and docker's 125
    r = d.cli("run", "-i", "--rm", "busybox", "nosuchcmd", check=False)
    assert r.returncode == 125 and "nosuchcmd" in r.stderr, r


def test_run_publish(rootfs_tar):
    """-p HOST:CONTAINER: the container's port answers on the node's addresses
    (and 127.0.0.1) while it runs."""
    from cluster import Cluster
    c = Cluster(managers=1, workers=0, rootfs_tar=rootfs_tar)
    try:
        lead = c.leader

        def get(host):
            import subprocess
            return subprocess.run(["nsenter", "--net=/run/netns/" + lead.netns, "--", "curl", "-s",
                                   "-m", "2", "http://%s:18081/index.html" % host],
                                  capture_output=True, text=True, timeout=60)

        # the node's bridge is up shortly after the swarm starts (its subnet comes from the leader)
        wait_until(lambda: lead.cli("run", "-d", "--name", "web", "-p", "18081:80", "busybox",
                                    "sh", "-c", "echo hello-published > /tmp/index.html && "
                                    "exec httpd -f -p 80 -h /tmp", check=False).returncode == 0,
                   timeout=20)
        wait_until(lambda: "hello-published" in get(lead.addr).stdout, timeout=20,
                   msg=lambda: get(lead.addr))
        assert "hello-published" in get("127.0.0.1").stdout
        r = lead.cli("run", "-d", "-p", "18081:80", "busybox", "true", check=False)
        assert r.returncode == 125 and "already published by container web" in r.stderr, r
        r = lead.cli("run", "--rm", "--network", "host", "-p", "18082:80", "busybox", "true",
                     check=False)
        assert r.returncode == 125 and "-p needs the container on the bridge network" in r.stderr, r
        r = lead.cli("run", "--rm", "-p", "80", "busybox", "true", check=False)
        assert r.returncode == 2 and "use HOST:CONTAINER" in r.stderr, r
        lead.cli("rm", "-f", "web")
        wait_until(lambda: get(lead.addr).returncode != 0, timeout=20)
    finally:
        c.destroy()


def test_run_dit_keeps_its_shell(daemon):
    """-dit as docker's: a shell on a terminal whose stdin stays open runs on."""
    d = daemon
    d.cli("run", "-dit", "--name", "dit", "busybox", "sh")
    wait_until(lambda: by_name(d, "dit") and by_name(d, "dit")[0]["state"] == "running")
    import time
    time.sleep(1)
    assert by_name(d, "dit")[0]["state"] == "running"
    assert d.cli("exec", "dit", "sh", "-c", "tty 0</proc/1/fd/0").stdout.startswith("/dev/pts/")
    d.cli("rm", "-f", "dit")


def test_logs_of_a_run_container(daemon):
    """`shoal logs CONTAINER` of a `run -d` container, as docker's: its output,
    --tail, -t, and -f until it ends."""
    import subprocess
    import time
    from conftest import SHOAL_BIN
    d = daemon
    d.cli("run", "-d", "--name", "lg", "busybox", "sh", "-c",
          "echo one; echo two; sleep 1000")
    wait_until(lambda: d.cli("logs", "lg").stdout == "one\ntwo\n", msg=lambda: d.cli("logs", "lg"))
    assert d.cli("logs", "--tail", "1", "lg").stdout == "two\n"
    stamped = d.cli("logs", "-t", "lg").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["one", "two"], stamped
    assert stamped[0][:4].isdigit() and stamped[0][10] == "T", stamped
    r = d.cli("logs", "nosuch", check=False)
    assert r.returncode == 1 and "nosuch" in r.stderr, r
    follower = subprocess.Popen([SHOAL_BIN, "-H", "unix://" + d.sock, "logs", "-f", "lg"],
                                stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        d.cli("exec", "lg", "sh", "-c", "echo three > /proc/1/fd/1")
        d.cli("rm", "-f", "lg")  # the follow ends with the container
        out, _ = follower.communicate(timeout=30)
        assert out == "one\ntwo\nthree\n", out
        assert follower.returncode == 0
    finally:
        follower.kill()


def test_logs_of_containers_writing_at_once_stay_apart(daemon):
    """Two containers writing more than a read's buffer at the same time (the agent reads every
    container's output into one buffer): each log holds its own lines, whole and in order."""
    d = daemon
    script = "for i in $(seq 4000); do echo %s-$i; done; sleep 1000"
    for name in ("lga", "lgb"):
        d.cli("run", "-d", "--name", name, "busybox", "sh", "-c", script % name)
    try:
        for name in ("lga", "lgb"):
            want = ["%s-%d" % (name, i) for i in range(1, 4001)]
            wait_until(lambda: len(d.cli("logs", name).stdout.splitlines()) >= 4000,
                       msg=lambda: d.cli("logs", "--tail", "1", name))
            assert d.cli("logs", name).stdout.splitlines() == want
    finally:
        d.cli("rm", "-f", "lga", "lgb", check=False)


def test_run_it_over_an_upgraded_connection(daemon):
    """`run -i -t` as Docker's attach: 101, then the terminal's raw bytes both ways."""
    import json
    import socket
    d = daemon
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(d.sock)
    body = json.dumps({"image": "busybox", "args": ["sh"], "rm": True, "interactive": True,
                       "tty": True, "rows": 24, "cols": 80, "name": "up1"}).encode()
    s.sendall(b"POST /v1/containers/run HTTP/1.1\r\nHost: shoal\r\nConnection: Upgrade\r\n"
              b"Upgrade: tcp\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    got = b""
    while b"# " not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    head = got.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 101 UPGRADED\r\n") and "X-Shoal-Exec-Id: " in head, head
    s.sendall(b"echo $((6*7)); exit 4\n")
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    s.close()
    assert b"42" in got, got
    wait_until(lambda: not by_name(d, "up1"))


def test_attach_to_a_dit_container(daemon):
    """`shoal attach` as docker's: the shell of a `run -dit` container on this
    terminal (its size too); ctrl-p ctrl-q leaves it running; its exit ends
    the CLI with its code."""
    d = daemon
    d.cli("run", "-dit", "--name", "att", "busybox", "sh")
    wait_until(lambda: by_name(d, "att") and by_name(d, "att")[0]["state"] == "running")
    try:
        pid, fd = ptyutil.shoal(d, "attach", "att", rows=33, cols=99)
        try:
            os.write(fd, b"stty size; echo $((6*7))\n")
            out = ptyutil.read_until(fd, b"42")
            assert b"42" in out and b"33 99" in out, out
            os.write(fd, b"\x10\x11")  # docker's detach keys
            assert ptyutil.finish(pid, fd)[0] == 0
        finally:
            ptyutil.kill(pid)
            os.close(fd)
        assert by_name(d, "att")[0]["state"] == "running"
        # the same over Docker's upgraded connection, by hand: raw terminal bytes
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(d.sock)
        s.sendall(b"POST /v1/containers/att/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: shoal\r\n"
                  b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(4096)
        head, got = got.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n"), head
        assert b"Content-Type: application/vnd.docker.raw-stream" in head, head
        s.sendall(b"echo up-$((1+1))\n")
        while b"up-2" not in got:
            got += s.recv(4096)
        s.close()  # leaving: the shell runs on
        pid, fd = ptyutil.shoal(d, "attach", "att")
        try:
            os.write(fd, b"echo again-$((2+2))\n")  # the echo of what was typed has no "again-4"
            assert b"again-4" in ptyutil.read_until(fd, b"again-4")
            os.write(fd, b"exit 3\n")
            assert ptyutil.finish(pid, fd)[0] == 3
        finally:
            ptyutil.kill(pid)
            os.close(fd)
        wait_until(lambda: by_name(d, "att")[0]["state"] == "exited")
        r = d.cli("attach", "att", check=False)
        assert r.returncode == 1 and "You cannot attach to a stopped container" in r.stderr, r
    finally:
        d.cli("rm", "-f", "att", check=False)


def crun_children(daemon_pid):
    """crun processes whose parent is the daemon (a `run --rm`'s attached crun)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if name == "crun" and ppid == daemon_pid:
            found.append(int(entry))
    return found


def test_run_rm_attached_crun_is_waited_for(daemon):
    """A `run --rm` the CLI waits on: crun runs attached (the daemon's child,
    the container's parent); ps, inspect, exec and kill work on the container
    as for any other; the exit code is the container's, and nothing is left."""
    import subprocess
    from conftest import SHOAL_BIN
    d = daemon
    cli = subprocess.Popen([SHOAL_BIN, "-H", "unix://" + d.sock, "run", "--rm", "--name", "att",
                            "busybox", "sh", "-c", "echo up; exec sleep 1000"],
                           stdout=subprocess.PIPE, text=True)
    try:
        c = wait_until(lambda: [c for c in by_name(d, "att") if c["state"] == "running"])[0]
        assert len(crun_children(d.proc.pid)) == 1, crun_children(d.proc.pid)
        import json
        pid = json.loads(d.cli("inspect", "att").stdout)[0]["pid"]
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            assert f.read().split(b"\0")[0] == b"sleep"  # the container's process, not crun
        assert d.cli("exec", "att", "echo", "inside").stdout == "inside\n"
        d.cli("kill", "att")
        out, _ = cli.communicate(timeout=30)
        assert cli.returncode == 137 and out == "up\n", (cli.returncode, out)
        assert not by_name(d, "att")  # hidden once the CLI has the exit
        # its removal goes on in the daemon's thread pool
        wait_until(lambda: not os.path.exists(os.path.join(d.state_dir, "containers", c["id"])))
        assert not pid_alive(pid)
        wait_until(lambda: not crun_children(d.proc.pid))  # reaped, no zombie
    finally:
        cli.kill()
        d.cli("rm", "-f", "att", check=False)


def test_run_rm_attached_across_a_daemon_restart(daemon):
    """The attached crun is no longer the daemon's child after a restart: the
    new daemon finds the container as any other and still removes it."""
    import subprocess
    from conftest import SHOAL_BIN
    d = daemon
    cli = subprocess.Popen([SHOAL_BIN, "-H", "unix://" + d.sock, "run", "--rm", "--name", "stay",
                            "busybox", "sleep", "1000"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        c = wait_until(lambda: [c for c in by_name(d, "stay") if c["state"] == "running"])[0]
        d.restart()
        cli.wait(timeout=30)  # its connection ended with the daemon
        wait_until(lambda: [c for c in by_name(d, "stay") if c["state"] == "running"])
        d.cli("kill", "stay")
        wait_until(lambda: not by_name(d, "stay"), msg=lambda: by_name(d, "stay"))
        bundle = os.path.join(d.state_dir, "containers", c["id"])
        wait_until(lambda: not os.path.exists(bundle), msg=lambda: os.listdir(bundle))
    finally:
        cli.kill()
        d.cli("rm", "-f", "stay", check=False)
