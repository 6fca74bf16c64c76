/* Service networking as desired state: user networks, published ports and
 * virtual IPs, and the "mesh" every node applies (agent/agent_net.c).
 *
 * A network is an address range. The built-in "bridge" network is the
 * cluster's pool (one /24 per node, manager/subnets.h); a user network
 * (store table "networks") is another range, cut the same way: the node
 * whose pool /24 is the k-th one gets the k-th /24 of every network. The
 * last /24 of each range holds the virtual IPs of its services. "host"
 * means no network of ours. */
#ifndef SHOAL_MANAGER_NETMODEL_H
#define SHOAL_MANAGER_NETMODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "model/cidr.h" /* NETWORK_BRIDGE, NETWORK_HOST */

struct store;

/* A new network record {id, name, subnet, created_at} from an API body
 * {"name", "subnet"?}: bad names, taken names, bad or overlapping ranges
 * are errors (nothing is stored here: the caller proposes the record). */
json_t *network_new(struct store *st, json_t *body, struct serr *err);

/* Every network, built-in ones first, each with "services" (names). */
json_t *network_list(struct store *st);

/* A network by name, id or unique id prefix (built-ins by name). */
json_t *network_find(struct store *st, const char *ref, struct serr *err);

/* The names of the services attached to the network named `name`. */
json_t *network_services(struct store *st, const char *name);

/* Checks a normalised spec's network and published ports against the
 * store and gives the service record `svc` (being created or updated; its
 * "id" is not a conflict with itself) a virtual IP ("vip") on its network,
 * keeping the one it has when the network did not change. */
int service_endpoint_assign(struct store *st, json_t *svc, json_t *spec, struct serr *err);

/* Ops (store.h) that record who publishes which port (table "ports", ids
 * like "8080/tcp"; a port another service holds makes the group fail):
 * puts for `spec`'s ports, dels for those only `old_spec` has. Either may
 * be NULL. Appended to `group`. */
void service_port_ops(json_t *group, const char *service_id, json_t *old_spec, json_t *spec);

/* What nodes apply (docs/design.md, Networking): {"pool", "networks":
 * [{name, subnet}], "services": [{name, network, vip, ports, endpoints:
 * [{addr, node_id}]}]}. Endpoints are the running tasks in rotation
 * (healthy, or without a health check). */
json_t *mesh_build(struct store *st);

#endif
