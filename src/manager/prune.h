/* Which images a cleanup may remove: `image prune`, `system prune` and the
 * automatic image GC (daemon/image_gc.c). Reads the store only; removing
 * is the caller's proposal of prune_image_ops, after which each node's layer
 * GC (daemon/layers.h) deletes the layers no image or container uses. */
#ifndef SHOAL_MANAGER_PRUNE_H
#define SHOAL_MANAGER_PRUNE_H

#include <jansson.h>
#include <stdbool.h>

struct store;

/* The image ids the cluster needs, as a set (a new object whose keys are
 * ids): the image each service's spec names (tag, id or pinned digest) and
 * its previous spec (a rollback runs it again), each task's image (finished
 * ones of the history included) and each batch job's. */
json_t *prune_images_in_use(struct store *st);

/* Adds the image `ref` names (tag, id or digest) to the set, when the store
 * has it, and for NAME@DIGEST of an index every platform's image pulled from
 * it (the nodes of each platform run theirs): a local container's image (the
 * caller lists them). */
void prune_mark_ref(struct store *st, json_t *in_use, const char *ref);

/* The images a prune removes, least recently used first (the time the image
 * came into the store; the store records no later use): every image not in
 * `in_use` with `all`, else only the dangling ones (no tag). Each is the
 * stored description plus "tags" (its tags, array). New array. */
json_t *prune_image_candidates(struct store *st, json_t *in_use, bool all);

/* One group of ops removing the candidates (their tags, then them). */
json_t *prune_image_ops(json_t *candidates);

/* Sum of the candidates' "size" (bytes): the space reclaimed, counting a
 * layer shared with a kept image as reclaimed too (as docker's estimate). */
long long prune_images_size(json_t *images);

/* The automatic image GC's choice (kubelet's rule): with the filesystem of
 * the state dir `used_pct` percent full (0-100), above `high_pct` it frees
 * enough to come down to `low_pct`: the least recently used candidates
 * (prune_image_candidates order) whose sizes add up to (used - low) % of
 * `capacity` bytes, or all of them. New array (empty at or below high). */
json_t *prune_gc_choice(json_t *candidates, double used_pct, int high_pct, int low_pct,
                        long long capacity);

#endif
