/* Compose files -> stack plans (src/cli/compose.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/compose.h"
#include "unit.h"

/* Parses and converts one file's text as stack "st"; NULL with err on failure. */
static json_t *plan_of(const char *yaml, struct serr *err)
{
    json_t *doc, *plan = NULL;
    if (compose_parse(yaml, strlen(yaml), "c.yml", &doc, err) < 0)
        return NULL;
    if (compose_convert(doc, "st", "/srv/app", &plan, err) < 0)
        plan = NULL;
    json_decref(doc);
    return plan;
}

static json_t *must_plan(const char *yaml)
{
    struct serr err = {0};
    json_t *plan = plan_of(yaml, &err);
    if (plan == NULL)
        fprintf(stderr, "unexpected error: %s\n", err.msg);
    CHECK(plan != NULL);
    return plan;
}

/* The error message for a file that must fail. */
static const char *must_fail(const char *yaml)
{
    static struct serr err;
    memset(&err, 0, sizeof(err));
    json_t *plan = plan_of(yaml, &err);
    if (plan) {
        char *s = json_dumps(plan, 0);
        fprintf(stderr, "unexpected success: %s\n", s);
        free(s);
    }
    CHECK(plan == NULL);
    return err.msg;
}

static json_t *service(json_t *plan, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(plan, "services"), i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
            return s;
    }
    return NULL;
}

