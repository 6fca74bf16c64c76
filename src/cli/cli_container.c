/* shoal run | ps | rm: containers local to the node that answers. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

/* Docker's exit code when the daemon, not the container, failed. */
#define RUN_EXIT_DAEMON_ERROR 125

const char cli_run_usage[] =
    "Usage:  shoal run [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
    "\n"
    "Run a command in a new container\n"
    "\n"
    "Options:\n"
    "  -d, --detach         Run container in background and print container ID\n"
    "  -e, --env list       Set environment variables\n"
    "      --entrypoint string  Overwrite the image's ENTRYPOINT (words split on spaces)\n"
    "      --hostname string    Container host name\n"
    "      --init           Run an init inside the container that forwards signals and reaps "
    "processes\n"
    "  -i, --interactive    Keep STDIN open: the container's stdin is the CLI's\n"
    "      --name string    Assign a name to the container\n"
    "      --network string Network: bridge (own address, in a swarm) or host (default "
    "\"bridge\")\n"
    "  -p, --publish list   Publish a port of the container on this node: "
    "HOST:CONTAINER[/udp]\n"
    "      --rm             Automatically remove the container when it exits\n"
    "  -t, --tty            Allocate a pseudo-TTY (the local terminal in raw mode)\n"
    "  -u, --user string    USER[:GROUP], names (the image's /etc/passwd) or numbers\n"
    "  -v, --volume list    Bind mount a host path or a named volume: SRC:DST[:ro]\n"
    "  -w, --workdir string Working directory inside the container\n"
    "\n"
    "Short flags combine: -de K=V is -d -e K=V.\n";

static const struct option run_options[] = {
    {"detach", no_argument, NULL, 'd'}, {"env", required_argument, NULL, 'e'},
    {"init", no_argument, NULL, 'I'},   {"name", required_argument, NULL, 'n'},
    {"rm", no_argument, NULL, 'r'},     {"help", no_argument, NULL, 'h'},
    {"network", required_argument, NULL, 'N'},
    {"interactive", no_argument, NULL, 'i'}, {"tty", no_argument, NULL, 't'},
    {"user", required_argument, NULL, 'u'}, {"workdir", required_argument, NULL, 'w'},
    {"volume", required_argument, NULL, 'v'}, {"hostname", required_argument, NULL, 'H'},
    {"entrypoint", required_argument, NULL, 'E'}, {"publish", required_argument, NULL, 'p'},
    {NULL, 0, NULL, 0},
};

/* Docker's -v SRC:DST[:ro|rw]: SRC an absolute host path (a bind) or a
 * volume's name. */
static int add_volume(json_t *req, const char *arg, struct serr *err)
{
    char *copy = xstrdup(arg), *save = NULL;
    char *src = strtok_r(copy, ":", &save), *dst = strtok_r(NULL, ":", &save);
    char *mode = strtok_r(NULL, ":", &save);
    int rc = 0;
    if (src == NULL || dst == NULL || strtok_r(NULL, ":", &save) != NULL ||
        (mode && strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0) || strchr(arg, ','))
        rc = serr_set(err, SERR_INVALID, "invalid -v \"%s\": use SRC:DST[:ro]", arg);
    json_t *mount = NULL;
    if (rc == 0) {
        char *text = xasprintf("type=%s,source=%s,target=%s%s", src[0] == '/' ? "bind" : "volume",
                               src, dst, mode && strcmp(mode, "ro") == 0 ? ",readonly" : "");
        rc = cli_parse_mount(text, &mount, err);
        free(text);
    }
    if (rc == 0)
        json_array_append_new(cli_json_array(req, "mounts"), mount);
    free(copy);
    return rc < 0 ? serr_wrap(err, "-v") : 0;
}

/* Docker's -p HOST:CONTAINER[/udp] (the host's port given: no port is
 * chosen for a run container). */
static int add_publish(json_t *req, const char *arg, struct serr *err)
{
    json_t *port;
    if (cli_parse_publish(arg, &port, err) < 0)
        return serr_wrap(err, "-p");
    if (json_object_get(port, "published") == NULL || json_object_get(port, "mode")) {
        json_decref(port);
        return serr_set(err, SERR_INVALID, "invalid -p \"%s\": use HOST:CONTAINER[/udp]", arg);
    }
    json_array_append_new(cli_json_array(req, "ports"), port);
    return 0;
}

