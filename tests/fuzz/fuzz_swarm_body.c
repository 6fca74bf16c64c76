/* The bodies of POST /v1/swarm/init and /v1/swarm/join (daemon/swarm_init.c,
 * daemon/swarm_join.c): the fields each handler reads, through the same
 * checks, without starting a cluster or connecting anywhere. With daemon/addr.c (the listen and
 * advertise address rules), the addresses go through addr_pick() on a fixed
 * set of interfaces instead of the host's. */
#include "fuzz.h"

/* check_pool(), check_overlay() and join_prepare() are static. */
#include "daemon/swarm_init.c"
#include "daemon/swarm_join.c"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

#if __has_include("daemon/addr.h")

static void addresses(json_t *body)
{
    struct addr_iface ifs[] = {
        {"eth0", "192.168.1.10", true}, {"wlan0", "10.0.0.5", true}, {"lo", "127.0.0.1", false}};
    struct addr_env env = {.ifs = ifs, .nifs = 3, .route_if = "eth0", .source_ip = "10.0.0.5"};
    char listen[40], advertise[40];
    struct serr err = {0};
    addr_pick(&env, json_string_value(json_object_get(body, "listen_addr")),
              json_string_value(json_object_get(body, "advertise_addr")), listen, sizeof(listen),
              advertise, sizeof(advertise), &err);
}

static void join_body(json_t *body)
{
    struct join_ctx j = {0};
    struct serr err = {0};
    if (join_prepare(&j, body, &err) == 0)
        json_decref(j.body);
}

#else /* addresses are IPv4[:PORT] */

static void addresses(json_t *body)
{
    struct serr err = {0};
    char addr[96];
    const char *want = json_string_value(json_object_get(body, "advertise_addr"));
    parse_addr(want && *want ? want : "127.0.0.1", addr, sizeof(addr), &err);
}

static void join_body(json_t *body)
{
    struct join_ctx j = {0};
    struct serr err = {0};
    const char *token = json_string_value(json_object_get(body, "token"));
    const char *remote = json_string_value(json_object_get(body, "remote_addr"));
    if (token)
        token_parse(token, j.digest, j.secret, sizeof(j.secret), &err);
    if (remote)
        parse_addr(remote, j.remote, sizeof(j.remote), &err);
}

#endif

static void init_body(json_t *body)
{
    struct serr err = {0};
    char pool[32];
    const char *overlay;
    check_pool(json_object_get(body, "default_addr_pool"), pool, sizeof(pool), &err);
    check_overlay(json_object_get(body, "overlay"), &overlay, &err);
    addresses(body);
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
