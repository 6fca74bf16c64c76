/* `service logs` across the cluster: the answering manager asks every node
 * that runs (or, with follow, may run) a task of the service for its lines
 * (POST /v1/node/logs over the cluster port, node certificates), sorts the
 * past lines of all nodes by time, then relays new lines as they come. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "api/api_int.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "http/http_aclient.h"
#include "store/store.h"

#define TS_LEN 30 /* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ", as the agent writes them */

struct logs_up;

struct logs_fanout {
    struct shoal *sh;
    struct http_req *req; /* NULL once answered or the client went away */
    int refs;             /* the request's own and one per node */
    int history_pending;  /* nodes whose past lines did not all come yet */
    int open;             /* nodes whose answer did not end yet */
    bool timestamps, no_task_ids, raw, no_trunc;
    char *hist; /* past lines of all nodes ("TS TASKID LINE\n"), sorted once all came */
    size_t hist_len, hist_cap;
    json_t *prefixes; /* task id -> "name.id@node" */
    char *only_task;  /* NULL: all the service's tasks */
    struct logs_up *ups;
};

struct logs_up {
    struct logs_fanout *lf;
    struct logs_up *next;
    struct areq *areq; /* while the answer streams */
    char *node_name;
    char *addr; /* its cluster address */
    char *body;
    char *partial; /* the start of a line whose end did not come yet */
    size_t partial_len, partial_cap;
    bool history_done;
};

/* ---- --since ---- */

static void format_ts(long double unix_ns, char *out)
{
    time_t sec = (time_t)(unix_ns / 1e9L);
    long nsec = (long)(unix_ns - (long double)sec * 1e9L);
    if (nsec < 0)
        nsec = 0;
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[24];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, TS_LEN + 1, "%.19s.%09ldZ", buf, nsec % 1000000000L);
}

