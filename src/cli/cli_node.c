/* shoal node ls | inspect | promote | demote | update | rm (exec, cp: cli_node_exec.c) */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/platform.h"
#include "base/util.h"
#include "cli/cli.h"

static const char ls_usage[] = "Usage:  shoal node ls [OPTIONS]\n\nList nodes in the swarm\n\n"
                               "Options:\n"
                               "      --filter filter   Filter output based on conditions provided\n"
                               "      --format string   Format output (json, table, a Go template such as\n"
                               "                        '{{.Name}}' or 'table {{.ID}}\\t{{.Name}}')\n"
                               "  -q, --quiet           Only display IDs\n";

static void node_row(struct table *t, json_t *node, const char *self_id)
{
    char id[64], status[32], availability[32], manager[32], platform[64];
    /* Docker marks the node answering with " *". */
    snprintf(id, sizeof(id), "%s%s", cli_str(node, "id"),
             strcmp(cli_str(node, "id"), self_id) == 0 ? " *" : "");
    cli_capitalize(cli_str(node, "status"), status, sizeof(status));
    cli_capitalize(cli_str(node, "availability"), availability, sizeof(availability));
    cli_capitalize(cli_str(node, "manager_status"), manager, sizeof(manager));
    platform_format(json_object_get(node, "platform"), platform, sizeof(platform));
    const char *cells[] = {id, cli_str(node, "hostname"), status, availability, manager, platform};
    table_add(t, cells);
}

static int node_ls(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("node ls", ls_usage, "FQ", argc, argv, &fl);
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
                                           "MANAGER STATUS", "PLATFORM"};
        struct table *t = table_new(6, head);
        size_t i;
        json_t *node;
        json_array_foreach(nodes, i, node) node_row(t, node, cli_str(info, "node_id"));
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
    return cli_inspect(cli, "node inspect", inspect_usage, "/v1/nodes/%s", argc, argv);
}

/* ---- update ---- */

const char cli_node_update_usage[] =
    "Usage:  shoal node update [OPTIONS] NODE\n\n"
    "Update a node\n\n"
    "Options:\n"
    "      --availability string   Availability of the node (\"active\", \"pause\", \"drain\")\n"
    "      --label-add list        Add or update a node label (key=value)\n"
    "      --label-rm list         Remove a node label if exists\n"
    "      --role string           Role of the node (\"worker\", \"manager\")\n";

static bool one_of(const char *value, const char *const *allowed)
{
    for (; *allowed != NULL; allowed++)
        if (strcmp(value, *allowed) == 0)
            return true;
    return false;
}

/* Docker's `key=value`; a bare `key` sets an empty value. */
static int add_label(json_t *labels, const char *text, struct serr *err)
{
    size_t key_len = strcspn(text, "=");
    if (key_len == 0)
        return serr_set(err, SERR_INVALID, "invalid --label-add \"%s\": empty key", text);
    char *key = xasprintf("%.*s", (int)key_len, text);
    const char *value = text[key_len] == '=' ? text + key_len + 1 : "";
    json_object_set_new(labels, key, json_string(value));
    free(key);
    return 0;
}

static int node_update_option(json_t *p, int opt, const char *arg, struct serr *err)
{
    static const char *const availabilities[] = {"active", "pause", "drain", NULL};
    static const char *const roles[] = {"worker", "manager", NULL};
    switch (opt) {
    case 'a':
        if (!one_of(arg, availabilities))
            return serr_set(err, SERR_INVALID,
                            "invalid --availability \"%s\": must be active, pause or drain", arg);
        json_object_set_new(p, "availability", json_string(arg));
        return 0;
    case 'r':
        if (!one_of(arg, roles))
            return serr_set(err, SERR_INVALID,
                            "invalid --role \"%s\": must be worker or manager", arg);
        json_object_set_new(p, "role", json_string(arg));
        return 0;
    case 'L': return add_label(json_object_get(p, "labels_add"), arg, err);
    default:
        if (arg[0] == '\0' || strchr(arg, '=') != NULL)
            return serr_set(err, SERR_INVALID, "invalid --label-rm \"%s\": give a label key",
                            arg);
        json_array_append_new(json_object_get(p, "labels_rm"), json_string(arg));
        return 0;
    }
}

/* Drops the label lists nobody filled; true when something is left to change. */
static bool prune_patch(json_t *p)
{
    if (json_object_size(json_object_get(p, "labels_add")) == 0)
        json_object_del(p, "labels_add");
    if (json_array_size(json_object_get(p, "labels_rm")) == 0)
        json_object_del(p, "labels_rm");
    return json_object_size(p) > 0;
}

