/* Image builds through buildah (build.h). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/build.h"
#include "agent/image.h"
#include "agent/registry.h"
#include "agent/runtime.h"
#include "agent/untar.h"
#include "base/json_get.h"
#include "base/util.h"
#include "model/dockerfile.h"

#define BLOCK (64 * 1024)
/* Where buildah writes the id of the image it built (no name: the tag is
 * shoal's, and buildah's output then names none of its own). */
#define IID_FILE "image-id"

extern char **environ;

/* ---- bases ---- */

/* The store's image a base reference names (borrowed from `known`), or NULL. */
static json_t *known_image(json_t *known, const char *ref)
{
    char norm[600];
    if (image_normalize_ref(ref, norm, sizeof(norm), NULL) < 0)
        return NULL;
    size_t i, k;
    json_t *img, *tag;
    json_array_foreach(known, i, img)
    {
        json_array_foreach(json_object_get(img, "tags"), k, tag)
        {
            if (strcmp(json_string_value(tag), norm) == 0)
                return img;
        }
    }
    return NULL;
}

/* ---- the context ---- */

static int extract_context(const char *tar, const char *root, struct serr *err)
{
    static const struct untar_words words = {"the build context", "unpacking", "it"};
    struct archive *in = archive_read_new(), *disk = archive_write_disk_new();
    archive_read_support_filter_gzip(in);
    archive_read_support_format_tar(in);
    archive_write_disk_set_options(disk, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                             ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                             ARCHIVE_EXTRACT_SECURE_SYMLINKS);
    int rc = 0;
    if (archive_read_open_filename(in, tar, BLOCK) != ARCHIVE_OK)
        rc = serr_set(err, SERR_INVALID, "the build context: %s", archive_error_string(in));
    else
        rc = untar_entries(in, disk, root, &words, err);
    archive_write_free(disk);
    archive_read_free(in);
    return rc;
}

/* ---- a base image as a docker-archive ---- */

static int add_bytes(struct archive *w, const char *name, const void *data, size_t len,
                     struct serr *err)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)len);
    int rc = 0;
    if (archive_write_header(w, e) < ARCHIVE_WARN ||
        (len > 0 && archive_write_data(w, data, len) < 0))
        rc = serr_set(err, SERR_INTERNAL, "writing %s: %s", name, archive_error_string(w));
    archive_entry_free(e);
    return rc;
}

static int add_file(struct archive *w, const char *name, const char *path, struct serr *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return serr_errno(err, "open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, size);
    int rc = 0;
    if (archive_write_header(w, e) < ARCHIVE_WARN)
        rc = serr_set(err, SERR_INTERNAL, "writing %s: %s", name, archive_error_string(w));
    char *buf = xmalloc(BLOCK);
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, BLOCK, f)) > 0) {
        if (archive_write_data(w, buf, n) < 0)
            rc = serr_set(err, SERR_INTERNAL, "writing %s: %s", name, archive_error_string(w));
    }
    free(buf);
    archive_entry_free(e);
    fclose(f);
    return rc;
}

/* The layers of `img` as stored ("l<N>", maybe compressed: buildah reads both). */
static int add_layers(struct image_store *s, struct archive *w, json_t *img, json_t *names,
                      struct serr *err)
{
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(img, "layers"), i, l)
    {
        char *blob = image_layer_blob(s, json_string_value(l));
        if (blob == NULL)
            return serr_set(err, SERR_NOT_FOUND, "layer %s is not on this node",
                            json_string_value(l));
        char name[32];
        snprintf(name, sizeof(name), "l%zu", i);
        int rc = add_file(w, name, blob, err);
        free(blob);
        if (rc < 0)
            return -1;
        json_array_append_new(names, json_string(name));
    }
    return 0;
}

/* buildah refuses a base whose history lists fewer layers than it has (an
 * image built on an imported one, which has no history): the layers without
 * an entry get one, at the bottom. The config given to buildah changes; the
 * layers do not. Returns `config` or a new text (then `config` is freed). */
