/* Output of containers to API clients: `shoal run` attached streams (NDJSON),
 * `service logs` (past lines, then with -f new output), and the list and
 * removal of local containers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/image.h"
#include "agent/reply.h"
#include "agent/runtime.h"
#include "base/json_get.h"
#include "base/util.h"

struct follower {
    struct agent *a;
    struct agent_reply *out;
    struct follower *next;
    char ctr_id[32]; /* run, container logs: one container; "" for service logs */
    enum { F_NDJSON, F_FRAMES, F_LINES } kind; /* run; run -i/-t (exec's frames); logs */
    bool timestamps;                           /* F_LINES: each line after its time */
    bool attached; /* `shoal attach`: leaving ends nothing (a -i container's stdin stays) */
    char *service_id;
};

static void follower_unlink(struct follower *f)
{
    for (struct follower **pp = &f->a->followers; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    free(f->service_id);
    free(f);
}

/* The client left. A `run -i` container's stdin ends then, as Docker's
 * (a terminal stays: its shell waits). */
static void follower_gone(struct agent_reply *out)
{
    struct follower *f = out->agent_data;
    struct ctr *c = f->kind == F_FRAMES && !f->attached ? ctr_find(f->a, f->ctr_id) : NULL;
    if (c && !c->tty)
        ctr_close_input(c);
    follower_unlink(f);
}

static struct follower *follower_add(struct agent *a, struct agent_reply *out)
{
    struct follower *f = xcalloc(1, sizeof(*f));
    f->a = a;
    f->out = out;
    f->next = a->followers;
    a->followers = f;
    out->agent_data = f;
    out->gone = follower_gone;
    return f;
}

static void follower_end(struct follower *f)
{
    f->out->gone = NULL;
    f->out->stream_end(f->out);
    follower_unlink(f);
}

/* JSON strings must be UTF-8: invalid bytes of container output become '?'. */
static char *utf8_sanitize(const char *data, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t i = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)data[i];
        size_t n = ch < 0x80 ? 1 : (ch >> 5) == 6 ? 2 : (ch >> 4) == 14 ? 3 : (ch >> 3) == 30 ? 4 : 0;
        bool ok = n > 0 && i + n <= len && ch != 0;
        for (size_t k = 1; ok && k < n; k++)
            ok = ((unsigned char)data[i + k] >> 6) == 2;
        if (ok) {
            memcpy(out + i, data + i, n);
            i += n;
        } else {
            out[i++] = '?';
        }
    }
    out[len] = '\0';
    return out;
}

static void write_ndjson(struct agent_reply *out, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text == NULL)
        return;
    size_t n = strlen(text);
    text[n] = '\n';
    out->stream_write(out, text, n + 1);
    free(text);
}

void log_timestamp(char *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char sec[24];
    strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, LOG_TS_LEN + 1, "%.19s.%09ldZ", sec, (long)ts.tv_nsec);
}

/* Writes one log line: "[TS ][TAG ]TEXT\n" (ts, tag NULL: left out; a line
 * without its end gets one, so lines of several tasks never mix). A node's
 * lines for the manager are "TS TASKID TEXT". */
static void write_log_line(struct agent_reply *out, const char *ts, const char *tag,
                           const char *text, size_t len)
{
    char head[LOG_TS_LEN + 80];
    int n = snprintf(head, sizeof(head), "%s%s%s%s", ts ? ts : "", ts ? " " : "", tag ? tag : "",
                     tag ? " " : "");
    out->stream_write(out, head, (size_t)n);
    out->stream_write(out, text, len);
    if (len == 0 || text[len - 1] != '\n')
        out->stream_write(out, "\n", 1);
}

/* New output to a `logs -f` of one container: as it comes, with -t each
 * line after the time it came. */
static void write_followed_output(struct follower *f, const struct ctr *c, const char *ts,
                                  const char *data, size_t len)
{
    if (!f->timestamps) {
        f->out->stream_write(f->out, data, len);
        return;
    }
    bool line_start = c->at_line_start;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (data + i)) + 1 : len - i;
        if (line_start) {
            f->out->stream_write(f->out, ts, LOG_TS_LEN);
            f->out->stream_write(f->out, " ", 1);
        }
        f->out->stream_write(f->out, data + i, n);
        line_start = nl != NULL;
        i += n;
    }
}

