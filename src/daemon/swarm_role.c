/* Role changes (promote, demote): the node learns its new role from its
 * session, which brings a certificate for it; the manager's parts start or
 * stop. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/dispatch_host.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "daemon/swarm_int.h"
#include "tls/identity.h"
#include "manager/dispatcher.h"
#include "raft/cluster.h"

int swarm_new_csr(struct shoal *sh, char **key_pem, char **csr_pem, struct serr *err)
{
    return node_key_csr(sh->node_id, key_pem, csr_pem, err);
}

/* The leader signed a certificate for this node's new role: take it, then
 * start or stop the manager's parts. */
int swarm_change_role(struct shoal *sh, const char *role, const char *cert, const char *key,
                      struct serr *err)
{
    char *ca = swarm_state_read_text(sh, "tls/ca.crt", err);
    if (ca == NULL || swarm_state_save_tls(sh, ca, cert, key, err) < 0) {
        free(ca);
        return -1;
    }
    free(ca);
    if (clusternet_load_tls(sh, err) < 0)
        return -1;
    char *path = shoal_state_path(sh, "swarm.json");
    json_t *cfg = json_load_file(path, 0, NULL);
    if (cfg) {
        json_object_set_new(cfg, "role", json_string(role));
        json_dump_file(cfg, path, JSON_INDENT(2));
        json_decref(cfg);
    }
    free(path);
    log_info("this node is now a %s", role);
    snprintf(sh->role, sizeof(sh->role), "%s", role);
    if (strcmp(role, "manager") == 0) {
        swarm_reset_store(sh);
        if (swarm_start_cluster(sh, false, false, err) < 0 || clusternet_listen(sh, err) < 0)
            return -1;
        sh->dispatcher = shoal_dispatcher_start(sh);
        return 0;
    }
    swarm_secrets_key_drop(sh);
    dispatcher_stop(sh->dispatcher);
    sh->dispatcher = NULL;
    /* the cluster port stays: managers read this worker's task logs there */
    struct cluster *c = sh->cluster;
    sh->cluster = NULL;
    if (c)
        cluster_stop(c, NULL, NULL);
    char *raft = shoal_state_path(sh, "raft");
    rm_rf(raft, NULL); /* a later promotion starts with an empty log */
    free(raft);
    return 0;
}
