"""Multi-node clusters of real daemons on this machine for the integration
tests: N daemons on loopback ports (each its own state, run dir and cluster
port), joined with real tokens over mutual TLS."""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile

from conftest import Daemon, pid_alive, wait_until


class Cluster:
    def __init__(self, managers=1, workers=0, rootfs_tar=None):
        self.base = tempfile.mkdtemp(prefix="shoal-cl-")
        self.nodes = []
        for i in range(managers + workers):
            d = Daemon(os.path.join(self.base, "node-%d" % (i + 1)))
            d.start()
            self.nodes.append(d)
        self.leader = self.nodes[0]
        self.leader.init_swarm()
        if rootfs_tar:
            self.leader.import_image(rootfs_tar)
        for i, d in enumerate(self.nodes[1:], start=2):
            self.join(d, "manager" if i <= managers else "worker")
        self.wait_nodes_ready(len(self.nodes))
        # managers count once raft made them voters
        wait_until(lambda: sorted(n["manager_status"] for n in self.nodes_view()
                                  if n["role"] == "manager")
                   == ["leader"] + ["reachable"] * (managers - 1), timeout=30,
                   msg=lambda: json.dumps(self.nodes_view(), indent=1))

    def token(self, role, via=None):
        return (via or self.leader).cli("swarm", "join-token", "-q", role).stdout.strip()

    def join(self, d, role, via=None):
        via = via or self.leader
        return d.cli("swarm", "join", "--token", self.token(role, via), "--advertise-addr",
                     "127.0.0.1:%d" % d.port, "127.0.0.1:%d" % via.port)

    def node_id(self, d):
        return d.api("GET", "/v1/info").json()["node_id"]

    def nodes_view(self, via=None):
        r = (via or self.leader).api("GET", "/v1/nodes")
        assert r.status == 200, r
        return r.json()

    def wait_nodes_ready(self, n, via=None, timeout=20):
        wait_until(lambda: len([x for x in self.nodes_view(via) if x["status"] == "ready"]) == n,
                   timeout=timeout, msg=lambda: json.dumps(self.nodes_view(via), indent=1))

    def find_leader(self, among):
        for d in among:
            if d.proc is None or d.proc.poll() is not None:
                continue
            try:
                if d.api("GET", "/v1/info", timeout=2).json()["swarm"]["is_leader"]:
                    return d
            except Exception:  # noqa: BLE001
                pass
        return None

    def container_pids(self, d):
        pids = []
        for rec in glob.glob(os.path.join(d.state_dir, "agent", "*.json")):
            try:
                with open(rec) as f:
                    pids.append(json.load(f)["pid"])
            except (OSError, ValueError, KeyError):
                pass
        return pids

    def kill_node(self, d):
        """A board dies: its daemon and its containers."""
        d.kill9()
        for pid in self.container_pids(d):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def destroy(self):
        """Kills everything and checks that nothing is left behind."""
        for d in self.nodes:
            if d.proc is not None and d.proc.poll() is None:
                try:
                    os.kill(d.proc.pid, signal.SIGCONT)
                except OSError:
                    pass
            self.kill_node(d)
        ids = set()
        for d in self.nodes:
            ids |= d.known_ids
            for rec in glob.glob(os.path.join(d.state_dir, "agent", "*.json")):
                ids.add(os.path.basename(rec)[:-5])
        wait_until(lambda: not any(pid_alive(p) for d in self.nodes for p in self.container_pids(d)),
                   timeout=10)
        with open("/proc/mounts") as f:
            mounts = [l.split()[1] for l in f if self.base in l]
        for mp in reversed(mounts):
            subprocess.run(["umount", "-l", mp], check=False)
        for cid in ids:
            for d in glob.glob("/sys/fs/cgroup/*/shoal/%s" % cid):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        shutil.rmtree(self.base, ignore_errors=True)
