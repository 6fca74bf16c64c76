"""Batch jobs (issue 14): submission with OAR's resource syntax, states,
walltime, hold/resume, rm, FIFO with conservative backfilling, bad input,
the OAR commands (oarsub, oarstat... as links to shoal), dependencies, arrays, advance reservations, best-effort preemption."""
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import SHOAL_BIN, wait_until

# A job that holds its cores until killed, and ends at the kill's SIGTERM: `sleep` or `sh` as the
# container's pid 1 ignores it, and every rm, preemption or cleanup of such a job waited the 5 s
# SIGTERM-to-SIGKILL grace (JOB_KILL_GRACE_MS). The tests of the kill itself keep `sleep 1000`.
HOLD = "trap 'exit 143' TERM; sleep 1000 & wait"


def sub(d, *args):
    return d.cli("job", "sub", *args).stdout.strip()


def job(d, jid):
    r = d.api("GET", "/v1/jobs/%s" % jid)
    assert r.status == 200, r.text
    return r.json()


def wait_state(d, jid, *states, timeout=60):
    try:
        return wait_until(lambda: job(d, jid)["state"] in states and job(d, jid),
                          timeout=timeout)
    except AssertionError:
        raise AssertionError("job %s never reached %s: %s" % (jid, states, job(d, jid)))


def cleanup(d):
    for j in d.api("GET", "/v1/jobs").json():
        if j["state"] not in ("Terminated", "Error"):
            d.cli("job", "rm", j["id"], check=False)
    for j in d.api("GET", "/v1/jobs").json():
        wait_state(d, j["id"], "Terminated", "Error")


@pytest.fixture
def jd(daemon):
    yield daemon
    cleanup(daemon)


def test_job_runs_with_env_and_nodefile(jd):
    d = jd
    host = d.api("GET", "/v1/nodes").json()[0]["hostname"]
    jid = sub(d, "-l", "/nodes=1/core=2,walltime=00:05:00", "-n", "envcheck",
              'test "$SHOAL_JOB_ID" = "$OAR_JOB_ID" && test -n "$SHOAL_JOB_ID" && '
              'test "$(cat $OAR_NODEFILE)" = "$(printf "%s\\n%s" ' + host + ' ' + host + ')" '
              '&& exit 7')
    j = wait_state(d, jid, "Terminated", "Error")
    assert j["state"] == "Terminated", (j["message"], j)
    assert j["exit_code"] == 7, j
    assert j["name"] == "envcheck"
    assert j["assigned"][0]["hostname"] == host and j["assigned"][0]["cores"] == 2
    assert j["started_at"] <= j["stopped_at"]
    assert j["request"] == "/nodes=1/core=2,walltime=0:05:00"
    ls = d.cli("job", "ls", "--state", "Terminated").stdout
    assert jid in ls and "envcheck" in ls
    assert all(j["state"] == "Terminated" for j in d.cli_json("job", "ls", "--state", "Terminated"))


def test_job_logs(jd):
    d = jd
    jid = sub(d, "echo out-$OAR_JOB_ID; echo err-line >&2")
    wait_state(d, jid, "Terminated")
    out = d.cli("job", "logs", jid).stdout
    assert "out-%s" % jid in out and "err-line" in out, out
    r = d.cli("job", "logs", "424242", check=False)
    assert r.returncode == 1 and "not found" in r.stderr


def test_bad_input_refused_nothing_stored(jd):
    d = jd
    before = d.api("GET", "/v1/jobs").json()
    cases = [
        (("-l", "walltime=0", "true"), "walltime must be above zero"),
        (("-l", "nodes=2", "true"), "impossible request: 2 nodes wanted, the cluster has 1"),
        (("-l", "core=999", "true"), "impossible request"),
        (("-l", "gpu=1", "true"), "unknown resource 'gpu'"),
        (("-l", "nodes=two", "true"), "nodes=two"),
        (("-q", "nope", "true"), "unknown queue nope"),
        (("-t", "idempotentx", "true"), "unknown type idempotentx (known: besteffort, idempotent)"),
        (("--image", "nosuch:1", "true"), "No such image"),
    ]
    for args, msg in cases:
        r = d.cli("job", "sub", *args, check=False)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert msg in r.stderr, (args, r.stderr)
    r = d.cli("job", "sub", check=False)
    assert r.returncode == 2 and "requires a COMMAND" in r.stderr
    assert d.api("GET", "/v1/jobs").json() == before
    r = d.api("POST", "/v1/jobs", {"command": "true", "walltime": 3})
    assert r.status == 400 and "unknown field 'walltime'" in r.text
    assert d.api("GET", "/v1/jobs/999999").status == 404
    assert d.api("GET", "/v1/jobs?state=Bogus").status == 400
    r = d.cli("job", "rm", "999999", check=False)
    assert r.returncode == 1 and "job 999999 not found" in r.stderr


def test_walltime_kills_with_error(jd):
    d = jd
    jid = sub(d, "-l", "walltime=0:0:2", "trap 'exit 0' TERM; sleep 100 & wait")
    j = wait_state(d, jid, "Terminated", "Error", timeout=60)
    assert j["state"] == "Error", j
    assert "walltime exceeded" in j["message"], j
    tasks = [t for t in d.api("GET", "/v1/tasks").json() if t["id"] == j["task_id"]]
    assert tasks and tasks[0]["state"] in ("shutdown", "complete", "failed"), tasks


