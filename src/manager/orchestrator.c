#include "manager/orchestrator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"
#include "base/log.h"
#include "base/platform.h"
#include "base/util.h"
#include "manager/job_runs.h"
#include "manager/jobs.h"
#include "manager/scheduler.h"
#include "manager/service.h"
#include "manager/service_container.h"
#include "model/task.h"
#include "store/store.h"

struct pass {
    struct store *st;
    json_t *ops;
    json_t *nodes;
    json_t *tasks; /* every task, updated in memory as ops are added */
    json_t *job_cores; /* {node id: cores held by active jobs}; NULL until a task reserves cores */
    json_int_t history_limit; /* orchestrator_history_limit */
    int64_t now;
    int64_t wake_at;
};

static void wake_at(struct pass *p, int64_t when)
{
    if (p->wake_at == 0 || when < p->wake_at)
        p->wake_at = when;
}

/* Records a change of a task both as an op and in the in-memory copy. */
static void task_merge(struct pass *p, json_t *task, json_t *fields)
{
    json_object_update(task, fields);
    json_array_append_new(p->ops, op_merge("tasks", jstr(task, "id"), fields));
}

static void task_set_desired(struct pass *p, json_t *task, const char *desired)
{
    if (jstr_is(task, "desired_state", desired))
        return;
    bool unplaced = json_object_get(task, "node_id") == NULL && jstr_is(task, "state", "pending");
    if (unplaced && strcmp(desired, "shutdown") == 0) {
        /* no agent will ever report it stopped: it is, now (an update of a
         * service that could not be placed goes on) */
        task_merge(p, task, json_pack("{s:s, s:s, s:s, s:I}", "desired_state", desired, "state",
                                      "shutdown", "message", "shutdown", "state_at",
                                      (json_int_t)p->now));
        return;
    }
    task_merge(p, task, json_pack("{s:s}", "desired_state", desired));
}

static bool slot_equal(json_t *a, json_t *b)
{
    return json_equal(a, b);
}

/* A global service's task runs on the node its slot names, as Swarm's: a
 * global job's once per node (a finished task leaves no live task there, so
 * the scheduler's spreading alone would not keep it off), a start-first
 * update's beside the old task. Returns [that node] (new reference), or
 * NULL: any node. */
static json_t *slot_node(struct pass *p, json_t *svc, json_t *task)
{
    const char *node_id = json_string_value(json_object_get(task, "slot"));
    if (node_id == NULL || !service_mode_global(json_object_get(svc, "spec")))
        return NULL;
    json_t *only = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(p->nodes, i, n)
    {
        if (jstr_is(n, "id", node_id))
            json_array_append(only, n);
    }
    return only;
}

static void expand_hostname(json_t *svc, json_t *task);

/* Those of `candidates` that may run a task of an image with variants (an
 * index pinned by digest): whose platform the index offers and the store
 * holds (a new array). *why gets the first refusal's reason, for a task
 * that no node can run. */
static json_t *nodes_for_variants(json_t *candidates, json_t *variants, const char *ref,
                                  struct serr *why)
{
    json_t *out = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(candidates, i, n)
    {
        char platform[100];
        platform_format(json_object_get(n, "platform"), platform, sizeof(platform));
        struct serr err = {0};
        if (image_variant_for(variants, ref, platform, &err))
            json_array_append(out, n);
        else if (why->msg[0] == '\0')
            *why = err;
    }
    return out;
}

/* The task goes to `node`: with the image's variant for that node's platform. */
static json_t *assignment(struct pass *p, json_t *svc, json_t *task, json_t *node, json_t *variants)
{
    json_t *fields = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "node_id", jstr(node, "id"),
                               "node_hostname", jstr(node, "hostname"), "state", "assigned",
                               "state_at", (json_int_t)p->now, "message", "scheduled", "error", "");
    json_t *spec = json_object_get(svc, "spec");
    char platform[100];
    platform_format(json_object_get(node, "platform"), platform, sizeof(platform));
    json_t *image =
        variants ? image_variant_for(variants, jstr(spec, "image"), platform, NULL) : NULL;
    const char *had = jstr(json_object_get(task, "container"), "image_id");
    if (image && !(had && jstr_is(image, "id", had))) {
        json_object_set_new(task, "container", task_container_spec(spec, image));
        expand_hostname(svc, task);
        json_object_set(fields, "container", json_object_get(task, "container"));
    }
    return fields;
}

