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
#include "model/node.h"
#include "model/service.h"
#include "model/task.h"
#include "store/store.h"

/* The group (tasks_by_service) of the tasks of no service. */
#define NO_SERVICE ""

struct orch_tasks {
    /* jobs_pass_tasks as of the last pass, grouped by service
     * (tasks_by_service: {service id: [its tasks, by id]}), so that bringing
     * them up to date and a pass's visits cost the changed services' tasks,
     * not every task; NULL: not read yet */
    json_t *groups;
    json_t *by_id; /* {task id: task} of `groups`: the group a changed task was in */
    json_t *changed; /* {id: true} of the tasks the last pass changed in memory */
    /* The services a pass found settled (service_quiet), {id: the service as
     * it was}: the next pass skips those whose record, tasks (`dirty`), the
     * nodes and the history limit are the same (service_settled). */
    json_t *settled;
    json_t *dirty;  /* {service id: true} of the services whose tasks changed since */
    json_t *nodes;  /* the nodes of the last pass (NULL: none yet) */
    json_int_t history_limit; /* of the last pass */
    /* The scheduler's loads of `tasks`, the objects as they are now (a pass
     * changes them with their counts, task_merge), kept across passes and
     * brought up to date with the tasks read again (merged_by_id), not
     * counted from every task at each placing pass; NULL: counted when
     * first needed. */
    struct sched_load *load;
    struct jobs_plan_memo plan; /* the last pass's plan of the job queue */
};

struct pass {
    struct store *st;
    struct orch_tasks *kept; /* orchestrator_pass_kept's, or NULL: every service visited */
    json_t *ops;
    json_t *nodes;
    /* every task (by id, then those created), updated in memory as ops are
     * added; NULL until a pass needs them all (pass_tasks): a pass of
     * services alone reads only `by_service` */
    json_t *tasks;
    json_t *by_service; /* tasks_by_service of the tasks read (kept's groups) */
    json_t *new_tasks; /* the tasks this pass created, in order */
    /* ids of the tasks this pass puts: their put op holds the task object
     * itself, so it carries the changes made to them later in the pass */
    json_t *created;
    json_t *images; /* {image reference: the image it resolves to}, once a pass (pass_image) */
    /* of `tasks`, kept current; NULL until the first placement; kept's
     * (kept->load), when the pass has one */
    struct sched_load *load;
    json_t *job_cores; /* {node id: cores held by active jobs}; NULL until a task reserves cores */
    json_int_t history_limit; /* orchestrator_history_limit */
    /* {service id: true} of the services whose tasks this pass changed
     * (task_merge): not one to skip (service_settled) */
    json_t *touched;
    int64_t now;
    int64_t wake_at;
};

static int by_task_id(const void *a, const void *b)
{
    return strcmp(task_id(*(json_t *const *)a), task_id(*(json_t *const *)b));
}

/* `tasks` (taken) sorted by id, as the store lists them: a new array. */
static json_t *sorted_by_id(json_t *tasks)
{
    return jarray_sorted(tasks, by_task_id);
}

/* Every task of the pass (p->tasks), made from its groups when first
 * needed: by id, as the store lists them, then those created so far. Only
 * the rare work over every task needs them (a job alive, the scheduler's
 * loads counted afresh; drained or down nodes when the pass keeps nothing:
 * tasks_on). Borrowed. */
static json_t *pass_tasks(struct pass *p)
{
    if (p->tasks == NULL) {
        json_t *all = json_array();
        const char *sid;
        json_t *list;
        json_object_foreach(p->by_service, sid, list) json_array_extend(all, list);
        p->tasks = sorted_by_id(all);
        json_array_extend(p->tasks, p->new_tasks);
    }
    return p->tasks;
}

static void wake_at(struct pass *p, int64_t when)
{
    if (p->wake_at == 0 || when < p->wake_at)
        p->wake_at = when;
}

/* A merge of `fields` into a task put in this pass is already in its put
 * (one op a new task, not a put then a merge); not a merge that deletes a
 * field (a null), which the in-memory update does not do. */
static bool merged_into_put(struct pass *p, json_t *task, json_t *fields)
{
    if (json_object_get(p->created, task_id(task)) == NULL)
        return false;
    const char *key;
    json_t *v;
    json_object_foreach(fields, key, v)
    {
        if (json_is_null(v))
            return false;
    }
    return true;
}

/* Records a change of a task both as an op and in the in-memory copy. */
static void task_merge(struct pass *p, json_t *task, json_t *fields)
{
    if (task_service_id(task))
        json_object_set_new(p->touched, task_service_id(task), json_true());
    if (p->load)
        sched_load_count(p->load, task, -1);
    json_object_update(task, fields);
    if (p->load)
        sched_load_count(p->load, task, 1);
    if (merged_into_put(p, task, fields))
        json_decref(fields);
    else
        json_array_append_new(p->ops, op_merge("tasks", task_id(task), fields));
}

