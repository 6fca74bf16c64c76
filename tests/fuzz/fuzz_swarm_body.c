/* The bodies of POST /v1/swarm/init and /v1/swarm/join (daemon/swarm.c):
 * the fields each handler reads, through the same checks, without starting a
 * cluster or connecting anywhere. */
#include "fuzz.h"

/* parse_addr(), check_pool() and check_overlay() are static. */
#include "daemon/swarm.c"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void init_body(json_t *body)
{
    struct serr err = {0};
    char addr[96], pool[32];
    const char *overlay;
    const char *want = json_string_value(json_object_get(body, "advertise_addr"));
    parse_addr(want && *want ? want : "127.0.0.1", addr, sizeof(addr), &err);
    check_pool(json_object_get(body, "default_addr_pool"), pool, sizeof(pool), &err);
    check_overlay(json_object_get(body, "overlay"), &overlay, &err);
}

static void join_body(json_t *body)
{
    struct join_ctx j = {0};
    struct serr err = {0};
    const char *token = json_string_value(json_object_get(body, "token"));
    const char *remote = json_string_value(json_object_get(body, "remote_addr"));
    const char *addr = json_string_value(json_object_get(body, "advertise_addr"));
    if (token)
        token_parse(token, j.digest, j.secret, sizeof(j.secret), &err);
    if (remote)
        parse_addr(remote, j.remote, sizeof(j.remote), &err);
    parse_addr(addr && *addr ? addr : "127.0.0.1", j.addr, sizeof(j.addr), &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, 0, NULL);
    if (body == NULL)
        return 0;
    init_body(body);
    join_body(body);
    json_decref(body);
    return 0;
}
