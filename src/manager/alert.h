/* Alert rules and their evaluation, and the heat flag of nodes (issue #16).
 *
 * A rule (store table "alert_rules") watches a node metric above a threshold
 * for a duration, or an event: a node down, a task restarting in a loop, a
 * volume's scheduled backup failing (from the "backup_failures" of the
 * holding node's samples, agent/volumes.h: open until a backup succeeds).
 * Alerts (table "alerts") are open while their condition holds and resolved
 * after. The leader evaluates rules every few seconds (daemon/alerting.c);
 * everything here is pure: JSON and a time in, JSON out, so unit tests drive
 * it with tables of samples.
 *
 * Rule record: {"id","name","created_at","node":"all"|hostname|id,
 *   "notify":[{"type":"webhook"|"email","to":URL|ADDR}],
 *   "metric":"cpu"|"memory"|"disk"|"load"|"temperature","above":X,"for_ms":Y
 *   | "event":"node-down"|"task-flapping" ("restarts":N,"window_ms":W)
 *   |"backup-failing"}.
 * Alert record: {"id","key","rule_id","rule","node_id","hostname","subject",
 *   "value","threshold","state":"open"|"resolved","since","resolved_at",
 *   "message"}; times are Unix ms. */
#ifndef SHOAL_MANAGER_ALERT_H
#define SHOAL_MANAGER_ALERT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

/* Past (resolved) alerts kept in the store: the oldest go first. */
#define ALERT_HISTORY_MAX 200
#define ALERT_NAME_MAX 64

/* A rule from an API body {"name","metric","above","for","event","restarts",
 * "window","node","notify":["webhook=URL"|"email=ADDR"]} (new record with
 * `id` and `now` as created_at), or NULL with err (SERR_INVALID). */
json_t *alert_rule_new(json_t *body, const char *id, int64_t now, struct serr *err);

/* What the evaluator reads; every field borrowed. */
struct alert_inputs {
    json_t *rules;   /* rule records */
    json_t *nodes;   /* node records of the store */
    json_t *samples; /* {node_id: latest metrics sample} (agent/metrics.h) */
    json_t *tasks;   /* task records */
    json_t *open;    /* alert records with state "open" */
    int64_t now;     /* Unix ms */
};

/* Evaluates the rules once. `pending` ({key: since ms}, owned by the caller,
 * kept between calls) remembers since when a condition holds that must hold
 * "for" a while; it is updated. Returns the changes (new array):
 * [{"action":"fire","alert":{... "state":"open"}},
 *  {"action":"resolve","alert":{... "state":"resolved","resolved_at"}}].
 * An open alert whose rule is gone resolves. */
json_t *alert_evaluate(const struct alert_inputs *in, json_t *pending);

/* Heat: a ready node at or above `threshold` °C becomes hot (no new tasks);
 * a hot node cools when below threshold - hysteresis, or when it has no
 * reading. threshold <= 0: heat is off and every hot node cools. Returns
 * [{"id", "hot": bool, "temp_c"}] for the nodes whose "hot" must change
 * (new array). */
json_t *heat_changes(json_t *nodes, json_t *samples, double threshold, double hysteresis);

#endif
