/* Image store tests. Archives are built at test time with libarchive's write
 * API (and `tar` for the busybox rootfs); they run as root because layers
 * contain device nodes and trusted.* xattrs. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "agent/image.h"
#include "agent/registry.h"
#include "base/util.h"
#include "unit.h"

/* ---- fixtures ----------------------------------------------------------- */

struct fixture {
    char dir[64];     /* mkdtemp under /tmp, removed by fixture_done */
    char *store_dir;
    struct image_store *store;
};

static void fixture_init(struct fixture *f)
{
    strcpy(f->dir, "/tmp/shoal-image-XXXXXX");
    CHECK(mkdtemp(f->dir) != NULL);
    f->store_dir = xasprintf("%s/store", f->dir);
    struct serr err;
    CHECK(image_store_open(f->store_dir, &f->store, &err) == 0);
}

static void fixture_done(struct fixture *f)
{
    image_store_close(f->store);
    free(f->store_dir);
    CHECK(rm_rf(f->dir, NULL) == 0);
}

static char *fixture_path(struct fixture *f, const char *name)
{
    return xasprintf("%s/%s", f->dir, name);
}

/* Number of entries (besides . and ..) in a store subdirectory. */
static int count_entries(struct fixture *f, const char *sub)
{
    char *path = xasprintf("%s/%s", f->store_dir, sub);
    DIR *d = opendir(path);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    free(path);
    return n;
}

static void sha256_of(const void *data, size_t len, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    CHECK(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) == 1);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < n; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    CHECK(fwrite(data, 1, len, fp) == len);
    CHECK(fclose(fp) == 0);
}

/* An in-memory buffer that archives are written into. */
struct buf {
    char *data;
    size_t len, cap;
};

static la_ssize_t buf_write(struct archive *a, void *opaque, const void *data, size_t len)
{
    struct buf *b = opaque;
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->data = xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return (la_ssize_t)len;
}

/* One entry of a test tar: 'f' file (data), 'd' dir, 'l' symlink (data = target). */
struct tentry {
    char type;
    const char *name;
    const char *data;
};

static struct buf make_tar(const struct tentry *ents, size_t n)
{
    struct buf b = {0};
    struct archive *a = archive_write_new();
    CHECK(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
    CHECK(archive_write_open(a, &b, NULL, buf_write, NULL) == ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ents[i].name);
        archive_entry_set_mtime(e, 1700000000, 0);
        if (ents[i].type == 'd') {
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
        } else if (ents[i].type == 'l') {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_perm(e, 0777);
            archive_entry_set_symlink(e, ents[i].data);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)strlen(ents[i].data));
        }
        CHECK(archive_write_header(a, e) == ARCHIVE_OK);
        if (ents[i].type == 'f')
            CHECK(archive_write_data(a, ents[i].data, strlen(ents[i].data)) ==
                  (la_ssize_t)strlen(ents[i].data));
        archive_entry_free(e);
    }
    CHECK(archive_write_close(a) == ARCHIVE_OK);
    archive_write_free(a);
    return b;
}

static struct buf gzip_buf(const struct buf *in)
{
    struct buf b = {0};
    struct archive *a = archive_write_new();
    CHECK(archive_write_set_format_raw(a) == ARCHIVE_OK);
    CHECK(archive_write_add_filter_gzip(a) == ARCHIVE_OK);
    CHECK(archive_write_open(a, &b, NULL, buf_write, NULL) == ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "data");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, (la_int64_t)in->len);
    CHECK(archive_write_header(a, e) == ARCHIVE_OK);
    CHECK(archive_write_data(a, in->data, in->len) == (la_ssize_t)in->len);
    archive_entry_free(e);
    CHECK(archive_write_close(a) == ARCHIVE_OK);
    archive_write_free(a);
    return b;
}

/* A member of an outer archive with binary content. */
struct member {
    const char *name;
    const struct buf *data;
};

static void write_outer(const char *path, const struct member *m, size_t n)
{
    struct archive *a = archive_write_new();
    CHECK(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
    CHECK(archive_write_open_filename(a, path) == ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)m[i].data->len);
        CHECK(archive_write_header(a, e) == ARCHIVE_OK);
        CHECK(archive_write_data(a, m[i].data->data, m[i].data->len) ==
              (la_ssize_t)m[i].data->len);
        archive_entry_free(e);
    }
    CHECK(archive_write_close(a) == ARCHIVE_OK);
    archive_write_free(a);
}

static struct buf str_buf(const char *s)
{
    struct buf b = {xstrdup(s), strlen(s), strlen(s) + 1};
    return b;
}

