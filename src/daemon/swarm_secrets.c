/* The managers' secrets data key (manager/secret.h): <state_dir>/ca/secrets.key,
 * mode 0600, made at swarm init and handed to each new manager over TLS (the
 * join answer; the session answer that carries a promoted node's manager
 * certificate). Never in the store nor the Raft log. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/session.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "manager/secret.h"
#include "raft/cluster.h"
#include "store/store.h"

static char *key_path(struct shoal *sh)
{
    return shoal_state_path(sh, "ca/secrets.key");
}

/* With --autolock: the key sealed with the unlock key instead of key_path. */
static char *locked_path(struct shoal *sh)
{
    return shoal_state_path(sh, "ca/secrets.key.locked");
}

static bool is_locked_swarm(struct shoal *sh)
{
    char *path = locked_path(sh);
    bool locked = access(path, F_OK) == 0;
    free(path);
    return locked;
}

int swarm_secrets_key_init(struct shoal *sh, struct serr *err)
{
    char *dir = shoal_state_path(sh, "ca"), *path = key_path(sh);
    int rc = mkdir_p(dir, 0700, err);
    if (rc == 0)
        rc = secret_key_create(path, err);
    free(dir);
    free(path);
    return rc;
}

/* The key as hex: the file, else (autolock) memory once unlocked. */
static int key_hex(struct shoal *sh, char hex[2 * SECRET_KEY_LEN + 1], struct serr *err)
{
    if (is_locked_swarm(sh)) {
        if (sh->secrets_key[0] == '\0')
            return serr_set(err, SERR_UNAVAILABLE, "this manager is locked: its secrets key "
                            "needs the unlock key (run 'shoal swarm unlock')");
        memcpy(hex, sh->secrets_key, 2 * SECRET_KEY_LEN + 1);
        return 0;
    }
    char *path = key_path(sh);
    int rc = secret_key_read_hex(path, hex, err);
    free(path);
    return rc;
}

int swarm_secrets_key(struct shoal *sh, unsigned char key[SECRET_KEY_LEN], struct serr *err)
{
    char hex[2 * SECRET_KEY_LEN + 1];
    if (key_hex(sh, hex, err) < 0)
        return -1;
    for (size_t i = 0; i < SECRET_KEY_LEN; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        key[i] = (unsigned char)v;
    }
    OPENSSL_cleanse(hex, sizeof(hex));
    return 0;
}

void swarm_secrets_key_offer(struct shoal *sh, json_t *reply)
{
    char hex[2 * SECRET_KEY_LEN + 1];
    if (key_hex(sh, hex, NULL) == 0)
        json_object_set_new(reply, "secrets_key", json_string(hex));
    OPENSSL_cleanse(hex, sizeof(hex));
    char *path = locked_path(sh), *sealed = NULL;
    if (read_file(path, &sealed, NULL, NULL) == 0) /* new managers unlock with the same key */
        json_object_set_new(reply, "secrets_key_locked", json_string(sealed));
    free(sealed);
    free(path);
}

int swarm_secrets_key_take(struct shoal *sh, json_t *answer, struct serr *err)
{
    const char *hex = json_string_value(json_object_get(answer, "secrets_key"));
    const char *sealed = json_string_value(json_object_get(answer, "secrets_key_locked"));
    if (hex == NULL)
        return 0;
    if (strlen(hex) != 2 * SECRET_KEY_LEN)
        return serr_set(err, SERR_INVALID, "the secrets key is malformed");
    char *dir = shoal_state_path(sh, "ca");
    char *path = sealed ? locked_path(sh) : key_path(sh);
    int rc = mkdir_p(dir, 0700, err);
    if (rc == 0 && sealed) { /* autolock: only the sealed key on disk, the key in memory */
        rc = write_file_atomic(path, sealed, strlen(sealed), true, err);
        snprintf(sh->secrets_key, sizeof(sh->secrets_key), "%s", hex);
    } else if (rc == 0) {
        rc = secret_key_write(path, hex, err);
    }
    free(dir);
    free(path);
    return rc;
}

void swarm_secrets_key_drop(struct shoal *sh)
{
    char *path = key_path(sh), *locked = locked_path(sh);
    unlink(path);
    unlink(locked);
    free(path);
    free(locked);
    OPENSSL_cleanse(sh->secrets_key, sizeof(sh->secrets_key));
    sh->autolock_key_id[0] = '\0';
}

/* ---- autolock ---- */