static void task_set_desired(struct pass *p, json_t *task, const char *desired)
{
    if (task_desired_is(task, desired))
        return;
    bool unplaced = json_object_get(task, "node_id") == NULL && task_state_is(task, "pending");
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
    const char *node_id = json_string_value(task_slot(task));
    if (node_id == NULL || !service_mode_global(service_spec(svc)))
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
    json_t *fields = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "node_id", node_id(node),
                               "node_hostname", node_hostname(node), "state", "assigned",
                               "state_at", (json_int_t)p->now, "message", "scheduled", "error", "");
    json_t *spec = service_spec(svc);
    char platform[100];
    platform_format(json_object_get(node, "platform"), platform, sizeof(platform));
    json_t *image =
        variants ? image_variant_for(variants, jstr(spec, "image"), platform, NULL) : NULL;
    const char *had = jstr(task_container(task), "image_id");
    if (image && !(had && jstr_is(image, "id", had))) {
        json_object_set_new(task, "container", task_container_spec(spec, image));
        expand_hostname(svc, task);
        json_object_set(fields, "container", task_container(task));
    }
    return fields;
}

static void try_assign(struct pass *p, json_t *svc, json_t *task)
{
    struct serr err = {0};
    json_t *spec = service_spec(svc);
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
    if (p->load == NULL) /* built once a pass: placements add to it (task_merge) */
        p->load = sched_load_new(pass_tasks(p));
    json_t *node = scheduler_pick_loaded(nodes, p->load, service_id(svc), &pl, &err);
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
    json_t *container = task_container(task);
    const char *tmpl = jstr(container, "hostname");
    if (tmpl == NULL || strstr(tmpl, "{{") == NULL)
        return;
    char slot[64];
    json_t *s = task_slot(task);
    if (json_is_integer(s))
        snprintf(slot, sizeof(slot), "%lld", (long long)json_integer_value(s));
    else
        snprintf(slot, sizeof(slot), "%s", json_string_value(s) ? json_string_value(s) : "");
    char *hostname = service_hostname_expand(tmpl, service_id(svc), service_name(svc),
                                             task_id(task), task_name(task), slot);
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
    if (previous == NULL || task_spec_version(previous) != service_version(svc) ||
        task_run(previous) != service_run(svc))
        return;
    json_int_t attempts = task_restart_attempts(previous);
    json_int_t since = jint(previous, "restart_window_start", p->now);
    bool stopped = task_state_is(previous, "shutdown") || task_state_is(previous, "orphaned");
    json_int_t window = jint(service_spec(svc), "restart_window_ms", 0);
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

/* image_resolve (two store reads) once a pass per reference found: the
 * tasks a pass creates for a service share the image. */
static json_t *pass_image(struct pass *p, const char *ref, struct serr *err)
{
    json_t *image = ref ? json_object_get(p->images, ref) : NULL;
    if (image)
        return json_incref(image);
    image = image_resolve(p->st, ref, err);
    if (image && ref)
        json_object_set(p->images, ref, image);
    return image;
}

/* Returns the new task (owned by p->tasks); `previous` is the slot's last
 * task or NULL. */
static json_t *create_task(struct pass *p, json_t *svc, json_t *slot, json_t *previous)
{
    json_t *spec = service_spec(svc);
    char id[26];
    random_hex(id, 25);
    char name[300];
    if (json_is_integer(slot))
        snprintf(name, sizeof(name), "%s.%lld", service_name(svc),
                 (long long)json_integer_value(slot));
    else
        snprintf(name, sizeof(name), "%s.%s", service_name(svc), json_string_value(slot));
    json_t *task =
        json_pack("{s:s, s:s, s:s, s:O, s:s, s:O, s:s, s:s, s:I, s:s, s:s, s:I}", "id", id,
                  "service_id", service_id(svc), "service_name", service_name(svc), "slot", slot,
                  "name", name, "spec_version", json_object_get(svc, "version"), "desired_state",
                  "running", "state", "pending", "state_at", (json_int_t)p->now, "message",
                  "created", "error", "", "created_at", (json_int_t)p->now);
    if (service_run(svc) > 0) /* a replicated job's run (manager/job_runs.h) */
        json_object_set(task, "run", json_object_get(svc, "run"));
    json_t *reserve = json_object_get(json_object_get(spec, "reservations"), "cpus");
    if (json_number_value(reserve) > 0) /* counted by both schedulers (scheduler.h) */
        json_object_set(task, "reserved_cpus", reserve);
    json_t *memory = json_object_get(json_object_get(spec, "reservations"), "memory");
    if (json_integer_value(memory) > 0) /* counted by the task scheduler */
        json_object_set(task, "reserved_memory", memory);
    count_restart(p, svc, previous, task);
    struct serr err = {0};
    json_t *image = pass_image(p, jstr(spec, "image"), &err);
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
    json_array_append(p->new_tasks, task);
    if (p->tasks)
        json_array_append(p->tasks, task);
    if (p->load)
        sched_load_count(p->load, task, 1);
    json_array_append_new(p->ops, op_put("tasks", json_incref(task)));
    json_object_set_new(p->created, task_id(task), json_true());
    if (image)
        try_assign(p, svc, task); /* its assignment goes into the put (task_merge) */
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
    bool window_over = window > 0 && task_state_at(task) - task_restart_window_start(task) > window;
    if (max > 0 && !window_over && task_restart_attempts(task) >= max)
        return false; /* --restart-max-attempts reached (within --restart-window) */
    if (cond && strcmp(cond, "on-failure") == 0)
        return !task_state_is(task, "complete");
    return true;
}

bool task_finished_for_good(json_t *svc, json_t *task)
{
    const char *state = task_state(task);
    /* "shutdown" is a stop asked for (update, drain, scale): the slot goes on */
    if (!task_state_terminal(state) || strcmp(state, "shutdown") == 0)
        return false;
    bool scheduled = job_runs_service(svc) && jstr(service_spec(svc), "schedule");
    if (task_spec_version(task) < service_version(svc) && !scheduled)
        return false; /* a new task template runs the slot again (a scheduled job's next run) */
    if (task_run(task) < service_run(svc))
        return false; /* a new run of a replicated job runs it again */
    return !should_restart(service_spec(svc), task);
}

/* Of one slot's `tasks` (tasks_by_slot): the newest with desired state
 * running, and the newest. */
static void slot_tasks(json_t *tasks, json_t **current, json_t **latest)
{
    *current = *latest = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        json_int_t at = task_created_at(t);
        if (*latest == NULL || at > task_created_at(*latest))
            *latest = t;
        if (task_desired_is(t, "running") &&
            (*current == NULL || at > task_created_at(*current)))
            *current = t;
    }
}

