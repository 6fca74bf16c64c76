/* Task states (task.h). */
#include "model/task.h"

#include <string.h>

const char *const task_final_states[] = {"complete", "failed",   "rejected",
                                         "shutdown", "orphaned", NULL};

bool task_state_terminal(const char *state)
{
    for (int i = 0; state && task_final_states[i]; i++)
        if (strcmp(state, task_final_states[i]) == 0)
            return true;
    return false;
}
