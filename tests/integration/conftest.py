"""Fixtures for shoal integration tests: a busybox rootfs, a fresh daemon per
module (or per test), CLI and API helpers, and a teardown that checks that
nothing (process, mount, cgroup) is left behind."""
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time

import pytest

import background

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHOAL_BIN = os.environ.get("SHOAL_BIN", os.path.join(ROOT, "build", "shoal"))
BUSYBOX = "/bin/busybox"
# `service create` flags for services whose removal is not what a test checks: a busybox
# command as a container's pid 1 ignores SIGTERM, so each removal (the fixtures' teardowns)
# waited the default 10 s grace for its SIGKILL: about 4 min of each pass until session 13.
QUICK_STOP = ("--stop-grace-period", "1s")


def wait_until(fn, timeout=20, interval=0.1, msg=None):
    """Polls fn until it returns a truthy value; returns it. Fails after timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_exc = e
        if time.monotonic() > deadline:
            detail = msg() if callable(msg) else msg
            raise AssertionError(
                "condition not met within %ss%s%s"
                % (timeout, ": %s" % (detail,) if detail else "", " (last error: %r)" % last_exc if last_exc else "")
            )
        time.sleep(interval)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_start(pid):
    """The process's start time (clock ticks since boot), None when there is none:
    with it a pid is told apart from a later process given the same number."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid):
    if not pid or pid <= 0:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def make_rootfs_tar(path, extra=None):
    """A busybox root filesystem: bin/busybox plus one symlink per applet.
    extra: {path_in_tar: bytes} of additional regular files."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    with tarfile.open(path, "w") as tar:
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(ti)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for a in applets:
            if a == "busybox":
                continue
            ti = tarfile.TarInfo("bin/" + a)
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            tar.addfile(ti)
        for name, data in (extra or {}).items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            import io

            tar.addfile(ti, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def rootfs_tar(tmp_path_factory):
    d = tmp_path_factory.mktemp("rootfs")
    return make_rootfs_tar(str(d / "busybox.tar"))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class ApiResponse:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<ApiResponse %d %r>" % (self.status, self.body[:300])


_daemons = [0]


class Daemon:
    def __init__(self, base):
        self.base = base
        os.makedirs(base, exist_ok=True)
        self.state_dir = os.path.join(base, "state")
        self.run_dir = os.path.join(base, "run")
        self.sock = os.path.join(self.run_dir, "shoal.sock")
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(base, "daemon.log")
        self.known_pids = set()
        self.known_ids = set()
        self.swarm_active = False
        self.extra_args = []  # more `shoal daemon` flags (--dashboard-addr ...)
        # Pulls stay on loopback: a service of an unknown image must not reach docker.io.
        self.config_path = os.path.join(base, "daemon.json")
        with open(self.config_path, "w") as f:
            # no automatic image GC (it would act on a CI machine's full disk; test_prune sets it)
            json.dump({"allowed-registries": ["127.0.0.0/8", "localhost"],
                       "image-gc-high-percent": 100}, f)
        self.wrapper = []  # runs the daemon under this command (valgrind ...)
        # Daemons of the host's namespace run side by side (and test runs too): a bridge and
        # a task subnet each.
        _daemons[0] += 1
        self.net_index = _daemons[0] % 125
        # a /23: the node's /24, and the last one for the services' virtual IPs
        self.pool = "10.%d.%d.0/23" % (100 + os.getpid() % 50, 2 * self.net_index)
        self.subnet = "10.%d.%d.0/24" % (100 + os.getpid() % 50, 2 * self.net_index)
        self.bridge = "sht%d-%d" % (os.getpid() % 10000, self.net_index)

    def configure(self, entries):
        """entries added to daemon.json (read at the next start)."""
        with open(self.config_path) as f:
            cfg = json.load(f)
        cfg.update(entries)
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)

    def listen_dashboard(self):
        """From the next start, the dashboard listener on 127.0.0.1:self.dashboard_port."""
        self.dashboard_port = free_port()
        self.extra_args += ["--dashboard-addr", "127.0.0.1:%d" % self.dashboard_port]

    def dashboard_token(self, admin=False):
        """The token of `shoal dashboard url`: read-only, or with admin the admin one."""
        url = self.cli("dashboard", "url", *(["--admin"] if admin else [])).stdout.strip()
        return url.split("#token=")[1]

    # ---- process control ----
    def start(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            list(self.wrapper) + [SHOAL_BIN, "daemon", "--state-dir", self.state_dir, "--run-dir",
                                  self.run_dir, "--bridge", self.bridge, "--config", self.config_path]
            + list(self.extra_args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        if os.environ.get("SHOAL_PID_LOG"):  # which test ran which daemon (sanitizer reports)
            with open(os.environ["SHOAL_PID_LOG"], "a") as f:
                f.write("%d %s\n" % (self.proc.pid, os.environ.get("PYTEST_CURRENT_TEST", "")))

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
            if not os.path.exists(self.sock):
                return False
            return self.api("GET", "/v1/info").status == 200

        try:
            wait_until(ready, timeout=20)
        except AssertionError:
            raise AssertionError("daemon did not come up:\n" + self.log_tail())

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("daemon did not exit on %s:\n%s" % (sig, self.log_tail()))
        self.proc = None

    def kill9(self):
        self.stop(sig=signal.SIGKILL)

    def restart(self):
        self.stop()
        self.start()

    def log_tail(self, n=60):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # ---- clients ----
    def cli(self, *args, check=True, input=None, timeout=60):
        env = dict(os.environ, SHOAL_HOST="unix://" + self.sock)
        res = subprocess.run(
            [SHOAL_BIN, "-H", "unix://" + self.sock] + [str(a) for a in args],
            capture_output=True,
            text=isinstance(input, str) or input is None,
            input=input,
            env=env,
            timeout=timeout,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                "shoal %s failed (%d):\nstdout: %s\nstderr: %s"
                % (" ".join(map(str, args)), res.returncode, res.stdout, res.stderr)
            )
        return res

    def cli_json(self, *args):
        # COMMAND SUBCOMMAND --format json [ARGS]: the CLI wants flags before positional args
        args = list(args[:2]) + ["--format", "json"] + list(args[2:])
        out = self.cli(*args).stdout
        return json.loads(out)

    def api(self, method, path, body=None, raw=None, headers=None, timeout=30):
        conn = UnixHTTPConnection(self.sock, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            data = None
            if raw is not None:
                data = raw if isinstance(raw, bytes) else raw.encode()
            elif body is not None:
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return ApiResponse(resp.status, resp.read(), dict(resp.getheaders()))
        finally:
            conn.close()

    # ---- swarm / images ----
    def init_swarm(self):
        # Host-namespace test daemons listen on loopback only.
        self.cli("swarm", "init", "--advertise-addr", "127.0.0.1:%d" % self.port,
                 "--listen-addr", "127.0.0.1:%d" % self.port, "--default-addr-pool", self.pool)
        self.swarm_active = True

    def import_image(self, tar, name="busybox:latest"):
        return self.cli("image", "import", tar, name)

    # ---- state helpers ----
    def tasks(self, service):
        r = self.api("GET", "/v1/services/%s/tasks" % service)
        assert r.status == 200, r
        ts = r.json()
        self.remember(ts)
        return ts

    def remember(self, tasks):
        for t in tasks:
            start = proc_start(t["pid"]) if t.get("pid") else None
            if start is not None:  # (one gone already cannot be left over)
                self.known_pids.add((t["pid"], start))
            self.known_ids.add(t["id"])

    def running_tasks(self, service):
        return [t for t in self.tasks(service) if t["desired_state"] == "running" and t["state"] == "running"]

    def service(self, name):
        r = self.api("GET", "/v1/services/" + name)
        assert r.status == 200, r
        return r.json()

    def wait_running(self, service, n, timeout=30, version=None):
        def ok():
            ts = self.running_tasks(service)
            if version is not None:
                ts = [t for t in ts if t["spec_version"] == version]
            cur = [t for t in self.tasks(service) if t["desired_state"] == "running"]
            return ts if len(ts) == n and len(cur) == n else None

        return wait_until(ok, timeout=timeout, msg=lambda: self.tasks_summary(service))

    def tasks_summary(self, service):
        """One line per task, then the daemon's log tail: what a failed wait prints."""
        lines = ["%s v%s %s/%s %r %r pid=%s node=%s at=%s" % (
            t.get("name"), t.get("spec_version"), t.get("state"), t.get("desired_state"), t.get("message"),
            t.get("error"), t.get("pid"), t.get("node_hostname"), t.get("state_at")) for t in self.tasks(service)]
        return "\n".join(lines) + "\n--- daemon log ---\n" + self.log_tail(40)

    def logs(self, service, *extra):
        return self.cli("service", "logs", *extra, service).stdout

    # ---- teardown checks ----
    def leftovers(self):
        problems = []
        for pid, start in self.known_pids:
            if proc_start(pid) == start and pid_alive(pid):
                problems.append("process %d still alive" % pid)
        with open("/proc/mounts") as f:
            for line in f:
                if self.base in line:
                    problems.append("mount left: " + line.strip())
        bundles = os.path.join(self.state_dir, "containers")
        if os.path.isdir(bundles):
            for cid in os.listdir(bundles):
                problems.append("container bundle left: " + cid)
                self.known_ids.add(cid)
        for cid in self.known_ids:
            for d in glob.glob("/sys/fs/cgroup/*/shoal/%s" % cid) + glob.glob("/sys/fs/cgroup/shoal/%s" % cid):
                if os.path.isdir(d):
                    problems.append("cgroup left: " + d)
        return problems

    def teardown(self):
        errors = []
        try:
            if self.proc is None or self.proc.poll() is not None:
                self.start()
            # record every known task/container before leaving
            try:
                r = self.api("GET", "/v1/tasks")
                if r.status == 200:
                    self.remember(r.json())
                r = self.api("GET", "/v1/containers")
                if r.status == 200:
                    for c in r.json():
                        self.known_ids.add(c["id"])
            except Exception:  # noqa: BLE001
                pass
            info = self.api("GET", "/v1/info").json()
            if info["swarm"]["state"] == "active":
                res = self.cli("swarm", "leave", "--force", check=False, timeout=120)
                if res.returncode != 0:
                    errors.append("swarm leave failed: %s" % res.stderr)
            # local containers (shoal run -d) are not tasks
            r = self.api("GET", "/v1/containers")
            if r.status == 200:
                for c in r.json():
                    self.api("DELETE", "/v1/containers/%s?force=1" % c["id"])
                try:
                    wait_until(lambda: self.api("GET", "/v1/containers").json() == [], timeout=20)
                except AssertionError:
                    errors.append("local containers not removed: %s" % self.api("GET", "/v1/containers").json())
            self.stop()
        except Exception as e:  # noqa: BLE001
            errors.append("teardown: %r" % e)
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        try:
            wait_until(lambda: not self.leftovers(), timeout=20)
        except AssertionError:
            errors.append("leftovers: %s" % self.leftovers())
        if errors:
            # best-effort cleanup so later tests are not affected
            for pid, start in self.known_pids:
                if proc_start(pid) == start and pid_alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            with open("/proc/mounts") as f:
                mps = [l.split()[1] for l in f if self.base in l]
            for mp in reversed(mps):
                subprocess.run(["umount", "-l", mp], check=False)
            for cid in self.known_ids:
                for cg in glob.glob("/sys/fs/cgroup/*/shoal/%s" % cid) + glob.glob("/sys/fs/cgroup/shoal/%s" % cid):
                    try:
                        os.rmdir(cg)
                    except OSError:
                        pass
        return errors


