#include "daemon/swarm.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent/agent.h"
#include "api/http.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "raft/cluster.h"
#include "store/store.h"

/* How long swarm init waits for the new one-voter cluster to elect itself. */
#define LEADER_WAIT_MS 10000

static void on_store_change(void *arg)
{
    shoal_kick(arg);
}

static int start_cluster(struct shoal *sh, bool bootstrap, struct serr *err)
{
    char *dir = shoal_state_path(sh, "raft");
    struct cluster_config cfg = {
        .dir = dir, .raft_id = sh->raft_id, .addr = sh->swarm_addr, .bootstrap = bootstrap};
    int rc = cluster_start(sh->loop, sh->store, &cfg, on_store_change, sh, &sh->cluster, err);
    free(dir);
    return rc;
}

int swarm_resume(struct shoal *sh, struct serr *err)
{
    char *path = shoal_state_path(sh, "swarm.json");
    json_t *cfg = json_load_file(path, 0, NULL);
    free(path);
    if (cfg == NULL)
        return 0; /* not in a swarm */
    const char *addr = json_string_value(json_object_get(cfg, "addr"));
    const char *raft_id = json_string_value(json_object_get(cfg, "raft_id"));
    if (addr == NULL || raft_id == NULL) {
        json_decref(cfg);
        return serr_set(err, SERR_INTERNAL, "swarm.json is damaged");
    }
    sh->swarm_addr = xstrdup(addr);
    sh->raft_id = strtoull(raft_id, NULL, 16);
    json_decref(cfg);
    log_info("resuming swarm membership, raft address %s", sh->swarm_addr);
    return start_cluster(sh, false, err);
}

json_t *swarm_self_node(struct shoal *sh, const char *role)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long long mem = (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
    json_int_t now = (json_int_t)now_ms();
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{}, s:{s:i, s:I}, s:I, s:I}", "id",
                     sh->node_id, "hostname", sh->hostname, "addr", sh->swarm_addr, "role", role,
                     "availability", "active", "status", "ready", "labels", "resources", "cpus",
                     (int)cpus, "memory", (json_int_t)mem, "created_at", now, "updated_at", now);
}

/* "IP", "IP:PORT" -> "IP:PORT" (IPv4 only: the raft TCP transport's limit). */
static int parse_addr(const char *in, char *out, size_t outlen, struct serr *err)
{
    char ip[64];
    long port = SHOAL_DEFAULT_PORT;
    const char *colon = strrchr(in, ':');
    size_t iplen = colon ? (size_t)(colon - in) : strlen(in);
    if (iplen == 0 || iplen >= sizeof(ip))
        return serr_set(err, SERR_INVALID, "invalid advertise address '%s' (want IP[:PORT])", in);
    memcpy(ip, in, iplen);
    ip[iplen] = '\0';
    if (colon) {
        char *end;
        port = strtol(colon + 1, &end, 10);
        if (*end != '\0' || port < 1 || port > 65535)
            return serr_set(err, SERR_INVALID, "invalid port in advertise address '%s'", in);
    }
    struct in_addr a;
    if (inet_pton(AF_INET, ip, &a) != 1)
        return serr_set(err, SERR_INVALID, "invalid advertise address '%s' (want an IPv4 address)",
                        in);
    snprintf(out, outlen, "%s:%ld", ip, port);
    return 0;
}

struct init_ctx {
    struct shoal *sh;
    struct http_req *req;
    uv_timer_t timer;
    int64_t deadline;
    char cluster_id[33];
};

static void init_ctx_closed(uv_handle_t *h)
{
    free(h->data);
}

static void init_committed(void *arg, int status, const struct serr *err)
{
    struct init_ctx *ctx = arg;
    if (status < 0) {
        http_respond_error(ctx->req, err);
    } else {
        char reply[200];
        snprintf(reply, sizeof(reply), "{\"node_id\":\"%s\",\"cluster_id\":\"%s\"}",
                 ctx->sh->node_id, ctx->cluster_id);
        http_respond(ctx->req, 200, "application/json", reply, strlen(reply));
        log_info("swarm initialized: cluster %s, raft address %s", ctx->cluster_id,
                 ctx->sh->swarm_addr);
    }
    uv_close((uv_handle_t *)&ctx->timer, init_ctx_closed);
}

static void init_wait_leader(uv_timer_t *t)
{
    struct init_ctx *ctx = t->data;
    struct shoal *sh = ctx->sh;
    if (!cluster_is_leader(sh->cluster)) {
        if (mono_ms() < ctx->deadline)
            return;
        uv_timer_stop(t);
        struct serr err;
        serr_set(&err, SERR_UNAVAILABLE, "the new cluster elected no leader in time");
        init_committed(ctx, -1, &err);
        return;
    }
    uv_timer_stop(t);
    json_int_t now = (json_int_t)now_ms();
    json_t *group = json_pack("[o, o]",
                              op_put("meta", json_pack("{s:s, s:s, s:I}", "id", "cluster",
                                                       "cluster_id", ctx->cluster_id,
                                                       "created_at", now)),
                              op_put("nodes", swarm_self_node(sh, "manager")));
    cluster_propose(sh->cluster, group, init_committed, ctx);
}

