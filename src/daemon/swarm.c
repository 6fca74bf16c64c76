#include "daemon/swarm.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/net.h"
#include "api/api_int.h"
#include "api/http.h"
#include "api/http_aclient.h"
#include "base/log.h"
#include "base/platform.h"
#include "base/util.h"
#include "daemon/addr.h"
#include "daemon/clusternet.h"
#include "daemon/dispatch_host.h"
#include "daemon/session.h"
#include "daemon/shoal.h"
#include "manager/ca.h"
#include "manager/dispatcher.h"
#include "raft/cluster.h"
#include "store/store.h"

/* How long swarm init waits for the new one-voter cluster to elect itself. */
#define LEADER_WAIT_MS 10000

static void on_store_change(void *arg)
{
    shoal_kick(arg);
}

/* ---- files: swarm.json, tls/, ca/ ---- */

static char *state_file(struct shoal *sh, const char *rel)
{
    return shoal_state_path(sh, rel);
}

static int write_text(struct shoal *sh, const char *rel, const char *text, struct serr *err)
{
    char *path = state_file(sh, rel);
    int rc = write_file_atomic(path, text, strlen(text), true, err);
    free(path);
    return rc;
}

static char *read_text(struct shoal *sh, const char *rel, struct serr *err)
{
    char *path = state_file(sh, rel), *text = NULL;
    int rc = read_file(path, &text, NULL, err);
    free(path);
    return rc == 0 ? text : NULL;
}

/* join_addr: the manager's host name the node joined through, kept to be
 * resolved again (NULL when it joined through an IP, or for init). */
static int write_swarm_file(struct shoal *sh, const char *cluster_id, json_t *managers,
                            const char *join_addr, struct serr *err)
{
    char raft_id[17];
    snprintf(raft_id, sizeof(raft_id), "%016llx", (unsigned long long)sh->raft_id);
    json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s?, s:s?}", "addr", sh->swarm_addr,
                            "raft_id", raft_id, "cluster_id", cluster_id, "role", sh->role,
                            "managers", managers, "listen_addr", sh->listen_addr, "join_addr",
                            join_addr);
    char *text = json_dumps(cfg, JSON_INDENT(2));
    int rc = write_text(sh, "swarm.json", text, err);
    free(text);
    json_decref(cfg);
    return rc;
}

static void forget_swarm_files(struct shoal *sh)
{
    static const char *const paths[] = {"swarm.json", "raft", "tls", "ca", NULL};
    for (int i = 0; paths[i]; i++) {
        char *path = state_file(sh, paths[i]);
        rm_rf(path, NULL);
        free(path);
    }
}

static int write_node_tls(struct shoal *sh, const char *ca, const char *cert, const char *key,
                          struct serr *err)
{
    char *dir = state_file(sh, "tls");
    int rc = mkdir_p(dir, 0700, err);
    free(dir);
    if (rc == 0)
        rc = write_text(sh, "tls/ca.crt", ca, err);
    if (rc == 0)
        rc = write_text(sh, "tls/node.crt", cert, err);
    if (rc == 0)
        rc = write_text(sh, "tls/node.key", key, err);
    return rc;
}

/* The CA (key, certificate, join secrets) is cluster state, in the store's
 * meta "ca", so any manager that becomes leader can sign. The library works
 * on files: this writes them under <state_dir>/ca/ from the store. */
char *swarm_ca_dir(struct shoal *sh, struct serr *err)
{
    json_t *ca = store_get(sh->store, "meta", "ca");
    if (ca == NULL) {
        serr_set(err, SERR_UNAVAILABLE, "the cluster has no CA yet");
        return NULL;
    }
    char *dir = state_file(sh, "ca");
    static const char *const files[][2] = {{"ca/ca.crt", "cert"}, {"ca/ca.key", "key"},
                                           {"ca/tokens.json", "tokens"}};
    int rc = mkdir_p(dir, 0700, err);
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        const char *want = json_string_value(json_object_get(ca, files[i][1]));
        char *have = read_text(sh, files[i][0], NULL);
        if (want && (have == NULL || strcmp(have, want) != 0))
            rc = write_text(sh, files[i][0], want, err);
        free(have);
    }
    json_decref(ca);
    if (rc < 0) {
        free(dir);
        return NULL;
    }
    return dir;
}

