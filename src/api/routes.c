/* API handlers. Reads answer from the local store; writes are proposed to
 * Raft and answered when committed. */
#include "api/routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "api/agent_reply.h"
#include "api/api_int.h"
#include "api/dashboard.h"
#include "api/exec_hijack.h"
#include "base/json_get.h"
#include "base/log.h"
#include "base/platform.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "http/http.h"
#include "http/http_aclient.h"
#include "manager/ca.h"
#include "manager/dispatcher.h"
#include "manager/job_runs.h"
#include "manager/netmodel.h"
#include "manager/orchestrator.h"
#include "manager/scheduler.h"
#include "manager/service.h"
#include "manager/volume.h"
#include "raft/cluster.h"
#include "store/store.h"

/* ---- helpers shared with routes_images.c ---- */

void respond_json(struct http_req *req, int status, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(obj);
    if (text == NULL) { /* obj NULL: a json_pack() of a string that is not UTF-8 */
        respond_err(req, SERR_INTERNAL, "the answer cannot be encoded as JSON");
        return;
    }
    http_respond(req, status, "application/json", text, strlen(text));
    free(text);
}

void respond_err(struct http_req *req, enum serr_kind kind, const char *msg)
{
    struct serr err;
    serr_set(&err, kind, "%s", msg);
    http_respond_error(req, &err);
}

void respond_not_leader(struct shoal *sh, struct http_req *req)
{
    const char *leader = sh->cluster ? cluster_leader_addr(sh->cluster) : "";
    respond_json(req, 503,
                 json_pack("{s:s, s:s}", "message", "this manager is not the leader", "leader",
                           leader));
}

void swarm_answer(void *data, int status, json_t *result, const struct serr *err)
{
    struct http_req *req = data;
    if (status < 0)
        http_respond_error(req, err);
    else
        respond_json(req, 200, result);
}

/* Writes need this node to be the leader of a swarm. */
bool require_leader(struct shoal *sh, struct http_req *req)
{
    if (!require_swarm(sh, req))
        return false;
    if (!cluster_is_leader(sh->cluster)) {
        respond_err(req, SERR_UNAVAILABLE, "no leader in the swarm: writes are refused until "
                                           "a quorum of managers is back");
        return false;
    }
    return true;
}

bool require_manager_caller(struct http_req *req, const char *what)
{
    if (!req->remote || strcmp(req->peer_role, "manager") == 0)
        return true;
    char msg[160];
    snprintf(msg, sizeof(msg), "permission denied: only managers may %s", what);
    respond_err(req, SERR_FORBIDDEN, msg);
    return false;
}

bool require_swarm(struct shoal *sh, struct http_req *req)
{
    if (sh->cluster)
        return true;
    if (strcmp(sh->role, "worker") == 0)
        respond_err(req, SERR_UNAVAILABLE,
                    "This node is not a swarm manager. Worker nodes can't be used to view or modify "
                    "cluster state. Please run this command on a manager node or promote the "
                    "current node to a manager.");
    else
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

json_t *leader_body(struct shoal *sh, struct http_req *req)
{
    return require_leader(sh, req) ? body_json(req, true) : NULL;
}

bool query_flag(struct http_req *req, const char *key)
{
    char v[16];
    return http_query_get(req, key, v, sizeof(v)) &&
           (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || v[0] == '\0');
}

bool query_ms(struct http_req *req, const char *key, int64_t fallback, int64_t *out)
{
    char v[32], *end;
    *out = fallback;
    if (!http_query_get(req, key, v, sizeof(v)) || v[0] == '\0')
        return true;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*end != '\0' || errno != 0 || n < 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s must be a number of milliseconds", key);
        respond_err(req, SERR_INVALID, msg);
        return false;
    }
    *out = n;
    return true;
}

/* ---- system ---- */

/* Cluster totals for `shoal info`, as `docker -H :4000 info` showed them. */
static json_t *cluster_totals(struct shoal *sh)
{
    json_t *nodes = store_list(sh->store, "nodes", NULL);
    json_int_t ready = 0, managers = 0, cpus = 0, memory = 0;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        ready += jstr_is(n, "status", "ready");
        managers += jstr_is(n, "role", "manager");
        json_t *res = json_object_get(n, "resources");
        cpus += jint(res, "cpus", 0);
        memory += jint(res, "memory", 0);
    }
    json_t *tasks = store_list(sh->store, "tasks", NULL);
    json_int_t running = 0;
    json_t *t;
    json_array_foreach(tasks, i, t) running += jstr_is(t, "state", "running");
    json_t *services = store_list(sh->store, "services", NULL);
    json_t *out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "nodes",
                            (json_int_t)json_array_size(nodes), "nodes_ready", ready,
                            "nodes_down", (json_int_t)json_array_size(nodes) - ready, "managers",
                            managers, "services", (json_int_t)json_array_size(services), "tasks",
                            (json_int_t)json_array_size(tasks), "tasks_running", running, "cpus",
                            cpus, "memory", memory);
    json_decref(services);
    json_decref(tasks);
    json_decref(nodes);
    return out;
}

static void get_info(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *meta = store_get(sh->store, "meta", "cluster");
    json_t *swarm = json_pack("{s:s, s:s?, s:b, s:b, s:s?, s:s, s:s?}", "state",
                              sh->role[0] ? "active" : "inactive", "cluster_id",
                              json_string_value(json_object_get(meta, "cluster_id")), "is_manager",
                              sh->cluster != NULL, "is_leader", cluster_is_leader(sh->cluster),
                              "addr", sh->swarm_addr, "role", sh->role, "overlay",
                              sh->role[0] ? shoal_overlay(sh) : NULL);
    if (sh->cluster && meta) {
        json_object_set_new(swarm, "task_history_limit",
                            json_integer(orchestrator_history_limit(sh->store)));
        json_object_set_new(swarm, "cluster", cluster_totals(sh));
    }
    json_decref(meta);
    respond_json(req, 200,
                 json_pack("{s:s, s:s, s:s, s:o, s:s, s:o}", "node_id", sh->node_id, "hostname",
                           sh->hostname, "version", SHOAL_VERSION, "swarm", swarm, "cgroup_mode",
                           sh->rt.cgroup_mode == CGROUP_V2       ? "v2"
                           : sh->rt.cgroup_mode == CGROUP_HYBRID ? "hybrid"
                                                                 : "v1",
                           "platform", platform_self()));
}

