/* Placement constraints (manager/scheduler.c): each NUL-separated piece of the
 * input is an expression, validated, matched against a node, and all of them
 * together given to the scheduler as a service's constraints. */
#include "fuzz.h"
#include "manager/scheduler.h"

#define MAX_EXPRS 8

static json_t *nodes;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    nodes = json_pack("[{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}, {s:s, s:s, s:s, s:s, s:s}]",
                      "id", "n1", "hostname", "alpha", "role", "manager", "status", "ready",
                      "availability", "active", "labels", "zone", "east", "disk", "ssd", "id",
                      "n2", "hostname", "beta", "role", "worker", "status", "ready",
                      "availability", "active");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_string(data, size);
    char *exprs[MAX_EXPRS];
    int n = fuzz_split(text, size, exprs, MAX_EXPRS);
    json_t *constraints = json_array();
    for (int i = 0; i < n; i++) {
        struct serr err = {0};
        constraint_validate(exprs[i], &err);
        constraint_match(exprs[i], json_array_get(nodes, 0));
        json_array_append_new(constraints, json_string(exprs[i]));
    }
    json_t *tasks = json_array();
    struct serr err = {0};
    scheduler_pick(nodes, tasks, "svc", constraints, &err);
    node_eligible(json_array_get(nodes, 1), constraints);
    json_decref(tasks);
    json_decref(constraints);
    free(text);
    return 0;
}
