/* CLI command lines -> API JSON, without a daemon. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "unit.h"

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
#define SPEC(err, spec, detach, ...)                                                               \
    cli_build_service_spec(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), spec, detach, err)

static const char *str_at(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

TEST(cli_mount_parsing)
{
    json_t *m;
    struct serr err;
    CHECK(cli_parse_mount("type=bind,src=/srv,dst=/www,readonly", &m, &err) == 0);
    CHECK_STR(str_at(m, "type"), "bind");
    CHECK_STR(str_at(m, "source"), "/srv");
    CHECK_STR(str_at(m, "target"), "/www");
    CHECK(json_is_true(json_object_get(m, "readonly")));
    json_decref(m);
    CHECK(cli_parse_mount("type=volume,source=data,destination=/data,ro=false", &m, &err) == 0);
    CHECK_STR(str_at(m, "source"), "data");
    CHECK(json_is_false(json_object_get(m, "readonly")));
    json_decref(m);
    CHECK(cli_parse_mount("type=bind,src=/a", &m, &err) < 0);
    CHECK(strstr(err.msg, "target") != NULL);
    CHECK(cli_parse_mount("type=tmpfs,dst=/a,tmpfs-size=64m,tmpfs-mode=1770", &m, &err) == 0);
    CHECK_STR(str_at(m, "type"), "tmpfs");
    CHECK(json_integer_value(json_object_get(m, "tmpfs_size")) == 64 * 1024 * 1024);
    CHECK(json_integer_value(json_object_get(m, "tmpfs_mode")) == 01770);
    CHECK(json_object_get(m, "source") == NULL);
    json_decref(m);
    CHECK(cli_parse_mount("type=tmpfs,src=/x,dst=/a", &m, &err) < 0);
    CHECK(strstr(err.msg, "no source") != NULL);
    CHECK(cli_parse_mount("type=tmpfs,dst=/a,tmpfs-size=lots", &m, &err) < 0);
    CHECK(strstr(err.msg, "tmpfs-size") != NULL);
    CHECK(cli_parse_mount("type=tmpfs,dst=/a,tmpfs-mode=9", &m, &err) < 0);
    CHECK(cli_parse_mount("type=bind,src=/a,dst=/b,tmpfs-size=1m", &m, &err) < 0);
    CHECK(cli_parse_mount("type=nfs,dst=/a", &m, &err) < 0);
    CHECK(strstr(err.msg, "bind, volume or tmpfs") != NULL);
    CHECK(cli_parse_mount("type=bind,src=/a,dst=/b,color=red", &m, &err) < 0);
    CHECK(strstr(err.msg, "unknown key \"color\"") != NULL);
    CHECK(cli_parse_mount("type=bind,src=rel,dst=/b", &m, &err) < 0);
    CHECK(cli_parse_mount("type=volume,src=a/b,dst=/b", &m, &err) < 0);
    CHECK(cli_parse_mount("type=bind,src=/a,dst=/b,readonly=maybe", &m, &err) < 0);
    CHECK(cli_parse_mount("", &m, &err) < 0);
}

TEST(cli_service_spec_full)
{
    json_t *spec;
    bool detach;
    struct serr err;
    setenv("SHOAL_TEST_PASS", "through", 1);
    CHECK(SPEC(&err, &spec, &detach, "create", "--name", "web", "--replicas", "3", "-e", "A=1",
               "--env", "SHOAL_TEST_PASS", "--env", "SHOAL_TEST_UNSET_XYZ",
               "--mount", "type=volume,src=data,dst=/data", "--restart-condition", "on-failure",
               "--restart-delay", "1500ms", "--limit-cpu", "0.5", "--limit-memory", "64M",
               "--reserve-memory", "32M",
               "--init", "--constraint", "node.role==manager", "--stop-grace-period", "3s",
               "--update-parallelism", "2", "--update-delay", "1m", "-d", "--with-registry-auth",
               "busybox:latest",
               "httpd", "-f", "-p", "8080") == 0);
    CHECK(detach);
    CHECK_STR(str_at(spec, "name"), "web");
    CHECK(json_integer_value(json_object_get(spec, "replicas")) == 3);
    CHECK_STR(str_at(spec, "image"), "busybox:latest");
    json_t *args = json_object_get(spec, "args");
    CHECK(json_array_size(args) == 4);
    CHECK_STR(json_string_value(json_array_get(args, 2)), "-p");
    json_t *env = json_object_get(spec, "env");
    CHECK(json_array_size(env) == 2); /* the unset variable is skipped */
    CHECK_STR(json_string_value(json_array_get(env, 1)), "SHOAL_TEST_PASS=through");
    CHECK_STR(str_at(json_array_get(json_object_get(spec, "mounts"), 0), "target"), "/data");
    CHECK_STR(str_at(spec, "restart_condition"), "on-failure");
    CHECK(json_integer_value(json_object_get(spec, "restart_delay_ms")) == 1500);
    json_t *limits = json_object_get(spec, "limits");
    CHECK(json_real_value(json_object_get(limits, "cpus")) == 0.5);
    CHECK(json_integer_value(json_object_get(limits, "memory")) == 64 * 1024 * 1024);
    CHECK(json_integer_value(json_object_get(json_object_get(spec, "reservations"), "memory")) ==
          32 * 1024 * 1024);
    CHECK(json_is_true(json_object_get(spec, "init")));
    CHECK_STR(json_string_value(json_array_get(json_object_get(spec, "constraints"), 0)),
              "node.role==manager");
    CHECK(json_integer_value(json_object_get(spec, "stop_grace_period_ms")) == 3000);
    json_t *uc = json_object_get(spec, "update_config");
    CHECK(json_integer_value(json_object_get(uc, "parallelism")) == 2);
    CHECK(json_integer_value(json_object_get(uc, "delay_ms")) == 60000);
    json_decref(spec);
}