/* The CA files as a meta object for the store (new reference). */
static json_t *ca_meta(struct shoal *sh, struct serr *err)
{
    char *cert = read_text(sh, "ca/ca.crt", err);
    char *key = cert ? read_text(sh, "ca/ca.key", err) : NULL;
    char *tokens = key ? read_text(sh, "ca/tokens.json", err) : NULL;
    json_t *meta = tokens ? json_pack("{s:s, s:s, s:s, s:s}", "id", "ca", "cert", cert, "key", key,
                                      "tokens", tokens)
                          : NULL;
    free(cert);
    free(key);
    free(tokens);
    return meta;
}

/* ---- starting the node's parts ---- */

static int start_cluster_mode(struct shoal *sh, bool bootstrap, bool force_new,
                              struct serr *err)
{
    char *dir = state_file(sh, "raft");
    struct cluster_config cfg = {.dir = dir,
                                 .raft_id = sh->raft_id,
                                 .addr = sh->swarm_addr,
                                 .bootstrap = bootstrap,
                                 .force_new = force_new,
                                 .transport = clusternet_raft_transport(sh)};
    int rc = cluster_start(sh->loop, sh->store, &cfg, on_store_change, sh, &sh->cluster, err);
    free(dir);
    return rc;
}

static int start_cluster(struct shoal *sh, bool bootstrap, struct serr *err)
{
    return start_cluster_mode(sh, bootstrap, false, err);
}

/* Certificates loaded; managers: raft, cluster port, dispatcher; everyone:
 * the session with the leader. */
static int start_member(struct shoal *sh, bool bootstrap, json_t *managers, struct serr *err)
{
    if (clusternet_load_tls(sh, err) < 0)
        return -1;
    if (strcmp(sh->role, "manager") == 0) {
        /* the port first: a busy one fails before raft runs */
        if (clusternet_listen(sh, err) < 0)
            return -1;
        if (start_cluster(sh, bootstrap, err) < 0)
            return -1;
        sh->dispatcher = shoal_dispatcher_start(sh);
    } else if (clusternet_listen(sh, err) < 0) {
        /* a worker's port serves managers only (its tasks' logs): not fatal */
        log_warn("%s: `service logs` cannot read this node's tasks", err->msg);
        memset(err, 0, sizeof(*err));
    }
    sh->session = session_start(sh, managers);
    return 0;
}

/* The managers to try first: those known, then the name joined through
 * (new reference). */
static json_t *managers_with(json_t *managers, const char *join_addr)
{
    json_t *out = json_is_array(managers) ? json_deep_copy(managers) : json_array();
    size_t i;
    json_t *m;
    json_array_foreach(out, i, m)
    {
        if (join_addr && strcmp(json_string_value(m) ? json_string_value(m) : "", join_addr) == 0)
            join_addr = NULL;
    }
    if (join_addr)
        json_array_append_new(out, json_string(join_addr));
    return out;
}

static void set_addrs(struct shoal *sh, const char *listen, const char *advertise)
{
    free(sh->listen_addr);
    free(sh->swarm_addr);
    sh->listen_addr = listen ? xstrdup(listen) : NULL;
    sh->swarm_addr = advertise ? xstrdup(advertise) : NULL;
}

int swarm_resume(struct shoal *sh, struct serr *err)
{
    char *path = state_file(sh, "swarm.json");
    json_t *cfg = json_load_file(path, 0, NULL);
    free(path);
    if (cfg == NULL)
        return 0; /* not in a swarm */
    const char *addr = json_string_value(json_object_get(cfg, "addr"));
    const char *raft_id = json_string_value(json_object_get(cfg, "raft_id"));
    const char *role = json_string_value(json_object_get(cfg, "role"));
    if (addr == NULL || raft_id == NULL) {
        json_decref(cfg);
        return serr_set(err, SERR_INTERNAL, "swarm.json is damaged");
    }
    set_addrs(sh, json_string_value(json_object_get(cfg, "listen_addr")), addr);
    sh->raft_id = strtoull(raft_id, NULL, 16);
    snprintf(sh->role, sizeof(sh->role), "%s", role ? role : "manager");
    log_info("resuming swarm membership as a %s, address %s", sh->role, sh->swarm_addr);
    json_t *managers = managers_with(json_object_get(cfg, "managers"),
                                     json_string_value(json_object_get(cfg, "join_addr")));
    int rc = start_member(sh, false, managers, err);
    json_decref(managers);
    json_decref(cfg);
    return rc;
}

