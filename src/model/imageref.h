/* Image references as Docker reads them, shared by the agent (pulls, the
 * image store's tags) and the managers (service specs): pure functions. */
#ifndef SHOAL_MODEL_IMAGEREF_H
#define SHOAL_MODEL_IMAGEREF_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define IMAGE_HEX_LEN 64 /* a sha256 in hex */

/* Accepts exactly "sha256:<64 lowercase hex>" and copies the hex part into
 * hex. The strictness matters: the image store makes the hex a path
 * component. */
bool image_parse_digest(const char *digest, char hex[IMAGE_HEX_LEN + 1]);

/* Turns "busybox" into "busybox:latest"; keeps "reg:5000/a/b:tag". Validates
 * the reference (lowercase name components, tag [A-Za-z0-9_.-]{1,128}).
 * Docker Hub's long forms are shortened as Docker shows them:
 * "docker.io/library/busybox" and "library/busybox" are "busybox:latest".
 * A reference with a digest is refused (image_parse_ref takes it).
 * Writes into out[outlen]. */
int image_normalize_ref(const char *ref, char *out, size_t outlen, struct serr *err);

/* A reference as Docker reads it: [DOMAIN/]PATH[:TAG][@sha256:HEX].
 *   "nginx"                      -> docker.io, library/nginx, tag latest
 *   "reg.local:5000/a/b@sha256:.." -> reg.local:5000, a/b, no tag, the digest
 * The domain is the first component when it has a '.' or ':' or is
 * "localhost"; otherwise docker.io ("index.docker.io" too). */
#define IMAGE_DEFAULT_DOMAIN "docker.io"
struct image_ref {
    char domain[256]; /* "docker.io", "reg.local:5000" */
    char path[300];   /* repository in the registry: "library/nginx" */
    char tag[132];    /* "" when only a digest was given */
    char digest[72];  /* "sha256:<hex>" or "" */
    char name[560];   /* the short name the store uses: "nginx", "reg.local:5000/a/b" */
};
int image_parse_ref(const char *ref, struct image_ref *r, struct serr *err);

#endif
