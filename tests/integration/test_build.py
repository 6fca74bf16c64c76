"""image build: Dockerfiles built through buildah on a node, the result in the store."""
import glob
import json
import os
import shutil
import subprocess

import pytest

from conftest import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _buildah_works():
    """buildah comes with scripts/deps.sh; the reason it cannot run, or None."""
    if shutil.which("buildah") is None:
        subprocess.run([os.path.join(ROOT, "scripts", "deps.sh")], capture_output=True)
    if shutil.which("buildah") is None:
        return "buildah is not installed (scripts/deps.sh could not install it)"
    r = subprocess.run(["buildah", "--version"], capture_output=True, text=True)
    return None if r.returncode == 0 else "buildah does not run: " + r.stderr


_NO_BUILDAH = _buildah_works()
pytestmark = pytest.mark.skipif(_NO_BUILDAH is not None, reason=str(_NO_BUILDAH))


def _context(path, dockerfile, files=None):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(dockerfile)
    for name, text in (files or {}).items():
        with open(os.path.join(path, name), "w") as f:
            f.write(text)
    return str(path)


def _service_lines(d, name):
    """The lines of the service's logs, without their task prefix."""
    return [l.split("|", 1)[-1].strip() for l in d.logs(name).splitlines()]


APP = """FROM busybox
ENV GREETING=hello-from-env
ARG FLAVOUR=plain
COPY msg.txt /msg.txt
RUN echo "built-by-run $FLAVOUR" > /run.txt
CMD ["sh", "-c", "cat /msg.txt /run.txt; echo $GREETING; ls /secret.txt 2>&1; sleep 1000"]
"""


def test_build_runs_as_service(daemon, tmp_path):
    """RUN/COPY/ENV/ARG/CMD end up in the image; the service prints them; .dockerignore is
    honoured."""
    ctx = _context(tmp_path / "app", APP, {"msg.txt": "copied-file\n", "secret.txt": "no\n",
                                           ".dockerignore": "secret.txt\n"})
    r = daemon.cli("image", "build", "-t", "built:1", "--build-arg", "FLAVOUR=spicy", ctx,
                   timeout=180)
    assert "STEP 1/6: FROM busybox" in r.stdout
    assert "Successfully tagged built:1" in r.stdout
    img = json.loads(daemon.cli("image", "inspect", "built:1").stdout)[0]
    assert img["tags"] == ["built:1"] and len(img["layers"]) >= 2
    daemon.cli("service", "create", "--name", "built", "--stop-grace-period", "1s", "-d",
               "built:1")
    daemon.wait_running("built", 1)
    want = ["copied-file", "built-by-run spicy", "hello-from-env", "No such file"]
    wait_until(lambda: all(w in daemon.logs("built") for w in want),
               msg=lambda: daemon.logs("built"))
    daemon.cli("service", "rm", "built")


def test_build_failing_step_stores_nothing(daemon, tmp_path):
    ctx = _context(tmp_path / "bad", "FROM busybox\nRUN echo before\nRUN exit 3\n")
    before = daemon.cli("image", "ls", "-q").stdout
    r = daemon.cli("image", "build", "-t", "broken:1", ctx, check=False, timeout=180)
    assert r.returncode == 1, r
    assert "before" in r.stdout
    assert "the build failed" in r.stderr and "RUN exit 3" in r.stderr, r.stderr
    assert "broken" not in daemon.cli("image", "ls").stdout
    assert daemon.cli("image", "ls", "-q").stdout == before
    # each build's directory (context, buildah's storage) is gone
    assert not glob.glob(os.path.join(daemon.state_dir, "tmp", "build-*"))