/* GET /v1/swarm: the cluster and its settings (named fields only: the
 * meta objects hold secrets beside them). */
static void get_swarm(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    json_t *meta = store_get(sh->store, "meta", "cluster");
    respond_json(req, 200,
                 json_pack("{s:s?, s:I, s:s?, s:s, s:{s:I}}", "id", jstr(meta, "cluster_id"),
                           "created_at", jint(meta, "created_at", 0), "default_addr_pool",
                           jstr(meta, "default_addr_pool"), "overlay", shoal_overlay(sh), "spec",
                           "task_history_limit", orchestrator_history_limit(sh->store)));
    json_decref(meta);
}

/* POST /v1/swarm/update {"task_history_limit": N}: the cluster's settings. */
static void post_swarm_update(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *body = leader_body(sh, req);
    if (body == NULL)
        return;
    json_t *limit = json_object_get(body, "task_history_limit");
    if (json_object_size(body) != 1 || !json_is_integer(limit) || json_integer_value(limit) < -1) {
        respond_err(req, SERR_INVALID,
                    "swarm update takes {\"task_history_limit\": N} (N >= 0, or -1: keep all)");
    } else {
        json_t *group = json_pack("[o]", op_merge("meta", "cluster", json_deep_copy(body)));
        propose_and_reply(sh, req, group, 200, json_deep_copy(body));
    }
    json_decref(body);
}

static void post_swarm_init(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *body = body_json(req, false);
    if (body == NULL)
        return;
    struct serr err = {0};
    if (swarm_init(sh, body, swarm_answer, req, &err) < 0)
        http_respond_error(req, &err);
    json_decref(body);
}

static void post_swarm_leave(struct shoal *sh, struct http_req *req, char **args)
{
    struct serr err = {0};
    if (swarm_leave(sh, query_flag(req, "force"), swarm_answer, req, &err) < 0)
        http_respond_error(req, &err);
}

/* ---- nodes ---- */

static json_t *node_view(struct shoal *sh, json_t *node)
{
    json_t *n = json_deep_copy(node);
    const char *role = json_string_value(json_object_get(n, "role"));
    const char *ms = "";
    if (role && strcmp(role, "manager") == 0) {
        const char *addr = json_string_value(json_object_get(n, "addr"));
        const char *status = json_string_value(json_object_get(n, "status"));
        const char *rid = json_string_value(json_object_get(n, "raft_id"));
        bool voter = rid && cluster_has_voter(sh->cluster, strtoull(rid, NULL, 16));
        if (addr && strcmp(addr, cluster_leader_addr(sh->cluster)) == 0)
            ms = "leader";
        else /* a manager counts once it votes: before, it cannot help a quorum */
            ms = voter && status && strcmp(status, "ready") == 0 ? "reachable" : "unreachable";
    }
    json_object_set_new(n, "manager_status", json_string(ms));
    return n;
}

/* The record `ref` of `table` (the caller's reference), or NULL once the
 * answer is given: "KIND REF not found", or the store's error. */
static json_t *find_or_answer(struct shoal *sh, struct http_req *req, const char *table,
                              const char *kind, const char *ref)
{
    struct serr err = {0};
    json_t *o = store_find(sh->store, table, ref, &err);
    if (o == NULL) {
        if (err.msg[0] == '\0')
            serr_set(&err, SERR_NOT_FOUND, "%s %s not found", kind, ref);
        http_respond_error(req, &err);
    }
    return o;
}

json_t *find_node(struct shoal *sh, struct http_req *req, const char *ref)
{
    return find_or_answer(sh, req, "nodes", "node", ref);
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
    json_t *n = find_node(sh, req, args[0]);
    if (n == NULL)
        return;
    respond_json(req, 200, node_view(sh, n));
    json_decref(n);
}

static int apply_node_update(json_t *node, json_t *body, struct serr *err)
{
    static const char *const fields[] = {"availability", "role", "labels_add", "labels_rm", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (!str_in_list(key, fields))
            return serr_set(err, SERR_INVALID, "unknown field '%s' in node update", key);
    }
    const char *avail = json_string_value(json_object_get(body, "availability"));
    const char *role = json_string_value(json_object_get(body, "role"));
    if (json_object_get(body, "availability") &&
        (!avail || (strcmp(avail, "active") && strcmp(avail, "pause") && strcmp(avail, "drain"))))
        return serr_set(err, SERR_INVALID, "availability must be active, pause or drain");
    if (json_object_get(body, "role") &&
        (!role || (strcmp(role, "manager") && strcmp(role, "worker"))))
        return serr_set(err, SERR_INVALID, "role must be manager or worker");
    json_t *labels = json_object_get(node, "labels");
    if (!json_is_object(labels)) {
        labels = json_object();
        json_object_set_new(node, "labels", labels);
    }
    json_t *add = json_object_get(body, "labels_add");
    json_t *rm = json_object_get(body, "labels_rm");
    if ((add && !json_is_object(add)) || (rm && !json_is_array(rm)))
        return serr_set(err, SERR_INVALID, "labels_add is an object, labels_rm an array");
    size_t i;
    json_array_foreach(rm, i, v) if (json_is_string(v)) json_object_del(labels, json_string_value(v));
    json_object_foreach(add, key, v)
    {
        if (!json_is_string(v) || *key == '\0')
            return serr_set(err, SERR_INVALID, "labels must be non-empty keys with string values");
        json_object_set(labels, key, v);
    }
    if (avail)
        json_object_set_new(node, "availability", json_string(avail));
    if (role)
        json_object_set_new(node, "role", json_string(role));
    json_object_set_new(node, "updated_at", json_integer(now_ms()));
    return 0;
}

static void post_node_update(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *node = find_node(sh, req, args[0]);
    if (node == NULL)
        return;
    json_t *body = body_json(req, true);
    struct serr err = {0};
    if (body && apply_node_update(node, body, &err) < 0) {
        http_respond_error(req, &err);
    } else if (body) {
        const char *role = json_string_value(json_object_get(node, "role"));
        if (strcmp(role, "worker") == 0 && strcmp(json_string_value(json_object_get(node, "id")),
                                                  sh->node_id) == 0) {
            respond_err(req, SERR_CONFLICT, "the leader cannot demote itself: demote it from "
                                            "another manager after a leadership change");
        } else {
            json_t *view = node_view(sh, node);
            propose_and_reply(sh, req, json_pack("[o]", op_put("nodes", json_incref(node))), 200,
                              view);
        }
    }
    json_decref(body);
    json_decref(node);
}

