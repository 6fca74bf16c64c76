/* The leader's periodic work that proposes (daemon/alerting.c's alerts,
 * daemon/metrics_keeper.c's history): a repeating timer whose tick is told
 * whether this node leads, one proposal in flight at a time, and an owner
 * handed back (closed_cb) only once the timer's handle is closed and its
 * last proposal answered: a proposal's callback may come after the stop
 * (cluster_stop fails the proposals still queued). */
#ifndef SHOAL_DAEMON_LEADER_TIMER_H
#define SHOAL_DAEMON_LEADER_TIMER_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

struct shoal;
struct leader_timer;

/* `leader`: this node leads a swarm and its dispatcher runs, not stopping. */
typedef void (*leader_tick_cb)(struct leader_timer *t, bool leader);
/* The timer is done with `t`: its owner may be freed. */
typedef void (*leader_closed_cb)(struct leader_timer *t);

struct leader_timer {
    void *data; /* the owner's */
    struct shoal *sh;
    uv_timer_t timer;
    leader_tick_cb tick;
    leader_closed_cb closed_cb;
    const char *failed; /* a literal: the log's words for a proposal that failed */
    bool proposing;     /* the last proposal is not answered yet */
    bool closed;        /* the handle is closed: closed_cb once not proposing */
};

/* Starts `t` (the caller's; it lives until closed_cb) ticking every
 * `every_ms`, the first tick after one period. */
void leader_timer_start(struct leader_timer *t, struct shoal *sh, uint64_t every_ms,
                        const char *failed, leader_tick_cb tick, leader_closed_cb closed_cb);
/* Proposes `group` (stolen); t->proposing until it is answered (a failure
 * is logged after t->failed). */
void leader_timer_propose(struct leader_timer *t, json_t *group);
/* Stops the ticks; closed_cb follows once the handle is closed and no
 * proposal is in flight. */
void leader_timer_stop(struct leader_timer *t);

#endif