def test_rm_kills_a_running_job(jd):
    d = jd
    jid = sub(d, "-l", "core=1", "sleep 1000")
    j = wait_state(d, jid, "Running")
    d.cli("job", "rm", jid)
    j = wait_state(d, jid, "Error", "Terminated")
    assert j["state"] == "Error" and "deleted by the user" in j["message"], j
    r = d.cli("job", "rm", jid, check=False)
    assert r.returncode == 1 and "already ended" in r.stderr


def test_hold_and_resume(jd):
    d = jd
    big = sub(d, "-l", "core=2", HOLD)
    wait_state(d, big, "Running")
    small = sub(d, "-l", "core=1", "true")
    assert job(d, small)["state"] == "Waiting"
    d.cli("job", "hold", small)
    assert job(d, small)["state"] == "Hold"
    r = d.cli("job", "hold", small, check=False)
    assert r.returncode == 1 and "it is Hold" in r.stderr
    d.cli("job", "rm", big)
    wait_state(d, big, "Error")
    # held: the free cores do not start it
    d.cli("job", "sub", "true")  # a pass runs; a later job may go first
    assert job(d, small)["state"] == "Hold"
    d.cli("job", "resume", small)
    j = wait_state(d, small, "Terminated", "Error")
    assert j["state"] == "Terminated" and j["exit_code"] == 0, (j["message"], j)


def test_fifo_with_conservative_backfilling(jd):
    """2 cores. A holds 1 core for up to 10 min; B wants both (waits for A's
    end); C is short and fits in the hole beside A before B: it runs now; D
    is long: beside A it would still hold a core when B is due, so it waits
    behind B."""
    d = jd
    a = sub(d, "-l", "core=1,walltime=0:10:0", HOLD)
    wait_state(d, a, "Running")
    b = sub(d, "-l", "core=2,walltime=0:1:0", "true")
    d_ = sub(d, "-l", "core=1,walltime=1:0:0", "true")
    c = sub(d, "-l", "core=1,walltime=0:1:0", "true")
    jc = wait_state(d, c, "Terminated")
    assert jc["exit_code"] == 0
    assert job(d, b)["state"] == "Waiting"
    assert job(d, d_)["state"] == "Waiting"
    d.cli("job", "rm", a)
    jb = wait_state(d, b, "Terminated")
    jd_ = wait_state(d, d_, "Terminated")
    assert jb["started_at"] <= jd_["started_at"]
    assert jc["started_at"] < jb["started_at"]


# ---- a small dev cluster ----

def test_two_node_job_and_its_node_file(cluster1x1):
    c = cluster1x1
    lead = c.leader
    c.wait_nodes_ready(2)
    nodes = lead.api("GET", "/v1/nodes").json()
    hosts = sorted(n["hostname"] for n in nodes)
    cores = min(n["resources"]["cpus"] for n in nodes)
    # the node file: one line per core of each node, both nodes, OAR's layout
    jid = sub(lead, "-l", "/nodes=2/core=1,walltime=00:10:00",
              'test "$(sort $OAR_NODEFILE | tr "\\n" " ")" = "%s " && exit 5' % " ".join(hosts))
    j = wait_state(lead, jid, "Terminated", "Error", timeout=120)
    assert j["state"] == "Terminated" and j["exit_code"] == 5, (j["message"], j)
    assert sorted(a["hostname"] for a in j["assigned"]) == hosts
    task = [t for t in lead.api("GET", "/v1/tasks").json() if t["id"] == j["task_id"]][0]
    assert task["node_id"] == j["assigned"][0]["node_id"]  # runs on its first node
    # an interactive two-node job: the shell on its first node, the node file listing both
    r = lead.cli("job", "sub", "-I", "-l", "/nodes=2/core=1,walltime=00:10:00", check=False,
                 input="echo nodes: $(sort -u $SHOAL_NODEFILE)\nexit 4\n")
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "nodes: %s" % " ".join(hosts) in r.stdout, r.stdout
    ij = max(lead.api("GET", "/v1/jobs").json(), key=lambda x: int(x["id"]))
    assert ij["state"] == "Terminated" and ij["exit_code"] == 4, ij
    task = [t for t in lead.api("GET", "/v1/tasks").json() if t["id"] == ij["task_id"]][0]
    assert task["node_id"] == ij["assigned"][0]["node_id"]
    # more nodes than the cluster has: refused at submission
    r = lead.cli("job", "sub", "-l", "nodes=3", "true", check=False)
    assert r.returncode == 1 and "impossible request: 3 nodes wanted, the cluster has 2" in r.stderr
    # a whole-cluster job waits while a one-core job holds a node, then runs
    small = sub(lead, "-l", "core=%d,walltime=0:10:0" % cores, HOLD)
    wait_state(lead, small, "Running", timeout=120)
    big = sub(lead, "-l", "/nodes=2/core=%d" % cores, "true")
    assert job(lead, big)["state"] == "Waiting"
    lead.cli("job", "rm", small)
    j = wait_state(lead, big, "Terminated", "Error", timeout=120)
    assert j["state"] == "Terminated" and j["exit_code"] == 0, (j["message"], j)