static char *complete_history(char *config, size_t *len, size_t layers)
{
    json_t *c = json_loadb(config, *len, 0, NULL);
    json_t *history = json_object_get(c, "history");
    size_t i, filled = 0;
    json_t *h;
    json_array_foreach(history, i, h) filled += !json_is_true(json_object_get(h, "empty_layer"));
    if (json_array_size(history) == 0 || filled >= layers) {
        json_decref(c);
        return config;
    }
    for (i = filled; i < layers; i++)
        json_array_insert_new(history, 0, json_pack("{s:s}", "created_by", "(no history)"));
    char *text = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    free(config);
    *len = strlen(text);
    return text;
}

/* `docker save`'s format: manifest.json, the config and the layers. */
static int write_base_archive(struct image_store *s, json_t *img, const char *tag,
                              const char *path, struct serr *err)
{
    char *config = NULL;
    size_t config_len = 0;
    if (image_config_blob(s, jstr(img, "id"), &config, &config_len, err) < 0)
        return -1;
    config = complete_history(config, &config_len, json_array_size(json_object_get(img, "layers")));
    struct archive *w = archive_write_new();
    archive_write_set_format_pax_restricted(w);
    int rc = 0;
    if (archive_write_open_filename(w, path) != ARCHIVE_OK)
        rc = serr_set(err, SERR_INTERNAL, "%s: %s", path, archive_error_string(w));
    json_t *layers = json_array();
    if (rc == 0)
        rc = add_bytes(w, "config.json", config, config_len, err);
    if (rc == 0)
        rc = add_layers(s, w, img, layers, err);
    if (rc == 0) {
        json_t *m = json_pack("[{s:s, s:[s], s:O}]", "Config", "config.json", "RepoTags", tag,
                              "Layers", layers);
        char *text = json_dumps(m, JSON_COMPACT);
        rc = add_bytes(w, "manifest.json", text, strlen(text), err);
        free(text);
        json_decref(m);
    }
    if (archive_write_close(w) != ARCHIVE_OK && rc == 0)
        rc = serr_set(err, SERR_INTERNAL, "%s: %s", path, archive_error_string(w));
    archive_write_free(w);
    json_decref(layers);
    free(config);
    return rc;
}

/* ---- running buildah ---- */

struct tail {
    char line[512]; /* the last non-empty line of output */
    char cur[512];
    size_t len;
};

static void tail_feed(struct tail *t, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            if (t->len > 0) {
                t->cur[t->len] = '\0';
                memcpy(t->line, t->cur, t->len + 1);
            }
            t->len = 0;
        } else if (t->len < sizeof(t->cur) - 1) {
            t->cur[t->len++] = data[i];
        }
    }
}

/* Runs argv (NULL-terminated), its stdout and stderr to o->output (when
 * `show`) and to *tail; 0 when it exits 0. */
static int run(const struct build_opts *o, char **argv, bool show, struct tail *tail,
               struct serr *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return serr_errno(err, "pipe");
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    runtime_spawn_setup(&fa, &attr, -1, fds[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        errno = rc;
        return serr_errno(err, "run %s (is buildah installed?)", argv[0]);
    }
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        tail_feed(tail, buf, (size_t)n);
        if (show && o->output)
            o->output(o->output_arg, buf, (size_t)n);
    }
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    const char *why = tail->line[0] ? tail->line : "buildah failed";
    if (strncmp(why, "Error: ", 7) == 0)
        why += 7; /* the caller says what failed */
    return serr_set(err, SERR_INVALID, "%s", why);
}

/* buildah with the build's own storage, then `args` (NULL-terminated). */
static int buildah(const struct build_opts *o, const char *dir, const char *const *args,
                   bool show, struct serr *err)
{
    json_t *words = json_pack("[s, s, s, s, s, s, s]", "buildah", "--root", "", "--runroot", "",
                              "--storage-driver", "vfs");
    json_array_set_new(words, 2, json_sprintf("%s/storage", dir));
    json_array_set_new(words, 4, json_sprintf("%s/run", dir));
    for (const char *const *a = args; *a; a++)
        json_array_append_new(words, json_string(*a));
    size_t n = json_array_size(words);
    char **argv = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        argv[i] = (char *)json_string_value(json_array_get(words, i));
    struct tail tail = {0};
    int rc = run(o, argv, show, &tail, err);
    free(argv);
    json_decref(words);
    return rc;
}

