/* shoal job sub | ls | inspect | rm | hold | resume: batch jobs, OAR's way
 * (manager/jobs.h). */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

static const char sub_usage[] =
    "Usage:  shoal job sub [OPTIONS] COMMAND [ARG...]\n\n"
    "Submit a batch job (as OAR's oarsub): COMMAND runs with /bin/sh -c on the first\n"
    "of its nodes, in a container; prints the job's id\n\n"
    "Options:\n"
    "  -l, --resource string   Resources, OAR's syntax (default /nodes=1/core=1,walltime=2:00:00),\n"
    "                          e.g. /nodes=2/core=1,walltime=00:10:00 or core=4,walltime=1:0:0\n"
    "  -p, --property string   Only nodes whose labels match, OAR's syntax: \"gpu='yes'\",\n"
    "                          \"rack='a' AND (gpu='yes' OR mem>16)\" (=, !=, <, >, AND, OR, NOT)\n"
    "  -q, --queue string      admin, default or besteffort (default \"default\")\n"
    "  -t, --type string       besteffort (runs on idle cores only, killed when a normal job\n"
    "                          needs them) or idempotent (killed that way, it waits again)\n"
    "  -n, --name string       The job's name\n"
    "  -a, --after JOB         Start only once JOB is Terminated (repeatable; JOB in Error:\n"
    "                          this job ends in Error)\n"
    "  -r, --reservation TIME  Advance reservation: start at \"YYYY-MM-DD hh:mm:ss\" (the\n"
    "                          manager's local time); refused unless the resources are free\n"
    "                          then for the walltime\n"
    "      --array N           Submit N jobs sharing an array id (SHOAL_ARRAY_INDEX and\n"
    "                          OAR_ARRAY_INDEX 1..N); prints every id\n"
    "  -S, --scanscript        Read #OAR -l/-n/-p/-q/-t lines from the script (COMMAND's first\n"
    "                          word); the command line's options win\n"
    "  -I, --interactive       No COMMAND: a shell in the job once it runs (a terminal when\n"
    "                          stdin is one); the job ends when the shell exits, with its code\n"
    "      --image string      Image to run in (default: the daemon.json \"job-image\" of the\n"
    "                          leader, else the cluster's first image by name)\n"
    "      --host              Run as a process of the node's host, not in a container (admin\n"
    "                          credentials only; a node's daemon.json \"host-jobs\": false\n"
    "                          refuses them)\n";