static bool is_file(const char *dir, const char *rel)
{
    char *path = xasprintf("%s/%s", dir, rel);
    struct stat st;
    bool ok = lstat(path, &st) == 0;
    free(path);
    return ok;
}

/* ---- import ------------------------------------------------------------- */

/* Builds rootfs.tar (and rootfs.tar.gz) holding bin/busybox and a symlink. */
static void make_busybox_rootfs(struct fixture *f)
{
    char *cmd = xasprintf("set -e; cd %s; mkdir -p rootfs/bin rootfs/etc; "
                          "cp /bin/busybox rootfs/bin/; ln -s busybox rootfs/bin/sh; "
                          "tar -C rootfs -cf rootfs.tar .; gzip -c rootfs.tar > rootfs.tar.gz",
                          f->dir);
    CHECK(system(cmd) == 0);
    free(cmd);
}

TEST(image_import_busybox)
{
    struct fixture f;
    fixture_init(&f);
    make_busybox_rootfs(&f);
    char *tar = fixture_path(&f, "rootfs.tar");
    char *tgz = fixture_path(&f, "rootfs.tar.gz");
    struct serr err;
    json_t *img = NULL;
    CHECK(image_import(f.store, tar, "busybox", &img, &err) == 0);

    char *bytes;
    size_t len;
    CHECK(read_file(tar, &bytes, &len, NULL) == 0);
    char diff_id[72];
    sha256_of(bytes, len, diff_id);
    free(bytes);

    CHECK(strncmp(json_string_value(json_object_get(img, "id")), "sha256:", 7) == 0);
    CHECK(strlen(json_string_value(json_object_get(img, "id"))) == 71);
    json_t *tags = json_object_get(img, "tags");
    CHECK(json_array_size(tags) == 1);
    CHECK_STR(json_string_value(json_array_get(tags, 0)), "busybox:latest");
    json_t *layers = json_object_get(img, "layers");
    CHECK(json_array_size(layers) == 1);
    CHECK_STR(json_string_value(json_array_get(layers, 0)), diff_id);
    CHECK(json_integer_value(json_object_get(img, "size")) == (json_int_t)len);
    json_t *env = json_object_get(json_object_get(img, "config"), "Env");
    CHECK(json_array_size(env) == 1);
    CHECK(strncmp(json_string_value(json_array_get(env, 0)), "PATH=", 5) == 0);

    char *root = image_layer_dir(f.store, diff_id);
    CHECK(root != NULL);
    char *bb = xasprintf("%s/bin/busybox", root);
    CHECK(access(bb, X_OK) == 0);
    char *sh = xasprintf("%s/bin/sh", root);
    char target[64] = {0};
    CHECK(readlink(sh, target, sizeof(target) - 1) == 7 && strcmp(target, "busybox") == 0);
    CHECK(image_has_layers(f.store, img));

    /* Same rootfs gzipped: same diff_id (hash of the uncompressed tar), same id. */
    json_t *again = NULL;
    CHECK(image_import(f.store, tgz, "other:1", &again, &err) == 0);
    CHECK_STR(json_string_value(json_array_get(json_object_get(again, "layers"), 0)), diff_id);
    CHECK_STR(json_string_value(json_object_get(again, "id")),
              json_string_value(json_object_get(img, "id")));
    CHECK(count_entries(&f, "layers") == 1);
    CHECK(count_entries(&f, "tmp") == 0);

    json_decref(again);
    json_decref(img);
    free(sh);
    free(bb);
    free(root);
    free(tgz);
    free(tar);
    fixture_done(&f);
}

/* A daemon whose unpacking helper cannot run (its binary replaced by an
 * upgrade, no loader for it) unpacks the layers itself. */
TEST(image_import_helper_not_run)
{
    struct fixture f;
    fixture_init(&f);
    make_busybox_rootfs(&f);
    image_store_unpack_apart(f.store, "/nonexistent/shoal");
    char *tar = fixture_path(&f, "rootfs.tar");
    struct serr err;
    json_t *img = NULL;
    CHECK(image_import(f.store, tar, "busybox", &img, &err) == 0);
    CHECK(image_has_layers(f.store, img));
    CHECK(count_entries(&f, "tmp") == 0);
    json_decref(img);
    free(tar);
    fixture_done(&f);
}

/* The store keeps the config blob (its sha256 is the id) for push and
 * history; an import's history is a row for its one layer. */
