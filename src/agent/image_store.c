/* Image store: see image.h for the on-disk layout and the description format.
 *
 * Every layer goes through one pipeline (layer_unpack): a libarchive reader
 * with only decompression filters and the "raw" format turns the file into the
 * uncompressed tar stream; a second libarchive reader parses that stream as
 * tar and extracts it. The bytes handed from the first reader to the second
 * are hashed on the way, so the diff_id is computed in the same single pass.
 *
 * Nothing in this file keeps global state: all work happens in per-call
 * directories under tmp/ and a finished layer is published with one rename(2),
 * so concurrent loads cannot observe or produce half-written layers. */
#include "agent/image.h"

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

#include "base/util.h"
#include "model/imageref.h"

#define HEX_LEN IMAGE_HEX_LEN
#define READ_BLOCK (64 * 1024)
#define MAX_INDEX_DEPTH 4            /* nested OCI indexes followed at most */
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct image_store {
    /* Canonical (realpath) so that libarchive's symlink checks, which walk
     * every component of the absolute paths we give it, meet no symlink in
     * the store's own prefix. */
    char *dir;
    char *layers;
    char *configs; /* configs/<hex>: image config blobs as they came */
    char *tmp;
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

static void sha256_hex(const void *data, size_t len, char out[HEX_LEN + 1])
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
    *out = s;
    return 0;
}

void image_store_close(struct image_store *s)
{
    if (s == NULL)
        return;
    free(s->dir);
    free(s->layers);
    free(s->configs);
    free(s->tmp);
    free(s);
}

/* A fresh, uniquely named directory under tmp/ (caller removes and frees). */
static char *make_work_dir(struct image_store *s, const char *what, struct serr *err)
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
static void discard_work_dir(char *path)
{
    if (path == NULL)
        return;
    rm_rf(path, NULL);
    free(path);
}

/* ---- extraction --------------------------------------------------------- */

/* Paths inside archives are relative and never climb: libarchive's
 * SECURE_NODOTDOT sees our absolute, prefixed path, so check the entry's own
 * name here too (also used for paths that libarchive never sees). */
static bool relative_path_ok(const char *path)
{
    if (path == NULL || path[0] == '/')
        return false;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        p += strspn(p, "/");
    }
    return true;
}

/* Errors while reading come from the (user's) archive: bad input. */
static int reader_fail(struct archive *a, const char *what, struct serr *err)
{
    const char *msg = archive_error_string(a);
    return serr_set(err, SERR_INVALID, "%s: %s", what, msg ? msg : "read error");
}

/* Errors while writing are bad input too (unsafe paths, links through
 * symlinks) unless the disk itself failed. */
static int disk_fail(struct archive *disk, const char *what, struct serr *err)
{
    int e = archive_errno(disk);
    const char *msg = archive_error_string(disk);
    bool disk_trouble = e == ENOSPC || e == EDQUOT || e == EIO || e == EROFS;
    if (disk_trouble) /* strerror's words ("No space left on device"), not "Write failed" */
        return serr_set(err, SERR_INTERNAL, "%s: %s", what, strerror(e));
    return serr_set(err, SERR_INVALID, "%s: %s", what, msg ? msg : "write error");
}

static int copy_entry_data(struct archive *in, struct archive *disk, struct serr *err)
{
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(in, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return reader_fail(in, "read", err);
        /* libarchive reports a failed write(2) (ENOSPC, EIO) as ARCHIVE_WARN: a data
         * block has no harmless warning, so anything but OK is a failure */
        if (archive_write_data_block(disk, buf, len, off) != ARCHIVE_OK)
            return disk_fail(disk, "write", err);
    }
}

/* Writes `e` (pathname already absolute) and its data. */
static int write_entry(struct archive *in, struct archive *disk, struct archive_entry *e,
                       struct serr *err)
{
    const char *name = archive_entry_pathname(e);
    int r = archive_write_header(disk, e);
    if (r < ARCHIVE_WARN)
        return disk_fail(disk, name, err);
    if (in && archive_entry_size(e) > 0 && copy_entry_data(in, disk, err) < 0)
        return serr_wrap(err, "%s", name);
    if (archive_write_finish_entry(disk) < ARCHIVE_WARN)
        return disk_fail(disk, name, err);
    return 0;
}