static const struct option sub_opts[] = {{"resource", required_argument, NULL, 'l'},
                                         {"queue", required_argument, NULL, 'q'},
                                         {"property", required_argument, NULL, 'p'},
                                         {"type", required_argument, NULL, 't'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"image", required_argument, NULL, 'i'},
                                         {"host", no_argument, NULL, 'H'},
                                         {"scanscript", no_argument, NULL, 'S'},
                                         {"after", required_argument, NULL, 'a'},
                                         {"anterior", required_argument, NULL, 'a'},
                                         {"array", required_argument, NULL, 'A'},
                                         {"reservation", required_argument, NULL, 'r'},
                                         {"interactive", no_argument, NULL, 'I'},
                                         {"connect", required_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};

/* One option of a submission into the body (types appended to `types`). */
static int sub_option(json_t *b, json_t *types, int opt, const char *arg, struct serr *err)
{
    switch (opt) {
    case 't':
        json_array_append_new(types, json_string(arg));
        return 0;
    case 'l':
    case 'q':
    case 'n':
    case 'i':
    case 'r':
    case 'p':
        json_object_set_new(b, opt == 'l' ? "resources" : opt == 'q' ? "queue"
                               : opt == 'n' ? "name" : opt == 'r' ? "reservation"
                               : opt == 'p' ? "properties" : "image",
                            json_string(arg));
        return 0;
    case 'a':
        if (json_object_get(b, "after") == NULL)
            json_object_set_new(b, "after", json_array());
        json_array_append_new(json_object_get(b, "after"), json_string(arg));
        return 0;
    case 'A': {
        int64_t n;
        if (cli_parse_uint("--array", arg, 1000000, &n, err) < 0)
            return -1;
        json_object_set_new(b, "array", json_integer(n));
        return 0;
    }
    case 'H':
        json_object_set_new(b, "host", json_true());
        return 0;
    case 'I':
        json_object_set_new(b, "interactive", json_true());
        return 0;
    case 'C':
        json_object_set_new(b, "connect", json_string(arg));
        return 0;
    default:
        return serr_set(err, SERR_INVALID, "unknown option");
    }
}

/* "#OAR -l nodes=2" or "#OAR --name=x": the option's letter and its value. */
static int script_line(char *line, int *opt, char **arg, struct serr *err)
{
    char *p = line + 4;
    p += strspn(p, " \t");
    char *end = p + strcspn(p, " \t=");
    char sep = *end;
    *end = '\0';
    char *val = sep ? end + 1 : end;
    val += strspn(val, " \t");
    val[strcspn(val, "\r\n")] = '\0';
    size_t n = strlen(val);
    while (n > 0 && (val[n - 1] == ' ' || val[n - 1] == '\t'))
        val[--n] = '\0';
    if (n >= 2 && (val[0] == '"' || val[0] == '\'') && val[n - 1] == val[0]) {
        val[n - 1] = '\0';
        val++;
    }
    *opt = 0;
    if (p[0] == '-' && p[1] != '-' && p[1] && p[2] == '\0')
        *opt = p[1];
    for (int i = 0; *opt == 0 && p[0] == '-' && p[1] == '-' && sub_opts[i].name; i++)
        if (strcmp(p + 2, sub_opts[i].name) == 0)
            *opt = sub_opts[i].val;
    if (*opt == 0 || strchr("lqtnp", *opt) == NULL)
        return serr_set(err, SERR_INVALID,
                        "unsupported #OAR option '%s' (known: -l, -n, -p, -q, -t)",
                        p);
    if (*val == '\0')
        return serr_set(err, SERR_INVALID, "#OAR %s needs a value", p);
    *arg = val;
    return 0;
}

/* -S: the #OAR lines of the script into *out (a new body; types inside). */
static int scan_script(const char *command, json_t **out, struct serr *err)
{
    char path[1024];
    size_t n = strcspn(command, " \t");
    snprintf(path, sizeof(path), "%.*s", (int)(n < sizeof(path) ? n : sizeof(path) - 1), command);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return serr_set(err, SERR_INVALID, "-S: cannot read the script %s: %s", path,
                        strerror(errno));
    json_t *b = json_object(), *types = json_array();
    char line[1024];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "#OAR", 4) != 0 || (line[4] != ' ' && line[4] != '\t'))
            continue;
        int opt;
        char *arg = NULL;
        rc = script_line(line, &opt, &arg, err);
        if (rc == 0)
            rc = sub_option(b, types, opt, arg, err);
    }
    fclose(f);
    if (rc == 0 && json_array_size(types))
        json_object_set(b, "types", types);
    json_decref(types);
    if (rc < 0) {
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", err->msg); /* err->msg is rewritten below */
        serr_set(err, SERR_INVALID, "%s: %s", path, why);
        json_decref(b);
        return rc;
    }
    *out = b;
    return 0;
}

const char *cli_job_user(void)
{
    const char *u = getenv("USER");
    if (u && *u)
        return u;
    struct passwd *pw = getpwuid(getuid());
    return pw ? pw->pw_name : "shoal";
}

/* Joins the words of COMMAND [ARG...] with spaces (caller frees). */
static char *join_words(int argc, char **argv)
{
    char *cmd = NULL;
    size_t len = 0, cap = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0)
            buf_append(&cmd, &len, &cap, " ", 1);
        buf_append(&cmd, &len, &cap, argv[i], strlen(argv[i]));
    }
    return cmd;
}

int cli_build_job_sub(int argc, char **argv, json_t **body, struct serr *err)
{
    json_t *b = json_object();
    json_t *types = json_array();
    optind = 0;
    int opt, rc = 0;
    bool scan = false;
    while (rc == 0 && (opt = cli_getopt(argc, argv, "hl:p:q:t:n:SIC:a:r:", sub_opts, err)) != -1) {
        if (opt == '?')
            rc = -1;
        else if (opt == 'h')
            rc = 1;
        else if (opt == 'S')
            scan = true;
        else
            rc = sub_option(b, types, opt, optarg, err);
    }
    bool shell = cli_job_wants_shell(b);
    if (rc == 0 && shell && argc - optind > 0)
        rc = serr_set(err, SERR_INVALID, "-I and -C open a shell: they take no COMMAND");
    if (rc == 0 && shell && scan)
        rc = serr_set(err, SERR_INVALID, "-S reads a script: not with -I or -C");
    if (rc == 0 && shell && json_object_get(b, "host"))
        rc = serr_set(err, SERR_INVALID, "-I and -C open a shell in a container: not with --host");
    if (rc == 0 && json_object_get(b, "host") && json_object_get(b, "image"))
        rc = serr_set(err, SERR_INVALID, "--host and --image exclude each other");
    if (rc == 0 && shell && json_object_get(b, "array"))
        rc = serr_set(err, SERR_INVALID, "-I and -C open one shell: not with --array");
    if (rc == 0 && !shell && argc - optind < 1)
        rc = serr_set(err, SERR_INVALID, "requires a COMMAND");
    if (rc == 0 && json_array_size(types))
        json_object_set(b, "types", types);
    json_decref(types);
    if (rc == 0 && !shell) {
        char *cmd = join_words(argc - optind, argv + optind);
        json_object_set_new(b, "command", json_string(cmd));
        free(cmd);
    }
    json_t *script = NULL;
    if (rc == 0 && scan && (rc = scan_script(cli_str(b, "command"), &script, err)) == 0) {
        json_object_update(script, b); /* the command line wins */
        json_decref(b);
        b = script;
    }
    if (rc != 0) {
        json_decref(b);
        return rc;
    }
    json_object_set_new(b, "user", json_string(cli_job_user()));
    *body = b;
    return 0;
}