void followers_output(struct agent *a, struct ctr *c, const char *data, size_t len)
{
    char ts[LOG_TS_LEN + 1];
    log_timestamp(ts);
    const char *task_id = c->task_id ? c->task_id : c->id;
    for (struct follower *f = a->followers; f; f = f->next) {
        if (strcmp(f->ctr_id, c->id) == 0 && f->kind == F_FRAMES) {
            agent_write_frame(f->out, 1, data, len);
        } else if (strcmp(f->ctr_id, c->id) == 0 && f->kind == F_LINES) {
            write_followed_output(f, c, ts, data, len);
        } else if (strcmp(f->ctr_id, c->id) == 0) {
            char *text = utf8_sanitize(data, len);
            write_ndjson(f->out, json_pack("{s:s}", "out", text));
            free(text);
        } else if (f->service_id && c->service_id && strcmp(f->service_id, c->service_id) == 0) {
            for (size_t i = 0; i < len;) {
                const char *nl = memchr(data + i, '\n', len - i);
                size_t n = nl ? (size_t)(nl - (data + i)) + 1 : len - i;
                write_log_line(f->out, ts, task_id, data + i, n);
                i += n;
            }
        }
    }
    if (len > 0)
        c->at_line_start = data[len - 1] == '\n';
}

/* Docker's exit code when the container could not run. */
#define RUN_EXIT_NOT_STARTED 125

/* The end of a `run -i/-t` stream: why it could not start (stderr), then
 * the exit code. */
static void exit_frames(struct agent_reply *out, struct ctr *c)
{
    char code[24];
    int n = snprintf(code, sizeof(code), "%d", c->error ? RUN_EXIT_NOT_STARTED : c->exit_code);
    if (c->error) {
        char *text = xasprintf("%s\n", c->error);
        agent_write_frame(out, 2, text, strlen(text));
        free(text);
    }
    agent_write_frame(out, 3, code, (size_t)n);
}

void followers_started(struct agent *a, struct ctr *c)
{
    if (c->session[0] == '\0')
        return;
    for (struct follower *f = a->followers; f; f = f->next)
        if (f->kind == F_FRAMES && strcmp(f->ctr_id, c->id) == 0)
            agent_write_frame(f->out, 4, c->session, strlen(c->session));
}

/* The running container whose session is `id`. */
static struct ctr *session_ctr(struct agent *a, const char *id, struct serr *err)
{
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if (c->session[0] && strcmp(c->session, id) == 0 && c->phase == PH_RUNNING)
            return c;
    serr_set(err, SERR_NOT_FOUND, "No such exec session: %s", id);
    return NULL;
}

int run_session_input(struct agent *a, const char *id, const char *data, size_t len, bool close,
                      struct serr *err)
{
    struct ctr *c = session_ctr(a, id, err);
    if (c == NULL)
        return -1;
    uv_stream_t *to = c->tty ? (c->out_open && c->interactive ? (uv_stream_t *)&c->out : NULL)
                             : (c->in_open ? (uv_stream_t *)&c->in : NULL);
    if (agent_write_input(to, data, len) < 0)
        return serr_set(err, SERR_CONFLICT, "session %s takes no more input", id);
    if (close && !c->tty)
        ctr_close_input(c); /* after the writes queued before */
    return 0;
}

int run_session_resize(struct agent *a, const char *id, int rows, int cols, struct serr *err)
{
    struct ctr *c = session_ctr(a, id, err);
    if (c == NULL)
        return -1;
    if (rows <= 0 || cols <= 0 || rows > TERM_MAX_SIZE || cols > TERM_MAX_SIZE)
        return serr_set(err, SERR_INVALID, "rows, cols: out of range");
    uv_os_fd_t fd;
    if (c->tty && c->out_open && uv_fileno((uv_handle_t *)&c->out, &fd) == 0)
        runtime_term_set_size(fd, rows, cols);
    return 0;
}

void followers_exit(struct agent *a, struct ctr *c)
{
    if (c->session[0])
        session_ended(a, c->session, c->error ? RUN_EXIT_NOT_STARTED : c->exit_code);
    for (struct follower *f = a->followers, *next; f; f = next) {
        next = f->next;
        if (strcmp(f->ctr_id, c->id) != 0)
            continue;
        if (f->kind == F_FRAMES)
            exit_frames(f->out, c);
        else if (f->kind == F_NDJSON && c->error)
            write_ndjson(f->out, json_pack("{s:s}", "error", c->error));
        else if (f->kind == F_NDJSON)
            write_ndjson(f->out, json_pack("{s:i}", "exit", c->exit_code));
        /* F_LINES: a followed log just ends, as Docker's */
        follower_end(f);
    }
}

