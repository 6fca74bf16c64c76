/* Reconciliation on the leader: compares services (desired state) with their
 * tasks and proposes, in one Raft entry, the tasks to create, assign, shut
 * down or forget. Runs after every applied entry and when a deadline (restart
 * delay, update delay) passes; never while a proposal is in flight, so each
 * pass sees the effects of the previous one. */
#ifndef SHOAL_MANAGER_ORCHESTRATOR_H
#define SHOAL_MANAGER_ORCHESTRATOR_H

#include <jansson.h>
#include <stdint.h>

struct store;

/* Computes the ops of one pass. Returns a new JSON array of ops (possibly
 * empty). *wake_at_ms gets the earliest future time a pass should run again
 * (0 = none). `now` is wall-clock ms, chosen by the leader. */
json_t *orchestrator_pass(struct store *st, int64_t now, int64_t *wake_at_ms);

/* Live = desired running and not finished; counted as "running" in listings
 * when its state is running. */
int service_running_count(json_t *tasks);

#endif
