/* Task states (task.h). */
#include "model/task.h"

#include <string.h>

bool task_state_terminal(const char *state)
{
    static const char *const finals[] = {"complete", "failed", "rejected", "shutdown",
                                         "orphaned", NULL};
    for (int i = 0; state && finals[i]; i++)
        if (strcmp(state, finals[i]) == 0)
            return true;
    return false;
}