TEST(cli_service_spec_minimal_and_options_stop_at_image)
{
    json_t *spec;
    bool detach;
    struct serr err;
    /* Flags after IMAGE belong to the command. */
    CHECK(SPEC(&err, &spec, &detach, "create", "busybox", "sh", "-c", "--replicas 3") == 0);
    CHECK(!detach);
    CHECK(json_object_get(spec, "replicas") == NULL);
    CHECK(json_object_get(spec, "env") == NULL && json_object_get(spec, "mounts") == NULL);
    CHECK(json_array_size(json_object_get(spec, "args")) == 3);
    json_decref(spec);
    CHECK(SPEC(&err, &spec, &detach, "create", "--mode", "global", "busybox") == 0);
    CHECK_STR(str_at(spec, "mode"), "global");
    CHECK(json_object_get(spec, "args") == NULL);
    json_decref(spec);
    CHECK(SPEC(&err, &spec, &detach, "create", "--help") == 1);
}

TEST(cli_service_spec_errors)
{
    json_t *spec = NULL;
    bool detach;
    struct serr err;
    CHECK(SPEC(&err, &spec, &detach, "create") < 0);
    CHECK(strstr(err.msg, "IMAGE") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--replicas", "-1", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--replicas", "2x", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--replicas", "99999999999999999999", "b") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--replicas", "", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--mode", "global", "--replicas", "2", "b") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--mode", "both", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--limit-cpu", "0", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--limit-cpu", "nan", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--limit-memory", "lots", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--restart-delay", "10", "busybox") < 0);
    CHECK(strstr(err.msg, "--restart-delay") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--restart-condition", "always", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--constraint", "role=manager", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--mount", "type=bind,dst=/a", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "-e", "=x", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--bogus", "busybox") < 0);
    CHECK(strstr(err.msg, "unknown flag: --bogus") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "-x", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "busybox", "--name") == 0); /* a CMD argument */
    json_decref(spec);
    CHECK(SPEC(&err, &spec, &detach, "create", "--name") < 0);
    CHECK(strstr(err.msg, "needs an argument") != NULL);
}

TEST(cli_service_patch)
{
    json_t *patch;
    const char *name;
    bool detach;
    struct serr err;
    char **argv = ARGV("update", "--image", "busybox:2", "--env-add", "A=1", "--env-rm", "B",
                       "--replicas", "0", "--update-parallelism", "1", "--update-delay", "2s",
                       "-d", "web");
    CHECK(cli_build_service_patch(15, argv, &patch, &name, &detach, &err) == 0);
    CHECK_STR(name, "web");
    CHECK(detach);
    CHECK_STR(str_at(patch, "image"), "busybox:2");
    CHECK_STR(json_string_value(json_array_get(json_object_get(patch, "env_add"), 0)), "A=1");
    CHECK_STR(json_string_value(json_array_get(json_object_get(patch, "env_rm"), 0)), "B");
    CHECK(json_integer_value(json_object_get(patch, "replicas")) == 0);
    CHECK(json_integer_value(json_object_get(json_object_get(patch, "update_config"),
                                             "delay_ms")) == 2000);
    json_decref(patch);
    char **only = ARGV("update", "--image", "b:3", "web");
    CHECK(cli_build_service_patch(4, only, &patch, &name, &detach, &err) == 0);
    CHECK(json_object_get(patch, "env_add") == NULL && !detach);
    json_decref(patch);
    char **none = ARGV("update", "--image", "b:3");
    CHECK(cli_build_service_patch(3, none, &patch, &name, &detach, &err) < 0);
    char **bad = ARGV("update", "--env-add", "NOEQUALS", "web");
    CHECK(cli_build_service_patch(4, bad, &patch, &name, &detach, &err) < 0);
}

#define RUN(err, req, ...) cli_build_run_request(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), req, err)

TEST(cli_run_request)
{
    json_t *req;
    struct serr err;
    char **argv = ARGV("run", "--rm", "--name", "t1", "-e", "K=V", "--init", "busybox", "echo",
                       "-n", "hi");
    CHECK(cli_build_run_request(11, argv, &req, &err) == 0);
    CHECK(json_is_true(json_object_get(req, "rm")));
    CHECK(json_is_false(json_object_get(req, "detach")));
    CHECK(json_is_true(json_object_get(req, "init")));
    CHECK_STR(str_at(req, "name"), "t1");
    CHECK_STR(str_at(req, "image"), "busybox");
    CHECK(json_array_size(json_object_get(req, "args")) == 3);
    CHECK_STR(json_string_value(json_array_get(json_object_get(req, "env"), 0)), "K=V");
    json_decref(req);
    char **detached = ARGV("run", "-d", "busybox");
    CHECK(cli_build_run_request(3, detached, &req, &err) == 0);
    CHECK(json_is_true(json_object_get(req, "detach")));
    json_decref(req);
    char **empty = ARGV("run", "--rm");
    CHECK(cli_build_run_request(2, empty, &req, &err) < 0);
    /* -u, -w, -v, --hostname, --entrypoint as docker run's */
    CHECK(RUN(&err, &req, "run", "-u", "nobody", "-w", "/srv", "-v", "/host:/data:ro", "-v",
              "cache:/cache", "--hostname", "h1", "--entrypoint", "sh -c", "busybox") == 0);
    CHECK_STR(str_at(req, "user"), "nobody");
    CHECK_STR(str_at(req, "workdir"), "/srv");
    CHECK_STR(str_at(req, "hostname"), "h1");
    CHECK(json_array_size(json_object_get(req, "entrypoint")) == 2);
    json_t *m0 = json_array_get(json_object_get(req, "mounts"), 0);
    json_t *m1 = json_array_get(json_object_get(req, "mounts"), 1);
    CHECK_STR(str_at(m0, "type"), "bind");
    CHECK_STR(str_at(m0, "target"), "/data");
    CHECK(json_is_true(json_object_get(m0, "readonly")));
    CHECK_STR(str_at(m1, "type"), "volume");
    CHECK_STR(str_at(m1, "source"), "cache");
    json_decref(req);
    CHECK(RUN(&err, &req, "run", "-v", "/a", "busybox") < 0);
    CHECK(strstr(err.msg, "-v") != NULL);
    CHECK(RUN(&err, &req, "run", "-v", "/a:/b:rx", "busybox") < 0);
    CHECK(RUN(&err, &req, "run", "-w", "rel", "busybox") < 0);
}

