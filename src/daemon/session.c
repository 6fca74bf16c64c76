#include "daemon/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/node_metrics.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "http/http_aclient.h"
#include "manager/dispatcher.h"
#include "model/task.h"
#include "raft/cluster.h"

struct session {
    struct shoal *sh;
    uv_timer_t timer;
    json_t *pending;  /* reports not sent yet */
    json_t *inflight; /* reports of the heartbeat in flight */
    json_t *tasks;    /* NULL until the first answer */
    char tasks_tag[48]; /* the leader's name for `tasks`: sent back, only changes come */
    json_t *images;
    json_t *managers;
    json_t *remembered; /* the managers' list swarm.json holds, NULL until first written */
    json_t *nodes;    /* [{"id","addr","subnet"}]: task networking */
    char overlay[16]; /* the cluster's overlay mode, "" until an answer has one */
    json_t *mesh;     /* networks and services' endpoints (manager/netmodel.h) */
    json_t *secret_data; /* {id: base64} of our tasks' secrets and configs: memory only */
    char mesh_tag[40]; /* the leader's name for that mesh: sent back, it is not sent again */
    size_t target;    /* index in managers */
    /* The connection of the last heartbeat, kept for the next one (no TLS
     * handshake a heartbeat), -1 when none; conn_to: its manager (owned,
     * NULL before the first connection). */
    int conn;
    char *conn_to;
    bool reused;      /* the heartbeat in flight went on the kept connection */
    char *renew_key; /* key of a certificate being renewed for a new role */
    char *renew_csr;
    bool busy;
    bool stopping;
    bool timer_closed;
    int failures;
};

static void requeue_inflight(struct session *s)
{
    json_array_extend(s->inflight, s->pending);
    json_decref(s->pending);
    s->pending = s->inflight;
    s->inflight = json_array();
}

static void next_manager(struct session *s)
{
    if (json_array_size(s->managers) > 0)
        s->target = (s->target + 1) % json_array_size(s->managers);
}

static void use_leader(struct session *s, const char *leader)
{
    if (leader == NULL || *leader == '\0')
        return;
    size_t i;
    json_t *m;
    json_array_foreach(s->managers, i, m)
    {
        if (strcmp(json_string_value(m), leader) == 0) {
            s->target = i;
            return;
        }
    }
    json_array_append_new(s->managers, json_string(leader));
    s->target = json_array_size(s->managers) - 1;
}

/* Adds the managers this node knows of that the list lacks: on a manager,
 * the nodes of its own store (the list written at swarm init holds only its
 * own address). The current target stays. */
static void learn_managers(struct session *s)
{
    if (s->sh->cluster == NULL)
        return;
    json_t *known = swarm_manager_addrs(s->sh);
    size_t i, k;
    json_t *m, *have;
    json_array_foreach(known, i, m)
    {
        bool listed = false;
        json_array_foreach(s->managers, k, have) listed |= json_equal(have, m);
        if (!listed && json_is_string(m))
            json_array_append(s->managers, m);
    }
    json_decref(known);
}

/* After a failed heartbeat: the leader named by the answer ("this manager is
 * not the leader" carries a hint), else the one this manager's raft knows,
 * else the next manager of the list. */
static void follow_leader(struct session *s, int status, const char *body, size_t len)
{
    learn_managers(s);
    json_t *answer = status > 0 && body ? json_loadb(body, len, 0, NULL) : NULL;
    const char *hint = json_string_value(json_object_get(answer, "leader"));
    const char *ours = s->sh->cluster ? cluster_leader_addr(s->sh->cluster) : "";
    const char *cur = json_string_value(json_array_get(s->managers, s->target));
    if (hint && *hint && !(cur && strcmp(cur, hint) == 0))
        use_leader(s, hint);
    else if (*ours && !(cur && strcmp(cur, ours) == 0))
        use_leader(s, ours);
    else
        next_manager(s);
    json_decref(answer);
}

/* The leader's view of this node's role wins: ask for a certificate of the
 * new role (a CSR in the next heartbeat), then switch when it comes. */
