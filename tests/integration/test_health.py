"""Container health checks (--health-cmd...): states starting/healthy/unhealthy
reported as the task's `health`, unhealthy tasks stopped and replaced, the start
period, timeouts, flag validation, --no-healthcheck, and checks resuming after a
daemon restart (live restore).

Checks are driven from the host through a bind mount: `test -f /hc/ok` passes
while the test keeps the file there."""
import glob
import json
import os
import subprocess
import time

import pytest

from conftest import pid_alive, wait_until

GRACE = ("--stop-grace-period", "1s")
FAST = ("--health-interval", "200ms")


def create(d, name, *args):
    return d.cli("service", "create", "--name", name, *GRACE, "-d", *args)


def remove(d, name):
    pids = [t["pid"] for t in d.tasks(name) if t.get("pid")]
    d.cli("service", "rm", name)
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=30)


def current(d, name):
    """The task of slot 1 that should run, when it runs."""
    ts = [t for t in d.tasks(name) if t["desired_state"] == "running" and t["state"] == "running"]
    return ts[0] if len(ts) == 1 else None


def wait_health(d, name, health, timeout=30):
    def ok():
        t = current(d, name)
        return t if t and t.get("health") == health else None

    return wait_until(ok, timeout=timeout, msg=lambda: json.dumps(d.tasks(name), indent=1)[:3000])


def hc_mount(tmp_path):
    hc = tmp_path / "hc"
    hc.mkdir()
    return hc, ("--mount", "type=bind,src=%s,dst=/hc" % hc)


def test_passing_check_becomes_healthy(daemon):
    d = daemon
    create(d, "hok", "--health-cmd", "test -d /tmp && exit 0", *FAST, "busybox", "sleep", "1000")
    t = wait_health(d, "hok", "healthy")
    spec = json.loads(d.cli("service", "inspect", "hok").stdout)[0]["spec"]
    assert spec["healthcheck"] == {"cmd": "test -d /tmp && exit 0", "interval_ms": 200,
                                   "timeout_ms": 30000, "retries": 3, "start_period_ms": 0}
    # the task keeps running, healthy, in every view
    ps = d.cli("service", "ps", "hok").stdout
    line = [l for l in ps.splitlines() if t["id"][:12] in l][0]
    assert "Running" in line and "(healthy)" in line, ps
    js = [x for x in d.cli_json("service", "ps", "hok") if x["id"] == t["id"]][0]
    assert js["health"] == "healthy"
    assert d.api("GET", "/v1/tasks").json() and \
        [x for x in d.api("GET", "/v1/tasks").json() if x["id"] == t["id"]][0]["health"] == "healthy"
    assert current(d, "hok")["id"] == t["id"]
    remove(d, "hok")


def test_failing_check_stops_and_replaces_task(daemon, tmp_path):
    d = daemon
    hc, mount = hc_mount(tmp_path)
    (hc / "ok").write_text("")
    create(d, "hbad", *mount, "--health-cmd", "test -f /hc/ok", *FAST, "--health-retries", "2",
           "--restart-delay", "200ms", "busybox", "sleep", "1000")
    first = wait_health(d, "hbad", "healthy")
    (hc / "ok").unlink()

    def failed():
        t = [x for x in d.tasks("hbad") if x["id"] == first["id"]][0]
        return t if t["state"] == "failed" else None

    t = wait_until(failed, timeout=40, msg=lambda: json.dumps(d.tasks("hbad"), indent=1)[:3000])
    assert "container unhealthy" in t["error"], t
    assert t["health"] == "unhealthy"
    assert "exit_code" in t
    wait_until(lambda: not pid_alive(first["pid"]), timeout=20)
    ps = d.cli("service", "ps", "hbad").stdout
    assert "container unhealthy" in ps, ps
    # a new task takes the slot; it is healthy again once the check passes
    (hc / "ok").write_text("")
    second = wait_health(d, "hbad", "healthy", timeout=40)
    assert second["id"] != first["id"] and second["slot"] == first["slot"]
    svc = d.service("hbad")
    assert svc["replicas_running"] == 1 and svc["replicas_desired"] == 1
    remove(d, "hbad")


