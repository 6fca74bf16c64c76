"""ARM builds (issue 13): shoal cross-built for armhf and arm64 (`make ARCH=...`,
build-ARCH/), its unit tests run under qemu-user, and a smoke test of the ARM
daemon and CLI under qemu: daemon up, `swarm init`, the API answers with the
node's platform, an image imported and a service spec stored.

Built once per run and architecture (make is incremental), and the unit tests' first run
under qemu, in the background from the start of the session (background.py); runs in the
normal pass only: `make test-asan` builds for the host."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import background
import conftest
from conftest import ROOT, Daemon

pytestmark = pytest.mark.skipif(bool(os.environ.get("SHOAL_SANITIZER_DIR")),
                                reason="ARM builds run in the normal pass only")

ARCHES = {
    # Debian arch: (qemu, cross triplet, platform the node reports under that qemu)
    "armhf": ("qemu-arm-static", "arm-linux-gnueabihf", "linux/arm/v7"),
    "arm64": ("qemu-aarch64-static", "aarch64-linux-gnu", "linux/arm64"),
}

# qemu-user has no PR_SET_CHILD_SUBREAPER: the runtime tests (real crun containers) run in the
# amd64 pass only. The lib_pages tests that read the process's own pages through
# /proc/self/pagemap and /proc/self/mem neither: qemu-user passes those files through to the
# host process, whose addresses are not the guest's (armhf: the guest's 32-bit space sits at an
# offset in the host's), so they look at other pages.
QEMU_SKIPPED_PREFIX = ("runtime_", "lib_pages_release_of_no_names_unmaps_libc_too",
                       "lib_pages_release_keeps_a_page_a_debugger_wrote")


class ArmBuild:
    def __init__(self, arch):
        self.arch = arch
        self.qemu, triplet, self.platform = ARCHES[arch]
        for tool in (self.qemu, triplet + "-gcc"):
            assert shutil.which(tool), "%s is missing: run scripts/deps.sh" % tool
        self.dir = os.path.join(ROOT, "build-" + arch)
        res = subprocess.run(["make", "ARCH=" + arch, "-j2", "all"], cwd=ROOT, capture_output=True,
                             text=True, timeout=1500)
        assert res.returncode == 0, "make ARCH=%s failed:\n%s%s" % (arch, res.stdout[-4000:], res.stderr[-4000:])
        self.sysroot = os.path.join(self.dir, "sysroot")
        # Linux AIO for libraft, which qemu-user does not emulate (tests/arm/qemu_aio.c)
        self.aio = os.path.join(self.dir, "qemu_aio.so")
        subprocess.run([triplet + "-gcc", "--sysroot=" + self.sysroot, "-shared", "-fPIC", "-O2", "-Wall",
                        "-Werror", "-o", self.aio, os.path.join(ROOT, "tests/arm/qemu_aio.c"), "-ldl",
                        "-lpthread"], check=True)
        # `shoal` for conftest's Daemon: the ARM binary under qemu
        self.shoal = os.path.join(self.dir, "shoal-qemu")
        with open(self.shoal, "w") as f:
            f.write("#!/bin/sh\nexec %s -L %s -E LD_PRELOAD=%s %s/shoal \"$@\"\n"
                    % (self.qemu, self.sysroot, self.aio, self.dir))
        os.chmod(self.shoal, 0o755)

    def run(self, binary, *args, timeout=600):
        return subprocess.run([self.qemu, "-L", self.sysroot, os.path.join(self.dir, binary)] + list(args),
                              capture_output=True, text=True, timeout=timeout)

    def run_unit_tests(self):
        """(names listed, result of running those qemu can run)."""
        names = self.run("unit_tests", "--list").stdout.split()
        return names, self.run("unit_tests", *[n for n in names if not n.startswith(QEMU_SKIPPED_PREFIX)])


def build_and_run_unit_tests(arch):
    """The cross build, then its unit tests' first run under qemu (each test in a process of
    its own, names made from its pid: nothing shared with the tests running meanwhile);
    test_unit_tests_under_qemu checks it."""
    arm = ArmBuild(arch)
    try:
        arm.unit_run = arm.run_unit_tests()
    except subprocess.TimeoutExpired as e:
        arm.unit_run = e
    return arm


BUILDS = {arch: background.Job("make ARCH=%s and its unit tests" % arch,
                               lambda arch=arch: build_and_run_unit_tests(arch))
          for arch in sorted(ARCHES)}
BACKGROUND = list(BUILDS.values())


@pytest.fixture(scope="module", params=sorted(ARCHES))
def arm(request):
    return BUILDS[request.param].result()


def test_binaries_are_for_the_target(arm):
    out = subprocess.run(["file", "-L", os.path.join(arm.dir, "shoal")], capture_output=True, text=True).stdout
    assert ("ARM aarch64" if arm.arch == "arm64" else "32-bit LSB pie executable, ARM") in out, out
    res = arm.run("shoal", "--version")
    assert res.returncode == 0 and res.stdout.startswith("shoal version "), res


def test_unit_tests_under_qemu(arm):
    if isinstance(arm.unit_run, Exception):
        raise arm.unit_run
    names, res = arm.unit_run
    assert len(names) > 50
    assert "passed, " in res.stdout, "unit_tests crashed:\n%s\n%s" % (res.stdout[-3000:], res.stderr[-5000:])
    failed = [line.split()[1] for line in res.stdout.splitlines() if line.startswith("FAIL ")]
    if failed:
        # Emulation is several times slower: a timing-sensitive test gets one more try, alone.
        print("retrying under %s: %s\n%s" % (arm.qemu, failed, res.stderr[-3000:]))
        res = arm.run("unit_tests", *failed)
        assert res.returncode == 0, "%s\n%s" % (res.stdout[-3000:], res.stderr[-5000:])
        assert "%d passed, 0 failed" % len(failed) in res.stdout


@pytest.mark.skip(reason="qemu-user has no PR_SET_CHILD_SUBREAPER; runtime_* unit tests run natively")
def test_runtime_unit_tests_under_qemu():
    pass


def test_daemon_smoke_under_qemu(arm, rootfs_tar, monkeypatch):
    monkeypatch.setattr(conftest, "SHOAL_BIN", arm.shoal)
    tmp = tempfile.mkdtemp(prefix="shoal-arm-")
    d = Daemon(tmp)
    errors = []
    try:
        d.start()
        d.init_swarm()
        info = d.cli_json("info")
        assert info["swarm"]["is_leader"], info
        assert "Platform: %s" % arm.platform in d.cli("info").stdout
        nodes = d.cli_json("node", "ls")
        assert len(nodes) == 1 and nodes[0]["status"] == "ready", nodes
        p = nodes[0]["platform"]
        assert "/".join([p["os"], p["architecture"]] + ([p["variant"]] if "variant" in p else [])) == arm.platform
        table = d.cli("node", "ls").stdout.splitlines()
        assert table[0].split()[-1] == "PLATFORM" and table[1].split()[-1] == arm.platform, table
        d.import_image(rootfs_tar)
        # tasks may or may not run under qemu: only the stored spec is checked
        d.cli("service", "create", "-d", "--name", "smoke", "busybox:latest", "sleep", "300")
        svc = d.service("smoke")
        assert svc["spec"]["image"] == "busybox:latest" and svc["spec"]["args"] == ["sleep", "300"], svc
        d.cli("service", "rm", "smoke")
    finally:
        errors = d.teardown()
    if not errors:
        shutil.rmtree(tmp, ignore_errors=True)
    assert not errors, "\n".join(errors) + "\ndaemon log:\n" + d.log_tail()


NATIVE_PLATFORMS = {"x86_64": "linux/amd64", "aarch64": "linux/arm64", "armv7l": "linux/arm/v7",
                    "armv8l": "linux/arm/v7", "armv6l": "linux/arm/v6", "i686": "linux/386"}


def test_joined_nodes_report_their_platform():
    """Natively: the platform a worker sends when it joins is in the manager's node list."""
    from cluster import Cluster

    want = NATIVE_PLATFORMS.get(os.uname().machine, "linux/" + os.uname().machine)
    c = Cluster(managers=1, workers=1)
    try:
        for n in c.nodes_view():
            p = n["platform"]
            assert "/".join([p["os"], p["architecture"]] + ([p["variant"]] if "variant" in p else [])) == want, n
        rows = [line.split() for line in c.leader.cli("node", "ls").stdout.splitlines()[1:]]
        assert len(rows) == 2 and all(r[-1] == want for r in rows), rows
        worker = c.nodes[1]
        assert "Platform: " + want in worker.cli("info").stdout
        inspected = json.loads(c.leader.cli("node", "inspect", c.node_id(worker)).stdout)
        node = inspected[0] if isinstance(inspected, list) else inspected
        assert node["platform"] == c.nodes_view()[0]["platform"], node
    finally:
        c.destroy()