/* --update-order start-first: the old task of the slot runs on until its
 * replacement `cur` runs (or has ended: it failed or was rejected), as
 * Swarm's; then it is stopped. Stop-first never has two. `tasks`: the
 * slot's (tasks_by_slot). */
static void stop_replaced_tasks(struct pass *p, json_t *tasks, json_t *cur)
{
    if (cur == NULL || (!task_state_is(cur, "running") && !task_finished(cur)))
        return;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (t != cur && task_desired_is(t, "running"))
            task_set_desired(p, t, "shutdown");
    }
}

/* A job with spec.max_concurrent (--max-concurrent) has that many live
 * tasks (wanted running, not finished): no other starts now. */
static bool at_max_concurrent(json_t *svc, json_t *tasks)
{
    json_int_t max = jint(service_spec(svc), "max_concurrent", 0);
    if (max <= 0 || !job_runs_service(svc))
        return false;
    json_int_t live = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (task_desired_is(t, "running") && !task_finished(t))
            live++;
    }
    return live >= max;
}

/* `tasks`: the service's; `of_slot`: those of the slot (tasks_by_slot). */
static void reconcile_slot(struct pass *p, json_t *svc, json_t *tasks, json_t *of_slot,
                           json_t *slot, json_t *update_candidates)
{
    json_t *spec = service_spec(svc);
    json_t *cur, *last;
    slot_tasks(of_slot, &cur, &last);
    stop_replaced_tasks(p, of_slot, cur);
    if (cur == NULL) {
        if (last && !task_finished(last))
            return; /* stop first: the previous task of this slot is still stopping */
        if (last && task_finished_for_good(svc, last))
            return; /* done: its restart policy does not run it again */
        /* the restart delay slows crash loops; a stop or a lost node is no crash */
        bool new_run = last && task_run(last) < service_run(svc);
        if (last && !new_run && !task_state_is(last, "shutdown") &&
            !task_state_is(last, "orphaned")) {
            int64_t due = task_state_at(last) + jint(spec, "restart_delay_ms", 0);
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
    if (task_finished(cur)) {
        /* no longer wanted running: either a new task replaces it (next pass, after the
         * restart delay) or the slot is done (task_finished_for_good), as Swarm shows it */
        task_set_desired(p, cur, "shutdown");
        return;
    }
    if (task_spec_version(cur) < service_version(svc)) {
        json_array_append(update_candidates, cur);
        return;
    }
    if (task_state_is(cur, "pending"))
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
    json_t *spec = service_spec(svc);
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
        json_array_append(tasks, create_task(p, svc, task_slot(old), old));
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
    json_int_t version = service_version(svc);
    int in_progress = 0;
    int64_t last_running_at = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (task_spec_version(t) != version)
            continue;
        if (task_desired_is(t, "running") && task_state_is(t, "running")) {
            int64_t at = task_state_at(t);
            if (at > last_running_at)
                last_running_at = at;
        } else if (task_desired_is(t, "running") && !task_finished(t)) {
            in_progress++;
        }
    }
    /* old tasks being stopped for the update count as in progress too */
    json_array_foreach(tasks, i, t)
    {
        if (task_spec_version(t) < version && !task_desired_is(t, "running") && !task_finished(t))
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
    json_array_append_new(p->ops, op_merge("services", service_id(svc), fields));
}

/* Have more tasks of the new version failed since the update began than
 * max_failure_ratio (default 0: any) of the `slots` tolerates? */
static bool new_version_failed(json_t *svc, json_t *tasks, size_t slots)
{
    json_int_t version = service_version(svc);
    json_int_t since = service_updated_at(svc);
    size_t failed = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (task_spec_version(t) == version && task_state_is(t, "failed") &&
            task_state_at(t) >= since)
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
    json_int_t version = service_version(svc);
    json_t *uc = rollout_config(svc);
    bool watch = watches_failures(uc);
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (!task_desired_is(t, "running"))
            continue;
        if (task_spec_version(t) != version || !task_state_is(t, "running"))
            return false;
        int64_t held = task_state_at(t) + monitor_ms(uc);
        if (watch && held > p->now) {
            wake_at(p, held);
            return false;
        }
    }
    return true;
}

static void start_rollback(struct pass *p, json_t *svc)
{
    json_t *spec = service_spec(svc);
    json_t *next = json_deep_copy(svc);
    json_object_set(next, "spec", json_object_get(svc, "previous_spec"));
    json_object_set(next, "previous_spec", spec);
    json_object_set_new(next, "version", json_integer(service_version(svc) + 1));
    json_object_set_new(next, "updated_at", json_integer(p->now));
    json_object_set_new(next, "update_state", json_string("rollback_started"));
    log_info("service %s: a task of the update failed, rolling back", service_name(svc));
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
                   json_object_get(service_spec(svc), "ports"))) {
        start_rollback(p, svc);
        return true;
    }
    log_info("service %s: a task of the update failed, the update is paused", service_name(svc));
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
    const char *state = service_update_state(svc);
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
    if (job_runs_service(svc) && service_run(svc) == 0)
        return json_array(); /* a scheduled job before its first run */
    return spec_slots(p, service_spec(svc));
}

