/* Reconciliation on the leader: compares services (desired state) with their
 * tasks and proposes, in one Raft entry, the tasks to create, assign, shut
 * down or forget. Runs after every applied entry and when a deadline (restart
 * delay, update delay) passes; never while a proposal is in flight, so each
 * pass sees the effects of the previous one. */
#ifndef SHOAL_MANAGER_ORCHESTRATOR_H
#define SHOAL_MANAGER_ORCHESTRATOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct store;

/* Computes the ops of one pass. Returns a new JSON array of ops (possibly
 * empty). *wake_at_ms gets the earliest future time a pass should run again
 * (0 = none). `now` is wall-clock ms, chosen by the leader. */
json_t *orchestrator_pass(struct store *st, int64_t now, int64_t *wake_at_ms);

/* The tasks a pass reads, kept by the leader from one pass to the next: a
 * pass reads from the store only the tasks changed since the last
 * (store_take_changed_tasks), not every task; all of them again when the
 * store does not know what changed (first pass, restored snapshot, a change
 * of the jobs). Free it when no longer leader (store_forget_changed_tasks). */
struct orch_tasks;
struct orch_tasks *orch_tasks_new(void);
void orch_tasks_free(struct orch_tasks *kept);
/* orchestrator_pass over the kept tasks, brought up to date first. */
json_t *orchestrator_pass_kept(struct orch_tasks *kept, struct store *st, int64_t now,
                               int64_t *wake_at_ms);

/* Tasks kept per slot, for `service ps` history (the cluster setting
 * "task_history_limit" of meta "cluster", set by `swarm update
 * --task-history-limit`). Live tasks count but are never removed; dead ones
 * beyond the limit are, oldest first (the agents then remove their
 * containers). Negative: keep every task. Swarm's default is 5. */
#define TASK_HISTORY_DEFAULT 5
json_int_t orchestrator_history_limit(struct store *st);

/* A finished task its restart policy does not run again (restart condition
 * none, or on-failure after a success), of the service's current template:
 * its slot is done, no task replaces it. Its desired state is shutdown. */
bool task_finished_for_good(json_t *svc, json_t *task);

/* What the tasks of a service (all of them, any order) say about it. */
struct service_counts {
    int running;   /* desired running, state running */
    int completed; /* slots done: their task completed */
    int failed;    /* slots done: their task failed, was rejected or lost */
    const char *pending_reason; /* why a task waits to be placed, or NULL (borrowed) */
    const char *failed_reason;  /* error of a failed done slot, or NULL (borrowed) */
};
void service_count_tasks(json_t *svc, json_t *tasks, struct service_counts *out);

#endif
