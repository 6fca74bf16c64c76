/* Automatic image garbage collection, as kubelet's: when the filesystem of
 * the state dir is more than "image-gc-high-percent" full (daemon.json,
 * default 85), the leader removes from the store the images nothing needs
 * (manager/prune.h: no service, previous spec, task, job or local container),
 * least recently used first, until the estimate is down to
 * "image-gc-low-percent" (default 80); each node's layer GC then deletes the
 * layers (daemon/layers.h). Managers hold every image: the leader's disk is
 * the one measured; a worker keeps only the layers of its tasks' images. */
#ifndef SHOAL_DAEMON_IMAGE_GC_H
#define SHOAL_DAEMON_IMAGE_GC_H

#include <jansson.h>

struct shoal;

/* The images the cluster needs (manager/prune.h's prune_images_in_use), and
 * those this node's own containers run (their layers stay anyway: the layer
 * GC keeps what containers use): what neither the GC nor a prune removes. */
json_t *image_gc_images_in_use(struct shoal *sh);

/* Called on every pass: looks at the disk at most every IMAGE_GC_PERIOD_MS,
 * on the leader only, and never while an entry is in flight. */
void image_gc_pass(struct shoal *sh);

#define IMAGE_GC_PERIOD_MS 5000
/* An image younger than this is never collected (a service create may be
 * about to name it). */
#define IMAGE_GC_MIN_AGE_MS 10000

#endif
