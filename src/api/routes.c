/* API handlers. Reads answer from the local store; writes are proposed to
 * Raft and answered when committed. */
#include "api/routes.h"

#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "api/api_int.h"
#include "api/http.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "manager/orchestrator.h"
#include "manager/scheduler.h"
#include "manager/service.h"
#include "raft/cluster.h"
#include "store/store.h"

/* ---- helpers shared with routes_images.c ---- */

void respond_json(struct http_req *req, int status, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(obj);
    http_respond(req, status, "application/json", text, strlen(text));
    free(text);
}

void respond_err(struct http_req *req, enum serr_kind kind, const char *msg)
{
    struct serr err;
    serr_set(&err, kind, "%s", msg);
    http_respond_error(req, &err);
}

/* Writes need this node to be the leader of a swarm. */
bool require_leader(struct shoal *sh, struct http_req *req)
{
    if (sh->cluster == NULL) {
        respond_err(req, SERR_UNAVAILABLE,
                    "This node is not a swarm manager. Use \"shoal swarm init\" or \"shoal swarm "
                    "join\" to connect this node to swarm and try again.");
        return false;
    }
    if (!cluster_is_leader(sh->cluster)) {
        respond_err(req, SERR_UNAVAILABLE, "no leader in the swarm: writes are refused until "
                                           "a quorum of managers is back");
        return false;
    }
    return true;
}

bool require_swarm(struct shoal *sh, struct http_req *req)
{
    if (sh->cluster)
        return true;
    respond_err(req, SERR_UNAVAILABLE,
                "This node is not a swarm manager. Use \"shoal swarm init\" or \"shoal swarm "
                "join\" to connect this node to swarm and try again.");
    return false;
}

struct write_ctx {
    struct http_req *req;
    int status;
    json_t *reply;
};

static void write_done(void *arg, int status, const struct serr *err)
{
    struct write_ctx *w = arg;
    if (status < 0) {
        http_respond_error(w->req, err);
        json_decref(w->reply);
    } else {
        respond_json(w->req, w->status, w->reply);
    }
    free(w);
}

void propose_and_reply(struct shoal *sh, struct http_req *req, json_t *group, int status,
                       json_t *reply)
{
    struct write_ctx *w = xcalloc(1, sizeof(*w));
    w->req = req;
    w->status = status;
    w->reply = reply;
    cluster_propose(sh->cluster, group, write_done, w);
}

/* Parses a JSON body; answers 400 itself when it is malformed. */
json_t *body_json(struct http_req *req, bool required)
{
    if (req->body == NULL || req->body_len == 0) {
        if (required)
            respond_err(req, SERR_INVALID, "request body is required (JSON)");
        return required ? NULL : json_object();
    }
    json_error_t jerr;
    json_t *obj = json_loadb(req->body, req->body_len, 0, &jerr);
    if (obj == NULL) {
        char msg[300];
        snprintf(msg, sizeof(msg), "malformed JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        respond_err(req, SERR_INVALID, msg);
    }
    return obj;
}

bool query_flag(struct http_req *req, const char *key)
{
    char v[16];
    return http_query_get(req, key, v, sizeof(v)) &&
           (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || v[0] == '\0');
}

/* ---- system ---- */

static void get_info(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *meta = store_get(sh->store, "meta", "cluster");
    json_t *swarm = json_pack("{s:s, s:s?, s:b, s:b, s:s?}", "state",
                              sh->cluster ? "active" : "inactive", "cluster_id",
                              json_string_value(json_object_get(meta, "cluster_id")), "is_manager",
                              sh->cluster != NULL, "is_leader", cluster_is_leader(sh->cluster),
                              "addr", sh->swarm_addr);
    json_decref(meta);
    respond_json(req, 200,
                 json_pack("{s:s, s:s, s:s, s:o, s:s}", "node_id", sh->node_id, "hostname",
                           sh->hostname, "version", SHOAL_VERSION, "swarm", swarm, "cgroup_mode",
                           sh->rt.cgroup_mode == CGROUP_V2       ? "v2"
                           : sh->rt.cgroup_mode == CGROUP_HYBRID ? "hybrid"
                                                                 : "v1"));
}

static void post_swarm_init(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *body = body_json(req, false);
    if (body == NULL)
        return;
    swarm_init(sh, req, body);
    json_decref(body);
}

static void post_swarm_leave(struct shoal *sh, struct http_req *req, char **args)
{
    swarm_leave(sh, req, query_flag(req, "force"));
}

/* ---- nodes ---- */

static json_t *node_view(struct shoal *sh, json_t *node)
{
    json_t *n = json_deep_copy(node);
    const char *role = json_string_value(json_object_get(n, "role"));
    const char *ms = "";
    if (role && strcmp(role, "manager") == 0) {
        bool self = strcmp(json_string_value(json_object_get(n, "id")), sh->node_id) == 0;
        ms = self && cluster_is_leader(sh->cluster) ? "leader" : "reachable";
    }
    json_object_set_new(n, "manager_status", json_string(ms));
    return n;
}

static void get_nodes(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    json_t *nodes = store_list(sh->store, "nodes", "hostname");
    json_t *out = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) json_array_append_new(out, node_view(sh, n));
    json_decref(nodes);
    respond_json(req, 200, out);
}

