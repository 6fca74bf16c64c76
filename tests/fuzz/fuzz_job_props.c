/* Property filters of batch jobs (model/job_props.c, `job sub -p`): the input
 * is one expression, checked, then matched against two nodes; a filter that
 * checks must evaluate on both, one that does not must match neither. */
#include "fuzz.h"
#include "model/job_props.h"

static json_t *nodes;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    nodes = json_pack("[{s:s, s:{s:s, s:s}}, {s:s, s:{}}]", "hostname", "alpha", "labels", "gpu",
                      "yes", "mem", "64", "hostname", "beta", "labels");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_string(data, size);
    struct serr err = {0};
    bool valid = job_props_check(text, &err) == 0;
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        bool match = job_props_match(text, json_array_get(nodes, i));
        if (!valid && match)
            abort();
    }
    if (!valid && strstr(err.msg, "invalid property filter") == NULL)
        abort();
    free(text);
    return 0;
}
