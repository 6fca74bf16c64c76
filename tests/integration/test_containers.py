"""shoal stop / start / restart / kill / inspect / stats of the node's containers."""
import json
import os
import time

from conftest import QUICK_STOP, wait_until
import ptyutil


def inspect(d, name):
    out = d.cli("inspect", name).stdout
    objs = json.loads(out)
    assert len(objs) == 1, out
    return objs[0]


def running(d, name):
    return inspect(d, name)["state"] == "running"


def exited(d, name):
    """The container's record once it has exited, else None."""
    c = inspect(d, name)
    return c if c["state"] == "exited" else None


def run_detached(d, name, *args):
    """`shoal run -d --name NAME ARGS`, awaited until the container runs."""
    d.cli("run", "-d", "--name", name, *args)
    wait_until(lambda: running(d, name))


def wait_logged(d, name, text, count=1):
    """Until the container's log holds text count times: a script that prints it once its
    trap is set gets a signal sent after that (a signal sent before, to a pid 1 with no handler
    yet, is dropped by the kernel). The log file, as `shoal logs` reads no run container yet."""
    log = os.path.join(d.run_dir, "logs", inspect(d, name)["id"] + ".log")
    wait_until(lambda: open(log).read().count(text) >= count)


def test_stop_start_restart_keeps_output(daemon):
    d = daemon
    run_detached(d, "ticker", "busybox", "sh", "-c",
                 "trap 'echo bye; exit 0' TERM; echo started; while true; do sleep 0.2; done")
    wait_logged(d, "ticker", "started")
    t0 = time.monotonic()
    r = d.cli("stop", "-t", "5", "ticker")
    assert r.stdout == "ticker\n", r
    assert time.monotonic() - t0 < 5  # the trap ended it: no wait for the grace
    c = inspect(d, "ticker")
    assert c["state"] == "exited" and c["exit_code"] == 0 and c["pid"] == 0, c
    assert c["finished_at"] >= c["started_at"] > 0
    # a stopped container: stop again is a no-op
    assert d.cli("stop", "ticker").returncode == 0
    first_start = c["started_at"]
    assert d.cli("start", "ticker").stdout == "ticker\n"
    c = inspect(d, "ticker")
    assert c["state"] == "running" and c["pid"] > 0 and c["started_at"] > first_start, c
    # start of a running container: a no-op
    assert d.cli("start", "ticker").returncode == 0
    pid = c["pid"]
    wait_logged(d, "ticker", "started", 2)
    assert d.cli("restart", "-t", "1", "ticker").stdout == "ticker\n"
    c = inspect(d, "ticker")
    assert c["state"] == "running" and c["pid"] != pid, c
    # its log goes on across its runs (`shoal logs` reads no run container yet: the file)
    log = os.path.join(d.run_dir, "logs", c["id"] + ".log")
    out = wait_until(lambda: (lambda o: o if o.count("started") == 3 else None)(
        open(log).read()))
    assert out.count("bye") == 2, out
    d.cli("rm", "-f", "ticker")


def test_stop_kills_after_timeout(daemon):
    d = daemon
    run_detached(d, "stubborn", "busybox", "sh", "-c",
                 "trap '' TERM; while true; do sleep 0.2; done")
    t0 = time.monotonic()
    d.cli("stop", "-t", "1", "stubborn")
    assert 0.9 < time.monotonic() - t0 < 8
    assert inspect(d, "stubborn")["exit_code"] == 137
    d.cli("rm", "stubborn")


def test_kill_signal_reaches_trap(daemon):
    d = daemon
    run_detached(d, "trapper", "busybox", "sh", "-c",
                 "trap 'echo got-usr1; exit 7' USR1; echo trapping; while true; do sleep 0.2; done")
    wait_logged(d, "trapper", "trapping")
    assert d.cli("kill", "-s", "USR1", "trapper").stdout == "trapper\n"
    c = wait_until(lambda: exited(d, "trapper"))
    assert c["exit_code"] == 7, c
    r = d.cli("kill", "trapper", check=False)
    assert r.returncode != 0 and "is not running" in r.stderr, r
    # its end is reported before the runtime's delete is done, which `start` waits for
    # ("still stopping: try again"): a CLI that starts in ~2 ms gets there first
    def started():
        r = d.cli("start", "trapper", check=False)
        assert r.returncode == 0 or "still stopping: try again" in r.stderr, r
        return r.returncode == 0
    wait_until(started)
    wait_until(lambda: running(d, "trapper"))
    d.cli("kill", "trapper")  # KILL by default
    c = wait_until(lambda: exited(d, "trapper"))
    assert c["exit_code"] == 137, c
    d.cli("rm", "trapper")


def test_inspect_fields(daemon, tmp_path):
    d = daemon
    run_detached(d, "looked", "-v", f"{tmp_path}:/data:ro", "busybox", "sleep", "1000")
    c = inspect(d, "looked")
    for key in ("id", "name", "image", "state", "pid", "exit_code", "created_at", "started_at",
                "finished_at", "command", "mounts", "network", "ports"):
        assert key in c, (key, c)
    assert c["name"] == "looked" and c["image"] == "busybox:latest"
    assert c["command"] == ["sleep", "1000"] and c["exit_code"] is None
    assert {"type": "bind", "source": str(tmp_path), "target": "/data", "readonly": True} \
        in c["mounts"], c["mounts"]
    assert c["network"]["mode"] in ("bridge", "host")
    assert inspect(d, c["id"])["name"] == "looked"  # by id too
    d.cli("rm", "-f", "looked")