/* Rebases the entry (and a hardlink's target) under dest. libarchive resolves
 * relative paths against the process's cwd, which threads share: never chdir,
 * always hand it absolute paths. */
static int rebase_entry(struct archive_entry *e, const char *dest, struct serr *err)
{
    const char *name = archive_entry_pathname(e);
    const char *link = archive_entry_hardlink(e);
    if (!relative_path_ok(name))
        return serr_set(err, SERR_INVALID, "unsafe path in archive: %s", name ? name : "(none)");
    if (link && !relative_path_ok(link))
        return serr_set(err, SERR_INVALID, "unsafe hard link target in archive: %s -> %s", name,
                        link);
    char *full = xasprintf("%s/%s", dest, name);
    archive_entry_copy_pathname(e, full);
    free(full);
    if (link) {
        char *full_link = xasprintf("%s/%s", dest, link);
        archive_entry_copy_hardlink(e, full_link);
        free(full_link);
    }
    return 0;
}

/* A growable list of strings (opaque directories seen in a layer). */
struct strlist {
    char **items;
    size_t len, cap;
};

static void strlist_push(struct strlist *l, const char *s)
{
    if (l->len == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->items = xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->len++] = xstrdup(s);
}

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
}

enum whiteout { WH_NONE, WH_FILE, WH_OPAQUE, WH_META };

/* Classifies an entry by its basename; *base points at it in `name`. */
static enum whiteout whiteout_kind(const char *name, const char **base)
{
    const char *slash = strrchr(name, '/');
    *base = slash ? slash + 1 : name;
    if (strcmp(*base, ".wh..wh..opq") == 0)
        return WH_OPAQUE;
    if (strncmp(*base, ".wh..wh.", 8) == 0)
        return WH_META; /* aufs bookkeeping (.wh..wh.plnk ...): not content */
    if (strncmp(*base, ".wh.", 4) == 0)
        return WH_FILE;
    return WH_NONE;
}

/* `dir/.wh.NAME` becomes the overlayfs whiteout: a char device 0:0 at dir/NAME.
 * Written through libarchive so the same path security checks apply. */