json_t *swarm_self_node(struct shoal *sh, const char *role)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long long mem = (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
    json_int_t now = (json_int_t)now_ms();
    char raft_id[17];
    snprintf(raft_id, sizeof(raft_id), "%016llx", (unsigned long long)sh->raft_id);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{}, s:{s:i, s:I}, s:I, s:I, s:s, s:o}",
                     "id", sh->node_id, "hostname", sh->hostname, "addr", sh->swarm_addr, "role",
                     role, "availability", "active", "status", "ready", "labels", "resources",
                     "cpus", (int)cpus, "memory", (json_int_t)mem, "created_at", now, "updated_at",
                     now, "raft_id", raft_id, "platform", platform_self());
}

static void new_raft_id(struct shoal *sh)
{
    do {
        if (getrandom(&sh->raft_id, sizeof(sh->raft_id), 0) != sizeof(sh->raft_id))
            abort();
    } while (sh->raft_id == 0 || sh->raft_id > (1ULL << 62));
}

static int issue_own_cert(struct shoal *sh, const char *ca_dir, const char *role, struct serr *err)
{
    char *key = NULL, *csr = NULL, *cert = NULL, *ca = NULL;
    int rc = node_key_csr(sh->node_id, &key, &csr, err);
    if (rc == 0)
        rc = ca_sign(ca_dir, csr, sh->node_id, role, &cert, err);
    if (rc == 0)
        rc = ca_cert_pem(ca_dir, &ca, err);
    if (rc == 0)
        rc = write_node_tls(sh, ca, cert, key, err);
    free(key);
    free(csr);
    free(cert);
    free(ca);
    return rc;
}

/* ---- swarm init ---- */

struct init_ctx {
    struct shoal *sh;
    struct http_req *req;
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
        http_respond_error(ctx->req, err);
    } else {
        respond_json(ctx->req, 200, json_pack("{s:s, s:s, s:s?}", "node_id", ctx->sh->node_id,
                                               "cluster_id", ctx->cluster_id, "unlock_key",
                                               ctx->unlock_key));
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
    json_t *ca = ca_meta(sh, &err);
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
    cluster_propose(sh->cluster, group, init_committed, ctx);
}

static int init_files(struct shoal *sh, const char *cluster_id, struct serr *err)
{
    char *ca_dir = state_file(sh, "ca");
    int rc = ca_create(ca_dir, err);
    if (rc == 0)
        rc = swarm_secrets_key_init(sh, err);
    if (rc == 0)
        rc = issue_own_cert(sh, ca_dir, "manager", err);
    free(ca_dir);
    json_t *managers = json_pack("[s]", sh->swarm_addr);
    if (rc == 0)
        rc = write_swarm_file(sh, cluster_id, managers, NULL, err);
    json_decref(managers);
    return rc;
}

/* ---- --force-new-cluster: a lone surviving manager takes over ---- */

struct recover_ctx {
    struct shoal *sh;
    struct http_req *req;
};

/* The store is rebuilt from the raft log when raft starts: start from empty. */
static void reset_store(struct shoal *sh)
{
    struct serr err = {0};
    store_close(sh->store);
    if (store_open(&sh->store, &err) < 0) {
        log_error("store: %s", err.msg);
        abort();
    }
}

static void recover_stopped(void *arg)
{
    struct recover_ctx *r = arg;
    struct shoal *sh = r->sh;
    struct serr err = {0};
    reset_store(sh);
    if (start_cluster_mode(sh, false, true, &err) < 0) {
        http_respond_error(r->req, &err);
    } else {
        log_info("forced a new cluster: this manager is the only voter");
        respond_json(r->req, 200, json_pack("{s:s}", "node_id", sh->node_id));
    }
    free(r);
}

static void force_new_cluster(struct shoal *sh, struct http_req *req)
{
    if (strcmp(sh->role, "manager") != 0 || sh->cluster == NULL) {
        respond_err(req, SERR_INVALID, "--force-new-cluster needs a node that was a manager");
        return;
    }
    struct recover_ctx *r = xcalloc(1, sizeof(*r));
    r->sh = sh;
    r->req = req;
    struct cluster *c = sh->cluster;
    sh->cluster = NULL;
    cluster_stop(c, recover_stopped, r);
}

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