def dashboard_daemon(tmp, rootfs_tar=None, config=None, extra_args=()):
    """A one-node swarm in tmp with the dashboard on 127.0.0.1 and its tokens
    (d.ro, d.admin); busybox imported when rootfs_tar is given. config: entries
    added to its daemon.json; extra_args: more `shoal daemon` flags."""
    d = Daemon(tmp)
    d.configure(config or {})
    d.listen_dashboard()
    d.extra_args += list(extra_args)
    d.start()
    d.init_swarm()
    if rootfs_tar is not None:
        d.import_image(rootfs_tar)
    d.ro = d.dashboard_token()
    d.admin = d.dashboard_token(admin=True)
    return d


def end_daemon(d, tmp):
    """A fixture's daemon torn down; its directory tmp removed when nothing
    was left behind, else the test fails with what was."""
    errors = d.teardown()
    if not errors:
        shutil.rmtree(tmp, ignore_errors=True)
    assert not errors, "\n".join(errors) + "\ndaemon log:\n" + d.log_tail()


def _make_daemon(tmp, rootfs_tar, swarm=True, image=True):
    d = Daemon(tmp)
    d.start()
    if swarm:
        d.init_swarm()
        if image:
            d.import_image(rootfs_tar)
    return d


@pytest.fixture
def fresh_daemon(rootfs_tar):
    """A daemon per test: swarm initialised, busybox:latest imported."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = _make_daemon(tmp, rootfs_tar)
    yield d
    end_daemon(d, tmp)


@pytest.fixture
def bare_daemon():
    """A daemon per test, not in a swarm, no image."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = Daemon(tmp)
    d.start()
    yield d
    end_daemon(d, tmp)


