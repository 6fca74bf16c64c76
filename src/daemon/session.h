/* A node's session with the leader (every node of a swarm but the leader):
 * heartbeats that carry this node's task reports and bring back its assigned
 * tasks (workers run those), the images they need, and the manager list. */
#ifndef SHOAL_DAEMON_SESSION_H
#define SHOAL_DAEMON_SESSION_H

#include <jansson.h>

struct shoal;
struct session;
struct serr;

/* `managers`: array of "IP:PORT" to try first (borrowed). */
struct session *session_start(struct shoal *sh, json_t *managers);
void session_stop(struct session *s);

/* Queues a report (`fields` stolen) for the next heartbeat. */
void session_report(struct session *s, const char *task_id, json_t *fields);

/* The tasks the leader last assigned to this node (new reference), or NULL
 * before the first answer: the agent must not act on an empty list it has
 * not been given. */
json_t *session_tasks(struct session *s);
/* The data (base64, new string) of a secret or config of this node's tasks,
 * as the leader sent it (kept in memory only). */
char *session_secret(struct session *s, const char *id, struct serr *err);
json_t *session_image(struct session *s, const char *image_id);
/* The manager addresses last known (borrowed). */
json_t *session_managers(struct session *s);
/* The nodes' addresses and subnets of the last answer (new reference), NULL before one. */
/* The mesh of the last heartbeat answer (new reference), or NULL. */
json_t *session_mesh(struct session *s);
json_t *session_nodes(struct session *s);
/* The cluster's overlay mode of the last answer (owned by the session), NULL before one. */
const char *session_overlay(struct session *s);

#endif
