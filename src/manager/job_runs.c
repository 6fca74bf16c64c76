#include "manager/job_runs.h"

#include <string.h>

#include "base/json_get.h"
#include "base/log.h"
#include "manager/orchestrator.h"
#include "manager/service.h"
#include "model/cron.h"
#include "model/service.h"
#include "model/task.h"

bool job_runs_service(json_t *svc)
{
    return service_mode_job(service_spec(svc));
}

static void lower_wake(int64_t *wake_at, int64_t when)
{
    if (*wake_at == 0 || when < *wake_at)
        *wake_at = when;
}

/* The newest task of `slot` in `run`, or NULL. */
static json_t *run_slot_task(json_t *tasks, json_int_t run, json_t *slot)
{
    json_t *newest = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (task_run(t) == run && json_equal(task_slot(t), slot) &&
            (newest == NULL || task_created_at(t) > task_created_at(newest)))
            newest = t;
    }
    return newest;
}

/* A slot of the run without its task yet, or with one still to run or to
 * run again. */
static bool run_going_on(json_t *svc, json_t *tasks, json_t *slots, json_int_t run)
{
    size_t i;
    json_t *slot;
    json_array_foreach(slots, i, slot)
    {
        json_t *t = run_slot_task(tasks, run, slot);
        if (t == NULL || !task_finished_for_good(svc, t)) /* not finished, or to run again */
            return true;
    }
    return false;
}

/* A copy of "runs" with the current run's entry ended from its tasks, or
 * NULL when that entry is absent or already ended. */
static json_t *runs_with_end(json_t *svc, json_t *tasks, json_t *slots, json_int_t run)
{
    json_t *runs = json_deep_copy(json_object_get(svc, "runs"));
    json_t *entry = json_array_get(runs, json_array_size(runs) - 1);
    if (entry == NULL || jint(entry, "run", 0) != run || json_object_get(entry, "ended_at")) {
        json_decref(runs);
        return NULL;
    }
    json_t *codes = json_array();
    json_int_t ended = 0;
    bool failed = false;
    size_t i;
    json_t *slot;
    json_array_foreach(slots, i, slot)
    {
        json_t *t = run_slot_task(tasks, run, slot);
        if (t == NULL)
            continue;
        json_array_append_new(codes, json_integer(jint(t, "exit_code", -1)));
        failed = failed || !task_state_is(t, "complete");
        if (task_state_at(t) > ended)
            ended = task_state_at(t);
    }
    json_object_set_new(entry, "ended_at", json_integer(ended));
    json_object_set_new(entry, "state", json_string(failed ? "failed" : "complete"));
    json_object_set_new(entry, "exit_codes", codes);
    return runs;
}

/* Starts run N+1 for the fire `scheduled_at`: its fields into `fields`. */
static void start_run(json_t *svc, json_t *fields, json_int_t scheduled_at, int64_t now)
{
    json_int_t run = service_run(svc) + 1;
    json_t *runs = json_object_get(fields, "runs");
    runs = runs ? json_incref(runs) : json_deep_copy(json_object_get(svc, "runs"));
    if (!json_is_array(runs)) {
        json_decref(runs);
        runs = json_array();
    }
    json_array_append_new(runs, json_pack("{s:I, s:I, s:I}", "run", run, "scheduled_at",
                                          scheduled_at, "started_at", (json_int_t)now));
    while (json_array_size(runs) > JOB_RUNS_KEPT)
        json_array_remove(runs, 0);
    json_object_set_new(fields, "runs", runs);
    json_object_set_new(fields, "run", json_integer(run));
    json_object_set_new(fields, "run_scheduled_at", json_integer(scheduled_at));
}

/* A scheduled job at `now`: starts, skips or waits for the due fire. */
static void follow_schedule(json_t *svc, json_t *fields, bool going_on, int64_t now,
                            int64_t *wake_at)
{
    json_t *spec = service_spec(svc);
    struct cron c;
    struct cron_tz tz;
    struct serr err = {0};
    if (cron_parse(jstr(spec, "schedule"), &c, &err) < 0 ||
        cron_tz_parse(jstr(spec, "schedule_tz"), &tz, &err) < 0) {
        slog(LOG_WARN, "service %s: schedule: %s", service_name(svc), err.msg);
        return; /* validated when stored: not expected */
    }
    int64_t base = jint(svc, "run_scheduled_at", jint(svc, "created_at", now)) / 1000;
    int64_t next = cron_next(&c, &tz, base);
    if (next < 0)
        return;
    if (next * 1000 > now) {
        lower_wake(wake_at, next * 1000);
        return;
    }
    if (going_on && jstr_is(spec, "schedule_overlap", "queue"))
        return; /* the pass after the run's end starts it */
    int64_t due = cron_last_due(&c, &tz, base, now / 1000);
    if (going_on) {
        json_object_set_new(fields, "run_scheduled_at", json_integer(due * 1000));
        json_object_set_new(fields, "runs_skipped",
                            json_integer(jint(svc, "runs_skipped", 0) + 1));
    } else {
        start_run(svc, fields, due * 1000, now);
    }
    int64_t after = cron_next(&c, &tz, due);
    if (after >= 0)
        lower_wake(wake_at, after * 1000);
}

json_t *job_runs_pass(json_t *svc, json_t *tasks, json_t *slots, int64_t now, int64_t *wake_at)
{
    json_t *fields = json_object();
    json_int_t run = service_run(svc);
    bool going_on = run > 0 && run_going_on(svc, tasks, slots, run);
    if (run > 0 && !going_on) {
        json_t *runs = runs_with_end(svc, tasks, slots, run);
        if (runs)
            json_object_set_new(fields, "runs", runs);
    }
    if (jstr(service_spec(svc), "schedule") == NULL) {
        if (run == 0)
            start_run(svc, fields, now, now);
        return fields;
    }
    follow_schedule(svc, fields, going_on, now, wake_at);
    return fields;
}