TEST(image_config_kept_and_history)
{
    struct fixture f;
    fixture_init(&f);
    make_busybox_rootfs(&f);
    char *tar = fixture_path(&f, "rootfs.tar");
    struct serr err;
    json_t *img = NULL;
    CHECK(image_import(f.store, tar, "busybox", &img, &err) == 0);
    const char *id = json_string_value(json_object_get(img, "id"));
    char *cfg = NULL;
    size_t len = 0;
    CHECK(image_config_blob(f.store, id, &cfg, &len, &err) == 0);
    char digest[72];
    sha256_of(cfg, len, digest);
    CHECK_STR(digest, id);
    json_t *rows = NULL;
    CHECK(image_history(f.store, id, &rows, &err) == 0);
    CHECK(json_array_size(rows) == 1);
    json_t *row = json_array_get(rows, 0);
    CHECK(json_integer_value(json_object_get(row, "size")) ==
          json_integer_value(json_object_get(img, "size")));
    CHECK(json_is_false(json_object_get(row, "empty_layer")));
    json_decref(rows);
    free(cfg);
    const char *unknown = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    CHECK(image_config_blob(f.store, unknown, &cfg, &len, &err) < 0 && err.kind == SERR_NOT_FOUND);
    CHECK(image_history(f.store, "nonsense", &rows, &err) < 0 && err.kind == SERR_INVALID);
    json_decref(img);
    free(tar);
    fixture_done(&f);
}

TEST(image_import_bad_input)
{
    struct fixture f;
    fixture_init(&f);
    make_busybox_rootfs(&f);
    char *tar = fixture_path(&f, "rootfs.tar");
    struct serr err;
    json_t *img = NULL;
    static const char *const bad_refs[] = {"UPPER:x", "a:b:c", ""};
    for (size_t i = 0; i < 3; i++) {
        CHECK(image_import(f.store, tar, bad_refs[i], &img, &err) < 0);
        CHECK(err.kind == SERR_INVALID);
    }
    char *garbage = fixture_path(&f, "garbage");
    char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 7 + 3);
    write_bytes(garbage, junk, sizeof(junk));
    CHECK(image_import(f.store, garbage, "x", &img, &err) < 0);
    CHECK(err.kind == SERR_INVALID);
    char *empty = fixture_path(&f, "empty");
    write_bytes(empty, "", 0);
    CHECK(image_import(f.store, empty, "x", &img, &err) < 0);
    CHECK(err.kind == SERR_INVALID);
    /* truncated: cut inside busybox's data */
    char *bytes;
    size_t len;
    CHECK(read_file(tar, &bytes, &len, NULL) == 0);
    char *cut = fixture_path(&f, "cut.tar");
    write_bytes(cut, bytes, len / 2);
    free(bytes);
    CHECK(image_import(f.store, cut, "x", &img, &err) < 0);
    CHECK(err.kind == SERR_INVALID);
    char *missing = fixture_path(&f, "missing.tar");
    CHECK(image_import(f.store, missing, "x", &img, &err) < 0);

    CHECK(count_entries(&f, "layers") == 0);
    CHECK(count_entries(&f, "tmp") == 0);
    free(missing);
    free(cut);
    free(empty);
    free(garbage);
    free(tar);
    fixture_done(&f);
}

/* A layer whose entries climb out or write through a symlink is rejected and
 * nothing lands outside the layer. */
TEST(image_import_rejects_escapes)
{
    struct fixture f;
    fixture_init(&f);
    struct serr err;
    json_t *img = NULL;
    char *outside = fixture_path(&f, "outside");
    CHECK(mkdir(outside, 0755) == 0);

    const struct tentry dotdot[] = {{'f', "ok", "1"}, {'f', "../../escaped", "x"}};
    struct buf b = make_tar(dotdot, 2);
    char *path = fixture_path(&f, "dotdot.tar");
    write_bytes(path, b.data, b.len);
    CHECK(image_import(f.store, path, "x", &img, &err) < 0 && err.kind == SERR_INVALID);
    CHECK(!is_file(f.dir, "escaped") && !is_file(f.store_dir, "escaped"));
    free(b.data);
    free(path);

    const struct tentry via_link[] = {{'l', "link", outside}, {'f', "link/pwned", "x"}};
    b = make_tar(via_link, 2);
    path = fixture_path(&f, "link.tar");
    write_bytes(path, b.data, b.len);
    CHECK(image_import(f.store, path, "x", &img, &err) < 0 && err.kind == SERR_INVALID);
    CHECK(!is_file(outside, "pwned"));
    free(b.data);
    free(path);

    const struct tentry opq_link[] = {{'l', "link", outside}, {'f', "link/.wh..wh..opq", ""}};
    b = make_tar(opq_link, 2);
    path = fixture_path(&f, "opq.tar");
    write_bytes(path, b.data, b.len);
    CHECK(image_import(f.store, path, "x", &img, &err) < 0 && err.kind == SERR_INVALID);
    char val[4];
    CHECK(getxattr(outside, "trusted.overlay.opaque", val, sizeof(val)) < 0);
    free(b.data);
    free(path);

    CHECK(count_entries(&f, "layers") == 0);
    CHECK(count_entries(&f, "tmp") == 0);
    free(outside);
    fixture_done(&f);
}