static void delete_node(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *node = find_node(sh, req, args[0]);
    if (node == NULL)
        return;
    const char *id = json_string_value(json_object_get(node, "id"));
    const char *status = json_string_value(json_object_get(node, "status"));
    const char *role = json_string_value(json_object_get(node, "role"));
    if (strcmp(id, sh->node_id) == 0) {
        respond_err(req, SERR_CONFLICT, "a node cannot remove itself: use \"shoal swarm leave\"");
    } else if (strcmp(role, "manager") == 0) {
        respond_err(req, SERR_CONFLICT, "node is a manager: demote it first (shoal node demote)");
    } else if (strcmp(status, "down") != 0 && !query_flag(req, "force")) {
        char msg[200];
        snprintf(msg, sizeof(msg), "node %s is not down and can't be removed (use --force)",
                 args[0]);
        respond_err(req, SERR_CONFLICT, msg);
    } else {
        propose_and_reply(sh, req, json_pack("[o]", op_del("nodes", id)), 200,
                          json_pack("{s:s}", "id", id));
    }
    json_decref(node);
}

/* ---- services ---- */

/* A replicated job's run wants its replicas; a scheduled one before its first
 * run, none (`service create` need not wait for it). */
static json_int_t desired_replicas(struct shoal *sh, json_t *svc)
{
    json_t *spec = json_object_get(svc, "spec");
    if (job_runs_service(svc) && json_object_get(spec, "schedule") &&
        json_integer_value(json_object_get(svc, "run")) == 0)
        return 0;
    if (!service_mode_global(spec))
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

json_t *service_view(struct shoal *sh, json_t *svc)
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
    struct service_counts counts;
    service_count_tasks(svc, tasks, &counts);
    json_object_set_new(v, "replicas_running", json_integer(counts.running));
    json_object_set_new(v, "replicas_desired",
                        json_integer(desired_replicas(sh, svc)));
    json_object_set_new(v, "replicas_completed", json_integer(counts.completed));
    json_object_set_new(v, "replicas_failed", json_integer(counts.failed));
    if (counts.pending_reason)
        json_object_set_new(v, "pending_reason", json_string(counts.pending_reason));
    if (counts.failed_reason)
        json_object_set_new(v, "failed_reason", json_string(counts.failed_reason));
    json_object_set_new(v, "update_status",
                        json_string(updating ? "updating" : version > 1 ? "completed" : ""));
    json_decref(tasks);
    return v;
}

