/* The leader's side of agent sessions: every node that is not the leader
 * sends a heartbeat (with its task reports) about twice a second; the leader
 * applies the reports, answers with the node's assigned tasks, and marks a
 * node down when its heartbeats stop (its tasks are then orphaned and the
 * orchestrator starts them elsewhere).
 *
 * JSON in, JSON out: the HTTP route (api/routes.c POST /v1/cluster/session)
 * parses the heartbeat and answers; what the dispatcher needs of the daemon
 * is handed to it at creation (struct dispatcher_host). */
#ifndef SHOAL_MANAGER_DISPATCHER_H
#define SHOAL_MANAGER_DISPATCHER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/err.h"

struct cluster;
struct dispatcher;
struct stats;
struct store;

/* A node is down after this long without a heartbeat (at HEARTBEAT_MS; at a
 * longer interval, after as many intervals: NODE_DOWN_MS / HEARTBEAT_MS). */
#define NODE_DOWN_MS 3000
/* Agents send heartbeats this often in a cluster of up to
 * HEARTBEATS_PER_S * HEARTBEAT_MS / 1000 nodes; beyond, the leader asks for a
 * longer interval (`heartbeat_ms` in its answers) so that it receives about
 * HEARTBEATS_PER_S heartbeats a second whatever the size (as Nomad does). */
#define HEARTBEAT_MS 500
#define HEARTBEATS_PER_S 200
/* An agent takes no longer interval than this, whatever it is asked. */
#define HEARTBEAT_MAX_MS 60000

/* The heartbeat interval the leader asks of the nodes of a cluster of
 * `nodes` nodes, in ms (pure). */
int64_t dispatcher_heartbeat_ms(size_t nodes);

/* How long a node waits for the answer to a heartbeat sent at interval_ms
 * before it tries another manager: one interval less than the leader waits
 * before it declares the node down, so that the next manager hears from it
 * in time, however long the interval the cluster's size asks for (pure). */
int64_t dispatcher_answer_wait_ms(int64_t interval_ms);

/* What the dispatcher uses of the node it runs on. Copied at creation; the
 * pointers (loop, node_id, data) must outlive the dispatcher. Every callback
 * receives `data` first. */
struct dispatcher_host {
    void *data;
    uv_loop_t *loop;
    const char *node_id; /* this node's id: it sends no heartbeat, it is ready */
    /* The store and the cluster now (borrowed): a forced new cluster
     * replaces both under a running dispatcher. The cluster may be NULL. */
    struct store *(*store)(void *data);
    struct cluster *(*cluster)(void *data);
    /* The cluster addresses of every manager node (new reference). Both
     * read the nodes table alone: made again when it changed. */
    json_t *(*manager_addrs)(void *data);
    /* [{"id","addr","subnet"}] of every node with a subnet (new reference). */
    json_t *(*node_addrs)(void *data);
    /* This node's advertised cluster address (borrowed), or NULL. */
    const char *(*leader_addr)(void *data);
    /* The overlay mode, a static string (NET_OVERLAY_DIRECT or _VXLAN). */
    const char *(*overlay)(void *data);
    /* Signs a node's CSR for `role`: 0 and *cert (PEM, caller frees), or
     * -1 with err set. */
    int (*sign_csr)(void *data, const char *csr, const char *node_id, const char *role,
                    char **cert, struct serr *err);
    /* Adds the managers' secrets data key to the answer of a promoted node. */
    void (*secrets_key_offer)(void *data, json_t *reply);
    /* Adds "secret_data" for the secrets `tasks` use and `have` lacks. */
    void (*secrets_for_node)(void *data, json_t *tasks, json_t *have, json_t *reply);
};

/* Starts the node-down timer; stop with dispatcher_stop (freed after the
 * timer closes). */
struct dispatcher *dispatcher_start(const struct dispatcher_host *host);
void dispatcher_stop(struct dispatcher *d);

/* One heartbeat of node `node_id` (its mTLS identity), the caller having
 * checked that this node leads: {"reports", "metrics", "mesh_tag", "csr",
 * "secret_ids"} (borrowed). Applies the reports, records the metrics and
 * returns the answer as compact JSON text (a new string: free it: tasks, images,
 * managers, leader, role, overlay, heartbeat_ms, and mesh with nodes, cert,
 * secret_data when due), or NULL with err (SERR_NOT_FOUND: the node is not in
 * the store). The mesh and the node list, when sent, are dumped once per
 * change of them for every node's answer, not once per answer. */
char *dispatcher_heartbeat_text(struct dispatcher *d, const char *node_id, json_t *heartbeat,
                                struct serr *err);

/* The mesh (manager/netmodel.h) of the store's current version, cached
 * (borrowed: valid until the store changes). */
json_t *dispatcher_mesh(struct dispatcher *d);

/* Node metrics the leader received (and its own, recorded by the daemon). */
struct stats *dispatcher_stats(struct dispatcher *d);

/* The fields of a node's task report that are applied (new object; `fields`
 * is only read): observed state only, agents never write desired state. */
json_t *dispatcher_report_fields(json_t *fields);

#endif
