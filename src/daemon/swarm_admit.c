/* Joining, the leader's side (POST /v1/cluster/join on the cluster port):
 * the secret checked, the CSR signed for the role it grants, the node
 * recorded. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "daemon/swarm_int.h"
#include "manager/ca.h"
#include "manager/service_container.h"
#include "raft/cluster.h"
#include "store/store.h"

struct accept_ctx {
    swarm_done_cb done;
    void *data;
    json_t *reply;
};

static void accept_committed(void *arg, int status, const struct serr *err)
{
    struct accept_ctx *a = arg;
    if (status < 0) {
        a->done(a->data, -1, NULL, err);
        json_decref(a->reply);
    } else {
        a->done(a->data, 0, a->reply, NULL);
    }
    free(a);
}

/* Checks the secret, signs the node's CSR with the role the secret grants,
 * and records the node. Managers become raft voters through the
 * dispatcher's membership reconciliation once their raft is up. */
int swarm_accept_join(struct shoal *sh, json_t *body, swarm_done_cb done, void *data,
                      struct serr *err)
{
    const char *secret = json_string_value(json_object_get(body, "secret"));
    const char *csr = json_string_value(json_object_get(body, "csr"));
    json_t *node = json_object_get(body, "node");
    const char *node_id = json_string_value(json_object_get(node, "id"));
    char role[16], *cert = NULL, *ca = NULL;
    char *dir = NULL;
    int rc = -1;
    json_t *existing = node_id ? store_get(sh->store, "nodes", node_id) : NULL;
    const char *existing_status = json_string_value(json_object_get(existing, "status"));
    json_t *labels = json_object_get(node, "labels");
    if (!secret || !csr || !node_id || !json_string_value(json_object_get(node, "addr"))) {
        serr_set(err, SERR_INVALID, "join request is incomplete");
    } else if (labels && service_check_labels(labels, "labels", err) < 0) {
        /* the joining node's own (swarm join --label); later, the managers' to set */
    } else if (existing_status && strcmp(existing_status, "down") != 0) {
        /* an id is a certificate's identity: only a node that is gone may rejoin with it */
        serr_set(err, SERR_CONFLICT, "a node with id %s is already in the swarm", node_id);
    } else if ((dir = swarm_ca_dir(sh, err)) != NULL &&
               ca_token_check(dir, secret, role, err) == 0 &&
               ca_sign(dir, csr, node_id, role, &cert, err) == 0 &&
               ca_cert_pem(dir, &ca, err) == 0) {
        json_t *meta = store_get(sh->store, "meta", "cluster");
        json_t *rec = json_deep_copy(node);
        json_object_set_new(rec, "role", json_string(role));
        json_object_set_new(rec, "status", json_string("ready"));
        json_object_set_new(rec, "availability", json_string("active"));
        if (labels == NULL)
            json_object_set_new(rec, "labels", json_object());
        json_t *managers = swarm_manager_addrs(sh);
        if (strcmp(role, "manager") == 0)
            json_array_append(managers, json_object_get(node, "addr"));
        struct accept_ctx *a = xcalloc(1, sizeof(*a));
        a->done = done;
        a->data = data;
        a->reply = json_pack("{s:s, s:s, s:s, s:O, s:o, s:s}", "role", role, "cert", cert, "ca",
                             ca, "cluster_id", json_object_get(meta, "cluster_id"), "managers",
                             managers, "leader", sh->swarm_addr);
        if (strcmp(role, "manager") == 0)
            swarm_secrets_key_offer(sh, a->reply);
        json_decref(meta);
        log_info("node %s (%s) joins as a %s", json_string_value(json_object_get(node, "hostname")),
                 node_id, role);
        cluster_propose(sh->cluster, json_pack("[o]", op_put("nodes", rec)), accept_committed, a);
        rc = 0;
    }
    json_decref(existing);
    free(dir);
    free(cert);
    free(ca);
    return rc;
}
