/* A node's identity: its key and CSR, what a certificate names, the CA's
 * digest and the join token's format. See identity.h. */
#include "tls/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls/pem.h"

static X509_REQ *new_csr(const char *node_id, EVP_PKEY *key)
{
    X509_REQ *req = X509_REQ_new();
    if (req == NULL || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        name_entry_add(X509_REQ_get_subject_name(req), "CN", node_id) < 0 ||
        !X509_REQ_set_pubkey(req, key) || !X509_REQ_sign(req, key, EVP_sha256())) {
        X509_REQ_free(req);
        return NULL;
    }
    return req;
}

int node_key_csr(const char *node_id, char **key_pem, char **csr_pem, struct serr *err)
{
    if (node_id == NULL || *node_id == '\0')
        return serr_set(err, SERR_INVALID, "empty node id");
    EVP_PKEY *key = p256_key_new(err);
    if (key == NULL)
        return -1;
    X509_REQ *req = new_csr(node_id, key);
    if (req == NULL) {
        EVP_PKEY_free(key);
        return tls_fail(err, "create CSR");
    }
    *csr_pem = csr_to_pem(req);
    *key_pem = key_to_pem(key);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return 0;
}

int cert_identity(X509 *cert, char *node_id, size_t idlen, char *role, size_t rolelen,
                  struct serr *err)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    if (name_entry_text(name, NID_commonName, node_id, idlen) < 0)
        return serr_set(err, SERR_INVALID, "certificate has no usable CN");
    if (X509_NAME_get_index_by_NID(name, NID_organizationalUnitName, -1) < 0) {
        if (rolelen > 0)
            role[0] = '\0';
        return 0;
    }
    if (name_entry_text(name, NID_organizationalUnitName, role, rolelen) < 0)
        return serr_set(err, SERR_INVALID, "certificate has no usable OU");
    return 0;
}

int cert_identity_pem(const char *cert_pem, char *node_id, size_t idlen, char *role,
                      size_t rolelen, struct serr *err)
{
    X509 *cert = cert_from_pem(cert_pem, err);
    if (cert == NULL)
        return -1;
    int rc = cert_identity(cert, node_id, idlen, role, rolelen, err);
    X509_free(cert);
    return rc;
}

int ca_digest(const char *ca_pem, char out[65], struct serr *err)
{
    X509 *cert = cert_from_pem(ca_pem, err);
    if (cert == NULL)
        return -1;
    cert_digest_hex(cert, out);
    X509_free(cert);
    return 0;
}

int token_parse(const char *token, char digest[65], char *secret, size_t secretlen,
                struct serr *err)
{
    const size_t prefix_len = strlen(TOKEN_PREFIX);
    if (token == NULL || *token == '\0')
        return serr_set(err, SERR_INVALID, "invalid join token: empty");
    if (strncmp(token, TOKEN_PREFIX, prefix_len) != 0)
        return serr_set(err, SERR_INVALID, "invalid join token: does not start with %s",
                        TOKEN_PREFIX);
    const char *hex = token + prefix_len;
    if (strlen(hex) < CA_DIGEST_HEX_LEN ||
        !all_chars_in(hex, CA_DIGEST_HEX_LEN, "0123456789abcdef"))
        return serr_set(err, SERR_INVALID,
                        "invalid join token: the CA digest is not 64 lowercase hex characters");
    const char *rest = hex + CA_DIGEST_HEX_LEN;
    if (*rest != '-')
        return serr_set(err, SERR_INVALID,
                        "invalid join token: expected '-' after the 64-character CA digest");
    rest++;
    if (strlen(rest) != CA_SECRET_LEN ||
        !all_chars_in(rest, CA_SECRET_LEN, "abcdefghijklmnopqrstuvwxyz0123456789"))
        return serr_set(err, SERR_INVALID,
                        "invalid join token: the secret is not %d characters [a-z0-9]",
                        CA_SECRET_LEN);
    if (secretlen < CA_SECRET_LEN + 1)
        return serr_set(err, SERR_INTERNAL, "join secret buffer too small");
    memcpy(digest, hex, CA_DIGEST_HEX_LEN);
    digest[CA_DIGEST_HEX_LEN] = '\0';
    memcpy(secret, rest, CA_SECRET_LEN + 1);
    return 0;
}