#define UNLOCK_PREFIX "SWMKEY-1-"
#define LOCK_AAD "shoal secrets key"

/* "SWMKEY-1-BASE64" of a key-encryption key; caller frees. */
static char *unlock_key_text(const unsigned char kek[SECRET_KEY_LEN])
{
    char *b64 = base64_encode(kek, SECRET_KEY_LEN);
    char *text = xasprintf(UNLOCK_PREFIX "%s", b64);
    OPENSSL_cleanse(b64, strlen(b64));
    free(b64);
    return text;
}

static int parse_unlock_key(const char *text, unsigned char kek[SECRET_KEY_LEN],
                            struct serr *err)
{
    size_t klen = 0;
    unsigned char *raw = NULL;
    if (text && strncmp(text, UNLOCK_PREFIX, strlen(UNLOCK_PREFIX)) == 0)
        raw = base64_decode(text + strlen(UNLOCK_PREFIX), &klen);
    int rc = 0;
    if (raw == NULL || klen != SECRET_KEY_LEN)
        rc = serr_set(err, SERR_INVALID, "invalid unlock key (it looks like %sBASE64)",
                      UNLOCK_PREFIX);
    else
        memcpy(kek, raw, SECRET_KEY_LEN);
    if (raw)
        OPENSSL_cleanse(raw, klen);
    free(raw);
    return rc;
}

/* The data key (hex) sealed with `kek` into the locked file, atomically. */
static int write_locked(struct shoal *sh, const char *hex, const unsigned char kek[SECRET_KEY_LEN],
                        struct serr *err)
{
    char *path = locked_path(sh);
    char *sealed = secret_seal(kek, LOCK_AAD, (const unsigned char *)hex, strlen(hex), err);
    int rc = sealed ? write_file_atomic(path, sealed, strlen(sealed), true, err) : -1;
    free(sealed);
    free(path);
    return rc;
}

int swarm_secrets_key_lock(struct shoal *sh, char **unlock_key, struct serr *err)
{
    char hex[2 * SECRET_KEY_LEN + 1];
    if (key_hex(sh, hex, err) < 0)
        return -1;
    unsigned char kek[SECRET_KEY_LEN];
    char *plain = key_path(sh);
    int rc = RAND_bytes(kek, sizeof(kek)) == 1 ? 0 : serr_set(err, SERR_INTERNAL, "no random");
    if (rc == 0)
        rc = write_locked(sh, hex, kek, err);
    if (rc == 0) {
        memcpy(sh->secrets_key, hex, sizeof(hex));
        unlink(plain);
        *unlock_key = unlock_key_text(kek);
    }
    OPENSSL_cleanse(kek, sizeof(kek));
    OPENSSL_cleanse(hex, sizeof(hex));
    free(plain);
    return rc;
}

int swarm_unlock(struct shoal *sh, const char *unlock_key, struct serr *err)
{
    if (!is_locked_swarm(sh))
        return serr_set(err, SERR_INVALID, "swarm is not locked");
    if (sh->secrets_key[0])
        return serr_set(err, SERR_INVALID, "swarm is not locked (already unlocked)");
    unsigned char kek[SECRET_KEY_LEN];
    if (parse_unlock_key(unlock_key, kek, err) < 0)
        return -1;
    char *path = locked_path(sh), *sealed = NULL;
    size_t len = 0;
    unsigned char *hex = NULL;
    int rc = read_file(path, &sealed, NULL, err);
    if (rc == 0 && ((hex = secret_unseal(kek, LOCK_AAD, sealed, &len, NULL)) == NULL ||
                    len != 2 * SECRET_KEY_LEN))
        rc = serr_set(err, SERR_INVALID, "invalid unlock key: it does not open this "
                      "manager's secrets key");
    if (rc == 0) {
        memcpy(sh->secrets_key, hex, len);
        sh->secrets_key[len] = '\0';
    }
    if (hex)
        OPENSSL_cleanse(hex, len);
    OPENSSL_cleanse(kek, sizeof(kek));
    free(hex);
    free(sealed);
    free(path);
    if (rc == 0)
        swarm_autolock_sync(sh); /* down during a rotation: sealed with the new key now */
    return rc;
}

/* ---- the unlock key in the store ----
 * meta "autolock" {"id","key_id","unlock_key_enc"}: the unlock key sealed with
 * the data key, for `swarm unlock-key` on any manager that holds the data key.
 * The data key sealed with the unlock key stays in each manager's file and
 * never enters the store: the Raft log would keep the old ones after a
 * rotation. */

