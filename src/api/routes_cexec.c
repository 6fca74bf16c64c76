/* `shoal exec` from any manager: a container of this node runs the command
 * here (agent_exec); a task of another node is asked of that node over the
 * cluster port with this manager's certificate (POST
 * /v1/node/containers/{task}/exec), whose answer, frames as the agent
 * writes them, is relayed as it comes. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/reply.h"
#include "api/agent_reply.h"
#include "api/api_int.h"
#include "api/exec_hijack.h"
#include "base/json_get.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "http/http_aclient.h"
#include "store/store.h"

struct exec_relay {
    struct shoal *sh;
    struct agent_reply *out; /* NULL once the client left */
    struct areq *areq;       /* while the node answers */
    char *path;
    char *body;
    bool started;
};

static void relay_free(struct exec_relay *x)
{
    free(x->path);
    free(x->body);
    free(x);
}

/* The client's answer ends: the relay no longer points at it. */
static struct agent_reply *relay_detach(struct exec_relay *x)
{
    struct agent_reply *out = x->out;
    out->gone = NULL;
    out->agent_data = NULL;
    x->out = NULL;
    return out;
}

static void relay_chunk(void *arg, const char *data, size_t len)
{
    struct exec_relay *x = arg;
    if (!x->started) {
        x->out->stream_start(x->out, AGENT_FRAMES_TYPE);
        x->started = true;
    }
    x->out->stream_write(x->out, data, len);
}

static void relay_done(void *arg, int status, const char *body, size_t len, const char *errmsg)
{
    struct exec_relay *x = arg;
    x->areq = NULL;
    struct agent_reply *out = relay_detach(x);
    if (x->started || (status >= 200 && status < 300)) {
        if (!x->started)
            out->stream_start(out, AGENT_FRAMES_TYPE);
        out->stream_end(out); /* without an exit frame when the node went away */
    } else if (status > 0) {
        char *json = xmalloc(len + 1); /* the node's error, as it sent it */
        if (len)
            memcpy(json, body, len);
        json[len] = '\0';
        out->respond(out, status, json);
        free(json);
    } else {
        struct serr err;
        serr_set(&err, SERR_UNAVAILABLE, "cannot reach the task's node: %s", errmsg);
        out->fail(out, &err);
    }
    relay_free(x);
}

static void relay_connected(void *arg, int fd, const char *errmsg)
{
    struct exec_relay *x = arg;
    if (x->out == NULL) { /* the client went away meanwhile */
        if (fd >= 0)
            close(fd);
        relay_free(x);
        return;
    }
    if (fd < 0) {
        relay_done(x, -1, NULL, 0, errmsg);
        return;
    }
    x->areq = http_arequest_stream(x->sh->loop, fd, "POST", x->path, x->body, strlen(x->body),
                                   relay_chunk, relay_done, x);
}

/* The client left: the node's answer is cut, which ends the command there. */
static void relay_gone(struct agent_reply *out)
{
    struct exec_relay *x = out->agent_data;
    x->out = NULL;
    if (x->areq) {
        http_arequest_cancel(x->areq);
        relay_free(x);
    } /* else the connection is being made: relay_connected frees */
}

static void relay_to_node(struct shoal *sh, struct agent_reply *out, json_t *body,
                          const char *addr, const char *task_id)
{
    struct exec_relay *x = xcalloc(1, sizeof(*x));
    x->sh = sh;
    x->out = out;
    x->path = xasprintf("/v1/node/containers/%s/exec", task_id);
    x->body = json_dumps(body, JSON_COMPACT);
    out->agent_data = x;
    out->gone = relay_gone;
    clusternet_connect(sh, addr, relay_connected, x);
}

/* Where the exec's frames go: the HTTP answer, or Docker's upgraded
 * connection when the client asked for it (exec_hijack.c). */
static struct agent_reply *exec_reply(struct shoal *sh, struct http_req *req, json_t *body)
{
    if (req->upgrade_tcp)
        return exec_hijack_reply(sh, req, json_is_true(json_object_get(body, "tty")),
                                 json_is_true(json_object_get(body, "interactive")));
    return agent_reply_http(req);
}

static void exec_here(struct shoal *sh, struct http_req *req, json_t *body, const char *ref)
{
    agent_exec(sh->agent, ref, body, exec_reply(sh, req, body));
}

/* A manager finds a task in the store; it runs here or on its node. */
static void exec_task(struct shoal *sh, struct http_req *req, json_t *body, json_t *task)
{
    const char *task_id = json_string_value(json_object_get(task, "id"));
    const char *node_id = json_string_value(json_object_get(task, "node_id"));
    if (node_id == NULL || strcmp(node_id, sh->node_id) == 0) {
        exec_here(sh, req, body, task_id);
        return;
    }
    json_t *node = store_get(sh->store, "nodes", node_id);
    const char *addr = json_string_value(json_object_get(node, "addr"));
    if (addr == NULL || addr[0] == '\0')
        respond_err(req, SERR_UNAVAILABLE, "the task's node has no address");
    else
        relay_to_node(sh, exec_reply(sh, req, body), body, addr, task_id);
    json_decref(node);
}

