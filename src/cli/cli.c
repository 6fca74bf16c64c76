/* CLI plumbing shared by every command: global flags and dispatch, messages,
 * option parsing, API calls, waiting for services, tables. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json_get.h"
#include "base/util.h"
#include "base/version.h"
#include "http/http.h"

static const char main_usage[] =
    "Usage:  shoal [OPTIONS] COMMAND\n"
    "\n"
    "A small cluster orchestrator.\n"
    "\n"
    "Options:\n"
    "  -H, --host string      Daemon socket to connect to (default " CLI_DEFAULT_HOST ",\n"
    "                         or $SHOAL_HOST); tcp://HOST:PORT reaches a manager's\n"
    "                         cluster port over TLS\n"
    "      --tls-dir string   Client certificate for tcp:// hosts (default $SHOAL_TLS_DIR,\n"
    "                         or ~/.shoal; see 'shoal swarm admin-cert')\n"
    "  -h, --help             Print usage\n"
    "\n"
    "Management Commands:\n"
    "  alert       Alert rules and alerts (add, ls, rm, history)\n"
    "  config      Manage swarm configs\n"
    "  container   Manage containers of 'shoal run' (ls, prune, rm)\n"
    "  dashboard   The web dashboard's link (shoal dashboard url)\n"
    "  dev         Run a test cluster of N nodes on this machine\n"
    "  image       Manage images\n"
    "  job         Batch jobs, OAR's way (sub, ls, inspect, rm, hold, resume)\n"
    "  network     Manage networks\n"
    "  node        Manage swarm nodes\n"
    "  secret      Manage swarm secrets\n"
    "  service     Manage swarm services\n"
    "  stack       Manage stacks (Compose files)\n"
    "  swarm       Manage the swarm\n"
    "  system      Manage shoal (df, info, prune)\n"
    "  volume      Manage volumes\n"
    "\n"
    "Commands:\n"
    "  info        Display system-wide information\n"
    "  login       Log in to a registry\n"
    "  logout      Log out from a registry\n"
    "  attach      Attach to a running container's input and output\n"
    "  exec        Execute a command in a running container\n"
    "  logs        Fetch the logs of a container, service or task\n"
    "  ps          List containers\n"
    "  inspect     Return low-level information on containers\n"
    "  kill        Kill one or more running containers\n"
    "  restart     Restart one or more containers\n"
    "  rm          Remove one or more containers\n"
    "  run         Run a command in a new container\n"
    "  start       Start one or more stopped containers\n"
    "  stats       Display containers' resource usage statistics\n"
    "  stop        Stop one or more running containers\n"
    "  version     Show the shoal version information\n"
    "  daemon      Run the shoal daemon\n"
    "\n"
    "Run 'shoal COMMAND --help' for more information on a command.\n";

static const struct cli_cmd top_commands[] = {
    {"swarm", NULL, cli_swarm, NULL},     {"node", NULL, cli_node, NULL},
    {"image", NULL, cli_image, NULL},     {"service", NULL, cli_service, NULL},
    {"version", NULL, cli_version, NULL}, {"info", NULL, cli_info, NULL},
    {"run", NULL, cli_run, NULL},         {"ps", NULL, cli_ps, NULL},
    {"rm", NULL, cli_rm, NULL},           {"dev", NULL, cli_dev, NULL},
    {"stop", NULL, cli_stop, NULL},       {"start", NULL, cli_start, NULL},
    {"restart", NULL, cli_restart, NULL}, {"kill", NULL, cli_kill, NULL},
    {"inspect", NULL, cli_inspect_container, NULL}, {"stats", NULL, cli_stats, NULL},
    {"dashboard", NULL, cli_dashboard, NULL}, {"network", NULL, cli_network, NULL},
    {"login", NULL, cli_login, NULL},     {"logout", NULL, cli_logout, NULL},
    {"secret", NULL, cli_secret, NULL},   {"config", NULL, cli_config, NULL},
    {"logs", NULL, cli_logs, NULL},
    {"exec", NULL, cli_exec, NULL},
    {"attach", NULL, cli_attach, NULL},
    {"job", NULL, cli_job, NULL},
    {"system", NULL, cli_system, NULL},
    {"container", NULL, cli_container, NULL},
    {"stack", NULL, cli_stack, NULL},
    {"alert", NULL, cli_alert, NULL},
    {"volume", NULL, cli_volume, NULL},
    {NULL, NULL, NULL, NULL},
};

/* ---- messages ---- */

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("Error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "shoal %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nSee 'shoal %s --help'.\n", cmd);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_help(const char *text)
{
    fputs(text, stdout);
    return CLI_EXIT_OK;
}

int cli_fail(const struct serr *err)
{
    cli_error("%s", err->msg);
    return CLI_EXIT_ERROR;
}

/* ---- dispatch ---- */

static const struct cli_cmd *find_cmd(const struct cli_cmd *cmds, const char *name)
{
    for (const struct cli_cmd *c = cmds; c->name != NULL; c++)
        if (strcmp(c->name, name) == 0 || (c->alias && strcmp(c->alias, name) == 0))
            return c;
    return NULL;
}

static void print_group_help(const char *group, const struct cli_cmd *cmds, FILE *out)
{
    fprintf(out, "Usage:  shoal %s COMMAND\n\nCommands:\n", group);
    for (const struct cli_cmd *c = cmds; c->name != NULL; c++)
        fprintf(out, "  %-10s  %s\n", c->name, c->summary ? c->summary : "");
    fprintf(out, "\nRun 'shoal %s COMMAND --help' for more information on a command.\n", group);
}

int cli_dispatch_group(struct cli *cli, const char *group, const struct cli_cmd *cmds, int argc,
                       char **argv)
{
    if (argc < 2) {
        print_group_help(group, cmds, stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_group_help(group, cmds, stdout);
        return CLI_EXIT_OK;
    }
    if (argv[1][0] == '-' && argv[1][1] != '\0') { /* a flag before the subcommand */
        if (argv[1][1] == '-')
            return cli_usage_error(group, "unknown flag: %s", argv[1]);
        return cli_usage_error(group, "unknown shorthand flag: '%c' in %s", argv[1][1], argv[1]);
    }
    const struct cli_cmd *c = find_cmd(cmds, argv[1]);
    if (c == NULL)
        return cli_usage_error(group, "unknown command \"%s\"", argv[1]);
    return c->fn(cli, argc - 1, argv + 1);
}

/* Global flags come before the command: -H HOST, --host HOST, --host=HOST,
 * --tls-dir DIR, --tls-dir=DIR. */
static int parse_global_flags(struct cli *cli, int argc, char **argv, int *first)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *first = -1;
            return CLI_EXIT_OK;
        } else if (strcmp(a, "-H") == 0 || strcmp(a, "--host") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "shoal: flag needs an argument: %s\nSee 'shoal --help'.\n", a);
                return CLI_EXIT_USAGE;
            }
            cli->host = argv[++i];
        } else if (strncmp(a, "--host=", 7) == 0) {
            cli->host = a + 7;
        } else if (strcmp(a, "--tls-dir") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "shoal: flag needs an argument: %s\nSee 'shoal --help'.\n", a);
                return CLI_EXIT_USAGE;
            }
            cli->tls_dir = argv[++i];
        } else if (strncmp(a, "--tls-dir=", 10) == 0) {
            cli->tls_dir = a + 10;
        } else if (strncmp(a, "-H", 2) == 0) {
            cli->host = a + 2;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            *first = 0; /* like docker: shoal -v prints the version */
            return CLI_EXIT_OK;
        } else if (a[1] != '-' && a[1] != '\0') {
            fprintf(stderr, "shoal: unknown shorthand flag: '%c' in %s\nSee 'shoal --help'.\n",
                    a[1], a);
            return CLI_EXIT_USAGE;
        } else {
            fprintf(stderr, "shoal: unknown flag: %s\nSee 'shoal --help'.\n", a);
            return CLI_EXIT_USAGE;
        }
    }
    *first = i;
    return CLI_EXIT_OK;
}

