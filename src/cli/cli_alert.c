/* shoal alert add | ls | rm | history (manager/alert.h, docs/api.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

const char cli_alert_add_usage[] =
    "Usage:  shoal alert add --name NAME --metric METRIC --above X [--for DURATION] [OPTIONS]\n"
    "        shoal alert add --name NAME --event EVENT [OPTIONS]\n\n"
    "Add an alert rule\n\n"
    "Options:\n"
    "      --name string       Name of the rule\n"
    "      --metric string     cpu, memory, disk (percent used), load (1 min) or temperature (C)\n"
    "      --above number      Fires when the metric is above this...\n"
    "      --for duration      ...for this long (default 0s: at once)\n"
    "      --event string      node-down, task-flapping or backup-failing (a volume's\n"
    "                          scheduled backup failed; resolves on its next success)\n"
    "      --restarts int      task-flapping: restarts of a task in the window (default 3)\n"
    "      --window duration   task-flapping: the window (default 5m)\n"
    "      --node string       A node's hostname or id, or all (default all)\n"
    "      --notify string     webhook=URL or email=ADDRESS (repeatable)\n";

static int set_number(json_t *body, const char *key, const char *flag, const char *arg,
                      struct serr *err)
{
    char *end;
    double v = strtod(arg, &end);
    if (end == arg || *end != '\0')
        return serr_set(err, SERR_INVALID, "%s: '%s' is not a number", flag, arg);
    json_object_set_new(body, key, json_real(v));
    return 0;
}

int cli_build_alert_add(int argc, char **argv, json_t **out, struct serr *err)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"metric", required_argument, NULL, 'm'},
        {"above", required_argument, NULL, 'a'},
        {"for", required_argument, NULL, 'f'},
        {"event", required_argument, NULL, 'e'},
        {"restarts", required_argument, NULL, 'r'},
        {"window", required_argument, NULL, 'w'},
        {"node", required_argument, NULL, 'N'},
        {"notify", required_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    json_t *body = json_pack("{s:[]}", "notify");
    optind = 0;
    int opt, rc = 0;
    while (rc == 0 && (opt = cli_getopt(argc, argv, "h", opts, err)) != -1) {
        int64_t n = 0;
        if (opt == '?')
            rc = -1;
        else if (opt == 'h')
            rc = 1;
        else if (opt == 'a')
            rc = set_number(body, "above", "--above", optarg, err);
        else if (opt == 'r') {
            rc = cli_parse_uint("--restarts", optarg, 1000, &n, err);
            if (rc == 0)
                json_object_set_new(body, "restarts", json_integer(n));
        } else if (opt == 'y')
            json_array_append_new(json_object_get(body, "notify"), json_string(optarg));
        else {
            static const char *const keys[] = {"name", "metric", "for", "event", "window", "node"};
            static const char letters[] = "nmfewN";
            json_object_set_new(body, keys[strchr(letters, opt) - letters], json_string(optarg));
        }
    }
    if (rc == 0 && optind < argc)
        rc = serr_set(err, SERR_INVALID, "unexpected argument '%s'", argv[optind]);
    if (rc == 0 && json_object_get(body, "name") == NULL)
        rc = serr_set(err, SERR_INVALID, "--name is required");
    if (rc == 0 && !json_object_get(body, "metric") == !json_object_get(body, "event"))
        rc = serr_set(err, SERR_INVALID, "one of --metric or --event is required");
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    *out = body;
    return 0;
}

static int alert_add(struct cli *cli, int argc, char **argv)
{
    json_t *body = NULL;
    struct serr err = {0};
    int rc = cli_build_alert_add(argc, argv, &body, &err);
    if (rc == 1)
        return cli_help(cli_alert_add_usage);
    if (rc < 0)
        return cli_usage_error("alert add", "%s", err.msg);
    return cli_create(cli, "/v1/alerts", body);
}

static void format_duration_ms(int64_t ms, char *buf, size_t size)
{
    if (ms % 60000 == 0 && ms > 0)
        snprintf(buf, size, "%lldm", (long long)(ms / 60000));
    else
        snprintf(buf, size, "%llds", (long long)(ms / 1000));
}

/* "cpu > 80 for 2m", "node-down", "task-flapping 3 in 5m" */
static void rule_condition(json_t *r, char *buf, size_t size)
{
    char d[32];
    if (cli_str(r, "metric")[0]) {
        format_duration_ms(cli_int(r, "for_ms"), d, sizeof(d));
        snprintf(buf, size, "%s > %g for %s", cli_str(r, "metric"),
                 json_number_value(json_object_get(r, "above")), d);
    } else if (strcmp(cli_str(r, "event"), "task-flapping") == 0) {
        format_duration_ms(cli_int(r, "window_ms"), d, sizeof(d));
        snprintf(buf, size, "task-flapping %lld in %s", (long long)cli_int(r, "restarts"), d);
    } else {
        snprintf(buf, size, "%s", cli_str(r, "event"));
    }
}

