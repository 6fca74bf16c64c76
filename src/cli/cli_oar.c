/* The OAR commands: shoal called by a link named oarsub, oarstat, oardel,
 * oarnodes, oarhold or oarresume is that command, mapped onto /v1/jobs with
 * the options and output OAR users' scripts rely on (OAR_JOB_ID=N, oarstat's
 * table, -f and -J). The daemon's address: $SHOAL_HOST, else the default. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "cli/cli.h"
#include "http/http.h"

static const char *const oar_names[] = {"oarsub", "oarstat", "oardel", "oarnodes", "oarhold",
                                        "oarresume", NULL};

const char *cli_oar_name(const char *argv0)
{
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    for (int i = 0; oar_names[i]; i++)
        if (strcmp(base, oar_names[i]) == 0)
            return oar_names[i];
    return NULL;
}

static int oar_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int oar_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nSee '%s --help'.\n", cmd);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

static int oar_fail(const char *cmd, const struct serr *err)
{
    fprintf(stderr, "%s: %s\n", cmd, err->msg);
    return CLI_EXIT_ERROR;
}

/* ---- oarsub ---- */

static const char oarsub_usage[] =
    "Usage: oarsub [OPTIONS] COMMAND\n\n"
    "Submit a batch job (shoal job sub); prints OAR_JOB_ID=ID\n\n"
    "Options:\n"
    "  -l, --resource R      Resources: /nodes=2/core=1,walltime=00:10:00\n"
    "  -p, --property P      Only nodes whose labels match: \"gpu='yes' AND rack!='b'\"\n"
    "  -q, --queue Q         admin, default or besteffort\n"
    "  -t, --type T          besteffort, idempotent\n"
    "  -n, --name NAME       The job's name\n"
    "  -a, --anterior JOB    Start once JOB is Terminated (also --after)\n"
    "  -r, --reservation T   Start at \"YYYY-MM-DD hh:mm:ss\" (advance reservation)\n"
    "      --array N         N jobs sharing an array id (OAR_ARRAY_INDEX 1..N)\n"
    "  -S, --scanscript      Read #OAR lines from the script\n"
    "  -I, --interactive     A shell in the job (no COMMAND); the job ends with it\n"
    "  -C, --connect JOB     A shell in the running job JOB\n"
    "      --image IMAGE     Image to run in\n";

static int oarsub(struct cli *cli, int argc, char **argv)
{
    json_t *body = NULL, *out = NULL;
    struct serr err = {0};
    int rc = cli_build_job_sub(argc, argv, &body, &err);
    if (rc == 1)
        return cli_help(oarsub_usage);
    if (rc < 0)
        return oar_usage_error("oarsub", "%s", err.msg);
    if (cli_job_wants_shell(body))
        return cli_job_shell(cli, body, true);
    bool array = json_object_get(body, "array") != NULL;
    bool reservation = json_object_get(body, "reservation") != NULL;
    rc = cli_call(cli, "POST", "/v1/jobs", body, &out, &err);
    json_decref(body);
    if (rc < 0)
        return oar_fail("oarsub", &err);
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(out, "ids"), i, id)
        printf("OAR_JOB_ID=%s\n", json_string_value(id));
    if (reservation)
        printf("Reservation valid --> OK\n");
    if (array)
        printf("OAR_ARRAY_ID=%s\n", cli_str(out, "id"));
    json_decref(out);
    return CLI_EXIT_OK;
}

/* ---- oarstat ---- */

static const char oarstat_usage[] =
    "Usage: oarstat [OPTIONS]\n\n"
    "List current jobs (shoal job ls)\n\n"
    "Options:\n"
    "  -j, --job ID          Only this job (repeatable; ended jobs too)\n"
    "      --array ID        Only the jobs of this array (ended ones too)\n"
    "  -u, --user [USER]     Only this user's jobs (default: $USER)\n"
    "  -f, --full            Every field of each job\n"
    "  -s, --state           Only ID: state\n"
    "  -J, --json            JSON, an object by job id\n";

struct oarstat_opts {
    json_t *ids; /* -j */
    const char *user, *array;
    bool full, state, json;
};