static void follow_role(struct session *s, const char *role, const char *cert, json_t *answer)
{
    struct shoal *sh = s->sh;
    if (role == NULL || strcmp(role, sh->role) == 0) {
        free(s->renew_key);
        free(s->renew_csr);
        s->renew_key = s->renew_csr = NULL;
        return;
    }
    struct serr err = {0};
    if (cert && s->renew_key) {
        if (strcmp(role, "manager") == 0 && swarm_secrets_key_take(sh, answer, &err) < 0)
            log_error("the secrets key: %s", err.msg);
        if (swarm_change_role(sh, role, cert, s->renew_key, &err) < 0)
            log_error("role change to %s: %s", role, err.msg);
        free(s->renew_key);
        free(s->renew_csr);
        s->renew_key = s->renew_csr = NULL;
        return;
    }
    if (s->renew_key == NULL && swarm_new_csr(sh, &s->renew_key, &s->renew_csr, &err) < 0)
        log_error("role change to %s: %s", role, err.msg);
}

/* Drops from `obj` the keys not in `used` (taken). */
static void keep_only_keys(json_t *obj, json_t *used)
{
    const char *id;
    json_t *v, *tmp;
    json_object_foreach_safe(obj, tmp, id, v)
    {
        if (json_object_get(used, id) == NULL)
            json_object_del(obj, id);
    }
    json_decref(used);
}

/* Adds what the leader sent, forgets what no task of ours uses any more. */
static void keep_secrets(struct session *s, json_t *sent)
{
    if (s->secret_data == NULL)
        s->secret_data = json_object();
    if (json_is_object(sent))
        json_object_update(s->secret_data, sent);
    keep_only_keys(s->secret_data, swarm_secrets_used(s->tasks));
}

char *session_secret(struct session *s, const char *id, struct serr *err)
{
    const char *data = json_string_value(json_object_get(s->secret_data, id));
    if (data == NULL) {
        serr_set(err, SERR_UNAVAILABLE, "the data of secret or config %s has not reached this "
                 "node yet", id);
        return NULL;
    }
    return xstrdup(data);
}

/* A new list of managers outlives a restart (swarm.json). */
static void remember_managers(struct session *s, json_t *managers)
{
    if (s->remembered && json_equal(s->remembered, managers))
        return; /* (not s->managers: it also holds what the node learnt itself) */
    struct serr err = {0};
    if (swarm_remember_managers(s->sh, managers, &err) < 0) {
        log_warn("keeping the managers' addresses: %s", err.msg);
        return;
    }
    json_decref(s->remembered);
    s->remembered = json_deep_copy(managers);
}

/* The interval the leader asks for (longer in a large cluster), from the
 * next heartbeat on. Kept when heartbeats fail: the next leader asks for
 * the same one (it depends on the cluster's size only). */
static void follow_interval(struct session *s, json_t *answer)
{
    json_int_t ms = json_integer_value(json_object_get(answer, "heartbeat_ms"));
    if (ms < HEARTBEAT_MS)
        ms = HEARTBEAT_MS; /* none (an older leader) or nonsense */
    if (ms > HEARTBEAT_MAX_MS)
        ms = HEARTBEAT_MAX_MS;
    if ((uint64_t)ms != uv_timer_get_repeat(&s->timer))
        uv_timer_set_repeat(&s->timer, (uint64_t)ms);
}

/* A new list: `tasks` but the ids `changes.removed`, with the tasks of
 * `changes.changed` in place of those of the same id, or added. */
static json_t *tasks_with_changes(json_t *tasks, json_t *changes)
{
    json_t *changed = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(changes, "changed"), i, t)
    {
        if (task_id(t))
            json_object_set(changed, task_id(t), t);
    }
    json_t *removed = json_object();
    json_array_foreach(json_object_get(changes, "removed"), i, t)
    {
        if (json_is_string(t))
            json_object_set_new(removed, json_string_value(t), json_true());
    }
    json_t *out = json_array();
    json_array_foreach(tasks, i, t)
    {
        const char *id = task_id(t);
        json_t *now = id ? json_object_get(changed, id) : NULL;
        if (id && json_object_get(removed, id))
            continue;
        json_array_append(out, now ? now : t);
        if (now)
            json_object_del(changed, id);
    }
    const char *id;
    json_object_foreach(changed, id, t) json_array_append(out, t); /* new ones */
    json_decref(changed);
    json_decref(removed);
    return out;
}

/* Images of tasks no longer ours go (a delta brings only the new tasks'). */
static void keep_images_used(struct session *s)
{
    json_t *used = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(s->tasks, i, t)
    {
        const char *img = json_string_value(json_object_get(task_container(t), "image_id"));
        if (img)
            json_object_set_new(used, img, json_true());
    }
    keep_only_keys(s->images, used);
}

/* The whole list ("tasks"), or the changes since the list we named by its
 * tag ("task_changes"), with their images; the tag of the list we then
 * have is sent back. */
