/* Every TLS context of shoal (daemon links, joining, the CLI). See tls_ctx.h. */
#include "tls/tls_ctx.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/util.h"
#include "tls/identity.h"
#include "tls/pem.h"

static SSL_CTX *ctx_base(bool is_server, struct serr *err)
{
    SSL_CTX *ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        tls_fail(err, "create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* A connection's record buffers (~17 kB each way) are freed while it has
     * nothing buffered: nodes keep their links open and mostly idle. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* TLS 1.2 only with forward-secret AEAD suites; 1.3 suites are all fine. */
    if (!SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20")) {
        SSL_CTX_free(ctx);
        tls_fail(err, "set TLS ciphers");
        return NULL;
    }
    /* One TLS 1.3 ticket: tlsproxy clients wait for it to learn that the server
     * accepted their certificate (TLS 1.3 clients finish before the server checks). */
    if (is_server)
        SSL_CTX_set_num_tickets(ctx, 1);
    return ctx;
}

/* The peer's certificate is checked against the trusted CA; fail_without_cert:
 * a server refuses clients that send none. */
static void verify_peer(SSL_CTX *ctx, bool fail_without_cert)
{
    int mode = SSL_VERIFY_PEER;
    if (fail_without_cert)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_verify_depth(ctx, 1); /* leaf and CA: shoal has no intermediates */
}

static int ctx_use_identity(SSL_CTX *ctx, X509 *ca, const char *cert_pem, const char *key_pem,
                            struct serr *err)
{
    X509 *cert = cert_from_pem(cert_pem, err);
    EVP_PKEY *key = cert ? key_from_pem(key_pem, err) : NULL;
    int rc = -1;
    if (key == NULL)
        goto out;
    if (!SSL_CTX_use_certificate(ctx, cert) || !SSL_CTX_use_PrivateKey(ctx, key) ||
        !SSL_CTX_check_private_key(ctx) || !SSL_CTX_add1_chain_cert(ctx, ca)) {
        tls_fail(err, "use certificate and key");
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

SSL_CTX *tls_ctx_new(const char *ca_pem, const char *cert_pem, const char *key_pem, bool is_server,
                     bool require_peer_cert, struct serr *err)
{
    if ((cert_pem == NULL) != (key_pem == NULL)) {
        serr_set(err, SERR_INVALID, "a TLS certificate needs its key and the other way round");
        return NULL;
    }
    X509 *ca = cert_from_pem(ca_pem, err);
    if (ca == NULL)
        return NULL;
    SSL_CTX *ctx = ctx_base(is_server, err);
    if (ctx == NULL)
        goto fail;
    if (!X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca)) {
        tls_fail(err, "trust CA");
        goto fail;
    }
    if (cert_pem && ctx_use_identity(ctx, ca, cert_pem, key_pem, err) < 0)
        goto fail;
    if (is_server && !SSL_CTX_add_client_CA(ctx, ca)) {
        tls_fail(err, "announce CA");
        goto fail;
    }
    verify_peer(ctx, is_server && require_peer_cert);
    X509_free(ca);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    X509_free(ca);
    return NULL;
}

/* The pinned digest lives in the context's ex_data, freed with the context. */
static int pin_index = -1;
static pthread_once_t pin_index_once = PTHREAD_ONCE_INIT;

static void pin_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void make_pin_index(void)
{
    pin_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, pin_free);
}

static int pin_fail(X509_STORE_CTX *store_ctx, int code, const char *why)
{
    X509_STORE_CTX_set_error(store_ctx, code);
    ERR_raise_data(ERR_LIB_USER, ERR_R_INTERNAL_ERROR, "%s", why);
    return 0;
}

static X509 *find_pinned_ca(STACK_OF(X509) *chain, const char *digest_hex)
{
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *cert = sk_X509_value(chain, i);
        char hex[65];
        cert_digest_hex(cert, hex);
        if (CRYPTO_memcmp(hex, digest_hex, CA_DIGEST_HEX_LEN) == 0 && X509_check_ca(cert) > 0)
            return cert;
    }
    return NULL;
}

/* Verifies `leaf` against `ca` alone, as a TLS server certificate. Returns the
 * X509_V_* result. */
static int verify_against(X509 *ca, X509 *leaf, STACK_OF(X509) *untrusted)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    int result = X509_V_ERR_UNSPECIFIED;
    if (store && vctx && X509_STORE_add_cert(store, ca) &&
        X509_STORE_CTX_init(vctx, store, leaf, untrusted)) {
        X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_SERVER);
        result = X509_verify_cert(vctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(vctx);
    }
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    return result;
}

static int pin_verify(X509_STORE_CTX *store_ctx, void *arg)
{
    SSL_CTX *ctx = arg;
    const char *digest_hex = SSL_CTX_get_ex_data(ctx, pin_index);
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_untrusted(store_ctx);
    X509 *leaf = X509_STORE_CTX_get0_cert(store_ctx);
    X509 *ca = chain && digest_hex ? find_pinned_ca(chain, digest_hex) : NULL;
    if (ca == NULL || leaf == NULL)
        return pin_fail(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION,
                        "the manager's CA does not match the token's digest");
    int result = verify_against(ca, leaf, chain);
    if (result != X509_V_OK)
        return pin_fail(store_ctx, result, X509_verify_cert_error_string(result));
    X509_STORE_CTX_set_error(store_ctx, X509_V_OK);
    return 1;
}

SSL_CTX *tls_ctx_new_pinning(const char *digest_hex, struct serr *err)
{
    if (digest_hex == NULL || strlen(digest_hex) != CA_DIGEST_HEX_LEN ||
        !all_chars_in(digest_hex, CA_DIGEST_HEX_LEN, "0123456789abcdef")) {
        serr_set(err, SERR_INVALID, "CA digest is not 64 lowercase hex characters");
        return NULL;
    }
    pthread_once(&pin_index_once, make_pin_index);
    SSL_CTX *ctx = ctx_base(false, err);
    if (ctx == NULL)
        return NULL;
    char *pinned = xstrdup(digest_hex);
    if (pin_index < 0 || !SSL_CTX_set_ex_data(ctx, pin_index, pinned)) {
        free(pinned);
        SSL_CTX_free(ctx);
        tls_fail(err, "store CA digest");
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, pin_verify, ctx);
    return ctx;
}

static int load_client_files(SSL_CTX *ctx, const char *ca, const char *cert, const char *key,
                             struct serr *err)
{
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
        return serr_set(err, SERR_INVALID, "bad CA certificate %s: %s", ca, tls_last_reason());
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return serr_set(err, SERR_INVALID, "bad client certificate %s: %s", cert,
                        tls_last_reason());
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        return serr_set(err, SERR_INVALID, "bad client key %s: %s", key, tls_last_reason());
    return 0;
}

SSL_CTX *tls_ctx_new_client_files(const char *ca_file, const char *cert_file,
                                  const char *key_file, struct serr *err)
{
    SSL_CTX *ctx = ctx_base(false, err);
    if (ctx == NULL)
        return NULL;
    if (load_client_files(ctx, ca_file, cert_file, key_file, err) < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    verify_peer(ctx, false);
    return ctx;
}