int logs_since_ts(const char *in, long double now_ns, char *out, struct serr *err)
{
    long double ns;
    char *end;
    size_t n = strlen(in);
    if (n >= 19 && in[4] == '-' && in[7] == '-' && in[10] == 'T' && in[13] == ':' &&
        in[16] == ':') { /* RFC 3339 in UTC */
        char frac[10] = "000000000";
        size_t i = 19;
        if (in[i] == '.')
            for (size_t k = 0; in[++i] >= '0' && in[i] <= '9';)
                if (k < 9)
                    frac[k++] = in[i];
        if (strcmp(in + i, "Z") != 0 && in[i] != '\0')
            return serr_set(err, SERR_INVALID,
                            "since: give the time in UTC (ending with Z), a Unix time or a "
                            "duration such as 10m");
        struct tm tm = {0};
        if (sscanf(in, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
            return serr_set(err, SERR_INVALID, "since: invalid time '%s'", in);
        snprintf(out, TS_LEN + 1, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2s.%sZ", in, in + 5, in + 8,
                 in + 11, in + 14, in + 17, frac);
        return 0;
    }
    if (n > 0 && (ns = strtold(in, &end) * 1e9L, *end == '\0') && ns >= 0) { /* Unix time */
        format_ts(ns, out);
        return 0;
    }
    int64_t ms;
    if (parse_duration(in, &ms, NULL) == 0) { /* 10m, 1h30m */
        format_ts(now_ns - (long double)ms * 1e6L, out);
        return 0;
    }
    return serr_set(err, SERR_INVALID,
                    "since: '%s' is not a time (2006-01-02T15:04:05Z), a Unix time or a duration "
                    "(10m, 1h30m)",
                    in);
}

/* ---- output ---- */

static const char *task_prefix(struct logs_fanout *lf, const char *task_id)
{
    json_t *p = json_object_get(lf->prefixes, task_id);
    if (p)
        return json_string_value(p);
    json_t *task = store_get(lf->sh->store, "tasks", task_id);
    const char *name = json_string_value(json_object_get(task, "name"));
    const char *node_id = json_string_value(json_object_get(task, "node_id"));
    json_t *node = node_id ? store_get(lf->sh->store, "nodes", node_id) : NULL;
    const char *host = json_string_value(json_object_get(node, "hostname"));
    char *text;
    if (lf->no_task_ids)
        text = xasprintf("%s@%s", name ? name : task_id, host ? host : "?");
    else
        text = xasprintf("%s.%.*s@%s", name ? name : task_id, lf->no_trunc ? 64 : 12, task_id,
                         host ? host : "?");
    json_object_set_new(lf->prefixes, task_id, json_string(text));
    free(text);
    json_decref(node);
    json_decref(task);
    return json_string_value(json_object_get(lf->prefixes, task_id));
}

/* One line "TS TASKID TEXT\n" (or a message of ours without a time) as the
 * user asked for it. */
static void emit_line(struct logs_fanout *lf, const char *line, size_t len)
{
    if (lf->req == NULL)
        return;
    const char *sp = len > TS_LEN + 1 && line[TS_LEN] == ' ' && line[4] == '-' &&
                             line[TS_LEN - 1] == 'Z'
                         ? memchr(line + TS_LEN + 1, ' ', len - TS_LEN - 1)
                         : NULL;
    if (sp == NULL) {
        http_stream_write(lf->req, line, len);
        return;
    }
    char task_id[65];
    snprintf(task_id, sizeof(task_id), "%.*s", (int)(sp - line - TS_LEN - 1), line + TS_LEN + 1);
    char *out = NULL;
    size_t out_len = 0, out_cap = 0;
    if (!lf->raw) {
        const char *prefix = task_prefix(lf, task_id);
        buf_append(&out, &out_len, &out_cap, prefix, strlen(prefix));
        buf_append(&out, &out_len, &out_cap, "    | ", 6);
    }
    if (lf->timestamps)
        buf_append(&out, &out_len, &out_cap, line, TS_LEN + 1);
    buf_append(&out, &out_len, &out_cap, sp + 1, len - (size_t)(sp + 1 - line));
    http_stream_write(lf->req, out, out_len);
    free(out);
}

struct hist_line {
    const char *p;
    size_t len, seq;
};

static int cmp_hist(const void *a, const void *b)
{
    const struct hist_line *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n < TS_LEN ? n : TS_LEN);
    if (c != 0)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Once every node sent its past lines: all of them in time order. */
static void flush_history(struct logs_fanout *lf)
{
    struct hist_line *v = NULL;
    size_t count = 0, cap = 0;
    for (size_t i = 0; i < lf->hist_len;) {
        const char *nl = memchr(lf->hist + i, '\n', lf->hist_len - i);
        size_t n = nl ? (size_t)(nl - (lf->hist + i)) + 1 : lf->hist_len - i;
        if (count == cap)
            v = xrealloc(v, (cap = cap ? cap * 2 : 256) * sizeof(*v));
        v[count] = (struct hist_line){lf->hist + i, n, count};
        count++;
        i += n;
    }
    if (count > 0)
        qsort(v, count, sizeof(*v), cmp_hist);
    for (size_t k = 0; k < count; k++)
        emit_line(lf, v[k].p, v[k].len);
    free(v);
    free(lf->hist);
    lf->hist = NULL;
    lf->hist_len = lf->hist_cap = 0;
}

static void add_line(struct logs_fanout *lf, const char *line, size_t len)
{
    size_t n = lf->only_task ? strlen(lf->only_task) : 0;
    if (n && len > TS_LEN + 1 + n && line[TS_LEN] == ' ' && line[4] == '-' &&
        (memcmp(line + TS_LEN + 1, lf->only_task, n) != 0 || line[TS_LEN + 1 + n] != ' '))
        return; /* another task of the service (followed output) */
    if (lf->history_pending > 0)
        buf_append(&lf->hist, &lf->hist_len, &lf->hist_cap, line, len);
    else
        emit_line(lf, line, len);
}

/* ---- lifetime ---- */

static void fanout_unref(struct logs_fanout *lf)
{
    if (--lf->refs > 0)
        return;
    json_decref(lf->prefixes);
    free(lf->only_task);
    free(lf->hist);
    free(lf);
}

static void fanout_end(struct logs_fanout *lf)
{
    if (lf->req == NULL)
        return;
    flush_history(lf);
    lf->req->on_abort = NULL;
    http_stream_end(lf->req);
    lf->req = NULL;
    fanout_unref(lf);
}

static void up_free(struct logs_up *up)
{
    struct logs_fanout *lf = up->lf;
    for (struct logs_up **pp = &lf->ups; *pp; pp = &(*pp)->next)
        if (*pp == up) {
            *pp = up->next;
            break;
        }
    free(up->node_name);
    free(up->addr);
    free(up->body);
    free(up->partial);
    free(up);
    fanout_unref(lf);
}

static void up_history_done(struct logs_up *up)
{
    if (up->history_done)
        return;
    up->history_done = true;
    if (--up->lf->history_pending == 0)
        flush_history(up->lf);
}

/* The node's answer ended (or failed): its past lines are all there. */
static void up_finished(struct logs_up *up, const char *errmsg)
{
    struct logs_fanout *lf = up->lf;
    if (errmsg && lf->req) {
        char *line = xasprintf("error: cannot read the logs on node %s: %s\n", up->node_name,
                               errmsg);
        add_line(lf, line, strlen(line));
        free(line);
    }
    up_history_done(up);
    if (--lf->open == 0)
        fanout_end(lf);
    up_free(up);
}

static void up_chunk(void *arg, const char *data, size_t len)
{
    struct logs_up *up = arg;
    buf_append(&up->partial, &up->partial_len, &up->partial_cap, data, len);
    size_t used = 0;
    while (used < up->partial_len) {
        const char *line = up->partial + used;
        const char *nl = memchr(line, '\n', up->partial_len - used);
        if (nl == NULL)
            break;
        size_t n = (size_t)(nl - line) + 1;
        used += n;
        if (n == 1)
            up_history_done(up);
        else
            add_line(up->lf, line, n);
    }
    memmove(up->partial, up->partial + used, up->partial_len - used);
    up->partial_len -= used;
}

static void up_done(void *arg, int status, const char *body, size_t len, const char *errmsg)
{
    struct logs_up *up = arg;
    up->areq = NULL;
    if (status >= 0 && status / 100 != 2) {
        json_t *j = json_loadb(body, len, 0, NULL);
        const char *msg = json_string_value(json_object_get(j, "message"));
        char *text = xasprintf("HTTP %d %s", status, msg ? msg : "");
        up_finished(up, text);
        free(text);
        json_decref(j);
        return;
    }
    up_finished(up, status < 0 ? errmsg : NULL);
}

static void up_connected(void *arg, int fd, const char *errmsg)
{
    struct logs_up *up = arg;
    if (fd < 0) {
        up_finished(up, errmsg);
        return;
    }
    if (up->lf->req == NULL) { /* the client went away meanwhile */
        close(fd);
        up_finished(up, NULL);
        return;
    }
    up->areq = http_arequest_stream(up->lf->sh->loop, fd, "POST", "/v1/node/logs", up->body,
                                    strlen(up->body), up_chunk, up_done, up);
}

static void fanout_abort(struct http_req *req)
{
    struct logs_fanout *lf = req->data;
    lf->req = NULL;
    for (struct logs_up *up = lf->ups, *next; up; up = next) {
        next = up->next;
        if (up->areq) {
            http_arequest_cancel(up->areq);
            up->areq = NULL;
            up_free(up);
        }
    }
    fanout_unref(lf);
}

/* ---- the route ---- */

static void add_node(struct logs_fanout *lf, json_t *node, json_t *task_ids, const char *sid,
                     long tail, const char *since, bool follow)
{
    struct logs_up *up = xcalloc(1, sizeof(*up));
    up->lf = lf;
    const char *host = json_string_value(json_object_get(node, "hostname"));
    up->node_name = xstrdup(host ? host : json_string_value(json_object_get(node, "id")));
    const char *addr = json_string_value(json_object_get(node, "addr"));
    up->addr = addr && addr[0] ? xstrdup(addr) : NULL;
    json_t *body = json_pack("{s:s, s:O, s:I, s:b}", "service", sid, "tasks", task_ids, "tail",
                             (json_int_t)tail, "follow", follow);
    if (since[0])
        json_object_set_new(body, "since", json_string(since));
    up->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    up->next = lf->ups;
    lf->ups = up;
    lf->refs++;
    lf->open++;
    lf->history_pending++;
}

void service_logs_fanout(struct shoal *sh, struct http_req *req, json_t *svc,
                         const char *task_id, long tail, const char *since)
{
    bool follow = query_flag(req, "follow");
    struct logs_fanout *lf = xcalloc(1, sizeof(*lf));
    lf->sh = sh;
    lf->req = req;
    lf->refs = 1;
    lf->timestamps = query_flag(req, "timestamps");
    lf->no_task_ids = query_flag(req, "no_task_ids");
    lf->raw = query_flag(req, "raw");
    lf->no_trunc = query_flag(req, "no_trunc");
    lf->prefixes = json_object();
    lf->only_task = task_id ? xstrdup(task_id) : NULL;
    const char *sid = json_string_value(json_object_get(svc, "id"));
    json_t *tasks = store_list_where(sh->store, "tasks", "service_id", sid);
    json_t *nodes = store_list(sh->store, "nodes", NULL);
    size_t i, k;
    json_t *node, *t;
    json_array_foreach(nodes, i, node)
    {
        const char *nid = json_string_value(json_object_get(node, "id"));
        json_t *ids = json_array();
        json_array_foreach(tasks, k, t)
        {
            const char *tn = json_string_value(json_object_get(t, "node_id"));
            const char *tid = json_string_value(json_object_get(t, "id"));
            if (task_id && (tid == NULL || strcmp(tid, task_id) != 0))
                continue;
            if (tn && nid && strcmp(tn, nid) == 0)
                json_array_append(ids, json_object_get(t, "id"));
        }
        const char *status = json_string_value(json_object_get(node, "status"));
        bool down = status && strcmp(status, "down") == 0;
        if (json_array_size(ids) > 0 || (follow && !down && task_id == NULL))
            add_node(lf, node, ids, sid, tail, since, follow);
        json_decref(ids);
    }
    json_decref(nodes);
    json_decref(tasks);
    http_stream_start(req, 200, "text/plain; charset=utf-8");
    req->data = lf;
    req->on_abort = fanout_abort;
    if (lf->ups == NULL) {
        fanout_end(lf);
        return;
    }
    /* connect once the list is complete: a callback may end the answer */
    size_t count = (size_t)lf->open;
    struct logs_up **todo = xcalloc(count, sizeof(*todo));
    size_t n = 0;
    for (struct logs_up *up = lf->ups; up; up = up->next)
        todo[n++] = up;
    for (n = 0; n < count; n++) {
        if (todo[n]->addr)
            clusternet_connect(sh, todo[n]->addr, up_connected, todo[n]);
        else
            up_finished(todo[n], "the node has no address");
    }
    free(todo);
}
