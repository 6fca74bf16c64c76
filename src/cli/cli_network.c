/* shoal network create | ls | inspect | rm */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

static const char create_usage[] =
    "Usage:  shoal network create [OPTIONS] NETWORK\n\n"
    "Create a network: services on different networks cannot reach each other\n\n"
    "Options:\n"
    "  -d, --driver string   overlay, the only driver: every network spans the cluster\n"
    "                        (accepted for Docker's `-d overlay`)\n"
    "      --subnet string   Address range in CIDR format, /8 to /23 (default: the first\n"
    "                        free 10.X.0.0/16); each node gets a /24 of it\n";

/* argv (argv[0] "create") -> {"name", "subnet"?}; 1 when help was asked. */
static int build_create(int argc, char **argv, json_t **body, struct serr *err)
{
    static const struct option opts[] = {{"subnet", required_argument, NULL, 's'},
                                         {"driver", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    json_t *b = json_object();
    optind = 0;
    int opt, rc = 0;
    while (rc == 0 && (opt = cli_getopt(argc, argv, "hd:", opts, err)) != -1) {
        if (opt == '?')
            rc = -1;
        else if (opt == 'h')
            rc = 1;
        else if (opt == 'd' && strcmp(optarg, "overlay") != 0)
            rc = serr_set(err, SERR_INVALID,
                          "driver '%s' is not supported: shoal networks are 'overlay' (they span "
                          "the cluster)", optarg);
        else if (opt == 's')
            json_object_set_new(b, "subnet", json_string(optarg));
    }
    if (rc == 0 && argc - optind != 1)
        rc = serr_set(err, SERR_INVALID, "requires exactly 1 argument (NETWORK)");
    if (rc != 0) {
        json_decref(b);
        return rc;
    }
    json_object_set_new(b, "name", json_string(argv[optind]));
    *body = b;
    return 0;
}

static int network_create(struct cli *cli, int argc, char **argv)
{
    json_t *body = NULL;
    struct serr err = {0};
    int rc = build_create(argc, argv, &body, &err);
    if (rc == 1)
        return cli_help(create_usage);
    if (rc < 0)
        return cli_usage_error("network create", "%s", err.msg);
    return cli_create(cli, "/v1/networks", body);
}

static const char ls_usage[] = "Usage:  shoal network ls [OPTIONS]\n\nList networks\n\n"
                               "Options:\n"
                               "      --filter filter   Filter output based on conditions provided\n"
                               "      --format string   Format output (json, table, a Go template such as\n"
                               "                        '{{.Name}}' or 'table {{.ID}}\\t{{.Name}}')\n"
                               "  -q, --quiet           Only display IDs\n";

static int network_ls(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("network ls", ls_usage, "FQ", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("network ls", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    json_t *list;
    struct serr err;
    if (cli_call(cli, "GET", "/v1/networks", NULL, &list, &err) < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(list, false);
    } else {
        static const char *const head[] = {"NETWORK ID", "NAME", "DRIVER", "SUBNET", "SERVICES"};
        struct table *t = table_new(5, head);
        size_t i;
        json_t *n;
        json_array_foreach(list, i, n)
        {
            char id[16], count[16];
            cli_short_id(cli_str(n, "id"), id, sizeof(id));
            snprintf(count, sizeof(count), "%zu", json_array_size(json_object_get(n, "services")));
            const char *cells[] = {id, cli_str(n, "name"), cli_str(n, "driver"),
                                   cli_str(n, "subnet"), count};
            table_add(t, cells);
        }
        table_print_free(t);
    }
    json_decref(list);
    return CLI_EXIT_OK;
}

static const char inspect_usage[] = "Usage:  shoal network inspect NETWORK [NETWORK...]\n\n"
                                    "Display detailed information on one or more networks\n";

static int network_inspect(struct cli *cli, int argc, char **argv)
{
    return cli_inspect(cli, "network inspect", inspect_usage, "/v1/networks/%s", argc, argv);
}

static const char rm_usage[] = "Usage:  shoal network rm NETWORK [NETWORK...]\n\n"
                               "Remove one or more networks (not while a service uses them)\n";

static int network_rm(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("network rm", rm_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("network rm", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_remove_each(cli, "/v1/networks/%s", "", argc - fl.first_arg, argv + fl.first_arg);
}

static const struct cli_cmd network_cmds[] = {
    {"create", NULL, network_create, "Create a network"},
    {"inspect", NULL, network_inspect, "Display detailed information on one or more networks"},
    {"ls", "list", network_ls, "List networks"},
    {"rm", "remove", network_rm, "Remove one or more networks"},
    {NULL, NULL, NULL, NULL},
};

int cli_network(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "network", network_cmds, argc, argv);
}