static void try_assign(struct pass *p, json_t *svc, json_t *task)
{
    struct serr err = {0};
    json_t *spec = json_object_get(svc, "spec");
    json_t *reservations = json_object_get(spec, "reservations");
    double reserve = json_number_value(json_object_get(reservations, "cpus"));
    if (reserve > 0 && p->job_cores == NULL) /* read the jobs only when needed */
        p->job_cores = jobs_cores_by_node(p->st);
    struct placement pl = {.constraints = json_object_get(spec, "constraints"),
                           .preferences = json_object_get(spec, "placement_preferences"),
                           .max_per_node = (int)jint(spec, "max_replicas_per_node", 0),
                           .reserve_cpus = reserve,
                           .reserve_memory = jint(reservations, "memory", 0),
                           .job_cores = p->job_cores};
    json_t *variants = image_variants(p->st, jstr(spec, "image"));
    json_t *nodes = slot_node(p, svc, task);
    if (nodes == NULL)
        nodes = json_incref(p->nodes);
    if (variants) {
        json_t *fit = nodes_for_variants(nodes, variants, jstr(spec, "image"), &err);
        json_decref(nodes);
        nodes = fit;
    }
    if (variants && json_array_size(nodes) == 0 && err.msg[0]) {
        /* as a task whose image is missing: rejected, its restart policy decides */
        task_merge(p, task,
                   json_pack("{s:s, s:s, s:s, s:I}", "state", "rejected", "message", "rejected",
                             "error", err.msg, "state_at", (json_int_t)p->now));
        json_decref(nodes);
        json_decref(variants);
        return;
    }
    json_t *node = scheduler_pick_placement(nodes, p->tasks, jstr(svc, "id"), &pl, &err);
    if (node == NULL) {
        /* as Swarm: the reason in the task's error; one entry per change, not per pass */
        if (!jstr_is(task, "error", err.msg))
            task_merge(p, task, json_pack("{s:s, s:s}", "message", "pending task scheduling",
                                          "error", err.msg));
    } else {
        task_merge(p, task, assignment(p, svc, task, node, variants));
    }
    json_decref(nodes);
    json_decref(variants);
}

/* --hostname templates ({{.Task.Slot}}, ...) for this task. */
static void expand_hostname(json_t *svc, json_t *task)
{
    json_t *container = json_object_get(task, "container");
    const char *tmpl = jstr(container, "hostname");
    if (tmpl == NULL || strstr(tmpl, "{{") == NULL)
        return;
    char slot[64];
    json_t *s = json_object_get(task, "slot");
    if (json_is_integer(s))
        snprintf(slot, sizeof(slot), "%lld", (long long)json_integer_value(s));
    else
        snprintf(slot, sizeof(slot), "%s", json_string_value(s) ? json_string_value(s) : "");
    char *hostname = service_hostname_expand(tmpl, jstr(svc, "id"), jstr(svc, "name"),
                                             jstr(task, "id"), jstr(task, "name"), slot);
    if (hostname != NULL)
        json_object_set_new(container, "hostname", json_string(hostname));
    free(hostname);
}

/* Restarts of a slot under this task template (--restart-max-attempts):
 * the new task counts one more than the `previous` task of its slot when
 * that one failed or completed, the same after a stop or a lost node, none
 * after a new template; with --restart-window the count starts again once
 * the window since the first counted restart has passed. */
static void count_restart(struct pass *p, json_t *svc, json_t *previous, json_t *task)
{
    if (previous == NULL || jint(previous, "spec_version", 0) != jint(svc, "version", 0) ||
        jint(previous, "run", 0) != jint(svc, "run", 0))
        return;
    json_int_t attempts = jint(previous, "restart_attempts", 0);
    json_int_t since = jint(previous, "restart_window_start", p->now);
    bool stopped = jstr_is(previous, "state", "shutdown") || jstr_is(previous, "state", "orphaned");
    json_int_t window = jint(json_object_get(svc, "spec"), "restart_window_ms", 0);
    if (!stopped) {
        if (attempts == 0 || (window > 0 && p->now - since > window)) {
            attempts = 0;
            since = p->now;
        }
        attempts++;
    }
    if (attempts == 0)
        return;
    json_object_set_new(task, "restart_attempts", json_integer(attempts));
    json_object_set_new(task, "restart_window_start", json_integer(since));
}