TEST(cli_combined_short_flags)
{
    json_t *req;
    struct serr err;
    /* as docker: booleans combine, and the last may take its value, joined or not */
    CHECK(RUN(&err, &req, "run", "-de", "K=V", "busybox") == 0);
    CHECK(json_is_true(json_object_get(req, "detach")));
    CHECK_STR(json_string_value(json_array_get(json_object_get(req, "env"), 0)), "K=V");
    json_decref(req);
    CHECK(RUN(&err, &req, "run", "-deK=V", "busybox") == 0);
    CHECK_STR(json_string_value(json_array_get(json_object_get(req, "env"), 0)), "K=V");
    json_decref(req);
    /* -it as docker's: stdin and a terminal */
    CHECK(RUN(&err, &req, "run", "-it", "busybox", "sh") == 0);
    CHECK(json_is_true(json_object_get(req, "interactive")));
    CHECK(json_is_true(json_object_get(req, "tty")));
    json_decref(req);
    CHECK(RUN(&err, &req, "run", "-d", "--tty", "busybox", "sh") == 0);
    CHECK(json_is_true(json_object_get(req, "tty")) &&
          json_object_get(req, "interactive") == NULL);
    json_decref(req);
    /* every error names the flag and the word it is in */
    CHECK(RUN(&err, &req, "run", "-rm", "busybox") < 0);
    CHECK_STR(err.msg, "unknown shorthand flag: 'r' in -rm");
    CHECK(RUN(&err, &req, "run", "-dx", "busybox") < 0);
    CHECK_STR(err.msg, "unknown shorthand flag: 'x' in -dx");
    CHECK(RUN(&err, &req, "run", "--name", "n", "-xd", "busybox") < 0);
    CHECK_STR(err.msg, "unknown shorthand flag: 'x' in -xd");
    CHECK(RUN(&err, &req, "run", "-d", "-e") < 0);
    CHECK_STR(err.msg, "flag needs an argument: 'e' in -e");
    CHECK(RUN(&err, &req, "run", "-de") < 0);
    CHECK_STR(err.msg, "flag needs an argument: 'e' in -de");
    CHECK(RUN(&err, &req, "run", "--bogus", "busybox") < 0);
    CHECK_STR(err.msg, "unknown flag: --bogus");
    CHECK(RUN(&err, &req, "run", "--detach=yes", "busybox") < 0);
    CHECK_STR(err.msg, "flag takes no value: --detach=yes");
    /* a parse that stopped in the middle of a word leaves nothing behind */
    CHECK(RUN(&err, &req, "run", "-dxd", "busybox") < 0);
    CHECK(RUN(&err, &req, "run", "-xd", "busybox") < 0);
    CHECK_STR(err.msg, "unknown shorthand flag: 'x' in -xd");
    bool detach;
    json_t *spec;
    CHECK(SPEC(&err, &spec, &detach, "create", "-dq", "busybox") < 0);
    CHECK_STR(err.msg, "unknown shorthand flag: 'q' in -dq");
}

TEST(cli_formatting_helpers)
{
    char out[64];
    cli_short_id("sha256:0123456789abcdef0123", out, sizeof(out));
    CHECK_STR(out, "0123456789ab");
    cli_short_id("abc", out, sizeof(out));
    CHECK_STR(out, "abc");
    cli_human_size(1234567, out, sizeof(out));
    CHECK_STR(out, "1.235MB");
    cli_human_size(512, out, sizeof(out));
    CHECK_STR(out, "512B");
    cli_human_size(4400000000LL, out, sizeof(out));
    CHECK_STR(out, "4.4GB");
    cli_capitalize("ready", out, sizeof(out));
    CHECK_STR(out, "Ready");
    cli_capitalize("", out, sizeof(out));
    CHECK_STR(out, "");
    char *esc = cli_escape("a b/c?d=e&f%");
    CHECK_STR(esc, "a%20b%2Fc%3Fd%3De%26f%25");
    free(esc);
    int64_t n;
    struct serr err;
    CHECK(cli_parse_uint("--replicas", "42", 100, &n, &err) == 0 && n == 42);
    CHECK(cli_parse_uint("--replicas", "101", 100, &n, &err) < 0);
    CHECK(cli_parse_uint("--replicas", "+1", 100, &n, &err) < 0);
}

TEST(cli_swarm_init_flags)
{
    json_t *body;
    struct serr err;
    CHECK(cli_build_swarm_init(ARGC("init"), ARGV("init"), &body, &err) == 0);
    CHECK(json_object_size(body) == 0);
    json_decref(body);
    CHECK(cli_build_swarm_init(ARGC("init", "--advertise-addr", "10.0.0.1", "--force-new-cluster"),
                               ARGV("init", "--advertise-addr", "10.0.0.1", "--force-new-cluster"),
                               &body, &err) == 0);
    CHECK_STR(str_at(body, "advertise_addr"), "10.0.0.1"); /* the daemon picks the port */
    CHECK(json_is_true(json_object_get(body, "force_new_cluster")));
    json_decref(body);
    CHECK(
        cli_build_swarm_init(ARGC("init", "--listen-addr", "eth0:4000", "--advertise-addr", "eth1"),
                             ARGV("init", "--listen-addr", "eth0:4000", "--advertise-addr", "eth1"),
                             &body, &err) == 0);
    CHECK_STR(str_at(body, "listen_addr"), "eth0:4000");
    CHECK_STR(str_at(body, "advertise_addr"), "eth1");
    json_decref(body);
    CHECK(cli_build_swarm_init(ARGC("init", "--help"), ARGV("init", "--help"), &body, &err) == 1);
    CHECK(cli_build_swarm_init(ARGC("init", "x"), ARGV("init", "x"), &body, &err) < 0);
    CHECK(strstr(err.msg, "no arguments") != NULL);
    CHECK(cli_build_swarm_init(ARGC("init", "--advertise-addr", ""),
                               ARGV("init", "--advertise-addr", ""), &body, &err) < 0);
    CHECK(cli_build_swarm_init(ARGC("init", "--force"), ARGV("init", "--force"), &body, &err) < 0);
    CHECK(strstr(err.msg, "unknown flag: --force") != NULL);
    /* --overlay goes to the daemon as given: it checks the value */
    CHECK(cli_build_swarm_init(ARGC("init", "--overlay", "vxlan"), ARGV("init", "--overlay", "vxlan"),
                               &body, &err) == 0);
    CHECK_STR(str_at(body, "overlay"), "vxlan");
    json_decref(body);
    CHECK(cli_build_swarm_init(ARGC("init", "--overlay"), ARGV("init", "--overlay"), &body, &err) < 0);
}