def test_start_period_failures_do_not_count(daemon, tmp_path):
    d = daemon
    hc, mount = hc_mount(tmp_path)
    create(d, "hstart", *mount, "--health-cmd", "echo x >> /hc/probes; test -f /hc/ok", *FAST,
           "--health-retries", "1", "--health-start-period", "1h", "busybox", "sleep", "1000")
    t = wait_health(d, "hstart", "starting")
    # checks run and fail (one failure would do outside the start period)
    wait_until(lambda: len((hc / "probes").read_text().split()) >= 4, timeout=30)
    now = current(d, "hstart")
    assert now and now["id"] == t["id"] and now["health"] == "starting", d.tasks("hstart")
    assert "(health: starting)" in d.cli("service", "ps", "hstart").stdout
    # a success ends the start period: healthy
    (hc / "ok").write_text("")
    wait_health(d, "hstart", "healthy")
    # from then on failures count at once (retries 1)
    (hc / "ok").unlink()
    wait_until(lambda: [x for x in d.tasks("hstart") if x["id"] == t["id"]][0]["state"] == "failed",
               timeout=40)
    remove(d, "hstart")


def test_start_period_then_unhealthy(daemon):
    d = daemon
    create(d, "hsp", "--health-cmd", "false", *FAST, "--health-retries", "2",
           "--health-start-period", "2s", "--restart-condition", "none", "busybox", "sleep", "1000")
    t = wait_health(d, "hsp", "starting")

    def done():
        x = [x for x in d.tasks("hsp") if x["id"] == t["id"]][0]
        return x if x["state"] == "failed" else None

    x = wait_until(done, timeout=40)
    assert x["health"] == "unhealthy" and "container unhealthy" in x["error"]
    # the check ran for the whole start period before failing the task
    assert x["state_at"] - t["state_at"] >= 2000
    remove(d, "hsp")


def test_timeout_counts_as_failure(daemon):
    d = daemon
    create(d, "htmo", "--health-cmd", "sleep 30", "--health-timeout", "300ms", *FAST,
           "--health-retries", "1", "--restart-condition", "none", "busybox", "sleep", "1000")
    t = wait_until(lambda: current(d, "htmo"), timeout=30)

    def failed():
        x = [x for x in d.tasks("htmo") if x["id"] == t["id"]][0]
        return x if x["state"] == "failed" else None

    x = wait_until(failed, timeout=40, msg=lambda: json.dumps(d.tasks("htmo"), indent=1)[:3000])
    assert "container unhealthy" in x["error"]
    remove(d, "htmo")


