#include "manager/alert.h"

#include <stdio.h>
#include <string.h>

#include "base/json_get.h"
#include "base/util.h"
#include "model/node.h"
#include "model/task.h"

/* ---- rules ---- */

static const char *const metrics[] = {"cpu", "memory", "disk", "load", "temperature", NULL};
static const char *const events[] = {"node-down", "task-flapping", "backup-failing", NULL};

static bool one_of(const char *s, const char *const *list)
{
    for (int i = 0; s && list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static bool printable_word(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    return *s != '\0';
}

/* "http[s]://HOST..." with a host. */
static bool webhook_url_ok(const char *url)
{
    const char *rest = strncmp(url, "http://", 7) == 0    ? url + 7
                       : strncmp(url, "https://", 8) == 0 ? url + 8
                                                          : NULL;
    return rest && printable_word(url) && rest[0] != '\0' && rest[0] != '/';
}

static bool email_ok(const char *addr)
{
    const char *at = strchr(addr, '@');
    return printable_word(addr) && at && at != addr && at[1] != '\0' &&
           strchr(at + 1, '@') == NULL && strpbrk(addr, "<>,;\"") == NULL;
}

/* "webhook=URL" | "email=ADDR" -> {"type","to"} */
static json_t *notify_target(const char *text, struct serr *err)
{
    const char *eq = text ? strchr(text, '=') : NULL;
    if (eq == NULL) {
        serr_set(err, SERR_INVALID, "notify '%s': expected webhook=URL or email=ADDRESS",
                 text ? text : "");
        return NULL;
    }
    const char *to = eq + 1;
    if ((size_t)(eq - text) == 7 && strncmp(text, "webhook", 7) == 0) {
        if (!webhook_url_ok(to)) {
            serr_set(err, SERR_INVALID, "notify: bad webhook URL '%s' (http:// or https://HOST...)",
                     to);
            return NULL;
        }
        return json_pack("{s:s, s:s}", "type", "webhook", "to", to);
    }
    if ((size_t)(eq - text) == 5 && strncmp(text, "email", 5) == 0) {
        if (!email_ok(to)) {
            serr_set(err, SERR_INVALID, "notify: bad e-mail address '%s'", to);
            return NULL;
        }
        return json_pack("{s:s, s:s}", "type", "email", "to", to);
    }
    serr_set(err, SERR_INVALID, "notify '%s': expected webhook=URL or email=ADDRESS", text);
    return NULL;
}

static int add_notify(json_t *rule, json_t *list, struct serr *err)
{
    json_t *out = json_array();
    json_object_set_new(rule, "notify", out);
    if (list == NULL)
        return 0;
    if (!json_is_array(list))
        return serr_set(err, SERR_INVALID,
                        "notify: expected a list of webhook=URL or email=ADDRESS");
    size_t i;
    json_t *n;
    json_array_foreach(list, i, n)
    {
        json_t *target = notify_target(json_string_value(n), err);
        if (target == NULL)
            return -1;
        json_array_append_new(out, target);
    }
    return 0;
}

/* An optional duration field ("2m") into rule[key] (ms). */
static int add_duration(json_t *rule, json_t *body, const char *field, const char *key, int64_t def,
                        struct serr *err)
{
    json_t *v = json_object_get(body, field);
    int64_t ms = def;
    if (v && !json_is_string(v))
        return serr_set(err, SERR_INVALID, "%s: expected a duration such as 30s or 2m", field);
    if (v && parse_duration(json_string_value(v), &ms, err) < 0)
        return -1;
    json_object_set_new(rule, key, json_integer(ms));
    return 0;
}

static int add_metric(json_t *rule, json_t *body, const char *metric, struct serr *err)
{
    if (!one_of(metric, metrics))
        return serr_set(err, SERR_INVALID,
                        "unknown metric '%s' (cpu, memory, disk, load or temperature)", metric);
    json_t *above = json_object_get(body, "above");
    if (!json_is_number(above))
        return serr_set(err, SERR_INVALID, "metric %s: --above X (a number) is required", metric);
    json_object_set_new(rule, "metric", json_string(metric));
    json_object_set_new(rule, "above", json_real(json_number_value(above)));
    return add_duration(rule, body, "for", "for_ms", 0, err);
}

static int add_event(json_t *rule, json_t *body, const char *event, struct serr *err)
{
    if (!one_of(event, events))
        return serr_set(err, SERR_INVALID, "unknown event '%s' (node-down, task-flapping or backup-failing)",
                        event);
    json_object_set_new(rule, "event", json_string(event));
    if (strcmp(event, "task-flapping") != 0)
        return 0;
    json_int_t restarts = jint(body, "restarts", 3);
    if (restarts < 1 || restarts > 1000)
        return serr_set(err, SERR_INVALID, "restarts: expected 1 to 1000");
    json_object_set_new(rule, "restarts", json_integer(restarts));
    return add_duration(rule, body, "window", "window_ms", 5 * 60 * 1000, err);
}

json_t *alert_rule_new(json_t *body, const char *id, int64_t now, struct serr *err)
{
    const char *name = jstr(body, "name");
    const char *metric = jstr(body, "metric"), *event = jstr(body, "event");
    const char *node = jstr_or(body, "node", "all");
    if (name == NULL || !printable_word(name) || strlen(name) > ALERT_NAME_MAX) {
        serr_set(err, SERR_INVALID, "name: required, at most %d characters, no spaces",
                 ALERT_NAME_MAX);
        return NULL;
    }
    if ((metric == NULL) == (event == NULL)) {
        serr_set(err, SERR_INVALID, "one of metric or event is required");
        return NULL;
    }
    if (!printable_word(node)) {
        serr_set(err, SERR_INVALID, "node: a hostname, a node id or all");
        return NULL;
    }
    json_t *rule = json_pack("{s:s, s:s, s:s, s:I}", "id", id, "name", name, "node", node,
                             "created_at", (json_int_t)now);
    int rc = metric ? add_metric(rule, body, metric, err) : add_event(rule, body, event, err);
    if (rc == 0)
        rc = add_notify(rule, json_object_get(body, "notify"), err);
    if (rc < 0) {
        json_decref(rule);
        return NULL;
    }
    return rule;
}

/* ---- evaluation ---- */

/* A condition found to hold now, about one subject. */
struct finding {
    char key[200];       /* rule_id/node_id/subject: one alert at a time per key */
    const char *node_id; /* borrowed, may be NULL */
    const char *hostname;
    char subject[128]; /* "cpu", "node-down", "task web.1" */
    double value;
    double threshold;
    char message[300];
};

static bool rule_covers(json_t *rule, json_t *node)
{
    const char *want = jstr_or(rule, "node", "all");
    return strcmp(want, "all") == 0 || jstr_is(node, "hostname", want) || jstr_is(node, "id", want);
}

/* The metric's value in a sample; false when unknown (no sensor, no sample). */
static bool metric_value(json_t *sample, const char *metric, double *out)
{
    if (sample == NULL)
        return false;
    json_t *v = NULL, *total = NULL;
    if (strcmp(metric, "cpu") == 0)
        v = json_object_get(sample, "cpu_percent");
    else if (strcmp(metric, "load") == 0)
        v = json_object_get(sample, "load1");
    else if (strcmp(metric, "temperature") == 0)
        v = json_object_get(sample, "temp_c");
    else if (strcmp(metric, "memory") == 0) {
        v = json_object_get(sample, "mem_used");
        total = json_object_get(sample, "mem_total");
    } else if (strcmp(metric, "disk") == 0) {
        v = json_object_get(sample, "disk_used");
        total = json_object_get(sample, "disk_total");
    }
    if (!json_is_number(v))
        return false;
    if (total == NULL) {
        *out = json_number_value(v);
        return true;
    }
    if (!json_is_number(total) || json_number_value(total) <= 0)
        return false;
    *out = 100.0 * json_number_value(v) / json_number_value(total); /* percent */
    return true;
}

typedef void (*finding_fn)(struct finding *f, void *arg);

static void finding_init(struct finding *f, json_t *rule, json_t *node, const char *subject)
{
    memset(f, 0, sizeof(*f));
    f->node_id = node_id(node);
    f->hostname = node_hostname(node);
    snprintf(f->subject, sizeof(f->subject), "%s", subject);
    snprintf(f->key, sizeof(f->key), "%s/%s/%s", jstr_or(rule, "id", ""),
             f->node_id ? f->node_id : "", subject);
}

static void find_metric(const struct alert_inputs *in, json_t *rule, finding_fn fn, void *arg)
{
    const char *metric = jstr(rule, "metric");
    double above = json_number_value(json_object_get(rule, "above"));
    size_t i;
    json_t *node;
    json_array_foreach(in->nodes, i, node)
    {
        double v;
        if (!rule_covers(rule, node) || !node_status_is(node, "ready") ||
            !metric_value(json_object_get(in->samples, jstr_or(node, "id", "")), metric, &v) ||
            v <= above)
            continue;
        struct finding f;
        finding_init(&f, rule, node, metric);
        f.value = v;
        f.threshold = above;
        snprintf(f.message, sizeof(f.message), "%s %.1f above %g on %s", metric, v, above,
                 jstr_or(node, "hostname", "?"));
        fn(&f, arg);
    }
}

static void find_node_down(const struct alert_inputs *in, json_t *rule, finding_fn fn, void *arg)
{
    size_t i;
    json_t *node;
    json_array_foreach(in->nodes, i, node)
    {
        if (!rule_covers(rule, node) || !node_status_is(node, "down"))
            continue;
        struct finding f;
        finding_init(&f, rule, node, "node-down");
        snprintf(f.message, sizeof(f.message), "node %s is down%s%s",
                 jstr_or(node, "hostname", "?"), jstr(node, "message") ? ": " : "",
                 jstr_or(node, "message", ""));
        fn(&f, arg);
    }
}

/* The tasks of one slot created in the window: each restart is a new task. */
static void find_flapping(const struct alert_inputs *in, json_t *rule, finding_fn fn, void *arg)
{
    int64_t since = in->now - jint(rule, "window_ms", 0);
    json_int_t restarts = jint(rule, "restarts", 3);
    json_t *counts = json_object(); /* "service_id.slot" -> {"n","task"} */
    size_t i;
    json_t *t;
    json_array_foreach(in->tasks, i, t)
    {
        json_t *node = jarray_find(in->nodes, "id", task_node_id(t));
        if (task_created_at(t) < since || (node && !rule_covers(rule, node)) ||
            (!node && strcmp(jstr_or(rule, "node", "all"), "all") != 0))
            continue;
        char slot[160];
        snprintf(slot, sizeof(slot), "%s.%s", jstr_or(t, "service_id", "?"),
                 json_is_integer(task_slot(t)) ? "" : jstr_or(t, "node_id", ""));
        if (json_is_integer(task_slot(t)))
            snprintf(slot + strlen(slot), sizeof(slot) - strlen(slot), "%" JSON_INTEGER_FORMAT,
                     jint(t, "slot", 0));
        json_t *c = json_object_get(counts, slot);
        if (c == NULL)
            json_object_set_new(counts, slot, c = json_pack("{s:i, s:O}", "n", 0, "task", t));
        json_object_set_new(c, "n", json_integer(jint(c, "n", 0) + 1));
        if (task_created_at(t) >= jint(json_object_get(c, "task"), "created_at", 0))
            json_object_set(c, "task", t);
    }
    const char *slot;
    json_t *c;
    json_object_foreach(counts, slot, c)
    {
        json_int_t n = jint(c, "n", 0) - 1; /* the first start is no restart */
        if (n < restarts)
            continue;
        json_t *latest = json_object_get(c, "task");
        struct finding f;
        char subject[128];
        snprintf(subject, sizeof(subject), "task %s", jstr_or(latest, "name", slot));
        finding_init(&f, rule, jarray_find(in->nodes, "id", jstr(latest, "node_id")), subject);
        f.value = (double)n;
        f.threshold = (double)restarts;
        snprintf(f.message, sizeof(f.message),
                 "task %s restarted %" JSON_INTEGER_FORMAT " times in %" JSON_INTEGER_FORMAT " s",
                 jstr_or(latest, "name", slot), n, jint(rule, "window_ms", 0) / 1000);
        fn(&f, arg);
    }
    json_decref(counts);
}

/* A scheduled volume backup that failed, as the node holding the volume
 * reports it in its samples, until one succeeds. */
static void find_backup_failing(const struct alert_inputs *in, json_t *rule, finding_fn fn,
                                void *arg)
{
    size_t i, j;
    json_t *node, *failure;
    json_array_foreach(in->nodes, i, node)
    {
        json_t *sample = json_object_get(in->samples, jstr_or(node, "id", ""));
        if (!rule_covers(rule, node))
            continue;
        json_array_foreach(json_object_get(sample, "backup_failures"), j, failure)
        {
            char subject[128];
            snprintf(subject, sizeof(subject), "backup %s", jstr_or(failure, "volume", "?"));
            struct finding f;
            finding_init(&f, rule, node, subject);
            snprintf(f.message, sizeof(f.message), "volume %s: scheduled backup failed on %s: %s",
                     jstr_or(failure, "volume", "?"), jstr_or(node, "hostname", "?"),
                     jstr_or(failure, "error", "?"));
            fn(&f, arg);
        }
    }
}

struct eval {
    const struct alert_inputs *in;
    json_t *rule;
    json_t *pending;
    json_t *holding; /* keys whose condition holds now */
    json_t *changes;
};

static json_t *open_alert(json_t *open, const char *key)
{
    size_t i;
    json_t *a;
    json_array_foreach(open, i, a)
    {
        if (jstr_is(a, "key", key))
            return a;
    }
    return NULL;
}

/* FNV-1a: a short stable tag of a key for alert ids. */
static uint32_t key_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static json_t *alert_record(struct eval *e, const struct finding *f, int64_t since)
{
    char id[64];
    snprintf(id, sizeof(id), "%013lld-%.12s-%08x", (long long)since, jstr_or(e->rule, "id", ""),
             (unsigned)key_hash(f->key));
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:f, s:f, s:s, s:I, s:s}", "id", id,
                     "key", f->key, "rule_id", jstr_or(e->rule, "id", ""), "rule",
                     jstr_or(e->rule, "name", ""), "node_id", f->node_id, "hostname", f->hostname,
                     "subject", f->subject, "value", f->value, "threshold", f->threshold, "state",
                     "open", "since", (json_int_t)since, "message", f->message);
}

