/* Image layers between nodes: a node that lacks the layers of a task's image
 * fetches them from a manager over the cluster port, checks them against
 * their diff_id and adds them to its store. No registry is involved. */
#ifndef SHOAL_DAEMON_LAYERS_H
#define SHOAL_DAEMON_LAYERS_H

#include <jansson.h>

struct shoal;
struct http_req;

typedef void (*layers_cb)(void *arg, int status, const char *errmsg);

/* Fetches every layer of `image` (a description) missing from this node's
 * store, trying each known manager in turn. cb runs once, later. */
void layers_fetch(struct shoal *sh, json_t *image, layers_cb cb, void *arg);

/* On a manager: fetches the layers of one image of the store it lacks (one
 * at a time; called on every change), so that an image outlives the manager
 * it was uploaded to. */
void layers_replicate(struct shoal *sh);

/* GET /v1/layers/{diff_id}: the layer as stored. */
void layers_serve(struct shoal *sh, struct http_req *req, const char *diff_id);

#endif