int cli_main(int argc, char **argv)
{
    struct cli cli = {.host = getenv("SHOAL_HOST")};
    if (cli.host == NULL || cli.host[0] == '\0')
        cli.host = CLI_DEFAULT_HOST;
    int first = 0;
    int rc = parse_global_flags(&cli, argc, argv, &first);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (first < 0)
        return cli_help(main_usage);
    if (first == 0) {
        printf("shoal version %s\n", SHOAL_VERSION);
        return CLI_EXIT_OK;
    }
    if (first >= argc) {
        fputs(main_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[first], "help") == 0)
        return cli_help(main_usage);
    const struct cli_cmd *c = find_cmd(top_commands, argv[first]);
    if (c == NULL) {
        fprintf(stderr, "shoal: '%s' is not a shoal command.\nSee 'shoal --help'.\n",
                argv[first]);
        return CLI_EXIT_USAGE;
    }
    /* Output order matters when stdout and stderr share a pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = c->fn(&cli, argc - first, argv + first);
    http_client_close(cli.client);
    return rc;
}

/* ---- option parsing ---- */

/* The word getopt works on, for messages: inside a cluster of short flags
 * ("-it") optind does not move, so argv[optind - 1] would be the word before
 * it. -1: the next call starts a new word. Reset when optind is 0. */
static int getopt_word = -1;

/* The word a new getopt call looks at: from `from` on, skipping the
 * arguments that are no flags when permuting (getopt does the same). */
static int next_flag_word(int argc, char **argv, int from, bool permute)
{
    for (int j = from; permute && j < argc; j++)
        if (argv[j][0] == '-' && argv[j][1] != '\0')
            return j;
    return from;
}

/* getopt's complaint in pflag's (docker's) words, naming the flag. */
static void getopt_message(int c, const char *word, struct serr *err)
{
    bool is_long = strncmp(word, "--", 2) == 0;
    if (c == ':' && is_long)
        serr_set(err, SERR_INVALID, "flag needs an argument: %s", word);
    else if (c == ':')
        serr_set(err, SERR_INVALID, "flag needs an argument: '%c' in %s", optopt, word);
    else if (is_long && optopt != 0 && strchr(word, '=') != NULL)
        serr_set(err, SERR_INVALID, "flag takes no value: %s", word);
    else if (!is_long && optopt != 0)
        serr_set(err, SERR_INVALID, "unknown shorthand flag: '%c' in %s", optopt, word);
    else
        serr_set(err, SERR_INVALID, "unknown flag: %s", word);
}

/* permute: flags may follow the positional arguments (`service ps web
 * --format json`, as docker allows); commands whose arguments end with a
 * command line to run (service create, run) stop at the first one instead.
 * Short flags combine as in docker: -it is -i -t, -eK=V is -e K=V. */
static int getopt_mode(int argc, char **argv, const char *shortopts,
                       const struct option *longopts, bool permute, struct serr *err)
{
    char optstring[128];
    snprintf(optstring, sizeof(optstring), "%s:%s", permute ? "" : "+", shortopts);
    if (optind == 0)
        getopt_word = -1;
    int from = optind == 0 ? 1 : optind;
    opterr = 0;
    optopt = 0;
    int c = getopt_long(argc, argv, optstring, longopts, NULL);
    if (c == -1) {
        getopt_word = -1;
        return c;
    }
    if (getopt_word < 0)
        getopt_word = next_flag_word(argc, argv, from, permute);
    const char *word = getopt_word < argc ? argv[getopt_word] : "";
    if (c == '?' || c == ':') {
        getopt_message(c, word, err);
        c = '?';
    }
    /* past the word (its last flag, or a flag with its value): a new one next */
    if (optind > getopt_word || strncmp(word, "--", 2) == 0)
        getopt_word = -1;
    return c;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               struct serr *err)
{
    return getopt_mode(argc, argv, shortopts, longopts, false, err);
}

/* Set by a listing's flags for table_print_free: --format TEMPLATE, -q,
 * --filter (one command per process). */
static const char *table_template;
static bool table_quiet;
static json_t *table_filters;

int cli_flags(const char *cmd, const char *usage, const char *allowed, int argc, char **argv,
              struct cli_flags *fl)
{
    static const struct option all[] = {
        {"format", required_argument, NULL, 'F'}, {"force", no_argument, NULL, 'f'},
        {"all", no_argument, NULL, 'a'},          {"follow", no_argument, NULL, 'l'},
        {"tail", required_argument, NULL, 't'},   {"detach", no_argument, NULL, 'd'},
        {"input", required_argument, NULL, 'i'},  {"advertise-addr", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},         {"quiet", no_argument, NULL, 'q'},
        {"filter", required_argument, NULL, 'L'}, {"no-trunc", no_argument, NULL, 'T'},
        {"digests", no_argument, NULL, 'G'},
    };
    struct option longopts[sizeof(all) / sizeof(all[0]) + 1];
    size_t n = 0;
    char shortopts[16] = "h";
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i].val == 'h' || strchr(allowed, all[i].val) != NULL ||
            (strchr("qL", all[i].val) && strchr(allowed, 'Q')))
            longopts[n++] = all[i];
    memset(&longopts[n], 0, sizeof(longopts[n]));
    if (strchr(allowed, 'f') || strchr(allowed, 'l'))
        strcat(shortopts, "f");
    if (strchr(allowed, 'a'))
        strcat(shortopts, "a");
    if (strchr(allowed, 'd'))
        strcat(shortopts, "d");
    if (strchr(allowed, 'i'))
        strcat(shortopts, "i:");
    if (strchr(allowed, 'Q')) /* a listing: -q, --filter and templates */
        strcat(shortopts, "q");
    memset(fl, 0, sizeof(*fl));
    struct serr err;
    optind = 0;
    int c;
    while ((c = getopt_mode(argc, argv, shortopts, longopts, true, &err)) != -1) {
        switch (c) {
        case 'h': return cli_help(usage);
        case 'q': table_quiet = true; break;
        case 'T': fl->no_trunc = true; break;
        case 'G': fl->digests = true; break;
        case 'L':
            if (table_filters == NULL)
                table_filters = json_object();
            if (cli_filter_add(table_filters, optarg, &err) < 0)
                return cli_usage_error(cmd, "%s", err.msg);
            break;
        case 'F':
            if (strchr(allowed, 'Q') && (strstr(optarg, "{{") || strncmp(optarg, "table ", 6) == 0)) {
                table_template = optarg; /* rows of the table as Go-style templates */
                fl->json = false;
                break;
            }
            if (cli_parse_format(optarg, &fl->json, &err) < 0)
                return cli_usage_error(cmd, "%s", err.msg);
            break;
        case 'f':
            /* -f is --follow for logs, --force elsewhere, as in docker. */
            if (strchr(allowed, 'l'))
                fl->follow = true;
            else
                fl->force = true;
            break;
        case 'a': fl->all = true; break;
        case 'l': fl->follow = true; break;
        case 't': fl->tail = optarg; break;
        case 'd': fl->detach = true; break;
        case 'i': fl->input = optarg; break;
        case 'A': fl->advertise_addr = optarg; break;
        default: return cli_usage_error(cmd, "%s", err.msg);
        }
    }
    fl->first_arg = optind;
    return -1;
}