static json_t *find_service(struct shoal *sh, struct http_req *req, const char *ref)
{
    if (!require_swarm(sh, req))
        return NULL;
    return find_or_answer(sh, req, "services", "service", ref);
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

/* `body` borrowed; its image is in the store (or never will be). */
static void create_service(struct shoal *sh, struct http_req *req, json_t *body, const char *arg)
{
    struct serr err = {0};
    json_object_del(body, "registry_auth"); /* used for the pull; never stored */
    image_pin(sh, body);
    json_t *spec = service_spec_normalize(sh->store, body, &err);
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
    json_t *dup = store_find_name(sh->store, "services", name, NULL);
    if (dup) {
        serr_set(&err, SERR_CONFLICT, "service %s already exists (name conflicts with service "
                 "%s: names are unique regardless of case)", name,
                 json_string_value(json_object_get(dup, "name")));
        json_decref(dup);
        http_respond_error(req, &err);
        json_decref(spec);
        return;
    }
    json_int_t now = (json_int_t)now_ms();
    json_t *svc = json_pack("{s:s, s:s, s:i, s:o, s:I, s:I}", "id", id, "name", name, "version", 1,
                            "spec", spec, "created_at", now, "updated_at", now);
    if (service_endpoint_assign(sh->store, svc, spec, &err) < 0) {
        http_respond_error(req, &err);
        json_decref(svc);
        return;
    }
    json_t *reply = json_pack("{s:s, s:s}", "id", id, "name", name);
    json_t *group = json_array();
    service_port_ops(group, id, NULL, spec);
    volume_missing_ops(sh->store, group, spec);
    json_array_insert_new(group, 0, op_put_unique_name("services", svc));
    propose_and_reply(sh, req, group, 201, reply);
}

static void post_service(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *body = leader_body(sh, req);
    if (body == NULL)
        return;
    if (image_needs_pull(sh, body)) /* a registry's image: pulled and pinned first */
        image_pull_then(sh, req, body, NULL, create_service);
    else
        create_service(sh, req, body, NULL);
    json_decref(body);
}

/* Replaces a service's spec; a changed task template bumps the version and
 * starts a rollout: `rollout_state` "updating", or "rollback_started" for
 * `service rollback` (the orchestrator then follows spec.rollback_config). */
static void replace_spec(struct shoal *sh, struct http_req *req, json_t *svc, json_t *spec,
                         const char *rollout_state)
{
    json_t *old = json_object_get(svc, "spec");
    json_int_t version = json_integer_value(json_object_get(svc, "version"));
    if (service_spec_template_changed(old, spec))
        version++;
    json_object_set_new(spec, "name", json_string(json_string_value(json_object_get(svc, "name"))));
    json_t *next = json_deep_copy(svc);
    json_object_set(next, "previous_spec", old); /* for `service rollback`, as Swarm's */
    if (service_spec_template_changed(old, spec)) /* watched by the orchestrator */
        json_object_set_new(next, "update_state", json_string(rollout_state));
    json_object_set_new(next, "spec", spec);
    json_object_set_new(next, "version", json_integer(version));
    json_object_set_new(next, "updated_at", json_integer(now_ms()));
    struct serr err = {0};
    if (service_endpoint_assign(sh->store, next, spec, &err) < 0) {
        http_respond_error(req, &err);
        json_decref(next);
        return;
    }
    json_t *reply = json_pack("{s:O, s:O, s:I}", "id", json_object_get(svc, "id"), "name",
                              json_object_get(svc, "name"), "version", version);
    json_t *group = json_array();
    service_port_ops(group, json_string_value(json_object_get(svc, "id")), old, spec);
    volume_missing_ops(sh->store, group, spec);
    json_array_insert_new(group, 0, op_put("services", next));
    propose_and_reply(sh, req, group, 200, reply);
}

/* `patch` borrowed; its image (if any) is in the store or never will be. */
static void update_service(struct shoal *sh, struct http_req *req, json_t *patch, const char *name)
{
    json_t *svc = find_service(sh, req, name);
    if (svc == NULL)
        return;
    struct serr err = {0};
    json_object_del(patch, "registry_auth"); /* used for the pull; never stored */
    image_pin(sh, patch);
    json_t *spec = service_spec_patch(sh->store, json_object_get(svc, "spec"), patch, &err);
    if (spec == NULL)
        http_respond_error(req, &err);
    else
        replace_spec(sh, req, svc, spec, "updating");
    json_decref(svc);
}

static void post_service_update(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *svc = find_service(sh, req, args[0]);
    if (svc == NULL)
        return;
    json_decref(svc);
    json_t *patch = body_json(req, true);
    if (patch == NULL)
        return;
    if (image_needs_pull(sh, patch)) /* a registry's image: pulled and pinned first */
        image_pull_then(sh, req, patch, args[0], update_service);
    else
        update_service(sh, req, patch, args[0]);
    json_decref(patch);
}

/* Back to the spec before the last update (which becomes the previous one). */
static void post_service_rollback(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *svc = find_service(sh, req, args[0]);
    if (svc == NULL)
        return;
    json_t *previous = json_object_get(svc, "previous_spec");
    if (!json_is_object(previous)) {
        char *msg = xasprintf("service %s has no previous spec to roll back to", args[0]);
        respond_err(req, SERR_CONFLICT, msg);
        free(msg);
    } else {
        replace_spec(sh, req, svc, json_deep_copy(previous), "rollback_started");
    }
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
            replace_spec(sh, req, svc, spec, "updating");
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
    json_t *group = json_pack("[o]", op_del("services", id));
    service_port_ops(group, id, json_object_get(svc, "spec"), NULL);
    propose_and_reply(sh, req, group, 200, reply);
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
    return jarray_sorted(tasks, cmp_task);
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

static void logs_of(struct shoal *sh, struct http_req *req, json_t *svc, const char *task_id);

static void get_service_logs(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *svc = find_service(sh, req, args[0]);
    if (svc == NULL)
        return;
    logs_of(sh, req, svc, NULL);
    json_decref(svc);
}

static void get_task_logs(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    struct serr err = {0};
    json_t *task = store_find(sh->store, "tasks", args[0], &err);
    const char *sid = json_string_value(json_object_get(task, "service_id"));
    json_t *svc = sid ? store_get(sh->store, "services", sid) : NULL;
    if (svc == NULL) {
        if (err.msg[0] == '\0')
            serr_set(&err, SERR_NOT_FOUND, "service or task %s not found", args[0]);
        http_respond_error(req, &err);
    } else {
        logs_of(sh, req, svc, json_string_value(json_object_get(task, "id")));
    }
    json_decref(svc);
    json_decref(task);
}

/* ?tail=N|all (-1: all) and ?since=T (a log timestamp, "" when not
 * given); false once answered (a bad value). */
static bool logs_window(struct http_req *req, long *tail, char since[32])
{
    char v[32];
    *tail = -1;
    if (http_query_get(req, "tail", v, sizeof(v)) && strcmp(v, "all") != 0) {
        char *end;
        *tail = strtol(v, &end, 10);
        if (*end != '\0' || *tail < 0) {
            respond_err(req, SERR_INVALID, "tail must be a non-negative number or \"all\"");
            return false;
        }
    }
    char since_in[64] = "";
    struct serr err = {0};
    since[0] = '\0';
    if (http_query_get(req, "since", since_in, sizeof(since_in)) && since_in[0] &&
        logs_since_ts(since_in, (long double)now_ms() * 1e6L, since, &err) < 0) {
        http_respond_error(req, &err);
        return false;
    }
    return true;
}

/* The logs of a service's tasks (task_id: only that one). */
static void logs_of(struct shoal *sh, struct http_req *req, json_t *svc, const char *task_id)
{
    long tail;
    char since[32];
    if (logs_window(req, &tail, since))
        service_logs_fanout(sh, req, svc, task_id, tail, since);
}

/* `shoal logs CONTAINER`: one container of this node (docs/api.md). */
static void get_container_logs(struct shoal *sh, struct http_req *req, char **args)
{
    char since[32];
    struct ctr_logs_opts o = {.since = since,
                              .follow = query_flag(req, "follow"),
                              .timestamps = query_flag(req, "timestamps"),
                              .run_only = query_flag(req, "run_only")};
    if (require_agent(sh, req) && logs_window(req, &o.tail, since))
        agent_ctr_logs(sh->agent, args[0], &o, agent_reply_http(req));
}

static void post_node_logs(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    agent_node_logs(sh->agent, agent_reply_http(req), body);
    json_decref(body);
}

/* ---- containers ---- */

/* `run -i`/`-t` attached streams exec's frames: over Docker's upgraded
 * connection when the client asked for it (exec_hijack.c). */
static struct agent_reply *run_reply(struct shoal *sh, struct http_req *req, json_t *body)
{
    bool tty = json_is_true(json_object_get(body, "tty"));
    bool interactive = json_is_true(json_object_get(body, "interactive"));
    if (req->upgrade_tcp && (tty || interactive) && !json_is_true(json_object_get(body, "detach")))
        return exec_hijack_reply(sh, req, tty, interactive);
    return agent_reply_http(req);
}

static void post_container_run(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    agent_run(sh->agent, run_reply(sh, req, body), body);
    json_decref(body);
}

/* `shoal attach`: as Docker's, over an upgraded connection when asked. */
static void post_container_attach(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_agent(sh, req))
        return;
    bool tty = agent_ctr_tty(sh->agent, args[0]);
    agent_attach(sh->agent, args[0],
                 req->upgrade_tcp ? exec_hijack_reply(sh, req, tty, true) : agent_reply_http(req));
}

static void get_containers(struct shoal *sh, struct http_req *req, char **args)
{
    respond_json(req, 200, agent_list_local(sh->agent, query_flag(req, "tasks")));
}

static void delete_container(struct shoal *sh, struct http_req *req, char **args)
{
    agent_remove_local(sh->agent, args[0], query_flag(req, "force"), agent_reply_http(req));
}

/* ---- swarm membership ---- */

static void post_swarm_join(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    struct serr err = {0};
    if (swarm_join(sh, body, swarm_answer, req, &err) < 0)
        http_respond_error(req, &err);
    json_decref(body);
}

static void get_join_token(struct shoal *sh, struct http_req *req, char **args)
{
    char unused[8];
    if (http_query_get(req, "rotate", unused, sizeof(unused))) {
        respond_err(req, SERR_INVALID, "a GET changes nothing: rotate with "
                                       "POST /v1/swarm/join-token/ROLE/rotate");
        return;
    }
    if (!require_leader(sh, req))
        return;
    struct serr err = {0};
    json_t *reply = swarm_join_token(sh, args[0], &err);
    if (reply == NULL)
        http_respond_error(req, &err);
    else
        respond_json(req, 200, reply);
}

static void post_join_token_rotate(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    struct serr err = {0};
    if (swarm_join_token_rotate(sh, args[0], swarm_answer, req, &err) < 0)
        http_respond_error(req, &err);
}

/* A client certificate for remote CLI access (root on a manager only). */
static void get_admin_cert(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    struct serr err = {0};
    char *dir = swarm_ca_dir(sh, &err);
    char *key = NULL, *cert = NULL, *ca = NULL;
    if (dir && ca_issue_admin(dir, &key, &cert, &err) == 0 && ca_cert_pem(dir, &ca, &err) == 0)
        respond_json(req, 200, json_pack("{s:s, s:s, s:s}", "ca", ca, "cert", cert, "key", key));
    else
        http_respond_error(req, &err);
    free(dir);
    free(key);
    free(cert);
    free(ca);
}

struct join_answer {
    struct shoal *sh;
    struct http_req *req;
};

/* The node is in the store: answer it, then pull what it runs that only it
 * lacks (a platform no node had when its services were pinned). */
static void join_answered(void *data, int status, json_t *result, const struct serr *err)
{
    struct join_answer *a = data;
    swarm_answer(a->req, status, result, err);
    if (status == 0)
        image_pull_missing_variants(a->sh);
    free(a);
}

static void post_cluster_join(struct shoal *sh, struct http_req *req, char **args)
{
    if (sh->cluster == NULL || !cluster_is_leader(sh->cluster)) {
        respond_not_leader(sh, req);
        return;
    }
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    struct serr err = {0};
    struct join_answer *a = xcalloc(1, sizeof(*a));
    a->sh = sh;
    a->req = req;
    if (swarm_accept_join(sh, body, join_answered, a, &err) < 0) {
        free(a);
        http_respond_error(req, &err);
    }
    json_decref(body);
}

/* A node's heartbeat: the dispatcher (manager/dispatcher.h) answers it. */
static void post_cluster_session(struct shoal *sh, struct http_req *req, char **args)
{
    if (sh->dispatcher == NULL || !cluster_is_leader(sh->cluster)) {
        respond_not_leader(sh, req);
        return;
    }
    json_t *heartbeat = body_json(req, true);
    if (heartbeat == NULL)
        return;
    struct serr err = {0};
    char *reply = dispatcher_heartbeat_text(sh->dispatcher, req->peer_id, heartbeat, &err);
    json_decref(heartbeat);
    if (clusternet_crowded(sh)) /* the node's session connects again next time */
        http_close_after_response(req);
    if (reply)
        http_respond(req, 200, "application/json", reply, strlen(reply));
    else
        http_respond_error(req, &err);
    free(reply);
}

/* ---- forwarding to the leader ---- */

/* How long a write waits for a leader (an election, a leader that does not
 * answer connections yet), and how long its answer waits for this manager's
 * store to apply it, so that the client reading here next sees it. */
#define FORWARD_LEADER_WAIT_MS 8000
#define FORWARD_RETRY_MS 100
#define FORWARD_APPLY_WAIT_MS 5000
#define FORWARD_APPLY_POLL_MS 10

struct forward {
    struct shoal *sh;
    struct http_req *req;
    char *path;
    const char *answer_type; /* of a successful answer; errors are JSON */
    bool write;              /* else a read only the leader answers */
    int64_t deadline;        /* mono_ms: stop looking for a leader */
    uv_timer_t timer;        /* retries, then the wait for the applied index */
    uint64_t applied;        /* the leader's X-Shoal-Applied */
    int status;              /* the leader's answer, kept while waiting */
    char *body;
    size_t body_len;
    char lasterr[200];
};

static void forward_try(struct forward *f);

static void forward_closed(uv_handle_t *h)
{
    struct forward *f = h->data;
    free(f->path);
    free(f->body);
    free(f);
}

static void forward_end(struct forward *f)
{
    uv_close((uv_handle_t *)&f->timer, forward_closed);
}

static void forward_fail(struct forward *f, const char *msg)
{
    respond_err(f->req, SERR_UNAVAILABLE, msg);
    forward_end(f);
}

static void forward_respond(struct forward *f)
{
    http_respond(f->req, f->status, f->status < 300 ? f->answer_type : "application/json",
                 f->body ? f->body : "", f->body_len);
    forward_end(f);
}

static void forward_retry_cb(uv_timer_t *t)
{
    forward_try(t->data);
}

/* A leader that refused or never got the request: try again (the same or a
 * new leader) until the deadline. */
static void forward_retry(struct forward *f, const char *why)
{
    snprintf(f->lasterr, sizeof(f->lasterr), "%s", why);
    if (f->sh->stopping || mono_ms() >= f->deadline) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", why);
        forward_fail(f, msg);
        return;
    }
    uv_timer_start(&f->timer, forward_retry_cb, FORWARD_RETRY_MS, 0);
}