static void say(const struct build_opts *o, const char *text)
{
    if (o->output)
        o->output(o->output_arg, text, strlen(text));
}

/* The base `ref` names: the store's (*img borrowed from o->known), or pulled
 * now (*pulled, new: the caller frees it); neither when the caller leaves it
 * to buildah. */
static int find_base(struct image_store *s, const struct build_opts *o, const char *ref,
                     json_t **img, json_t **pulled, struct serr *err)
{
    *pulled = NULL;
    *img = known_image(o->known, ref);
    if (*img || o->pull == NULL)
        return 0;
    char *line = xasprintf("Pulling base image %s\n", ref);
    say(o, line);
    free(line);
    int fetched;
    if (registry_pull(s, o->pull, ref, pulled, &fetched, err) < 0)
        return serr_wrap(err, "base image %s", ref);
    *img = *pulled;
    return 0;
}

/* What becomes of one base image: `archive`, its docker-archive (removed
 * after), the n-th of those handed over. */
typedef int (*base_fn)(const struct build_opts *o, const char *archive, int n, void *arg,
                       struct serr *err);

/* Each base the Dockerfile names that the store has (or pulls) as a
 * docker-archive in tmp_dir, given to `fn`; the others are left to buildah. */
static int each_base(struct image_store *s, const struct build_opts *o, const char *dockerfile,
                     const char *tmp_dir, base_fn fn, void *arg, struct serr *err)
{
    json_t *bases = dockerfile_bases(dockerfile);
    int rc = 0, n = 0;
    size_t i;
    json_t *b;
    json_array_foreach(bases, i, b)
    {
        json_t *img, *pulled;
        char norm[600];
        if (image_normalize_ref(json_string_value(b), norm, sizeof(norm), NULL) < 0)
            continue; /* buildah says what is wrong with it */
        if ((rc = find_base(s, o, json_string_value(b), &img, &pulled, err)) < 0)
            break;
        if (img == NULL)
            continue; /* buildah pulls it */
        char *archive = xasprintf("%s/base-%zu.tar", tmp_dir, i);
        rc = write_base_archive(s, img, norm, archive, err);
        if (rc == 0)
            rc = fn(o, archive, n++, arg, err);
        unlink(archive);
        free(archive);
        json_decref(pulled);
        if (rc < 0) {
            serr_wrap(err, "base image %s", norm);
            break;
        }
    }
    json_decref(bases);
    return rc;
}

/* A base into buildah's storage (of the build's directory `dir`) under its tag. */
static int pull_base(const struct build_opts *o, const char *archive, int n, void *dir,
                     struct serr *err)
{
    (void)n;
    char *source = xasprintf("docker-archive:%s", archive);
    const char *args[] = {"pull", "-q", source, NULL};
    int rc = buildah(o, dir, args, false, err);
    free(source);
    return rc;
}

/* Each base the store has (or pulls) goes into buildah's storage under its tag. */
static int hand_over_bases(struct image_store *s, const struct build_opts *o, const char *dir,
                           const char *dockerfile, struct serr *err)
{
    return each_base(s, o, dockerfile, dir, pull_base, (void *)dir, err);
}

/* The bases a manager put in the context (build_bundle): pulled, then out
 * of the context. */
static int pull_bundled(const struct build_opts *o, const char *dir, struct serr *err)
{
    char *bases = xasprintf("%s/context/" BUILD_BASES_DIR, dir);
    int rc = 0;
    for (int i = 0; rc == 0; i++) {
        char *archive = xasprintf("%s/%d.tar", bases, i);
        char *source = xasprintf("docker-archive:%s", archive);
        const char *args[] = {"pull", "-q", source, NULL};
        bool present = access(archive, F_OK) == 0;
        if (present && buildah(o, dir, args, false, err) < 0)
            rc = serr_wrap(err, "a base image from the manager");
        free(source);
        free(archive);
        if (!present)
            break;
    }
    struct serr ignored;
    rm_rf(bases, &ignored);
    free(bases);
    return rc;
}