static int job_sub(struct cli *cli, int argc, char **argv)
{
    json_t *body = NULL, *out;
    struct serr err = {0};
    int rc = cli_build_job_sub(argc, argv, &body, &err);
    if (rc == 1)
        return cli_help(sub_usage);
    if (rc < 0)
        return cli_usage_error("job sub", "%s", err.msg);
    if (cli_job_wants_shell(body))
        return cli_job_shell(cli, body, false);
    rc = cli_call(cli, "POST", "/v1/jobs", body, &out, &err);
    json_decref(body);
    if (rc < 0)
        return cli_fail(&err);
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(out, "ids"), i, id) printf("%s\n", json_string_value(id));
    json_decref(out);
    return CLI_EXIT_OK;
}

static const char connect_usage[] = "Usage:  shoal job connect JOB\n\n"
                                    "Open a shell in a running job (as oarsub -C); the job goes on\n"
                                    "when the shell exits\n";

static int job_connect(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("job connect", connect_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("job connect", argc - fl.first_arg, 1, 1)) >= 0)
        return rc;
    return cli_job_shell(cli, json_pack("{s:s}", "connect", argv[fl.first_arg]), false);
}

static const char ls_usage[] =
    "Usage:  shoal job ls [OPTIONS]\n\nList jobs (as oarstat)\n\n"
    "Options:\n"
    "  -u, --user string     Only this user's jobs\n"
    "      --state string    Only jobs in this state (Waiting, Hold, toLaunch, Launching,\n"
    "                        Running, Finishing, Terminated, Error)\n"
    "      --format string   Format output (json or table)\n";

static void print_jobs(json_t *list)
{
    static const char *const head[] = {"JOB ID", "NAME", "STATE", "QUEUE", "REQUEST", "NODES",
                                       "EXIT", "MESSAGE"};
    struct table *t = table_new(8, head);
    size_t i, k;
    json_t *j, *a;
    json_array_foreach(list, i, j)
    {
        char nodes[256] = "", code[16] = "";
        json_array_foreach(json_object_get(j, "assigned"), k, a)
        {
            size_t used = strlen(nodes);
            snprintf(nodes + used, sizeof(nodes) - used, "%s%s", k ? "," : "",
                     cli_str(a, "hostname"));
        }
        if (json_object_get(j, "exit_code"))
            snprintf(code, sizeof(code), "%lld", (long long)cli_int(j, "exit_code"));
        const char *cells[] = {cli_str(j, "id"),
                               cli_str(j, "name"),
                               cli_str(j, "state"),
                               cli_str(j, "queue"),
                               cli_str(j, "request"),
                               nodes,
                               code,
                               cli_str(j, "message")};
        table_add(t, cells);
    }
    table_print_free(t);
}

static int job_ls(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"state", required_argument, NULL, 's'},
                                         {"user", required_argument, NULL, 'u'},
                                         {"format", required_argument, NULL, 'F'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *state = NULL, *user = NULL;
    bool json = false;
    struct serr err = {0};
    optind = 0;
    int opt;
    while ((opt = cli_getopt(argc, argv, "hu:", opts, &err)) != -1) {
        if (opt == '?')
            return cli_usage_error("job ls", "%s", err.msg);
        if (opt == 'u')
            user = optarg;
        if (opt == 'h')
            return cli_help(ls_usage);
        if (opt == 's')
            state = optarg;
        if (opt == 'F' && cli_parse_format(optarg, &json, &err) < 0)
            return cli_usage_error("job ls", "%s", err.msg);
    }
    int rc = cli_nargs("job ls", argc - optind, 0, 0);
    if (rc >= 0)
        return rc;
    char *path = state ? cli_path("/v1/jobs?state=%s", state) : xstrdup("/v1/jobs");
    json_t *list;
    rc = cli_call(cli, "GET", path, NULL, &list, &err);
    free(path);
    if (rc < 0)
        return cli_fail(&err);
    for (size_t i = json_array_size(list); user && i-- > 0;)
        if (strcmp(cli_str(json_array_get(list, i), "user"), user) != 0)
            json_array_remove(list, i);
    if (json)
        cli_print_json(list, false);
    else
        print_jobs(list);
    json_decref(list);
    return CLI_EXIT_OK;
}