#define UNLOCK_KEY_AAD "shoal unlock key"
#define AUTOLOCK_META "autolock"

json_t *swarm_autolock_record(struct shoal *sh, const char *unlock_key, struct serr *err)
{
    unsigned char key[SECRET_KEY_LEN];
    if (swarm_secrets_key(sh, key, err) < 0)
        return NULL;
    char *enc =
        secret_seal(key, UNLOCK_KEY_AAD, (const unsigned char *)unlock_key, strlen(unlock_key), err);
    OPENSSL_cleanse(key, sizeof(key));
    if (enc == NULL)
        return NULL;
    char key_id[17];
    random_hex(key_id, 16);
    json_t *rec = json_pack("{s:s, s:s, s:s}", "id", AUTOLOCK_META, "key_id", key_id,
                            "unlock_key_enc", enc);
    free(enc);
    return rec;
}

/* The unlock key of the record, opened with the data key; caller frees. */
static char *record_unlock_key(struct shoal *sh, json_t *rec, struct serr *err)
{
    unsigned char key[SECRET_KEY_LEN];
    if (swarm_secrets_key(sh, key, err) < 0)
        return NULL;
    size_t len = 0;
    const char *enc = json_string_value(json_object_get(rec, "unlock_key_enc"));
    unsigned char *text = enc ? secret_unseal(key, UNLOCK_KEY_AAD, enc, &len, err) : NULL;
    OPENSSL_cleanse(key, sizeof(key));
    if (text == NULL) {
        serr_set(err, SERR_INTERNAL, "the stored unlock key cannot be read");
        return NULL;
    }
    char *out = xasprintf("%.*s", (int)len, (const char *)text);
    OPENSSL_cleanse(text, len);
    free(text);
    return out;
}

char *swarm_unlock_key_show(struct shoal *sh, struct serr *err)
{
    if (!is_locked_swarm(sh)) {
        serr_set(err, SERR_INVALID, "no unlock key is set (the swarm is not autolocked)");
        return NULL;
    }
    json_t *rec = store_get(sh->store, "meta", AUTOLOCK_META);
    char *text = NULL;
    if (rec == NULL)
        serr_set(err, SERR_NOT_FOUND, "the unlock key is not stored (the swarm was locked by an "
                 "older shoal): make a new one with 'shoal swarm unlock-key --rotate'");
    else
        text = record_unlock_key(sh, rec, err);
    json_decref(rec);
    return text;
}

void swarm_autolock_sync(struct shoal *sh)
{
    if (sh->cluster == NULL || sh->secrets_key[0] == '\0' || !is_locked_swarm(sh))
        return;
    json_t *rec = store_get(sh->store, "meta", AUTOLOCK_META);
    const char *key_id = json_string_value(json_object_get(rec, "key_id"));
    if (key_id == NULL || strcmp(key_id, sh->autolock_key_id) == 0) {
        json_decref(rec);
        return;
    }
    struct serr err = {0};
    unsigned char kek[SECRET_KEY_LEN];
    char *text = record_unlock_key(sh, rec, &err);
    int rc = text ? parse_unlock_key(text, kek, &err) : -1;
    if (rc == 0)
        rc = write_locked(sh, sh->secrets_key, kek, &err);
    if (rc == 0)
        snprintf(sh->autolock_key_id, sizeof(sh->autolock_key_id), "%s", key_id);
    else
        log_warn("autolock: the secrets key cannot be sealed with the current unlock key: %s",
                 err.msg);
    OPENSSL_cleanse(kek, sizeof(kek));
    if (text)
        OPENSSL_cleanse(text, strlen(text));
    free(text);
    json_decref(rec);
}

struct rotate_ctx {
    struct shoal *sh;
    swarm_done_cb done;
    void *data;
    char *unlock_key;
};

static void rotate_committed(void *arg, int status, const struct serr *err)
{
    struct rotate_ctx *r = arg;
    if (status < 0) {
        r->done(r->data, -1, NULL, err);
    } else {
        swarm_autolock_sync(r->sh); /* this manager's file at once; the others within 1 s */
        json_t *reply = json_pack("{s:s}", "unlock_key", r->unlock_key);
        r->done(r->data, 0, reply, NULL);
    }
    OPENSSL_cleanse(r->unlock_key, strlen(r->unlock_key));
    free(r->unlock_key);
    free(r);
}

