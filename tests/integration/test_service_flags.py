"""Service flags of issue #15 end to end: the flag, the spec shown by
`service inspect`, the manager's refusal of bad values, and the real
container (read from inside the task through its logs)."""
import json
import time

from conftest import pid_alive, wait_until

GRACE = ("--stop-grace-period", "1s")


def create(d, name, *args, check=True):
    return d.cli("service", "create", "--name", name, *GRACE, *args, check=check)


def remove(d, name):
    pids = [t["pid"] for t in d.tasks(name) if t.get("pid")]
    d.cli("service", "rm", name)
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=20)


def spec_of(d, name):
    return json.loads(d.cli("service", "inspect", name).stdout)[0]["spec"]


def refused(d, name, *args, says):
    """A bad value: non-zero exit, the flag or field named, nothing stored."""
    r = create(d, name, *args, "busybox", "true", check=False)
    assert r.returncode != 0, r.stdout
    assert says in r.stderr, r.stderr
    assert d.api("GET", "/v1/services/" + name).status == 404


def test_hostname_user_workdir_entrypoint_labels(daemon):
    d = daemon
    create(d, "ctr", "--hostname", "web-one", "--user", "1234:567", "--workdir", "/tmp",
           "--entrypoint", "sh -c", "--label", "tier=front", "--container-label", "team=ops",
           "busybox", "echo H=$(hostname) ID=$(id -u):$(id -g) PWD=$(pwd); sleep 1000")
    d.wait_running("ctr", 1)
    wait_until(lambda: "H=" in d.logs("ctr"))
    out = d.logs("ctr")
    assert "H=web-one ID=1234:567 PWD=/tmp" in out, out
    spec = spec_of(d, "ctr")
    assert spec["hostname"] == "web-one" and spec["user"] == "1234:567"
    assert spec["workdir"] == "/tmp" and spec["entrypoint"] == ["sh", "-c"]
    assert spec["labels"] == {"tier": "front"}
    assert spec["container_labels"] == {"team": "ops"}
    remove(d, "ctr")


def test_hostname_template(daemon):
    d = daemon
    create(d, "tpl", "--replicas", "2", "--hostname", "{{.Service.Name}}-{{.Task.Slot}}",
           "busybox", "sh", "-c", "echo H=$(hostname); sleep 1000")
    d.wait_running("tpl", 2)
    wait_until(lambda: d.logs("tpl").count("H=") == 2)
    out = d.logs("tpl")
    assert "H=tpl-1" in out and "H=tpl-2" in out, out
    assert spec_of(d, "tpl")["hostname"] == "{{.Service.Name}}-{{.Task.Slot}}"
    remove(d, "tpl")
    refused(d, "badtpl", "--hostname", "{{.Node.Hostname}}", says="templates")


def test_container_flags_bad_values(daemon):
    d = daemon
    refused(d, "bad1", "--user", "no body", says="--user")
    refused(d, "bad2", "--workdir", "tmp", says="--workdir")
    refused(d, "bad3", "--hostname", "a b", says="--hostname")
    refused(d, "bad4", "--label", "=v", says="--label")
    # the manager checks what the API is given
    r = d.api("POST", "/v1/services", {"name": "bad5", "image": "busybox", "hostname": "-x"})
    assert r.status == 400 and "hostname" in r.text, r
    r = d.api("POST", "/v1/services", {"name": "bad6", "image": "busybox", "user": "ro ot"})
    assert r.status == 400 and "user" in r.text, r
    assert d.api("GET", "/v1/services/bad5").status == 404


def test_tmpfs_mount(daemon):
    d = daemon
    create(d, "tmp", "--mount", "type=tmpfs,target=/scratch,tmpfs-size=8m,tmpfs-mode=1770",
           "busybox", "sh", "-c",
           "grep ' /scratch ' /proc/mounts; stat -c MODE=%a /scratch; "
           "echo hi > /scratch/f && echo WROTE; sleep 1000")
    d.wait_running("tmp", 1)
    wait_until(lambda: "WROTE" in d.logs("tmp"))
    out = d.logs("tmp")
    line = [l for l in out.splitlines() if " /scratch " in l][0]
    assert " tmpfs " in line and "size=8192k" in line and "nosuid" in line, line
    assert "MODE=1770" in out, out
    mount = spec_of(d, "tmp")["mounts"][0]
    assert mount == {"type": "tmpfs", "target": "/scratch", "tmpfs_size": 8 << 20,
                     "tmpfs_mode": 0o1770}, mount
    remove(d, "tmp")


