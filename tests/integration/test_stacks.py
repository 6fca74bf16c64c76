"""Stacks (issue 15): `stack deploy -c compose.yml [-c override.yml] [--prune]
NAME`, `stack ls|ps|services|rm`, as Docker Swarm's, on one daemon."""
import json

from conftest import wait_until

COMPOSE = """\
version: "3.8"
x-sleeper: &sleeper
  image: busybox
  command: ["sleep", "1000"]
  stop_grace_period: 1s

services:
  web:
    image: busybox
    command: httpd -f -p 8080
    stop_grace_period: 1s
    ports:
      - "18080:8080"
    networks: [back]
    deploy:
      replicas: 2
      placement:
        constraints: ["node.role == manager"]
  app:
    <<: *sleeper
    environment:
      MODE: ${STACK_TEST_MODE:-prod}
    networks: [back]
    secrets:
      - db_password
    configs:
      - source: app_conf
        target: /etc/app.conf
    deploy:
      resources:
        limits: {memory: 64M}
  db:
    <<: *sleeper
    networks: [back]
    healthcheck:
      test: ["CMD-SHELL", "test -e /bin/sh"]
      interval: 1s
      timeout: 1s
      retries: 2
    deploy:
      restart_policy: {condition: any, delay: 1s}

networks:
  back:
    driver: overlay

secrets:
  db_password:
    file: ./db_password.txt

configs:
  app_conf:
    file: ./app.conf
"""

# the second deployment: no db, web scaled down; the override changes app
COMPOSE2 = COMPOSE.split("  db:\n")[0].replace("replicas: 2", "replicas: 1") + COMPOSE[
    COMPOSE.index("networks:\n  back:"):]
OVERRIDE = """\
services:
  app:
    environment:
      MODE: canary
"""


def write_stack(tmp_path):
    (tmp_path / "db_password.txt").write_text("hunter2-stack\n")
    (tmp_path / "app.conf").write_text("level=3\n")
    for name, text in [("compose.yml", COMPOSE), ("compose2.yml", COMPOSE2),
                       ("override.yml", OVERRIDE)]:
        (tmp_path / name).write_text(text)
    return tmp_path


def names(d, kind):
    return sorted(o["name"] for o in d.api("GET", "/v1/" + kind).json())


def read_in_task(task, path):
    with open("/proc/%d/root%s" % (task["pid"], path)) as f:
        return f.read()


def stack_objects(d, stack):
    prefix = stack + "_"
    return {kind: [n for n in names(d, kind) if n.startswith(prefix)]
            for kind in ("services", "networks", "secrets", "configs")}


def test_stack_deploy_update_prune_rm(daemon, tmp_path):
    d = daemon
    write_stack(tmp_path)
    out = d.cli("stack", "deploy", "-c", tmp_path / "compose.yml", "st").stdout
    for line in ["Creating network st_back", "Creating secret st_db_password",
                 "Creating config st_app_conf", "Creating service st_web",
                 "Creating service st_app", "Creating service st_db"]:
        assert line in out, out
    assert "st_default" not in names(d, "networks")  # every service is on back
    d.wait_running("st_web", 2)
    [app] = d.wait_running("st_app", 1)
    d.wait_running("st_db", 1)

    web = d.service("st_web")["spec"]
    assert web["labels"] == {"com.docker.stack.namespace": "st"}
    assert web["network"] == "st_back" and web["constraints"] == ["node.role==manager"]
    assert web["ports"][0]["published"] == 18080
    spec = d.service("st_app")["spec"]
    assert "MODE=prod" in spec["env"] and spec["limits"]["memory"] == 64 << 20
    assert read_in_task(app, "/run/secrets/db_password") == "hunter2-stack\n"
    assert read_in_task(app, "/etc/app.conf") == "level=3\n"
    wait_until(lambda: any(t.get("health") == "healthy" for t in d.running_tasks("st_db")),
               timeout=20)

    assert d.cli_json("stack", "ls") == [{"name": "st", "services": 3}]
    assert "st" in d.cli("stack", "ls").stdout.splitlines()[1]
    listed = d.cli("stack", "services", "st").stdout
    assert "st_web" in listed and "2/2" in listed and "*:18080->8080/tcp" in listed
    tasks = d.cli_json("stack", "ps", "st")
    assert sorted(t["name"] for t in tasks if t["desired_state"] == "running") == [
        "st_app.1", "st_db.1", "st_web.1", "st_web.2"]
    assert "st_db.1" in d.cli("stack", "ps", "st").stdout

    # the same file again changes nothing
    version = d.service("st_app")["version"]
    again = d.cli("stack", "deploy", "-c", tmp_path / "compose.yml", "st").stdout
    assert "Updating" not in again and "Creating" not in again, again
    assert d.service("st_app")["version"] == version

    # deploy again: db gone from the file (--prune), web scaled, app's env changed
    out = d.cli("stack", "deploy", "-c", tmp_path / "compose2.yml", "-c",
                tmp_path / "override.yml", "--prune", "--with-registry-auth", "st").stdout
    assert "Updating service st_web" in out and "Updating service st_app" in out, out
    assert "Removing service st_db" in out, out
    assert "st_db" not in names(d, "services")
    d.wait_running("st_web", 1)
    app_svc = d.service("st_app")
    assert "MODE=canary" in app_svc["spec"]["env"] and "MODE=prod" not in app_svc["spec"]["env"]
    assert app_svc["version"] > version
    d.wait_running("st_app", 1, version=app_svc["version"])
    assert d.cli_json("stack", "ls") == [{"name": "st", "services": 2}]

    # a stack's service rolls back as any service: to the spec before the deploy
    d.cli("service", "rollback", "-d", "st_app")
    wait_until(lambda: "MODE=prod" in d.service("st_app")["spec"]["env"], timeout=20)
    assert d.service("st_app")["spec"]["labels"] == {"com.docker.stack.namespace": "st"}
    d.wait_running("st_app", 1, version=d.service("st_app")["version"])

    out = d.cli("stack", "rm", "st").stdout
    assert "Removing service st_web" in out and "Removing network st_back" in out, out
    assert stack_objects(d, "st") == {"services": [], "networks": [], "secrets": [],
                                      "configs": []}
    assert d.cli_json("stack", "ls") == []
    r = d.cli("stack", "services", "st")
    assert "Nothing found in stack: st" in r.stderr