void followers_detach_ctr(struct agent *a, struct ctr *c)
{
    for (struct follower *f = a->followers, *next; f; f = next) {
        next = f->next;
        if (strcmp(f->ctr_id, c->id) == 0)
            follower_end(f);
    }
}

void followers_close_all(struct agent *a)
{
    while (a->followers)
        follower_end(a->followers);
}

/* ---- shoal run ---- */

static int run_validate(json_t *body, struct serr *err)
{
    static const char *const fields[] = {"image",    "args",     "env",        "name",
                                         "rm",       "detach",   "init",       "network",
                                         "hostname", "user",     "workdir",    "entrypoint",
                                         "mounts",   "interactive", "tty",     "rows",
                                         "cols",     "ports",    NULL};
    if (!json_is_object(body))
        return serr_set(err, SERR_INVALID, "request body must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (!str_in_list(key, fields))
            return serr_set(err, SERR_INVALID, "unknown field '%s'", key);
    }
    if (!json_is_string(json_object_get(body, "image")))
        return serr_set(err, SERR_INVALID, "image is required");
    json_t *name = json_object_get(body, "name");
    if (name && (!json_is_string(name) || json_string_length(name) == 0 ||
                 json_string_length(name) > 64 || strchr(json_string_value(name), '/')))
        return serr_set(err, SERR_INVALID, "invalid container name");
    return 0;
}

/* The spec a service would have, turned into a task's container spec. */
static json_t *run_container_spec(struct agent *a, json_t *body, struct serr *err)
{
    json_t *spec = json_pack("{s:O, s:[], s:[], s:b, s:I}", "image", json_object_get(body, "image"),
                             "mounts", "env", "init", json_is_true(json_object_get(body, "init")),
                             "stop_grace_period_ms", (json_int_t)10000);
    json_t *args = json_object_get(body, "args");
    json_t *env = json_object_get(body, "env");
    if (args)
        json_object_set(spec, "args", args);
    if (env)
        json_object_set(spec, "env", env);
    /* checked by the service spec's normalize, as `service create` */
    static const char *const passed[] = {"network", "hostname", "user", "workdir", "entrypoint",
                                         "mounts", NULL};
    for (int i = 0; passed[i]; i++) {
        json_t *v = json_object_get(body, passed[i]);
        if (v)
            json_object_set(spec, passed[i], v);
    }
    json_t *container = a->up->run_container_spec(a->up->data, spec, err);
    json_decref(spec);
    return container;
}

/* The client of a waiting reply left: its slot empties. */
static void waiting_reply_gone(struct agent_reply *r)
{
    struct agent_reply **slot = r->agent_data;
    *slot = NULL;
}

void reply_wait(struct agent_reply **slot, struct agent_reply *r)
{
    *slot = r;
    r->agent_data = slot;
    r->gone = waiting_reply_gone;
}

struct agent_reply *reply_take(struct agent_reply **slot)
{
    struct agent_reply *r = *slot;
    if (r == NULL)
        return NULL;
    *slot = NULL;
    r->gone = NULL;
    r->agent_data = NULL;
    return r;
}

/* Answers a detached `run` once its container started (201 {"id"}) or could
 * not start (the reason). */
void ctr_answer_starter(struct ctr *c)
{
    struct agent_reply *r = reply_take(&c->start_reply);
    if (r == NULL)
        return;
    if (c->error || !c->created) {
        struct serr err;
        serr_set(&err, c->error ? SERR_INVALID : SERR_UNAVAILABLE, "%s",
                 c->error ? c->error : "the container was removed before it started");
        r->fail(r, &err);
        return;
    }
    char reply[64];
    snprintf(reply, sizeof(reply), "{\"id\":\"%s\"}", c->id);
    r->respond(r, 201, reply);
}

