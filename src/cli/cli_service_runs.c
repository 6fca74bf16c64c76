/* `shoal service runs SERVICE`: the runs of a replicated job (issue 16),
 * from the service's "runs" (manager/job_runs.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/json_get.h"
#include "cli/cli.h"

static const char runs_usage[] = "Usage:  shoal service runs [OPTIONS] SERVICE\n\n"
                                 "List the runs of a replicated job (the last 20), oldest first; times in UTC\n\n"
                                 "Options:\n"
                                 "      --format string   Format output (json or table)\n";

/* A time in ms as "YYYY-MM-DD HH:MM:SS" UTC (as schedules are), "" when none. */
static void utc_time(json_int_t ms, char *buf, size_t size)
{
    buf[0] = '\0';
    if (ms <= 0)
        return;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

/* "0,7,..." from the run's exit codes. */
static void exit_codes(json_t *run, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t i, len = 0;
    json_t *code;
    json_array_foreach(json_object_get(run, "exit_codes"), i, code)
    {
        len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%lld", i ? "," : "",
                                (long long)json_integer_value(code));
        if (len >= size)
            break;
    }
}

static void run_row(struct table *t, json_t *run)
{
    char num[24], scheduled[32], started[32], ended[32], codes[256];
    snprintf(num, sizeof(num), "%lld", (long long)jint(run, "run", 0));
    utc_time(jint(run, "scheduled_at", 0), scheduled, sizeof(scheduled));
    utc_time(jint(run, "started_at", 0), started, sizeof(started));
    utc_time(jint(run, "ended_at", 0), ended, sizeof(ended));
    exit_codes(run, codes, sizeof(codes));
    const char *state = jstr(run, "state");
    const char *cells[] = {num, scheduled, started, ended, state ? state : "running", codes};
    table_add(t, cells);
}

int cli_service_runs(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("service runs", runs_usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("service runs", argc - fl.first_arg, 1, 1)) >= 0)
        return rc;
    char *path = cli_path("/v1/services/%s", argv[fl.first_arg]);
    json_t *svc;
    struct serr err;
    rc = cli_call(cli, "GET", path, NULL, &svc, &err);
    free(path);
    if (rc < 0)
        return cli_fail(&err);
    json_t *runs = json_object_get(svc, "runs");
    if (fl.json && runs) {
        cli_print_json(runs, false);
    } else if (fl.json) {
        printf("[]\n");
    } else {
        static const char *const head[] = {"RUN",   "SCHEDULED", "STARTED", "ENDED",
                                           "STATE", "EXIT CODES"};
        struct table *t = table_new(6, head);
        size_t i;
        json_t *run;
        json_array_foreach(runs, i, run) run_row(t, run);
        table_print_free(t);
    }
    json_decref(svc);
    return CLI_EXIT_OK;
}