def test_bad_file_names_key_and_line_creates_nothing(daemon, tmp_path):
    d = daemon
    write_stack(tmp_path)
    bad = COMPOSE.replace("      replicas: 2\n", "      replicas: 2\n      replicaz: 3\n")
    line = bad.splitlines().index("      replicaz: 3") + 1
    (tmp_path / "bad.yml").write_text(bad)
    r = d.cli("stack", "deploy", "-c", tmp_path / "bad.yml", "bad", check=False)
    assert r.returncode == 1
    assert "bad.yml:%d: services.web.deploy.replicaz: unknown key" % line in r.stderr, r.stderr
    assert stack_objects(d, "bad") == {"services": [], "networks": [], "secrets": [],
                                       "configs": []}

    # a failure at the daemon (an image it does not have) undoes what was created
    (tmp_path / "noimage.yml").write_text(COMPOSE.replace(
        "  db:\n    <<: *sleeper\n", "  db:\n    <<: *sleeper\n    image: nosuchimage:1\n"))
    r = d.cli("stack", "deploy", "-c", tmp_path / "noimage.yml", "bad", check=False)
    assert r.returncode == 1 and "st_db" not in r.stderr and "bad_db" in r.stderr, r.stderr
    assert stack_objects(d, "bad") == {"services": [], "networks": [], "secrets": [],
                                       "configs": []}
    assert json.loads(d.cli("stack", "ls", "--format", "json").stdout) == []


def test_usage_errors(daemon, tmp_path):
    d = daemon
    r = d.cli("stack", "deploy", "st", check=False)
    assert r.returncode == 2 and "-c" in r.stderr
    r = d.cli("stack", "deploy", "-c", tmp_path / "missing.yml", "st", check=False)
    assert r.returncode == 1 and "missing.yml" in r.stderr
    r = d.cli("stack", "deploy", "-c", tmp_path / "x.yml", "bad name", check=False)
    assert r.returncode == 2 and "invalid stack name" in r.stderr


JOBS = """\
services:
  once:
    image: busybox
    command: ["sh", "-c", "test $(hostname) = jobhost && test $(pwd) = /tmp"]
    hostname: jobhost
    working_dir: /tmp
    stop_signal: SIGINT
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    labels: {tier: batch}
    deploy:
      mode: replicated-job
      replicas: 2
      restart_policy: {max_attempts: 2}
      placement:
        preferences: [{spread: node.labels.rack}]
        max_replicas_per_node: 2
  web:
    image: busybox
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    ports: ["8080"]
  nightly:
    image: busybox
    command: ["true"]
    deploy:
      mode: replicated-job
      labels:
        shoal.schedule: "0 3 * * *"
"""


def test_stack_replicated_job_completes(daemon, tmp_path):
    d = daemon
    (tmp_path / "jobs.yml").write_text(JOBS)
    d.cli("stack", "deploy", "-c", tmp_path / "jobs.yml", "jb")
    spec = d.service("jb_once")["spec"]
    assert (spec["mode"], spec["replicas"], spec["restart_condition"]) == \
        ("replicated-job", 2, "none"), spec
    assert (spec["hostname"], spec["workdir"], spec["container_labels"]) == \
        ("jobhost", "/tmp", {"tier": "batch"}), spec
    ts = wait_until(lambda: len(d.tasks("jb_once")) == 2 and
                    all(t["state"] == "complete" for t in d.tasks("jb_once")) and
                    d.tasks("jb_once"), timeout=30, msg=lambda: d.tasks("jb_once"))
    assert all(t["exit_code"] == 0 for t in ts), ts
    svc = d.service("jb_once")
    assert (svc["replicas_completed"], svc["replicas_failed"]) == (2, 0), svc
    nightly = d.service("jb_nightly")["spec"]
    assert (nightly["schedule"], nightly["schedule_tz"]) == ("0 3 * * *", "UTC"), nightly
    [port] = d.service("jb_web")["spec"]["ports"]
    assert port["target"] == 8080 and 30000 <= port["published"] <= 32767, port
    # deploying the same file again changes nothing (the job is not run again, the port
    # chosen stays)
    out = d.cli("stack", "deploy", "-c", tmp_path / "jobs.yml", "jb").stdout
    assert "Updating" not in out and "Creating service" not in out, out
    assert d.service("jb_web")["spec"]["ports"] == [port]
    d.cli("stack", "rm", "jb")
    wait_until(lambda: stack_objects(d, "jb")["services"] == [], timeout=20)
