"""image import / load (docker save and OCI layout) / ls / rm."""
import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from conftest import make_rootfs_tar, wait_until


def _add_bytes(tar, name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    tar.addfile(ti, io.BytesIO(data))


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _config(env, cmd):
    return json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env, "Cmd": cmd, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": []},
    }).encode()


@pytest.fixture(scope="module")
def layer_tar(tmp_path_factory):
    d = tmp_path_factory.mktemp("layers")
    path = make_rootfs_tar(str(d / "layer.tar"), extra={"hello.txt": b"loaded-image\n"})
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def docker_archive(tmp_path_factory, layer_tar):
    """A `docker save` archive: manifest.json + config + layer tar."""
    path = str(tmp_path_factory.mktemp("docker") / "saved.tar")
    layer_diff = _sha(layer_tar)
    cfg = json.loads(_config(["PATH=/bin", "FROM_CONFIG=docker"], ["cat", "/hello.txt"]))
    cfg["rootfs"]["diff_ids"] = ["sha256:" + layer_diff]
    cfg = json.dumps(cfg).encode()
    cfg_name = _sha(cfg) + ".json"
    manifest = json.dumps([{
        "Config": cfg_name,
        "RepoTags": ["savedimg:v1"],
        "Layers": [layer_diff + "/layer.tar"],
    }]).encode()
    with tarfile.open(path, "w") as tar:
        _add_bytes(tar, cfg_name, cfg)
        _add_bytes(tar, layer_diff + "/layer.tar", layer_tar)
        _add_bytes(tar, "manifest.json", manifest)
    return path


@pytest.fixture(scope="module")
def oci_archive(tmp_path_factory, layer_tar):
    """An OCI image layout tarball with a gzip layer."""
    path = str(tmp_path_factory.mktemp("oci") / "oci.tar")
    gz = gzip.compress(layer_tar)
    cfg = json.loads(_config(["PATH=/bin", "FROM_CONFIG=oci"], ["cat", "/hello.txt"]))
    cfg["rootfs"]["diff_ids"] = ["sha256:" + _sha(layer_tar)]
    cfg = json.dumps(cfg).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + _sha(cfg), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + _sha(gz), "size": len(gz)}],
    }).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + _sha(manifest), "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": "ociimg:v2"}}],
    }).encode()
    with tarfile.open(path, "w") as tar:
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_bytes(tar, "index.json", index)
        for blob in (cfg, manifest, gz):
            _add_bytes(tar, "blobs/sha256/" + _sha(blob), blob)
    return path


def _tags(d):
    tags = set()
    for img in d.api("GET", "/v1/images").json():
        tags.update(img["tags"])
    return tags


def test_import_default_tag_and_ls(daemon, rootfs_tar):
    d = daemon
    d.cli("image", "import", rootfs_tar, "plainname")
    d.cli("image", "import", rootfs_tar, "busybox:2")
    assert {"plainname:latest", "busybox:2", "busybox:latest"} <= _tags(d)
    imgs = d.cli_json("image", "ls")
    by_tag = {t: i for i in imgs for t in i["tags"]}
    assert by_tag["plainname:latest"]["id"].startswith("sha256:")
    assert by_tag["plainname:latest"]["size"] > 0
    assert by_tag["plainname:latest"]["layers"]
    table = d.cli("image", "ls").stdout
    assert "plainname" in table and "latest" in table
    # an image imported from stdin works too
    with open(rootfs_tar, "rb") as f:
        d.cli("image", "import", "-", "fromstdin:x", input=f.read())
    assert "fromstdin:x" in _tags(d)
    r = d.cli("run", "--rm", "plainname", "echo", "plain-ok")
    assert "plain-ok" in r.stdout


