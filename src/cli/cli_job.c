/* shoal job sub | ls | inspect | rm | hold | resume: batch jobs, OAR's way
 * (manager/jobs.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

static const char sub_usage[] =
    "Usage:  shoal job sub [OPTIONS] COMMAND [ARG...]\n\n"
    "Submit a batch job (as OAR's oarsub): COMMAND runs with /bin/sh -c on the first\n"
    "of its nodes, in a container; prints the job's id\n\n"
    "Options:\n"
    "  -l, --resource string   Resources, OAR's syntax (default /nodes=1/core=1,walltime=2:00:00),\n"
    "                          e.g. /nodes=2/core=1,walltime=00:10:00 or core=4,walltime=1:0:0\n"
    "  -q, --queue string      admin, default or besteffort (default \"default\")\n"
    "  -t, --type string       besteffort (the job goes to the besteffort queue)\n"
    "  -n, --name string       The job's name\n"
    "      --image string      Image to run in (default: the cluster's first image by name)\n";

/* argv (argv[0] "sub") -> the /v1/jobs body; 1 when help was asked. */
static int build_sub(int argc, char **argv, json_t **body, struct serr *err)
{
    static const struct option opts[] = {{"resource", required_argument, NULL, 'l'},
                                         {"queue", required_argument, NULL, 'q'},
                                         {"type", required_argument, NULL, 't'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"image", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    json_t *b = json_object();
    json_t *types = json_array();
    optind = 0;
    int opt, rc = 0;
    while (rc == 0 && (opt = cli_getopt(argc, argv, "hl:q:t:n:", opts, err)) != -1) {
        if (opt == '?')
            rc = -1;
        else if (opt == 'h')
            rc = 1;
        else if (opt == 't')
            json_array_append_new(types, json_string(optarg));
        else
            json_object_set_new(b, opt == 'l' ? "resources" : opt == 'q' ? "queue"
                                   : opt == 'n' ? "name" : "image", json_string(optarg));
    }
    if (rc == 0 && argc - optind < 1)
        rc = serr_set(err, SERR_INVALID, "requires a COMMAND");
    if (rc != 0) {
        json_decref(types);
        json_decref(b);
        return rc;
    }
    char *cmd = NULL;
    size_t len = 0, cap = 0;
    for (int i = optind; i < argc; i++) {
        if (i > optind)
            buf_append(&cmd, &len, &cap, " ", 1);
        buf_append(&cmd, &len, &cap, argv[i], strlen(argv[i]));
    }
    json_object_set_new(b, "command", json_string(cmd));
    free(cmd);
    if (json_array_size(types))
        json_object_set(b, "types", types);
    json_decref(types);
    *body = b;
    return 0;
}

static int job_sub(struct cli *cli, int argc, char **argv)
{
    json_t *body = NULL, *out;
    struct serr err = {0};
    int rc = build_sub(argc, argv, &body, &err);
    if (rc == 1)
        return cli_help(sub_usage);
    if (rc < 0)
        return cli_usage_error("job sub", "%s", err.msg);
    rc = cli_call(cli, "POST", "/v1/jobs", body, &out, &err);
    json_decref(body);
    if (rc < 0)
        return cli_fail(&err);
    printf("%s\n", cli_str(out, "id"));
    json_decref(out);
    return CLI_EXIT_OK;
}

static const char ls_usage[] =
    "Usage:  shoal job ls [OPTIONS]\n\nList jobs (as oarstat)\n\n"
    "Options:\n"
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
                                         {"format", required_argument, NULL, 'F'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *state = NULL;
    bool json = false;
    struct serr err = {0};
    optind = 0;
    int opt;
    while ((opt = cli_getopt(argc, argv, "h", opts, &err)) != -1) {
        if (opt == '?')
            return cli_usage_error("job ls", "%s", err.msg);
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
    struct cli_flags fl;
    int rc = cli_flags("job inspect", inspect_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("job inspect", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_inspect(cli, "/v1/jobs/%s", argc - fl.first_arg, argv + fl.first_arg);
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
    {NULL, NULL, NULL, NULL},
};

int cli_job(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "job", job_cmds, argc, argv);
}
