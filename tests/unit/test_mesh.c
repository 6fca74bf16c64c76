/* Routing mesh's pure parts: the nft table text, `-p` parsing (network
 * ranges and slices: test_cidr.c). */
#include <stdlib.h>
#include <string.h>

#include "agent/net.h"
#include "cli/cli.h"
#include "manager/netmodel.h"
#include "unit.h"

static json_t *plan(void)
{
    return json_loads(
        "{\"self\":\"n1\",\"bridges\":[{\"name\":\"shoal0\",\"slice\":\"10.42.0.0/24\"}],"
        "\"networks\":[{\"name\":\"bridge\",\"subnet\":\"10.42.0.0/16\"},"
        "{\"name\":\"a\",\"subnet\":\"10.43.0.0/16\"}],\"vip_blocks\":[\"10.42.255.0/24\"],"
        "\"services\":[{\"name\":\"web\",\"network\":\"bridge\",\"vip\":\"10.42.255.2\","
        "\"ports\":[{\"published\":8080,\"target\":80,\"protocol\":\"tcp\",\"mode\":\"ingress\"},"
        "{\"published\":53,\"target\":5353,\"protocol\":\"udp\",\"mode\":\"host\"}],"
        "\"endpoints\":[{\"addr\":\"10.42.0.2\",\"node_id\":\"n1\"},"
        "{\"addr\":\"10.42.1.2\",\"node_id\":\"n2\"}]},"
        "{\"name\":\"idle\",\"network\":\"bridge\",\"vip\":\"10.42.255.3\","
        "\"ports\":[{\"published\":9000,\"target\":9000,\"protocol\":\"tcp\",\"mode\":\"ingress\"}],"
        "\"endpoints\":[]}]}",
        0, NULL);
}

TEST(net_rules_script_balances_ports_and_virtual_ips)
{
    json_t *p = plan();
    char *s = net_rules_script("shoal0", p);
    CHECK(strstr(s, "table ip shoal0\ndelete table ip shoal0\n") == s);
    CHECK(strstr(s, "tcp dport 8080 fib daddr type local ct mark set 0x5ea1 dnat to numgen inc "
                    "mod 2 map { 0 : 10.42.0.2, 1 : 10.42.1.2 } : 80") != NULL);
    /* host mode: this node's endpoint only */
    CHECK(strstr(s, "udp dport 53 fib daddr type local ct mark set 0x5ea3 dnat to 10.42.0.2 : "
                    "5353") != NULL);
    CHECK(strstr(s, "ip daddr 10.42.255.2 ct mark set 0x5ea2 dnat to numgen inc mod 2") != NULL);
    /* no endpoint: no translation (the VIP is rejected by the filter) */
    CHECK(strstr(s, "dport 9000") == NULL && strstr(s, "10.42.255.3") == NULL);
    CHECK(strstr(s, "ct state new ip daddr { 10.42.255.0/24 } reject") != NULL);
    /* masqueraded when sent on to another node, or when the client is on this one */
    CHECK(strstr(s, "ct mark 0x5ea1 oifname != { \"shoal0\" } masquerade") != NULL);
    CHECK(strstr(s, "ct mark 0x5ea1 ip saddr { 127.0.0.0/8, 10.42.0.0/24 } masquerade") != NULL);
    CHECK(strstr(s, "ip saddr 10.43.0.0/16 ip daddr { 10.42.0.0/16, 10.43.0.0/16 } ip daddr != "
                    "10.43.0.0/16 drop") != NULL);
    CHECK(strstr(s, "ip saddr 10.42.0.0/24 oifname != \"shoal0\" ip daddr != { 10.42.0.0/16, "
                    "10.43.0.0/16 } masquerade") != NULL);
    free(s);
    json_decref(p);
}

TEST(net_rules_script_guards_127_8_and_says_who_needs_route_localnet)
{
    json_t *p = plan();
    char *s = net_rules_script("shoal0", p);
    /* before any translation (raw, ahead of dstnat): 127/8 only from lo */
    CHECK(strstr(s, "chain localnet {\n  type filter hook prerouting priority raw; policy "
                    "accept;\n  ip daddr 127.0.0.0/8 iifname != \"lo\" drop\n }") != NULL);
    CHECK(strstr(s, "chain " NET_LOCALNET_USER " {") != NULL);
    free(s);
    /* no published port: the guard stays, route_localnet is not needed */
    json_object_set_new(p, "services", json_array());
    s = net_rules_script("shoal0", p);
    CHECK(strstr(s, "ip daddr 127.0.0.0/8 iifname != \"lo\" drop") != NULL);
    CHECK(strstr(s, NET_LOCALNET_USER) == NULL);
    free(s);
    json_decref(p);
}

TEST(cli_parse_publish_forms)
{
    json_t *port = NULL;
    struct serr err = {0};
    CHECK(cli_parse_publish("8080:80", &port, &err) == 0);
    CHECK(json_integer_value(json_object_get(port, "published")) == 8080);
    CHECK(json_integer_value(json_object_get(port, "target")) == 80);
    CHECK(json_object_get(port, "protocol") == NULL);
    json_decref(port);
    CHECK(cli_parse_publish("53:5353/udp", &port, &err) == 0);
    CHECK_STR(json_string_value(json_object_get(port, "protocol")), "udp");
    json_decref(port);
    CHECK(cli_parse_publish("published=1,target=2,mode=host,protocol=tcp", &port, &err) == 0);
    CHECK_STR(json_string_value(json_object_get(port, "mode")), "host");
    json_decref(port);
    /* target only (-p 3000): the manager chooses the published port */
    CHECK(cli_parse_publish("3000", &port, &err) == 0);
    CHECK(json_integer_value(json_object_get(port, "target")) == 3000);
    CHECK(json_object_get(port, "published") == NULL);
    json_decref(port);
    CHECK(cli_parse_publish("target=53,protocol=udp", &port, &err) == 0);
    CHECK(json_object_get(port, "published") == NULL);
    json_decref(port);
    CHECK(cli_parse_publish("0", &port, &err) < 0);
    CHECK(cli_parse_publish("x/udp", &port, &err) < 0);
    CHECK(cli_parse_publish("0:80", &port, &err) < 0);
    CHECK(cli_parse_publish("8080:80/sctp", &port, &err) < 0);
    CHECK(cli_parse_publish("published=1", &port, &err) < 0);
    CHECK(cli_parse_publish("published=1,target=2,colour=red", &port, &err) < 0);
    CHECK(strstr(err.msg, "colour") != NULL);
}