static int write_whiteout(struct archive *disk, const char *dest, const char *name,
                          const char *base, struct serr *err)
{
    const char *target = base + 4;
    if (*target == '\0' || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
        return serr_set(err, SERR_INVALID, "invalid whiteout in archive: %s", name);
    char *path = xasprintf("%s/%.*s%s", dest, (int)(base - name), name, target);
    struct archive_entry *wh = archive_entry_new();
    archive_entry_copy_pathname(wh, path);
    archive_entry_set_filetype(wh, AE_IFCHR);
    archive_entry_set_perm(wh, 0);
    archive_entry_set_rdev(wh, 0);
    archive_entry_set_size(wh, 0);
    int rc = write_entry(NULL, disk, wh, err);
    archive_entry_free(wh);
    free(path);
    return rc;
}

struct unpack_opts {
    bool whiteouts;        /* layer semantics: convert .wh. entries */
    bool only_plain_files; /* outer archives: regular files, dirs, links only */
};

static bool plain_type(struct archive_entry *e)
{
    mode_t t = archive_entry_filetype(e);
    return t == AE_IFREG || t == AE_IFDIR || t == AE_IFLNK || archive_entry_hardlink(e);
}

/* libarchive's messages name the absolute paths we hand it; the user knows
 * the archive's own names, so drop our work directory from the message. */
static int hide_work_dir(struct serr *err, const char *dest)
{
    if (err == NULL)
        return -1;
    char *prefix = xasprintf("%s/", dest);
    size_t n = strlen(prefix);
    for (char *p = strstr(err->msg, prefix); p; p = strstr(p, prefix))
        memmove(p, p + n, strlen(p + n) + 1);
    free(prefix);
    return -1;
}

static int unpack_entry(struct archive *in, struct archive *disk, struct archive_entry *e,
                        const char *dest, const struct unpack_opts *o, struct strlist *opaque,
                        struct serr *err)
{
    const char *name = archive_entry_pathname(e);
    if (!relative_path_ok(name))
        return serr_set(err, SERR_INVALID, "unsafe path in archive: %s", name ? name : "(none)");
    if (o->only_plain_files && !plain_type(e))
        return 0;
    if (o->whiteouts) {
        const char *base;
        switch (whiteout_kind(name, &base)) {
        case WH_OPAQUE: {
            /* Applied after extraction: the directory's own entry may follow. */
            char *dir = xasprintf("%.*s", (int)(base - name), name);
            strlist_push(opaque, dir);
            free(dir);
            return 0;
        }
        case WH_META:
            return 0;
        case WH_FILE:
            if (write_whiteout(disk, dest, name, base, err) < 0)
                return hide_work_dir(err, dest);
            return 0;
        case WH_NONE:
            break;
        }
    }
    if (rebase_entry(e, dest, err) < 0)
        return -1;
    if (write_entry(in, disk, e, err) < 0)
        return hide_work_dir(err, dest);
    return 0;
}

/* Opens (creating when missing) each component of `rel` under root_fd
 * without following symlinks, so the opaque xattr never lands outside. */
static int open_dir_beneath(int root_fd, const char *rel, struct serr *err)
{
    int fd = dup(root_fd);
    if (fd < 0)
        return serr_errno(err, "dup");
    char *copy = xstrdup(rel), *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (mkdirat(fd, c, 0755) < 0 && errno != EEXIST) {
            serr_errno(err, "opaque directory %s", rel);
            goto fail;
        }
        int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            serr_set(err, SERR_INVALID, "opaque directory %s: %s", rel, strerror(errno));
            goto fail;
        }
        close(fd);
        fd = next;
    }
    free(copy);
    return fd;

fail:
    free(copy);
    close(fd);
    return -1;
}

static int apply_opaque_dirs(const char *dest, const struct strlist *opaque, struct serr *err)
{
    if (opaque->len == 0)
        return 0;
    int root = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return serr_errno(err, "open %s", dest);
    int rc = 0;
    for (size_t i = 0; i < opaque->len && rc == 0; i++) {
        int fd = open_dir_beneath(root, opaque->items[i], err);
        if (fd < 0) {
            rc = -1;
            break;
        }
        if (fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) < 0)
            rc = serr_errno(err, "set opaque xattr on %s", opaque->items[i]);
        close(fd);
    }
    close(root);
    return rc;
}

/* Extracts every entry of the opened reader `in` below `dest`. */
static int unpack_all(struct archive *in, const char *dest, int flags,
                      const struct unpack_opts *o, struct serr *err)
{
    struct archive *disk = archive_write_disk_new();
    /* No archive_write_disk_set_standard_lookup(): ownership stays numeric,
     * a layer's uid 1000 must not be mapped through the host's /etc/passwd. */
    archive_write_disk_set_options(disk, flags);
    struct strlist opaque = {0};
    int rc = 0;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = reader_fail(in, "read archive", err);
            break;
        }
        if ((rc = unpack_entry(in, disk, e, dest, o, &opaque, err)) < 0)
            break;
    }
    /* close applies deferred directory permissions and times */
    if (archive_write_close(disk) < ARCHIVE_WARN && rc == 0)
        rc = disk_fail(disk, "finish extraction", err);
    archive_write_free(disk);
    if (rc == 0)
        rc = apply_opaque_dirs(dest, &opaque, err);
    strlist_free(&opaque);
    return rc;
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
        return reader_fail(ls->raw, "layer", err);
    return 0;
}

/* Hashes what the tar reader left unread (the end-of-archive padding). */
static int layer_stream_drain(struct layer_stream *ls, struct archive *tar, struct serr *err)
{
    const void *buf;
    la_ssize_t n;
    while ((n = layer_stream_read(tar, ls, &buf)) > 0)
        ;
    return n < 0 ? reader_fail(tar, "layer", err) : 0;
}

