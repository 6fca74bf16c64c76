/* IPv4 address arithmetic (model/cidr.h): CIDR parsing, the leader's subnet
 * choice, the agent's address choice, network ranges and slices. */
#include <string.h>

#include "model/cidr.h"
#include "unit.h"

static uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d)
{
    return (a << 24) | (b << 16) | (c << 8) | d;
}

TEST(net_parse_cidr_normalizes)
{
    uint32_t net;
    int prefix;
    CHECK(net_parse_cidr("10.42.7.9/16", &net, &prefix, NULL) == 0);
    CHECK(net == ip4(10, 42, 0, 0) && prefix == 16);
    CHECK(net_parse_cidr("10.42.0.0", &net, &prefix, NULL) < 0);
    CHECK(net_parse_cidr("10.42.0.0/33", &net, &prefix, NULL) < 0);
    CHECK(net_parse_cidr("10.42.0/16", &net, &prefix, NULL) < 0);
    CHECK(net_parse_cidr("10.42.0.0/", &net, &prefix, NULL) < 0);
    char text[16];
    net_format_ip(ip4(192, 168, 1, 254), text);
    CHECK_STR(text, "192.168.1.254");
}

TEST(net_pick_subnet_lowest_free)
{
    uint32_t taken[] = {ip4(10, 42, 0, 0), ip4(10, 42, 2, 0)}, subnet;
    CHECK(net_pick_subnet(ip4(10, 42, 0, 0), 16, taken, 2, &subnet, NULL) == 0);
    CHECK(subnet == ip4(10, 42, 1, 0));
    CHECK(net_pick_subnet(ip4(10, 42, 0, 0), 16, NULL, 0, &subnet, NULL) == 0);
    CHECK(subnet == ip4(10, 42, 0, 0));
    /* a /23 holds two /24s */
    uint32_t full[] = {ip4(10, 0, 0, 0), ip4(10, 0, 1, 0)};
    struct serr err;
    CHECK(net_pick_subnet(ip4(10, 0, 0, 0), 23, full, 2, &subnet, &err) < 0);
    CHECK(strstr(err.msg, "no free /24") != NULL);
    CHECK(net_pick_subnet(ip4(10, 0, 0, 0), 25, NULL, 0, &subnet, NULL) < 0);
    /* taken in any order, with duplicates and addresses outside the pool */
    uint32_t mixed[] = {ip4(10, 42, 1, 0), ip4(192, 168, 0, 0), ip4(10, 42, 0, 0),
                        ip4(10, 41, 0, 0), ip4(10, 42, 1, 0), ip4(10, 42, 3, 0)};
    CHECK(net_pick_subnet(ip4(10, 42, 0, 0), 16, mixed, 6, &subnet, NULL) == 0);
    CHECK(subnet == ip4(10, 42, 2, 0));
}

TEST(net_pick_host_skips_bridge_and_used)
{
    uint32_t subnet = ip4(10, 42, 1, 0), host;
    CHECK(net_pick_host(subnet, NULL, 0, &host, NULL) == 0);
    CHECK(host == ip4(10, 42, 1, 2)); /* .1 is the bridge */
    uint32_t used[] = {ip4(10, 42, 1, 2), ip4(10, 42, 1, 4)};
    CHECK(net_pick_host(subnet, used, 2, &host, NULL) == 0);
    CHECK(host == ip4(10, 42, 1, 3));
    uint32_t all[253];
    for (unsigned h = 2; h < 255; h++)
        all[h - 2] = subnet + h;
    CHECK(net_pick_host(subnet, all, 253, &host, NULL) < 0); /* .255 is broadcast */
}

TEST(net_ranges_overlap_both_ways)
{
    CHECK(net_ranges_overlap(ip4(10, 42, 0, 0), 16, ip4(10, 42, 5, 0), 24));
    CHECK(net_ranges_overlap(ip4(10, 42, 5, 0), 24, ip4(10, 42, 0, 0), 16));
    CHECK(!net_ranges_overlap(ip4(10, 42, 0, 0), 16, ip4(10, 43, 0, 0), 16));
    CHECK(net_ranges_overlap(ip4(10, 0, 0, 0), 8, ip4(10, 200, 0, 0), 16));
}

TEST(net_slice_follows_the_nodes_pool_index)
{
    uint32_t slice;
    /* third /24 of the pool -> third /24 of the network */
    CHECK(net_slice(ip4(10, 42, 0, 0), ip4(10, 42, 2, 0), ip4(10, 77, 0, 0), 16, &slice));
    CHECK(slice == ip4(10, 77, 2, 0));
    /* a /23 has one /24 for nodes (the last holds virtual IPs) */
    CHECK(net_slice(ip4(10, 42, 0, 0), ip4(10, 42, 0, 0), ip4(10, 9, 0, 0), 23, &slice));
    CHECK(!net_slice(ip4(10, 42, 0, 0), ip4(10, 42, 1, 0), ip4(10, 9, 0, 0), 23, &slice));
    CHECK(!net_slice(ip4(10, 42, 0, 0), ip4(10, 42, 0, 0), ip4(10, 9, 0, 0), 24, &slice));
    CHECK(net_vip_block(ip4(10, 42, 0, 0), 16) == ip4(10, 42, 255, 0));
    CHECK(net_vip_block(ip4(10, 9, 0, 0), 23) == ip4(10, 9, 1, 0));
}
