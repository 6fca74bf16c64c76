#include "manager/scheduler.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ctype.h>

#include "base/json_get.h"
#include "base/platform.h"
#include "base/util.h"
#include "model/node.h"
#include "model/task.h"

struct constraint {
    char key[128];   /* "role", "hostname", "id", "labels.KEY", "platform.arch", "platform.os",
                      * "engine_labels.KEY" */
    bool equal;      /* == or != */
    char value[256];
};

static void trim_copy(char *out, size_t outlen, const char *start, size_t len)
{
    while (len > 0 && (*start == ' ' || *start == '\t')) {
        start++;
        len--;
    }
    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
        len--;
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, start, len);
    out[len] = '\0';
}

#define CONSTRAINT_KEYS                                                                        \
    "node.role, node.hostname, node.id, node.platform.arch, node.platform.os, node.labels.KEY " \
    "or engine.labels.KEY"

static int constraint_value_check(const char *expr, const struct constraint *c, struct serr *err)
{
    if (c->value[0] == '\0' || strstr(c->value, "==") || strstr(c->value, "!="))
        return serr_set(err, SERR_INVALID, "constraint '%s': missing or invalid value", expr);
    return 0;
}

static int constraint_parse(const char *expr, struct constraint *c, struct serr *err)
{
    const char *op = strstr(expr, "==");
    const char *ne = strstr(expr, "!=");
    if (op == NULL || (ne && ne < op))
        op = ne;
    if (op == NULL)
        return serr_set(err, SERR_INVALID, "constraint expected one operator from ==, !=: '%s'",
                        expr);
    c->equal = op[0] == '=';
    char lhs[160];
    trim_copy(lhs, sizeof(lhs), expr, (size_t)(op - expr));
    trim_copy(c->value, sizeof(c->value), op + 2, strlen(op + 2));
    if (strncmp(lhs, "engine.labels.", 14) == 0 && lhs[14] != '\0') {
        snprintf(c->key, sizeof(c->key), "engine_labels.%s", lhs + 14);
        return constraint_value_check(expr, c, err);
    }
    if (strncmp(lhs, "node.", 5) != 0)
        return serr_set(err, SERR_INVALID,
                        "constraint '%s': key must be " CONSTRAINT_KEYS, expr);
    snprintf(c->key, sizeof(c->key), "%s", lhs + 5);
    bool known = strcmp(c->key, "role") == 0 || strcmp(c->key, "hostname") == 0 ||
                 strcmp(c->key, "id") == 0 || strcmp(c->key, "platform.arch") == 0 ||
                 strcmp(c->key, "platform.os") == 0 ||
                 (strncmp(c->key, "labels.", 7) == 0 && c->key[7] != '\0');
    if (!known)
        return serr_set(err, SERR_INVALID,
                        "constraint '%s': unknown key '%s' (use " CONSTRAINT_KEYS ")", expr, lhs);
    if (constraint_value_check(expr, c, err) < 0)
        return -1;
    if (strcmp(c->key, "role") == 0 && strcmp(c->value, "manager") != 0 &&
        strcmp(c->value, "worker") != 0)
        return serr_set(err, SERR_INVALID, "constraint '%s': node.role is manager or worker",
                        expr);
    return 0;
}

int constraint_validate(const char *expr, struct serr *err)
{
    struct constraint c;
    return constraint_parse(expr, &c, err);
}

static const char *node_attr(json_t *node, const char *key)
{
    if (strncmp(key, "labels.", 7) == 0)
        return jstr(node_labels(node), key + 7);
    if (strncmp(key, "engine_labels.", 14) == 0) /* daemon.json "labels" of the node */
        return jstr(json_object_get(node, "engine_labels"), key + 14);
    return jstr(node, key);
}

/* `wanted` as uname -m or Docker names it ("x86_64" or "amd64", "armv7l" or
 * "arm"), against the node's OCI platform. A name with a variant ("armv7l")
 * also wants that variant; plain "arm" is any 32-bit ARM. */
static bool arch_matches(json_t *platform, const char *wanted)
{
    char lower[64];
    size_t i;
    for (i = 0; wanted[i] && i + 1 < sizeof(lower); i++)
        lower[i] = (char)tolower((unsigned char)wanted[i]);
    lower[i] = '\0';
    struct platform want = platform_from_machine(lower);
    const char *arch = jstr(platform, "architecture");
    if (arch == NULL || strcmp(arch, want.architecture) != 0)
        return false;
    if (want.variant[0] == '\0' || strcmp(lower, want.architecture) == 0)
        return true;
    const char *variant = jstr(platform, "variant");
    return variant != NULL && strcmp(variant, want.variant) == 0;
}