static void take_tasks(struct session *s, json_t *answer)
{
    json_t *tasks = json_object_get(answer, "tasks");
    json_t *changes = json_object_get(answer, "task_changes");
    json_t *images = json_object_get(answer, "images");
    const char *tag = json_string_value(json_object_get(answer, "tasks_tag"));
    if (json_is_array(tasks)) {
        json_decref(s->tasks);
        s->tasks = json_incref(tasks);
        if (json_is_object(images)) {
            json_decref(s->images);
            s->images = json_incref(images);
        }
    } else if (json_is_object(changes) && s->tasks) {
        json_t *now = tasks_with_changes(s->tasks, changes);
        json_decref(s->tasks);
        s->tasks = now;
        if (json_is_object(images))
            json_object_update(s->images, images);
        keep_images_used(s);
    }
    snprintf(s->tasks_tag, sizeof(s->tasks_tag), "%s", tag && s->tasks ? tag : "");
}

static void apply_answer(struct session *s, json_t *answer)
{
    follow_interval(s, answer);
    json_t *managers = json_object_get(answer, "managers");
    take_tasks(s, answer);
    keep_secrets(s, json_object_get(answer, "secret_data"));
    if (json_is_array(json_object_get(answer, "nodes"))) {
        json_decref(s->nodes);
        s->nodes = json_incref(json_object_get(answer, "nodes"));
    }
    const char *overlay = json_string_value(json_object_get(answer, "overlay"));
    if (overlay)
        snprintf(s->overlay, sizeof(s->overlay), "%s", overlay);
    if (json_is_object(json_object_get(answer, "mesh"))) {
        json_decref(s->mesh);
        s->mesh = json_incref(json_object_get(answer, "mesh"));
        const char *tag = json_string_value(json_object_get(answer, "mesh_tag"));
        snprintf(s->mesh_tag, sizeof(s->mesh_tag), "%s", tag ? tag : "");
    }
    if (json_array_size(managers) > 0) {
        remember_managers(s, managers);
        const char *cur = json_string_value(json_array_get(s->managers, s->target));
        char *keep = cur ? xstrdup(cur) : NULL;
        json_decref(s->managers);
        s->managers = json_deep_copy(managers);
        s->target = 0;
        if (keep)
            use_leader(s, keep);
        free(keep);
    }
    const char *leader = json_string_value(json_object_get(answer, "leader"));
    if (leader)
        use_leader(s, leader);
    follow_role(s, json_string_value(json_object_get(answer, "role")),
                json_string_value(json_object_get(answer, "cert")), answer);
}

static void drop_connection(struct session *s)
{
    if (s->conn >= 0)
        close(s->conn);
    s->conn = -1;
}

static void session_free(struct session *s)
{
    drop_connection(s);
    free(s->conn_to);
    free(s->renew_key);
    free(s->renew_csr);
    json_decref(s->pending);
    json_decref(s->inflight);
    json_decref(s->tasks);
    json_decref(s->images);
    json_decref(s->managers);
    json_decref(s->remembered);
    json_decref(s->nodes);
    json_decref(s->mesh);
    json_decref(s->secret_data);
    free(s);
}

static void on_connected(void *arg, int fd, const char *errmsg);

/* A new connection to manager `target` for the heartbeat, the kept one (if
 * any) closed. */
static void connect_to(struct session *s, const char *target)
{
    drop_connection(s);
    free(s->conn_to);
    s->conn_to = xstrdup(target);
    clusternet_connect(s->sh, target, on_connected, s);
}

/* A kept connection the manager closed meanwhile (its idle timeout, a
 * restart) fails the heartbeat sent on it: the heartbeat goes again at
 * once, on a new connection. */
static bool retry_on_new_connection(struct session *s, int status)
{
    const char *target = json_string_value(json_array_get(s->managers, s->target));
    if (!s->reused || status >= 0 || target == NULL)
        return false;
    s->reused = false;
    s->busy = true;
    connect_to(s, target);
    return true;
}

static void on_answer(void *arg, int status, const char *body, size_t len, const char *errmsg)
{
    struct session *s = arg;
    s->busy = false;
    if (s->stopping) {
        if (s->timer_closed)
            session_free(s);
        return;
    }
    if (retry_on_new_connection(s, status))
        return;
    json_t *answer = status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    if (answer == NULL) {
        if (s->failures++ % 20 == 0)
            log_warn("session with %s: %s", json_string_value(json_array_get(s->managers, s->target)),
                     errmsg ? errmsg : body ? body : "bad answer");
        requeue_inflight(s);
        follow_leader(s, status, body, len);
        return;
    }
    if (s->failures > 0)
        log_info("session with %s established",
                 json_string_value(json_array_get(s->managers, s->target)));
    s->failures = 0;
    json_decref(s->inflight);
    s->inflight = json_array();
    apply_answer(s, answer);
    json_decref(answer);
    shoal_kick(s->sh);
}

