/* shoal service create|ls|ps|inspect|scale|update|rm|logs */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

/* ---- create / update ---- */

/* Prints the converge line, or fails after the 60 s wait. */
static int wait_unless_detached(struct cli *cli, const char *service, bool detach)
{
    if (detach)
        return CLI_EXIT_OK;
    struct serr err;
    if (cli_wait_converged(cli, service, &err) < 0)
        return cli_fail(&err);
    printf("verify: Service converged\n");
    return CLI_EXIT_OK;
}

static int service_create(struct cli *cli, int argc, char **argv)
{
    json_t *spec = NULL;
    bool detach = false;
    struct serr err;
    int rc = cli_build_service_spec(argc, argv, &spec, &detach, &err);
    if (rc == 1)
        return cli_help(cli_service_create_usage);
    if (rc < 0)
        return cli_usage_error("service create", "%s", err.msg);
    json_t *svc = NULL;
    cli_registry_auth(spec); /* for a pull of an image the cluster lacks */
    rc = cli_call(cli, "POST", "/v1/services", spec, &svc, &err);
    json_decref(spec);
    if (rc < 0)
        return cli_fail(&err);
    char *id = xstrdup(jstr(svc, "id"));
    json_decref(svc);
    printf("%s\n", id);
    rc = wait_unless_detached(cli, id, detach);
    free(id);
    return rc;
}

static int service_update(struct cli *cli, int argc, char **argv)
{
    json_t *patch = NULL;
    const char *name = NULL;
    bool detach = false;
    struct serr err;
    int rc = cli_build_service_patch(argc, argv, &patch, &name, &detach, &err);
    if (rc == 1)
        return cli_help(cli_service_update_usage);
    if (rc < 0)
        return cli_usage_error("service update", "%s", err.msg);
    char *path = cli_path("/v1/services/%s/update", name);
    cli_registry_auth(patch);
    rc = cli_call(cli, "POST", path, patch, NULL, &err);
    free(path);
    json_decref(patch);
    if (rc < 0)
        return cli_fail(&err);
    printf("%s\n", name);
    return wait_unless_detached(cli, name, detach);
}

/* ---- ls / ps / inspect ---- */

static const char ls_usage[] = "Usage:  shoal service ls [OPTIONS]\n\nList services\n\n"
                               "Options:\n"
                               "      --format string   Format output (json or table)\n";

static void service_row(struct table *t, json_t *svc)
{
    json_t *spec = json_object_get(svc, "spec");
    char id[16], replicas[128];
    cli_short_id(jstr(svc, "id"), id, sizeof(id));
    const char *mode = jstr(spec, "mode");
    int n = snprintf(replicas, sizeof(replicas), "%lld/%lld",
                     (long long)jint(svc, "replicas_running"),
                     (long long)jint(svc, "replicas_desired"));
    /* finished one-shot tasks, as docker shows a job's: "0/3 (3/3 completed)" */
    if (jint(svc, "replicas_completed") + jint(svc, "replicas_failed") > 0)
        n += snprintf(replicas + n, sizeof(replicas) - (size_t)n, " (%lld/%lld completed",
                      (long long)jint(svc, "replicas_completed"),
                      (long long)jint(svc, "replicas_desired"));
    if (jint(svc, "replicas_failed") > 0)
        n += snprintf(replicas + n, sizeof(replicas) - (size_t)n, ", %lld failed",
                      (long long)jint(svc, "replicas_failed"));
    if (jint(svc, "replicas_completed") + jint(svc, "replicas_failed") > 0)
        snprintf(replicas + n, sizeof(replicas) - (size_t)n, ")");
    char ports[256] = "";
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(spec, "ports"), i, p)
    {
        size_t len = strlen(ports);
        /* docker's "*:8080->80/tcp" */
        snprintf(ports + len, sizeof(ports) - len, "%s*:%lld->%lld/%s", len ? ", " : "",
                 (long long)jint(p, "published"), (long long)jint(p, "target"),
                 jstr(p, "protocol"));
    }
    const char *cells[] = {id,     jstr(svc, "name"), mode[0] ? mode : "replicated", replicas,
                           jstr(spec, "image"), ports};
    table_add(t, cells);
}

