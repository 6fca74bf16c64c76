#include "manager/stats.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "manager/metrics_history.h"

/* A history point: few numbers, so an hour of a node is ~14 KiB. */
struct point {
    int64_t at;
    double cpu_percent;
    int64_t mem_used;
    double temp_c; /* NAN: unknown */
    double load1;
};

struct node_stats {
    char node_id[64];
    json_t *latest;
    int64_t last_point_mono; /* when the last history point was kept */
    struct point ring[STATS_HISTORY_POINTS];
    size_t head;  /* next slot to write */
    size_t count;
    struct metrics_window window; /* since the last stats_take_windows */
};

struct stats {
    struct node_stats **nodes;
    size_t n;
};

struct stats *stats_new(void)
{
    return xcalloc(1, sizeof(struct stats));
}

void stats_free(struct stats *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n; i++) {
        json_decref(st->nodes[i]->latest);
        free(st->nodes[i]);
    }
    free(st->nodes);
    free(st);
}

static struct node_stats *find(struct stats *st, const char *node_id)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->nodes[i]->node_id, node_id) == 0)
            return st->nodes[i];
    return NULL;
}

static struct node_stats *find_or_add(struct stats *st, const char *node_id)
{
    struct node_stats *ns = find(st, node_id);
    if (ns)
        return ns;
    ns = xcalloc(1, sizeof(*ns));
    snprintf(ns->node_id, sizeof(ns->node_id), "%s", node_id);
    st->nodes = xrealloc(st->nodes, (st->n + 1) * sizeof(*st->nodes));
    st->nodes[st->n++] = ns;
    return ns;
}

static double number(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void add_point(struct node_stats *ns, json_t *sample)
{
    double mem = number(sample, "mem_used");
    double cpu = number(sample, "cpu_percent");
    double load = number(sample, "load1");
    ns->ring[ns->head] = (struct point){
        .at = json_integer_value(json_object_get(sample, "at")),
        .cpu_percent = isnan(cpu) ? 0 : cpu,
        /* a node's number: out of int64 range (or NaN) is no value */
        .mem_used = mem >= 0 && mem < 0x1p63 ? (int64_t)mem : 0,
        .temp_c = number(sample, "temp_c"),
        .load1 = isnan(load) ? 0 : load,
    };
    ns->head = (ns->head + 1) % STATS_HISTORY_POINTS;
    if (ns->count < STATS_HISTORY_POINTS)
        ns->count++;
}

void stats_record(struct stats *st, const char *node_id, json_t *sample, int64_t mono_now)
{
    if (!json_is_object(sample) || !json_is_integer(json_object_get(sample, "at")))
        return;
    struct node_stats *ns = find_or_add(st, node_id);
    if (ns->latest && json_equal(json_object_get(ns->latest, "at"), json_object_get(sample, "at")))
        return;
    json_decref(ns->latest);
    ns->latest = json_deep_copy(sample);
    metrics_window_add(&ns->window, sample);
    if (ns->count == 0 || mono_now - ns->last_point_mono >= STATS_POINT_EVERY_MS) {
        add_point(ns, sample);
        ns->last_point_mono = mono_now;
    }
}

json_t *stats_latest(struct stats *st, const char *node_id)
{
    struct node_stats *ns = find(st, node_id);
    return ns ? ns->latest : NULL;
}

static json_t *point_json(const struct point *p)
{
    return json_pack("{s:I, s:f, s:I, s:o, s:f}", "at", (json_int_t)p->at, "cpu_percent",
                     p->cpu_percent, "mem_used", (json_int_t)p->mem_used, "temp_c",
                     isnan(p->temp_c) ? json_null() : json_real(p->temp_c), "load1", p->load1);
}

json_t *stats_history(struct stats *st, const char *node_id)
{
    json_t *out = json_array();
    struct node_stats *ns = find(st, node_id);
    if (ns == NULL)
        return out;
    size_t oldest = (ns->head + STATS_HISTORY_POINTS - ns->count) % STATS_HISTORY_POINTS;
    for (size_t i = 0; i < ns->count; i++)
        json_array_append_new(out, point_json(&ns->ring[(oldest + i) % STATS_HISTORY_POINTS]));
    return out;
}

json_t *stats_take_windows(struct stats *st)
{
    json_t *out = json_object();
    for (size_t i = 0; i < st->n; i++) {
        struct node_stats *ns = st->nodes[i];
        json_t *values = metrics_window_values(&ns->window);
        if (values)
            json_object_set_new(out, ns->node_id, values);
        memset(&ns->window, 0, sizeof(ns->window));
    }
    return out;
}