int swarm_unlock_key_rotate(struct shoal *sh, swarm_done_cb done, void *data, struct serr *err)
{
    if (!is_locked_swarm(sh))
        return serr_set(err, SERR_INVALID, "no unlock key is set (the swarm is not autolocked)");
    unsigned char kek[SECRET_KEY_LEN];
    if (RAND_bytes(kek, sizeof(kek)) != 1)
        return serr_set(err, SERR_INTERNAL, "no random");
    char *text = unlock_key_text(kek);
    OPENSSL_cleanse(kek, sizeof(kek));
    json_t *rec = swarm_autolock_record(sh, text, err);
    if (rec == NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
        return -1;
    }
    struct rotate_ctx *r = xcalloc(1, sizeof(*r));
    *r = (struct rotate_ctx){sh, done, data, text};
    cluster_propose(sh->cluster, json_pack("[o]", op_put("meta", rec)), rotate_committed, r);
    return 0;
}

/* ---- delivery: only to the nodes whose tasks use them ---- */

static bool wants_running(json_t *task)
{
    const char *desired = json_string_value(json_object_get(task, "desired_state"));
    return desired == NULL || strcmp(desired, "running") == 0;
}

/* Calls fn for each secret and config reference of the tasks. */
static void each_ref(json_t *tasks, void (*fn)(const char *table, json_t *ref, void *arg),
                     void *arg)
{
    static const char *const tables[] = {"secrets", "configs", NULL};
    size_t i, j;
    json_t *task, *ref;
    json_array_foreach(tasks, i, task)
    {
        if (!wants_running(task))
            continue;
        json_t *container = json_object_get(task, "container");
        for (int t = 0; tables[t]; t++)
            json_array_foreach(json_object_get(container, tables[t]), j, ref) fn(tables[t], ref,
                                                                                arg);
    }
}

struct offer {
    struct shoal *sh;
    json_t *have; /* ids the node holds */
    json_t *out;  /* id -> base64 */
};

static bool holds(json_t *have, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(have, i, v) if (json_string_value(v) && strcmp(json_string_value(v), id) == 0)
        return true;
    return false;
}

static void offer_one(const char *table, json_t *ref, void *arg)
{
    struct offer *o = arg;
    const char *id = json_string_value(json_object_get(ref, "id"));
    if (id == NULL || json_object_get(o->out, id) || holds(o->have, id))
        return;
    struct serr err = {0};
    char *data = shoal_secret_data(o->sh, table, id, &err);
    if (data == NULL) {
        log_warn("%s %s: %s", secret_noun(table), id, err.msg);
        return;
    }
    json_object_set_new(o->out, id, json_string(data));
    OPENSSL_cleanse(data, strlen(data));
    free(data);
}

void swarm_secrets_for_node(struct shoal *sh, json_t *tasks, json_t *have, json_t *reply)
{
    struct offer o = {sh, have, json_object()};
    each_ref(tasks, offer_one, &o);
    if (json_object_size(o.out) > 0)
        json_object_set_new(reply, "secret_data", o.out);
    else
        json_decref(o.out);
}

static void keep_one(const char *table, json_t *ref, void *arg)
{
    const char *id = json_string_value(json_object_get(ref, "id"));
    if (id)
        json_object_set_new(arg, id, json_true());
}

json_t *swarm_secrets_used(json_t *tasks)
{
    json_t *ids = json_object();
    each_ref(tasks, keep_one, ids);
    return ids;
}

char *shoal_secret_data(struct shoal *sh, const char *table, const char *id, struct serr *err)
{
    if (sh->cluster == NULL) /* a worker: what the leader sent with the tasks */
        return sh->session ? session_secret(sh->session, id, err) : NULL;
    json_t *rec = store_get(sh->store, table, id);
    if (rec == NULL) {
        serr_set(err, SERR_NOT_FOUND, "%s %s is gone", secret_noun(table), id);
        return NULL;
    }
    unsigned char key[SECRET_KEY_LEN];
    unsigned char *raw = NULL;
    size_t len = 0;
    bool sealed = json_object_get(rec, "data_enc") != NULL;
    if (!sealed || swarm_secrets_key(sh, key, err) == 0)
        raw = secret_record_data(rec, key, &len, err);
    OPENSSL_cleanse(key, sizeof(key));
    json_decref(rec);
    if (raw == NULL)
        return NULL;
    char *text = base64_encode(raw, len);
    OPENSSL_cleanse(raw, len);
    free(raw);
    return text;
}
