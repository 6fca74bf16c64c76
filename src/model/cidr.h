/* IPv4 address arithmetic shared by the managers (the nodes' /24s of the
 * pool, user networks, virtual IPs: manager/subnets.h, manager/netmodel.h)
 * and the agents (task addresses, bridges, routes: agent/net.h). Pure
 * functions over host-order addresses, so both sides' choices are
 * deterministic and unit-tested. */
#ifndef SHOAL_MODEL_CIDR_H
#define SHOAL_MODEL_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* The cluster's address pool when `swarm init` names none. */
#define NET_DEFAULT_POOL "10.42.0.0/16"

/* The built-in networks: "bridge" is the pool (one /24 per node), "host"
 * means no network of ours. */
#define NETWORK_BRIDGE "bridge"
#define NETWORK_HOST "host"

/* "10.42.0.0/16" -> network (host order, host bits cleared) and prefix. */
int net_parse_cidr(const char *text, uint32_t *network, int *prefix, struct serr *err);
/* Dotted text -> host-order address; false when it is not one. */
bool net_parse_ip(const char *text, uint32_t *ip);
/* Host-order address -> dotted text; out must hold 16 bytes. */
void net_format_ip(uint32_t ip, char *out);

/* The lowest /24 of the pool that no node has yet (`taken`: networks of /24s). */
int net_pick_subnet(uint32_t pool, int pool_prefix, const uint32_t *taken, size_t ntaken,
                    uint32_t *subnet, struct serr *err);
/* The lowest free host address .2 .. .254 of a /24 (.1 is the bridge). */
int net_pick_host(uint32_t subnet, const uint32_t *used, size_t nused, uint32_t *host,
                  struct serr *err);

/* True when the two ranges share an address. */
bool net_ranges_overlap(uint32_t a, int aprefix, uint32_t b, int bprefix);
/* The node's /24 in a network: the k-th /24 where k is the index of the
 * node's pool /24; false when the network has no such /24 (too small). */
bool net_slice(uint32_t pool, uint32_t node_subnet, uint32_t net, int prefix, uint32_t *slice);
/* The /24 holding a network's virtual IPs: its last. */
uint32_t net_vip_block(uint32_t net, int prefix);

#endif
