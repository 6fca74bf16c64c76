/* Secret and config routes (manager/secret.h). The kind is the first path
 * segment: /v1/secrets/... and /v1/configs/... share these handlers. */
#include <openssl/crypto.h>
#include <string.h>

#include "api/api_int.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "http/http.h"
#include "manager/secret.h"
#include "store/store.h"

/* "/v1/secrets..." -> "secrets" */
static const char *kind_of(struct http_req *req)
{
    return strncmp(req->path, "/v1/configs", 11) == 0 ? "configs" : "secrets";
}

void get_secrets(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    const char *table = kind_of(req);
    json_t *rows = store_list(sh->store, table, "name"), *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        json_t *v = secret_view(table, r);
        json_object_del(v, "data"); /* a listing is read level: no config data either */
        json_array_append_new(out, v);
    }
    json_decref(rows);
    respond_json(req, 200, out);
}

void get_secret(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    const char *table = kind_of(req);
    struct serr err = {0};
    json_t *rec = secret_find(sh->store, table, args[0], &err);
    if (rec == NULL) {
        http_respond_error(req, &err);
        return;
    }
    json_t *view = secret_view(table, rec);
    json_object_set_new(view, "services",
                        secret_users(sh->store, table, json_string_value(json_object_get(rec, "name"))));
    json_decref(rec);
    respond_json(req, 200, view);
}

/* The leader encrypts a secret before proposing it: the plaintext never
 * enters a Raft entry. */
static int encrypt(struct shoal *sh, json_t *rec, struct serr *err)
{
    unsigned char key[SECRET_KEY_LEN];
    if (swarm_secrets_key(sh, key, err) < 0) {
        err->kind = SERR_UNAVAILABLE;
        return -1;
    }
    int rc = secret_encrypt_record(rec, key, err);
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

void post_secret(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    json_t *body = leader_body(sh, req);
    if (body == NULL)
        return;
    const char *table = kind_of(req);
    struct serr err = {0};
    json_t *rec = secret_new(sh->store, table, body, &err);
    json_decref(body);
    if (rec && strcmp(table, "secrets") == 0 && encrypt(sh, rec, &err) < 0) {
        json_decref(rec);
        rec = NULL;
    }
    if (rec == NULL) {
        http_respond_error(req, &err);
        return;
    }
    json_t *reply = json_pack("{s:O, s:O}", "id", json_object_get(rec, "id"), "name",
                              json_object_get(rec, "name"));
    propose_and_reply(sh, req, json_pack("[o]", op_put_unique_name(table, rec)), 201, reply);
}

void delete_secret(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    const char *table = kind_of(req);
    struct serr err = {0};
    json_t *rec = secret_find(sh->store, table, args[0], &err);
    if (rec == NULL) {
        http_respond_error(req, &err);
        return;
    }
    const char *name = json_string_value(json_object_get(rec, "name"));
    json_t *users = secret_users(sh->store, table, name);
    if (json_array_size(users) > 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s %s is in use by service %s%s", secret_noun(table), name,
                 json_string_value(json_array_get(users, 0)),
                 json_array_size(users) > 1 ? " and others" : "");
        respond_err(req, SERR_CONFLICT, msg);
    } else {
        const char *id = json_string_value(json_object_get(rec, "id"));
        propose_and_reply(sh, req, json_pack("[o]", op_del(table, id)), 200,
                          json_pack("{s:s}", "id", id));
    }
    json_decref(users);
    json_decref(rec);
}

/* POST /v1/swarm/unlock {"key": "SWMKEY-1-..."} (local: the Unix socket only). */
void post_swarm_unlock(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    struct serr err = {0};
    if (swarm_unlock(sh, json_string_value(json_object_get(body, "key")), &err) < 0)
        http_respond_error(req, &err);
    else
        respond_json(req, 200, json_object());
    json_decref(body);
}

/* GET /v1/swarm/unlock-key: {"unlock_key"} (any unlocked manager). */
void get_swarm_unlock_key(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    struct serr err = {0};
    char *key = swarm_unlock_key_show(sh, &err);
    if (key == NULL) {
        http_respond_error(req, &err);
        return;
    }
    respond_json(req, 200, json_pack("{s:s}", "unlock_key", key));
    OPENSSL_cleanse(key, strlen(key));
    free(key);
}

/* POST /v1/swarm/unlock-key/rotate: a new unlock key, {"unlock_key"} (the leader). */
void post_swarm_unlock_key_rotate(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_leader(sh, req))
        return;
    struct serr err = {0};
    if (swarm_unlock_key_rotate(sh, swarm_answer, req, &err) < 0)
        http_respond_error(req, &err);
}
