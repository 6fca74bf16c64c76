/* Volume backups by hand: POST /v1/volumes/NAME/backup and .../restore run
 * on the node holding the volume (manager/volume.h volume_holder): the
 * leader relays them there over the cluster port (POST /v1/node/volume,
 * callable by managers only) or runs them on its own agent. GET
 * /v1/volumes/NAME/backups lists the backup dir as the answering node sees
 * it (every node mounts the same one). Archives: agent/volumes.h. */
#include <stdlib.h>
#include <string.h>

#include "agent/volumes.h"
#include "api/api_int.h"
#include "base/json_get.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "http/http_aclient.h"
#include "manager/volume.h"
#include "store/store.h"

#define RELAY_TIMEOUT_MS (60u * 60 * 1000) /* a large volume takes long to archive */

/* ---- on the node holding the volume ---- */

static void answer_job(void *arg, json_t *result, const struct serr *err)
{
    struct http_req *req = arg;
    if (result)
        respond_json(req, 200, json_incref(result));
    else
        http_respond_error(req, err);
}

/* {"op": "backup"|"restore", "name", "from"?} on this node's agent. */
static void run_here(struct shoal *sh, struct http_req *req, json_t *body)
{
    struct serr err = {0};
    const char *op = jstr(body, "op"), *name = jstr(body, "name");
    int rc;
    if (sh->agent == NULL || !volume_name_valid(name))
        rc = serr_set(&err, SERR_INVALID, "invalid volume request");
    else if (jstr_is(body, "op", "backup"))
        rc = agent_volume_backup(sh->agent, name, answer_job, req, &err);
    else if (jstr_is(body, "op", "restore"))
        rc = agent_volume_restore(sh->agent, name, jstr(body, "from"), answer_job, req, &err);
    else
        rc = serr_set(&err, SERR_INVALID, "unknown volume operation '%s'", op ? op : "");
    if (rc < 0)
        http_respond_error(req, &err);
}

/* POST /v1/node/volume: a manager's relay (run_on_holder). */
void post_node_volume(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_manager_caller(req, "ask a node to back up or restore a volume"))
        return;
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    log_info("volume %s %s asked by %s", jstr_or(body, "op", "?"), jstr_or(body, "name", "?"),
             req->remote ? req->peer_id : "local");
    run_here(sh, req, body);
    json_decref(body);
}

/* ---- the relay ---- */

struct relay {
    struct shoal *sh;
    struct http_req *req;
    char *body;
};

static void relay_free(struct relay *r)
{
    free(r->body);
    free(r);
}

static void relay_answer(void *arg, int status, const char *body, size_t len, const char *errmsg)
{
    struct relay *r = arg;
    json_t *j = status >= 0 ? json_loadb(body, len, 0, NULL) : NULL;
    if (status < 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "the node holding the volume did not answer: %s", errmsg);
        respond_err(r->req, SERR_UNAVAILABLE, msg);
    } else if (json_is_object(j)) {
        respond_json(r->req, status, json_incref(j));
    } else {
        respond_err(r->req, SERR_INTERNAL, "the node holding the volume answered no JSON");
    }
    json_decref(j);
    relay_free(r);
}

static void relay_connected(void *arg, int fd, const char *errmsg)
{
    struct relay *r = arg;
    if (fd < 0) {
        relay_answer(r, -1, NULL, 0, errmsg);
        return;
    }
    struct http_aopts opts = {.timeout_ms = RELAY_TIMEOUT_MS};
    http_arequest_opts(r->sh->loop, fd, "POST", "/v1/node/volume", "application/json", r->body,
                       strlen(r->body), -1, &opts, relay_answer, r);
}

/* Runs `body` (borrowed) on the node holding the volume `rec`. */
static void run_on_holder(struct shoal *sh, struct http_req *req, json_t *rec, json_t *body)
{
    json_t *tasks = volume_tasks(sh->store, jstr(rec, "name"));
    const char *id = volume_holder(rec, tasks);
    json_t *node = *id ? store_find(sh->store, "nodes", id, NULL) : NULL;
    const char *addr = jstr(node, "addr");
    if (*id == '\0' || strcmp(id, sh->node_id) == 0) {
        run_here(sh, req, body); /* no holder yet: the leader's copy, if any */
    } else if (node == NULL || jstr_is(node, "status", "down") || addr == NULL || !*addr) {
        char msg[300];
        snprintf(msg, sizeof(msg), "node %s holding volume %s is %s", id, jstr(rec, "name"),
                 node == NULL ? "gone" : "down");
        respond_err(req, SERR_UNAVAILABLE, msg);
    } else {
        struct relay *r = xcalloc(1, sizeof(*r));
        *r = (struct relay){.sh = sh, .req = req, .body = json_dumps(body, JSON_COMPACT)};
        clusternet_connect(sh, addr, relay_connected, r);
    }
    json_decref(node);
    json_decref(tasks);
}

/* The volume's record, or NULL after answering 404. */
static json_t *volume_or_404(struct shoal *sh, struct http_req *req, const char *name)
{
    struct serr err = {0};
    json_t *rec = volume_get(sh->store, name, &err);
    if (rec == NULL)
        http_respond_error(req, &err);
    return rec;
}

/* POST /v1/volumes/NAME/backup -> the new backup {"name", "path", "size",
 * "created_at", "sha256"}. */
void post_volume_backup(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *rec = volume_or_404(sh, req, args[0]);
    if (rec == NULL)
        return;
    json_t *body = json_pack("{s:s, s:O}", "op", "backup", "name", json_object_get(rec, "name"));
    run_on_holder(sh, req, rec, body);
    json_decref(body);
    json_decref(rec);
}

/* POST /v1/volumes/NAME/restore {"from"?: backup name} */
void post_volume_restore(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *in = body_json(req, false);
    if (in == NULL)
        return;
    json_t *rec = volume_or_404(sh, req, args[0]);
    if (rec == NULL) {
        json_decref(in);
        return;
    }
    const char *from = jstr(in, "from");
    if (from && (strchr(from, '/') || *from == '\0' || *from == '.')) {
        respond_err(req, SERR_INVALID, "from: a backup's name as `volume backups` lists it");
    } else {
        json_t *body = json_pack("{s:s, s:O, s:s?}", "op", "restore", "name",
                                 json_object_get(rec, "name"), "from", from);
        run_on_holder(sh, req, rec, body);
        json_decref(body);
    }
    json_decref(rec);
    json_decref(in);
}

/* GET /v1/volumes/NAME/backups -> newest first. */
void get_volume_backups(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    json_t *rec = volume_or_404(sh, req, args[0]);
    if (rec == NULL)
        return;
    if (sh->backup_dir == NULL)
        respond_err(req, SERR_INVALID, "this node has no backup directory: set \"backup-dir\" "
                                       "in its daemon.json");
    else
        respond_json(req, 200, volumes_list(sh->backup_dir, jstr(rec, "name")));
    json_decref(rec);
}
