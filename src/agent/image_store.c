/* Image store: see image.h for the on-disk layout and the description format.
 *
 * Every layer goes through one pipeline (image_layer_unpack): a libarchive reader
 * with only decompression filters and the "raw" format turns the file into the
 * uncompressed tar stream; a second libarchive reader parses that stream as
 * tar and extracts it. The bytes handed from the first reader to the second
 * are hashed on the way, so the diff_id is computed in the same single pass.
 *
 * Nothing in the store keeps global state: all work happens in per-call
 * directories under tmp/ and a finished layer is published with one rename(2),
 * so concurrent loads cannot observe or produce half-written layers.
 *
 * The extraction of archives is in image_extract.c, `image import` and
 * `image load` in image_load.c; what they share with this file, in
 * image_int.h. */
#include "agent/image.h"
#include "base/log.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "agent/image_int.h"
#include "base/json_get.h"
#include "base/util.h"
#include "model/imageref.h"

struct image_store {
    /* Canonical (realpath) so that libarchive's symlink checks, which walk
     * every component of the absolute paths we give it, meet no symlink in
     * the store's own prefix. */
    char *dir;
    char *layers;
    char *configs; /* configs/<hex>: image config blobs as they came */
    char *tmp;
    char *unpack_helper; /* the binary that unpacks layers (image_helper.c); NULL: this process */
    bool unpack_here;    /* the helper could not run: this process (atomic) */
};

/* ---- digests ---------------------------------------------------------- */

static void hex_encode(const unsigned char *bin, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 15];
    }
    out[2 * n] = '\0';
}

void image_sha256_hex(const void *data, size_t len, char out[HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        abort(); /* only fails on allocation failure, which shoal does not survive */
    hex_encode(md, mdlen, out);
}

static bool is_hex_name(const char *name)
{
    char hex[HEX_LEN + 1];
    char digest[HEX_LEN + 8];
    snprintf(digest, sizeof(digest), "sha256:%s", name);
    return strlen(name) == HEX_LEN && image_parse_digest(digest, hex);
}

/* ---- store ------------------------------------------------------------ */

int image_store_open(const char *dir, struct image_store **out, struct serr *err)
{
    /* 0700: layers hold setuid binaries and device nodes of arbitrary images;
     * host users other than root have no business reaching them. */
    if (mkdir_p(dir, 0700, err) < 0)
        return serr_wrap(err, "image store");
    char *real = realpath(dir, NULL);
    if (real == NULL)
        return serr_errno(err, "image store %s", dir);
    struct image_store *s = xcalloc(1, sizeof(*s));
    s->dir = real;
    s->layers = xasprintf("%s/layers", real);
    s->configs = xasprintf("%s/configs", real);
    s->tmp = xasprintf("%s/tmp", real);
    /* Whatever is in tmp/ was left by a crashed process: nothing else uses
     * this store before open returns. */
    if (rm_rf(s->tmp, err) < 0 || mkdir_p(s->layers, 0700, err) < 0 ||
        mkdir_p(s->configs, 0700, err) < 0 || mkdir_p(s->tmp, 0700, err) < 0) {
        image_store_close(s);
        return serr_wrap(err, "image store %s", dir);
    }
    remove_stale_tmp_files(s->configs, now_ms()); /* a config's half-written copy */
    *out = s;
    return 0;
}

void image_store_unpack_apart(struct image_store *s, const char *exe)
{
    free(s->unpack_helper);
    s->unpack_helper = xstrdup(exe);
}

void image_store_close(struct image_store *s)
{
    if (s == NULL)
        return;
    free(s->dir);
    free(s->layers);
    free(s->configs);
    free(s->tmp);
    free(s->unpack_helper);
    free(s);
}

/* A fresh, uniquely named directory under tmp/ (caller removes and frees). */
char *image_work_dir_make(struct image_store *s, const char *what, struct serr *err)
{
    char *path = xasprintf("%s/%s-XXXXXX", s->tmp, what);
    if (mkdtemp(path) == NULL) {
        serr_errno(err, "create work directory in %s", s->tmp);
        free(path);
        return NULL;
    }
    return path;
}

/* Removes a work directory; the caller is already on its way out, so a
 * failure here only leaves garbage that the next image_store_open clears. */
void image_work_dir_discard(char *path)
{
    if (path == NULL)
        return;
    rm_rf(path, NULL);
    free(path);
}

/* ---- layers ------------------------------------------------------------- */

/* The uncompressed bytes of a layer file, hashed and counted as the tar
 * reader pulls them. */
struct layer_stream {
    struct archive *raw; /* filters + raw format: yields the decompressed tar */
    EVP_MD_CTX *md;
    uint64_t size;
};

static la_ssize_t layer_stream_read(struct archive *tar, void *opaque, const void **buf)
{
    struct layer_stream *ls = opaque;
    for (;;) {
        size_t len = 0;
        la_int64_t off;
        int r = archive_read_data_block(ls->raw, buf, &len, &off);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN) {
            const char *msg = archive_error_string(ls->raw);
            archive_set_error(tar, EIO, "%s", msg ? msg : "read error");
            return -1;
        }
        if (len == 0)
            continue; /* 0 would mean end of stream to the tar reader */
        EVP_DigestUpdate(ls->md, *buf, len);
        ls->size += len;
        return (la_ssize_t)len;
    }
}