static int service_ls(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("service ls", ls_usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("service ls", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    json_t *list;
    struct serr err;
    if (cli_call(cli, "GET", "/v1/services", NULL, &list, &err) < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(list, false);
    } else {
        static const char *const head[] = {"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"};
        struct table *t = table_new(6, head);
        size_t i;
        json_t *svc;
        json_array_foreach(list, i, svc) service_row(t, svc);
        table_print_free(t);
    }
    json_decref(list);
    return CLI_EXIT_OK;
}

static const char ps_usage[] = "Usage:  shoal service ps [OPTIONS] SERVICE\n\n"
                               "List the tasks of a service\n\n"
                               "Options:\n"
                               "      --format string   Format output (json or table)\n";

/* " (healthy)" after a running task's state, as `docker ps` does after "Up". */
static void append_health(json_t *task, char *current, size_t size)
{
    const char *health = jstr(task, "health");
    if (health[0] == '\0' || strcmp(jstr(task, "state"), "running") != 0)
        return;
    size_t len = strlen(current);
    snprintf(current + len, size - len, strcmp(health, "starting") == 0 ? " (health: %s)" : " (%s)",
             health);
}

static void task_row(struct table *t, json_t *task)
{
    char id[16], desired[32], state[32], current[128], ago[64];
    cli_short_id(jstr(task, "id"), id, sizeof(id));
    cli_capitalize(jstr(task, "desired_state"), desired, sizeof(desired));
    cli_capitalize(jstr(task, "state"), state, sizeof(state));
    cli_ago(jint(task, "state_at"), ago, sizeof(ago));
    snprintf(current, sizeof(current), "%s %s", state, ago);
    append_health(task, current, sizeof(current));
    const char *node = jstr(task, "node_hostname");
    const char *cells[] = {id,      jstr(task, "name"), jstr(task, "image"), node[0] ? node : "",
                           desired, current,            jstr(task, "addr"),  jstr(task, "error")};
    table_add(t, cells);
}

static int service_ps(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("service ps", ps_usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("service ps", argc - fl.first_arg, 1, 1)) >= 0)
        return rc;
    char *path = cli_path("/v1/services/%s/tasks", argv[fl.first_arg]);
    json_t *list;
    struct serr err;
    rc = cli_call(cli, "GET", path, NULL, &list, &err);
    free(path);
    if (rc < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(list, false);
    } else {
        static const char *const head[] = {"ID",           "NAME",          "IMAGE", "NODE",
                                           "DESIRED STATE", "CURRENT STATE", "ADDR",  "ERROR"};
        struct table *t = table_new(8, head);
        size_t i;
        json_t *task;
        json_array_foreach(list, i, task) task_row(t, task);
        table_print_free(t);
    }
    json_decref(list);
    return CLI_EXIT_OK;
}

/* Like docker inspect: a JSON array of the objects named; a missing one is
 * reported and makes the exit code 1, the others are still printed. */
int cli_inspect(struct cli *cli, const char *path_fmt, int argc, char **argv)
{
    json_t *all = json_array();
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < argc; i++) {
        char *path = cli_path(path_fmt, argv[i]);
        json_t *obj;
        struct serr err;
        if (cli_call(cli, "GET", path, NULL, &obj, &err) < 0)
            rc = cli_fail(&err);
        else
            json_array_append_new(all, obj);
        free(path);
    }
    if (json_array_size(all) > 0 || rc == CLI_EXIT_OK)
        cli_print_json(all, true);
    json_decref(all);
    return rc;
}

static const char inspect_usage[] = "Usage:  shoal service inspect SERVICE [SERVICE...]\n\n"
                                    "Display detailed information on one or more services\n";

