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
    char *id = xstrdup(cli_str(svc, "id"));
    json_decref(svc);
    printf("%s\n", id);
    rc = wait_unless_detached(cli, id, detach);
    free(id);
    return rc;
}

static const char rollback_usage[] = "Usage:  shoal service rollback [OPTIONS] SERVICE\n\n"
                                     "Revert changes to a service's configuration\n\n"
                                     "Options:\n"
                                     "  -d, --detach   Exit immediately instead of waiting for the "
                                     "service to converge\n";

static int rollback_to_previous(struct cli *cli, const char *name, bool detach)
{
    struct serr err;
    char *path = cli_path("/v1/services/%s/rollback", name);
    int rc = cli_call(cli, "POST", path, NULL, NULL, &err);
    free(path);
    if (rc < 0)
        return cli_fail(&err);
    printf("%s\nrollback: manually requested rollback\n", name);
    return wait_unless_detached(cli, name, detach);
}

static int service_rollback(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("service rollback", rollback_usage, "d", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("service rollback", argc - fl.first_arg, 1, 1)) >= 0)
        return rc;
    return rollback_to_previous(cli, argv[fl.first_arg], fl.detach);
}

/* `service update --rollback [-d] SERVICE`: the same as `service rollback`
 * (no other change may come with it, as in docker). */
static int update_rollback(struct cli *cli, int argc, char **argv)
{
    bool detach = false;
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rollback") == 0)
            continue;
        if (strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--detach") == 0)
            detach = true;
        else if (argv[i][0] == '-' || name)
            return cli_usage_error("service update",
                                   "--rollback takes no other change (got %s)", argv[i]);
        else
            name = argv[i];
    }
    if (name == NULL)
        return cli_usage_error("service update", "requires exactly 1 argument");
    return rollback_to_previous(cli, name, detach);
}

static int service_update(struct cli *cli, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--rollback") == 0)
            return update_rollback(cli, argc, argv);
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
                               "      --filter filter   Filter output based on conditions provided\n"
                               "      --format string   Format output (json, table, a Go template such as\n"
                               "                        '{{.Name}}' or 'table {{.ID}}\\t{{.Name}}')\n"
                               "  -q, --quiet           Only display IDs\n";

static void service_row(struct table *t, json_t *svc)
{
    json_t *spec = json_object_get(svc, "spec");
    char id[16], replicas[128];
    cli_short_id(cli_str(svc, "id"), id, sizeof(id));
    const char *mode = cli_str(spec, "mode");
    int n = snprintf(replicas, sizeof(replicas), "%lld/%lld",
                     (long long)cli_int(svc, "replicas_running"),
                     (long long)cli_int(svc, "replicas_desired"));
    /* finished one-shot tasks, as docker shows a job's: "0/3 (3/3 completed)" */
    if (cli_int(svc, "replicas_completed") + cli_int(svc, "replicas_failed") > 0)
        n += snprintf(replicas + n, sizeof(replicas) - (size_t)n, " (%lld/%lld completed",
                      (long long)cli_int(svc, "replicas_completed"),
                      (long long)cli_int(svc, "replicas_desired"));
    if (cli_int(svc, "replicas_failed") > 0)
        n += snprintf(replicas + n, sizeof(replicas) - (size_t)n, ", %lld failed",
                      (long long)cli_int(svc, "replicas_failed"));
    if (cli_int(svc, "replicas_completed") + cli_int(svc, "replicas_failed") > 0)
        snprintf(replicas + n, sizeof(replicas) - (size_t)n, ")");
    char ports[256] = "";
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(spec, "ports"), i, p)
    {
        size_t len = strlen(ports);
        /* docker's "*:8080->80/tcp" */
        snprintf(ports + len, sizeof(ports) - len, "%s*:%lld->%lld/%s", len ? ", " : "",
                 (long long)cli_int(p, "published"), (long long)cli_int(p, "target"),
                 cli_str(p, "protocol"));
    }
    const char *cells[] = {id,       cli_str(svc, "name"),   mode[0] ? mode : "replicated",
                           replicas, cli_str(spec, "image"), ports};
    table_add(t, cells);
}

