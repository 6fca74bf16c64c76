#include "daemon/dispatch_host.h"

#include <stdlib.h>

#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "manager/ca.h"
#include "manager/dispatcher.h"

static struct store *store(void *data)
{
    struct shoal *sh = data;
    return sh->store;
}

static struct cluster *cluster(void *data)
{
    struct shoal *sh = data;
    return sh->cluster;
}

static json_t *manager_addrs(void *data)
{
    return swarm_manager_addrs(data);
}

static json_t *node_addrs(void *data)
{
    return swarm_node_addrs(data);
}

static const char *leader_addr(void *data)
{
    struct shoal *sh = data;
    return sh->swarm_addr;
}

static const char *overlay(void *data)
{
    return shoal_overlay(data);
}

static int sign_csr(void *data, const char *csr, const char *node_id, const char *role,
                    char **cert, struct serr *err)
{
    char *dir = swarm_ca_dir(data, err);
    int rc = dir ? ca_sign(dir, csr, node_id, role, cert, err) : -1;
    free(dir);
    return rc;
}

static void secrets_key_offer(void *data, json_t *reply)
{
    swarm_secrets_key_offer(data, reply);
}

static void secrets_for_node(void *data, json_t *tasks, json_t *have, json_t *reply)
{
    swarm_secrets_for_node(data, tasks, have, reply);
}

struct dispatcher *shoal_dispatcher_start(struct shoal *sh)
{
    struct dispatcher_host host = {
        .data = sh,
        .loop = sh->loop,
        .node_id = sh->node_id,
        .store = store,
        .cluster = cluster,
        .manager_addrs = manager_addrs,
        .node_addrs = node_addrs,
        .leader_addr = leader_addr,
        .overlay = overlay,
        .sign_csr = sign_csr,
        .secrets_key_offer = secrets_key_offer,
        .secrets_for_node = secrets_for_node,
    };
    return dispatcher_start(&host);
}
