/* The CLI's spec parsers (cli/cli_service_spec.c and the swarm/node command
 * lines): -p/--publish, --mount, -e, and whole command lines. The first byte
 * picks the parser; the rest is one argument, or NUL-separated argv. */
#include "cli/cli.h"
#include "fuzz.h"

#define MAX_ARGS 24

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void one_argument(int kind, const char *text)
{
    struct serr err = {0};
    json_t *obj = NULL;
    char *env = NULL;
    switch (kind) {
    case 0:
        if (cli_parse_publish(text, &obj, &err) == 0)
            json_decref(obj);
        break;
    case 1:
        if (cli_parse_mount(text, &obj, &err) == 0)
            json_decref(obj);
        break;
    case 2:
        if (cli_parse_env(text, &env, &err) == 0)
            free(env);
        break;
    default:
        obj = json_object();
        cli_set_network(obj, text, &err);
        json_decref(obj);
        free(cli_addr_with_port(text));
        break;
    }
}

static void command_line(int kind, char *text, size_t size)
{
    static const char *const names[] = {"create", "update", "run", "init", "join", "update"};
    char *argv[MAX_ARGS + 2];
    argv[0] = (char *)names[kind];
    int argc = 1 + fuzz_split(text, size, argv + 1, MAX_ARGS);
    argv[argc] = NULL;
    struct serr err = {0};
    json_t *obj = NULL;
    const char *name = NULL;
    bool detach = false;
    int rc = -1;
    switch (kind) {
    case 0: rc = cli_build_service_spec(argc, argv, &obj, &detach, &err); break;
    case 1: rc = cli_build_service_patch(argc, argv, &obj, &name, &detach, &err); break;
    case 2: rc = cli_build_run_request(argc, argv, &obj, &err); break;
    case 3: rc = cli_build_swarm_init(argc, argv, &obj, &err); break;
    case 4: rc = cli_build_swarm_join(argc, argv, &obj, &err); break;
    default: rc = cli_build_node_update(argc, argv, &obj, &name, &err); break;
    }
    fuzz_result(names[kind], rc, &err);
    if (rc == 0)
        json_decref(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int kind = data[0] % 10;
    char *text = fuzz_string(data + 1, size - 1);
    if (kind < 4)
        one_argument(kind, text);
    else
        command_line(kind - 4, text, size - 1);
    free(text);
    return 0;
}
