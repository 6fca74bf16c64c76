/* Unpacking a tar under a directory with libarchive, every entry (and hard
 * link target) kept under it: shared by volume restores and build contexts. */
#ifndef SHOAL_AGENT_UNTAR_H
#define SHOAL_AGENT_UNTAR_H

#include <archive.h>

#include "base/err.h"

/* What the messages call the archive and the work:
 * "<source>: ...", "<verb> PATH: ...", "<source> has an entry outside <root_name>: NAME". */
struct untar_words {
    const char *source;    /* "the build context", "/backups/v.tar.gz" */
    const char *verb;      /* "unpacking", "restoring" */
    const char *root_name; /* "it", "the volume" */
};

/* An entry's path under `root` (new), NULL for one that would leave it. */
char *untar_path_under(const char *root, const char *name);

/* A write through `disk` failed: SERR_INTERNAL in strerror's words ("No
 * space left on device", not libarchive's "Write failed") when the disk
 * itself failed (ENOSPC, EDQUOT, EIO, EROFS), else `kind` with libarchive's
 * message: "<what>: <message>". Returns -1. */
int untar_write_fail(struct archive *disk, const char *what, enum serr_kind kind,
                     struct serr *err);

/* Copies the data of the entry just read from `in` through `disk`. A read
 * failure is SERR_INVALID "<source>: <message>" (the archive is bad); a
 * write failure untar_write_fail(disk, verb, kind). 0, or -1 with err. */
int untar_copy_data(struct archive *in, struct archive *disk, const char *source,
                    const char *verb, enum serr_kind kind, struct serr *err);

/* Writes every entry of `in` (opened) through `disk` (a write_disk archive,
 * its options set) under `root`; closes `disk`. 0, or -1 with err. */
int untar_entries(struct archive *in, struct archive *disk, const char *root,
                  const struct untar_words *w, struct serr *err);

#endif