def container_processes(pid):
    """(cmdline, state) of the processes in the pid namespace of `pid`."""
    ns = os.readlink("/proc/%d/ns/pid" % pid)
    out = []
    for p in glob.glob("/proc/[0-9]*"):
        try:
            if os.readlink(p + "/ns/pid") == ns:
                with open(p + "/cmdline") as f:
                    cmd = f.read().replace("\0", " ").strip()
                with open(p + "/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                out.append((cmd, state))
        except OSError:
            pass
    return out


def test_timed_out_check_leaves_nothing_running(daemon):
    d = daemon
    create(d, "hkill", "--init", "--health-cmd", "sleep 30; echo late", "--health-timeout", "300ms",
           *FAST, "--health-retries", "1000", "busybox", "sleep", "1000")
    t = wait_until(lambda: current(d, "hkill"), timeout=30)
    # checks keep timing out; each is killed with what it started
    wait_until(lambda: any(c == "sleep 30" for c, _ in container_processes(t["pid"])), timeout=30)
    time.sleep(3)
    procs = container_processes(t["pid"])
    live = [c for c, st in procs if c == "sleep 30" and st != "Z"]
    assert len(live) <= 1, procs
    assert current(d, "hkill")["health"] == "starting"
    remove(d, "hkill")


def test_bad_flags_create_nothing(daemon):
    d = daemon
    bad = [
        ("--health-cmd", "true", "--health-retries", "0"),
        ("--health-cmd", "true", "--health-retries", "-1"),
        ("--health-cmd", "true", "--health-interval", "0"),
        ("--health-cmd", "true", "--health-interval", "soon"),
        ("--health-cmd", "true", "--health-timeout", "0s"),
        ("--health-cmd", "true", "--health-start-period", "5"),
        ("--health-cmd", ""),
        ("--health-interval", "1s"),
        ("--no-healthcheck", "--health-cmd", "true"),
        ("--health-cmd", "true", "--no-healthcheck"),
    ]
    for flags in bad:
        r = d.cli("service", "create", "--name", "hflags", *flags, "busybox", "sleep", "1000",
                  check=False)
        assert r.returncode != 0, (flags, r.stdout)
        assert "health" in r.stderr, (flags, r.stderr)
    assert d.api("GET", "/v1/services/hflags").status == 404
    # the API says as much to other clients
    base = {"name": "hapi", "image": "busybox", "args": ["sleep", "1000"]}
    cases = [
        ({"cmd": "true", "retries": 0}, "retries"),
        ({"cmd": "true", "interval_ms": 0}, "interval_ms"),
        ({"cmd": "true", "timeout_ms": -5}, "timeout_ms"),
        ({"cmd": ""}, "cmd"),
        ({"interval_ms": 1000}, "cmd is required"),
        ({"cmd": "true", "every": 1}, "unknown field"),
        ("true", "healthcheck must be an object"),
    ]
    for hc, words in cases:
        r = d.api("POST", "/v1/services", dict(base, healthcheck=hc))
        assert r.status == 400, (hc, r)
        assert words in r.json()["message"] and "healthcheck" in r.json()["message"], r.json()
    assert d.api("GET", "/v1/services/hapi").status == 404
    assert not [s for s in d.api("GET", "/v1/services").json() if s["name"] in ("hflags", "hapi")]


def test_no_healthcheck_and_update(daemon):
    d = daemon
    create(d, "hnone", "--no-healthcheck", "busybox", "sleep", "1000")
    t = d.wait_running("hnone", 1)[0]
    assert "healthcheck" not in d.service("hnone")["spec"]
    assert "health" not in t
    assert "(" not in [l for l in d.cli("service", "ps", "hnone").stdout.splitlines()
                       if t["id"][:12] in l][0]
    # update adds a check: a template change, so the task is replaced
    d.cli("service", "update", "--health-cmd", "true", *FAST, "hnone")
    t2 = wait_health(d, "hnone", "healthy")
    assert t2["id"] != t["id"]
    # and changes one of its fields, keeping the others
    d.cli("service", "update", "--health-retries", "5", "hnone")
    hc = d.service("hnone")["spec"]["healthcheck"]
    assert hc["retries"] == 5 and hc["cmd"] == "true" and hc["interval_ms"] == 200
    wait_until(lambda: current(d, "hnone") and current(d, "hnone")["id"] != t2["id"], timeout=30)
    # --no-healthcheck removes it
    d.cli("service", "update", "--no-healthcheck", "hnone")
    assert "healthcheck" not in d.service("hnone")["spec"]
    t4 = d.wait_running("hnone", 1, version=d.service("hnone")["version"])[0]
    assert "health" not in t4
    r = d.cli("service", "update", "--health-retries", "0", "hnone", check=False)
    assert r.returncode != 0 and "--health-retries" in r.stderr
    remove(d, "hnone")


def test_checks_resume_after_restart(fresh_daemon, tmp_path):
    d = fresh_daemon
    hc, mount = hc_mount(tmp_path)
    (hc / "ok").write_text("")
    create(d, "hrest", *mount, "--health-cmd", "test -f /hc/ok", *FAST, "--health-retries", "2",
           "busybox", "sleep", "1000")
    t = wait_health(d, "hrest", "healthy")
    d.restart()
    # the same container, adopted, checked again
    again = wait_health(d, "hrest", "healthy")
    assert again["id"] == t["id"] and again["pid"] == t["pid"]
    (hc / "ok").unlink()

    def failed():
        x = [x for x in d.tasks("hrest") if x["id"] == t["id"]][0]
        return x if x["state"] == "failed" else None

    x = wait_until(failed, timeout=40, msg=lambda: json.dumps(d.tasks("hrest"), indent=1)[:3000])
    assert "container unhealthy" in x["error"]
    d.wait_running("hrest", 1)


def test_restart_keeps_a_healthy_task_healthy(fresh_daemon):
    """A daemon restart (live restore) does not send a healthy task back to `starting`,
    which would take it out of the routing mesh until its next check (here 10 s away)."""
    d = fresh_daemon
    create(d, "hkeep", "--health-cmd", "true", "--health-interval", "10s", "busybox", "sleep",
           "1000")
    t = wait_health(d, "hkeep", "healthy", timeout=40)
    d.restart()
    end = time.time() + 6
    while time.time() < end:
        x = [x for x in d.tasks("hkeep") if x["id"] == t["id"]][0]
        assert x["state"] == "running" and x.get("health") == "healthy", x
        time.sleep(0.1)


def test_worker_reports_health_with_its_heartbeats(cluster1x1):
    """A worker's reports reach the leader through its session (dispatcher)."""
    c = cluster1x1
    lead, worker = c.leader, c.nodes[1]
    lead.cli("service", "create", "--name", "hw", "-d", *GRACE, "--constraint", "node.role==worker",
             "--health-cmd", "test -f /tmp/ok", *FAST, "--health-retries", "2",
             "--restart-delay", "200ms", "busybox", "sh", "-c",
             "touch /tmp/ok; sleep 3; rm /tmp/ok; exec sleep 1000")
    first = wait_health(lead, "hw", "healthy", timeout=60)
    assert first["node_id"] == c.node_id(worker)

    def failed():
        x = [x for x in lead.tasks("hw") if x["id"] == first["id"]][0]
        return x if x["state"] == "failed" else None

    x = wait_until(failed, timeout=40, msg=lambda: json.dumps(lead.tasks("hw"), indent=1)[:3000])
    assert "container unhealthy" in x["error"] and x["health"] == "unhealthy"
    wait_until(lambda: current(lead, "hw") and current(lead, "hw")["id"] != first["id"], timeout=30)
    lead.cli("service", "rm", "hw")


def daemon_zombies(d):
    """Zombie children of the daemon: nobody reaps them."""
    out = []
    for p in glob.glob("/proc/[0-9]*/status"):
        try:
            with open(p) as f:
                fields = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        if int(fields["PPid"]) == d.proc.pid and fields["State"].strip().startswith("Z"):
            out.append((p, fields["Name"].strip(), fields["NSpid"].split()))
    return out


@pytest.fixture
def cpu_load():
    """Every core busy (two `yes` per core) while the test runs: the races
    of a loaded machine, where crun exec is slow to start its command."""
    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL)
            for _ in range(2 * (os.cpu_count() or 1))]
    try:
        yield
    finally:
        for p in hogs:
            p.kill()
            p.wait()


