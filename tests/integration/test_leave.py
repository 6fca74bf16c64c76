"""`swarm leave` ends in bounded time whatever the containers do: past the
grace periods what still runs is SIGKILLed, and a container that still does
not end (here: frozen, so that even SIGKILL waits) is left behind, logged,
instead of holding the leave forever."""
import os

from conftest import pid_alive, wait_until


def test_leave_ends_in_bounded_time_whatever_the_containers_do(fresh_daemon):
    d = fresh_daemon
    d.cli("service", "create", "--name", "frozen", "--stop-grace-period", "1s", "-d", "busybox",
          "sleep", "1000")
    pid = d.wait_running("frozen", 1)[0]["pid"]
    freezer = "/sys/fs/cgroup/freezer/shoal-test-leave-%d" % os.getpid()
    os.mkdir(freezer)
    try:
        with open(freezer + "/cgroup.procs", "w") as f:
            f.write(str(pid))
        with open(freezer + "/freezer.state", "w") as f:
            f.write("FROZEN")
        wait_until(lambda: open(freezer + "/freezer.state").read().strip() == "FROZEN")
        r = d.cli("swarm", "leave", "--force", check=False, timeout=110)
        assert r.returncode == 0, r
        assert "did not end: left behind" in d.log_tail(200)
        assert d.api("GET", "/v1/info").json()["swarm"]["state"] != "active"
    finally:
        with open(freezer + "/freezer.state", "w") as f:
            f.write("THAWED")
        # the SIGKILL waiting for it lands now; the agent then cleans up after it
        wait_until(lambda: not pid_alive(pid), timeout=30)
        wait_until(lambda: not open(freezer + "/cgroup.procs").read().strip(), timeout=30)
        os.rmdir(freezer)
