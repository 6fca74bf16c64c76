#include "daemon/alerting.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/json_get.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/leader_timer.h"
#include "daemon/shoal.h"
#include "manager/alert.h"
#include "manager/dispatcher.h"
#include "manager/stats.h"
#include "store/store.h"

struct alerting {
    struct leader_timer timer; /* proposing: the last changes are not committed yet */
    json_t *pending;           /* alert_evaluate's memory: {key: since} */
};

/* ---- notifications (threadpool) ---- */

struct notification {
    uv_work_t work;
    char *type; /* "webhook" or "email" */
    char *to;
    char *body;       /* JSON for a webhook, the whole message for an e-mail */
    char *smtp_relay; /* e-mail: the relay URL and sender */
    char *smtp_from;
    size_t sent; /* e-mail: bytes of body read by curl */
    char error[CURL_ERROR_SIZE];
    bool ok;
};

static size_t discard(char *ptr, size_t size, size_t n, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * n;
}

static size_t read_message(char *buf, size_t size, size_t n, void *arg)
{
    struct notification *nt = arg;
    size_t left = strlen(nt->body) - nt->sent, want = size * n;
    size_t len = left < want ? left : want;
    memcpy(buf, nt->body + nt->sent, len);
    nt->sent += len;
    return len;
}

static CURL *easy_handle(struct notification *nt)
{
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)NOTIFY_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nt->error);
    return h;
}

static bool post_webhook(struct notification *nt)
{
    CURL *h = easy_handle(nt);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, nt->to);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, nt->body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && (status < 200 || status >= 300))
        snprintf(nt->error, sizeof(nt->error), "HTTP status %ld", status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return rc == CURLE_OK && status >= 200 && status < 300;
}

static bool send_email(struct notification *nt)
{
    CURL *h = easy_handle(nt);
    char *rcpt_addr = xasprintf("<%s>", nt->to), *from = xasprintf("<%s>", nt->smtp_from);
    struct curl_slist *rcpt = curl_slist_append(NULL, rcpt_addr);
    nt->sent = 0;
    curl_easy_setopt(h, CURLOPT_URL, nt->smtp_relay);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(h, CURLOPT_READDATA, nt);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(rcpt);
    free(rcpt_addr);
    free(from);
    curl_easy_cleanup(h);
    return rc == CURLE_OK;
}

/* On a threadpool thread: one attempt, and one retry. */
static void notify_work(uv_work_t *w)
{
    struct notification *nt = w->data;
    bool email = strcmp(nt->type, "email") == 0;
    for (int attempt = 0; attempt < 2 && !nt->ok; attempt++) {
        nt->error[0] = '\0';
        nt->ok = email ? send_email(nt) : post_webhook(nt);
    }
}

static void notification_free(struct notification *nt)
{
    free(nt->type);
    free(nt->to);
    free(nt->body);
    free(nt->smtp_relay);
    free(nt->smtp_from);
    free(nt);
}

static void notify_done(uv_work_t *w, int status)
{
    struct notification *nt = w->data;
    if (status == 0 && nt->ok)
        log_info("alert: %s to %s sent", nt->type, nt->to);
    else
        log_warn("alert: %s to %s failed: %s", nt->type, nt->to,
                 nt->error[0] ? nt->error : "cancelled");
    notification_free(nt);
}

/* The alert's message on one line (it goes in a header). */
static char *one_line(const char *s)
{
    char *out = xstrdup(s);
    for (char *p = out; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    return out;
}

/* The e-mail as the relay gets it (headers, blank line, text; CRLF). */
static char *email_message(const char *from, const char *to, const char *status, json_t *alert)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", gmtime_r(&now, &tm));
    char *message = one_line(jstr_or(alert, "message", ""));
    char *text =
        xasprintf("Date: %s\r\nFrom: <%s>\r\nTo: <%s>\r\nSubject: [shoal] %s: %s\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                  "Alert %s is %s: %s\r\n",
                  date, from, to, status, message, jstr_or(alert, "rule", ""), status, message);
    free(message);
    return text;
}

static void notify_one(struct shoal *sh, json_t *target, const char *status, json_t *alert)
{
    const char *type = jstr(target, "type"), *to = jstr(target, "to");
    if (type == NULL || to == NULL)
        return;
    struct notification *nt = xcalloc(1, sizeof(*nt));
    nt->type = xstrdup(type);
    nt->to = xstrdup(to);
    if (strcmp(type, "email") == 0) {
        if (sh->smtp_relay == NULL) {
            log_warn("alert: no e-mail to %s: daemon.json has no \"smtp-relay\"", to);
            notification_free(nt);
            return;
        }
        nt->smtp_relay = xstrdup(sh->smtp_relay);
        nt->smtp_from =
            sh->smtp_from ? xstrdup(sh->smtp_from) : xasprintf("shoal@%s", sh->hostname);
        nt->body = email_message(nt->smtp_from, to, status, alert);
    } else {
        json_t *payload = json_pack("{s:s, s:O}", "status", status, "alert", alert);
        nt->body = json_dumps(payload, JSON_COMPACT);
        json_decref(payload);
    }
    nt->work.data = nt;
    uv_queue_work(sh->loop, &nt->work, notify_work, notify_done);
}

