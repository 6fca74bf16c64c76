/* This node's metrics (src/agent/metrics.h), sampled every 2 s on the loop:
 * reading /proc is cheap. A node that is not the leader sends its latest
 * sample with its session heartbeats; the leader records its own directly
 * in the dispatcher's stats. */
#ifndef SHOAL_DAEMON_NODE_METRICS_H
#define SHOAL_DAEMON_NODE_METRICS_H

#include <jansson.h>

#define NODE_METRICS_EVERY_MS 2000

struct shoal;
struct node_metrics;

/* Starts sampling; needs sh->agent and sh->rt set up. */
struct node_metrics *node_metrics_start(struct shoal *sh);
/* Stops the timer; frees once the handle is closed. NULL is fine. */
void node_metrics_stop(struct node_metrics *m);
/* The latest sample (borrowed; NULL before the first or when m is NULL). */
json_t *node_metrics_latest(struct node_metrics *m);

#endif