/* The listen and advertise addresses ("IP:PORT", 40 bytes each) from the
 * request's listen_addr and advertise_addr (daemon/addr.h); toward_ip: the
 * manager a join goes to. */
static int choose_addrs(struct shoal *sh, json_t *body, const char *toward_ip, char *listen,
                        char *advertise, struct serr *err)
{
    json_t *lis = json_object_get(body, "listen_addr");
    json_t *adv = json_object_get(body, "advertise_addr");
    if ((lis && !json_is_string(lis) && !json_is_null(lis)) ||
        (adv && !json_is_string(adv) && !json_is_null(adv)))
        return serr_set(err, SERR_INVALID, "listen_addr and advertise_addr must be strings");
    struct addr_env env;
    if (addr_env_load(&env, sh->bridge, toward_ip, err) < 0)
        return -1;
    int rc = addr_pick(&env, json_string_value(lis), json_string_value(adv), listen, 40,
                       advertise, 40, err);
    addr_env_free(&env);
    return rc;
}

static const char already_member[] = "This node is already part of a swarm. Use \"shoal swarm "
                                     "leave\" to leave this swarm and join another one.";

void swarm_init(struct shoal *sh, struct http_req *req, json_t *body)
{
    struct serr err = {0};
    if (json_is_true(json_object_get(body, "force_new_cluster"))) {
        force_new_cluster(sh, req);
        return;
    }
    if (sh->role[0]) {
        serr_set(&err, SERR_CONFLICT, "%s", already_member);
        http_respond_error(req, &err);
        return;
    }
    char listen[40], addr[40];
    struct init_ctx *ctx = xcalloc(1, sizeof(*ctx));
    if (check_pool(json_object_get(body, "default_addr_pool"), ctx->pool, sizeof(ctx->pool),
                   &err) < 0 ||
        check_overlay(json_object_get(body, "overlay"), &ctx->overlay, &err) < 0 ||
        choose_addrs(sh, body, NULL, listen, addr, &err) < 0) {
        http_respond_error(req, &err);
        free(ctx);
        return;
    }
    ctx->sh = sh;
    ctx->req = req;
    random_hex(ctx->cluster_id, 32);
    new_raft_id(sh);
    set_addrs(sh, listen, addr);
    snprintf(sh->role, sizeof(sh->role), "manager");
    forget_swarm_files(sh); /* leftovers of a half-finished leave */
    json_t *managers = json_pack("[s]", addr);
    int rc = init_files(sh, ctx->cluster_id, &err);
    if (rc == 0 && json_is_true(json_object_get(body, "autolock")))
        rc = swarm_secrets_key_lock(sh, &ctx->unlock_key, &err);
    if (rc == 0)
        rc = start_member(sh, true, managers, &err);
    json_decref(managers);
    if (rc < 0) {
        swarm_stop_member(sh);
        forget_swarm_files(sh);
        if (sh->cluster == NULL) { /* else it stays a manager whose raft runs */
            sh->role[0] = '\0';
            set_addrs(sh, NULL, NULL);
        }
        http_respond_error(req, &err);
        free(ctx->unlock_key);
        free(ctx);
        return;
    }
    uv_timer_init(sh->loop, &ctx->timer);
    ctx->timer.data = ctx;
    ctx->deadline = mono_ms() + LEADER_WAIT_MS;
    uv_timer_start(&ctx->timer, init_wait_leader, 0, 5);
}

/* ---- join (the joining node's side) ---- */

struct join_ctx {
    struct shoal *sh;
    struct http_req *req;
    json_t *body; /* the local request: listen_addr, advertise_addr */
    uv_getaddrinfo_t resolve;
    struct addr_hostport manager; /* as given: an IPv4 address or a host name */
    char given[ADDR_HOST_MAX + 8]; /* "HOST:PORT" */
    char remote[ADDR_HOST_MAX + 8]; /* where the join goes: given, then the leader it names */
    char digest[65];
    char secret[64];
    char *key_pem;
    char *request; /* JSON body sent to the manager */
    bool retried;
};

static void join_ctx_free(struct join_ctx *j)
{
    json_decref(j->body);
    free(j->key_pem);
    free(j->request);
    free(j);
}