static int write_swarm_file(struct shoal *sh, const char *cluster_id, struct serr *err)
{
    char raft_id[17];
    snprintf(raft_id, sizeof(raft_id), "%016llx", (unsigned long long)sh->raft_id);
    json_t *cfg = json_pack("{s:s, s:s, s:s}", "addr", sh->swarm_addr, "raft_id", raft_id,
                            "cluster_id", cluster_id);
    char *text = json_dumps(cfg, JSON_INDENT(2));
    char *path = shoal_state_path(sh, "swarm.json");
    int rc = write_file_atomic(path, text, strlen(text), true, err);
    free(path);
    free(text);
    json_decref(cfg);
    return rc;
}

static void forget_swarm_files(struct shoal *sh)
{
    char *path = shoal_state_path(sh, "swarm.json");
    char *raft = shoal_state_path(sh, "raft");
    unlink(path);
    rm_rf(raft, NULL);
    free(path);
    free(raft);
}

void swarm_init(struct shoal *sh, struct http_req *req, json_t *body)
{
    struct serr err = {0};
    if (sh->cluster) {
        serr_set(&err, SERR_CONFLICT, "This node is already part of a swarm. Use \"shoal swarm "
                                      "leave\" to leave this swarm and join another one.");
        http_respond_error(req, &err);
        return;
    }
    const char *want = json_string_value(json_object_get(body, "advertise_addr"));
    char addr[96];
    if (parse_addr(want && *want ? want : "127.0.0.1", addr, sizeof(addr), &err) < 0) {
        http_respond_error(req, &err);
        return;
    }
    struct init_ctx *ctx = xcalloc(1, sizeof(*ctx));
    ctx->sh = sh;
    ctx->req = req;
    random_hex(ctx->cluster_id, 32);
    do {
        if (getrandom(&sh->raft_id, sizeof(sh->raft_id), 0) != sizeof(sh->raft_id))
            abort();
    } while (sh->raft_id == 0);
    free(sh->swarm_addr);
    sh->swarm_addr = xstrdup(addr);
    forget_swarm_files(sh); /* leftovers of a half-finished leave */
    if (write_swarm_file(sh, ctx->cluster_id, &err) < 0 || start_cluster(sh, true, &err) < 0) {
        sh->cluster = NULL;
        forget_swarm_files(sh);
        http_respond_error(req, &err);
        free(ctx);
        return;
    }
    uv_timer_init(sh->loop, &ctx->timer);
    ctx->timer.data = ctx;
    ctx->deadline = mono_ms() + LEADER_WAIT_MS;
    uv_timer_start(&ctx->timer, init_wait_leader, 0, 5);
}

struct leave_ctx {
    struct shoal *sh;
    struct http_req *req;
};

static void leave_cluster_stopped(void *arg)
{
    struct leave_ctx *ctx = arg;
    struct shoal *sh = ctx->sh;
    forget_swarm_files(sh);
    store_close(sh->store);
    struct serr err;
    if (store_open(&sh->store, &err) < 0) {
        log_error("store: %s", err.msg);
        abort();
    }
    free(sh->swarm_addr);
    sh->swarm_addr = NULL;
    sh->raft_id = 0;
    agent_sync(sh->agent); /* forgets the finished task containers */
    http_respond(ctx->req, 200, "application/json", "{}", 2);
    log_info("left the swarm");
    free(ctx);
}

static void leave_tasks_stopped(void *arg)
{
    struct leave_ctx *ctx = arg;
    struct cluster *c = ctx->sh->cluster;
    ctx->sh->cluster = NULL;
    cluster_stop(c, leave_cluster_stopped, ctx);
}

void swarm_leave(struct shoal *sh, struct http_req *req, int force)
{
    struct serr err = {0};
    if (sh->cluster == NULL) {
        serr_set(&err, SERR_UNAVAILABLE, "This node is not part of a swarm");
        http_respond_error(req, &err);
        return;
    }
    if (!force) {
        serr_set(&err, SERR_CONFLICT,
                 "You are attempting to leave the swarm on a node that is participating as a "
                 "manager. Removing the last manager erases all current state of the swarm. Use "
                 "`--force` to ignore this message.");
        http_respond_error(req, &err);
        return;
    }
    struct leave_ctx *ctx = xcalloc(1, sizeof(*ctx));
    ctx->sh = sh;
    ctx->req = req;
    agent_stop_all(sh->agent, leave_tasks_stopped, ctx);
}
