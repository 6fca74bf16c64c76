/* The cluster's certificate authority and join secrets: what only a manager
 * (the leader, or a manager minting an admin certificate) does. A node's own
 * identity, the token format and every TLS context are in tls/ (every node
 * uses them).
 *
 * Files in the CA directory (written by ca_create(), all mode 0600 but ca.crt):
 *   ca.key       EC P-256 private key of the CA (PEM)
 *   ca.crt       self-signed CA certificate (PEM), CN "shoal-ca", 10 years
 *   tokens.json  {"worker": SECRET, "manager": SECRET}, the two join secrets
 *
 * Join tokens and certificate identities: tls/identity.h.
 *
 * Every PEM string returned is a new NUL-terminated buffer the caller frees. */
#ifndef SHOAL_MANAGER_CA_H
#define SHOAL_MANAGER_CA_H

#include <stddef.h>

#include "base/err.h"

/* Creates the CA key, certificate and join secrets in `dir` (made if missing).
 * Refuses (SERR_CONFLICT) when a CA already exists there. */
int ca_create(const char *dir, struct serr *err);

/* Reads <dir>/ca.crt into a new string. */
int ca_cert_pem(const char *dir, char **ca_pem, struct serr *err);

/* Join tokens. `role` is "worker" or "manager". */
int ca_token(const char *dir, const char *role, char *out, size_t outlen, struct serr *err);
/* Replaces the role's secret: tokens holding the old one are refused from now on. */
int ca_token_rotate(const char *dir, const char *role, struct serr *err);
/* Which role a join secret grants ("worker" or "manager" into role_out). Unknown or
 * rotated secrets fail with SERR_INVALID "invalid join token (rotated or wrong)".
 * Compares in constant time. */
int ca_token_check(const char *dir, const char *secret, char role_out[16], struct serr *err);

/* CA side: checks the CSR's signature and that its CN is node_id, then issues a
 * certificate for one year: CN=node_id, OU=role, serverAuth+clientAuth, random
 * 128-bit serial. `role` is "manager", "worker" or "admin". */
int ca_sign(const char *dir, const char *csr_pem, const char *node_id, const char *role,
            char **cert_pem, struct serr *err);

/* A key and certificate for the CLI's remote access (OU=admin, CN "admin-<random>"). */
int ca_issue_admin(const char *dir, char **key_pem, char **cert_pem, struct serr *err);

#endif