TEST(cli_swarm_join_flags)
{
    json_t *body;
    struct serr err;
    CHECK(cli_build_swarm_join(ARGC("join", "--token", "SHOAL-1-x-y", "10.0.0.1:2377"),
                               ARGV("join", "--token", "SHOAL-1-x-y", "10.0.0.1:2377"), &body,
                               &err) == 0);
    CHECK_STR(str_at(body, "token"), "SHOAL-1-x-y");
    CHECK_STR(str_at(body, "remote_addr"), "10.0.0.1:2377");
    CHECK(json_object_get(body, "advertise_addr") == NULL);
    json_decref(body);
    CHECK(cli_build_swarm_join(
              ARGC("join", "--advertise-addr=10.0.0.2:4000", "--token=T", "10.0.0.1"),
              ARGV("join", "--advertise-addr=10.0.0.2:4000", "--token=T", "10.0.0.1"), &body,
              &err) == 0);
    CHECK_STR(str_at(body, "advertise_addr"), "10.0.0.2:4000");
    CHECK_STR(str_at(body, "remote_addr"), "10.0.0.1:2377"); /* docker's default port */
    json_decref(body);
    CHECK(cli_build_swarm_join(
              ARGC("join", "--listen-addr", "0.0.0.0:4000", "--token", "T", "node1.local.lan"),
              ARGV("join", "--listen-addr", "0.0.0.0:4000", "--token", "T", "node1.local.lan"),
              &body, &err) == 0);
    CHECK_STR(str_at(body, "listen_addr"), "0.0.0.0:4000");
    CHECK_STR(str_at(body, "remote_addr"), "node1.local.lan:2377");
    json_decref(body);
    CHECK(cli_build_swarm_join(ARGC("join", "10.0.0.1:2377"), ARGV("join", "10.0.0.1:2377"),
                               &body, &err) < 0);
    CHECK(strstr(err.msg, "--token is required") != NULL);
    CHECK(cli_build_swarm_join(ARGC("join", "--token", "T"), ARGV("join", "--token", "T"), &body,
                               &err) < 0);
    CHECK(strstr(err.msg, "HOST:PORT") != NULL);
    CHECK(cli_build_swarm_join(ARGC("join", "--token", "T", "a:1", "b:2"),
                               ARGV("join", "--token", "T", "a:1", "b:2"), &body, &err) < 0);
    CHECK(cli_build_swarm_join(ARGC("join", "--token", "", "a:1"),
                               ARGV("join", "--token", "", "a:1"), &body, &err) < 0);
    CHECK(cli_build_swarm_join(ARGC("join", "--token"), ARGV("join", "--token"), &body, &err) < 0);
    CHECK(strstr(err.msg, "flag needs an argument: --token") != NULL);
    CHECK(cli_build_swarm_join(ARGC("join", "-h"), ARGV("join", "-h"), &body, &err) == 1);
    /* --label k=v, repeatable; a bare key is an empty value */
    CHECK(cli_build_swarm_join(
              ARGC("join", "--label", "rack=top", "--label=arch=v7", "--label", "ssd", "--token",
                   "T", "a:1"),
              ARGV("join", "--label", "rack=top", "--label=arch=v7", "--label", "ssd", "--token",
                   "T", "a:1"),
              &body, &err) == 0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(body, "labels"), "rack")), "top");
    CHECK_STR(json_string_value(json_object_get(json_object_get(body, "labels"), "arch")), "v7");
    CHECK_STR(json_string_value(json_object_get(json_object_get(body, "labels"), "ssd")), "");
    json_decref(body);
    CHECK(cli_build_swarm_join(ARGC("join", "--label", "=x", "--token", "T", "a:1"),
                               ARGV("join", "--label", "=x", "--token", "T", "a:1"), &body,
                               &err) < 0);
    CHECK(strstr(err.msg, "invalid --label \"=x\"") != NULL);
}

TEST(cli_addr_with_port)
{
    char *a = cli_addr_with_port("10.0.0.1");
    CHECK_STR(a, "10.0.0.1:2377");
    free(a);
    a = cli_addr_with_port("10.0.0.1:9");
    CHECK_STR(a, "10.0.0.1:9");
    free(a);
    a = cli_addr_with_port("[::1]");
    CHECK_STR(a, "[::1]:2377");
    free(a);
    a = cli_addr_with_port("[::1]:9");
    CHECK_STR(a, "[::1]:9");
    free(a);
}

TEST(cli_join_token_flags)
{
    struct cli_join_token_opts o;
    struct serr err;
    CHECK(cli_parse_join_token(ARGC("join-token", "worker"), ARGV("join-token", "worker"), &o,
                               &err) == 0);
    CHECK_STR(o.role, "worker");
    CHECK(!o.quiet && !o.rotate);
    CHECK(cli_parse_join_token(ARGC("join-token", "-q", "--rotate", "manager"),
                               ARGV("join-token", "-q", "--rotate", "manager"), &o, &err) == 0);
    CHECK_STR(o.role, "manager");
    CHECK(o.quiet && o.rotate);
    CHECK(cli_parse_join_token(ARGC("join-token", "--quiet", "worker"),
                               ARGV("join-token", "--quiet", "worker"), &o, &err) == 0);
    CHECK(o.quiet);
    CHECK(cli_parse_join_token(ARGC("join-token"), ARGV("join-token"), &o, &err) < 0);
    CHECK(cli_parse_join_token(ARGC("join-token", "admin"), ARGV("join-token", "admin"), &o,
                               &err) < 0);
    CHECK(strstr(err.msg, "worker or manager") != NULL);
    CHECK(cli_parse_join_token(ARGC("join-token", "-x", "worker"),
                               ARGV("join-token", "-x", "worker"), &o, &err) < 0);
    CHECK(strstr(err.msg, "unknown shorthand flag: 'x'") != NULL);
    CHECK(cli_parse_join_token(ARGC("join-token", "--help"), ARGV("join-token", "--help"), &o,
                               &err) == 1);
}