/* ---- docker save -------------------------------------------------------- */

/* The two-layer docker-save fixture: the upper layer deletes etc/file with a
 * whiteout and makes opq/ opaque. */
struct docker_fixture {
    char diff1[72], diff2[72], id[72];
    size_t size;
};

static void make_docker_archive(struct fixture *f, const char *name, const char *tag,
                                struct docker_fixture *out)
{
    const struct tentry lower[] = {{'d', "etc/", NULL},
                                   {'f', "etc/file", "lower"},
                                   {'d', "opq/", NULL},
                                   {'f', "opq/old", "old"}};
    const struct tentry upper[] = {{'f', "etc/.wh.file", ""},
                                   {'d', "opq/", NULL},
                                   {'f', "opq/.wh..wh..opq", ""},
                                   {'f', "opq/new", "new"}};
    struct buf l1 = make_tar(lower, 4), l2 = make_tar(upper, 4);
    sha256_of(l1.data, l1.len, out->diff1);
    sha256_of(l2.data, l2.len, out->diff2);
    out->size = l1.len + l2.len;
    char *cfg_text = xasprintf(
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"A=1\"],"
        "\"Cmd\":[\"sh\"],\"Entrypoint\":null,\"WorkingDir\":\"/w\"},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\",\"%s\"]}}",
        out->diff1, out->diff2);
    struct buf cfg = str_buf(cfg_text);
    sha256_of(cfg.data, cfg.len, out->id);
    char *manifest_text = xasprintf("[{\"Config\":\"%s.json\",\"RepoTags\":[\"%s\"],"
                                    "\"Layers\":[\"l1/layer.tar\",\"l2/layer.tar\"]}]",
                                    out->id + 7, tag);
    struct buf manifest = str_buf(manifest_text);
    char *cfg_name = xasprintf("%s.json", out->id + 7);
    const struct member m[] = {{"l1/layer.tar", &l1},
                               {"l2/layer.tar", &l2},
                               {cfg_name, &cfg},
                               {"manifest.json", &manifest}};
    char *path = fixture_path(f, name);
    write_outer(path, m, 4);
    free(path);
    free(cfg_name);
    free(manifest.data);
    free(manifest_text);
    free(cfg.data);
    free(cfg_text);
    free(l2.data);
    free(l1.data);
}

static json_t *load_ok(struct fixture *f, const char *name)
{
    char *path = fixture_path(f, name);
    json_t *images = NULL;
    struct serr err;
    int rc = image_load(f->store, path, &images, &err);
    if (rc < 0)
        fprintf(stderr, "image_load: %s\n", err.msg);
    CHECK(rc == 0);
    free(path);
    return images;
}