static int layer_stream_open(struct layer_stream *ls, const char *path, struct serr *err)
{
    ls->raw = archive_read_new();
    ls->md = EVP_MD_CTX_new();
    ls->size = 0;
    if (ls->md == NULL || EVP_DigestInit_ex(ls->md, EVP_sha256(), NULL) != 1)
        abort(); /* allocation failure */
    archive_read_support_filter_all(ls->raw);
    archive_read_support_format_raw(ls->raw);
    struct archive_entry *e;
    if (archive_read_open_filename(ls->raw, path, READ_BLOCK) != ARCHIVE_OK ||
        archive_read_next_header(ls->raw, &e) < ARCHIVE_WARN)
        return image_reader_fail(ls->raw, "layer", err);
    return 0;
}

/* Hashes what the tar reader left unread (the end-of-archive padding). */
static int layer_stream_drain(struct layer_stream *ls, struct archive *tar, struct serr *err)
{
    const void *buf;
    la_ssize_t n;
    while ((n = layer_stream_read(tar, ls, &buf)) > 0)
        ;
    return n < 0 ? image_reader_fail(tar, "layer", err) : 0;
}

static void layer_stream_close(struct layer_stream *ls)
{
    archive_read_free(ls->raw);
    EVP_MD_CTX_free(ls->md);
}

static const int layer_extract_flags =
    ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_PERM |
    ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_TIME;

int image_layer_unpack(const char *path, const char *dest, char hex[HEX_LEN + 1], uint64_t *size,
                       struct serr *err)
{
    struct layer_stream ls;
    struct archive *tar = NULL;
    int rc = -1;
    if (layer_stream_open(&ls, path, err) < 0)
        goto out;
    /* Layers are tar by definition: another format would give a diff_id no
     * other tool computes, so only tar is accepted here. */
    tar = archive_read_new();
    archive_read_support_format_tar(tar);
    if (archive_read_open(tar, &ls, NULL, layer_stream_read, NULL) != ARCHIVE_OK) {
        image_reader_fail(tar, "layer", err);
        goto out;
    }
    const struct image_unpack_opts opts = {.whiteouts = true};
    if (image_unpack_all(tar, dest, layer_extract_flags, &opts, err) < 0 ||
        layer_stream_drain(&ls, tar, err) < 0)
        goto out;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ls.md, md, &mdlen);
    hex_encode(md, mdlen, hex);
    *size = ls.size;
    rc = 0;
out:
    archive_read_free(tar);
    layer_stream_close(&ls);
    return rc;
}

