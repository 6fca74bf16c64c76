"""Batch jobs (issue 14): a job confined to the cores it was given (a
cpuset), property filters on node labels (-p), and services' reserved cores
shared with jobs without overcommitting."""
import time

import pytest

from conftest import wait_until
from test_jobs import HOLD, cleanup, job, sub, wait_state


@pytest.fixture
def jd(daemon):
    yield daemon
    cleanup(daemon)


def allowed_cpus(d, jid):
    def line():
        out = d.cli("job", "logs", jid).stdout
        return [l.split("Cpus_allowed_list:", 1)[1] for l in out.splitlines()
                if "Cpus_allowed_list:" in l]
    return wait_until(line, timeout=30, msg=lambda: repr((d.cli("job", "logs", jid, check=False),
                                                     job(d, jid))))[0].strip()


def test_job_confined_to_its_cores(jd):
    d = jd
    node = d.api("GET", "/v1/nodes").json()[0]
    if node["resources"]["cpus"] < 2:
        pytest.skip("needs a node with 2 cores")
    show = "grep Cpus_allowed_list /proc/self/status; " + HOLD
    first = sub(d, "-l", "core=1,walltime=0:10:0", show)
    j1 = wait_state(d, first, "Running")
    second = sub(d, "-l", "core=1,walltime=0:10:0", show)
    j2 = wait_state(d, second, "Running")
    c1, c2 = j1["assigned"][0]["cpuset"], j2["assigned"][0]["cpuset"]
    assert len(c1) == 1 and len(c2) == 1 and c1 != c2, (c1, c2)
    assert allowed_cpus(d, first) == str(c1[0])
    assert allowed_cpus(d, second) == str(c2[0])
    # job inspect shows which cores, the Resources view the same
    assert '"cpuset"' in d.cli("job", "inspect", first).stdout
    items = d.api("GET", "/v1/resources").json()["items"]
    held = {i["cpuset"]: i["job_id"] for i in items if i["node_id"] == node["id"]}
    assert held[c1[0]] == first and held[c2[0]] == second, held
    d.cli("job", "rm", first)
    d.cli("job", "rm", second)
    # freed: a two-core job gets both
    both = sub(d, "-l", "core=2,walltime=0:10:0", show)
    jb = wait_state(d, both, "Running")
    assert sorted(jb["assigned"][0]["cpuset"]) == [0, 1]
    assert allowed_cpus(d, both) == "0-1"


# ---- property filters (-p) on a two-node cluster ----

def test_property_filters_select_labelled_nodes(cluster1x1, tmp_path):
    c = cluster1x1
    lead = c.leader
    c.wait_nodes_ready(2)
    nodes = sorted(lead.api("GET", "/v1/nodes").json(), key=lambda n: n["hostname"])
    gpu, plain = nodes[1], nodes[0]
    lead.cli("node", "update", "--label-add", "gpu=yes", "--label-add", "rack=a", gpu["id"])
    lead.cli("node", "update", "--label-add", "rack=b", plain["id"])
    # each filter lands on the node it names, whichever node the scheduler would pick
    for props, want in (("gpu='yes'", gpu), ("gpu!='yes'", plain), ("rack='b' OR gpu='no'", plain),
                        ("(rack='a' or rack='b') and not gpu='yes'", plain),
                        ("host='%s'" % gpu["hostname"], gpu)):
        for _ in range(2):
            jid = sub(lead, "-p", props, "true")
            j = wait_state(lead, jid, "Terminated", "Error", timeout=120)
            assert j["state"] == "Terminated", (props, j)
            assert j["assigned"][0]["node_id"] == want["id"], (props, j["assigned"])
            assert j["properties"] == props
    # no node matches, too few match, malformed: refused at submission, saying why
    r = lead.cli("job", "sub", "-p", "gpu='no'", "true", check=False)
    assert r.returncode == 1 and "no node matches the properties gpu='no'" in r.stderr, r.stderr
    r = lead.cli("job", "sub", "-l", "nodes=2", "-p", "rack='a'", "true", check=False)
    assert r.returncode == 1 and "2 nodes wanted, 1 node matches the properties rack='a'" in r.stderr
    r = lead.cli("job", "sub", "-p", "gpu='yes' rack='a'", "true", check=False)
    assert r.returncode == 1, r.stderr
    assert "invalid property filter \"gpu='yes' rack='a'\": expected AND, OR or the end at column 11" \
        in r.stderr
    # oarsub -p and the REST forms (OAR's "property", shoal's "properties")
    from test_jobs import oarsub
    jid = oarsub(lead, tmp_path, "-p", "gpu='yes'", "true")
    assert wait_state(lead, jid, "Terminated", timeout=120)["assigned"][0]["node_id"] == gpu["id"]
    r = lead.api("POST", "/oarapi/jobs.json", {"resource": "/nodes=1", "command": "true",
                                                "property": "rack='b'"})
    assert r.status == 201, r.text
    j = wait_state(lead, str(r.json()["id"]), "Terminated", timeout=120)
    assert j["assigned"][0]["node_id"] == plain["id"]
    oar_view = lead.api("GET", "/oarapi/jobs/%s.json" % j["id"]).json()
    assert oar_view["properties"] == "rack='b'", oar_view
    r = lead.api("POST", "/v1/jobs", {"command": "true", "properties": "gpu="})
    assert r.status == 400 and "expected a value" in r.text, r.text
    # a filtered job waits for its node while the other node is free
    hold = sub(lead, "-p", "gpu='yes'", "-l", "core=%d" % gpu["resources"]["cpus"], HOLD)
    wait_state(lead, hold, "Running", timeout=120)
    waiting = sub(lead, "-p", "gpu='yes'", "true")
    time.sleep(2)
    assert job(lead, waiting)["state"] == "Waiting"
    lead.cli("job", "rm", hold)
    j = wait_state(lead, waiting, "Terminated", timeout=120)
    assert j["assigned"][0]["node_id"] == gpu["id"]
    # its node drained: it waits, saying why
    lead.cli("node", "update", "--availability", "drain", gpu["id"])
    waiting = sub(lead, "-p", "gpu='yes'", "true")
    wait_until(lambda: "matching the properties gpu='yes'" in job(lead, waiting)["message"],
               timeout=30)
    lead.cli("node", "update", "--availability", "active", gpu["id"])
    assert wait_state(lead, waiting, "Terminated", timeout=120)["assigned"][0]["node_id"] == gpu["id"]


