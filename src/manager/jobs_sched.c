#include "manager/jobs_sched.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* ---- resource requests ---- */

static int parse_count(const char *key, const char *val, int max, int *out, struct serr *err)
{
    char *end = NULL;
    long n = isdigit((unsigned char)val[0]) ? strtol(val, &end, 10) : -1;
    if (end == NULL || *end != '\0' || n < 1 || n > max)
        return serr_set(err, SERR_INVALID, "invalid resource request: %s=%s (want a number from "
                        "1 to %d)", key, val, max);
    *out = (int)n;
    return 0;
}

/* H, H:M or H:M:S. */
static int parse_walltime(const char *val, int64_t *out, struct serr *err)
{
    int64_t part[3] = {0, 0, 0};
    int nparts = 0;
    const char *p = val;
    while (nparts < 3) {
        if (!isdigit((unsigned char)*p))
            break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end - p > 7)
            break;
        part[nparts++] = v;
        p = end;
        if (*p != ':')
            break;
        p++;
    }
    if (nparts == 0 || *p != '\0' || (nparts > 1 && (part[1] > 59 || (nparts == 3 && part[2] > 59))))
        return serr_set(err, SERR_INVALID, "invalid walltime '%s' (want hours, H:M or H:M:S)", val);
    int64_t s = part[0] * 3600 + part[1] * 60 + part[2];
    if (s <= 0)
        return serr_set(err, SERR_INVALID, "walltime must be above zero");
    *out = s;
    return 0;
}

static int parse_item(char *item, struct job_res *r, struct serr *err)
{
    char *eq = strchr(item, '=');
    if (eq == NULL || eq == item || eq[1] == '\0')
        return serr_set(err, SERR_INVALID, "invalid resource request: '%s' (want KEY=VALUE)", item);
    *eq = '\0';
    const char *key = item, *val = eq + 1;
    if (strcmp(key, "nodes") == 0 || strcmp(key, "host") == 0 || strcmp(key, "network_address") == 0)
        return parse_count(key, val, JOB_MAX_NODES, &r->nodes, err);
    if (strcmp(key, "core") == 0 || strcmp(key, "cpu") == 0 || strcmp(key, "resource_id") == 0)
        return parse_count(key, val, 4096, &r->cores, err);
    if (strcmp(key, "walltime") == 0)
        return parse_walltime(val, &r->walltime_s, err);
    return serr_set(err, SERR_INVALID, "invalid resource request: unknown resource '%s' (want "
                    "nodes, core or walltime)", key);
}

int job_res_parse(const char *text, struct job_res *out, struct serr *err)
{
    struct job_res r = {1, 1, JOB_DEFAULT_WALLTIME_S};
    if (text && strlen(text) > 512)
        return serr_set(err, SERR_INVALID, "invalid resource request: too long");
    char buf[520];
    snprintf(buf, sizeof(buf), "%s", text ? text : "");
    char *p = buf;
    if (*p == '/')
        p++;
    int rc = 0;
    bool seen_walltime = false;
    while (rc == 0 && *p) {
        size_t n = strcspn(p, "/,");
        char sep = p[n];
        p[n] = '\0';
        if (n == 0)
            return serr_set(err, SERR_INVALID, "invalid resource request: empty part in '%s'",
                            text);
        if (strncmp(p, "walltime=", 9) == 0) {
            if (seen_walltime)
                return serr_set(err, SERR_INVALID, "invalid resource request: walltime twice");
            seen_walltime = true;
        } else if (seen_walltime) {
            return serr_set(err, SERR_INVALID, "invalid resource request: walltime must come last");
        }
        rc = parse_item(p, &r, err);
        p += n + (sep ? 1 : 0);
        if (sep && *p == '\0')
            return serr_set(err, SERR_INVALID, "invalid resource request: trailing '%c'", sep);
    }
    if (rc == 0)
        *out = r;
    return rc;
}

void job_res_format(const struct job_res *r, char *buf, size_t size)
{
    snprintf(buf, size, "/nodes=%d/core=%d,walltime=%lld:%02lld:%02lld", r->nodes, r->cores,
             (long long)(r->walltime_s / 3600), (long long)(r->walltime_s / 60 % 60),
             (long long)(r->walltime_s % 60));
}

/* ---- backfilling ---- */

/* One node's timeline as a step function: from at[k] (sorted) until the
 * next breakpoint, used[k] of its cores are held (none before at[0]). Kept
 * as allocations are added, so that a candidate start costs a binary search
 * and a few steps rather than a walk of every allocation. */
struct steps {
    int64_t *at;
    int *used;
    int n, cap;
};

/* The backfilling's state: each node's steps, and the ends of the
 * allocations (sorted, each once): the candidate starts of a job. */
struct timeline {
    struct steps *node;
    int nnodes;
    int64_t *ends;
    int nends, cap;
};

/* The index of the first of the n sorted times `v` at or after `at` (n if none). */
static int first_from(const int64_t *v, int n, int64_t at)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (v[mid] < at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The index of the breakpoint at `at` in s, made if missing. */
static int steps_point(struct steps *s, int64_t at)
{
    int lo = first_from(s->at, s->n, at);
    if (lo < s->n && s->at[lo] == at)
        return lo;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->at = xrealloc(s->at, (size_t)s->cap * sizeof(*s->at));
        s->used = xrealloc(s->used, (size_t)s->cap * sizeof(*s->used));
    }
    memmove(s->at + lo + 1, s->at + lo, (size_t)(s->n - lo) * sizeof(*s->at));
    memmove(s->used + lo + 1, s->used + lo, (size_t)(s->n - lo) * sizeof(*s->used));
    s->at[lo] = at;
    s->used[lo] = lo > 0 ? s->used[lo - 1] : 0;
    s->n++;
    return lo;
}