static int service_inspect(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("service inspect", inspect_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("service inspect", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_inspect(cli, "/v1/services/%s", argc - fl.first_arg, argv + fl.first_arg);
}

/* ---- scale / rm ---- */

static const char scale_usage[] = "Usage:  shoal service scale [OPTIONS] SERVICE=REPLICAS "
                                  "[SERVICE=REPLICAS...]\n\n"
                                  "Scale one or multiple replicated services\n\n"
                                  "Options:\n"
                                  "  -d, --detach   Exit immediately instead of waiting for the "
                                  "service to converge\n";

static int scale_one(struct cli *cli, const char *name, int64_t replicas, bool detach)
{
    char *path = cli_path("/v1/services/%s/scale", name);
    json_t *body = json_pack("{s:I}", "replicas", (json_int_t)replicas);
    struct serr err;
    int rc = cli_call(cli, "POST", path, body, NULL, &err);
    json_decref(body);
    free(path);
    if (rc < 0)
        return cli_fail(&err);
    printf("%s scaled to %lld\n", name, (long long)replicas);
    return wait_unless_detached(cli, name, detach);
}

static int service_scale(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("service scale", scale_usage, "d", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("service scale", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    /* Validate every argument before changing anything. */
    struct serr err;
    for (int i = fl.first_arg; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        int64_t n;
        if (eq == NULL || eq == argv[i])
            return cli_usage_error("service scale", "invalid scale specifier \"%s\": use NAME=N",
                                   argv[i]);
        if (cli_parse_uint("replicas", eq + 1, 100000, &n, &err) < 0)
            return cli_usage_error("service scale", "%s", err.msg);
    }
    rc = CLI_EXIT_OK;
    for (int i = fl.first_arg; i < argc; i++) {
        char *name = xstrdup(argv[i]);
        char *eq = strchr(name, '=');
        *eq = '\0';
        int64_t n = 0;
        cli_parse_uint("replicas", eq + 1, 100000, &n, &err);
        if (scale_one(cli, name, n, fl.detach) != CLI_EXIT_OK)
            rc = CLI_EXIT_ERROR;
        free(name);
    }
    return rc;
}

/* DELETE each argument; print it when removed (docker style). */
int cli_remove_each(struct cli *cli, const char *path_fmt, const char *query, int argc,
                    char **argv)
{
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < argc; i++) {
        char *base = cli_path(path_fmt, argv[i]);
        char *path = xasprintf("%s%s", base, query);
        struct serr err;
        if (cli_call(cli, "DELETE", path, NULL, NULL, &err) < 0)
            rc = cli_fail(&err);
        else
            printf("%s\n", argv[i]);
        free(path);
        free(base);
    }
    return rc;
}

static const char rm_usage[] = "Usage:  shoal service rm SERVICE [SERVICE...]\n\n"
                               "Remove one or more services\n";

static int service_rm(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("service rm", rm_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("service rm", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_remove_each(cli, "/v1/services/%s", "", argc - fl.first_arg, argv + fl.first_arg);
}

/* ---- logs ---- */

static const char logs_usage[] = "Usage:  shoal service logs [OPTIONS] SERVICE\n\n"
                                 "Fetch the logs of a service\n\n"
                                 "Options:\n"
                                 "  -f, --follow        Follow log output\n"
                                 "      --tail string   Number of lines to show from the end of "
                                 "the logs (default \"all\")\n";

static int write_stdout(const char *data, size_t len, void *arg)
{
    (void)arg;
    if (fwrite(data, 1, len, stdout) != len)
        return -1; /* stdout closed (| head): stop reading */
    fflush(stdout);
    return 0;
}

static int service_logs(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("service logs", logs_usage, "lt", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("service logs", argc - fl.first_arg, 1, 1)) >= 0)
        return rc;
    struct serr err;
    int64_t tail = -1;
    if (fl.tail != NULL && strcmp(fl.tail, "all") != 0 &&
        cli_parse_uint("--tail", fl.tail, INT32_MAX, &tail, &err) < 0)
        return cli_usage_error("service logs", "%s", err.msg);
    char *base = cli_path("/v1/services/%s/logs", argv[fl.first_arg]);
    char query[64] = "";
    if (tail >= 0)
        snprintf(query, sizeof(query), "tail=%lld", (long long)tail);
    if (fl.follow)
        snprintf(query + strlen(query), sizeof(query) - strlen(query), "%sfollow=1",
                 query[0] ? "&" : "");
    char *path = xasprintf("%s%s%s", base, query[0] ? "?" : "", query);
    rc = cli_stream(cli, "GET", path, NULL, write_stdout, NULL, &err);
    free(path);
    free(base);
    return rc < 0 ? cli_fail(&err) : CLI_EXIT_OK;
}

static const struct cli_cmd service_cmds[] = {
    {"create", NULL, service_create, "Create a new service"},
    {"inspect", NULL, service_inspect, "Display detailed information on one or more services"},
    {"logs", NULL, service_logs, "Fetch the logs of a service"},
    {"ls", "list", service_ls, "List services"},
    {"ps", NULL, service_ps, "List the tasks of a service"},
    {"rm", "remove", service_rm, "Remove one or more services"},
    {"scale", NULL, service_scale, "Scale one or multiple replicated services"},
    {"update", NULL, service_update, "Update a service"},
    {NULL, NULL, NULL, NULL},
};

int cli_service(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "service", service_cmds, argc, argv);
}
