/* Cluster CA: creation, digests, join tokens, CSRs and node certificates. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/util.h"
#include "manager/ca.h"
#include "tls/identity.h"
#include "tls/tls_ctx.h"
#include "unit.h"

static char *make_ca(void)
{
    char *dir = xstrdup("/tmp/shoal-test-ca-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char *sub = xasprintf("%s/ca", dir); /* ca_create makes missing directories */
    free(dir);
    struct serr err;
    CHECK(ca_create(sub, &err) == 0);
    return sub;
}

static void remove_ca(char *dir)
{
    char *parent = xstrdup(dir);
    *strrchr(parent, '/') = '\0';
    CHECK(rm_rf(parent, NULL) == 0);
    free(parent);
    free(dir);
}

static X509 *pem_cert(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    CHECK(cert != NULL);
    return cert;
}

static mode_t file_mode(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    free(path);
    return st.st_mode & 0777;
}

TEST(ca_create_and_digest)
{
    char *dir = make_ca();
    struct serr err;
    CHECK(file_mode(dir, "ca.key") == 0600);
    CHECK(file_mode(dir, "tokens.json") == 0600);
    CHECK(ca_create(dir, &err) < 0 && err.kind == SERR_CONFLICT);

    char *pem = NULL;
    CHECK(ca_cert_pem(dir, &pem, &err) == 0);
    char d1[65], d2[65];
    CHECK(ca_digest(pem, d1, &err) == 0);
    CHECK(ca_digest(pem, d2, &err) == 0);
    CHECK_STR(d1, d2);
    CHECK(strlen(d1) == 64 && strspn(d1, "0123456789abcdef") == 64);

    X509 *cert = pem_cert(pem);
    char cn[64], ou[16];
    CHECK(cert_identity(cert, cn, sizeof(cn), ou, sizeof(ou), &err) == 0);
    CHECK_STR(cn, "shoal-ca");
    CHECK_STR(ou, "");
    CHECK(X509_check_ca(cert) > 0);
    CHECK(X509_get_key_usage(cert) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    X509_free(cert);

    /* Another CA has another digest. */
    char *other = make_ca(), *other_pem = NULL, d3[65];
    CHECK(ca_cert_pem(other, &other_pem, &err) == 0);
    CHECK(ca_digest(other_pem, d3, &err) == 0);
    CHECK(strcmp(d1, d3) != 0);
    CHECK(ca_digest("not a pem", d3, &err) < 0);

    free(other_pem);
    free(pem);
    remove_ca(other);
    remove_ca(dir);
}

TEST(ca_tokens)
{
    char *dir = make_ca();
    struct serr err;
    char worker[160], manager[160], digest[65], secret[32], role[16], pem_digest[65];
    char *pem = NULL;
    CHECK(ca_cert_pem(dir, &pem, &err) == 0);
    CHECK(ca_digest(pem, pem_digest, &err) == 0);
    free(pem);

    CHECK(ca_token(dir, "worker", worker, sizeof(worker), &err) == 0);
    CHECK(ca_token(dir, "manager", manager, sizeof(manager), &err) == 0);
    CHECK(strcmp(worker, manager) != 0);
    CHECK(strncmp(worker, "SHOAL-1-", 8) == 0);
    CHECK(ca_token(dir, "admin", worker + 0, 0, &err) < 0 && err.kind == SERR_INVALID);

    CHECK(token_parse(worker, digest, secret, sizeof(secret), &err) == 0);
    CHECK_STR(digest, pem_digest);
    CHECK(strlen(secret) == 25 && strspn(secret, "abcdefghijklmnopqrstuvwxyz0123456789") == 25);
    CHECK(ca_token_check(dir, secret, role, &err) == 0);
    CHECK_STR(role, "worker");
    char worker_secret[32];
    strcpy(worker_secret, secret);

    CHECK(token_parse(manager, digest, secret, sizeof(secret), &err) == 0);
    CHECK(ca_token_check(dir, secret, role, &err) == 0);
    CHECK_STR(role, "manager");

    /* Rotation refuses the old worker secret and keeps the manager's. */
    CHECK(ca_token_rotate(dir, "worker", &err) == 0);
    CHECK(ca_token_check(dir, worker_secret, role, &err) < 0);
    CHECK(err.kind == SERR_INVALID);
    CHECK_STR(err.msg, "invalid join token (rotated or wrong)");
    CHECK(ca_token_check(dir, secret, role, &err) == 0);
    CHECK_STR(role, "manager");
    char fresh[160];
    CHECK(ca_token(dir, "worker", fresh, sizeof(fresh), &err) == 0);
    CHECK(strcmp(fresh, worker) != 0);
    CHECK(token_parse(fresh, digest, secret, sizeof(secret), &err) == 0);
    CHECK(ca_token_check(dir, secret, role, &err) == 0);
    CHECK_STR(role, "worker");

    CHECK(ca_token_check(dir, "", role, &err) < 0);
    CHECK(ca_token_check(dir, "abc", role, &err) < 0);
    CHECK(ca_token(dir, "worker", fresh, 20, &err) < 0);
    remove_ca(dir);
}

static void check_malformed(const char *token)
{
    char digest[65], secret[32];
    struct serr err;
    if (token_parse(token, digest, secret, sizeof(secret), &err) == 0) {
        fprintf(stderr, "accepted malformed token \"%s\"\n", token);
        exit(1);
    }
    CHECK(err.kind == SERR_INVALID);
    CHECK(strncmp(err.msg, "invalid join token: ", 20) == 0);
}

TEST(ca_token_malformed)
{
    const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *sec = "abcdefghijklmnopqrstuvwxy";
    char buf[256];
    check_malformed("");
    check_malformed("SHOAL-1-");
    check_malformed("SWMTKN-1-abc-def");
    snprintf(buf, sizeof(buf), "SHOAL-2-%s-%s", hex, sec);
    check_malformed(buf);
    snprintf(buf, sizeof(buf), "SHOAL-1-%.63s-%s", hex, sec); /* short digest */
    check_malformed(buf);
    snprintf(buf, sizeof(buf), "SHOAL-1-%sA-%s", hex, sec); /* long digest */
    check_malformed(buf);
    snprintf(buf, sizeof(buf), "SHOAL-1-0123456789ABCDEF%s-%s", hex + 16, sec); /* uppercase */
    check_malformed(buf);
    snprintf(buf, sizeof(buf), "SHOAL-1-%s%s", hex, sec); /* no dash */
    check_malformed(buf);
    snprintf(buf, sizeof(buf), "SHOAL-1-%s-", hex); /* no secret */
    check_malformed(buf);
    snprintf(buf, sizeof(buf), "SHOAL-1-%s-%sz", hex, sec); /* long secret */
    check_malformed(buf);
    snprintf(buf, sizeof(buf), "SHOAL-1-%s-%.24s", hex, sec); /* short secret */
    check_malformed(buf);
    snprintf(buf, sizeof(buf), "SHOAL-1-%s-%.24s!", hex, sec); /* bad character */
    check_malformed(buf);
    snprintf(buf, sizeof(buf), "SHOAL-1-%s-%s ", hex, sec); /* trailing space */
    check_malformed(buf);

    char digest[65], secret[32];
    struct serr err;
    snprintf(buf, sizeof(buf), "SHOAL-1-%s-%s", hex, sec);
    CHECK(token_parse(buf, digest, secret, sizeof(secret), &err) == 0);
    CHECK_STR(digest, hex);
    CHECK_STR(secret, sec);
    CHECK(token_parse(buf, digest, secret, 10, &err) < 0);
}

TEST(ca_sign_and_identity)
{
    char *dir = make_ca();
    struct serr err;
    char *key = NULL, *csr = NULL, *cert_pem = NULL, *ca_pem = NULL;
    CHECK(node_key_csr("node-abc", &key, &csr, &err) == 0);
    CHECK(strstr(key, "PRIVATE KEY") != NULL);
    CHECK(strstr(csr, "CERTIFICATE REQUEST") != NULL);
    CHECK(ca_sign(dir, csr, "node-abc", "worker", &cert_pem, &err) == 0);

    char id[64], role[16];
    CHECK(cert_identity_pem(cert_pem, id, sizeof(id), role, sizeof(role), &err) == 0);
    CHECK_STR(id, "node-abc");
    CHECK_STR(role, "worker");
    CHECK(cert_identity_pem(cert_pem, id, 4, role, sizeof(role), &err) < 0);

    /* The certificate verifies against the CA, for both TLS ends. */
    CHECK(ca_cert_pem(dir, &ca_pem, &err) == 0);
    X509 *ca = pem_cert(ca_pem), *cert = pem_cert(cert_pem);
    CHECK(X509_verify(cert, X509_get0_pubkey(ca)) == 1);
    CHECK(X509_check_purpose(cert, X509_PURPOSE_SSL_SERVER, 0) == 1);
    CHECK(X509_check_purpose(cert, X509_PURPOSE_SSL_CLIENT, 0) == 1);
    CHECK(X509_check_ca(cert) == 0);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    CHECK(serial->length >= 14 && serial->length <= 17);
    X509_free(cert);

    /* Two certificates never share a serial. */
    char *cert2 = NULL;
    CHECK(ca_sign(dir, csr, "node-abc", "manager", &cert2, &err) == 0);
    cert = pem_cert(cert2);
    X509 *first = pem_cert(cert_pem);
    CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(cert), X509_get0_serialNumber(first)) != 0);
    CHECK(cert_identity(cert, id, sizeof(id), role, sizeof(role), &err) == 0);
    CHECK_STR(role, "manager");
    X509_free(first);
    X509_free(cert);
    X509_free(ca);

    char *admin_key = NULL, *admin_cert = NULL;
    CHECK(ca_issue_admin(dir, &admin_key, &admin_cert, &err) == 0);
    CHECK(cert_identity_pem(admin_cert, id, sizeof(id), role, sizeof(role), &err) == 0);
    CHECK(strncmp(id, "admin-", 6) == 0);
    CHECK_STR(role, "admin");

    free(admin_key);
    free(admin_cert);
    free(cert2);
    free(ca_pem);
    free(cert_pem);
    free(csr);
    free(key);
    remove_ca(dir);
}