static void get_node(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    struct serr err = {0};
    json_t *n = store_find(sh->store, "nodes", args[0], &err);
    if (n == NULL) {
        if (err.msg[0] == '\0')
            serr_set(&err, SERR_NOT_FOUND, "node %s not found", args[0]);
        http_respond_error(req, &err);
        return;
    }
    respond_json(req, 200, node_view(sh, n));
    json_decref(n);
}

/* ---- services ---- */

static json_int_t desired_replicas(struct shoal *sh, json_t *spec)
{
    const char *mode = json_string_value(json_object_get(spec, "mode"));
    if (mode == NULL || strcmp(mode, "global") != 0)
        return json_integer_value(json_object_get(spec, "replicas"));
    json_t *nodes = store_list(sh->store, "nodes", NULL);
    json_int_t n = 0;
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node)
    {
        if (node_eligible(node, json_object_get(spec, "constraints")))
            n++;
    }
    json_decref(nodes);
    return n;
}

static json_t *service_view(struct shoal *sh, json_t *svc)
{
    json_t *v = json_deep_copy(svc);
    json_t *tasks = store_list_where(sh->store, "tasks", "service_id",
                                     json_string_value(json_object_get(svc, "id")));
    json_int_t version = json_integer_value(json_object_get(svc, "version"));
    bool updating = false;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const char *desired = json_string_value(json_object_get(t, "desired_state"));
        if (desired && strcmp(desired, "running") == 0 &&
            json_integer_value(json_object_get(t, "spec_version")) < version)
            updating = true;
    }
    json_object_set_new(v, "replicas_running", json_integer(service_running_count(tasks)));
    json_object_set_new(v, "replicas_desired",
                        json_integer(desired_replicas(sh, json_object_get(svc, "spec"))));
    json_object_set_new(v, "update_status",
                        json_string(updating ? "updating" : version > 1 ? "completed" : ""));
    json_decref(tasks);
    return v;
}

static json_t *find_service(struct shoal *sh, struct http_req *req, const char *ref)
{
    if (!require_swarm(sh, req))
        return NULL;
    struct serr err = {0};
    json_t *svc = store_find(sh->store, "services", ref, &err);
    if (svc == NULL) {
        if (err.msg[0] == '\0')
            serr_set(&err, SERR_NOT_FOUND, "service %s not found", ref);
        http_respond_error(req, &err);
    }
    return svc;
}

static void get_services(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    json_t *all = store_list(sh->store, "services", "name");
    json_t *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(all, i, s) json_array_append_new(out, service_view(sh, s));
    json_decref(all);
    respond_json(req, 200, out);
}

static void get_service(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *svc = find_service(sh, req, args[0]);
    if (svc == NULL)
        return;
    respond_json(req, 200, service_view(sh, svc));
    json_decref(svc);
}

static void post_service(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    struct serr err = {0};
    json_t *spec = service_spec_normalize(sh->store, body, &err);
    json_decref(body);
    if (spec == NULL) {
        http_respond_error(req, &err);
        return;
    }
    char id[26];
    random_hex(id, 25);
    if (json_object_get(spec, "name") == NULL) {
        char name[16];
        snprintf(name, sizeof(name), "svc-%.8s", id);
        json_object_set_new(spec, "name", json_string(name));
    }
    const char *name = json_string_value(json_object_get(spec, "name"));
    json_t *dup = store_list_where(sh->store, "services", "name", name);
    bool taken = json_array_size(dup) > 0;
    json_decref(dup);
    if (taken) {
        serr_set(&err, SERR_CONFLICT, "service %s already exists (name conflicts with an "
                                      "existing object)", name);
        http_respond_error(req, &err);
        json_decref(spec);
        return;
    }
    json_int_t now = (json_int_t)now_ms();
    json_t *svc = json_pack("{s:s, s:s, s:i, s:o, s:I, s:I}", "id", id, "name", name, "version", 1,
                            "spec", spec, "created_at", now, "updated_at", now);
    json_t *reply = json_pack("{s:s, s:s}", "id", id, "name", name);
    propose_and_reply(sh, req, json_pack("[o]", op_put("services", svc)), 201, reply);
}