int cli_nargs(const char *cmd, int have, int min, int max)
{
    if (have >= min && (max < 0 || have <= max))
        return -1;
    if (min == max)
        return cli_usage_error(cmd, "requires exactly %d argument%s", min, min == 1 ? "" : "s");
    if (have < min)
        return cli_usage_error(cmd, "requires at least %d argument%s", min, min == 1 ? "" : "s");
    if (max == 0)
        return cli_usage_error(cmd, "accepts no arguments");
    return cli_usage_error(cmd, "requires at most %d argument%s", max, max == 1 ? "" : "s");
}

int cli_parse_uint(const char *what, const char *s, int64_t max, int64_t *out, struct serr *err)
{
    const char *p = s;
    if (*p == '\0')
        return serr_set(err, SERR_INVALID, "invalid %s \"\": must be a non-negative integer", what);
    int64_t v = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return serr_set(err, SERR_INVALID, "invalid %s \"%s\": must be a non-negative integer",
                            what, s);
        if (v > (max - (*p - '0')) / 10)
            return serr_set(err, SERR_INVALID, "invalid %s \"%s\": must be at most %lld", what, s,
                            (long long)max);
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

int cli_parse_positive_double(const char *what, const char *s, double *out, struct serr *err)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v) || !(v > 0))
        return serr_set(err, SERR_INVALID, "invalid %s \"%s\": must be a positive number", what,
                        s);
    *out = v;
    return 0;
}

