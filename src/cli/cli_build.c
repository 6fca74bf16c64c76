/* shoal image build: each context directory goes to the daemon as a tar
 * (POST /v1/images/build); buildah's output comes back as JSON lines.
 *
 * Several contexts at once (`-t a:1 dirA -t b:1 dirB`: each -t and -f go
 * with the directory after them) are built in rounds: a context whose FROM
 * names the tag of another context waits for it; each round's builds run at
 * once (one child process each, their lines prefixed with the tag), spread
 * over the ready nodes when no --node is given. */
#include <archive.h>
#include <archive_entry.h>
#include <fnmatch.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"
#include "model/dockerfile.h"
#include "model/imageref.h"

#define MAX_CONTEXTS 32

struct context {
    const char *tag, *dockerfile, *dir;
    char norm[600];   /* the tag, normalised */
    const char *node; /* where it builds; NULL: the manager called */
    json_t *bases;    /* the Dockerfile's FROM images, normalised */
    bool built;
};

/* ---- the context as a tar ---- */

struct membuf {
    char *data;
    size_t len, cap;
};

static la_ssize_t mem_write(struct archive *a, void *arg, const void *buf, size_t n)
{
    (void)a;
    struct membuf *m = arg;
    buf_append(&m->data, &m->len, &m->cap, buf, n);
    return (la_ssize_t)n;
}

/* .dockerignore's patterns (no "!" exceptions): a new array. */
static json_t *ignore_patterns(const char *dir)
{
    json_t *out = json_array();
    char *path = xasprintf("%s/.dockerignore", dir), *text = NULL;
    size_t len;
    if (read_file(path, &text, &len, NULL) == 0) {
        char *save = NULL;
        for (char *l = strtok_r(text, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save)) {
            while (*l == ' ' || *l == '/')
                l++;
            size_t n = strlen(l);
            while (n > 0 && (l[n - 1] == ' ' || l[n - 1] == '/'))
                l[--n] = '\0';
            if (n > 0 && l[0] != '#' && l[0] != '!')
                json_array_append_new(out, json_string(l));
        }
    }
    free(text);
    free(path);
    return out;
}

/* Whether `rel` or a directory above it matches a pattern. */
static bool ignored(json_t *patterns, const char *rel)
{
    size_t i;
    json_t *p;
    json_array_foreach(patterns, i, p)
    {
        const char *pat = json_string_value(p);
        size_t n = strlen(pat);
        if (fnmatch(pat, rel, FNM_PATHNAME) == 0 ||
            (strncmp(rel, pat, n) == 0 && rel[n] == '/'))
            return true;
    }
    return false;
}

static int copy_data(struct archive *disk, struct archive *w, struct serr *err)
{
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(disk, buf, sizeof(buf))) > 0) {
        if (archive_write_data(w, buf, (size_t)n) < 0)
            return serr_set(err, SERR_INTERNAL, "%s", archive_error_string(w));
    }
    return n < 0 ? serr_set(err, SERR_INVALID, "%s", archive_error_string(disk)) : 0;
}

/* The entries under `dir` (paths relative to it) but the ignored ones. */
static int add_tree(struct archive *w, const char *dir, json_t *patterns, struct serr *err)
{
    struct archive *disk = archive_read_disk_new();
    archive_read_disk_set_symlink_physical(disk);
    archive_read_disk_set_standard_lookup(disk);
    int rc = 0;
    if (archive_read_disk_open(disk, dir) != ARCHIVE_OK)
        rc = serr_set(err, SERR_INVALID, "%s: %s", dir, archive_error_string(disk));
    size_t skip = strlen(dir) + 1;
    while (rc == 0) {
        struct archive_entry *e = archive_entry_new();
        int r = archive_read_next_header2(disk, e);
        if (r == ARCHIVE_EOF) {
            archive_entry_free(e);
            break;
        }
        const char *path = archive_entry_pathname(e);
        if (r < ARCHIVE_WARN) {
            rc = serr_set(err, SERR_INVALID, "%s: %s", dir, archive_error_string(disk));
        } else if (strlen(path) > skip && !ignored(patterns, path + skip)) {
            archive_read_disk_descend(disk);
            char *rel = xstrdup(path + skip);
            archive_entry_set_pathname(e, rel);
            free(rel);
            if (archive_write_header(w, e) < ARCHIVE_WARN)
                rc = serr_set(err, SERR_INTERNAL, "%s", archive_error_string(w));
            else if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0)
                rc = copy_data(disk, w, err);
        } else if (strlen(path) < skip) {
            archive_read_disk_descend(disk); /* the directory itself */
        }
        archive_entry_free(e);
    }
    archive_read_close(disk);
    archive_read_free(disk);
    return rc;
}

