/* shoal image import | load | ls | rm | tag | history (pull, push: cli_registry.c;
 * build: cli_build.c) */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

/* Uploads need a size up front (Content-Length), so stdin goes to a
 * temporary file first. *tmp_path is set to the file to unlink. */
static int spool_stdin(char **tmp_path, struct serr *err)
{
    const char *dir = getenv("TMPDIR");
    char *path = xasprintf("%s/shoal-upload-XXXXXX", dir && dir[0] ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        serr_errno(err, "create a temporary file for stdin");
        free(path);
        return -1;
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || write(fd, buf, (size_t)n) != n) {
            rc = serr_errno(err, "spool stdin to %s", path);
            break;
        }
    }
    close(fd);
    if (rc < 0) {
        unlink(path);
        free(path);
        return -1;
    }
    *tmp_path = path;
    return 0;
}

/* Uploads `file` ("-": stdin) to `path`. */
static int upload(struct cli *cli, const char *path, const char *file, json_t **out,
                  struct serr *err)
{
    char *tmp = NULL;
    if (strcmp(file, "-") == 0) {
        if (isatty(STDIN_FILENO))
            return serr_set(err, SERR_INVALID, "refusing to read an archive from a terminal");
        if (spool_stdin(&tmp, err) < 0)
            return -1;
        file = tmp;
    }
    int rc = cli_call_file(cli, path, file, out, err);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    return rc;
}

static const char import_usage[] = "Usage:  shoal image import FILE|- NAME[:TAG]\n\n"
                                   "Import the contents from a tarball to create a filesystem "
                                   "image\n";

static int image_import(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("image import", import_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("image import", argc - fl.first_arg, 2, 2)) >= 0)
        return rc;
    const char *file = argv[fl.first_arg], *name = argv[fl.first_arg + 1];
    if (name[0] == '\0')
        return cli_usage_error("image import", "invalid image name \"\"");
    char *path = cli_path("/v1/images/import?name=%s", name);
    json_t *image;
    struct serr err;
    rc = upload(cli, path, file, &image, &err);
    free(path);
    if (rc < 0)
        return cli_fail(&err);
    printf("%s\n", cli_str(image, "id"));
    json_decref(image);
    return CLI_EXIT_OK;
}

static const char load_usage[] = "Usage:  shoal image load [OPTIONS]\n\n"
                                 "Load an image from a tar archive (docker save or OCI layout) "
                                 "or STDIN\n\n"
                                 "Options:\n"
                                 "  -i, --input string   Read from tar archive file, instead of "
                                 "STDIN\n";

static void print_loaded(json_t *images)
{
    size_t i, k;
    json_t *image, *tag;
    json_array_foreach(images, i, image) {
        json_t *tags = json_object_get(image, "tags");
        if (json_array_size(tags) == 0)
            printf("Loaded image ID: %s\n", cli_str(image, "id"));
        json_array_foreach(tags, k, tag) printf("Loaded image: %s\n", json_string_value(tag));
    }
}

