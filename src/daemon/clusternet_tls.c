/* Certificates and TLS links of the cluster port. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/tlsproxy.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/clusternet_int.h"
#include "daemon/shoal.h"
#include "manager/ca.h"

struct net *net_get(struct shoal *sh)
{
    if (sh->net == NULL) {
        sh->net = xcalloc(1, sizeof(struct net));
        sh->net->sh = sh;
    }
    return sh->net;
}

static char *tls_file(struct shoal *sh, const char *name)
{
    char *rel = xasprintf("tls/%s", name);
    char *path = shoal_state_path(sh, rel);
    free(rel);
    return path;
}

static char *read_tls(struct shoal *sh, const char *name, struct serr *err)
{
    char *path = tls_file(sh, name);
    char *text = NULL;
    int rc = read_file(path, &text, NULL, err);
    free(path);
    return rc == 0 ? text : NULL;
}

int clusternet_load_tls(struct shoal *sh, struct serr *err)
{
    struct net *net = net_get(sh);
    char *ca = read_tls(sh, "ca.crt", err);
    char *cert = ca ? read_tls(sh, "node.crt", err) : NULL;
    char *key = cert ? read_tls(sh, "node.key", err) : NULL;
    SSL_CTX *server = key ? tls_ctx_new(ca, cert, key, true, false, err) : NULL;
    SSL_CTX *client = server ? tls_ctx_new(ca, cert, key, false, true, err) : NULL;
    free(ca);
    free(cert);
    free(key);
    if (client == NULL) {
        SSL_CTX_free(server);
        return serr_wrap(err, "node certificate");
    }
    SSL_CTX_free(net->server_ctx);
    SSL_CTX_free(net->client_ctx);
    net->server_ctx = server;
    net->client_ctx = client;
    return 0;
}

struct connecting {
    clusternet_connect_cb cb;
    void *arg;
    SSL_CTX *own_ctx; /* pinning context made for this connect */
};

static void connected(void *data, int status, int fd, const char *peer_id, const char *peer_role,
                      const char *errmsg)
{
    struct connecting *c = data;
    SSL_CTX_free(c->own_ctx);
    c->cb(c->arg, status < 0 ? -1 : fd, errmsg ? errmsg : "connection failed");
    free(c);
}

struct later {
    uv_timer_t timer;
    struct connecting *c;
    char msg[512];
};

static void later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void later_fire(uv_timer_t *t)
{
    struct later *l = t->data;
    connected(l->c, -1, -1, NULL, NULL, l->msg);
    uv_close((uv_handle_t *)t, later_closed);
}

static void connected_later(struct shoal *sh, struct connecting *c, const char *msg)
{
    struct later *l = xcalloc(1, sizeof(*l));
    l->c = c;
    snprintf(l->msg, sizeof(l->msg), "%s", msg);
    uv_timer_init(sh->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, later_fire, 0, 0);
}

static void start_connect(struct shoal *sh, const char *addr, SSL_CTX *ctx, SSL_CTX *own,
                          clusternet_connect_cb cb, void *arg)
{
    struct connecting *c = xcalloc(1, sizeof(*c));
    c->cb = cb;
    c->arg = arg;
    c->own_ctx = own;
    struct serr err = {0};
    if (ctx == NULL) {
        serr_set(&err, SERR_UNAVAILABLE, "this node has no cluster certificate");
    } else if (tlsproxy_connect(sh->loop, addr, ctx, connected, c, &err) == 0) {
        return;
    }
    /* the callback must not run from within the caller's call */
    connected_later(sh, c, err.msg);
}

void clusternet_connect(struct shoal *sh, const char *addr, clusternet_connect_cb cb, void *arg)
{
    start_connect(sh, addr, net_get(sh)->client_ctx, NULL, cb, arg);
}

void clusternet_connect_pinned(struct shoal *sh, const char *addr, const char *ca_digest,
                               clusternet_connect_cb cb, void *arg)
{
    struct serr err = {0};
    SSL_CTX *ctx = tls_ctx_new_pinning(ca_digest, &err);
    start_connect(sh, addr, ctx, ctx, cb, arg);
}

static void accepted(void *data, int fd, const char *peer_id, const char *peer_role,
                     const char *peer_addr)
{
    net_incoming(data, fd, peer_id, peer_role);
}

int clusternet_listen(struct shoal *sh, struct serr *err)
{
    struct net *net = net_get(sh);
    if (net->listener)
        return 0;
    if (net->server_ctx == NULL && clusternet_load_tls(sh, err) < 0)
        return -1;
    if (tlsproxy_listen(sh->loop, sh->swarm_addr, net->server_ctx, accepted, net, &net->listener,
                        err) < 0)
        return serr_wrap(err, "cluster port %s", sh->swarm_addr);
    log_info("cluster port listening on %s (mutual TLS)", sh->swarm_addr);
    return 0;
}

void clusternet_stop(struct shoal *sh)
{
    struct net *net = sh->net;
    if (net == NULL)
        return;
    if (net->listener)
        tlsproxy_listener_close(net->listener, NULL, NULL);
    net->listener = NULL;
}

void clusternet_free(struct shoal *sh)
{
    struct net *net = sh->net;
    if (net == NULL)
        return;
    clusternet_stop(sh);
    tlsproxy_close_all(sh->loop); /* raft is closed: what is left goes too */
    SSL_CTX_free(net->server_ctx);
    SSL_CTX_free(net->client_ctx);
    free(net);
    sh->net = NULL;
}