/* A task the slot's history may forget: finished and no longer wanted. */
static bool task_dead(json_t *t)
{
    return !task_desired_is(t, "running") && task_finished(t);
}

/* Forgets dead tasks of the slot (`tasks`: its own), oldest first, while
 * the slot holds more tasks than the history limit (live tasks count but
 * are never forgotten: Swarm's task reaper). The newest task stays whatever the limit: its state
 * decides the slot's restart delay and whether the slot is done. */
static void trim_history(struct pass *p, json_t *tasks)
{
    if (p->history_limit < 0)
        return;
    json_t *cur, *newest;
    slot_tasks(tasks, &cur, &newest);
    json_t *dead = json_array();
    json_int_t in_slot = (json_int_t)json_array_size(tasks);
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (task_dead(t) && t != newest)
            json_array_append(dead, t);
    }
    while (in_slot > p->history_limit && json_array_size(dead) > 0) {
        size_t oldest = 0;
        json_array_foreach(dead, i, t)
        {
            if (task_created_at(t) < task_created_at(json_array_get(dead, oldest)))
                oldest = i;
        }
        json_array_append_new(p->ops, op_del("tasks", task_id(json_array_get(dead, oldest))));
        json_array_remove(dead, oldest);
        in_slot--;
    }
    json_decref(dead);
}

/* A replicated job: starts its runs, records their ends (manager/job_runs.h). */
static void follow_job_runs(struct pass *p, json_t *svc, json_t *tasks)
{
    json_t *slots = spec_slots(p, service_spec(svc));
    json_t *fields = job_runs_pass(svc, tasks, slots, p->now, &p->wake_at);
    json_decref(slots);
    if (json_object_size(fields) > 0)
        service_merge(p, svc, fields);
    else
        json_decref(fields);
}

/* A slot as a key of an object: slots equal (slot_equal) have equal keys.
 * NULL for a task without one (it equals no slot). Caller frees. */
static char *slot_key(json_t *slot)
{
    return slot ? json_dumps(slot, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

/* Appends t to the list of `key` in groups ({key: [...]}), made when first needed. */
static void group_append(json_t *groups, const char *key, json_t *t)
{
    json_t *list = json_object_get(groups, key);
    if (list == NULL) {
        list = json_array();
        json_object_set_new(groups, key, list);
    }
    json_array_append(list, t);
}

/* {slot key: [its tasks, in the order of `tasks`]}, in the order the slots
 * first appear: each slot's work then reads its own tasks, not the
 * service's (a pass is linear in the tasks, not slots x tasks). */
static json_t *tasks_by_slot(json_t *tasks)
{
    json_t *by_slot = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        char *key = slot_key(task_slot(t));
        if (key == NULL)
            continue;
        group_append(by_slot, key, t);
        free(key);
    }
    return by_slot;
}

static bool in_slots(json_t *slot_set, json_t *slot)
{
    char *key = slot_key(slot);
    bool in = key && json_object_get(slot_set, key);
    free(key);
    return in;
}

static const char *group_of(json_t *task)
{
    const char *sid = task_service_id(task);
    return sid ? sid : NO_SERVICE;
}

/* {service id: [its tasks, in the order of `tasks`]}, those of no service
 * under NO_SERVICE: each service's reconciliation reads its own tasks, not
 * every task of the cluster. */
static json_t *tasks_by_service(json_t *tasks)
{
    json_t *by_service = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) group_append(by_service, group_of(t), t);
    return by_service;
}