static void layer_stream_close(struct layer_stream *ls)
{
    archive_read_free(ls->raw);
    EVP_MD_CTX_free(ls->md);
}

static const int layer_extract_flags =
    ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_PERM |
    ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_TIME;

/* Unpacks the layer file at `path` (tar, any compression) into `dest` and
 * gives its diff_id (hex) and uncompressed size. */
static int layer_unpack(const char *path, const char *dest, char hex[HEX_LEN + 1], uint64_t *size,
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
        reader_fail(tar, "layer", err);
        goto out;
    }
    const struct unpack_opts opts = {.whiteouts = true};
    if (unpack_all(tar, dest, layer_extract_flags, &opts, err) < 0 ||
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

/* Makes sure the layer in file `path` is in the store. When `expected` (the
 * config's diff_id) is given and already stored, the file is not unpacked;
 * otherwise the content must hash to it. `hex` gets the diff_id. */
static int ensure_layer(struct image_store *s, const char *path, const char *expected,
                        char hex[HEX_LEN + 1], uint64_t *size, struct serr *err)
{
    if (expected && layer_present(s, expected)) {
        memcpy(hex, expected, HEX_LEN + 1);
        return read_layer_size(s, hex, size, err);
    }
    char *work = make_work_dir(s, "layer", err);
    if (work == NULL)
        return -1;
    char *root = xasprintf("%s/root", work);
    int rc = -1;
    if (mkdir(root, 0755) < 0) {
        serr_errno(err, "mkdir %s", root);
        goto out;
    }
    if (layer_unpack(path, root, hex, size, err) < 0) {
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
    discard_work_dir(work); /* after a successful rename it is already gone */
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
static int keep_config(struct image_store *s, const char *config, size_t len, struct serr *err)
{
    char hex[HEX_LEN + 1];
    sha256_hex(config, len, hex);
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
                              history_row(json_string_value(json_object_get(h, "created")),
                                          json_string_value(json_object_get(h, "created_by")),
                                          diff_id ? layer_size_or_zero(s, diff_id) : 0,
                                          json_string_value(json_object_get(h, "comment")), empty));
    }
    if (json_array_size(history) > 0)
        return rows;
    json_array_foreach(diff_ids, i, h)
    {
        json_array_insert_new(rows, 0,
                              history_row(json_string_value(json_object_get(cfg, "created")), "",
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

static json_t *describe(const char *id_hex, json_t *tags, json_t *layers, uint64_t size,
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
        rc = keep_config(s, config, len, err);
    if (rc == 0) {
        char id[HEX_LEN + 1];
        sha256_hex(config, len, id);
        json_t *no_tags = json_array();
        *image = describe(id, tags ? tags : no_tags, layers, total, cfg);
        json_decref(no_tags);
    }
    json_decref(layers);
    json_decref(cfg);
    return rc;
}

static bool array_has_string(json_t *array, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* Appends `desc` (stolen) to `images`, merging tags into an earlier
 * description of the same image (an archive may name one image twice). */
static void add_image(json_t *images, json_t *desc)
{
    const char *id = json_string_value(json_object_get(desc, "id"));
    size_t i, j;
    json_t *old, *tag;
    json_array_foreach(images, i, old)
    {
        if (strcmp(json_string_value(json_object_get(old, "id")), id) != 0)
            continue;
        json_t *old_tags = json_object_get(old, "tags");
        json_array_foreach(json_object_get(desc, "tags"), j, tag)
        {
            if (!array_has_string(old_tags, json_string_value(tag)))
                json_array_append(old_tags, tag);
        }
        json_decref(desc);
        return;
    }
    json_array_append_new(images, desc);
}

/* Normalises each tag of `names` (strings; NULL or null = none) into a new array. */
static json_t *normalize_tags(json_t *names, struct serr *err)
{
    json_t *tags = json_array();
    if (names == NULL || json_is_null(names))
        return tags;
    if (!json_is_array(names)) {
        serr_set(err, SERR_INVALID, "tags must be an array of strings");
        goto fail;
    }
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        char ref[512];
        if (!json_is_string(n)) {
            serr_set(err, SERR_INVALID, "tags must be an array of strings");
            goto fail;
        }
        if (image_normalize_ref(json_string_value(n), ref, sizeof(ref), err) < 0)
            goto fail;
        if (!array_has_string(tags, ref))
            json_array_append_new(tags, json_string(ref));
    }
    return tags;
fail:
    json_decref(tags);
    return NULL;
}

/* ---- import ------------------------------------------------------------- */

static const char *host_architecture(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__arm__)
    return "arm";
#elif defined(__i386__)
    return "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return "ppc64le";
#elif defined(__s390x__)
    return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
    return "riscv64";
#else
    return "unknown";
#endif
}

/* The config blob of an imported image. Serialised with sorted keys and no
 * timestamp so that importing the same rootfs always gives the same id. */
static char *import_config(const char *diff_hex)
{
    json_t *cfg = json_pack("{s:s, s:s, s:{s:[s]}, s:{s:s, s:[s+]}}", "architecture",
                            host_architecture(), "os", "linux", "config", "Env", DEFAULT_PATH,
                            "rootfs", "type", "layers", "diff_ids", "sha256:", diff_hex);
    char *text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(cfg);
    if (text == NULL)
        abort(); /* allocation failure */
    return text;
}

int image_import(struct image_store *s, const char *tar_path, const char *ref, json_t **image,
                 struct serr *err)
{
    char tag[512];
    if (image_normalize_ref(ref, tag, sizeof(tag), err) < 0)
        return -1;
    char hex[HEX_LEN + 1];
    uint64_t size;
    if (ensure_layer(s, tar_path, NULL, hex, &size, err) < 0)
        return serr_wrap(err, "import %s", tar_path);
    char *cfg_text = import_config(hex);
    if (keep_config(s, cfg_text, strlen(cfg_text), err) < 0) {
        free(cfg_text);
        return -1;
    }
    json_t *cfg = json_loads(cfg_text, 0, NULL);
    char id[HEX_LEN + 1];
    sha256_hex(cfg_text, strlen(cfg_text), id);
    json_t *tags = json_pack("[s]", tag);
    json_t *layers = json_pack("[s+]", "sha256:", hex);
    *image = describe(id, tags, layers, size, cfg);
    json_decref(layers);
    json_decref(tags);
    json_decref(cfg);
    free(cfg_text);
    return 0;
}

/* ---- load --------------------------------------------------------------- */

static const int outer_extract_flags =
    ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS;

/* Extracts the outer archive (docker save / OCI layout) into `dest`. */
static int extract_outer(const char *path, const char *dest, struct serr *err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    int rc;
    if (archive_read_open_filename(a, path, READ_BLOCK) != ARCHIVE_OK) {
        rc = reader_fail(a, "open", err);
    } else {
        const struct unpack_opts opts = {.only_plain_files = true};
        rc = unpack_all(a, dest, outer_extract_flags, &opts, err);
    }
    archive_read_free(a);
    return rc;
}

/* Resolves an archive member named by the archive's own JSON. Symlinks are
 * allowed (docker save links repeated layers) but must stay inside. */
static char *member_path(const char *work, const char *rel, struct serr *err)
{
    if (rel == NULL || !relative_path_ok(rel)) {
        serr_set(err, SERR_INVALID, "invalid archive member name '%s'", rel ? rel : "(none)");
        return NULL;
    }
    char *joined = xasprintf("%s/%s", work, rel);
    char *real = realpath(joined, NULL);
    free(joined);
    if (real == NULL) {
        serr_set(err, SERR_INVALID, "archive member %s: %s", rel, strerror(errno));
        return NULL;
    }
    size_t n = strlen(work);
    if (strncmp(real, work, n) != 0 || real[n] != '/') {
        serr_set(err, SERR_INVALID, "archive member %s points outside the archive", rel);
        free(real);
        return NULL;
    }
    return real;
}

static json_t *load_json_member(const char *work, const char *rel, char hex[HEX_LEN + 1],
                                struct serr *err)
{
    char *path = member_path(work, rel, err);
    if (path == NULL)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    json_t *j = NULL;
    if (read_file(path, &text, &len, err) < 0) {
        serr_wrap(err, "archive member %s", rel);
        if (err)
            err->kind = SERR_INVALID; /* e.g. a directory where a file belongs */
        goto out;
    }
    sha256_hex(text, len, hex);
    json_error_t jerr;
    j = json_loadb(text, len, 0, &jerr);
    if (j == NULL)
        serr_set(err, SERR_INVALID, "%s: invalid JSON: %s (line %d)", rel, jerr.text, jerr.line);
out:
    free(text);
    free(path);
    return j;
}

/* What one image of an archive consists of, as named by its manifest. */
struct image_src {
    const char *config;        /* member name of the config blob */
    const char *config_digest; /* hex it must hash to (OCI), or NULL */
    json_t *layer_files;       /* member names, bottom first */
    json_t *tags;              /* normalised */
};

/* keep_config for an archive's member. */
static int keep_config_member(struct image_store *s, const char *work, const char *rel,
                              struct serr *err)
{
    char *path = member_path(work, rel, err);
    char *data = NULL;
    size_t len = 0;
    int rc = path ? read_file(path, &data, &len, err) : -1;
    if (rc == 0)
        rc = keep_config(s, data, len, err);
    free(data);
    free(path);
    return rc;
}

/* Stores the layers of one image and appends its description to `out`. */
static int load_image(struct image_store *s, const char *work, const struct image_src *src,
                      json_t *out, struct serr *err)
{
    char id[HEX_LEN + 1];
    json_t *cfg = load_json_member(work, src->config, id, err);
    if (cfg == NULL)
        return -1;
    json_t *layers = json_array();
    uint64_t total = 0;
    int rc = -1;
    if (src->config_digest && strcmp(id, src->config_digest) != 0) {
        serr_set(err, SERR_INVALID, "config %s does not match its digest", src->config);
        goto out;
    }
    json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    if (!json_is_array(diff_ids) || json_array_size(diff_ids) != json_array_size(src->layer_files)) {
        serr_set(err, SERR_INVALID, "config %s: rootfs.diff_ids does not match the layers",
                 src->config);
        goto out;
    }
    size_t i;
    json_t *file;
    json_array_foreach(src->layer_files, i, file)
    {
        const char *diff_id = json_string_value(json_array_get(diff_ids, i));
        char want[HEX_LEN + 1], got[HEX_LEN + 1];
        uint64_t size;
        if (!image_parse_digest(diff_id, want)) {
            serr_set(err, SERR_INVALID, "config %s: invalid diff_id", src->config);
            goto out;
        }
        /* Resolve first even when the layer is stored: the archive must be whole. */
        char *path = member_path(work, json_string_value(file), err);
        int r = path ? ensure_layer(s, path, want, got, &size, err) : -1;
        free(path);
        if (r < 0) {
            serr_wrap(err, "layer %s", json_string_value(file));
            goto out;
        }
        json_array_append_new(layers, json_sprintf("sha256:%s", got));
        total += size;
    }
    if (keep_config_member(s, work, src->config, err) < 0)
        goto out;
    add_image(out, describe(id, src->tags, layers, total, cfg));
    rc = 0;
out:
    json_decref(layers);
    json_decref(cfg);
    return rc;
}

static bool is_string_array(json_t *a)
{
    size_t i;
    json_t *v;
    if (!json_is_array(a))
        return false;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v))
            return false;
    }
    return true;
}

/* docker save: manifest.json = [{"Config", "RepoTags", "Layers"}, ...] */
static int load_docker(struct image_store *s, const char *work, json_t *out, struct serr *err)
{
    char hex[HEX_LEN + 1];
    json_t *manifest = load_json_member(work, "manifest.json", hex, err);
    if (manifest == NULL)
        return -1;
    int rc = 0;
    if (!json_is_array(manifest) || json_array_size(manifest) == 0)
        rc = serr_set(err, SERR_INVALID, "manifest.json: expected a non-empty array");
    size_t i;
    json_t *m;
    json_array_foreach(manifest, i, m)
    {
        if (rc < 0)
            break;
        struct image_src src = {
            .config = json_string_value(json_object_get(m, "Config")),
            .layer_files = json_object_get(m, "Layers"),
        };
        if (src.config == NULL || !is_string_array(src.layer_files)) {
            rc = serr_set(err, SERR_INVALID,
                          "manifest.json: entry %zu needs Config and Layers (strings)", i);
            break;
        }
        src.tags = normalize_tags(json_object_get(m, "RepoTags"), err);
        rc = src.tags ? load_image(s, work, &src, out, err) : -1;
        json_decref(src.tags);
    }
    json_decref(manifest);
    return rc;
}

/* Reads the blob a descriptor points at, checking its digest. */
static json_t *load_oci_blob(const char *work, json_t *desc, struct serr *err)
{
    char want[HEX_LEN + 1], got[HEX_LEN + 1];
    const char *digest = json_string_value(json_object_get(desc, "digest"));
    if (!image_parse_digest(digest, want)) {
        serr_set(err, SERR_INVALID, "unsupported or invalid digest '%s'", digest ? digest : "");
        return NULL;
    }
    char *rel = xasprintf("blobs/sha256/%s", want);
    json_t *blob = load_json_member(work, rel, got, err);
    free(rel);
    if (blob && strcmp(want, got) != 0) {
        serr_set(err, SERR_INVALID, "blob %s does not match its digest", digest);
        json_decref(blob);
        return NULL;
    }
    return blob;
}

/* The tag of an index entry: containerd's full name, else the OCI ref.name. */
static json_t *oci_tags(json_t *desc, struct serr *err)
{
    json_t *ann = json_object_get(desc, "annotations");
    json_t *name = json_object_get(ann, "io.containerd.image.name");
    if (!json_is_string(name))
        name = json_object_get(ann, "org.opencontainers.image.ref.name");
    if (!json_is_string(name))
        return json_array();
    json_t *names = json_pack("[O]", name);
    json_t *tags = normalize_tags(names, err);
    json_decref(names);
    return tags;
}

static bool platform_matches(json_t *desc)
{
    json_t *p = json_object_get(desc, "platform");
    const char *os = json_string_value(json_object_get(p, "os"));
    const char *arch = json_string_value(json_object_get(p, "architecture"));
    return p == NULL || (os && arch && strcmp(os, "linux") == 0 &&
                         strcmp(arch, host_architecture()) == 0);
}

static int load_oci_descriptor(struct image_store *s, const char *work, json_t *desc, json_t *tags,
                               int depth, json_t *out, struct serr *err);

/* A multi-platform index: load the manifest for this host. */
static int load_oci_index(struct image_store *s, const char *work, json_t *index, json_t *tags,
                          int depth, json_t *out, struct serr *err)
{
    if (depth >= MAX_INDEX_DEPTH)
        return serr_set(err, SERR_INVALID, "OCI indexes nested too deep");
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(index, "manifests"), i, d)
    {
        if (platform_matches(d))
            return load_oci_descriptor(s, work, d, tags, depth + 1, out, err);
    }
    return serr_set(err, SERR_INVALID, "no image for linux/%s in the OCI index",
                    host_architecture());
}

