/* `shoal node exec` and `shoal node cp`: the manager called resolves the
 * target against the store's nodes and asks each node for the command's
 * result (POST /v1/node/exec over the cluster port with this manager's
 * certificate; its own node directly), all at once; the answer lists every
 * node's result once the last one came. Each call is an audit event
 * ("node-exec" on GET /v1/events, and a line in the daemon's log). */
#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_int.h"
#include "api/events.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/node_exec.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "http/http_aclient.h"
#include "store/store.h"

/* A node's answer may take the command's timeout, plus this for the trip. */
#define EXEC_TRIP_MS 15000

/* ---- the target ---- */

static bool label_matches(json_t *node, const char *want)
{
    const char *eq = strchr(want, '=');
    size_t klen = eq ? (size_t)(eq - want) : strlen(want);
    char key[256];
    snprintf(key, sizeof(key), "%.*s", (int)klen, want);
    json_t *v = json_object_get(json_object_get(node, "labels"), key);
    if (v == NULL)
        return false;
    return eq == NULL || (json_is_string(v) && strcmp(json_string_value(v), eq + 1) == 0);
}

static bool listed(json_t *list, const char *host, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *s = json_string_value(e);
        if (s && (strcmp(s, host) == 0 || strcmp(s, id) == 0))
            return true;
    }
    return false;
}

/* Each entry of -L must name a node: a typo is an error, not a smaller set. */
static int check_list(json_t *nodes, json_t *list, struct serr *err)
{
    size_t i, k;
    json_t *e, *n;
    json_array_foreach(list, i, e)
    {
        const char *s = json_string_value(e);
        if (s == NULL || s[0] == '\0')
            return serr_set(err, SERR_INVALID, "target.list: node names are required");
        bool found = false;
        json_array_foreach(nodes, k, n)
        {
            found = found || strcmp(s, json_string_value(json_object_get(n, "hostname"))) == 0 ||
                    strcmp(s, json_string_value(json_object_get(n, "id"))) == 0;
        }
        if (!found)
            return serr_set(err, SERR_NOT_FOUND, "target: no node is named '%s'", s);
    }
    return 0;
}

static int compile_regex(const char *re, regex_t *rx, struct serr *err)
{
    char *anchored = xasprintf("^(%s)$", re); /* the whole hostname, as fnmatch does */
    int rc = regcomp(rx, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rc != 0) {
        char msg[200];
        regerror(rc, rx, msg, sizeof(msg));
        return serr_set(err, SERR_INVALID, "target: invalid regular expression '%s': %s", re,
                        msg);
    }
    return 0;
}

int exec_target_nodes(json_t *nodes, json_t *target, json_t **out, struct serr *err)
{
    if (target && !json_is_object(target))
        return serr_set(err, SERR_INVALID, "target: an object is required");
    const char *glob = json_string_value(json_object_get(target, "glob"));
    const char *re = json_string_value(json_object_get(target, "regex"));
    const char *label = json_string_value(json_object_get(target, "label"));
    const char *role = json_string_value(json_object_get(target, "role"));
    json_t *list = json_object_get(target, "list");
    if (list && !json_is_array(list))
        return serr_set(err, SERR_INVALID, "target.list: an array of node names is required");
    if (role && strcmp(role, "manager") != 0 && strcmp(role, "worker") != 0)
        return serr_set(err, SERR_INVALID, "target.role: manager or worker");
    if (label && (label[0] == '\0' || label[0] == '='))
        return serr_set(err, SERR_INVALID, "target.label: KEY=VALUE or KEY is required");
    if (list && check_list(nodes, list, err) < 0)
        return -1;
    regex_t rx;
    if (re && compile_regex(re, &rx, err) < 0)
        return -1;
    json_t *matched = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *host = json_string_value(json_object_get(n, "hostname"));
        const char *id = json_string_value(json_object_get(n, "id"));
        const char *r = json_string_value(json_object_get(n, "role"));
        host = host ? host : "";
        id = id ? id : "";
        if ((glob && fnmatch(glob, host, 0) != 0) || (re && regexec(&rx, host, 0, NULL, 0) != 0) ||
            (list && !listed(list, host, id)) || (label && !label_matches(n, label)) ||
            (role && (r == NULL || strcmp(r, role) != 0)))
            continue;
        json_array_append(matched, n);
    }
    if (re)
        regfree(&rx);
    if (json_array_size(matched) == 0) {
        json_decref(matched);
        return serr_set(err, SERR_NOT_FOUND, "no node matches the target");
    }
    *out = matched;
    return 0;
}