static const char *str_at(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void check_json(json_t *j, const char *expected)
{
    json_t *e = json_loads(expected, 0, NULL);
    CHECK(e != NULL);
    if (!json_equal(j, e)) {
        char *s = json_dumps(j, JSON_SORT_KEYS);
        fprintf(stderr, "got %s\nwant %s\n", s, expected);
        free(s);
    }
    CHECK(json_equal(j, e));
    json_decref(e);
}

TEST(compose_minimal_service_on_default_network)
{
    json_t *plan = must_plan("version: '3.8'\n"
                             "services:\n"
                             "  web:\n"
                             "    image: busybox\n"
                             "    command: httpd -f -p 8080\n");
    json_t *web = service(plan, "st_web");
    CHECK(web != NULL);
    check_json(web, "{\"name\":\"st_web\",\"image\":\"busybox\",\"network\":\"st_default\","
                    "\"args\":[\"httpd\",\"-f\",\"-p\",\"8080\"],"
                    "\"labels\":{\"com.docker.stack.namespace\":\"st\"}}");
    check_json(json_object_get(plan, "networks"), "[{\"name\":\"st_default\"}]");
    CHECK(json_array_size(json_object_get(plan, "warnings")) == 0);
    json_decref(plan);
}

TEST(compose_full_service)
{
    setenv("COMPOSE_T_TAG", "1.36", 1);
    unsetenv("COMPOSE_T_UNSET");
    json_t *plan = must_plan(
        "x-common: &common\n"
        "  stop_grace_period: 2s\n"
        "services:\n"
        "  app:\n"
        "    <<: *common\n"
        "    image: busybox:${COMPOSE_T_TAG}\n"
        "    command: [\"/bin/sh\", \"-c\", \"echo $$HOME; sleep 1000\"]\n"
        "    environment:\n"
        "      MODE: ${COMPOSE_T_UNSET:-prod}\n"
        "      PORT: '8080'\n"
        "    ports:\n"
        "      - \"8080:80\"\n"
        "      - target: 53\n"
        "        published: 5353\n"
        "        protocol: udp\n"
        "        mode: host\n"
        "    volumes:\n"
        "      - data:/data\n"
        "      - ./html:/www:ro\n"
        "      - type: bind\n"
        "        source: /etc/hosts\n"
        "        target: /h\n"
        "        read_only: true\n"
        "    networks: [back]\n"
        "    healthcheck:\n"
        "      test: [\"CMD\", \"wget\", \"-q\", \"http://localhost/a b\"]\n"
        "      interval: 5s\n"
        "      timeout: 1s\n"
        "      retries: 2\n"
        "      start_period: 1m30s\n"
        "    secrets:\n"
        "      - db_pw\n"
        "      - source: db_pw\n"
        "        target: other\n"
        "        mode: 0400\n"
        "    configs:\n"
        "      - source: conf\n"
        "        target: /etc/app.conf\n"
        "    deploy:\n"
        "      mode: replicated\n"
        "      replicas: 3\n"
        "      placement:\n"
        "        constraints: [\"node.role == manager\", node.labels.disk!=hdd]\n"
        "      resources:\n"
        "        limits: {cpus: '0.5', memory: 64M}\n"
        "        reservations: {cpus: '0.25', memory: 32M}\n"
        "      restart_policy: {condition: on-failure, delay: 500ms}\n"
        "      update_config: {parallelism: 2, delay: 10s, failure_action: rollback,\n"
        "                      monitor: 30s, max_failure_ratio: 0.5, order: start-first}\n"
        "      rollback_config: {parallelism: 0, failure_action: continue}\n"
        "      labels: [traefik.enable=true]\n"
        "networks:\n"
        "  back:\n"
        "    driver: overlay\n"
        "    ipam:\n"
        "      config: [{subnet: 10.77.0.0/16}]\n"
        "volumes:\n"
        "  data:\n"
        "secrets:\n"
        "  db_pw:\n"
        "    file: ./pw.txt\n"
        "configs:\n"
        "  conf:\n"
        "    content: hello\n");
    check_json(service(plan, "st_app"),
               "{\"name\":\"st_app\",\"image\":\"busybox:1.36\",\"stop_grace_period_ms\":2000,"
               "\"args\":[\"/bin/sh\",\"-c\",\"echo $HOME; sleep 1000\"],"
               "\"env\":[\"MODE=prod\",\"PORT=8080\"],"
               "\"ports\":[{\"published\":8080,\"target\":80},"
               "{\"published\":5353,\"target\":53,\"protocol\":\"udp\",\"mode\":\"host\"}],"
               "\"mounts\":[{\"type\":\"volume\",\"source\":\"st_data\",\"target\":\"/data\"},"
               "{\"type\":\"bind\",\"source\":\"/srv/app/html\",\"target\":\"/www\",\"readonly\":true},"
               "{\"type\":\"bind\",\"source\":\"/etc/hosts\",\"target\":\"/h\",\"readonly\":true}],"
               "\"network\":\"st_back\","
               "\"healthcheck\":{\"cmd\":\"wget -q 'http://localhost/a b'\",\"interval_ms\":5000,"
               "\"timeout_ms\":1000,\"retries\":2,\"start_period_ms\":90000},"
               "\"secrets\":[{\"source\":\"st_db_pw\",\"target\":\"db_pw\"},"
               "{\"source\":\"st_db_pw\",\"target\":\"other\",\"mode\":256}],"
               "\"configs\":[{\"source\":\"st_conf\",\"target\":\"/etc/app.conf\"}],"
               "\"mode\":\"replicated\",\"replicas\":3,"
               "\"constraints\":[\"node.role==manager\",\"node.labels.disk!=hdd\"],"
               "\"limits\":{\"cpus\":0.5,\"memory\":67108864},"
               "\"reservations\":{\"cpus\":0.25,\"memory\":33554432},"
               "\"restart_condition\":\"on-failure\",\"restart_delay_ms\":500,"
               "\"update_config\":{\"parallelism\":2,\"delay_ms\":10000,"
               "\"failure_action\":\"rollback\",\"monitor_ms\":30000,"
               "\"max_failure_ratio\":0.5,\"order\":\"start-first\"},"
               "\"rollback_config\":{\"parallelism\":0,\"failure_action\":\"continue\"},"
               "\"labels\":{\"com.docker.stack.namespace\":\"st\",\"traefik.enable\":\"true\"}}");
    check_json(json_object_get(plan, "networks"),
               "[{\"name\":\"st_back\",\"subnet\":\"10.77.0.0/16\"}]");
    check_json(json_object_get(plan, "secrets"),
               "[{\"name\":\"st_db_pw\",\"file\":\"/srv/app/pw.txt\"}]");
    check_json(json_object_get(plan, "configs"), "[{\"name\":\"st_conf\",\"data\":\"hello\"}]");
    json_decref(plan);
}

TEST(compose_environment_list_and_shell_value)
{
    setenv("COMPOSE_T_FROM_SHELL", "yes", 1);
    unsetenv("COMPOSE_T_NOT_SET");
    json_t *plan = must_plan("services:\n"
                             "  a:\n"
                             "    image: busybox\n"
                             "    environment:\n"
                             "      - A=1\n"
                             "      - COMPOSE_T_FROM_SHELL\n"
                             "      - COMPOSE_T_NOT_SET\n"
                             "      - A=2\n");
    check_json(json_object_get(service(plan, "st_a"), "env"),
               "[\"COMPOSE_T_FROM_SHELL=yes\",\"A=2\"]");
    json_decref(plan);
}

TEST(compose_env_file_then_environment)
{
    char dir[] = "/tmp/compose_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *file = xasprintf("%s/app.env", dir);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    fputs("# comment\n\nA=from_file\nB=b\n", f);
    fclose(f);
    const char *yaml = "services:\n  a:\n    image: busybox\n    env_file: app.env\n"
                       "    environment: {A: override}\n";
    json_t *doc, *plan;
    struct serr err = {0};
    CHECK(compose_parse(yaml, strlen(yaml), "c.yml", &doc, &err) == 0);
    CHECK(compose_convert(doc, "st", dir, &plan, &err) == 0);
    check_json(json_object_get(service(plan, "st_a"), "env"), "[\"B=b\",\"A=override\"]");
    json_decref(doc);
    json_decref(plan);
    unlink(file);
    rmdir(dir);
    free(file);
}

TEST(compose_interpolation_forms)
{
    setenv("COMPOSE_T_SET", "v", 1);
    setenv("COMPOSE_T_EMPTY", "", 1);
    unsetenv("COMPOSE_T_UNSET");
    json_t *plan = must_plan("services:\n"
                             "  a:\n"
                             "    image: busybox\n"
                             "    environment:\n"
                             "      - P=$COMPOSE_T_SET/${COMPOSE_T_SET}\n"
                             "      - Q=${COMPOSE_T_EMPTY:-d1}${COMPOSE_T_EMPTY-d2}\n"
                             "      - R=${COMPOSE_T_UNSET-d3}x$${NOT}\n"
                             "      - S=${COMPOSE_T_SET:?must}\n"
                             "      - T=${COMPOSE_T_UNSET:-${COMPOSE_T_SET}-$$x}}\n");
    check_json(json_object_get(service(plan, "st_a"), "env"),
               "[\"P=v/v\",\"Q=d1\",\"R=d3x${NOT}\",\"S=v\",\"T=v-$x}\"]");
    json_decref(plan);
    const char *msg = must_fail("services:\n  a:\n    image: busybox\n    command: "
                                "${COMPOSE_T_UNSET:-${COMPOSE_T_UNSET:-${COMPOSE_T_UNSET:-"
                                "${COMPOSE_T_UNSET:-${COMPOSE_T_UNSET:-${COMPOSE_T_UNSET:-"
                                "${COMPOSE_T_UNSET:-${COMPOSE_T_UNSET:-${COMPOSE_T_UNSET:-x"
                                "}}}}}}}}}\n");
    CHECK_STR(msg, "c.yml:4: interpolation nested too deeply");
    msg = must_fail("services:\n  a:\n    image: ${COMPOSE_T_UNSET:?set the tag}\n");
    CHECK(strstr(msg, "c.yml:3") != NULL);
    CHECK(strstr(msg, "set the tag") != NULL);
}

TEST(compose_unknown_key_names_file_line_and_key)
{
    const char *msg = must_fail("version: '3'\n"
                                "services:\n"
                                "  web:\n"
                                "    image: busybox\n"
                                "    deploy:\n"
                                "      replicas: 2\n"
                                "      bogus: 1\n");
    CHECK_STR(msg, "c.yml:7: services.web.deploy.bogus: unknown key");
    msg = must_fail("services:\n  web:\n    image: busybox\n    imag: typo\n");
    CHECK_STR(msg, "c.yml:4: services.web.imag: unknown key");
    msg = must_fail("services:\n  web:\n    image: busybox\n    deploy:\n      resources:\n"
                    "        reservations: {cpus: '1', memory: 0}\n");
    CHECK(strstr(msg, "c.yml:6: services.web.deploy.resources.reservations.memory: ") == msg);
    msg = must_fail("services:\n  web:\n    image: busybox\n    extra_hosts: [a:1.2.3.4]\n");
    CHECK_STR(msg, "c.yml:4: services.web.extra_hosts: not supported by shoal");
    msg = must_fail("services:\n  web:\n    image: busybox\nfoo: 1\n");
    CHECK_STR(msg, "c.yml:4: foo: unknown key");
}

TEST(compose_bad_values_name_their_key)
{
    const char *msg = must_fail("services:\n  web:\n    image: busybox\n    deploy:\n"
                                "      replicas: many\n");
    CHECK(strstr(msg, "c.yml:5: services.web.deploy.replicas:") == msg);
    msg = must_fail("services:\n  web:\n    image: busybox\n    ports: ['80/sctp']\n");
    CHECK(strstr(msg, "c.yml:4: services.web.ports:") == msg);
    msg = must_fail("services:\n  web:\n    image: busybox\n    volumes: [data:/d]\n");
    CHECK(strstr(msg, "not declared") != NULL);
    msg = must_fail("services:\n  web:\n    image: busybox\n    secrets: [pw]\n");
    CHECK(strstr(msg, "c.yml:4: services.web.secrets:") == msg);
    msg = must_fail("services:\n  web:\n    command: ls\n");
    CHECK(strstr(msg, "needs an image") != NULL);
    msg = must_fail("services:\n  web:\n    image: busybox\n    networks: [a, b]\n"
                    "networks: {a: {}, b: {}}\n");
    CHECK(strstr(msg, "exactly one network") != NULL);
    msg = must_fail("services:\n  web:\n    image: busybox\n  web:\n    image: x\n");
    CHECK(strstr(msg, "c.yml:4: duplicate key") == msg);
    msg = must_fail("services:\n  web: [\n");
    CHECK(strstr(msg, "c.yml:") == msg);
    msg = must_fail("services:\n  a_service_name_that_is_quite_long_enough_to_pass_sixty_three_chars:\n"
                    "    image: busybox\n");
    CHECK(strstr(msg, "c.yml:2: services.a_service") == msg && strstr(msg, "longer than 63"));
    /* deploy.labels cannot take the service out of its stack */
    json_t *plan = must_plan("services:\n  a:\n    image: busybox\n    deploy:\n      labels:\n"
                             "        com.docker.stack.namespace: other\n        team: x\n");
    check_json(json_object_get(service(plan, "st_a"), "labels"),
               "{\"com.docker.stack.namespace\":\"st\",\"team\":\"x\"}");
    json_decref(plan);
}

TEST(compose_ignored_keys_warn)
{
    json_t *plan = must_plan("services:\n"
                             "  web:\n"
                             "    build: .\n"
                             "    image: busybox\n"
                             "    depends_on: [db]\n"
                             "    x-note: extension fields are skipped\n"
                             "  db:\n"
                             "    image: busybox\n");
    json_t *w = json_object_get(plan, "warnings");
    CHECK(json_array_size(w) == 2);
    CHECK(strstr(json_string_value(json_array_get(w, 0)), "c.yml:3: services.web.build") != NULL);
    json_decref(plan);
}

TEST(compose_merge_two_files)
{
    const char *base = "services:\n"
                       "  web:\n"
                       "    image: busybox\n"
                       "    environment: [A=1, B=2]\n"
                       "    deploy:\n"
                       "      replicas: 1\n"
                       "  db:\n"
                       "    image: busybox\n";
    const char *over = "services:\n"
                       "  web:\n"
                       "    image: busybox:2\n"
                       "    environment:\n"
                       "      B: three\n"
                       "    deploy:\n"
                       "      replicas: 4\n"
                       "      bogus: x\n";
    json_t *a, *b, *plan;
    struct serr err = {0};
    CHECK(compose_parse(base, strlen(base), "base.yml", &a, &err) == 0);
    CHECK(compose_parse(over, strlen(over), "over.yml", &b, &err) == 0);
    compose_merge(a, b);
    CHECK(compose_convert(a, "st", ".", &plan, &err) < 0);
    CHECK_STR(err.msg, "over.yml:8: services.web.deploy.bogus: unknown key");
    json_object_del(json_object_get(json_object_get(json_object_get(a, "services"), "web"),
                                    "deploy"),
                    "bogus");
    CHECK(compose_convert(a, "st", ".", &plan, &err) == 0);
    json_t *web = service(plan, "st_web");
    CHECK_STR(str_at(web, "image"), "busybox:2");
    check_json(json_object_get(web, "env"), "[\"A=1\",\"B=three\"]");
    CHECK(json_integer_value(json_object_get(web, "replicas")) == 4);
    CHECK(service(plan, "st_db") != NULL);
    json_decref(plan);
    json_decref(a);
    json_decref(b);
}

TEST(compose_external_and_named_objects)
{
    json_t *plan = must_plan("services:\n"
                             "  web:\n"
                             "    image: busybox\n"
                             "    networks: [front]\n"
                             "    secrets: [tls]\n"
                             "    volumes: [shared:/s, local:/l]\n"
                             "networks:\n"
                             "  front:\n"
                             "    external: true\n"
                             "volumes:\n"
                             "  shared: {name: the_shared}\n"
                             "  local: {}\n"
                             "secrets:\n"
                             "  tls: {external: true}\n");
    json_t *web = service(plan, "st_web");
    CHECK_STR(str_at(web, "network"), "front");
    CHECK_STR(str_at(json_array_get(json_object_get(web, "secrets"), 0), "source"), "tls");
    CHECK_STR(str_at(json_array_get(json_object_get(web, "mounts"), 0), "source"), "the_shared");
    CHECK_STR(str_at(json_array_get(json_object_get(web, "mounts"), 1), "source"), "st_local");
    CHECK(json_array_size(json_object_get(plan, "networks")) == 0);
    CHECK(json_array_size(json_object_get(plan, "secrets")) == 0);
    json_decref(plan);
}

TEST(compose_volume_labels_give_a_backup_policy)
{
    json_t *plan = must_plan("services:\n"
                             "  db:\n"
                             "    image: busybox\n"
                             "    volumes: [data:/data, plain:/p, listed:/l]\n"
                             "volumes:\n"
                             "  data:\n"
                             "    labels:\n"
                             "      shoal.backup: daily\n"
                             "      shoal.backup.keep: \"7\"\n"
                             "      shoal.backup.hook: \"dump > /data/db.sql\"\n"
                             "      tier: db\n"
                             "  plain: {}\n"
                             "  listed:\n"
                             "    labels: [shoal.backup=6h, shoal.schedule=x,\n"
                             "             shoal.max-concurrent=y]\n"
                             "  unused:\n"
                             "    labels: {shoal.backup: daily}\n");
    json_t *vols = json_object_get(plan, "volumes");
    CHECK(json_array_size(vols) == 2); /* plain has no labels: its service makes it */
    json_t *data = json_array_get(vols, 0), *backup = json_object_get(data, "backup");
    CHECK_STR(str_at(data, "name"), "st_data");
    CHECK_STR(str_at(backup, "schedule"), "daily");
    CHECK(json_integer_value(json_object_get(backup, "keep")) == 7);
    CHECK_STR(str_at(backup, "hook"), "dump > /data/db.sql");
    json_t *labels = json_object_get(data, "labels");
    CHECK_STR(str_at(labels, "tier"), "db");
    CHECK_STR(str_at(labels, "shoal.backup"), "daily");
    CHECK_STR(str_at(labels, COMPOSE_NAMESPACE_LABEL), "st");
    json_t *listed = json_array_get(vols, 1);
    CHECK_STR(str_at(listed, "name"), "st_listed");
    CHECK_STR(str_at(json_object_get(listed, "backup"), "schedule"), "6h");
    CHECK(json_object_get(json_object_get(listed, "backup"), "keep") == NULL);
    /* a service's deploy.labels that make it a job are a volume's labels only */
    CHECK_STR(str_at(json_object_get(listed, "labels"), "shoal.schedule"), "x");
    CHECK(json_object_get(listed, "schedule") == NULL);
    json_decref(plan);

    const char *msg = must_fail("services:\n  a: {image: busybox, volumes: [v:/v]}\n"
                                "volumes:\n  v:\n    labels: {shoal.backup.keep: \"3\"}\n");
    CHECK_STR(msg, "c.yml:5: volumes.v.labels: shoal.backup.keep and shoal.backup.hook need "
                   "shoal.backup: SCHEDULE");
    msg = must_fail("services:\n  a: {image: busybox, volumes: [v:/v]}\n"
                    "volumes:\n  v:\n    labels: {shoal.backup: daily, shoal.backup.keep: many}\n");
    CHECK_STR(msg, "c.yml:5: volumes.v.labels: shoal.backup.keep: \"many\" is not a number of "
                   "backups from 1 to 1000");
}

TEST(compose_global_mode_host_network_healthcheck_forms)
{
    json_t *plan = must_plan("services:\n"
                             "  agent:\n"
                             "    image: busybox\n"
                             "    network_mode: host\n"
                             "    healthcheck:\n"
                             "      test: [\"CMD-SHELL\", \"test -e /tmp/ok || exit 1\"]\n"
                             "    deploy: {mode: global}\n"
                             "  quiet:\n"
                             "    image: busybox\n"
                             "    healthcheck: {disable: true}\n");
    json_t *agent = service(plan, "st_agent");
    CHECK_STR(str_at(agent, "network"), "host");
    CHECK_STR(str_at(agent, "mode"), "global");
    CHECK_STR(str_at(json_object_get(agent, "healthcheck"), "cmd"), "test -e /tmp/ok || exit 1");
    CHECK(json_object_get(service(plan, "st_quiet"), "healthcheck") == NULL);
    json_decref(plan);
    const char *msg = must_fail("services:\n  a:\n    image: busybox\n"
                                "    deploy: {mode: global, replicas: 2}\n");
    CHECK(strstr(msg, "replicated mode") != NULL);
}

/* Container settings as service create's flags (--entrypoint, --hostname, --cap-add...). */
TEST(compose_container_settings)
{
    json_t *plan = must_plan("services:\n"
                             "  web:\n"
                             "    image: busybox\n"
                             "    entrypoint: /bin/sh -c\n"
                             "    command: [\"echo hi\"]\n"
                             "    hostname: web1\n"
                             "    user: \"1000:1000\"\n"
                             "    working_dir: /srv\n"
                             "    read_only: true\n"
                             "    stop_signal: SIGINT\n"
                             "    cap_add: [net_admin]\n"
                             "    cap_drop: [ALL]\n"
                             "    dns: 10.0.0.2\n"
                             "    sysctls: [net.core.somaxconn=1024]\n"
                             "    ulimits:\n"
                             "      nproc: 512\n"
                             "      nofile: {soft: 1024, hard: 4096}\n"
                             "    tmpfs: [/run, /tmp]\n"
                             "    labels: {tier: front}\n"
                             "    deploy:\n"
                             "      labels: {svc: web}\n"
                             "      placement:\n"
                             "        preferences: [{spread: node.labels.rack}]\n"
                             "        max_replicas_per_node: 2\n"
                             "      resources: {limits: {pids: 100}}\n");
    json_t *web = service(plan, "st_web");
    check_json(json_object_get(web, "entrypoint"), "[\"/bin/sh\",\"-c\"]");
    check_json(json_object_get(web, "args"), "[\"echo hi\"]");
    CHECK_STR(str_at(web, "hostname"), "web1");
    CHECK_STR(str_at(web, "user"), "1000:1000");
    CHECK_STR(str_at(web, "workdir"), "/srv");
    CHECK(json_is_true(json_object_get(web, "read_only")));
    CHECK_STR(str_at(web, "stop_signal"), "SIGINT");
    check_json(json_object_get(web, "cap_add"), "[\"CAP_NET_ADMIN\"]");
    check_json(json_object_get(web, "cap_drop"), "[\"ALL\"]");
    check_json(json_object_get(web, "dns"), "[\"10.0.0.2\"]");
    check_json(json_object_get(web, "sysctls"), "{\"net.core.somaxconn\":\"1024\"}");
    check_json(json_object_get(web, "ulimits"), "{\"nproc\":{\"soft\":512,\"hard\":512},"
                                                "\"nofile\":{\"soft\":1024,\"hard\":4096}}");
    json_t *mounts = json_object_get(web, "mounts");
    CHECK(json_array_size(mounts) == 2);
    CHECK_STR(str_at(json_array_get(mounts, 0), "type"), "tmpfs");
    CHECK_STR(str_at(json_array_get(mounts, 1), "target"), "/tmp");
    check_json(json_object_get(web, "container_labels"), "{\"tier\":\"front\"}");

    CHECK_STR(str_at(json_object_get(web, "labels"), "svc"), "web");
    check_json(json_object_get(web, "placement_preferences"),
               "[{\"spread\":\"node.labels.rack\"}]");
    CHECK(json_integer_value(json_object_get(web, "max_replicas_per_node")) == 2);
    CHECK(json_integer_value(json_object_get(json_object_get(web, "limits"), "pids")) == 100);
    json_decref(plan);
    plan = must_plan("services:\n  web:\n    image: busybox\n    volumes:\n"
                     "      - {type: tmpfs, target: /cache, tmpfs: {size: 64m}}\n");
    json_t *cache = json_array_get(json_object_get(service(plan, "st_web"), "mounts"), 0);
    CHECK_STR(str_at(cache, "type"), "tmpfs");
    CHECK_STR(str_at(cache, "target"), "/cache");
    CHECK(json_integer_value(json_object_get(cache, "tmpfs_size")) == 64 << 20);
    json_decref(plan);
}

/* Bad container settings name their key and value. */
TEST(compose_container_settings_errors)
{
#define SVC "services:\n  web:\n    image: busybox\n"
    CHECK_STR(must_fail(SVC "    working_dir: srv\n"),
              "c.yml:4: services.web.working_dir: invalid --workdir \"srv\": must be an "
              "absolute path");
    CHECK_STR(must_fail(SVC "    stop_signal: SIGNOPE\n"),
              "c.yml:4: services.web.stop_signal: \"SIGNOPE\" is not a signal name or number "
              "(SIGINT, TERM, 15)");
    CHECK(strstr(must_fail(SVC "    cap_add: [NOPE]\n"), "c.yml:4: services.web.cap_add: "
                                                         "invalid cap_add \"NOPE\"") != NULL);
    CHECK(strstr(must_fail(SVC "    dns: [dns.lan]\n"), "not an IP address") != NULL);
    CHECK(strstr(must_fail(SVC "    sysctls: {kernel.panic: 1}\n"),
                 "c.yml:4: services.web.sysctls: invalid sysctls") != NULL);
    CHECK_STR(must_fail(SVC "    ulimits: {nofile: {soft: 10}}\n"),
              "c.yml:4: services.web.ulimits: nofile: give a number or {soft: N, hard: M}");
    CHECK_STR(must_fail(SVC "    ulimits: {memlock: -1}\n"),
              "c.yml:4: services.web.ulimits: memlock: -1 (unlimited) is not supported by shoal");
    CHECK(strstr(must_fail(SVC "    tmpfs: run\n"), "c.yml:4: services.web.tmpfs: ") != NULL);
    CHECK_STR(must_fail(SVC "    deploy:\n      placement:\n        preferences: [{spread: "
                            "node.hostname}]\n"),
              "c.yml:6: services.web.deploy.placement.preferences: use a list of {spread: "
              "node.labels.KEY}");
    CHECK_STR(must_fail(SVC "    deploy: {resources: {limits: {pids: 0}}}\n"),
              "c.yml:4: services.web.deploy.resources.limits.pids: at least 1");
#undef SVC
}

/* A port given by its target only: the manager chooses the published one. */
TEST(compose_port_target_only)
{
    json_t *plan = must_plan("services:\n  web:\n    image: busybox\n"
                             "    ports: [\"3000\", {target: 53, protocol: udp}]\n");
    check_json(json_object_get(service(plan, "st_web"), "ports"),
               "[{\"target\":3000},{\"target\":53,\"protocol\":\"udp\"}]");
    json_decref(plan);
}

/* deploy.mode replicated-job (with replicas and a shoal.schedule label) and global-job. */
TEST(compose_job_modes_and_schedule)
{
    json_t *plan = must_plan("services:\n"
                             "  backup:\n"
                             "    image: busybox\n"
                             "    deploy:\n"
                             "      mode: replicated-job\n"
                             "      replicas: 3\n"
                             "      labels: {shoal.schedule: \"0 3 * * *\", shoal.max-concurrent: "
                             "\"2\"}\n"
                             "  prune:\n"
                             "    image: busybox\n"
                             "    deploy: {mode: global-job}\n");
    json_t *backup = service(plan, "st_backup");
    CHECK_STR(str_at(backup, "mode"), "replicated-job");
    CHECK(json_integer_value(json_object_get(backup, "replicas")) == 3);
    CHECK_STR(str_at(backup, "schedule"), "0 3 * * *");
    CHECK(json_integer_value(json_object_get(backup, "max_concurrent")) == 2);
    CHECK_STR(str_at(json_object_get(backup, "labels"), "shoal.schedule"), "0 3 * * *");
    CHECK_STR(str_at(service(plan, "st_prune"), "mode"), "global-job");
    CHECK(json_object_get(service(plan, "st_prune"), "schedule") == NULL);
    json_decref(plan);
    const char *msg = must_fail("services:\n  a:\n    image: busybox\n"
                                "    deploy: {mode: global-job, replicas: 2}\n");
    CHECK(strstr(msg, "replicated mode") != NULL);
    msg = must_fail("services:\n  a:\n    image: busybox\n"
                    "    deploy: {labels: [shoal.schedule=@daily]}\n");
    CHECK_STR(msg, "c.yml:2: services.a: deploy.labels.shoal.schedule needs deploy.mode: "
                   "replicated-job");
    msg = must_fail("services:\n  a:\n    image: busybox\n"
                    "    deploy: {labels: {shoal.max-concurrent: \"2\"}}\n");
    CHECK_STR(msg, "c.yml:2: services.a: deploy.labels.shoal.max-concurrent needs deploy.mode: "
                   "replicated-job or global-job");
    msg = must_fail("services:\n  a:\n    image: busybox\n"
                    "    deploy: {mode: global-job, labels: {shoal.max-concurrent: \"0\"}}\n");
    CHECK_STR(msg, "c.yml:4: services.a.deploy.labels: shoal.max-concurrent: at least 1");
    msg = must_fail("services:\n  a:\n    image: busybox\n    deploy: {mode: job}\n");
    CHECK_STR(msg, "c.yml:4: services.a.deploy.mode: \"job\" is not one of replicated, global, "
                   "replicated-job, global-job");
}

/* deploy: sections as public examples write them (docker docs, awesome-compose). */
TEST(compose_real_world_deploy_sections)
{
    json_t *plan = must_plan("version: \"3.9\"\n"
                             "services:\n"
                             "  redis:\n"
                             "    image: redis:alpine\n"
                             "    deploy:\n"
                             "      replicas: 6\n"
                             "      update_config:\n"
                             "        parallelism: 2\n"
                             "        delay: 10s\n"
                             "      restart_policy:\n"
                             "        condition: on-failure\n"
                             "  visualizer:\n"
                             "    image: dockersamples/visualizer:stable\n"
                             "    ports:\n"
                             "      - \"8080:8080\"\n"
                             "    stop_grace_period: 1m30s\n"
                             "    volumes:\n"
                             "      - \"/var/run/docker.sock:/var/run/docker.sock\"\n"
                             "    deploy:\n"
                             "      placement:\n"
                             "        constraints:\n"
                             "          - \"node.role==manager\"\n");
    CHECK(json_integer_value(json_object_get(service(plan, "st_redis"), "replicas")) == 6);
    json_decref(plan);
    /* the voting app's worker: max_attempts and window */
    plan = must_plan("version: \"3.9\"\n"
                     "services:\n"
                     "  worker:\n"
                     "    image: dockersamples/examplevotingapp_worker\n"
                     "    deploy:\n"
                     "      mode: replicated\n"
                     "      replicas: 1\n"
                     "      labels: [APP=VOTING]\n"
                     "      restart_policy:\n"
                     "        condition: on-failure\n"
                     "        delay: 10s\n"
                     "        max_attempts: 3\n"
                     "        window: 120s\n");
    json_t *worker = service(plan, "st_worker");
    CHECK(json_integer_value(json_object_get(worker, "restart_max_attempts")) == 3);
    CHECK(json_integer_value(json_object_get(worker, "restart_window_ms")) == 120000);
    json_decref(plan);
}

/* ---- deploying again: stack_service_patch (src/cli/stack_diff.c) ---- */

static json_t *patch_between(const char *stored, const char *wanted, const char **why)
{
    json_t *old = json_loads(stored, 0, NULL), *new = json_loads(wanted, 0, NULL), *patch;
    CHECK(old != NULL && new != NULL);
    stack_service_patch(old, new, &patch, why);
    json_decref(old);
    json_decref(new);
    return patch;
}

/* A spec as the daemon stores it (its defaults filled in). */
#define STORED                                                                                     \
    "{\"name\":\"st_app\",\"labels\":{\"com.docker.stack.namespace\":\"st\"},"                   \
    "\"secrets\":[{\"source\":\"st_pw\",\"id\":\"605f\",\"target\":\"/run/secrets/pw\","          \
    "\"uid\":\"0\",\"gid\":\"0\",\"mode\":292}],\"image\":\"busybox:latest\","                   \
    "\"args\":[\"sleep\",\"1000\"],\"env\":[\"MODE=prod\",\"X=1\"],\"network\":\"st_default\","  \
    "\"mode\":\"replicated\",\"replicas\":1,\"mounts\":[],\"constraints\":[\"node.role==manager\"],"\
    "\"restart_condition\":\"any\",\"restart_delay_ms\":1000,\"stop_grace_period_ms\":10000,"      \
    "\"init\":false,\"ports\":[{\"published\":80,\"target\":8080,\"protocol\":\"tcp\","           \
    "\"mode\":\"ingress\"}],\"update_config\":{\"parallelism\":1,\"delay_ms\":0}}"

#define WANTED_HEAD                                                                                \
    "{\"name\":\"st_app\",\"labels\":{\"com.docker.stack.namespace\":\"st\"},"                   \
    "\"secrets\":[{\"source\":\"st_pw\",\"target\":\"pw\"}],\"network\":\"st_default\","

TEST(stack_patch_nothing_changed)
{
    const char *why;
    json_t *patch = patch_between(STORED, WANTED_HEAD "\"image\":\"busybox\","
                                          "\"args\":[\"sleep\",\"1000\"],"
                                          "\"env\":[\"MODE=prod\",\"X=1\"],"
                                          "\"constraints\":[\"node.role==manager\"],"
                                          "\"ports\":[{\"published\":80,\"target\":8080}]}",
                                  &why);
    CHECK(why == NULL);
    check_json(patch, "{}");
    json_decref(patch);
    /* a pulled tag pinned to its digest by the leader is the same tag */
    patch = patch_between("{\"name\":\"a\",\"image\":\"nginx:1.25@sha256:0123\"}",
                          "{\"name\":\"a\",\"image\":\"nginx:1.25\"}", &why);
    check_json(patch, "{}");
    json_decref(patch);
    patch = patch_between("{\"name\":\"a\",\"image\":\"nginx:1.25@sha256:0123\"}",
                          "{\"name\":\"a\",\"image\":\"nginx@sha256:4567\"}", &why);
    check_json(patch, "{\"image\":\"nginx@sha256:4567\"}");
    json_decref(patch);
}

TEST(stack_patch_changes)
{
    const char *why;
    json_t *patch = patch_between(STORED, WANTED_HEAD "\"image\":\"busybox:2\","
                                          "\"replicas\":3,"
                                          "\"env\":[\"MODE=canary\"],"
                                          "\"constraints\":[\"node.labels.ssd==1\"],"
                                          "\"healthcheck\":{\"cmd\":\"true\"},"
                                          "\"ports\":[{\"published\":81,\"target\":8080}]}",
                                  &why);
    CHECK(why == NULL);
    check_json(patch, "{\"image\":\"busybox:2\",\"replicas\":3,\"args\":[],"
                      "\"env_rm\":[\"MODE\",\"X\"],\"env_add\":[\"MODE=canary\"],"
                      "\"constraints_rm\":[\"node.role==manager\"],"
                      "\"constraints_add\":[\"node.labels.ssd==1\"],"
                      "\"healthcheck\":{\"cmd\":\"true\",\"interval_ms\":30000,"
                      "\"timeout_ms\":30000,\"retries\":3,\"start_period_ms\":0},"
                      "\"publish_rm\":[\"80/tcp\"],\"publish_add\":[{\"published\":81,"
                      "\"target\":8080,\"protocol\":\"tcp\",\"mode\":\"ingress\"}]}");
    json_decref(patch);
    /* a mount or the network cannot be patched: the service is replaced */
    patch = patch_between(STORED, WANTED_HEAD "\"image\":\"busybox\",\"mounts\":[{\"type\":"
                                  "\"volume\",\"source\":\"d\",\"target\":\"/d\"}]}",
                          &why);
    CHECK_STR(why, "mounts");
    json_decref(patch);
}

/* ---- the conformance set: the .yml files of tests/compose, each saying what it expects ---- */

static void check_conformance_file(const char *path)
{
    char *text = NULL;
    size_t len;
    struct serr err = {0};
    CHECK(read_file(path, &text, &len, &err) == 0);
    char expect[512];
    snprintf(expect, sizeof(expect), "%.*s", (int)strcspn(text, "\n"), text);
    free(text);
    json_t *plan = NULL;
    const char *files[] = {path};
    int rc = compose_load_files(files, 1, "t", &plan, &err);
    int warnings = 0;
    if (strncmp(expect, "# expect: error ", 16) == 0) {
        if (rc == 0 || strncmp(err.msg, expect + 16, strlen(expect + 16)) != 0)
            fprintf(stderr, "%s: got \"%s\"\n", path, rc == 0 ? "ok" : err.msg);
        CHECK(rc < 0 && strncmp(err.msg, expect + 16, strlen(expect + 16)) == 0);
        return;
    }
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", path, err.msg);
    CHECK(rc == 0);
    CHECK(strncmp(expect, "# expect: ok", 12) == 0);
    sscanf(expect, "# expect: ok, %d warnings", &warnings);
    if (json_array_size(json_object_get(plan, "warnings")) != (size_t)warnings) {
        char *w = json_dumps(json_object_get(plan, "warnings"), JSON_INDENT(1));
        fprintf(stderr, "%s: warnings %s\n", path, w);
        free(w);
    }
    CHECK(json_array_size(json_object_get(plan, "warnings")) == (size_t)warnings);
    CHECK(json_array_size(json_object_get(plan, "services")) > 0);
    json_decref(plan);
}

TEST(compose_conformance)
{
    DIR *dir = opendir("tests/compose");
    CHECK(dir != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".yml") != 0)
            continue;
        char *path = xasprintf("tests/compose/%s", e->d_name);
        check_conformance_file(path);
        free(path);
        n++;
    }
    closedir(dir);
    CHECK(n >= 12);
}