/* Returns the new task (owned by p->tasks); `previous` is the slot's last
 * task or NULL. */
static json_t *create_task(struct pass *p, json_t *svc, json_t *slot, json_t *previous)
{
    json_t *spec = json_object_get(svc, "spec");
    char id[26];
    random_hex(id, 25);
    char name[300];
    if (json_is_integer(slot))
        snprintf(name, sizeof(name), "%s.%lld", jstr(svc, "name"),
                 (long long)json_integer_value(slot));
    else
        snprintf(name, sizeof(name), "%s.%s", jstr(svc, "name"), json_string_value(slot));
    json_t *task =
        json_pack("{s:s, s:s, s:s, s:O, s:s, s:O, s:s, s:s, s:I, s:s, s:s, s:I}", "id", id,
                  "service_id", jstr(svc, "id"), "service_name", jstr(svc, "name"), "slot", slot,
                  "name", name, "spec_version", json_object_get(svc, "version"), "desired_state",
                  "running", "state", "pending", "state_at", (json_int_t)p->now, "message",
                  "created", "error", "", "created_at", (json_int_t)p->now);
    if (jint(svc, "run", 0) > 0) /* a replicated job's run (manager/job_runs.h) */
        json_object_set(task, "run", json_object_get(svc, "run"));
    json_t *reserve = json_object_get(json_object_get(spec, "reservations"), "cpus");
    if (json_number_value(reserve) > 0) /* counted by both schedulers (scheduler.h) */
        json_object_set(task, "reserved_cpus", reserve);
    json_t *memory = json_object_get(json_object_get(spec, "reservations"), "memory");
    if (json_integer_value(memory) > 0) /* counted by the task scheduler */
        json_object_set(task, "reserved_memory", memory);
    count_restart(p, svc, previous, task);
    struct serr err = {0};
    json_t *image = image_resolve(p->st, jstr(spec, "image"), &err);
    if (image) {
        json_object_set_new(task, "container", task_container_spec(spec, image));
        expand_hostname(svc, task);
        json_decref(image);
    } else {
        json_object_set_new(task, "container", json_pack("{s:O}", "image", json_object_get(spec, "image")));
        json_object_set_new(task, "state", json_string("rejected"));
        json_object_set_new(task, "error", json_string(err.msg));
    }
    json_object_set(task, "image", json_object_get(spec, "image"));
    json_array_append(p->tasks, task);
    json_array_append_new(p->ops, op_put("tasks", json_incref(task)));
    if (image)
        try_assign(p, svc, task);
    /* try_assign recorded its merge as an op after the put: order preserved */
    json_decref(task);
    return task;
}

/* For a finished task: does its restart policy start it again? */
static bool should_restart(json_t *spec, json_t *task)
{
    const char *cond = jstr(spec, "restart_condition");
    if (cond && strcmp(cond, "none") == 0)
        return false;
    json_int_t max = jint(spec, "restart_max_attempts", 0);
    json_int_t window = jint(spec, "restart_window_ms", 0);
    bool window_over = window > 0 && jint(task, "state_at", 0) -
                                             jint(task, "restart_window_start", 0) > window;
    if (max > 0 && !window_over && jint(task, "restart_attempts", 0) >= max)
        return false; /* --restart-max-attempts reached (within --restart-window) */
    if (cond && strcmp(cond, "on-failure") == 0)
        return !jstr_is(task, "state", "complete");
    return true;
}

bool task_finished_for_good(json_t *svc, json_t *task)
{
    const char *state = jstr(task, "state");
    /* "shutdown" is a stop asked for (update, drain, scale): the slot goes on */
    if (!task_state_terminal(state) || strcmp(state, "shutdown") == 0)
        return false;
    bool scheduled = job_runs_service(svc) && jstr(json_object_get(svc, "spec"), "schedule");
    if (jint(task, "spec_version", 0) < jint(svc, "version", 0) && !scheduled)
        return false; /* a new task template runs the slot again (a scheduled job's next run) */
    if (jint(task, "run", 0) < jint(svc, "run", 0))
        return false; /* a new run of a replicated job runs it again */
    return !should_restart(json_object_get(svc, "spec"), task);
}

/* Newest task of a slot with desired state running, and newest task of the
 * slot; *running: how many of the slot's tasks have desired state running. */
