/* Every TLS context shoal makes, in one place: the daemon's cluster-port
 * links, a joining node's pinned link, the CLI's remote access. All share one
 * policy: TLS 1.2 or 1.3, forward-secret AEAD suites only on 1.2, no
 * renegotiation, the peer verified against the swarm CA alone (leaf and CA:
 * shoal has no intermediates), no host name check (certificates name node
 * ids, tls/identity.h). The caller owns each context (SSL_CTX_free). */
#ifndef SHOAL_TLS_TLS_CTX_H
#define SHOAL_TLS_TLS_CTX_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "base/err.h"

/* A TLS context that trusts exactly the CA in `ca_pem` and presents
 * cert_pem/key_pem (both NULL for none). Servers send the CA along with their
 * certificate so pinning clients can check it. A server with
 * require_peer_cert=false still verifies a certificate the client sends, but lets
 * clients without one in (joining nodes); the caller then sees no peer identity.
 * Servers send one TLS 1.3 session ticket (base/tlsproxy.h says why). */
SSL_CTX *tls_ctx_new(const char *ca_pem, const char *cert_pem, const char *key_pem, bool is_server,
                     bool require_peer_cert, struct serr *err);

/* A client context for joining: no client certificate, and the server is trusted
 * only if its chain holds a CA certificate whose sha256(DER) is `digest_hex` and
 * its leaf verifies against that CA. On a mismatch the handshake fails and the
 * OpenSSL error queue holds the reason as error data: "the manager's CA does not
 * match the token's digest" (tlsproxy reports it). */
SSL_CTX *tls_ctx_new_pinning(const char *digest_hex, struct serr *err);

/* A client context from PEM files (the CLI's ~/.shoal: ca.pem, cert.pem, key.pem):
 * trusts the CA file's certificates, presents the certificate (the file may hold
 * its chain) and key. A file that cannot be used fails with SERR_INVALID "bad CA
 * certificate PATH: REASON", "bad client certificate ..." or "bad client key ...". */
SSL_CTX *tls_ctx_new_client_files(const char *ca_file, const char *cert_file,
                                  const char *key_file, struct serr *err);

#endif