static void join_fail(struct join_ctx *j, enum serr_kind kind, const char *msg)
{
    struct shoal *sh = j->sh;
    sh->role[0] = '\0';
    set_addrs(sh, NULL, NULL);
    respond_err(j->req, kind, msg);
    join_ctx_free(j);
}

static void join_send(struct join_ctx *j);

static void join_finish(struct join_ctx *j, json_t *answer)
{
    struct shoal *sh = j->sh;
    struct serr err = {0};
    const char *role = json_string_value(json_object_get(answer, "role"));
    const char *cert = json_string_value(json_object_get(answer, "cert"));
    const char *ca = json_string_value(json_object_get(answer, "ca"));
    const char *cluster_id = json_string_value(json_object_get(answer, "cluster_id"));
    /* a name is kept: resolved again when the managers' addresses have changed */
    const char *join_addr = addr_is_ipv4(j->manager.host) ? NULL : j->given;
    json_t *known = json_object_get(answer, "managers");
    json_t *managers = managers_with(known, join_addr);
    if (!role || !cert || !ca || !cluster_id) {
        json_decref(managers);
        join_fail(j, SERR_INTERNAL, "the manager's answer to join is incomplete");
        return;
    }
    snprintf(sh->role, sizeof(sh->role), "%s", role);
    if (write_node_tls(sh, ca, cert, j->key_pem, &err) < 0 ||
        swarm_secrets_key_take(sh, answer, &err) < 0 ||
        write_swarm_file(sh, cluster_id, known, join_addr, &err) < 0 ||
        start_member(sh, false, managers, &err) < 0) {
        json_decref(managers);
        swarm_stop_member(sh);
        forget_swarm_files(sh);
        join_fail(j, err.kind, err.msg);
        return;
    }
    json_decref(managers);
    log_info("joined the swarm %s as a %s, address %s", cluster_id, role, sh->swarm_addr);
    respond_json(j->req, 200, json_pack("{s:s, s:s}", "node_id", sh->node_id, "role", role));
    join_ctx_free(j);
}

static void join_answer(void *arg, int status, const char *body, size_t len, const char *errmsg)
{
    struct join_ctx *j = arg;
    json_t *answer = body ? json_loadb(body, len, 0, NULL) : NULL;
    const char *leader = json_string_value(json_object_get(answer, "leader"));
    if (status == 503 && leader && *leader && !j->retried && strcmp(leader, j->remote) != 0) {
        j->retried = true; /* that manager is not the leader: ask the leader */
        snprintf(j->remote, sizeof(j->remote), "%s", leader);
        json_decref(answer);
        join_send(j);
        return;
    }
    if (status == 200 && answer) {
        join_finish(j, answer);
    } else {
        const char *msg = json_string_value(json_object_get(answer, "message"));
        char text[800];
        snprintf(text, sizeof(text), "join refused by %s: %s", j->remote,
                 msg ? msg : errmsg ? errmsg : "bad answer");
        join_fail(j, status == 400 || status == 403 ? SERR_INVALID
                                                    : status < 0 ? SERR_UNAVAILABLE : SERR_INTERNAL,
                  text);
    }
    json_decref(answer);
}

static void join_connected(void *arg, int fd, const char *errmsg)
{
    struct join_ctx *j = arg;
    if (fd < 0) {
        char text[900];
        if (strncmp(errmsg, "cannot ", 7) == 0) /* it names the manager already */
            snprintf(text, sizeof(text), "cannot join the swarm: %s", errmsg);
        else
            snprintf(text, sizeof(text), "cannot join through %s: %s", j->remote, errmsg);
        join_fail(j, SERR_UNAVAILABLE, text);
        return;
    }
    http_arequest(j->sh->loop, fd, "POST", "/v1/cluster/join", "application/json", j->request,
                  strlen(j->request), -1, join_answer, j);
}

static void join_send(struct join_ctx *j)
{
    clusternet_connect_pinned(j->sh, j->remote, j->digest, join_connected, j);
}

