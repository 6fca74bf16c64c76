/* swarm join, the joining node's side: resolves the manager, pins its CA by
 * the token's digest, sends the secret, a CSR and the node record, follows
 * a follower's answer to the leader once, then installs the certificate and
 * starts the node's parts. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/addr.h"
#include "daemon/clusternet.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "daemon/swarm_int.h"
#include "http/http_aclient.h"
#include "manager/service_container.h"
#include "tls/identity.h"

struct join_ctx {
    struct shoal *sh;
    swarm_done_cb done;
    void *data;
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

/* The node is in no swarm again. */
static void join_undo(struct shoal *sh)
{
    sh->role[0] = '\0';
    swarm_set_addrs(sh, NULL, NULL);
}

static void join_fail(struct join_ctx *j, enum serr_kind kind, const char *msg)
{
    struct serr err;
    join_undo(j->sh);
    serr_set(&err, kind, "%s", msg);
    j->done(j->data, -1, NULL, &err);
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
    json_t *managers = swarm_managers_with(known, join_addr);
    if (!role || !cert || !ca || !cluster_id) {
        json_decref(managers);
        join_fail(j, SERR_INTERNAL, "the manager's answer to join is incomplete");
        return;
    }
    snprintf(sh->role, sizeof(sh->role), "%s", role);
    if (swarm_state_save_tls(sh, ca, cert, j->key_pem, &err) < 0 ||
        swarm_secrets_key_take(sh, answer, &err) < 0 ||
        swarm_state_save(sh, cluster_id, known, join_addr, &err) < 0 ||
        swarm_start_member(sh, false, managers, &err) < 0) {
        json_decref(managers);
        swarm_stop_member(sh);
        swarm_state_forget(sh);
        join_fail(j, err.kind, err.msg);
        return;
    }
    json_decref(managers);
    log_info("joined the swarm %s as a %s, address %s", cluster_id, role, sh->swarm_addr);
    j->done(j->data, 0, json_pack("{s:s, s:s}", "node_id", sh->node_id, "role", role), NULL);
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
    json_t *labels = json_object_get(body, "labels");
    if (labels && service_check_labels(labels, "labels", err) < 0)
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
    if (swarm_choose_addrs(sh, j->body, manager_ip, listen, addr, err) < 0)
        return -1;
    char *csr = NULL;
    if (node_key_csr(sh->node_id, &j->key_pem, &csr, err) < 0)
        return -1;
    swarm_new_raft_id(sh);
    swarm_set_addrs(sh, listen, addr);
    json_t *self = swarm_self_node(sh, "worker");
    json_t *labels = json_object_get(j->body, "labels");
    if (labels)
        json_object_set(self, "labels", labels); /* swarm join --label */
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

int swarm_join(struct shoal *sh, json_t *body, swarm_done_cb done, void *data, struct serr *err)
{
    if (sh->role[0])
        return serr_set(err, SERR_CONFLICT, "%s", swarm_already_member);
    struct join_ctx *j = xcalloc(1, sizeof(*j));
    j->sh = sh;
    j->done = done;
    j->data = data;
    j->resolve.data = j;
    if (join_prepare(j, body, err) < 0) {
        join_ctx_free(j);
        return -1;
    }
    swarm_state_forget(sh);
    snprintf(sh->role, sizeof(sh->role), "joining");
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(sh->loop, &j->resolve, join_resolved, j->manager.host, NULL, &hints);
    if (rc < 0) {
        join_undo(sh);
        serr_set(err, SERR_UNAVAILABLE, "cannot resolve %s: %s", j->manager.host, uv_strerror(rc));
        join_ctx_free(j);
        return -1;
    }
    return 0;
}