static bool safe_relative(const char *p)
{
    return p[0] != '/' && strcmp(p, "..") != 0 && strncmp(p, "../", 3) != 0 &&
           strstr(p, "/../") == NULL;
}

/* `buildah bud`: the build itself, its output shown. */
static int bud(const struct build_opts *o, const char *dir, const char *dockerfile,
               struct serr *err)
{
    json_t *args = json_pack("[s, s, s, s, s, s, s]", "bud", "--isolation", "chroot", "-f",
                             dockerfile, "--iidfile", "");
    json_array_set_new(args, 6, json_sprintf("%s/" IID_FILE, dir));
    const char *k;
    json_t *v;
    json_object_foreach(o->build_args, k, v)
    {
        json_array_append_new(args, json_string("--build-arg"));
        json_array_append_new(args, json_sprintf("%s=%s", k, json_string_value(v)));
    }
    json_array_append_new(args, json_sprintf("%s/context", dir));
    size_t n = json_array_size(args);
    const char **argv = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        argv[i] = json_string_value(json_array_get(args, i));
    int rc = buildah(o, dir, argv, true, err);
    free(argv);
    json_decref(args);
    return rc < 0 ? serr_wrap(err, "the build failed") : 0;
}

/* The built image, out of buildah into the store. */
static int store_output(struct image_store *s, const struct build_opts *o, const char *dir,
                        json_t **image, struct serr *err)
{
    char *archive = xasprintf("%s/output.tar", dir);
    char *dest = xasprintf("docker-archive:%s", archive);
    char *iid_file = xasprintf("%s/" IID_FILE, dir), *iid = NULL;
    size_t len;
    json_t *images = NULL;
    int rc = read_file(iid_file, &iid, &len, err);
    if (rc == 0) {
        iid[strcspn(iid, "\r\n")] = '\0';
        const char *args[] = {"push", "-q", iid, dest, NULL};
        rc = buildah(o, dir, args, false, err);
    }
    if (rc == 0)
        rc = image_load(s, archive, &images, err);
    if (rc == 0 && json_array_size(images) != 1)
        rc = serr_set(err, SERR_INTERNAL, "buildah's archive holds %zu images",
                      json_array_size(images));
    if (rc == 0) {
        *image = json_incref(json_array_get(images, 0));
        json_object_set_new(*image, "tags", json_pack("[s]", o->tag));
    }
    json_decref(images);
    free(iid);
    free(iid_file);
    free(dest);
    free(archive);
    return rc;
}

int build_image(struct image_store *s, const struct build_opts *o, json_t **image,
                struct serr *err)
{
    const char *name = o->dockerfile && o->dockerfile[0] ? o->dockerfile : "Dockerfile";
    if (!safe_relative(name))
        return serr_set(err, SERR_INVALID, "the Dockerfile must be inside the context: %s", name);
    char *dir = xasprintf("%s/build-XXXXXX", o->work_dir);
    if (mkdtemp(dir) == NULL) {
        int rc = serr_errno(err, "create %s", dir);
        free(dir);
        return rc;
    }
    char *context = xasprintf("%s/context", dir);
    char *dockerfile = xasprintf("%s/%s", context, name);
    char *text = NULL;
    size_t len;
    int rc = mkdir(context, 0755) < 0 ? serr_errno(err, "create %s", context) : 0;
    if (rc == 0)
        rc = extract_context(o->context_tar, context, err);
    if (rc == 0 && read_file(dockerfile, &text, &len, NULL) < 0)
        rc = serr_set(err, SERR_INVALID, "the build context has no %s", name);
    if (rc == 0)
        rc = pull_bundled(o, dir, err);
    if (rc == 0)
        rc = hand_over_bases(s, o, dir, text, err);
    if (rc == 0)
        rc = bud(o, dir, dockerfile, err);
    if (rc == 0)
        rc = store_output(s, o, dir, image, err);
    struct serr ignored;
    rm_rf(dir, &ignored);
    free(text);
    free(dockerfile);
    free(context);
    free(dir);
    return rc;
}

