/* The cluster port: node-to-node links over mutual TLS. One listener on the
 * advertised address carries both Raft (connections that start with the
 * line "RAFT <id> <address>") and the HTTP API (everything else), so a
 * node needs one open port. Outgoing links give a plain file descriptor once
 * the TLS handshake is done; the TLS work happens in src/base/tlsproxy.c. */
#ifndef SHOAL_DAEMON_CLUSTERNET_H
#define SHOAL_DAEMON_CLUSTERNET_H

#include <stdbool.h>

#include "base/err.h"

struct shoal;
struct raft_uv_transport;

/* fd >= 0: a connected plain stream (caller owns it); else errmsg says why. */
typedef void (*clusternet_connect_cb)(void *arg, int fd, const char *errmsg);

/* Connects to another node with this node's certificate. addr is "IP:PORT"
 * or "NAME:PORT": a name is resolved (getaddrinfo, off the loop) on every
 * call, and errors name it: "cannot resolve NAME: ...", "cannot connect to
 * NAME:PORT (IP): ...". */
void clusternet_connect(struct shoal *sh, const char *addr, clusternet_connect_cb cb, void *arg);

/* Connects to a manager to join: no client certificate; the server's CA must
 * have the sha256 `ca_digest` (hex) from the join token. */
void clusternet_connect_pinned(struct shoal *sh, const char *addr, const char *ca_digest,
                               clusternet_connect_cb cb, void *arg);

/* Starts the listener on sh->listen_addr, else sh->swarm_addr (managers). */
int clusternet_listen(struct shoal *sh, struct serr *err);
/* True when the listener holds 3/4 of --max-connections or more: then the
 * sessions' connections are not kept (each answer closes its connection),
 * so that nodes kept out of the cap's last quarter still get in. */
bool clusternet_crowded(struct shoal *sh);
void clusternet_stop(struct shoal *sh);
/* Stops the listener and forgets the certificates (swarm leave, exit). Raft
 * must be closed first: it uses the transport. */
void clusternet_free(struct shoal *sh);

/* Takes (or takes again) this node's certificate, key and CA from
 * <state_dir>/tls/: fails if a file is missing; the TLS contexts are made
 * from them at the next connection that needs one, so that a node no peer
 * talks to never loads OpenSSL (a file that does not parse is then logged;
 * clusternet_check_tls checks them at start). */
int clusternet_load_tls(struct shoal *sh, struct serr *err);

/* The hidden verb of this binary that checks a node certificate (main.c):
 * `shoal CLUSTERNET_CHECK_COMMAND TLS_DIR` makes the cluster port's contexts
 * from TLS_DIR and exits 0, or prints why it cannot and exits 1. */
#define CLUSTERNET_CHECK_COMMAND "_check-node-cert"
int clusternet_check_main(int argc, char **argv);

/* Checks, at the daemon's start, that <state_dir>/tls/ makes the cluster
 * port's contexts, in a process of this binary (sh->exe) so that OpenSSL is
 * not loaded into the daemon (in the daemon when it cannot be run). -1 with
 * "node certificate: ..." when it does not: the start stops there, as it did
 * when the contexts were made at start. */
int clusternet_check_tls(struct shoal *sh, struct serr *err);

/* A raft transport over the cluster port (for cluster_start). */
struct raft_uv_transport *clusternet_raft_transport(struct shoal *sh);

#endif
