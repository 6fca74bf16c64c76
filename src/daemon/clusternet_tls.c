/* Certificates and TLS links of the cluster port. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/tlsproxy.h"
#include "base/util.h"
#include "daemon/addr.h"
#include "daemon/clusternet.h"
#include "daemon/clusternet_int.h"
#include "daemon/shoal.h"
#include "tls/tls_ctx.h"
#include "store/store.h"

struct net *net_get(struct shoal *sh)
{
    if (sh->net == NULL) {
        sh->net = xcalloc(1, sizeof(struct net));
        sh->net->sh = sh;
    }
    return sh->net;
}

static char *read_tls(const char *tls_dir, const char *name, struct serr *err)
{
    char *path = xasprintf("%s/%s", tls_dir, name);
    char *text = NULL;
    int rc = read_file(path, &text, NULL, err);
    free(path);
    return rc == 0 ? text : NULL;
}

int clusternet_tls_contexts(const char *tls_dir, SSL_CTX **server, SSL_CTX **client,
                            struct serr *err)
{
    char *ca = read_tls(tls_dir, "ca.crt", err);
    char *cert = ca ? read_tls(tls_dir, "node.crt", err) : NULL;
    char *key = cert ? read_tls(tls_dir, "node.key", err) : NULL;
    *server = key ? tls_ctx_new(ca, cert, key, true, false, err) : NULL;
    *client = *server ? tls_ctx_new(ca, cert, key, false, true, err) : NULL;
    free(ca);
    free(cert);
    free(key);
    if (*client == NULL) {
        if (*server) /* not SSL_CTX_free(NULL): a missing file loads no OpenSSL */
            SSL_CTX_free(*server);
        *server = NULL;
        return serr_wrap(err, "node certificate");
    }
    return 0;
}

/* The node's two contexts from <state_dir>/tls/, both or neither. */
static int make_contexts(struct net *net, struct serr *err)
{
    char *dir = shoal_state_path(net->sh, "tls");
    int rc = clusternet_tls_contexts(dir, &net->server_ctx, &net->client_ctx, err);
    free(dir);
    return rc;
}

/* (Not even SSL_CTX_free(NULL) while none was made: the call would load
 * OpenSSL, base/lazy_stubs.S.) */
static void drop_contexts(struct net *net)
{
    if (net->server_ctx == NULL)
        return;
    SSL_CTX_free(net->server_ctx);
    SSL_CTX_free(net->client_ctx);
    net->server_ctx = net->client_ctx = NULL;
}

/* The contexts are made by the first connection that needs one, either way,
 * not when the certificate is loaded: a node no peer talks to (a one-node
 * swarm at rest) then never loads OpenSSL, ~4.5 MB of RSS (docs/benchmarks.md,
 * Session 11). NULL if they cannot be made: logged once, and the node then
 * has no certificate until the next clusternet_load_tls. */
static SSL_CTX *net_ctx(struct net *net, bool server)
{
    struct serr err = {0};
    if (net->server_ctx == NULL && net->tls_files && make_contexts(net, &err) < 0) {
        log_error("cluster port: %s", err.msg);
        net->tls_files = false;
    }
    return server ? net->server_ctx : net->client_ctx;
}

static SSL_CTX *server_ctx(void *data)
{
    return net_ctx(data, true);
}

int clusternet_load_tls(struct shoal *sh, struct serr *err)
{
    static const char *const files[] = {"ca.crt", "node.crt", "node.key"};
    struct net *net = net_get(sh);
    char *dir = shoal_state_path(sh, "tls");
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *text = read_tls(dir, files[i], err);
        if (text == NULL) {
            free(dir);
            return serr_wrap(err, "node certificate");
        }
        free(text);
    }
    free(dir);
    drop_contexts(net);
    net->tls_files = true;
    return 0;
}

struct connecting {
    struct shoal *sh;
    clusternet_connect_cb cb;
    void *arg;
    SSL_CTX *ctx;
    SSL_CTX *own_ctx; /* pinning context made for this connect */
    struct addr_hostport target; /* a host name, resolved before the connect */
    char ip[16];                 /* the address being tried */
    uv_getaddrinfo_t resolve;
    struct addrinfo *addrs; /* what the name resolved to (freed at the end) */
    struct addrinfo *next;  /* the address to try if this one fails */
};

static void connect_next(struct connecting *c);

static void connected(void *data, int status, int fd, const char *peer_id, const char *peer_role,
                      const char *errmsg)
{
    struct connecting *c = data;
    char named[700];
    if (status < 0 && c->next) { /* the name has more addresses: the next one */
        connect_next(c);
        return;
    }
    if (status < 0 && c->ip[0]) {
        /* tlsproxy names the IP; the user knows the manager by its name */
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "connect to %s:%d: ", c->ip, c->target.port);
        const char *reason = errmsg ? errmsg : "connection failed";
        if (strncmp(reason, prefix, strlen(prefix)) == 0)
            reason += strlen(prefix);
        snprintf(named, sizeof(named), "cannot connect to %s:%d (%s): %s", c->target.host,
                 c->target.port, c->ip, reason);
        errmsg = named;
    }
    SSL_CTX_free(c->own_ctx);
    uv_freeaddrinfo(c->addrs);
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