/* ---- a build for another node ---- */

/* Copies the context's entries (but BUILD_BASES_DIR's) to `w`; *dockerfile
 * gets the Dockerfile's text (new) when the context has it. */
static int copy_context(const char *tar, const char *name, struct archive *w, char **dockerfile,
                        struct serr *err)
{
    struct archive *in = archive_read_new();
    archive_read_support_filter_gzip(in);
    archive_read_support_format_tar(in);
    int rc = 0;
    if (archive_read_open_filename(in, tar, BLOCK) != ARCHIVE_OK)
        rc = serr_set(err, SERR_INVALID, "the build context: %s", archive_error_string(in));
    size_t skip = strlen(BUILD_BASES_DIR);
    while (rc == 0) {
        struct archive_entry *e;
        int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF)
            break;
        const char *path = r >= ARCHIVE_WARN ? archive_entry_pathname(e) : NULL;
        if (path == NULL) {
            rc = serr_set(err, SERR_INVALID, "the build context is not a tar: %s",
                          archive_error_string(in));
            break;
        }
        if (strncmp(path, "./", 2) == 0)
            path += 2;
        if (strncmp(path, BUILD_BASES_DIR, skip) == 0 && (path[skip] == '/' || !path[skip]))
            continue;
        bool is_dockerfile = strcmp(path, name) == 0 && archive_entry_size(e) < (1 << 20);
        char *text = is_dockerfile ? xcalloc(1, (size_t)archive_entry_size(e) + 1) : NULL;
        if (archive_write_header(w, e) < ARCHIVE_WARN)
            rc = serr_set(err, SERR_INTERNAL, "bundling: %s", archive_error_string(w));
        const void *buf;
        size_t len;
        la_int64_t off;
        while (rc == 0 && (r = archive_read_data_block(in, &buf, &len, &off)) != ARCHIVE_EOF) {
            if (r < ARCHIVE_WARN || archive_write_data(w, buf, len) < 0)
                rc = serr_set(err, SERR_INVALID, "bundling the build context: %s",
                              r < ARCHIVE_WARN ? archive_error_string(in) : archive_error_string(w));
            else if (text && off >= 0 && (size_t)off + len <= (size_t)archive_entry_size(e))
                memcpy(text + off, buf, len);
        }
        if (text && rc == 0) {
            free(*dockerfile);
            *dockerfile = text;
        } else {
            free(text);
        }
    }
    archive_read_free(in);
    return rc;
}

/* A base into the bundle `w` as BUILD_BASES_DIR/<N>.tar. */
static int bundle_base(const struct build_opts *o, const char *archive, int n, void *w,
                       struct serr *err)
{
    (void)o;
    char *name = xasprintf(BUILD_BASES_DIR "/%d.tar", n);
    int rc = add_file(w, name, archive, err);
    free(name);
    return rc;
}

int build_bundle(struct image_store *s, const struct build_opts *o, const char *bundle,
                 struct serr *err)
{
    const char *name = o->dockerfile && o->dockerfile[0] ? o->dockerfile : "Dockerfile";
    struct archive *w = archive_write_new();
    archive_write_set_format_pax_restricted(w);
    char *dockerfile = NULL;
    int rc = 0;
    if (archive_write_open_filename(w, bundle) != ARCHIVE_OK)
        rc = serr_set(err, SERR_INTERNAL, "%s: %s", bundle, archive_error_string(w));
    if (rc == 0)
        rc = copy_context(o->context_tar, name, w, &dockerfile, err);
    if (rc == 0 && dockerfile == NULL)
        rc = serr_set(err, SERR_INVALID, "the build context has no %s", name);
    if (rc == 0)
        rc = each_base(s, o, dockerfile, o->work_dir, bundle_base, w, err);
    if (archive_write_close(w) != ARCHIVE_OK && rc == 0)
        rc = serr_set(err, SERR_INTERNAL, "%s: %s", bundle, archive_error_string(w));
    archive_write_free(w);
    free(dockerfile);
    return rc;
}