/* The token and the manager's address; the rest waits for the manager's IP. */
static int join_prepare(struct join_ctx *j, json_t *body, struct serr *err)
{
    const char *token = json_string_value(json_object_get(body, "token"));
    const char *remote = json_string_value(json_object_get(body, "remote_addr"));
    if (token == NULL || remote == NULL)
        return serr_set(err, SERR_INVALID, "join needs a token and a manager address");
    if (token_parse(token, j->digest, j->secret, sizeof(j->secret), err) < 0)
        return -1;
    if (addr_split(remote, SHOAL_DEFAULT_PORT, &j->manager, err) < 0)
        return serr_wrap(err, "manager");
    if (!addr_is_ipv4(j->manager.host) && !addr_is_hostname(j->manager.host))
        return serr_set(err, SERR_INVALID,
                        "manager: invalid address '%s' (want an IPv4 address or a host name)",
                        remote);
    snprintf(j->given, sizeof(j->given), "%s:%d", j->manager.host, j->manager.port);
    snprintf(j->remote, sizeof(j->remote), "%s", j->given);
    j->body = json_incref(body);
    return 0;
}

/* This node's addresses (the manager's IP known), its key and the request. */
static int join_request(struct join_ctx *j, const char *manager_ip, struct serr *err)
{
    struct shoal *sh = j->sh;
    char listen[40], addr[40];
    if (choose_addrs(sh, j->body, manager_ip, listen, addr, err) < 0)
        return -1;
    char *csr = NULL;
    if (node_key_csr(sh->node_id, &j->key_pem, &csr, err) < 0)
        return -1;
    new_raft_id(sh);
    set_addrs(sh, listen, addr);
    json_t *self = swarm_self_node(sh, "worker");
    json_t *req = json_pack("{s:s, s:s, s:o}", "secret", j->secret, "csr", csr, "node", self);
    j->request = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    free(csr);
    return 0;
}

static void join_resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *res)
{
    struct join_ctx *j = r->data;
    struct serr err = {0};
    char ip[16] = "";
    if (status == 0 && res)
        uv_ip4_name((const struct sockaddr_in *)res->ai_addr, ip, sizeof(ip));
    uv_freeaddrinfo(res);
    if (ip[0] == '\0') {
        char text[400];
        snprintf(text, sizeof(text), "cannot resolve %s: %s", j->manager.host,
                 status < 0 ? uv_strerror(status) : "no IPv4 address");
        join_fail(j, SERR_UNAVAILABLE, text);
        return;
    }
    if (join_request(j, ip, &err) < 0) {
        join_fail(j, err.kind, err.msg);
        return;
    }
    join_send(j);
}

void swarm_join(struct shoal *sh, struct http_req *req, json_t *body)
{
    struct serr err = {0};
    if (sh->role[0]) {
        serr_set(&err, SERR_CONFLICT, "%s", already_member);
        http_respond_error(req, &err);
        return;
    }
    struct join_ctx *j = xcalloc(1, sizeof(*j));
    j->sh = sh;
    j->req = req;
    j->resolve.data = j;
    if (join_prepare(j, body, &err) < 0) {
        http_respond_error(req, &err);
        join_ctx_free(j);
        return;
    }
    forget_swarm_files(sh);
    snprintf(sh->role, sizeof(sh->role), "joining");
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(sh->loop, &j->resolve, join_resolved, j->manager.host, NULL, &hints);
    if (rc < 0) {
        char text[400];
        snprintf(text, sizeof(text), "cannot resolve %s: %s", j->manager.host, uv_strerror(rc));
        join_fail(j, SERR_UNAVAILABLE, text);
    }
}

/* ---- join (the leader's side) ---- */

struct accept_ctx {
    struct shoal *sh;
    struct http_req *req;
    json_t *reply;
};

static void accept_committed(void *arg, int status, const struct serr *err)
{
    struct accept_ctx *a = arg;
    if (status < 0) {
        http_respond_error(a->req, err);
        json_decref(a->reply);
    } else {
        respond_json(a->req, 200, a->reply);
    }
    free(a);
}

void respond_not_leader(struct shoal *sh, struct http_req *req)
{
    const char *leader = sh->cluster ? cluster_leader_addr(sh->cluster) : "";
    respond_json(req, 503,
                 json_pack("{s:s, s:s}", "message", "this manager is not the leader", "leader",
                           leader));
}

json_t *swarm_manager_addrs(struct shoal *sh)
{
    json_t *nodes = store_list(sh->store, "nodes", NULL), *addrs = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *role = json_string_value(json_object_get(n, "role"));
        if (role && strcmp(role, "manager") == 0)
            json_array_append(addrs, json_object_get(n, "addr"));
    }
    json_decref(nodes);
    return addrs;
}

