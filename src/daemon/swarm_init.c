/* swarm init: a new cluster with its CA, this node its one manager; and
 * --force-new-cluster, a lone surviving manager taking over. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/net.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "daemon/swarm_int.h"
#include "manager/ca.h"
#include "tls/identity.h"
#include "raft/cluster.h"
#include "store/store.h"

/* How long swarm init waits for the new one-voter cluster to elect itself. */
#define LEADER_WAIT_MS 10000

static int issue_own_cert(struct shoal *sh, const char *ca_dir, const char *role, struct serr *err)
{
    char *key = NULL, *csr = NULL, *cert = NULL, *ca = NULL;
    int rc = node_key_csr(sh->node_id, &key, &csr, err);
    if (rc == 0)
        rc = ca_sign(ca_dir, csr, sh->node_id, role, &cert, err);
    if (rc == 0)
        rc = ca_cert_pem(ca_dir, &ca, err);
    if (rc == 0)
        rc = swarm_state_save_tls(sh, ca, cert, key, err);
    free(key);
    free(csr);
    free(cert);
    free(ca);
    return rc;
}

struct init_ctx {
    struct shoal *sh;
    swarm_done_cb done;
    void *data;
    uv_timer_t timer;
    int64_t deadline;
    char cluster_id[33];
    char pool[24]; /* --default-addr-pool */
    const char *overlay; /* --overlay: NET_OVERLAY_DIRECT or NET_OVERLAY_VXLAN */
    char *unlock_key;    /* --autolock */
};

static void init_ctx_closed(uv_handle_t *h)
{
    struct init_ctx *ctx = h->data;
    free(ctx->unlock_key);
    free(ctx);
}

static void init_committed(void *arg, int status, const struct serr *err)
{
    struct init_ctx *ctx = arg;
    if (status < 0) {
        ctx->done(ctx->data, -1, NULL, err);
    } else {
        ctx->done(ctx->data, 0,
                  json_pack("{s:s, s:s, s:s?}", "node_id", ctx->sh->node_id, "cluster_id",
                            ctx->cluster_id, "unlock_key", ctx->unlock_key),
                  NULL);
        log_info("swarm initialized: cluster %s, address %s", ctx->cluster_id,
                 ctx->sh->swarm_addr);
    }
    uv_close((uv_handle_t *)&ctx->timer, init_ctx_closed);
}

static void init_wait_leader(uv_timer_t *t)
{
    struct init_ctx *ctx = t->data;
    struct shoal *sh = ctx->sh;
    struct serr err = {0};
    if (!cluster_is_leader(sh->cluster)) {
        if (mono_ms() < ctx->deadline)
            return;
        uv_timer_stop(t);
        serr_set(&err, SERR_UNAVAILABLE, "the new cluster elected no leader in time");
        init_committed(ctx, -1, &err);
        return;
    }
    uv_timer_stop(t);
    json_t *ca = swarm_state_ca_meta(sh, &err);
    if (ca == NULL) {
        init_committed(ctx, -1, &err);
        return;
    }
    json_int_t now = (json_int_t)now_ms();
    json_t *group = json_pack("[o, o, o]",
                              op_put("meta", json_pack("{s:s, s:s, s:I, s:s, s:s}", "id",
                                                       "cluster", "cluster_id", ctx->cluster_id,
                                                       "created_at", now, "default_addr_pool",
                                                       ctx->pool, "overlay", ctx->overlay)),
                              op_put("meta", ca), op_put("nodes", swarm_self_node(sh, "manager")));
    json_t *autolock = ctx->unlock_key ? swarm_autolock_record(sh, ctx->unlock_key, &err) : NULL;
    if (autolock) /* for swarm unlock-key */
        json_array_append_new(group, op_put("meta", autolock));
    cluster_propose(sh->cluster, group, init_committed, ctx);
}

static int init_files(struct shoal *sh, const char *cluster_id, struct serr *err)
{
    char *ca_dir = shoal_state_path(sh, "ca");
    int rc = ca_create(ca_dir, err);
    if (rc == 0)
        rc = swarm_secrets_key_init(sh, err);
    if (rc == 0)
        rc = issue_own_cert(sh, ca_dir, "manager", err);
    free(ca_dir);
    json_t *managers = json_pack("[s]", sh->swarm_addr);
    if (rc == 0)
        rc = swarm_state_save(sh, cluster_id, managers, NULL, err);
    json_decref(managers);
    return rc;
}

/* ---- --force-new-cluster: a lone surviving manager takes over ---- */

struct recover_ctx {
    struct shoal *sh;
    swarm_done_cb done;
    void *data;
};

static void recover_stopped(void *arg)
{
    struct recover_ctx *r = arg;
    struct shoal *sh = r->sh;
    struct serr err = {0};
    swarm_reset_store(sh);
    if (swarm_start_cluster(sh, false, true, &err) < 0) {
        r->done(r->data, -1, NULL, &err);
    } else {
        log_info("forced a new cluster: this manager is the only voter");
        r->done(r->data, 0, json_pack("{s:s}", "node_id", sh->node_id), NULL);
    }
    free(r);
}