int cli_parse_ratio(const char *what, const char *s, double *out, struct serr *err)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !(v >= 0 && v <= 1))
        return serr_set(err, SERR_INVALID, "invalid %s \"%s\": a number from 0 to 1", what, s);
    *out = v;
    return 0;
}

int cli_parse_format(const char *s, bool *json, struct serr *err)
{
    if (strcmp(s, "json") == 0 || strcmp(s, "{{json .}}") == 0)
        *json = true;
    else if (strcmp(s, "table") == 0)
        *json = false;
    else
        return serr_set(err, SERR_INVALID, "unsupported format \"%s\" (use json or table)", s);
    return 0;
}

/* ---- API calls ---- */

char *cli_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1);
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("-._~:@", *p) != NULL) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

char *cli_path(const char *fmt, const char *arg)
{
    char *escaped = cli_escape(arg);
    char *path = xasprintf(fmt, escaped);
    free(escaped);
    return path;
}

static struct http_client *client(struct cli *cli, struct serr *err)
{
    if (cli->client == NULL)
        cli->client = http_client_open_tls(cli->host, cli->tls_dir, err);
    return cli->client;
}

/* An error answer's {"message"}, or the raw body when it is not JSON. */
static int api_error(int status, const char *body, struct serr *err)
{
    json_t *j = json_loads(body, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "message"));
    enum serr_kind kind = status == 404   ? SERR_NOT_FOUND
                          : status == 409 ? SERR_CONFLICT
                          : status == 503 ? SERR_UNAVAILABLE
                          : status < 500  ? SERR_INVALID
                                          : SERR_INTERNAL;
    if (msg != NULL)
        serr_set(err, kind, "%s", msg);
    else if (body[0] != '\0')
        serr_set(err, kind, "%.400s", body);
    else
        serr_set(err, kind, "the daemon answered %d", status);
    json_decref(j);
    return -1;
}

