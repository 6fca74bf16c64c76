/* Task networking's pure parts: interface names, the VXLAN device, the
 * leader's subnet records (the address arithmetic: test_cidr.c). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/net.h"
#include "agent/net_int.h"
#include "base/util.h"
#include "manager/subnets.h"
#include "unit.h"

static uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d)
{
    return (a << 24) | (b << 16) | (c << 8) | d;
}

/* ip and nft run with default signal dispositions and an empty mask,
 * whatever the daemon blocks or ignores: a fake tool (named by its full
 * path) fails with the masks it got on stderr, which the error carries. */
TEST(net_tools_run_with_default_signals)
{
    char dir[] = "/tmp/shoal-net-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char tool[64], cmd[512];
    snprintf(tool, sizeof(tool), "%s/tool", dir);
    snprintf(cmd, sizeof(cmd),
             "printf '#!/bin/sh\necho blocked=$(sed -n \"s/^SigBlk:\\t//p\" /proc/$$/status)"
             " ignored=$(sed -n \"s/^SigIgn:\\t//p\" /proc/$$/status) >&2\nexit 1\n' >%s && "
             "chmod +x %s",
             tool, tool);
    CHECK(system(cmd) == 0);
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);

    char *argv[] = {tool, NULL};
    struct serr err = {0};
    int rc = run_script(argv, "", &err);
    sigprocmask(SIG_SETMASK, &old, NULL);
    signal(SIGPIPE, old_pipe);
    CHECK(rm_rf(dir, NULL) == 0);
    CHECK(rc < 0);
    char fmt[128];
    snprintf(fmt, sizeof(fmt), "%s: blocked=%%llx ignored=%%llx", tool);
    unsigned long long blocked, ignored;
    CHECK(sscanf(err.msg, fmt, &blocked, &ignored) == 2);
    CHECK((blocked & 1ull << (SIGUSR1 - 1)) == 0);
    CHECK((ignored & 1ull << (SIGPIPE - 1)) == 0);
}

TEST(net_names_fit_interfaces)
{
    char veth[16], path[128];
    net_veth_name("0123456789abcdef0123456789", veth, sizeof(veth));
    CHECK_STR(veth, "vsh0123456789a");
    CHECK(strlen(veth) < 16);
    net_netns_path("abc", path, sizeof(path));
    CHECK_STR(path, "/run/netns/shoal-abc");
}

TEST(net_vxlan_name_fits_and_follows_the_bridge)
{
    char vx[16], other[16];
    net_vxlan_name("shoal0", vx, sizeof(vx));
    CHECK_STR(vx, "shoal0vx");
    net_vxlan_name("sht1234-12", vx, sizeof(vx));
    CHECK_STR(vx, "sht1234-12vx");
    net_vxlan_name("abcdefghijklm", vx, sizeof(vx)); /* 13 + 2: still fits */
    CHECK_STR(vx, "abcdefghijklmvx");
    /* longer: 9 characters, 4 hex digits of a hash, "vx"; two bridges that
     * share their first 9 characters get two names */
    net_vxlan_name("abcdefghijklmn", vx, sizeof(vx));
    net_vxlan_name("abcdefghijklmo", other, sizeof(other));
    CHECK(strlen(vx) == 15 && strlen(other) == 15);
    CHECK(strncmp(vx, "abcdefghi", 9) == 0 && strcmp(vx + 13, "vx") == 0);
    CHECK(strcmp(vx, other) != 0);
    CHECK(net_valid_ifname(vx) && net_valid_ifname(other));
    /* the same bridge, the same name (a restarted daemon finds its device) */
    net_vxlan_name("abcdefghijklmn", other, sizeof(other));
    CHECK_STR(vx, other);
}

TEST(net_vxlan_mac_from_the_address)
{
    char mac[18];
    net_vxlan_mac(ip4(10, 213, 0, 2), mac);
    CHECK_STR(mac, "02:53:0a:d5:00:02");
    net_vxlan_mac(ip4(192, 168, 255, 1), mac);
    CHECK_STR(mac, "02:53:c0:a8:ff:01");
    net_vxlan_mac(0, mac);
    CHECK_STR(mac, "02:53:00:00:00:00");
}

TEST(net_task_mac_from_the_address)
{
    unsigned char mac[6];
    net_task_mac(ip4(10, 42, 1, 2), mac);
    CHECK(memcmp(mac, (const unsigned char[]){0x02, 0x54, 10, 42, 1, 2}, 6) == 0);
    net_task_mac(ip4(192, 168, 255, 254), mac);
    CHECK(memcmp(mac, (const unsigned char[]){0x02, 0x54, 192, 168, 255, 254}, 6) == 0);
    char text[18];
    net_format_mac(mac, text);
    CHECK_STR(text, "02:54:c0:a8:ff:fe");
}

TEST(subnets_next_op_assigns_first_node_without_one)
{
    json_t *nodes = json_loads("[{\"id\":\"a\",\"subnet\":\"10.9.0.0/24\"},{\"id\":\"b\"},"
                               "{\"id\":\"c\"}]",
                               0, NULL);
    json_t *op = subnets_next_op(nodes, "10.9.0.0/16", NULL);
    CHECK(op != NULL);
    char *text = json_dumps(op, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK(strstr(text, "\"b\"") != NULL && strstr(text, "10.9.1.0/24") != NULL);
    free(text);
    json_decref(op);
    /* every node has one: nothing to do */
    json_object_set_new(json_array_get(nodes, 1), "subnet", json_string("10.9.1.0/24"));
    json_object_set_new(json_array_get(nodes, 2), "subnet", json_string("10.9.2.0/24"));
    CHECK(subnets_next_op(nodes, "10.9.0.0/16", NULL) == NULL);
    json_decref(nodes);
    json_t *meta = json_loads("{\"id\":\"cluster\"}", 0, NULL);
    CHECK_STR(subnets_pool(meta), NET_DEFAULT_POOL);
    json_decref(meta);
}