static int read_layer_size(struct image_store *s, const char *hex, uint64_t *size,
                           struct serr *err)
{
    char *path = xasprintf("%s/%s/size", s->layers, hex);
    char *text = NULL;
    int rc = read_file(path, &text, NULL, err);
    if (rc == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (errno || end == text)
            rc = serr_set(err, SERR_INTERNAL, "corrupt layer size file %s", path);
        *size = v;
    }
    free(text);
    free(path);
    return rc;
}

static bool layer_present(struct image_store *s, const char *hex)
{
    char *path = xasprintf("%s/%s/root", s->layers, hex);
    struct stat st;
    bool ok = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
    free(path);
    return ok;
}

/* Moves a complete layer from its work dir into layers/. Losing the race to
 * another thread unpacking the same layer is fine: theirs is identical. */
static int publish_layer(struct image_store *s, const char *work, const char *hex,
                         struct serr *err)
{
    char *final = xasprintf("%s/%s", s->layers, hex);
    int rc = 0;
    if (rename(work, final) < 0 && errno != EEXIST && errno != ENOTEMPTY)
        rc = serr_errno(err, "rename %s to %s", work, final);
    free(final);
    return rc;
}

/* Keeps the layer as it came (maybe compressed) in work/layer.blob, so that
 * other nodes can fetch it and check its diff_id themselves. A hard link
 * when the file is on the same filesystem, else a copy. */
static int keep_blob(const char *path, const char *work, struct serr *err)
{
    char *blob = xasprintf("%s/layer.blob", work);
    int rc = 0;
    if (link(path, blob) < 0) {
        char *data = NULL;
        size_t len = 0;
        rc = read_file(path, &data, &len, err);
        if (rc == 0)
            rc = write_file_atomic(blob, data, len, false, err);
        free(data);
    }
    free(blob);
    return rc;
}

/* A layer unpacked by the helper process, or here when the daemon has none
 * or it cannot run (then here from now on, said once in the log; layers may
 * be unpacked by several threads at once). */
static int unpack_layer(struct image_store *s, const char *path, const char *root,
                        char hex[HEX_LEN + 1], uint64_t *size, struct serr *err)
{
    if (s->unpack_helper && !__atomic_load_n(&s->unpack_here, __ATOMIC_RELAXED)) {
        struct serr why = {0};
        int rc = image_layer_unpack_apart(s->unpack_helper, path, root, hex, size, &why);
        if (rc != IMAGE_HELPER_NOT_RUN) {
            if (rc < 0 && err)
                *err = why;
            return rc;
        }
        if (!__atomic_exchange_n(&s->unpack_here, true, __ATOMIC_RELAXED))
            log_warn("%s: layers are unpacked in the daemon from now on", why.msg);
    }
    return image_layer_unpack(path, root, hex, size, err);
}

/* Makes sure the layer in file `path` is in the store. When `expected` (the
 * config's diff_id) is given and already stored, the file is not unpacked;
 * otherwise the content must hash to it. `hex` gets the diff_id. */
int image_ensure_layer(struct image_store *s, const char *path, const char *expected,
                       char hex[HEX_LEN + 1], uint64_t *size, struct serr *err)
{
    if (expected && layer_present(s, expected)) {
        memcpy(hex, expected, HEX_LEN + 1);
        return read_layer_size(s, hex, size, err);
    }
    char *work = image_work_dir_make(s, "layer", err);
    if (work == NULL)
        return -1;
    char *root = xasprintf("%s/root", work);
    int rc = -1;
    if (mkdir(root, 0755) < 0) {
        serr_errno(err, "mkdir %s", root);
        goto out;
    }
    if (unpack_layer(s, path, root, hex, size, err) < 0) {
        if (err && err->kind == SERR_INTERNAL) /* the disk failed: say which one */
            serr_wrap(err, "unpack into %s", root);
        goto out;
    }
    if (expected && strcmp(hex, expected) != 0) {
        serr_set(err, SERR_INVALID, "layer content sha256:%s does not match diff_id sha256:%s",
                 hex, expected);
        goto out;
    }
    char *size_path = xasprintf("%s/size", work);
    char text[32];
    int n = snprintf(text, sizeof(text), "%" PRIu64 "\n", *size);
    rc = write_file_atomic(size_path, text, (size_t)n, false, err);
    free(size_path);
    if (rc == 0)
        rc = keep_blob(path, work, err);
    if (rc == 0)
        rc = publish_layer(s, work, hex, err);
out:
    free(root);
    image_work_dir_discard(work); /* after a successful rename it is already gone */
    return rc;
}

