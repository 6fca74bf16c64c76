/* Swarm membership of this node: init (new cluster with its CA), join with a
 * token, resume after a restart, leave; and the leader's side of joining.
 * Keeps <state_dir>/swarm.json (advertise and listen addresses, raft id, role,
 * managers, the manager's host name joined through),
 * <state_dir>/tls/ (CA, node certificate and key) and, on managers,
 * <state_dir>/ca/ (written from the store).
 * One concept per file: daemon/swarm_*.c, listed in swarm_int.h. */
#ifndef SHOAL_DAEMON_SWARM_H
#define SHOAL_DAEMON_SWARM_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

struct shoal;

/* When swarm.json exists, checks that the node certificate makes the cluster
 * port's TLS contexts (clusternet_check_tls): run before anything starts, so
 * that a failure stops the start with the reason and leaves nothing running. */
int swarm_check_tls(struct shoal *sh, struct serr *err);
/* Starts the node's swarm parts again when swarm.json exists. */
int swarm_resume(struct shoal *sh, struct serr *err);

/* How a swarm operation that outlives its call ends (libuv style): status 0
 * and `result`, the answer (a new reference the callback takes over; NULL when
 * it could not be encoded), or status -1 and `err` (result NULL). The swarm
 * code speaks no HTTP: api/ turns this into the answer. */
typedef void (*swarm_done_cb)(void *data, int status, json_t *result, const struct serr *err);

/* The local API's operations (POST /v1/swarm/init, /join, /leave; `body` is
 * the request's, borrowed). Each returns -1 with err set when it cannot start
 * (done is then never called), else 0, and calls done(data, ...) exactly once,
 * later, from the loop. */
int swarm_init(struct shoal *sh, json_t *body, swarm_done_cb done, void *data, struct serr *err);
int swarm_join(struct shoal *sh, json_t *body, swarm_done_cb done, void *data, struct serr *err);
int swarm_leave(struct shoal *sh, bool force, swarm_done_cb done, void *data, struct serr *err);

/* GET /v1/swarm/join-token/ROLE: {"role", "token", "command"} (new reference),
 * or NULL with err set. */
json_t *swarm_join_token(struct shoal *sh, const char *role, struct serr *err);
/* POST /v1/swarm/join-token/ROLE/rotate: a new secret for the role, committed
 * to the store; done gets the new token as swarm_join_token's. Returns as
 * swarm_init. */
int swarm_join_token_rotate(struct shoal *sh, const char *role, swarm_done_cb done, void *data,
                            struct serr *err);

/* Cluster port, POST /v1/cluster/join from a node holding a token (`body`
 * borrowed), on the leader (the caller checked). Returns as swarm_init. */
int swarm_accept_join(struct shoal *sh, json_t *body, swarm_done_cb done, void *data,
                      struct serr *err);

/* Writes the cluster CA from the store into <state_dir>/ca/ and returns that
 * directory (caller frees), or NULL. Managers only. */
/* The managers' addresses a node learnt from the leader, kept in swarm.json
 * (written only when they changed) so a restarted node finds a leader even
 * when the managers it joined through are gone. */
int swarm_remember_managers(struct shoal *sh, json_t *managers, struct serr *err);
char *swarm_ca_dir(struct shoal *sh, struct serr *err);

/* The managers' secrets data key (swarm_secrets.c): made at init (no-op
 * when present), read, added to an answer for a new manager ("secrets_key"),
 * saved from such an answer (no-op without it), removed at demotion. */
int swarm_secrets_key_init(struct shoal *sh, struct serr *err);
int swarm_secrets_key(struct shoal *sh, unsigned char key[32], struct serr *err);
void swarm_secrets_key_offer(struct shoal *sh, json_t *reply);
int swarm_secrets_key_take(struct shoal *sh, json_t *answer, struct serr *err);
void swarm_secrets_key_drop(struct shoal *sh);
/* swarm init --autolock: the key file replaced by the key sealed with a new
 * unlock key ("SWMKEY-1-BASE64", *unlock_key, caller frees), the key kept in
 * memory; after a restart secrets are refused until swarm_unlock. */
int swarm_secrets_key_lock(struct shoal *sh, char **unlock_key, struct serr *err);
int swarm_unlock(struct shoal *sh, const char *unlock_key, struct serr *err);
/* The store's meta "autolock" record for `unlock_key` (the unlock key sealed
 * with the data key; new), or NULL with err when the data key is locked. */
json_t *swarm_autolock_record(struct shoal *sh, const char *unlock_key, struct serr *err);
/* `swarm unlock-key`: the current unlock key (caller frees), or NULL with err
 * (not autolocked, this manager locked, or not stored). */
char *swarm_unlock_key_show(struct shoal *sh, struct serr *err);
/* `swarm unlock-key --rotate`: a new unlock key proposed; done gets
 * {"unlock_key"} once committed. Each manager seals its data key file with it
 * (swarm_autolock_sync); one down meanwhile still opens with the old key once. */
int swarm_unlock_key_rotate(struct shoal *sh, swarm_done_cb done, void *data, struct serr *err);
/* An unlocked manager of an autolocked swarm: reseals its data key file when
 * the store's unlock key changed since it last did (each daemon tick). */
void swarm_autolock_sync(struct shoal *sh);
/* The leader's session answer to a node: "secret_data" {id: base64} of the
 * secrets and configs its tasks (desired running) use and `have` (the ids
 * it holds) lacks. Nothing else ever sends a secret's data to a node. */
void swarm_secrets_for_node(struct shoal *sh, json_t *tasks, json_t *have, json_t *reply);
/* {id: true} of the secrets and configs the tasks (desired running) use. */
json_t *swarm_secrets_used(json_t *tasks);
/* A secret's or config's data (base64) for a task of this node: managers
 * decrypt the store's record, workers have it from their session. */
char *shoal_secret_data(struct shoal *sh, const char *table, const char *id, struct serr *err);

/* A new key and CSR for this node (role changes). */
int swarm_new_csr(struct shoal *sh, char **key_pem, char **csr_pem, struct serr *err);
/* Installs the certificate for `role` and starts or stops the manager parts. */
int swarm_change_role(struct shoal *sh, const char *role, const char *cert, const char *key,
                      struct serr *err);

/* Stops the session, dispatcher and cluster listener (not raft). */
void swarm_stop_member(struct shoal *sh);

/* The cluster addresses of every manager node in the store (new reference). */
json_t *swarm_manager_addrs(struct shoal *sh);
/* What task networking needs of every node with a subnet:
 * [{"id","addr","subnet"}] (new reference). */
json_t *swarm_node_addrs(struct shoal *sh);

/* The node object of this node (new reference) for the nodes table. */
json_t *swarm_self_node(struct shoal *sh, const char *role);

#endif
