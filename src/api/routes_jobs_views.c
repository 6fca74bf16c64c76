/* What the dashboard's Gantt and Resources views (and OAR's resources
 * route) read: jobs laid on a time line with the backfilling plan of the
 * waiting ones, and every core of every node with the job holding it. All
 * read only: the plan is computed (manager/jobs.h jobs_plan), never stored. */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "base/json_get.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "manager/jobs.h"
#include "store/store.h"

/* The default window: an hour back, three ahead. */
#define GANTT_BEFORE_MS (3600 * 1000LL)
#define GANTT_AFTER_MS (3 * 3600 * 1000LL)

static int64_t iget(json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

static int node_cores(json_t *node)
{
    int n = (int)iget(json_object_get(node, "resources"), "cpus");
    return n > 0 ? n : 1;
}

/* OAR's resource state of a node, as oarnodes says it (cli_oar.c): Dead
 * when down, Absent when drained, paused or not ready, else Alive. */
static const char *oar_state(json_t *node)
{
    if (jstr_is(node, "status", "down"))
        return "Dead";
    if (!jstr_is(node, "status", "ready") || !jstr_is(node, "availability", "active"))
        return "Absent";
    return "Alive";
}

/* A core as Monika shows it: absent (its node is down), suspected (its
 * node's status is not known yet), best-effort or job (held), free, or
 * absent again when its node takes no new job (drained, paused). */
static const char *core_status(json_t *node, json_t *holder)
{
    if (jstr_is(node, "status", "down"))
        return "absent";
    if (!jstr_is(node, "status", "ready"))
        return "suspected";
    if (holder)
        return jstr_is(holder, "queue", "besteffort") ? "besteffort" : "job";
    return jstr_is(node, "availability", "active") ? "free" : "absent";
}

/* ---- every core ---- */

/* holder[c]: the active job holding core c of `node` (borrowed), or NULL. A
 * job's cpuset names its cores; a job from before cpusets takes the lowest
 * cores left. Caller frees the array. */
static json_t **core_holders(json_t *node, json_t *jobs, int cores)
{
    json_t **holder = xcalloc((size_t)cores + 1, sizeof(*holder));
    size_t i, k, n;
    json_t *job, *a, *core;
    for (int named = 1; named >= 0; named--) {
        json_array_foreach(jobs, i, job)
        {
            if (!job_state_active(jstr(job, "state")))
                continue;
            json_array_foreach(json_object_get(job, "assigned"), k, a)
            {
                json_t *cpuset = json_object_get(a, "cpuset");
                if (!jstr_is(a, "node_id", jstr(node, "id")) || (cpuset != NULL) != named)
                    continue;
                json_array_foreach(cpuset, n, core)
                {
                    json_int_t c = json_integer_value(core);
                    if (c >= 0 && c < cores)
                        holder[c] = job;
                }
                int64_t left = named ? 0 : iget(a, "cores");
                for (int c = 0; left > 0 && c < cores; c++) {
                    if (holder[c] == NULL) {
                        holder[c] = job;
                        left--;
                    }
                }
            }
        }
    }
    return holder;
}

/* The cores of one node, numbered from *next (resource ids), with the active
 * job holding each (its cpuset). */
static void node_core_items(json_t *out, json_t *node, json_t *jobs, int *next)
{
    int cores = node_cores(node), c = 0;
    json_t **holder = core_holders(node, jobs, cores);
    for (c = 0; c < cores; c++) {
        json_t *by = holder[c];
        bool be = by && jstr_is(by, "queue", "besteffort");
        json_t *item = json_pack("{s:i, s:s, s:s, s:i, s:s, s:s, s:s, s:b}", "resource_id", *next,
                                 "node_id", jstr(node, "id"), "network_address",
                                 jstr(node, "hostname"), "cpuset", c, "state", oar_state(node), "status",
                                 core_status(node, by), "availability",
                                 jstr(node, "availability") ? jstr(node, "availability") : "",
                                 "besteffort", be);
        json_object_set_new(item, "job_id", by ? json_string(jstr(by, "id")) : json_null());
        json_array_append_new(out, item);
        (*next)++;
    }
    free(holder);
}

/* Every core of every node, nodes by hostname (new array). */
static json_t *core_table(struct shoal *sh)
{
    json_t *nodes = store_list(sh->store, "nodes", "hostname");
    json_t *jobs = store_list(sh->store, "jobs", "CAST(id AS INTEGER)");
    json_t *out = json_array();
    int next = 1;
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node) node_core_items(out, node, jobs, &next);
    json_decref(jobs);
    json_decref(nodes);
    return out;
}

void get_resources(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    respond_json(req, 200, json_pack("{s:I, s:o}", "now", (json_int_t)now_ms(), "items",
                                     core_table(sh)));
}

/* OAR's GET /oarapi/resources.json: {total, offset, api_timestamp, items:
 * [{id, resource_id, network_address, host, state, core, cpuset, jobs}], links};
 * core and cpuset: the core's index on its node, as oarnodes numbers them. */
void get_oar_resources(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    json_t *cores = core_table(sh), *items = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(cores, i, c)
    {
        json_int_t id = (json_int_t)iget(c, "resource_id");
        json_t *held = json_array();
        if (jstr(c, "job_id"))
            json_array_append_new(held, json_integer(atoll(jstr(c, "job_id"))));
        json_array_append_new(items, json_pack("{s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:s, s:o}",
                                               "id", id, "resource_id", id, "network_address",
                                               jstr(c, "network_address"), "host",
                                               jstr(c, "network_address"), "state",
                                               jstr(c, "state"), "core", (json_int_t)iget(c, "cpuset"), "cpuset",
                                               (json_int_t)iget(c, "cpuset"), "type", "default",
                                               "jobs", held));
    }
    json_decref(cores);
    respond_json(req, 200,
                 json_pack("{s:I, s:i, s:I, s:o, s:[{s:s, s:s}]}", "total",
                           (json_int_t)json_array_size(items), "offset", 0, "api_timestamp",
                           (json_int_t)(now_ms() / 1000), "items", items, "links", "href",
                           "/oarapi/resources.json", "rel", "self"));
}

