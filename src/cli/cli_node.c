/* shoal node ls | inspect */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char ls_usage[] = "Usage:  shoal node ls [OPTIONS]\n\nList nodes in the swarm\n\n"
                               "Options:\n"
                               "      --format string   Format output (json or table)\n";

static void node_row(struct table *t, json_t *node, const char *self_id)
{
    char id[64], status[32], availability[32], manager[32];
    /* Docker marks the node answering with " *". */
    snprintf(id, sizeof(id), "%s%s", jstr(node, "id"),
             strcmp(jstr(node, "id"), self_id) == 0 ? " *" : "");
    cli_capitalize(jstr(node, "status"), status, sizeof(status));
    cli_capitalize(jstr(node, "availability"), availability, sizeof(availability));
    cli_capitalize(jstr(node, "manager_status"), manager, sizeof(manager));
    const char *cells[] = {id, jstr(node, "hostname"), status, availability, manager};
    table_add(t, cells);
}

static int node_ls(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("node ls", ls_usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("node ls", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    struct serr err;
    json_t *nodes, *info = NULL;
    if (cli_call(cli, "GET", "/v1/nodes", NULL, &nodes, &err) < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(nodes, false);
    } else {
        /* Only for the " *" marker: a failure here is not worth an error. */
        cli_call(cli, "GET", "/v1/info", NULL, &info, &err);
        static const char *const head[] = {"ID", "HOSTNAME", "STATUS", "AVAILABILITY",
                                           "MANAGER STATUS"};
        struct table *t = table_new(5, head);
        size_t i;
        json_t *node;
        json_array_foreach(nodes, i, node) node_row(t, node, jstr(info, "node_id"));
        table_print_free(t);
    }
    json_decref(info);
    json_decref(nodes);
    return CLI_EXIT_OK;
}

static const char inspect_usage[] = "Usage:  shoal node inspect NODE [NODE...]\n\n"
                                    "Display detailed information on one or more nodes\n";

static int node_inspect(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("node inspect", inspect_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("node inspect", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_inspect(cli, "/v1/nodes/%s", argc - fl.first_arg, argv + fl.first_arg);
}

static const struct cli_cmd node_cmds[] = {
    {"inspect", NULL, node_inspect, "Display detailed information on one or more nodes"},
    {"ls", "list", node_ls, "List nodes in the swarm"},
    {NULL, NULL, NULL, NULL},
};

int cli_node(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "node", node_cmds, argc, argv);
}
