/* The swarm files of a node: <state_dir>/swarm.json, tls/ (this node's
 * certificate) and, on managers, ca/ (the cluster CA, written from the store). */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "daemon/swarm_int.h"
#include "manager/secret.h"
#include "store/store.h"

int swarm_state_write_text(struct shoal *sh, const char *rel, const char *text, struct serr *err)
{
    char *path = shoal_state_path(sh, rel);
    int rc = write_file_atomic(path, text, strlen(text), true, err);
    free(path);
    return rc;
}

char *swarm_state_read_text(struct shoal *sh, const char *rel, struct serr *err)
{
    char *path = shoal_state_path(sh, rel), *text = NULL;
    int rc = read_file(path, &text, NULL, err);
    free(path);
    return rc == 0 ? text : NULL;
}

int swarm_state_save(struct shoal *sh, const char *cluster_id, json_t *managers,
                     const char *join_addr, struct serr *err)
{
    char raft_id[17];
    snprintf(raft_id, sizeof(raft_id), "%016llx", (unsigned long long)sh->raft_id);
    json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s?, s:s?}", "addr", sh->swarm_addr,
                            "raft_id", raft_id, "cluster_id", cluster_id, "role", sh->role,
                            "managers", managers, "listen_addr", sh->listen_addr, "join_addr",
                            join_addr);
    char *text = json_dumps(cfg, JSON_INDENT(2));
    int rc = swarm_state_write_text(sh, "swarm.json", text, err);
    free(text);
    json_decref(cfg);
    return rc;
}

int swarm_remember_managers(struct shoal *sh, json_t *managers, struct serr *err)
{
    char *path = shoal_state_path(sh, "swarm.json");
    json_error_t jerr;
    json_t *cfg = json_load_file(path, 0, &jerr);
    int rc = 0;
    if (cfg == NULL) {
        rc = serr_set(err, SERR_INTERNAL, "%s: %s", path, jerr.text);
    } else if (!json_equal(json_object_get(cfg, "managers"), managers)) {
        json_object_set(cfg, "managers", managers);
        char *text = json_dumps(cfg, JSON_INDENT(2));
        rc = swarm_state_write_text(sh, "swarm.json", text, err);
        free(text);
    }
    json_decref(cfg);
    free(path);
    return rc;
}

void swarm_state_forget(struct shoal *sh)
{
    static const char *const paths[] = {"swarm.json", "raft", "tls", "ca", NULL};
    for (int i = 0; paths[i]; i++) {
        char *path = shoal_state_path(sh, paths[i]);
        rm_rf(path, NULL);
        free(path);
    }
}

int swarm_state_save_tls(struct shoal *sh, const char *ca, const char *cert, const char *key,
                         struct serr *err)
{
    char *dir = shoal_state_path(sh, "tls");
    int rc = mkdir_p(dir, 0700, err);
    free(dir);
    if (rc == 0)
        rc = swarm_state_write_text(sh, "tls/ca.crt", ca, err);
    if (rc == 0)
        rc = swarm_state_write_text(sh, "tls/node.crt", cert, err);
    if (rc == 0)
        rc = swarm_state_write_text(sh, "tls/node.key", key, err);
    return rc;
}

/* The CA (key, certificate, join secrets) is cluster state, in the store's
 * meta "ca", so any manager that becomes leader can sign. The key and the
 * join secrets are sealed there with the managers' secrets data key
 * (manager/secret.h, AES-256-GCM), so the Raft log and its snapshots never
 * hold them in clear; stores written before keep "key"/"tokens" in clear and
 * are read as they are. */
#define CA_KEY_AAD "shoal ca key"
#define CA_TOKENS_AAD "shoal join tokens"