static int load_oci_manifest(struct image_store *s, const char *work, json_t *manifest,
                             json_t *tags, json_t *out, struct serr *err)
{
    char hex[HEX_LEN + 1];
    const char *cfg_digest =
        json_string_value(json_object_get(json_object_get(manifest, "config"), "digest"));
    json_t *layers = json_object_get(manifest, "layers");
    if (!image_parse_digest(cfg_digest, hex) || !json_is_array(layers))
        return serr_set(err, SERR_INVALID, "OCI manifest without a valid config or layers");
    char *cfg_rel = xasprintf("blobs/sha256/%s", hex);
    struct image_src src = {.config = cfg_rel, .config_digest = hex, .tags = tags};
    src.layer_files = json_array();
    int rc = 0;
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        char lhex[HEX_LEN + 1];
        if (!image_parse_digest(json_string_value(json_object_get(l, "digest")), lhex)) {
            rc = serr_set(err, SERR_INVALID, "OCI manifest: layer %zu has an invalid digest", i);
            break;
        }
        json_array_append_new(src.layer_files, json_sprintf("blobs/sha256/%s", lhex));
    }
    if (rc == 0)
        rc = load_image(s, work, &src, out, err);
    json_decref(src.layer_files);
    free(cfg_rel);
    return rc;
}