/* "SERVICE.SLOT" (as `service ps` names tasks): its running task. */
static json_t *running_task_named(struct shoal *sh, const char *name)
{
    json_t *tasks = store_list(sh->store, "tasks", NULL);
    json_t *found = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (jstr_is(t, "name", name) && jstr_is(t, "state", "running")) {
            found = json_incref(t);
            break;
        }
    }
    json_decref(tasks);
    return found;
}

void post_container_exec(struct shoal *sh, struct http_req *req, char **args)
{
    const char *ref = args[0];
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    if (agent_has_container(sh->agent, ref) || strcmp(sh->role, "manager") != 0) {
        exec_here(sh, req, body, ref);
        json_decref(body);
        return;
    }
    struct serr err = {0};
    json_t *task = store_find(sh->store, "tasks", ref, &err);
    if (task == NULL && err.msg[0] == '\0')
        task = running_task_named(sh, ref);
    if (task != NULL)
        exec_task(sh, req, body, task);
    else if (err.msg[0])
        http_respond_error(req, &err);
    else
        exec_here(sh, req, body, ref); /* "No such container" */
    json_decref(task);
    json_decref(body);
}

/* Only managers ask (a worker's certificate may not run commands in
 * another node's containers). */
static bool manager_asks(struct http_req *req)
{
    return require_manager_caller(req, "exec in a node's containers");
}

void post_node_container_exec(struct shoal *sh, struct http_req *req, char **args)
{
    if (!manager_asks(req))
        return;
    log_info("exec in %s asked by %s", args[0], req->remote ? req->peer_id : "local");
    json_t *body = body_json(req, true);
    if (body != NULL)
        agent_exec(sh->agent, args[0], body, agent_reply_http(req));
    json_decref(body);
}

/* ---- input, resize and inspect of an interactive session ---- */

/* What a session request asks, and its path's last part. */
enum session_op { SESSION_INPUT, SESSION_RESIZE, SESSION_INSPECT };
static const char *const session_op_names[] = {"input", "resize", "json"};

static void answer_local(struct http_req *req, int rc, const struct serr *err)
{
    if (rc < 0)
        http_respond_error(req, err);
    else
        http_respond(req, 200, "application/json", "{}", 2);
}

static void session_here(struct shoal *sh, struct http_req *req, const char *id,
                         enum session_op op)
{
    struct serr err = {0};
    char v[16];
    if (op == SESSION_INSPECT) {
        respond_result(req, agent_exec_inspect(sh->agent, id, &err), &err);
        return;
    }
    if (op == SESSION_RESIZE) {
        int rows = http_query_get(req, "h", v, sizeof(v)) ? atoi(v) : 0;
        int cols = http_query_get(req, "w", v, sizeof(v)) ? atoi(v) : 0;
        answer_local(req, agent_exec_resize(sh->agent, id, rows, cols, &err), &err);
        return;
    }
    bool close = query_flag(req, "close");
    answer_local(req, agent_exec_input(sh->agent, id, req->body, req->body_len, close, &err),
                 &err);
}

/* One request of a session (input, resize, inspect) sent to its node:
 * `done` gets the node's answer, or status -1 and why not (its arg NULL
 * once the caller left: node_call_abandon). */
struct node_call {
    struct shoal *sh;
    const char *method;
    char *path;
    char *body;
    size_t len;
    http_acb done;
    void *arg; /* NULL: the caller no longer waits, not sent when not yet */
};

static void node_call_done(void *arg, int status, const char *body, size_t len,
                           const char *errmsg)
{
    struct node_call *x = arg;
    x->done(x->arg, status, body, len, errmsg);
    free(x->path);
    free(x->body);
    free(x);
}

static void node_call_connected(void *arg, int fd, const char *errmsg)
{
    struct node_call *x = arg;
    if (fd < 0 || x->arg == NULL) {
        if (fd >= 0)
            close(fd);
        node_call_done(x, -1, NULL, 0, errmsg ? errmsg : "gone");
        return;
    }
    http_arequest(x->sh->loop, fd, x->method, x->path, "application/octet-stream", x->body, x->len,
                  -1, node_call_done, x);
}

/* A call of `method path` with a copy of data[len]; `path` passes to the
 * call; `arg` is not NULL. node_call_send sends it; it is freed after `done`
 * ran. */
static struct node_call *node_call_new(struct shoal *sh, const char *method, char *path,
                                       const char *data, size_t len, http_acb done, void *arg)
{
    struct node_call *x = xcalloc(1, sizeof(*x));
    x->sh = sh;
    x->method = method;
    x->path = path;
    x->len = len;
    x->body = xmalloc(len + 1);
    if (len)
        memcpy(x->body, data, len);
    x->done = done;
    x->arg = arg;
    return x;
}

