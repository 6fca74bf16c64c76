/* GET /v1/nodes/stats, GET /v1/nodes/{id}/metrics and GET /metrics
 * (Prometheus text format 0.0.4). All come from the leader, which holds
 * every node's samples (src/manager/stats.c); a follower forwards them
 * there. A daemon outside a swarm answers /v1/nodes/stats and /metrics with
 * its own node only. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "daemon/node_metrics.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "manager/dispatcher.h"
#include "manager/metrics_history.h"
#include "manager/stats.h"
#include "raft/cluster.h"
#include "store/store.h"

#define PROMETHEUS_TYPE "text/plain; version=0.0.4"
/* exact for byte counts, and 0.1 stays 0.1 (not 0.10000000000000001) */
#define VALUE_FMT "%.15g"

/* ---- /v1/nodes/stats ---- */

/* The sample's tasks with their names from the store, for people. */
static json_t *named_tasks(struct shoal *sh, json_t *latest)
{
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(latest, "tasks"), i, t)
    {
        json_t *v = json_deep_copy(t);
        json_t *task = store_get(sh->store, "tasks", json_string_value(json_object_get(t, "id")));
        static const char *const keys[] = {"name", "service_id", "service_name", NULL};
        for (int k = 0; task && keys[k]; k++)
            if (json_object_get(task, keys[k]))
                json_object_set(v, keys[k], json_object_get(task, keys[k]));
        json_decref(task);
        json_array_append_new(out, v);
    }
    return out;
}

static json_t *node_entry(struct shoal *sh, struct stats *st, json_t *node)
{
    const char *id = json_string_value(json_object_get(node, "id"));
    json_t *latest = stats_latest(st, id);
    return json_pack("{s:s, s:O, s:O, s:O, s:O, s:o, s:o}", "node_id", id, "hostname",
                     json_object_get(node, "hostname"), "status", json_object_get(node, "status"),
                     "role", json_object_get(node, "role"), "latest",
                     latest ? latest : json_null(), "history", stats_history(st, id), "tasks",
                     named_tasks(sh, latest));
}

static json_t *cluster_node_stats(struct shoal *sh)
{
    struct stats *st = dispatcher_stats(sh->dispatcher);
    json_t *nodes = store_list(sh->store, "nodes", "hostname");
    json_t *out = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) json_array_append_new(out, node_entry(sh, st, n));
    json_decref(nodes);
    return out;
}

/* Outside a swarm: this node alone, without history (only leaders keep it). */
static json_t *lone_node_stats(struct shoal *sh)
{
    json_t *latest = node_metrics_latest(sh->metrics);
    json_t *tasks = json_object_get(latest, "tasks");
    return json_pack("[{s:s, s:s, s:s, s:s, s:O, s:[], s:O}]", "node_id", sh->node_id,
                     "hostname", sh->hostname, "status", "ready", "role", "", "latest",
                     latest ? latest : json_null(), "history", "tasks",
                     tasks ? tasks : json_array());
}

/* NULL when the request was answered otherwise (refused or forwarded). */
static json_t *node_stats_or_forward(struct shoal *sh, struct http_req *req,
                                     const char *answer_type)
{
    if (sh->role[0] == '\0')
        return lone_node_stats(sh);
    if (!require_swarm(sh, req))
        return NULL;
    if (!cluster_is_leader(sh->cluster) || sh->dispatcher == NULL) {
        forward_to_leader(sh, req, answer_type);
        return NULL;
    }
    return cluster_node_stats(sh);
}

void get_node_stats(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *out = node_stats_or_forward(sh, req, "application/json");
    if (out)
        respond_json(req, 200, out);
}

/* ---- /v1/nodes/{id}/metrics ---- */

/* The in-memory points from `since` on (new). */
static json_t *recent_points(struct stats *st, const char *node_id, long long since)
{
    json_t *all = stats_history(st, node_id), *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(all, i, p)
    {
        if (json_integer_value(json_object_get(p, "at")) >= since)
            json_array_append(out, p);
    }
    json_decref(all);
    return out;
}

static json_t *node_metrics_view(struct shoal *sh, json_t *node, long long since, long long step)
{
    const char *id = json_string_value(json_object_get(node, "id"));
    json_t *rows = store_ring_member(sh->store, METRICS_HISTORY_TABLE, since, id);
    json_t *history = metrics_history_points(rows, step);
    json_decref(rows);
    return json_pack("{s:s, s:O, s:o, s:o}", "node_id", id, "hostname",
                     json_object_get(node, "hostname"), "recent",
                     recent_points(dispatcher_stats(sh->dispatcher), id, since), "history",
                     history);
}

void get_node_metrics(struct shoal *sh, struct http_req *req, char **args)
{
    int64_t since, step;
    if (!require_swarm(sh, req) || !query_ms(req, "since", 0, &since) ||
        !query_ms(req, "step", 0, &step))
        return;
    if (!cluster_is_leader(sh->cluster) || sh->dispatcher == NULL) {
        forward_to_leader(sh, req, "application/json");
        return;
    }
    json_t *node = find_node(sh, req, args[0]);
    if (node == NULL)
        return;
    respond_json(req, 200, node_metrics_view(sh, node, since, step));
    json_decref(node);
}

/* ---- /metrics ---- */