def test_stats_no_stream(daemon):
    d = daemon
    run_detached(d, "measured", "busybox", "sleep", "1000")
    out = d.cli("stats", "--no-stream").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/",
                                "LIMIT", "MEM", "%", "PIDS"], out
    row = [l for l in lines if " measured " in l]
    assert row, out
    cells = row[0].split()
    assert cells[3].endswith("B") and cells[3][0].isdigit() and cells[3] != "0B", row
    assert int(cells[-1]) >= 1, row
    one = d.cli("stats", "--no-stream", "measured").stdout
    assert len(one.splitlines()) == 2 and "measured" in one
    d.cli("rm", "-f", "measured")


def test_bad_input(daemon):
    d = daemon
    for verb in ("stop", "start", "restart", "kill", "inspect", "stats"):
        args = ["--no-stream", "nosuch"] if verb == "stats" else ["nosuch"]
        r = d.cli(verb, *args, check=False)
        assert r.returncode != 0, (verb, r)
        assert "No such container: nosuch" in r.stderr, (verb, r.stderr)
    for verb in ("stop", "start", "restart", "kill", "inspect"):
        r = d.cli(verb, check=False)
        assert r.returncode == 2, (verb, r)
    run_detached(d, "victim", "busybox", "sleep", "1000")
    r = d.cli("kill", "-s", "NOPE", "victim", check=False)
    assert r.returncode != 0 and "invalid signal: NOPE" in r.stderr, r
    r = d.cli("stop", "-t", "x", "victim", check=False)
    assert r.returncode == 2 and "-t" in r.stderr, r
    # one name fails, the other is done: non-zero, each error said
    r = d.cli("stop", "-t", "0", "nosuch", "victim", check=False)
    assert r.returncode != 0 and "No such container: nosuch" in r.stderr and \
        r.stdout == "victim\n", r
    d.cli("rm", "victim")


def test_task_container_inspect_stats_stop(daemon):
    d = daemon
    d.cli("service", "create", *QUICK_STOP, "--name", "tsvc", "busybox", "sleep", "1000")
    try:
        first = wait_until(lambda: [c for c in d.api("GET", "/v1/containers?tasks=1").json()
                                    if c.get("task_id") and c["name"].startswith("tsvc.")
                                    and c["state"] == "running"])[0]
        c = inspect(d, first["name"])  # NAME.SLOT.TASKID, as `ps` shows it
        assert c["task_id"] == first["task_id"] and c["state"] == "running" and c["pid"] > 0
        assert inspect(d, first["task_id"])["id"] == c["id"]
        out = d.cli("stats", "--no-stream", first["name"]).stdout
        assert first["name"] in out, out
        r = d.cli("start", first["name"], check=False)  # running: a no-op
        assert r.returncode == 0, r
        r = d.cli("restart", first["name"], check=False)
        assert r.returncode != 0 and "belongs to a task" in r.stderr, r
        d.cli("stop", "-t", "1", first["name"])
        # its service replaces it
        wait_until(lambda: [c for c in d.api("GET", "/v1/containers?tasks=1").json()
                            if c["name"].startswith("tsvc.") and c["state"] == "running"
                            and c["task_id"] != first["task_id"]], timeout=30)
    finally:
        d.cli("service", "rm", "tsvc", check=False)


def test_stats_streams_in_a_terminal(daemon):
    """On a terminal without --no-stream: the table again every second until interrupted."""
    import signal
    d = daemon
    run_detached(d, "watched", "busybox", "sleep", "1000")
    pid, fd = ptyutil.shoal(d, "stats", "watched")
    out = b""
    end = time.monotonic() + 20
    try:
        while out.count(b"watched") < 3 and time.monotonic() < end:
            more = ptyutil.read_until(fd, b"watched", timeout=end - time.monotonic())
            if not more:  # ended, or the time is up
                break
            out += more
        assert out.count(b"\x1b[2J") >= 3 and out.count(b"watched") >= 3, out
        os.kill(pid, signal.SIGINT)
        ptyutil.finish(pid, fd)  # interrupted, it ends
    finally:
        ptyutil.kill(pid)
        os.close(fd)
        d.cli("rm", "-f", "watched")


def test_start_after_daemon_restart(daemon):
    """The spec is in the container's record: a daemon restarted in between still starts it."""
    d = daemon
    run_detached(d, "survivor", "busybox", "sleep", "1000")
    d.restart()
    wait_until(lambda: running(d, "survivor"))
    d.cli("stop", "-t", "0", "survivor")
    d.cli("start", "survivor")
    c = inspect(d, "survivor")
    assert c["state"] == "running" and c["command"] == ["sleep", "1000"], c
    d.cli("rm", "-f", "survivor")


def test_ids_as_ps_shows_them(daemon):
    """The 12 characters of an id that `ps -q` prints (any unique prefix) name the
    container for every verb, as docker's short ids do."""
    d = daemon
    run_detached(d, "shortid", "busybox", "sleep", "1000")
    full = inspect(d, "shortid")["id"]
    short = [i for i in d.cli("ps", "-aq").stdout.split() if full.startswith(i)]
    assert len(short) == 1 and len(short[0]) == 12, (short, full)
    sid = short[0]
    assert inspect(d, sid)["name"] == "shortid"
    assert d.cli("exec", sid, "echo", "in").stdout == "in\n"
    d.cli("stop", "-t", "0", sid)
    wait_until(lambda: exited(d, "shortid"))
    d.cli("rm", sid)
    r = d.cli("inspect", sid, check=False)
    assert r.returncode != 0 and f"No such container: {sid}" in r.stderr, r