def test_import_bad_input(daemon, tmp_path):
    d = daemon
    before = d.api("GET", "/v1/images").json()
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tarball at all" * 10)
    r = d.cli("image", "import", str(junk), "junk", check=False)
    assert r.returncode != 0 and r.stderr.strip()
    # the daemon's spool file is not named to the client
    assert "upload-" not in r.stderr and d.state_dir not in r.stderr, r.stderr
    for path in ("/v1/images/import?name=junk", "/v1/images/load"):
        r = d.api("POST", path, raw=b"this is not an archive" * 10)
        assert r.status == 400 and "upload-" not in r.text and "/tmp/" not in r.text, r
    r = d.cli("image", "import", str(tmp_path / "missing.tar"), "junk", check=False)
    assert r.returncode != 0 and r.stderr.strip()
    r = d.api("POST", "/v1/images/import", raw=b"xx")
    assert r.status == 400, r
    assert d.api("GET", "/v1/images").json() == before


def test_load_docker_save(daemon, docker_archive):
    d = daemon
    r = d.cli("image", "load", "-i", docker_archive)
    assert "savedimg:v1" in r.stdout
    assert "savedimg:v1" in _tags(d)
    img = [i for i in d.api("GET", "/v1/images").json() if "savedimg:v1" in i["tags"]][0]
    assert "FROM_CONFIG=docker" in img["config"]["Env"]
    assert img["config"]["Cmd"] == ["cat", "/hello.txt"]
    # default command from the image config, env from the config
    r = d.cli("run", "--rm", "savedimg:v1")
    assert "loaded-image" in r.stdout
    r = d.cli("run", "--rm", "savedimg:v1", "sh", "-c", "echo env=$FROM_CONFIG")
    assert "env=docker" in r.stdout


def test_load_from_stdin(daemon, docker_archive):
    d = daemon
    d.cli("image", "rm", "savedimg:v1", check=False)
    with open(docker_archive, "rb") as f:
        d.cli("image", "load", input=f.read())
    assert "savedimg:v1" in _tags(d)


def test_load_oci_layout(daemon, oci_archive):
    d = daemon
    r = d.cli("image", "load", "-i", oci_archive)
    assert "ociimg:v2" in r.stdout
    assert "ociimg:v2" in _tags(d)
    r = d.cli("run", "--rm", "ociimg:v2", "sh", "-c", "cat /hello.txt; echo env=$FROM_CONFIG")
    assert "loaded-image" in r.stdout
    assert "env=oci" in r.stdout


def test_load_bad_archive(daemon, tmp_path, layer_tar):
    d = daemon
    before = d.api("GET", "/v1/images").json()
    p = str(tmp_path / "bad.tar")
    with tarfile.open(p, "w") as tar:
        _add_bytes(tar, "manifest.json", b'{"not": "an array"}')
    r = d.cli("image", "load", "-i", p, check=False)
    assert r.returncode != 0 and "manifest.json" in r.stderr
    # a layer listed but missing
    p2 = str(tmp_path / "bad2.tar")
    with tarfile.open(p2, "w") as tar:
        _add_bytes(tar, "c.json", _config([], ["sh"]))
        _add_bytes(tar, "manifest.json",
                   json.dumps([{"Config": "c.json", "RepoTags": ["broken:1"], "Layers": ["nope/layer.tar"]}]).encode())
    r = d.cli("image", "load", "-i", p2, check=False)
    assert r.returncode != 0 and r.stderr.strip()
    # neither format
    p3 = str(tmp_path / "bad3.tar")
    with tarfile.open(p3, "w") as tar:
        _add_bytes(tar, "random.txt", b"x")
    r = d.cli("image", "load", "-i", p3, check=False)
    assert r.returncode != 0 and r.stderr.strip()
    r = d.cli("image", "load", "-i", str(tmp_path / "does-not-exist.tar"), check=False)
    assert r.returncode != 0 and r.stderr.strip()
    assert d.api("GET", "/v1/images").json() == before
    assert d.api("GET", "/v1/info").status == 200