static void node_call_send(struct node_call *x, const char *addr)
{
    clusternet_connect(x->sh, addr, node_call_connected, x);
}

/* The caller no longer waits: `done` gets a NULL arg. */
static void node_call_abandon(struct node_call *x)
{
    x->arg = NULL;
}

/* The node's answer to the client's request (arg), unless it left. */
static void session_relay_done(void *arg, int status, const char *body, size_t len,
                               const char *errmsg)
{
    struct http_req *req = arg;
    if (req == NULL)
        return;
    req->data = NULL;
    req->on_abort = NULL;
    if (status > 0) {
        http_respond(req, status, "application/json", body, len);
    } else {
        struct serr err;
        serr_set(&err, SERR_UNAVAILABLE, "cannot reach the session's node: %s", errmsg);
        http_respond_error(req, &err);
    }
}

/* The client left: the node's answer is dropped when it comes. */
static void session_relay_aborted(struct http_req *req)
{
    node_call_abandon(req->data);
}

static void session_on_node(struct shoal *sh, struct http_req *req, const char *addr,
                            const char *id, enum session_op op)
{
    char *path = xasprintf("/v1/node/exec/%s/%s?%s", id, session_op_names[op], req->query);
    struct node_call *x = node_call_new(sh, op == SESSION_INSPECT ? "GET" : "POST", path,
                                        req->body, req->body_len, session_relay_done, req);
    req->data = x;
    req->on_abort = session_relay_aborted;
    node_call_send(x, addr);
}

/* A session's id starts with its node's id: true when it runs here, else
 * its node's address in *addr (NULL: unknown node; free it). */
static bool session_is_here(struct shoal *sh, const char *id, char **addr)
{
    const char *dash = strrchr(id, '-');
    size_t node_len = dash ? (size_t)(dash - id) : 0;
    *addr = NULL;
    if (node_len == 0 || strcmp(sh->role, "manager") != 0 ||
        (strlen(sh->node_id) == node_len && strncmp(sh->node_id, id, node_len) == 0))
        return true;
    char node_id[80];
    snprintf(node_id, sizeof(node_id), "%.*s", (int)node_len, id);
    json_t *node = store_get(sh->store, "nodes", node_id);
    const char *a = json_string_value(json_object_get(node, "addr"));
    if (a && a[0])
        *addr = xstrdup(a);
    json_decref(node);
    return false;
}

/* A manager sends a session's input and size to its node. */
static void session_call(struct shoal *sh, struct http_req *req, const char *id,
                         enum session_op op)
{
    char *addr;
    if (session_is_here(sh, id, &addr))
        session_here(sh, req, id, op);
    else if (addr == NULL)
        respond_err(req, SERR_NOT_FOUND, "No such exec session");
    else
        session_on_node(sh, req, addr, id, op);
    free(addr);
}

/* ---- input of an upgraded exec connection (exec_hijack.c) ---- */

struct input_sent {
    void (*done)(void *arg, int status);
    void *arg;
};

static void input_sent(void *arg, int status, const char *body, size_t len, const char *errmsg)
{
    struct input_sent *x = arg;
    (void)body;
    (void)len;
    (void)errmsg;
    x->done(x->arg, status >= 200 && status < 300 ? 0 : -1);
    free(x);
}

void exec_session_send(struct shoal *sh, const char *id, const char *data, size_t len, bool close,
                       void (*done)(void *arg, int status), void *arg)
{
    char *addr;
    struct serr err = {0};
    if (session_is_here(sh, id, &addr)) {
        done(arg, agent_exec_input(sh->agent, id, data, len, close, &err));
        return;
    }
    if (addr == NULL) {
        done(arg, -1);
        return;
    }
    struct input_sent *x = xcalloc(1, sizeof(*x));
    x->done = done;
    x->arg = arg;
    char *path = xasprintf("/v1/node/exec/%s/input%s", id, close ? "?close=1" : "");
    node_call_send(node_call_new(sh, "POST", path, data, len, input_sent, x), addr);
    free(addr);
}

void post_exec_input(struct shoal *sh, struct http_req *req, char **args)
{
    session_call(sh, req, args[0], SESSION_INPUT);
}

void post_exec_resize(struct shoal *sh, struct http_req *req, char **args)
{
    session_call(sh, req, args[0], SESSION_RESIZE);
}

void get_exec_json(struct shoal *sh, struct http_req *req, char **args)
{
    session_call(sh, req, args[0], SESSION_INSPECT);
}

void post_node_exec_input(struct shoal *sh, struct http_req *req, char **args)
{
    if (manager_asks(req))
        session_here(sh, req, args[0], SESSION_INPUT);
}

void post_node_exec_resize(struct shoal *sh, struct http_req *req, char **args)
{
    if (manager_asks(req))
        session_here(sh, req, args[0], SESSION_RESIZE);
}

void get_node_exec_json(struct shoal *sh, struct http_req *req, char **args)
{
    if (manager_asks(req))
        session_here(sh, req, args[0], SESSION_INSPECT);
}