TEST(image_load_docker_whiteouts)
{
    struct fixture f;
    fixture_init(&f);
    struct docker_fixture d;
    make_docker_archive(&f, "save.tar", "test/two:v1", &d);
    json_t *images = load_ok(&f, "save.tar");
    CHECK(json_array_size(images) == 1);
    json_t *img = json_array_get(images, 0);
    CHECK_STR(json_string_value(json_object_get(img, "id")), d.id);
    CHECK_STR(json_string_value(json_array_get(json_object_get(img, "tags"), 0)), "test/two:v1");
    json_t *layers = json_object_get(img, "layers");
    CHECK(json_array_size(layers) == 2);
    CHECK_STR(json_string_value(json_array_get(layers, 0)), d.diff1);
    CHECK_STR(json_string_value(json_array_get(layers, 1)), d.diff2);
    CHECK(json_integer_value(json_object_get(img, "size")) == (json_int_t)d.size);
    json_t *cfg = json_object_get(img, "config");
    CHECK(json_object_size(cfg) == 3); /* Env, Cmd, WorkingDir; null Entrypoint omitted */
    CHECK_STR(json_string_value(json_array_get(json_object_get(cfg, "Env"), 0)), "A=1");
    CHECK_STR(json_string_value(json_array_get(json_object_get(cfg, "Cmd"), 0)), "sh");
    CHECK_STR(json_string_value(json_object_get(cfg, "WorkingDir")), "/w");

    char *lower = image_layer_dir(f.store, d.diff1);
    char *upper = image_layer_dir(f.store, d.diff2);
    CHECK(lower && upper);
    CHECK(is_file(lower, "etc/file") && is_file(lower, "opq/old"));
    char *wh = xasprintf("%s/etc/file", upper);
    struct stat st;
    CHECK(lstat(wh, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
    CHECK(!is_file(upper, "etc/.wh.file"));
    char *opq = xasprintf("%s/opq", upper);
    char val[8] = {0};
    CHECK(getxattr(opq, "trusted.overlay.opaque", val, sizeof(val)) == 1 && val[0] == 'y');
    CHECK(!is_file(upper, "opq/.wh..wh..opq") && is_file(upper, "opq/new"));
    CHECK(image_has_layers(f.store, img));
    CHECK(count_entries(&f, "tmp") == 0);

    free(opq);
    free(wh);
    free(upper);
    free(lower);
    json_decref(images);
    fixture_done(&f);
}

/* A second load finds the layers stored and does not unpack them again. */
TEST(image_load_layer_once)
{
    struct fixture f;
    fixture_init(&f);
    struct docker_fixture d;
    make_docker_archive(&f, "save.tar", "a:1", &d);
    json_decref(load_ok(&f, "save.tar"));
    char *root = image_layer_dir(f.store, d.diff1);
    char *marker = xasprintf("%s/marker", root);
    write_bytes(marker, "m", 1);
    struct stat before, after;
    CHECK(stat(root, &before) == 0);

    json_t *images = load_ok(&f, "save.tar");
    CHECK(json_array_size(images) == 1);
    CHECK(access(marker, F_OK) == 0);
    CHECK(stat(root, &after) == 0 && before.st_ino == after.st_ino);
    CHECK(count_entries(&f, "layers") == 2);
    CHECK(count_entries(&f, "tmp") == 0);
    json_decref(images);
    free(marker);
    free(root);
    fixture_done(&f);
}

struct load_job {
    struct fixture *f;
    const char *name;
    int rc;
};

static void *load_thread(void *arg)
{
    struct load_job *job = arg;
    char *path = fixture_path(job->f, job->name);
    json_t *images = NULL;
    struct serr err;
    job->rc = image_load(job->f->store, path, &images, &err);
    if (job->rc != 0)
        fprintf(stderr, "load %s: %s\n", job->name, err.msg);
    json_decref(images);
    free(path);
    return NULL;
}

/* Concurrent loads sharing layers: both succeed, each layer is stored once. */
TEST(image_load_concurrent)
{
    struct fixture f;
    fixture_init(&f);
    struct docker_fixture d;
    make_docker_archive(&f, "a.tar", "a:1", &d);
    make_docker_archive(&f, "b.tar", "b:1", &d);
    for (int round = 0; round < 5; round++) {
        struct load_job jobs[2] = {{&f, "a.tar", -1}, {&f, "b.tar", -1}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            CHECK(pthread_create(&t[i], NULL, load_thread, &jobs[i]) == 0);
        for (int i = 0; i < 2; i++) {
            pthread_join(t[i], NULL);
            CHECK(jobs[i].rc == 0);
        }
        CHECK(count_entries(&f, "layers") == 2);
        CHECK(count_entries(&f, "tmp") == 0);
        struct serr err;
        json_t *none = json_array();
        CHECK(image_gc(f.store, none, &err) == 0);
        json_decref(none);
    }
    fixture_done(&f);
}

/* ---- OCI layout --------------------------------------------------------- */

/* An OCI layout with one gzip layer. With `nested`, index.json points at a
 * multi-platform index whose entries are an attestation-like foreign platform
 * and then this host's image. */
struct oci_fixture {
    char diff_id[72], config[72];
    size_t layer_len;
};

static const char *host_arch(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__arm__)
    return "arm";
#else
    return "unknown";
#endif
}

static void make_oci_archive(struct fixture *f, const char *name, bool nested,
                             struct oci_fixture *out)
{
    const struct tentry files[] = {{'d', "app/", NULL}, {'f', "app/hello.txt", "hello"}};
    struct buf layer = make_tar(files, 2);
    struct buf gz = gzip_buf(&layer);
    char gz_digest[72], man_digest[72], list_digest[72];
    sha256_of(layer.data, layer.len, out->diff_id);
    sha256_of(gz.data, gz.len, gz_digest);
    out->layer_len = layer.len;
    char *cfg_text = xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":"
                               "{\"Entrypoint\":[\"/app/run\"],\"User\":\"1000\"},"
                               "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
                               out->diff_id);
    struct buf cfg = str_buf(cfg_text);
    sha256_of(cfg.data, cfg.len, out->config);
    char *man_text = xasprintf(
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
        "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
        "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\",\"size\":%zu}]}",
        out->config, cfg.len, gz_digest, gz.len);
    struct buf man = str_buf(man_text);
    sha256_of(man.data, man.len, man_digest);
    /* the foreign entry points at a blob that is absent: it must not be read */
    char *list_text = xasprintf(
        "{\"schemaVersion\":2,\"manifests\":["
        "{\"digest\":\"sha256:%064d\",\"platform\":{\"os\":\"unknown\",\"architecture\":"
        "\"unknown\"}},{\"digest\":\"%s\",\"platform\":{\"os\":\"linux\",\"architecture\":"
        "\"%s\"}}]}",
        0, man_digest, host_arch());
    struct buf list = str_buf(list_text);
    sha256_of(list.data, list.len, list_digest);
    char *index_text = xasprintf(
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%s\",\"annotations\":"
        "{\"org.opencontainers.image.ref.name\":\"oci/img:1.0\"}}]}",
        nested ? list_digest : man_digest);
    struct buf index = str_buf(index_text);
    struct buf layout = str_buf("{\"imageLayoutVersion\":\"1.0.0\"}");
    char *n_cfg = xasprintf("blobs/sha256/%s", out->config + 7);
    char *n_gz = xasprintf("blobs/sha256/%s", gz_digest + 7);
    char *n_man = xasprintf("blobs/sha256/%s", man_digest + 7);
    char *n_list = xasprintf("blobs/sha256/%s", list_digest + 7);
    const struct member m[] = {{"oci-layout", &layout}, {"index.json", &index}, {n_man, &man},
                               {n_cfg, &cfg},           {n_gz, &gz},          {n_list, &list}};
    char *path = fixture_path(f, name);
    write_outer(path, m, nested ? 6 : 5);
    free(path);
    free(n_list);
    free(n_man);
    free(n_gz);
    free(n_cfg);
    free(layout.data);
    free(index.data);
    free(index_text);
    free(list.data);
    free(list_text);
    free(man.data);
    free(man_text);
    free(cfg.data);
    free(cfg_text);
    free(gz.data);
    free(layer.data);
}

static void check_oci_image(struct fixture *f, json_t *images, const struct oci_fixture *o)
{
    CHECK(json_array_size(images) == 1);
    json_t *img = json_array_get(images, 0);
    CHECK_STR(json_string_value(json_object_get(img, "id")), o->config);
    CHECK_STR(json_string_value(json_array_get(json_object_get(img, "tags"), 0)), "oci/img:1.0");
    /* diff_id hashes the uncompressed tar, not the gzip blob */
    CHECK_STR(json_string_value(json_array_get(json_object_get(img, "layers"), 0)), o->diff_id);
    CHECK(json_integer_value(json_object_get(img, "size")) == (json_int_t)o->layer_len);
    json_t *c = json_object_get(img, "config");
    CHECK_STR(json_string_value(json_object_get(c, "User")), "1000");
    CHECK_STR(json_string_value(json_array_get(json_object_get(c, "Entrypoint"), 0)), "/app/run");
    char *root = image_layer_dir(f->store, o->diff_id);
    CHECK(root != NULL);
    char *hello = xasprintf("%s/app/hello.txt", root);
    char *text;
    CHECK(read_file(hello, &text, NULL, NULL) == 0);
    CHECK_STR(text, "hello");
    CHECK(count_entries(f, "tmp") == 0);
    free(text);
    free(hello);
    free(root);
}

TEST(image_load_oci_gzip)
{
    struct fixture f;
    fixture_init(&f);
    struct oci_fixture o;
    make_oci_archive(&f, "oci.tar", false, &o);
    json_t *images = load_ok(&f, "oci.tar");
    check_oci_image(&f, images, &o);
    json_decref(images);
    fixture_done(&f);
}

TEST(image_load_oci_multi_platform)
{
    struct fixture f;
    fixture_init(&f);
    struct oci_fixture o;
    make_oci_archive(&f, "oci.tar", true, &o);
    json_t *images = load_ok(&f, "oci.tar");
    check_oci_image(&f, images, &o);
    json_decref(images);
    fixture_done(&f);
}

/* ---- bad archives ------------------------------------------------------- */

static void check_load_fails(struct fixture *f, const char *name)
{
    char *path = fixture_path(f, name);
    json_t *images = NULL;
    struct serr err;
    CHECK(image_load(f->store, path, &images, &err) < 0);
    if (err.kind != SERR_INVALID)
        fprintf(stderr, "%s: kind %d: %s\n", name, err.kind, err.msg);
    CHECK(err.kind == SERR_INVALID);
    CHECK(strstr(err.msg, "store/tmp") == NULL);
    CHECK(images == NULL);
    CHECK(count_entries(f, "tmp") == 0);
    free(path);
}

static void write_single(struct fixture *f, const char *archive, const char *member,
                         const char *text)
{
    struct buf b = str_buf(text);
    const struct member m[] = {{member, &b}};
    char *path = fixture_path(f, archive);
    write_outer(path, m, 1);
    free(path);
    free(b.data);
}

TEST(image_load_bad_input)
{
    struct fixture f;
    fixture_init(&f);
    /* one good image already stored: bad loads must leave it alone */
    struct docker_fixture d;
    make_docker_archive(&f, "good.tar", "good:1", &d);
    json_decref(load_ok(&f, "good.tar"));
    CHECK(count_entries(&f, "layers") == 2);

    char *p = fixture_path(&f, "garbage.tar");
    char junk[3000];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 13 + 1);
    write_bytes(p, junk, sizeof(junk));
    free(p);
    check_load_fails(&f, "garbage.tar");

    p = fixture_path(&f, "empty.tar");
    write_bytes(p, "", 0);
    free(p);
    check_load_fails(&f, "empty.tar");

    /* truncated in the middle of the first layer */
    struct docker_fixture d2;
    make_docker_archive(&f, "other.tar", "other:1", &d2);
    char *full = fixture_path(&f, "other.tar"), *bytes;
    size_t len;
    CHECK(read_file(full, &bytes, &len, NULL) == 0);
    p = fixture_path(&f, "cut.tar");
    write_bytes(p, bytes, 1800);
    free(p);
    free(bytes);
    free(full);
    check_load_fails(&f, "cut.tar");

    write_single(&f, "nomanifest.tar", "hello.txt", "hi");
    check_load_fails(&f, "nomanifest.tar");
    write_single(&f, "badjson.tar", "manifest.json", "[{\"Config\": ");
    check_load_fails(&f, "badjson.tar");
    write_single(&f, "notarray.tar", "manifest.json", "{\"Config\":\"x\"}");
    check_load_fails(&f, "notarray.tar");
    write_single(&f, "badtag.tar", "manifest.json",
                 "[{\"Config\":\"c.json\",\"RepoTags\":[\"UPPER:x\"],\"Layers\":[]}]");
    check_load_fails(&f, "badtag.tar");

    /* manifest names a layer the archive does not contain */
    struct buf cfg = str_buf("{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:"
                             "0000000000000000000000000000000000000000000000000000000000000000"
                             "\"]}}");
    struct buf man = str_buf("[{\"Config\":\"c.json\",\"RepoTags\":[\"m:1\"],"
                             "\"Layers\":[\"gone/layer.tar\"]}]");
    const struct member m[] = {{"c.json", &cfg}, {"manifest.json", &man}};
    p = fixture_path(&f, "missing.tar");
    write_outer(p, m, 2);
    free(p);
    check_load_fails(&f, "missing.tar");
    free(cfg.data);
    free(man.data);

    /* diff_id in the config that does not match the layer's content */
    struct buf wrong_cfg = str_buf("{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:"
                                   "1111111111111111111111111111111111111111111111111111111111111111"
                                   "\"]}}");
    const struct tentry files[] = {{'f', "x", "y"}};
    struct buf layer = make_tar(files, 1);
    struct buf man2 = str_buf("[{\"Config\":\"c.json\",\"Layers\":[\"l.tar\"]}]");
    const struct member m2[] = {{"c.json", &wrong_cfg}, {"l.tar", &layer}, {"manifest.json", &man2}};
    p = fixture_path(&f, "mismatch.tar");
    write_outer(p, m2, 3);
    free(p);
    check_load_fails(&f, "mismatch.tar");
    free(wrong_cfg.data);
    free(layer.data);
    free(man2.data);

    /* manifest member names that climb out of the archive */
    write_single(&f, "climb.tar", "manifest.json",
                 "[{\"Config\":\"../../etc/passwd\",\"Layers\":[]}]");
    check_load_fails(&f, "climb.tar");

    CHECK(count_entries(&f, "layers") == 2);
    fixture_done(&f);
}

