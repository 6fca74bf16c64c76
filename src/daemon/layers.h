/* Image layers between nodes: a node that lacks the layers of a task's image
 * fetches them from a manager over the cluster port, checks them against
 * their diff_id and adds them to its store. No registry is involved. */
#ifndef SHOAL_DAEMON_LAYERS_H
#define SHOAL_DAEMON_LAYERS_H

#include <jansson.h>

struct shoal;

typedef void (*layers_cb)(void *arg, int status, const char *errmsg);

/* Fetches every layer of `image` (a description) missing from this node's
 * store, trying each known manager in turn. cb runs once, later. */
void layers_fetch(struct shoal *sh, json_t *image, layers_cb cb, void *arg);
/* The same from the nodes of `sources` (cluster addresses, borrowed): a
 * manager fetches the layers of an image another node built. */
void layers_fetch_from(struct shoal *sh, json_t *image, json_t *sources, layers_cb cb, void *arg);

/* On a manager: fetches the layers of one image of the store it lacks (one
 * at a time; called on every change), so that an image outlives the manager
 * it was uploaded to. */
void layers_replicate(struct shoal *sh);

/* Layer garbage collection (agent/image.h image_gc_detach). The layers kept:
 * those of the images this node knows (managers: every image of the store;
 * workers: the images of their tasks, history included), those of the agent's
 * containers and those mounted under an overlay. It runs at the first pass
 * after the daemon starts and whenever an image or a container (not a host
 * job's) goes away,
 * never while a producer holds the store: an upload from its start until its
 * images are committed (or failed), a layer fetch until its callback returned.
 * A run wanted meanwhile happens when the last hold is released, and every
 * release asks for one (a producer that failed half-way leaves layers behind). */
void layers_hold(struct shoal *sh);
void layers_release(struct shoal *sh);
/* Called on every pass (after agent_sync): runs the GC when wanted. */
void layers_gc_pass(struct shoal *sh);

#endif