static int run_option(json_t *req, int opt, const char *arg, struct serr *err)
{
    char *env = NULL;
    switch (opt) {
    case 'u': return cli_container_flag(req, "user", arg, err);
    case 'w': return cli_container_flag(req, "workdir", arg, err);
    case 'H': return cli_container_flag(req, "hostname", arg, err);
    case 'E': return cli_container_flag(req, "entrypoint", arg, err);
    case 'v': return add_volume(req, arg, err);
    case 'p': return add_publish(req, arg, err);
    case 'd': json_object_set_new(req, "detach", json_true()); return 0;
    case 'I': json_object_set_new(req, "init", json_true()); return 0;
    case 'r': json_object_set_new(req, "rm", json_true()); return 0;
    case 'N': return cli_set_network(req, arg, err);
    case 'i': json_object_set_new(req, "interactive", json_true()); return 0;
    case 't': json_object_set_new(req, "tty", json_true()); return 0;
    case 'n':
        if (arg[0] == '\0')
            return serr_set(err, SERR_INVALID, "invalid --name: empty");
        json_object_set_new(req, "name", json_string(arg));
        return 0;
    case 'e':
        if (cli_parse_env(arg, &env, err) < 0)
            return -1;
        if (env != NULL)
            json_array_append_new(json_object_get(req, "env"), json_string(env));
        free(env);
        return 0;
    }
    return serr_set(err, SERR_INVALID, "unexpected option");
}

int cli_build_run_request(int argc, char **argv, json_t **request, struct serr *err)
{
    json_t *req = json_pack("{s:[],s:[],s:b,s:b,s:b}", "args", "env", "rm", 0, "detach", 0,
                            "init", 0);
    optind = 0;
    int opt, rc = 0;
    while (rc == 0 && (opt = cli_getopt(argc, argv, "de:hitu:w:v:p:", run_options, err)) != -1) {
        if (opt == '?')
            rc = -1;
        else if (opt == 'h')
            rc = 1;
        else
            rc = run_option(req, opt, optarg, err);
    }
    if (rc == 0 && optind >= argc)
        rc = serr_set(err, SERR_INVALID, "requires at least 1 argument (IMAGE)");
    if (rc != 0) {
        json_decref(req);
        return rc;
    }
    json_object_set_new(req, "image", json_string(argv[optind]));
    for (int i = optind + 1; i < argc; i++)
        json_array_append_new(json_object_get(req, "args"), json_string(argv[i]));
    *request = req;
    return 0;
}

/* The attached stream: NDJSON lines {"out"}, then {"exit"} or {"error"}. */
struct run_stream {
    char *line;
    size_t len, cap;
    bool ended;
    int exit_code;
    char error[512];
};

static void run_line(struct run_stream *rs, const char *text)
{
    json_t *msg = json_loads(text, 0, NULL);
    json_t *out = json_object_get(msg, "out");
    json_t *code = json_object_get(msg, "exit");
    json_t *error = json_object_get(msg, "error");
    if (json_is_string(out)) {
        fwrite(json_string_value(out), 1, json_string_length(out), stdout);
        fflush(stdout);
    } else if (json_is_integer(code)) {
        rs->ended = true;
        rs->exit_code = (int)json_integer_value(code);
    } else if (error != NULL) {
        rs->ended = true;
        rs->exit_code = RUN_EXIT_DAEMON_ERROR;
        snprintf(rs->error, sizeof(rs->error), "%s",
                 json_is_string(error) ? json_string_value(error) : "unknown error");
    }
    json_decref(msg);
}

/* Stops reading at the stream's last line ({"exit"} or {"error"}): the
 * stream's end marker, written by the daemon right after it, is not waited
 * for (the daemon, woken CLI preempting it, sent it 0.5-2.6 ms later in 3
 * of 6 runs traced under load). */
static int run_data(const char *data, size_t len, void *arg)
{
    struct run_stream *rs = arg;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            rs->line[rs->len] = '\0';
            run_line(rs, rs->line);
            rs->len = 0;
            if (rs->ended)
                return 1;
            continue;
        }
        if (rs->len + 2 > rs->cap) {
            rs->cap = rs->cap ? rs->cap * 2 : 4096;
            rs->line = xrealloc(rs->line, rs->cap);
        }
        rs->line[rs->len++] = data[i];
    }
    return 0;
}

static int run_attached(struct cli *cli, json_t *req)
{
    struct run_stream rs = {.exit_code = 0};
    struct serr err;
    int rc = cli_stream(cli, "POST", "/v1/containers/run", req, run_data, &rs, &err);
    if (rc == 0 && rs.len > 0) { /* a last line without its newline */
        rs.line[rs.len] = '\0';
        run_line(&rs, rs.line);
    }
    free(rs.line);
    if (rc < 0) {
        cli_error("%s", err.msg);
        return RUN_EXIT_DAEMON_ERROR;
    }
    if (rs.error[0] != '\0') {
        cli_error("%s", rs.error);
        return RUN_EXIT_DAEMON_ERROR;
    }
    if (!rs.ended) {
        cli_error("the daemon ended the stream before the container exited");
        return RUN_EXIT_DAEMON_ERROR;
    }
    return rs.exit_code;
}

