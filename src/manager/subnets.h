/* The leader gives each node a /24 of the cluster's address pool (store
 * meta "cluster" field "default_addr_pool", NET_DEFAULT_POOL when absent),
 * recorded as the node record's "subnet". */
#ifndef SHOAL_MANAGER_SUBNETS_H
#define SHOAL_MANAGER_SUBNETS_H

#include <jansson.h>

#include "base/err.h"

/* The pool of the cluster meta record (a borrowed string). */
const char *subnets_pool(json_t *cluster_meta);

/* The merge op that gives the first node lacking a subnet the lowest free
 * /24 of the pool, or NULL when every node has one (or on error: err set).
 * Pure: the leader proposes one at a time, so two nodes never get the same
 * /24 through racing proposals. */
json_t *subnets_next_op(json_t *nodes, const char *pool, struct serr *err);

#endif