/* OAR's one-letter states (oarstat's S column). */
static const char *state_letter(const char *state)
{
    static const char *const map[][2] = {{"Waiting", "W"},   {"Hold", "H"},    {"toLaunch", "L"},
                                         {"Launching", "L"}, {"Running", "R"}, {"Finishing", "F"},
                                         {"Terminated", "T"}, {"Error", "E"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], state) == 0)
            return map[i][1];
    return "?";
}

/* ms since the epoch -> "YYYY-MM-DD hh:mm:ss" (local time), "" for 0. */
static void format_ms(int64_t ms, char *buf, size_t size)
{
    buf[0] = '\0';
    if (ms <= 0)
        return;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static const char *job_user(json_t *job)
{
    return *cli_str(job, "user") ? cli_str(job, "user") : "shoal";
}

/* The fields oarstat -f and -J show, OAR's names. */
static json_t *oar_fields(json_t *job)
{
    char sub[32], start[32], stop[32];
    format_ms(cli_int(job, "submitted_at"), sub, sizeof(sub));
    format_ms(cli_int(job, "started_at"), start, sizeof(start));
    format_ms(cli_int(job, "stopped_at"), stop, sizeof(stop));
    json_t *hosts = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(job, "assigned"), i, a)
        json_array_append_new(hosts, json_string(cli_str(a, "hostname")));
    json_t *types = json_object_get(job, "types");
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:s}",
                          "Job_Id", (json_int_t)atoll(cli_str(job, "id")), "name", cli_str(job, "name"),
                          "owner", job_user(job), "state", cli_str(job, "state"), "queue",
                          cli_str(job, "queue"), "command", cli_str(job, "command"), "types",
                          types ? json_incref(types) : json_array(), "assigned_network_address", hosts,
                          "wanted_resources", cli_str(job, "request"), "submissionTime", sub,
                          "startTime", start, "stopTime", stop, "message", cli_str(job, "message"));
    json_object_set_new(o, "properties", json_string(cli_str(job, "properties")));
    json_t *after = json_object_get(job, "after");
    json_object_set_new(o, "dependencies", after ? json_incref(after) : json_array());
    if (*cli_str(job, "array_id")) {
        json_object_set_new(o, "array_id", json_integer(atoll(cli_str(job, "array_id"))));
        json_object_set_new(o, "array_index", json_integer(cli_int(job, "array_index")));
    }
    json_object_set(o, "exit_code", json_object_get(job, "exit_code") ? json_object_get(job, "exit_code")
                                                                      : json_null());
    return o;
}

static void print_full(json_t *job)
{
    json_t *f = oar_fields(job);
    printf("Job_Id: %s\n", cli_str(job, "id"));
    const char *key;
    json_t *val;
    json_object_foreach(f, key, val)
    {
        if (strcmp(key, "Job_Id") == 0)
            continue;
        char *text = NULL;
        if (json_is_string(val))
            text = xstrdup(json_string_value(val));
        else if (json_is_integer(val))
            text = xasprintf("%lld", (long long)json_integer_value(val));
        else if (json_is_array(val)) {
            size_t len = 0, cap = 0, i;
            json_t *v;
            json_array_foreach(val, i, v)
            {
                if (i)
                    buf_append(&text, &len, &cap, " ", 1);
                buf_append(&text, &len, &cap, json_string_value(v), strlen(json_string_value(v)));
            }
        }
        printf("    %s = %s\n", key, text ? text : "");
        free(text);
    }
    printf("\n");
    json_decref(f);
}

static void print_oarstat(json_t *jobs, const struct oarstat_opts *o)
{
    size_t i;
    json_t *j;
    if (o->json) {
        json_t *by_id = json_object();
        json_array_foreach(jobs, i, j) json_object_set_new(by_id, cli_str(j, "id"), oar_fields(j));
        cli_print_json(by_id, false);
        json_decref(by_id);
        return;
    }
    if (!o->full && !o->state) {
        printf("%-10s %-14s %-14s %-19s S %-10s\n", "Job id", "Name", "User", "Submission Date",
               "Queue");
        printf("---------- -------------- -------------- ------------------- - ----------\n");
    }
    json_array_foreach(jobs, i, j)
    {
        char sub[32];
        format_ms(cli_int(j, "submitted_at"), sub, sizeof(sub));
        if (o->full)
            print_full(j);
        else if (o->state)
            printf("%s: %s\n", cli_str(j, "id"), cli_str(j, "state"));
        else
            printf("%-10s %-14.14s %-14.14s %-19s %s %-10s\n", cli_str(j, "id"), cli_str(j, "name"),
                   job_user(j), sub, state_letter(cli_str(j, "state")), cli_str(j, "queue"));
    }
}