/* `by_service`: tasks_by_service of the pass's tasks. */
static void reconcile_service(struct pass *p, json_t *svc, json_t *by_service)
{
    /* its own array: the tasks created for it are appended */
    json_t *tasks = json_copy(json_object_get(by_service, service_id(svc)));
    if (tasks == NULL)
        tasks = json_array();
    size_t i;
    json_t *t;
    if (job_runs_service(svc))
        follow_job_runs(p, svc, tasks);
    json_t *slots = wanted_slots(p, svc);
    json_t *wanted = json_object();
    json_t *slot;
    json_array_foreach(slots, i, slot)
    {
        char *key = slot_key(slot);
        json_object_set_new(wanted, key, json_true());
        free(key);
    }
    json_array_foreach(tasks, i, t)
    {
        if (task_desired_is(t, "running") && !in_slots(wanted, task_slot(t)))
            task_set_desired(p, t, "shutdown");
    }
    json_decref(wanted);
    json_t *candidates = json_array();
    json_t *by_slot = tasks_by_slot(tasks);
    json_array_foreach(slots, i, slot)
    {
        char *key = slot_key(slot);
        json_t *of_slot = json_object_get(by_slot, key);
        if (of_slot == NULL) { /* a slot without tasks yet */
            of_slot = json_array();
            json_object_set_new(by_slot, key, of_slot);
        }
        free(key);
        reconcile_slot(p, svc, tasks, of_slot, slot, candidates);
    }
    json_decref(by_slot);
    bool go_on = update_may_go_on(p, svc, tasks, json_array_size(candidates) > 0,
                                  json_array_size(slots));
    if (go_on && json_array_size(candidates))
        rolling_update(p, svc, tasks, candidates);
    by_slot = tasks_by_slot(tasks); /* with the tasks created meanwhile */
    const char *key;
    json_t *of_slot;
    json_object_foreach(by_slot, key, of_slot)
        trim_history(p, of_slot);
    json_decref(by_slot);
    json_decref(candidates);
    json_decref(slots);
    json_decref(tasks);
}

/* The tasks read (p->by_service) of no service of `services`, by id: a
 * removed service's, a batch job's (its service id "job.ID", not a
 * service's: manager/jobs.c) or of no service at all. One look-up per
 * group, not per task (the tasks the pass creates are of its services). New
 * array. */
static json_t *stray_tasks(struct pass *p, json_t *services)
{
    json_t *ids = json_object();
    size_t i;
    json_t *svc;
    json_array_foreach(services, i, svc)
    {
        if (service_id(svc))
            json_object_set_new(ids, service_id(svc), json_true());
    }
    json_t *strays = json_array();
    const char *sid;
    json_t *list;
    json_object_foreach(p->by_service, sid, list)
    {
        if (json_object_get(ids, sid) == NULL)
            json_array_extend(strays, list);
    }
    json_decref(ids);
    return sorted_by_id(strays);
}

/* Tasks of removed services (among `strays`, stray_tasks'): stop them,
 * then forget them once finished. */
static void reap_orphans(struct pass *p, json_t *strays)
{
    size_t i;
    json_t *t;
    json_array_foreach(strays, i, t)
    {
        if (json_object_get(t, "job_id"))
            continue; /* a job's task: manager/jobs.c */
        bool unplaced = json_object_get(t, "node_id") == NULL;
        if (task_finished(t) || unplaced)
            json_array_append_new(p->ops, op_del("tasks", task_id(t)));
        else
            task_set_desired(p, t, "remove");
    }
}

/* A node down for this long has lost its tasks (then started elsewhere):
 * a board back within NODE_DOWN_MS + this keeps them. */
#define ORPHAN_GRACE_MS 3000

/* {node id: [the tasks placed on it, in the order of `tasks`]}. */
static json_t *tasks_by_node(json_t *tasks)
{
    json_t *by_node = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const char *node = jstr(t, "node_id");
        if (node == NULL)
            continue;
        group_append(by_node, node, t);
    }
    return by_node;
}

struct kept_on_node {
    json_t *by_id; /* the kept tasks, by id */
    json_t *out;
};

static void add_kept_task(void *arg, const char *id, const char *data, size_t len)
{
    (void)data, (void)len;
    struct kept_on_node *k = arg;
    json_t *t = json_object_get(k->by_id, id);
    if (t) /* not an ended job's, which a pass does not read */
        json_array_append(k->out, t);
}

/* The kept tasks on node `id`, by id: the store's index of tasks by node
 * names them (no row parsed), the kept objects are the pass's. The kept
 * tasks are the store's as a pass begins (bring_up_to_date), so these are
 * the tasks a pass over all of them would find; a drained leader with no
 * task costs a pass one look-up, not a grouping of every task. New array. */
static json_t *kept_tasks_on(struct pass *p, const char *id)
{
    struct kept_on_node k = {.by_id = p->kept->by_id, .out = json_array()};
    store_each_where(p->st, "tasks", "node_id", id, add_kept_task, &k);
    return k.out;
}

/* The tasks placed on `node` (borrowed; NULL: none), from *by_node, made
 * on first use: with kept tasks, the node's alone (kept_tasks_on); else one
 * pass over the tasks, not one per node. */
static json_t *tasks_on(struct pass *p, json_t **by_node, json_t *node)
{
    if (*by_node == NULL)
        *by_node = p->kept ? json_object() : tasks_by_node(pass_tasks(p));
    if (p->kept && json_object_get(*by_node, node_id(node)) == NULL)
        json_object_set_new(*by_node, node_id(node), kept_tasks_on(p, node_id(node)));
    return json_object_get(*by_node, node_id(node));
}

/* Tasks on a node that is down are lost to the cluster: orphaned (a final
 * state), so that restart policies start them elsewhere, once the node has
 * been down for ORPHAN_GRACE_MS. Tasks on a drained
 * node are stopped, and started elsewhere. */
