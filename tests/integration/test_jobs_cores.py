"""Batch jobs (issue 14): a job confined to the cores it was given (a
cpuset), property filters on node labels (-p), and services' reserved cores
shared with jobs without overcommitting."""
import pytest

from conftest import wait_until
from test_jobs import cleanup, job, sub, wait_state


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
    show = "grep Cpus_allowed_list /proc/self/status; sleep 600"
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
