/* Runs of job services (`service create --mode replicated-job [--schedule
 * CRON]`, `--mode global-job`): a run is one set of tasks (slots 1..replicas,
 * or one per eligible node for global-job), each tagged "run": N, that ends
 * when every slot is done (restart condition none by default), as a one-shot
 * service. spec.max_concurrent bounds how many of its tasks are live at once
 * (the orchestrator holds the other slots back).
 *
 * State kept on the service (through Raft, so a new leader goes on with the
 * schedule): "run" (the current run's number, 0: none yet),
 * "run_scheduled_at" (ms: the fire time of the latest run, or skipped fire;
 * the next fire is computed after it; the service's created_at before the
 * first), "runs_skipped" (fires skipped because a run was still going on),
 * "runs": the last JOB_RUNS_KEPT runs, oldest first, each {"run",
 * "scheduled_at", "started_at", and once over "ended_at", "state"
 * ("complete" or "failed"), "exit_codes": [one per task, slot order]}.
 *
 * Without a schedule, run 1 starts at once and no other. With one, a run
 * starts when the next fire has come and the previous run is over; a fire
 * during a run is skipped (schedule_overlap "skip", the default) or waits
 * for its end ("queue"; fires missed meanwhile collapse into one run). */
#ifndef SHOAL_MANAGER_JOB_RUNS_H
#define SHOAL_MANAGER_JOB_RUNS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define JOB_RUNS_KEPT 20

/* A replicated-job or global-job service? */
bool job_runs_service(json_t *svc);

/* Pure: for one job service, its tasks and the slots a run has (borrowed)
 * at `now` (ms), the fields to merge into the service (new reference; an
 * empty object when nothing changes). Lowers *wake_at (0 = none) to the next
 * fire. */
json_t *job_runs_pass(json_t *svc, json_t *tasks, json_t *slots, int64_t now, int64_t *wake_at);

#endif
