"""Fault injection on a `shoal dev` cluster (issue 10, machinery).

A client writes continuously (service creates, and scales of services it
made, through a rotating manager) and records every outcome, while a seeded
random schedule kills -9 and restarts the leader, a follower or a worker,
cuts a node's link, drops the traffic between two nodes with nft, and pauses
a daemon (SIGSTOP) longer than the heartbeat. Afterwards `check` asserts:
every acknowledged write is stored exactly once, no write that failed for
certain is stored, replica counts are restored, no orphan container runs,
every manager shows the same services and tasks, and a node back from a
short pause kept its healthy tasks.

Used by tests/faults/test_faults.py (short run) and tests/faults/run.py
(long run by hand). Same seed, same schedule of faults (the timing of the
daemons is not replayed)."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from cluster import Cluster, _run  # noqa: E402
from conftest import SHOAL_BIN, make_rootfs_tar, wait_until  # noqa: E402

DEFAULT_SEED = 1010
BASE_REPLICAS = 4
RECOVERY_TIMEOUT = 90
FAULT_TABLE = "shoal_fault"


class Finding(AssertionError):
    """A check that failed: what was expected, what the cluster showed."""


def _log(msg):
    print("[faults %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---- the writer ------------------------------------------------------------

def _classify(res):
    """("ok" | "failed" | "unknown", message) of one CLI call."""
    if res.returncode == 0:
        return "ok", ""
    err = (res.stderr or res.stdout).strip()
    if "may have been applied" in err:
        return "unknown", err
    # the daemon we asked died or stopped answering while it had the request
    if any(s in err for s in ("closed", "reset", "timed out", "timeout", "broken pipe")):
        return "unknown", err
    return "failed", err


class Writer(threading.Thread):
    """Creates services w<seed>-<n> (0 replicas) and scales some to 1, through
    manager n % managers; records (time, op, name, via, outcome, message)."""

    def __init__(self, managers, seed, pace=0.3, max_scaled=6):
        super().__init__(daemon=True)
        self.managers = managers
        self.seed = seed
        self.pace = pace
        self.max_scaled = max_scaled
        self.results = []
        self.stop_event = threading.Event()
        self.n = 0

    def _cli(self, d, *args):
        try:
            return subprocess.run([SHOAL_BIN, "-H", "unix://" + d.sock] + list(args),
                                  capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, 124, "", "client timed out")

    def _record(self, op, name, d, res):
        outcome, msg = _classify(res)
        self.results.append((time.monotonic(), op, name, d.name, outcome, msg))

    def run(self):
        created = []
        scaled = 0
        while not self.stop_event.is_set():
            d = self.managers[self.n % len(self.managers)]
            if scaled < self.max_scaled and created and self.n % 5 == 4:
                name = created.pop(0)
                self._record("scale", name, d, self._cli(d, "service", "scale", "-d", name + "=1"))
                scaled += 1
            else:
                name = "w%d-%d" % (self.seed, self.n)
                # host network: no virtual IP, so a long run is not stopped by the bridge
                # network's 254 (each create would then fail for that reason alone)
                res = self._cli(d, "service", "create", "-d", "--replicas", "0", "--stop-grace-period",
                                "1s", "--network", "host", "--name", name, "busybox", "sleep",
                                "100000")
                self._record("create", name, d, res)
                if res.returncode == 0:
                    created.append(name)
            self.n += 1
            self.stop_event.wait(self.pace)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=180)

    def failure_messages(self):
        """{message (first 100 characters): count} of the writes that did not succeed."""
        out = {}
        for r in self.results:
            if r[4] != "ok":
                key = "%s: %s" % (r[4], r[5][:100])
                out[key] = out.get(key, 0) + 1
        return out

    def summary(self):
        out = {}
        for r in self.results:
            key = "%s %s" % (r[1], r[4])
            out[key] = out.get(key, 0) + 1
        return out


# ---- faults ----------------------------------------------------------------

def _nft(d, *args):
    return _run("nsenter", "--net=/run/netns/" + d.netns, "nft", *args, check=False)


def _drop_between(a, b):
    for x, y in ((a, b), (b, a)):
        _nft(x, "add", "table", "inet", FAULT_TABLE)
        _nft(x, "add", "chain", "inet", FAULT_TABLE, "in",
             "{ type filter hook input priority -50 ; policy accept ; }")
        _nft(x, "add", "chain", "inet", FAULT_TABLE, "out",
             "{ type filter hook output priority -50 ; policy accept ; }")
        _nft(x, "add", "rule", "inet", FAULT_TABLE, "in", "ip", "saddr", y.addr, "drop")
        _nft(x, "add", "rule", "inet", FAULT_TABLE, "out", "ip", "daddr", y.addr, "drop")


def _heal_drops(nodes):
    for d in nodes:
        _nft(d, "delete", "table", "inet", FAULT_TABLE)


class FaultRun:
    def __init__(self, seed=DEFAULT_SEED, managers=3, workers=1, rootfs_tar=None):
        self.seed = seed
        self.rng = random.Random(seed)
        self.n_managers = managers
        self.n_workers = workers
        self.rootfs_tar = rootfs_tar
        self.cluster = None
        self.writer = None
        self.faults = []  # (kind, node names, detail)
        self.stopped = set()  # pids SIGSTOPped now (SIGCONT on teardown)

    # -- setup / teardown --
    def setup(self):
        if self.rootfs_tar is None:
            self._tmp = tempfile.mkdtemp(prefix="shoal-faults-")
            self.rootfs_tar = make_rootfs_tar(os.path.join(self._tmp, "busybox.tar"))
        c = Cluster(managers=self.n_managers, workers=self.n_workers, rootfs_tar=self.rootfs_tar)
        self.cluster = c
        self.managers = c.nodes[:self.n_managers]
        self.workers = c.nodes[self.n_managers:]
        m = self.managers[0]
        # the image on every node first, then the service whose tasks must survive
        m.cli("service", "create", "--mode", "global", "--name", "warm", "busybox", "sleep", "100000")
        m.wait_running("warm", len(c.nodes), timeout=120)
        m.cli("service", "rm", "warm")
        m.cli("service", "create", "--replicas", str(BASE_REPLICAS), "--stop-grace-period", "1s",
              "--name", "base", "busybox", "sleep", "100000")
        m.wait_running("base", BASE_REPLICAS, timeout=120)
        # one task on every node: a short pause always has a task to keep
        m.cli("service", "create", "--mode", "global", "--stop-grace-period", "1s",
              "--name", "everywhere", "busybox", "sleep", "100000")
        m.wait_running("everywhere", len(c.nodes), timeout=120)

    def teardown(self):
        for pid in list(self.stopped):
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        if self.cluster:
            _heal_drops(self.cluster.nodes)
            for d in self.cluster.nodes:
                _run("ip", "link", "set", d.veth, "up", check=False)
            self.cluster.destroy()
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)

    # -- helpers --
    def leader(self):
        return self.cluster.find_leader([d for d in self.managers if d.daemon_pid()])

    def healthy(self):
        """Every daemon up, every node ready, one leader, the other managers reachable."""
        up = [d for d in self.managers if d.daemon_pid()]
        for d in up:
            try:
                view = self.cluster.nodes_view(d)
            except Exception:  # noqa: BLE001
                return False
            if len(view) != len(self.cluster.nodes) or any(n["status"] != "ready" for n in view):
                return False
            ms = sorted(n["manager_status"] for n in view if n["role"] == "manager")
            if ms != ["leader"] + ["reachable"] * (self.n_managers - 1):
                return False
        return len(up) == self.n_managers and all(d.daemon_pid() for d in self.cluster.nodes)

    def wait_healthy(self, what):
        try:
            wait_until(self.healthy, timeout=RECOVERY_TIMEOUT)
        except AssertionError:
            raise Finding("cluster not back %ds after %s: %s" % (
                RECOVERY_TIMEOUT, what, self._views()))

    def _views(self):
        out = {}
        for d in self.managers:
            try:
                out[d.name] = [(n["hostname"], n["status"], n["manager_status"])
                               for n in self.cluster.nodes_view(d)]
            except Exception as e:  # noqa: BLE001
                out[d.name] = repr(e)
        return json.dumps(out)

    def _pause(self, d, seconds):
        pid = d.daemon_pid()
        os.kill(pid, signal.SIGSTOP)
        self.stopped.add(pid)
        time.sleep(seconds)
        os.kill(pid, signal.SIGCONT)
        self.stopped.discard(pid)

    def _running_on(self, d, node_id):
        via = self.leader() or self.managers[0]
        return sorted(t["id"] for t in via.api("GET", "/v1/tasks").json()
                      if t["node_id"] == node_id and t["desired_state"] == "running"
                      and t["state"] == "running")

    # -- the faults --
    def kill_restart(self, d, role):
        self.faults.append(("kill-9+restart", role, d.name))
        d.kill9()
        time.sleep(self.rng.uniform(0.5, 3))
        d.start()

    def link_down(self, d):
        secs = self.rng.uniform(3, 6)
        self.faults.append(("link-down", d.name, "%.1fs" % secs))
        self.cluster.cut_link(d)
        time.sleep(secs)
        self.cluster.restore_link(d)

    def nft_drop(self, a, b):
        secs = self.rng.uniform(3, 6)
        self.faults.append(("nft-drop", "%s<->%s" % (a.name, b.name), "%.1fs" % secs))
        _drop_between(a, b)
        time.sleep(secs)
        _heal_drops([a, b])

    def long_pause(self, d):
        secs = self.rng.uniform(4, 7)  # past NODE_DOWN_MS: the node is marked down
        self.faults.append(("pause", d.name, "%.1fs" % secs))
        self._pause(d, secs)

    def short_pause(self, d):
        """A blip under the node-down time: its healthy tasks stay, the same ones."""
        node_id = self.cluster.node_id(d)
        self.wait_restored(self.leader() or self.managers[0], "the fault before")
        before = self._running_on(d, node_id)
        self.faults.append(("short-pause", d.name, "2.0s, %d tasks" % len(before)))
        self._pause(d, 2.0)
        self.wait_healthy("a short pause of %s" % d.name)
        after = self._running_on(d, node_id)
        if not before:
            raise Finding("%s runs no task before its short pause" % d.name)
        if after != before:
            raise Finding("%s lost healthy tasks over a 2 s pause: before %s, after %s" % (
                d.name, before, after))

    def one_fault(self):
        kinds = ["kill-leader", "kill-follower", "link-down", "nft-drop", "pause", "short-pause"]
        if self.workers:
            kinds.append("kill-worker")
        kind = self.rng.choice(kinds)
        nodes = self.cluster.nodes
        if kind == "kill-leader":
            self.kill_restart(self.leader() or self.managers[0], "leader")
        elif kind == "kill-follower":
            lead = self.leader()
            self.kill_restart(self.rng.choice([d for d in self.managers if d is not lead]), "follower")
        elif kind == "kill-worker":
            self.kill_restart(self.rng.choice(self.workers), "worker")
        elif kind == "link-down":
            self.link_down(self.rng.choice(nodes))
        elif kind == "nft-drop":
            a, b = self.rng.sample(nodes, 2)
            self.nft_drop(a, b)
        elif kind == "pause":
            self.long_pause(self.rng.choice(nodes))
        else:
            self.short_pause(self.rng.choice(nodes))
        _log("fault %d: %s" % (len(self.faults), " ".join(self.faults[-1])))
        self.wait_healthy(" ".join(self.faults[-1]))

    def run(self, fault_seconds):
        _log("seed %d: %d managers, %d workers, %ds of faults" % (
            self.seed, self.n_managers, self.n_workers, fault_seconds))
        self.writer = Writer(self.managers, self.seed)
        self.writer.start()
        try:
            wait_until(lambda: len(self.writer.results) >= 3, timeout=60)
            end = time.monotonic() + fault_seconds
            while time.monotonic() < end:
                self.one_fault()
                time.sleep(self.rng.uniform(1, 3))
        finally:
            self.writer.stop()
        _log("writes: %s" % json.dumps(self.writer.summary(), sort_keys=True))
        for msg, n in sorted(self.writer.failure_messages().items()):
            _log("  %4d x %s" % (n, msg))

    # ---- checks ------------------------------------------------------------
    def check(self):
        self.wait_healthy("the end of the run")
        lead = self.leader()
        results = self.writer.results
        wanted = {}  # service -> replicas an acknowledged write asked for
        maybe = {}  # service -> replicas an unknown write may have asked for
        failed_creates = set()
        for _, op, name, via, outcome, msg in results:
            if op == "create":
                if outcome == "ok":
                    wanted[name] = 0
                elif outcome == "unknown":
                    maybe[name] = 0
                else:
                    failed_creates.add(name)
        for _, op, name, via, outcome, msg in results:
            if op == "scale" and outcome == "ok":
                wanted[name] = 1
            elif op == "scale" and outcome == "unknown":
                maybe[name] = 1
        wanted["base"] = BASE_REPLICAS

        def services(d):
            return d.api("GET", "/v1/services").json()

        svcs = services(lead)
        names = [s["name"] for s in svcs]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise Finding("services stored twice: %s" % dups)
        lost = sorted(n for n in wanted if n not in names)
        if lost:
            raise Finding("acknowledged creates lost: %s\n%s" % (lost, self._results_for(lost)))
        ghosts = sorted(n for n in failed_creates if n in names)
        if ghosts:
            raise Finding("creates reported failed but stored: %s\n%s" % (ghosts, self._results_for(ghosts)))
        by_name = {s["name"]: s for s in svcs}
        for name, n in wanted.items():
            have = _replicas(by_name[name])
            if have != n and not (name in maybe and have == maybe[name]):
                raise Finding("%s has %s replicas, an acknowledged write asked for %d\n%s" % (
                    name, have, n, self._results_for([name])))
        self.wait_restored(lead, "the end of the run")
        self.check_views_converge()
        self.check_no_orphans(lead)
        return {"services": len(svcs), "acknowledged": len(wanted) - 1,
                "unknown": len(maybe), "failed": len(failed_creates)}

    def check_views_converge(self):
        def view(d):
            svcs = sorted((s["id"], s["name"], _replicas(s)) for s in d.api("GET", "/v1/services").json())
            tasks = sorted((t["id"], t["desired_state"]) for t in d.api("GET", "/v1/tasks").json())
            return svcs, tasks

        def same():
            views = [view(d) for d in self.managers]
            return all(v == views[0] for v in views)
        try:
            wait_until(same, timeout=60)
        except AssertionError:
            raise Finding("managers' views differ: %s" % {
                d.name: (len(view(d)[0]), len(view(d)[1])) for d in self.managers})

    def check_no_orphans(self, lead):
        """A container process of this cluster (in a shoal/<id> cgroup, its
        mounts under the cluster's directory) belongs to a task the store wants
        running."""
        def scan():
            tasks = lead.api("GET", "/v1/tasks").json()
            live = {t["id"] for t in tasks if t["desired_state"] == "running"}
            found, seen = {}, 0
            for pid, cid in _container_processes(self.cluster.dir):
                seen += 1
                if cid not in live:
                    found[pid] = cid
            return found, seen

        def clean():
            found, seen = scan()
            return not found and seen >= BASE_REPLICAS
        try:
            wait_until(clean, timeout=60)
        except AssertionError:
            found, seen = scan()
            raise Finding("orphan containers (pid: container no task wants): %s; %d container "
                          "processes seen (the check must see at least the %d of base)" % (
                              found, seen, BASE_REPLICAS))

    def restored(self, lead):
        """Every service runs as many tasks as its spec says."""
        tasks = lead.api("GET", "/v1/tasks").json()
        for s in lead.api("GET", "/v1/services").json():
            run = [t for t in tasks if t["service_id"] == s["id"] and t["desired_state"] == "running"
                   and t["state"] == "running"]
            if len(run) != self._expected(s):
                return None
        return True

    def wait_restored(self, lead, what):
        try:
            wait_until(lambda: self.restored(lead), timeout=120)
        except AssertionError:
            raise Finding("replica counts not restored after %s: %s" % (what, self._task_summary(lead)))

    def _expected(self, s):
        """Running tasks a service should have: its replicas, one a node if global."""
        n = _replicas(s)
        return len(self.cluster.nodes) if n is None else n

    def _results_for(self, names):
        return "\n".join(repr(r) for r in self.writer.results if r[2] in names)

    def _task_summary(self, d):
        tasks = d.api("GET", "/v1/tasks").json()
        out = []
        for s in d.api("GET", "/v1/services").json():
            ts = [(t["state"], t["desired_state"], t["node_id"][:6]) for t in tasks if t["service_id"] == s["id"]
                  and t["desired_state"] == "running"]
            if len(ts) != self._expected(s) or any(x[0] != "running" for x in ts):
                out.append((s["name"], _replicas(s), ts))
        return out


def _replicas(s):
    spec = s.get("spec", s)
    mode = spec.get("mode", {})
    if isinstance(mode, dict) and "replicated" in mode:
        return mode["replicated"].get("replicas")
    return spec.get("replicas")


def _container_processes(cluster_dir):
    """(pid, container id) of every process in a shoal/<id> cgroup whose mounts
    come from under cluster_dir (not another cluster's)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cgroup" % pid) as f:
                cg = [l.rsplit("/shoal/", 1)[1].strip() for l in f if "/shoal/" in l]
            if not cg:
                continue
            with open("/proc/%s/mountinfo" % pid) as f:
                if cluster_dir not in f.read():
                    continue
        except OSError:
            continue
        out.append((int(pid), cg[0].split("/")[0]))
    return out


def run_faults(seed=DEFAULT_SEED, seconds=60, managers=3, workers=1, rootfs_tar=None):
    """One run: setup, faults, checks, teardown. Returns the report; raises
    Finding (with the seed) when a check fails."""
    fr = FaultRun(seed=seed, managers=managers, workers=workers, rootfs_tar=rootfs_tar)
    try:
        fr.setup()
        fr.run(seconds)
        report = fr.check()
        report.update(seed=seed, faults=fr.faults, writes=fr.writer.summary())
        _log("seed %d: all checks passed: %s" % (seed, json.dumps(report)))
        return report
    except Finding as e:
        raise Finding("seed %d: %s\nfaults: %s\ndaemon logs kept in %s" % (
            seed, e, fr.faults, _keep_logs(fr)))
    finally:
        fr.teardown()


def _keep_logs(fr):
    """Copies the daemons' logs out of the cluster's directory (destroyed next)."""
    if not fr.cluster:
        return "-"
    out = tempfile.mkdtemp(prefix="shoal-faults-logs-%d-" % fr.seed)
    for d in fr.cluster.nodes:
        try:
            with open(d.log_path, "rb") as src, open(os.path.join(out, d.name + ".log"), "wb") as dst:
                dst.write(src.read())
        except OSError:
            pass
    with open(os.path.join(out, "writes.txt"), "w") as f:
        for r in (fr.writer.results if fr.writer else []):
            f.write(repr(r) + "\n")
    return out
