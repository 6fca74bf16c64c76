#include "manager/subnets.h"

#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"
#include "base/util.h"
#include "model/cidr.h"
#include "model/node.h"
#include "store/store.h"

const char *subnets_pool(json_t *cluster_meta)
{
    const char *pool = jstr(cluster_meta, "default_addr_pool");
    return pool ? pool : NET_DEFAULT_POOL;
}

/* The networks of the /24s nodes already have; returns their count. */
static size_t taken_subnets(json_t *nodes, uint32_t *taken)
{
    size_t n = 0, i;
    json_t *node;
    json_array_foreach(nodes, i, node)
    {
        uint32_t net;
        int prefix;
        const char *s = jstr(node, "subnet");
        if (s && net_parse_cidr(s, &net, &prefix, NULL) == 0)
            taken[n++] = net;
    }
    return n;
}

json_t *subnets_next_op(json_t *nodes, const char *pool, struct serr *err)
{
    json_t *node = NULL, *candidate;
    size_t i;
    json_array_foreach(nodes, i, candidate)
    {
        if (json_object_get(candidate, "subnet") == NULL) {
            node = candidate;
            break;
        }
    }
    const char *id = node_id(node);
    if (id == NULL)
        return NULL;
    uint32_t pool_net, subnet;
    int prefix;
    if (net_parse_cidr(pool, &pool_net, &prefix, err) < 0)
        return NULL;
    uint32_t *taken = xcalloc(json_array_size(nodes) + 1, sizeof(*taken));
    size_t ntaken = taken_subnets(nodes, taken);
    taken[ntaken++] = net_vip_block(pool_net, prefix); /* the services' virtual IPs */
    int rc = net_pick_subnet(pool_net, prefix, taken, ntaken, &subnet, err);
    free(taken);
    if (rc < 0)
        return NULL;
    char ip[16], cidr[24];
    net_format_ip(subnet, ip);
    snprintf(cidr, sizeof(cidr), "%s/24", ip);
    return op_merge("nodes", id, json_pack("{s:s}", "subnet", cidr));
}