static void notify_change(struct shoal *sh, json_t *rules, json_t *change)
{
    json_t *alert = json_object_get(change, "alert");
    const char *status = jstr_is(change, "action", "fire") ? "firing" : "resolved";
    size_t i, j;
    json_t *rule, *target;
    json_array_foreach(rules, i, rule)
    {
        if (!jstr_is(rule, "id", jstr_or(alert, "rule_id", "")))
            continue;
        json_array_foreach(json_object_get(rule, "notify"), j, target)
            notify_one(sh, target, status, alert);
    }
}

/* ---- evaluation (loop) ---- */

static json_t *latest_samples(struct shoal *sh, json_t *nodes)
{
    json_t *out = json_object();
    struct stats *st = dispatcher_stats(sh->dispatcher);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        json_t *s = stats_latest(st, jstr_or(n, "id", ""));
        if (s)
            json_object_set(out, jstr(n, "id"), s);
    }
    return out;
}

/* Ops deleting the oldest resolved alerts beyond ALERT_HISTORY_MAX, counting
 * `resolving` more about to be. */
static void trim_history(struct store *store, size_t resolving, json_t *ops)
{
    json_t *past = store_list_where(store, "alerts", "state", "resolved"); /* by id: by time */
    size_t n = json_array_size(past) + resolving;
    for (size_t i = 0; n > ALERT_HISTORY_MAX && i < json_array_size(past); i++, n--)
        json_array_append_new(ops, op_del("alerts", jstr(json_array_get(past, i), "id")));
    json_decref(past);
}

static void heat_ops(struct shoal *sh, json_t *nodes, json_t *samples, json_t *ops)
{
    json_t *changes = heat_changes(nodes, samples, sh->heat_threshold, sh->heat_hysteresis);
    size_t i;
    json_t *c;
    json_array_foreach(changes, i, c)
    {
        bool hot = jbool(c, "hot", false);
        log_info("node %s is %s (%.1f °C)", jstr(c, "id"),
                 hot ? "too hot: no new tasks" : "cool again",
                 json_number_value(json_object_get(c, "temp_c")));
        json_array_append_new(ops,
                              op_merge("nodes", jstr(c, "id"), json_pack("{s:b}", "hot", hot)));
    }
    json_decref(changes);
}

/* The tasks only task-flapping rules read (reading every task each tick
 * would cost with thousands): all of them, else an empty array. */
static json_t *tasks_for(struct store *store, json_t *rules)
{
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        if (jstr_is(r, "event", "task-flapping"))
            return store_list(store, "tasks", NULL);
    }
    return json_array();
}

static void evaluate(struct alerting *a)
{
    struct shoal *sh = a->timer.sh;
    struct store *store = sh->store;
    json_t *nodes = store_list(store, "nodes", NULL);
    json_t *rules = store_list(store, "alert_rules", NULL);
    struct alert_inputs in = {
        .rules = rules,
        .nodes = nodes,
        .samples = latest_samples(sh, nodes),
        .tasks = tasks_for(store, rules),
        .open = store_list_where(store, "alerts", "state", "open"),
        .now = now_ms(),
    };
    json_t *changes = alert_evaluate(&in, a->pending);
    json_t *ops = json_array();
    size_t i, resolving = 0;
    json_t *c;
    json_array_foreach(changes, i, c)
    {
        json_t *alert = json_object_get(c, "alert");
        resolving += jstr_is(c, "action", "resolve");
        log_info("alert %s: %s", jstr_is(c, "action", "fire") ? "firing" : "resolved",
                 jstr_or(alert, "message", ""));
        json_array_append_new(ops, op_put("alerts", json_incref(alert)));
        notify_change(sh, in.rules, c);
    }
    if (resolving)
        trim_history(store, resolving, ops);
    heat_ops(sh, nodes, in.samples, ops);
    if (json_array_size(ops) > 0) {
        leader_timer_propose(&a->timer, ops);
    } else {
        json_decref(ops);
    }
    json_decref(changes);
    json_decref(in.rules);
    json_decref(in.samples);
    json_decref(in.tasks);
    json_decref(in.open);
    json_decref(nodes);
}

static void tick(struct leader_timer *t, bool leader)
{
    struct alerting *a = t->data;
    if (!leader) {
        json_object_clear(a->pending); /* a leader again later starts afresh */
        return;
    }
    if (!t->proposing) /* changes not committed yet are not sent twice */
        evaluate(a);
}

static void alerting_free(struct leader_timer *t)
{
    struct alerting *a = t->data;
    json_decref(a->pending);
    free(a);
}

struct alerting *alerting_start(struct shoal *sh)
{
    struct alerting *a = xcalloc(1, sizeof(*a));
    a->pending = json_object();
    a->timer.data = a;
    leader_timer_start(&a->timer, sh, ALERTING_EVERY_MS, "alerts: committing failed", tick,
                       alerting_free);
    return a;
}

void alerting_stop(struct alerting *a)
{
    if (a)
        leader_timer_stop(&a->timer);
}
