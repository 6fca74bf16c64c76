/* Image builds: a build context (a tar, as the CLI sends it) and its
 * Dockerfile become an image of the store, through buildah (Debian's
 * `buildah`, run as a command).
 *
 * Each build has its own directory (the context unpacked, buildah's storage
 * with the vfs driver, the archives) removed at the end, so builds on one
 * node do not share state and leave nothing behind. Base images the store
 * has are handed to buildah first (a docker-archive made from the store, then
 * `buildah pull docker-archive:`), so FROM needs no registry; others shoal
 * pulls into its store first (anonymously, as `image pull` reads names and
 * with the daemon's insecure and allowed registries), then hands them over
 * the same way. buildah runs RUN steps with --isolation chroot (no
 * container runtime, any cgroup layout). The result is pushed to a
 * docker-archive and loaded with image_load.
 *
 * Blocking: the daemon calls build_image from libuv's thread pool. */
#ifndef SHOAL_AGENT_BUILD_H
#define SHOAL_AGENT_BUILD_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"

struct image_store;
struct registry_opts;

/* Receives the build's output (buildah's stdout and stderr) as it comes,
 * from the building thread. */
typedef void (*build_output_fn)(void *arg, const char *text, size_t len);

struct build_opts {
    const char *context_tar; /* the build context: a tar (gzip too) */
    const char *dockerfile;  /* path inside the context; NULL or "": "Dockerfile" */
    json_t *build_args;      /* {"K": "V"} for --build-arg, or NULL */
    const char *tag;         /* the image's NAME:TAG, normalised */
    const char *work_dir;    /* where the build's own directory is made */
    json_t *known;           /* the store's images (descriptions with "tags"): bases */
    /* Bases the store lacks are pulled into it with these (registry.h; not
     * committed: the GC takes them once nothing holds the store); NULL:
     * buildah pulls them itself. */
    const struct registry_opts *pull;
    build_output_fn output;
    void *output_arg;
};

/* Builds and loads the image: *image gets a new description tagged o->tag
 * (not yet committed: the caller proposes it). On failure (a bad context, a
 * failing step: err says which, with buildah's last line) nothing is stored
 * but layers image_load may have added, which the GC takes. */
int build_image(struct image_store *s, const struct build_opts *o, json_t **image,
                struct serr *err);

/* A build for another node (which lacks the bases, or their configs): the
 * context tar o->context_tar copied to `bundle`, with the store's bases the
 * Dockerfile names as docker-archives under BUILD_BASES_DIR/ (build_image
 * pulls them into buildah and takes them out of the context). Uses
 * o->context_tar, dockerfile, known and work_dir. */
#define BUILD_BASES_DIR ".shoal-build-bases"
int build_bundle(struct image_store *s, const struct build_opts *o, const char *bundle,
                 struct serr *err);

#endif
