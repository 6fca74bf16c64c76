/* The leader's side of agent sessions: every node that is not the leader
 * sends a heartbeat (with its task reports) about twice a second; the leader
 * applies the reports, answers with the node's assigned tasks, and marks a
 * node down when its heartbeats stop (its tasks are then orphaned and the
 * orchestrator starts them elsewhere). */
#ifndef SHOAL_MANAGER_DISPATCHER_H
#define SHOAL_MANAGER_DISPATCHER_H

#include <jansson.h>

struct shoal;
struct http_req;
struct dispatcher;
struct stats;

/* A node is down after this long without a heartbeat. */
#define NODE_DOWN_MS 3000
/* Agents send heartbeats this often. */
#define HEARTBEAT_MS 500

struct dispatcher *dispatcher_start(struct shoal *sh);
void dispatcher_stop(struct dispatcher *d);

/* POST /v1/cluster/session from a node (mTLS identity in req->peer_id). */
void dispatcher_session(struct dispatcher *d, struct http_req *req);

/* The mesh (manager/netmodel.h) of the store's current version, cached
 * (borrowed: valid until the store changes). */
json_t *dispatcher_mesh(struct dispatcher *d);

/* Node metrics the leader received (and its own, recorded by the daemon). */
struct stats *dispatcher_stats(struct dispatcher *d);

#endif
