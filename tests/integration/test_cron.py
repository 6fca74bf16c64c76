"""Periodic jobs (issue 16): `service create --mode replicated-job --schedule CRON` on one daemon.
Schedules have a minute's resolution: a job's two fires take up to two minutes, so its daemon
starts with the session and the test runs after the rest (conftest.starts_early)."""
import json
import os
import shutil
import tempfile
import time

from conftest import Daemon, end_daemon, make_rootfs_tar, pid_alive, starts_early, wait_until


def _ended_runs(d, name):
    runs = d.service(name).get("runs", [])
    return [r for r in runs if "ended_at" in r]


def next_two_minutes(margin=10):
    """`M,M+1 * * * *` of the next two minutes that begin at least margin seconds from now (UTC):
    two fires 60 s apart, then none for an hour. Not `* * * * *`: the test runs some twenty
    minutes on, and of twenty runs the first two would have left the task history (5 per slot)."""
    first = int(time.time() + margin) // 60 + 1
    return "%d,%d * * * *" % (first % 60, (first + 1) % 60)


class TwoFiresJob:
    """A daemon of its own with the job "tick" of two fires a minute apart, created as the
    session begins: its fires (60 to 130 s on) come while the other modules run."""

    def __init__(self):
        self.d = self.tmp = self.error = None

    def start(self):
        try:
            self.tmp = tempfile.mkdtemp(prefix="shoal-it-")
            self.d = Daemon(self.tmp)
            self.d.start()
            self.d.init_swarm()
            self.d.import_image(make_rootfs_tar(os.path.join(self.tmp, "busybox.tar")))
            self.d.cli("service", "create", "--name", "tick", "--mode", "replicated-job",
                       "--schedule", next_two_minutes(), "--stop-grace-period", "1s", "busybox", "sh",
                       "-c", "exit 7")
        except Exception as e:  # noqa: BLE001 - raised again by the test
            self.error = e

    def daemon(self):
        """The daemon, once created (or what its creation raised)."""
        if self.error is not None:
            raise self.error
        return self.d

    def end(self):
        """Its daemon torn down, if still there: by the test (the checks of end_daemon), else
        at the session's end."""
        if self.d is not None and self.d.proc is not None:
            self.d.teardown()
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.d = None

    def end_in_test(self):
        d, self.d = self.d, None
        end_daemon(d, self.tmp)


TWO_FIRES = TwoFiresJob()


@starts_early(TWO_FIRES)
def test_job_scheduled_twice_runs_twice_with_exit_codes():
    if TWO_FIRES.d is None and TWO_FIRES.error is None:  # run without the session's start
        TWO_FIRES.start()
    try:
        check_two_runs(TWO_FIRES.daemon())
    finally:
        if TWO_FIRES.d is not None:
            TWO_FIRES.end_in_test()


def check_two_runs(d):
    spec = d.service("tick")["spec"]
    assert (spec["schedule_tz"], spec["schedule_overlap"], spec["restart_condition"]) == \
        ("UTC", "skip", "none"), spec
    runs = wait_until(lambda: len(_ended_runs(d, "tick")) >= 2 and _ended_runs(d, "tick"),
                      timeout=150, msg=lambda: json.dumps(d.service("tick"), indent=1))
    first, second = runs[0], runs[1]
    assert (first["run"], second["run"]) == (1, 2), runs
    assert second["scheduled_at"] - first["scheduled_at"] == 60000, runs
    for r in (first, second):
        assert r["scheduled_at"] % 60000 == 0 and r["started_at"] >= r["scheduled_at"], r
        assert r["ended_at"] >= r["started_at"], r
        assert (r["state"], r["exit_codes"]) == ("failed", [7]), r
    done = [t for t in d.tasks("tick") if t.get("run") in (1, 2)]
    assert sorted(t["run"] for t in done) == [1, 2], done
    assert all(t["exit_code"] == 7 and t["desired_state"] == "shutdown" for t in done), done
    out = d.cli("service", "runs", "tick").stdout.splitlines()
    assert out[0].split()[:3] == ["RUN", "SCHEDULED", "STARTED"], out
    assert [row.split()[0] for row in out[1:3]] == ["1", "2"], out
    assert all(row.split()[-2:] == ["failed", "7"] for row in out[1:3]), out
    assert d.cli_json("service", "runs", "tick")[:2] == runs[:2]
    ls = [line for line in d.cli("service", "ls").stdout.splitlines() if " tick " in line]
    assert "replicated-job" in ls[0] and "0/1 (0/1 completed, 1 failed)" in ls[0], ls
    rows = [line for line in d.cli("service", "ps", "tick").stdout.splitlines() if "tick.1" in line]
    assert len(rows) >= 2 and all("Failed" in row for row in rows[:2]), rows
    pids = [t["pid"] for t in d.tasks("tick") if t.get("pid")]
    d.cli("service", "rm", "tick")
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=20)


