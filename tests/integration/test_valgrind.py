"""The daemon and the unit tests under valgrind (memcheck): no invalid
access, no use of uninitialised memory, no definite leak. Only in the normal
build: the ASan build (`make test-asan`) has its own checks."""
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import warnings

import pytest

from conftest import Daemon, SHOAL_BIN, wait_until

UNIT_BIN = os.environ.get("UNIT_BIN", os.path.join(os.path.dirname(SHOAL_BIN), "unit_tests"))
VALGRIND = shutil.which("valgrind")

pytestmark = [
    pytest.mark.skipif(VALGRIND is None, reason="valgrind is not installed"),
    pytest.mark.skipif(bool(os.environ.get("SHOAL_SANITIZER_DIR")),
                       reason="ASan build: valgrind cannot run it"),
]


SUPPRESSIONS = os.path.join(os.path.dirname(__file__), "..", "valgrind.supp")


def memcheck(log):
    return [VALGRIND, "-q", "--num-callers=40", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--suppressions=" + SUPPRESSIONS,
            "--log-file=" + log]


def start_unit_tests(names, log, out):
    """unit_tests NAMES... under memcheck, its output into the file out."""
    with open(out, "w") as f:
        return subprocess.Popen(memcheck(str(log)) + [UNIT_BIN] + names, stdout=f,
                                stderr=subprocess.STDOUT)


def check_unit_run(code, log, out):
    """The names of the unit tests that failed in a run that valgrind found nothing in (its
    reports, "==PID== ...", go to log: the forked tests' too); fails on a report or a crash."""
    text = out.read_text()
    reports = [line for line in log.read_text().splitlines() if line.startswith("==")]
    assert code in (0, 1) and not reports and " passed, " in text, \
        "exit %d\n%s\n%s" % (code, "\n".join(reports)[-6000:], text[-3000:])
    return re.findall(r"^FAIL (\S+)$", text, re.M)


def test_unit_tests_under_valgrind(tmp_path):
    """All the unit tests, split over one valgrind per CPU (each test runs in a process
    of its own and names what it makes after its pid: they do not collide). A test that
    fails with no valgrind report gets one more try alone, as under qemu (test_arm): at
    valgrind's speed on a loaded machine a timeout can pass; test_unit.py runs each natively."""
    names = subprocess.run([UNIT_BIN, "--list"], capture_output=True, text=True,
                           check=True).stdout.split()
    shards = max(1, min(os.cpu_count() or 1, len(names)))
    runs = [(tmp_path / ("vg%d.log" % i), tmp_path / ("out%d.txt" % i)) for i in range(shards)]
    procs = [start_unit_tests(names[i::shards], *runs[i]) for i in range(shards)]
    try:
        failed = []
        for (log, out), proc in zip(runs, procs):
            failed += check_unit_run(proc.wait(timeout=900), log, out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if failed:
        warnings.warn("unit tests failed under valgrind, retried alone: %s" % " ".join(failed))
        log, out = tmp_path / "vg-retry.log", tmp_path / "out-retry.txt"
        code = start_unit_tests(failed, log, out).wait(timeout=900)
        assert not check_unit_run(code, log, out) and code == 0, out.read_text()[-3000:]


def dns_query(server, name):
    """The A records the server gives for name (a plain UDP query)."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    try:
        s.sendto(q, (server, 53))
        a = s.recv(1500)
    finally:
        s.close()
    _, flags, _, ancount, _, _ = struct.unpack(">HHHHHH", a[:12])
    # the answer records follow the question; each A record ends with 4 address bytes
    return flags & 0xF, [socket.inet_ntoa(a[-16 * i - 4:len(a) - 16 * i])
                         for i in range(ancount)] if ancount else []


def dns_query_tcp(server, name):
    """The same query over TCP (two-byte length prefix each way)."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)
    with socket.create_connection((server, 53), timeout=5) as s:
        s.sendall(struct.pack(">H", len(q)) + q)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
            chunk = s.recv(65536)
            assert chunk, "connection closed before the answer"
            data += chunk
    a = data[2:]
    _, flags, _, ancount, _, _ = struct.unpack(">HHHHHH", a[:12])
    return flags & 0xF, [socket.inet_ntoa(a[-16 * i - 4:len(a) - 16 * i])
                         for i in range(ancount)] if ancount else []


def test_daemon_under_valgrind(rootfs_tar):
    """No container runs here: valgrind 3.19 lacks pidfd_open, which the
    agent watches containers with. The rest is exercised: API, Raft, store,
    image import, networks, the mesh, nft, the DNS server."""
    tmp = tempfile.mkdtemp(prefix="shoal-vg-")
    log = os.path.join(tmp, "vg.log")
    d = Daemon(tmp)
    d.wrapper = memcheck(log)
    d.start()
    try:
        d.init_swarm()
        d.import_image(rootfs_tar)
        port = 18000 + os.getpid() % 1000
        d.cli("network", "create", "vgnet", timeout=120)
        d.cli("service", "create", "--name", "vg", "--replicas", "0", "-p", "%d:80" % port,
              "--network", "vgnet", "busybox", "true", timeout=120)
        assert d.cli("service", "create", "--name", "vg2", "-p", "%d:80" % port, "busybox",
                     "true", check=False).returncode != 0
        d.cli("service", "update", "--publish-add", "%d:53/udp" % port, "vg", timeout=120)
        assert "vgnet" in d.cli("network", "ls").stdout
        gw = d.subnet.replace(".0/24", ".1")
        vip = d.service("vg")["vip"]
        # names of the bridge network only: vg is on vgnet
        d.cli("service", "create", "--name", "vg3", "--replicas", "0", "busybox", "true")
        vip3 = d.service("vg3")["vip"]
        assert wait_until(lambda: dns_query(gw, "vg3") == (0, [vip3]), timeout=30)
        assert dns_query(gw, "tasks.vg3") == (0, [])
        assert dns_query_tcp(gw, "vg3") == (0, [vip3])  # TCP too (answers too big for UDP)
        assert vip not in dns_query(gw, "vg")[1]
        assert d.cli("network", "rm", "vgnet", check=False).returncode != 0
        d.cli("service", "rm", "vg", "vg3")
        d.cli("network", "rm", "vgnet")
        d.cli("swarm", "leave", "--force", timeout=120)
    finally:
        proc = d.proc
        proc.terminate()
        code = proc.wait(timeout=120)
        d.proc = None
    report = open(log).read()
    # leaving tore down what the node had made, even if a network pass was running then
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert " %s:" % d.bridge not in links and " %s@" % d.bridge not in links, links
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert "table ip %s\n" % d.bridge not in tables + "\n", tables
    assert code == 0 and not report.strip(), "exit %s\n%s\n%s" % (code, report[-8000:],
                                                                   d.log_tail())
    shutil.rmtree(tmp, ignore_errors=True)
