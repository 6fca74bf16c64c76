/* The job scheduler alone (issue 14): placements per second of the
 * conservative backfilling scheduler, for JOBS queued jobs on NODES
 * simulated nodes of CORES cores, two ways:
 *   backfill: sched_backfill() on arrays (the planning itself) of the first
 *             BACKFILL_MAX (2,000) jobs at most: it costs more than the
 *             square of the jobs it plans, which is why a pass plans only
 *             the head of the queue (JOB_PLAN_DEPTH);
 *   plan:     jobs_plan() on an in-memory store holding the nodes and all
 *             the waiting jobs (what a leader's pass does before it writes:
 *             the store read, the JSON, the planning of the queue's head).
 * A placement is a queued job given its start and nodes. Jobs are one core
 * of one node, a walltime of 1 to 60 minutes (a fixed pseudo-random series),
 * one in ten wanting 2 nodes. Built by `make bench` (build/sched_bench), not
 * part of the tests.
 * Usage: sched_bench [JOBS [NODES [CORES]]]   (defaults 100000 1000 4) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/jobs.h"
#include "manager/jobs_sched.h"
#include "store/store.h"

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned next_random(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return (*state >> 16) & 0x7fff;
}

/* The i-th job of the series (same for both ways). */
static struct sched_job job_of(unsigned *rnd)
{
    return (struct sched_job){.nodes = next_random(rnd) % 10 == 0 ? 2 : 1, .cores = 1,
                              .walltime = (int64_t)(60 + next_random(rnd) % 3541) * 1000};
}

static void report(const char *way, int jobs, int placed, double secs)
{
    printf("%-8s %d jobs, %d placed in %.3f s: %.0f placements/s\n", way, jobs, placed, secs,
           placed / (secs > 0 ? secs : 1e-9));
}

#define BACKFILL_MAX 2000

static void bench_backfill(int njobs, int nnodes, int cores)
{
    njobs = njobs < BACKFILL_MAX ? njobs : BACKFILL_MAX;
    struct sched_node *nodes = calloc((size_t)nnodes, sizeof(*nodes));
    struct sched_job *jobs = calloc((size_t)njobs, sizeof(*jobs));
    unsigned rnd = 1;
    for (int i = 0; i < nnodes; i++)
        nodes[i].cores = cores;
    for (int j = 0; j < njobs; j++)
        jobs[j] = job_of(&rnd);
    double t0 = seconds();
    struct sched_plan *plans = sched_backfill(nodes, nnodes, NULL, 0, jobs, njobs, 0);
    double t1 = seconds();
    int placed = 0;
    for (int j = 0; j < njobs; j++)
        placed += plans[j].start >= 0;
    report("backfill", njobs, placed, t1 - t0);
    sched_plans_free(plans, njobs);
    free(jobs);
    free(nodes);
}

/* Puts `ops` (stolen) into the store as one committed group. */
static void apply(struct store *st, json_t *ops)
{
    json_t *entry = json_pack("{s:[o]}", "groups", ops);
    char *text = json_dumps(entry, JSON_COMPACT);
    struct store_result res;
    if (store_apply(st, text, strlen(text), &res, NULL) < 0 || res.status[0] != 0) {
        fprintf(stderr, "sched_bench: store_apply failed\n");
        exit(1);
    }
    store_result_free(&res);
    free(text);
    json_decref(entry);
}

static struct store *store_with(int njobs, int nnodes, int cores)
{
    struct store *st;
    if (store_open(&st, NULL) < 0) {
        fprintf(stderr, "sched_bench: cannot open a store\n");
        exit(1);
    }
    json_t *ops = json_array();
    for (int i = 0; i < nnodes; i++) {
        char id[16], host[24];
        snprintf(id, sizeof(id), "n%d", i);
        snprintf(host, sizeof(host), "node-%d", i);
        json_array_append_new(ops, op_put("nodes", json_pack("{s:s, s:s, s:s, s:s, s:{s:i}}",
            "id", id, "hostname", host, "status", "ready", "availability", "active",
            "resources", "cpus", cores)));
    }
    unsigned rnd = 1;
    for (int j = 0; j < njobs; j++) {
        struct sched_job sj = job_of(&rnd);
        char id[16];
        snprintf(id, sizeof(id), "%d", j + 1);
        json_array_append_new(ops, op_put("jobs", json_pack("{s:s, s:s, s:s, s:{s:i, s:i, s:I}}",
            "id", id, "state", "Waiting", "queue", "default", "resources", "nodes", sj.nodes,
            "cores", sj.cores, "walltime_s", (json_int_t)(sj.walltime / 1000))));
    }
    apply(st, ops);
    return st;
}

static void bench_plan(int njobs, int nnodes, int cores)
{
    struct store *st = store_with(njobs, nnodes, cores);
    double t0 = seconds();
    json_t *plan = jobs_plan(st, 1000);
    double t1 = seconds();
    report("plan", njobs, (int)json_object_size(plan), t1 - t0);
    json_decref(plan);
    store_close(st);
}

int main(int argc, char **argv)
{
    int njobs = argc > 1 ? atoi(argv[1]) : 100000;
    int nnodes = argc > 2 ? atoi(argv[2]) : 1000;
    int cores = argc > 3 ? atoi(argv[3]) : 4;
    if (njobs < 1 || nnodes < 1 || cores < 1) {
        fprintf(stderr, "usage: sched_bench [JOBS [NODES [CORES]]]\n");
        return 2;
    }
    printf("%d nodes of %d cores\n", nnodes, cores);
    bench_backfill(njobs, nnodes, cores);
    bench_plan(njobs, nnodes, cores);
    return 0;
}