int cli_build_node_update(int argc, char **argv, json_t **patch, const char **node,
                          struct serr *err)
{
    static const struct option opts[] = {
        {"availability", required_argument, NULL, 'a'},
        {"role", required_argument, NULL, 'r'},
        {"label-add", required_argument, NULL, 'L'},
        {"label-rm", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    json_t *p = json_pack("{s:o,s:o}", "labels_add", json_object(), "labels_rm", json_array());
    optind = 0;
    int opt, rc = 0;
    while (rc == 0 && (opt = cli_getopt(argc, argv, "h", opts, err)) != -1) {
        if (opt == '?')
            rc = -1;
        else if (opt == 'h')
            rc = 1;
        else
            rc = node_update_option(p, opt, optarg, err);
    }
    if (rc == 0 && argc - optind != 1)
        rc = serr_set(err, SERR_INVALID, "requires exactly 1 argument (NODE)");
    if (rc == 0 && !prune_patch(p))
        rc = serr_set(err, SERR_INVALID,
                      "nothing to update: give --availability, --role, --label-add or --label-rm");
    if (rc != 0) {
        json_decref(p);
        return rc;
    }
    *node = argv[optind];
    *patch = p;
    return 0;
}

static int post_node_update(struct cli *cli, const char *node, json_t *patch, struct serr *err)
{
    char *path = cli_path("/v1/nodes/%s/update", node);
    int rc = cli_call(cli, "POST", path, patch, NULL, err);
    free(path);
    return rc;
}

static int node_update(struct cli *cli, int argc, char **argv)
{
    json_t *patch;
    const char *node;
    struct serr err;
    int rc = cli_build_node_update(argc, argv, &patch, &node, &err);
    if (rc == 1)
        return cli_help(cli_node_update_usage);
    if (rc < 0)
        return cli_usage_error("node update", "%s", err.msg);
    rc = post_node_update(cli, node, patch, &err);
    json_decref(patch);
    if (rc < 0)
        return cli_fail(&err);
    printf("%s\n", node);
    return CLI_EXIT_OK;
}

/* ---- promote / demote ---- */

static const char promote_usage[] = "Usage:  shoal node promote NODE [NODE...]\n\n"
                                    "Promote one or more nodes to manager in the swarm\n";
static const char demote_usage[] = "Usage:  shoal node demote NODE [NODE...]\n\n"
                                   "Demote one or more nodes from manager in the swarm\n";

/* Sets the role of each node, going on after a failure like docker. */
static int set_roles(struct cli *cli, const char *role, int argc, char **argv)
{
    json_t *patch = json_pack("{s:s}", "role", role);
    int rc = CLI_EXIT_OK;
    bool promote = strcmp(role, "manager") == 0;
    for (int i = 0; i < argc; i++) {
        struct serr err;
        if (post_node_update(cli, argv[i], patch, &err) < 0)
            rc = cli_fail(&err);
        else if (promote)
            printf("Node %s promoted to a manager in the swarm.\n", argv[i]);
        else
            printf("Manager %s demoted in the swarm.\n", argv[i]);
    }
    json_decref(patch);
    return rc;
}

static int node_promote(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("node promote", promote_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("node promote", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return set_roles(cli, "manager", argc - fl.first_arg, argv + fl.first_arg);
}

static int node_demote(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("node demote", demote_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("node demote", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return set_roles(cli, "worker", argc - fl.first_arg, argv + fl.first_arg);
}

/* ---- stats ---- */

static const char stats_usage[] = "Usage:  shoal node stats [OPTIONS]\n\n"
                                  "Display the nodes' resource usage (the leader's latest samples)\n\n"
                                  "Options:\n"
                                  "      --format string   Format output (json or table)\n";

/* Binary units like docker stats' memory column: "1.5MiB", "3.8GiB". */
static void binary_size(double bytes, char *out, size_t outlen)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, outlen, u == 0 ? "%.0f%s" : "%.1f%s", bytes, units[u]);
}

static void used_of_total(json_t *latest, const char *used, const char *total, char *out,
                          size_t outlen)
{
    char u[32], t[32];
    binary_size(json_number_value(json_object_get(latest, used)), u, sizeof(u));
    binary_size(json_number_value(json_object_get(latest, total)), t, sizeof(t));
    snprintf(out, outlen, "%s / %s", u, t);
}

static void stats_row(struct table *t, json_t *entry)
{
    char id[16], status[32], cpu[16] = "-", mem[64] = "-", disk[64] = "-", load[48] = "-",
                                 temp[16] = "-";
    cli_short_id(cli_str(entry, "node_id"), id, sizeof(id));
    cli_capitalize(cli_str(entry, "status"), status, sizeof(status));
    json_t *s = json_object_get(entry, "latest");
    if (json_is_object(s)) {
        snprintf(cpu, sizeof(cpu), "%.1f%%", json_number_value(json_object_get(s, "cpu_percent")));
        used_of_total(s, "mem_used", "mem_total", mem, sizeof(mem));
        used_of_total(s, "disk_used", "disk_total", disk, sizeof(disk));
        snprintf(load, sizeof(load), "%.2f %.2f %.2f",
                 json_number_value(json_object_get(s, "load1")),
                 json_number_value(json_object_get(s, "load5")),
                 json_number_value(json_object_get(s, "load15")));
        if (json_is_number(json_object_get(s, "temp_c")))
            snprintf(temp, sizeof(temp), "%.1f\u00b0C",
                     json_number_value(json_object_get(s, "temp_c")));
    }
    const char *cells[] = {id, cli_str(entry, "hostname"), status, cpu, mem, disk, load, temp};
    table_add(t, cells);
}

static int node_stats(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("node stats", stats_usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("node stats", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    struct serr err;
    json_t *entries;
    if (cli_call(cli, "GET", "/v1/nodes/stats", NULL, &entries, &err) < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(entries, false);
    } else {
        static const char *const head[] = {"NODE", "HOSTNAME", "STATUS", "CPU %",
                                           "MEMORY", "DISK", "LOAD", "TEMP"};
        struct table *t = table_new(8, head);
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e) stats_row(t, e);
        table_print_free(t);
    }
    json_decref(entries);
    return CLI_EXIT_OK;
}

/* ---- rm ---- */

static const char rm_usage[] = "Usage:  shoal node rm [OPTIONS] NODE [NODE...]\n\n"
                               "Remove one or more nodes from the swarm\n\n"
                               "Options:\n"
                               "  -f, --force   Force remove a node from the swarm\n";

static int node_rm(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("node rm", rm_usage, "f", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("node rm", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_remove_each(cli, "/v1/nodes/%s", fl.force ? "?force=1" : "", argc - fl.first_arg,
                           argv + fl.first_arg);
}

/* ---- ps ---- */

static const char ps_usage[] =
    "Usage:  shoal node ps [OPTIONS] [NODE...]\n\n"
    "List tasks running on one or more nodes, defaults to current node\n\n"
    "Options:\n"
    "      --filter filter   Filter output based on conditions provided\n"
    "      --format string   Format output (json, table or a Go template)\n"
    "      --no-trunc        Do not truncate output\n"
    "  -q, --quiet           Only display task IDs\n";

static int node_ps(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("node ps", ps_usage, "FQT", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    struct serr err;
    json_t *ids = json_array();
    if (fl.first_arg == argc) { /* this node */
        json_t *info;
        if (cli_call(cli, "GET", "/v1/info", NULL, &info, &err) < 0) {
            json_decref(ids);
            return cli_fail(&err);
        }
        json_array_append(ids, json_object_get(info, "node_id"));
        json_decref(info);
    }
    for (int i = fl.first_arg; i < argc; i++) {
        char *path = cli_path("/v1/nodes/%s", argv[i]);
        json_t *node;
        rc = cli_call(cli, "GET", path, NULL, &node, &err);
        free(path);
        if (rc < 0) {
            json_decref(ids);
            return cli_fail(&err);
        }
        json_array_append(ids, json_object_get(node, "id"));
        json_decref(node);
    }
    json_t *tasks;
    if (cli_call(cli, "GET", "/v1/tasks", NULL, &tasks, &err) < 0) {
        json_decref(ids);
        return cli_fail(&err);
    }
    json_t *shown = json_array();
    size_t i, k;
    json_t *t, *id;
    json_array_foreach(tasks, i, t)
    {
        json_array_foreach(ids, k, id)
        {
            if (json_equal(json_object_get(t, "node_id"), id))
                json_array_append(shown, t);
        }
    }
    cli_print_tasks(shown, &fl);
    json_decref(shown);
    json_decref(tasks);
    json_decref(ids);
    return CLI_EXIT_OK;
}

static const struct cli_cmd node_cmds[] = {
    {"cp", NULL, cli_node_cp, "Copy a file to the hosts of a set of nodes"},
    {"demote", NULL, node_demote, "Demote one or more nodes from manager in the swarm"},
    {"exec", NULL, cli_node_exec, "Run a command on the hosts of a set of nodes"},
    {"inspect", NULL, node_inspect, "Display detailed information on one or more nodes"},
    {"ls", "list", node_ls, "List nodes in the swarm"},
    {"promote", NULL, node_promote, "Promote one or more nodes to manager in the swarm"},
    {"ps", NULL, node_ps, "List tasks running on one or more nodes, defaults to current node"},
    {"rm", "remove", node_rm, "Remove one or more nodes from the swarm"},
    {"stats", NULL, node_stats, "Display the nodes' resource usage"},
    {"update", NULL, node_update, "Update a node"},
    {NULL, NULL, NULL, NULL},
};

int cli_node(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "node", node_cmds, argc, argv);
}