/* ---- the fan-out ---- */

struct exec_fanout {
    struct shoal *sh;
    struct http_req *req;
    json_t *results; /* one object per node, in the order of the target's nodes */
    char *body;      /* what each node gets */
    unsigned trip_ms;
    int open; /* nodes whose result did not come yet */
};

struct exec_up {
    struct exec_fanout *fo;
    size_t index;
};

static void fanout_done(struct exec_fanout *fo)
{
    respond_json(fo->req, 200, json_pack("{s:O}", "nodes", fo->results));
    json_decref(fo->results);
    free(fo->body);
    free(fo);
}

/* The result of one node (merged into its entry); frees `up`. */
static void up_result(struct exec_up *up, json_t *result)
{
    struct exec_fanout *fo = up->fo;
    json_object_update(json_array_get(fo->results, up->index), result);
    free(up);
    if (--fo->open == 0)
        fanout_done(fo);
}

static void up_error(struct exec_up *up, const char *msg, bool refused)
{
    json_t *r = json_pack("{s:s}", "error", msg);
    if (refused)
        json_object_set_new(r, "refused", json_true());
    up_result(up, r);
    json_decref(r);
}

static void up_local_done(void *arg, json_t *result)
{
    up_result(arg, result);
}

static void up_answer(void *arg, int status, const char *body, size_t len, const char *errmsg)
{
    struct exec_up *up = arg;
    if (status < 0) {
        up_error(up, errmsg, false);
        return;
    }
    json_t *j = json_loadb(body, len, 0, NULL);
    if (status == 200 && json_is_object(j)) {
        up_result(up, j);
    } else {
        const char *msg = json_string_value(json_object_get(j, "message"));
        char *text = msg ? xstrdup(msg) : xasprintf("the node answered HTTP %d", status);
        up_error(up, text, status == 403);
        free(text);
    }
    json_decref(j);
}

static void up_connected(void *arg, int fd, const char *errmsg)
{
    struct exec_up *up = arg;
    if (fd < 0) {
        up_error(up, errmsg, false);
        return;
    }
    struct http_aopts opts = {.timeout_ms = up->fo->trip_ms};
    http_arequest_opts(up->fo->sh->loop, fd, "POST", "/v1/node/exec", "application/json",
                       up->fo->body, strlen(up->fo->body), -1, &opts, up_answer, up);
}

static void up_start(struct exec_fanout *fo, json_t *node, json_t *request, size_t index)
{
    struct exec_up *up = xcalloc(1, sizeof(*up));
    up->fo = fo;
    up->index = index;
    const char *id = json_string_value(json_object_get(node, "id"));
    const char *addr = json_string_value(json_object_get(node, "addr"));
    const char *status = json_string_value(json_object_get(node, "status"));
    if (id && strcmp(id, fo->sh->node_id) == 0) {
        struct serr err = {0};
        if (node_exec_run(fo->sh, request, up_local_done, up, &err) < 0)
            up_error(up, err.msg, err.kind == SERR_FORBIDDEN);
    } else if (status && strcmp(status, "down") == 0) {
        up_error(up, "the node is down", false);
    } else if (addr == NULL || addr[0] == '\0') {
        up_error(up, "the node has no address", false);
    } else {
        clusternet_connect(fo->sh, addr, up_connected, up);
    }
}

/* ---- audit ---- */

static char *caller_of(struct http_req *req)
{
    if (!req->remote)
        return xstrdup("local");
    if (req->peer_id && req->peer_id[0])
        return xasprintf("%s %s", req->peer_role, req->peer_id);
    return xasprintf("%s (dashboard token)", req->peer_role);
}

static void audit(struct shoal *sh, struct http_req *req, const char *what, json_t *request,
                  json_t *nodes)
{
    char *who = caller_of(req);
    json_t *where = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) json_array_append(where, json_object_get(n, "hostname"));
    json_t *ev = json_pack("{s:s, s:s, s:o, s:I}", "action", what, "who", who, "nodes", where,
                           "time", (json_int_t)now_ms());
    json_t *file = json_object_get(request, "file");
    if (file)
        json_object_set(ev, "path", json_object_get(file, "path"));
    else
        json_object_set(ev, "argv", json_object_get(request, "argv"));
    events_publish(sh->events, "node-exec", ev);
    char *text = json_dumps(ev, JSON_COMPACT);
    log_info("node %s by %s: %s", what, who, text ? text : "?");
    free(text);
    json_decref(ev);
    free(who);
}