json_t *swarm_node_addrs(struct shoal *sh)
{
    json_t *nodes = store_list(sh->store, "nodes", NULL), *out = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        if (json_object_get(n, "subnet"))
            json_array_append_new(out, json_pack("{s:O, s:O, s:O}", "id", json_object_get(n, "id"),
                                                 "addr", json_object_get(n, "addr"), "subnet",
                                                 json_object_get(n, "subnet")));
    }
    json_decref(nodes);
    return out;
}

/* Checks the secret, signs the node's CSR with the role the secret grants,
 * and records the node. Managers become raft voters through the
 * dispatcher's membership reconciliation once their raft is up. */
void swarm_accept_join(struct shoal *sh, struct http_req *req)
{
    if (sh->cluster == NULL || !cluster_is_leader(sh->cluster)) {
        respond_not_leader(sh, req);
        return;
    }
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    struct serr err = {0};
    const char *secret = json_string_value(json_object_get(body, "secret"));
    const char *csr = json_string_value(json_object_get(body, "csr"));
    json_t *node = json_object_get(body, "node");
    const char *node_id = json_string_value(json_object_get(node, "id"));
    char role[16], *cert = NULL, *ca = NULL;
    char *dir = NULL;
    json_t *existing = node_id ? store_get(sh->store, "nodes", node_id) : NULL;
    const char *existing_status = json_string_value(json_object_get(existing, "status"));
    if (!secret || !csr || !node_id || !json_string_value(json_object_get(node, "addr"))) {
        serr_set(&err, SERR_INVALID, "join request is incomplete");
    } else if (existing_status && strcmp(existing_status, "down") != 0) {
        /* an id is a certificate's identity: only a node that is gone may rejoin with it */
        serr_set(&err, SERR_CONFLICT, "a node with id %s is already in the swarm", node_id);
    } else if ((dir = swarm_ca_dir(sh, &err)) != NULL &&
               ca_token_check(dir, secret, role, &err) == 0 &&
               ca_sign(dir, csr, node_id, role, &cert, &err) == 0 &&
               ca_cert_pem(dir, &ca, &err) == 0) {
        json_t *meta = store_get(sh->store, "meta", "cluster");
        json_t *rec = json_deep_copy(node);
        json_object_set_new(rec, "role", json_string(role));
        json_object_set_new(rec, "status", json_string("ready"));
        json_object_set_new(rec, "availability", json_string("active"));
        json_object_set_new(rec, "labels", json_object()); /* labels are the managers' to set */
        json_t *managers = swarm_manager_addrs(sh);
        if (strcmp(role, "manager") == 0)
            json_array_append(managers, json_object_get(node, "addr"));
        struct accept_ctx *a = xcalloc(1, sizeof(*a));
        a->sh = sh;
        a->req = req;
        a->reply = json_pack("{s:s, s:s, s:s, s:O, s:o, s:s}", "role", role, "cert", cert, "ca",
                             ca, "cluster_id", json_object_get(meta, "cluster_id"), "managers",
                             managers, "leader", sh->swarm_addr);
        if (strcmp(role, "manager") == 0)
            swarm_secrets_key_offer(sh, a->reply);
        json_decref(meta);
        log_info("node %s (%s) joins as a %s", json_string_value(json_object_get(node, "hostname")),
                 node_id, role);
        cluster_propose(sh->cluster, json_pack("[o]", op_put("nodes", rec)), accept_committed, a);
    }
    if (err.msg[0])
        http_respond_error(req, &err);
    json_decref(existing);
    free(dir);
    free(cert);
    free(ca);
    json_decref(body);
}

/* ---- join tokens ---- */

struct token_ctx {
    struct http_req *req;
    json_t *reply;
};

static void token_committed(void *arg, int status, const struct serr *err)
{
    struct token_ctx *t = arg;
    if (status < 0) {
        http_respond_error(t->req, err);
        json_decref(t->reply);
    } else {
        respond_json(t->req, 200, t->reply);
    }
    free(t);
}

