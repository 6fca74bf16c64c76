/* shoal stop | start | restart | kill | inspect | stats: Docker's verbs on
 * containers of the node that answers (agent/agent_ctl.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

/* ---- stop, restart ---- */

static const char stop_usage[] = "Usage:  shoal stop [OPTIONS] CONTAINER [CONTAINER...]\n\n"
                                 "Stop one or more running containers\n\n"
                                 "Options:\n"
                                 "  -t, --time int   Seconds to wait before killing the "
                                 "container (default: its grace period, 10)\n";
static const char restart_usage[] = "Usage:  shoal restart [OPTIONS] CONTAINER [CONTAINER...]\n\n"
                                    "Restart one or more containers\n\n"
                                    "Options:\n"
                                    "  -t, --time int   Seconds to wait before killing the "
                                    "container (default: its grace period, 10)\n";

static const struct option time_options[] = {
    {"time", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* -t SECONDS into "?t=N" (query: 24 bytes); 1 when --help was asked. */
static int parse_time(int argc, char **argv, char *query, struct serr *err)
{
    optind = 0;
    query[0] = '\0';
    int opt;
    while ((opt = cli_getopt(argc, argv, "t:h", time_options, err)) != -1) {
        if (opt == '?')
            return -1;
        if (opt == 'h')
            return 1;
        char *end;
        long t = strtol(optarg, &end, 10);
        if (*end != '\0' || end == optarg || t < 0 || t > 3600)
            return serr_set(err, SERR_INVALID, "invalid -t \"%s\": seconds from 0 to 3600", optarg);
        snprintf(query, 24, "?t=%ld", t);
    }
    return 0;
}

static int stop_or_restart(struct cli *cli, const char *cmd, const char *usage,
                           const char *path_fmt, int argc, char **argv)
{
    char query[24];
    struct serr err;
    int rc = parse_time(argc, argv, query, &err);
    if (rc == 1)
        return cli_help(usage);
    if (rc < 0)
        return cli_usage_error(cmd, "%s", err.msg);
    if ((rc = cli_nargs(cmd, argc - optind, 1, -1)) >= 0)
        return rc;
    return cli_call_each(cli, "POST", path_fmt, query, argc - optind, argv + optind);
}

int cli_stop(struct cli *cli, int argc, char **argv)
{
    return stop_or_restart(cli, "stop", stop_usage, "/v1/containers/%s/stop", argc, argv);
}

int cli_restart(struct cli *cli, int argc, char **argv)
{
    return stop_or_restart(cli, "restart", restart_usage, "/v1/containers/%s/restart", argc, argv);
}

/* ---- start ---- */

static const char start_usage[] = "Usage:  shoal start CONTAINER [CONTAINER...]\n\n"
                                  "Start one or more stopped containers (created again "
                                  "from the spec they were run with)\n";

int cli_start(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("start", start_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("start", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_call_each(cli, "POST", "/v1/containers/%s/start", "", argc - fl.first_arg,
                         argv + fl.first_arg);
}

/* ---- kill ---- */

static const char kill_usage[] = "Usage:  shoal kill [OPTIONS] CONTAINER [CONTAINER...]\n\n"
                                 "Kill one or more running containers\n\n"
                                 "Options:\n"
                                 "  -s, --signal string   Signal to send to the container "
                                 "(default \"KILL\")\n";

static const struct option kill_options[] = {
    {"signal", required_argument, NULL, 's'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cli_kill(struct cli *cli, int argc, char **argv)
{
    const char *signal = "KILL";
    struct serr err;
    int opt;
    optind = 0;
    while ((opt = cli_getopt(argc, argv, "s:h", kill_options, &err)) != -1) {
        if (opt == '?')
            return cli_usage_error("kill", "%s", err.msg);
        if (opt == 'h')
            return cli_help(kill_usage);
        signal = optarg;
    }
    int rc = cli_nargs("kill", argc - optind, 1, -1);
    if (rc >= 0)
        return rc;
    char *escaped = cli_escape(signal);
    char *query = xasprintf("?signal=%s", escaped);
    rc = cli_call_each(cli, "POST", "/v1/containers/%s/kill", query, argc - optind, argv + optind);
    free(query);
    free(escaped);
    return rc;
}

/* ---- inspect ---- */

static const char inspect_usage[] = "Usage:  shoal inspect CONTAINER [CONTAINER...]\n\n"
                                    "Return low-level information on containers (JSON)\n";

int cli_inspect_container(struct cli *cli, int argc, char **argv)
{
    return cli_inspect(cli, "inspect", inspect_usage, "/v1/containers/%s/json", argc, argv);
}

/* ---- stats ---- */

static const char stats_usage[] = "Usage:  shoal stats [OPTIONS] [CONTAINER...]\n\n"
                                  "Display a live stream of container(s) resource usage "
                                  "statistics\n\n"
                                  "Options:\n"
                                  "  -a, --all         Show all containers (default shows just "
                                  "running)\n"
                                  "      --no-stream   Print the figures once and exit "
                                  "(always so when stdout is not a terminal)\n";

static const struct option stats_options[] = {
    {"no-stream", no_argument, NULL, 'n'},
    {"all", no_argument, NULL, 'a'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One sample of the named containers (all running ones when none is
 * named): an array of the API's figures; the error of each name that has
 * none is printed once (*failed set). */
static json_t *stats_sample(struct cli *cli, int argc, char **argv, bool all, bool *failed)
{
    struct serr err;
    json_t *out = NULL;
    if (argc == 0) {
        if (cli_call(cli, "GET", all ? "/v1/containers/stats?all=1" : "/v1/containers/stats", NULL,
                     &out, &err) < 0) {
            *failed = true;
            cli_fail(&err);
            return json_array();
        }
        return out;
    }
    out = json_array();
    for (int i = 0; i < argc; i++) {
        char *path = cli_path("/v1/containers/%s/stats", argv[i]);
        json_t *one;
        if (cli_call(cli, "GET", path, NULL, &one, &err) == 0) {
            json_array_extend(out, one);
            json_decref(one);
        } else {
            *failed = true;
            cli_fail(&err);
        }
        free(path);
    }
    return out;
}

/* The container's figures a second before (NULL: none). */
static json_t *stats_before(json_t *prev, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(prev, i, s) if (strcmp(cli_str(s, "id"), id) == 0) return s;
    return NULL;
}

static void stats_row(struct table *t, json_t *s, json_t *before)
{
    char id[16], cpu[16], usage[16], limit[16], mem[40], mem_pct[16], pids[16];
    cli_short_id(cli_str(s, "id"), id, sizeof(id));
    double pct = 0;
    int64_t dt = before ? cli_int(s, "read_ns") - cli_int(before, "read_ns") : 0;
    int64_t dcpu = before ? cli_int(s, "cpu_ns") - cli_int(before, "cpu_ns") : 0;
    if (dt > 0 && dcpu > 0)
        pct = 100.0 * (double)dcpu / (double)dt;
    snprintf(cpu, sizeof(cpu), "%.2f%%", pct);
    cli_human_size(cli_int(s, "mem_bytes"), usage, sizeof(usage));
    cli_human_size(cli_int(s, "mem_limit"), limit, sizeof(limit));
    snprintf(mem, sizeof(mem), "%s / %s", usage, limit);
    int64_t lim = cli_int(s, "mem_limit");
    snprintf(mem_pct, sizeof(mem_pct), "%.2f%%",
             lim > 0 ? 100.0 * (double)cli_int(s, "mem_bytes") / (double)lim : 0.0);
    snprintf(pids, sizeof(pids), "%lld", (long long)cli_int(s, "pids"));
    const char *cells[] = {id, cli_str(s, "name"), cpu, mem, mem_pct, pids};
    table_add(t, cells);
}

static void stats_print(json_t *now, json_t *prev)
{
    static const char *const head[] = {"CONTAINER ID",      "NAME",  "CPU %",
                                       "MEM USAGE / LIMIT", "MEM %", "PIDS"};
    struct table *t = table_new(6, head);
    size_t i;
    json_t *s;
    json_array_foreach(now, i, s) stats_row(t, s, stats_before(prev, cli_str(s, "id")));
    table_print_free(t);
}

int cli_stats(struct cli *cli, int argc, char **argv)
{
    bool no_stream = false, all = false;
    struct serr err;
    int opt;
    optind = 0;
    while ((opt = cli_getopt(argc, argv, "ah", stats_options, &err)) != -1) {
        if (opt == '?')
            return cli_usage_error("stats", "%s", err.msg);
        if (opt == 'h')
            return cli_help(stats_usage);
        if (opt == 'n')
            no_stream = true;
        if (opt == 'a')
            all = true;
    }
    int nargs = argc - optind;
    char **names = argv + optind;
    bool stream = !no_stream && isatty(STDOUT_FILENO);
    bool failed = false;
    json_t *prev = stats_sample(cli, nargs, names, all, &failed);
    if (failed) { /* a name unknown: said once, not every second */
        json_decref(prev);
        return CLI_EXIT_ERROR;
    }
    do {
        sleep(1); /* CPU % is the share of one CPU over this second */
        json_t *now = stats_sample(cli, nargs, names, all, &failed);
        if (stream)
            fputs("\033[2J\033[H", stdout);
        stats_print(now, prev);
        fflush(stdout);
        json_decref(prev);
        prev = now;
    } while (stream && !failed);
    json_decref(prev);
    return failed ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}