/* Replaces a service's spec; a changed task template bumps the version. */
static void replace_spec(struct shoal *sh, struct http_req *req, json_t *svc, json_t *spec)
{
    json_t *old = json_object_get(svc, "spec");
    json_int_t version = json_integer_value(json_object_get(svc, "version"));
    if (service_spec_template_changed(old, spec))
        version++;
    json_object_set_new(spec, "name", json_string(json_string_value(json_object_get(svc, "name"))));
    json_t *next = json_deep_copy(svc);
    json_object_set_new(next, "spec", spec);
    json_object_set_new(next, "version", json_integer(version));
    json_object_set_new(next, "updated_at", json_integer(now_ms()));
    json_t *reply = json_pack("{s:O, s:O, s:I}", "id", json_object_get(svc, "id"), "name",
                              json_object_get(svc, "name"), "version", version);
    propose_and_reply(sh, req, json_pack("[o]", op_put("services", next)), 200, reply);
}

static void post_service_update(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *svc = find_service(sh, req, args[0]);
    if (svc == NULL)
        return;
    json_t *patch = body_json(req, true);
    struct serr err = {0};
    json_t *spec = patch ? service_spec_patch(sh->store, json_object_get(svc, "spec"), patch, &err)
                         : NULL;
    if (patch && spec == NULL)
        http_respond_error(req, &err);
    if (spec)
        replace_spec(sh, req, svc, spec);
    json_decref(patch);
    json_decref(svc);
}

static void post_service_scale(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *svc = find_service(sh, req, args[0]);
    if (svc == NULL)
        return;
    json_t *body = body_json(req, true);
    json_t *replicas = json_object_get(body, "replicas");
    if (body && (json_object_size(body) != 1 || !json_is_integer(replicas))) {
        respond_err(req, SERR_INVALID, "scale wants {\"replicas\": N}");
    } else if (body) {
        json_t *patch = json_pack("{s:O}", "replicas", replicas);
        struct serr err = {0};
        json_t *spec = service_spec_patch(sh->store, json_object_get(svc, "spec"), patch, &err);
        json_decref(patch);
        if (spec)
            replace_spec(sh, req, svc, spec);
        else
            http_respond_error(req, &err);
    }
    json_decref(body);
    json_decref(svc);
}

static void delete_service(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *svc = find_service(sh, req, args[0]);
    if (svc == NULL)
        return;
    const char *id = json_string_value(json_object_get(svc, "id"));
    json_t *reply = json_pack("{s:s}", "id", id);
    propose_and_reply(sh, req, json_pack("[o]", op_del("services", id)), 200, reply);
    json_decref(svc);
}

static int cmp_task(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_t *sx = json_object_get(x, "slot"), *sy = json_object_get(y, "slot");
    if (json_is_integer(sx) && json_is_integer(sy) &&
        json_integer_value(sx) != json_integer_value(sy))
        return json_integer_value(sx) < json_integer_value(sy) ? -1 : 1;
    if (json_is_string(sx) && json_is_string(sy)) {
        int c = strcmp(json_string_value(sx), json_string_value(sy));
        if (c)
            return c;
    }
    json_int_t cx = json_integer_value(json_object_get(x, "created_at"));
    json_int_t cy = json_integer_value(json_object_get(y, "created_at"));
    return cx > cy ? -1 : cx < cy ? 1 : 0;
}

/* Tasks by slot, newest first within a slot (docker's `service ps` order). */
static json_t *sorted_tasks(json_t *tasks)
{
    size_t n = json_array_size(tasks);
    json_t **v = xcalloc(n, sizeof(json_t *));
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(tasks, i);
    qsort(v, n, sizeof(json_t *), cmp_task);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    json_decref(tasks);
    return out;
}