struct ctr *ctr_port_taken(struct agent *a, json_t *port)
{
    for (struct ctr *c = a->ctrs; c; c = c->next) {
        size_t i;
        json_t *p;
        if (c->phase == PH_DONE)
            continue;
        json_array_foreach(c->ports, i, p)
        {
            if (json_equal(json_object_get(p, "published"), json_object_get(port, "published")) &&
                json_equal(json_object_get(p, "protocol"), json_object_get(port, "protocol")))
                return c;
        }
    }
    return NULL;
}

/* body's "ports" ([{published, target, protocol}], `run -p`) checked, with
 * the protocol made explicit (tcp); *out NULL when none. */
static int run_ports(struct agent *a, json_t *body, json_t **out, struct serr *err)
{
    json_t *given = json_object_get(body, "ports");
    *out = NULL;
    if (given == NULL || json_array_size(given) == 0)
        return 0;
    if (!json_is_array(given))
        return serr_set(err, SERR_INVALID, "ports: expected [{published, target, protocol}]");
    json_t *ports = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(given, i, p)
    {
        json_int_t pub = json_integer_value(json_object_get(p, "published"));
        json_int_t target = json_integer_value(json_object_get(p, "target"));
        const char *proto = jstr(p, "protocol");
        proto = proto ? proto : "tcp";
        json_t *port = json_pack("{s:I, s:I, s:s}", "published", pub, "target", target,
                                 "protocol", proto);
        struct ctr *other = ctr_port_taken(a, port);
        int rc = 0;
        if (pub < 1 || pub > 65535 || target < 1 || target > 65535 ||
            (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0))
            rc = serr_set(err, SERR_INVALID, "ports: published and target 1 to 65535, "
                                             "protocol tcp or udp");
        else if (other)
            rc = serr_set(err, SERR_CONFLICT, "port %lld/%s is already published by container %s",
                          (long long)pub, proto, other->name);
        json_array_append_new(ports, port);
        if (rc < 0) {
            json_decref(ports);
            return -1;
        }
    }
    *out = ports;
    return 0;
}

/* -i and -t: stdin, a terminal of rows x cols; an attached one is a
 * session whose input comes as exec's. Set before the container is
 * created (work_create reads them). */
static void run_session_setup(struct agent *a, struct ctr *c, json_t *body)
{
    c->interactive = json_is_true(json_object_get(body, "interactive"));
    c->tty = json_is_true(json_object_get(body, "tty"));
    json_int_t rows = json_integer_value(json_object_get(body, "rows"));
    json_int_t cols = json_integer_value(json_object_get(body, "cols"));
    c->rows = rows > 0 && rows <= TERM_MAX_SIZE ? (int)rows : 0;
    c->cols = cols > 0 && cols <= TERM_MAX_SIZE ? (int)cols : 0;
    if ((c->interactive || c->tty) && !json_is_true(json_object_get(body, "detach")))
        agent_session_id(a, c->session, sizeof(c->session));
}

/* A `shoal run` on the bridge while the node's network is being set up (in
 * the second after `swarm init` or `join`) waits for it, as a service's
 * task does, instead of running on the host's network: a poll every
 * RUN_WAIT_POLL_MS, for RUN_WAIT_MAX_MS at most. */
#define RUN_WAIT_POLL_MS 20
#define RUN_WAIT_MAX_MS 15000

struct run_waiting {
    struct agent *a;
    struct agent_reply *r; /* NULL once its client left */
    json_t *body;          /* the request, owned */
    int64_t give_up_at;    /* mono_ms */
    uv_timer_t timer;
    struct run_waiting *next;
};

static bool run_waits_for_bridge(struct agent *a, json_t *body)
{
    const char *network = jstr_or(body, "network", "bridge");
    if (strcmp(network, "bridge") != 0 || agent_net_ready(a, network) || agent_net_error(a))
        return false;
    json_t *nodes = a->up->nodes(a->up->data); /* NULL outside a swarm: the host's network */
    json_decref(nodes);
    return nodes != NULL;
}

static void run_wait_closed(uv_handle_t *h)
{
    struct run_waiting *w = h->data;
    json_decref(w->body);
    free(w);
}