/* ---- gc ----------------------------------------------------------------- */

TEST(image_gc_unreferenced)
{
    struct fixture f;
    fixture_init(&f);
    make_busybox_rootfs(&f);
    char *tar = fixture_path(&f, "rootfs.tar");
    struct serr err;
    json_t *busybox = NULL;
    CHECK(image_import(f.store, tar, "busybox", &busybox, &err) == 0);
    struct docker_fixture d;
    make_docker_archive(&f, "save.tar", "two:1", &d);
    json_t *loaded = load_ok(&f, "save.tar");
    json_t *two = json_array_get(loaded, 0);
    CHECK(count_entries(&f, "layers") == 3);

    json_t *keep = json_pack("[O]", busybox);
    CHECK(image_gc(f.store, keep, &err) == 0);
    CHECK(count_entries(&f, "layers") == 1);
    CHECK(image_has_layers(f.store, busybox));
    CHECK(!image_has_layers(f.store, two));
    CHECK(image_layer_dir(f.store, d.diff1) == NULL);
    CHECK(image_layer_dir(f.store, "sha256:../../etc") == NULL);
    CHECK(image_layer_dir(f.store, "md5:00") == NULL);
    CHECK(image_gc(f.store, json_object_get(busybox, "id"), &err) < 0);
    CHECK(err.kind == SERR_INVALID);

    json_decref(keep);
    json_decref(loaded);
    json_decref(busybox);
    free(tar);
    fixture_done(&f);
}