static int context_tar(const char *dir, struct membuf *out, struct serr *err)
{
    char *clean = xstrdup(dir);
    size_t n = strlen(clean);
    while (n > 1 && clean[n - 1] == '/')
        clean[--n] = '\0';
    struct archive *w = archive_write_new();
    archive_write_set_format_pax_restricted(w);
    archive_write_set_bytes_in_last_block(w, 1);
    json_t *patterns = ignore_patterns(clean);
    int rc = archive_write_open(w, out, NULL, mem_write, NULL) == ARCHIVE_OK
                 ? add_tree(w, clean, patterns, err)
                 : serr_set(err, SERR_INTERNAL, "%s", archive_error_string(w));
    if (archive_write_close(w) != ARCHIVE_OK && rc == 0)
        rc = serr_set(err, SERR_INTERNAL, "%s", archive_error_string(w));
    archive_write_free(w);
    json_decref(patterns);
    free(clean);
    return rc < 0 ? serr_wrap(err, "the build context %s", dir) : 0;
}

/* ---- one build ---- */

struct build_view {
    const char *prefix; /* "[tag] " when several builds share the terminal */
    bool at_line_start;
    char error[4096];
    bool done;
};

static void show(struct build_view *v, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (v->at_line_start && v->prefix[0])
            fputs(v->prefix, stdout);
        putchar(*p);
        v->at_line_start = *p == '\n';
    }
    fflush(stdout);
}

static void build_line(void *arg, const char *data, size_t len)
{
    struct build_view *v = arg;
    json_t *line = json_loadb(data, len, 0, NULL);
    if (json_object_get(line, "error"))
        snprintf(v->error, sizeof(v->error), "%s", cli_str(line, "error"));
    else if (json_object_get(line, "stream"))
        show(v, cli_str(line, "stream"));
    else if (json_object_get(line, "status")) {
        show(v, cli_str(line, "status"));
        v->done = true;
    }
    json_decref(line);
}

static char *build_path(const struct context *c, json_t *build_args)
{
    char *tag = cli_escape(c->tag);
    char *path = xasprintf("/v1/images/build?t=%s", tag);
    free(tag);
    const char *extra[][2] = {{"dockerfile", c->dockerfile}, {"node", c->node}};
    for (size_t i = 0; i < 2; i++) {
        if (extra[i][1] == NULL)
            continue;
        char *value = cli_escape(extra[i][1]);
        char *longer = xasprintf("%s&%s=%s", path, extra[i][0], value);
        free(value);
        free(path);
        path = longer;
    }
    if (json_object_size(build_args) > 0) {
        char *text = json_dumps(build_args, JSON_COMPACT);
        char *value = cli_escape(text);
        char *longer = xasprintf("%s&buildargs=%s", path, value);
        free(value);
        free(text);
        free(path);
        path = longer;
    }
    return path;
}

/* -f as Docker reads it, a path from here (DIR/Dockerfile.prod), becomes the
 * path inside the context the daemon wants; a path that names no file from
 * here is taken as one inside the context already. *out: new, or NULL. */
static int dockerfile_in_context(const struct context *c, char **out, struct serr *err)
{
    *out = NULL;
    if (c->dockerfile == NULL)
        return 0;
    char *file = realpath(c->dockerfile, NULL), *dir = realpath(c->dir, NULL);
    size_t n = dir ? strlen(dir) : 0;
    int rc = 0;
    if (file == NULL || dir == NULL)
        *out = xstrdup(c->dockerfile);
    else if (strncmp(file, dir, n) == 0 && file[n] == '/')
        *out = xstrdup(file + n + 1);
    else
        rc = serr_set(err, SERR_INVALID, "the Dockerfile must be inside the context %s: %s",
                      c->dir, c->dockerfile);
    free(file);
    free(dir);
    return rc;
}