static void slot_tasks(json_t *tasks, json_t *slot, json_t **current, json_t **latest,
                       int *running)
{
    *current = *latest = NULL;
    *running = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (!slot_equal(json_object_get(t, "slot"), slot))
            continue;
        json_int_t at = jint(t, "created_at", 0);
        if (*latest == NULL || at > jint(*latest, "created_at", 0))
            *latest = t;
        if (!jstr_is(t, "desired_state", "running"))
            continue;
        (*running)++;
        if (*current == NULL || at > jint(*current, "created_at", 0))
            *current = t;
    }
}

/* --update-order start-first: the old task of the slot runs on until its
 * replacement `cur` runs (or has ended: it failed or was rejected), as
 * Swarm's; then it is stopped. Stop-first never has two. `running`: the
 * slot's tasks wanted running (slot_tasks); with one or none, no task is
 * replaced and the tasks are not read again. */
static void stop_replaced_tasks(struct pass *p, json_t *tasks, json_t *slot, json_t *cur,
                                int running)
{
    if (running < 2 || cur == NULL ||
        (!jstr_is(cur, "state", "running") && !task_state_terminal(jstr(cur, "state"))))
        return;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (t != cur && jstr_is(t, "desired_state", "running") &&
            slot_equal(json_object_get(t, "slot"), slot))
            task_set_desired(p, t, "shutdown");
    }
}

/* A job with spec.max_concurrent (--max-concurrent) has that many live
 * tasks (wanted running, not finished): no other starts now. */
static bool at_max_concurrent(json_t *svc, json_t *tasks)
{
    json_int_t max = jint(json_object_get(svc, "spec"), "max_concurrent", 0);
    if (max <= 0 || !job_runs_service(svc))
        return false;
    json_int_t live = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (jstr_is(t, "desired_state", "running") && !task_state_terminal(jstr(t, "state")))
            live++;
    }
    return live >= max;
}

static void reconcile_slot(struct pass *p, json_t *svc, json_t *tasks, json_t *slot,
                           json_t *update_candidates)
{
    json_t *spec = json_object_get(svc, "spec");
    json_t *cur, *last;
    int running;
    slot_tasks(tasks, slot, &cur, &last, &running);
    stop_replaced_tasks(p, tasks, slot, cur, running);
    if (cur == NULL) {
        if (last && !task_state_terminal(jstr(last, "state")))
            return; /* stop first: the previous task of this slot is still stopping */
        if (last && task_finished_for_good(svc, last))
            return; /* done: its restart policy does not run it again */
        /* the restart delay slows crash loops; a stop or a lost node is no crash */
        bool new_run = last && jint(last, "run", 0) < jint(svc, "run", 0);
        if (last && !new_run && !jstr_is(last, "state", "shutdown") &&
            !jstr_is(last, "state", "orphaned")) {
            int64_t due = jint(last, "state_at", 0) + jint(spec, "restart_delay_ms", 0);
            if (due > p->now) {
                wake_at(p, due);
                return;
            }
        }
        if (at_max_concurrent(svc, tasks))
            return; /* a job's slot waits for one of its live tasks to end */
        /* the rolling update of this pass must count it as in progress */
        json_array_append(tasks, create_task(p, svc, slot, last));
        return;
    }
    if (task_state_terminal(jstr(cur, "state"))) {
        /* no longer wanted running: either a new task replaces it (next pass, after the
         * restart delay) or the slot is done (task_finished_for_good), as Swarm shows it */
        task_set_desired(p, cur, "shutdown");
        return;
    }
    if (jint(cur, "spec_version", 0) < jint(svc, "version", 0)) {
        json_array_append(update_candidates, cur);
        return;
    }
    if (jstr_is(cur, "state", "pending"))
        try_assign(p, svc, cur);
}

/* With failure_action pause or rollback, a new task that fails within this
 * time after it started running fails the update (Docker's default
 * --update-monitor; update_config.monitor_ms sets another). */
#define UPDATE_MONITOR_MS 5000

/* The settings of the rolling update under way: spec.update_config, or
 * during a rollback (update_state rollback_started) spec.rollback_config of
 * the spec rolled back to, as Swarm's updater; a spec without one rolls back
 * with its update_config (shoal before rollback_config). */
