/* Registry client: pulls images over the OCI distribution API (v2) into the
 * image store (agent/image.h), and pushes them back.
 *
 * libcurl does HTTP and TLS. Everything here blocks: the daemon calls it from
 * libuv's thread pool. One pull downloads the missing layers of an image a
 * few at a time (a curl multi handle driven in the calling thread), each blob
 * streamed into a spool file while its sha256 is computed and refused when it
 * does not match its digest; the layers then go into the store the way
 * `image load` stores them (checked against the config's diff_ids, published
 * with one rename). Layers already in the store are not fetched. A pull that
 * dies half-way leaves complete layers and spool files only; the daemon
 * removes its spools at start and a second pull fetches what is missing.
 *
 * Authentication: anonymous, Docker Hub-style bearer tokens (a 401 with
 * `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, the token asked
 * for with the credentials when given) and basic auth. */
#ifndef SHOAL_AGENT_REGISTRY_H
#define SHOAL_AGENT_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/image.h"
#include "base/err.h"

/* Docker Hub's API host, for references whose domain is docker.io. */
#define REGISTRY_HUB_HOST "registry-1.docker.io"

/* Progress of one pull, for `shoal image pull`'s lines: `id` is a layer's
 * short digest ("" for lines about the whole image), `status` Docker's words
 * ("Pulling fs layer", "Downloading", "Already exists", "Pull complete", ...);
 * current/total are bytes while downloading, else 0. Called from the pulling
 * thread. */
typedef void (*registry_progress_fn)(void *arg, const char *id, const char *status,
                                     uint64_t current, uint64_t total);

struct registry_opts {
    const char *spool_dir;           /* blobs are downloaded here (same filesystem as the store) */
    const char *platform;            /* "os/arch[/variant]"; NULL: this node's */
    const char *const *insecure;     /* NULL-terminated "host[:port]" or CIDR list, or NULL */
    const char *const *allowed;      /* same form; NULL: every registry may be used */
    const char *username, *password; /* NULL: anonymous */
    int parallel;                    /* layers downloaded at once; 0: 3 */
    registry_progress_fn progress;   /* or NULL */
    void *progress_arg;
};

/* This node's platform, "linux/amd64", "linux/arm64" or "linux/arm/v7", or
 * the one SHOAL_TEST_PLATFORM names (base/platform.h); valid until the next
 * call in this thread. */
const char *registry_host_platform(void);

/* Checks "os/arch[/variant]"; 0 or -1 with a message. */
int registry_check_platform(const char *platform, struct serr *err);

/* Pulls `ref` (Docker's grammar, image_parse_ref). *image gets the image's
 * description (agent/image.h) with "tags": [NAME:TAG] (none when pulled by
 * digest alone), "digests": ["NAME@sha256:<manifest or index digest>"],
 * "platform" ("os/arch[/variant]" of its config) and, when the reference
 * named an index, "platforms" (what the index offers, for the nodes of other
 * platforms);
 * *fetched the number of layers downloaded. Errors name the registry's
 * address (unreachable), the reference (404, 401), the platforms an index
 * offers, or the blob whose bytes did not match. */
int registry_pull(struct image_store *s, const struct registry_opts *o, const char *ref,
                  json_t **image, int *fetched, struct serr *err);

/* True when registry_pull failed because the index has no manifest for the
 * platform asked (the message lists those it has). */
bool registry_missing_platform(const struct serr *err);

/* Pushes `image` (a description, agent/image.h) as `ref` (NAME[:TAG]; a
 * digest is refused): each layer's blob (the stored one when it is gzip or
 * zstd, else a gzip made in o->spool_dir as it streams), then the config
 * blob the store kept, then a Docker v2 schema 2 manifest (OCI when a layer
 * is zstd) with PUT. A blob the registry has (HEAD) is not sent again; one
 * another repository of the same registry has (the image's "digests") is
 * mounted from there. *digest gets the manifest's digest, *uploaded the
 * number of blobs sent. Errors name the registry (unreachable, 401) or the
 * layer or config the store lacks. */
int registry_push(struct image_store *s, const struct registry_opts *o, const char *ref,
                  json_t *image, char digest[72], int *uploaded, struct serr *err);

/* Resolves `ref` to the digest its tag points at now (the manifest or
 * index digest; no layer is fetched): digest[72] "sha256:...". */
int registry_resolve(const struct registry_opts *o, const char *ref, char digest[72],
                     struct serr *err);

/* `shoal login`: checks the credentials in `o` against `registry`
 * ("host[:port]"; "docker.io" for Docker Hub). */
int registry_login(const struct registry_opts *o, const char *registry, struct serr *err);

/* True when `domain` ("host[:port]") may be reached over plain HTTP or
 * unverified TLS: named in `insecure` (exactly, or its host in a CIDR
 * there) or a 127.0.0.0/8 address ("localhost" too). */
bool registry_is_insecure(const char *const *insecure, const char *domain);

#endif