static const char inspect_usage[] = "Usage:  shoal job inspect JOB [JOB...]\n\n"
                                    "Display detailed information on jobs (as oarstat -f)\n";

static int job_inspect(struct cli *cli, int argc, char **argv)
{
    return cli_inspect(cli, "job inspect", inspect_usage, "/v1/jobs/%s", argc, argv);
}

static const char rm_usage[] = "Usage:  shoal job rm JOB [JOB...]\n\n"
                               "Delete jobs (as oardel): a running job is killed (SIGTERM, then\n"
                               "SIGKILL after 5s) and ends in Error\n";

static int job_rm(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("job rm", rm_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("job rm", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_remove_each(cli, "/v1/jobs/%s", "", argc - fl.first_arg, argv + fl.first_arg);
}

/* POSTs /v1/jobs/ID/<action> for each job. */
static int job_action(struct cli *cli, const char *cmd, const char *usage, const char *action,
                      int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags(cmd, usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs(cmd, argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    int status = CLI_EXIT_OK;
    for (int i = fl.first_arg; i < argc; i++) {
        char *id = cli_escape(argv[i]);
        char *path = xasprintf("/v1/jobs/%s/%s", id, action);
        free(id);
        struct serr err = {0};
        if (cli_call(cli, "POST", path, NULL, NULL, &err) < 0)
            status = cli_fail(&err);
        else
            printf("%s\n", argv[i]);
        free(path);
    }
    return status;
}

static const char hold_usage[] = "Usage:  shoal job hold JOB [JOB...]\n\n"
                                 "Hold waiting jobs (as oarhold): they are not started until resumed\n";
static const char resume_usage[] = "Usage:  shoal job resume JOB [JOB...]\n\n"
                                   "Resume held jobs (as oarresume): they wait to be started again\n";

static int job_hold(struct cli *cli, int argc, char **argv)
{
    return job_action(cli, "job hold", hold_usage, "hold", argc, argv);
}

static int job_resume(struct cli *cli, int argc, char **argv)
{
    return job_action(cli, "job resume", resume_usage, "resume", argc, argv);
}

static const char logs_usage[] = "Usage:  shoal job logs [OPTIONS] JOB\n\n"
                                 "Print a job's output (stdout and stderr), on the node that ran it\n\n"
                                 "Options:\n"
                                 "  -f, --follow   Follow log output\n";

static int write_stdout(const char *data, size_t len, void *arg)
{
    (void)arg;
    if (fwrite(data, 1, len, stdout) != len)
        return -1; /* stdout closed (| head): stop reading */
    fflush(stdout);
    return 0;
}

static int job_logs(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("job logs", logs_usage, "l", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("job logs", argc - fl.first_arg, 1, 1)) >= 0)
        return rc;
    char *base = cli_path("/v1/jobs/%s/logs", argv[fl.first_arg]);
    char *path = xasprintf("%s%s", base, fl.follow ? "?follow=1" : "");
    struct serr err = {0};
    rc = cli_stream(cli, "GET", path, NULL, write_stdout, NULL, &err);
    free(path);
    free(base);
    return rc < 0 ? cli_fail(&err) : CLI_EXIT_OK;
}

static const struct cli_cmd job_cmds[] = {
    {"sub", "submit", job_sub, "Submit a batch job"},
    {"ls", "list", job_ls, "List jobs"},
    {"inspect", NULL, job_inspect, "Display detailed information on jobs"},
    {"rm", "del", job_rm, "Delete (kill) jobs"},
    {"hold", NULL, job_hold, "Hold waiting jobs"},
    {"resume", NULL, job_resume, "Resume held jobs"},
    {"logs", NULL, job_logs, "Print a job's output"},
    {"connect", NULL, job_connect, "Open a shell in a running job"},
    {NULL, NULL, NULL, NULL},
};

int cli_job(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "job", job_cmds, argc, argv);
}