TEST(cli_admin_cert_flags)
{
    const char *dir;
    struct serr err;
    CHECK(cli_parse_admin_cert(ARGC("admin-cert"), ARGV("admin-cert"), &dir, &err) == 0);
    CHECK(dir == NULL);
    CHECK(cli_parse_admin_cert(ARGC("admin-cert", "-o", "/tmp/x"),
                               ARGV("admin-cert", "-o", "/tmp/x"), &dir, &err) == 0);
    CHECK_STR(dir, "/tmp/x");
    CHECK(cli_parse_admin_cert(ARGC("admin-cert", "--output=/y"),
                               ARGV("admin-cert", "--output=/y"), &dir, &err) == 0);
    CHECK_STR(dir, "/y");
    CHECK(cli_parse_admin_cert(ARGC("admin-cert", "-o"), ARGV("admin-cert", "-o"), &dir, &err) < 0);
    CHECK(cli_parse_admin_cert(ARGC("admin-cert", "-o", ""), ARGV("admin-cert", "-o", ""), &dir,
                               &err) < 0);
    CHECK(cli_parse_admin_cert(ARGC("admin-cert", "extra"), ARGV("admin-cert", "extra"), &dir,
                               &err) < 0);
}

#define NODE_UPDATE(err, patch, node, ...)                                                         \
    cli_build_node_update(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), patch, node, err)

TEST(cli_node_update_flags)
{
    json_t *p;
    const char *node;
    struct serr err;
    CHECK(NODE_UPDATE(&err, &p, &node, "update", "--availability", "drain", "--role", "manager",
                      "--label-add", "zone=a", "--label-add", "ssd", "--label-add", "k=v=w",
                      "--label-rm", "old", "--label-rm", "older", "node-1") == 0);
    CHECK_STR(node, "node-1");
    CHECK_STR(str_at(p, "availability"), "drain");
    CHECK_STR(str_at(p, "role"), "manager");
    json_t *add = json_object_get(p, "labels_add");
    CHECK(json_object_size(add) == 3);
    CHECK_STR(str_at(add, "zone"), "a");
    CHECK_STR(str_at(add, "ssd"), "");
    CHECK_STR(str_at(add, "k"), "v=w");
    json_t *rm = json_object_get(p, "labels_rm");
    CHECK(json_array_size(rm) == 2);
    CHECK_STR(json_string_value(json_array_get(rm, 1)), "older");
    json_decref(p);
    /* Only what was given is sent. */
    CHECK(NODE_UPDATE(&err, &p, &node, "update", "--availability=pause", "n") == 0);
    CHECK(json_object_size(p) == 1);
    json_decref(p);
    CHECK(NODE_UPDATE(&err, &p, &node, "update", "n") < 0);
    CHECK(strstr(err.msg, "nothing to update") != NULL);
    CHECK(NODE_UPDATE(&err, &p, &node, "update", "--availability", "paused", "n") < 0);
    CHECK(strstr(err.msg, "active, pause or drain") != NULL);
    CHECK(NODE_UPDATE(&err, &p, &node, "update", "--role", "admin", "n") < 0);
    CHECK(strstr(err.msg, "worker or manager") != NULL);
    CHECK(NODE_UPDATE(&err, &p, &node, "update", "--label-add", "=x", "n") < 0);
    CHECK(NODE_UPDATE(&err, &p, &node, "update", "--label-rm", "", "n") < 0);
    CHECK(NODE_UPDATE(&err, &p, &node, "update", "--role", "worker") < 0);
    CHECK(strstr(err.msg, "exactly 1 argument") != NULL);
    CHECK(NODE_UPDATE(&err, &p, &node, "update", "--role", "worker", "a", "b") < 0);
    CHECK(NODE_UPDATE(&err, &p, &node, "update", "--help") == 1);
}

#define JOB_SUB(err, body, ...) cli_build_job_sub(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), body, err)

TEST(cli_job_sub_flags)
{
    json_t *b;
    struct serr err;
    CHECK(JOB_SUB(&err, &b, "oarsub", "-l", "core=2", "-t", "besteffort", "-t", "idempotent",
                  "-a", "3", "--after", "4", "--array", "5", "-r", "2030-01-02 03:04:05",
                  "-n", "x", "sleep", "10") == 0);
    CHECK_STR(str_at(b, "resources"), "core=2");
    CHECK_STR(str_at(b, "command"), "sleep 10");
    CHECK_STR(str_at(b, "user"), cli_job_user());
    CHECK(*cli_job_user() != '\0');
    CHECK_STR(str_at(b, "reservation"), "2030-01-02 03:04:05");
    CHECK(json_array_size(json_object_get(b, "types")) == 2);
    CHECK_STR(json_string_value(json_array_get(json_object_get(b, "after"), 1)), "4");
    CHECK(json_integer_value(json_object_get(b, "array")) == 5);
    json_decref(b);
    /* -S: the script's #OAR lines, the command line winning */
    char path[] = "/tmp/shoal-unit-oarXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char script[] = "#!/bin/sh\n#OAR -l nodes=2,walltime=1:0:0\n#OAR --name=scanned\n"
                          "#OAR -q 'admin'\n#OAR -t besteffort\necho hi\n";
    CHECK(write(fd, script, strlen(script)) == (ssize_t)strlen(script));
    close(fd);
    CHECK(JOB_SUB(&err, &b, "oarsub", "-S", "-q", "default", path) == 0);
    CHECK_STR(str_at(b, "resources"), "nodes=2,walltime=1:0:0");
    CHECK_STR(str_at(b, "name"), "scanned");
    CHECK_STR(str_at(b, "queue"), "default");
    CHECK_STR(json_string_value(json_array_get(json_object_get(b, "types"), 0)), "besteffort");
    CHECK_STR(str_at(b, "command"), path);
    json_decref(b);
    FILE *f = fopen(path, "a");
    fputs("#OAR -p gpu='yes'\n", f);
    fclose(f);
    CHECK(JOB_SUB(&err, &b, "oarsub", "-S", path) == 0);
    CHECK_STR(str_at(b, "properties"), "gpu='yes'");
    json_decref(b);
    CHECK(JOB_SUB(&err, &b, "job", "--host", "hostname") == 0);
    CHECK(json_is_true(json_object_get(b, "host")));
    json_decref(b);
    CHECK(JOB_SUB(&err, &b, "job", "--host", "--image", "alpine", "true") < 0);
    CHECK(strstr(err.msg, "exclude") != NULL);
    CHECK(JOB_SUB(&err, &b, "job", "--host", "-I") < 0);
    CHECK(strstr(err.msg, "not with --host") != NULL);
    f = fopen(path, "a");
    fputs("#OAR -O out.txt\n", f);
    fclose(f);
    CHECK(JOB_SUB(&err, &b, "oarsub", "-S", path) < 0);
    CHECK(strstr(err.msg, "unsupported #OAR option '-O'") != NULL);
    unlink(path);
    CHECK(JOB_SUB(&err, &b, "oarsub", "-S", path) < 0);
    CHECK(strstr(err.msg, "cannot read the script") != NULL);
    CHECK(JOB_SUB(&err, &b, "oarsub", "-I", "true") < 0);
    CHECK(strstr(err.msg, "they take no COMMAND") != NULL);
    CHECK(JOB_SUB(&err, &b, "oarsub", "-I", "-S") < 0);
    CHECK(JOB_SUB(&err, &b, "oarsub", "-I", "--array", "2") < 0);
    CHECK(strstr(err.msg, "not with --array") != NULL);
    CHECK(JOB_SUB(&err, &b, "oarsub", "-I", "-l", "core=2") == 0);
    CHECK(cli_job_wants_shell(b) && json_object_get(b, "command") == NULL);
    CHECK_STR(cli_str(b, "resources"), "core=2");
    json_decref(b);
    CHECK(JOB_SUB(&err, &b, "oarsub", "-C", "12") == 0);
    CHECK(cli_job_wants_shell(b));
    CHECK_STR(cli_str(b, "connect"), "12");
    json_decref(b);
    CHECK(JOB_SUB(&err, &b, "oarsub", "true") == 0);
    CHECK(!cli_job_wants_shell(b));
    json_decref(b);
    CHECK(JOB_SUB(&err, &b, "oarsub", "--array", "x", "true") < 0);
    CHECK(JOB_SUB(&err, &b, "oarsub", "-l", "core=1") < 0);
    CHECK(strstr(err.msg, "requires a COMMAND") != NULL);
    CHECK(JOB_SUB(&err, &b, "oarsub", "-h") == 1);
}

