/* Swarm membership of this node: init (new one-voter Raft cluster), resume
 * after a restart, leave. Keeps <state_dir>/swarm.json, the node's raft id
 * and address. */
#ifndef SHOAL_DAEMON_SWARM_H
#define SHOAL_DAEMON_SWARM_H

#include <jansson.h>

#include "base/err.h"

struct shoal;
struct http_req;

/* Starts raft again when swarm.json exists (daemon start). */
int swarm_resume(struct shoal *sh, struct serr *err);

/* POST /v1/swarm/init and /v1/swarm/leave: answer on req when done. */
void swarm_init(struct shoal *sh, struct http_req *req, json_t *body);
void swarm_leave(struct shoal *sh, struct http_req *req, int force);

/* The node object of this node (new reference) for the nodes table. */
json_t *swarm_self_node(struct shoal *sh, const char *role);

#endif