void swarm_join_token(struct shoal *sh, struct http_req *req, const char *role, bool rotate)
{
    struct serr err = {0};
    if (strcmp(role, "worker") != 0 && strcmp(role, "manager") != 0) {
        respond_err(req, SERR_INVALID, "join token role is worker or manager");
        return;
    }
    char *dir = swarm_ca_dir(sh, &err);
    char token[200];
    if (dir == NULL || (rotate && ca_token_rotate(dir, role, &err) < 0) ||
        ca_token(dir, role, token, sizeof(token), &err) < 0) {
        http_respond_error(req, &err);
        free(dir);
        return;
    }
    free(dir);
    char command[400];
    snprintf(command, sizeof(command), "shoal swarm join --token %s %s", token, sh->swarm_addr);
    json_t *reply = json_pack("{s:s, s:s, s:s}", "role", role, "token", token, "command", command);
    if (!rotate) {
        respond_json(req, 200, reply);
        return;
    }
    json_t *meta = ca_meta(sh, &err);
    if (meta == NULL) {
        http_respond_error(req, &err);
        json_decref(reply);
        return;
    }
    struct token_ctx *t = xcalloc(1, sizeof(*t));
    t->req = req;
    t->reply = reply;
    cluster_propose(sh->cluster, json_pack("[o]", op_put("meta", meta)), token_committed, t);
}

/* ---- leave ---- */

void swarm_stop_member(struct shoal *sh)
{
    session_stop(sh->session);
    sh->session = NULL;
    swarm_secrets_key_drop(sh);
    dispatcher_stop(sh->dispatcher);
    sh->dispatcher = NULL;
    clusternet_stop(sh);
}

struct leave_ctx {
    struct shoal *sh;
    struct http_req *req;
};

static void leave_done(struct leave_ctx *ctx)
{
    struct shoal *sh = ctx->sh;
    clusternet_free(sh);
    forget_swarm_files(sh);
    reset_store(sh);
    set_addrs(sh, NULL, NULL);
    sh->raft_id = 0;
    sh->role[0] = '\0';
    /* like docker, a node that joins again is a new node: its old record
     * stays Down in the swarm it left until a manager removes it */
    random_hex(sh->node_id, 25);
    struct serr err = {0};
    if (write_text(sh, "node_id", sh->node_id, &err) < 0)
        log_warn("node id: %s", err.msg);
    agent_sync(sh->agent); /* forgets the finished task containers */
    agent_net_leave(sh->agent);
    http_respond(ctx->req, 200, "application/json", "{}", 2);
    log_info("left the swarm");
    free(ctx);
}

static void leave_cluster_stopped(void *arg)
{
    leave_done(arg);
}

static void leave_tasks_stopped(void *arg)
{
    struct leave_ctx *ctx = arg;
    struct shoal *sh = ctx->sh;
    swarm_stop_member(sh);
    struct cluster *c = sh->cluster;
    sh->cluster = NULL;
    if (c)
        cluster_stop(c, leave_cluster_stopped, ctx);
    else
        leave_done(ctx);
}

void swarm_leave(struct shoal *sh, struct http_req *req, int force)
{
    struct serr err = {0};
    if (sh->role[0] == '\0' || strcmp(sh->role, "joining") == 0) {
        serr_set(&err, SERR_UNAVAILABLE, "This node is not part of a swarm");
        http_respond_error(req, &err);
        return;
    }
    if (!force && strcmp(sh->role, "manager") == 0) {
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

/* ---- role changes (promote, demote) ---- */

int swarm_new_csr(struct shoal *sh, char **key_pem, char **csr_pem, struct serr *err)
{
    return node_key_csr(sh->node_id, key_pem, csr_pem, err);
}

/* The leader signed a certificate for this node's new role: take it, then
 * start or stop the manager's parts. */
int swarm_change_role(struct shoal *sh, const char *role, const char *cert, const char *key,
                      struct serr *err)
{
    char *ca = read_text(sh, "tls/ca.crt", err);
    if (ca == NULL || write_node_tls(sh, ca, cert, key, err) < 0) {
        free(ca);
        return -1;
    }
    free(ca);
    if (clusternet_load_tls(sh, err) < 0)
        return -1;
    char *path = state_file(sh, "swarm.json");
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
        reset_store(sh);
        if (start_cluster(sh, false, err) < 0 || clusternet_listen(sh, err) < 0)
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
    char *raft = state_file(sh, "raft");
    rm_rf(raft, NULL); /* a later promotion starts with an empty log */
    free(raft);
    return 0;
}