/* One secret field of meta "ca" in clear (new string), NULL with `err`. */
static char *ca_field_open(struct shoal *sh, json_t *ca, const char *field, const char *aad,
                           struct serr *err)
{
    const char *clear = json_string_value(json_object_get(ca, field));
    if (clear != NULL)
        return xstrdup(clear);
    char *sealed_field = xasprintf("%s_sealed", field);
    const char *sealed = json_string_value(json_object_get(ca, sealed_field));
    free(sealed_field);
    if (sealed == NULL) {
        serr_set(err, SERR_INTERNAL, "the cluster's CA record has no %s", field);
        return NULL;
    }
    unsigned char key[SECRET_KEY_LEN];
    if (swarm_secrets_key(sh, key, err) < 0)
        return NULL;
    size_t len = 0;
    unsigned char *plain = secret_unseal(key, aad, sealed, &len, err);
    OPENSSL_cleanse(key, sizeof(key));
    if (plain == NULL)
        return NULL;
    char *text = xmalloc(len + 1);
    memcpy(text, plain, len);
    text[len] = '\0';
    OPENSSL_cleanse(plain, len);
    free(plain);
    return text;
}

/* Writes <state_dir>/REL from the store when it differs. */
static int ca_file_sync(struct shoal *sh, const char *rel, const char *want, struct serr *err)
{
    char *have = swarm_state_read_text(sh, rel, NULL);
    int rc = 0;
    if (have == NULL || strcmp(have, want) != 0)
        rc = swarm_state_write_text(sh, rel, want, err);
    free(have);
    return rc;
}

/* The library works on files: this writes them under <state_dir>/ca/ from the
 * store (a locked manager cannot open the key: it cannot sign). */
char *swarm_ca_dir(struct shoal *sh, struct serr *err)
{
    json_t *ca = store_get(sh->store, "meta", "ca");
    if (ca == NULL) {
        serr_set(err, SERR_UNAVAILABLE, "the cluster has no CA yet");
        return NULL;
    }
    char *dir = shoal_state_path(sh, "ca");
    char *key = NULL, *tokens = NULL;
    const char *cert = json_string_value(json_object_get(ca, "cert"));
    int rc = mkdir_p(dir, 0700, err);
    if (rc == 0 && cert == NULL)
        rc = serr_set(err, SERR_INTERNAL, "the cluster's CA record has no certificate");
    if (rc == 0 && (key = ca_field_open(sh, ca, "key", CA_KEY_AAD, err)) == NULL)
        rc = -1;
    if (rc == 0 && (tokens = ca_field_open(sh, ca, "tokens", CA_TOKENS_AAD, err)) == NULL)
        rc = -1;
    if (rc == 0)
        rc = ca_file_sync(sh, "ca/ca.crt", cert, err);
    if (rc == 0)
        rc = ca_file_sync(sh, "ca/ca.key", key, err);
    if (rc == 0)
        rc = ca_file_sync(sh, "ca/tokens.json", tokens, err);
    if (key)
        OPENSSL_cleanse(key, strlen(key));
    free(key);
    free(tokens);
    json_decref(ca);
    if (rc < 0) {
        free(dir);
        return NULL;
    }
    return dir;
}

/* `text` sealed for meta "ca" (new string), NULL with `err`. */
static char *ca_field_seal(struct shoal *sh, const char *text, const char *aad, struct serr *err)
{
    unsigned char key[SECRET_KEY_LEN];
    if (swarm_secrets_key(sh, key, err) < 0)
        return NULL;
    char *sealed = secret_seal(key, aad, (const unsigned char *)text, strlen(text), err);
    OPENSSL_cleanse(key, sizeof(key));
    return sealed;
}

json_t *swarm_state_ca_meta(struct shoal *sh, struct serr *err)
{
    char *cert = swarm_state_read_text(sh, "ca/ca.crt", err);
    char *key = cert ? swarm_state_read_text(sh, "ca/ca.key", err) : NULL;
    char *tokens = key ? swarm_state_read_text(sh, "ca/tokens.json", err) : NULL;
    char *key_sealed = tokens ? ca_field_seal(sh, key, CA_KEY_AAD, err) : NULL;
    char *tokens_sealed = key_sealed ? ca_field_seal(sh, tokens, CA_TOKENS_AAD, err) : NULL;
    json_t *meta = tokens_sealed ? json_pack("{s:s, s:s, s:s, s:s}", "id", "ca", "cert", cert,
                                             "key_sealed", key_sealed, "tokens_sealed",
                                             tokens_sealed)
                                 : NULL;
    if (key)
        OPENSSL_cleanse(key, strlen(key));
    free(cert);
    free(key);
    free(tokens);
    free(key_sealed);
    free(tokens_sealed);
    return meta;
}
