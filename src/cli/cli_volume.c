/* shoal volume create | ls | inspect | rm (prune: cli_prune.c). Volumes are
 * the cluster's records (manager/volume.h) of data held by one node each. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

static const char create_usage[] =
    "Usage:  shoal volume create [OPTIONS] VOLUME\n\n"
    "Create a volume\n\n"
    "Options:\n"
    "  -l, --label list   Set metadata for a volume (key=value)\n";

/* "k=v" into labels (a bare "k" is k=""); -1 with err when the key is empty. */
static int add_label(json_t *labels, const char *arg, struct serr *err)
{
    const char *eq = strchr(arg, '=');
    size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (klen == 0)
        return serr_set(err, SERR_INVALID, "invalid label '%s': key is empty", arg);
    char *key = xstrdup(arg);
    key[klen] = '\0';
    json_object_set_new(labels, key, json_string(eq ? eq + 1 : ""));
    free(key);
    return 0;
}

static int volume_create(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"label", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    json_t *labels = json_object();
    struct serr err = {0};
    optind = 0;
    int opt, rc = -1;
    while (rc < 0 && (opt = cli_getopt(argc, argv, "l:h", opts, &err)) != -1) {
        if (opt == 'h')
            rc = cli_help(create_usage);
        else if (opt == '?' || (opt == 'l' && add_label(labels, optarg, &err) < 0))
            rc = cli_usage_error("volume create", "%s", err.msg);
    }
    if (rc < 0)
        rc = cli_nargs("volume create", argc - optind, 1, 1);
    if (rc >= 0) {
        json_decref(labels);
        return rc;
    }
    json_t *body = json_pack("{s:s, s:o}", "name", argv[optind], "labels", labels);
    json_t *out = NULL;
    rc = cli_call(cli, "POST", "/v1/volumes", body, &out, &err);
    json_decref(body);
    if (rc < 0)
        return cli_fail(&err);
    printf("%s\n", cli_str(out, "name"));
    json_decref(out);
    return CLI_EXIT_OK;
}

static const char ls_usage[] =
    "Usage:  shoal volume ls [OPTIONS]\n\n"
    "List volumes\n\n"
    "Options:\n"
    "  -f, --filter filter   Filter output (dangling=true|false: no service mounts it)\n"
    "      --format string   Format output (json or table)\n"
    "  -q, --quiet           Only display volume names\n";

struct ls_opts {
    bool quiet, json;
    char query[32]; /* "?dangling=true" or "" */
};

static int parse_filter(const char *arg, struct ls_opts *o, struct serr *err)
{
    if (strcmp(arg, "dangling=true") == 0 || strcmp(arg, "dangling=false") == 0) {
        snprintf(o->query, sizeof(o->query), "?%s", arg);
        return 0;
    }
    return serr_set(err, SERR_INVALID, "invalid filter '%s' (dangling=true or dangling=false)",
                    arg);
}

static void print_volumes(json_t *list)
{
    static const char *const head[] = {"NAME", "NODE", "SIZE", "SERVICES", "TASKS"};
    struct table *t = table_new(5, head);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        char size[32], services[16], tasks[16];
        if (json_is_integer(json_object_get(v, "size")))
            cli_human_size(cli_int(v, "size"), size, sizeof(size));
        else
            snprintf(size, sizeof(size), "-");
        snprintf(services, sizeof(services), "%zu",
                 json_array_size(json_object_get(v, "services")));
        snprintf(tasks, sizeof(tasks), "%zu", json_array_size(json_object_get(v, "tasks")));
        const char *node = *cli_str(v, "node") ? cli_str(v, "node") : "-";
        const char *cells[] = {cli_str(v, "name"), node, size, services, tasks};
        table_add(t, cells);
    }
    table_print_free(t);
}

static int volume_ls(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"filter", required_argument, NULL, 'f'},
        {"format", required_argument, NULL, 'F'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ls_opts o = {0};
    struct serr err = {0};
    optind = 0;
    int opt;
    while ((opt = cli_getopt(argc, argv, "f:qh", opts, &err)) != -1) {
        if (opt == 'h')
            return cli_help(ls_usage);
        if (opt == '?' || (opt == 'f' && parse_filter(optarg, &o, &err) < 0) ||
            (opt == 'F' && cli_parse_format(optarg, &o.json, &err) < 0))
            return cli_usage_error("volume ls", "%s", err.msg);
        o.quiet |= opt == 'q';
    }
    int rc = cli_nargs("volume ls", argc - optind, 0, 0);
    if (rc >= 0)
        return rc;
    char path[64];
    snprintf(path, sizeof(path), "/v1/volumes%s", o.query);
    json_t *list;
    if (cli_call(cli, "GET", path, NULL, &list, &err) < 0)
        return cli_fail(&err);
    size_t i;
    json_t *v;
    if (o.quiet)
        json_array_foreach(list, i, v) printf("%s\n", cli_str(v, "name"));
    else if (o.json)
        cli_print_json(list, false);
    else
        print_volumes(list);
    json_decref(list);
    return CLI_EXIT_OK;
}

static int volume_inspect(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "Usage:  shoal volume inspect VOLUME [VOLUME...]\n\n"
                                "Display detailed information on one or more volumes: the\n"
                                "node holding it, its size, the services and tasks using it\n";
    struct cli_flags fl;
    int rc = cli_flags("volume inspect", usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("volume inspect", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_inspect(cli, "/v1/volumes/%s", argc - fl.first_arg, argv + fl.first_arg);
}

static int volume_rm(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "Usage:  shoal volume rm VOLUME [VOLUME...]\n\n"
                                "Remove one or more volumes and their data (not while a service\n"
                                "mounts them)\n";
    struct cli_flags fl;
    int rc = cli_flags("volume rm", usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("volume rm", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    return cli_remove_each(cli, "/v1/volumes/%s", "", argc - fl.first_arg, argv + fl.first_arg);
}

static const struct cli_cmd volume_cmds[] = {
    {"create", NULL, volume_create, "Create a volume"},
    {"inspect", NULL, volume_inspect, "Display detailed information on one or more volumes"},
    {"ls", "list", volume_ls, "List volumes"},
    {"prune", NULL, cli_volume_prune, "Remove all unused volumes"},
    {"rm", "remove", volume_rm, "Remove one or more volumes"},
    {NULL, NULL, NULL, NULL},
};

int cli_volume(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "volume", volume_cmds, argc, argv);
}