/* Unlinks w and closes its timer; w is freed once closed. */
static void run_wait_end(struct run_waiting *w)
{
    for (struct run_waiting **p = &w->a->runs_waiting; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    uv_close((uv_handle_t *)&w->timer, run_wait_closed);
}

static void run_wait_tick(uv_timer_t *t)
{
    struct run_waiting *w = t->data;
    struct agent *a = w->a;
    bool waits = w->r && run_waits_for_bridge(a, w->body);
    if (waits && mono_ms() < w->give_up_at)
        return;
    struct agent_reply *r = reply_take(&w->r);
    json_t *body = json_incref(w->body);
    run_wait_end(w);
    if (r && waits) {
        struct serr err = {0};
        serr_set(&err, SERR_UNAVAILABLE, "network bridge is not ready on this node yet");
        r->fail(r, &err);
    } else if (r) {
        agent_run(a, r, body);
    }
    json_decref(body);
}

static void run_wait(struct agent *a, struct agent_reply *r, json_t *body)
{
    struct run_waiting *w = xcalloc(1, sizeof(*w));
    w->a = a;
    w->r = r;
    w->body = json_incref(body);
    w->give_up_at = mono_ms() + RUN_WAIT_MAX_MS;
    uv_timer_init(a->env->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, run_wait_tick, RUN_WAIT_POLL_MS, RUN_WAIT_POLL_MS);
    w->next = a->runs_waiting;
    a->runs_waiting = w;
    reply_wait(&w->r, r); /* w->r emptied if the client leaves */
}

void runs_waiting_close_all(struct agent *a)
{
    while (a->runs_waiting) {
        struct run_waiting *w = a->runs_waiting;
        struct agent_reply *r = reply_take(&w->r);
        run_wait_end(w);
        if (r) {
            struct serr err = {0};
            serr_set(&err, SERR_UNAVAILABLE, "the daemon is stopping");
            r->fail(r, &err);
        }
    }
}

void agent_run(struct agent *a, struct agent_reply *r, json_t *body)
{
    struct serr err = {0};
    if (run_validate(body, &err) < 0) {
        r->fail(r, &err);
        return;
    }
    if (run_waits_for_bridge(a, body)) {
        run_wait(a, r, body);
        return;
    }
    const char *name = jstr(body, "name");
    if (name && ctr_find_shown(a, name)) {
        serr_set(&err, SERR_CONFLICT, "the container name \"%s\" is already in use", name);
        r->fail(r, &err);
        return;
    }
    json_t *ports;
    if (run_ports(a, body, &ports, &err) < 0) {
        r->fail(r, &err);
        return;
    }
    json_t *container = run_container_spec(a, body, &err);
    if (container == NULL) {
        json_decref(ports);
        r->fail(r, &err);
        return;
    }
    char id[sizeof(((struct ctr *)0)->id)]; /* the id answered must be the one stored */
    random_hex(id, sizeof(id) - 1);
    struct ctr *c = ctr_new(a, id);
    c->local = true;
    c->rm = json_is_true(json_object_get(body, "rm"));
    c->name = xstrdup(name ? name : id);
    run_session_setup(a, c, body);
    c->ports = ports;
    bool detach = json_is_true(json_object_get(body, "detach"));
    c->attached_runtime = c->rm && !detach; /* the CLI waits for its end */
    int rc = ctr_launch(c, container, &err);
    c->run_spec = container; /* `shoal start` creates it again from this */
    if (rc < 0) {
        ctr_release(c);
        r->fail(r, &err);
        return;
    }
    if (c->ports)
        agent_kick(a); /* its ports are published (agent_net.c) */
    if (detach) {
        reply_wait(&c->start_reply, r); /* answered once it runs (or failed to), like docker */
        return;
    }
    r->stream_start(r, c->session[0] ? AGENT_FRAMES_TYPE : "application/x-ndjson");
    struct follower *f = follower_add(a, r);
    f->kind = c->session[0] ? F_FRAMES : F_NDJSON;
    snprintf(f->ctr_id, sizeof(f->ctr_id), "%s", id);
}

json_t *agent_list_local(struct agent *a, bool with_tasks)
{
    static const char *const phases[] = {"created", "running", "exited", "exited"};
    json_t *out = json_array();
    for (struct ctr *c = a->ctrs; c; c = c->next) {
        if ((!c->local && !(with_tasks && c->task_id)) || ctr_removing(c))
            continue;
        char *name = c->local ? xstrdup(c->name) : xasprintf("%s.%s", c->name, c->task_id);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", c->id, "name", name, "image",
                              c->image ? c->image : "", "state", phases[c->phase], "created_at",
                              (json_int_t)c->created_at);
        free(name);
        if (c->task_id)
            json_object_set_new(o, "task_id", json_string(c->task_id));
        json_object_set_new(o, "exit_code", c->exited ? json_integer(c->exit_code) : json_null());
        if (c->error)
            json_object_set_new(o, "error", json_string(c->error));
        json_array_append_new(out, o);
    }
    return out;
}