char *image_layer_dir(struct image_store *s, const char *diff_id)
{
    char hex[HEX_LEN + 1];
    if (!image_parse_digest(diff_id, hex) || !layer_present(s, hex))
        return NULL;
    return xasprintf("%s/%s/root", s->layers, hex);
}

bool image_has_layers(struct image_store *s, json_t *image)
{
    json_t *layers = json_object_get(image, "layers");
    if (!json_is_array(layers))
        return false;
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        char *dir = image_layer_dir(s, json_string_value(l));
        if (dir == NULL)
            return false;
        free(dir);
    }
    return true;
}

/* ---- config blobs ------------------------------------------------------- */

/* Keeps an image's config blob (whose sha256 is the image id) for push and
 * history; written once, atomically. Two loads or pulls of one image may
 * write it at once: write_file_atomic's temporary file is each one's own,
 * the same bytes either way. */
int image_keep_config(struct image_store *s, const char *config, size_t len, struct serr *err)
{
    char hex[HEX_LEN + 1];
    image_sha256_hex(config, len, hex);
    char *path = xasprintf("%s/%s", s->configs, hex);
    int rc = 0;
    if (access(path, F_OK) != 0)
        rc = write_file_atomic(path, config, len, false, err);
    free(path);
    return rc;
}

int image_config_blob(struct image_store *s, const char *id, char **data, size_t *len,
                      struct serr *err)
{
    char hex[HEX_LEN + 1];
    if (!image_parse_digest(id, hex))
        return serr_set(err, SERR_INVALID, "invalid image id '%s'", id);
    char *path = xasprintf("%s/%s", s->configs, hex);
    int rc = 0;
    if (access(path, F_OK) != 0)
        rc = serr_set(err, SERR_NOT_FOUND,
                      "the config of image %s is not in this node's store (stored before shoal "
                      "kept configs, or on another manager): pull or load the image again",
                      id);
    else
        rc = read_file(path, data, len, err);
    free(path);
    return rc;
}

/* ---- history ------------------------------------------------------------ */

/* Bytes of stored layer `diff_id`; 0 when unknown (not on this node). */
static uint64_t layer_size_or_zero(struct image_store *s, const char *diff_id)
{
    char hex[HEX_LEN + 1];
    uint64_t size = 0;
    if (!image_parse_digest(diff_id, hex) || read_layer_size(s, hex, &size, NULL) < 0)
        return 0;
    return size;
}

static json_t *history_row(const char *created, const char *created_by, uint64_t size,
                           const char *comment, bool empty)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:b}", "created", created ? created : "", "created_by",
                     created_by ? created_by : "", "size", (json_int_t)size, "comment",
                     comment ? comment : "", "empty_layer", empty);
}

/* One row per entry of the config's "history"; a config without one (an
 * import) gets a row per layer. Rows that add a layer take the next diff_id. */
static json_t *history_rows(struct image_store *s, json_t *cfg)
{
    json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    json_t *history = json_object_get(cfg, "history");
    json_t *rows = json_array();
    size_t i, layer = 0;
    json_t *h;
    json_array_foreach(history, i, h)
    {
        bool empty = json_is_true(json_object_get(h, "empty_layer"));
        const char *diff_id = empty ? NULL : json_string_value(json_array_get(diff_ids, layer++));
        json_array_insert_new(rows, 0,
                              history_row(jstr(h, "created"), jstr(h, "created_by"),
                                          diff_id ? layer_size_or_zero(s, diff_id) : 0,
                                          jstr(h, "comment"), empty));
    }
    if (json_array_size(history) > 0)
        return rows;
    json_array_foreach(diff_ids, i, h)
    {
        json_array_insert_new(rows, 0,
                              history_row(jstr(cfg, "created"), "",
                                          layer_size_or_zero(s, json_string_value(h)), "", false));
    }
    return rows;
}

