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

struct timeline {
    struct sched_alloc *a;
    int n, cap;
};

static void timeline_add(struct timeline *t, struct sched_alloc a)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->a = xrealloc(t->a, (size_t)t->cap * sizeof(*t->a));
    }
    t->a[t->n++] = a;
}

/* The timeline as a step function per node: from at[k] (sorted) until the
 * next breakpoint, used[k] cores of the node are held. Built once per job
 * planned, so that a candidate start costs a binary search and a few steps
 * rather than a walk of every allocation for each of them. */
struct profile {
    int64_t *at;
    int *used;
    int *first; /* per node: its breakpoints are [first[i], first[i + 1]) */
};

struct step {
    int node;
    int64_t at;
    int delta;
};

static int cmp_step(const void *a, const void *b)
{
    const struct step *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

static void profile_build(struct profile *p, const struct timeline *t, int nnodes)
{
    struct step *steps = xmalloc(((size_t)t->n * 2 + 1) * sizeof(*steps));
    int n = 0;
    for (int i = 0; i < t->n; i++) {
        const struct sched_alloc *a = &t->a[i];
        if (a->start >= a->end || a->node < 0 || a->node >= nnodes)
            continue; /* holds nothing at any moment */
        steps[n++] = (struct step){a->node, a->start, a->cores};
        steps[n++] = (struct step){a->node, a->end, -a->cores};
    }
    qsort(steps, (size_t)n, sizeof(*steps), cmp_step);
    p->at = xmalloc(((size_t)n + 1) * sizeof(*p->at));
    p->used = xmalloc(((size_t)n + 1) * sizeof(*p->used));
    p->first = xmalloc(((size_t)nnodes + 1) * sizeof(*p->first));
    int k = 0, s = 0;
    for (int node = 0; node < nnodes; node++) {
        p->first[node] = k;
        for (int used = 0; s < n && steps[s].node == node; k++) {
            int64_t at = steps[s].at;
            for (; s < n && steps[s].node == node && steps[s].at == at; s++)
                used += steps[s].delta;
            p->at[k] = at;
            p->used[k] = used;
        }
    }
    p->first[nnodes] = k;
    free(steps);
}

static void profile_free(struct profile *p)
{
    free(p->at);
    free(p->used);
    free(p->first);
}

/* Most cores of `node` in use at any moment of [start, end), or a number
 * above `limit` as soon as one is seen. */
static int peak_use(const struct profile *p, int node, int64_t start, int64_t end, int limit)
{
    int lo = p->first[node], hi = p->first[node + 1];
    /* k: the first breakpoint after start */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (p->at[mid] <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    int k = lo;
    int peak = k > p->first[node] ? p->used[k - 1] : 0;
    for (; k < p->first[node + 1] && p->at[k] < end && peak <= limit; k++)
        if (p->used[k] > peak)
            peak = p->used[k];
    return peak;
}

/* Fills idx with the first job->nodes nodes that have its cores free over
 * [start, start + walltime); false when fewer do. */
static bool fits_at(const struct sched_node *nodes, int nnodes, const struct profile *p,
                    const struct sched_job *job, int64_t start, int *idx)
{
    int found = 0;
    for (int i = 0; i < nnodes && found < job->nodes; i++) {
        int spare = nodes[i].cores - job->cores; /* what others may hold meanwhile */
        if ((job->allowed == NULL || job->allowed[i]) && spare >= 0 &&
            peak_use(p, i, start, start + job->walltime, spare) <= spare)
            idx[found++] = i;
    }
    return found == job->nodes;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Earliest start at or after now: now or when an allocation ends. */
static int64_t plan_one(const struct sched_node *nodes, int nnodes, const struct timeline *t,
                        const struct profile *p, const struct sched_job *job, int64_t now,
                        int *idx)
{
    int big = 0;
    for (int i = 0; i < nnodes; i++)
        big += (job->allowed == NULL || job->allowed[i]) && nodes[i].cores >= job->cores;
    if (job->nodes < 1 || job->cores < 1 || job->walltime < 1 || big < job->nodes)
        return -1;
    int64_t *times = xmalloc(((size_t)t->n + 1) * sizeof(*times));
    int ntimes = 0;
    times[ntimes++] = now;
    for (int i = 0; i < t->n; i++)
        if (t->a[i].end > now)
            times[ntimes++] = t->a[i].end;
    qsort(times, (size_t)ntimes, sizeof(*times), cmp_i64);
    int64_t start = -1;
    for (int i = 0; i < ntimes && start < 0; i++)
        if (fits_at(nodes, nnodes, p, job, times[i], idx))
            start = times[i];
    free(times);
    return start; /* the last end always fits: the cluster is empty then */
}

/* A reservation: its time (now once past) or -1 when it does not fit then. */
static int64_t plan_at(const struct sched_node *nodes, int nnodes, const struct profile *p,
                       const struct sched_job *job, int64_t now, int *idx)
{
    int64_t at = job->at > now ? job->at : now;
    if (job->nodes < 1 || job->cores < 1 || job->walltime < 1)
        return -1;
    return fits_at(nodes, nnodes, p, job, at, idx) ? at : -1;
}

static void plan_job(const struct sched_node *nodes, int nnodes, struct timeline *t,
                     const struct sched_job *job, int64_t now, struct sched_plan *plan)
{
    int *idx = xcalloc((size_t)(job->nodes > 0 ? job->nodes : 1), sizeof(*idx));
    struct profile p;
    profile_build(&p, t, nnodes);
    plan->start = job->at > 0 ? plan_at(nodes, nnodes, &p, job, now, idx)
                              : plan_one(nodes, nnodes, t, &p, job, now, idx);
    profile_free(&p);
    plan->node_idx = idx;
    for (int k = 0; plan->start >= 0 && k < job->nodes; k++)
        timeline_add(t, (struct sched_alloc){idx[k], job->cores, plan->start,
                                              plan->start + job->walltime});
}

struct sched_plan *sched_backfill(const struct sched_node *nodes, int nnodes,
                                  const struct sched_alloc *running, int nrunning,
                                  const struct sched_job *jobs, int njobs, int64_t now)
{
    struct timeline t = {0};
    for (int i = 0; i < nrunning; i++)
        timeline_add(&t, running[i]);
    struct sched_plan *plans = xcalloc((size_t)(njobs ? njobs : 1), sizeof(*plans));
    for (int pass = 0; pass < 2; pass++) /* reservations, then the others */
        for (int j = 0; j < njobs; j++)
            if ((jobs[j].at > 0) == (pass == 0))
                plan_job(nodes, nnodes, &t, &jobs[j], now, &plans[j]);
    free(t.a);
    return plans;
}

void sched_plans_free(struct sched_plan *plans, int n)
{
    for (int i = 0; plans && i < n; i++)
        free(plans[i].node_idx);
    free(plans);
}