/* Each end once: plan_one tries a start once (the nodes of a job, and the
 * jobs started together, end together). */
static void add_end(struct timeline *t, int64_t end)
{
    int k = first_from(t->ends, t->nends, end);
    if (k < t->nends && t->ends[k] == end)
        return;
    if (t->nends == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->ends = xrealloc(t->ends, (size_t)t->cap * sizeof(*t->ends));
    }
    memmove(t->ends + k + 1, t->ends + k, (size_t)(t->nends - k) * sizeof(*t->ends));
    t->ends[k] = end;
    t->nends++;
}

static void timeline_add(struct timeline *t, struct sched_alloc a)
{
    add_end(t, a.end);
    if (a.start >= a.end || a.node < 0 || a.node >= t->nnodes)
        return; /* holds no core at any moment */
    struct steps *s = &t->node[a.node];
    int from = steps_point(s, a.start), to = steps_point(s, a.end);
    for (int k = from; k < to; k++)
        s->used[k] += a.cores;
}

static void timeline_free(struct timeline *t)
{
    for (int i = 0; i < t->nnodes; i++) {
        free(t->node[i].at);
        free(t->node[i].used);
    }
    free(t->node);
    free(t->ends);
}

/* Most cores of a node in use at any moment of [start, end), or a number
 * above `limit` as soon as one is seen. */
static int peak_use(const struct steps *s, int64_t start, int64_t end, int limit)
{
    int lo = 0, hi = s->n;
    while (lo < hi) { /* the first breakpoint after start */
        int mid = lo + (hi - lo) / 2;
        if (s->at[mid] <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    int peak = lo > 0 ? s->used[lo - 1] : 0;
    for (int k = lo; k < s->n && s->at[k] < end && peak <= limit; k++)
        if (s->used[k] > peak)
            peak = s->used[k];
    return peak;
}

/* Fills idx with the first job->nodes nodes that have its cores free over
 * [start, start + walltime); false when fewer do. */
static bool fits_at(const struct sched_node *nodes, const struct timeline *t,
                    const struct sched_job *job, int64_t start, int *idx)
{
    int found = 0;
    for (int i = 0; i < t->nnodes && found < job->nodes; i++) {
        int spare = nodes[i].cores - job->cores; /* what others may hold meanwhile */
        if ((job->allowed == NULL || job->allowed[i]) && spare >= 0 &&
            peak_use(&t->node[i], start, start + job->walltime, spare) <= spare)
            idx[found++] = i;
    }
    return found == job->nodes;
}

/* Earliest start at or after now: now or when an allocation ends. */
static int64_t plan_one(const struct sched_node *nodes, const struct timeline *t,
                        const struct sched_job *job, int64_t now, int *idx)
{
    int big = 0;
    for (int i = 0; i < t->nnodes; i++)
        big += (job->allowed == NULL || job->allowed[i]) && nodes[i].cores >= job->cores;
    if (job->nodes < 1 || job->cores < 1 || job->walltime < 1 || big < job->nodes)
        return -1;
    if (fits_at(nodes, t, job, now, idx))
        return now;
    for (int i = 0; i < t->nends; i++)
        if (t->ends[i] > now && fits_at(nodes, t, job, t->ends[i], idx))
            return t->ends[i];
    return -1; /* not reached: the last end always fits, the cluster is empty then */
}

/* A reservation: its time (now once past) or -1 when it does not fit then. */
static int64_t plan_at(const struct sched_node *nodes, const struct timeline *t,
                       const struct sched_job *job, int64_t now, int *idx)
{
    int64_t at = job->at > now ? job->at : now;
    if (job->nodes < 1 || job->cores < 1 || job->walltime < 1)
        return -1;
    return fits_at(nodes, t, job, at, idx) ? at : -1;
}

static void plan_job(const struct sched_node *nodes, struct timeline *t,
                     const struct sched_job *job, int64_t now, struct sched_plan *plan)
{
    int *idx = xcalloc((size_t)(job->nodes > 0 ? job->nodes : 1), sizeof(*idx));
    plan->start = job->at > 0 ? plan_at(nodes, t, job, now, idx) : plan_one(nodes, t, job, now, idx);
    plan->node_idx = idx;
    for (int k = 0; plan->start >= 0 && k < job->nodes; k++)
        timeline_add(t, (struct sched_alloc){idx[k], job->cores, plan->start,
                                              plan->start + job->walltime});
}

struct sched_plan *sched_backfill(const struct sched_node *nodes, int nnodes,
                                  const struct sched_alloc *running, int nrunning,
                                  const struct sched_job *jobs, int njobs, int64_t now)
{
    struct timeline t = {.node = xcalloc((size_t)(nnodes > 0 ? nnodes : 1), sizeof(*t.node)),
                         .nnodes = nnodes};
    for (int i = 0; i < nrunning; i++)
        timeline_add(&t, running[i]);
    struct sched_plan *plans = xcalloc((size_t)(njobs ? njobs : 1), sizeof(*plans));
    for (int pass = 0; pass < 2; pass++) /* reservations, then the others */
        for (int j = 0; j < njobs; j++)
            if ((jobs[j].at > 0) == (pass == 0))
                plan_job(nodes, &t, &jobs[j], now, &plans[j]);
    timeline_free(&t);
    return plans;
}

void sched_plans_free(struct sched_plan *plans, int n)
{
    for (int i = 0; plans && i < n; i++)
        free(plans[i].node_idx);
    free(plans);
}