TEST(compose_merge_keys_are_copies_and_aliases_bounded)
{
    const char *base = "x-d: &d\n"
                       "  deploy: {replicas: 1}\n"
                       "services:\n"
                       "  a: {<<: *d, image: busybox}\n"
                       "  b: {<<: *d, image: busybox}\n";
    const char *over = "services:\n  a: {deploy: {replicas: 5}}\n";
    json_t *x, *y, *plan;
    struct serr err = {0};
    CHECK(compose_parse(base, strlen(base), "base.yml", &x, &err) == 0);
    CHECK(compose_parse(over, strlen(over), "over.yml", &y, &err) == 0);
    compose_merge(x, y);
    CHECK(compose_convert(x, "st", ".", &plan, &err) == 0);
    CHECK(json_integer_value(json_object_get(service(plan, "st_a"), "replicas")) == 5);
    CHECK(json_integer_value(json_object_get(service(plan, "st_b"), "replicas")) == 1);
    json_decref(plan);
    json_decref(x);
    json_decref(y);
    /* ten levels of ten aliases each: 10^10 nodes once expanded */
    char yaml[4096] = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i <= 10; i++) {
        size_t n = strlen(yaml);
        snprintf(yaml + n, sizeof(yaml) - n, "a%d: &a%d [", i, i);
        for (int j = 0; j < 10; j++) {
            n = strlen(yaml);
            snprintf(yaml + n, sizeof(yaml) - n, "%s*a%d", j ? ", " : "", i - 1);
        }
        n = strlen(yaml);
        snprintf(yaml + n, sizeof(yaml) - n, "]\n");
    }
    CHECK(compose_parse(yaml, strlen(yaml), "laughs.yml", &x, &err) < 0);
    CHECK(strstr(err.msg, "too large") != NULL);
}