static int parse_answer(struct http_response *resp, json_t **out, struct serr *err)
{
    int rc = 0;
    if (resp->status >= 400) {
        rc = api_error(resp->status, resp->body, err);
    } else if (out != NULL) {
        json_error_t jerr;
        *out = resp->body_len == 0 ? json_null() : json_loads(resp->body, 0, &jerr);
        if (*out == NULL)
            rc = serr_set(err, SERR_INTERNAL, "bad JSON from the daemon: %s", jerr.text);
    }
    free(resp->body);
    return rc;
}

int cli_call(struct cli *cli, const char *method, const char *path, json_t *body, json_t **out,
             struct serr *err)
{
    if (out != NULL)
        *out = NULL;
    struct http_client *c = client(cli, err);
    if (c == NULL)
        return -1;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct http_response resp;
    int rc = http_request(c, method, path, text ? "application/json" : NULL, text,
                          text ? strlen(text) : 0, &resp, err);
    free(text);
    if (rc < 0)
        return -1;
    return parse_answer(&resp, out, err);
}

int cli_create(struct cli *cli, const char *path, json_t *body)
{
    struct serr err = {0};
    json_t *out = NULL;
    int rc = cli_call(cli, "POST", path, body, &out, &err);
    json_decref(body);
    if (rc < 0)
        return cli_fail(&err);
    printf("%s\n", cli_str(out, "id"));
    json_decref(out);
    return CLI_EXIT_OK;
}

int cli_call_file(struct cli *cli, const char *path, const char *file, json_t **out,
                  struct serr *err)
{
    if (out != NULL)
        *out = NULL;
    struct http_client *c = client(cli, err);
    if (c == NULL)
        return -1;
    struct http_response resp;
    if (http_request_file(c, "POST", path, file, &resp, err) < 0)
        return -1;
    return parse_answer(&resp, out, err);
}

/* Passes a stream on, but keeps an error answer's body for the message. */
struct stream_ctx {
    int status;
    char error_body[2048];
    size_t error_len;
    int (*on_data)(const char *data, size_t len, void *arg);
    void *arg;
};

static int stream_data(const char *data, size_t len, void *arg)
{
    struct stream_ctx *ctx = arg;
    if (ctx->status < 400)
        return ctx->on_data(data, len, ctx->arg);
    size_t room = sizeof(ctx->error_body) - 1 - ctx->error_len;
    size_t n = len < room ? len : room;
    memcpy(ctx->error_body + ctx->error_len, data, n);
    ctx->error_len += n;
    ctx->error_body[ctx->error_len] = '\0';
    return 0;
}

