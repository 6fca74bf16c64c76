/* Internals of the cluster port shared by clusternet.c (Raft/HTTP split, raft
 * transport), clusternet_tls.c (certificates, TLS links) and
 * clusternet_check.c (the certificate checked at start). */
#ifndef SHOAL_DAEMON_CLUSTERNET_INT_H
#define SHOAL_DAEMON_CLUSTERNET_INT_H

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <raft.h>
#include <raft/uv.h>

#include "base/err.h"

struct shoal;
struct tlsproxy_listener;
struct raft_connect;

struct net {
    struct shoal *sh;
    /* Made at the first connection that needs them (clusternet_tls.c's net_ctx)
     * while tls_files says clusternet_load_tls found the certificate's files. */
    bool tls_files;
    SSL_CTX *server_ctx; /* presents the node certificate; client certs optional */
    SSL_CTX *client_ctx; /* presents the node certificate; verifies against the CA */
    struct tlsproxy_listener *listener;
    struct raft_uv_transport transport;
    raft_uv_accept_cb raft_accept;
    raft_id raft_id;
    char raft_addr[96];
    struct raft_connect *connects; /* raft connects in progress */
    raft_uv_transport_close_cb close_cb; /* raft's, until the deferred close runs */
    json_t *node_ips;       /* the swarm's node addresses (IPs), for the listener's cap */
    uint64_t node_ips_at;   /* uv_now() when read from the store */
};

/* The cluster port's two contexts from tls_dir's ca.crt, node.crt and
 * node.key: *server presents the certificate and lets clients without one in;
 * *client presents it and requires the peer's. Both made (the caller frees
 * them), or neither: -1, err "node certificate: ..." says why. */
int clusternet_tls_contexts(const char *tls_dir, SSL_CTX **server, SSL_CTX **client,
                            struct serr *err);

/* The daemon's net state, made on first use. */
struct net *net_get(struct shoal *sh);
/* A connection whose TLS handshake completed: Raft or HTTP. Takes fd. */
void net_incoming(struct net *net, int fd, const char *peer_id, const char *peer_role);

#endif
