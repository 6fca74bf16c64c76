/* Cluster CA, join tokens and TLS contexts on OpenSSL 3. See ca.h. */
#include "manager/ca.h"

#include <jansson.h>
#include <pthread.h>
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

#include "base/util.h"

#define CA_YEARS 10
#define NODE_CERT_DAYS 365
/* Certificates start a little in the past so a node whose clock lags the
 * manager's by a few minutes still accepts them. */
#define BACKDATE_SECONDS (5 * 60)
#define TOKEN_PREFIX "SHOAL-1-"

static const char *const join_roles[] = {"worker", "manager"};

/* ---- small helpers ---- */

/* Puts the newest OpenSSL error after `what` into err and clears the queue. */
static int ssl_fail(struct serr *err, const char *what)
{
    unsigned long code = ERR_peek_last_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;
    ERR_clear_error();
    return serr_set(err, SERR_INTERNAL, "%s: %s", what, reason ? reason : "openssl error");
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

static char *cert_to_pem(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || !PEM_write_bio_X509(bio, cert))
        abort(); /* memory BIOs only fail without memory, like xmalloc */
    char *pem = bio_to_string(bio);
    BIO_free(bio);
    return pem;
}

static char *key_to_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
        abort();
    char *pem = bio_to_string(bio);
    BIO_free(bio);
    return pem;
}

static X509 *cert_from_pem(const char *pem, struct serr *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (cert == NULL)
        ssl_fail(err, "read certificate");
    return cert;
}

static EVP_PKEY *key_from_pem(const char *pem, struct serr *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (key == NULL)
        ssl_fail(err, "read private key");
    return key;
}

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

static int add_name_entry(X509_NAME *name, const char *field, const char *value)
{
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value,
                                      -1, -1, 0)
               ? 0
               : -1;
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

static EVP_PKEY *new_p256_key(struct serr *err)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (key == NULL)
        ssl_fail(err, "generate P-256 key");
    return key;
}

static X509 *new_self_signed_ca(EVP_PKEY *key, struct serr *err)
{
    X509 *cert = X509_new();
    if (cert == NULL || !X509_set_version(cert, X509_VERSION_3) || set_random_serial(cert) < 0 ||
        set_validity(cert, CA_YEARS * 365L + CA_YEARS / 4) < 0)
        goto fail;
    X509_NAME *name = X509_get_subject_name(cert);
    if (add_name_entry(name, "CN", "shoal-ca") < 0 || !X509_set_issuer_name(cert, name) ||
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
    ssl_fail(err, "create CA certificate");
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
    if ((key = new_p256_key(err)) == NULL || (cert = new_self_signed_ca(key, err)) == NULL)
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

/* ---- digests and tokens ---- */

static void cert_digest_hex(X509 *cert, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!X509_digest(cert, EVP_sha256(), md, &len) || len != 32)
        abort(); /* only fails without memory */
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
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
    const char *secret = json_string_value(json_object_get(tokens, role));
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

static bool all_chars_in(const char *s, size_t len, const char *allowed)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || strchr(allowed, s[i]) == NULL)
            return false;
    return true;
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

static X509_REQ *new_csr(const char *node_id, EVP_PKEY *key)
{
    X509_REQ *req = X509_REQ_new();
    if (req == NULL || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        add_name_entry(X509_REQ_get_subject_name(req), "CN", node_id) < 0 ||
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
    EVP_PKEY *key = new_p256_key(err);
    if (key == NULL)
        return -1;
    X509_REQ *req = new_csr(node_id, key);
    if (req == NULL) {
        EVP_PKEY_free(key);
        return ssl_fail(err, "create CSR");
    }
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || !PEM_write_bio_X509_REQ(bio, req))
        abort();
    *csr_pem = bio_to_string(bio);
    *key_pem = key_to_pem(key);
    BIO_free(bio);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return 0;
}

static int name_text(const X509_NAME *name, int nid, char *out, size_t outlen)
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
    if (name_text(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof(cn)) < 0)
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
    if (add_name_entry(name, "OU", role) < 0 || add_name_entry(name, "CN", node_id) < 0 ||
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
        ssl_fail(err, "issue certificate");
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

int cert_identity(X509 *cert, char *node_id, size_t idlen, char *role, size_t rolelen,
                  struct serr *err)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    if (name_text(name, NID_commonName, node_id, idlen) < 0)
        return serr_set(err, SERR_INVALID, "certificate has no usable CN");
    if (X509_NAME_get_index_by_NID(name, NID_organizationalUnitName, -1) < 0) {
        if (rolelen > 0)
            role[0] = '\0';
        return 0;
    }
    if (name_text(name, NID_organizationalUnitName, role, rolelen) < 0)
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

/* ---- TLS contexts ---- */

static SSL_CTX *ctx_base(bool is_server, struct serr *err)
{
    SSL_CTX *ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        ssl_fail(err, "create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* TLS 1.2 only with forward-secret AEAD suites; 1.3 suites are all fine. */
    if (!SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20")) {
        SSL_CTX_free(ctx);
        ssl_fail(err, "set TLS ciphers");
        return NULL;
    }
    /* One TLS 1.3 ticket: tlsproxy clients wait for it to learn that the server
     * accepted their certificate (TLS 1.3 clients finish before the server checks). */
    if (is_server)
        SSL_CTX_set_num_tickets(ctx, 1);
    return ctx;
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
        ssl_fail(err, "use certificate and key");
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
        ssl_fail(err, "trust CA");
        goto fail;
    }
    if (cert_pem && ctx_use_identity(ctx, ca, cert_pem, key_pem, err) < 0)
        goto fail;
    if (is_server && !SSL_CTX_add_client_CA(ctx, ca)) {
        ssl_fail(err, "announce CA");
        goto fail;
    }
    int mode = SSL_VERIFY_PEER;
    if (is_server && require_peer_cert)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_verify_depth(ctx, 1); /* leaf and CA: shoal has no intermediates */
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
        ssl_fail(err, "store CA digest");
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, pin_verify, ctx);
    return ctx;
}