static int build_one(struct cli *cli, const struct context *given, json_t *build_args,
                     const char *prefix)
{
    struct membuf tar = {0};
    struct serr err;
    struct context c_in = *given, *c = &c_in;
    char *dockerfile;
    if (dockerfile_in_context(given, &dockerfile, &err) < 0)
        return cli_fail(&err);
    c->dockerfile = dockerfile;
    if (context_tar(c->dir, &tar, &err) < 0) {
        free(dockerfile);
        return cli_fail(&err);
    }
    char *path = build_path(c, build_args);
    free(dockerfile);
    struct build_view v = {.prefix = prefix, .at_line_start = true};
    struct line_split lines = {.on_line = build_line, .arg = &v};
    int rc = cli_stream_raw(cli, "POST", path, "application/x-tar", tar.data, tar.len,
                            cli_lines_data, &lines, &err);
    line_split_end(&lines, rc == 0);
    free(path);
    free(tar.data);
    if (rc < 0)
        return cli_fail(&err);
    if (v.error[0] || !v.done) {
        serr_set(&err, SERR_INTERNAL, "%s%s", prefix,
                 v.error[0] ? v.error : "the build's answer ended early");
        return cli_fail(&err);
    }
    return CLI_EXIT_OK;
}

/* ---- several contexts ---- */

/* The context's Dockerfile's bases, normalised. */
static int read_bases(struct context *c, struct serr *err)
{
    char *inside;
    if (dockerfile_in_context(c, &inside, err) < 0)
        return -1;
    char *path = xasprintf("%s/%s", c->dir, inside ? inside : "Dockerfile");
    free(inside);
    char *text = NULL;
    size_t len;
    int rc = read_file(path, &text, &len, err);
    free(path);
    if (rc < 0)
        return -1;
    json_t *raw = dockerfile_bases(text);
    free(text);
    c->bases = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(raw, i, b)
    {
        char norm[600];
        if (image_normalize_ref(json_string_value(b), norm, sizeof(norm), NULL) == 0)
            json_array_append_new(c->bases, json_string(norm));
    }
    json_decref(raw);
    return 0;
}

/* Whether every base of c that another context builds is built. */
static bool ready(const struct context *c, const struct context *all, int n)
{
    size_t i;
    json_t *b;
    json_array_foreach(c->bases, i, b)
    {
        for (int k = 0; k < n; k++)
            if (&all[k] != c && !all[k].built && strcmp(all[k].norm, json_string_value(b)) == 0)
                return false;
    }
    return true;
}

/* The ready nodes' hostnames (a new array; empty when they cannot be read). */
static json_t *ready_nodes(struct cli *cli)
{
    json_t *nodes = NULL, *out = json_array();
    struct serr err;
    if (cli_call(cli, "GET", "/v1/nodes", NULL, &nodes, &err) < 0)
        return out;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        if (strcmp(cli_str(n, "status"), "ready") == 0 &&
            strcmp(cli_str(n, "availability"), "active") == 0)
            json_array_append(out, json_object_get(n, "hostname"));
    }
    json_decref(nodes);
    return out;
}

/* One child per context of the round; the round fails when one does. */
static int run_round(struct cli *cli, struct context **round, int n, json_t *build_args)
{
    pid_t pids[MAX_CONTEXTS];
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            struct cli child = {.host = cli->host, .tls_dir = cli->tls_dir}; /* its own connection */
            char *prefix = xasprintf("[%s] ", round[i]->tag);
            int rc = build_one(&child, round[i], build_args, prefix);
            fflush(stdout);
            _exit(rc);
        }
    }
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < n; i++) {
        int status = 0;
        if (pids[i] < 0 || waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            rc = CLI_EXIT_ERROR;
        round[i]->built = true;
    }
    return rc;
}

