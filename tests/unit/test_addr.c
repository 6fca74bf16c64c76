/* daemon/addr.c: "HOST[:PORT]" parsing and the choice of the listen and
 * advertise addresses. */
#include <string.h>

#include "daemon/addr.h"
#include "unit.h"

TEST(addr_split_hosts_and_ports)
{
    struct addr_hostport hp;
    struct serr err;
    CHECK(addr_split("10.0.0.1", 2377, &hp, &err) == 0);
    CHECK_STR(hp.host, "10.0.0.1");
    CHECK(hp.port == 2377 && !hp.has_port);
    CHECK(addr_split("node1.local.lan:4000", 2377, &hp, &err) == 0);
    CHECK_STR(hp.host, "node1.local.lan");
    CHECK(hp.port == 4000 && hp.has_port);
    CHECK(addr_split("eth0:2377", 1, &hp, &err) == 0);
    CHECK_STR(hp.host, "eth0");
    CHECK(addr_split("", 2377, &hp, &err) < 0);
    CHECK(addr_split(":2377", 2377, &hp, &err) < 0);
    CHECK(addr_split("a:", 2377, &hp, &err) < 0);
    CHECK(addr_split("a:0", 2377, &hp, &err) < 0);
    CHECK(addr_split("a:65536", 2377, &hp, &err) < 0);
    CHECK(addr_split("a:+1", 2377, &hp, &err) < 0);
    CHECK(addr_split("a:12x", 2377, &hp, &err) < 0);
    CHECK(strstr(err.msg, "invalid port") != NULL);
    CHECK(addr_split("[::1]:2377", 2377, &hp, &err) < 0);
    CHECK(strstr(err.msg, "IPv6") != NULL);
    CHECK(addr_split("fe80::1", 2377, &hp, &err) < 0);
    CHECK(addr_split("a b:1", 2377, &hp, &err) < 0);
    CHECK(addr_split("tcp://x:1", 2377, &hp, &err) < 0);
}

TEST(addr_hostname_syntax)
{
    CHECK(addr_is_hostname("node1.local.lan"));
    CHECK(addr_is_hostname("node-1"));
    CHECK(addr_is_hostname("my_board"));
    CHECK(addr_is_hostname("10.0.0.1")); /* syntax only: callers test IPv4 first */
    CHECK(!addr_is_hostname(""));
    CHECK(!addr_is_hostname("-node"));
    CHECK(!addr_is_hostname("node-"));
    CHECK(!addr_is_hostname("a..b"));
    CHECK(!addr_is_hostname(".a"));
    CHECK(!addr_is_hostname("a/b"));
    char label[80];
    memset(label, 'a', 64);
    label[64] = '\0';
    CHECK(!addr_is_hostname(label));
    CHECK(addr_is_ipv4("10.1.2.3"));
    CHECK(!addr_is_ipv4("10.1.2"));
    CHECK(!addr_is_ipv4("node1"));
}

static const char routes_header[] =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

TEST(addr_default_route)
{
    char ifname[16], text[1024];
    struct serr err;
    snprintf(text, sizeof(text),
             "%seth1\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
             "eth0\t00000000\t0102000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
             "wlan0\t00000000\t0103000A\t0003\t0\t0\t600\t00000000\t0\t0\t0\n",
             routes_header);
    CHECK(addr_default_route_if(text, ifname, sizeof(ifname), &err) == 0);
    CHECK_STR(ifname, "eth0");
    snprintf(text, sizeof(text), "%seth1\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
             routes_header);
    CHECK(addr_default_route_if(text, ifname, sizeof(ifname), &err) == 0);
    CHECK_STR(ifname, "");
    CHECK(addr_default_route_if(routes_header, ifname, sizeof(ifname), &err) == 0);
    CHECK_STR(ifname, "");
    snprintf(text, sizeof(text),
             "%seth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
             "eth1\t00000000\t0103000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
             routes_header);
    CHECK(addr_default_route_if(text, ifname, sizeof(ifname), &err) < 0);
    CHECK(strstr(err.msg, "eth0") && strstr(err.msg, "eth1"));
}

static struct addr_iface board_ifs[] = {
    {"lo", "127.0.0.1", false},
    {"eth0", "192.168.1.20", true},
    {"wlan0", "192.168.7.5", true},
    {"shoal0", "10.42.3.1", false},
};

static int pick(struct addr_env *env, const char *listen_spec, const char *advertise_spec,
                char *listen, char *advertise, struct serr *err)
{
    return addr_pick(env, listen_spec, advertise_spec, listen, 40, advertise, 40, err);
}

