/* shoal system df | system prune | image prune | container prune: docker's
 * cleanup commands. A prune asks for confirmation on a terminal and refuses
 * without -f when standard input is none (a script must say -f). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

/* ---- confirmation ---- */

/* 0 when the user said yes (or -f was given), else prints why and returns 1. */
static int confirm(const char *warning, bool force)
{
    if (force)
        return 0;
    if (!isatty(STDIN_FILENO)) {
        cli_error("refusing to prune without --force: standard input is not a terminal to "
                  "confirm on");
        return 1;
    }
    printf("WARNING! This will remove:\n%s\nAre you sure you want to continue? [y/N] ", warning);
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof(line), stdin) && (line[0] == 'y' || line[0] == 'Y'))
        return 0;
    printf("Aborted.\n");
    return 1;
}

/* ---- printing what went ---- */

static void print_reclaimed(int64_t bytes)
{
    char size[32];
    cli_human_size(bytes, size, sizeof(size));
    printf("\nTotal reclaimed space: %s\n", size);
}

static void print_images_deleted(json_t *reply)
{
    json_t *deleted = json_object_get(reply, "deleted");
    if (json_array_size(deleted) == 0)
        return;
    printf("Deleted Images:\n");
    size_t i, k;
    json_t *img, *tag;
    json_array_foreach(deleted, i, img)
    {
        json_array_foreach(json_object_get(img, "tags"), k, tag)
            printf("untagged: %s\n", json_string_value(tag));
        printf("deleted: %s\n", cli_str(img, "id"));
    }
}

static void print_containers_deleted(json_t *reply)
{
    json_t *deleted = json_object_get(reply, "deleted");
    if (json_array_size(deleted) == 0)
        return;
    printf("Deleted Containers:\n");
    size_t i;
    json_t *c;
    json_array_foreach(deleted, i, c) printf("%s\n", cli_str(c, "id"));
}

/* ---- the API calls ---- */

static int prune_images(struct cli *cli, bool all, int64_t *reclaimed, struct serr *err)
{
    json_t *reply;
    if (cli_call(cli, "POST", all ? "/v1/images/prune?all=1" : "/v1/images/prune", NULL, &reply,
                 err) < 0)
        return -1;
    print_images_deleted(reply);
    *reclaimed += cli_int(reply, "space_reclaimed");
    json_decref(reply);
    return 0;
}

static int prune_containers(struct cli *cli, int64_t *reclaimed, struct serr *err)
{
    json_t *reply;
    if (cli_call(cli, "POST", "/v1/containers/prune", NULL, &reply, err) < 0)
        return -1;
    print_containers_deleted(reply);
    *reclaimed += cli_int(reply, "space_reclaimed");
    json_decref(reply);
    return 0;
}

static int prune_volumes(struct cli *cli, int64_t *reclaimed, struct serr *err)
{
    json_t *reply;
    if (cli_call(cli, "POST", "/v1/volumes/prune", NULL, &reply, err) < 0)
        return -1;
    json_t *deleted = json_object_get(reply, "volumes_deleted");
    if (json_array_size(deleted) > 0)
        printf("Deleted Volumes:\n");
    size_t i;
    json_t *name;
    json_array_foreach(deleted, i, name) printf("%s\n", json_string_value(name));
    *reclaimed += cli_int(reply, "space_reclaimed");
    json_decref(reply);
    return 0;
}

/* ---- volume prune ---- */

static const char volume_prune_usage[] =
    "Usage:  shoal volume prune [OPTIONS]\n\n"
    "Remove all unused volumes (those no service mounts)\n\n"
    "Options:\n"
    "  -f, --force   Do not prompt for confirmation\n";

