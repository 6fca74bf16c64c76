/* Volume routes (manager/volume.h): /v1/volumes. The records are the
 * cluster's (Raft); a volume's data is a directory on the node holding it,
 * so its size is known to that node only: a view answered elsewhere shows
 * "size": null. Removing a volume deletes its data on the leader when the
 * leader holds it (other nodes keep the directory: docs/design.md). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_int.h"
#include "base/json_get.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "manager/volume.h"
#include "raft/cluster.h"
#include "store/store.h"

/* "<state_dir>/volumes/NAME" on this node (new string). */
static char *local_dir(struct shoal *sh, const char *name)
{
    char *rel = xasprintf("volumes/%s", name);
    char *path = shoal_state_path(sh, rel);
    free(rel);
    return path;
}

/* What the API shows: the record plus "node_id", "node" (hostname),
 * "mountpoint", "size" (bytes, null when another node holds it),
 * "services", "tasks" and "dangling". New reference. */
static json_t *volume_view(struct shoal *sh, json_t *rec)
{
    const char *name = jstr(rec, "name");
    json_t *v = json_deep_copy(rec), *tasks = volume_tasks(sh->store, name);
    json_t *services = volume_services(sh->store, name);
    const char *node_id = volume_holder(rec, tasks);
    json_t *node = *node_id ? store_find(sh->store, "nodes", node_id, NULL) : NULL;
    char *dir = local_dir(sh, name);
    char *data = xasprintf("%s/_data", dir);
    json_object_set_new(v, "node_id", json_string(node_id));
    json_object_set_new(v, "node", json_string(node ? jstr_or(node, "hostname", "") : ""));
    json_object_set_new(v, "mountpoint", json_string(data));
    json_object_set_new(v, "size", strcmp(node_id, sh->node_id) == 0
                                       ? json_integer(api_dir_size(dir))
                                       : json_null());
    json_object_set_new(v, "dangling", json_boolean(json_array_size(services) == 0));
    json_object_set_new(v, "services", services);
    json_object_set_new(v, "tasks", tasks);
    free(data);
    free(dir);
    json_decref(node);
    return v;
}

/* GET /v1/volumes[?dangling=true|false] */
void get_volumes(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    char dangling[8] = "";
    if (http_query_get(req, "dangling", dangling, sizeof(dangling)) &&
        strcmp(dangling, "true") != 0 && strcmp(dangling, "false") != 0) {
        respond_err(req, SERR_INVALID, "filter dangling: expected true or false");
        return;
    }
    json_t *rows = store_list(sh->store, "volumes", "name"), *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        json_t *v = volume_view(sh, r);
        if (*dangling && jbool(v, "dangling", false) != (strcmp(dangling, "true") == 0))
            json_decref(v);
        else
            json_array_append_new(out, v);
    }
    json_decref(rows);
    respond_json(req, 200, out);
}

void get_volume(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    struct serr err = {0};
    json_t *rec = volume_get(sh->store, args[0], &err);
    if (rec == NULL) {
        http_respond_error(req, &err);
        return;
    }
    respond_json(req, 200, volume_view(sh, rec));
    json_decref(rec);
}

/* A policy's copy where nodes read it: <backup-dir>/NAME/policy.json.
 * Checks on the way that the leader's backup dir is set and writable. */
static int write_policy(struct shoal *sh, json_t *rec, struct serr *err)
{
    json_t *policy = json_object_get(rec, "backup");
    if (policy == NULL)
        return 0;
    if (sh->backup_dir == NULL)
        return serr_set(err, SERR_INVALID, "volume backups need a backup directory: set "
                        "\"backup-dir\" in daemon.json (the same shared directory on every node)");
    char *dir = xasprintf("%s/%s", sh->backup_dir, jstr(rec, "name"));
    char *path = xasprintf("%s/policy.json", dir);
    char *text = json_dumps(policy, JSON_COMPACT | JSON_SORT_KEYS);
    int rc = mkdir_p(dir, 0700, err);
    if (rc == 0)
        rc = write_file_atomic(path, text, strlen(text), true, err);
    if (rc < 0) {
        serr_wrap(err, "backup directory %s is not writable", sh->backup_dir);
        err->kind = SERR_INVALID;
    }
    free(text);
    free(path);
    free(dir);
    return rc;
}