static int build_all(struct cli *cli, struct context *cs, int n, json_t *build_args,
                     const char *node)
{
    struct serr err;
    int left = n, rc = CLI_EXIT_OK, spread = 0;
    for (int i = 0; i < n && rc == CLI_EXIT_OK; i++)
        if (read_bases(&cs[i], &err) < 0)
            rc = cli_fail(&err);
    json_t *nodes = rc != CLI_EXIT_OK ? json_array()
                    : node            ? json_pack("[s]", node)
                                      : ready_nodes(cli);
    while (left > 0 && rc == CLI_EXIT_OK) {
        struct context *round[MAX_CONTEXTS];
        int k = 0;
        for (int i = 0; i < n; i++)
            if (!cs[i].built && ready(&cs[i], cs, n))
                round[k++] = &cs[i];
        if (k == 0) {
            rc = cli_usage_error("image build", "the contexts' FROM lines name each other in "
                                                "a cycle");
            break;
        }
        for (int i = 0; i < k && json_array_size(nodes) > 0; i++)
            round[i]->node =
                json_string_value(json_array_get(nodes, (size_t)spread++ % json_array_size(nodes)));
        rc = run_round(cli, round, k, build_args);
        left -= k;
    }
    for (int i = 0; i < n; i++)
        json_decref(cs[i].bases);
    json_decref(nodes);
    return rc;
}

/* ---- the command line ---- */

static const char build_usage[] =
    "Usage:  shoal image build [OPTIONS] -t NAME[:TAG] DIR [-t NAME[:TAG] DIR...]\n\n"
    "Build an image from a Dockerfile, through buildah on a node; the image goes\n"
    "to the cluster's store. With several contexts (each -t and -f go with the\n"
    "DIR after them), those whose FROM names another one's tag are built after\n"
    "it, the others at once, spread over the nodes.\n\n"
    "Options:\n"
    "      --build-arg list   Set build-time variables (KEY=VALUE)\n"
    "  -f, --file string      The Dockerfile, inside DIR (default: DIR/Dockerfile)\n"
    "      --node string      Build on this node (default: the manager called)\n"
    "  -t, --tag string       Name and tag of the image (NAME[:TAG])\n";

/* -1 to go on (cli_flags' convention), or the usage error's exit code. */
static int add_build_arg(json_t *args, const char *text)
{
    const char *eq = strchr(text, '=');
    if (eq == NULL || eq == text)
        return cli_usage_error("image build", "--build-arg needs KEY=VALUE: %s", text);
    char *key = xasprintf("%.*s", (int)(eq - text), text);
    json_object_set_new(args, key, json_string(eq + 1));
    free(key);
    return -1;
}

int cli_image_build(struct cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {{"tag", required_argument, NULL, 't'},
                                             {"file", required_argument, NULL, 'f'},
                                             {"build-arg", required_argument, NULL, 'B'},
                                             {"node", required_argument, NULL, 'N'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct context cs[MAX_CONTEXTS];
    memset(cs, 0, sizeof(cs));
    json_t *build_args = json_object();
    const char *tag = NULL, *file = NULL, *node = NULL;
    int n = 0, rc = -1;
    struct serr err;
    optind = 0;
    while (rc < 0 && optind < argc) {
        int c = cli_getopt(argc, argv, "t:f:h", longopts, &err);
        if (c == 't')
            tag = optarg;
        else if (c == 'f')
            file = optarg;
        else if (c == 'B')
            rc = add_build_arg(build_args, optarg);
        else if (c == 'N')
            node = optarg;
        else if (c == 'h')
            rc = cli_help(build_usage);
        else if (c != -1)
            rc = cli_usage_error("image build", "%s", err.msg);
        else if (n == MAX_CONTEXTS)
            rc = cli_usage_error("image build", "at most %d contexts at once", MAX_CONTEXTS);
        else if (tag == NULL)
            rc = cli_usage_error("image build", "a tag is required before %s: -t NAME[:TAG]",
                                 argv[optind]);
        else if (image_normalize_ref(tag, cs[n].norm, sizeof(cs[n].norm), &err) < 0)
            rc = cli_usage_error("image build", "%s", err.msg);
        else {
            cs[n].tag = tag;
            cs[n].dockerfile = file;
            cs[n++].dir = argv[optind++];
            tag = file = NULL;
        }
    }
    if (rc < 0 && n == 0)
        rc = cli_usage_error("image build", "a build context is required: -t NAME[:TAG] DIR");
    if (rc < 0 && tag)
        rc = cli_usage_error("image build", "-t %s has no build context after it", tag);
    if (rc < 0 && n == 1) {
        cs[0].node = node;
        rc = build_one(cli, &cs[0], build_args, "");
    } else if (rc < 0) {
        rc = build_all(cli, cs, n, build_args, node);
    }
    json_decref(build_args);
    return rc;
}
