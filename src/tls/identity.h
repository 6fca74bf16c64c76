/* A node's identity in the swarm, the same on every node (and in the CLI):
 * its key and certificate request, what a certificate names, the CA's digest
 * and the join token's format. The CA that signs (manager/ca.h) is the
 * leader's business; this is everyone's.
 *
 * A join token is "SHOAL-1-<sha256 of the CA cert DER, 64 lowercase hex>-<secret>".
 * The digest lets a joining node pin the manager's CA before it trusts anything;
 * the secret (25 chars [a-z0-9]) says which role the node may join with.
 *
 * Identity: a node certificate's subject is CN=<node id>, OU=<role>, with role one
 * of "manager", "worker", "admin". Peers are authenticated by the CA signature
 * only: there is no hostname check, and every certificate is good for both TLS
 * client and server use, so callers must check the peer's role themselves.
 *
 * Every PEM string returned is a new NUL-terminated buffer the caller frees. */
#ifndef SHOAL_TLS_IDENTITY_H
#define SHOAL_TLS_IDENTITY_H

#include <stddef.h>

#include <openssl/x509.h>

#include "base/err.h"

#define TOKEN_PREFIX "SHOAL-1-"
#define CA_SECRET_LEN 25
#define CA_DIGEST_HEX_LEN 64

/* Node side of joining: a new P-256 key and a CSR with CN = node_id. */
int node_key_csr(const char *node_id, char **key_pem, char **csr_pem, struct serr *err);

/* Reads CN and OU of a certificate's subject ("" for a missing OU). Fails when the
 * CN is missing or a value does not fit. */
int cert_identity(X509 *cert, char *node_id, size_t idlen, char *role, size_t rolelen,
                  struct serr *err);
int cert_identity_pem(const char *cert_pem, char *node_id, size_t idlen, char *role,
                      size_t rolelen, struct serr *err);

/* Lowercase hex sha256 of the DER of the first certificate in `ca_pem`. */
int ca_digest(const char *ca_pem, char out[65], struct serr *err);

/* Splits a token; every malformed shape fails with SERR_INVALID "invalid join token: ...".
 * `secret` needs room for CA_SECRET_LEN + 1 bytes. */
int token_parse(const char *token, char digest[65], char *secret, size_t secretlen,
                struct serr *err);

#endif
