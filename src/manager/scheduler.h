/* Placement of tasks on nodes: constraint filter, then a spread score.
 * Pure functions over JSON objects of the store (nodes, tasks): no I/O. */
#ifndef SHOAL_MANAGER_SCHEDULER_H
#define SHOAL_MANAGER_SCHEDULER_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

/* Checks a constraint expression: node.role, node.hostname, node.id,
 * node.platform.arch, node.platform.os, node.labels.KEY or engine.labels.KEY
 * (the node's daemon.json "labels", as it joined), then == or !=, then a
 * non-empty value. node.platform.arch takes Docker's and the kernel's names
 * alike (x86_64 or amd64, aarch64 or arm64, armv7l or arm); os and arch
 * compare without case. */
int constraint_validate(const char *expr, struct serr *err);
/* True when `node` satisfies `expr` (an invalid expression never matches). */
bool constraint_match(const char *expr, json_t *node);

/* Node can take new tasks: status ready, availability active, not hot, all
 * constraints. */
bool node_eligible(json_t *node, json_t *constraints /* array of strings or NULL */);

/* Nodes a placement turned down, counted at the first filter stage each fails. */
struct sched_rejects {
    int unavailable; /* not ready, or availability drain/pause */
    int hot;         /* available, but flagged "hot" (node too hot, manager/alert.h) */
    int constraints; /* available and cool, but a constraint does not match */
    int max_per_node; /* it runs max_replicas_per_node tasks of the service already */
    int resources;    /* fewer free cores than the task reserves (--reserve-cpu) */
    int memory;       /* less free memory than the task reserves (--reserve-memory) */
};
/* Swarm's wording: "no suitable node (1 node not available for new tasks;
 * scheduling constraints not satisfied on 4 nodes)". */
void scheduler_explain(const struct sched_rejects *r, char *buf, size_t size);

/* Picks the node for a new task of `service_id`: among eligible nodes, the one
 * with the fewest live tasks of that service, then the fewest live tasks.
 * `tasks` is every task (live = desired running and not finished). Returns a
 * borrowed node from `nodes`, or NULL with err saying why none fits
 * (scheduler_explain's message: the same inputs give the same text). */
json_t *scheduler_pick(json_t *nodes, json_t *tasks, const char *service_id,
                       json_t *constraints, struct serr *err);

/* What a service spec says about placement (borrowed JSON). */
struct placement {
    json_t *constraints;   /* array of expressions, or NULL */
    json_t *preferences;   /* [{"spread": "node.labels.KEY"}], or NULL */
    int max_per_node;      /* 0: no maximum */
    double reserve_cpus;   /* cores the task reserves (--reserve-cpu); 0: none */
    json_int_t reserve_memory; /* bytes the task reserves (--reserve-memory); 0: none */
    json_t *job_cores;     /* {node id: cores held by active batch jobs}, or NULL */
};

/* A node's cores: its resources.cpus (at least 1). */
int node_cpus(json_t *node);

/* Cores that live tasks reserve on each node (their "reserved_cpus", from
 * the service's --reserve-cpu), in one sweep: {node id: cores} (new
 * reference; nodes where none is reserved are absent). */
json_t *scheduler_reserved_by_node(json_t *tasks);

/* Checks "node.labels.KEY" (what spread preferences name). */
int placement_spread_validate(const char *descriptor, struct serr *err);

/* scheduler_pick with Swarm's other placement rules: nodes already running
 * max_per_node live tasks of the service are filtered out (after the
 * constraints), then, for a task reserving cores, nodes whose cores less the
 * other tasks' reservations and the batch jobs' cores are fewer, and for
 * one reserving memory, nodes whose memory less the other tasks'
 * reservations is less; then, preference by preference, the nodes whose
 * value of the label has the fewest live tasks of the service win (nodes
 * without the label share the empty value), before the spread of
 * scheduler_pick. */
json_t *scheduler_pick_placement(json_t *nodes, json_t *tasks, const char *service_id,
                                 const struct placement *pl, struct serr *err);

/* The live tasks' load of every node (what the picks count), built once
 * from all tasks and kept current by the caller: a pick then costs a
 * lookup per node, not a pass over the tasks (many placements in one
 * orchestrator pass). */
struct sched_load;
struct sched_load *sched_load_new(json_t *tasks);
/* A task starts (+1) or stops (-1) counting as it is now: called with -1
 * before a change of the task, with +1 after (and +1 for a new task). */
void sched_load_count(struct sched_load *l, json_t *task, int sign);
void sched_load_free(struct sched_load *l);
/* scheduler_pick_placement over a load kept by the caller. The same
 * `nodes` array passed again is taken as unchanged: its nodes' ids and
 * readiness are read once (a pass's node list). */
json_t *scheduler_pick_loaded(json_t *nodes, struct sched_load *load, const char *service_id,
                              const struct placement *pl, struct serr *err);

#endif