int cli_volume_prune(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("volume prune", volume_prune_usage, "f", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("volume prune", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    if (confirm("  - all volumes not used by at least one service", fl.force))
        return CLI_EXIT_ERROR;
    struct serr err;
    int64_t reclaimed = 0;
    if (prune_volumes(cli, &reclaimed, &err) < 0)
        return cli_fail(&err);
    print_reclaimed(reclaimed);
    return CLI_EXIT_OK;
}

/* ---- image prune ---- */

static const char image_prune_usage[] =
    "Usage:  shoal image prune [OPTIONS]\n\n"
    "Remove unused images\n\n"
    "Options:\n"
    "  -a, --all     Remove all unused images, not just dangling ones\n"
    "  -f, --force   Do not prompt for confirmation\n\n"
    "Dangling images have no tag; an image is unused when no service (its spec\n"
    "or the previous one), task (history included), job or container needs it.\n";

int cli_image_prune(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("image prune", image_prune_usage, "af", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("image prune", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    if (confirm(fl.all ? "  - all images without at least one service, task or container "
                         "using them"
                       : "  - all dangling images",
                fl.force))
        return CLI_EXIT_ERROR;
    struct serr err;
    int64_t reclaimed = 0;
    if (prune_images(cli, fl.all, &reclaimed, &err) < 0)
        return cli_fail(&err);
    print_reclaimed(reclaimed);
    return CLI_EXIT_OK;
}

/* ---- container prune ---- */

static const char container_prune_usage[] =
    "Usage:  shoal container prune [OPTIONS]\n\n"
    "Remove all stopped containers of 'shoal run' on this node\n\n"
    "Options:\n"
    "  -f, --force   Do not prompt for confirmation\n\n"
    "The containers of a service's tasks go with their task (swarm update\n"
    "--task-history-limit).\n";

static int container_prune(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("container prune", container_prune_usage, "f", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("container prune", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    if (confirm("  - all stopped containers", fl.force))
        return CLI_EXIT_ERROR;
    struct serr err;
    int64_t reclaimed = 0;
    if (prune_containers(cli, &reclaimed, &err) < 0)
        return cli_fail(&err);
    print_reclaimed(reclaimed);
    return CLI_EXIT_OK;
}

static const struct cli_cmd container_cmds[] = {
    {"ls", "list", cli_ps, "List containers"},
    {"prune", NULL, container_prune, "Remove all stopped containers"},
    {"rm", "remove", cli_rm, "Remove one or more containers"},
    {NULL, NULL, NULL, NULL},
};

int cli_container(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "container", container_cmds, argc, argv);
}

/* ---- system prune ---- */

static const char system_prune_usage[] =
    "Usage:  shoal system prune [OPTIONS]\n\n"
    "Remove unused data\n\n"
    "Options:\n"
    "  -a, --all       Remove all unused images not just dangling ones\n"
    "  -f, --force     Do not prompt for confirmation\n"
    "      --volumes   Prune volumes no service mounts (as 'volume prune')\n";

int cli_build_system_prune(int argc, char **argv, bool *all, bool *force, bool *volumes,
                           struct serr *err)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},
        {"force", no_argument, NULL, 'f'},
        {"volumes", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *all = *force = *volumes = false;
    optind = 0;
    int opt;
    while ((opt = cli_getopt(argc, argv, "afh", opts, err)) != -1) {
        if (opt == '?')
            return -1;
        if (opt == 'h')
            return 1;
        *all |= opt == 'a';
        *force |= opt == 'f';
        *volumes |= opt == 'V';
    }
    if (optind != argc)
        return serr_set(err, SERR_INVALID, "accepts no arguments");
    return 0;
}

static int system_prune(struct cli *cli, int argc, char **argv)
{
    bool all, force, volumes;
    struct serr err;
    int rc = cli_build_system_prune(argc, argv, &all, &force, &volumes, &err);
    if (rc == 1)
        return cli_help(system_prune_usage);
    if (rc < 0)
        return cli_usage_error("system prune", "%s", err.msg);
    char warning[256];
    snprintf(warning, sizeof(warning), "  - all stopped containers\n%s  - %s",
             volumes ? "  - all volumes not used by at least one service\n" : "",
             all ? "all images without at least one service, task or container using them"
                 : "all dangling images");
    if (confirm(warning, force))
        return CLI_EXIT_ERROR;
    int64_t reclaimed = 0;
    if (prune_containers(cli, &reclaimed, &err) < 0 ||
        (volumes && prune_volumes(cli, &reclaimed, &err) < 0) ||
        prune_images(cli, all, &reclaimed, &err) < 0)
        return cli_fail(&err);
    print_reclaimed(reclaimed);
    return CLI_EXIT_OK;
}

/* ---- system df ---- */

static const char df_usage[] = "Usage:  shoal system df [OPTIONS]\n\n"
                               "Show shoal disk usage\n\n"
                               "Options:\n"
                               "      --format string   Format output (json)\n\n"
                               "Images are the cluster's; containers and volumes this node's.\n";

static void df_row(struct table *t, const char *type, json_t *o)
{
    char total[24], active[24], size[32], rec[32], rec_pct[48];
    snprintf(total, sizeof(total), "%lld", (long long)cli_int(o, "total"));
    snprintf(active, sizeof(active), "%lld", (long long)cli_int(o, "active"));
    cli_human_size(cli_int(o, "size"), size, sizeof(size));
    cli_human_size(cli_int(o, "reclaimable"), rec, sizeof(rec));
    int64_t all = cli_int(o, "size");
    snprintf(rec_pct, sizeof(rec_pct), "%s (%lld%%)", rec,
             all > 0 ? (long long)(cli_int(o, "reclaimable") * 100 / all) : 0LL);
    const char *cells[] = {type, total, active, size, rec_pct};
    table_add(t, cells);
}

static int system_df(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("system df", df_usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("system df", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    json_t *df;
    struct serr err;
    if (cli_call(cli, "GET", "/v1/system/df", NULL, &df, &err) < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(df, false);
        json_decref(df);
        return CLI_EXIT_OK;
    }
    static const char *const head[] = {"TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"};
    struct table *t = table_new(5, head);
    df_row(t, "Images", json_object_get(df, "images"));
    df_row(t, "Containers", json_object_get(df, "containers"));
    df_row(t, "Local Volumes", json_object_get(df, "volumes"));
    const char *cache[] = {"Build Cache", "0", "0", "0B", "0B"};
    table_add(t, cache);
    table_print_free(t);
    json_decref(df);
    return CLI_EXIT_OK;
}

static const struct cli_cmd system_cmds[] = {
    {"df", NULL, system_df, "Show shoal disk usage"},
    {"info", NULL, cli_info, "Display system-wide information"},
    {"prune", NULL, system_prune, "Remove unused data"},
    {NULL, NULL, NULL, NULL},
};

int cli_system(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "system", system_cmds, argc, argv);
}
