/* Extraction of archives into a directory (image_int.h): the layers' tars
 * with their whiteouts and opaque directories, and the outer archives of
 * `docker save` and OCI layouts. Entries never land outside the destination:
 * libarchive's secure flags plus our own check of each entry's name. */
#include "agent/image_int.h"
#include "agent/untar.h"

#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"

/* Paths inside archives are relative and never climb: libarchive's
 * SECURE_NODOTDOT sees our absolute, prefixed path, so check the entry's own
 * name here too (also used for paths that libarchive never sees). */
bool image_relative_path_ok(const char *path)
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
int image_reader_fail(struct archive *a, const char *what, struct serr *err)
{
    const char *msg = archive_error_string(a);
    return serr_set(err, SERR_INVALID, "%s: %s", what, msg ? msg : "read error");
}

/* Errors while writing are bad input too (unsafe paths, links through
 * symlinks) unless the disk itself failed. */
static int disk_fail(struct archive *disk, const char *what, struct serr *err)
{
    return untar_write_fail(disk, what, SERR_INVALID, err);
}

/* Writes `e` (pathname already absolute) and its data. */
static int write_entry(struct archive *in, struct archive *disk, struct archive_entry *e,
                       struct serr *err)
{
    const char *name = archive_entry_pathname(e);
    int r = archive_write_header(disk, e);
    if (r < ARCHIVE_WARN)
        return disk_fail(disk, name, err);
    if (in && archive_entry_size(e) > 0 &&
        untar_copy_data(in, disk, "read", "write", SERR_INVALID, err) < 0)
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
    if (!image_relative_path_ok(name))
        return serr_set(err, SERR_INVALID, "unsafe path in archive: %s", name ? name : "(none)");
    if (link && !image_relative_path_ok(link))
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
                        const char *dest, const struct image_unpack_opts *o, struct strlist *opaque,
                        struct serr *err)
{
    const char *name = archive_entry_pathname(e);
    if (!image_relative_path_ok(name))
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
int image_unpack_all(struct archive *in, const char *dest, int flags,
                     const struct image_unpack_opts *o, struct serr *err)
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
            rc = image_reader_fail(in, "read archive", err);
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