def test_oar_rest_round_trip(jd):
    d = jd
    r = d.api("POST", "/oarapi/jobs.json", {"resource": "/nodes=1,walltime=00:10:00",
                                             "command": "sleep 600", "name": "oar1"})
    assert r.status == 201, r.text
    jid = r.json()["id"]
    assert isinstance(jid, int) and r.json()["links"][0]["href"] == "/oarapi/jobs/%d" % jid
    wait_state(d, str(jid), "Running")
    items = d.api("GET", "/oarapi/jobs.json").json()["items"]
    assert [i for i in items if i["id"] == jid][0]["state"] == "Running"
    one = d.api("GET", "/oarapi/jobs/%d.json" % jid).json()
    assert one["name"] == "oar1" and one["command"] == "sleep 600"
    assert one["wanted_resources"] == "/nodes=1/core=1,walltime=0:10:00"
    assert len(one["assigned_network_address"]) == 1
    assert d.api("DELETE", "/oarapi/jobs/%d.json" % jid).status == 200
    j = wait_state(d, str(jid), "Error")
    assert "deleted" in j["message"]
    assert d.api("GET", "/oarapi/jobs/%d" % jid).status == 404
    r = d.api("POST", "/oarapi/jobs.json", {"resource": "nodes=5", "command": "true"})
    assert r.status == 400 and "impossible request" in r.text


@pytest.fixture
def oar_dash(rootfs_tar):
    """A one-node swarm with busybox and the dashboard listener on 127.0.0.1."""
    import tempfile

    from conftest import dashboard_daemon, end_daemon

    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = dashboard_daemon(tmp, rootfs_tar)
    yield d
    cleanup(d)
    end_daemon(d, tmp)


def curl(d, method, path, user=None, body=None):
    """curl against the dashboard listener: (status, headers text, body text)."""
    args = ["curl", "-sS", "-D", "-", "-X", method, "http://127.0.0.1:%d%s" % (d.dashboard_port, path)]
    if user is not None:
        args += ["-u", user]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout
    head, _, text = out.partition("\n\n")  # text mode: CRLF read as LF
    return int(head.split()[1]), head, text


def test_oar_priv_basic_auth_round_trip(oar_dash):
    d = oar_dash
    spec = {"resource": "/nodes=1,walltime=00:10:00", "command": "sleep 600", "name": "priv1"}
    # no, a wrong, or a read-only credential: nothing stored
    for user in (None, "alice:" + "0" * 32, "alice:", ":" + d.admin):
        status, head, text = curl(d, "POST", "/oarapi-priv/jobs.json", user, spec)
        assert status == 401, (user, text)
        assert 'WWW-Authenticate: Basic realm="shoal"' in head, head
    status, _, text = curl(d, "POST", "/oarapi-priv/jobs.json", "alice:" + d.ro, spec)
    assert status == 403 and "read-only" in text, text
    assert d.api("GET", "/v1/jobs").json() == []
    # the admin token as password: the login owns the job, whatever the body says
    status, _, text = curl(d, "POST", "/oarapi-priv/jobs.json", "alice:" + d.admin,
                           dict(spec, user="mallory"))
    assert status == 201, text
    jid = json.loads(text)["id"]
    assert json.loads(text)["links"][0]["href"] == "/oarapi/jobs/%d" % jid
    wait_state(d, str(jid), "Running")
    # reads under /oarapi-priv/ answer as under /oarapi/, with either token
    status, _, text = curl(d, "GET", "/oarapi-priv/jobs.json", "bob:" + d.ro)
    assert status == 200, text
    item = [i for i in json.loads(text)["items"] if i["id"] == jid][0]
    assert item["owner"] == "alice" and item["state"] == "Running", item
    status, _, text = curl(d, "GET", "/oarapi-priv/jobs/%d.json" % jid, "alice:" + d.admin)
    assert status == 200 and json.loads(text)["command"] == "sleep 600", text
    status, head, _ = curl(d, "GET", "/oarapi-priv/jobs/%d.json" % jid)
    assert status == 401 and "WWW-Authenticate: Basic" in head
    # delete: refused without credentials or with the read-only token, done with the admin one
    assert curl(d, "DELETE", "/oarapi-priv/jobs/%d.json" % jid)[0] == 401
    assert curl(d, "DELETE", "/oarapi-priv/jobs/%d.json" % jid, "bob:" + d.ro)[0] == 403
    status, _, text = curl(d, "DELETE", "/oarapi-priv/jobs/%d.json" % jid, "alice:" + d.admin)
    assert status == 200, text
    j = wait_state(d, str(jid), "Error")
    assert "deleted" in j["message"] and j["user"] == "alice"
    # the public routes keep their bearer tokens: basic auth is for /oarapi-priv/
    status, head, _ = curl(d, "GET", "/oarapi/jobs.json", "alice:" + d.admin)
    assert status == 401 and "WWW-Authenticate: Bearer" in head
    # the local socket serves /oarapi-priv/ too (root)
    assert d.api("GET", "/oarapi-priv/jobs/%d.json" % jid).status == 200


def test_rm_right_after_submission_ends_the_job(jd):
    d = jd
    for _ in range(3):
        jid = sub(d, "sleep 1000")
        d.cli("job", "rm", jid)
        j = wait_state(d, jid, "Error", "Terminated")
        assert j["state"] == "Error" and "deleted" in j["message"], j
        if j.get("task_id"):
            wait_until(lambda: [t for t in d.api("GET", "/v1/tasks").json()
                                if t["id"] == j["task_id"]][0]["state"]
                       in ("shutdown", "complete", "failed", "rejected"), timeout=30)


