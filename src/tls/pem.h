/* OpenSSL plumbing shared by tls/ and the cluster CA (manager/ca.c): PEM to
 * and from OpenSSL objects, P-256 keys, subject names, digests, errors.
 *
 * Every string returned is a new NUL-terminated buffer the caller frees; every
 * OpenSSL object returned is the caller's (X509_free, EVP_PKEY_free). Writing
 * PEM into memory fails only without memory, and then aborts, like xmalloc. */
#ifndef SHOAL_TLS_PEM_H
#define SHOAL_TLS_PEM_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "base/err.h"

/* Puts the newest OpenSSL error after `what` into err (SERR_INTERNAL) and
 * clears the queue. Returns -1. */
int tls_fail(struct serr *err, const char *what);
/* The reason of the newest OpenSSL error ("unknown TLS error" without one), and
 * an empty queue for the next call. */
const char *tls_last_reason(void);

char *cert_to_pem(X509 *cert);
char *key_to_pem(EVP_PKEY *key);
char *csr_to_pem(X509_REQ *req);
/* The first certificate or key of `pem`, or NULL with err set. */
X509 *cert_from_pem(const char *pem, struct serr *err);
EVP_PKEY *key_from_pem(const char *pem, struct serr *err);

/* A new EC P-256 key, or NULL with err set. */
EVP_PKEY *p256_key_new(struct serr *err);

/* Adds field=value (UTF-8) to a subject or issuer name. 0 or -1. */
int name_entry_add(X509_NAME *name, const char *field, const char *value);
/* The one value of `nid` in `name` as UTF-8 into out; -1 when it is missing,
 * appears twice (an ambiguous identity), holds a NUL or does not fit. */
int name_entry_text(const X509_NAME *name, int nid, char *out, size_t outlen);

/* Lowercase hex sha256 of the certificate's DER. */
void cert_digest_hex(X509 *cert, char out[65]);

/* Whether the first len characters of s are all in `allowed` (none is NUL). */
bool all_chars_in(const char *s, size_t len, const char *allowed);

#endif