int cli_stream_raw(struct cli *cli, const char *method, const char *path,
                   const char *content_type, const char *body, size_t len,
                   int (*on_data)(const char *data, size_t len, void *arg), void *arg,
                   struct serr *err)
{
    struct http_client *c = client(cli, err);
    if (c == NULL)
        return -1;
    struct stream_ctx ctx = {.on_data = on_data, .arg = arg};
    if (http_request_stream(c, method, path, content_type, body, len, &ctx.status, stream_data,
                            &ctx, err) < 0)
        return -1;
    if (ctx.status >= 400)
        return api_error(ctx.status, ctx.error_body, err);
    return 0;
}

int cli_stream(struct cli *cli, const char *method, const char *path, json_t *body,
               int (*on_data)(const char *data, size_t len, void *arg), void *arg,
               struct serr *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc = cli_stream_raw(cli, method, path, text ? "application/json" : NULL, text,
                            text ? strlen(text) : 0, on_data, arg, err);
    free(text);
    return rc;
}

int cli_lines_data(const char *data, size_t len, void *split)
{
    line_split_feed(split, data, len);
    return 0;
}

/* ---- waiting for a service ---- */

/* How long the same placement failure may last before the wait gives up
 * (a node that is still starting or joining does not end it). */
#define WAIT_UNPLACED_MS 10000

struct wait_state {
    char pending[512]; /* the reason a task is not placed, as last seen */
    int64_t pending_since;
    int64_t running_since; /* a one-shot service first seen all running; 0: not */
};

/* A one-shot task (restart condition none) may still fail after it started:
 * as `docker service create` verifies, its service converges once every task
 * has finished, or once they have all run this long. */
#define WAIT_ONE_SHOT_VERIFY_MS 5000

/* Whether a service whose tasks all run (some not finished) has converged. */
static bool running_converged(json_t *svc, struct wait_state *ws)
{
    const char *cond = cli_str(json_object_get(svc, "spec"), "restart_condition");
    if (strcmp(cond, "none") != 0)
        return true;
    if (ws->running_since == 0)
        ws->running_since = mono_ms();
    return mono_ms() - ws->running_since >= WAIT_ONE_SHOT_VERIFY_MS;
}

/* One look at the service: 1 converged, 0 not yet, -1 will not (err says why).
 * Converged: every wanted task runs or has finished for good (a one-shot
 * task), and no rolling update is going on. */
static int wait_step(json_t *svc, const char *service, struct wait_state *ws, struct serr *err)
{
    int64_t done = cli_int(svc, "replicas_completed") + cli_int(svc, "replicas_failed");
    bool updating = strcmp(cli_str(svc, "update_status"), "updating") == 0;
    int64_t desired = cli_int(svc, "replicas_desired");
    bool all_there = !updating && cli_int(svc, "replicas_running") + done == desired;
    if (!all_there || done == desired)
        ws->running_since = 0;
    if (all_there && (done == desired || running_converged(svc, ws))) {
        if (cli_int(svc, "replicas_failed") == 0)
            return 1;
        const char *why = cli_str(svc, "failed_reason");
        return serr_set(err, SERR_UNAVAILABLE,
                        "service %s: %lld of %lld tasks failed: %s (see 'shoal service ps %s')",
                        service, (long long)cli_int(svc, "replicas_failed"),
                        (long long)cli_int(svc, "replicas_desired"),
                        why[0] ? why : "no error given", service);
    }
    const char *reason = cli_str(svc, "pending_reason");
    if (reason[0] == '\0') {
        ws->pending[0] = '\0';
        return 0;
    }
    if (strcmp(reason, ws->pending) != 0) {
        /* docker prints it in its progress lines: say it, and give it a little time */
        fprintf(stderr, "waiting: a task is not placed: %s\n", reason);
        snprintf(ws->pending, sizeof(ws->pending), "%s", reason);
        ws->pending_since = mono_ms();
        return 0;
    }
    if (mono_ms() - ws->pending_since < WAIT_UNPLACED_MS)
        return 0;
    return serr_set(err, SERR_UNAVAILABLE,
                    "service %s: a task cannot be placed: %s; it stays pending until a node "
                    "fits (see 'shoal service ps %s')",
                    service, reason, service);
}