def test_tmpfs_mount_bad_values(daemon):
    d = daemon
    refused(d, "badt1", "--mount", "type=tmpfs,src=/x,dst=/a", says="no source")
    refused(d, "badt2", "--mount", "type=tmpfs,dst=/a,tmpfs-size=big", says="tmpfs-size")
    refused(d, "badt3", "--mount", "type=tmpfs,dst=/proc", says="reserved")
    r = d.api("POST", "/v1/services", {"name": "badt4", "image": "busybox", "mounts": [
        {"type": "tmpfs", "target": "/a", "tmpfs_size": -1}]})
    assert r.status == 400 and "tmpfs_size" in r.text, r


def test_update_labels_mounts_and_container_fields(daemon):
    d = daemon
    create(d, "upd", "--label", "a=1", "--label", "b=2", "--mount", "type=tmpfs,dst=/one",
           "busybox", "sh", "-c", "echo H=$(hostname) M=$(grep -c ' /one \\| /two ' /proc/mounts); sleep 1000")
    d.wait_running("upd", 1)
    d.cli("service", "update", "--label-add", "c=3", "--label-rm", "a", "upd")
    spec = spec_of(d, "upd")
    assert spec["labels"] == {"b": "2", "c": "3"}
    assert d.service("upd")["spec"]["labels"] == {"b": "2", "c": "3"}
    v = d.service("upd")["version"]
    d.cli("service", "update", "--restart-max-attempts", "5", "--restart-window", "1m",
          "--replicas-max-per-node", "2", "upd")
    svc = d.service("upd")
    assert svc["version"] == v, "restart and placement fields do not replace tasks"
    assert svc["spec"]["restart_max_attempts"] == 5 and svc["spec"]["restart_window_ms"] == 60000
    assert svc["spec"]["max_replicas_per_node"] == 2
    d.cli("service", "update", "--mount-add", "type=tmpfs,dst=/two", "--mount-rm", "/one",
          "--hostname", "renamed", "upd")
    spec = spec_of(d, "upd")
    assert [m["target"] for m in spec["mounts"]] == ["/two"] and spec["hostname"] == "renamed"
    wait_until(lambda: "H=renamed M=1" in d.logs("upd"), timeout=30)
    r = d.cli("service", "update", "--mount-rm", "two", "upd", check=False)
    assert r.returncode != 0 and "--mount-rm" in r.stderr
    r = d.cli("service", "update", "--mount-add", "type=tmpfs,dst=/sys", "upd", check=False)
    assert r.returncode != 0 and "reserved" in r.stderr
    assert spec_of(d, "upd")["mounts"] == spec["mounts"]
    remove(d, "upd")


def test_env_file(daemon, tmp_path):
    d = daemon
    f = tmp_path / "app.env"
    f.write_text("# settings\nCOLOR=blue\n\nGREETING=hello world\n")
    create(d, "envf", "--env-file", str(f), "-e", "COLOR=red", "busybox", "sh", "-c",
           "echo C=$COLOR G=$GREETING; sleep 1000")
    d.wait_running("envf", 1)
    wait_until(lambda: "C=" in d.logs("envf"))
    assert "C=red G=hello world" in d.logs("envf")
    assert "GREETING=hello world" in spec_of(d, "envf")["env"]
    remove(d, "envf")
    refused(d, "badenv", "--env-file", str(tmp_path / "missing.env"), says="--env-file")


def test_restart_max_attempts(daemon):
    d = daemon
    create(d, "crash", "-d", "--restart-max-attempts", "2", "--restart-delay", "100ms",
           "busybox", "sh", "-c", "exit 3")
    assert spec_of(d, "crash")["restart_max_attempts"] == 2

    def given_up():
        svc = d.service("crash")
        return svc if svc.get("replicas_failed") == 1 else None

    wait_until(given_up, timeout=30)
    time.sleep(1.5)  # and nothing starts again
    tasks = d.tasks("crash")
    assert len(tasks) == 3, json.dumps(tasks, indent=1)
    assert all(t["state"] == "failed" for t in tasks)
    d.cli("service", "rm", "crash")
    refused(d, "badmax", "--restart-max-attempts", "x", says="--restart-max-attempts")


def read_file(path):
    with open(path) as f:
        return f.read()


# Docker's default capabilities as CapEff bits (CHOWN .. AUDIT_WRITE)
DEFAULT_CAPS = 0x00000000a80425fb


