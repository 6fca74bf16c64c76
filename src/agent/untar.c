#include "agent/untar.h"

#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

char *untar_path_under(const char *root, const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (name == NULL || name[0] == '/' || strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0 ||
        strstr(name, "/../") || (len >= 3 && strcmp(name + len - 3, "/..") == 0))
        return NULL;
    return xasprintf("%s/%s", root, name);
}

/* Rewrites the entry's path (and hard link target) under root. */
static int relocate(struct archive_entry *e, const char *root, const struct untar_words *w,
                    struct serr *err)
{
    char *path = untar_path_under(root, archive_entry_pathname(e));
    const char *link = archive_entry_hardlink(e);
    char *hard = link ? untar_path_under(root, link) : NULL;
    int rc = 0;
    if (path == NULL || (link && hard == NULL))
        rc = serr_set(err, SERR_INVALID, "%s has an entry outside %s: %s", w->source,
                      w->root_name, archive_entry_pathname(e));
    else {
        archive_entry_set_pathname(e, path);
        if (hard)
            archive_entry_set_hardlink(e, hard);
    }
    free(path);
    free(hard);
    return rc;
}

int untar_write_fail(struct archive *disk, const char *what, enum serr_kind kind,
                     struct serr *err)
{
    int e = archive_errno(disk);
    const char *msg = archive_error_string(disk);
    if (e == ENOSPC || e == EDQUOT || e == EIO || e == EROFS) /* not "Write failed" */
        return serr_set(err, SERR_INTERNAL, "%s: %s", what, strerror(e));
    return serr_set(err, kind, "%s: %s", what, msg ? msg : "write error");
}

int untar_copy_data(struct archive *in, struct archive *disk, const char *source,
                    const char *verb, enum serr_kind kind, struct serr *err)
{
    const void *buf;
    size_t len;
    la_int64_t off;
    for (;;) {
        int r = archive_read_data_block(in, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN) {
            const char *msg = archive_error_string(in);
            return serr_set(err, SERR_INVALID, "%s: %s", source, msg ? msg : "read error");
        }
        /* libarchive reports a failed write(2) (ENOSPC, EIO) as ARCHIVE_WARN: a data
         * block has no harmless warning, so anything but OK is a failure */
        if (archive_write_data_block(disk, buf, len, off) != ARCHIVE_OK)
            return untar_write_fail(disk, verb, kind, err);
    }
}

static int write_entry(struct archive *in, struct archive *disk, struct archive_entry *e,
                       const char *root, const struct untar_words *w, struct serr *err)
{
    if (relocate(e, root, w, err) < 0)
        return -1;
    if (archive_write_header(disk, e) < ARCHIVE_WARN) {
        char *what = xasprintf("%s %s", w->verb, archive_entry_pathname(e));
        untar_write_fail(disk, what, SERR_INTERNAL, err);
        free(what);
        return -1;
    }
    if (archive_entry_size(e) > 0 &&
        untar_copy_data(in, disk, w->source, w->verb, SERR_INTERNAL, err) < 0)
        return -1;
    if (archive_write_finish_entry(disk) < ARCHIVE_WARN)
        return untar_write_fail(disk, w->verb, SERR_INTERNAL, err);
    return 0;
}

int untar_entries(struct archive *in, struct archive *disk, const char *root,
                  const struct untar_words *w, struct serr *err)
{
    int rc = 0;
    while (rc == 0) {
        struct archive_entry *e;
        int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            rc = serr_set(err, SERR_INVALID, "%s: %s", w->source, archive_error_string(in));
        else
            rc = write_entry(in, disk, e, root, w, err);
    }
    if (archive_write_close(disk) < ARCHIVE_WARN && rc == 0)
        rc = untar_write_fail(disk, w->verb, SERR_INTERNAL, err);
    return rc;
}
