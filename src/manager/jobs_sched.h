/* Batch jobs: OAR's resource requests and the conservative backfilling
 * scheduler. Pure functions: no store, no clock, no I/O. */
#ifndef SHOAL_MANAGER_JOBS_SCHED_H
#define SHOAL_MANAGER_JOBS_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

/* Default walltime when a request names none (OAR's default is 2 hours). */
#define JOB_DEFAULT_WALLTIME_S 7200
#define JOB_MAX_NODES 4096

/* A parsed request: `nodes` nodes with `cores` cores each, for walltime_s. */
struct job_res {
    int nodes;
    int cores;
    int64_t walltime_s;
};

/* Parses OAR's -l syntax: "/nodes=2/core=1,walltime=00:10:00",
 * "core=4,walltime=1:0:0", "nodes=1", "walltime=2" (hours), NULL or "" (one
 * core of one node, the default walltime). Keys: nodes (alias host), core
 * (alias cpu, core per node). Walltime is H, H:M or H:M:S and above zero. */
int job_res_parse(const char *text, struct job_res *out, struct serr *err);
/* Back to OAR's text: "/nodes=2/core=1,walltime=0:10:00". */
void job_res_format(const struct job_res *r, char *buf, size_t size);

/* ---- backfilling ---- */

/* A node that can take jobs, with its number of cores. */
struct sched_node {
    int cores;
};

/* Cores of a node held from start to end (a running job's, or a plan's). */
struct sched_alloc {
    int node;
    int cores;
    int64_t start, end;
};

/* A waiting job, in queue order (priority first, then submission). */
struct sched_job {
    int nodes;
    int cores;
    int64_t walltime; /* same unit as the times */
    int64_t at;       /* an advance reservation's start (0: none; now when past) */
    const bool *allowed; /* per node: its properties match (-p); NULL: every node */
};

/* Decision for one waiting job: its planned start and its nodes (indexes
 * into the node array, `nodes` of them), or start -1 when it can never fit
 * (more nodes or cores than there are). A job starts now when start == now. */
struct sched_plan {
    int64_t start;
    int *node_idx; /* owned: free with sched_plans_free */
};

/* Conservative backfilling (each job only on the nodes it allows): advance reservations (`at`) first, in order, each
 * at its time or -1 when it does not fit then; then every other waiting job,
 * in order, gets the earliest start where it fits beside the running
 * allocations, the reservations and the plans of the jobs before it, so a
 * later job may start before an earlier one (in a hole) but never delays it
 * nor a reservation. Returns njobs plans (caller frees). */
struct sched_plan *sched_backfill(const struct sched_node *nodes, int nnodes,
                                  const struct sched_alloc *running, int nrunning,
                                  const struct sched_job *jobs, int njobs, int64_t now);
void sched_plans_free(struct sched_plan *plans, int n);

#endif