/* The jobs oarstat shows: those of -j (any state), else the current ones. */
static int oarstat_jobs(struct cli *cli, const struct oarstat_opts *o, json_t **out)
{
    struct serr err = {0};
    json_t *all = NULL, *jobs = json_array();
    size_t i;
    json_t *j;
    if (json_array_size(o->ids) == 0 && cli_call(cli, "GET", "/v1/jobs", NULL, &all, &err) < 0) {
        json_decref(jobs);
        return oar_fail("oarstat", &err);
    }
    json_array_foreach(o->ids, i, j)
    {
        char *path = cli_path("/v1/jobs/%s", json_string_value(j));
        json_t *one = NULL;
        int rc = cli_call(cli, "GET", path, NULL, &one, &err);
        free(path);
        if (rc < 0) {
            json_decref(jobs);
            return oar_fail("oarstat", &err);
        }
        json_array_append_new(jobs, one);
    }
    json_array_foreach(all, i, j)
    {
        const char *s = cli_str(j, "state");
        bool current = strcmp(s, "Terminated") != 0 && strcmp(s, "Error") != 0;
        if (o->array ? strcmp(cli_str(j, "array_id"), o->array) == 0 : current)
            json_array_append(jobs, j);
    }
    json_decref(all);
    for (i = json_array_size(jobs); o->user && i-- > 0;)
        if (strcmp(job_user(json_array_get(jobs, i)), o->user) != 0)
            json_array_remove(jobs, i);
    *out = jobs;
    return CLI_EXIT_OK;
}