# ---- services' --reserve-cpu and jobs share the cores ----

GRACE = ("--stop-grace-period", "1s")


def test_services_reservations_and_jobs_share_cores(jd):
    d = jd
    node = d.api("GET", "/v1/nodes").json()[0]
    if node["resources"]["cpus"] != 2:
        pytest.skip("needs a node with 2 cores")
    host = node["hostname"]
    try:
        d.cli("service", "create", "--name", "resv1", *GRACE, "--reserve-cpu", "1", "busybox",
              "sleep", "1000")
        assert d.service("resv1")["spec"]["reservations"] == {"cpus": 1.0}
        # a two-core job waits: the service reserves one of the two cores, and it says so
        big = sub(d, "-l", "core=2", "true")
        note = "services reserve 1 of the 2 cores of %s (--reserve-cpu)" % host
        wait_until(lambda: note in job(d, big)["message"], timeout=30,
                   msg=lambda: job(d, big)["message"])
        assert job(d, big)["message"] == "not enough cores free, " + note
        # a one-core job fits beside it
        small = sub(d, "-l", "core=1,walltime=0:10:0", HOLD)
        wait_state(d, small, "Running")
        # now no core is free for another reservation: the task waits, saying why
        why = "no suitable node (insufficient resources on 1 node"
        r = d.cli("service", "create", "--name", "resv2", *GRACE, "--reserve-cpu", "1",
                  "busybox", "sleep", "1000", check=False)
        assert r.returncode == 1 and why in r.stderr, r.stderr
        assert why in d.tasks("resv2")[0]["error"]
        # a service without a reservation is not held back
        d.cli("service", "create", "--name", "noresv", *GRACE, "busybox", "sleep", "1000")
        # the job ends: the waiting task gets its core
        d.cli("job", "rm", small)
        wait_until(lambda: d.tasks("resv2")[0]["state"] == "running", timeout=30)
        assert job(d, big)["state"] == "Waiting"
        # reservations gone: the two-core job runs
        d.cli("service", "update", "--reserve-cpu", "0.5", "resv2")  # update merges it
        assert d.service("resv2")["spec"]["reservations"] == {"cpus": 0.5}
        for s in ("resv1", "resv2"):
            d.cli("service", "rm", s)
        j = wait_state(d, big, "Terminated", timeout=60)
        assert j["exit_code"] == 0
    finally:
        for s in ("resv1", "resv2", "noresv"):
            d.cli("service", "rm", s, check=False)


def test_interactive_shell_confined_to_the_jobs_cores(jd):
    d = jd
    if d.api("GET", "/v1/nodes").json()[0]["resources"]["cpus"] < 2:
        pytest.skip("needs a node with 2 cores")
    hold = sub(d, "-l", "core=1,walltime=0:10:0", HOLD)
    held = wait_state(d, hold, "Running")["assigned"][0]["cpuset"]
    r = d.cli("job", "sub", "-I", "-l", "core=1", check=False,
              input="grep Cpus_allowed_list /proc/self/status\nexit 3\n")
    assert r.returncode == 3, (r.stdout, r.stderr)
    ij = max(d.api("GET", "/v1/jobs").json(), key=lambda x: int(x["id"]))
    mine = ij["assigned"][0]["cpuset"]
    assert mine != held
    assert "Cpus_allowed_list:\t%d" % mine[0] in r.stdout, (r.stdout, mine)