int cli_wait_converged(struct cli *cli, const char *service, struct serr *err)
{
    char *path = cli_path("/v1/services/%s", service);
    int64_t deadline = mono_ms() + 60000;
    struct wait_state ws = {.pending_since = 0};
    int rc = -1;
    for (;;) {
        json_t *svc = NULL;
        if (cli_call(cli, "GET", path, NULL, &svc, err) < 0)
            break;
        int step = wait_step(svc, service, &ws, err);
        json_decref(svc);
        if (step != 0) {
            rc = step > 0 ? 0 : -1;
            break;
        }
        if (mono_ms() >= deadline) {
            serr_set(err, SERR_UNAVAILABLE,
                     "service %s did not converge within 60s (see 'shoal service ps %s')", service,
                     service);
            break;
        }
        usleep(100 * 1000);
    }
    free(path);
    return rc;
}

/* ---- output ---- */

struct table {
    int ncols;
    size_t nrows, cap;
    char **cells; /* nrows * ncols, row 0 is the header */
};

struct table *table_new(int ncols, const char *const *headers)
{
    struct table *t = xcalloc(1, sizeof(*t));
    t->ncols = ncols;
    table_add(t, headers);
    return t;
}

void table_add(struct table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = xrealloc(t->cells, t->cap * (size_t)t->ncols * sizeof(char *));
    }
    for (int i = 0; i < t->ncols; i++)
        t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = xstrdup(cells[i] ? cells[i] : "");
    t->nrows++;
}

/* "DESIRED STATE" -> "DesiredState", "ID" stays: Docker's field names. */
static char *field_name(const char *header)
{
    char *out = xstrdup(header);
    size_t o = 0;
    bool word_start = true;
    for (const char *p = header; *p; p++) {
        if (*p == ' ') {
            word_start = true;
            continue;
        }
        out[o++] = word_start ? *p : (char)tolower((unsigned char)*p);
        word_start = false;
    }
    out[o] = '\0';
    if (strcmp(out, "Id") == 0 || strcmp(out, "ContainerId") == 0)
        strcpy(out, "ID");
    return out;
}

static json_t *row_object(struct table *t, size_t r, bool header_text)
{
    json_t *obj = json_object();
    for (int i = 0; i < t->ncols; i++) {
        char *key = field_name(t->cells[i]);
        json_object_set_new(obj, key, json_string(t->cells[(header_text ? 0 : r) * (size_t)t->ncols + (size_t)i]));
        free(key);
    }
    return obj;
}

static void table_free(struct table *t)
{
    for (size_t k = 0; k < t->nrows * (size_t)t->ncols; k++)
        free(t->cells[k]);
    free(t->cells);
    free(t);
}

/* A template line split at tabs into `ncols` cells (short lines padded). */
static void add_template_line(struct table **out, char *line)
{
    int n = 1;
    for (char *p = line; *p; p++)
        n += *p == '\t';
    if (*out == NULL) {
        *out = xcalloc(1, sizeof(**out));
        (*out)->ncols = n;
    }
    const char **cells = xcalloc((size_t)(*out)->ncols, sizeof(char *));
    char *save = line;
    for (int i = 0; i < (*out)->ncols; i++)
        cells[i] = save ? strsep(&save, "\t") : "";
    table_add(*out, cells);
    free(cells);
}

struct table_custom {
    const char *tmpl; /* NULL: the table's own columns */
    bool as_table, quiet;
    json_t *filters;
};