static int oarstat_parse(int argc, char **argv, struct oarstat_opts *o)
{
    static const struct option opts[] = {{"job", required_argument, NULL, 'j'},
                                         {"user", optional_argument, NULL, 'u'},
                                         {"full", no_argument, NULL, 'f'},
                                         {"state", no_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"array", required_argument, NULL, 'A'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct serr err = {0};
    optind = 0;
    int opt;
    while ((opt = cli_getopt(argc, argv, "hj:u::fsJ", opts, &err)) != -1) {
        if (opt == 'A')
            o->array = optarg;
        if (opt == '?')
            return oar_usage_error("oarstat", "%s", err.msg);
        if (opt == 'h')
            return cli_help(oarstat_usage);
        if (opt == 'j')
            json_array_append_new(o->ids, json_string(optarg));
        if (opt == 'u') {
            /* -u alone is the caller; -u NAME as OAR users write it */
            o->user = optarg;
            if (o->user == NULL && optind < argc && argv[optind][0] != '-')
                o->user = argv[optind++];
            if (o->user == NULL)
                o->user = cli_job_user();
        }
        o->full |= opt == 'f';
        o->state |= opt == 's';
        o->json |= opt == 'J';
    }
    if (optind < argc)
        return oar_usage_error("oarstat", "unexpected argument '%s'", argv[optind]);
    return -1;
}

static int oarstat(struct cli *cli, int argc, char **argv)
{
    struct oarstat_opts o = {.ids = json_array()};
    int rc = oarstat_parse(argc, argv, &o);
    json_t *jobs = NULL;
    if (rc < 0 && (rc = oarstat_jobs(cli, &o, &jobs)) == CLI_EXIT_OK)
        print_oarstat(jobs, &o);
    json_decref(jobs);
    json_decref(o.ids);
    return rc;
}

/* ---- oardel, oarhold, oarresume ---- */

static const char oardel_usage[] = "Usage: oardel JOB_ID [JOB_ID...]\n"
                                   "       oardel --array ARRAY_ID\n\n"
                                   "Delete jobs (shoal job rm): a running job is killed\n";
static const char oarhold_usage[] = "Usage: oarhold JOB_ID [JOB_ID...]\n\n"
                                    "Hold waiting jobs (shoal job hold)\n";
static const char oarresume_usage[] = "Usage: oarresume JOB_ID [JOB_ID...]\n\n"
                                      "Resume held jobs (shoal job resume)\n";

/* Each job id: `method` on /v1/jobs/ID`suffix`; OAR's line per job. */
static int oar_each(struct cli *cli, const char *cmd, const char *usage, const char *method,
                    const char *suffix, const char *done, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return cli_help(usage);
        else if (argv[i][0] == '-')
            return oar_usage_error(cmd, "unknown option '%s'", argv[i]);
    if (argc < 2)
        return oar_usage_error(cmd, "requires at least one JOB_ID");
    int status = CLI_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        char *base = cli_path("/v1/jobs/%s", argv[i]);
        char *path = xasprintf("%s%s", base, suffix);
        struct serr err = {0};
        if (cli_call(cli, method, path, NULL, NULL, &err) < 0)
            status = oar_fail(cmd, &err);
        else
            printf(done, argv[i]);
        free(path);
        free(base);
    }
    return status;
}

/* --array ID: the array's jobs not ended yet, as the ids oar_each takes
 * (argv[0] the command's name; caller frees with free_words). */
static int array_ids(struct cli *cli, const char *array, char ***out, int *n)
{
    json_t *all = NULL;
    struct serr err = {0};
    if (cli_call(cli, "GET", "/v1/jobs", NULL, &all, &err) < 0)
        return oar_fail("oardel", &err);
    char **ids = xcalloc(json_array_size(all) + 2, sizeof(*ids));
    *n = 0;
    ids[(*n)++] = xstrdup("oardel");
    size_t i;
    json_t *j;
    json_array_foreach(all, i, j)
    {
        const char *s = cli_str(j, "state");
        if (strcmp(cli_str(j, "array_id"), array) == 0 && strcmp(s, "Terminated") != 0 &&
            strcmp(s, "Error") != 0)
            ids[(*n)++] = xstrdup(cli_str(j, "id"));
    }
    json_decref(all);
    *out = ids;
    if (*n > 1)
        return CLI_EXIT_OK;
    fprintf(stderr, "oardel: array %s has no job left to delete\n", array);
    return CLI_EXIT_ERROR;
}

static void free_words(char **words, int n)
{
    for (int i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

static int oardel(struct cli *cli, int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--array") == 0) {
        char **ids = NULL;
        int n = 0;
        int rc = array_ids(cli, argv[2], &ids, &n);
        if (rc == CLI_EXIT_OK)
            rc = oar_each(cli, "oardel", oardel_usage, "DELETE", "",
                          "Deleting the job = %s ...REGISTERED.\n", n, ids);
        free_words(ids, n);
        return rc;
    }
    return oar_each(cli, "oardel", oardel_usage, "DELETE", "",
                    "Deleting the job = %s ...REGISTERED.\n", argc, argv);
}

static int oarhold(struct cli *cli, int argc, char **argv)
{
    return oar_each(cli, "oarhold", oarhold_usage, "POST", "/hold",
                    "[oarhold] Job %s is held: REGISTERED.\n", argc, argv);
}

static int oarresume(struct cli *cli, int argc, char **argv)
{
    return oar_each(cli, "oarresume", oarresume_usage, "POST", "/resume",
                    "[oarresume] Job %s is resumed: REGISTERED.\n", argc, argv);
}

/* ---- oarnodes ---- */

static const char oarnodes_usage[] =
    "Usage: oarnodes [OPTIONS]\n\n"
    "List resources, one per core of each node, with their state (Alive, Absent,\n"
    "Dead) and the jobs on them\n\n"
    "Options:\n"
    "  -s, --state   Only each node's resources and states\n"
    "  -J, --json    JSON, an object by resource id\n";

static const char *node_state(json_t *node)
{
    if (strcmp(cli_str(node, "status"), "down") == 0)
        return "Dead";
    if (strcmp(cli_str(node, "status"), "ready") != 0 || strcmp(cli_str(node, "availability"), "active") != 0)
        return "Absent";
    return "Alive";
}

/* The job ids on each core of `node` (cores filled in job order). */
static json_t *core_jobs(json_t *node, json_t *jobs, int ncores)
{
    json_t *cores = json_array();
    for (int c = 0; c < ncores; c++)
        json_array_append_new(cores, json_array());
    int next = 0;
    size_t i, k;
    json_t *j, *a;
    json_array_foreach(jobs, i, j)
    {
        const char *s = cli_str(j, "state");
        if (strcmp(s, "toLaunch") && strcmp(s, "Launching") && strcmp(s, "Running") &&
            strcmp(s, "Finishing"))
            continue;
        json_array_foreach(json_object_get(j, "assigned"), k, a)
        {
            if (strcmp(cli_str(a, "node_id"), cli_str(node, "id")) != 0)
                continue;
            for (int64_t c = 0; c < cli_int(a, "cores"); c++, next++)
                json_array_append_new(json_array_get(cores, (size_t)(next % ncores)),
                                      json_integer(atoll(cli_str(j, "id"))));
        }
    }
    return cores;
}

static void print_oarnodes(json_t *nodes, json_t *jobs, bool state_only, bool as_json)
{
    json_t *by_id = json_object();
    int rid = 0;
    size_t i, c;
    json_t *n, *on;
    json_array_foreach(nodes, i, n)
    {
        int ncores = (int)cli_int(json_object_get(n, "resources"), "cpus");
        ncores = ncores > 0 ? ncores : 1;
        json_t *cores = core_jobs(n, jobs, ncores);
        if (state_only && !as_json)
            printf("%s\n", cli_str(n, "hostname"));
        json_array_foreach(cores, c, on)
        {
            char id[16];
            snprintf(id, sizeof(id), "%d", ++rid);
            if (as_json)
                json_object_set_new(by_id, id, json_pack("{s:i, s:s, s:s, s:i, s:O}", "resource_id",
                                                         rid, "network_address", cli_str(n, "hostname"),
                                                         "state", node_state(n), "core", (int)c,
                                                         "jobs", on));
            else if (state_only)
                printf("    %d : %s\n", rid, node_state(n));
            else {
                char *list = json_dumps(on, JSON_COMPACT);
                printf("network_address : %s\nresource_id : %d\nstate : %s\n"
                       "properties : core=%d, host=%s\njobs : %.*s\n\n", cli_str(n, "hostname"), rid,
                       node_state(n), (int)c, cli_str(n, "hostname"), (int)strlen(list) - 2, list + 1);
                free(list);
            }
        }
        json_decref(cores);
    }
    if (as_json)
        cli_print_json(by_id, false);
    json_decref(by_id);
}

static int oarnodes(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"state", no_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct serr err = {0};
    bool state_only = false, as_json = false;
    optind = 0;
    int opt;
    while ((opt = cli_getopt(argc, argv, "hsJ", opts, &err)) != -1) {
        if (opt == '?')
            return oar_usage_error("oarnodes", "%s", err.msg);
        if (opt == 'h')
            return cli_help(oarnodes_usage);
        state_only |= opt == 's';
        as_json |= opt == 'J';
    }
    if (optind < argc)
        return oar_usage_error("oarnodes", "unexpected argument '%s'", argv[optind]);
    json_t *nodes = NULL, *jobs = NULL;
    if (cli_call(cli, "GET", "/v1/nodes", NULL, &nodes, &err) < 0 ||
        cli_call(cli, "GET", "/v1/jobs", NULL, &jobs, &err) < 0) {
        json_decref(nodes);
        return oar_fail("oarnodes", &err);
    }
    print_oarnodes(nodes, jobs, state_only, as_json);
    json_decref(nodes);
    json_decref(jobs);
    return CLI_EXIT_OK;
}

int cli_oar_main(const char *name, int argc, char **argv)
{
    static const struct {
        const char *name;
        cli_cmd_fn fn;
    } cmds[] = {{"oarsub", oarsub},   {"oarstat", oarstat}, {"oardel", oardel},
                {"oarnodes", oarnodes}, {"oarhold", oarhold}, {"oarresume", oarresume}};
    struct cli cli = {.host = getenv("SHOAL_HOST")};
    if (cli.host == NULL || cli.host[0] == '\0')
        cli.host = CLI_DEFAULT_HOST;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = CLI_EXIT_USAGE;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(cmds[i].name, name) == 0)
            rc = cmds[i].fn(&cli, argc, argv);
    http_client_close(cli.client);
    return rc;
}
