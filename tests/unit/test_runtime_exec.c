/* runtime_exec_prepare: the process crun execs and its command line, from a
 * container's config.json (no crun run here). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/runtime.h"
#include "base/util.h"
#include "unit.h"

struct exec_fixture {
    char dir[32];
    char *files;
    struct runtime rt;
};

static void exec_fixture_init(struct exec_fixture *fx)
{
    strcpy(fx->dir, "/tmp/shoal-rexec-XXXXXX");
    CHECK(mkdtemp(fx->dir) != NULL);
    char *bundle = xasprintf("%s/c1", fx->dir);
    CHECK(mkdir(bundle, 0700) == 0);
    char *config = xasprintf("%s/config.json", bundle);
    const char *text = "{\"process\":{\"args\":[\"sleep\",\"9\"],\"cwd\":\"/srv\",\"user\":"
                       "{\"uid\":5,\"gid\":6},\"env\":[\"PATH=/bin\",\"A=old\"],"
                       "\"terminal\":false}}";
    CHECK(write_file_atomic(config, text, strlen(text), false, NULL) == 0);
    fx->files = xasprintf("%s/x1", fx->dir);
    fx->rt = (struct runtime){.runtime_path = (char *)"crun", .runtime_root = (char *)"/r",
                              .containers_dir = fx->dir, .cgroup_mode = CGROUP_V2};
    free(config);
    free(bundle);
}

static json_t *written_process(struct exec_fixture *fx)
{
    char *path = xasprintf("%s.process.json", fx->files);
    json_t *p = json_load_file(path, 0, NULL);
    unlink(path);
    free(path);
    return p;
}

static void exec_fixture_free(struct exec_fixture *fx)
{
    char *config = xasprintf("%s/c1/config.json", fx->dir);
    char *bundle = xasprintf("%s/c1", fx->dir);
    unlink(config);
    rmdir(bundle);
    rmdir(fx->dir);
    free(config);
    free(bundle);
    free(fx->files);
}

TEST(runtime_exec_keeps_the_containers_settings)
{
    struct exec_fixture fx;
    exec_fixture_init(&fx);
    const char *argv[] = {"cat", NULL};
    struct runtime_exec_opts o = {.argv = argv};
    struct serr err = {0};
    char **args = runtime_exec_prepare(&fx.rt, "c1", &o, fx.files, &err);
    CHECK(args != NULL);
    CHECK_STR(args[0], "crun");
    CHECK_STR(args[1], "--root=/r");
    CHECK_STR(args[2], "exec");
    CHECK(strncmp(args[3], "--process=", 10) == 0);
    CHECK(strncmp(args[4], "--pid-file=", 11) == 0);
    CHECK_STR(args[5], "c1");
    CHECK(args[6] == NULL);
    runtime_exec_argv_free(args);
    json_t *p = written_process(&fx);
    CHECK_STR(json_string_value(json_array_get(json_object_get(p, "args"), 0)), "cat");
    CHECK_STR(json_string_value(json_object_get(p, "cwd")), "/srv");
    CHECK(json_integer_value(json_object_get(json_object_get(p, "user"), "uid")) == 5);
    CHECK(json_is_false(json_object_get(p, "terminal")));
    json_decref(p);
    exec_fixture_free(&fx);
}

TEST(runtime_exec_user_workdir_env_and_terminal)
{
    struct exec_fixture fx;
    exec_fixture_init(&fx);
    const char *argv[] = {"sh", NULL};
    json_t *env = json_pack("[s,s]", "A=new", "B=b");
    struct runtime_exec_opts o = {.argv = argv, .user = "1000:1001", .cwd = "/tmp", .env = env,
                                  .console_socket = "/run/x.sock", .rows = 30, .cols = 100};
    struct serr err = {0};
    char **args = runtime_exec_prepare(&fx.rt, "c1", &o, fx.files, &err);
    CHECK(args != NULL);
    CHECK_STR(args[5], "--tty");
    CHECK_STR(args[6], "--console-socket=/run/x.sock");
    CHECK_STR(args[7], "c1");
    runtime_exec_argv_free(args);
    json_t *p = written_process(&fx);
    json_t *e = json_object_get(p, "env");
    CHECK(json_array_size(e) == 3);
    CHECK_STR(json_string_value(json_array_get(e, 1)), "A=new"); /* replaced in place */
    CHECK_STR(json_string_value(json_array_get(e, 2)), "B=b");
    CHECK_STR(json_string_value(json_object_get(p, "cwd")), "/tmp");
    CHECK(json_integer_value(json_object_get(json_object_get(p, "user"), "gid")) == 1001);
    CHECK(json_is_true(json_object_get(p, "terminal")));
    CHECK(json_integer_value(json_object_get(json_object_get(p, "consoleSize"), "width")) == 100);
    json_decref(p);
    json_decref(env);
    exec_fixture_free(&fx);
}

TEST(runtime_exec_refuses_bad_input)
{
    struct exec_fixture fx;
    exec_fixture_init(&fx);
    const char *argv[] = {"sh", NULL};
    struct serr err = {0};
    struct runtime_exec_opts o = {.argv = argv, .user = "root"};
    CHECK(runtime_exec_prepare(&fx.rt, "c1", &o, fx.files, &err) == NULL);
    CHECK(strstr(err.msg, "unable to find user root") != NULL); /* no /etc/passwd in c1 */
    o = (struct runtime_exec_opts){.argv = argv, .cwd = "tmp"};
    CHECK(runtime_exec_prepare(&fx.rt, "c1", &o, fx.files, &err) == NULL);
    CHECK(strstr(err.msg, "not an absolute path") != NULL);
    json_t *env = json_pack("[s]", "NOEQUALS");
    o = (struct runtime_exec_opts){.argv = argv, .env = env};
    CHECK(runtime_exec_prepare(&fx.rt, "c1", &o, fx.files, &err) == NULL);
    CHECK(strstr(err.msg, "KEY=VALUE") != NULL);
    json_decref(env);
    o = (struct runtime_exec_opts){.argv = argv};
    CHECK(runtime_exec_prepare(&fx.rt, "nosuch", &o, fx.files, &err) == NULL);
    CHECK(err.kind == SERR_NOT_FOUND);
    CHECK(runtime_exec_prepare(&fx.rt, "../c1", &o, fx.files, &err) == NULL);
    CHECK(err.kind == SERR_INVALID);
    exec_fixture_free(&fx);
}