/* POST /v1/volumes {"name", "labels", "backup"}: recorded as created on the
 * leader, whose data directory is made now (as `docker volume create`
 * does); a backup policy is written to the backup dir first. */
void post_volume(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_leader(sh, req))
        return;
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    struct serr err = {0};
    json_t *rec = volume_new(sh->store, body, sh->node_id, &err);
    json_decref(body);
    char *dir = rec ? local_dir(sh, jstr(rec, "name")) : NULL;
    char *data = dir ? xasprintf("%s/_data", dir) : NULL;
    if (rec && (write_policy(sh, rec, &err) < 0 || mkdir_p(data, 0755, &err) < 0)) {
        json_decref(rec);
        rec = NULL;
    }
    free(data);
    free(dir);
    if (rec == NULL) {
        http_respond_error(req, &err);
        return;
    }
    json_t *reply = json_pack("{s:O}", "name", json_object_get(rec, "name"));
    propose_and_reply(sh, req, json_pack("[o]", op_put("volumes", rec)), 201, reply);
}

/* Deletes the volumes' data on this node once their records are gone. */
struct removal {
    struct shoal *sh;
    struct http_req *req;
    json_t *names; /* owned */
    json_t *reply; /* owned until answered */
};

static void removal_done(void *arg, int status, const struct serr *err)
{
    struct removal *r = arg;
    if (status < 0) {
        http_respond_error(r->req, err);
        json_decref(r->reply);
    } else {
        size_t i;
        json_t *n;
        json_array_foreach(r->names, i, n)
        {
            char *dir = local_dir(r->sh, json_string_value(n));
            struct serr ignored = {0};
            rm_rf(dir, &ignored); /* absent: another node held it */
            free(dir);
            if (r->sh->backup_dir) { /* the backups stay; the schedule goes */
                char *policy = xasprintf("%s/%s/policy.json", r->sh->backup_dir,
                                         json_string_value(n));
                unlink(policy);
                free(policy);
            }
        }
        respond_json(r->req, 200, r->reply);
    }
    json_decref(r->names);
    free(r);
}

static void propose_removal(struct shoal *sh, struct http_req *req, json_t *names,
                            json_t *reply)
{
    json_t *group = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
        json_array_append_new(group, op_del("volumes", json_string_value(n)));
    struct removal *r = xcalloc(1, sizeof(*r));
    *r = (struct removal){.sh = sh, .req = req, .names = names, .reply = reply};
    cluster_propose(sh->cluster, group, removal_done, r);
}

/* DELETE /v1/volumes/NAME: refused (409) while a service mounts it (its
 * tasks use it, or will). */
void delete_volume(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    struct serr err = {0};
    json_t *rec = volume_get(sh->store, args[0], &err);
    if (rec == NULL) {
        http_respond_error(req, &err);
        return;
    }
    const char *name = jstr(rec, "name");
    json_t *users = volume_services(sh->store, name);
    if (json_array_size(users) > 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "volume %s is in use by service %s%s: remove the service "
                 "first", name, json_string_value(json_array_get(users, 0)),
                 json_array_size(users) > 1 ? " and others" : "");
        respond_err(req, SERR_CONFLICT, msg);
    } else {
        propose_removal(sh, req, json_pack("[s]", name), json_pack("{s:s}", "name", name));
    }
    json_decref(users);
    json_decref(rec);
}

/* POST /v1/volumes/prune -> {"volumes_deleted": [NAME], "space_reclaimed"}:
 * every volume no service mounts (space counted on this node). */
void post_volumes_prune(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_leader(sh, req))
        return;
    json_t *gone = volume_dangling(sh->store), *names = json_array();
    json_int_t reclaimed = 0;
    size_t i;
    json_t *v;
    json_array_foreach(gone, i, v)
    {
        char *dir = local_dir(sh, jstr(v, "name"));
        reclaimed += api_dir_size(dir);
        free(dir);
        json_array_append(names, json_object_get(v, "name"));
    }
    json_decref(gone);
    json_t *reply = json_pack("{s:O, s:I}", "volumes_deleted", names, "space_reclaimed", reclaimed);
    if (json_array_size(names) == 0) {
        json_decref(names);
        respond_json(req, 200, reply);
    } else {
        propose_removal(sh, req, names, reply);
    }
}
