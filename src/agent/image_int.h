/* What the image store's files share (image_store.c, image_extract.c,
 * image_load.c); not for use outside them. The public side is image.h. */
#ifndef SHOAL_AGENT_IMAGE_INT_H
#define SHOAL_AGENT_IMAGE_INT_H

#include <archive.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/image.h"
#include "base/err.h"

#define HEX_LEN IMAGE_HEX_LEN
#define READ_BLOCK (64 * 1024)

/* ---- extraction (image_extract.c) ---- */

struct image_unpack_opts {
    bool whiteouts;        /* layer semantics: convert .wh. entries */
    bool only_plain_files; /* outer archives: regular files, dirs, links only */
};

/* Extracts every entry of the opened reader `in` below `dest` (an absolute,
 * canonical directory) with libarchive's write-disk `flags`; refuses entries
 * whose paths climb out. The caller keeps and frees `in`. */
int image_unpack_all(struct archive *in, const char *dest, int flags,
                     const struct image_unpack_opts *o, struct serr *err);
/* Sets `err` from reader `a`'s message (the archive is bad input); returns -1. */
int image_reader_fail(struct archive *a, const char *what, struct serr *err);
/* True when `path` (a name inside an archive) is relative and never climbs. */
bool image_relative_path_ok(const char *path);

/* ---- the store (image_store.c) ---- */

/* The lowercase hex sha256 of `data`. */
void image_sha256_hex(const void *data, size_t len, char out[HEX_LEN + 1]);
/* A fresh, uniquely named directory under the store's tmp/ (caller removes
 * it with image_work_dir_discard, which also frees the string). */
char *image_work_dir_make(struct image_store *s, const char *what, struct serr *err);
void image_work_dir_discard(char *path);
/* Makes sure the layer in file `path` is in the store. When `expected` (the
 * config's diff_id) is given and already stored, the file is not unpacked;
 * otherwise the content must hash to it. `hex` gets the diff_id. */
int image_ensure_layer(struct image_store *s, const char *path, const char *expected,
                       char hex[HEX_LEN + 1], uint64_t *size, struct serr *err);
/* Unpacks the layer file at `path` (tar, any compression) into `dest` and
 * gives its diff_id (hex) and uncompressed size. */
int image_layer_unpack(const char *path, const char *dest, char hex[HEX_LEN + 1], uint64_t *size,
                       struct serr *err);

/* ---- the helper process (image_helper.c) ---- */

/* image_layer_unpack, done by a process of binary `exe` run for it
 * (IMAGE_UNPACK_COMMAND), which reports the result on a pipe. Returns
 * IMAGE_HELPER_NOT_RUN (err says why) when that process could not run at all
 * (the binary gone or replaced by an upgrade, no loader for it: exit 127). */
#define IMAGE_HELPER_NOT_RUN (-2)
int image_layer_unpack_apart(const char *exe, const char *path, const char *dest,
                             char hex[HEX_LEN + 1], uint64_t *size, struct serr *err);
/* Keeps an image's config blob (whose sha256 is the image id). */
int image_keep_config(struct image_store *s, const char *config, size_t len, struct serr *err);
/* A new image description (image.h); takes references to none of its
 * arguments but copies what it keeps. */
json_t *image_description(const char *id_hex, json_t *tags, json_t *layers, uint64_t size,
                          json_t *image_config);

#endif