static void get_service_tasks(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *svc = find_service(sh, req, args[0]);
    if (svc == NULL)
        return;
    json_t *tasks = store_list_where(sh->store, "tasks", "service_id",
                                     json_string_value(json_object_get(svc, "id")));
    respond_json(req, 200, sorted_tasks(tasks));
    json_decref(svc);
}

static void get_tasks(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    respond_json(req, 200, sorted_tasks(store_list(sh->store, "tasks", NULL)));
}

static void get_service_logs(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *svc = find_service(sh, req, args[0]);
    if (svc == NULL)
        return;
    char v[32];
    long tail = -1;
    if (http_query_get(req, "tail", v, sizeof(v)) && strcmp(v, "all") != 0) {
        char *end;
        tail = strtol(v, &end, 10);
        if (*end != '\0' || tail < 0) {
            respond_err(req, SERR_INVALID, "tail must be a non-negative number or \"all\"");
            json_decref(svc);
            return;
        }
    }
    agent_service_logs(sh->agent, req, svc, tail, query_flag(req, "follow"));
    json_decref(svc);
}

/* ---- containers ---- */

static void post_container_run(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    agent_run(sh->agent, req, body);
    json_decref(body);
}

static void get_containers(struct shoal *sh, struct http_req *req, char **args)
{
    respond_json(req, 200, agent_list_local(sh->agent));
}

static void delete_container(struct shoal *sh, struct http_req *req, char **args)
{
    struct serr err = {0};
    if (agent_remove_local(sh->agent, args[0], query_flag(req, "force"), &err) < 0)
        http_respond_error(req, &err);
    else
        http_respond(req, 200, "application/json", "{}", 2);
}

/* ---- dispatch ---- */

typedef void (*handler_fn)(struct shoal *sh, struct http_req *req, char **args);

static const struct route {
    const char *method;
    const char *pattern; /* '*' matches one path segment */
    handler_fn fn;
} routes[] = {
    {"GET", "/v1/info", get_info},
    {"POST", "/v1/swarm/init", post_swarm_init},
    {"POST", "/v1/swarm/leave", post_swarm_leave},
    {"GET", "/v1/nodes", get_nodes},
    {"GET", "/v1/nodes/*", get_node},
    {"GET", "/v1/images", get_images},
    {"POST", "/v1/images/import", post_image_import},
    {"POST", "/v1/images/load", post_image_load},
    {"DELETE", "/v1/images/*", delete_image},
    {"GET", "/v1/services", get_services},
    {"POST", "/v1/services", post_service},
    {"GET", "/v1/services/*", get_service},
    {"DELETE", "/v1/services/*", delete_service},
    {"POST", "/v1/services/*/update", post_service_update},
    {"POST", "/v1/services/*/scale", post_service_scale},
    {"GET", "/v1/services/*/tasks", get_service_tasks},
    {"GET", "/v1/services/*/logs", get_service_logs},
    {"GET", "/v1/tasks", get_tasks},
    {"POST", "/v1/containers/run", post_container_run},
    {"GET", "/v1/containers", get_containers},
    {"DELETE", "/v1/containers/*", delete_container},
};

/* Matches a path against a pattern; captured segments point into `buf`. */
static bool match(const char *pattern, const char *path, char *buf, size_t buflen, char **args)
{
    snprintf(buf, buflen, "%s", path);
    int nargs = 0;
    char *p = buf;
    const char *q = pattern;
    while (*q) {
        if (*q == '*') {
            char *seg = p;
            while (*p && *p != '/')
                p++;
            if (p == seg || nargs == 4)
                return false;
            char next = *p;
            *p = '\0';
            args[nargs++] = seg;
            if (next == '\0')
                return q[1] == '\0';
            p++;
            q++;
            if (*q != '/')
                return false;
            q++;
            continue;
        }
        if (*p != *q)
            return false;
        p++;
        q++;
    }
    return *p == '\0' || (*p == '/' && p[1] == '\0');
}

void routes_dispatch(struct http_server *srv, struct http_req *req)
{
    struct shoal *sh = http_server_data(srv);
    char buf[HTTP_MAX_URL];
    char *args[4] = {0};
    bool path_known = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!match(routes[i].pattern, req->path, buf, sizeof(buf), args))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, req->method) == 0) {
            routes[i].fn(sh, req, args);
            return;
        }
    }
    if (path_known)
        http_respond(req, 405, "application/json", "{\"message\":\"method not allowed\"}", 32);
    else
        respond_err(req, SERR_NOT_FOUND, "page not found");
}