static bool constraint_holds(const struct constraint *c, json_t *node)
{
    json_t *platform = json_object_get(node, "platform");
    if (strcmp(c->key, "platform.arch") == 0)
        return arch_matches(platform, c->value);
    if (strcmp(c->key, "platform.os") == 0) {
        const char *os = jstr(platform, "os");
        return os != NULL && strcasecmp(os, c->value) == 0;
    }
    const char *have = node_attr(node, c->key);
    return have != NULL && strcmp(have, c->value) == 0;
}

bool constraint_match(const char *expr, json_t *node)
{
    struct constraint c;
    if (constraint_parse(expr, &c, NULL) < 0)
        return false;
    bool same = constraint_holds(&c, node);
    return c.equal ? same : !same;
}

/* Swarm's ReadyFilter: status ready and availability active. */
static bool node_available(json_t *node)
{
    const char *status = node_status(node);
    const char *avail = node_availability(node);
    return status && strcmp(status, "ready") == 0 && avail && strcmp(avail, "active") == 0;
}

static bool constraints_match(json_t *node, json_t *constraints)
{
    size_t i;
    json_t *c;
    json_array_foreach(constraints, i, c)
    {
        if (!constraint_match(json_string_value(c), node))
            return false;
    }
    return true;
}

/* Heat (manager/alert.h): the leader flags a node too hot for new tasks. */
static bool node_hot(json_t *node)
{
    return jbool(node, "hot", false);
}

bool node_eligible(json_t *node, json_t *constraints)
{
    return node_available(node) && !node_hot(node) && constraints_match(node, constraints);
}

static bool task_live(json_t *t)
{
    const char *desired = task_desired_state(t);
    return desired && strcmp(desired, "running") == 0 && !task_finished(t);
}

/* What the live tasks on one node of the candidates hold. */
struct node_load {
    int same;                   /* live tasks of the service being placed */
    int total;                  /* all live tasks */
    double reserved_cpus;       /* their "reserved_cpus" (--reserve-cpu) */
    json_int_t reserved_memory; /* their "reserved_memory" (--reserve-memory) */
};

/* One service's live tasks per node, by index in sched_load.nodes. */
struct same_counts {
    int *per;
    size_t n;
};

struct sched_load {
    json_t *node_at;  /* {node id: index in `nodes`} */
    json_t *service_at; /* {service id: index in `same`} */
    struct same_counts *same; /* live tasks of each service on each node */
    size_t nservices;
    struct node_load *nodes; /* .same unused: `same` has it per service */
    size_t n;
    /* The index in `nodes` of each node of the candidates' array `indexed`
     * (a reference held: no other array gets its address while it is the
     * one indexed; SIZE_MAX: no id): made once, not a lookup per node at
     * every placement. */
    json_t *indexed;
    size_t *index;
    size_t nindex;
    /* Of each node of `indexed`: whether Swarm's ReadyFilter lets it by and
     * whether it is hot (node_ready), read once as it is indexed, not two
     * look-ups per node at every placement. */
    unsigned char *ready;
};

/* What `ready` holds for a node. */
enum { NODE_UNAVAILABLE, NODE_READY, NODE_HOT };

static size_t node_index(struct sched_load *l, const char *node_id)
{
    json_t *at = json_object_get(l->node_at, node_id);
    if (at)
        return (size_t)json_integer_value(at);
    l->nodes = xrealloc(l->nodes, (l->n + 1) * sizeof(*l->nodes));
    l->nodes[l->n] = (struct node_load){0};
    json_object_set_new(l->node_at, node_id, json_integer((json_int_t)l->n));
    return l->n++;
}

/* The service's counts, NULL when it has none and `add` is false. */
static struct same_counts *same_of_service(struct sched_load *l, const char *service_id, bool add)
{
    json_t *at = json_object_get(l->service_at, service_id);
    if (at)
        return &l->same[json_integer_value(at)];
    if (!add)
        return NULL;
    l->same = xrealloc(l->same, (l->nservices + 1) * sizeof(*l->same));
    l->same[l->nservices] = (struct same_counts){0};
    json_object_set_new(l->service_at, service_id, json_integer((json_int_t)l->nservices));
    return &l->same[l->nservices++];
}

void sched_load_count(struct sched_load *l, json_t *task, int sign)
{
    const char *nid = task_node_id(task);
    if (nid == NULL || !task_live(task))
        return;
    size_t at = node_index(l, nid);
    struct node_load *nl = &l->nodes[at];
    nl->total += sign;
    nl->reserved_cpus += sign * json_number_value(json_object_get(task, "reserved_cpus"));
    nl->reserved_memory += sign * jint(task, "reserved_memory", 0);
    const char *sid = task_service_id(task);
    if (sid == NULL)
        return;
    struct same_counts *sc = same_of_service(l, sid, true);
    if (at >= sc->n) {
        sc->per = xrealloc(sc->per, l->n * sizeof(*sc->per));
        memset(sc->per + sc->n, 0, (l->n - sc->n) * sizeof(*sc->per));
        sc->n = l->n;
    }
    sc->per[at] += sign;
}