def test_a_job_whose_node_dies_ends_in_error(cluster1x1):
    c = cluster1x1
    lead = c.leader
    c.wait_nodes_ready(2)
    jid = sub(lead, "-l", "/nodes=2/core=1,walltime=0:10:0", "sleep 1000")
    wait_state(lead, jid, "Running", timeout=120)
    worker = [d for d in c.nodes if d is not lead][0]
    c.kill_node(worker)
    j = wait_state(lead, jid, "Error", "Terminated", timeout=60)
    assert j["state"] == "Error" and "is down" in j["message"], j


# ---- the OAR commands: shoal called through links named oarsub, oarstat... ----

def oar(d, tmp_path, cmd, *args, check=True):
    link = tmp_path / cmd
    if not link.exists():
        link.symlink_to(SHOAL_BIN)
    env = dict(os.environ, SHOAL_HOST="unix://" + d.sock, USER="alice")
    r = subprocess.run([str(link)] + [str(a) for a in args], capture_output=True, text=True,
                       env=env, timeout=60)
    if check:
        assert r.returncode == 0, (cmd, args, r.stdout, r.stderr)
    return r


def oarsub(d, tmp_path, *args):
    out = oar(d, tmp_path, "oarsub", *args).stdout
    assert out.startswith("OAR_JOB_ID="), out
    return out.strip().split("=", 1)[1]


def test_oar_commands(jd, tmp_path):
    d = jd
    jid = oarsub(d, tmp_path, "-l", "core=1,walltime=0:10:0", "-n", "oarjob", HOLD)
    j = wait_state(d, jid, "Running")
    assert j["user"] == "alice" and j["name"] == "oarjob"
    lines = oar(d, tmp_path, "oarstat").stdout.splitlines()
    assert lines[0].split()[:2] == ["Job", "id"], lines
    row = [line for line in lines if line.split()[0] == jid][0].split()
    assert row[1:3] == ["oarjob", "alice"] and row[-2:] == ["R", "default"], row
    assert jid in oar(d, tmp_path, "oarstat", "-u").stdout  # $USER
    assert jid in oar(d, tmp_path, "oarstat", "-u", "alice").stdout
    assert jid not in oar(d, tmp_path, "oarstat", "-u", "bob").stdout
    mine = d.cli_json("job", "ls", "-u", "alice")
    assert jid in [j["id"] for j in mine] and all(j["user"] == "alice" for j in mine), mine
    assert d.cli_json("job", "ls", "-u", "bob") == []
    js = json.loads(oar(d, tmp_path, "oarstat", "-j", jid, "-J").stdout)
    assert js[jid]["state"] == "Running" and js[jid]["owner"] == "alice", js
    assert js[jid]["wanted_resources"] == "/nodes=1/core=1,walltime=0:10:00"
    full = oar(d, tmp_path, "oarstat", "-f", "-j", jid).stdout
    assert "Job_Id: %s" % jid in full and "    state = Running" in full, full
    assert oar(d, tmp_path, "oarstat", "-s", "-j", jid).stdout == "%s: Running\n" % jid
    nodes = oar(d, tmp_path, "oarnodes").stdout
    assert "state : Alive" in nodes and "jobs : %s" % jid in nodes, nodes
    res = json.loads(oar(d, tmp_path, "oarnodes", "-J").stdout)
    assert [r for r in res.values() if r["jobs"] == [int(jid)]], res
    assert "1 : Alive" in oar(d, tmp_path, "oarnodes", "-s").stdout
    r = oar(d, tmp_path, "oarhold", jid, check=False)
    assert r.returncode == 1 and "it is Running" in r.stderr, r.stderr
    assert oar(d, tmp_path, "oardel", jid).stdout == "Deleting the job = %s ...REGISTERED.\n" % jid
    assert wait_state(d, jid, "Error")["message"].startswith("deleted by the user")
    assert jid not in oar(d, tmp_path, "oarstat").stdout  # oarstat lists current jobs
    assert "%s: Error" % jid in oar(d, tmp_path, "oarstat", "-s", "-j", jid).stdout
    r = oar(d, tmp_path, "oardel", "999999", check=False)
    assert r.returncode == 1 and "job 999999 not found" in r.stderr


def test_oarsub_hold_resume_and_script(jd, tmp_path):
    d = jd
    big = oarsub(d, tmp_path, "-l", "core=2", HOLD)
    wait_state(d, big, "Running")
    small = oarsub(d, tmp_path, "true")
    assert "held" in oar(d, tmp_path, "oarhold", small).stdout
    assert job(d, small)["state"] == "Hold"
    oar(d, tmp_path, "oarresume", small)
    assert job(d, small)["state"] == "Waiting"
    oar(d, tmp_path, "oardel", big)
    assert wait_state(d, small, "Terminated", "Error")["state"] == "Terminated"
    # -S: #OAR lines of the script, the command line's options win
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\n#OAR -l core=2,walltime=0:05:00\n#OAR -n scanned\n"
                      "#OAR --queue admin\necho hi\n")
    jid = oarsub(d, tmp_path, "-S", "-q", "default", str(script))
    j = job(d, jid)
    assert j["request"] == "/nodes=1/core=2,walltime=0:05:00" and j["name"] == "scanned", j
    assert j["queue"] == "default" and j["command"] == str(script), j


