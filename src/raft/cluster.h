/* Glue to the C raft library (canonical/raft 0.15; cowsql/raft has the same
 * API): libuv I/O and TCP transport, the store as the FSM, and a proposer that
 * batches groups of ops into few entries.
 *
 * Only this directory includes <raft.h>: a switch of library stays cheap. */
#ifndef SHOAL_RAFT_CLUSTER_H
#define SHOAL_RAFT_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/err.h"
#include "store/store.h"

struct cluster;

struct cluster_config {
    const char *dir;  /* raft log and snapshots */
    uint64_t raft_id; /* this server's raft id, never 0 */
    const char *addr; /* "IP:PORT" this server listens on and is known by */
    bool bootstrap;   /* first start of a new cluster: a one-voter configuration */
    bool force_new;   /* keep the log but make this server the only voter
                         (recovery of a lone surviving manager) */
    /* Transport to use (NULL: plain TCP from the raft library). Not owned. */
    struct raft_uv_transport *transport;
};

/* Called on the loop after each applied entry or restored snapshot. */
typedef void (*cluster_change_cb)(void *arg);

/* Status 0 = the group was committed and applied; otherwise -1 with err. */
typedef void (*cluster_propose_cb)(void *arg, int status, const struct serr *err);

int cluster_start(uv_loop_t *loop, struct store *store, const struct cluster_config *cfg,
                  cluster_change_cb on_change, void *change_arg, struct cluster **out,
                  struct serr *err);

/* Queues a group of ops (a JSON array, stolen) to be applied atomically.
 * Groups queued while an entry is in flight go together in the next entry.
 * `cb` (may be NULL) is always called later, never from within this call. */
void cluster_propose(struct cluster *c, json_t *group, cluster_propose_cb cb, void *arg);

bool cluster_is_leader(struct cluster *c);

/* Membership (leader only). `cb` runs once with 0 or -1 + err. */
typedef void (*cluster_change_cb_fn)(void *arg, int status, const struct serr *err);
/* Adds a server as a voter (raft_add, then raft_assign once caught up). */
void cluster_add_voter(struct cluster *c, uint64_t id, const char *addr, cluster_change_cb_fn cb,
                       void *arg);
void cluster_remove(struct cluster *c, uint64_t id, cluster_change_cb_fn cb, void *arg);
/* The leader's raft address ("" when unknown). */
const char *cluster_leader_addr(struct cluster *c);
/* True when `id` is a voter of the current configuration. */
bool cluster_has_voter(struct cluster *c, uint64_t id);
/* True while proposals are queued or in flight (the orchestrator waits). */
bool cluster_busy(struct cluster *c);
const char *cluster_addr(struct cluster *c);
/* The index of the last entry applied to the store. */
uint64_t cluster_last_applied(struct cluster *c);

/* Stops raft; `done` runs once every handle is closed and `c` is freed.
 * Pending proposals fail with SERR_UNAVAILABLE. */
void cluster_stop(struct cluster *c, void (*done)(void *arg), void *arg);

#endif