TEST(addr_pick_defaults)
{
    struct addr_env env = {.ifs = board_ifs, .nifs = 4, .route_if = "eth0"};
    char listen[40], adv[40];
    struct serr err;
    /* the default route's interface */
    CHECK(pick(&env, NULL, NULL, listen, adv, &err) == 0);
    CHECK_STR(listen, "0.0.0.0:2377");
    CHECK_STR(adv, "192.168.1.20:2377");
    /* join: the address toward the manager wins */
    snprintf(env.source_ip, sizeof(env.source_ip), "192.168.7.5");
    CHECK(pick(&env, "", "", listen, adv, &err) == 0);
    CHECK_STR(adv, "192.168.7.5:2377");
    env.source_ip[0] = '\0';
    /* a specific listen address is advertised */
    CHECK(pick(&env, "192.168.7.5:4000", NULL, listen, adv, &err) == 0);
    CHECK_STR(listen, "192.168.7.5:4000");
    CHECK_STR(adv, "192.168.7.5:4000");
    /* advertise port <-> listen port */
    CHECK(pick(&env, NULL, "10.9.9.9:5000", listen, adv, &err) == 0);
    CHECK_STR(listen, "0.0.0.0:5000");
    CHECK_STR(adv, "10.9.9.9:5000");
    CHECK(pick(&env, "0.0.0.0:6000", "10.9.9.9", listen, adv, &err) == 0);
    CHECK_STR(listen, "0.0.0.0:6000");
    CHECK_STR(adv, "10.9.9.9:6000");
    CHECK(pick(&env, NULL, "0.0.0.0", listen, adv, &err) < 0);
    CHECK(strstr(err.msg, "0.0.0.0") != NULL);
}

TEST(addr_pick_interface_names)
{
    struct addr_iface ifs[] = {
        {"lo", "127.0.0.1", false},
        {"eth0", "192.168.1.20", true},
        {"eth1", "10.0.0.2", true},
        {"eth1", "10.0.0.3", true},
    };
    struct addr_env env = {.ifs = ifs, .nifs = 4, .route_if = "eth0"};
    char listen[40], adv[40];
    struct serr err;
    CHECK(pick(&env, NULL, "eth0", listen, adv, &err) == 0);
    CHECK_STR(adv, "192.168.1.20:2377");
    CHECK(pick(&env, NULL, "eth0:2400", listen, adv, &err) == 0);
    CHECK_STR(adv, "192.168.1.20:2400");
    CHECK_STR(listen, "0.0.0.0:2400");
    CHECK(pick(&env, "lo", NULL, listen, adv, &err) == 0);
    CHECK_STR(listen, "127.0.0.1:2377");
    CHECK_STR(adv, "127.0.0.1:2377");
    CHECK(pick(&env, NULL, "eth1", listen, adv, &err) < 0);
    CHECK(strstr(err.msg, "--advertise-addr") && strstr(err.msg, "10.0.0.2") &&
          strstr(err.msg, "10.0.0.3"));
    CHECK(pick(&env, NULL, "wlan9", listen, adv, &err) < 0);
    CHECK(strstr(err.msg, "wlan9") && strstr(err.msg, "eth0") && strstr(err.msg, "eth1"));
    CHECK(pick(&env, "nope", NULL, listen, adv, &err) < 0);
    CHECK(strstr(err.msg, "--listen-addr") != NULL);
    /* the default route's interface with two addresses */
    snprintf(env.route_if, sizeof(env.route_if), "eth1");
    CHECK(pick(&env, NULL, NULL, listen, adv, &err) < 0);
    CHECK(strstr(err.msg, "eth1") && strstr(err.msg, "10.0.0.2") && strstr(err.msg, "10.0.0.3") &&
          strstr(err.msg, "--advertise-addr"));
}

TEST(addr_pick_without_default_route)
{
    struct addr_env env = {.ifs = board_ifs, .nifs = 4};
    char listen[40], adv[40];
    struct serr err;
    /* two candidates (loopback and shoal's bridge are not) */
    CHECK(pick(&env, NULL, NULL, listen, adv, &err) < 0);
    CHECK(strstr(err.msg, "192.168.1.20 on eth0") && strstr(err.msg, "192.168.7.5 on wlan0") &&
          strstr(err.msg, "--advertise-addr") && !strstr(err.msg, "10.42.3.1") &&
          !strstr(err.msg, "127.0.0.1"));
    /* one candidate */
    env.nifs = 2;
    CHECK(pick(&env, NULL, NULL, listen, adv, &err) == 0);
    CHECK_STR(adv, "192.168.1.20:2377");
    /* none */
    env.nifs = 1;
    CHECK(pick(&env, NULL, NULL, listen, adv, &err) < 0);
    CHECK(strstr(err.msg, "--advertise-addr") != NULL);
    /* several default routes: ambiguous too */
    env.nifs = 4;
    snprintf(env.route_err, sizeof(env.route_err), "several default routes (through a and b)");
    CHECK(pick(&env, NULL, NULL, listen, adv, &err) < 0);
    CHECK(strstr(err.msg, "several default routes") && strstr(err.msg, "--advertise-addr"));
    CHECK(pick(&env, NULL, "eth0", listen, adv, &err) == 0);
}
