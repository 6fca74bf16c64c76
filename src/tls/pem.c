/* OpenSSL plumbing shared by tls/ and the CA (manager/ca.c). See pem.h. */
#include "tls/pem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base/util.h"

/* The reason of the newest OpenSSL error, or fallback; the queue is emptied. */
static const char *take_reason(const char *fallback)
{
    unsigned long code = ERR_peek_last_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;
    ERR_clear_error();
    return reason ? reason : fallback;
}

const char *tls_last_reason(void)
{
    return take_reason("unknown TLS error");
}

int tls_fail(struct serr *err, const char *what)
{
    return serr_set(err, SERR_INTERNAL, "%s: %s", what, take_reason("openssl error"));
}

static char *bio_to_string(BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *copy = xmalloc((size_t)len + 1);
    memcpy(copy, data, (size_t)len);
    copy[len] = '\0';
    return copy;
}

char *cert_to_pem(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || !PEM_write_bio_X509(bio, cert))
        abort(); /* memory BIOs only fail without memory, like xmalloc */
    char *pem = bio_to_string(bio);
    BIO_free(bio);
    return pem;
}

char *key_to_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
        abort();
    char *pem = bio_to_string(bio);
    BIO_free(bio);
    return pem;
}

X509 *cert_from_pem(const char *pem, struct serr *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (cert == NULL)
        tls_fail(err, "read certificate");
    return cert;
}

EVP_PKEY *key_from_pem(const char *pem, struct serr *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (key == NULL)
        tls_fail(err, "read private key");
    return key;
}

int name_entry_add(X509_NAME *name, const char *field, const char *value)
{
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value,
                                      -1, -1, 0)
               ? 0
               : -1;
}

EVP_PKEY *p256_key_new(struct serr *err)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (key == NULL)
        tls_fail(err, "generate P-256 key");
    return key;
}

void cert_digest_hex(X509 *cert, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!X509_digest(cert, EVP_sha256(), md, &len) || len != 32)
        abort(); /* only fails without memory */
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int name_entry_text(const X509_NAME *name, int nid, char *out, size_t outlen)
{
    int pos = X509_NAME_get_index_by_NID(name, nid, -1);
    if (pos < 0)
        return -1;
    /* Exactly one value: a second CN or OU would make the identity ambiguous. */
    if (X509_NAME_get_index_by_NID(name, nid, pos) >= 0)
        return -1;
    X509_NAME_ENTRY *entry = X509_NAME_get_entry(name, pos);
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    int rc = -1;
    if (len >= 0 && (size_t)len < outlen && memchr(utf8, '\0', (size_t)len) == NULL) {
        memcpy(out, utf8, (size_t)len);
        out[len] = '\0';
        rc = 0;
    }
    OPENSSL_free(utf8);
    return rc;
}

bool all_chars_in(const char *s, size_t len, const char *allowed)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || strchr(allowed, s[i]) == NULL)
            return false;
    return true;
}

char *csr_to_pem(X509_REQ *req)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || !PEM_write_bio_X509_REQ(bio, req))
        abort();
    char *pem = bio_to_string(bio);
    BIO_free(bio);
    return pem;
}