static int load_oci_descriptor(struct image_store *s, const char *work, json_t *desc, json_t *tags,
                               int depth, json_t *out, struct serr *err)
{
    json_t *blob = load_oci_blob(work, desc, err);
    if (blob == NULL)
        return -1;
    int rc;
    if (json_is_array(json_object_get(blob, "manifests")))
        rc = load_oci_index(s, work, blob, tags, depth, out, err);
    else
        rc = load_oci_manifest(s, work, blob, tags, out, err);
    json_decref(blob);
    return rc;
}

/* OCI image layout: oci-layout + index.json -> manifests -> config + layers. */
static int load_oci(struct image_store *s, const char *work, json_t *out, struct serr *err)
{
    char hex[HEX_LEN + 1];
    json_t *layout = load_json_member(work, "oci-layout", hex, err);
    if (layout == NULL)
        return -1;
    bool layout_ok = json_is_string(json_object_get(layout, "imageLayoutVersion"));
    json_decref(layout);
    if (!layout_ok)
        return serr_set(err, SERR_INVALID, "oci-layout: no imageLayoutVersion");
    json_t *index = load_json_member(work, "index.json", hex, err);
    if (index == NULL)
        return -1;
    json_t *manifests = json_object_get(index, "manifests");
    int rc = 0;
    if (!json_is_array(manifests) || json_array_size(manifests) == 0)
        rc = serr_set(err, SERR_INVALID, "index.json: no manifests");
    size_t i;
    json_t *d;
    json_array_foreach(manifests, i, d)
    {
        if (rc < 0)
            break;
        json_t *tags = oci_tags(d, err);
        rc = tags ? load_oci_descriptor(s, work, d, tags, 0, out, err) : -1;
        json_decref(tags);
    }
    json_decref(index);
    return rc;
}