def test_rm_in_use_needs_force(daemon, rootfs_tar):
    d = daemon
    d.cli("image", "import", rootfs_tar, "inuse:1")
    d.cli("service", "create", "--name", "user", "--stop-grace-period", "1s", "-d", "inuse:1",
          "sleep", "1000")
    r = d.cli("image", "rm", "inuse:1", check=False)
    assert r.returncode != 0
    assert "service user uses it" in r.stderr, r.stderr
    assert "inuse:1" in _tags(d)
    r = d.api("DELETE", "/v1/images/inuse:1")
    assert r.status == 409, r
    assert "inuse:1" in _tags(d)
    d.cli("image", "rm", "-f", "inuse:1")
    assert "inuse:1" not in _tags(d)
    d.cli("service", "rm", "user")


def test_rm_tag_and_unknown(daemon, rootfs_tar):
    d = daemon
    d.cli("image", "import", rootfs_tar, "twotags:a")
    d.cli("image", "import", rootfs_tar, "twotags:b")
    d.cli("image", "rm", "twotags:a")
    tags = _tags(d)
    assert "twotags:a" not in tags and "twotags:b" in tags
    # busybox:latest (same content) is not affected
    assert "busybox:latest" in tags
    r = d.cli("image", "rm", "no-such-image:1", check=False)
    assert r.returncode != 0 and r.stderr.strip()
    assert d.api("DELETE", "/v1/images/no-such-image:1").status == 404
    assert d.api("GET", "/v1/info").status == 200


def test_rm_force_in_use_keeps_running_task(daemon, rootfs_tar):
    """Removing an image a service runs on: the running task keeps its rootfs; a replacement
    task is rejected with "No such image"."""
    import os
    import signal

    from conftest import wait_until
    d = daemon
    d.cli("image", "import", rootfs_tar, "solo:1")
    d.cli("service", "create", "--name", "solo", "--restart-delay", "100ms", "--stop-grace-period", "1s",
          "solo:1", "sh", "-c", "while true; do cat /bin/sh > /dev/null && echo alive; sleep 0.2; done")
    t = d.wait_running("solo", 1)[0]
    d.cli("image", "rm", "-f", "solo:1")
    assert "solo:1" not in _tags(d)
    n = d.logs("solo").count("alive")
    wait_until(lambda: d.logs("solo").count("alive") > n + 2)
    assert d.tasks("solo")[0]["id"] == t["id"] and d.tasks("solo")[0]["state"] == "running"
    os.kill(t["pid"], signal.SIGKILL)
    wait_until(lambda: any(x["state"] == "rejected" and "No such image: solo:1" in x["error"]
                           for x in d.tasks("solo")))
    d.cli("service", "rm", "solo")


def _mapped_libraries(pid):
    with open("/proc/%d/maps" % pid) as f:
        return {os.path.basename(fields[5]) for fields in map(str.split, f) if len(fields) > 5}


def test_idle_daemon_keeps_neither_libcurl_nor_libarchive_loaded(fresh_daemon, rootfs_tar):
    """libcurl is loaded at the first pull, libarchive while an archive is open: an idle daemon
    that imported images maps neither, nor what they bring (docs/benchmarks.md, Footprint).
    Layers are unpacked by a helper process, so libstdc++ (ICU's, which stays once loaded) is
    never mapped in the daemon either; nor libyaml, which only `stack deploy` (the CLI) loads."""
    d = fresh_daemon
    if d.wrapper:
        pytest.skip("the daemon runs under a wrapper")
    lazy = ("libcurl.", "libarchive.", "libxml2.", "libicuuc.", "libgnutls.", "libstdc++.",
            "libyaml-")

    def none_loaded():
        return not [n for n in _mapped_libraries(d.proc.pid) if n.startswith(lazy)]

    wait_until(none_loaded, timeout=5, msg="libraries still mapped after the import")
    d.cli("image", "import", rootfs_tar, "again:1")  # loaded and unloaded once more
    wait_until(none_loaded, timeout=5, msg="libraries still mapped after the second import")
    assert "again-ok" in d.cli("run", "--rm", "again:1", "echo", "again-ok").stdout