/* The answer waits until this manager has applied what the leader had: a
 * client that reads here next (the CLI's wait) sees its own write. */
static void forward_wait_applied(uv_timer_t *t)
{
    struct forward *f = t->data;
    struct cluster *c = f->sh->cluster;
    if (c == NULL || f->sh->stopping || cluster_last_applied(c) >= f->applied ||
        mono_ms() >= f->deadline) {
        if (c && cluster_last_applied(c) < f->applied)
            log_warn("answering a forwarded write before this manager applied it (%llu < %llu)",
                     (unsigned long long)cluster_last_applied(c),
                     (unsigned long long)f->applied);
        forward_respond(f);
        return;
    }
    uv_timer_start(&f->timer, forward_wait_applied, FORWARD_APPLY_POLL_MS, 0);
}

/* A 503 the leader gave before doing anything: safe to send again. */
static bool refused_upfront(int status, const char *body)
{
    return status == 503 && body &&
           (strstr(body, "no leader in the swarm") || strstr(body, "not the leader"));
}

static void forward_answer(void *arg, int status, const char *body, size_t len, const char *errmsg)
{
    struct forward *f = arg;
    if (status < 0) {
        /* sent, but no answer: the leader may have applied it, never resent */
        char msg[300];
        snprintf(msg, sizeof(msg), "forwarding to the leader failed: %s (the write may have "
                                   "been applied: check before retrying)", errmsg);
        forward_fail(f, msg);
        return;
    }
    if (refused_upfront(status, body)) {
        forward_retry(f, "no leader in the swarm: writes are refused until a quorum of managers "
                         "is back");
        return;
    }
    f->status = status;
    f->body = xmalloc(len + 1);
    memcpy(f->body, body, len);
    f->body[len] = '\0';
    f->body_len = len;
    f->deadline = mono_ms() + FORWARD_APPLY_WAIT_MS;
    forward_wait_applied(&f->timer);
}

