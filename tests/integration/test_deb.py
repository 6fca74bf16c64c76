"""The Debian package (issue 13): `make deb` builds build-deb-ARCH/shoal_VERSION_ARCH.deb for
this machine, lintian finds nothing to report, and on a fresh Debian 12 root (mmdebstrap;
chrooted, nothing mounted) `apt-get install ./shoal_*.deb` gives a working `shoal`, a
shoal.service that `systemd-analyze verify` accepts, and maintainer scripts that keep the
state on upgrade and removal and delete it on purge.

The fresh root is bootstrapped once per machine into /var/cache/shoal-tests/ (a tar of
Debian 12's minimal apt system plus systemd and man-db) and unpacked anew for every run.
The package is built, and the root bootstrapped when not cached, in the background from the
start of the session (background.py).
Runs in the normal pass only."""
import glob
import os
import shutil
import subprocess
import tempfile

import pytest

import background
from conftest import ROOT

pytestmark = pytest.mark.skipif(bool(os.environ.get("SHOAL_SANITIZER_DIR")),
                                reason="the package is built and checked in the normal pass only")

CACHE = "/var/cache/shoal-tests"
BASE_TAR = os.path.join(CACHE, "bookworm-apt-systemd.tar")


def run(args, timeout=600, **kw):
    res = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    assert res.returncode == 0, "%s failed (%d):\n%s\n%s" % (args, res.returncode, res.stdout[-4000:],
                                                           res.stderr[-4000:])
    return res


def debian_sources():
    """The host's Debian apt sources (other vendors' are left out)."""
    files = glob.glob("/etc/apt/sources.list") + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) + \
        sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
    found = []
    for f in files:
        with open(f) as fh:
            text = fh.read()
        if "debian-archive-keyring" in text or "/debian" in text:
            found.append(f)
    assert found, "no Debian apt sources on this machine"
    return found


def base_root_tar():
    if not os.path.exists(BASE_TAR):
        os.makedirs(CACHE, exist_ok=True)
        tmp = BASE_TAR[:-len(".tar")] + ".%d.tmp.tar" % os.getpid()  # .tar: mmdebstrap writes a tar
        run(["mmdebstrap", "--variant=apt", "--quiet", "--include=systemd,man-db", "bookworm", tmp]
            + debian_sources(), timeout=1500)
        os.rename(tmp, BASE_TAR)
    return BASE_TAR


def make_deb():
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    res = run(["make", "-j2", "deb"], timeout=1500, cwd=ROOT)
    path = os.path.join(ROOT, res.stdout.strip().splitlines()[-1])
    assert path.endswith("_%s.deb" % arch) and os.path.exists(path), res.stdout
    return path


BUILD = background.Job("make deb", make_deb)
# On a clean machine (CI) the bootstrap downloads and unpacks Debian's packages: minutes, which
# waited in the foreground at the end of the normal pass until session 13.
BASE_ROOT = background.Job("mmdebstrap of the fresh root", base_root_tar)
BACKGROUND = [BUILD, BASE_ROOT]


@pytest.fixture(scope="module")
def deb():
    return BUILD.result()


@pytest.fixture
def fresh_root(tmp_path):
    root = str(tmp_path / "root")
    os.mkdir(root)
    run(["tar", "-C", root, "-xf", BASE_ROOT.result()])
    yield root
    with open("/proc/mounts") as f:
        assert not [line for line in f if root in line], "mounts left under " + root
    shutil.rmtree(root, ignore_errors=True)


def test_deb_contents_and_lintian(deb):
    fields = run(["dpkg-deb", "-f", deb, "Package", "Depends"]).stdout
    assert "Package: shoal" in fields
    for dep in ("crun", "libuv1", "libraft2", "libssl3", "libc6", "libyaml-0-2"):
        assert dep in fields, fields
    files = run(["dpkg-deb", "-c", deb]).stdout
    for path in ("./usr/bin/shoal", "./lib/systemd/system/shoal.service", "./etc/shoal/daemon.json",
                 "./usr/share/man/man1/shoal.1.gz", "./usr/share/doc/shoal/copyright"):
        assert path in files, files
    for cmd in ("oarsub", "oarstat", "oardel", "oarnodes", "oarhold", "oarresume"):
        assert "./usr/bin/%s -> shoal" % cmd in files, files
        assert "./usr/share/man/man1/%s.1.gz -> shoal.1.gz" % cmd in files, files
    assert run(["dpkg-deb", "-I", deb, "conffiles"]).stdout.split() == ["/etc/shoal/daemon.json"]
    res = subprocess.run(["lintian", "--fail-on", "error,warning,info", "--info", deb], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr


def chroot(root, *args, timeout=600):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
    return run(["chroot", root] + list(args), timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def test_deb_installs_on_fresh_debian(deb, fresh_root):
    r = fresh_root
    shutil.copy(deb, os.path.join(r, "tmp"))
    local = "/tmp/" + os.path.basename(deb)
    # a failed index (a mirror mid-sync) may leave older lists: the install below decides
    subprocess.run(["chroot", r, "apt-get", "update", "-q"], capture_output=True, timeout=600)
    chroot(r, "apt-get", "install", "-y", "-q", "--no-install-recommends", local)

    assert chroot(r, "shoal", "--version").stdout.startswith("shoal version ")
    assert "--state-dir" in subprocess.run(["chroot", r, "shoal", "daemon", "--help"], capture_output=True,
                                           text=True).stdout
    chroot(r, "systemd-analyze", "verify", "/lib/systemd/system/shoal.service")
    assert os.path.islink(os.path.join(r, "etc/systemd/system/multi-user.target.wants/shoal.service"))
    assert chroot(r, "man", "-w", "shoal").stdout.strip() == "/usr/share/man/man1/shoal.1.gz"

    # state and the administrator's settings survive an upgrade (a reinstall runs the same scripts)
    state = os.path.join(r, "var/lib/shoal")
    os.makedirs(state)
    with open(os.path.join(state, "marker"), "w") as f:
        f.write("raft log")
    conf = os.path.join(r, "etc/shoal/daemon.json")
    with open(conf, "w") as f:
        f.write('{"debug": true}\n')
    chroot(r, "dpkg", "-i", "--force-confold", local)
    assert os.path.exists(os.path.join(state, "marker"))
    with open(conf) as f:
        assert f.read() == '{"debug": true}\n'
    # ... and a removal; a purge deletes them
    chroot(r, "apt-get", "remove", "-y", "-q", "shoal")
    assert not os.path.exists(os.path.join(r, "usr/bin/shoal"))
    assert os.path.exists(os.path.join(state, "marker")) and os.path.exists(conf)
    chroot(r, "dpkg", "--purge", "shoal")
    assert not os.path.exists(state) and not os.path.exists(os.path.join(r, "etc/shoal"))
