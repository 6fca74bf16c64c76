"""Alerts (shoal alert add|ls|rm|history) and heat on one daemon: a rule
fires to a webhook and an SMTP sink served here and resolves; a hot node
takes no new tasks; bad rules are refused; the read-only dashboard token
cannot add rules. The node's temperature comes from a file this test writes
(SHOAL_THERMAL_ROOT)."""
import http.server
import json
import os
import socket
import tempfile
import threading

import pytest

from conftest import Daemon, QUICK_STOP, end_daemon, wait_until

HEAT_THRESHOLD = 70  # hysteresis 5: cool again below 65


class WebhookSink:
    """Records the JSON bodies POSTed to it."""

    def __init__(self):
        sink = self
        self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                data = self.rfile.read(n)
                sink.bodies.append((self.path, self.headers.get("Content-Type"), json.loads(data)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """Just enough SMTP (EHLO/HELO, MAIL, RCPT, DATA, QUIT) to receive messages."""

    def __init__(self):
        self.messages = []  # (mail_from, [rcpt], data)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        f = conn.makefile("rwb")

        def say(line):
            f.write(line.encode() + b"\r\n")
            f.flush()

        say("220 sink ESMTP")
        mail_from, rcpts = None, []
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode().strip()
                verb = cmd.split(" ")[0].upper()
                if verb in ("EHLO", "HELO"):
                    say("250 sink")
                elif verb == "MAIL":
                    mail_from, rcpts = cmd[10:], []
                    say("250 ok")
                elif verb == "RCPT":
                    rcpts.append(cmd[8:])
                    say("250 ok")
                elif verb == "DATA":
                    say("354 go on")
                    data = b""
                    while True:
                        line = f.readline()
                        if not line or line == b".\r\n":
                            break
                        data += line
                    self.messages.append((mail_from, rcpts, data.decode()))
                    say("250 queued")
                elif verb == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("250 ok")
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def set_temperature(d, celsius):
    with open(d.thermal_file, "w") as f:
        f.write("%d\n" % int(celsius * 1000))


@pytest.fixture(scope="module")
def ad(rootfs_tar):
    """One daemon with the dashboard, an SMTP relay, a heat threshold and a
    fake thermal zone."""
    tmp = tempfile.mkdtemp(prefix="shoal-it-")
    d = Daemon(tmp)
    d.smtp = SmtpSink()
    zone = os.path.join(tmp, "thermal", "sys", "class", "thermal", "thermal_zone0")
    os.makedirs(zone)
    d.thermal_file = os.path.join(zone, "temp")
    set_temperature(d, 30)
    d.configure({"smtp-relay": "smtp://127.0.0.1:%d" % d.smtp.port, "smtp-from": "shoal@test",
                 "heat-threshold-celsius": HEAT_THRESHOLD,
                 "backup-dir": os.path.join(tmp, "backups")})
    d.listen_dashboard()
    old = os.environ.get("SHOAL_THERMAL_ROOT")
    os.environ["SHOAL_THERMAL_ROOT"] = os.path.join(tmp, "thermal")
    try:
        d.start()
    finally:
        if old is None:
            del os.environ["SHOAL_THERMAL_ROOT"]
        else:
            os.environ["SHOAL_THERMAL_ROOT"] = old
    d.init_swarm()
    d.import_image(rootfs_tar)
    yield d
    d.smtp.close()
    end_daemon(d, tmp)


def history(d):
    r = d.api("GET", "/v1/alerts/history")
    assert r.status == 200, r
    return r.json()


def node_temp(d):
    r = d.api("GET", "/v1/nodes/stats")
    return r.json()[0]["latest"]["temp_c"]


def test_rule_fires_to_webhook_and_email_then_resolves(ad):
    hook = WebhookSink()
    try:
        set_temperature(ad, 30)
        ad.cli("alert", "add", "--name", "warm", "--metric", "temperature", "--above", "50",
               "--for", "2s", "--notify", "webhook=" + hook.url, "--notify", "email=ops@example.org")
        [rule] = ad.cli_json("alert", "ls")
        assert rule["name"] == "warm" and rule["metric"] == "temperature"
        assert rule["above"] == 50 and rule["for_ms"] == 2000 and rule["node"] == "all"
        assert rule["notify"] == [{"type": "webhook", "to": hook.url},
                                  {"type": "email", "to": "ops@example.org"}]
        assert "temperature > 50 for 2s" in ad.cli("alert", "ls").stdout

        set_temperature(ad, 60)
        wait_until(lambda: hook.bodies, timeout=30, msg=lambda: ad.log_tail())
        path, ctype, body = hook.bodies[0]
        assert path == "/hook" and ctype == "application/json"
        assert body["status"] == "firing"
        alert = body["alert"]
        assert alert["rule"] == "warm" and alert["subject"] == "temperature"
        assert alert["state"] == "open" and alert["value"] == 60 and alert["threshold"] == 50
        assert alert["hostname"] and alert["node_id"] and alert["since"] > 0
        assert "temperature 60.0 above 50" in alert["message"]
        # the webhook may be sent before this manager's store shows the alert
        [open_alert] = wait_until(lambda: [a for a in history(ad) if a["state"] == "open"],
                                  timeout=10)
        assert open_alert["id"] == alert["id"]
        assert "open" in ad.cli("alert", "history").stdout

        wait_until(lambda: ad.smtp.messages, timeout=30, msg=lambda: ad.log_tail())
        mail_from, rcpts, data = ad.smtp.messages[0]
        assert mail_from == "<shoal@test>" and rcpts == ["<ops@example.org>"]
        assert "Subject: [shoal] firing: temperature 60.0 above 50" in data
        assert "Alert warm is firing" in data

        set_temperature(ad, 30)
        wait_until(lambda: len(hook.bodies) >= 2, timeout=30, msg=lambda: ad.log_tail())
        body = hook.bodies[1][2]
        assert body["status"] == "resolved"
        assert body["alert"]["id"] == alert["id"] and body["alert"]["resolved_at"] >= alert["since"]
        [past] = wait_until(lambda: [a for a in history(ad) if a["state"] == "resolved"],
                            timeout=10)
        wait_until(lambda: len(ad.smtp.messages) >= 2, timeout=30)
        assert "Subject: [shoal] resolved:" in ad.smtp.messages[1][2]
        assert len(hook.bodies) == 2  # nothing sent twice
    finally:
        ad.cli("alert", "rm", "warm", check=False)
        hook.close()
    assert ad.cli_json("alert", "ls") == []


def test_hot_node_takes_no_new_tasks_until_it_cools(ad):
    set_temperature(ad, HEAT_THRESHOLD + 10)

    def hot():
        [n] = ad.api("GET", "/v1/nodes").json()
        return n.get("hot") is True

    wait_until(hot, timeout=20, msg=lambda: ad.log_tail())
    ad.cli("service", "create", *QUICK_STOP, "--detach", "--name", "warmsvc", "busybox:latest",
           "sleep", "1000")

    def refused():
        tasks = ad.tasks("warmsvc")
        return tasks and "too hot" in (tasks[0].get("error") or "")

    wait_until(refused, timeout=20, msg=lambda: json.dumps(ad.tasks("warmsvc")))
    ps = ad.cli("service", "ps", "--no-trunc", "warmsvc").stdout
    assert "no suitable node (1 node too hot)" in ps, ps
    set_temperature(ad, HEAT_THRESHOLD - 2)  # below the threshold, not below the hysteresis
    wait_until(lambda: node_temp(ad) == HEAT_THRESHOLD - 2, timeout=10)
    assert hot()
    set_temperature(ad, HEAT_THRESHOLD - 10)
    ad.wait_running("warmsvc", 1, timeout=30)
    assert not hot()
    ad.cli("service", "rm", "warmsvc")


@pytest.mark.parametrize("args,message", [
    (["--metric", "fan", "--above", "1"], "unknown metric 'fan'"),
    (["--metric", "cpu", "--above", "1", "--for", "soon"], "soon"),
    (["--metric", "cpu", "--above", "lots"], "--above: 'lots' is not a number"),
    (["--metric", "cpu", "--above", "1", "--notify", "webhook=ftp://x"], "bad webhook URL"),
    (["--metric", "cpu", "--above", "1", "--notify", "email=nobody"], "bad e-mail address"),
    (["--event", "node-up"], "unknown event 'node-up'"),
])
def test_bad_rules_are_refused_and_nothing_is_stored(ad, args, message):
    r = ad.cli("alert", "add", "--name", "bad", *args, check=False)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert ad.cli_json("alert", "ls") == []


def test_duplicate_name_and_unknown_rm(ad):
    ad.cli("alert", "add", "--name", "down", "--event", "node-down")
    r = ad.cli("alert", "add", "--name", "down", "--event", "node-down", check=False)
    assert r.returncode == 1 and "alert down already exists" in r.stderr
    r = ad.cli("alert", "rm", "nosuch", check=False)
    assert r.returncode == 1 and "No such alert: nosuch" in r.stderr
    ad.cli("alert", "rm", "down")


def test_read_only_token_cannot_add_alerts(ad):
    import http.client
    ro = ad.dashboard_token()
    admin = ad.dashboard_token(admin=True)

    def call(method, path, token, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", ad.dashboard_port, timeout=10)
        try:
            conn.request(method, path, body=json.dumps(body) if body else None,
                         headers={"Authorization": "Bearer " + token,
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    rule = {"name": "ro", "event": "node-down"}
    assert call("POST", "/v1/alerts", ro, rule)[0] == 403
    assert call("GET", "/v1/alerts", ro)[0] == 200
    assert call("GET", "/v1/alerts/history", ro)[0] == 200
    assert ad.cli_json("alert", "ls") == []
    rule["notify"] = ["webhook=https://hooks.example.org/services/T0/SECRET?x=1"]
    assert call("POST", "/v1/alerts", admin, rule)[0] == 201
    status, body = call("GET", "/v1/alerts", ro)
    assert status == 200 and json.loads(body)[0]["notify"] == [
        {"type": "webhook", "to": "https://hooks.example.org/..."}]
    status, body = call("GET", "/v1/alerts", admin)
    assert json.loads(body)[0]["notify"][0]["to"].endswith("/SECRET?x=1")
    assert call("DELETE", "/v1/alerts/ro", ro)[0] == 403
    assert call("DELETE", "/v1/alerts/ro", admin)[0] == 200


def test_task_restarting_in_a_loop_opens_an_alert(ad):
    ad.cli("alert", "add", "--name", "flap", "--event", "task-flapping", "--restarts", "2",
           "--window", "1m")
    ad.cli("service", "create", "--detach", "--name", "crashy", "--restart-delay", "200ms",
           "busybox:latest", "false")
    try:
        def opened():
            return [a for a in history(ad) if a["state"] == "open" and a["rule"] == "flap"]

        [a] = wait_until(opened, timeout=40, msg=lambda: json.dumps(ad.tasks("crashy")))
        assert a["subject"] == "task crashy.1" and a["value"] >= 2 and a["threshold"] == 2
        assert "task crashy.1 restarted" in a["message"]
    finally:
        ad.cli("service", "rm", "crashy")
        ad.cli("alert", "rm", "flap")
    wait_until(lambda: all(x["state"] == "resolved" for x in history(ad)), timeout=20)


def test_a_failing_scheduled_backup_fires_and_resolves_on_the_next_success(ad):
    hook = WebhookSink()
    try:
        ad.cli("alert", "add", "--name", "backups", "--event", "backup-failing",
               "--notify", "webhook=" + hook.url)
        assert "backup-failing" in ad.cli("alert", "ls").stdout
        # the hook fails until the file it tests is there
        ad.cli("volume", "create", "--backup", "2s", "--hook", "test -f /data/ok", "flaky")
        ad.cli("service", "create", "--detach", "--name", "flakysvc", "--stop-grace-period", "1s",
               "--mount", "type=volume,src=flaky,dst=/data", "busybox:latest", "sleep", "1000")
        ad.wait_running("flakysvc", 1)
        wait_until(lambda: hook.bodies, timeout=40, msg=lambda: ad.log_tail())
        body = hook.bodies[0][2]
        assert body["status"] == "firing", body
        alert = body["alert"]
        assert alert["rule"] == "backups" and alert["subject"] == "backup flaky", alert
        assert "volume flaky: scheduled backup failed on" in alert["message"], alert
        assert "the backup hook failed (exit 1)" in alert["message"], alert
        # the webhook may be sent before this manager's store shows the alert
        [opened] = wait_until(lambda: [a for a in history(ad) if a["state"] == "open"],
                              timeout=10)
        assert opened["id"] == alert["id"]
        mountpoint = json.loads(ad.cli("volume", "inspect", "flaky").stdout)[0]["mountpoint"]
        with open(os.path.join(mountpoint, "ok"), "w") as f:
            f.write("ok\n")
        wait_until(lambda: len(hook.bodies) >= 2, timeout=30, msg=lambda: ad.log_tail())
        body = hook.bodies[1][2]
        assert body["status"] == "resolved" and body["alert"]["id"] == alert["id"], body
        backups = json.loads(ad.cli("volume", "backups", "--format", "json", "flaky").stdout)
        assert backups, "the successful backup that resolved the alert"
        [past] = wait_until(lambda: [a for a in history(ad)
                                     if a["id"] == alert["id"] and a["state"] == "resolved"],
                            timeout=10)
    finally:
        ad.cli("service", "rm", "flakysvc", check=False)
        ad.cli("alert", "rm", "backups", check=False)
        hook.close()
    wait_until(lambda: ad.cli("volume", "rm", "flaky", check=False).returncode == 0, timeout=20)

def test_node_down_opens_an_alert_that_resolves_when_it_is_back(rootfs_tar):
    from cluster import Cluster
    c = Cluster(managers=1, workers=1, rootfs_tar=rootfs_tar)
    try:
        leader, worker = c.nodes
        wid = c.node_id(worker)
        leader.cli("alert", "add", "--name", "down", "--event", "node-down")
        assert history(leader) == []
        worker.stop()

        def opened():
            return [a for a in history(leader) if a["state"] == "open"]

        [a] = wait_until(opened, timeout=30, msg=lambda: leader.log_tail())
        assert a["subject"] == "node-down" and a["node_id"] == wid and a["rule"] == "down"
        assert "is down" in a["message"]
        worker.start()
        wait_until(lambda: [x for x in history(leader) if x["state"] == "resolved"], timeout=40,
                   msg=lambda: json.dumps(history(leader)))
        [past] = history(leader)
        assert past["id"] == a["id"] and past["resolved_at"] >= past["since"]
    finally:
        c.destroy()


def test_a_new_leader_continues_open_alerts(rootfs_tar):
    from cluster import Cluster
    c = Cluster(managers=3, workers=1, rootfs_tar=rootfs_tar)
    try:
        managers, worker = c.nodes[:3], c.nodes[3]
        wid = c.node_id(worker)
        leader = c.find_leader(managers)
        leader.cli("alert", "add", "--name", "down", "--event", "node-down")
        c.cut_link(worker)

        def open_for(via, node_id):
            return [a for a in history(via) if a["state"] == "open" and a["node_id"] == node_id]

        [a] = wait_until(lambda: open_for(leader, wid), timeout=30)
        old_id = c.node_id(leader)
        c.kill_node(leader)
        rest = [m for m in managers if m is not leader]
        new = wait_until(lambda: c.find_leader(rest), timeout=30)
        # the new leader finds the old one down: a second alert, the first one kept as it was
        wait_until(lambda: open_for(new, old_id), timeout=30)
        assert open_for(new, wid) == [a]
        c.restore_link(worker)
        wait_until(lambda: not open_for(new, wid), timeout=40,
                   msg=lambda: json.dumps([c.nodes_view(new), history(new)]) + worker.log_tail())
        [done] = [x for x in history(new) if x["id"] == a["id"]]
        assert done["state"] == "resolved" and done["since"] == a["since"]
    finally:
        c.destroy()