def test_bad_schedule_is_refused_and_nothing_stored(daemon):
    d = daemon
    cases = [
        (("--mode", "replicated-job", "--schedule", "61 * * * *"),
         "minute field: 61 is out of range 0-59"),
        (("--mode", "replicated-job", "--schedule", "0 3 * *"), "must have 5 fields"),
        (("--mode", "replicated-job", "--schedule", "0 3 * * moon"), "day-of-week field"),
        (("--mode", "replicated-job", "--schedule", "@daily", "--schedule-tz", "Mars/Base"),
         "unknown time zone 'Mars/Base'"),
        (("--mode", "replicated-job", "--schedule", "CRON_TZ=Mars/Base @daily"),
         "unknown time zone 'Mars/Base'"),
        (("--schedule", "@daily"), "replicated-job"),
    ]
    for args, message in cases:
        r = d.cli("service", "create", "--name", "badjob", *args, "busybox", "true", check=False)
        assert r.returncode != 0 and message in r.stderr, (args, r.stderr)
        assert "badjob" not in d.cli("service", "ls").stdout


def test_schedule_update_checked_as_create(daemon):
    d = daemon
    d.cli("service", "create", "--name", "yearly", "--mode", "replicated-job", "--schedule",
          "@yearly", "busybox", "true")
    assert d.service("yearly")["replicas_desired"] == 0 and not d.tasks("yearly")
    r = d.cli("service", "update", "--schedule", "0 25 * * *", "yearly", check=False)
    assert r.returncode != 0 and "hour field: 25 is out of range 0-23" in r.stderr, r.stderr
    assert d.service("yearly")["spec"]["schedule"] == "@yearly"
    d.cli("service", "update", "--schedule", "30 4 * * mon-fri", "--schedule-overlap", "queue",
          "yearly")
    spec = d.service("yearly")["spec"]
    assert (spec["schedule"], spec["schedule_overlap"]) == ("30 4 * * mon-fri", "queue"), spec
    d.cli("service", "rm", "yearly")


def test_named_time_zones(daemon):
    d = daemon
    d.cli("service", "create", "--name", "paris", "--mode", "replicated-job", "--schedule",
          "0 3 * * *", "--schedule-tz", "Europe/Paris", "busybox", "true")
    spec = d.service("paris")["spec"]
    assert (spec["schedule"], spec["schedule_tz"]) == ("0 3 * * *", "Europe/Paris"), spec
    # cron's CRON_TZ= prefix: stored as the zone
    d.cli("service", "create", "--name", "tokyo", "--mode", "replicated-job", "--schedule",
          "CRON_TZ=Asia/Tokyo 30 4 * * mon-fri", "busybox", "true")
    spec = d.service("tokyo")["spec"]
    assert (spec["schedule"], spec["schedule_tz"]) == ("30 4 * * mon-fri", "Asia/Tokyo"), spec
    d.cli("service", "update", "--schedule-tz", "America/New_York", "tokyo")
    assert d.service("tokyo")["spec"]["schedule_tz"] == "America/New_York"
    r = d.cli("service", "update", "--schedule-tz", "Europe/Atlantis", "tokyo", check=False)
    assert r.returncode != 0 and "unknown time zone 'Europe/Atlantis'" in r.stderr, r.stderr
    d.cli("service", "rm", "paris")
    d.cli("service", "rm", "tokyo")


def test_job_without_schedule_runs_once_and_create_waits_for_it(daemon):
    d = daemon
    r = d.cli("service", "create", "--name", "once", "--mode", "replicated-job", "--replicas", "2",
              "busybox", "sh", "-c", "exit 0")
    assert "converged" in r.stdout, r.stdout + r.stderr
    ts = d.tasks("once")
    assert len(ts) == 2 and all(t["state"] == "complete" and t["run"] == 1 for t in ts), ts
    runs = wait_until(lambda: _ended_runs(d, "once"))
    assert [(r["run"], r["state"], r["exit_codes"]) for r in runs] == [(1, "complete", [0, 0])]
    d.cli("service", "rm", "once")