def test_timed_out_checks_under_load_never_keep_the_container(daemon, cpu_load):
    """Checks killed while crun exec is still starting them: killing crun
    orphaned the command to the daemon (a child subreaper), whose unreaped
    zombie kept the container's init in the kernel's pid namespace teardown:
    `service rm` never ended the task, leave hung and left the mount, bundle
    and cgroups behind."""
    d = daemon
    for round in range(3):
        create(d, "horphan", "--init", "--health-cmd", "sleep 30; echo late",
               "--health-timeout", "300ms",
               *FAST, "--health-retries", "1000", "busybox", "sleep", "1000")
        t = wait_until(lambda: current(d, "horphan"), timeout=60)
        ns = os.readlink("/proc/%d/ns/pid" % t["pid"])
        time.sleep(3)  # a dozen checks, each killed as it starts
        remove(d, "horphan")
        wait_until(lambda: not [z for z in daemon_zombies(d) if len(z[2]) > 1], timeout=10,
                   msg=lambda: daemon_zombies(d))
        assert not [p for p in glob.glob("/proc/[0-9]*") if _pid_ns(p) == ns], round
        wait_until(lambda: not [x for x in d.api("GET", "/v1/tasks").json()
                                if x["service_name"] == "horphan"], timeout=30)


def _pid_ns(proc_dir):
    try:
        return os.readlink(proc_dir + "/ns/pid")
    except OSError:
        return None
