/* The leader's memory of node metrics: per node the latest sample (as the
 * node sent it) and an hour of history, one point every 10 s kept in a ring
 * buffer. In memory only: a new leader starts empty. A node that goes down
 * keeps its history (its latest sample then shows when it was taken).
 * Each node's samples also add up in a window that the leader takes every
 * few minutes into the stored history (manager/metrics_history.h). */
#ifndef SHOAL_MANAGER_STATS_H
#define SHOAL_MANAGER_STATS_H

#include <jansson.h>
#include <stdint.h>

#define STATS_POINT_EVERY_MS 10000
#define STATS_HISTORY_POINTS 360 /* one hour */

struct stats;

struct stats *stats_new(void);
void stats_free(struct stats *st);

/* Records a node's sample (borrowed; a copy is kept). `mono_now` (ms)
 * decides whether it also becomes a history point. The same sample sent
 * again (same "at": heartbeats outpace sampling) is ignored. */
void stats_record(struct stats *st, const char *node_id, json_t *sample, int64_t mono_now);

/* The node's latest sample (borrowed) or NULL. */
json_t *stats_latest(struct stats *st, const char *node_id);
/* Its history, oldest first: [{"at","cpu_percent","mem_used","temp_c","load1"}] (new). */
json_t *stats_history(struct stats *st, const char *node_id);

/* Every node's window since the last call, {NODE_ID: values} (new; nodes
 * without a sample meanwhile are left out), and starts new windows. */
json_t *stats_take_windows(struct stats *st);

#endif
