/* shoal dashboard url [--admin] */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char url_usage[] =
    "Usage:  shoal dashboard url [OPTIONS]\n\n"
    "Print the web dashboard's address with its access token\n"
    "(the daemon runs with --dashboard-addr; local socket only)\n\n"
    "Options:\n"
    "      --admin   The admin link (writes allowed) instead of the read-only one\n";

static int dashboard_url(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"admin", no_argument, NULL, 'a'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool admin = false;
    struct serr err = {0};
    int ch;
    optind = 0;
    while ((ch = cli_getopt(argc, argv, "h", opts, &err)) != -1) {
        if (ch == 'h')
            return cli_help(url_usage);
        if (ch == '?')
            return cli_usage_error("dashboard url", "%s", err.msg);
        admin = true;
    }
    int rc = cli_nargs("dashboard url", argc - optind, 0, 0);
    if (rc >= 0)
        return rc;
    json_t *out;
    if (cli_call(cli, "GET", admin ? "/v1/dashboard/url?admin=1" : "/v1/dashboard/url", NULL,
                 &out, &err) < 0)
        return cli_fail(&err);
    printf("%s\n", cli_str(out, "url"));
    json_decref(out);
    return CLI_EXIT_OK;
}

int cli_dashboard(struct cli *cli, int argc, char **argv)
{
    static const struct cli_cmd cmds[] = {
        {"url", NULL, dashboard_url, "Print the dashboard's address with its token"},
        {NULL, NULL, NULL, NULL},
    };
    return cli_dispatch_group(cli, "dashboard", cmds, argc, argv);
}
