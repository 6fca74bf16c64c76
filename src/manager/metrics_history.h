/* Node metrics kept beyond the leader's memory: every window (default
 * 5 minutes) the leader turns what each node sent during it into one row of
 * the store's ring table metrics_history, through Raft, so every manager
 * holds it and a new leader still has it. The store prunes the ring by the
 * op's own bounds (store.h, op "append"); the leader's setting of days kept
 * applies.
 *
 * A row: {"id", "at": end of the window (ms), "step": its length (ms),
 * "fields": [names], "nodes": {NODE_ID: [values in the order of fields]}}.
 * Values are integers in the unit the field's name ends with (_x10: tenths,
 * _x100: hundredths, _kib: KiB) or null (no thermal sensor): short text in
 * the Raft log and the store, about 80 bytes a node (docs/design.md). */
#ifndef SHOAL_MANAGER_METRICS_HISTORY_H
#define SHOAL_MANAGER_METRICS_HISTORY_H

#include <jansson.h>
#include <stdint.h>

#define METRICS_HISTORY_TABLE "metrics_history"
#define METRICS_HISTORY_EVERY_MS_DEFAULT (5 * 60 * 1000)
#define METRICS_HISTORY_DAYS_DEFAULT 7

/* What one node sent during a window: sums and maxima of its samples. */
struct metrics_window {
    int samples;
    double cpu_sum, cpu_max;
    double mem_sum, mem_max;
    double load_sum, load_max;
    int temp_samples;
    double temp_sum, temp_max;
    double disk_used; /* the latest; negative: none */
};

/* Adds a sample (borrowed: the fields of src/agent/metrics.h); numbers a
 * node sent out of range or missing count as no value. */
void metrics_window_add(struct metrics_window *w, json_t *sample);
/* The window's values in the order of metrics_history_fields() (new), or
 * NULL when it holds no sample. */
json_t *metrics_window_values(const struct metrics_window *w);
/* The names of a row's values (new array). */
json_t *metrics_history_fields(void);

/* The op appending a row of `nodes` ({NODE_ID: values}, stolen) for the
 * window of `step` ms ending at `at`, keeping `keep_ms` of history (at most
 * keep_ms / step + 1 rows). */
json_t *metrics_history_op(json_t *nodes, int64_t at, int64_t step, int64_t keep_ms);

/* Rows from store_ring_member ({"at","step","fields","values"}, borrowed)
 * as points {"at","step", NAME: value in the API's units (percent, bytes,
 * degrees)...}, oldest first (new array). With `step` above the rows'
 * own, rows are merged into buckets of `step` ms: the mean of averages,
 * the max of "_max" fields, "at" the last row's. */
json_t *metrics_history_points(json_t *rows, int64_t step);

#endif
