/* The managers' secrets data key (manager/secret.h): <state_dir>/ca/secrets.key,
 * mode 0600, made at swarm init and handed to each new manager over TLS (the
 * join answer; the session answer that carries a promoted node's manager
 * certificate). Never in the store nor the Raft log. */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/session.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "manager/secret.h"
#include "store/store.h"

static char *key_path(struct shoal *sh)
{
    return shoal_state_path(sh, "ca/secrets.key");
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

int swarm_secrets_key(struct shoal *sh, unsigned char key[SECRET_KEY_LEN], struct serr *err)
{
    char *path = key_path(sh);
    int rc = secret_key_read(path, key, err);
    free(path);
    return rc;
}

void swarm_secrets_key_offer(struct shoal *sh, json_t *reply)
{
    char hex[2 * SECRET_KEY_LEN + 1];
    char *path = key_path(sh);
    if (secret_key_read_hex(path, hex, NULL) == 0)
        json_object_set_new(reply, "secrets_key", json_string(hex));
    OPENSSL_cleanse(hex, sizeof(hex));
    free(path);
}

int swarm_secrets_key_take(struct shoal *sh, json_t *answer, struct serr *err)
{
    const char *hex = json_string_value(json_object_get(answer, "secrets_key"));
    if (hex == NULL)
        return 0;
    char *dir = shoal_state_path(sh, "ca"), *path = key_path(sh);
    int rc = mkdir_p(dir, 0700, err);
    if (rc == 0)
        rc = secret_key_write(path, hex, err);
    free(dir);
    free(path);
    return rc;
}

void swarm_secrets_key_drop(struct shoal *sh)
{
    char *path = key_path(sh);
    unlink(path);
    free(path);
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