struct sched_load *sched_load_new(json_t *tasks)
{
    struct sched_load *l = xcalloc(1, sizeof(*l));
    l->node_at = json_object();
    l->service_at = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) sched_load_count(l, t, 1);
    return l;
}

void sched_load_free(struct sched_load *l)
{
    if (l == NULL)
        return;
    json_decref(l->node_at);
    json_decref(l->service_at);
    for (size_t i = 0; i < l->nservices; i++)
        free(l->same[i].per);
    free(l->same);
    free(l->nodes);
    free(l->index);
    free(l->ready);
    json_decref(l->indexed);
    free(l);
}

/* l->index for the candidates `nodes` (every node gets an entry, so that
 * the index stays right as placements add to them). */
static void index_candidates(json_t *nodes, struct sched_load *l)
{
    if (l->indexed == nodes && l->nindex == json_array_size(nodes))
        return;
    l->nindex = json_array_size(nodes);
    l->index = xrealloc(l->index, (l->nindex + 1) * sizeof(*l->index));
    l->ready = xrealloc(l->ready, l->nindex + 1);
    json_decref(l->indexed);
    l->indexed = json_incref(nodes);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *id = node_id(n);
        l->index[i] = id ? node_index(l, id) : SIZE_MAX;
        l->ready[i] = !node_available(n) ? NODE_UNAVAILABLE : node_hot(n) ? NODE_HOT : NODE_READY;
    }
}

/* The load of each node of `nodes` (by index) for a task of `service_id`:
 * no lookup per node, whatever the number of tasks. */
static void load_per_node(json_t *nodes, struct sched_load *l, const char *service_id,
                          struct node_load *load)
{
    index_candidates(nodes, l);
    struct same_counts *sc = service_id ? same_of_service(l, service_id, false) : NULL;
    for (size_t i = 0; i < l->nindex; i++) {
        size_t at = l->index[i];
        load[i] = at != SIZE_MAX ? l->nodes[at] : (struct node_load){0};
        load[i].same = sc && at < sc->n ? sc->per[at] : 0;
    }
}

int node_cpus(json_t *node)
{
    json_int_t n = jint(node_resources(node), "cpus", 0);
    return n > 0 ? (int)n : 1;
}

json_t *scheduler_reserved_by_node(json_t *tasks)
{
    json_t *out = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        double cpus = json_number_value(json_object_get(t, "reserved_cpus"));
        const char *node = task_node_id(t);
        if (cpus > 0 && node && task_live(t))
            json_object_set_new(out, node,
                                json_real(json_number_value(json_object_get(out, node)) + cpus));
    }
    return out;
}

/* Whether `node` has pl->reserve_cpus cores that no reservation (`load`)
 * nor job holds. */
static bool cores_free(json_t *node, const struct node_load *load, const struct placement *pl)
{
    if (pl->reserve_cpus <= 0)
        return true;
    double held = load->reserved_cpus +
                  (double)json_integer_value(json_object_get(pl->job_cores, node_id(node)));
    return node_cpus(node) - held >= pl->reserve_cpus - 1e-9;
}

/* Whether `node`'s memory less what live tasks there reserve (`load`)
 * leaves pl->reserve_memory bytes. */
static bool memory_free(json_t *node, const struct node_load *load, const struct placement *pl)
{
    if (pl->reserve_memory <= 0)
        return true;
    return jint(node_resources(node), "memory", 0) - load->reserved_memory >= pl->reserve_memory;
}