static json_t *rollout_config(json_t *svc)
{
    json_t *spec = json_object_get(svc, "spec");
    json_t *rollback = json_object_get(spec, "rollback_config");
    if (jstr_is(svc, "update_state", "rollback_started") && json_is_object(rollback))
        return rollback;
    return json_object_get(spec, "update_config");
}

static bool watches_failures(json_t *update_config)
{
    const char *action = jstr(update_config, "failure_action");
    return action && strcmp(action, "continue") != 0;
}

static json_int_t monitor_ms(json_t *update_config)
{
    return jint(update_config, "monitor_ms", UPDATE_MONITOR_MS);
}

/* Replaces the old task `old`: stop-first stops it (its slot gets the new
 * task once it has stopped); start-first starts the new task now (the old
 * one is stopped once it runs: stop_replaced_tasks). */
static void replace_task(struct pass *p, json_t *svc, json_t *tasks, json_t *old)
{
    if (jstr_is(rollout_config(svc), "order", "start-first"))
        json_array_append(tasks, create_task(p, svc, json_object_get(old, "slot"), old));
    else
        task_set_desired(p, old, "shutdown");
}

/* Rolling update: replaces old-version tasks `parallelism` at a time (0 = all),
 * waiting `delay_ms` (and the monitor time when failures are watched) after
 * the last replacement started running. */
static void rolling_update(struct pass *p, json_t *svc, json_t *tasks, json_t *candidates)
{
    json_t *uc = rollout_config(svc);
    json_int_t par = jint(uc, "parallelism", 0);
    json_int_t delay = jint(uc, "delay_ms", 0);
    if (watches_failures(uc) && delay < monitor_ms(uc))
        delay = monitor_ms(uc); /* a new task must hold that long before the next */
    json_int_t version = jint(svc, "version", 0);
    int in_progress = 0;
    int64_t last_running_at = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (jint(t, "spec_version", 0) != version)
            continue;
        if (jstr_is(t, "desired_state", "running") && jstr_is(t, "state", "running")) {
            int64_t at = jint(t, "state_at", 0);
            if (at > last_running_at)
                last_running_at = at;
        } else if (jstr_is(t, "desired_state", "running") &&
                   !task_state_terminal(jstr(t, "state"))) {
            in_progress++;
        }
    }
    /* old tasks being stopped for the update count as in progress too */
    json_array_foreach(tasks, i, t)
    {
        if (jint(t, "spec_version", 0) < version && !jstr_is(t, "desired_state", "running") &&
            !task_state_terminal(jstr(t, "state")))
            in_progress++;
    }
    if (delay > 0 && last_running_at > 0 && last_running_at + delay > p->now) {
        wake_at(p, last_running_at + delay);
        return;
    }
    json_array_foreach(candidates, i, t)
    {
        if (par > 0 && in_progress >= par)
            break;
        replace_task(p, svc, tasks, t);
        in_progress++;
    }
}

/* ---- update failure: --update-failure-action pause|continue|rollback ----
 * svc.update_state: "updating" (set by an update that changes the task
 * template), then "completed", or on a failed task of the new version
 * "paused" (no more old tasks replaced until the next update) or
 * "rollback_started" (the previous spec back) -> "rollback_completed" |
 * "rollback_paused" (a rollback that fails too is not rolled back). */

static void service_merge(struct pass *p, json_t *svc, json_t *fields)
{
    json_object_update(svc, fields);
    json_array_append_new(p->ops, op_merge("services", jstr(svc, "id"), fields));
}

/* Have more tasks of the new version failed since the update began than
 * max_failure_ratio (default 0: any) of the `slots` tolerates? */
static bool new_version_failed(json_t *svc, json_t *tasks, size_t slots)
{
    json_int_t version = jint(svc, "version", 0);
    json_int_t since = jint(svc, "updated_at", 0);
    size_t failed = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (jint(t, "spec_version", 0) == version && jstr_is(t, "state", "failed") &&
            jint(t, "state_at", 0) >= since)
            failed++;
    }
    json_t *ratio = json_object_get(rollout_config(svc), "max_failure_ratio");
    double tolerated = json_is_number(ratio) ? json_number_value(ratio) : 0;
    return failed > 0 && (double)failed > tolerated * (double)(slots > 0 ? slots : 1);
}

/* Every task wanted runs the new version (for the monitor time, when
 * failures are watched). */