static int image_load(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("image load", load_usage, "i", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("image load", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    json_t *images;
    struct serr err;
    if (upload(cli, "/v1/images/load", fl.input ? fl.input : "-", &images, &err) < 0)
        return cli_fail(&err);
    print_loaded(images);
    json_decref(images);
    return CLI_EXIT_OK;
}

static const char ls_usage[] = "Usage:  shoal image ls [OPTIONS]\n\nList images\n\n"
                               "Options:\n"
                               "      --digests         Show digests\n"
                               "      --filter filter   Filter output based on conditions provided\n"
                               "      --format string   Format output (json, table, a Go template such as\n"
                               "                        '{{.Name}}' or 'table {{.ID}}\\t{{.Name}}')\n"
                               "  -q, --quiet           Only display IDs\n";

/* "reg:5000/a/b:tag" -> repository "reg:5000/a/b", tag "tag". */
static void split_tag(const char *ref, char *repo, size_t repo_len, char *tag, size_t tag_len)
{
    const char *slash = strrchr(ref, '/');
    const char *colon = strrchr(slash ? slash : ref, ':');
    if (colon == NULL) {
        snprintf(repo, repo_len, "%s", ref);
        snprintf(tag, tag_len, "latest");
        return;
    }
    snprintf(repo, repo_len, "%.*s", (int)(colon - ref), ref);
    snprintf(tag, tag_len, "%s", colon + 1);
}

/* The digest the image was pulled with from `repo` ("sha256:..."), or "<none>". */
static const char *repo_digest(json_t *image, const char *repo)
{
    size_t i, n = strlen(repo);
    json_t *d;
    json_array_foreach(json_object_get(image, "digests"), i, d)
    {
        const char *s = json_string_value(d);
        if (s && strncmp(s, repo, n) == 0 && s[n] == '@')
            return s + n + 1;
    }
    return "<none>";
}

/* One row; the DIGEST column only with --digests. */
static void add_row(struct table *t, bool digests, const char *repo, const char *tag,
                    const char *digest, const char *id, const char *created, const char *size)
{
    const char *with[] = {repo, tag, digest, id, created, size};
    const char *without[] = {repo, tag, id, created, size};
    table_add(t, digests ? with : without);
}

static void image_rows(struct table *t, json_t *image, bool digests)
{
    char id[16], size[32], created[64], repo[256], tag[128];
    cli_short_id(cli_str(image, "id"), id, sizeof(id));
    cli_human_size(cli_int(image, "size"), size, sizeof(size));
    cli_ago(cli_int(image, "created_at"), created, sizeof(created));
    json_t *tags = json_object_get(image, "tags");
    size_t i;
    json_t *ref;
    json_array_foreach(tags, i, ref) {
        split_tag(json_string_value(ref) ? json_string_value(ref) : "", repo, sizeof(repo), tag,
                  sizeof(tag));
        add_row(t, digests, repo, tag, repo_digest(image, repo), id, created, size);
    }
    if (json_array_size(tags) > 0)
        return;
    json_t *ds = json_object_get(image, "digests");
    if (json_array_size(ds) == 0)
        add_row(t, digests, "<none>", "<none>", "<none>", id, created, size);
    json_array_foreach(ds, i, ref) { /* pulled by digest only: docker shows the repository */
        const char *s = json_string_value(ref) ? json_string_value(ref) : "";
        const char *at = strchr(s, '@');
        snprintf(repo, sizeof(repo), "%.*s", at ? (int)(at - s) : 0, s);
        add_row(t, digests, repo, "<none>", at ? at + 1 : "<none>", id, created, size);
    }
}

static int image_ls(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("image ls", ls_usage, "FQG", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("image ls", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    bool digests = fl.digests;
    json_t *images;
    struct serr err;
    if (cli_call(cli, "GET", "/v1/images", NULL, &images, &err) < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(images, false);
    } else {
        static const char *const head[] = {"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"};
        static const char *const head_digests[] = {"REPOSITORY", "TAG",     "DIGEST",
                                                   "IMAGE ID",   "CREATED", "SIZE"};
        struct table *t = digests ? table_new(6, head_digests) : table_new(5, head);
        size_t i;
        json_t *image;
        json_array_foreach(images, i, image) image_rows(t, image, digests);
        table_print_free(t);
    }
    json_decref(images);
    return CLI_EXIT_OK;
}

static const char inspect_usage[] = "Usage:  shoal image inspect IMAGE [IMAGE...]\n\n"
                                    "Display detailed information on one or more images\n";

static int image_inspect(struct cli *cli, int argc, char **argv)
{
    return cli_inspect(cli, "image inspect", inspect_usage, "/v1/images/%s", argc, argv);
}

static const char rm_usage[] = "Usage:  shoal image rm [OPTIONS] IMAGE [IMAGE...]\n\n"
                               "Remove one or more images\n\n"
                               "Options:\n"
                               "  -f, --force   Remove the image even if a service uses it\n";

static int image_rm(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("image rm", rm_usage, "f", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("image rm", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    rc = CLI_EXIT_OK;
    for (int i = fl.first_arg; i < argc; i++) {
        char *base = cli_path("/v1/images/%s", argv[i]);
        char *path = xasprintf("%s%s", base, fl.force ? "?force=1" : "");
        struct serr err;
        if (cli_call(cli, "DELETE", path, NULL, NULL, &err) < 0)
            rc = cli_fail(&err);
        else
            printf("Deleted: %s\n", argv[i]);
        free(path);
        free(base);
    }
    return rc;
}

static const char tag_usage[] = "Usage:  shoal image tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n\n"
                                "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE\n";

static int image_tag(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("image tag", tag_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("image tag", argc - fl.first_arg, 2, 2)) >= 0)
        return rc;
    const char *source = argv[fl.first_arg], *target = argv[fl.first_arg + 1];
    struct serr err; /* the daemon checks both references */
    char *path = cli_path("/v1/images/%s/tag", source);
    json_t *body = json_pack("{s:s}", "target", target);
    rc = cli_call(cli, "POST", path, body, NULL, &err);
    json_decref(body);
    free(path);
    return rc < 0 ? cli_fail(&err) : CLI_EXIT_OK;
}

static const char history_usage[] = "Usage:  shoal image history [OPTIONS] IMAGE\n\n"
                                    "Show the history of an image\n\n"
                                    "Options:\n"
                                    "      --format string   Format output (json, table, a Go "
                                    "template)\n"
                                    "      --no-trunc        Don't truncate output\n";

/* "2024-05-01T10:00:00.123Z" (UTC, as image configs write it) -> "3 weeks
 * ago"; "N/A" when absent or unreadable. */
static void created_ago(const char *rfc3339, char *out, size_t outlen)
{
    struct tm tm = {0};
    const char *end = rfc3339[0] ? strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (end == NULL) {
        snprintf(out, outlen, "N/A");
        return;
    }
    cli_ago((int64_t)timegm(&tm) * 1000, out, outlen);
}

/* Docker's CREATED BY column: 45 characters (Docker ends a cut with an
 * ellipsis; "..." here, as the table counts bytes). */
static void created_by_cell(const char *text, bool no_trunc, char *out, size_t outlen)
{
    if (no_trunc || strlen(text) <= 45)
        snprintf(out, outlen, "%s", text);
    else
        snprintf(out, outlen, "%.42s...", text);
}

static int image_history(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("image history", history_usage, "FT", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("image history", argc - fl.first_arg, 1, 1)) >= 0)
        return rc;
    char *path = cli_path("/v1/images/%s/history", argv[fl.first_arg]);
    json_t *rows;
    struct serr err;
    rc = cli_call(cli, "GET", path, NULL, &rows, &err);
    free(path);
    if (rc < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(rows, false);
        json_decref(rows);
        return CLI_EXIT_OK;
    }
    static const char *const head[] = {"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"};
    struct table *t = table_new(5, head);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        char id[80], created[64], by[4096], size[32];
        if (strcmp(cli_str(row, "id"), "<missing>") == 0 || fl.no_trunc)
            snprintf(id, sizeof(id), "%s", cli_str(row, "id"));
        else
            cli_short_id(cli_str(row, "id"), id, sizeof(id));
        created_ago(cli_str(row, "created"), created, sizeof(created));
        created_by_cell(cli_str(row, "created_by"), fl.no_trunc, by, sizeof(by));
        cli_human_size(cli_int(row, "size"), size, sizeof(size));
        const char *cells[] = {id, created, by, size, cli_str(row, "comment")};
        table_add(t, cells);
    }
    table_print_free(t);
    json_decref(rows);
    return CLI_EXIT_OK;
}

static const struct cli_cmd image_cmds[] = {
    {"build", NULL, cli_image_build, "Build an image from a Dockerfile (through buildah)"},
    {"history", NULL, image_history, "Show the history of an image"},
    {"import", NULL, image_import, "Import a root filesystem tarball as an image"},
    {"inspect", NULL, image_inspect, "Display detailed information on one or more images"},
    {"load", NULL, image_load, "Load an image from a tar archive or STDIN"},
    {"ls", "list", image_ls, "List images"},
    {"prune", NULL, cli_image_prune, "Remove unused images"},
    {"pull", NULL, cli_image_pull, "Download an image from a registry"},
    {"push", NULL, cli_image_push, "Upload an image to a registry"},
    {"rm", "remove", image_rm, "Remove one or more images"},
    {"tag", NULL, image_tag, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"},
    {NULL, NULL, NULL, NULL},
};

int cli_image(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "image", image_cmds, argc, argv);
}
