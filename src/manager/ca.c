/* The cluster CA and its join secrets, on OpenSSL 3. See ca.h. */
#include "manager/ca.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "base/json_get.h"
#include "base/util.h"
#include "tls/identity.h"
#include "tls/pem.h"

#define CA_YEARS 10
#define NODE_CERT_DAYS 365
/* Certificates start a little in the past so a node whose clock lags the
 * manager's by a few minutes still accepts them. */
#define BACKDATE_SECONDS (5 * 60)

static const char *const join_roles[] = {"worker", "manager"};

/* ---- small helpers ---- */

static bool role_is_valid(const char *role)
{
    return strcmp(role, "manager") == 0 || strcmp(role, "worker") == 0 ||
           strcmp(role, "admin") == 0;
}

static bool join_role_is_valid(const char *role)
{
    return strcmp(role, "manager") == 0 || strcmp(role, "worker") == 0;
}

/* 25 characters [a-z0-9] from the CSPRNG, without modulo bias (bytes >= 252
 * are drawn again: 252 = 7 * 36). */
static void random_secret(char out[CA_SECRET_LEN + 1])
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t done = 0;
    while (done < CA_SECRET_LEN) {
        unsigned char buf[32];
        if (RAND_bytes(buf, sizeof(buf)) != 1)
            abort(); /* the CSPRNG does not fail once seeded */
        for (size_t i = 0; i < sizeof(buf) && done < CA_SECRET_LEN; i++)
            if (buf[i] < 252)
                out[done++] = alphabet[buf[i] % 36];
    }
    out[CA_SECRET_LEN] = '\0';
}

