/* shoal version | info */
#include <stdio.h>
#include <string.h>

#include "base/platform.h"
#include "cli/cli.h"
#include "base/version.h"

static const char version_usage[] = "Usage:  shoal version\n\n"
                                    "Show the shoal version information\n";

int cli_version(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("version", version_usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("version", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    struct serr err;
    json_t *info = NULL;
    int call = cli_call(cli, "GET", "/v1/info", NULL, &info, &err);
    if (fl.json) {
        json_t *out = json_pack("{s:{s:s}}", "client", "version", SHOAL_VERSION);
        if (call == 0)
            json_object_set_new(out, "server",
                                json_pack("{s:s}", "version", cli_str(info, "version")));
        cli_print_json(out, false);
        json_decref(out);
    } else {
        printf("Client:\n Version:  %s\n", SHOAL_VERSION);
        if (call == 0)
            printf("\nServer:\n Version:  %s\n", cli_str(info, "version"));
    }
    json_decref(info);
    /* Like docker: the client part is printed even without a daemon. */
    return call < 0 ? cli_fail(&err) : CLI_EXIT_OK;
}

static const char info_usage[] = "Usage:  shoal info [OPTIONS]\n\n"
                                 "Display system-wide information\n\n"
                                 "Options:\n"
                                 "      --format string   Format output (json)\n";

static const char *yes_no(json_t *obj, const char *key)
{
    return json_is_true(json_object_get(obj, key)) ? "true" : "false";
}

/* A manager's view of the whole cluster (absent on workers). */
static void print_cluster(json_t *swarm)
{
    json_t *c = json_object_get(swarm, "cluster");
    if (c == NULL)
        return;
    char mem[32];
    cli_human_size(cli_int(c, "memory"), mem, sizeof(mem));
    printf(" Nodes: %lld (%lld ready, %lld down)\n", (long long)cli_int(c, "nodes"),
           (long long)cli_int(c, "nodes_ready"), (long long)cli_int(c, "nodes_down"));
    printf(" Managers: %lld\n", (long long)cli_int(c, "managers"));
    printf(" Services: %lld\n", (long long)cli_int(c, "services"));
    printf(" Tasks: %lld (%lld running)\n", (long long)cli_int(c, "tasks"),
           (long long)cli_int(c, "tasks_running"));
    printf(" CPUs: %lld\n", (long long)cli_int(c, "cpus"));
    printf(" Total Memory: %s\n", mem);
    printf(" Task History Retention Limit: %lld\n", (long long)cli_int(swarm, "task_history_limit"));
}

int cli_info(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("info", info_usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("info", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    struct serr err;
    json_t *info;
    if (cli_call(cli, "GET", "/v1/info", NULL, &info, &err) < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(info, false);
        json_decref(info);
        return CLI_EXIT_OK;
    }
    json_t *swarm = json_object_get(info, "swarm");
    printf("Server Version: %s\n", cli_str(info, "version"));
    printf("Node ID: %s\n", cli_str(info, "node_id"));
    printf("Hostname: %s\n", cli_str(info, "hostname"));
    char platform[64];
    platform_format(json_object_get(info, "platform"), platform, sizeof(platform));
    printf("Platform: %s\n", platform);
    printf("Swarm: %s\n", cli_str(swarm, "state"));
    if (strcmp(cli_str(swarm, "state"), "active") == 0) {
        printf(" Cluster ID: %s\n", cli_str(swarm, "cluster_id"));
        printf(" Is Manager: %s\n", yes_no(swarm, "is_manager"));
        printf(" Is Leader: %s\n", yes_no(swarm, "is_leader"));
        printf(" Node Address: %s\n", cli_str(swarm, "addr"));
        if (json_object_get(swarm, "overlay"))
            printf(" Overlay: %s\n", cli_str(swarm, "overlay"));
        print_cluster(swarm);
    }
    json_decref(info);
    return CLI_EXIT_OK;
}