TEST(compose_top_level_errors_name_the_object)
{
    const char *msg = must_fail("services:\n  a: {image: busybox, networks: [n]}\n"
                                "networks:\n  n:\n    driver: bridge\n");
    CHECK_STR(msg, "c.yml:5: networks.n.driver: only the overlay driver (shoal networks span the "
                   "cluster)");
    msg = must_fail("services:\n  a: {image: busybox}\nvolumes:\n  v:\n    driver: nfs\n");
    CHECK_STR(msg, "c.yml:5: volumes.v.driver: only the local driver");
    msg = must_fail("services:\n  a: {image: busybox}\nsecrets:\n  s:\n    environment: X\n");
    CHECK_STR(msg, "c.yml:5: secrets.s.environment: not supported by shoal");
    msg = must_fail("services:\n  a: {image: busybox}\nconfigs:\n  c: {}\n");
    CHECK(strstr(msg, "c.yml:4: configs.c: needs file:") == msg);
}

TEST(stack_patch_rollback_config)
{
    const char *why;
    /* stored with the manager's defaults: the same config again is no change */
    json_t *patch = patch_between(
        "{\"name\":\"a\",\"image\":\"b\",\"rollback_config\":{\"order\":\"start-first\","
        "\"parallelism\":1,\"delay_ms\":0}}",
        "{\"name\":\"a\",\"image\":\"b\",\"rollback_config\":{\"order\":\"start-first\"}}", &why);
    CHECK(why == NULL);
    check_json(patch, "{}");
    json_decref(patch);
    patch = patch_between("{\"name\":\"a\",\"image\":\"b\"}",
                          "{\"name\":\"a\",\"image\":\"b\",\"rollback_config\":{\"parallelism\":0}}",
                          &why);
    check_json(patch, "{\"rollback_config\":{\"parallelism\":0,\"delay_ms\":0}}");
    json_decref(patch);
}