/* A layer under a mounted overlay (a running container's rootfs) survives a
 * gc that keeps nothing; it goes once unmounted. The detach step moves it to
 * tmp/ and leaves layers/ without it at once. */
TEST(image_gc_keeps_mounted_layers)
{
    struct fixture f;
    fixture_init(&f);
    make_busybox_rootfs(&f);
    char *tar = fixture_path(&f, "rootfs.tar");
    struct serr err;
    json_t *busybox = NULL;
    CHECK(image_import(f.store, tar, "busybox", &busybox, &err) == 0);
    const char *diff = json_string_value(json_array_get(json_object_get(busybox, "layers"), 0));
    char *lower = image_layer_dir(f.store, diff);
    CHECK(lower != NULL);
    char *upper = fixture_path(&f, "upper"), *work = fixture_path(&f, "work");
    char *root = fixture_path(&f, "mnt");
    CHECK(mkdir(upper, 0755) == 0 && mkdir(work, 0755) == 0 && mkdir(root, 0755) == 0);
    char *opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
    CHECK(mount("overlay", root, "overlay", 0, opts) == 0);

    json_t *none = json_array();
    CHECK(image_gc(f.store, none, &err) == 0);
    CHECK(image_has_layers(f.store, busybox));
    CHECK(umount2(root, 0) == 0);
    json_t *keep = json_object();
    char *trash = NULL;
    CHECK(image_gc_detach(f.store, keep, &trash, &err) == 0);
    CHECK(trash != NULL);
    CHECK(!image_has_layers(f.store, busybox));
    CHECK(count_entries(&f, "layers") == 0);
    image_gc_purge(trash);
    CHECK(count_entries(&f, "tmp") == 0);
    CHECK(image_gc_detach(f.store, keep, &trash, &err) == 0 && trash == NULL);

    json_decref(keep);
    json_decref(none);
    free(opts);
    free(root);
    free(work);
    free(upper);
    free(lower);
    json_decref(busybox);
    free(tar);
    fixture_done(&f);
}