/* Tries the name's next address (errors name the last one tried). */
static void connect_next(struct connecting *c)
{
    struct addrinfo *ai = c->next;
    c->next = ai->ai_next;
    uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, c->ip, sizeof(c->ip));
    char addr[40];
    snprintf(addr, sizeof(addr), "%s:%d", c->ip, c->target.port);
    struct serr err = {0};
    if (tlsproxy_connect(c->sh->loop, addr, c->ctx, connected, c, &err) < 0)
        connected(c, -1, -1, NULL, NULL, err.msg);
}

/* Names are resolved again on every connect: a board's address may change.
 * Each of their IPv4 addresses is tried in turn. */
static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct connecting *c = req->data;
    if (status < 0 || res == NULL) {
        char msg[400];
        snprintf(msg, sizeof(msg), "cannot resolve %s: %s", c->target.host,
                 status < 0 ? uv_strerror(status) : "no IPv4 address");
        uv_freeaddrinfo(res);
        connected(c, -1, -1, NULL, NULL, msg);
        return;
    }
    c->addrs = c->next = res;
    connect_next(c);
}

static void start_connect(struct shoal *sh, const char *addr, SSL_CTX *ctx, SSL_CTX *own,
                          clusternet_connect_cb cb, void *arg)
{
    struct connecting *c = xcalloc(1, sizeof(*c));
    c->sh = sh;
    c->cb = cb;
    c->arg = arg;
    c->ctx = ctx;
    c->own_ctx = own;
    c->resolve.data = c;
    struct serr err = {0};
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    int rc;
    if (ctx == NULL) {
        serr_set(&err, SERR_UNAVAILABLE, "this node has no cluster certificate");
    } else if (addr_split(addr, SHOAL_DEFAULT_PORT, &c->target, &err) < 0) {
        /* the message says what is wrong with addr */
    } else if (addr_is_ipv4(c->target.host)) {
        if (tlsproxy_connect(sh->loop, addr, ctx, connected, c, &err) == 0)
            return;
    } else if ((rc = uv_getaddrinfo(sh->loop, &c->resolve, resolved, c->target.host, NULL,
                                    &hints)) == 0) {
        return;
    } else {
        serr_set(&err, SERR_UNAVAILABLE, "cannot resolve %s: %s", c->target.host, uv_strerror(rc));
    }
    /* the callback must not run from within the caller's call */
    connected_later(sh, c, err.msg);
}

void clusternet_connect(struct shoal *sh, const char *addr, clusternet_connect_cb cb, void *arg)
{
    start_connect(sh, addr, net_ctx(net_get(sh), false), NULL, cb, arg);
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

/* "IP:PORT" or "[IP6]:PORT" -> IP. */
static void host_of(const char *addr, char *out, size_t outlen)
{
    const char *colon = strrchr(addr, ':');
    size_t len = colon ? (size_t)(colon - addr) : strlen(addr);
    if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') {
        addr++;
        len -= 2;
    }
    snprintf(out, outlen, "%.*s", (int)len, addr);
}

#define NODE_IPS_TTL_MS 1000

/* Whether `ip` is a node's address (re-read from the store at most once a
 * second: this runs for each connection accepted, during a flood too). */
static bool node_ip(void *data, const char *ip)
{
    struct net *net = data;
    uint64_t now = uv_now(net->sh->loop);
    if (net->node_ips == NULL || now - net->node_ips_at >= NODE_IPS_TTL_MS) {
        json_decref(net->node_ips);
        net->node_ips = json_array();
        net->node_ips_at = now;
        json_t *nodes = store_list(net->sh->store, "nodes", "hostname");
        size_t i;
        json_t *n;
        json_array_foreach(nodes, i, n)
        {
            const char *addr = json_string_value(json_object_get(n, "addr"));
            char host[64];
            if (addr == NULL)
                continue;
            host_of(addr, host, sizeof(host));
            json_array_append_new(net->node_ips, json_string(host));
        }
        json_decref(nodes);
    }
    size_t i;
    json_t *v;
    json_array_foreach(net->node_ips, i, v) if (strcmp(json_string_value(v), ip) == 0) return true;
    return false;
}

int clusternet_listen(struct shoal *sh, struct serr *err)
{
    struct net *net = net_get(sh);
    if (net->listener)
        return 0;
    if (!net->tls_files && clusternet_load_tls(sh, err) < 0)
        return -1;
    const char *addr = sh->listen_addr ? sh->listen_addr : sh->swarm_addr;
    if (tlsproxy_listen_lazy(sh->loop, addr, server_ctx, accepted, net, &net->listener, err) < 0)
        return serr_wrap(err, "cluster port %s", addr);
    tlsproxy_listener_set_caps(net->listener, sh->net_limits.max_conns,
                               sh->net_limits.max_conns_per_addr, node_ip);
    log_info("cluster port listening on %s (mutual TLS), advertised as %s", addr, sh->swarm_addr);
    return 0;
}

bool clusternet_crowded(struct shoal *sh)
{
    struct net *net = sh->net;
    int max = sh->net_limits.max_conns;
    if (net == NULL || net->listener == NULL || max <= 0)
        return false;
    return tlsproxy_listener_conn_count(net->listener) >= max - max / 4;
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
    json_decref(net->node_ips);
    tlsproxy_close_all(sh->loop); /* raft is closed: what is left goes too */
    drop_contexts(net);
    free(net);
    sh->net = NULL;
}