int image_history(struct image_store *s, const char *id, json_t **rows, struct serr *err)
{
    char *data = NULL;
    size_t len = 0;
    if (image_config_blob(s, id, &data, &len, err) < 0)
        return -1;
    json_error_t jerr;
    json_t *cfg = json_loadb(data, len, 0, &jerr);
    free(data);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return serr_set(err, SERR_INVALID, "config of image %s is not a JSON object: %s", id,
                        jerr.text);
    }
    *rows = history_rows(s, cfg);
    json_decref(cfg);
    return 0;
}

/* ---- descriptions ------------------------------------------------------- */

/* The subset of an image config's "config" object that containers need. */
static json_t *runtime_config(json_t *image_config)
{
    static const char *const keys[] = {"Env", "Cmd", "Entrypoint", "WorkingDir", "User"};
    json_t *src = json_object_get(image_config, "config");
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(src, keys[i]);
        if (v && !json_is_null(v))
            json_object_set_new(out, keys[i], json_deep_copy(v));
    }
    return out;
}

json_t *image_description(const char *id_hex, json_t *tags, json_t *layers, uint64_t size,
                          json_t *image_config)
{
    json_t *d = json_object();
    json_object_set_new(d, "id", json_sprintf("sha256:%s", id_hex));
    json_object_set_new(d, "tags", json_deep_copy(tags));
    json_object_set_new(d, "layers", json_deep_copy(layers));
    json_object_set_new(d, "size", json_integer((json_int_t)size));
    json_object_set_new(d, "config", runtime_config(image_config));
    return d;
}

int image_describe_config(struct image_store *s, const char *config, size_t len, json_t *tags,
                          json_t **image, struct serr *err)
{
    json_error_t jerr;
    json_t *cfg = json_loadb(config, len, 0, &jerr);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return serr_set(err, SERR_INVALID, "image config is not a JSON object: %s", jerr.text);
    }
    json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    json_t *layers = json_array();
    uint64_t total = 0;
    int rc = json_is_array(diff_ids)
                 ? 0
                 : serr_set(err, SERR_INVALID, "image config has no rootfs.diff_ids");
    size_t i;
    json_t *d;
    json_array_foreach(diff_ids, i, d)
    {
        char hex[HEX_LEN + 1];
        uint64_t size = 0;
        if (rc < 0)
            break;
        if (!image_parse_digest(json_string_value(d), hex))
            rc = serr_set(err, SERR_INVALID, "image config: invalid diff_id %zu", i);
        else if (!layer_present(s, hex))
            rc = serr_set(err, SERR_NOT_FOUND, "layer sha256:%s is not in the store", hex);
        else
            rc = read_layer_size(s, hex, &size, err);
        json_array_append(layers, d);
        total += size;
    }
    if (rc == 0)
        rc = image_keep_config(s, config, len, err);
    if (rc == 0) {
        char id[HEX_LEN + 1];
        image_sha256_hex(config, len, id);
        json_t *no_tags = json_array();
        *image = image_description(id, tags ? tags : no_tags, layers, total, cfg);
        json_decref(no_tags);
    }
    json_decref(layers);
    json_decref(cfg);
    return rc;
}

/* ---- gc ----------------------------------------------------------------- */

void image_keep_layers(json_t *keep, json_t *image)
{
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(image, "layers"), i, l)
    {
        if (json_is_string(l))
            json_object_set_new(keep, json_string_value(l), json_true());
    }
}

/* Adds to `used` ("sha256:<hex>" -> true) the store's layers named in one
 * overlay's "lowerdir=a:b:c" option (a mountinfo line). */