static void forward_connected(void *arg, int fd, const char *errmsg)
{
    struct forward *f = arg;
    if (fd < 0) { /* nothing sent: a dead or former leader; look again */
        char msg[300];
        snprintf(msg, sizeof(msg), "forwarding to the leader failed: %s", errmsg);
        forward_retry(f, msg);
        return;
    }
    const char *body = f->req->body;
    size_t len = f->req->body_len;
    char *upload = NULL;
    struct serr err = {0};
    if (f->req->body_file) { /* an image upload: the leader unpacks and records it */
        if (read_file(f->req->body_file, &upload, &len, &err) < 0) {
            close(fd);
            forward_fail(f, err.msg);
            return;
        }
        body = upload;
    }
    struct http_aopts opts = {.applied = &f->applied};
    http_arequest_opts(f->sh->loop, fd, f->req->method, f->path,
                       f->req->body_file ? "application/x-tar" : "application/json", body, len, -1,
                       &opts, forward_answer, f);
    free(upload);
}

static void forward_try(struct forward *f)
{
    struct shoal *sh = f->sh;
    if (sh->cluster == NULL || sh->stopping) {
        forward_fail(f, "the daemon is stopping");
        return;
    }
    if (cluster_is_leader(sh->cluster) && sh->api) {
        /* elected while the write waited: this manager does it */
        struct http_req *req = f->req;
        forward_end(f);
        routes_dispatch(sh->api, req);
        return;
    }
    const char *leader = cluster_leader_addr(sh->cluster);
    if (*leader == '\0' || strcmp(leader, cluster_addr(sh->cluster)) == 0) {
        forward_retry(f, f->write ? "no leader in the swarm: writes are refused until a "
                                         "quorum of managers is back"
                                       : "no leader in the swarm: only the leader can answer");
        return;
    }
    clusternet_connect(sh, leader, forward_connected, f);
}

static void forward_start(struct shoal *sh, struct http_req *req, const char *answer_type,
                          bool write)
{
    struct forward *f = xcalloc(1, sizeof(*f));
    f->sh = sh;
    f->req = req;
    f->answer_type = answer_type;
    f->write = write;
    f->deadline = mono_ms() + FORWARD_LEADER_WAIT_MS;
    f->path = req->query[0] ? xasprintf("%s?%s", req->path, req->query) : xstrdup(req->path);
    uv_timer_init(sh->loop, &f->timer);
    f->timer.data = f;
    forward_try(f);
}

/* A write reaching a manager that is not the leader goes to the leader,
 * waiting a little for one during an election. */
static bool forward_if_follower(struct shoal *sh, struct http_req *req)
{
    if (sh->cluster == NULL || cluster_is_leader(sh->cluster) || strcmp(req->method, "GET") == 0)
        return false;
    forward_start(sh, req, "application/json", true);
    return true;
}

/* Also for reads only the leader can answer (node stats). */
void forward_to_leader(struct shoal *sh, struct http_req *req, const char *answer_type)
{
    forward_start(sh, req, answer_type, false);
}

/* Every answer of a manager says which raft index it had applied: a manager
 * that forwarded a write waits for it before answering its client. */
const char *routes_headers(void *data)
{
    static char line[48];
    struct shoal *sh = data;
    if (sh->cluster == NULL)
        return NULL;
    snprintf(line, sizeof(line), "X-Shoal-Applied: %llu\r\n",
             (unsigned long long)cluster_last_applied(sh->cluster));
    return line;
}

/* ---- dispatch ---- */

typedef void (*handler_fn)(struct shoal *sh, struct http_req *req, char **args);

/* Who may call a route. The local Unix socket (root) may call all of them;
 * over the network the credential decides (docs/design.md, "Security
 * model"):
 *   LOCAL   this machine's root only (the Unix socket)
 *   READ    cluster state without secrets: managers, admin certificates,
 *           both dashboard tokens
 *   SECRET  reads that answer a secret (join tokens): managers, admin
 *           certificates, the admin dashboard token
 *   WRITE   changes: managers, admin certificates, the admin dashboard token
 *   NODE    a node's own business (session, layers): node certificates
 *   PUBLIC  anyone who reaches the port (joining: the token in the body is
 *           the credential)
 * No GET changes state. */
enum access { LOCAL, READ, SECRET, WRITE, NODE, PUBLIC };