/* -i or -t attached: a session as `shoal exec -i -t` (frames, input and
 * resize requests); the container's exit code is the CLI's. */
static int run_session(struct cli *cli, json_t *req)
{
    struct serr err;
    int code;
    int rc = cli_session_stream(cli, "/v1/containers/run", req,
                                json_is_true(json_object_get(req, "interactive")),
                                json_is_true(json_object_get(req, "tty")), &code, &err);
    if (rc < 0)
        cli_error("%s", err.msg);
    else if (rc > 0)
        cli_error("the daemon ended the stream before the container exited");
    return rc == 0 ? code : RUN_EXIT_DAEMON_ERROR;
}

int cli_run(struct cli *cli, int argc, char **argv)
{
    json_t *req;
    struct serr err;
    int rc = cli_build_run_request(argc, argv, &req, &err);
    if (rc == 1)
        return cli_help(cli_run_usage);
    if (rc < 0)
        return cli_usage_error("run", "%s", err.msg);
    bool session = json_is_true(json_object_get(req, "interactive")) ||
                   json_is_true(json_object_get(req, "tty"));
    if (!json_is_true(json_object_get(req, "detach"))) {
        rc = session ? run_session(cli, req) : run_attached(cli, req);
        json_decref(req);
        return rc;
    }
    json_t *out;
    rc = cli_call(cli, "POST", "/v1/containers/run", req, &out, &err);
    json_decref(req);
    if (rc < 0) {
        cli_error("%s", err.msg);
        return RUN_EXIT_DAEMON_ERROR;
    }
    printf("%s\n", cli_str(out, "id"));
    json_decref(out);
    return CLI_EXIT_OK;
}

static const char ps_usage[] = "Usage:  shoal ps [OPTIONS]\n\nList containers\n\n"
                               "Options:\n"
                               "  -a, --all             Show all containers (default shows just "
                               "running)\n"
                               "      --filter filter   Filter output based on conditions provided\n"
                               "      --format string   Format output (json, table, a Go template such as\n"
                               "                        '{{.Name}}' or 'table {{.ID}}\\t{{.Name}}')\n"
                               "  -q, --quiet           Only display IDs\n";

static void container_row(struct table *t, json_t *c)
{
    char id[16], created[64], status[64], state[32];
    cli_short_id(cli_str(c, "id"), id, sizeof(id));
    cli_ago(cli_int(c, "created_at"), created, sizeof(created));
    cli_capitalize(cli_str(c, "state"), state, sizeof(state));
    if (strcmp(cli_str(c, "state"), "exited") == 0)
        snprintf(status, sizeof(status), "%s (%lld)", state, (long long)cli_int(c, "exit_code"));
    else
        snprintf(status, sizeof(status), "%s", state);
    const char *cells[] = {id, cli_str(c, "image"), created, status, cli_str(c, "name")};
    table_add(t, cells);
}

int cli_ps(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("ps", ps_usage, "aFQ", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("ps", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    json_t *list;
    struct serr err;
    if (cli_call(cli, "GET", "/v1/containers?tasks=1", NULL, &list, &err) < 0)
        return cli_fail(&err);
    /* Like docker, only running containers unless -a. */
    json_t *shown = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) if (fl.all || strcmp(cli_str(c, "state"), "running") == 0)
        json_array_append(shown, c);
    if (fl.json) {
        cli_print_json(shown, false);
    } else {
        static const char *const head[] = {"CONTAINER ID", "IMAGE", "CREATED", "STATUS", "NAMES"};
        struct table *t = table_new(5, head);
        json_array_foreach(shown, i, c) container_row(t, c);
        table_print_free(t);
    }
    json_decref(shown);
    json_decref(list);
    return CLI_EXIT_OK;
}

static const char rm_usage[] = "Usage:  shoal rm [OPTIONS] CONTAINER [CONTAINER...]\n\n"
                               "Remove one or more containers\n\n"
                               "Options:\n"
                               "  -f, --force   Force the removal of a running container\n";

int cli_rm(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("rm", rm_usage, "f", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("rm", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_remove_each(cli, "/v1/containers/%s", fl.force ? "?force=1" : "",
                           argc - fl.first_arg, argv + fl.first_arg);
}