TEST(cli_oar_names)
{
    CHECK_STR(cli_oar_name("/usr/bin/oarsub"), "oarsub");
    CHECK_STR(cli_oar_name("oarstat"), "oarstat");
    CHECK(cli_oar_name("/usr/bin/shoal") == NULL);
    CHECK(cli_oar_name("oarsubx") == NULL);
    CHECK(cli_oar_name("/oarsub/shoal") == NULL);
}

TEST(cli_service_spec_container_flags)
{
    json_t *spec;
    bool detach;
    struct serr err;
    CHECK(SPEC(&err, &spec, &detach, "create", "--hostname", "web-1", "-u", "1000:100", "-w",
               "/srv", "--entrypoint", "sh -c", "-l", "tier=front", "--label", "flag",
               "--container-label", "a.b=c", "busybox", "echo hi") == 0);
    CHECK_STR(str_at(spec, "hostname"), "web-1");
    CHECK_STR(str_at(spec, "user"), "1000:100");
    CHECK_STR(str_at(spec, "workdir"), "/srv");
    json_t *ep = json_object_get(spec, "entrypoint");
    CHECK(json_array_size(ep) == 2);
    CHECK_STR(json_string_value(json_array_get(ep, 1)), "-c");
    CHECK_STR(str_at(json_object_get(spec, "labels"), "tier"), "front");
    CHECK_STR(str_at(json_object_get(spec, "labels"), "flag"), "");
    CHECK_STR(str_at(json_object_get(spec, "container_labels"), "a.b"), "c");
    json_decref(spec);
    CHECK(SPEC(&err, &spec, &detach, "create", "--user", "www data", "busybox") < 0);
    CHECK(strstr(err.msg, "--user") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--user", "www-data:adm", "busybox") == 0);
    CHECK_STR(str_at(spec, "user"), "www-data:adm");
    json_decref(spec);
    CHECK(SPEC(&err, &spec, &detach, "create", "--user", "1:", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--workdir", "srv", "busybox") < 0);
    CHECK(strstr(err.msg, "--workdir") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--hostname", "a b", "busybox") < 0);
    CHECK(strstr(err.msg, "--hostname") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--label", "=x", "busybox") < 0);
    CHECK(strstr(err.msg, "--label") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--container-label", "", "busybox") < 0);
}

#define PATCH(err, patch, name, ...)                                                               \
    cli_build_service_patch(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), patch, name, &(bool){false}, err)

TEST(cli_service_patch_container_flags)
{
    json_t *patch;
    const char *name;
    struct serr err;
    CHECK(PATCH(&err, &patch, &name, "update", "--label-add", "a=1", "--label-rm", "b",
                "--container-label-add", "c=2", "--mount-add", "type=tmpfs,dst=/t",
                "--mount-rm", "/data", "--hostname", "h", "-u", "5", "-w", "/w", "web") == 0);
    CHECK_STR(name, "web");
    CHECK_STR(str_at(json_object_get(patch, "labels_add"), "a"), "1");
    CHECK_STR(json_string_value(json_array_get(json_object_get(patch, "labels_rm"), 0)), "b");
    CHECK_STR(str_at(json_object_get(patch, "container_labels_add"), "c"), "2");
    CHECK_STR(str_at(json_array_get(json_object_get(patch, "mounts_add"), 0), "type"), "tmpfs");
    CHECK_STR(json_string_value(json_array_get(json_object_get(patch, "mounts_rm"), 0)), "/data");
    CHECK_STR(str_at(patch, "hostname"), "h");
    CHECK_STR(str_at(patch, "user"), "5");
    CHECK_STR(str_at(patch, "workdir"), "/w");
    json_decref(patch);
    CHECK(PATCH(&err, &patch, &name, "update", "--mount-rm", "data", "web") < 0);
    CHECK(strstr(err.msg, "--mount-rm") != NULL);
    CHECK(PATCH(&err, &patch, &name, "update", "--mount-add", "type=tmpfs", "web") < 0);
    CHECK(strstr(err.msg, "--mount-add") != NULL);
    CHECK(PATCH(&err, &patch, &name, "update", "--label-rm", "a=b", "web") < 0);
    CHECK(strstr(err.msg, "--label-rm") != NULL);
    CHECK(PATCH(&err, &patch, &name, "update", "--label-add", "=b", "web") < 0);
}

TEST(cli_env_file_lines_and_restart_flags)
{
    json_t *list = json_array();
    struct serr err;
    CHECK(cli_parse_env_lines("# comment\n\nA=1\r\n  B=two words  \nC=\n", list, &err) == 0);
    CHECK(json_array_size(list) == 3);
    CHECK_STR(json_string_value(json_array_get(list, 1)), "B=two words");
    CHECK(cli_parse_env_lines("A=1\n=bad\n", list, &err) < 0);
    CHECK(strstr(err.msg, "line 2") != NULL);
    json_decref(list);
    json_t *spec;
    bool detach;
    CHECK(SPEC(&err, &spec, &detach, "create", "--restart-max-attempts", "3", "--restart-window",
               "1m", "busybox") == 0);
    CHECK(json_integer_value(json_object_get(spec, "restart_max_attempts")) == 3);
    CHECK(json_integer_value(json_object_get(spec, "restart_window_ms")) == 60000);
    json_decref(spec);
    CHECK(SPEC(&err, &spec, &detach, "create", "--restart-max-attempts", "-1", "busybox") < 0);
    CHECK(strstr(err.msg, "--restart-max-attempts") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--restart-window", "soon", "busybox") < 0);
    CHECK(strstr(err.msg, "--restart-window") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--env-file", "/nonexistent/env", "busybox") < 0);
    CHECK(strstr(err.msg, "--env-file") != NULL);
}

TEST(cli_runtime_flags)
{
    json_t *spec;
    bool detach;
    struct serr err;
    CHECK(SPEC(&err, &spec, &detach, "create", "--read-only", "--cap-add", "net_admin,SYS_TIME",
               "--cap-drop", "ALL", "--sysctl", "net.core.somaxconn=1024", "--ulimit",
               "nofile=100", "--ulimit", "nproc=5:10", "--dns", "10.0.0.2", "--limit-pids", "7",
               "--stop-signal", "INT", "busybox") == 0);
    CHECK(json_is_true(json_object_get(spec, "read_only")));
    json_t *add = json_object_get(spec, "cap_add");
    CHECK(json_array_size(add) == 2);
    CHECK_STR(json_string_value(json_array_get(add, 0)), "CAP_NET_ADMIN");
    CHECK_STR(json_string_value(json_array_get(json_object_get(spec, "cap_drop"), 0)), "ALL");
    CHECK_STR(str_at(json_object_get(spec, "sysctls"), "net.core.somaxconn"), "1024");
    json_t *nofile = json_object_get(json_object_get(spec, "ulimits"), "nofile");
    CHECK(json_integer_value(json_object_get(nofile, "soft")) == 100);
    CHECK(json_integer_value(json_object_get(nofile, "hard")) == 100);
    json_t *nproc = json_object_get(json_object_get(spec, "ulimits"), "nproc");
    CHECK(json_integer_value(json_object_get(nproc, "hard")) == 10);
    CHECK(json_integer_value(json_object_get(json_object_get(spec, "limits"), "pids")) == 7);
    CHECK_STR(str_at(spec, "stop_signal"), "INT");
    json_decref(spec);
    json_t *u = json_object();
    CHECK(cli_parse_ulimit("nofile=", u, &err) < 0);
    CHECK(cli_parse_ulimit("nofile=1:", u, &err) < 0);
    CHECK(cli_parse_ulimit("nofile=-1", u, &err) < 0);
    CHECK(cli_parse_ulimit("=1", u, &err) < 0);
    CHECK(json_object_size(u) == 0);
    json_decref(u);
    CHECK(SPEC(&err, &spec, &detach, "create", "--cap-add", "CAP_WIZARD", "busybox") < 0);
    CHECK(strstr(err.msg, "--cap-add") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--sysctl", "kernel.panic=1", "busybox") < 0);
    CHECK(strstr(err.msg, "--sysctl") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--dns", "999.1.1.1", "busybox") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--stop-signal", "SIGWHAT", "busybox") < 0);
}

TEST(cli_service_patch_runtime_lists)
{
    json_t *patch;
    const char *name;
    struct serr err;
    CHECK(PATCH(&err, &patch, &name, "update", "--read-only=false", "--sysctl-add",
                "kernel.shmmni=9", "--sysctl-rm", "kernel.sem", "--ulimit-add", "nproc=3",
                "--ulimit-rm", "core", "--dns-add", "10.0.0.9", "--dns-rm", "10.0.0.8",
                "--placement-pref-add", "spread=node.labels.rack", "--placement-pref-rm",
                "spread=node.labels.zone", "web") == 0);
    CHECK(json_is_false(json_object_get(patch, "read_only")));
    CHECK_STR(str_at(json_object_get(patch, "sysctls_add"), "kernel.shmmni"), "9");
    CHECK_STR(json_string_value(json_array_get(json_object_get(patch, "sysctls_rm"), 0)),
              "kernel.sem");
    CHECK(json_object_get(json_object_get(patch, "ulimits_add"), "nproc") != NULL);
    CHECK_STR(json_string_value(json_array_get(json_object_get(patch, "dns_rm"), 0)), "10.0.0.8");
    json_t *pref = json_array_get(json_object_get(patch, "placement_preferences_rm"), 0);
    CHECK_STR(str_at(pref, "spread"), "node.labels.zone");
    json_decref(patch);
    CHECK(PATCH(&err, &patch, &name, "update", "--read-only", "web") == 0);
    CHECK(json_is_true(json_object_get(patch, "read_only")));
    json_decref(patch);
    CHECK(PATCH(&err, &patch, &name, "update", "--read-only=maybe", "web") < 0);
    CHECK(PATCH(&err, &patch, &name, "update", "--dns-add", "x", "web") < 0);
    CHECK(strstr(err.msg, "--dns-add") != NULL);
    CHECK(PATCH(&err, &patch, &name, "update", "--sysctl-add", "vm.x=1", "web") < 0);
    CHECK(strstr(err.msg, "--sysctl-add") != NULL);
    CHECK(PATCH(&err, &patch, &name, "update", "--sysctl-rm", "a=b", "web") < 0);
}

TEST(cli_service_patch_network_caps_restart)
{
    json_t *patch;
    const char *name;
    struct serr err;
    CHECK(PATCH(&err, &patch, &name, "update", "--network-rm", "front", "--network-add", "back",
                "--cap-add", "net_admin", "--cap-drop", "CHOWN", "--restart-condition",
                "on-failure", "--restart-delay", "2s", "--stop-grace-period", "3s", "--init",
                "--with-registry-auth", "web") == 0);
    CHECK_STR(str_at(patch, "network_rm"), "front");
    CHECK_STR(str_at(patch, "network_add"), "back");
    CHECK_STR(json_string_value(json_array_get(json_object_get(patch, "caps_add"), 0)),
              "CAP_NET_ADMIN");
    CHECK_STR(json_string_value(json_array_get(json_object_get(patch, "caps_drop"), 0)),
              "CAP_CHOWN");
    CHECK_STR(str_at(patch, "restart_condition"), "on-failure");
    CHECK(json_integer_value(json_object_get(patch, "restart_delay_ms")) == 2000);
    CHECK(json_integer_value(json_object_get(patch, "stop_grace_period_ms")) == 3000);
    CHECK(json_is_true(json_object_get(patch, "init")));
    json_decref(patch);
    CHECK(PATCH(&err, &patch, &name, "update", "--network-add", "a", "--network-add", "b",
                "web") < 0);
    CHECK(strstr(err.msg, "one network") != NULL);
    CHECK(PATCH(&err, &patch, &name, "update", "--network-add", "a b", "web") < 0);
    CHECK(PATCH(&err, &patch, &name, "update", "--restart-condition", "sometimes", "web") < 0);
}

TEST(cli_service_update_rollout_flags)
{
    json_t *spec = NULL;
    bool detach;
    struct serr err;
    CHECK(SPEC(&err, &spec, &detach, "create", "--update-order", "start-first", "--update-monitor",
               "30s", "--update-max-failure-ratio", "0.2", "busybox") == 0);
    json_t *uc = json_object_get(spec, "update_config");
    CHECK_STR(str_at(uc, "order"), "start-first");
    CHECK(json_integer_value(json_object_get(uc, "monitor_ms")) == 30000);
    CHECK(json_real_value(json_object_get(uc, "max_failure_ratio")) == 0.2);
    json_decref(spec);
    CHECK(SPEC(&err, &spec, &detach, "create", "--update-order", "random", "busybox") < 0);
    CHECK(strstr(err.msg, "--update-order") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--update-max-failure-ratio", "1.5", "b") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--update-max-failure-ratio", "x", "b") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--update-monitor", "10", "b") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--update-failure-action", "stop", "b") < 0);
    json_t *patch;
    const char *name;
    char **argv = ARGV("update", "--update-order", "stop-first", "--update-monitor", "1m", "web");
    CHECK(cli_build_service_patch(6, argv, &patch, &name, &detach, &err) == 0);
    uc = json_object_get(patch, "update_config");
    CHECK_STR(str_at(uc, "order"), "stop-first");
    CHECK(json_integer_value(json_object_get(uc, "monitor_ms")) == 60000);
    json_decref(patch);
}

TEST(cli_service_rollback_config_flags)
{
    json_t *spec = NULL;
    bool detach;
    struct serr err;
    CHECK(SPEC(&err, &spec, &detach, "create", "--rollback-parallelism", "2", "--rollback-delay",
               "1s", "--rollback-failure-action", "continue", "--rollback-monitor", "10s",
               "--rollback-max-failure-ratio", "0.5", "--rollback-order", "start-first",
               "busybox") == 0);
    json_t *rc = json_object_get(spec, "rollback_config");
    CHECK(json_integer_value(json_object_get(rc, "parallelism")) == 2);
    CHECK(json_integer_value(json_object_get(rc, "delay_ms")) == 1000);
    CHECK_STR(str_at(rc, "failure_action"), "continue");
    CHECK(json_integer_value(json_object_get(rc, "monitor_ms")) == 10000);
    CHECK(json_real_value(json_object_get(rc, "max_failure_ratio")) == 0.5);
    CHECK_STR(str_at(rc, "order"), "start-first");
    CHECK(json_object_get(spec, "update_config") == NULL);
    json_decref(spec);
    /* a rollback is not rolled back */
    CHECK(SPEC(&err, &spec, &detach, "create", "--rollback-failure-action", "rollback", "b") < 0);
    CHECK(strstr(err.msg, "--rollback-failure-action") != NULL);
    CHECK(SPEC(&err, &spec, &detach, "create", "--rollback-order", "x", "b") < 0);
    json_t *patch;
    const char *name;
    char **argv = ARGV("update", "--rollback-parallelism", "0", "web");
    CHECK(cli_build_service_patch(4, argv, &patch, &name, &detach, &err) == 0);
    CHECK(json_integer_value(json_object_get(json_object_get(patch, "rollback_config"),
                                             "parallelism")) == 0);
    json_decref(patch);
}

TEST(cli_service_global_job_and_max_concurrent)
{
    json_t *spec = NULL;
    bool detach;
    struct serr err;
    CHECK(SPEC(&err, &spec, &detach, "create", "--mode", "global-job", "--max-concurrent", "2",
               "busybox", "true") == 0);
    CHECK_STR(str_at(spec, "mode"), "global-job");
    CHECK(json_integer_value(json_object_get(spec, "max_concurrent")) == 2);
    json_decref(spec);
    CHECK(SPEC(&err, &spec, &detach, "create", "--mode", "global-job", "--replicas", "2", "b") < 0);
    CHECK(SPEC(&err, &spec, &detach, "create", "--max-concurrent", "0", "b") < 0);
    CHECK(strstr(err.msg, "--max-concurrent") != NULL);
    json_t *patch;
    const char *name;
    char **argv = ARGV("update", "--max-concurrent", "3", "job");
    CHECK(cli_build_service_patch(4, argv, &patch, &name, &detach, &err) == 0);
    CHECK(json_integer_value(json_object_get(patch, "max_concurrent")) == 3);
    json_decref(patch);
}
