/* The cluster's certificate authority, join tokens and TLS contexts.
 *
 * Files in the CA directory (written by ca_create(), all mode 0600 but ca.crt):
 *   ca.key       EC P-256 private key of the CA (PEM)
 *   ca.crt       self-signed CA certificate (PEM), CN "shoal-ca", 10 years
 *   tokens.json  {"worker": SECRET, "manager": SECRET}, the two join secrets
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
#ifndef SHOAL_MANAGER_CA_H
#define SHOAL_MANAGER_CA_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/err.h"

#define CA_SECRET_LEN 25
#define CA_DIGEST_HEX_LEN 64

/* Creates the CA key, certificate and join secrets in `dir` (made if missing).
 * Refuses (SERR_CONFLICT) when a CA already exists there. */
int ca_create(const char *dir, struct serr *err);

/* Lowercase hex sha256 of the DER of the first certificate in `ca_pem`. */
int ca_digest(const char *ca_pem, char out[65], struct serr *err);

/* Reads <dir>/ca.crt into a new string. */
int ca_cert_pem(const char *dir, char **ca_pem, struct serr *err);

/* Join tokens. `role` is "worker" or "manager". */
int ca_token(const char *dir, const char *role, char *out, size_t outlen, struct serr *err);
/* Replaces the role's secret: tokens holding the old one are refused from now on. */
int ca_token_rotate(const char *dir, const char *role, struct serr *err);
/* Splits a token; every malformed shape fails with SERR_INVALID "invalid join token: ...".
 * `secret` needs room for CA_SECRET_LEN + 1 bytes. */
int token_parse(const char *token, char digest[65], char *secret, size_t secretlen,
                struct serr *err);
/* Which role a join secret grants ("worker" or "manager" into role_out). Unknown or
 * rotated secrets fail with SERR_INVALID "invalid join token (rotated or wrong)".
 * Compares in constant time. */
int ca_token_check(const char *dir, const char *secret, char role_out[16], struct serr *err);

/* Node side of joining: a new P-256 key and a CSR with CN = node_id. */
int node_key_csr(const char *node_id, char **key_pem, char **csr_pem, struct serr *err);

/* CA side: checks the CSR's signature and that its CN is node_id, then issues a
 * certificate for one year: CN=node_id, OU=role, serverAuth+clientAuth, random
 * 128-bit serial. `role` is "manager", "worker" or "admin". */
int ca_sign(const char *dir, const char *csr_pem, const char *node_id, const char *role,
            char **cert_pem, struct serr *err);

/* A key and certificate for the CLI's remote access (OU=admin, CN "admin-<random>"). */
int ca_issue_admin(const char *dir, char **key_pem, char **cert_pem, struct serr *err);

/* Reads CN and OU of a certificate's subject ("" for a missing OU). Fails when the
 * CN is missing or a value does not fit. */
int cert_identity(X509 *cert, char *node_id, size_t idlen, char *role, size_t rolelen,
                  struct serr *err);
int cert_identity_pem(const char *cert_pem, char *node_id, size_t idlen, char *role,
                      size_t rolelen, struct serr *err);

/* A TLS context (1.2 or 1.3) that trusts exactly the CA in `ca_pem` and presents
 * cert_pem/key_pem (both NULL for none). Servers send the CA along with their
 * certificate so pinning clients can check it. A server with
 * require_peer_cert=false still verifies a certificate the client sends, but lets
 * clients without one in (joining nodes); the caller then sees no peer identity.
 * The caller owns the context (SSL_CTX_free). */
SSL_CTX *tls_ctx_new(const char *ca_pem, const char *cert_pem, const char *key_pem, bool is_server,
                     bool require_peer_cert, struct serr *err);

/* A client context for joining: no client certificate, and the server is trusted
 * only if its chain holds a CA certificate whose sha256(DER) is `digest_hex` and
 * its leaf verifies against that CA. On a mismatch the handshake fails and the
 * OpenSSL error queue holds the reason as error data: "the manager's CA does not
 * match the token's digest" (tlsproxy reports it). */
SSL_CTX *tls_ctx_new_pinning(const char *digest_hex, struct serr *err);

#endif