static void on_finding(struct finding *f, void *arg)
{
    struct eval *e = arg;
    json_object_set_new(e->holding, f->key, json_true());
    json_t *p = json_object_get(e->pending, f->key);
    if (p == NULL)
        json_object_set_new(e->pending, f->key, p = json_integer(e->in->now));
    int64_t since = json_integer_value(p);
    if (e->in->now - since < jint(e->rule, "for_ms", 0) || open_alert(e->in->open, f->key))
        return;
    json_array_append_new(
        e->changes, json_pack("{s:s, s:o}", "action", "fire", "alert", alert_record(e, f, since)));
}

static void evaluate_rule(struct eval *e)
{
    const char *event = jstr(e->rule, "event");
    if (jstr(e->rule, "metric"))
        find_metric(e->in, e->rule, on_finding, e);
    else if (event && strcmp(event, "node-down") == 0)
        find_node_down(e->in, e->rule, on_finding, e);
    else if (event && strcmp(event, "task-flapping") == 0)
        find_flapping(e->in, e->rule, on_finding, e);
    else if (event && strcmp(event, "backup-failing") == 0)
        find_backup_failing(e->in, e->rule, on_finding, e);
}

/* Pending keys and open alerts whose condition no longer holds. */
static void settle(struct eval *e)
{
    void *tmp;
    const char *key;
    json_t *v;
    json_object_foreach_safe(e->pending, tmp, key, v)
    {
        if (!json_object_get(e->holding, key))
            json_object_del(e->pending, key);
    }
    size_t i;
    json_t *a;
    json_array_foreach(e->in->open, i, a)
    {
        if (json_object_get(e->holding, jstr_or(a, "key", "")))
            continue;
        json_t *done = json_deep_copy(a);
        json_object_set_new(done, "state", json_string("resolved"));
        json_object_set_new(done, "resolved_at", json_integer(e->in->now));
        json_array_append_new(e->changes,
                              json_pack("{s:s, s:o}", "action", "resolve", "alert", done));
    }
}

json_t *alert_evaluate(const struct alert_inputs *in, json_t *pending)
{
    struct eval e = {
        .in = in, .pending = pending, .holding = json_object(), .changes = json_array()};
    size_t i;
    json_array_foreach(in->rules, i, e.rule) evaluate_rule(&e);
    settle(&e);
    json_decref(e.holding);
    return e.changes;
}

/* ---- heat ---- */

json_t *heat_changes(json_t *nodes, json_t *samples, double threshold, double hysteresis)
{
    json_t *out = json_array();
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node)
    {
        const char *id = jstr_or(node, "id", "");
        bool hot = jbool(node, "hot", false);
        double temp = 0;
        bool known = metric_value(json_object_get(samples, id), "temperature", &temp);
        bool want = hot;
        if (threshold <= 0 || !known)
            want = false;
        else if (!hot && temp >= threshold)
            want = true;
        else if (hot && temp < threshold - hysteresis)
            want = false;
        if (want != hot)
            json_array_append_new(out, json_pack("{s:s, s:b, s:o}", "id", id, "hot", want, "temp_c",
                                                 known ? json_real(temp) : json_null()));
    }
    return out;
}