static char *ca_path(const char *dir, const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static int write_string_file(const char *dir, const char *name, const char *text, unsigned mode,
                             struct serr *err)
{
    char *path = ca_path(dir, name);
    int rc = write_file_atomic(path, text, strlen(text), true, err);
    if (rc == 0 && chmod(path, mode) < 0)
        rc = serr_errno(err, "chmod %s", path);
    free(path);
    return rc;
}

static int read_string_file(const char *dir, const char *name, char **out, struct serr *err)
{
    char *path = ca_path(dir, name);
    int rc = read_file(path, out, NULL, err);
    free(path);
    return rc;
}

/* ---- certificate building ---- */

static int set_random_serial(X509 *cert)
{
    BIGNUM *bn = BN_new();
    int ok = bn && BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static int set_validity(X509 *cert, long days)
{
    if (X509_gmtime_adj(X509_getm_notBefore(cert), -BACKDATE_SECONDS) == NULL)
        return -1;
    if (X509_time_adj_ex(X509_getm_notAfter(cert), (int)days, 0, NULL) == NULL)
        return -1;
    return 0;
}

/* Adds one extension written in openssl.cnf syntax, e.g. "critical,CA:TRUE". */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static X509 *new_self_signed_ca(EVP_PKEY *key, struct serr *err)
{
    X509 *cert = X509_new();
    if (cert == NULL || !X509_set_version(cert, X509_VERSION_3) || set_random_serial(cert) < 0 ||
        set_validity(cert, CA_YEARS * 365L + CA_YEARS / 4) < 0)
        goto fail;
    X509_NAME *name = X509_get_subject_name(cert);
    if (name_entry_add(name, "CN", "shoal-ca") < 0 || !X509_set_issuer_name(cert, name) ||
        !X509_set_pubkey(cert, key))
        goto fail;
    if (add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
        add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        add_ext(cert, cert, NID_subject_key_identifier, "hash") < 0)
        goto fail;
    if (!X509_sign(cert, key, EVP_sha256()))
        goto fail;
    return cert;
fail:
    X509_free(cert);
    tls_fail(err, "create CA certificate");
    return NULL;
}

/* ---- CA creation and loading ---- */

static int write_tokens(const char *dir, const char *worker, const char *manager,
                        struct serr *err)
{
    json_t *obj = json_pack("{s:s,s:s}", "worker", worker, "manager", manager);
    char *text = json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(obj);
    int rc = write_string_file(dir, "tokens.json", text, 0600, err);
    free(text);
    return rc;
}

static int create_tokens(const char *dir, struct serr *err)
{
    char worker[CA_SECRET_LEN + 1], manager[CA_SECRET_LEN + 1];
    random_secret(worker);
    random_secret(manager);
    return write_tokens(dir, worker, manager, err);
}

int ca_create(const char *dir, struct serr *err)
{
    int rc = -1;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char *key_pem = NULL, *cert_pem = NULL;
    char *crt_path = ca_path(dir, "ca.crt");

    if (mkdir_p(dir, 0700, err) < 0)
        goto out;
    if (access(crt_path, F_OK) == 0) {
        serr_set(err, SERR_CONFLICT, "a CA already exists in %s", dir);
        goto out;
    }
    if ((key = p256_key_new(err)) == NULL || (cert = new_self_signed_ca(key, err)) == NULL)
        goto out;
    key_pem = key_to_pem(key);
    cert_pem = cert_to_pem(cert);
    /* The key first: a ca.crt without its key would look like a usable CA. */
    if (write_string_file(dir, "ca.key", key_pem, 0600, err) < 0 ||
        create_tokens(dir, err) < 0 || write_string_file(dir, "ca.crt", cert_pem, 0644, err) < 0)
        goto out;
    rc = 0;
out:
    if (key_pem)
        OPENSSL_cleanse(key_pem, strlen(key_pem));
    free(key_pem);
    free(cert_pem);
    X509_free(cert);
    EVP_PKEY_free(key);
    free(crt_path);
    return rc;
}

int ca_cert_pem(const char *dir, char **ca_pem, struct serr *err)
{
    return read_string_file(dir, "ca.crt", ca_pem, err);
}

static int load_ca(const char *dir, X509 **cert, EVP_PKEY **key, struct serr *err)
{
    char *cert_pem = NULL, *key_pem = NULL;
    int rc = -1;
    *cert = NULL;
    *key = NULL;
    if (read_string_file(dir, "ca.crt", &cert_pem, err) < 0 ||
        read_string_file(dir, "ca.key", &key_pem, err) < 0)
        goto out;
    if ((*cert = cert_from_pem(cert_pem, err)) == NULL ||
        (*key = key_from_pem(key_pem, err)) == NULL)
        goto out;
    rc = 0;
out:
    if (key_pem)
        OPENSSL_cleanse(key_pem, strlen(key_pem));
    free(key_pem);
    free(cert_pem);
    if (rc < 0) {
        X509_free(*cert);
        *cert = NULL;
    }
    return rc;
}

/* ---- join secrets ---- */

static int load_tokens(const char *dir, json_t **out, struct serr *err)
{
    char *path = ca_path(dir, "tokens.json");
    json_error_t jerr;
    *out = json_load_file(path, 0, &jerr);
    if (*out == NULL)
        serr_set(err, SERR_INTERNAL, "read %s: %s", path, jerr.text);
    free(path);
    return *out ? 0 : -1;
}

static const char *token_secret(json_t *tokens, const char *role)
{
    const char *secret = jstr(tokens, role);
    return secret && strlen(secret) == CA_SECRET_LEN ? secret : NULL;
}

int ca_token(const char *dir, const char *role, char *out, size_t outlen, struct serr *err)
{
    if (!join_role_is_valid(role))
        return serr_set(err, SERR_INVALID, "no join token for role \"%s\"", role);
    char *ca_pem = NULL;
    json_t *tokens = NULL;
    char digest[65];
    int rc = -1;
    if (ca_cert_pem(dir, &ca_pem, err) < 0 || ca_digest(ca_pem, digest, err) < 0 ||
        load_tokens(dir, &tokens, err) < 0)
        goto out;
    const char *secret = token_secret(tokens, role);
    if (secret == NULL) {
        serr_set(err, SERR_INTERNAL, "tokens.json has no valid %s secret", role);
        goto out;
    }
    if ((size_t)snprintf(out, outlen, TOKEN_PREFIX "%s-%s", digest, secret) >= outlen) {
        serr_set(err, SERR_INTERNAL, "join token buffer too small");
        goto out;
    }
    rc = 0;
out:
    json_decref(tokens);
    free(ca_pem);
    return rc;
}

int ca_token_rotate(const char *dir, const char *role, struct serr *err)
{
    if (!join_role_is_valid(role))
        return serr_set(err, SERR_INVALID, "no join token for role \"%s\"", role);
    json_t *tokens = NULL;
    if (load_tokens(dir, &tokens, err) < 0)
        return -1;
    char fresh[CA_SECRET_LEN + 1];
    random_secret(fresh);
    json_object_set_new(tokens, role, json_string(fresh));
    const char *worker = token_secret(tokens, "worker");
    const char *manager = token_secret(tokens, "manager");
    int rc = worker && manager
                 ? write_tokens(dir, worker, manager, err)
                 : serr_set(err, SERR_INTERNAL, "tokens.json lacks a valid secret");
    json_decref(tokens);
    return rc;
}

int ca_token_check(const char *dir, const char *secret, char role_out[16], struct serr *err)
{
    json_t *tokens = NULL;
    if (load_tokens(dir, &tokens, err) < 0)
        return -1;
    /* Compare with every role without stopping early, so timing says nothing
     * about which secret came close. */
    const char *match = NULL;
    bool right_length = secret != NULL && strlen(secret) == CA_SECRET_LEN;
    for (size_t i = 0; i < sizeof(join_roles) / sizeof(join_roles[0]); i++) {
        const char *known = token_secret(tokens, join_roles[i]);
        if (known && right_length && CRYPTO_memcmp(known, secret, CA_SECRET_LEN) == 0)
            match = join_roles[i];
    }
    json_decref(tokens);
    if (match == NULL)
        return serr_set(err, SERR_INVALID, "invalid join token (rotated or wrong)");
    snprintf(role_out, 16, "%s", match);
    return 0;
}

/* ---- CSRs and node certificates ---- */

static X509_REQ *csr_from_pem_verified(const char *csr_pem, struct serr *err)
{
    BIO *bio = BIO_new_mem_buf(csr_pem, -1);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (req == NULL) {
        ERR_clear_error();
        serr_set(err, SERR_INVALID, "invalid certificate signing request");
        return NULL;
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL || X509_REQ_verify(req, pub) != 1) {
        ERR_clear_error();
        X509_REQ_free(req);
        serr_set(err, SERR_INVALID, "certificate signing request: bad signature");
        return NULL;
    }
    return req;
}

static int check_csr_cn(X509_REQ *req, const char *node_id, struct serr *err)
{
    char cn[256];
    if (name_entry_text(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof(cn)) < 0)
        return serr_set(err, SERR_INVALID, "certificate signing request: no single CN");
    if (strcmp(cn, node_id) != 0)
        return serr_set(err, SERR_INVALID,
                        "certificate signing request: CN \"%s\" is not the node id \"%s\"", cn,
                        node_id);
    return 0;
}

static X509 *new_node_cert(X509 *ca_cert, EVP_PKEY *ca_key, EVP_PKEY *node_pub,
                           const char *node_id, const char *role)
{
    X509 *cert = X509_new();
    if (cert == NULL || !X509_set_version(cert, X509_VERSION_3) || set_random_serial(cert) < 0 ||
        set_validity(cert, NODE_CERT_DAYS) < 0)
        goto fail;
    X509_NAME *name = X509_get_subject_name(cert);
    if (name_entry_add(name, "OU", role) < 0 || name_entry_add(name, "CN", node_id) < 0 ||
        !X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)) ||
        !X509_set_pubkey(cert, node_pub))
        goto fail;
    if (add_ext(cert, ca_cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(cert, ca_cert, NID_key_usage, "critical,digitalSignature") < 0 ||
        add_ext(cert, ca_cert, NID_ext_key_usage, "serverAuth,clientAuth") < 0 ||
        add_ext(cert, ca_cert, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(cert, ca_cert, NID_authority_key_identifier, "keyid:always") < 0)
        goto fail;
    if (!X509_sign(cert, ca_key, EVP_sha256()))
        goto fail;
    return cert;
fail:
    X509_free(cert);
    return NULL;
}

int ca_sign(const char *dir, const char *csr_pem, const char *node_id, const char *role,
            char **cert_pem, struct serr *err)
{
    if (node_id == NULL || *node_id == '\0')
        return serr_set(err, SERR_INVALID, "empty node id");
    if (role == NULL || !role_is_valid(role))
        return serr_set(err, SERR_INVALID, "invalid role \"%s\"", role ? role : "");
    int rc = -1;
    X509 *ca_cert = NULL, *cert = NULL;
    EVP_PKEY *ca_key = NULL;
    X509_REQ *req = csr_from_pem_verified(csr_pem, err);
    if (req == NULL || check_csr_cn(req, node_id, err) < 0)
        goto out;
    if (load_ca(dir, &ca_cert, &ca_key, err) < 0)
        goto out;
    cert = new_node_cert(ca_cert, ca_key, X509_REQ_get0_pubkey(req), node_id, role);
    if (cert == NULL) {
        tls_fail(err, "issue certificate");
        goto out;
    }
    *cert_pem = cert_to_pem(cert);
    rc = 0;
out:
    X509_free(cert);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    X509_REQ_free(req);
    return rc;
}

int ca_issue_admin(const char *dir, char **key_pem, char **cert_pem, struct serr *err)
{
    char suffix[17], id[32], *csr_pem = NULL;
    random_hex(suffix, 16);
    snprintf(id, sizeof(id), "admin-%s", suffix);
    if (node_key_csr(id, key_pem, &csr_pem, err) < 0)
        return -1;
    int rc = ca_sign(dir, csr_pem, id, "admin", cert_pem, err);
    free(csr_pem);
    if (rc < 0) {
        OPENSSL_cleanse(*key_pem, strlen(*key_pem));
        free(*key_pem);
        *key_pem = NULL;
    }
    return rc;
}
