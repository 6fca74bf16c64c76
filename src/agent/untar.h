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

/* Writes every entry of `in` (opened) through `disk` (a write_disk archive,
 * its options set) under `root`; closes `disk`. 0, or -1 with err. */
int untar_entries(struct archive *in, struct archive *disk, const char *root,
                  const struct untar_words *w, struct serr *err);

#endif