static void note_lowerdirs(struct image_store *s, const char *line, json_t *used)
{
    const char *opt = strstr(line, "lowerdir=");
    if (opt == NULL)
        return;
    opt += strlen("lowerdir=");
    char *dirs = xasprintf("%.*s", (int)strcspn(opt, ", \n"), opt);
    size_t prefix = strlen(s->layers);
    char *save = NULL;
    for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        mountinfo_unescape(dir);
        if (strncmp(dir, s->layers, prefix) != 0 || dir[prefix] != '/')
            continue;
        char hex[HEX_LEN + 1];
        snprintf(hex, sizeof(hex), "%s", dir + prefix + 1);
        if (is_hex_name(hex)) {
            char digest[HEX_LEN + 8];
            snprintf(digest, sizeof(digest), "sha256:%s", hex);
            json_object_set_new(used, digest, json_true());
        }
    }
    free(dirs);
}

/* The store's layers under a mounted overlay (a container's rootfs, whatever
 * started it: this daemon, an earlier one, a crashed create). */
static json_t *mounted_layers(struct image_store *s)
{
    json_t *used = json_object();
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (f == NULL)
        return used;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        const char *sep = strstr(line, " - overlay ");
        if (sep != NULL)
            note_lowerdirs(s, sep, used);
    }
    free(line);
    fclose(f);
    return used;
}

static bool layer_wanted(json_t *keep, json_t *mounted, const char *hex)
{
    char digest[HEX_LEN + 8];
    snprintf(digest, sizeof(digest), "sha256:%s", hex);
    return json_object_get(keep, digest) != NULL || json_object_get(mounted, digest) != NULL;
}

/* Moves layers/<hex> into `*trash` (made on first use). */
static int move_to_trash(struct image_store *s, const char *hex, char **trash, struct serr *err)
{
    if (*trash == NULL && (*trash = image_work_dir_make(s, "gc", err)) == NULL)
        return -1;
    char *from = xasprintf("%s/%s", s->layers, hex);
    char *to = xasprintf("%s/%s", *trash, hex);
    int rc = 0;
    if (rename(from, to) < 0 && errno != ENOENT)
        rc = serr_errno(err, "rename %s to %s", from, to);
    free(from);
    free(to);
    return rc;
}

int image_gc_detach(struct image_store *s, json_t *keep, char **trash, struct serr *err)
{
    *trash = NULL;
    if (!json_is_object(keep))
        return serr_set(err, SERR_INVALID, "image gc: expected a set of layer digests");
    DIR *d = opendir(s->layers);
    if (d == NULL)
        return serr_errno(err, "open %s", s->layers);
    json_t *mounted = mounted_layers(s);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (is_hex_name(de->d_name) && !layer_wanted(keep, mounted, de->d_name))
            rc = move_to_trash(s, de->d_name, trash, err);
    }
    closedir(d);
    json_decref(mounted);
    return rc;
}

void image_gc_purge(char *trash)
{
    image_work_dir_discard(trash);
}

int image_gc(struct image_store *s, json_t *keep, struct serr *err)
{
    if (!json_is_array(keep))
        return serr_set(err, SERR_INVALID, "image gc: expected an array of images");
    json_t *layers = json_object();
    size_t i;
    json_t *image;
    json_array_foreach(keep, i, image) image_keep_layers(layers, image);
    char *trash = NULL;
    int rc = image_gc_detach(s, layers, &trash, err);
    image_gc_purge(trash);
    json_decref(layers);
    return rc;
}

char *image_layer_blob(struct image_store *s, const char *diff_id)
{
    char hex[HEX_LEN + 1];
    if (!image_parse_digest(diff_id, hex))
        return NULL;
    char *path = xasprintf("%s/%s/layer.blob", s->layers, hex);
    if (access(path, R_OK) == 0)
        return path;
    free(path);
    return NULL;
}

int image_add_layer(struct image_store *s, const char *path, const char *diff_id,
                    struct serr *err)
{
    char expected[HEX_LEN + 1], hex[HEX_LEN + 1];
    uint64_t size = 0;
    if (!image_parse_digest(diff_id, expected))
        return serr_set(err, SERR_INVALID, "invalid layer digest '%s'", diff_id);
    return image_ensure_layer(s, path, expected, hex, &size, err);
}
