#!/usr/bin/python3
"""Scale, in the spirit of Nomad's C1M: one shoal manager, thousands of simulated nodes, many tasks.

Run through bench/c1m.sh (a private network namespace, as root). This program starts one shoal
daemon (`swarm init`, the leader), imports busybox and drains the leader (so no task runs here),
then simulates NODES nodes in AGENT_PROCS processes: each node joins through the real API
(POST /v1/cluster/join on the cluster port: the join secret, a CSR, its node record; it gets a
certificate signed by the swarm's CA) and then keeps a real session: a heartbeat over mutual TLS
(POST /v1/cluster/session with its certificate, on the connection kept from the last one, as
src/daemon/session.c does; --new-connections: a new one each time) at the interval the leader
asks for (`heartbeat_ms` in the answer, 500 ms if it names none), sending back the mesh tag and
the task list's tag it was given (then only the changes to its tasks come). Nothing runs on the simulated
nodes; with --report they report each newly assigned task `running` in their next heartbeat, as
a real agent would (one Raft entry per task).

Phases, each printing `KEY VALUE` figure lines:
  join      NODES nodes joined (joins/s), all ready in the leader's `node ls`
  idle      HOLD seconds of heartbeats only: heartbeats answered per second, their latency
            (p50/p99, measured by the simulator: TLS handshake + request + answer), nodes the
            leader saw down, the leader's CPU (% of one core) and RSS
  place     TASKS tasks as SERVICES services of TASKS/SERVICES replicas (`sleep` in busybox),
            created through the API by CREATE_JOBS concurrent CLI calls (--create-jobs, 8; 1:
            one after the other, as before 2026-12-07): placements a second between two
            bounds of their commit: from below, place_last_pass_per_s (tasks / the time from the
            first create's start to the start of the leader's pass that placed the last task:
            the newest `state_at` of an assigned task in the store, read once all are
            delivered; that pass's run and its entry's apply come after), from above,
            place_per_s (delivered: counted as the simulated nodes receive them in their
            heartbeat answers, each node's count of distinct tasks assigned to it, summed; so up
            to one heartbeat interval after the commit), the leader's CPU and RSS meanwhile
  settled   HOLD seconds of heartbeats only again, every task placed (as idle: what the
            leader spends on a cluster at rest with its tasks)
Everything it started (daemon, simulators) is ended on exit; the work directory is removed.
"""
import argparse
import asyncio
import concurrent.futures
import http.client
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def fig(key, value):
    print(key, value, flush=True)


# ---------------------------------------------------------------- the manager