static bool all_on_version(struct pass *p, json_t *svc, json_t *tasks)
{
    json_int_t version = jint(svc, "version", 0);
    json_t *uc = rollout_config(svc);
    bool watch = watches_failures(uc);
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (!jstr_is(t, "desired_state", "running"))
            continue;
        if (jint(t, "spec_version", 0) != version || !jstr_is(t, "state", "running"))
            return false;
        int64_t held = jint(t, "state_at", 0) + monitor_ms(uc);
        if (watch && held > p->now) {
            wake_at(p, held);
            return false;
        }
    }
    return true;
}

static void start_rollback(struct pass *p, json_t *svc)
{
    json_t *spec = json_object_get(svc, "spec");
    json_t *next = json_deep_copy(svc);
    json_object_set(next, "spec", json_object_get(svc, "previous_spec"));
    json_object_set(next, "previous_spec", spec);
    json_object_set_new(next, "version", json_integer(jint(svc, "version", 0) + 1));
    json_object_set_new(next, "updated_at", json_integer(p->now));
    json_object_set_new(next, "update_state", json_string("rollback_started"));
    log_info("service %s: a task of the update failed, rolling back", jstr(svc, "name"));
    json_object_update(svc, next);
    json_array_append_new(p->ops, op_put("services", next));
}

/* Applies the failure action when too many tasks of the new version failed
 * (new_version_failed); returns whether it stopped the update (paused, or
 * rolling back: no more old tasks replaced in this pass). */
static bool failure_stops_update(struct pass *p, json_t *svc, json_t *tasks, size_t slots,
                                 bool rolling_back)
{
    if (!new_version_failed(svc, tasks, slots))
        return false;
    const char *action = jstr(rollout_config(svc), "failure_action");
    if (action == NULL || strcmp(action, "continue") == 0)
        return false;
    json_t *previous = json_object_get(svc, "previous_spec");
    if (!rolling_back && strcmp(action, "rollback") == 0 && json_is_object(previous) &&
        json_equal(json_object_get(previous, "ports"),
                   json_object_get(json_object_get(svc, "spec"), "ports"))) {
        start_rollback(p, svc);
        return true;
    }
    log_info("service %s: a task of the update failed, the update is paused", jstr(svc, "name"));
    service_merge(p, svc, json_pack("{s:s}", "update_state",
                                     rolling_back ? "rollback_paused" : "paused"));
    return true;
}

/* Returns whether old tasks may still be replaced in this pass (`slots`:
 * how many the service wants). Failures are judged before completion: a
 * single task whose new version failed pauses (or rolls back) its update. */
static bool update_may_go_on(struct pass *p, json_t *svc, json_t *tasks, bool candidates,
                             size_t slots)
{
    const char *state = jstr(svc, "update_state");
    bool rolling_back = state && strcmp(state, "rollback_started") == 0;
    if (state == NULL || (!rolling_back && strcmp(state, "updating") != 0))
        return state == NULL || (strcmp(state, "paused") != 0 && strcmp(state, "rollback_paused") != 0);
    if (failure_stops_update(p, svc, tasks, slots, rolling_back))
        return false;
    if (!candidates && all_on_version(p, svc, tasks))
        service_merge(p, svc, json_pack("{s:s}", "update_state",
                                         rolling_back ? "rollback_completed" : "completed"));
    return true;
}

/* The slots of the spec: the eligible nodes' ids (global modes) or
 * 1..replicas. New reference. */
static json_t *spec_slots(struct pass *p, json_t *spec)
{
    json_t *slots = json_array();
    if (service_mode_global(spec)) {
        size_t i;
        json_t *n;
        json_array_foreach(p->nodes, i, n)
        {
            if (node_eligible(n, json_object_get(spec, "constraints")))
                json_array_append(slots, json_object_get(n, "id"));
        }
        return slots;
    }
    json_int_t replicas = jint(spec, "replicas", 0);
    for (json_int_t r = 1; r <= replicas; r++)
        json_array_append_new(slots, json_integer(r));
    return slots;
}

static json_t *wanted_slots(struct pass *p, json_t *svc)
{
    if (job_runs_service(svc) && jint(svc, "run", 0) == 0)
        return json_array(); /* a scheduled job before its first run */
    return spec_slots(p, json_object_get(svc, "spec"));
}

static bool slot_wanted(json_t *slots, json_t *slot)
{
    size_t i;
    json_t *s;
    json_array_foreach(slots, i, s)
    {
        if (slot_equal(s, slot))
            return true;
    }
    return false;
}

