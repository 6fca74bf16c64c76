"""image pull from registries: Debian's docker-registry (distribution 2.8) on a loopback port,
one plain HTTP and one with TLS + htpasswd; images pushed into it with skopeo from OCI
layouts the tests build (busybox-based, several layers, a whiteout, a multi-platform index).
A small fake registry (python) answers what a real one will not: garbage JSON, bearer-token
auth, a connection dropped mid-blob."""
import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading

import pytest

from conftest import QUICK_STOP, SHOAL_BIN, free_port, wait_until

REGISTRY_BIN = shutil.which("docker-registry")
SKOPEO = shutil.which("skopeo")
pytestmark = pytest.mark.skipif(not REGISTRY_BIN or not SKOPEO,
                                reason="docker-registry and skopeo are needed (scripts/deps.sh)")

HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(os.uname().machine, "amd64")


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _tar(entries):
    """entries: [(name, bytes or None for a directory)] -> tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                tar.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = 0o644
                tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class Layout:
    """An OCI image layout directory built blob by blob."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        self.index = []
        self.blobs = {}

    def blob(self, data, media_type):
        digest = "sha256:" + _sha(data)
        with open(os.path.join(self.path, "blobs", "sha256", _sha(data)), "wb") as f:
            f.write(data)
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def image(self, layers, cmd, env=None, arch=HOST_ARCH, variant=None, history=None):
        """layers: [(tar bytes, gzip?)] -> the manifest's descriptor."""
        descs, diff_ids = [], []
        for raw, comp in layers:  # comp: True (gzip), False (plain) or "zstd"
            diff_ids.append("sha256:" + _sha(raw))
            if comp == "zstd":
                data = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True,
                                      check=True).stdout
                mt = "application/vnd.oci.image.layer.v1.tar+zstd"
            else:
                data = gzip.compress(raw, mtime=0) if comp else raw
                mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if comp else "")
            descs.append(self.blob(data, mt))
        cfg = {"architecture": arch, "os": "linux",
               "config": {"Env": env or ["PATH=/bin"], "Cmd": cmd},
               "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        if variant:
            cfg["variant"] = variant
        if history:
            cfg["history"] = history
        cfg_desc = self.blob(json.dumps(cfg).encode(), "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cfg_desc, "layers": descs}
        return self.blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")

    def multi(self, entries):
        """entries: [(manifest descriptor, arch, variant)] -> the index's descriptor."""
        ms = []
        for desc, arch, variant in entries:
            d = dict(desc)
            d["platform"] = {"os": "linux", "architecture": arch}
            if variant:
                d["platform"]["variant"] = variant
            ms.append(d)
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": ms}
        return self.blob(json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json")

    def tag(self, desc, name):
        d = dict(desc)
        d["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.index.append(d)
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": self.index}, f)


class Registry:
    """docker-registry on a loopback port; tls: certificate + htpasswd (user test/secret)."""

    def __init__(self, base, tls=False, netns=None, host="127.0.0.1"):
        self.base = base
        # netns: runs (and is pushed to) inside that network namespace, on `host`
        self.wrap = ["nsenter", "--net=/run/netns/" + netns] if netns else []
        self.port = free_port()
        self.host = host
        self.addr = "%s:%d" % (host, self.port)
        self.storage = os.path.join(base, "storage")
        self.tls = tls
        os.makedirs(self.storage)
        cfg = ["version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:",
               "    rootdirectory: " + self.storage, "  delete:", "    enabled: true",
               "http:", "  addr: " + self.addr]
        if tls:
            cert, key = os.path.join(base, "cert.pem"), os.path.join(base, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", key, "-out", cert], check=True, capture_output=True)
            htpasswd = os.path.join(base, "htpasswd")
            out = subprocess.run(["htpasswd", "-Bbn", "test", "secret"], check=True,
                                 capture_output=True, text=True).stdout
            with open(htpasswd, "w") as f:
                f.write(out)
            cfg += ["  tls:", "    certificate: " + cert, "    key: " + key,
                    "auth:", "  htpasswd:", "    realm: shoal-test", "    path: " + htpasswd]
        self.config = os.path.join(base, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.proc = None

    def start(self):
        log = open(os.path.join(self.base, "registry.log"), "ab")
        self.proc = subprocess.Popen(self.wrap + [REGISTRY_BIN, "serve", self.config], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        probe = "import socket; socket.create_connection(('%s', %d), 1).close()" % (self.host, self.port)
        wait_until(lambda: subprocess.run(self.wrap + ["/usr/bin/python3", "-c", probe],
                                          capture_output=True).returncode == 0, timeout=20)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None

    def push(self, layout, tag, repo, all_platforms=False, docker_format=False):
        """Copies a tag of the layout as it is (OCI, digests kept) or converted to
        Docker's v2 schema 2 manifests and manifest lists."""
        args = [SKOPEO, "copy", "--quiet", "--dest-tls-verify=false"]
        args += ["--format", "v2s2"] if docker_format else ["--preserve-digests"]
        if self.tls:
            args += ["--dest-creds", "test:secret"]
        if all_platforms:
            args += ["--all"]
        subprocess.run(self.wrap + args + ["oci:%s:%s" % (layout.path, tag),
                                           "docker://%s/%s" % (self.addr, repo)],
                       check=True, capture_output=True, timeout=120)

    def log(self):
        with open(os.path.join(self.base, "registry.log"), errors="replace") as f:
            return f.read()

    def blob_file(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", "sha256", hexd[:2],
                            hexd, "data")


@pytest.fixture(scope="module")
def images(tmp_path_factory, rootfs_tar):
    """The test images in one OCI layout: app (3 layers: busybox gzip, data files,
    a whiteout of one of them, plain tar), multi (an index: this host, arm64, arm/v7),
    armonly (an index without this host's platform), bad (a layer to corrupt)."""
    d = tmp_path_factory.mktemp("layout")
    lay = Layout(str(d / "oci"))
    with open(rootfs_tar, "rb") as f:
        base = f.read()
    data = _tar([("data", None), ("data/a.txt", b"a\n"), ("data/b.txt", b"b\n")])
    upper = _tar([("data", None), ("data/.wh.a.txt", b""), ("hello.txt", b"pulled-image\n")])
    app = lay.image([(base, True), (data, True), (upper, False)], ["cat", "/hello.txt"],
                    env=["PATH=/bin", "FROM=registry"])
    lay.tag(app, "app")
    per_arch = {}
    for arch, variant in ((HOST_ARCH, None), ("arm64", "v8"), ("arm", "v7")):
        if arch == HOST_ARCH and per_arch.get(arch):
            continue
        marker = _tar([("arch.txt", ("%s%s\n" % (arch, "/" + variant if variant else "")).encode())])
        per_arch[(arch, variant)] = lay.image([(base, True), (marker, True)], ["cat", "/arch.txt"],
                                              arch=arch, variant=variant)
    multi = lay.multi([(desc, a, v) for (a, v), desc in per_arch.items()])
    lay.tag(multi, "multi")
    arm_only = lay.multi([(desc, a, v) for (a, v), desc in per_arch.items() if a != HOST_ARCH])
    lay.tag(arm_only, "armonly")
    bad_layer = _tar([("bad.txt", b"x" * 5000)])
    bad = lay.image([(base, True), (bad_layer, True)], ["true"])
    lay.tag(bad, "bad")
    lay.bad_layer = "sha256:" + _sha(gzip.compress(bad_layer, mtime=0))
    if shutil.which("zstd"):
        z = lay.image([(base, True), (_tar([("z.txt", b"zstd-layer\n")]), "zstd")], ["cat", "/z.txt"])
        lay.tag(z, "zstd")
    lay.app = app
    lay.multi_desc = multi
    return lay


@pytest.fixture(scope="module")
def registry(tmp_path_factory, images):
    r = Registry(str(tmp_path_factory.mktemp("registry")))
    r.start()
    for tag, repo, all_p in (("app", "test/app:v1", False), ("multi", "test/multi:1", True),
                             ("armonly", "test/armonly:1", True), ("bad", "test/bad:1", False)):
        r.push(images, tag, repo, all_p)
    if shutil.which("zstd"):
        r.push(images, "zstd", "test/zstd:1")
    r.push(images, "app", "docker/app:v1", docker_format=True)
    r.push(images, "multi", "docker/multi:1", True, docker_format=True)
    yield r
    r.stop()


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory, images):
    r = Registry(str(tmp_path_factory.mktemp("tlsregistry")), tls=True)
    r.start()
    r.push(images, "app", "private/app:v1")
    yield r
    r.stop()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """The CLI's credentials go to a temporary HOME."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SHOAL_CONFIG", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    return tmp_path


def _image(d, tag):
    for img in d.api("GET", "/v1/images").json():
        if tag in img["tags"]:
            return img
    return None


def _layer_dirs(d):
    return set(os.listdir(os.path.join(d.state_dir, "images", "layers")))


def _spools(d):
    return [f for f in os.listdir(os.path.join(d.state_dir, "tmp")) if f.startswith("blob-")]


# ---- pulls from the plain registry ----

def test_pull_by_tag_runs_and_second_pull_fetches_nothing(daemon, registry, images):
    d = daemon
    ref = registry.addr + "/test/app:v1"
    r = d.cli("image", "pull", ref)
    assert "v1: Pulling from test/app" in r.stdout
    assert "Pull complete" in r.stdout
    assert "Digest: " + images.app["digest"] in r.stdout
    assert "Status: Downloaded newer image for " + ref in r.stdout
    assert r.stdout.rstrip().endswith(ref)
    img = _image(d, ref)
    assert img is not None and len(img["layers"]) == 3
    assert img["digests"] == [registry.addr + "/test/app@" + images.app["digest"]]
    r = d.cli("run", "--rm", ref, "sh", "-c", "cat /hello.txt; ls /data; echo env=$FROM")
    assert "pulled-image" in r.stdout
    assert "b.txt" in r.stdout and "a.txt" not in r.stdout  # the whiteout hides a.txt
    assert "env=registry" in r.stdout
    # again: every layer is there, nothing is downloaded
    r = d.cli("image", "pull", ref)
    assert "Downloading" not in r.stdout and "Pull complete" not in r.stdout
    assert r.stdout.count("Already exists") == 3
    assert "Status: Image is up to date for " + ref in r.stdout
    assert not _spools(d)


def test_pull_by_digest_and_quiet(daemon, registry, images):
    d = daemon
    ref = "%s/test/app@%s" % (registry.addr, images.app["digest"])
    r = d.cli("image", "pull", "-q", ref)
    assert r.stdout.strip() == ref
    r = d.cli("run", "--rm", ref, "cat", "/hello.txt")
    assert "pulled-image" in r.stdout


def test_pull_index_picks_the_platform(daemon, registry):
    d = daemon
    ref = registry.addr + "/test/multi:1"
    d.cli("image", "pull", ref)
    assert d.cli("run", "--rm", ref).stdout.strip() == HOST_ARCH
    other = "arm64" if HOST_ARCH != "arm64" else "amd64"
    if other == "arm64":  # a foreign platform: pulled (not run)
        r = d.cli("image", "pull", "--platform", "linux/arm64", ref)
        assert "Pull complete" in r.stdout


def test_pull_docker_schema2_manifest_and_list(daemon, registry):
    d = daemon
    out = subprocess.run([SKOPEO, "inspect", "--raw", "--tls-verify=false",
                          "docker://%s/docker/multi:1" % registry.addr], check=True,
                         capture_output=True, text=True).stdout
    assert "manifest.list.v2+json" in out
    ref = registry.addr + "/docker/app:v1"
    d.cli("image", "pull", ref)
    assert "pulled-image" in d.cli("run", "--rm", ref, "cat", "/hello.txt").stdout
    ref = registry.addr + "/docker/multi:1"
    d.cli("image", "pull", ref)
    assert d.cli("run", "--rm", ref).stdout.strip() == HOST_ARCH


@pytest.mark.skipif(not shutil.which("zstd"), reason="zstd is needed to build the layer")
def test_pull_zstd_layer(daemon, registry):
    ref = registry.addr + "/test/zstd:1"
    daemon.cli("image", "pull", ref)
    assert daemon.cli("run", "--rm", ref).stdout.strip() == "zstd-layer"


def test_pull_index_without_this_platform_lists_platforms(daemon, registry):
    r = daemon.cli("image", "pull", registry.addr + "/test/armonly:1", check=False)
    assert r.returncode == 1
    assert "no matching manifest for linux/%s" % HOST_ARCH in r.stderr
    assert "linux/arm/v7" in r.stderr
    r = daemon.cli("image", "pull", "--platform", "linux", registry.addr + "/test/armonly:1", check=False)
    assert r.returncode != 0 and "OS/ARCH" in r.stderr


def test_pull_unknown_tag_and_repository(daemon, registry):
    r = daemon.cli("image", "pull", registry.addr + "/test/app:nope", check=False)
    assert r.returncode == 1
    assert "manifest for %s/test/app:nope not found" % registry.addr in r.stderr
    r = daemon.cli("image", "pull", registry.addr + "/test/nothing", check=False)
    assert r.returncode == 1 and "not found" in r.stderr


def test_pull_unreachable_registry_names_the_address(daemon):
    port = free_port()
    r = daemon.cli("image", "pull", "127.0.0.1:%d/x/y:1" % port, check=False)
    assert r.returncode == 1
    assert "cannot reach registry 127.0.0.1:%d" % port in r.stderr
    assert "http://127.0.0.1:%d/v2/" % port in r.stderr


def test_pull_bad_reference(daemon):
    r = daemon.cli("image", "pull", "UPPER/case", check=False)
    assert r.returncode == 1 and "invalid reference" in r.stderr


def test_corrupt_blob_is_refused_and_nothing_stored(daemon, registry, images):
    d = daemon
    path = registry.blob_file(images.bad_layer)
    with open(path, "rb") as f:
        good = f.read()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(bad))
    try:
        layers_before = _layer_dirs(d)
        r = d.cli("image", "pull", registry.addr + "/test/bad:1", check=False)
        assert r.returncode == 1
        assert "does not match its digest" in r.stderr and images.bad_layer in r.stderr
        assert _image(d, registry.addr + "/test/bad:1") is None
        assert not _spools(d)
        # only the busybox layer it shares with app may be new; never the bad one
        bad_diff = _sha(_tar([("bad.txt", b"x" * 5000)]))
        assert bad_diff not in _layer_dirs(d) - layers_before
    finally:
        with open(path, "wb") as f:
            f.write(good)
    r = d.cli("image", "pull", registry.addr + "/test/bad:1")
    assert "Pull complete" in r.stdout


# ---- TLS + htpasswd ----

def test_tls_registry_needs_login(daemon, tls_registry, home):
    d = daemon
    ref = tls_registry.addr + "/private/app:v1"
    r = d.cli("image", "pull", ref, check=False)
    assert r.returncode == 1
    assert "shoal login " + tls_registry.addr in r.stderr
    r = d.cli("login", "-u", "test", "--password-stdin", tls_registry.addr, input="wrong\n", check=False)
    assert r.returncode == 1 and "wrong username or password" in r.stderr
    assert not (home / ".shoal" / "config.json").exists()
    r = d.cli("login", "-u", "test", "--password-stdin", tls_registry.addr, input="secret\n")
    assert "Login Succeeded" in r.stdout
    cfg = home / ".shoal" / "config.json"
    assert (cfg.stat().st_mode & 0o777) == 0o600
    r = d.cli("image", "pull", ref)
    assert "Status: Downloaded newer image for " + ref in r.stdout
    assert "pulled-image" in d.cli("run", "--rm", ref, "cat", "/hello.txt").stdout
    r = d.cli("logout", tls_registry.addr)
    assert "Removing login credentials" in r.stdout
    assert tls_registry.addr not in cfg.read_text()


def test_docker_config_credentials_are_read(daemon, tls_registry, home):
    d = daemon
    os.makedirs(home / ".docker")
    auth = base64.b64encode(b"test:secret").decode()
    (home / ".docker" / "config.json").write_text(json.dumps({"auths": {tls_registry.addr: {"auth": auth}}}))
    d.cli("image", "pull", "-q", tls_registry.addr + "/private/app:v1")
    (home / ".docker" / "config.json").write_text(json.dumps(
        {"auths": {tls_registry.addr: {"auth": base64.b64encode(b"test:bad").decode()}}}))
    r = d.cli("image", "pull", tls_registry.addr + "/private/app:v1", check=False)
    assert r.returncode == 1 and "wrong username or password" in r.stderr


# ---- a fake registry for what a real one does not do ----

class FakeRegistry:
    """Serves a layout's blobs on a loopback port over plain HTTP. token: bearer-token auth
    as Docker Hub does it (user test/secret). stall: a blob digest whose answer stops
    half-way until `release` is set (then the connection drops). manifests: extra
    {repo:tag -> raw bytes} (garbage)."""

    def __init__(self, layout, token=False):
        self.layout = layout
        self.token = token
        self.tags = {}
        self.raw = {}
        self.stall = None
        self.gates = {}  # blob digest -> Event its answer waits for
        self.asked = {}  # blob digest -> Event set when it is asked for
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.requests = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, status, body=b"", ctype="application/json", headers=None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def authorized(self):
                if not fake.token:
                    return True
                if self.headers.get("Authorization") == "Bearer good-token":
                    return True
                realm = "http://%s/token" % fake.addr
                self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                          headers={"WWW-Authenticate": 'Bearer realm="%s",service="fake"' % realm})
                return False

            def do_GET(self):
                fake.requests.append(self.path)
                if self.path.startswith("/token"):
                    want = "Basic " + base64.b64encode(b"test:secret").decode()
                    if self.headers.get("Authorization") != want:
                        return self.send(401, b'{"details":"bad credentials"}')
                    return self.send(200, b'{"token":"good-token"}')
                if not self.authorized():
                    return
                if self.path == "/v2/":
                    return self.send(200, b"{}")
                parts = self.path.split("/")  # /v2/REPO.../manifests|blobs/REF
                kind, ref, repo = parts[-2], parts[-1], "/".join(parts[2:-2])
                if kind == "manifests":
                    key = "%s:%s" % (repo, ref)
                    if key in fake.raw:
                        return self.send(200, fake.raw[key], "application/vnd.oci.image.manifest.v1+json")
                    digest = fake.tags.get(key, ref)
                    data = fake.layout.blobs.get(digest)
                    if data is None:
                        return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
                    return self.send(200, data, json.loads(data).get("mediaType", "application/json"))
                fake.asked.setdefault(ref, threading.Event()).set()
                if ref in fake.gates and not fake.gates[ref].wait(30):
                    return self.send(500, b'{"errors":[{"code":"UNKNOWN","message":"gate timeout"}]}')
                data = fake.layout.blobs.get(ref)
                if data is None:
                    return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}')
                if ref == fake.stall:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    fake.stalled.set()
                    fake.release.wait(60)
                    self.close_connection = True
                    return
                self.send(200, data, "application/octet-stream")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.addr = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_registry(images):
    f = FakeRegistry(images)
    f.tags["test/app:v1"] = images.app["digest"]
    yield f
    f.stop()


def test_garbage_manifest_is_a_clear_error(daemon, fake_registry):
    fake_registry.raw["test/junk:1"] = b"{this is not json"
    r = daemon.cli("image", "pull", fake_registry.addr + "/test/junk:1", check=False)
    assert r.returncode == 1
    assert "invalid manifest for %s/test/junk:1" % fake_registry.addr in r.stderr
    fake_registry.raw["test/junk:2"] = b'{"schemaVersion": 2, "layers": 7}'
    r = daemon.cli("image", "pull", fake_registry.addr + "/test/junk:2", check=False)
    assert r.returncode == 1 and "manifest without a valid config or layers" in r.stderr


def test_bearer_token_auth(daemon, images, home):
    fake = FakeRegistry(images, token=True)
    try:
        fake.tags["team/app:v1"] = images.app["digest"]
        ref = fake.addr + "/team/app:v1"
        r = daemon.cli("image", "pull", ref, check=False)
        assert r.returncode == 1 and "shoal login" in r.stderr
        r = daemon.cli("login", "-u", "test", "--password-stdin", fake.addr, input="nope\n", check=False)
        assert r.returncode == 1 and "wrong username or password" in r.stderr
        daemon.cli("login", "-u", "test", "--password-stdin", fake.addr, input="secret\n")
        r = daemon.cli("image", "pull", ref)
        assert "Status: " in r.stdout
        assert any(p.startswith("/token") and "scope=repository%3Ateam%2Fapp%3Apull" in p
                   for p in fake.requests)
    finally:
        fake.stop()


def test_dropped_connection_then_second_pull_completes(fresh_daemon, fake_registry, images):
    d = fresh_daemon
    ref = fake_registry.addr + "/test/app:v1"
    layer = images.app  # its manifest's second layer (data files) drops half-way
    manifest = json.loads(images.blobs[layer["digest"]])
    fake_registry.stall = manifest["layers"][1]["digest"]
    fake_registry.release.set()  # no waiting: the connection just drops
    r = d.cli("image", "pull", ref, check=False)
    assert r.returncode == 1
    assert manifest["layers"][1]["digest"] in r.stderr
    assert _image(d, ref) is None and not _spools(d)
    fake_registry.stall = None
    r = d.cli("image", "pull", ref)
    assert "Status: Downloaded newer image" in r.stdout
    assert "pulled-image" in d.cli("run", "--rm", ref, "cat", "/hello.txt").stdout


def test_daemon_killed_mid_pull_then_pull_completes(fresh_daemon, fake_registry, images):
    d = fresh_daemon
    ref = fake_registry.addr + "/test/app:v1"
    manifest = json.loads(images.blobs[images.app["digest"]])
    fake_registry.stall = manifest["layers"][1]["digest"]
    proc = subprocess.Popen([SHOAL_BIN, "-H", "unix://" + d.sock, "image", "pull", ref],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert fake_registry.stalled.wait(60), "the pull never reached the stalled blob"
        wait_until(lambda: _spools(d), timeout=30)
        d.kill9()
    finally:
        proc.communicate(timeout=60)
    fake_registry.release.set()
    d.start()
    assert not _spools(d)
    assert _image(d, ref) is None
    fake_registry.stall = None
    r = d.cli("image", "pull", ref)
    assert "Status: Downloaded newer image" in r.stdout
    assert "pulled-image" in d.cli("run", "--rm", ref, "cat", "/hello.txt").stdout


# ---- services ----

def test_service_from_registry_pins_the_digest(daemon, registry, images):
    d = daemon
    ref = registry.addr + "/test/app:v1"
    d.api("DELETE", "/v1/images/%s?force=1" % ref)
    assert _image(d, ref) is None
    d.cli("service", "create", *QUICK_STOP, "--name", "pulled", ref, "sh", "-c",
          "cat /hello.txt; sleep 1000")
    try:
        pinned = "%s@%s" % (ref, images.app["digest"])
        svc = d.service("pulled")
        assert svc["spec"]["image"] == pinned
        inspect = json.loads(d.cli("service", "inspect", "pulled").stdout)
        assert inspect[0]["spec"]["image"] == pinned
        d.wait_running("pulled", 1)
        wait_until(lambda: "pulled-image" in d.logs("pulled"))
        # the pinned image is in use: removing it (every tag: by id) needs force
        r = d.cli("image", "rm", _image(d, ref)["id"], check=False)
        assert r.returncode == 1 and "service pulled uses it" in r.stderr
        # update to another registry image: pulled and pinned too
        multi = registry.addr + "/test/multi:1"
        d.cli("service", "update", "--image", multi, "pulled")
        img = _image(d, multi)
        assert d.service("pulled")["spec"]["image"] == "%s@%s" % (multi, img["digests"][0].split("@")[1])
        # unknown tag: the service is not changed, the error says why
        r = d.cli("service", "update", "--image", registry.addr + "/test/app:nope", "pulled", check=False)
        assert r.returncode == 1 and "No such image" in r.stderr and "not found" in r.stderr
    finally:
        d.cli("service", "rm", "pulled")


def test_service_of_unknown_image_stays_on_allowed_registries(daemon):
    r = daemon.cli("service", "create", "--name", "x", "nosuch:img", "true", check=False)
    assert r.returncode == 1
    assert "No such image: nosuch:img" in r.stderr and "allowed-registries" in r.stderr


# ---- image inspect, image ls --digests ----

def test_image_inspect_and_ls_digests(daemon, registry, images):
    d = daemon
    ref = registry.addr + "/test/app:v1"
    d.cli("image", "pull", "-q", ref)
    out = json.loads(d.cli("image", "inspect", ref).stdout)
    assert len(out) == 1
    img = out[0]
    assert ref in img["tags"]
    assert registry.addr + "/test/app@" + images.app["digest"] in img["digests"]
    assert img["platform"] == "linux/" + HOST_ARCH
    assert img["config"]["Cmd"] == ["cat", "/hello.txt"]
    assert len(img["layers"]) == 3
    # by id and by repository digest too
    assert json.loads(d.cli("image", "inspect", img["id"]).stdout)[0]["id"] == img["id"]
    by_digest = "%s/test/app@%s" % (registry.addr, images.app["digest"])
    assert json.loads(d.cli("image", "inspect", by_digest).stdout)[0]["id"] == img["id"]
    r = d.cli("image", "inspect", "nosuch:img", check=False)
    assert r.returncode == 1 and "No such image" in r.stderr
    lines = d.cli("image", "ls", "--digests").stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    row = [l for l in lines if l.startswith(registry.addr + "/test/app ")]
    assert row and row[0].split()[1] == "v1" and row[0].split()[2] == images.app["digest"]
    assert "DIGEST" not in d.cli("image", "ls").stdout
    # a name with '/' and a port is one argument of image rm too
    d.cli("image", "rm", "-f", ref)
    assert _image(d, ref) is None


# ---- image tag ----

def _tags(d):
    return sorted(t for img in d.api("GET", "/v1/images").json() for t in img["tags"])


def test_image_tag_normalizes_and_refuses_bad_references(daemon):
    d = daemon
    box = _image(d, "busybox:latest")
    d.cli("image", "tag", "busybox", "docker.io/library/mybox")
    assert _image(d, "mybox:latest")["id"] == box["id"]
    d.cli("image", "tag", box["id"], "reg.local:5000/team/box:v2")  # by id, a registry and a tag
    assert _image(d, "reg.local:5000/team/box:v2")["id"] == box["id"]
    assert "mybox" in d.cli("run", "--rm", "mybox", "echo", "mybox").stdout
    before = _tags(d)
    for bad in ("Bad/Name", "x:bad:tag", "a@sha256:" + "0" * 64, ""):
        r = d.cli("image", "tag", "busybox", bad, check=False)
        assert r.returncode == 1 and ("invalid reference" in r.stderr or "empty" in r.stderr), r.stderr
    r = d.cli("image", "tag", "nosuch:img", "other:1", check=False)
    assert r.returncode == 1 and "No such image: nosuch:img" in r.stderr
    assert _tags(d) == before
    d.cli("image", "rm", "mybox", "reg.local:5000/team/box:v2")
    assert _image(d, "busybox:latest") is not None


# ---- image push ----

def _skopeo_inspect(addr, repo, raw=False):
    args = [SKOPEO, "inspect", "--tls-verify=false"] + (["--raw"] if raw else [])
    out = subprocess.run(args + ["docker://%s/%s" % (addr, repo)], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return json.loads(out)


def _pushed_digest(stdout, tag):
    line = [l for l in stdout.splitlines() if l.startswith(tag + ": digest: sha256:")]
    assert line, stdout
    return line[0].split()[2]


def test_push_pull_back_and_run_then_second_push_uploads_nothing(daemon, registry, images):
    d = daemon
    src = registry.addr + "/test/app:v1"
    d.cli("image", "pull", "-q", src)
    image_id = _image(d, src)["id"]
    dst = registry.addr + "/pushed/app:v2"
    d.cli("image", "tag", src, dst)
    r = d.cli("image", "push", dst)
    assert "The push refers to repository [%s/pushed/app]" % registry.addr in r.stdout
    digest = _pushed_digest(r.stdout, "v2")
    assert registry.addr + "/pushed/app@" + digest in _image(d, dst)["digests"]
    # the registry serves what shoal pushed: skopeo agrees with the manifest
    manifest = _skopeo_inspect(registry.addr, "pushed/app:v2", raw=True)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["config"]["digest"] == image_id
    info = _skopeo_inspect(registry.addr, "pushed/app:v2")
    assert info["Digest"] == digest
    assert info["Layers"] == [l["digest"] for l in manifest["layers"]]
    # a layer whose stored blob came from test/app (gzip) is mounted from there, by the same
    # digest; the others (the plain tar layer; the base layer, stored from busybox's import)
    # are pushed as gzips shoal makes
    source = [l["digest"] for l in json.loads(images.blobs[images.app["digest"]])["layers"]]
    assert manifest["layers"][1]["digest"] == source[1]
    for layer in manifest["layers"]:
        word = "Mounted from test/app" if layer["digest"] in source else "Pushed"
        assert "%s: %s" % (layer["digest"][7:19], word) in r.stdout, r.stdout
    for layer in manifest["layers"]:  # each blob is what the manifest says, byte for byte
        with open(registry.blob_file(layer["digest"]), "rb") as f:
            data = f.read()
        assert len(data) == layer["size"] and "sha256:" + _sha(data) == layer["digest"]
    assert gzip.decompress(open(registry.blob_file(manifest["layers"][2]["digest"]), "rb").read())
    # again: the registry has every blob (HEAD answers 200), nothing is uploaded; its access
    # log shows no new upload
    uploads = registry.log().count("POST /v2/pushed/app/blobs/uploads/")
    assert uploads >= 1
    r = d.cli("image", "push", dst)
    assert r.stdout.count("Layer already exists") == 3, r.stdout
    assert "Pushed" not in r.stdout and "Mounted" not in r.stdout
    assert _pushed_digest(r.stdout, "v2") == digest
    assert registry.log().count("POST /v2/pushed/app/blobs/uploads/") == uploads
    assert registry.log().count("HEAD /v2/pushed/app/blobs/sha256:") >= 8
    last = [json.loads(l) for l in d.api("POST", "/v1/images/%s/push" % dst).body.decode().splitlines()][-1]
    assert last["uploaded"] == 0 and last["digest"] == digest
    # gone from the store, pulled back from where it was pushed, run
    d.cli("image", "rm", "-f", src, dst)
    assert _image(d, dst) is None
    r = d.cli("image", "pull", dst)
    assert "Digest: " + digest in r.stdout
    assert _image(d, dst)["id"] == image_id
    r = d.cli("run", "--rm", dst, "sh", "-c", "cat /hello.txt; ls /data; echo env=$FROM")
    assert "pulled-image" in r.stdout and "b.txt" in r.stdout and "a.txt" not in r.stdout
    assert "env=registry" in r.stdout
    d.cli("image", "rm", "-f", dst)


def test_push_imported_image_gzips_its_layer_the_same_each_time(daemon, registry):
    d = daemon
    dst = registry.addr + "/pushed/box:1"
    d.cli("image", "tag", "busybox", dst)
    try:
        r = d.cli("image", "push", dst)
        assert r.stdout.count(": Pushed") == 1 and "Mounted" not in r.stdout, r.stdout
        digest = _pushed_digest(r.stdout, "1")
        r = d.cli("image", "push", "-q", dst)
        assert r.stdout.strip() == dst
        info = _skopeo_inspect(registry.addr, "pushed/box:1")
        assert info["Digest"] == digest and len(info["Layers"]) == 1
        assert info["Architecture"] == HOST_ARCH and info["Os"] == "linux"
        assert "hello" in d.cli("run", "--rm", dst, "echo", "hello").stdout
    finally:
        d.cli("image", "rm", dst)


def test_push_without_the_blob_or_config_in_the_store_says_so(daemon, registry):
    d = daemon
    dst = registry.addr + "/pushed/missing:1"
    d.cli("image", "tag", "busybox", dst)
    img = _image(d, dst)
    store = os.path.join(d.state_dir, "images")
    blob = os.path.join(store, "layers", img["layers"][0].split(":")[1], "layer.blob")
    config = os.path.join(store, "configs", img["id"].split(":")[1])
    try:
        os.rename(blob, blob + ".away")
        r = d.cli("image", "push", dst, check=False)
        assert r.returncode == 1 and "layer %s has no blob" % img["layers"][0] in r.stderr
        assert "pull or load the image again" in r.stderr
        os.rename(blob + ".away", blob)
        os.rename(config, config + ".away")
        r = d.cli("image", "push", dst, check=False)
        assert r.returncode == 1 and "the config of image %s is not" % img["id"] in r.stderr
        r = d.cli("image", "history", dst, check=False)
        assert r.returncode == 1 and "pull or load the image again" in r.stderr
        assert "pushed/missing" not in registry.log()  # nothing was sent
    finally:
        for path in (blob, config):
            if os.path.exists(path + ".away"):
                os.rename(path + ".away", path)
        d.cli("image", "rm", dst)


@pytest.mark.skipif(not shutil.which("zstd"), reason="zstd is needed")
def test_push_zstd_layer_makes_an_oci_manifest(daemon, registry):
    d = daemon
    src, dst = registry.addr + "/test/zstd:1", registry.addr + "/pushed/zstd:1"
    d.cli("image", "pull", "-q", src)
    d.cli("image", "tag", src, dst)
    r = d.cli("image", "push", dst)
    manifest = _skopeo_inspect(registry.addr, "pushed/zstd:1", raw=True)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["layers"][1]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert "Mounted from test/zstd" in r.stdout
    d.cli("image", "rm", "-f", src, dst)
    d.cli("image", "pull", "-q", dst)
    assert "zstd-layer" in d.cli("run", "--rm", dst, "cat", "/z.txt").stdout
    d.cli("image", "rm", "-f", dst)


def test_push_errors(daemon, tls_registry, home):
    d = daemon
    r = d.cli("image", "push", "127.0.0.1:5999/nosuch/img:1", check=False)
    assert r.returncode == 1 and "No such image: 127.0.0.1:5999/nosuch/img:1" in r.stderr
    r = d.cli("image", "push", "Bad/Ref", check=False)
    assert r.returncode == 1 and "invalid reference" in r.stderr
    unreachable = "127.0.0.1:%d/x/box:1" % free_port()
    d.cli("image", "tag", "busybox", unreachable)
    secret = tls_registry.addr + "/private/box:1"
    d.cli("image", "tag", "busybox", secret)
    try:
        r = d.cli("image", "push", unreachable, check=False)
        assert r.returncode == 1 and "cannot reach registry " + unreachable.split("/")[0] in r.stderr
        r = d.cli("image", "push", secret, check=False)
        assert r.returncode == 1
        assert "push access denied for " + secret.rsplit(":", 1)[0] in r.stderr
        assert "shoal login " + tls_registry.addr in r.stderr
        os.makedirs(home / ".docker")
        bad = base64.b64encode(b"test:bad").decode()
        (home / ".docker" / "config.json").write_text(json.dumps({"auths": {tls_registry.addr: {"auth": bad}}}))
        r = d.cli("image", "push", secret, check=False)
        assert r.returncode == 1 and "wrong username or password" in r.stderr
        d.cli("login", "-u", "test", "--password-stdin", tls_registry.addr, input="secret\n")
        r = d.cli("image", "push", secret)
        assert r.stdout.count(": Pushed") == 1
        info = json.loads(subprocess.run(
            [SKOPEO, "inspect", "--tls-verify=false", "--creds", "test:secret",
             "docker://" + secret], check=True, capture_output=True, text=True).stdout)
        assert info["Digest"] == _pushed_digest(r.stdout, "1")
    finally:
        d.cli("image", "rm", unreachable, secret)


# ---- image history ----

def test_image_history_from_the_config(daemon, registry, rootfs_tar, tmp_path):
    d = daemon
    lay = Layout(str(tmp_path / "oci"))
    with open(rootfs_tar, "rb") as f:
        base = f.read()
    top = _tar([("hist.txt", b"history\n")])
    long_cmd = "/bin/sh -c echo history > /hist.txt && " + "x" * 60
    hist = [{"created": "2024-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop) ADD file:base in /",
             "comment": "base layer"},
            {"created": "2024-01-02T03:04:06Z", "created_by": "/bin/sh -c #(nop)  ENV A=1",
             "empty_layer": True},
            {"created": "2024-01-02T03:04:07.5Z", "created_by": long_cmd}]
    lay.tag(lay.image([(base, True), (top, True)], ["cat", "/hist.txt"], history=hist), "hist")
    registry.push(lay, "hist", "test/hist:1")
    ref = registry.addr + "/test/hist:1"
    d.cli("image", "pull", "-q", ref)
    image_id = _image(d, ref)["id"]
    rows = json.loads(d.cli("image", "history", "--format", "json", ref).stdout)
    assert [r["created_by"] for r in rows] == [h["created_by"] for h in reversed(hist)]
    assert [r["created"] for r in rows] == [h["created"] for h in reversed(hist)]
    assert rows[0]["id"] == image_id and [r["id"] for r in rows[1:]] == ["<missing>"] * 2
    assert [r["size"] for r in rows] == [len(top), 0, len(base)]  # bytes of each layer's tar
    assert [r["empty_layer"] for r in rows] == [False, True, False]
    assert rows[2]["comment"] == "base layer"
    lines = d.cli("image", "history", ref).stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert len(lines) == 4 and lines[1].startswith(image_id[7:19] + " ")
    assert "days ago" in lines[1]  # cli_ago's words for 2024
    assert long_cmd[:42] + "..." in lines[1] and long_cmd not in lines[1]
    assert lines[2].startswith("<missing>") and "0B" in lines[2]
    assert lines[3].rstrip().endswith("base layer")
    assert long_cmd in d.cli("image", "history", "--no-trunc", ref).stdout
    # an imported image: a row for its layer
    rows = json.loads(d.cli("image", "history", "--format", "json", "busybox").stdout)
    assert len(rows) == 1 and rows[0]["id"] == _image(d, "busybox:latest")["id"] and rows[0]["size"] > 0
    r = d.cli("image", "history", "nosuch:img", check=False)
    assert r.returncode == 1 and "No such image: nosuch:img" in r.stderr
    d.cli("image", "rm", ref)


# ---- a cluster: the leader pulls once, the other nodes get the layers from managers ----

def test_cluster_pull_on_a_follower_and_worker_runs_the_pinned_image(rootfs_tar, images, tmp_path):
    """The registry listens on the leader's loopback only: a pull asked of the other
    manager runs on the leader; a worker (no registry in reach) runs the service's
    pinned image with layers fetched from the managers."""
    from cluster import Cluster

    c = Cluster(managers=2, workers=1, rootfs_tar=rootfs_tar)
    reg = None
    try:
        lead, follower, worker = c.nodes
        reg = Registry(str(tmp_path / "reg"), netns=lead.netns)
        reg.start()
        reg.push(images, "app", "test/app:v1")
        ref = reg.addr + "/test/app:v1"
        r = follower.cli("image", "pull", ref)
        assert "Status: Downloaded newer image for " + ref in r.stdout
        wait_until(lambda: any(ref in i["tags"] for i in follower.api("GET", "/v1/images").json()))
        # a service of an image the cluster lacks: the leader pulls and pins it
        multi = reg.addr + "/test/multi:1"
        reg.push(images, "multi", "test/multi:1", True)
        lead.cli("service", "create", *QUICK_STOP, "--name", "far", "--constraint",
                 "node.id==" + c.node_id(worker), multi, "sh", "-c", "cat /arch.txt; sleep 1000")
        spec_image = lead.service("far")["spec"]["image"]
        assert spec_image.startswith(multi + "@sha256:")
        task = lead.wait_running("far", 1, timeout=60)[0]
        assert task["node_id"] == c.node_id(worker) and task["image"] == spec_image
        with open("/proc/%d/root/arch.txt" % task["pid"]) as f:  # the worker's container
            assert f.read().strip() == HOST_ARCH
        img = [i for i in lead.api("GET", "/v1/images").json() if i["id"] == task["container"]["image_id"]][0]
        for layer in img["layers"]:  # fetched from the managers over the cluster port
            assert os.path.isdir(os.path.join(worker.state_dir, "images", "layers", layer.split(":")[1]))
        lead.cli("service", "rm", "far")
    finally:
        if reg:
            reg.stop()
        c.destroy()


def _rejoin_claiming(c, node, platform, monkeypatch):
    """The node leaves, restarts claiming `platform` (SHOAL_TEST_PLATFORM, a test
    knob) and joins again as a worker: its node record reports that platform."""
    old_id = c.node_id(node)
    token = c.token("worker")
    node.cli("swarm", "leave", "--force", timeout=120)
    node.stop()
    monkeypatch.setenv("SHOAL_TEST_PLATFORM", platform)
    node.start()
    monkeypatch.delenv("SHOAL_TEST_PLATFORM")
    node.cli("swarm", "join", "--token", token, c.leader.addr + ":2377")
    wait_until(lambda: c.leader.cli("node", "rm", "--force", old_id, check=False).returncode == 0)
    c.wait_nodes_ready(len(c.nodes))


def test_each_node_runs_the_variant_of_its_platform(rootfs_tar, images, tmp_path, monkeypatch):
    """A global service of a multi-platform index: the service pins the index
    digest, the leader pulls the variant of each node's platform, and each node
    runs its own (here the worker claims linux/arm64, the leader is this host).
    An index without a node's platform: that node's task fails listing those it has."""
    from cluster import Cluster

    if HOST_ARCH == "arm64":
        pytest.skip("the worker claims arm64: this host must be another platform")
    c = Cluster(managers=1, workers=2, rootfs_tar=rootfs_tar)
    reg = None
    try:
        lead, worker, late = c.nodes
        lead.cli("node", "update", "--availability", "drain", c.node_id(late))  # joins later
        _rejoin_claiming(c, worker, "linux/arm64", monkeypatch)
        worker_id = c.node_id(worker)
        platforms = {n["id"]: n.get("platform") for n in c.nodes_view()}
        assert platforms[worker_id]["architecture"] == "arm64"
        reg = Registry(str(tmp_path / "reg"), netns=lead.netns)
        reg.start()
        reg.push(images, "multi", "test/multi:1", True)
        reg.push(images, "armonly", "test/armonly:1", True)
        multi = reg.addr + "/test/multi:1"
        lead.cli("service", "create", *QUICK_STOP, "--name", "each", "--mode", "global", multi,
                 "sh", "-c", "cat /arch.txt; sleep 1000")
        pinned = lead.service("each")["spec"]["image"]
        assert pinned.startswith(multi + "@sha256:")
        tasks = lead.wait_running("each", 2, timeout=60)
        seen = {}
        for t in tasks:
            node = worker if t["node_id"] == worker_id else lead
            with open("/proc/%d/root/arch.txt" % t["pid"]) as f:
                seen[node.name] = f.read().strip()
        assert seen == {lead.name: HOST_ARCH, worker.name: "arm64/v8"}
        # a node of a platform no node had when the service was pinned: the leader pulls
        # that variant when it joins (the task is refused until then, then runs)
        _rejoin_claiming(c, late, "linux/arm/v7", monkeypatch)
        late_id = c.node_id(late)
        wait_until(lambda: any(t.get("node_id") == late_id and t["state"] == "running"
                               for t in lead.tasks("each")), timeout=60,
                   msg=lambda: json.dumps(lead.tasks("each"), indent=1)[-3000:])
        t = [t for t in lead.tasks("each") if t.get("node_id") == late_id and t["state"] == "running"][0]
        with open("/proc/%d/root/arch.txt" % t["pid"]) as f:
            assert f.read().strip() == "arm/v7"
        variants = [i for i in lead.api("GET", "/v1/images").json()
                    if multi.split(":1")[0] + "@" + pinned.split("@")[1] in i.get("digests", [])]
        assert sorted(i["platform"] for i in variants) == sorted(["linux/" + HOST_ARCH, "linux/arm64/v8",
                                                                  "linux/arm/v7"])
        for i in variants:  # what the index offers, recorded with each variant
            assert "linux/arm/v7" in i["platforms"]
        # the untagged variant is the service's too: prune keeps it, image rm refuses it
        lead.cli("image", "prune", "-a", "-f")
        ids = {i["id"] for i in lead.api("GET", "/v1/images").json()}
        assert all(i["id"] in ids for i in variants)
        arm_id = [i["id"] for i in variants if i["platform"] == "linux/arm/v7"][0]
        r = lead.cli("image", "rm", arm_id, check=False)
        assert r.returncode == 1 and "each" in r.stderr, r.stderr
        lead.cli("service", "rm", "each")
        # an index without the leader's platform: its task fails with the list, the worker runs
        armonly = reg.addr + "/test/armonly:1"
        lead.cli("service", "create", *QUICK_STOP, "-d", "--name", "armonly", "--mode", "global",
                 armonly, "sh", "-c", "cat /arch.txt; sleep 1000")

        def refused():
            ts = [t for t in lead.tasks("armonly") if t["slot"] == c.node_id(lead)]  # global: a node
            return [t for t in ts if t["state"] == "rejected"] or None
        t = wait_until(refused, timeout=30, msg=lambda: json.dumps(lead.tasks("armonly"), indent=1))[0]
        assert "has no variant for this node's platform linux/" + HOST_ARCH in t["error"], t["error"]
        assert "it has: linux/arm64/v8, linux/arm/v7" in t["error"], t["error"]
        wait_until(lambda: any(t.get("node_id") == worker_id and t["state"] == "running"
                               for t in lead.tasks("armonly")), timeout=60)
        lead.cli("service", "rm", "armonly")
    finally:
        if reg:
            reg.stop()
        c.destroy()


def test_tag_and_push_through_a_follower(rootfs_tar, images, tmp_path):
    """On a 3-manager cluster, `image tag` and `image push` asked of a follower are
    forwarded to the leader, which pushes (the registry listens on the leader's
    loopback only, so a push done by the follower could not reach it); the
    pushed digest joins the image's digests on every manager."""
    from cluster import Cluster

    c = Cluster(managers=3, rootfs_tar=rootfs_tar)
    reg = None
    try:
        lead, follower = c.nodes[0], c.nodes[1]
        reg = Registry(str(tmp_path / "reg"), netns=lead.netns)
        reg.start()
        dst = reg.addr + "/from/follower:1"
        follower.cli("image", "tag", "busybox:latest", dst)
        wait_until(lambda: _image(follower, dst) is not None)
        r = follower.cli("image", "push", dst)
        digest = _pushed_digest(r.stdout, "1")
        assert "Pushed" in r.stdout, r.stdout
        for node in c.nodes:
            wait_until(lambda: reg.addr + "/from/follower@" + digest in _image(node, dst)["digests"])
        out = subprocess.run(reg.wrap + [SKOPEO, "inspect", "--tls-verify=false",
                                         "docker://" + dst], check=True, capture_output=True,
                             text=True, timeout=60).stdout
        assert json.loads(out)["Digest"] == digest
        r = c.nodes[2].cli("image", "push", dst)  # the other follower: all there already
        assert "Pushed" not in r.stdout and _pushed_digest(r.stdout, "1") == digest
    finally:
        if reg:
            reg.stop()
        c.destroy()


def _fill(path, leave_bytes):
    """A file that takes all but `leave_bytes` of the filesystem holding `path`."""
    st = os.statvfs(path)
    size = st.f_bavail * st.f_frsize - leave_bytes
    filler = os.path.join(path, "filler")
    with open(filler, "wb") as f:
        chunk = b"\1" * (1 << 20)
        while size > 0:
            f.write(chunk[:min(size, len(chunk))])
            size -= len(chunk)
    return filler


def test_disk_full_during_a_pull_stores_nothing_then_a_pull_completes(rootfs_tar, registry, tmp_path):
    """The daemon's state dir on a small tmpfs, filled but for 2 MiB: a pull whose layer
    does not fit while downloading (random bytes), then one that does not fit while
    unpacking (a small gzip of 24 MiB of one byte), each fail saying 'No space left on
    device' and where; nothing is left in tmp/ or layers/; with space again, each pull
    completes."""
    from conftest import Daemon

    lay = Layout(str(tmp_path / "oci"))
    with open(rootfs_tar, "rb") as f:
        base = f.read()
    noise = _tar([("noise.bin", os.urandom(8 << 20))])
    zeros = _tar([("ones.bin", b"\1" * (24 << 20))])  # not zeros: they could unpack sparse
    lay.tag(lay.image([(base, True), (noise, True)], ["true"]), "noise")
    lay.tag(lay.image([(base, True), (zeros, True)], ["true"]), "ones")
    registry.push(lay, "noise", "full/noise:1")
    registry.push(lay, "ones", "full/ones:1")
    d = Daemon(str(tmp_path / "d"))
    small = str(tmp_path / "small")  # outside d.base: the teardown's leftover check passes
    os.makedirs(small)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", small], check=True)
    d.state_dir = os.path.join(small, "state")
    errors = []
    try:
        d.start()
        d.init_swarm()
        d.import_image(rootfs_tar)
        before = _layer_dirs(d)
        for repo, where in (("full/noise:1", "/tmp/blob-"), ("full/ones:1", "/images/tmp/layer-")):
            ref = registry.addr + "/" + repo
            filler = _fill(small, 2 << 20)
            r = d.cli("image", "pull", ref, check=False)
            assert r.returncode == 1, r.stdout
            assert "No space left on device" in r.stderr and d.state_dir + where in r.stderr, r.stderr
            assert _image(d, ref) is None and _layer_dirs(d) == before
            assert os.listdir(os.path.join(d.state_dir, "tmp")) == []
            assert os.listdir(os.path.join(d.state_dir, "images", "tmp")) == []
            os.unlink(filler)
            r = d.cli("image", "pull", ref)
            assert "Status: Downloaded newer image for " + ref in r.stdout
            assert len(_layer_dirs(d)) == len(before) + 1
            before = _layer_dirs(d)
    finally:
        errors = d.teardown()
        subprocess.run(["umount", small], check=True)
    assert not errors, errors


def test_pull_on_a_terminal_rewrites_layer_lines(fresh_daemon, registry):
    """On a terminal each layer keeps one line, rewritten in place (cursor up, clear line)."""
    import pty

    master, slave = pty.openpty()
    ref = registry.addr + "/test/app:v1"
    proc = subprocess.Popen([SHOAL_BIN, "-H", "unix://" + fresh_daemon.sock, "image", "pull", ref],
                            stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    proc.stderr.close()
    text = out.decode()
    assert "\x1b[" in text and "A\r\x1b[2K" in text  # a layer's line rewritten
    assert "Pull complete" in text and text.rstrip().endswith(ref)


def test_layers_download_in_parallel(fresh_daemon, fake_registry, images):
    """Each of the two missing layers is answered only once the other has been asked for:
    a pull that fetched one layer at a time would fail."""
    d = fresh_daemon
    manifest = json.loads(images.blobs[images.app["digest"]])
    a, b = manifest["layers"][1]["digest"], manifest["layers"][2]["digest"]
    for x in (a, b):
        fake_registry.asked[x] = threading.Event()
    fake_registry.gates = {a: fake_registry.asked[b], b: fake_registry.asked[a]}
    r = d.cli("image", "pull", fake_registry.addr + "/test/app:v1")
    assert "Status: Downloaded newer image" in r.stdout


# ---- daemon.json ----

@pytest.mark.parametrize("content, message", [
    ('{"insecure-registry": ["a:5000"]}', "unknown key 'insecure-registry'"),
    ('{"insecure-registries": "a:5000"}', "insecure-registries must be an array of strings"),
    ('{"allowed-registries": ["a b"]}', "allowed-registries[0]: expected"),
    ('{"insecure-registries": [', "configuration"),
    ('{"metrics-history-days": 400}', "metrics-history-days must be a number of days (0 to 366)"),
    (None, "configuration"),
])
def test_daemon_config_errors_stop_the_daemon(tmp_path, content, message):
    cfg = tmp_path / "daemon.json"
    if content is not None:
        cfg.write_text(content)
    r = subprocess.run([SHOAL_BIN, "daemon", "--config", str(cfg), "--state-dir", str(tmp_path / "state"),
                        "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert message in r.stderr and str(cfg) in r.stderr


def test_insecure_registries_from_daemon_json(rootfs_tar, images, tmp_path):
    """A plain-HTTP registry on a node's own (non-loopback) address is refused until
    daemon.json names it in insecure-registries."""
    from cluster import Cluster

    c = Cluster(managers=1, rootfs_tar=rootfs_tar)
    reg = None
    try:
        node = c.leader
        reg = Registry(str(tmp_path / "reg"), netns=node.netns, host=node.addr)
        reg.start()
        reg.push(images, "app", "test/app:v1")
        ref = reg.addr + "/test/app:v1"
        r = node.cli("image", "pull", ref, check=False)
        assert r.returncode == 1
        assert "cannot reach registry " + reg.addr in r.stderr and "https://" + reg.addr in r.stderr
        assert "http://" + reg.addr not in r.stderr  # no plain-HTTP attempt
        cfg = tmp_path / "daemon.json"
        cfg.write_text(json.dumps({"insecure-registries": [reg.addr]}))
        node.extra_args = ["--config", str(cfg)]
        node.restart()
        c.wait_nodes_ready(1)
        r = node.cli("image", "pull", ref)
        assert "Status: Downloaded newer image for " + ref in r.stdout
    finally:
        if reg:
            reg.stop()
        c.destroy()