static const struct route {
    const char *method;
    const char *pattern; /* '*' matches one path segment, a final '**' the rest */
    handler_fn fn;
    enum access access;
    bool forward; /* a write the leader must do */
} routes[] = {
    {"GET", "/v1/info", get_info, READ, false},
    {"POST", "/v1/swarm/init", post_swarm_init, LOCAL, false},
    {"POST", "/v1/swarm/join", post_swarm_join, LOCAL, false},
    {"POST", "/v1/swarm/leave", post_swarm_leave, LOCAL, false},
    {"POST", "/v1/swarm/unlock", post_swarm_unlock, LOCAL, false},
    {"GET", "/v1/swarm/unlock-key", get_swarm_unlock_key, SECRET, false},
    {"POST", "/v1/swarm/unlock-key/rotate", post_swarm_unlock_key_rotate, WRITE, true},
    {"GET", "/v1/swarm", get_swarm, READ, false},
    {"POST", "/v1/swarm/update", post_swarm_update, WRITE, true},
    {"GET", "/v1/swarm/join-token/*", get_join_token, SECRET, false},
    {"POST", "/v1/swarm/join-token/*/rotate", post_join_token_rotate, WRITE, true},
    {"GET", "/v1/swarm/admin-cert", get_admin_cert, LOCAL, false},
    {"POST", "/v1/cluster/join", post_cluster_join, PUBLIC, false},
    {"POST", "/v1/cluster/session", post_cluster_session, NODE, false},
    {"GET", "/v1/layers/*", get_layer, NODE, false},
    {"GET", "/v1/nodes", get_nodes, READ, false},
    {"GET", "/v1/nodes/stats", get_node_stats, READ, false}, /* before nodes/{id} */
    {"GET", "/metrics", get_prometheus, READ, false},
    /* runs commands as root on node hosts: changes, as any write; each call is
     * an audit event (routes_exec.c) */
    {"POST", "/v1/nodes/exec", post_nodes_exec, WRITE, false},
    {"POST", "/v1/nodes/cp", post_nodes_cp, WRITE, false},
    {"POST", "/v1/node/exec", post_node_exec, NODE, false}, /* managers only (routes_exec.c) */
    {"GET", "/v1/nodes/*", get_node, READ, false},
    {"GET", "/v1/nodes/*/metrics", get_node_metrics, READ, false},
    {"POST", "/v1/nodes/*/update", post_node_update, WRITE, true},
    {"DELETE", "/v1/nodes/*", delete_node, WRITE, true},
    {"GET", "/v1/images", get_images, READ, false},
    {"POST", "/v1/images/import", post_image_import, WRITE, true},
    {"POST", "/v1/images/load", post_image_load, WRITE, true},
    {"POST", "/v1/images/pull", post_image_pull, WRITE, true},
    {"POST", "/v1/images/build", post_image_build, WRITE, true},
    {"POST", "/v1/node/build", post_node_build, NODE, false}, /* managers only */
    {"POST", "/v1/registry/login", post_registry_login, WRITE, false},
    {"POST", "/v1/images/prune", post_images_prune, WRITE, true}, /* before images/{name}/.. */
    {"POST", "/v1/images/**/tag", post_image_tag, WRITE, true},
    {"POST", "/v1/images/**/push", post_image_push, WRITE, true},
    {"GET", "/v1/images/**/history", get_image_history, READ, false},
    {"DELETE", "/v1/images/**", delete_image, WRITE, true},
    {"GET", "/v1/images/**", get_image, READ, false},
    {"GET", "/v1/services", get_services, READ, false},
    {"POST", "/v1/services", post_service, WRITE, true},
    {"GET", "/v1/services/*", get_service, READ, false},
    {"DELETE", "/v1/services/*", delete_service, WRITE, true},
    {"POST", "/v1/services/*/update", post_service_update, WRITE, true},
    {"POST", "/v1/services/*/scale", post_service_scale, WRITE, true},
    {"POST", "/v1/services/*/rollback", post_service_rollback, WRITE, true},
    {"GET", "/v1/services/*/tasks", get_service_tasks, READ, false},
    {"GET", "/v1/services/*/logs", get_service_logs, SECRET, false},
    {"POST", "/v1/node/logs", post_node_logs, NODE, false},
    {"GET", "/v1/tasks", get_tasks, READ, false},
    {"GET", "/v1/tasks/*/logs", get_task_logs, SECRET, false},
    {"GET", "/v1/networks", get_networks, READ, false},
    {"POST", "/v1/networks", post_network, WRITE, true},
    {"GET", "/v1/networks/*", get_network, READ, false},
    {"DELETE", "/v1/networks/*", delete_network, WRITE, true},
    /* names and ids are readable as Docker shows them; a secret's data is
     * never served by these routes (secret_view) */
    {"GET", "/v1/secrets", get_secrets, READ, false},
    {"POST", "/v1/secrets", post_secret, WRITE, true},
    {"GET", "/v1/secrets/*", get_secret, READ, false},
    {"DELETE", "/v1/secrets/*", delete_secret, WRITE, true},
    {"GET", "/v1/volumes", get_volumes, READ, false},
    {"POST", "/v1/volumes", post_volume, WRITE, true},
    {"POST", "/v1/volumes/prune", post_volumes_prune, WRITE, true}, /* before volumes/NAME */
    {"GET", "/v1/volumes/*", get_volume, READ, false},
    {"POST", "/v1/volumes/*/backup", post_volume_backup, WRITE, true},
    {"POST", "/v1/volumes/*/restore", post_volume_restore, WRITE, true},
    {"GET", "/v1/volumes/*/backups", get_volume_backups, READ, false},
    {"POST", "/v1/node/volume", post_node_volume, NODE, false}, /* managers only */
    {"DELETE", "/v1/volumes/*", delete_volume, WRITE, true},
    {"GET", "/v1/configs", get_secrets, READ, false},
    {"POST", "/v1/configs", post_secret, WRITE, true},
    {"GET", "/v1/configs/*", get_secret, SECRET, false}, /* shows the data */
    {"DELETE", "/v1/configs/*", delete_secret, WRITE, true},
    /* the read-only token sees webhook URLs cut after the host (routes_alerts.c) */
    {"GET", "/v1/alerts", get_alert_rules, READ, false},
    {"POST", "/v1/alerts", post_alert_rule, WRITE, true},
    {"GET", "/v1/alerts/history", get_alert_history, READ, false},
    {"DELETE", "/v1/alerts/*", delete_alert_rule, WRITE, true},
    {"GET", "/v1/jobs", get_jobs, READ, false},
    {"GET", "/v1/jobs/gantt", get_jobs_gantt, READ, false}, /* before jobs/{id} */
    {"GET", "/v1/resources", get_resources, READ, false},
    {"POST", "/v1/jobs", post_job, WRITE, true},
    {"GET", "/v1/jobs/*", get_job, READ, false},
    {"DELETE", "/v1/jobs/*", delete_job, WRITE, true},
    {"POST", "/v1/jobs/*/hold", post_job_hold, WRITE, true},
    {"POST", "/v1/jobs/*/resume", post_job_resume, WRITE, true},
    {"GET", "/v1/jobs/*/logs", get_job_logs, SECRET, false},
    {"GET", "/oarapi/jobs.json", get_oar_jobs, READ, false},
    {"POST", "/oarapi/jobs.json", post_oar_job, WRITE, true},
    {"GET", "/oarapi/jobs/*", get_oar_job, READ, false},
    {"GET", "/oarapi/resources.json", get_oar_resources, READ, false},
    {"GET", "/oarapi/resources", get_oar_resources, READ, false}, /* JSON, as OAR's default */
    {"DELETE", "/oarapi/jobs/*", delete_oar_job, WRITE, true},
    {"GET", "/v1/events", dashboard_get_events, READ, false},
    {"GET", "/v1/dashboard/url", dashboard_get_url, LOCAL, false},
    {"POST", "/v1/containers/run", post_container_run, LOCAL, false},
    {"GET", "/v1/containers", get_containers, LOCAL, false},
    {"DELETE", "/v1/containers/*", delete_container, LOCAL, false},
    {"POST", "/v1/containers/*/stop", post_container_stop, LOCAL, false}, /* routes_containers.c */
    {"POST", "/v1/containers/*/restart", post_container_restart, LOCAL, false},
    {"POST", "/v1/containers/*/start", post_container_start, LOCAL, false},
    {"POST", "/v1/containers/*/kill", post_container_kill, LOCAL, false},
    {"GET", "/v1/containers/*/json", get_container_json, LOCAL, false},
    {"GET", "/v1/containers/*/logs", get_container_logs, LOCAL, false},
    {"POST", "/v1/containers/*/attach", post_container_attach, LOCAL, false},
    {"GET", "/v1/containers/stats", get_containers_stats, LOCAL, false},
    {"GET", "/v1/containers/*/stats", get_container_stats, LOCAL, false},
    {"POST", "/v1/containers/*/exec", post_container_exec, WRITE, false}, /* routes_cexec.c */
    {"POST", "/v1/node/containers/*/exec", post_node_container_exec, NODE, false},
    {"POST", "/v1/exec/*/input", post_exec_input, WRITE, false},
    {"POST", "/v1/exec/*/resize", post_exec_resize, WRITE, false},
    {"GET", "/v1/exec/*/json", get_exec_json, WRITE, false},
    {"POST", "/v1/node/exec/*/input", post_node_exec_input, NODE, false},
    {"POST", "/v1/node/exec/*/resize", post_node_exec_resize, NODE, false},
    {"GET", "/v1/node/exec/*/json", get_node_exec_json, NODE, false},
    {"POST", "/v1/containers/prune", post_containers_prune, LOCAL, false},
    {"GET", "/v1/system/df", get_system_df, READ, false},
};