/* A task the slot's history may forget: finished and no longer wanted. */
static bool task_dead(json_t *t)
{
    return !jstr_is(t, "desired_state", "running") && task_state_terminal(jstr(t, "state"));
}

/* Forgets dead tasks of the slot, oldest first, while the slot holds more
 * tasks than the history limit (live tasks count but are never forgotten:
 * Swarm's task reaper). The newest task stays whatever the limit: its state
 * decides the slot's restart delay and whether the slot is done. */
static void trim_history(struct pass *p, json_t *tasks, json_t *slot)
{
    if (p->history_limit < 0)
        return;
    json_t *cur, *newest;
    int running;
    slot_tasks(tasks, slot, &cur, &newest, &running);
    json_t *dead = json_array();
    json_int_t in_slot = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (!slot_equal(json_object_get(t, "slot"), slot))
            continue;
        in_slot++;
        if (task_dead(t) && t != newest)
            json_array_append(dead, t);
    }
    while (in_slot > p->history_limit && json_array_size(dead) > 0) {
        size_t oldest = 0;
        json_array_foreach(dead, i, t)
        {
            if (jint(t, "created_at", 0) < jint(json_array_get(dead, oldest), "created_at", 0))
                oldest = i;
        }
        json_array_append_new(p->ops, op_del("tasks", jstr(json_array_get(dead, oldest), "id")));
        json_array_remove(dead, oldest);
        in_slot--;
    }
    json_decref(dead);
}

/* A replicated job: starts its runs, records their ends (manager/job_runs.h). */
static void follow_job_runs(struct pass *p, json_t *svc, json_t *tasks)
{
    json_t *slots = spec_slots(p, json_object_get(svc, "spec"));
    json_t *fields = job_runs_pass(svc, tasks, slots, p->now, &p->wake_at);
    json_decref(slots);
    if (json_object_size(fields) > 0)
        service_merge(p, svc, fields);
    else
        json_decref(fields);
}

static void reconcile_service(struct pass *p, json_t *svc)
{
    json_t *tasks = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(p->tasks, i, t)
    {
        if (jstr_is(t, "service_id", jstr(svc, "id")))
            json_array_append(tasks, t);
    }
    if (job_runs_service(svc))
        follow_job_runs(p, svc, tasks);
    json_t *slots = wanted_slots(p, svc);
    json_array_foreach(tasks, i, t)
    {
        if (jstr_is(t, "desired_state", "running") &&
            !slot_wanted(slots, json_object_get(t, "slot")))
            task_set_desired(p, t, "shutdown");
    }
    json_t *candidates = json_array();
    json_t *slot;
    json_array_foreach(slots, i, slot) reconcile_slot(p, svc, tasks, slot, candidates);
    bool go_on = update_may_go_on(p, svc, tasks, json_array_size(candidates) > 0,
                                  json_array_size(slots));
    if (go_on && json_array_size(candidates))
        rolling_update(p, svc, tasks, candidates);
    json_t *seen = json_array();
    json_array_foreach(tasks, i, t)
    {
        json_t *s = json_object_get(t, "slot");
        if (!slot_wanted(seen, s)) {
            json_array_append(seen, s);
            trim_history(p, tasks, s);
        }
    }
    json_decref(seen);
    json_decref(candidates);
    json_decref(slots);
    json_decref(tasks);
}

/* Tasks of removed services: stop them, then forget them once finished. */
static void reap_orphans(struct pass *p)
{
    size_t i;
    json_t *t;
    json_array_foreach(p->tasks, i, t)
    {
        if (json_object_get(t, "job_id"))
            continue; /* a job's task: manager/jobs.c */
        json_t *svc = store_get(p->st, "services", jstr(t, "service_id"));
        if (svc) {
            json_decref(svc);
            continue;
        }
        bool unplaced = json_object_get(t, "node_id") == NULL;
        if (task_state_terminal(jstr(t, "state")) || unplaced)
            json_array_append_new(p->ops, op_del("tasks", jstr(t, "id")));
        else
            task_set_desired(p, t, "remove");
    }
}

/* A node down for this long has lost its tasks (then started elsewhere):
 * a board back within NODE_DOWN_MS + this keeps them. */
#define ORPHAN_GRACE_MS 3000