static void notify_list(json_t *r, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t i, len = 0;
    json_t *n;
    json_array_foreach(json_object_get(r, "notify"), i, n)
    {
        if (len < size)
            len += (size_t)snprintf(buf + len, size - len, "%s%s=%s", i ? "," : "",
                                    cli_str(n, "type"), cli_str(n, "to"));
    }
}

static int alert_ls(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "Usage:  shoal alert ls [--format json]\n\nList alert rules\n";
    struct cli_flags fl;
    int rc = cli_flags("alert ls", usage, "F", argc, argv, &fl);
    if (rc >= 0 || (rc = cli_nargs("alert ls", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    json_t *list;
    struct serr err;
    if (cli_call(cli, "GET", "/v1/alerts", NULL, &list, &err) < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(list, false);
    } else {
        static const char *const head[] = {"ID", "NAME", "CONDITION", "NODE", "NOTIFY"};
        struct table *t = table_new(5, head);
        size_t i;
        json_t *r;
        json_array_foreach(list, i, r)
        {
            char id[16], cond[96], notify[512];
            snprintf(id, sizeof(id), "%.12s", cli_str(r, "id"));
            rule_condition(r, cond, sizeof(cond));
            notify_list(r, notify, sizeof(notify));
            const char *cells[] = {id, cli_str(r, "name"), cond, cli_str(r, "node"), notify};
            table_add(t, cells);
        }
        table_print_free(t);
    }
    json_decref(list);
    return CLI_EXIT_OK;
}

static int alert_rm(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "Usage:  shoal alert rm RULE [RULE...]\n\n"
                                "Remove alert rules (by name or id); their open alerts resolve\n";
    struct cli_flags fl;
    int rc = cli_flags("alert rm", usage, "", argc, argv, &fl);
    if (rc >= 0 || (rc = cli_nargs("alert rm", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_remove_each(cli, "/v1/alerts/%s", "", argc - fl.first_arg, argv + fl.first_arg);
}

static int alert_history(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "Usage:  shoal alert history [--format json]\n\n"
                                "Open alerts, then past ones, newest first\n";
    struct cli_flags fl;
    int rc = cli_flags("alert history", usage, "F", argc, argv, &fl);
    if (rc >= 0 || (rc = cli_nargs("alert history", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    json_t *list;
    struct serr err;
    if (cli_call(cli, "GET", "/v1/alerts/history", NULL, &list, &err) < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(list, false);
    } else {
        static const char *const head[] = {"STATE", "RULE", "SINCE", "RESOLVED", "MESSAGE"};
        struct table *t = table_new(5, head);
        int64_t now = now_ms();
        size_t i;
        json_t *a;
        json_array_foreach(list, i, a)
        {
            char since[32], resolved[32] = "";
            format_age(now - cli_int(a, "since"), since, sizeof(since));
            if (cli_int(a, "resolved_at"))
                format_age(now - cli_int(a, "resolved_at"), resolved, sizeof(resolved));
            const char *cells[] = {cli_str(a, "state"), cli_str(a, "rule"), since, resolved,
                                   cli_str(a, "message")};
            table_add(t, cells);
        }
        table_print_free(t);
    }
    json_decref(list);
    return CLI_EXIT_OK;
}

static const struct cli_cmd alert_cmds[] = {
    {"add", NULL, alert_add, "Add an alert rule"},
    {"ls", "list", alert_ls, "List alert rules"},
    {"rm", "remove", alert_rm, "Remove alert rules"},
    {"history", NULL, alert_history, "Open and past alerts"},
    {NULL, NULL, NULL, NULL},
};

int cli_alert(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "alert", alert_cmds, argc, argv);
}