static int service_ls(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("service ls", ls_usage, "FQ", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("service ls", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    json_t *list;
    struct serr err;
    if (cli_call(cli, "GET", "/v1/services", NULL, &list, &err) < 0)
        return cli_fail(&err);
    cli_print_services(list, fl.json);
    json_decref(list);
    return CLI_EXIT_OK;
}

void cli_print_services(json_t *services, bool json)
{
    if (json) {
        cli_print_json(services, false);
        return;
    }
    static const char *const head[] = {"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"};
    struct table *t = table_new(6, head);
    size_t i;
    json_t *svc;
    json_array_foreach(services, i, svc) service_row(t, svc);
    table_print_free(t);
}

static const char ps_usage[] = "Usage:  shoal service ps [OPTIONS] SERVICE\n\n"
                               "List the tasks of a service\n\n"
                               "Options:\n"
                               "      --no-trunc        Do not truncate output\n"
                               "      --format string   Format output (json or table)\n";

/* " (healthy)" after a running task's state, as `docker ps` does after "Up". */
static void append_health(json_t *task, char *current, size_t size)
{
    const char *health = cli_str(task, "health");
    if (health[0] == '\0' || strcmp(cli_str(task, "state"), "running") != 0)
        return;
    size_t len = strlen(current);
    snprintf(current + len, size - len, strcmp(health, "starting") == 0 ? " (health: %s)" : " (%s)",
             health);
}

static void task_row(struct table *t, json_t *task, bool no_trunc)
{
    char id[64], desired[32], state[32], current[128], ago[64];
    if (no_trunc)
        snprintf(id, sizeof(id), "%s", cli_str(task, "id"));
    else
        cli_short_id(cli_str(task, "id"), id, sizeof(id));
    cli_capitalize(cli_str(task, "desired_state"), desired, sizeof(desired));
    cli_capitalize(cli_str(task, "state"), state, sizeof(state));
    cli_ago(cli_int(task, "state_at"), ago, sizeof(ago));
    snprintf(current, sizeof(current), "%s %s", state, ago);
    append_health(task, current, sizeof(current));
    const char *node = cli_str(task, "node_hostname");
    const char *cells[] = {
        id,      cli_str(task, "name"), cli_str(task, "image"), node[0] ? node : "", desired,
        current, cli_str(task, "addr"), cli_str(task, "error")};
    table_add(t, cells);
}

static int service_ps(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("service ps", ps_usage, "FQT", argc, argv, &fl);
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
    cli_print_tasks(list, &fl);
    json_decref(list);
    return CLI_EXIT_OK;
}

void cli_print_tasks(json_t *tasks, const struct cli_flags *fl)
{
    if (fl->json) {
        cli_print_json(tasks, false);
        return;
    }
    static const char *const head[] = {"ID",           "NAME",          "IMAGE", "NODE",
                                       "DESIRED STATE", "CURRENT STATE", "ADDR",  "ERROR"};
    struct table *t = table_new(8, head);
    size_t i;
    json_t *task;
    json_array_foreach(tasks, i, task) task_row(t, task, fl->no_trunc);
    table_print_free(t);
}

/* Like docker inspect: a JSON array of the objects named; a missing one is
 * reported and makes the exit code 1, the others are still printed. */
static int inspect_each(struct cli *cli, const char *path_fmt, int argc, char **argv)
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

int cli_inspect(struct cli *cli, const char *cmd, const char *usage, const char *path_fmt,
                int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags(cmd, usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs(cmd, argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return inspect_each(cli, path_fmt, argc - fl.first_arg, argv + fl.first_arg);
}

static const char inspect_usage[] = "Usage:  shoal service inspect SERVICE [SERVICE...]\n\n"
                                    "Display detailed information on one or more services\n";

static int service_inspect(struct cli *cli, int argc, char **argv)
{
    return cli_inspect(cli, "service inspect", inspect_usage, "/v1/services/%s", argc, argv);
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

int cli_call_each(struct cli *cli, const char *method, const char *path_fmt, const char *query,
                  int argc, char **argv)
{
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < argc; i++) {
        char *base = cli_path(path_fmt, argv[i]);
        char *path = xasprintf("%s%s", base, query);
        struct serr err;
        if (cli_call(cli, method, path, NULL, NULL, &err) < 0)
            rc = cli_fail(&err);
        else
            printf("%s\n", argv[i]);
        free(path);
        free(base);
    }
    return rc;
}

int cli_remove_each(struct cli *cli, const char *path_fmt, const char *query, int argc,
                    char **argv)
{
    return cli_call_each(cli, "DELETE", path_fmt, query, argc, argv);
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

static const char logs_options[] =
    "Options:\n"
    "  -f, --follow         Follow log output\n"
    "      --no-task-ids    Do not include task IDs in output\n"
    "      --no-trunc       Do not truncate output\n"
    "      --raw            Do not neatly format logs\n"
    "      --since string   Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or\n"
    "                       relative (e.g. \"42m\" for 42 minutes)\n"
    "  -n, --tail string    Number of lines to show from the end of the logs (default \"all\")\n"
    "  -t, --timestamps     Show timestamps\n";

/* `service logs` reads services and tasks; `shoal logs` also containers. */
static void print_logs_usage(const char *cmd)
{
    bool any = strcmp(cmd, "logs") == 0;
    printf("Usage:  shoal %s [OPTIONS] %s\n\n"
           "Fetch the logs of %s (of every node, merged by time)\n\n%s",
           cmd, any ? "CONTAINER|SERVICE|TASK" : "SERVICE|TASK",
           any ? "a container of this node, or of a service or task" : "a service or task", logs_options);
}

static int write_stdout(const char *data, size_t len, void *arg)
{
    (void)arg;
    if (fwrite(data, 1, len, stdout) != len)
        return -1; /* stdout closed (| head): stop reading */
    fflush(stdout);
    return 0;
}

/* Appends "&key=value" (value escaped) to the query. */
static void query_add(char **query, const char *key, const char *value)
{
    char *esc = cli_escape(value);
    char *q = xasprintf("%s&%s=%s", *query, key, esc);
    free(esc);
    free(*query);
    *query = q;
}

/* The value of --name=V or --name V (advancing *i); NULL when absent. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* Parses the logs flags into a query string ("&k=v..."); the positional
 * argument in *target. Returns -1 to go on, else the exit code. */
static int logs_query(const char *cmd, int argc, char **argv, char **query, const char **target)
{
    *query = xstrdup("");
    *target = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_logs_usage(cmd);
            return CLI_EXIT_OK;
        } else if (strcmp(a, "--follow") == 0) {
            query_add(query, "follow", "1");
        } else if (strcmp(a, "--timestamps") == 0) {
            query_add(query, "timestamps", "1");
        } else if (strcmp(a, "--raw") == 0) {
            query_add(query, "raw", "1");
        } else if (strcmp(a, "--no-task-ids") == 0) {
            query_add(query, "no_task_ids", "1");
        } else if (strcmp(a, "--no-trunc") == 0) {
            query_add(query, "no_trunc", "1");
        } else if ((v = flag_value(argc, argv, &i, "--tail", &missing)) ||
                   (v = flag_value(argc, argv, &i, "-n", &missing))) {
            int64_t tail;
            struct serr err;
            if (strcmp(v, "all") != 0 && cli_parse_uint("--tail", v, INT32_MAX, &tail, &err) < 0)
                return cli_usage_error(cmd, "%s", err.msg);
            query_add(query, "tail", v);
        } else if ((v = flag_value(argc, argv, &i, "--since", &missing))) {
            query_add(query, "since", v);
        } else if (missing) {
            return cli_usage_error(cmd, "flag needs an argument: %s", a);
        } else if (a[0] == '-' && a[1] != '-' && a[1] != '\0' && strspn(a + 1, "ft") == strlen(a + 1)) {
            for (const char *c = a + 1; *c; c++)
                query_add(query, *c == 'f' ? "follow" : "timestamps", "1");
        } else if (a[0] == '-') {
            return cli_usage_error(cmd, "unknown flag: %s", a);
        } else if (*target == NULL) {
            *target = a;
        } else {
            return cli_usage_error(cmd, "\"%s\" requires exactly 1 argument.", cmd);
        }
    }
    if (*target == NULL)
        return cli_usage_error(cmd, "\"%s\" requires exactly 1 argument.", cmd);
    return -1;
}

/* The logs' path for `target` (without the query): a service's, else a
 * task's; NULL with err when the services cannot be asked. */
static char *logs_path(struct cli *cli, const char *target, struct serr *err)
{
    char *base = cli_path("/v1/services/%s", target);
    json_t *svc = NULL;
    bool is_service = cli_call(cli, "GET", base, NULL, &svc, err) == 0;
    json_decref(svc);
    free(base);
    if (!is_service && err->kind != SERR_NOT_FOUND)
        return NULL;
    return cli_path(is_service ? "/v1/services/%s/logs" : "/v1/tasks/%s/logs", target);
}

static int write_stdout_seen(const char *data, size_t len, void *seen)
{
    *(bool *)seen = true;
    return write_stdout(data, len, NULL);
}

/* `shoal logs` of a `run` container of this node (not a task's: those are
 * read from every node), as Docker's logs: its exit code, or -1 when the node
 * has no such container (or none at all) and nothing was written. */
static int run_container_logs(struct cli *cli, const char *target, const char *query)
{
    char *base = cli_path("/v1/containers/%s/logs", target);
    char *path = xasprintf("%s?run_only=1%s", base, query);
    struct serr err = {0};
    bool seen = false;
    int rc = cli_stream(cli, "GET", path, NULL, write_stdout_seen, &seen, &err);
    free(path);
    free(base);
    if (rc == 0)
        return CLI_EXIT_OK;
    if (!seen && (err.kind == SERR_NOT_FOUND || err.kind == SERR_UNAVAILABLE))
        return -1;
    return cli_fail(&err);
}

/* `service logs` and `shoal logs`: a service, else a task (id or prefix);
 * `shoal logs` a `run` container first. */
int cli_logs_of(struct cli *cli, const char *cmd, int argc, char **argv)
{
    char *query;
    const char *target;
    int rc = logs_query(cmd, argc, argv, &query, &target);
    if (rc < 0 && strcmp(cmd, "logs") == 0)
        rc = run_container_logs(cli, target, query);
    if (rc >= 0) {
        free(query);
        return rc;
    }
    struct serr err = {0};
    char *base = logs_path(cli, target, &err);
    if (base == NULL) {
        free(query);
        return cli_fail(&err);
    }
    char *path = xasprintf("%s?%s", base, query[0] ? query + 1 : "");
    memset(&err, 0, sizeof(err));
    rc = cli_stream(cli, "GET", path, NULL, write_stdout, NULL, &err);
    free(path);
    free(base);
    free(query);
    return rc < 0 ? cli_fail(&err) : CLI_EXIT_OK;
}

static int service_logs(struct cli *cli, int argc, char **argv)
{
    return cli_logs_of(cli, "service logs", argc, argv);
}

int cli_logs(struct cli *cli, int argc, char **argv)
{
    return cli_logs_of(cli, "logs", argc, argv);
}

static const struct cli_cmd service_cmds[] = {
    {"create", NULL, service_create, "Create a new service"},
    {"inspect", NULL, service_inspect, "Display detailed information on one or more services"},
    {"logs", NULL, service_logs, "Fetch the logs of a service"},
    {"ls", "list", service_ls, "List services"},
    {"rollback", NULL, service_rollback, "Revert changes to a service's configuration"},
    {"ps", NULL, service_ps, "List the tasks of a service"},
    {"rm", "remove", service_rm, "Remove one or more services"},
    {"runs", NULL, cli_service_runs, "List the runs of a replicated job"},
    {"scale", NULL, service_scale, "Scale one or multiple replicated services"},
    {"update", NULL, service_update, "Update a service"},
    {NULL, NULL, NULL, NULL},
};

int cli_service(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "service", service_cmds, argc, argv);
}