@pytest.fixture(scope="module")
def module_daemon(rootfs_tar):
    """A daemon shared by a module's tests: swarm initialised, busybox:latest imported."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = _make_daemon(tmp, rootfs_tar)
    yield d
    end_daemon(d, tmp)


def _dev_cluster(managers, workers, rootfs_tar):
    from cluster import Cluster  # cluster.py imports this module

    c = Cluster(managers=managers, workers=workers, rootfs_tar=rootfs_tar)
    yield c
    c.destroy()


@pytest.fixture
def cluster1x1(rootfs_tar):
    """A dev cluster of one manager and one worker."""
    yield from _dev_cluster(1, 1, rootfs_tar)


@pytest.fixture
def cluster1x2(rootfs_tar):
    """A dev cluster of one manager and two workers."""
    yield from _dev_cluster(1, 2, rootfs_tar)


@pytest.fixture
def daemon(module_daemon):
    """The module's shared daemon; checks after each test that it still answers."""
    yield module_daemon
    if module_daemon.proc is not None and module_daemon.proc.poll() is None:
        assert module_daemon.api("GET", "/v1/info").status == 200


# Session-wide hooks (this conftest is loaded whenever tests/integration is collected, as
# in `make test`; tests/ can have no conftest.py of its own: tests/faults imports this one
# as `conftest`).
def starts_early(starter):
    """Decorates a test whose long wait starts with the session: when collection ends and the
    test will run, starter.start() (which keeps what it raised for the test); at the session's
    end starter.end() (a no-op once the test ended it). The test runs after the rest
    (_run_order): what start() began went on meanwhile."""
    def mark(test):
        test.early_starter = starter
        return test
    return mark


def _early_starter(item):
    return getattr(getattr(item, "function", None), "early_starter", None)


_early_started = []


def _run_order(item):
    """0: the rest, in collection order (top-level tests/*.py, tests/faults, tests/integration);
    1: the modules awaiting background jobs, whose jobs have had the rest's time to finish, and
    the tests started early (starts_early);
    2: tests/test_zz_sanitizers.py, which checks the reports of every shoal process run before."""
    if os.path.basename(str(item.fspath)) == "test_zz_sanitizers.py":
        return 2
    if _early_starter(item) is not None:
        return 1
    return 1 if getattr(getattr(item, "module", None), "BACKGROUND", None) else 0


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=_run_order)


# The CPU-bound preparations of the modules that will run start in the background
# (background.py), tests/test_fuzz.py's too.
def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    background.start_for(session.items)
    for item in session.items:
        starter = _early_starter(item)
        if starter is not None and background.will_run(item):
            starter.start()
            _early_started.append(starter)


def pytest_sessionfinish(session):
    background.finish()
    for starter in _early_started:
        starter.end()