static void on_connected(void *arg, int fd, const char *errmsg)
{
    struct session *s = arg;
    if (fd < 0) {
        on_answer(s, -1, NULL, 0, errmsg);
        return;
    }
    json_t *body = json_pack("{s:O, s:s?, s:O?, s:s, s:s}", "reports", s->inflight, "csr",
                             s->renew_csr, "metrics", node_metrics_latest(s->sh->metrics),
                             "mesh_tag", s->mesh_tag, "tasks_tag", s->tasks_tag);
    json_t *have = json_array();
    const char *id;
    json_t *v;
    json_object_foreach(s->secret_data, id, v) json_array_append_new(have, json_string(id));
    json_object_set_new(body, "secret_ids", have);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    /* a manager that stopped answering (paused, cut off) is left in time
     * for the next one to hear from this node before it is declared down;
     * a leader slow to answer in a large cluster is not left sooner */
    int64_t wait_ms = dispatcher_answer_wait_ms((int64_t)uv_timer_get_repeat(&s->timer));
    struct http_aopts opts = {.timeout_ms = (unsigned)wait_ms, .keep_fd = &s->conn};
    http_arequest_opts(s->sh->loop, fd, "POST", "/v1/cluster/session", "application/json", text,
                       strlen(text), -1, &opts, on_answer, s);
    free(text);
}

static void heartbeat(uv_timer_t *t)
{
    struct session *s = t->data;
    const char *target = json_string_value(json_array_get(s->managers, s->target));
    if (s->busy || target == NULL)
        return;
    if (s->sh->cluster && cluster_is_leader(s->sh->cluster)) {
        /* the leader reports to itself directly; queued reports go in now */
        drop_connection(s);
        size_t i;
        json_t *r;
        json_array_foreach(s->pending, i, r)
        {
            shoal_report_task(s->sh, json_string_value(json_object_get(r, "id")),
                              json_incref(json_object_get(r, "fields")));
        }
        json_array_clear(s->pending);
        return;
    }
    s->busy = true;
    json_decref(s->inflight);
    s->inflight = s->pending;
    s->pending = json_array();
    if (s->conn >= 0 && s->conn_to && strcmp(s->conn_to, target) == 0) {
        int fd = s->conn;
        s->conn = -1; /* the request takes it */
        s->reused = true;
        on_connected(s, fd, NULL);
        return;
    }
    s->reused = false;
    connect_to(s, target); /* the kept one is to a manager no longer the target */
}

struct session *session_start(struct shoal *sh, json_t *managers)
{
    struct session *s = xcalloc(1, sizeof(*s));
    s->sh = sh;
    s->conn = -1;
    s->pending = json_array();
    s->inflight = json_array();
    s->images = json_object();
    s->managers = json_is_array(managers) ? json_deep_copy(managers) : json_array();
    uv_timer_init(sh->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, heartbeat, 0, HEARTBEAT_MS);
    return s;
}

static void timer_closed(uv_handle_t *h)
{
    struct session *s = h->data;
    s->timer_closed = true;
    if (!s->busy)
        session_free(s); /* else on_answer frees it */
}

void session_stop(struct session *s)
{
    if (s == NULL)
        return;
    s->stopping = true;
    uv_close((uv_handle_t *)&s->timer, timer_closed);
}

void session_report(struct session *s, const char *task_id, json_t *fields)
{
    json_array_append_new(s->pending, json_pack("{s:s, s:o}", "id", task_id, "fields", fields));
}

json_t *session_tasks(struct session *s)
{
    return s->tasks ? json_incref(s->tasks) : NULL;
}

json_t *session_image(struct session *s, const char *image_id)
{
    return json_incref(json_object_get(s->images, image_id));
}

json_t *session_nodes(struct session *s)
{
    return s->nodes ? json_incref(s->nodes) : NULL;
}

const char *session_overlay(struct session *s)
{
    return s->overlay[0] ? s->overlay : NULL;
}

json_t *session_mesh(struct session *s)
{
    return s->mesh ? json_incref(s->mesh) : NULL;
}

json_t *session_managers(struct session *s)
{
    return s->managers;
}