/* Tasks on a node that is down are lost to the cluster: orphaned (a final
 * state), so that restart policies start them elsewhere, once the node has
 * been down for ORPHAN_GRACE_MS. Tasks on a drained
 * node are stopped, and started elsewhere. */
static void orphan_tasks_of_down_nodes(struct pass *p)
{
    size_t i, k;
    json_t *n, *t;
    json_array_foreach(p->nodes, i, n)
    {
        if (jstr_is(n, "availability", "drain")) {
            /* drained: stop its tasks; their slots get new tasks elsewhere */
            json_array_foreach(p->tasks, k, t)
            {
                if (jstr_is(t, "node_id", jstr(n, "id")) && jstr_is(t, "desired_state", "running"))
                    task_set_desired(p, t, "shutdown");
            }
        }
        if (!jstr_is(n, "status", "down"))
            continue;
        /* a short blip (a paused or rebooting board) keeps its tasks */
        int64_t lost_at = jint(n, "updated_at", 0) + ORPHAN_GRACE_MS;
        if (lost_at > p->now) {
            wake_at(p, lost_at);
            continue;
        }
        json_array_foreach(p->tasks, k, t)
        {
            if (!jstr_is(t, "node_id", jstr(n, "id")) || task_state_terminal(jstr(t, "state")))
                continue;
            char msg[300];
            snprintf(msg, sizeof(msg), "node %s is down", jstr(n, "hostname"));
            task_merge(p, t,
                       json_pack("{s:s, s:s, s:s, s:I}", "state", "orphaned", "message",
                                 "orphaned", "error", msg, "state_at", (json_int_t)p->now));
        }
    }
}

json_int_t orchestrator_history_limit(struct store *st)
{
    json_t *meta = store_get(st, "meta", "cluster");
    json_int_t limit = jint(meta, "task_history_limit", TASK_HISTORY_DEFAULT);
    json_decref(meta);
    return limit;
}

json_t *orchestrator_pass(struct store *st, int64_t now, int64_t *wake_at_ms)
{
    struct pass p = {.st = st, .ops = json_array(), .now = now};
    p.history_limit = orchestrator_history_limit(st);
    p.nodes = store_list(st, "nodes", NULL);
    p.tasks = jobs_pass_tasks(st); /* the job history left out */
    json_t *services = store_list(st, "services", NULL);
    size_t i;
    json_t *svc;
    orphan_tasks_of_down_nodes(&p);
    json_array_foreach(services, i, svc) reconcile_service(&p, svc);
    jobs_pass(st, p.nodes, p.tasks, p.ops, now, &p.wake_at);
    reap_orphans(&p);
    json_decref(services);
    json_decref(p.job_cores);
    json_decref(p.tasks);
    json_decref(p.nodes);
    *wake_at_ms = p.wake_at;
    return p.ops;
}

/* Newest task of its slot among `tasks`? */
static bool newest_of_slot(json_t *tasks, json_t *task)
{
    json_int_t at = jint(task, "created_at", 0);
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (t != task && slot_equal(json_object_get(t, "slot"), json_object_get(task, "slot")) &&
            jint(t, "created_at", 0) > at)
            return false;
    }
    return true;
}

static bool slot_in_spec(json_t *spec, json_t *slot)
{
    if (!json_is_integer(slot))
        return true; /* a global service's slot: a node */
    json_int_t n = json_integer_value(slot);
    return n >= 1 && n <= jint(spec, "replicas", 0);
}

void service_count_tasks(json_t *svc, json_t *tasks, struct service_counts *out)
{
    memset(out, 0, sizeof(*out));
    json_t *spec = json_object_get(svc, "spec");
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (jstr_is(t, "desired_state", "running")) {
            if (jstr_is(t, "state", "running"))
                out->running++;
            else if (jstr_is(t, "state", "pending") && jstr(t, "error") && jstr(t, "error")[0] &&
                     out->pending_reason == NULL)
                out->pending_reason = jstr(t, "error");
            continue;
        }
        if (!task_finished_for_good(svc, t) || !slot_in_spec(spec, json_object_get(t, "slot")) ||
            !newest_of_slot(tasks, t))
            continue;
        if (jstr_is(t, "state", "complete")) {
            out->completed++;
        } else {
            out->failed++;
            if (out->failed_reason == NULL)
                out->failed_reason = jstr(t, "error");
        }
    }
}