/* ---- registry helpers ---------------------------------------------------- */

TEST(registry_insecure_and_platforms)
{
    const char *const insecure[] = {"reg.lan:5000", "10.1.0.0/16", "plain.lan", NULL};
    CHECK(registry_is_insecure(NULL, "127.0.0.1:5000"));
    CHECK(registry_is_insecure(NULL, "127.9.9.9"));
    CHECK(registry_is_insecure(NULL, "localhost:5000"));
    CHECK(!registry_is_insecure(NULL, "docker.io"));
    CHECK(!registry_is_insecure(NULL, "128.0.0.1:5000"));
    CHECK(registry_is_insecure(insecure, "reg.lan:5000"));
    CHECK(!registry_is_insecure(insecure, "reg.lan:5001"));
    CHECK(registry_is_insecure(insecure, "10.1.200.3:443"));
    CHECK(!registry_is_insecure(insecure, "10.2.0.1"));
    CHECK(registry_is_insecure(insecure, "plain.lan:8080"));
    struct serr err;
    CHECK(registry_check_platform("linux/amd64", &err) == 0);
    CHECK(registry_check_platform("linux/arm/v7", &err) == 0);
    CHECK(registry_check_platform(registry_host_platform(), &err) == 0);
    CHECK(registry_check_platform("linux", &err) < 0 && err.kind == SERR_INVALID);
    CHECK(registry_check_platform("linux/", &err) < 0);
    CHECK(registry_check_platform("/amd64", &err) < 0);
    CHECK(registry_check_platform("linux/arm/v7/x", &err) < 0);
    CHECK(registry_check_platform("linux/arm/", &err) < 0);
}