/* ---- the routes ---- */

/* The per-node request: the body without its target, the timeout bounded. */
static json_t *node_request(json_t *body, bool file, struct serr *err)
{
    json_t *r = json_deep_copy(body);
    json_object_del(r, "target");
    if (file) {
        if (!json_is_object(json_object_get(r, "file"))) {
            json_decref(r);
            serr_set(err, SERR_INVALID, "file: an object {path, name, mode, data} is required");
            return NULL;
        }
        json_object_del(r, "argv");
        return r;
    }
    json_object_del(r, "file");
    json_t *argv = json_object_get(r, "argv");
    json_t *t = json_object_get(r, "timeout");
    if (!json_is_array(argv) || json_array_size(argv) == 0) {
        json_decref(r);
        serr_set(err, SERR_INVALID, "argv: the command is required (a non-empty array)");
        return NULL;
    }
    if (t && (!json_is_integer(t) || json_integer_value(t) <= 0 ||
              json_integer_value(t) > NODE_EXEC_TIMEOUT_MAX)) {
        json_decref(r);
        serr_set(err, SERR_INVALID, "timeout: seconds from 1 to %d", NODE_EXEC_TIMEOUT_MAX);
        return NULL;
    }
    if (t == NULL)
        json_object_set_new(r, "timeout", json_integer(NODE_EXEC_TIMEOUT_DEFAULT));
    return r;
}

static void nodes_fanout(struct shoal *sh, struct http_req *req, bool file)
{
    if (!require_swarm(sh, req))
        return;
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    struct serr err = {0};
    json_t *all = store_list(sh->store, "nodes", "hostname");
    json_t *nodes = NULL;
    json_t *request = node_request(body, file, &err);
    if (request == NULL ||
        exec_target_nodes(all, json_object_get(body, "target"), &nodes, &err) < 0) {
        http_respond_error(req, &err);
        json_decref(request);
        json_decref(all);
        json_decref(body);
        return;
    }
    audit(sh, req, file ? "cp" : "exec", request, nodes);
    struct exec_fanout *fo = xcalloc(1, sizeof(*fo));
    fo->sh = sh;
    fo->req = req;
    fo->results = json_array();
    fo->body = json_dumps(request, JSON_COMPACT);
    fo->trip_ms = (unsigned)json_integer_value(json_object_get(request, "timeout")) * 1000 +
                  EXEC_TRIP_MS;
    fo->open = (int)json_array_size(nodes);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        json_array_append_new(fo->results,
                              json_pack("{s:O?, s:O?}", "node", json_object_get(n, "hostname"),
                                        "id", json_object_get(n, "id")));
    }
    /* every entry exists before the first result: a local one comes later, a
     * refusal at once (the last one may free fo: index with a copy) */
    size_t count = json_array_size(nodes);
    for (i = 0; i < count; i++)
        up_start(fo, json_array_get(nodes, i), request, i);
    json_decref(request);
    json_decref(nodes);
    json_decref(all);
    json_decref(body);
}

void post_nodes_exec(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    nodes_fanout(sh, req, false);
}

void post_nodes_cp(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    nodes_fanout(sh, req, true);
}

static void node_answer(void *arg, json_t *result)
{
    respond_json(arg, 200, json_incref(result));
}

/* On a node: only a manager (which checked the caller's credential and
 * logged the call) may ask; a worker's certificate may reach a manager's
 * node routes, never this one. */
void post_node_exec(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_manager_caller(req, "ask a node to run a command"))
        return;
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    json_t *file = json_object_get(body, "file");
    const char *dest = json_string_value(json_object_get(file, "path"));
    char *what = file ? xstrdup(dest ? dest : "?")
                      : json_dumps(json_object_get(body, "argv"), JSON_COMPACT);
    log_info("node %s asked by %s: %s", file ? "cp" : "exec",
             req->remote ? req->peer_id : "local", what ? what : "?");
    free(what);
    struct serr err = {0};
    if (node_exec_run(sh, body, node_answer, req, &err) < 0)
        http_respond_error(req, &err);
    json_decref(body);
}
