"""The image store's housekeeping: upload spools (size cap, leftovers of a killed daemon)
and the layer garbage collection after `image rm` and at start."""
import io
import os
import shutil
import tarfile
import tempfile

import pytest

from conftest import Daemon, UnixHTTPConnection, wait_until


@pytest.fixture
def capped_daemon(rootfs_tar):
    """A swarm daemon whose uploads are capped at 1 MiB (busybox is larger)."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = Daemon(tmp)
    d.extra_args = ["--max-upload", "1M"]
    d.start()
    d.init_swarm()
    yield d
    errors = d.teardown()
    if not errors:
        shutil.rmtree(tmp, ignore_errors=True)
    assert not errors, "\n".join(errors) + "\ndaemon log:\n" + d.log_tail()


def _spools(d):
    tmp = os.path.join(d.state_dir, "tmp")
    return sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []


def _post_chunked(d, path, chunks):
    conn = UnixHTTPConnection(d.sock, timeout=60)
    try:
        conn.request("POST", path, body=iter(chunks), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_upload_over_the_cap_is_refused(capped_daemon, rootfs_tar):
    d = capped_daemon
    assert os.path.getsize(rootfs_tar) > 1024 * 1024
    # with a Content-Length (the CLI's file upload): refused before anything is written
    r = d.cli("image", "import", rootfs_tar, "big:1", check=False)
    assert r.returncode != 0
    assert "upload is too large (limit 1 MiB" in r.stderr and "--max-upload" in r.stderr, r.stderr
    # chunked, size unknown in advance: refused once past the cap, the spool removed
    with open(rootfs_tar, "rb") as f:
        data = f.read()
    status, body = _post_chunked(d, "/v1/images/import?name=big:2",
                                 (data[i:i + 65536] for i in range(0, len(data), 65536)))
    assert status == 413 and "upload is too large" in body, (status, body)
    assert _spools(d) == []
    assert d.api("GET", "/v1/images").json() == []
    # under the cap: accepted
    small = _small_tar(os.path.join(d.base, "small.tar"), b"small\n")
    d.cli("image", "import", small, "small:1")
    assert [i["tags"] for i in d.api("GET", "/v1/images").json()] == [["small:1"]]
    assert _spools(d) == []


def _small_tar(path, data):
    """A one-file layer, unique by its content."""
    with tarfile.open(path, "w") as tar:
        ti = tarfile.TarInfo("file.txt")
        ti.size = len(data)
        ti.mode = 0o644
        tar.addfile(ti, io.BytesIO(data))
    return path


def test_spools_of_a_killed_daemon_are_removed_at_start(fresh_daemon):
    d = fresh_daemon
    tmp = os.path.join(d.state_dir, "tmp")
    d.kill9()
    for name in ("upload-AbC123", "layer-0123abcd"):
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(b"x" * 4096)
    d.start()
    assert _spools(d) == []