def test_build_bad_input(daemon, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = daemon.cli("image", "build", "-t", "x:1", str(empty), check=False)
    assert r.returncode == 1 and "no Dockerfile" in r.stderr, r.stderr
    r = daemon.cli("image", "build", str(empty), check=False)
    assert r.returncode == 2 and "a tag is required" in r.stderr, r.stderr
    r = daemon.cli("image", "build", "-t", "x:1", "-f", "../Dockerfile", str(empty), check=False)
    assert r.returncode == 1 and "inside the context" in r.stderr, r.stderr


def test_build_dockerfile_flag(daemon, tmp_path):
    """-f as Docker reads it (a path from here inside DIR) or as a path inside DIR."""
    ctx = _context(tmp_path / "alt", "FROM busybox\nRUN false\n")
    with open(os.path.join(ctx, "Dockerfile.alt"), "w") as f:
        f.write("FROM busybox\nRUN echo alt > /alt.txt\n")
    r = daemon.cli("image", "build", "-t", "alt:1", "-f", os.path.join(ctx, "Dockerfile.alt"),
                   ctx, timeout=180)
    assert "STEP 2/2: RUN echo alt" in r.stdout, r.stdout
    r = daemon.cli("image", "build", "-t", "alt:2", "-f", "Dockerfile.alt", ctx, timeout=180)
    assert "Successfully tagged alt:2" in r.stdout, r.stdout
    outside = tmp_path / "Dockerfile.out"
    outside.write_text("FROM busybox\n")
    r = daemon.cli("image", "build", "-t", "alt:3", "-f", str(outside), ctx, check=False)
    assert r.returncode == 1 and "must be inside the context" in r.stderr, r.stderr


def test_build_base_from_a_registry(daemon, tmp_path):
    """A FROM image the store lacks is pulled by shoal (127.0.0.1 is plain HTTP for shoal,
    not for buildah: a success shows shoal pulled it), then used as a stored one."""
    from test_registry import Registry
    reg = Registry(str(tmp_path / "registry"))
    reg.start()
    try:
        ref = reg.addr + "/base/bb:1"
        daemon.cli("image", "tag", "busybox", ref)
        daemon.cli("image", "push", ref, timeout=120)
        daemon.cli("image", "rm", ref)
        ctx = _context(tmp_path / "pulled", "FROM %s\nRUN echo on-pulled > /p.txt\n" % ref)
        r = daemon.cli("image", "build", "-t", "onpulled:1", ctx, timeout=180)
        assert "Pulling base image " + ref in r.stdout, r.stdout
        assert "Successfully tagged onpulled:1" in r.stdout, r.stdout
        bad = _context(tmp_path / "nobase", "FROM %s/base/none:1\n" % reg.addr)
        r = daemon.cli("image", "build", "-t", "nobase:1", bad, check=False, timeout=180)
        assert r.returncode == 1 and "base image %s/base/none:1" % reg.addr in r.stderr, r.stderr
    finally:
        reg.stop()


def test_build_two_contexts_base_first(daemon, tmp_path):
    """b's FROM is a: a is built first, then b on top of it."""
    a = _context(tmp_path / "a", "FROM busybox\nRUN echo layer-a > /a.txt\n")
    b = _context(tmp_path / "b", "FROM chain-a:1\nRUN cat /a.txt > /b.txt && echo layer-b >> /b.txt\n"
                 "CMD [\"sh\", \"-c\", \"cat /b.txt; sleep 1000\"]\n")
    r = daemon.cli("image", "build", "-t", "chain-b:1", b, "-t", "chain-a:1", a, timeout=300)
    out = r.stdout
    assert out.index("[chain-a:1] Successfully tagged") < out.index("[chain-b:1] STEP 1/3"), out
    daemon.cli("service", "create", "--name", "chain", "--stop-grace-period", "1s", "-d",
               "chain-b:1")
    daemon.wait_running("chain", 1)
    wait_until(lambda: _service_lines(daemon, "chain")[:2] == ["layer-a", "layer-b"],
               msg=lambda: daemon.logs("chain"))
    daemon.cli("service", "rm", "chain")


@pytest.fixture(scope="module")
def c(rootfs_tar):
    from cluster import Cluster
    cl = Cluster(managers=1, workers=1, rootfs_tar=rootfs_tar)
    yield cl
    cl.destroy()


# RUN steps share the node's network namespace: its addresses say where they ran.
WHERE = "ip -4 -o addr | awk '{print $4}' | grep -v 127.0.0.1"


def test_build_on_another_node(c, tmp_path):
    """--node: the worker builds (its address is built in), the leader fetches the layers
    and commits the image, the manager's node runs it."""
    ctx = _context(tmp_path / "remote", "FROM busybox\nCOPY msg.txt /msg.txt\n"
                   "RUN %s > /built-on\n" % WHERE +
                   'CMD ["sh", "-c", "cat /msg.txt /built-on; sleep 1000"]\n',
                   {"msg.txt": "remote-copy\n"})
    r = c.leader.cli("image", "build", "--node", "node-2", "-t", "remote:1", ctx, timeout=300)
    assert "STEP 3/4: RUN ip" in r.stdout and "Successfully tagged remote:1" in r.stdout
    c.leader.cli("service", "create", "--name", "remote", "--constraint",
                 "node.hostname==node-1", "--stop-grace-period", "1s", "-d", "remote:1")
    c.leader.wait_running("remote", 1, timeout=60)
    node2 = c.nodes[1].addr + "/"
    wait_until(lambda: _service_lines(c.leader, "remote")[0] == "remote-copy" and
               _service_lines(c.leader, "remote")[1].startswith(node2),
               msg=lambda: c.leader.logs("remote"))
    c.leader.cli("service", "rm", "remote")
    r = c.leader.cli("image", "build", "--node", "node-9", "-t", "x:1", ctx, check=False)
    assert r.returncode == 1 and "node-9" in r.stderr, r.stderr


def test_build_contexts_spread_over_nodes(c, tmp_path):
    """Two contexts, the second FROM the first: built one after the other on the two
    nodes (the second gets its base from the leader's store); both run on both nodes."""
    a = _context(tmp_path / "a", "FROM busybox\nRUN echo \"a on $(%s)\" > /a.txt\n" % WHERE)
    b = _context(tmp_path / "b", "FROM spread-a:1\nRUN echo \"b on $(%s)\" > /b.txt\n" % WHERE +
                 'CMD ["sh", "-c", "cat /a.txt /b.txt; sleep 1000"]\n')
    r = c.leader.cli("image", "build", "-t", "spread-a:1", a, "-t", "spread-b:1", b,
                     timeout=300)
    assert "[spread-b:1] Successfully tagged spread-b:1" in r.stdout, r.stdout
    c.leader.cli("service", "create", "--name", "spread", "--mode", "global",
                 "--stop-grace-period", "1s", "-d", "spread-b:1")
    c.leader.wait_running("spread", 2, timeout=60)
    one, two = "a on %s/" % c.nodes[0].addr, "b on %s/" % c.nodes[1].addr
    wait_until(lambda: sum(l.startswith(one) for l in _service_lines(c.leader, "spread")) == 2
               and sum(l.startswith(two) for l in _service_lines(c.leader, "spread")) == 2,
               msg=lambda: c.leader.logs("spread"))
    c.leader.cli("service", "rm", "spread")


def test_build_over_tcp(c, tmp_path):
    """-H tcp:// with the admin certificate: the context goes over the cluster network."""
    from conftest import SHOAL_BIN
    certs = str(tmp_path / "certs")
    c.leader.cli("swarm", "admin-cert", "-o", certs)
    ctx = _context(tmp_path / "tcp", "FROM busybox\nCOPY msg.txt /msg.txt\n",
                   {"msg.txt": "over-tcp\n"})
    r = c.nodes[1].exec(SHOAL_BIN, "-H", "tcp://%s:2377" % c.leader.addr, "--tls-dir", certs,
                        "image", "build", "-t", "tcp:1", ctx)
    assert "STEP 2/2: COPY msg.txt /msg.txt" in r.stdout, r.stdout
    assert "Successfully tagged tcp:1" in r.stdout, r.stdout
    assert "tcp:1" in [t for i in c.leader.cli_json("image", "ls") for t in i["tags"]]


def test_build_through_a_follower_manager(rootfs_tar, tmp_path):
    """A follower forwards the build to the leader (its answer comes whole at the end)."""
    from cluster import Cluster
    cl = Cluster(managers=3, workers=0, rootfs_tar=rootfs_tar)
    try:
        follower = cl.nodes[1]
        ctx = _context(tmp_path / "fw", "FROM busybox\nRUN echo forwarded\n")
        r = follower.cli("image", "build", "-t", "fw:1", ctx, timeout=180)
        assert "forwarded" in r.stdout and "Successfully tagged fw:1" in r.stdout, r.stdout
        ctx = _context(tmp_path / "fw2", "FROM busybox\nRUN exit 2\n")
        r = follower.cli("image", "build", "-t", "fw:2", ctx, check=False, timeout=180)
        assert r.returncode == 1, r
        assert 'the build failed: building at STEP "RUN exit 2"' in r.stderr, r.stderr
    finally:
        cl.destroy()