/* Answers a pending `rm -f` once its container is gone (from ctr_release). */
void ctr_answer_remover(struct ctr *c)
{
    struct agent_reply *r = reply_take(&c->rm_reply);
    if (r)
        r->respond(r, 200, "{}");
}

/* 0: removed; 1: being stopped, `r` is answered once it is gone; -1: error
 * in err. */
static int remove_local(struct agent *a, const char *ref, int force, struct agent_reply *r,
                        struct serr *err)
{
    struct ctr *c = ctr_find_or_fail(a, ref, err);
    if (c == NULL)
        return -1;
    if (!c->local)
        return serr_set(err, SERR_NOT_FOUND, "No such container: %s", ref);
    /* an exited container still being deleted (ps shows it exited) is
     * removed once that ends, as a forced remove is */
    if (c->phase != PH_DONE && c->phase != PH_FINISHING && !force)
        return serr_set(err, SERR_CONFLICT,
                        "cannot remove running container %s: stop it first or use force", ref);
    if (c->phase != PH_DONE) {
        if (c->rm_reply)
            return serr_set(err, SERR_CONFLICT, "container %s is already being removed", ref);
        c->rm = true;
        c->grace_ms = 0;
        reply_wait(&c->rm_reply, r); /* answered when it is gone, like docker */
        ctr_stop(c);
        return 1;
    }
    ctr_logs_remove(a, c->id);
    ctr_release(c);
    return 0;
}

bool agent_local_done(struct agent *a, const char *ref)
{
    struct ctr *c = ctr_lookup(a, ref);
    return c && c->local && c->phase == PH_DONE;
}

void agent_remove_local(struct agent *a, const char *ref, int force, struct agent_reply *r)
{
    struct serr err = {0};
    int rc = remove_local(a, ref, force, r, &err);
    if (rc < 0)
        r->fail(r, &err);
    else if (rc == 0)
        r->respond(r, 200, "{}");
}

/* ---- logs of tasks on this node (for the manager that merges them) ---- */

static bool is_log_ts(const char *line, size_t len)
{
    return len > LOG_TS_LEN && line[LOG_TS_LEN] == ' ' && line[4] == '-' && line[10] == 'T' &&
           line[LOG_TS_LEN - 1] == 'Z';
}

static char *read_task_log(struct agent *a, const char *id, size_t *len)
{
    char *paths[2] = {ctr_log_path(a, id, true), ctr_log_path(a, id, false)};
    char *all = xstrdup("");
    *len = 0;
    for (int i = 0; i < 2; i++) {
        char *text;
        size_t n;
        if (read_file(paths[i], &text, &n, NULL) == 0) {
            all = xrealloc(all, *len + n + 1);
            memcpy(all + *len, text, n + 1);
            *len += n;
            free(text);
        }
        free(paths[i]);
    }
    return all;
}

struct log_line {
    char ts[LOG_TS_LEN + 1];
    const char *text;
    size_t len;
};

/* The lines of a container's log since `since` ("" = all), the last `tail`
 * of them (-1 = all), each after its time when `with_ts` and `tag` (NULL:
 * none). Lines from before timestamps were written take the time of the
 * line before (or the epoch). */
static void write_log_history(struct agent *a, struct agent_reply *out, const char *ctr_id,
                              const char *since, long tail, bool with_ts, const char *tag)
{
    size_t len;
    char *text = read_task_log(a, ctr_id, &len);
    struct log_line *lines = NULL;
    size_t count = 0, cap = 0;
    char last_ts[LOG_TS_LEN + 1] = "1970-01-01T00:00:00.000000000Z";
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) + 1 : len - i;
        const char *line = text + i;
        i += n;
        if (is_log_ts(line, n)) {
            memcpy(last_ts, line, LOG_TS_LEN);
            line += LOG_TS_LEN + 1;
            n -= LOG_TS_LEN + 1;
        }
        if (since[0] && strcmp(last_ts, since) < 0)
            continue;
        if (count == cap)
            lines = xrealloc(lines, (cap = cap ? cap * 2 : 64) * sizeof(*lines));
        memcpy(lines[count].ts, last_ts, sizeof(last_ts));
        lines[count].text = line;
        lines[count].len = n;
        count++;
    }
    size_t first = tail >= 0 && (size_t)tail < count ? count - (size_t)tail : 0;
    for (size_t k = first; k < count; k++)
        write_log_line(out, with_ts ? lines[k].ts : NULL, tag, lines[k].text, lines[k].len);
    free(lines);
    free(text);
}

