/* Tasks as both sides see them: managers write a task's desired state,
 * agents report its observed state (docs/design.md, Tasks).
 *
 * A task is a store record (JSON object, table "tasks"); the accessors below
 * name the fields the core reads (model/record.h: NULL-safe, borrowed). */
#ifndef SHOAL_MODEL_TASK_H
#define SHOAL_MODEL_TASK_H

#include <stdbool.h>

#include "model/record.h"

/* Task states that are final: complete, failed, rejected, shutdown, orphaned.
 * NULL is not final. */
bool task_state_terminal(const char *state);
/* The same states, NULL terminated. */
extern const char *const task_final_states[];

RECORD_STR(task_id, "id")
RECORD_STR(task_name, "name")
RECORD_STR(task_service_id, "service_id")
RECORD_STR(task_node_id, "node_id")
RECORD_STR(task_job_id, "job_id")
/* task_placed_on(t, id): on node `id`; task_of_service(t, id): made for service `id`. */
RECORD_STR_IS(task_placed_on, "node_id")
RECORD_STR_IS(task_of_service, "service_id")
/* The observed state (what the agent reported) and the desired one. */
RECORD_STR(task_state, "state")
RECORD_STR(task_desired_state, "desired_state")
RECORD_STR_IS(task_state_is, "state")
RECORD_STR_IS(task_desired_is, "desired_state")
/* Why the task is pending, failed or rejected; the agent's last message. */
RECORD_STR(task_error, "error")
RECORD_STR(task_message, "message")
/* Times in milliseconds since the epoch. */
RECORD_INT(task_created_at, "created_at")
RECORD_INT(task_state_at, "state_at")
/* The service version and the job run the task was made for. */
RECORD_INT(task_spec_version, "spec_version")
RECORD_INT(task_run, "run")
/* The restart policy's count and the start of its window (manager/orchestrator.c). */
RECORD_INT(task_restart_attempts, "restart_attempts")
RECORD_INT(task_restart_window_start, "restart_window_start")
/* The slot: an integer (replicated) or a node id (global). */
RECORD_JSON(task_slot, "slot")
/* The container the agent runs (its spec, image, image_id). */
RECORD_JSON(task_container, "container")

/* True when the task's observed state is final (task_state_terminal). */
static inline bool task_finished(json_t *t)
{
    return task_state_terminal(task_state(t));
}

#endif