def test_read_only_caps_sysctl_ulimit_dns_pids(daemon):
    d = daemon
    create(d, "rt", "--read-only", "--mount", "type=tmpfs,dst=/scratch",
           "--cap-drop", "chown", "--cap-add", "NET_ADMIN", "--sysctl", "kernel.shmmni=2048",
           "--ulimit", "nofile=1024:2048", "--dns", "192.0.2.53", "--limit-pids", "64",
           "--stop-signal", "SIGINT",
           "busybox", "sh", "-c",
           "touch /rootfile 2>/dev/null && echo ROOT-WRITABLE || echo ROOT-REFUSED; "
           "touch /scratch/f && echo TMPFS-OK; "
           "grep CapEff /proc/self/status; echo SHMMNI=$(cat /proc/sys/kernel/shmmni); "
           "echo NOFILE=$(ulimit -n):$(ulimit -Hn); grep nameserver /etc/resolv.conf; "
           "echo DONE; trap 'echo GOT-INT; exit 0' INT; while true; do sleep 0.2; done")
    t = d.wait_running("rt", 1)[0]
    wait_until(lambda: "DONE" in d.logs("rt"))
    out = d.logs("rt")
    assert "ROOT-REFUSED" in out and "TMPFS-OK" in out, out
    capeff = int([l for l in out.splitlines() if "CapEff" in l][0].split()[-1], 16)
    assert capeff == (DEFAULT_CAPS & ~1) | (1 << 12), hex(capeff)
    assert "SHMMNI=2048" in out and "NOFILE=1024:2048" in out, out
    ns = [l.split()[-1] for l in out.splitlines() if "nameserver" in l]
    assert ns == ["192.0.2.53"], out
    assert read_file("/sys/fs/cgroup/pids/shoal/%s/pids.max" % t["id"]).strip() == "64"
    spec = spec_of(d, "rt")
    assert spec["read_only"] is True and spec["cap_add"] == ["CAP_NET_ADMIN"]
    assert spec["cap_drop"] == ["CAP_CHOWN"] and spec["sysctls"] == {"kernel.shmmni": "2048"}
    assert spec["ulimits"] == {"nofile": {"soft": 1024, "hard": 2048}}
    assert spec["dns"] == ["192.0.2.53"] and spec["limits"]["pids"] == 64
    assert spec["stop_signal"] == "SIGINT"
    d.cli("service", "scale", "rt=0")  # stopped with SIGINT, which the task traps
    wait_until(lambda: "GOT-INT" in d.logs("rt"), timeout=20)
    remove(d, "rt")


def test_runtime_flags_bad_values(daemon):
    d = daemon
    refused(d, "badr1", "--cap-add", "NET_WIZARD", says="--cap-add")
    refused(d, "badr2", "--sysctl", "vm.swappiness=10", says="--sysctl")
    refused(d, "badr3", "--ulimit", "nofile=10:5", says="--ulimit")
    refused(d, "badr4", "--ulimit", "files=10", says="--ulimit")
    refused(d, "badr5", "--dns", "resolver.local", says="--dns")
    refused(d, "badr6", "--limit-pids", "0", says="--limit-pids")
    refused(d, "badr7", "--stop-signal", "SIGFOO", says="--stop-signal")
    refused(d, "badr8", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1",
            says="net.ipv4.ip_forward")
    r = d.api("POST", "/v1/services", {"name": "badr9", "image": "busybox",
                                       "cap_add": ["CAP_NOPE"]})
    assert r.status == 400 and "cap_add" in r.text, r


def pending_beside_running(d, service, n_pending, n_running):
    """The service's pending tasks when it has n_pending of them and
    n_running running tasks, else None."""
    ts = d.tasks(service)
    running = [t for t in ts if t["state"] == "running"]
    pending = [t for t in ts if t["state"] == "pending"]
    return pending if len(pending) == n_pending and len(running) == n_running else None


def test_replicas_max_per_node_and_placement_pref(daemon):
    d = daemon
    create(d, "mpn", "-d", "--replicas", "3", "--replicas-max-per-node", "1",
           "--placement-pref", "spread=node.labels.rack", "busybox", "sleep", "1000")

    pending = wait_until(lambda: pending_beside_running(d, "mpn", 2, 1), timeout=30)
    for t in pending:
        assert "max replicas per node limit exceeded on 1 node" in t["error"], t
    assert "max replicas per node" in d.service("mpn").get("pending_reason", "")
    ps = d.cli("service", "ps", "mpn").stdout
    assert "max replicas per node" in ps, ps
    spec = spec_of(d, "mpn")
    assert spec["max_replicas_per_node"] == 1
    assert spec["placement_preferences"] == [{"spread": "node.labels.rack"}]
    d.cli("service", "update", "-d", "--replicas-max-per-node", "0", "mpn")
    d.wait_running("mpn", 3)
    remove(d, "mpn")
    refused(d, "badp1", "--placement-pref", "spread=node.role", says="--placement-pref")
    refused(d, "badp2", "--mode", "global", "--replicas-max-per-node", "1", says="replicated")


