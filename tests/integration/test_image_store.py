"""The image store's housekeeping: upload spools (size cap, leftovers of a killed daemon)
and the layer garbage collection after `image rm` and at start."""
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile

import pytest

from conftest import Daemon, UnixHTTPConnection, make_rootfs_tar, wait_until


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


def test_atomic_write_leftovers_of_a_killed_daemon_are_removed_at_start(fresh_daemon):
    """write_file_atomic's NAME.tmp.XXXXXX of a daemon killed mid-write go at start, in each
    directory whose store writes them; a volume's own files of that shape stay."""
    d = fresh_daemon
    d.kill9()
    dirs = ["", "ca", "tls", "agent", "images/configs", "containers/c0ffee"]
    left = [os.path.join(d.state_dir, rel, "x.json.tmp.Ab12Z9") for rel in dirs]
    user = os.path.join(d.state_dir, "volumes", "v1", "_data", "db.tmp.Ab12Z9")
    for path in left + [user]:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"{")
        os.utime(path, (1, 1))
    d.start()
    assert [p for p in left if os.path.exists(p)] == []
    assert os.path.exists(user)
    os.rmdir(os.path.join(d.state_dir, "containers", "c0ffee"))  # no container of the daemon's
    shutil.rmtree(os.path.join(d.state_dir, "volumes", "v1"))


# ---- layer garbage collection ----

def _layer_dir(d, digest):
    return os.path.join(d.state_dir, "images", "layers", digest.split(":", 1)[1])


def _image(d, tag):
    return [i for i in d.api("GET", "/v1/images").json() if tag in i["tags"]][0]


def _docker_archive(path, layer, tag):
    """A `docker save` archive of one layer (bytes) with its own config: another image id
    than `image import` of the same layer gives."""
    diff = hashlib.sha256(layer).hexdigest()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]}}).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [tag],
                            "Layers": [diff + "/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((cfg_name, cfg), (diff + "/layer.tar", layer), ("manifest.json", manifest)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return path


def test_image_rm_frees_unused_layers(fresh_daemon, tmp_path):
    d = fresh_daemon
    d.cli("image", "import", _small_tar(str(tmp_path / "u.tar"), b"unique\n"), "uniq:1")
    shared_tar = _small_tar(str(tmp_path / "s.tar"), b"shared\n")
    d.cli("image", "import", shared_tar, "shared:1")
    with open(shared_tar, "rb") as f:
        d.cli("image", "load", "-i", _docker_archive(str(tmp_path / "s2.tar"), f.read(), "shared:2"))
    uniq = _layer_dir(d, _image(d, "uniq:1")["layers"][0])
    shared = _layer_dir(d, _image(d, "shared:1")["layers"][0])
    assert _image(d, "shared:2")["id"] != _image(d, "shared:1")["id"]
    assert _image(d, "shared:2")["layers"] == _image(d, "shared:1")["layers"]
    assert os.path.isdir(uniq) and os.path.isdir(shared)
    d.cli("image", "rm", "shared:1")
    d.cli("image", "rm", "uniq:1")
    wait_until(lambda: not os.path.exists(uniq), timeout=20)
    assert os.path.isdir(shared)  # shared:2 still uses it
    d.cli("image", "rm", "shared:2")
    wait_until(lambda: not os.path.exists(shared), timeout=20)
    busybox = _layer_dir(d, _image(d, "busybox:latest")["layers"][0])
    assert os.path.isdir(busybox)
    # removed layers are renamed into tmp/ and deleted on the thread pool
    wait_until(lambda: os.listdir(os.path.join(d.state_dir, "images", "tmp")) == [], timeout=20)


def test_running_container_keeps_its_layers(fresh_daemon, tmp_path):
    d = fresh_daemon
    tar = make_rootfs_tar(str(tmp_path / "gcbox.tar"), extra={"marker.txt": b"gcbox\n"})
    d.cli("image", "import", tar, "gcbox:1")
    layer = _layer_dir(d, _image(d, "gcbox:1")["layers"][0])
    d.cli("service", "create", "--name", "gcuser", "--stop-grace-period", "1s", "gcbox:1",
          "sh", "-c", "while cat /marker.txt >/dev/null; do sleep 0.2; done; echo LOST")
    d.wait_running("gcuser", 1)
    d.cli("image", "rm", "-f", "gcbox:1")
    # another removal makes the GC run again; the running task's layer stays through both
    d.cli("image", "import", _small_tar(str(tmp_path / "x.tar"), b"x\n"), "x:1")
    x = _layer_dir(d, _image(d, "x:1")["layers"][0])
    d.cli("image", "rm", "x:1")
    wait_until(lambda: not os.path.exists(x), timeout=20)
    assert os.path.isdir(layer)
    assert "LOST" not in d.logs("gcuser")
    assert d.running_tasks("gcuser")
    d.cli("service", "rm", "gcuser")
    wait_until(lambda: not os.path.exists(layer), timeout=30)


def test_unused_layers_removed_at_start(fresh_daemon, tmp_path):
    d = fresh_daemon
    d.stop()
    busybox_layers = os.path.join(d.state_dir, "images", "layers")
    stray = os.path.join(busybox_layers, "ab" * 32)
    os.makedirs(os.path.join(stray, "root"))
    with open(os.path.join(stray, "size"), "w") as f:
        f.write("1\n")
    d.start()
    wait_until(lambda: not os.path.exists(stray), timeout=20)
    assert len(os.listdir(busybox_layers)) == 1  # busybox:latest's
    d.cli("run", "--rm", "busybox", "true")


def test_failed_load_leaves_no_layers(fresh_daemon, tmp_path):
    """An archive whose second layer is corrupt: the first, already unpacked, does not stay."""
    d = fresh_daemon
    layers_dir = os.path.join(d.state_dir, "images", "layers")
    before = set(os.listdir(layers_dir))
    with open(_small_tar(str(tmp_path / "good.tar"), b"good-first-layer\n"), "rb") as f:
        good = f.read()
    bad = b"not a tar" * 100
    diffs = [hashlib.sha256(good).hexdigest(), hashlib.sha256(bad).hexdigest()]
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                      "rootfs": {"type": "layers",
                                 "diff_ids": ["sha256:" + x for x in diffs]}}).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["half:1"],
                            "Layers": [x + "/layer.tar" for x in diffs]}]).encode()
    archive = str(tmp_path / "half.tar")
    with tarfile.open(archive, "w") as tar:
        for name, data in ((cfg_name, cfg), (diffs[0] + "/layer.tar", good),
                           (diffs[1] + "/layer.tar", bad), ("manifest.json", manifest)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    r = d.cli("image", "load", "-i", archive, check=False)
    assert r.returncode != 0, r.stdout
    wait_until(lambda: set(os.listdir(layers_dir)) == before, timeout=20,
               msg=lambda: "layers: %s" % os.listdir(layers_dir))