class Manager:
    def __init__(self, shoal, work, max_conns):
        self.shoal, self.work, self.max_conns = shoal, work, max_conns
        self.sock = os.path.join(work, "shoal.sock")
        self.proc = None

    def start(self):
        os.makedirs(os.path.join(self.work, "state"))
        os.makedirs(os.path.join(self.work, "run"))
        self.log = open(os.path.join(self.work, "daemon.log"), "w")
        self.proc = subprocess.Popen([self.shoal, "daemon", "--state-dir", os.path.join(self.work, "state"),
                                      "--socket", self.sock, "--run-dir", os.path.join(self.work, "run"),
                                      "--max-connections", str(self.max_conns)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            if os.path.exists(self.sock):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit("shoal daemon did not start: see %s/daemon.log" % self.work)

    def cli(self, *args, timeout=600):
        r = subprocess.run([self.shoal, "-H", "unix://" + self.sock, *args], capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise SystemExit("shoal %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def cli_json(self, *args):
        return json.loads(self.cli(*args, "--format", "json"))

    def get_json(self, path):
        """GET path on the API socket (what the CLI has no verb for)."""
        conn = http.client.HTTPConnection("localhost", timeout=600)
        conn.sock = socket.socket(socket.AF_UNIX)
        conn.sock.settimeout(600)
        conn.sock.connect(self.sock)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        conn.close()
        if r.status != 200:
            raise SystemExit("GET %s: %d %s" % (path, r.status, body[:200]))
        return json.loads(body)

    def usage(self):
        """(CPU seconds so far, RSS in kB) of the daemon."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
        cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
        rss = 0
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return cpu, rss

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------- simulated nodes

def new_key_pem():
    key = ec.generate_private_key(ec.SECP256R1())
    return key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())


def csr_pem(key, node_id):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256()) \
        .public_bytes(serialization.Encoding.PEM).decode()


def answer_wait(interval_ms):
    """How long an agent waits for a heartbeat's answer (dispatcher_answer_wait_ms): one interval
    less than the leader waits before it declares the node down (6 intervals)."""
    interval = max(interval_ms, 500) / 1000
    return interval * 6 - interval


async def http_exchange(r, w, host, path, body, timeout, close):
    """POST JSON on a connected stream; returns (status, parsed JSON or None, whether the server
    keeps the connection)."""
    data = json.dumps(body).encode()
    w.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (path.encode(), host.encode(), len(data),
                                                 b"Connection: close\r\n" if close else b"") + data)
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
    status = int(head.split(b" ", 2)[1])
    length, keeps = None, not close
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
        if k.strip().lower() == b"connection" and v.strip().lower() == b"close":
            keeps = False
    raw = await asyncio.wait_for(r.readexactly(length) if length is not None else r.read(), timeout)
    try:
        return status, json.loads(raw) if raw else None, keeps and length is not None
    except ValueError:
        return status, None, keeps and length is not None


async def http_post(host, port, ctx, path, body, timeout):
    """POST JSON over a new TLS connection; returns (status, parsed JSON or None)."""
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), timeout)
    try:
        status, ans, _ = await http_exchange(r, w, host, path, body, timeout, True)
        return status, ans
    finally:
        w.close()


class Node:
    def __init__(self, idx, node_id):
        self.idx, self.id = idx, node_id
        self.ctx = None
        self.conn = None  # (reader, writer) kept from the last heartbeat
        self.mesh_tag = ""
        self.tasks_tag = ""
        self.tasks = set()
        self.unreported = []
        self.interval_ms = 500


class Agents:
    """NODES simulated nodes of one process, on one asyncio loop."""

    def __init__(self, a, first, count, out):
        self.a, self.first, self.count, self.out = a, first, count, out
        self.stats = {"hb_ok": 0, "hb_fail": 0, "lat": [], "joined": 0, "join_fail": 0, "placed": 0,
                      "interval_ms": 500, "reported": 0}

    def node_record(self, n):
        now = int(time.time() * 1000)
        return {"id": n.id, "hostname": "sim-%05d" % n.idx,
                "addr": "10.%d.%d.%d:7946" % (100 + n.idx // 65536, n.idx // 256 % 256, n.idx % 256),
                "role": "worker", "availability": "active", "status": "ready", "labels": {},
                "resources": {"cpus": 4, "memory": 1 << 30}, "created_at": now, "updated_at": now,
                "raft_id": "%016x" % random.getrandbits(62), "platform": {"os": "linux", "architecture": "arm64"}}

    async def join(self, n, sem, key, key_file):
        async with sem:
            body = {"secret": self.a.secret, "csr": csr_pem(key, n.id), "node": self.node_record(n)}
            for attempt in range(5):
                try:
                    status, ans = await http_post(self.a.host, self.a.port, self.join_ctx, "/v1/cluster/join", body, 60)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                    status, ans = -1, {"message": str(e)}
                if status == 200:
                    break
                await asyncio.sleep(0.5 + attempt)
            else:
                self.stats["join_fail"] += 1
                log("join of %s failed: %s %s" % (n.id, status, ans))
                return False
        cert_file = os.path.join(self.a.work, "certs", n.id + ".pem")
        with open(cert_file, "w") as f:
            f.write(ans["cert"])
        n.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        n.ctx.check_hostname = False
        n.ctx.verify_mode = ssl.CERT_NONE  # the simulator trusts its own manager
        n.ctx.load_cert_chain(cert_file, key_file)
        self.stats["joined"] += 1
        return True

    async def heartbeats(self, n):
        await asyncio.sleep(random.random() * n.interval_ms / 1000)
        while True:
            start = time.monotonic()
            reports, n.unreported = n.unreported, []
            body = {"reports": [{"id": t, "fields": {"state": "running", "state_at": int(time.time() * 1000)}}
                                for t in reports],
                    "metrics": {"at": int(time.time() * 1000), "cpu_percent": 1.0, "load1": 0.1},
                    "mesh_tag": n.mesh_tag, "tasks_tag": n.tasks_tag, "secret_ids": []}
            status, ans = await self.session_post(n, body)
            if status == 200 and isinstance(ans, dict):
                self.stats["hb_ok"] += 1
                self.stats["reported"] += len(reports)
                self.stats["lat"].append(time.monotonic() - start)
                if ans.get("mesh_tag"):
                    n.mesh_tag = ans["mesh_tag"]
                n.interval_ms = int(ans.get("heartbeat_ms") or 500)
                self.stats["interval_ms"] = n.interval_ms
                n.tasks_tag = ans.get("tasks_tag") or ""  # then only changes come (task_changes)
                for t in ans.get("tasks") or (ans.get("task_changes") or {}).get("changed") or []:
                    tid = t.get("id")
                    if tid and tid not in n.tasks:
                        n.tasks.add(tid)
                        self.stats["placed"] += 1
                        if self.a.report and t.get("desired_state") == "running":
                            n.unreported.append(tid)
            else:
                if self.stats["hb_fail"] < 3:
                    log("heartbeat of %s: %s %s" % (n.id, status, ans))
                self.stats["hb_fail"] += 1
                n.unreported = reports + n.unreported
            await asyncio.sleep(max(0.0, n.interval_ms / 1000 - (time.monotonic() - start)))

    async def session_post(self, n, body):
        """One heartbeat, on the connection kept from the last one as src/daemon/session.c does
        (--new-connections: a new one each time, as before): when the kept one fails (the
        manager closed it), once more on a new one."""
        wait = answer_wait(n.interval_ms)
        for attempt in range(2):
            reused = n.conn is not None
            try:
                if n.conn is None:
                    n.conn = await asyncio.wait_for(asyncio.open_connection(self.a.host, self.a.port, ssl=n.ctx), wait)
                status, ans, keeps = await http_exchange(*n.conn, self.a.host, "/v1/cluster/session", body, wait,
                                                         self.a.new_connections)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as e:
                status, ans, keeps = -1, repr(e), False
            if not keeps:
                n.conn[1].close() if n.conn else None
                n.conn = None
            if status != -1 or not reused:
                return status, ans
        return status, ans

    async def publish(self):
        while True:
            await asyncio.sleep(1)
            s = dict(self.stats)
            self.stats["lat"] = []
            self.out.put(s)

    async def run(self):
        self.join_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.join_ctx.check_hostname = False
        self.join_ctx.verify_mode = ssl.CERT_NONE
        key, pem = new_key_pem()  # one key for all of this process's nodes: the CA signs any
        key_file = os.path.join(self.a.work, "certs", "key-%d.pem" % self.first)
        with open(key_file, "wb") as f:
            f.write(pem)
        asyncio.ensure_future(self.publish())
        sem = asyncio.Semaphore(16)
        nodes = [Node(i, "%025x" % random.getrandbits(100)) for i in range(self.first, self.first + self.count)]
        beats = []
        for fut in asyncio.as_completed([self.join_task(n, sem, key, key_file, beats) for n in nodes]):
            await fut
        await asyncio.gather(*beats)

    async def join_task(self, n, sem, key, key_file, beats):
        if await self.join(n, sem, key, key_file):
            beats.append(asyncio.ensure_future(self.heartbeats(n)))


def agents_main(a, first, count, out):
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    asyncio.run(Agents(a, first, count, out).run())


# ---------------------------------------------------------------- the run

class Totals:
    """Sums of the simulator processes' latest counters."""

    def __init__(self, procs, queue):
        self.procs, self.queue = procs, queue
        self.latest = {}
        self.lat = []

    def poll(self):
        while not self.queue.empty():
            s = self.queue.get()
            self.latest[s["pid"]] = s
            self.lat.extend(s["lat"])

    def total(self, key):
        self.poll()
        return sum(s[key] for s in self.latest.values())

    def take_latencies(self):
        self.poll()
        lat, self.lat = self.lat, []
        return sorted(lat)


def pct(sorted_vals, p):
    return sorted_vals[min(len(sorted_vals) - 1, int(len(sorted_vals) * p))] if sorted_vals else 0.0


class Sampler:
    """The daemon's CPU (% of one core) and peak RSS over a phase."""

    def __init__(self, mgr):
        self.mgr = mgr
        self.t0, self.cpu0 = time.monotonic(), mgr.usage()[0]
        self.sim0 = simulator_cpu()
        self.peak = 0

    def sample(self):
        self.peak = max(self.peak, self.mgr.usage()[1])

    def report(self, prefix):
        cpu, rss = self.mgr.usage()
        dt = time.monotonic() - self.t0
        fig(prefix + "_leader_cpu_pct", "%.1f" % ((cpu - self.cpu0) * 100 / dt))
        fig(prefix + "_leader_rss_mb", "%.1f" % (max(self.peak, rss) / 1024))
        fig(prefix + "_simulator_cpu_pct", "%.1f" % ((simulator_cpu() - self.sim0) * 100 / dt))


def simulator_cpu():
    """CPU seconds of this process and its children (the simulators, the CLI), living or ended."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    for pr in mp.active_children():
        try:
            with open("/proc/%d/stat" % pr.pid) as f:
                st = f.read().rsplit(")", 1)[1].split()
            total += (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", nargs="?", default="normal", choices=["quick", "normal", "long"],
                   help="quick: 500 nodes, 10,000 tasks; normal: 5,000 nodes, 100,000 tasks; "
                        "long: 5,000 nodes, 1,000,000 tasks")
    p.add_argument("--nodes", type=int)
    p.add_argument("--tasks", type=int)
    p.add_argument("--services", type=int, help="tasks are split over this many services (default: tasks / 1000)")
    p.add_argument("--procs", type=int, default=2, help="simulator processes")
    p.add_argument("--hold", type=float, default=20, help="seconds of heartbeats only")
    p.add_argument("--timeout", type=float, default=1800, help="seconds the placement may take")
    p.add_argument("--report", action="store_true", help="nodes report their tasks running")
    p.add_argument("--create-jobs", type=int, default=8, help="service creates run at once (1: one after the other)")
    p.add_argument("--new-connections", action="store_true",
                   help="a new TLS connection a heartbeat (shoal before keep-alive sessions)")
    p.add_argument("--shoal", default=os.environ.get("SHOAL", os.path.join(REPO, "build", "shoal")))
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on TERM too
    preset = {"quick": (500, 10000), "normal": (5000, 100000), "long": (5000, 1000000)}[a.mode]
    a.nodes = a.nodes or preset[0]
    a.tasks = a.tasks or preset[1]
    a.services = a.services or max(1, a.tasks // 1000)
    a.work = tempfile.mkdtemp(prefix="shoal-bench-c1m.")
    os.makedirs(os.path.join(a.work, "certs"))
    # The simulated nodes all connect from 127.0.0.1, real ones each from its own address (a
    # node's address may hold --max-connections, 1,000 by default): room for a kept connection
    # each, as NODES addresses would have.
    mgr = Manager(a.shoal, a.work, max(1000, a.nodes + 1000))
    procs = []
    try:
        run(a, mgr, procs)
    finally:
        for pr in procs:
            pr.terminate()
        for pr in procs:
            pr.join(10)
        mgr.stop()
        subprocess.run(["rm", "-rf", "--one-file-system", a.work])


def wait_until(what, timeout, cond, every=0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(every)
    raise SystemExit("%s: not after %d s" % (what, timeout))


def run(a, mgr, procs):
    mgr.start()
    a.host, a.port = "127.0.0.1", 7946
    mgr.cli("swarm", "init", "--advertise-addr", "%s:%d" % (a.host, a.port), "--default-addr-pool", "10.0.0.0/8")
    token = mgr.cli("swarm", "join-token", "-q", "worker").strip()
    a.secret = token.rsplit("-", 1)[1]
    subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"), os.path.join(a.work, "busybox.tar")], check=True)
    mgr.cli("image", "import", os.path.join(a.work, "busybox.tar"), "busybox:latest")
    self_id = next(n["id"] for n in mgr.cli_json("node", "ls") if n.get("role") == "manager")
    mgr.cli("node", "update", "--availability", "drain", self_id)
    print("# bench/c1m %s UTC, %d cores, load %s, shoal %s" % (
        time.strftime("%F %T", time.gmtime()), os.cpu_count(), open("/proc/loadavg").read().split()[0],
        subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()))
    print("# %d simulated nodes in %d processes, %d tasks in %d services, reports %s, %s" % (
        a.nodes, a.procs, a.tasks, a.services, "on" if a.report else "off",
        "a new connection a heartbeat" if a.new_connections else "connections kept"), flush=True)

    # ---- join ----
    queue = mp.Queue()
    t0 = time.monotonic()
    sampler = Sampler(mgr)
    per = (a.nodes + a.procs - 1) // a.procs
    for i in range(a.procs):
        first, count = i * per, min(per, a.nodes - i * per)
        if count > 0:
            pr = mp.Process(target=agents_proc, args=(a, first, count, queue), daemon=True)
            pr.start()
            procs.append(pr)
    totals = Totals(procs, queue)

    def all_joined():
        sampler.sample()
        return totals.total("joined") + totals.total("join_fail") >= a.nodes
    wait_until("joins", 3600, all_joined)
    joined = totals.total("joined")
    fig("join_nodes", joined)
    fig("join_failed", totals.total("join_fail"))
    fig("join_per_s", "%.1f" % (joined / (time.monotonic() - t0)))

    def ready_count():
        return sum(1 for n in mgr.cli_json("node", "ls") if n.get("status") == "ready") - 1
    try:  # a swamped leader marks nodes down and up again: not all may ever be ready at once
        wait_until("nodes ready", 60, lambda: ready_count() >= joined, every=2)
        fig("join_s_to_all_ready", "%.1f" % (time.monotonic() - t0))
    except SystemExit as e:
        log(e)
        fig("join_s_to_all_ready", "never")
    sampler.report("join")

    # ---- idle: heartbeats only ----
    heartbeats_only(a, mgr, totals, "idle")

    # ---- placement ----
    sampler = Sampler(mgr)
    per_svc = a.tasks // a.services
    placed0 = totals.total("placed")
    p0, wall0 = time.monotonic(), time.time()

    def create(i):
        mgr.cli("service", "create", "--detach", "--name", "s%04d" % i, "--replicas", str(per_svc), "busybox", "sleep", "1d")
    with concurrent.futures.ThreadPoolExecutor(max(1, a.create_jobs)) as pool:
        for f in [pool.submit(create, i) for i in range(a.services)]:
            f.result()
            sampler.sample()
    created = time.monotonic() - p0
    fig("place_create_s", "%.1f" % created)
    want = per_svc * a.services
    last = [placed0, time.monotonic()]

    def all_placed():
        sampler.sample()
        placed = totals.total("placed") - placed0
        if placed != last[0]:
            last[0], last[1] = placed, time.monotonic()
        elif time.monotonic() - last[1] > 120:
            raise SystemExit("placement stalled at %d of %d tasks for 120 s" % (placed, want))
        return placed >= want
    wait_until("placement of %d tasks" % want, a.timeout, all_placed, every=0.2)
    took = time.monotonic() - p0
    fig("place_tasks", want)
    fig("place_s", "%.1f" % took)
    fig("place_per_s", "%.0f" % (want / took))
    if not a.report:  # reported tasks have their report's state_at: not the placement's
        # the start of the pass that placed the last task: the `now` it stamps its placements
        # with (read after the measure: one read of every task)
        placed_at = [t["state_at"] for t in mgr.get_json("/v1/tasks")
                     if t.get("node_id") and t.get("state") == "assigned"]
        last_pass = max(placed_at) / 1000.0 - wall0
        fig("place_last_pass_tasks", len(placed_at))
        fig("place_last_pass_s", "%.2f" % last_pass)
        fig("place_last_pass_per_s", "%.0f" % (len(placed_at) / last_pass))
    lat = totals.take_latencies()
    fig("place_heartbeat_p99_ms", "%.1f" % (pct(lat, 0.99) * 1000))
    fig("place_nodes_down", sum(1 for n in mgr.cli_json("node", "ls") if n.get("status") != "ready"))
    sampler.report("place")

    # ---- settled: heartbeats only, every task placed ----
    heartbeats_only(a, mgr, totals, "settled")


def heartbeats_only(a, mgr, totals, prefix):
    """HOLD seconds of heartbeats only: figures PREFIX_*."""
    totals.take_latencies()
    ok0, fail0 = totals.total("hb_ok"), totals.total("hb_fail")
    sampler = Sampler(mgr)
    h0 = time.monotonic()
    while time.monotonic() - h0 < a.hold:
        time.sleep(1)
        sampler.sample()
    dt = time.monotonic() - h0
    lat = totals.take_latencies()
    nodes = mgr.cli_json("node", "ls")
    fig(prefix + "_heartbeats_per_s", "%.0f" % ((totals.total("hb_ok") - ok0) / dt))
    fig(prefix + "_heartbeats_failed_per_s", "%.1f" % ((totals.total("hb_fail") - fail0) / dt))
    fig(prefix + "_heartbeat_p50_ms", "%.1f" % (pct(lat, 0.5) * 1000))
    fig(prefix + "_heartbeat_p99_ms", "%.1f" % (pct(lat, 0.99) * 1000))
    fig(prefix + "_heartbeat_interval_ms", max(s["interval_ms"] for s in totals.latest.values()))
    fig(prefix + "_nodes_down", sum(1 for n in nodes if n.get("status") != "ready"))
    sampler.report(prefix)


def agents_proc(a, first, count, out):
    class Out:
        def put(self, s):
            s["pid"] = os.getpid()
            out.put(s)
    agents_main(a, first, count, Out())


if __name__ == "__main__":
    main()