static void orphan_tasks_of_down_nodes(struct pass *p)
{
    json_t *by_node = NULL;
    size_t i, k;
    json_t *n, *t;
    json_array_foreach(p->nodes, i, n)
    {
        if (jstr_is(n, "availability", "drain")) {
            /* drained: stop its tasks; their slots get new tasks elsewhere */
            json_array_foreach(tasks_on(p, &by_node, n), k, t)
            {
                if (task_desired_is(t, "running"))
                    task_set_desired(p, t, "shutdown");
            }
        }
        if (!node_status_is(n, "down"))
            continue;
        /* a short blip (a paused or rebooting board) keeps its tasks */
        int64_t lost_at = node_updated_at(n) + ORPHAN_GRACE_MS;
        if (lost_at > p->now) {
            wake_at(p, lost_at);
            continue;
        }
        json_array_foreach(tasks_on(p, &by_node, n), k, t)
        {
            if (task_finished(t))
                continue;
            char msg[300];
            snprintf(msg, sizeof(msg), "node %s is down", node_hostname(n));
            task_merge(p, t,
                       json_pack("{s:s, s:s, s:s, s:I}", "state", "orphaned", "message",
                                 "orphaned", "error", msg, "state_at", (json_int_t)p->now));
        }
    }
    json_decref(by_node);
}

json_int_t orchestrator_history_limit(struct store *st)
{
    json_t *meta = store_get(st, "meta", "cluster");
    json_int_t limit = jint(meta, "task_history_limit", TASK_HISTORY_DEFAULT);
    json_decref(meta);
    return limit;
}

/* Whether the pass may skip `svc`: the last pass found it settled
 * (service_quiet), and nothing it reads changed since: its record, its
 * tasks (in the store or in this pass), the nodes, the history limit
 * (settled_inputs). */
static bool service_settled(struct pass *p, json_t *svc)
{
    if (p->kept == NULL)
        return false;
    const char *sid = service_id(svc);
    json_t *was = json_object_get(p->kept->settled, sid);
    return was && json_equal(was, svc) && !json_object_get(p->kept->dirty, sid) &&
           !json_object_get(p->touched, sid);
}

/* Whether a pass that visited `svc` (its `tasks`, by_service's) would, with
 * the same inputs, do nothing: it proposed nothing for it nor waits for a
 * time (`waits`), it has no pending task (whose placement hangs on other
 * services' loads and the jobs' cores), and it is no replicated job (whose
 * runs follow the clock). */
static bool service_quiet(json_t *svc, json_t *tasks, bool proposed, bool waits)
{
    if (proposed || waits || job_runs_service(svc))
        return false;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (task_state_is(t, "pending"))
            return false;
    }
    return true;
}

/* Whether nodes `a` and `b` are the same as a pass reads them: a node's
 * "subnet" (task networking: the leader assigns them one node at a time as
 * nodes join, an entry each) is read by no pass. Compared member by
 * member, not on copies without it. */
static bool node_same_for_pass(json_t *a, json_t *b)
{
    if (json_equal(a, b))
        return true;
    if (!json_is_object(a) || !json_is_object(b))
        return false;
    size_t na = json_object_size(a) - (json_object_get(a, "subnet") != NULL);
    size_t nb = json_object_size(b) - (json_object_get(b, "subnet") != NULL);
    if (na != nb)
        return false;
    const char *key;
    json_t *v;
    json_object_foreach(a, key, v)
    {
        if (strcmp(key, "subnet") != 0 && !json_equal(v, json_object_get(b, key)))
            return false;
    }
    return true;
}

static bool nodes_same_for_pass(json_t *a, json_t *b)
{
    if (a == NULL || json_array_size(a) != json_array_size(b))
        return false;
    size_t i;
    json_t *n;
    json_array_foreach(a, i, n)
    {
        if (!node_same_for_pass(n, json_array_get(b, i)))
            return false;
    }
    return true;
}

/* Forgets the settled services when the nodes or the history limit, which
 * every service reads, changed since the last pass; keeps this pass's. */
static void settled_inputs(struct pass *p)
{
    struct orch_tasks *kept = p->kept;
    if (kept == NULL)
        return;
    if (!nodes_same_for_pass(kept->nodes, p->nodes) || kept->history_limit != p->history_limit)
        json_object_clear(kept->settled);
    json_decref(kept->nodes);
    kept->nodes = json_incref(p->nodes);
    kept->history_limit = p->history_limit;
}

/* reconcile_service, unless the service is settled (service_settled);
 * `settled`: the pass's settled services, which it adds to. */
static void visit_service(struct pass *p, json_t *svc, json_t *settled)
{
    json_t *by_service = p->by_service;
    if (service_settled(p, svc)) {
        json_object_set(settled, service_id(svc), svc);
        return;
    }
    /* reconcile_service may replace members of svc (a rollback's spec):
     * its id is copied */
    char *sid = xstrdup(service_id(svc));
    size_t ops_before = json_array_size(p->ops);
    int64_t wake_before = p->wake_at;
    p->wake_at = 0; /* this service's own */
    reconcile_service(p, svc, by_service);
    bool waits = p->wake_at != 0;
    if (wake_before != 0)
        wake_at(p, wake_before);
    bool proposed = json_array_size(p->ops) != ops_before;
    if (p->kept && service_quiet(svc, json_object_get(by_service, sid), proposed, waits))
        json_object_set(settled, sid, svc);
    free(sid);
}