/* A label value with \, " and newlines escaped, as the format wants. */
static void put_label(FILE *f, const char *name, const char *value, bool first)
{
    fprintf(f, "%s%s=\"", first ? "" : ",", name);
    for (const char *p = value ? value : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void family(FILE *f, const char *name, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void node_sample(FILE *f, const char *metric, json_t *entry, double value)
{
    fprintf(f, "%s{", metric);
    put_label(f, "node", json_string_value(json_object_get(entry, "node_id")), true);
    put_label(f, "hostname", json_string_value(json_object_get(entry, "hostname")), false);
    fprintf(f, "} " VALUE_FMT "\n", value);
}

static bool node_ready(json_t *entry)
{
    const char *status = json_string_value(json_object_get(entry, "status"));
    return status && strcmp(status, "ready") == 0;
}

/* One gauge per node from a field of its latest sample; down nodes and
 * unknown values (no sample yet, no thermal sensor) are left out rather
 * than exported stale or as 0. */
static void node_family(FILE *f, json_t *entries, const char *metric, const char *help,
                        const char *field)
{
    family(f, metric, help);
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        json_t *v = json_object_get(json_object_get(e, "latest"), field);
        if (node_ready(e) && json_is_number(v))
            node_sample(f, metric, e, json_number_value(v));
    }
}

static void node_families(FILE *f, json_t *entries, const char *leader_id)
{
    family(f, "shoal_node_up", "1 when the node is ready, 0 when it is down.");
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) node_sample(f, "shoal_node_up", e, node_ready(e));
    node_family(f, entries, "shoal_node_cpu_percent",
                "CPU busy over the last sample, percent of the whole node.", "cpu_percent");
    node_family(f, entries, "shoal_node_cpus", "Number of CPUs.", "cpus");
    node_family(f, entries, "shoal_node_memory_used_bytes",
                "Memory in use (MemTotal - MemAvailable).", "mem_used");
    node_family(f, entries, "shoal_node_memory_total_bytes", "Memory of the node.", "mem_total");
    node_family(f, entries, "shoal_node_disk_used_bytes",
                "Used bytes of the file system holding the state directory.", "disk_used");
    node_family(f, entries, "shoal_node_disk_total_bytes",
                "Size of the file system holding the state directory.", "disk_total");
    node_family(f, entries, "shoal_node_load1", "1-minute load average.", "load1");
    node_family(f, entries, "shoal_node_temperature_celsius",
                "Hottest thermal zone (only on nodes with sensors).", "temp_c");
    family(f, "shoal_raft_leader", "1 on the manager that leads the Raft cluster, else 0.");
    json_array_foreach(entries, i, e)
    {
        const char *role = json_string_value(json_object_get(e, "role"));
        if (role && strcmp(role, "manager") == 0)
            node_sample(f, "shoal_raft_leader", e,
                        strcmp(json_string_value(json_object_get(e, "node_id")), leader_id) == 0);
    }
}

static void task_sample(FILE *f, const char *metric, json_t *entry, json_t *task, double value)
{
    fprintf(f, "%s{", metric);
    put_label(f, "task", json_string_value(json_object_get(task, "id")), true);
    put_label(f, "name", json_string_value(json_object_get(task, "name")), false);
    put_label(f, "service", json_string_value(json_object_get(task, "service_name")), false);
    put_label(f, "node", json_string_value(json_object_get(entry, "node_id")), false);
    fprintf(f, "} " VALUE_FMT "\n", value);
}

/* The running tasks of ready nodes, from their latest samples. */
static void task_family(FILE *f, json_t *entries, const char *metric, const char *help,
                        const char *field)
{
    family(f, metric, help);
    size_t i, j;
    json_t *e, *t;
    json_array_foreach(entries, i, e)
    {
        if (!node_ready(e))
            continue;
        json_array_foreach(json_object_get(e, "tasks"), j, t)
            task_sample(f, metric, e, t, json_number_value(json_object_get(t, field)));
    }
}

static void service_families(FILE *f, struct shoal *sh)
{
    json_t *services = store_list(sh->store, "services", "name");
    json_t *views = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(services, i, s) json_array_append_new(views, service_view(sh, s));
    static const char *const fields[] = {"replicas_running", "replicas_desired"};
    static const char *const helps[] = {"Tasks of the service running now.",
                                        "Tasks the service should run."};
    for (int k = 0; k < 2; k++) {
        char metric[64];
        snprintf(metric, sizeof(metric), "shoal_service_%s", fields[k]);
        family(f, metric, helps[k]);
        json_array_foreach(views, i, s)
        {
            fprintf(f, "%s{", metric);
            put_label(f, "service", json_string_value(json_object_get(s, "name")), true);
            fprintf(f, "} %" JSON_INTEGER_FORMAT "\n",
                    json_integer_value(json_object_get(s, fields[k])));
        }
    }
    json_decref(views);
    json_decref(services);
}

static char *prometheus_text(struct shoal *sh, json_t *entries, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    bool in_swarm = sh->cluster != NULL;
    node_families(f, entries, in_swarm ? sh->node_id : "");
    task_family(f, entries, "shoal_task_cpu_percent",
                "CPU used by the task's container, percent of one CPU (docker stats).",
                "cpu_percent");
    task_family(f, entries, "shoal_task_memory_bytes", "Memory of the task's cgroup.",
                "mem_bytes");
    if (in_swarm)
        service_families(f, sh);
    fclose(f);
    return text;
}

void get_prometheus(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *entries = node_stats_or_forward(sh, req, PROMETHEUS_TYPE);
    if (entries == NULL)
        return;
    size_t len = 0;
    char *text = prometheus_text(sh, entries, &len);
    http_respond(req, 200, PROMETHEUS_TYPE, text, len);
    free(text);
    json_decref(entries);
}