def test_oar_commands_bad_input(jd, tmp_path):
    d = jd
    before = d.api("GET", "/v1/jobs").json()
    for args, code, msg in [
        (("-l", "walltime=0", "true"), 1, "walltime must be above zero"),
        (("-l", "nodes=9", "true"), 1, "impossible request"),
        (("-I", "true"), 2, "-I and -C open a shell: they take no COMMAND"),
        (("-C", "424242"), 1, "not found"),
        ((), 2, "requires a COMMAND"),
        (("-S", str(tmp_path / "nosuch.sh")), 2, "cannot read the script"),
        (("--bogus", "true"), 2, "unknown flag: --bogus"),
    ]:
        r = oar(d, tmp_path, "oarsub", *args, check=False)
        assert r.returncode == code and msg in r.stderr, (args, r.returncode, r.stderr)
        assert r.stdout == "", r.stdout
    bad = tmp_path / "bad.sh"
    bad.write_text("#OAR -O out.txt\ntrue\n")
    r = oar(d, tmp_path, "oarsub", "-S", str(bad), check=False)
    assert r.returncode == 2 and "unsupported #OAR option '-O'" in r.stderr, r.stderr
    bad.write_text("#OAR -p gpu=yes\ntrue\n")  # read, and no node has that label
    r = oar(d, tmp_path, "oarsub", "-S", str(bad), check=False)
    assert r.returncode == 1 and "no node matches the properties gpu=yes" in r.stderr, r.stderr
    assert d.api("GET", "/v1/jobs").json() == before
    r = oar(d, tmp_path, "oardel", check=False)
    assert r.returncode == 2 and "requires at least one JOB_ID" in r.stderr
    r = oar(d, tmp_path, "oarstat", "-j", "999999", check=False)
    assert r.returncode == 1 and "not found" in r.stderr
    r = oar(d, tmp_path, "oarstat", "extra", check=False)
    assert r.returncode == 2 and "unexpected argument" in r.stderr


# ---- dependencies (--after, OAR's -a) and arrays (--array N) ----

def test_after_waits_for_terminated_and_fails_on_error(jd, tmp_path):
    d = jd
    a = sub(d, "-l", "core=1", "sleep 3")
    b = sub(d, "--after", a, "-l", "core=1", "true")
    wait_state(d, a, "Running")
    jb = job(d, b)
    assert jb["state"] == "Waiting" and jb["after"] == [a], jb
    assert wait_until(lambda: job(d, b)["message"] == "waiting for job %s to end" % a)
    ja, jb = wait_state(d, a, "Terminated"), wait_state(d, b, "Terminated", "Error")
    assert jb["state"] == "Terminated" and jb["started_at"] >= ja["stopped_at"], (ja, jb)
    # the job it depends on ends in Error: so does it
    e = sub(d, HOLD)
    f = oarsub(d, tmp_path, "-a", e, "true")  # OAR's -a (--anterior)
    assert job(d, f)["after"] == [e]
    d.cli("job", "rm", e)
    jf = wait_state(d, f, "Terminated", "Error")
    assert jf["state"] == "Error" and jf["message"] == "dependency: job %s ended in Error" % e, jf
    assert "task_id" not in jf
    # after a job that does not exist: refused, nothing stored
    before = [j["id"] for j in d.api("GET", "/v1/jobs").json()]
    r = d.cli("job", "sub", "--after", "999999", "true", check=False)
    assert r.returncode == 1 and "--after: job 999999 not found" in r.stderr, r.stderr
    r = d.api("POST", "/v1/jobs", {"command": "true", "after": "7"})
    assert r.status == 400 and "after must be an array" in r.text
    assert [j["id"] for j in d.api("GET", "/v1/jobs").json()] == before


def test_array_jobs(jd, tmp_path):
    d = jd
    ids = d.cli("job", "sub", "--array", "3", "-n", "arr",
                "echo idx=$OAR_ARRAY_INDEX/$SHOAL_ARRAY_INDEX arr=$OAR_ARRAY_ID/$SHOAL_ARRAY_ID"
                ).stdout.split()
    assert len(ids) == 3 and [int(i) for i in ids] == list(range(int(ids[0]), int(ids[0]) + 3))
    for k, jid in enumerate(ids, 1):
        j = wait_state(d, jid, "Terminated", "Error")
        assert j["state"] == "Terminated", j
        assert j["array_id"] == ids[0] and j["array_index"] == k and j["name"] == "arr", j
        out = d.cli("job", "logs", jid).stdout
        assert "idx=%d/%d arr=%s/%s" % (k, k, ids[0], ids[0]) in out, out
    st = oar(d, tmp_path, "oarstat", "--array", ids[0], "-s").stdout
    assert st == "".join("%s: Terminated\n" % i for i in ids), st
    out = oar(d, tmp_path, "oarsub", "--array", "2", "true").stdout.split()
    assert len(out) == 3 and out[0].startswith("OAR_JOB_ID=") and out[1].startswith("OAR_JOB_ID=")
    assert out[2] == "OAR_ARRAY_ID=" + out[0].split("=")[1], out
    js = json.loads(oar(d, tmp_path, "oarstat", "-J", "-j", out[1].split("=")[1]).stdout)
    assert list(js.values())[0]["array_index"] == 2, js
    # oardel --array: the array's jobs not ended yet
    arr = oar(d, tmp_path, "oarsub", "--array", "2", HOLD).stdout.split()[-1]
    assert arr.startswith("OAR_ARRAY_ID="), arr
    arr = arr.split("=")[1]
    dl = oar(d, tmp_path, "oardel", "--array", arr).stdout
    assert dl == "Deleting the job = %s ...REGISTERED.\nDeleting the job = %d ...REGISTERED.\n" % (
        arr, int(arr) + 1), dl
    for jid in (arr, str(int(arr) + 1)):
        wait_state(d, jid, "Error")
    r = oar(d, tmp_path, "oardel", "--array", arr, check=False)
    assert r.returncode == 1 and "has no job left" in r.stderr, r.stderr
    before = [j["id"] for j in d.api("GET", "/v1/jobs").json()]
    for n in ("0", "1001"):
        r = d.cli("job", "sub", "--array", n, "true", check=False)
        assert r.returncode == 1 and "array must be a number from 1 to 1000" in r.stderr, r.stderr
    r = d.cli("job", "sub", "--array", "x", "true", check=False)
    assert r.returncode == 2, r.stderr
    assert [j["id"] for j in d.api("GET", "/v1/jobs").json()] == before