/* ---- the time line ---- */

static const char *hostname_of(json_t *nodes, const char *id)
{
    json_t *n = jarray_find(nodes, "id", id);
    return n ? jstr(n, "hostname") : "?";
}

/* A bar's copy of the job's fields. */
static json_t *bar_of(json_t *job, int64_t walltime)
{
    static const char *const copied[] = {"id", "name", "state", "queue", "user", "types",
                                         "request", "command", "message", "submitted_at",
                                         "reservation_at", "exit_code", "array_id", NULL};
    json_t *bar = json_object();
    for (int i = 0; copied[i]; i++)
        if (json_object_get(job, copied[i]))
            json_object_set(bar, copied[i], json_object_get(job, copied[i]));
    json_object_set_new(bar, "walltime_ms", json_integer(walltime));
    json_object_set_new(bar, "besteffort", json_boolean(jstr_is(job, "queue", "besteffort")));
    return bar;
}

/* A waiting (or held) job at its place in the plan: start, stop and nodes,
 * or start and stop null when the plan does not place it (held, a
 * dependency, its nodes missing). */
static json_t *planned_bar(json_t *job, int64_t walltime, json_t *plan, json_t *nodes)
{
    json_t *bar = bar_of(job, walltime);
    json_t *p = json_object_get(plan, jstr(job, "id"));
    json_object_set_new(bar, "planned", json_true());
    if (p == NULL) {
        json_object_set_new(bar, "start", json_null());
        json_object_set_new(bar, "stop", json_null());
        return bar;
    }
    int64_t start = iget(p, "start");
    int64_t cores = iget(json_object_get(job, "resources"), "cores");
    json_t *assigned = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(p, "node_ids"), i, id)
        json_array_append_new(assigned, json_pack("{s:s, s:s, s:I}", "node_id",
                                                  json_string_value(id), "hostname",
                                                  hostname_of(nodes, json_string_value(id)),
                                                  "cores", (json_int_t)cores));
    json_object_set_new(bar, "start", json_integer(start));
    json_object_set_new(bar, "stop", json_integer(start + walltime));
    json_object_set_new(bar, "assigned", assigned);
    return bar;
}

/* The job as a bar (new object), or NULL when it is not on [from, to): an
 * ended job outside it, or one that ended before it ran. Running jobs end
 * at their walltime (now when past it: being killed). */
static json_t *gantt_bar(json_t *job, json_t *plan, json_t *nodes, int64_t now, int64_t from,
                         int64_t to)
{
    const char *state = jstr(job, "state");
    int64_t walltime = iget(json_object_get(job, "resources"), "walltime_s") * 1000;
    if (jstr_is(job, "state", "Waiting") || jstr_is(job, "state", "Hold"))
        return planned_bar(job, walltime, plan, nodes);
    int64_t start = iget(job, "started_at") ? iget(job, "started_at") : iget(job, "scheduled_at");
    if (start == 0)
        return NULL;
    bool ended = job_state_final(state);
    int64_t stop = ended ? iget(job, "stopped_at") : start + walltime;
    if (!ended && stop < now)
        stop = now;
    if (ended && (stop < from || start >= to))
        return NULL;
    json_t *bar = bar_of(job, walltime);
    json_object_set_new(bar, "planned", json_false());
    json_object_set_new(bar, "start", json_integer(start));
    json_object_set_new(bar, "stop", json_integer(stop));
    json_object_set(bar, "assigned", json_object_get(job, "assigned"));
    return bar;
}

/* GET /v1/jobs/gantt?from=MS&to=MS: {now, from, to, nodes: [{id, hostname,
 * cores, state, availability}], jobs: [bars]}: every job not ended, and the
 * ended ones that ran in the window; waiting jobs at their planned start. */
void get_jobs_gantt(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    int64_t now = now_ms(), from, to;
    if (!query_ms(req, "from", now - GANTT_BEFORE_MS, &from) ||
        !query_ms(req, "to", now + GANTT_AFTER_MS, &to))
        return;
    if (to <= from) {
        respond_err(req, SERR_INVALID, "to must be after from");
        return;
    }
    json_t *nodes = store_list(sh->store, "nodes", "hostname");
    json_t *jobs = store_list(sh->store, "jobs", "CAST(id AS INTEGER)");
    json_t *plan = jobs_plan(sh->store, now);
    json_t *rows = json_array(), *bars = json_array();
    size_t i;
    json_t *n, *job;
    json_array_foreach(nodes, i, n)
        json_array_append_new(rows, json_pack("{s:s, s:s, s:i, s:s, s:s}", "id", jstr(n, "id"),
                                              "hostname", jstr(n, "hostname"), "cores",
                                              node_cores(n), "state", oar_state(n),
                                              "availability", jstr(n, "availability")
                                                                  ? jstr(n, "availability") : ""));
    json_array_foreach(jobs, i, job)
    {
        json_t *bar = gantt_bar(job, plan, nodes, now, from, to);
        if (bar)
            json_array_append_new(bars, bar);
    }
    json_decref(plan);
    json_decref(jobs);
    json_decref(nodes);
    respond_json(req, 200, json_pack("{s:I, s:I, s:I, s:o, s:o}", "now", (json_int_t)now, "from",
                                     (json_int_t)from, "to", (json_int_t)to, "nodes", rows,
                                     "jobs", bars));
}
