/* Batch jobs as desired state (issue 14): a "jobs" table in the Raft store,
 * one task per job (on its first node) run by the agents as any task, and a
 * scheduling pass on the leader (conservative backfilling, jobs_sched.h).
 *
 * A job: {"id": "7" (a number as text, decided by the leader), "name",
 * "command", "image", "queue", "types", "resources": {"nodes","cores",
 * "walltime_s"}, "request" (OAR text), "user" (as the client says), "after"
 * (ids of jobs that must be Terminated first), "array_id", "array_index"
 * (from 1), "array_size" (jobs of an array), "state" (OAR's), "submitted_at",
 * "scheduled_at", "started_at", "stopped_at" (ms), "assigned": [{"node_id",
 * "hostname", "cores"}], "task_id", "exit_code", "message", "kill_reason"}. */
#ifndef SHOAL_MANAGER_JOBS_H
#define SHOAL_MANAGER_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

struct store;

/* Most jobs one submission (--array N) makes. */
#define JOB_MAX_ARRAY 1000

/* The reason a best-effort job killed for a normal job ends with. */
#define JOB_PREEMPTED "besteffort preempted"

/* SIGTERM to SIGKILL when a job is killed (walltime, rm). */
#define JOB_KILL_GRACE_MS 5000

/* States as OAR's. Final: Terminated, Error. */
bool job_state_final(const char *state);
/* A job holding its nodes: toLaunch, Launching, Running, Finishing. */
bool job_state_active(const char *state);

/* Validates a submission ({"command", "resources", "queue", "types",
 * "name", "image", "user", "after", "array"}) against the cluster and returns
 * the job without id and times (new reference; "array_size" when an array
 * was asked: the caller makes that many), or NULL with why (nothing is stored
 * then): a malformed or impossible request, an unknown queue, image, type or
 * dependency. */
json_t *job_from_submission(struct store *st, json_t *body, struct serr *err);

/* The next job id: above both `last` (the leader's memory of ids it gave,
 * updated) and the store's meta "jobs". */
long long job_next_id(struct store *st, long long *last);

/* The tasks a pass reads (new array, by id): every task but the ended tasks
 * of ended jobs and of Waiting ones, which no pass looks at (the history trim
 * reads its own). */
json_t *jobs_pass_tasks(struct store *st);
/* Those of jobs_pass_tasks whose id is a key of the object `ids`. */
json_t *jobs_pass_tasks_among(struct store *st, json_t *ids);

/* What the last plan of the queue depended on, kept by the leader between
 * passes (zeroed at first; jobs_plan_memo_clear frees it). */
struct jobs_plan_memo {
    bool valid;
    unsigned long long expect; /* store_plan_changes once the plan's pass's ops are applied */
    int64_t planned_at;
    int64_t wake; /* the time the plan waits for (a reservation's start), or 0 */
    int nnodes;
    int *cores; /* the cores jobs may have on each eligible node */
};
void jobs_plan_memo_clear(struct jobs_plan_memo *memo);

/* A plan is made again at least this often all the same. */
#define JOB_PLAN_REUSE_MAX_MS 1000

/* A started job's progress (Launching, Running) waits this long after its
 * task's state changed for other ops of a pass to go with, before it is
 * proposed alone (docs/design.md). */
#define JOB_PROGRESS_ALONE_MS 100

/* One pass on the leader: follows the tasks of active jobs, enforces
 * walltimes, starts the waiting jobs the backfilling plan starts now.
 * Appends ops; `tasks` is jobs_pass_tasks' (new ones are appended); lowers
 * *wake_at (0 = none) to the next walltime deadline. With `memo` (else
 * NULL), the waiting jobs are neither read nor planned when nothing the
 * last plan depended on changed since: no op of the store_op_changes_plan
 * kind but the pass's own, no job ended by this pass, the same cores on the
 * same nodes, before its wake-up time and within JOB_PLAN_REUSE_MAX_MS
 * (docs/design.md). */
void jobs_pass(struct store *st, json_t *nodes, json_t *tasks, json_t *ops, int64_t now,
               int64_t *wake_at, struct jobs_plan_memo *memo);

/* The tasks of a jobs pass, for a caller that does not hold them all in
 * one array: `all(arg)` gives every task (as `tasks` of jobs_pass,
 * borrowed), asked for only when a job is alive; with none, the pass reads
 * only `of_jobs` (borrowed): at least the tasks of a job, by id. */
struct jobs_tasks {
    json_t *of_jobs;
    json_t *(*all)(void *arg);
    void *arg;
};
/* jobs_pass over `tasks`: a pass with no job alive looks at no task of a
 * service. */
void jobs_pass_of(struct store *st, json_t *nodes, const struct jobs_tasks *tasks, json_t *ops,
                  int64_t now, int64_t *wake_at, struct jobs_plan_memo *memo);

/* {node id: cores} held by the active jobs (new reference): what the
 * scheduler of services counts beside the tasks' reservations. */
json_t *jobs_cores_by_node(struct store *st);

/* The backfilling plan of the waiting jobs as a pass at `now` would make it,
 * read from the store without writing anything (GET /v1/jobs/gantt):
 * {job id: {"start": ms, "node_ids": [...]}} (new reference) for the jobs
 * the plan places; jobs waiting for a dependency, or that can never fit on
 * the nodes up now, are absent. */
json_t *jobs_plan(struct store *st, int64_t now);

/* Waiting jobs a pass plans, in queue order (advance reservations always
 * are): conservative backfilling costs more than the square of the jobs it
 * plans, so a long queue is planned by its head, as Slurm's bf_max_job_test
 * does; the jobs behind wait, with a message saying so, until they get there. */
#define JOB_PLAN_DEPTH 200
/* The message of a waiting job behind those (a pass reads such jobs only
 * when they reach the head). */
#define JOB_QUEUED_BEHIND "waiting for resources (queued behind the jobs being planned)"

/* Finished jobs kept by default (daemon.json "job-history"). */
#define JOB_HISTORY_DEFAULT 10000

/* Appends to `ops` the deletes of the oldest finished jobs (by stop time,
 * then id) beyond `keep`, with their finished tasks: the job history stays
 * bounded. Called by the leader's pass; never writes itself. */
void jobs_trim_history(struct store *st, long long keep, json_t *ops);

#endif