/* -q, --filter, --format TEMPLATE: the rows as objects keyed by field name. */
static int table_print_custom(struct table *t, const struct table_custom *c, struct serr *err)
{
    struct table *out = NULL;
    if (c->as_table && c->tmpl == NULL) { /* filtered, as it is */
        out = xcalloc(1, sizeof(*out));
        out->ncols = t->ncols;
        table_add(out, (const char *const *)t->cells);
    } else if (c->as_table) {
        json_t *head = row_object(t, 0, true);
        char *line = cli_template_expand(c->tmpl, head, err);
        json_decref(head);
        if (line == NULL)
            return -1;
        add_template_line(&out, line);
        free(line);
    }
    int rc = 0;
    for (size_t r = 1; r < t->nrows && rc == 0; r++) {
        json_t *row = row_object(t, r, false);
        bool match = true;
        if (c->filters && cli_filter_match(row, c->filters, &match, err) < 0)
            rc = -1;
        if (rc == 0 && match) {
            if (c->quiet) {
                printf("%s\n", t->cells[r * (size_t)t->ncols]);
            } else if (c->tmpl) {
                char *line = cli_template_expand(c->tmpl, row, err);
                if (line == NULL)
                    rc = -1;
                else if (c->as_table)
                    add_template_line(&out, line);
                else
                    printf("%s\n", line);
                free(line);
            } else {
                table_add(out, (const char *const *)&t->cells[r * (size_t)t->ncols]);
            }
        }
        json_decref(row);
    }
    if (out && rc == 0 && !c->quiet)
        table_print_free(out);
    else if (out)
        table_free(out);
    return rc;
}

void table_print_free(struct table *t)
{
    if (table_template || table_quiet || table_filters) {
        struct table_custom c = {.quiet = table_quiet, .filters = table_filters, .as_table = true};
        if (table_template) {
            c.as_table = strncmp(table_template, "table", 5) == 0;
            c.tmpl = table_template + (c.as_table ? 5 : 0);
            while (c.as_table && *c.tmpl == ' ')
                c.tmpl++;
            if (*c.tmpl == '\0')
                c.tmpl = NULL;
        }
        table_template = NULL; /* the table printed from here is a plain one */
        table_quiet = false;
        table_filters = NULL;
        struct serr err = {0};
        int rc = table_print_custom(t, &c, &err);
        json_decref(c.filters);
        table_free(t);
        if (rc < 0) {
            fprintf(stderr, "Error: %s\n", err.msg);
            exit(CLI_EXIT_ERROR);
        }
        return;
    }
    size_t *width = xcalloc((size_t)t->ncols, sizeof(size_t));
    for (size_t r = 0; r < t->nrows; r++)
        for (int i = 0; i < t->ncols; i++) {
            size_t len = strlen(t->cells[r * (size_t)t->ncols + (size_t)i]);
            if (len > width[i])
                width[i] = len;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int i = 0; i < t->ncols; i++) {
            const char *cell = t->cells[r * (size_t)t->ncols + (size_t)i];
            /* The last column is not padded: no trailing blanks. */
            if (i == t->ncols - 1)
                printf("%s\n", cell);
            else
                printf("%-*s   ", (int)width[i], cell);
        }
    }
    for (size_t k = 0; k < t->nrows * (size_t)t->ncols; k++)
        free(t->cells[k]);
    free(t->cells);
    free(width);
    free(t);
}

void cli_print_json(json_t *j, bool pretty)
{
    char *text = json_dumps(j, pretty ? JSON_INDENT(4) : JSON_COMPACT | JSON_ENCODE_ANY);
    if (text != NULL)
        printf("%s\n", text);
    free(text);
}

const char *cli_str(json_t *obj, const char *key)
{
    return jstr_or(obj, key, "");
}

int64_t cli_int(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)json_number_value(v);
}

void cli_capitalize(const char *s, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", s);
    if (out[0] != '\0')
        out[0] = (char)toupper((unsigned char)out[0]);
}

void cli_short_id(const char *id, char *out, size_t outlen)
{
    const char *colon = strchr(id, ':');
    snprintf(out, outlen < 13 ? outlen : 13, "%s", colon ? colon + 1 : id);
}

void cli_human_size(int64_t bytes, char *out, size_t outlen)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1000 && u < 5) {
        v /= 1000;
        u++;
    }
    snprintf(out, outlen, "%.4g%s", v, units[u]);
}

void cli_ago(int64_t at_ms, char *out, size_t outlen)
{
    char age[64];
    int64_t delta = now_ms() - at_ms;
    format_age(delta > 0 ? delta : 0, age, sizeof(age));
    /* format_age starts a sentence ("Less than a second"); here it does not. */
    age[0] = (char)tolower((unsigned char)age[0]);
    snprintf(out, outlen, "%s ago", age);
}
