/* TLS for libuv protocols that speak plain streams (HTTP, Raft).
 *
 * After the TLS handshake on a TCP connection the caller gets a plain file
 * descriptor: one end of an AF_UNIX SOCK_STREAM socketpair (nonblocking,
 * close-on-exec) that it can hand to uv_pipe_open(). The proxy holds the other
 * end and pumps bytes between it and the TLS connection on the same loop, with
 * OpenSSL memory BIOs (no threads).
 *
 * Ownership: the caller owns plain_fd from the callback on and must close it
 * (uv_close on the pipe it opened, or close()). The proxy owns the TCP side
 * and its end of the pair. EOF on either side shuts the other side's write
 * direction down (TLS close_notify + TCP FIN, or shutdown(SHUT_WR) on the pair);
 * once both directions ended, or on any error, everything is closed and freed.
 * Closing plain_fd is therefore how the caller ends a connection.
 *
 * Back-pressure: a side is not read while more than TLSPROXY_HIGH_WATER bytes
 * wait to be written to the other side.
 *
 * TLS 1.3 clients finish the handshake before the server has checked their
 * certificate, so a client waits for the server's first session ticket (shoal
 * servers, see tls/tls_ctx.c, send one) or application data before it reports
 * success: a refused client certificate shows as a failed connect, not as a
 * connection that closes at once.
 *
 * The SSL_CTX must stay alive while connections made with it exist (OpenSSL
 * keeps a reference per connection, so SSL_CTX_free after tlsproxy_listen or
 * tlsproxy_connect is fine).
 *
 * The process must ignore SIGPIPE (the daemon does): a caller that closes its fd
 * while data is on the way makes the proxy's next write fail with EPIPE, which
 * ends the connection. */
#ifndef SHOAL_BASE_TLSPROXY_H
#define SHOAL_BASE_TLSPROXY_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <uv.h>

#include "base/err.h"

#define TLSPROXY_HIGH_WATER (1024 * 1024)

/* Connections the kernel queues for accept (capped by net.core.somaxconn):
 * every heartbeat is a new connection, and a large cluster's arrive in bursts
 * while the loop is busy; at 128, bench/c1m at 500 nodes overflowed the queue
 * (dropped SYNs, retried by the nodes 1 and 3 s later). */
#define TLSPROXY_BACKLOG 4096
#define TLSPROXY_HANDSHAKE_TIMEOUT_MS 5000

struct tlsproxy_listener;

/* A server-side connection whose handshake completed. peer_node_id and peer_role
 * are the client certificate's CN and OU, "" without one. The strings live only
 * during the call. */
typedef void (*tlsproxy_accept_cb)(void *data, int plain_fd, const char *peer_node_id,
                                   const char *peer_role, const char *peer_addr);

/* Called exactly once per tlsproxy_connect() that returned 0. status 0: plain_fd
 * is the caller's and peer_* name the server's certificate. status < 0 (a UV_*
 * code, UV_ETIMEDOUT after TLSPROXY_HANDSHAKE_TIMEOUT_MS, UV_EPROTO for TLS
 * failures): plain_fd is -1 and errmsg says why, e.g. "connect to 10.0.0.2:2377:
 * connection refused" or "TLS handshake with 10.0.0.2:2377 failed: the manager's
 * CA does not match the token's digest". */
typedef void (*tlsproxy_connect_cb)(void *data, int status, int plain_fd,
                                    const char *peer_node_id, const char *peer_role,
                                    const char *errmsg);

/* Listens on "IP:PORT" (IPv4, or [IPv6]:PORT; port 0 picks a free one, see
 * tlsproxy_listener_port). Handshakes that do not finish within
 * TLSPROXY_HANDSHAKE_TIMEOUT_MS, or fail, are dropped (logged at debug level);
 * cb sees only completed ones. The listener takes its own reference on ctx. */
int tlsproxy_listen(uv_loop_t *loop, const char *addr, SSL_CTX *ctx, tlsproxy_accept_cb cb,
                    void *data, struct tlsproxy_listener **out, struct serr *err);
/* The context of a connection just accepted, borrowed (the connection takes
 * its own reference), or NULL to close it at once. */
typedef SSL_CTX *(*tlsproxy_ctx_cb)(void *data);
/* As tlsproxy_listen, but each connection's context is ctx_cb(data), asked at
 * its accept: a daemon can make its contexts (and load OpenSSL) only when a
 * first peer connects, and a new certificate serves the next connections. */
int tlsproxy_listen_lazy(uv_loop_t *loop, const char *addr, tlsproxy_ctx_cb ctx_cb,
                         tlsproxy_accept_cb cb, void *data, struct tlsproxy_listener **out,
                         struct serr *err);
int tlsproxy_listener_port(const struct tlsproxy_listener *l);
/* Caps on the connections the listener holds at once (handshaking or open,
 * until both sides closed), in all and from one IP address; 0: no cap. A
 * connection over a cap is closed at once (logged, rate-limited). Addresses
 * for which exempt(data, ip) is true (other nodes: a flood from many
 * addresses must not cut heartbeats, nor a burst of forwarded writes) are
 * not refused by the listener's cap, and may hold max_conns connections
 * instead of max_per_addr. exempt may be NULL. */
void tlsproxy_listener_set_caps(struct tlsproxy_listener *l, int max_conns, int max_per_addr,
                                bool (*exempt)(void *data, const char *ip));
int tlsproxy_listener_conn_count(const struct tlsproxy_listener *l);
/* Stops listening and drops connections still in their handshake; connections
 * already given to the callback live on. done(arg) runs once the listener is
 * freed (done may be NULL). */
void tlsproxy_listener_close(struct tlsproxy_listener *l, void (*done)(void *), void *arg);

/* Connects to "IP:PORT" and runs the client handshake; the result goes to cb.
 * Fails synchronously (and then never calls cb) on a bad address or when the
 * connect cannot even start. */
int tlsproxy_connect(uv_loop_t *loop, const char *addr, SSL_CTX *ctx, tlsproxy_connect_cb cb,
                     void *data, struct serr *err);

/* Closes every connection of `loop` at once, whatever it waits for (a peer
 * that reads nothing keeps a connection whose caller closed its fd alive:
 * back-pressure stops the proxy from reading that end). For a daemon that
 * stops; connects still in progress fail with UV_ECANCELED. */
void tlsproxy_close_all(uv_loop_t *loop);

#endif
