/* Compose files (cli/compose_yaml.c, cli/compose.c, cli/stack_diff.c): the
 * input is one file's YAML, parsed, merged into itself, converted into a
 * stack plan, and its first and last services diffed as a redeploy would. */
#include "cli/compose.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    setenv("FUZZ_SET", "value", 1);
    return 0;
}

static void diff_services(json_t *plan)
{
    json_t *services = json_object_get(plan, "services");
    size_t n = json_array_size(services);
    if (n == 0)
        return;
    json_t *patch;
    const char *why;
    stack_service_patch(json_array_get(services, 0), json_array_get(services, n - 1), &patch,
                        &why);
    json_decref(patch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc, *again, *plan;
    struct serr err = {0};
    if (compose_parse((const char *)data, size, "f.yml", &doc, &err) < 0)
        return 0;
    if (compose_parse((const char *)data, size, "g.yml", &again, &err) == 0) {
        compose_merge(doc, again);
        json_decref(again);
    }
    /* a work directory without files: env_file and the like fail to read */
    if (compose_convert(doc, "st", "/nonexistent-fuzz-dir", &plan, &err) == 0) {
        diff_services(plan);
        json_decref(plan);
    }
    json_decref(doc);
    return 0;
}
