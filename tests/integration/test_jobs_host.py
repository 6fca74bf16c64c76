"""Host jobs (issue 14): `job sub --host` runs the job as a process of the
node's host (admin credentials only), with the environment and node file of
container jobs, confined to its cores, walltime and rm killing its process
group; a node's daemon.json "host-jobs": false refuses them; "job-image"
names container jobs' default image."""
import http.client
import json
import os
import tempfile

import pytest

from conftest import dashboard_daemon, end_daemon, pid_alive, wait_until
from test_jobs import cleanup, sub, wait_state


@pytest.fixture
def jd(daemon):
    yield daemon
    cleanup(daemon)


def test_host_job_runs_on_the_host(jd, tmp_path):
    d = jd
    node = d.api("GET", "/v1/nodes").json()[0]
    mark = str(tmp_path / "mark")
    jid = sub(d, "--host", "-l", "core=1,walltime=0:5:0",
              'echo "$SHOAL_JOB_ID $OAR_JOB_ID" > %s; cat "$OAR_NODEFILE" >> %s; '
              'grep Cpus_allowed_list /proc/self/status; grep -E "^[0-9]+:cpuset:" /proc/self/cgroup; '
              'echo out-line; echo err-line >&2; exit 5'
              % (mark, mark))
    j = wait_state(d, jid, "Terminated", "Error")
    assert j["state"] == "Terminated" and j["exit_code"] == 5, j
    assert j.get("host") is True and "image" not in j, j
    with open(mark) as f:
        assert f.read().split("\n") == ["%s %s" % (jid, jid), node["hostname"], ""]
    logs = d.cli("job", "logs", jid).stdout
    assert "out-line" in logs and "err-line" in logs, logs
    cpus = [l.split(":", 1)[1].strip() for l in logs.splitlines() if "Cpus_allowed_list" in l]
    assert cpus == [str(j["assigned"][0]["cpuset"][0])], (cpus, j)
    if os.path.isdir("/sys/fs/cgroup/cpuset"):  # v1/hybrid: in its own cpuset cgroup
        cgroups = [l.split(":", 2)[2] for l in logs.splitlines() if ":cpuset:" in l]
        assert len(cgroups) == 1 and cgroups[0].startswith("/shoal"), (cgroups, logs)
        assert cgroups[0].rstrip("/") != "/shoal", cgroups
    assert "host" in d.cli("job", "inspect", jid).stdout
    # the node file, written on the host, is removed once the job's task is cleaned up
    wait_until(lambda: not os.path.exists("/tmp/shoal-nodefile-%s" % jid), timeout=20)


def test_many_host_jobs_ending_together_each_end_with_their_code_and_log(jd):
    """An array of short host jobs, ending close together on the node's cores
    (their starts, reports and ends batched in shared entries and passes):
    each reaches Terminated with its own exit code, log and node file."""
    d = jd
    node = d.api("GET", "/v1/nodes").json()[0]
    ids = d.cli("job", "sub", "--host", "--array", "24", "-l", "core=1,walltime=0:5:0",
                'echo "idx=$SHOAL_ARRAY_INDEX node=$(cat "$OAR_NODEFILE")"; '
                'exit $((SHOAL_ARRAY_INDEX % 4))').stdout.split()
    assert len(ids) == 24, ids
    for k, jid in enumerate(ids, 1):
        j = wait_state(d, jid, "Terminated", "Error")
        assert j["state"] == "Terminated" and j["exit_code"] == k % 4, j
        assert j.get("started_at") and j["stopped_at"] >= j["started_at"], j
        out = d.cli("job", "logs", jid).stdout
        assert "idx=%d node=%s" % (k, node["hostname"]) in out, out


def test_host_job_walltime_and_rm_kill_its_processes(jd, tmp_path):
    d = jd
    pids = str(tmp_path / "pids")
    jid = sub(d, "--host", "-l", "walltime=0:0:2", "sleep 100 & echo $! > %s; sleep 100" % pids)
    j = wait_state(d, jid, "Terminated", "Error", timeout=60)
    assert j["state"] == "Error" and "walltime exceeded" in j["message"], j
    with open(pids) as f:
        background = int(f.read())
    wait_until(lambda: not pid_alive(background), timeout=20)
    jid = sub(d, "--host", "sleep 1000 & echo $! > %s; wait" % pids)
    wait_state(d, jid, "Running")
    wait_until(lambda: os.path.getsize(pids) > 0 and open(pids).read() != str(background) + "\n",
               timeout=20)
    with open(pids) as f:
        background = int(f.read())
    assert pid_alive(background)
    nodefile = "/tmp/shoal-nodefile-%s" % jid
    assert os.path.exists(nodefile)
    d.cli("job", "rm", jid)
    j = wait_state(d, jid, "Error", "Terminated")
    assert "deleted by the user" in j["message"], j
    wait_until(lambda: not pid_alive(background), timeout=20)
    wait_until(lambda: not os.path.exists(nodefile), timeout=20)


def test_host_job_bad_input(jd):
    d = jd
    before = d.api("GET", "/v1/jobs").json()
    r = d.cli("job", "sub", "--host", "--image", "busybox", "true", check=False)
    assert r.returncode == 2 and "--host and --image exclude each other" in r.stderr, r
    r = d.cli("job", "sub", "--host", "-I", check=False)
    assert r.returncode == 2 and "not with --host" in r.stderr, r
    r = d.api("POST", "/v1/jobs", {"command": "true", "host": "yes"})
    assert r.status == 400 and "host must be true or false" in r.text, r.text
    r = d.api("POST", "/v1/jobs", {"command": "true", "host": True, "image": "busybox"})
    assert r.status == 400 and "exclude each other" in r.text, r.text
    assert d.api("GET", "/v1/jobs").json() == before


@pytest.fixture
def configured(rootfs_tar):
    """A daemon whose daemon.json refuses host jobs and names a default job
    image, with the dashboard (its tokens are credentials)."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = dashboard_daemon(tmp, rootfs_tar, config={"host-jobs": False, "job-image": "nosuch:7"})
    yield d
    cleanup(d)
    end_daemon(d, tmp)


def test_host_jobs_refused_by_config_and_non_admins(configured):
    d = configured
    # the node's "host-jobs": false: the job fails there, with why
    jid = sub(d, "--host", "true")
    j = wait_state(d, jid, "Terminated", "Error")
    assert j["state"] == "Error" and "refuses host jobs" in j["message"], j
    # "job-image": a container job without --image gets it; --image still wins
    r = d.cli("job", "sub", "true", check=False)
    assert r.returncode == 1 and "nosuch:7" in r.stderr, r
    jid = sub(d, "--image", "busybox:latest", "true")
    assert wait_state(d, jid, "Terminated", "Error")["state"] == "Terminated"
    # the read-only dashboard token may not submit; the admin token may
    def post(token, body):
        conn = http.client.HTTPConnection("127.0.0.1", d.dashboard_port, timeout=10)
        try:
            conn.request("POST", "/v1/jobs", body=json.dumps(body),
                         headers={"Authorization": "Bearer " + token,
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    status, text = post(d.ro, {"command": "true", "host": True})
    assert status == 403 and "permission denied" in text, (status, text)
    status, text = post(d.admin, {"command": "true", "host": True})
    assert status == 201, (status, text)