static bool member_exists(const char *work, const char *rel)
{
    char *path = xasprintf("%s/%s", work, rel);
    struct stat st;
    bool ok = lstat(path, &st) == 0;
    free(path);
    return ok;
}

/* Newer docker save archives are OCI layouts too; their manifest.json names
 * the tags directly, so it wins. */
static int load_extracted(struct image_store *s, const char *work, json_t *out, struct serr *err)
{
    if (member_exists(work, "manifest.json"))
        return load_docker(s, work, out, err);
    if (member_exists(work, "index.json"))
        return load_oci(s, work, out, err);
    return serr_set(err, SERR_INVALID,
                    "not a docker save archive (no manifest.json) nor an OCI layout (no "
                    "index.json)");
}

int image_load(struct image_store *s, const char *archive_path, json_t **images,
               struct serr *err)
{
    char *work = make_work_dir(s, "load", err);
    if (work == NULL)
        return -1;
    json_t *out = json_array();
    int rc = extract_outer(archive_path, work, err);
    if (rc == 0)
        rc = load_extracted(s, work, out, err);
    discard_work_dir(work);
    if (rc < 0) {
        json_decref(out);
        return serr_wrap(err, "load %s", archive_path);
    }
    *images = out;
    return 0;
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

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *str)
{
    char *out = str;
    for (const char *p = str; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
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
        unescape_octal(dir);
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
    if (*trash == NULL && (*trash = make_work_dir(s, "gc", err)) == NULL)
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
    discard_work_dir(trash);
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
    return ensure_layer(s, path, expected, hex, &size, err);
}
