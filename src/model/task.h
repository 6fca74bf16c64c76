/* Task states as both sides see them: managers write a task's desired state,
 * agents report its observed state (docs/design.md, Tasks). Pure. */
#ifndef SHOAL_MODEL_TASK_H
#define SHOAL_MODEL_TASK_H

#include <stdbool.h>

/* Task states that are final: complete, failed, rejected, shutdown, orphaned.
 * NULL is not final. */
bool task_state_terminal(const char *state);
/* The same states, NULL terminated. */
extern const char *const task_final_states[];

#endif