# ---- advance reservations (-r "YYYY-MM-DD hh:mm:ss") ----

def at(seconds):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + seconds))


def test_reservation_honoured_and_planned_around(jd, tmp_path):
    d = jd
    when = at(12)
    r = sub(d, "-r", when, "-l", "core=2,walltime=0:1:0", "sleep 2")
    jr = job(d, r)
    assert jr["state"] == "Waiting" and jr["reservation_at"] > time.time() * 1000, jr
    wait_until(lambda: job(d, r)["message"] == "reservation: starts at " + when, timeout=10)
    # a long job would still hold a core at the reservation's time: it waits; a short one fits
    # before it and runs now
    long_ = sub(d, "-l", "core=1,walltime=0:10:0", "true")
    short = sub(d, "-l", "core=1,walltime=0:0:5", "true")
    assert wait_state(d, short, "Terminated", "Error")["state"] == "Terminated"
    assert job(d, long_)["state"] == "Waiting"
    # the reservation's resources are taken then: refused, nothing stored
    before = [j["id"] for j in d.api("GET", "/v1/jobs").json()]
    for args, msg in [
        (("-r", when, "-l", "core=1"), "reservation refused: 1 node with 1 core each are not free"),
        (("-r", at(-120)), "is in the past"),
        (("-r", "tomorrow"), 'invalid reservation \'tomorrow\' (want "YYYY-MM-DD hh:mm:ss")'),
        (("-r", at(60), "-l", "core=99"), "impossible request"),
        (("-r", at(60), "--array", "2"), "an array cannot be a reservation"),
    ]:
        res = d.cli("job", "sub", *args, "true", check=False)
        assert res.returncode == 1 and msg in res.stderr, (args, res.stderr)
    assert [j["id"] for j in d.api("GET", "/v1/jobs").json()] == before
    jr = wait_state(d, r, "Terminated", "Error", timeout=60)
    assert jr["state"] == "Terminated", jr
    assert jr["reservation_at"] <= jr["started_at"] < jr["reservation_at"] + 10000, jr
    jl = wait_state(d, long_, "Terminated", "Error")
    assert jl["state"] == "Terminated" and jl["started_at"] >= jr["started_at"], jl
    # oarsub -r says it is valid
    out = oar(d, tmp_path, "oarsub", "-r", at(3600), "-l", "core=1,walltime=0:0:10", "true").stdout
    assert out.splitlines()[1] == "Reservation valid --> OK", out


# ---- best-effort jobs (-t besteffort, -t idempotent) ----

def test_besteffort_preempted_and_idempotent_waits_again(jd):
    d = jd
    be = sub(d, "-t", "besteffort", "-l", "core=2", HOLD)
    assert wait_state(d, be, "Running")["queue"] == "besteffort"
    # a normal job needs one of its cores: the best-effort job is killed, the normal one runs
    n1 = sub(d, "-l", "core=1,walltime=0:10:0", HOLD)
    jb = wait_state(d, be, "Error", "Terminated")
    assert jb["state"] == "Error" and jb["message"] == "besteffort preempted", jb
    wait_state(d, n1, "Running")
    # best-effort jobs run on idle cores only
    be2 = sub(d, "-t", "besteffort", "-t", "idempotent", "-l", "core=1", HOLD)
    wait_state(d, be2, "Running")
    be3 = sub(d, "-t", "besteffort", "-l", "core=1", "true")
    wait_until(lambda: job(d, be3)["message"] == "waiting for idle resources (best-effort)",
               timeout=10)
    assert job(d, be3)["state"] == "Waiting"
    # idempotent: preempted, it waits again (same id) instead of ending in Error
    n2 = sub(d, "-l", "core=1,walltime=0:10:0", HOLD)
    wait_state(d, n2, "Running")
    j2 = wait_state(d, be2, "Waiting")
    assert j2["resubmitted"] == 1 and "task_id" not in j2, j2
    assert j2["message"] == "waiting for idle resources (best-effort)", j2
    # the normal jobs end: the best-effort ones run
    d.cli("job", "rm", n1, n2)
    assert wait_state(d, be3, "Terminated", "Error")["state"] == "Terminated"
    wait_state(d, be2, "Running")
    r = d.cli("job", "sub", "-t", "idempotent,besteffort", "true", check=False)
    assert r.returncode == 1 and "unknown type idempotent,besteffort" in r.stderr, r.stderr


# ---- the views' data: Gantt, resources (OAR's and /v1) ----