/* Hands the pass's loads (p->load) back to its `kept` as they count the
 * kept tasks: less the tasks the services' reconciliation created
 * (p->new_tasks: read again at the next pass, then counted); none when the
 * jobs' pass changed tasks (it does not count its changes) or the pass
 * keeps nothing. */
static void keep_load(struct pass *p, bool jobs_changed)
{
    if (p->kept == NULL || jobs_changed) {
        sched_load_free(p->load);
        return;
    }
    size_t i;
    json_t *t;
    if (p->load)
        json_array_foreach(p->new_tasks, i, t) sched_load_count(p->load, t, -1);
    p->kept->load = p->load;
}

/* jobs_pass's every task: the pass's (struct pass), made when first needed. */
static json_t *every_task_of_pass(void *pass)
{
    return pass_tasks(pass);
}

/* A pass over the tasks grouped in `by_service` (tasks_by_service of
 * jobs_pass_tasks; taken) and, when the caller has them, `tasks` (all of
 * them, by id; taken; NULL: made when needed), which it changes in memory
 * as it adds ops; with `kept`, it skips the services settled since the
 * last pass and takes the loads kept (kept->load) until it hands them back. */
static json_t *pass_over(struct store *st, struct orch_tasks *kept, json_t *by_service,
                         json_t *tasks, int64_t now, int64_t *wake_at_ms,
                         struct jobs_plan_memo *plan)
{
    struct pass p = {.st = st, .kept = kept, .ops = json_array(), .created = json_object(),
                     .images = json_object(), .touched = json_object(),
                     .new_tasks = json_array(), .now = now};
    if (kept) {
        p.load = kept->load;
        kept->load = NULL;
    }
    p.history_limit = orchestrator_history_limit(st);
    p.nodes = store_list(st, "nodes", NULL);
    p.tasks = tasks;
    p.by_service = by_service;
    settled_inputs(&p);
    json_t *services = store_list(st, "services", NULL);
    size_t i;
    json_t *svc;
    orphan_tasks_of_down_nodes(&p);
    json_t *settled = json_object();
    json_array_foreach(services, i, svc) visit_service(&p, svc, settled);
    if (kept) {
        json_decref(kept->settled);
        kept->settled = settled;
    } else {
        json_decref(settled);
    }
    size_t ops_before_jobs = json_array_size(p.ops);
    json_t *strays = stray_tasks(&p, services);
    struct jobs_tasks jobs_tasks = {.of_jobs = strays, .all = every_task_of_pass, .arg = &p};
    jobs_pass_of(st, p.nodes, &jobs_tasks, p.ops, now, &p.wake_at, plan);
    bool jobs_changed = json_array_size(p.ops) != ops_before_jobs;
    reap_orphans(&p, strays);
    keep_load(&p, jobs_changed);
    json_decref(strays);
    json_decref(p.by_service);
    json_decref(p.new_tasks);
    json_decref(services);
    json_decref(p.job_cores);
    json_decref(p.created);
    json_decref(p.images);
    json_decref(p.touched);
    json_decref(p.tasks);
    json_decref(p.nodes);
    *wake_at_ms = p.wake_at;
    return p.ops;
}

json_t *orchestrator_pass(struct store *st, int64_t now, int64_t *wake_at_ms)
{
    json_t *tasks = jobs_pass_tasks(st); /* the job history left out */
    return pass_over(st, NULL, tasks_by_service(tasks), tasks, now, wake_at_ms, NULL);
}

struct orch_tasks *orch_tasks_new(void)
{
    struct orch_tasks *kept = xcalloc(1, sizeof(*kept));
    kept->changed = json_object();
    kept->settled = json_object();
    kept->dirty = json_object();
    return kept;
}

void orch_tasks_free(struct orch_tasks *kept)
{
    if (kept == NULL)
        return;
    json_decref(kept->groups);
    json_decref(kept->by_id);
    json_decref(kept->changed);
    jobs_plan_memo_clear(&kept->plan);
    json_decref(kept->settled);
    json_decref(kept->dirty);
    json_decref(kept->nodes);
    sched_load_free(kept->load);
    free(kept);
}

/* Notes the service of task `t` in `dirty` ({service id: true}). */
static void note_dirty(json_t *dirty, json_t *t)
{
    if (task_service_id(t))
        json_object_set_new(dirty, task_service_id(t), json_true());
}

/* `kept` (by id) without the tasks named in `ids`, with `fresh` (by id) in
 * their place: a new array, by id. The services of the tasks replaced or
 * read go into `dirty`; `load` (or NULL) counts the replaced ones out and
 * the fresh ones in. */
static json_t *merged_by_id(json_t *kept, json_t *ids, json_t *fresh, json_t *dirty,
                            struct sched_load *load)
{
    json_t *out = json_array();
    size_t i, k = 0, nfresh = json_array_size(fresh);
    json_t *t;
    json_array_foreach(fresh, i, t)
    {
        note_dirty(dirty, t);
        if (load)
            sched_load_count(load, t, 1);
    }
    json_array_foreach(kept, i, t)
    {
        if (json_object_get(ids, task_id(t))) {
            note_dirty(dirty, t); /* deleted, or read again: its service as it was */
            if (load)
                sched_load_count(load, t, -1);
            continue;
        }
        while (k < nfresh && strcmp(task_id(json_array_get(fresh, k)), task_id(t)) < 0)
            json_array_append(out, json_array_get(fresh, k++));
        json_array_append(out, t);
    }
    while (k < nfresh)
        json_array_append(out, json_array_get(fresh, k++));
    return out;
}