TEST(stack_patch_job_modes)
{
    const char *why;
    /* a scheduled job stored with the manager's defaults is no change */
    json_t *patch = patch_between(
        "{\"name\":\"a\",\"image\":\"b\",\"mode\":\"replicated-job\",\"replicas\":1,"
        "\"restart_condition\":\"none\",\"schedule\":\"0 3 * * *\",\"schedule_tz\":\"UTC\","
        "\"schedule_overlap\":\"skip\"}",
        "{\"name\":\"a\",\"image\":\"b\",\"mode\":\"replicated-job\",\"schedule\":\"0 3 * * *\"}",
        &why);
    CHECK(why == NULL);
    check_json(patch, "{}");
    json_decref(patch);
    patch = patch_between("{\"name\":\"a\",\"image\":\"b\",\"mode\":\"global-job\","
                          "\"restart_condition\":\"none\"}",
                          "{\"name\":\"a\",\"image\":\"b\",\"mode\":\"global-job\"}", &why);
    CHECK(why == NULL);
    json_decref(patch);
    patch = patch_between("{\"name\":\"a\",\"image\":\"b\",\"mode\":\"replicated-job\","
                          "\"schedule\":\"0 3 * * *\"}",
                          "{\"name\":\"a\",\"image\":\"b\",\"mode\":\"replicated-job\","
                          "\"schedule\":\"0 4 * * *\"}",
                          &why);
    CHECK_STR(why, "schedule");
    json_decref(patch);
    /* a CRON_TZ= prefix is stored split */
    patch = patch_between("{\"name\":\"a\",\"image\":\"b\",\"mode\":\"replicated-job\","
                          "\"schedule\":\"0 3 * * *\",\"schedule_tz\":\"Europe/Paris\"}",
                          "{\"name\":\"a\",\"image\":\"b\",\"mode\":\"replicated-job\","
                          "\"schedule\":\"CRON_TZ=Europe/Paris 0 3 * * *\"}",
                          &why);
    CHECK(why == NULL);
    json_decref(patch);
}