def test_gantt_plans_a_waiting_job_and_resources_show_cores(jd, tmp_path):
    """2 cores: A holds both for 10 min; B waits, planned at A's walltime end
    (the plan is computed for the answer, nothing is written on GET)."""
    d = jd
    a = sub(d, "-l", "core=2,walltime=0:10:0", "-n", "holder", HOLD)
    ja = wait_state(d, a, "Running")
    b = sub(d, "-l", "core=1,walltime=0:5:0", "true")
    wait_until(lambda: job(d, b)["message"] == "waiting for resources", timeout=10)
    before = job(d, b)
    g = d.api("GET", "/v1/jobs/gantt").json()
    assert g["from"] < g["now"] < g["to"]
    host = d.api("GET", "/v1/nodes").json()[0]["hostname"]
    assert [(n["hostname"], n["cores"], n["state"]) for n in g["nodes"]] == [(host, 2, "Alive")]
    bars = {j["id"]: j for j in g["jobs"]}
    assert bars[a]["planned"] is False and bars[a]["start"] == ja["started_at"]
    assert bars[a]["stop"] == ja["started_at"] + 600000 and bars[a]["name"] == "holder"
    assert bars[b]["planned"] is True and bars[b]["state"] == "Waiting"
    assert bars[b]["start"] == ja["started_at"] + 600000, (bars[b], ja)
    assert bars[b]["stop"] == bars[b]["start"] + 300000
    assert bars[b]["assigned"][0]["hostname"] == host and bars[b]["assigned"][0]["cores"] == 1
    assert job(d, b) == before  # a GET never writes
    # a reservation sits at its time
    r = sub(d, "-r", at(3600), "-l", "core=1,walltime=0:1:0", "true")
    bars = {j["id"]: j for j in d.api("GET", "/v1/jobs/gantt").json()["jobs"]}
    assert bars[r]["planned"] is True and bars[r]["start"] == job(d, r)["reservation_at"]
    assert bars[r]["stop"] == bars[r]["start"] + 60000
    d.cli("job", "rm", r)
    # a window that ends before now still lists the current jobs; bad windows are refused
    assert d.api("GET", "/v1/jobs/gantt?from=%d&to=%d" % (g["now"], g["now"] - 1)).status == 400
    assert d.api("GET", "/v1/jobs/gantt?from=abc").status == 400
    assert d.api("GET", "/v1/jobs/gantt?to=99999999999999999999").status == 400  # out of range
    # every core with the job holding it
    cores = d.api("GET", "/v1/resources").json()["items"]
    assert [(c["network_address"], c["cpuset"], c["status"], c["job_id"]) for c in cores] == \
        [(host, 0, "job", a), (host, 1, "job", a)]
    # OAR's shape
    for path in ("/oarapi/resources.json", "/oarapi/resources"):
        r = d.api("GET", path)
        ctype = {k.lower(): v for k, v in r.headers.items()}["content-type"]
        assert r.status == 200 and ctype.startswith("application/json"), path
        o = r.json()
        assert o["total"] == 2 and o["offset"] == 0 and isinstance(o["api_timestamp"], int)
        assert o["links"] == [{"href": "/oarapi/resources.json", "rel": "self"}]
        assert [(i["resource_id"], i["id"], i["network_address"], i["state"], i["core"],
                 i["jobs"]) for i in o["items"]] == \
            [(1, 1, host, "Alive", 0, [int(a)]), (2, 2, host, "Alive", 1, [int(a)])]
        # the same resources as oarnodes numbers them
        oarn = json.loads(oar(d, tmp_path, "oarnodes", "-J").stdout)
        assert {str(i["resource_id"]): {k: i[k] for k in ("resource_id", "network_address",
                                                           "state", "core", "jobs")}
                for i in o["items"]} == oarn
    # OAR's job routes beside them
    assert d.api("GET", "/oarapi/jobs/%s.json" % b).json()["state"] == "Waiting"
    assert d.api("DELETE", "/oarapi/jobs/%s.json" % b).status == 200
    d.cli("job", "rm", a)
    wait_state(d, a, "Error")
    wait_until(lambda: [c["status"] for c in d.api("GET", "/v1/resources").json()["items"]]
               == ["free", "free"], timeout=10)
    # ended jobs stay on the time line, at their run
    bars = {j["id"]: j for j in d.api("GET", "/v1/jobs/gantt").json()["jobs"]}
    assert bars[a]["state"] == "Error" and bars[a]["stop"] == job(d, a)["stopped_at"]
    assert b not in bars  # deleted before it ran: never on the time line