/* Appends one stage's explanation, "; "-separated. */
__attribute__((format(printf, 3, 4))) static void explain_stage(char *buf, size_t size,
                                                                const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len > 0 && len + 2 < size) {
        memcpy(buf + len, "; ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

void scheduler_explain(const struct sched_rejects *r, char *buf, size_t size)
{
    char stages[256] = "";
    if (r->unavailable > 0)
        explain_stage(stages, sizeof(stages), "%d node%s not available for new tasks",
                      r->unavailable, r->unavailable == 1 ? "" : "s");
    if (r->hot > 0)
        explain_stage(stages, sizeof(stages), "%d node%s too hot", r->hot,
                      r->hot == 1 ? "" : "s");
    if (r->constraints > 0)
        explain_stage(stages, sizeof(stages), "scheduling constraints not satisfied on %d node%s",
                      r->constraints, r->constraints == 1 ? "" : "s");
    if (r->max_per_node > 0)
        explain_stage(stages, sizeof(stages), "max replicas per node limit exceeded on %d node%s",
                      r->max_per_node, r->max_per_node == 1 ? "" : "s");
    if (r->resources > 0)
        explain_stage(stages, sizeof(stages), "insufficient resources on %d node%s (cores "
                      "reserved by services or held by batch jobs)", r->resources,
                      r->resources == 1 ? "" : "s");
    if (r->memory > 0)
        explain_stage(stages, sizeof(stages), "insufficient memory on %d node%s (memory "
                      "reserved by services)", r->memory, r->memory == 1 ? "" : "s");
    if (stages[0] == '\0')
        snprintf(buf, size, "no suitable node (no node in the swarm)");
    else
        snprintf(buf, size, "no suitable node (%s)", stages);
}

int placement_spread_validate(const char *descriptor, struct serr *err)
{
    if (descriptor == NULL || strncmp(descriptor, "node.labels.", 12) != 0 ||
        descriptor[12] == '\0')
        return serr_set(err, SERR_INVALID,
                        "invalid spread preference '%s' (use node.labels.KEY)",
                        descriptor ? descriptor : "");
    return 0;
}

/* Live tasks of the service (`load`: per node of `nodes`) on nodes whose
 * label `key` ("rack") has the same value as on `node`. */
static int count_in_group(json_t *nodes, const struct node_load *load, json_t *node,
                          const char *key)
{
    const char *want = jstr(node_labels(node), key);
    int count = 0;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *have = jstr(node_labels(n), key);
        if (strcmp(have ? have : "", want ? want : "") == 0)
            count += load[i].same;
    }
    return count;
}

#define MAX_PREFERENCES 8

/* A candidate's score: the group counts of each preference, then its own
 * same-service and total counts; lower is better, compared in order. */
struct score {
    int v[MAX_PREFERENCES + 2];
    int n;
};

static void score_node(json_t *nodes, const struct node_load *load, size_t at,
                       json_t *preferences, struct score *sc)
{
    sc->n = 0;
    size_t i;
    json_t *pref;
    json_array_foreach(preferences, i, pref)
    {
        const char *spread = jstr(pref, "spread");
        if (sc->n < MAX_PREFERENCES && spread && strncmp(spread, "node.labels.", 12) == 0)
            sc->v[sc->n++] = count_in_group(nodes, load, json_array_get(nodes, at), spread + 12);
    }
    sc->v[sc->n++] = load[at].same;
    sc->v[sc->n++] = load[at].total;
}

static bool score_better(const struct score *a, const struct score *b)
{
    for (int i = 0; i < a->n; i++)
        if (a->v[i] != b->v[i])
            return a->v[i] < b->v[i];
    return false;
}

json_t *scheduler_pick_placement(json_t *nodes, json_t *tasks, const char *service_id,
                                 const struct placement *pl, struct serr *err)
{
    struct sched_load *load = sched_load_new(tasks);
    json_t *best = scheduler_pick_loaded(nodes, load, service_id, pl, err);
    sched_load_free(load);
    return best;
}

json_t *scheduler_pick_loaded(json_t *nodes, struct sched_load *tally, const char *service_id,
                              const struct placement *pl, struct serr *err)
{
    json_t *best = NULL;
    struct score best_score = {0}, sc;
    struct sched_rejects rejects = {0};
    size_t nn = json_array_size(nodes);
    struct node_load *load = xcalloc(nn + 1, sizeof(*load));
    load_per_node(nodes, tally, service_id, load);
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node)
    {
        /* filter stages in Swarm's order; a node counts at the first it fails */
        if (tally->ready[i] == NODE_UNAVAILABLE) {
            rejects.unavailable++;
            continue;
        }
        if (tally->ready[i] == NODE_HOT) {
            rejects.hot++;
            continue;
        }
        if (!constraints_match(node, pl->constraints)) {
            rejects.constraints++;
            continue;
        }
        if (pl->max_per_node > 0 && load[i].same >= pl->max_per_node) {
            rejects.max_per_node++;
            continue;
        }
        if (!cores_free(node, &load[i], pl)) {
            rejects.resources++;
            continue;
        }
        if (!memory_free(node, &load[i], pl)) {
            rejects.memory++;
            continue;
        }
        score_node(nodes, load, i, pl->preferences, &sc);
        if (best == NULL || score_better(&sc, &best_score)) {
            best = node;
            best_score = sc;
        }
    }
    free(load);
    if (best == NULL) {
        char why[300];
        scheduler_explain(&rejects, why, sizeof(why));
        serr_set(err, SERR_UNAVAILABLE, "%s", why);
    }
    return best;
}

json_t *scheduler_pick(json_t *nodes, json_t *tasks, const char *service_id,
                       json_t *constraints, struct serr *err)
{
    struct placement pl = {.constraints = constraints};
    return scheduler_pick_placement(nodes, tasks, service_id, &pl, err);
}
