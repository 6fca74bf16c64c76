/* Internals shared by the swarm membership files (public API: swarm.h):
 *   swarm_state.c   the files: swarm.json, tls/, ca/ (written from the store)
 *   swarm_member.c  starting and stopping the node's parts, resume, addresses
 *   swarm_init.c    swarm init, --force-new-cluster
 *   swarm_join.c    join, the joining node's side (the client)
 *   swarm_admit.c   join, the leader's side (the server)
 *   swarm_tokens.c  join tokens (show, rotate)
 *   swarm_leave.c   swarm leave
 *   swarm_role.c    role changes (promote, demote) learnt from the session
 *   swarm_secrets.c the managers' secrets data key */
#ifndef SHOAL_DAEMON_SWARM_INT_H
#define SHOAL_DAEMON_SWARM_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

struct shoal;

/* ---- swarm_state.c: files under <state_dir> ---- */

/* `rel` is relative to the state directory. read_text returns a new string
 * (caller frees) or NULL with err set. */
int swarm_state_write_text(struct shoal *sh, const char *rel, const char *text, struct serr *err);
char *swarm_state_read_text(struct shoal *sh, const char *rel, struct serr *err);
/* swarm.json. join_addr: the manager's host name the node joined through,
 * kept to be resolved again (NULL when it joined through an IP, or for init). */
int swarm_state_save(struct shoal *sh, const char *cluster_id, json_t *managers,
                     const char *join_addr, struct serr *err);
/* tls/ca.crt, tls/node.crt, tls/node.key. */
int swarm_state_save_tls(struct shoal *sh, const char *ca, const char *cert, const char *key,
                         struct serr *err);
/* Removes swarm.json, raft/, tls/ and ca/. */
void swarm_state_forget(struct shoal *sh);
/* The CA files of <state_dir>/ca/ as a meta object for the store (new reference). */
json_t *swarm_state_ca_meta(struct shoal *sh, struct serr *err);

/* ---- swarm_member.c: the node's parts ---- */

/* Raft on <state_dir>/raft; force_new: --force-new-cluster (raft_recover). */
int swarm_start_cluster(struct shoal *sh, bool bootstrap, bool force_new, struct serr *err);
/* Certificates loaded; managers: raft, cluster port, dispatcher; everyone:
 * the session with the leader. */
int swarm_start_member(struct shoal *sh, bool bootstrap, json_t *managers, struct serr *err);
/* The managers to try first: those known, then the name joined through
 * (new reference). */
json_t *swarm_managers_with(json_t *managers, const char *join_addr);
/* Replaces sh->listen_addr and sh->swarm_addr with copies (NULL for none). */
void swarm_set_addrs(struct shoal *sh, const char *listen, const char *advertise);
/* A random raft id in sh->raft_id (non-zero, below 2^62). */
void swarm_new_raft_id(struct shoal *sh);
/* The store is rebuilt from the raft log when raft starts: start from empty. */
void swarm_reset_store(struct shoal *sh);
/* The listen and advertise addresses ("IP:PORT", 40 bytes each) from the
 * request's listen_addr and advertise_addr (daemon/addr.h); toward_ip: the
 * manager a join goes to. */
int swarm_choose_addrs(struct shoal *sh, json_t *body, const char *toward_ip, char *listen,
                       char *advertise, struct serr *err);
/* The answer to init or join on a node already in a swarm. */
extern const char swarm_already_member[];

#endif
