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
    "  -l, --label list        Set metadata for a volume (key=value)\n"
    "      --backup schedule   Back it up daily, hourly or every DURATION (10m, 6h)\n"
    "                          into the backup-dir of daemon.json\n"
    "      --keep int          Backups kept (default 7)\n"
    "      --hook string       Shell command run first in the container using it\n"
    "                          (e.g. a database dump into the volume)\n";

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
        {"backup", required_argument, NULL, 'B'},
        {"keep", required_argument, NULL, 'K'},
        {"hook", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    json_t *labels = json_object(), *backup = json_object();
    struct serr err = {0};
    optind = 0;
    int opt, rc = -1;
    int64_t keep = 0;
    while (rc < 0 && (opt = cli_getopt(argc, argv, "l:h", opts, &err)) != -1) {
        if (opt == 'h')
            rc = cli_help(create_usage);
        else if (opt == '?' || (opt == 'l' && add_label(labels, optarg, &err) < 0) ||
                 (opt == 'K' && cli_parse_uint("--keep", optarg, 1000, &keep, &err) < 0))
            rc = cli_usage_error("volume create", "%s", err.msg);
        else if (opt == 'B' || opt == 'H')
            json_object_set_new(backup, opt == 'B' ? "schedule" : "hook", json_string(optarg));
        else if (opt == 'K')
            json_object_set_new(backup, "keep", json_integer(keep));
    }
    if (rc < 0 && json_object_size(backup) > 0 && json_object_get(backup, "schedule") == NULL)
        rc = cli_usage_error("volume create", "--keep and --hook need --backup SCHEDULE");
    if (rc < 0)
        rc = cli_nargs("volume create", argc - optind, 1, 1);
    if (rc >= 0) {
        json_decref(labels);
        json_decref(backup);
        return rc;
    }
    json_t *body = json_pack("{s:s, s:o}", "name", argv[optind], "labels", labels);
    if (json_object_size(backup) > 0)
        json_object_set(body, "backup", backup);
    json_decref(backup);
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
    return cli_inspect(cli, "volume inspect", usage, "/v1/volumes/%s", argc, argv);
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

/* ---- backups ---- */

static int volume_backup(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "Usage:  shoal volume backup VOLUME\n\n"
                                "Back up a volume now, on the node holding it (its hook first)\n";
    struct cli_flags fl;
    int rc = cli_flags("volume backup", usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("volume backup", argc - fl.first_arg, 1, 1)) >= 0)
        return rc;
    char path[160];
    snprintf(path, sizeof(path), "/v1/volumes/%s/backup", argv[fl.first_arg]);
    json_t *out;
    struct serr err;
    if (cli_call(cli, "POST", path, NULL, &out, &err) < 0)
        return cli_fail(&err);
    printf("%s\n", cli_str(out, "name"));
    json_decref(out);
    return CLI_EXIT_OK;
}

static int volume_backups(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "Usage:  shoal volume backups [OPTIONS] VOLUME\n\n"
                                "List a volume's backups, newest first\n\nOptions:\n"
                                "      --format string   Format output (json or table)\n";
    struct cli_flags fl;
    int rc = cli_flags("volume backups", usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("volume backups", argc - fl.first_arg, 1, 1)) >= 0)
        return rc;
    char path[160];
    snprintf(path, sizeof(path), "/v1/volumes/%s/backups", argv[fl.first_arg]);
    json_t *list;
    struct serr err;
    if (cli_call(cli, "GET", path, NULL, &list, &err) < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(list, false);
    } else {
        static const char *const head[] = {"BACKUP", "CREATED", "SIZE", "SHA256"};
        struct table *t = table_new(4, head);
        size_t i;
        json_t *b;
        int64_t now = now_ms();
        json_array_foreach(list, i, b)
        {
            char created[48], size[32], sum[16];
            format_age(now - cli_int(b, "created_at"), created, sizeof(created));
            strncat(created, " ago", sizeof(created) - strlen(created) - 1);
            cli_human_size(cli_int(b, "size"), size, sizeof(size));
            snprintf(sum, sizeof(sum), "%.12s", cli_str(b, "sha256"));
            const char *cells[] = {cli_str(b, "name"), created, size, sum};
            table_add(t, cells);
        }
        table_print_free(t);
    }
    json_decref(list);
    return CLI_EXIT_OK;
}

static int volume_restore(struct cli *cli, int argc, char **argv)
{
    static const char usage[] =
        "Usage:  shoal volume restore [OPTIONS] VOLUME\n\n"
        "Replace a volume's data with a backup (checksum verified first), on the\n"
        "node holding it; not while a container uses it\n\nOptions:\n"
        "      --from string   The backup ('volume backups' lists them; default: newest)\n";
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *from = NULL;
    struct serr err = {0};
    optind = 0;
    int opt;
    while ((opt = cli_getopt(argc, argv, "h", opts, &err)) != -1) {
        if (opt == 'h')
            return cli_help(usage);
        if (opt == '?')
            return cli_usage_error("volume restore", "%s", err.msg);
        from = optarg;
    }
    int rc = cli_nargs("volume restore", argc - optind, 1, 1);
    if (rc >= 0)
        return rc;
    char path[160];
    snprintf(path, sizeof(path), "/v1/volumes/%s/restore", argv[optind]);
    json_t *body = json_pack("{s:s?}", "from", from), *out;
    rc = cli_call(cli, "POST", path, body, &out, &err);
    json_decref(body);
    if (rc < 0)
        return cli_fail(&err);
    const char *restored = cli_str(out, "restored"), *base = strrchr(restored, '/');
    printf("%s restored from %s\n", cli_str(out, "name"), base ? base + 1 : restored);
    json_decref(out);
    return CLI_EXIT_OK;
}

static const struct cli_cmd volume_cmds[] = {
    {"backup", NULL, volume_backup, "Back up a volume now"},
    {"backups", NULL, volume_backups, "List a volume's backups"},
    {"create", NULL, volume_create, "Create a volume"},
    {"inspect", NULL, volume_inspect, "Display detailed information on one or more volumes"},
    {"ls", "list", volume_ls, "List volumes"},
    {"prune", NULL, cli_volume_prune, "Remove all unused volumes"},
    {"restore", NULL, volume_restore, "Replace a volume's data with a backup"},
    {"rm", "remove", volume_rm, "Remove one or more volumes"},
    {NULL, NULL, NULL, NULL},
};

int cli_volume(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "volume", volume_cmds, argc, argv);
}