def test_publish_target_only_chooses_a_port(daemon):
    d = daemon
    create(d, "pa", "-d", "-p", "3000", "busybox", "sleep", "1000")
    create(d, "pb", "-d", "-p", "3000", "-p", "8125/udp", "busybox", "sleep", "1000")
    pa = spec_of(d, "pa")["ports"]
    pb = spec_of(d, "pb")["ports"]
    assert pa[0]["target"] == 3000 and 30000 <= pa[0]["published"] <= 32767, pa
    assert pb[0]["target"] == 3000 and 30000 <= pb[0]["published"] <= 32767, pb
    assert pa[0]["published"] != pb[0]["published"]
    assert pb[1]["protocol"] == "udp" and 30000 <= pb[1]["published"] <= 32767
    # kept on update; a new target-only port gets another
    d.cli("service", "update", "-d", "--publish-add", "4000", "pa")
    pa2 = spec_of(d, "pa")["ports"]
    assert pa2[0] == pa[0] and pa2[1]["target"] == 4000
    assert pa2[1]["published"] not in (pa[0]["published"], pb[0]["published"])
    remove(d, "pa")
    remove(d, "pb")
    refused(d, "badport", "-p", "70000", says="port")


def test_update_runtime_lists(daemon):
    d = daemon
    create(d, "rl", "--sysctl", "kernel.shmmni=2048", "--dns", "192.0.2.1", "busybox", "sh", "-c",
           "echo S=$(cat /proc/sys/kernel/shmmni) N=$(grep -c nameserver /etc/resolv.conf) "
           "RO=$(touch /x 2>/dev/null && echo no || echo yes); sleep 1000")
    d.wait_running("rl", 1)
    d.cli("service", "update", "--sysctl-add", "kernel.shmmni=1024", "--dns-add", "192.0.2.2",
          "--read-only", "--placement-pref-add", "spread=node.labels.rack", "rl")
    spec = spec_of(d, "rl")
    assert spec["sysctls"] == {"kernel.shmmni": "1024"} and spec["read_only"] is True
    assert spec["dns"] == ["192.0.2.1", "192.0.2.2"]
    assert spec["placement_preferences"] == [{"spread": "node.labels.rack"}]
    wait_until(lambda: "S=1024 N=2 RO=yes" in d.logs("rl"), timeout=30)
    d.cli("service", "update", "--dns-rm", "192.0.2.1", "--sysctl-rm", "kernel.shmmni",
          "--read-only=false", "--placement-pref-rm", "spread=node.labels.rack", "rl")
    spec = spec_of(d, "rl")
    assert spec["dns"] == ["192.0.2.2"] and spec["sysctls"] == {} and spec["read_only"] is False
    assert spec["placement_preferences"] == []
    r = d.cli("service", "update", "--ulimit-add", "nofile=9:1", "rl", check=False)
    assert r.returncode != 0 and "--ulimit" in r.stderr
    remove(d, "rl")


def test_reserve_memory_places_only_where_memory_is_left(daemon):
    d = daemon
    node = d.cli_json("node", "ls")[0]
    mem = json.loads(d.cli("node", "inspect", node["id"]).stdout)[0]["resources"]["memory"]
    half = mem // 2 + 1  # two such tasks do not fit on the node
    create(d, "rmem", "-d", "--replicas", "2", "--reserve-memory", str(half), "busybox", "sleep",
           "1000")
    assert spec_of(d, "rmem")["reservations"] == {"memory": half}

    pending = wait_until(lambda: pending_beside_running(d, "rmem", 1, 1), timeout=30)
    assert "insufficient memory on 1 node" in pending[0]["error"], pending
    assert all(t.get("reserved_memory") == half for t in d.tasks("rmem"))
    # less reserved: both fit (the update replaces the tasks)
    d.cli("service", "update", "-d", "--reserve-memory", "16M", "rmem")
    d.wait_running("rmem", 2)
    remove(d, "rmem")
    refused(d, "rmem2", "--reserve-memory", "0", says="--reserve-memory")
    refused(d, "rmem3", "--reserve-memory", "lots", says="--reserve-memory")