static bool is_hex_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* A batch job's tasks carry "job.N" as their service id (manager/jobs.c). */
static bool is_job_ref(const char *s)
{
    if (s == NULL || strncmp(s, "job.", 4) != 0 || s[4] == '\0' || strlen(s) > 24)
        return false;
    for (s += 4; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

void agent_node_logs(struct agent *a, struct agent_reply *r, json_t *body)
{
    const char *sid = jstr(body, "service");
    json_t *tasks = json_object_get(body, "tasks");
    json_t *tail_v = json_object_get(body, "tail");
    const char *since = jstr(body, "since");
    if (!(is_hex_id(sid) || is_job_ref(sid)) || !json_is_array(tasks) || (tail_v && !json_is_integer(tail_v)) ||
        (since && strlen(since) > LOG_TS_LEN)) {
        struct serr err;
        serr_set(&err, SERR_INVALID, "expected {service, tasks: [...], tail, since, follow}");
        r->fail(r, &err);
        return;
    }
    long tail = tail_v ? (long)json_integer_value(tail_v) : -1;
    r->stream_start(r, "text/plain; charset=utf-8");
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (is_hex_id(json_string_value(t)))
            write_log_history(a, r, json_string_value(t), since ? since : "", tail, true,
                              json_string_value(t));
    }
    if (!json_is_true(json_object_get(body, "follow"))) {
        r->stream_end(r);
        return;
    }
    r->stream_write(r, "\n", 1); /* the end of the past lines */
    struct follower *f = follower_add(a, r);
    f->service_id = xstrdup(sid);
}


void agent_ctr_logs(struct agent *a, const char *ref, const struct ctr_logs_opts *o,
                    struct agent_reply *r)
{
    struct serr err = {0};
    struct ctr *c = ctr_find_or_fail(a, ref, &err);
    if (c != NULL && o->run_only && c->task_id != NULL) {
        serr_set(&err, SERR_NOT_FOUND, "No such container: %s", ref);
        c = NULL;
    }
    if (c == NULL) {
        r->fail(r, &err);
        return;
    }
    r->stream_start(r, "text/plain; charset=utf-8");
    write_log_history(a, r, c->id, o->since, o->tail, o->timestamps, NULL);
    if (!o->follow || c->phase == PH_FINISHING || c->phase == PH_DONE) {
        r->stream_end(r);
        return;
    }
    struct follower *f = follower_add(a, r);
    f->kind = F_LINES;
    f->timestamps = o->timestamps;
    snprintf(f->ctr_id, sizeof(f->ctr_id), "%s", c->id);
}

bool agent_ctr_tty(struct agent *a, const char *ref)
{
    struct ctr *c = ctr_lookup(a, ref);
    return c && c->tty;
}

void agent_attach(struct agent *a, const char *ref, struct agent_reply *r)
{
    struct serr err = {0};
    struct ctr *c = ctr_find_or_fail(a, ref, &err);
    if (c && c->phase != PH_RUNNING)
        serr_set(&err, SERR_CONFLICT, "You cannot attach to a stopped container, start it first");
    if (err.msg[0]) {
        r->fail(r, &err);
        return;
    }
    if (c->session[0] == '\0' && (c->interactive || c->tty)) /* run -d: a session from now */
        agent_session_id(a, c->session, sizeof(c->session));
    r->stream_start(r, AGENT_FRAMES_TYPE);
    if (c->session[0])
        agent_write_frame(r, 4, c->session, strlen(c->session));
    struct follower *f = follower_add(a, r);
    f->kind = F_FRAMES;
    f->attached = true;
    snprintf(f->ctr_id, sizeof(f->ctr_id), "%s", c->id);
}