TEST(stack_patch_container_settings_replace)
{
    const char *why;
    json_t *patch = patch_between("{\"name\":\"a\",\"image\":\"b\",\"hostname\":\"h\","
                                  "\"ulimits\":{\"nproc\":{\"soft\":5,\"hard\":5}}}",
                                  "{\"name\":\"a\",\"image\":\"b\",\"hostname\":\"h\","
                                  "\"ulimits\":{\"nproc\":{\"soft\":5,\"hard\":5}}}",
                                  &why);
    CHECK(why == NULL);
    check_json(patch, "{}");
    json_decref(patch);
    patch = patch_between("{\"name\":\"a\",\"image\":\"b\",\"hostname\":\"h\"}",
                          "{\"name\":\"a\",\"image\":\"b\"}", &why);
    CHECK_STR(why, "hostname");
    json_decref(patch);
    patch = patch_between("{\"name\":\"a\",\"image\":\"b\"}",
                          "{\"name\":\"a\",\"image\":\"b\",\"placement_preferences\":"
                          "[{\"spread\":\"node.labels.rack\"}]}",
                          &why);
    CHECK_STR(why, "placement_preferences");
    json_decref(patch);
}

TEST(stack_patch_port_target_only_keeps_the_chosen_port)
{
    const char *why;
    const char *stored = "{\"name\":\"a\",\"image\":\"b\",\"ports\":[{\"published\":30000,"
                         "\"target\":3000,\"protocol\":\"tcp\",\"mode\":\"ingress\"}]}";
    json_t *patch = patch_between(
        stored, "{\"name\":\"a\",\"image\":\"b\",\"ports\":[{\"target\":3000}]}", &why);
    CHECK(why == NULL);
    check_json(patch, "{}");
    json_decref(patch);
    patch = patch_between(stored, "{\"name\":\"a\",\"image\":\"b\",\"ports\":[{\"target\":3001}]}",
                          &why);
    CHECK(json_array_size(json_object_get(patch, "publish_add")) == 1);
    json_decref(patch);
}