/* Reads every task again (jobs_pass_tasks) into kept's groups. */
static void read_every_task(struct orch_tasks *kept, struct store *st)
{
    json_t *tasks = jobs_pass_tasks(st);
    json_decref(kept->groups);
    json_decref(kept->by_id);
    kept->groups = tasks_by_service(tasks);
    kept->by_id = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) json_object_set(kept->by_id, task_id(t), t);
    json_decref(tasks);
}

/* The groups (by service) that the tasks of `ids` were in or that the
 * `fresh` ones (tasks_by_service of those read again) go to: {group: true}. */
static json_t *groups_changed(struct orch_tasks *kept, json_t *ids, json_t *fresh)
{
    json_t *groups = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(ids, key, v)
    {
        json_t *was = json_object_get(kept->by_id, key);
        if (was)
            json_object_set_new(groups, group_of(was), json_true());
    }
    json_object_foreach(fresh, key, v) json_object_set_new(groups, key, json_true());
    return groups;
}

/* Replaces in kept's groups (and its index by id) the tasks of `ids` with
 * those read again: only the groups they were in or go to are merged. */
static void merge_changed(struct orch_tasks *kept, struct store *st, json_t *ids)
{
    json_t *read = jobs_pass_tasks_among(st, ids);
    json_t *fresh = tasks_by_service(read);
    json_t *groups = groups_changed(kept, ids, fresh);
    json_t *none = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(groups, key, v)
    {
        json_t *was = json_object_get(kept->groups, key);
        json_t *now = json_object_get(fresh, key);
        json_t *merged = merged_by_id(was ? was : none, ids, now ? now : none, kept->dirty,
                                      kept->load);
        if (json_array_size(merged) > 0) {
            json_object_set_new(kept->groups, key, merged);
        } else {
            json_decref(merged);
            json_object_del(kept->groups, key);
        }
    }
    json_object_foreach(ids, key, v) json_object_del(kept->by_id, key);
    size_t i;
    json_t *t;
    json_array_foreach(read, i, t) json_object_set(kept->by_id, task_id(t), t);
    json_decref(none);
    json_decref(groups);
    json_decref(fresh);
    json_decref(read);
}

/* Brings kept's groups up to the store: the tasks changed since the last
 * pass, by the entries applied or by that pass in memory, read again; all
 * of them when the store does not know what changed. */
static void bring_up_to_date(struct orch_tasks *kept, struct store *st)
{
    json_t *ids = store_take_changed_tasks(st);
    json_object_clear(kept->dirty);
    if (ids == NULL || kept->groups == NULL) {
        read_every_task(kept, st);
        json_object_clear(kept->settled); /* what changed is not known */
        sched_load_free(kept->load);
        kept->load = NULL; /* counted again when first needed */
    } else {
        json_object_update(ids, kept->changed);
        if (json_object_size(ids) > 0)
            merge_changed(kept, st, ids);
    }
    json_decref(ids);
    json_object_clear(kept->changed);
}

/* The tasks `ops` put, merge or delete: changed in memory by the pass (or
 * new), read again before the next. */
static void note_changed(struct orch_tasks *kept, json_t *ops)
{
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        if (!jstr_is(op, "table", "tasks"))
            continue;
        const char *id = jstr(op, "id");
        if (id == NULL)
            id = jstr(json_object_get(op, "obj"), "id");
        if (id)
            json_object_set_new(kept->changed, id, json_true());
    }
}

json_t *orchestrator_pass_kept(struct orch_tasks *kept, struct store *st, int64_t now,
                               int64_t *wake_at_ms)
{
    bring_up_to_date(kept, st);
    /* the groups are not changed by the pass (each service's reconciliation
     * copies its own), their tasks are, in memory (read again next time) */
    json_t *ops = pass_over(st, kept, json_incref(kept->groups), NULL, now, wake_at_ms,
                            &kept->plan);
    note_changed(kept, ops);
    return ops;
}

/* Newest task of its slot among `tasks`? */
static bool newest_of_slot(json_t *tasks, json_t *task)
{
    json_int_t at = task_created_at(task);
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (t != task && slot_equal(task_slot(t), task_slot(task)) && task_created_at(t) > at)
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
    json_t *spec = service_spec(svc);
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (task_desired_is(t, "running")) {
            if (task_state_is(t, "running"))
                out->running++;
            else if (task_state_is(t, "pending") && task_error(t) && task_error(t)[0] &&
                     out->pending_reason == NULL)
                out->pending_reason = task_error(t);
            continue;
        }
        if (!task_finished_for_good(svc, t) || !slot_in_spec(spec, task_slot(t)) ||
            !newest_of_slot(tasks, t))
            continue;
        if (task_state_is(t, "complete")) {
            out->completed++;
        } else {
            out->failed++;
            if (out->failed_reason == NULL)
                out->failed_reason = task_error(t);
        }
    }
}