static int force_new_cluster(struct shoal *sh, swarm_done_cb done, void *data, struct serr *err)
{
    if (strcmp(sh->role, "manager") != 0 || sh->cluster == NULL)
        return serr_set(err, SERR_INVALID, "--force-new-cluster needs a node that was a manager");
    struct recover_ctx *r = xcalloc(1, sizeof(*r));
    r->sh = sh;
    r->done = done;
    r->data = data;
    struct cluster *c = sh->cluster;
    sh->cluster = NULL;
    cluster_stop(c, recover_stopped, r);
    return 0;
}

/* ---- swarm init ---- */

/* --default-addr-pool: a CIDR of a /24 or larger, normalized ("10.42.0.0/16"). */
static int check_pool(json_t *value, char *out, size_t outlen, struct serr *err)
{
    const char *text = json_is_string(value) ? json_string_value(value) : NET_DEFAULT_POOL;
    uint32_t net;
    int prefix;
    if (value != NULL && !json_is_string(value))
        return serr_set(err, SERR_INVALID, "default_addr_pool must be a string");
    if (net_parse_cidr(text, &net, &prefix, err) < 0)
        return serr_wrap(err, "--default-addr-pool");
    if (prefix > 23 || prefix < 8) /* a /24 per node, and the last for virtual IPs */
        return serr_set(err, SERR_INVALID,
                        "--default-addr-pool: want a prefix between /8 and /23, not /%d", prefix);
    char ip[16];
    net_format_ip(net, ip);
    snprintf(out, outlen, "%s/%d", ip, prefix);
    return 0;
}

/* --overlay: how nodes reach each other's task subnets (agent/net.h). */
static int check_overlay(json_t *value, const char **out, struct serr *err)
{
    if (json_is_null(value))
        value = NULL;
    if (value != NULL && !json_is_string(value))
        return serr_set(err, SERR_INVALID, "overlay must be a string");
    const char *text = value ? json_string_value(value) : NET_OVERLAY_DIRECT;
    if (strcmp(text, NET_OVERLAY_DIRECT) == 0)
        *out = NET_OVERLAY_DIRECT;
    else if (strcmp(text, NET_OVERLAY_VXLAN) == 0)
        *out = NET_OVERLAY_VXLAN;
    else
        return serr_set(err, SERR_INVALID, "--overlay: want " NET_OVERLAY_DIRECT
                        " or " NET_OVERLAY_VXLAN ", not '%s'", text);
    return 0;
}

int swarm_init(struct shoal *sh, json_t *body, swarm_done_cb done, void *data, struct serr *err)
{
    if (json_is_true(json_object_get(body, "force_new_cluster")))
        return force_new_cluster(sh, done, data, err);
    if (sh->role[0])
        return serr_set(err, SERR_CONFLICT, "%s", swarm_already_member);
    char listen[40], addr[40];
    struct init_ctx *ctx = xcalloc(1, sizeof(*ctx));
    if (check_pool(json_object_get(body, "default_addr_pool"), ctx->pool, sizeof(ctx->pool),
                   err) < 0 ||
        check_overlay(json_object_get(body, "overlay"), &ctx->overlay, err) < 0 ||
        swarm_choose_addrs(sh, body, NULL, listen, addr, err) < 0) {
        free(ctx);
        return -1;
    }
    ctx->sh = sh;
    ctx->done = done;
    ctx->data = data;
    random_hex(ctx->cluster_id, 32);
    swarm_new_raft_id(sh);
    swarm_set_addrs(sh, listen, addr);
    snprintf(sh->role, sizeof(sh->role), "manager");
    swarm_state_forget(sh); /* leftovers of a half-finished leave */
    json_t *managers = json_pack("[s]", addr);
    int rc = init_files(sh, ctx->cluster_id, err);
    if (rc == 0 && json_is_true(json_object_get(body, "autolock")))
        rc = swarm_secrets_key_lock(sh, &ctx->unlock_key, err);
    if (rc == 0)
        rc = swarm_start_member(sh, true, managers, err);
    json_decref(managers);
    if (rc < 0) {
        swarm_stop_member(sh);
        swarm_state_forget(sh);
        if (sh->cluster == NULL) { /* else it stays a manager whose raft runs */
            sh->role[0] = '\0';
            swarm_set_addrs(sh, NULL, NULL);
        }
        free(ctx->unlock_key);
        free(ctx);
        return -1;
    }
    uv_timer_init(sh->loop, &ctx->timer);
    ctx->timer.data = ctx;
    ctx->deadline = mono_ms() + LEADER_WAIT_MS;
    uv_timer_start(&ctx->timer, init_wait_leader, 0, 5);
    return 0;
}