def test_job_history_bounded(fresh_daemon):
    d = fresh_daemon
    with open(d.config_path) as f:
        cfg = json.load(f)
    cfg["job-history"] = 3
    with open(d.config_path, "w") as f:
        json.dump(cfg, f)
    d.restart()
    # one after another, so that the ends come in the order of the ids (on 2 cores, the
    # third of jobs submitted together could end before the second)
    ids = []
    for _ in range(5):
        jid = sub(d, "true")
        wait_until(lambda: job(d, jid)["state"] in ("Terminated", "Error"), timeout=60)
        ids.append(jid)
    # the two oldest finished are removed by the leader's pass, their tasks with them
    wait_until(lambda: [j["id"] for j in d.api("GET", "/v1/jobs").json()] == ids[2:], timeout=20)
    tasks = [t for t in d.api("GET", "/v1/tasks").json() if t.get("job_id")]
    assert sorted(t["job_id"] for t in tasks) == sorted(ids[2:]), tasks
    # a bad setting is refused at start
    cfg["job-history"] = 0
    with open(d.config_path, "w") as f:
        json.dump(cfg, f)
    d.stop()
    r = subprocess.run([SHOAL_BIN, "daemon", "--state-dir", d.state_dir, "--run-dir", d.run_dir,
                        "--config", d.config_path], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "job-history must be a number of jobs above zero" in r.stderr, r
    del cfg["job-history"]
    with open(d.config_path, "w") as f:
        json.dump(cfg, f)
    d.start()


# ---- interactive jobs: job sub -I / oarsub -I, job connect / oarsub -C ----

def pty_run(argv, env, steps, timeout=60):
    """Runs argv on a new terminal; for each (text, wanted) types text and
    reads until wanted shows. Returns (exit code, everything read)."""
    import ptyutil
    pid, fd = ptyutil.spawn(argv, env)
    seen = b""
    try:
        for text, wanted in steps:
            if text is not None:
                os.write(fd, text.encode())
            seen += ptyutil.read_until(fd, wanted.encode(), timeout)
            assert wanted.encode() in seen, (wanted, seen)
        code, rest = ptyutil.finish(pid, fd, timeout)
        return code, (seen + rest).decode(errors="replace")
    finally:
        ptyutil.kill(pid)
        os.close(fd)


def oar_piped(d, tmp_path, stdin, cmd, *args):
    """An OAR command (through its link) with `stdin` piped in."""
    link = tmp_path / cmd
    if not link.exists():
        link.symlink_to(SHOAL_BIN)
    return subprocess.run([str(link)] + list(args), input=stdin + "\n", capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, SHOAL_HOST="unix://" + d.sock))


def last_job(d):
    return max(d.api("GET", "/v1/jobs").json(), key=lambda j: int(j["id"]))


def test_interactive_job_through_a_terminal(jd):
    d = jd
    env = dict(os.environ, SHOAL_HOST="unix://" + d.sock, SHELL="/nonexistent/shell")
    code, out = pty_run(
        [SHOAL_BIN, "job", "sub", "-I", "-l", "core=1,walltime=0:5:0"], env,
        [(None, "Connect to job"), (None, "# "), ("echo $((6*7))\r", "42"),
         ("echo id=$SHOAL_JOB_ID.\r", "id="), ("exit 3\r", "exit 3")])
    j = last_job(d)
    assert "id=%s." % j["id"] in out, out
    assert code == 3, out
    j = wait_state(d, j["id"], "Terminated", "Error")
    assert j["state"] == "Terminated" and j["exit_code"] == 3, j
    assert j["name"] == "interactive"


def test_interactive_job_interrupted_while_waiting_is_deleted(jd):
    d = jd
    cores = d.api("GET", "/v1/nodes").json()[0]["resources"]["cpus"]
    big = sub(d, "-l", "core=%d,walltime=0:5:0" % cores, HOLD)
    wait_state(d, big, "Running")
    env = dict(os.environ, SHOAL_HOST="unix://" + d.sock)
    code, out = pty_run([SHOAL_BIN, "job", "sub", "-I", "-l", "core=1,walltime=0:5:0"], env,
                        [(None, "Waiting for job"), ("\x03", "deleted")])
    assert code == 1 and "interrupted" in out, out
    j = last_job(d)
    assert j["id"] != big and wait_state(d, j["id"], "Terminated", "Error")["state"] == "Error"


def test_interactive_job_without_a_terminal(jd, tmp_path):
    d = jd
    r = d.cli("job", "sub", "-I", "-l", "core=1,walltime=0:5:0",
              input="echo hi-$((6*7))\necho id=$SHOAL_JOB_ID.\nexit 0\n")
    j = last_job(d)
    assert "hi-42" in r.stdout and "id=%s." % j["id"] in r.stdout, r.stdout
    j = wait_state(d, j["id"], "Terminated", "Error")
    assert j["state"] == "Terminated" and j["exit_code"] == 0, j
    # oarsub -I: the same, its id said as OAR_JOB_ID=
    r = oar_piped(d, tmp_path, "echo oar-$OAR_JOB_ID", "oarsub", "-I", "-l", "core=1")
    j = last_job(d)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "OAR_JOB_ID=%s" % j["id"] in r.stderr and "oar-%s" % j["id"] in r.stdout, r
    assert wait_state(d, j["id"], "Terminated", "Error")["state"] == "Terminated"


def test_connect_to_a_running_job(jd, tmp_path):
    d = jd
    jid = sub(d, "-l", "core=1,walltime=0:5:0", HOLD)
    wait_state(d, jid, "Running")
    r = d.cli("job", "connect", jid, input="hostname\necho in-$SHOAL_JOB_ID\n")
    assert "in-%s" % jid in r.stdout and r.stdout.strip().splitlines()[0], r.stdout
    assert job(d, jid)["state"] == "Running"  # the job goes on
    r = oar_piped(d, tmp_path, "echo oarc-$OAR_JOB_ID; exit 5", "oarsub", "-C", jid)
    assert r.returncode == 5 and "oarc-%s" % jid in r.stdout, (r.stdout, r.stderr)
    assert job(d, jid)["state"] == "Running"
    # an unknown job, a finished one: said, non-zero
    r = d.cli("job", "connect", "424242", check=False)
    assert r.returncode == 1 and "not found" in r.stderr, r.stderr
    d.cli("job", "rm", jid)
    wait_state(d, jid, "Terminated", "Error")
    r = d.cli("job", "connect", jid, check=False)
    assert r.returncode == 1 and "is not running" in r.stderr, r.stderr