TEST(ca_sign_refuses)
{
    char *dir = make_ca();
    struct serr err;
    char *key = NULL, *csr = NULL, *cert = NULL;
    CHECK(node_key_csr("node-abc", &key, &csr, &err) == 0);

    CHECK(ca_sign(dir, csr, "node-other", "worker", &cert, &err) < 0);
    CHECK(err.kind == SERR_INVALID);
    CHECK(strstr(err.msg, "is not the node id") != NULL);
    CHECK(ca_sign(dir, csr, "node-abc", "root", &cert, &err) < 0);
    CHECK(ca_sign(dir, "garbage", "node-abc", "worker", &cert, &err) < 0);
    CHECK(err.kind == SERR_INVALID);

    /* A CSR whose signature does not match its content. */
    char *tampered = xstrdup(csr);
    char *body = strchr(tampered, '\n') + 1;
    size_t pos = strlen(body) / 2;
    body[pos] = body[pos] == 'A' ? 'B' : 'A';
    CHECK(ca_sign(dir, tampered, "node-abc", "worker", &cert, &err) < 0);
    CHECK(err.kind == SERR_INVALID);
    CHECK(cert == NULL);

    free(tampered);
    free(csr);
    free(key);
    remove_ca(dir);
}

TEST(ca_tls_contexts)
{
    char *dir = make_ca();
    struct serr err;
    char *key = NULL, *csr = NULL, *cert = NULL, *ca_pem = NULL, digest[65];
    CHECK(node_key_csr("n1", &key, &csr, &err) == 0);
    CHECK(ca_sign(dir, csr, "n1", "manager", &cert, &err) == 0);
    CHECK(ca_cert_pem(dir, &ca_pem, &err) == 0);
    CHECK(ca_digest(ca_pem, digest, &err) == 0);

    SSL_CTX *server = tls_ctx_new(ca_pem, cert, key, true, true, &err);
    CHECK(server != NULL);
    SSL_CTX *client = tls_ctx_new(ca_pem, NULL, NULL, false, false, &err);
    CHECK(client != NULL);
    SSL_CTX *pinning = tls_ctx_new_pinning(digest, &err);
    CHECK(pinning != NULL);
    CHECK(tls_ctx_new_pinning("abc", &err) == NULL);
    /* idle links hold no record buffers (docs/benchmarks.md, Session 12 foot12) */
    CHECK(SSL_CTX_get_mode(server) & SSL_MODE_RELEASE_BUFFERS);
    CHECK(SSL_CTX_get_mode(client) & SSL_MODE_RELEASE_BUFFERS);
    CHECK(SSL_CTX_get_mode(pinning) & SSL_MODE_RELEASE_BUFFERS);
    CHECK(tls_ctx_new(ca_pem, cert, NULL, true, true, &err) == NULL);
    CHECK(tls_ctx_new(ca_pem, cert, "junk", true, true, &err) == NULL);

    SSL_CTX_free(pinning);
    SSL_CTX_free(client);
    SSL_CTX_free(server);
    free(ca_pem);
    free(cert);
    free(csr);
    free(key);
    remove_ca(dir);
}