/* A pattern's '**' followed by a literal suffix ("/push"): `rest` ends
 * with it after at least one byte, and it is cut off. Docker reads its
 * /images/{name}/push this way: "a/push" is the push of image "a". */
static bool cut_suffix(char *rest, const char *suffix)
{
    size_t n = strlen(rest), k = strlen(suffix);
    if (n <= k || strcmp(rest + n - k, suffix) != 0)
        return false;
    rest[n - k] = '\0';
    return true;
}

/* Matches a path against a pattern; captured segments point into `buf`. */
static bool match(const char *pattern, const char *path, char *buf, size_t buflen, char **args)
{
    snprintf(buf, buflen, "%s", path);
    int nargs = 0;
    char *p = buf;
    const char *q = pattern;
    while (*q) {
        if (q[0] == '*' && q[1] == '*') { /* the rest of the path, '/' included (image names) */
            if (*p == '\0' || nargs == 4)
                return false;
            args[nargs++] = p;
            return q[2] == '\0' || cut_suffix(p, q + 2);
        }
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

static bool remote_allowed(const struct route *r, struct http_req *req)
{
    const char *role = req->peer_role;
    bool full = strcmp(role, "manager") == 0 || strcmp(role, "admin") == 0;
    switch (r->access) {
    case PUBLIC:
        return true;
    case NODE:
        return role[0] != '\0' && strcmp(role, "admin") != 0 &&
               strcmp(role, HTTP_ROLE_READ_ONLY) != 0;
    case READ:
        return full || strcmp(role, HTTP_ROLE_READ_ONLY) == 0;
    case SECRET:
    case WRITE:
        return full;
    case LOCAL:
    default:
        return false;
    }
}

/* A worker's cluster port serves managers the node's own business (the
 * logs of its tasks), nothing else: its store is not the cluster's. */
static bool worker_serves(struct shoal *sh, const struct route *r, struct http_req *req)
{
    if (strcmp(sh->role, "worker") != 0)
        return true;
    return r->access == NODE && strcmp(req->peer_role, "manager") == 0;
}

/* 403 with the reason; a peer without a certificate (only joining is open
 * to it) is disconnected after the answer. */
static void deny(struct http_req *req)
{
    const char *role = req->peer_role;
    if (role[0] == '\0')
        http_close_after_response(req);
    respond_err(req, SERR_FORBIDDEN,
                strcmp(role, HTTP_ROLE_READ_ONLY) == 0
                    ? "permission denied: the read-only dashboard token may not read secrets "
                      "or make changes"
                : role[0] == '\0' ? "permission denied: this API needs a client certificate"
                                   : "permission denied: this certificate may not call this API");
}

/* OAR's authenticated API, /oarapi-priv/..., is /oarapi/... with the same
 * access rules: the credential (a certificate, the local socket, or on the
 * dashboard basic auth with a token) decides what it may do. */
static void route_oar_priv(struct http_req *req)
{
    const char *priv = "/oarapi-priv/";
    size_t n = strlen(priv);
    if (strncmp(req->path, priv, n) == 0)
        memmove(req->path + strlen("/oarapi"), req->path + n - 1, strlen(req->path + n - 1) + 1);
}

void routes_dispatch(struct http_server *srv, struct http_req *req)
{
    struct shoal *sh = http_server_data(srv);
    char buf[HTTP_MAX_URL];
    char *args[4] = {0};
    bool path_known = false;
    route_oar_priv(req);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!match(routes[i].pattern, req->path, buf, sizeof(buf), args))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, req->method) != 0)
            continue;
        if (req->remote && !remote_allowed(&routes[i], req)) {
            deny(req);
            return;
        }
        if (req->remote && !worker_serves(sh, &routes[i], req)) {
            http_close_after_response(req);
            respond_err(req, SERR_UNAVAILABLE, "this node is a worker: its cluster port serves "
                                               "managers only (join or call a manager)");
            return;
        }
        if (routes[i].forward && forward_if_follower(sh, req))
            return;
        routes[i].fn(sh, req, args);
        return;
    }
    if (path_known)
        http_respond(req, 405, "application/json", "{\"message\":\"method not allowed\"}", 32);
    else
        respond_err(req, SERR_NOT_FOUND, "page not found");
}
