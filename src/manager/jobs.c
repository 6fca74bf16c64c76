#include "manager/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/json_get.h"
#include "base/util.h"
#include "manager/jobs_sched.h"
#include "manager/scheduler.h"
#include "manager/service.h"
#include "model/container_opts.h"
#include "model/job_props.h"
#include "model/node.h"
#include "model/task.h"
#include "store/store.h"

/* A host job's PATH (it gets none of the daemon's environment). */
#define JOB_HOST_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int64_t iget(json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

static bool is_besteffort(json_t *job)
{
    return jstr_is(job, "queue", "besteffort");
}

static bool has_type(json_t *job, const char *type)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(job, "types"), i, t)
    {
        if (json_is_string(t) && strcmp(json_string_value(t), type) == 0)
            return true;
    }
    return false;
}

static bool state_in(const char *state, const char *const *states)
{
    for (int i = 0; state && states[i]; i++)
        if (strcmp(state, states[i]) == 0)
            return true;
    return false;
}

static const char *const final_states[] = {"Terminated", "Error", NULL};
/* Every state but the final ones: the jobs a pass reads (store index
 * jobs_state), so that its cost follows them, not the history. */
static const char *const live_states[] = {"Waiting", "Hold", "toLaunch", "Launching",
                                          "Running", "Finishing", NULL};
static const char *const active_states[] = {"toLaunch", "Launching", "Running", "Finishing",
                                            NULL};
/* The live states but Waiting: the jobs that can have a task (launch gives a
 * job its task as it leaves Waiting, requeue drops it). */
static const char *const live_not_waiting[] = {"Hold",    "toLaunch",  "Launching",
                                               "Running", "Finishing", NULL};

bool job_state_final(const char *state)
{
    return state_in(state, final_states);
}

bool job_state_active(const char *state)
{
    return state_in(state, active_states);
}

/* The jobs not ended (new array, by id). */
static json_t *live_jobs(struct store *st)
{
    return store_list_in(st, "jobs", "state", live_states, "CAST(id AS INTEGER)");
}

static json_t *active_jobs(struct store *st)
{
    return store_list_in(st, "jobs", "state", active_states, NULL);
}

json_t *jobs_pass_tasks(struct store *st)
{
    /* only the jobs that can have a task: a long queue of waiting jobs costs
     * no lookup of a task each */
    return store_tasks_but_ended_jobs(st, task_final_states, live_not_waiting);
}

json_t *jobs_pass_tasks_among(struct store *st, json_t *ids)
{
    return store_tasks_but_ended_jobs_among(st, task_final_states, live_not_waiting, ids);
}

/* ---- submission ---- */

/* Which of `nodes` a job's property filter (-p) allows (caller frees), or
 * NULL without one: every node. */
static bool *nodes_allowed(const char *props, json_t *nodes)
{
    if (props == NULL)
        return NULL;
    bool *allowed = xcalloc(json_array_size(nodes) + 1, sizeof(*allowed));
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) allowed[i] = job_props_match(props, n);
    return allowed;
}

/* Refuses a request no state of the cluster can ever satisfy: more nodes
 * (matching its properties, with enough cores) than the store has. */
static int check_possible(struct store *st, const struct job_res *r, const char *props,
                          struct serr *err)
{
    json_t *nodes = store_list(st, "nodes", NULL);
    int big = 0, most = 0, total = 0;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        if (props && !job_props_match(props, n))
            continue;
        total++;
        big += node_cpus(n) >= r->cores;
        if (node_cpus(n) > most)
            most = node_cpus(n);
    }
    json_decref(nodes);
    if (big >= r->nodes)
        return 0;
    if (props && total == 0)
        return serr_set(err, SERR_INVALID, "impossible request: no node matches the properties "
                        "%s (they are node labels: see node inspect)", props);
    if (props && r->nodes > total)
        return serr_set(err, SERR_INVALID, "impossible request: %d node%s wanted, %d node%s "
                        "match%s the properties %s", r->nodes, r->nodes == 1 ? "" : "s", total,
                        total == 1 ? "" : "s", total == 1 ? "es" : "", props);
    if (r->nodes > total)
        return serr_set(err, SERR_INVALID, "impossible request: %d node%s wanted, the cluster has "
                        "%d", r->nodes, r->nodes == 1 ? "" : "s", total);
    return serr_set(err, SERR_INVALID, "impossible request: %d core%s on each of %d node%s wanted, "
                    "%d node%s of the cluster ha%s that many (the most is %d)", r->cores,
                    r->cores == 1 ? "" : "s", r->nodes, r->nodes == 1 ? "" : "s", big,
                    big == 1 ? "" : "s", big == 1 ? "s" : "ve", most);
}

/* The image a job runs: the one named, else the first tag of the store
 * (by name), so a cluster with one image needs no --image. */
static json_t *job_image(struct store *st, const char *ref, char *name, size_t size,
                         struct serr *err)
{
    json_t *tags = store_list(st, "tags", NULL);
    if (ref == NULL && json_array_size(tags) > 0)
        ref = jstr(json_array_get(tags, 0), "id");
    json_t *img = NULL;
    if (ref) {
        snprintf(name, size, "%s", ref);
        img = image_resolve(st, ref, err);
    } else {
        serr_set(err, SERR_INVALID, "no image in the cluster: import one, or name one with --image");
    }
    json_decref(tags);
    return img;
}

static int check_submission_keys(json_t *body, struct serr *err)
{
    static const char *const known[] = {"command", "resources", "queue", "types", "name",
                                        "image", "user", "after", "array", "reservation",
                                        "properties", "host", NULL};
    const char *key;
    json_t *val;
    json_object_foreach(body, key, val)
    {
        if (!str_in_list(key, known))
            return serr_set(err, SERR_INVALID, "job: unknown field '%s'", key);
        if (strcmp(key, "host") == 0 && !json_is_boolean(val))
            return serr_set(err, SERR_INVALID, "job: host must be true or false");
        if (strcmp(key, "types") != 0 && strcmp(key, "after") != 0 &&
            strcmp(key, "array") != 0 && strcmp(key, "host") != 0 && !json_is_string(val))
            return serr_set(err, SERR_INVALID, "job: %s must be a string", key);
    }
    return 0;
}

/* "after": job ids that must be Terminated first; each must exist. */
static int check_after(struct store *st, json_t *after, struct serr *err)
{
    if (after == NULL)
        return 0;
    if (!json_is_array(after) || json_array_size(after) > 64)
        return serr_set(err, SERR_INVALID, "job: after must be an array of at most 64 job ids");
    size_t i;
    json_t *id;
    json_array_foreach(after, i, id)
    {
        json_t *dep = json_is_string(id) ? store_get(st, "jobs", json_string_value(id)) : NULL;
        if (dep == NULL)
            return serr_set(err, SERR_NOT_FOUND, "job: --after: job %s not found",
                            json_is_string(id) ? json_string_value(id) : "(not a string)");
        json_decref(dep);
    }
    return 0;
}

static int check_reservation(struct store *st, const struct job_res *r, const char *props,
                             int64_t at, int64_t now, struct serr *err);

/* "reservation": "YYYY-MM-DD hh:mm:ss" (the manager's local time, as OAR's
 * server) -> *at in ms (0 without one); refused when malformed, past, or when
 * the resources cannot be had then. */
static int parse_reservation(struct store *st, const char *text, const struct job_res *r,
                             const char *props, int64_t *at, struct serr *err)
{
    *at = 0;
    if (text == NULL)
        return 0;
    struct tm tm = {0};
    const char *end = strptime(text, "%Y-%m-%d %H:%M:%S", &tm);
    if (end == NULL || *end != '\0')
        return serr_set(err, SERR_INVALID, "invalid reservation '%s' (want \"YYYY-MM-DD "
                        "hh:mm:ss\")", text);
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    int64_t now = now_ms();
    if (t == (time_t)-1 || (int64_t)t * 1000 < now / 1000 * 1000)
        return serr_set(err, SERR_INVALID, "reservation refused: %s is in the past", text);
    *at = (int64_t)t * 1000;
    return check_reservation(st, r, props, *at, now, err);
}

/* "array": how many jobs the submission makes (1 to JOB_MAX_ARRAY). */
static int check_array(json_t *array, struct serr *err)
{
    if (array && (!json_is_integer(array) || json_integer_value(array) < 1 ||
                  json_integer_value(array) > JOB_MAX_ARRAY))
        return serr_set(err, SERR_INVALID, "job: array must be a number from 1 to %d",
                        JOB_MAX_ARRAY);
    return 0;
}

/* besteffort (the job goes to the besteffort queue: it runs on idle cores
 * and is killed when a normal job needs them) and idempotent (killed that
 * way, it waits again instead of ending in Error). */
static int check_types(json_t *types, const char **queue, struct serr *err)
{
    if (types == NULL)
        return 0;
    if (!json_is_array(types))
        return serr_set(err, SERR_INVALID, "job: types must be an array of strings");
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        const char *type = json_string_value(t);
        if (type == NULL || (strcmp(type, "besteffort") != 0 && strcmp(type, "idempotent") != 0))
            return serr_set(err, SERR_INVALID, "job: unknown type %s (known: besteffort, "
                            "idempotent)", type ? type : "(not a string)");
        if (strcmp(type, "besteffort") == 0)
            *queue = "besteffort";
    }
    return 0;
}

/* What job_from_submission reads of a submission, checked; the strings
 * are the body's. */
struct submission {
    const char *command, *queue, *props, *name, *user;
    struct job_res r;
    int64_t reservation_at; /* ms, 0: not a reservation */
    bool host;
    char image_ref[512];
    json_t *image; /* owned; NULL for a host job */
};

/* The command (required), the queue (default: default) and the properties
 * (an empty one: none). */
static int submission_basics(json_t *body, struct submission *sub, struct serr *err)
{
    sub->command = jstr(body, "command");
    if (sub->command == NULL || sub->command[strspn(sub->command, " \t\n")] == '\0')
        return serr_set(err, SERR_INVALID, "job: a command is required");
    sub->queue = jstr_or(body, "queue", "default");
    if (strcmp(sub->queue, "admin") && strcmp(sub->queue, "default") &&
        strcmp(sub->queue, "besteffort"))
        return serr_set(err, SERR_INVALID, "unknown queue %s (queues: admin, default, besteffort)",
                        sub->queue);
    sub->props = jstr(body, "properties");
    if (sub->props && sub->props[strspn(sub->props, " \t\n")] == '\0')
        sub->props = NULL; /* as OAR: an empty -p filters nothing */
    if (sub->props && job_props_check(sub->props, err) < 0)
        return -1;
    return 0;
}

/* types, after, array, the resources (possible in the cluster) and the
 * reservation (not of an array). */
static int submission_resources(struct store *st, json_t *body, struct submission *sub,
                                struct serr *err)
{
    if (check_types(json_object_get(body, "types"), &sub->queue, err) < 0 ||
        check_after(st, json_object_get(body, "after"), err) < 0 ||
        check_array(json_object_get(body, "array"), err) < 0 ||
        job_res_parse(jstr(body, "resources"), &sub->r, err) < 0 ||
        check_possible(st, &sub->r, sub->props, err) < 0)
        return -1;
    if (jstr(body, "reservation") && json_integer_value(json_object_get(body, "array")) > 1)
        return serr_set(err, SERR_INVALID, "job: an array cannot be a reservation (each would "
                        "want the same resources at the same time)");
    return parse_reservation(st, jstr(body, "reservation"), &sub->r, sub->props,
                             &sub->reservation_at, err);
}

/* The job's name and the user it runs as, each when given. */
static int submission_names(json_t *body, struct submission *sub, struct serr *err)
{
    sub->name = jstr(body, "name");
    if (sub->name && (strlen(sub->name) > 100 || strpbrk(sub->name, "/\n") != NULL))
        return serr_set(err, SERR_INVALID, "job: invalid name (at most 100 characters, no '/')");
    const char *user = sub->user = jstr(body, "user");
    if (user && (*user == '\0' || strlen(user) > 64 || user[strspn(user, "abcdefghijklmnopqrstuvwxyz"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")] != '\0'))
        return serr_set(err, SERR_INVALID,
                        "job: invalid user (at most 64 letters, digits, '.', '_', '-')");
    return 0;
}

/* A host job, or the image the job's container runs (job_image). */
static int submission_image(struct store *st, json_t *body, struct submission *sub,
                            struct serr *err)
{
    sub->host = json_is_true(json_object_get(body, "host"));
    if (sub->host && jstr(body, "image"))
        return serr_set(err, SERR_INVALID, "job: host and image exclude each other (a host job "
                        "runs on the node, not in a container)");
    if (sub->host)
        return 0;
    sub->image = job_image(st, jstr(body, "image"), sub->image_ref, sizeof(sub->image_ref), err);
    return sub->image ? 0 : -1;
}

/* The job made of a checked submission (new object). */
static json_t *job_new(json_t *body, const struct submission *sub)
{
    char request[128];
    job_res_format(&sub->r, request, sizeof(request));
    json_t *types = json_object_get(body, "types");
    json_t *job = json_pack("{s:s, s:s, s:{s:i, s:i, s:I}, s:s, s:s, s:s, s:o}", "command",
                            sub->command, "queue", sub->queue, "resources", "nodes", sub->r.nodes,
                            "cores", sub->r.cores, "walltime_s", (json_int_t)sub->r.walltime_s,
                            "request", request, "state", "Waiting", "message", "", "types",
                            types ? json_deep_copy(types) : json_array());
    if (sub->host) {
        json_object_set_new(job, "host", json_true());
    } else {
        json_object_set_new(job, "image", json_string(sub->image_ref));
        json_object_set(job, "image_id", json_object_get(sub->image, "id"));
    }
    if (sub->name)
        json_object_set_new(job, "name", json_string(sub->name));
    if (sub->props)
        json_object_set_new(job, "properties", json_string(sub->props));
    if (sub->user)
        json_object_set_new(job, "user", json_string(sub->user));
    if (json_object_get(body, "after"))
        json_object_set_new(job, "after", json_deep_copy(json_object_get(body, "after")));
    if (json_object_get(body, "array"))
        json_object_set(job, "array_size", json_object_get(body, "array"));
    if (sub->reservation_at)
        json_object_set_new(job, "reservation_at", json_integer(sub->reservation_at));
    return job;
}

json_t *job_from_submission(struct store *st, json_t *body, struct serr *err)
{
    if (!json_is_object(body)) {
        serr_set(err, SERR_INVALID, "job: expected an object");
        return NULL;
    }
    struct submission sub = {0};
    if (check_submission_keys(body, err) < 0 || submission_basics(body, &sub, err) < 0 ||
        submission_resources(st, body, &sub, err) < 0 || submission_names(body, &sub, err) < 0 ||
        submission_image(st, body, &sub, err) < 0)
        return NULL;
    json_t *job = job_new(body, &sub);
    json_decref(sub.image);
    return job;
}

long long job_next_id(struct store *st, long long *last)
{
    json_t *meta = store_get(st, "meta", "jobs");
    long long stored = (long long)json_integer_value(json_object_get(meta, "last_id"));
    json_decref(meta);
    if (stored > *last)
        *last = stored;
    return ++*last;
}

/* ---- the pass ---- */

struct jpass {
    struct store *st;
    json_t *nodes; /* eligible nodes, the scheduler's node indexes */
    json_t *all_nodes;
    json_t *tasks;
    json_t *task_by_id; /* tasks' index: id -> task (borrowed) */
    json_t *jobs; /* the jobs not ended (the pass's list, updated as it goes), or NULL */
    json_t *job_by_id; /* jobs' index: id -> job (borrowed) */
    char services_note[256]; /* sched_nodes: the cores services reserve, or "" */
    json_t *ops;
    /* Started jobs' progress merges, proposed only beside other ops
     * (job_progress); progress_wake: when the first of them is due alone. */
    json_t *progress;
    int64_t progress_wake;
    int64_t now;
    int64_t *wake_at;
};

static void wake(struct jpass *p, int64_t when)
{
    if (*p->wake_at == 0 || when < *p->wake_at)
        *p->wake_at = when;
}

/* `fields` (taken) merged into `job` and as an op appended to `ops`. */
static void job_merge_into(struct jpass *p, json_t *ops, json_t *job, json_t *fields)
{
    /* only what changes: an unchanged job costs no entry */
    const char *key;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(fields, tmp, key, val)
    {
        if (json_equal(json_object_get(job, key), val))
            json_object_del(fields, key);
    }
    if (json_object_size(fields) == 0) {
        json_decref(fields);
        return;
    }
    store_job_unshare(p->st, job);
    json_object_update(job, fields);
    json_array_append_new(ops, op_merge("jobs", jstr(job, "id"), fields));
}

static void job_merge(struct jpass *p, json_t *job, json_t *fields)
{
    job_merge_into(p, p->ops, job, fields);
}

/* A started job's progress (`fields`: Launching or Running), its task's
 * state changed at `since`: an entry of its own only once
 * JOB_PROGRESS_ALONE_MS have passed; before, it goes with the pass's other
 * ops, if any (jobs_pass). A trivial job usually ends first: its end then
 * makes the only entry after its start (issue 14). */
static void job_progress(struct jpass *p, json_t *job, json_t *fields, int64_t since)
{
    int64_t due = since + JOB_PROGRESS_ALONE_MS;
    if (p->now >= due) {
        job_merge(p, job, fields);
        return;
    }
    size_t before = json_array_size(p->progress);
    job_merge_into(p, p->progress, job, fields);
    if (json_array_size(p->progress) > before && (p->progress_wake == 0 || due < p->progress_wake))
        p->progress_wake = due;
}

/* id -> element of `array` (an object of new references to its elements). */
static json_t *index_by_id(json_t *array)
{
    json_t *index = json_object();
    size_t i;
    json_t *o;
    json_array_foreach(array, i, o)
    {
        if (jstr(o, "id"))
            json_object_set(index, jstr(o, "id"), o);
    }
    return index;
}

static json_t *find_task(struct jpass *p, const char *id)
{
    return id ? json_object_get(p->task_by_id, id) : NULL;
}

/* Sets up the lists a pass reads (p->st, p->tasks and p->jobs set);
 * jpass_done drops what it made. */
static void jpass_index(struct jpass *p)
{
    p->task_by_id = index_by_id(p->tasks);
    p->job_by_id = index_by_id(p->jobs);
}

static void jpass_done(struct jpass *p)
{
    json_decref(p->task_by_id);
    json_decref(p->job_by_id);
}

static void task_stop(struct jpass *p, json_t *task)
{
    if (!task_desired_is(task, "running"))
        return;
    json_t *fields = json_pack("{s:s}", "desired_state", "shutdown");
    json_object_update(task, fields);
    json_array_append_new(p->ops, op_merge("tasks", task_id(task), fields));
}

/* A preempted idempotent job: Waiting again, as if new (same id). */
static void requeue(struct jpass *p, json_t *job)
{
    static const char *const run_fields[] = {"assigned", "task_id", "scheduled_at", "started_at",
                                             "stopped_at", "exit_code", "kill_reason", NULL};
    store_job_unshare(p->st, job);
    for (int i = 0; run_fields[i]; i++)
        json_object_del(job, run_fields[i]);
    json_object_set_new(job, "state", json_string("Waiting"));
    json_object_set_new(job, "message",
                        json_string(JOB_PREEMPTED ": waiting again (idempotent)"));
    json_object_set_new(job, "resubmitted", json_integer(iget(job, "resubmitted") + 1));
    json_array_append_new(p->ops, op_put("jobs", json_deep_copy(job)));
}

/* The task's `started_at` (the agent's, ms since the epoch), or NULL. */
static json_t *task_started_at(json_t *task)
{
    json_t *at = json_object_get(task, "started_at");
    return json_integer_value(at) > 0 ? at : NULL;
}

/* The job's state once its task is final. */
static void job_finish(struct jpass *p, json_t *job, json_t *task)
{
    if (jstr_is(job, "kill_reason", JOB_PREEMPTED) && has_type(job, "idempotent")) {
        requeue(p, job);
        return;
    }
    const char *tstate = task_state(task);
    json_t *code = json_object_get(task, "exit_code");
    const char *reason = jstr(job, "kill_reason");
    const char *state = "Error", *msg = task_error(task);
    char why[300];
    if (reason && *reason) {
        msg = reason;
    } else if (strcmp(tstate, "complete") == 0 ||
               (strcmp(tstate, "failed") == 0 && json_integer_value(code) >= 0 && code)) {
        state = "Terminated", msg = "";
    } else if (msg == NULL || *msg == '\0') {
        /* stopped by the cluster (drain) without an error */
        snprintf(why, sizeof(why), "task %s: %s", tstate,
                 task_message(task) ? task_message(task) : "");
        msg = why;
    }
    json_t *fields = json_pack("{s:s, s:s, s:I}", "state", state, "message", msg ? msg : "",
                               "stopped_at", (json_int_t)p->now);
    if (code && json_integer_value(code) >= 0)
        json_object_set(fields, "exit_code", code);
    if (json_object_get(job, "started_at") == NULL && strcmp(tstate, "rejected") != 0)
        /* ended before a pass saw it running: the task's start (the agent's end
         * report carries it when no `running` report went out), else when it
         * was launched (a task from before that field) */
        json_object_set(fields, "started_at", task_started_at(task) ? task_started_at(task)
                                                  : json_object_get(job, "scheduled_at"));
    job_merge(p, job, fields);
}

/* The hostname of a node of the job that is down, or NULL. */
static const char *down_node(struct jpass *p, json_t *job)
{
    size_t i, k;
    json_t *a, *n;
    json_array_foreach(json_object_get(job, "assigned"), i, a)
    {
        json_array_foreach(p->all_nodes, k, n)
        {
            if (jstr_is(n, "id", jstr(a, "node_id")) && node_status_is(n, "down"))
                return jstr(a, "hostname");
        }
    }
    return NULL;
}

/* A job holding nodes: its state from its task's, the walltime, a kill. */
static void follow_job(struct jpass *p, json_t *job)
{
    json_t *task = find_task(p, jstr(job, "task_id"));
    if (task == NULL) {
        job_merge(p, job, json_pack("{s:s, s:s, s:I}", "state", "Error", "message",
                                    "the job's task is gone", "stopped_at", (json_int_t)p->now));
        return;
    }
    if (task_finished(task)) {
        job_finish(p, job, task);
        return;
    }
    const char *down = down_node(p, job);
    if (down && jstr(job, "kill_reason") == NULL) {
        char why[300];
        snprintf(why, sizeof(why), "node %s is down: killed", down);
        job_merge(p, job, json_pack("{s:s}", "kill_reason", why));
    }
    int64_t started = iget(job, "started_at");
    int64_t deadline = started + iget(json_object_get(job, "resources"), "walltime_s") * 1000;
    if (started > 0 && jstr(job, "kill_reason") == NULL) {
        if (p->now >= deadline)
            job_merge(p, job, json_pack("{s:s}", "kill_reason", "walltime exceeded: killed"));
        else
            wake(p, deadline);
    }
    if (jstr(job, "kill_reason")) {
        task_stop(p, task);
        job_merge(p, job, json_pack("{s:s}", "state", "Finishing"));
        return;
    }
    const char *ts = task_state(task);
    int64_t at = iget(task, "state_at");
    if (at == 0)
        at = p->now;
    if (strcmp(ts, "running") == 0) {
        json_t *fields = json_pack("{s:s}", "state", "Running");
        if (started == 0) {
            /* a held `running` report was sent after the start it carries */
            json_t *agent_start = task_started_at(task);
            int64_t start = agent_start ? json_integer_value(agent_start) : at;
            json_object_set_new(fields, "started_at", json_integer(start));
            wake(p, start + iget(json_object_get(job, "resources"), "walltime_s") * 1000);
        }
        job_progress(p, job, fields, at);
    } else if (strcmp(ts, "pending") != 0 && strcmp(ts, "assigned") != 0) {
        job_progress(p, job, json_pack("{s:s}", "state", "Launching"), at);
    }
}

/* The shell line a job runs: writes the node file, then runs the command
 * (given in SHOAL_JOB_COMMAND) with sh -c, as OAR does with the user's shell. */
static const char job_script[] =
    "printf '%s\\n' $SHOAL_JOB_NODELIST > \"$SHOAL_NODEFILE\" && exec /bin/sh -c \"$SHOAL_JOB_COMMAND\"";

static json_t *job_env(json_t *job, json_t *assigned)
{
    const char *id = jstr(job, "id");
    char nodefile[128];
    snprintf(nodefile, sizeof(nodefile), JOB_NODEFILE_PREFIX "%s", id);
    char *list = NULL;
    size_t len = 0, cap = 0, i;
    json_t *a;
    json_array_foreach(assigned, i, a)
    {
        for (int64_t c = 0; c < iget(a, "cores"); c++) {
            if (len)
                buf_append(&list, &len, &cap, " ", 1);
            buf_append(&list, &len, &cap, jstr(a, "hostname"), strlen(jstr(a, "hostname")));
        }
    }
    json_t *env = json_pack("[s+, s+, s+, s+, s+, s+]", "SHOAL_JOB_ID=", id, "OAR_JOB_ID=", id,
                            "SHOAL_NODEFILE=", nodefile, "OAR_NODEFILE=", nodefile,
                            "SHOAL_JOB_NODELIST=", list ? list : "",
                            "SHOAL_JOB_COMMAND=", jstr(job, "command"));
    free(list);
    if (jstr(job, "array_id")) {
        char index[24];
        snprintf(index, sizeof(index), "%lld", (long long)iget(job, "array_index"));
        json_t *more = json_pack("[s+, s+, s+, s+]", "SHOAL_ARRAY_ID=", jstr(job, "array_id"),
                                 "OAR_ARRAY_ID=", jstr(job, "array_id"), "SHOAL_ARRAY_INDEX=",
                                 index, "OAR_ARRAY_INDEX=", index);
        json_array_extend(env, more);
        json_decref(more);
    }
    return env;
}

/* Marks in taken[0..ncores) the cores of `node_id` the active jobs' cpusets
 * hold. */
static void cores_taken(json_t *jobs, const char *node_id, bool *taken, int ncores)
{
    size_t i, k, c;
    json_t *job, *a, *core;
    json_array_foreach(jobs, i, job)
    {
        if (!job_state_active(jstr(job, "state")))
            continue;
        json_array_foreach(json_object_get(job, "assigned"), k, a)
        {
            if (!jstr_is(a, "node_id", node_id))
                continue;
            json_array_foreach(json_object_get(a, "cpuset"), c, core)
            {
                json_int_t n = json_integer_value(core);
                if (n >= 0 && n < ncores)
                    taken[n] = true;
            }
        }
    }
}

/* The job's cpuset on `node` (new array of core numbers, 0 to its cores - 1):
 * the `want` lowest cores no active job holds. The scheduler only starts a
 * job where that many are free; should a job from before cpusets hold cores
 * unnamed, the lowest held ones fill the rest. */
static json_t *pick_cores(json_t *jobs, json_t *node, int want)
{
    int ncores = node_cpus(node);
    bool *taken = xcalloc((size_t)ncores, sizeof(*taken));
    cores_taken(jobs, node_id(node), taken, ncores);
    json_t *cpuset = json_array();
    for (int pass = 0; pass < 2; pass++)
        for (int c = 0; c < ncores && (int)json_array_size(cpuset) < want; c++)
            if (taken[c] == (pass == 1))
                json_array_append_new(cpuset, json_integer(c));
    free(taken);
    return cpuset;
}

/* "0,2,3": a cpuset as the kernel's cpuset.cpus and OCI's cpu.cpus take it. */
static json_t *cpuset_text(json_t *cpuset)
{
    char text[1024] = "";
    size_t i, used = 0;
    json_t *c;
    json_array_foreach(cpuset, i, c)
    {
        int n = snprintf(text + used, sizeof(text) - used, "%s%lld", i ? "," : "",
                         (long long)json_integer_value(c));
        if (n < 0 || (size_t)n >= sizeof(text) - used)
            break;
        used += (size_t)n;
    }
    return json_string(text);
}

/* The container a job runs in (new reference), or NULL with err set. */
static json_t *container_spec(struct store *st, json_t *job, json_t *assigned, struct serr *err)
{
    json_t *image = image_resolve(st, jstr(job, "image_id"), err);
    if (image == NULL)
        return NULL;
    json_t *res = json_object_get(job, "resources");
    /* every field task_container_spec reads (a service spec has them normalised) */
    json_t *cpuset = json_object_get(json_array_get(assigned, 0), "cpuset");
    json_t *spec = json_pack("{s:s, s:o, s:{s:I, s:o}, s:I, s:[], s:b}", "image",
                             jstr(job, "image"), "env", job_env(job, assigned), "limits", "cpus",
                             (json_int_t)iget(res, "cores"), "cpuset", cpuset_text(cpuset),
                             "stop_grace_period_ms",
                             (json_int_t)JOB_KILL_GRACE_MS, "mounts", "init", 0);
    json_t *container = task_container_spec(spec, image);
    json_object_set_new(container, "args", json_pack("[s, s, s]", "/bin/sh", "-c", job_script));
    json_decref(spec);
    json_decref(image);
    return container;
}

/* The node file's text: a line per core of the job, its node's hostname,
 * as the job script's printf writes it (new reference). */
static json_t *nodefile_text(json_t *assigned)
{
    char *text = NULL;
    size_t len = 0, cap = 0, i;
    json_t *a;
    json_array_foreach(assigned, i, a)
    {
        const char *host = jstr(a, "hostname");
        for (int64_t c = 0; c < iget(a, "cores"); c++) {
            buf_append(&text, &len, &cap, host, strlen(host));
            buf_append(&text, &len, &cap, "\n", 1);
        }
    }
    json_t *out = json_stringn(text ? text : "", len);
    free(text);
    return out;
}

/* A host job's spec (agent/runtime.h, runtime_host_start): `/bin/sh -c` of
 * the command on the host, with a PATH of its own (nothing else of the
 * daemon's environment), confined to its cores. The agent writes the node
 * file (nodefile_text at nodefile) before the start: not the job script, one
 * shell fewer per job (issue 14). */
static json_t *host_spec(json_t *job, json_t *assigned)
{
    json_t *env = job_env(job, assigned);
    json_array_insert_new(env, 0, json_string("PATH=" JOB_HOST_PATH));
    json_array_insert_new(env, 1, json_string("HOME=/root"));
    json_t *cpuset = json_object_get(json_array_get(assigned, 0), "cpuset");
    char nodefile[128];
    snprintf(nodefile, sizeof(nodefile), JOB_NODEFILE_PREFIX "%s", jstr(job, "id"));
    return json_pack("{s:b, s:[s, s, s], s:o, s:{s:o}, s:I, s:s, s:o}", "host", 1, "args",
                     "/bin/sh", "-c", jstr(job, "command"), "env", env, "limits", "cpuset",
                     cpuset_text(cpuset), "stop_grace_period_ms", (json_int_t)JOB_KILL_GRACE_MS,
                     "nodefile", nodefile, "nodefile_text", nodefile_text(assigned));
}

static void launch(struct jpass *p, json_t *job, const int *node_idx)
{
    json_t *res = json_object_get(job, "resources");
    int nnodes = (int)iget(res, "nodes");
    json_t *assigned = json_array();
    for (int i = 0; i < nnodes; i++) {
        json_t *n = json_array_get(p->nodes, (size_t)node_idx[i]);
        json_array_append_new(assigned,
                              json_pack("{s:s, s:s, s:I, s:o}", "node_id", node_id(n), "hostname",
                                        node_hostname(n), "cores", (json_int_t)iget(res, "cores"),
                                        "cpuset", pick_cores(p->jobs, n, (int)iget(res, "cores"))));
    }
    struct serr err = {0};
    json_t *container = json_is_true(json_object_get(job, "host"))
                            ? host_spec(job, assigned)
                            : container_spec(p->st, job, assigned, &err);
    if (container == NULL) {
        job_merge(p, job, json_pack("{s:s, s:s, s:I}", "state", "Error", "message", err.msg,
                                    "stopped_at", (json_int_t)p->now));
        json_decref(assigned);
        return;
    }
    char id[26], name[64];
    random_hex(id, 25);
    snprintf(name, sizeof(name), "job.%s", jstr(job, "id"));
    json_t *first = json_array_get(assigned, 0);
    /* service_id: the task's logs are found as a service's (agent_node_logs) */
    json_t *task = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s?, s:s, s:s, s:s, s:s, s:I, s:s, s:s, "
                             "s:I}", "id", id, "job_id", jstr(job, "id"), "service_id", name,
                             "name", name, "container",
                             container, "image", jstr(job, "image"), "node_id",
                             jstr(first, "node_id"), "node_hostname", jstr(first, "hostname"),
                             "desired_state", "running", "state", "assigned", "state_at",
                             (json_int_t)p->now, "message", "scheduled", "error", "",
                             "created_at", (json_int_t)p->now);
    json_array_append(p->tasks, task);
    json_object_set(p->task_by_id, id, task);
    json_array_append_new(p->ops, op_put("tasks", task));
    job_merge(p, job, json_pack("{s:s, s:o, s:s, s:I, s:s}", "state", "toLaunch", "assigned",
                                assigned, "task_id", id, "scheduled_at", (json_int_t)p->now,
                                "message", ""));
}

/* Cores held by active jobs (best-effort ones too when `besteffort`), until
 * their walltime ends (at least now + 1). */
static struct sched_alloc *running_allocs(struct jpass *p, json_t *jobs, bool besteffort, int *n)
{
    size_t cap = 1, i, k;
    json_t *job, *a;
    json_array_foreach(jobs, i, job) cap += json_array_size(json_object_get(job, "assigned"));
    struct sched_alloc *out = xcalloc(cap, sizeof(*out));
    *n = 0;
    json_array_foreach(jobs, i, job)
    {
        if (!job_state_active(jstr(job, "state")) || (!besteffort && is_besteffort(job)))
            continue;
        int64_t start = iget(job, "started_at") ? iget(job, "started_at") : iget(job, "scheduled_at");
        int64_t end = start + iget(json_object_get(job, "resources"), "walltime_s") * 1000;
        if (end <= p->now)
            end = p->now + 1;
        json_array_foreach(json_object_get(job, "assigned"), k, a)
        {
            int idx = jarray_index(p->nodes, "id", jstr(a, "node_id"));
            if (idx >= 0)
                out[(*n)++] = (struct sched_alloc){idx, (int)iget(a, "cores"), start, end};
        }
    }
    return out;
}

/* The nodes of `all` that can take jobs (new array): the scheduler's indexes. */
static json_t *eligible_nodes(json_t *all)
{
    json_t *out = json_array();
    size_t i;
    json_t *node;
    json_array_foreach(all, i, node)
    {
        if (node_eligible(node, NULL))
            json_array_append(out, node);
    }
    return out;
}

/* Appends to p->services_note (", services reserve 2 of the 4 cores of
 * node1, ... (--reserve-cpu)" once closed by note_close). */
static void note_reserved(struct jpass *p, json_t *node, int reserved)
{
    size_t used = strlen(p->services_note), size = sizeof(p->services_note);
    if (used + 1 < size)
        snprintf(p->services_note + used, size - used, "%s%d of the %d cores of %s",
                 used ? ", " : ", services reserve ", reserved, node_cpus(node),
                 node_hostname(node));
}

static void note_close(struct jpass *p)
{
    size_t used = strlen(p->services_note), size = sizeof(p->services_note);
    if (used > 0 && used + 1 < size)
        snprintf(p->services_note + used, size - used, " (--reserve-cpu)");
}

/* The cores of each eligible node that jobs may have: its cores less what
 * services' live tasks reserve there (--reserve-cpu, rounded up: a job's
 * cores are whole), noted in p->services_note (caller frees). */
static struct sched_node *sched_nodes(struct jpass *p, int *n)
{
    *n = (int)json_array_size(p->nodes);
    struct sched_node *out = xcalloc((size_t)*n + 1, sizeof(*out));
    json_t *reserved = scheduler_reserved_by_node(p->tasks);
    p->services_note[0] = '\0';
    size_t i;
    json_t *node;
    json_array_foreach(p->nodes, i, node)
    {
        double cpus = json_number_value(json_object_get(reserved, node_id(node)));
        int held = (int)cpus + (cpus - (int)cpus > 1e-9);
        int left = node_cpus(node) - held;
        out[i].cores = left > 0 ? left : 0;
        if (held > 0)
            note_reserved(p, node, held);
    }
    note_close(p);
    json_decref(reserved);
    return out;
}

/* The planner's view of a job on `nodes` (its allowed nodes: free with
 * free_wants). */
static struct sched_job sched_job_of(json_t *job, json_t *nodes)
{
    json_t *res = json_object_get(job, "resources");
    return (struct sched_job){(int)iget(res, "nodes"), (int)iget(res, "cores"),
                              iget(res, "walltime_s") * 1000, iget(job, "reservation_at"),
                              nodes_allowed(jstr(job, "properties"), nodes)};
}

static void free_wants(struct sched_job *want, int n)
{
    for (int j = 0; j < n; j++)
        free((void *)want[j].allowed);
    free(want);
}

/* Whether a reservation of r at `at` fits beside the active jobs and the
 * reservations already accepted (planned first, as the pass does). */
static int check_reservation(struct store *st, const struct job_res *r, const char *props,
                             int64_t at, int64_t now, struct serr *err)
{
    json_t *all = store_list(st, "nodes", NULL);
    json_t *jobs = live_jobs(st);
    json_t *tasks = jobs_pass_tasks(st);
    struct jpass p = {.st = st, .nodes = eligible_nodes(all), .all_nodes = all, .tasks = tasks,
                      .now = now};
    int nnodes, nrunning, nwant = 0;
    struct sched_node *nodes = sched_nodes(&p, &nnodes);
    struct sched_alloc *running = running_allocs(&p, jobs, false, &nrunning);
    struct sched_job *want = xcalloc(json_array_size(jobs) + 1, sizeof(*want));
    size_t i;
    json_t *job;
    json_array_foreach(jobs, i, job)
    {
        if (iget(job, "reservation_at") && jstr_is(job, "state", "Waiting"))
            want[nwant++] = sched_job_of(job, p.nodes);
    }
    want[nwant++] = (struct sched_job){r->nodes, r->cores, r->walltime_s * 1000, at,
                                       nodes_allowed(props, p.nodes)};
    struct sched_plan *plans = sched_backfill(nodes, nnodes, running, nrunning, want, nwant, now);
    bool ok = plans[nwant - 1].start >= 0;
    sched_plans_free(plans, nwant);
    free_wants(want, nwant);
    free(running);
    free(nodes);
    json_decref(p.nodes);
    json_decref(tasks);
    json_decref(jobs);
    json_decref(all);
    if (ok)
        return 0;
    return serr_set(err, SERR_CONFLICT, "reservation refused: %d node%s with %d core%s each are "
                    "not free from then for the walltime (running jobs and other reservations "
                    "hold them)", r->nodes, r->nodes == 1 ? "" : "s", r->cores,
                    r->cores == 1 ? "" : "s");
}

static int cmp_waiting(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int rx = store_job_queue_rank(jstr(x, "queue")), ry = store_job_queue_rank(jstr(y, "queue"));
    if (rx != ry)
        return rx < ry ? -1 : 1;
    long long ix = atoll(jstr(x, "id")), iy = atoll(jstr(y, "id"));
    return ix < iy ? -1 : ix > iy;
}

/* A dependency's state as deps_done reads it: "Error" (or gone),
 * "Terminated", or "Waiting" for any state before those. Ended jobs, and
 * waiting ones deep in the queue (add_waiting_jobs), are not in the pass's list:
 * read from the store. */
static const char *dep_state(struct jpass *p, const char *id)
{
    json_t *dep = id ? json_object_get(p->job_by_id, id) : NULL;
    const char *state = dep ? jstr(dep, "state") : NULL;
    json_t *ended = dep || id == NULL ? NULL : store_get(p->st, "jobs", id);
    if (ended)
        state = jstr(ended, "state");
    const char *out = state == NULL || strcmp(state, "Error") == 0 ? "Error"
                      : strcmp(state, "Terminated") == 0           ? "Terminated"
                                                                   : "Waiting";
    json_decref(ended);
    return out;
}

/* A waiting job's dependencies ("after", as OAR's -a): true when all are
 * Terminated; one in Error (or gone) ends the job in Error, as OAR does. */
static bool deps_done(struct jpass *p, json_t *job)
{
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(job, "after"), i, id)
    {
        const char *state = dep_state(p, json_string_value(id));
        char why[160];
        if (strcmp(state, "Error") == 0) {
            snprintf(why, sizeof(why), "dependency: job %s ended in Error", json_string_value(id));
            job_merge(p, job, json_pack("{s:s, s:s, s:I}", "state", "Error", "message", why,
                                        "stopped_at", (json_int_t)p->now));
            return false;
        }
        if (strcmp(state, "Terminated") != 0) {
            snprintf(why, sizeof(why), "waiting for job %s to end", json_string_value(id));
            job_merge(p, job, json_pack("{s:s}", "message", why));
            return false;
        }
    }
    return true;
}

/* A reservation not starting now: its time, or why it cannot start. */
static void wait_reservation(struct jpass *p, json_t *job, int64_t start)
{
    char msg[160] = "reservation: its resources are not free (drained, down or still held); "
                    "it starts once they are";
    if (start > p->now) {
        time_t t = (time_t)(start / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(msg, sizeof(msg), "reservation: starts at %Y-%m-%d %H:%M:%S", &tm);
        wake(p, start);
    }
    job_merge(p, job, json_pack("{s:s}", "message", msg));
}

/* Cores of each node in use now by active jobs (caller frees). */
static int *cores_in_use(const struct sched_alloc *allocs, int n, int nnodes)
{
    int *used = xcalloc((size_t)nnodes + 1, sizeof(*used));
    for (int i = 0; i < n; i++)
        used[allocs[i].node] += allocs[i].cores;
    return used;
}

/* Kills best-effort jobs on node `idx` until `want` cores are freed there
 * (or being freed: jobs already killed count). */
static void preempt_on(struct jpass *p, json_t *jobs, int idx, int want)
{
    const char *node_id = jstr(json_array_get(p->nodes, (size_t)idx), "id");
    size_t i, k;
    json_t *job, *a;
    /* newest first, as OAR */
    for (i = json_array_size(jobs); want > 0 && i-- > 0;) {
        job = json_array_get(jobs, i);
        if (!is_besteffort(job) || !job_state_active(jstr(job, "state")))
            continue;
        json_array_foreach(json_object_get(job, "assigned"), k, a)
        {
            if (!jstr_is(a, "node_id", node_id))
                continue;
            want -= (int)iget(a, "cores");
            if (jstr(job, "kill_reason") == NULL) {
                job_merge(p, job, json_pack("{s:s, s:s}", "kill_reason", JOB_PREEMPTED,
                                            "state", "Finishing"));
                json_t *task = find_task(p, jstr(job, "task_id"));
                if (task)
                    task_stop(p, task);
            }
        }
    }
}

/* A normal job planned now (best-effort jobs ignored): launched if the
 * cores are free, else the best-effort jobs on them are killed and it waits
 * for them to end. Its cores are counted in `used` either way. */
static void start_or_preempt(struct jpass *p, json_t *jobs, json_t *job, const int *node_idx,
                             int *used, const struct sched_node *nodes)
{
    json_t *res = json_object_get(job, "resources");
    int nnodes = (int)iget(res, "nodes"), cores = (int)iget(res, "cores");
    bool free_now = true;
    for (int k = 0; k < nnodes; k++)
        if (nodes[node_idx[k]].cores - used[node_idx[k]] < cores)
            free_now = false;
    if (free_now) {
        launch(p, job, node_idx);
    } else {
        for (int k = 0; k < nnodes; k++) {
            int lack = cores - (nodes[node_idx[k]].cores - used[node_idx[k]]);
            if (lack > 0)
                preempt_on(p, jobs, node_idx[k], lack);
        }
        job_merge(p, job, json_pack("{s:s}", "message",
                                    "waiting for best-effort jobs on its nodes to be killed"));
    }
    for (int k = 0; k < nnodes; k++)
        used[node_idx[k]] += cores;
}

/* Keeps in waiting[] (queue order) the first JOB_PLAN_DEPTH jobs and every
 * advance reservation; the others are told they wait behind. */
static void keep_plan_depth(struct jpass *p, json_t **waiting, int *n)
{
    int kept = 0, others = 0;
    for (int j = 0; j < *n; j++) {
        bool reservation = iget(waiting[j], "reservation_at") > 0;
        if (reservation || others < JOB_PLAN_DEPTH) {
            others += !reservation;
            waiting[kept++] = waiting[j];
        } else {
            job_merge(p, waiting[j], json_pack("{s:s}", "message", JOB_QUEUED_BEHIND));
        }
    }
    *n = kept;
}

/* Waiting jobs of one kind (best-effort or not), in queue order: those
 * keep_plan_depth keeps. */
static json_t **waiting_jobs(struct jpass *p, json_t *jobs, bool besteffort, int *n)
{
    size_t i;
    json_t *job;
    json_t **out = xcalloc(json_array_size(jobs) + 1, sizeof(*out));
    *n = 0;
    json_array_foreach(jobs, i, job)
    {
        if (jstr_is(job, "state", "Waiting") && is_besteffort(job) == besteffort &&
            deps_done(p, job))
            out[(*n)++] = job;
    }
    qsort(out, (size_t)*n, sizeof(*out), cmp_waiting);
    keep_plan_depth(p, out, n);
    return out;
}

static struct sched_plan *plan_waiting(struct jpass *p, json_t **waiting, int n,
                                       const struct sched_node *nodes, int nnodes,
                                       const struct sched_alloc *held, int nheld)
{
    struct sched_job *want = xcalloc((size_t)n + 1, sizeof(*want));
    for (int j = 0; j < n; j++)
        want[j] = sched_job_of(waiting[j], p->nodes);
    struct sched_plan *plans = sched_backfill(nodes, nnodes, held, nheld, want, n, p->now);
    free_wants(want, n);
    return plans;
}

static void wait_message(struct jpass *p, json_t *job, int64_t start, const char *later)
{
    char why[JOB_PROPS_MAX + 512];
    snprintf(why, sizeof(why), "not enough nodes matching the properties %s available (drained, "
             "paused or down)", jstr(job, "properties"));
    if (iget(job, "reservation_at") > 0) {
        wait_reservation(p, job, start);
        return;
    }
    if (start >= 0)
        snprintf(why, sizeof(why), "%s", later);
    else if (p->services_note[0] != '\0' && !jstr(job, "properties"))
        snprintf(why, sizeof(why), "not enough cores free");
    else if (!jstr(job, "properties"))
        snprintf(why, sizeof(why), "not enough nodes available (drained, paused or down)");
    size_t used = strlen(why);
    snprintf(why + used, sizeof(why) - used, "%s", p->services_note);
    job_merge(p, job, json_pack("{s:s}", "message", why));
}

/* Normal jobs are planned as if best-effort jobs were not there (they are
 * killed when a normal job needs their cores now); best-effort jobs start
 * only on cores idle now, beside the normal jobs starting now. */
static void schedule(struct jpass *p, json_t *jobs, const struct sched_node *nodes, int nnodes)
{
    int nnormal, nbe, nhard, nall;
    json_t **normal = waiting_jobs(p, jobs, false, &nnormal);
    json_t **be = waiting_jobs(p, jobs, true, &nbe);
    struct sched_alloc *hard = running_allocs(p, jobs, false, &nhard);
    struct sched_alloc *all = running_allocs(p, jobs, true, &nall);
    int *used = cores_in_use(all, nall, nnodes);
    struct sched_plan *plans = plan_waiting(p, normal, nnormal, nodes, nnodes, hard, nhard);
    /* what best-effort jobs must leave free: every active job, the normal ones starting now */
    size_t cap = (size_t)nall + 1;
    for (int j = 0; j < nnormal; j++)
        cap += (size_t)iget(json_object_get(normal[j], "resources"), "nodes");
    struct sched_alloc *held = xcalloc(cap, sizeof(*held));
    int nheld = nall;
    memcpy(held, all, (size_t)nall * sizeof(*held));
    for (int j = 0; j < nnormal; j++) {
        if (plans[j].start != p->now) {
            wait_message(p, normal[j], plans[j].start, "waiting for resources");
            continue;
        }
        start_or_preempt(p, jobs, normal[j], plans[j].node_idx, used, nodes);
        json_t *res = json_object_get(normal[j], "resources");
        for (int k = 0; k < (int)iget(res, "nodes"); k++)
            held[nheld++] = (struct sched_alloc){plans[j].node_idx[k], (int)iget(res, "cores"),
                                                 p->now, p->now + iget(res, "walltime_s") * 1000};
    }
    struct sched_plan *be_plans = plan_waiting(p, be, nbe, nodes, nnodes, held, nheld);
    for (int j = 0; j < nbe; j++) {
        if (be_plans[j].start == p->now)
            launch(p, be[j], be_plans[j].node_idx);
        else
            wait_message(p, be[j], be_plans[j].start, "waiting for idle resources (best-effort)");
    }
    sched_plans_free(be_plans, nbe);
    sched_plans_free(plans, nnormal);
    free(held);
    free(used);
    free(all);
    free(hard);
    free(be);
    free(normal);
}

/* Tasks still going whose job has ended (deleted while its task was being
 * made) are stopped. Ended jobs are not in the pass's list: the few such
 * tasks' jobs are read from the store. */
static void stop_tasks_of_ended_jobs(struct jpass *p)
{
    size_t i;
    json_t *task;
    json_array_foreach(p->tasks, i, task)
    {
        const char *job_id = task_job_id(task);
        if (job_id == NULL || task_finished(task) || json_object_get(p->job_by_id, job_id))
            continue;
        json_t *job = store_get(p->st, "jobs", job_id);
        if (job && job_state_final(jstr(job, "state")) && jstr_is(job, "task_id", task_id(task)))
            task_stop(p, task);
        json_decref(job);
    }
}

/* Moves each of `rows` (stolen) into `by_id` unless its id is there. */
static void add_jobs(json_t *by_id, json_t *rows)
{
    size_t i;
    json_t *job;
    json_array_foreach(rows, i, job)
    {
        if (jstr(job, "id") && json_object_get(by_id, jstr(job, "id")) == NULL)
            json_object_set(by_id, jstr(job, "id"), job);
    }
    json_decref(rows);
}

/* Waiting jobs of `rows` of one class that keep_plan_depth may not count
 * (a dependency, a reservation). */
static long long not_counted(json_t *rows, bool besteffort)
{
    long long n = 0;
    size_t i;
    json_t *job;
    json_array_foreach(rows, i, job)
    {
        n += is_besteffort(job) == besteffort &&
             (json_array_size(json_object_get(job, "after")) > 0 || iget(job, "reservation_at") > 0);
    }
    return n;
}

static int cmp_id(const void *a, const void *b)
{
    long long x = atoll(jstr(*(json_t *const *)a, "id")), y = atoll(jstr(*(json_t *const *)b, "id"));
    return x < y ? -1 : x > y;
}

/* Adds to `by_id` the Waiting jobs a pass plans (and those whose message it
 * may change), but those deep in the queue, whose message already says so
 * (a long queue costs its head, not its length): every Waiting job whose
 * message is not JOB_QUEUED_BEHIND (new ones, the head's, those waiting for
 * a dependency or a reservation's time) and the head of each class in queue
 * order, long enough to hold the JOB_PLAN_DEPTH jobs keep_plan_depth keeps
 * (every job it may skip is among the former). */
static void add_waiting_jobs(struct store *st, json_t *by_id)
{
    json_t *unlike = store_jobs_message_not(st, "Waiting", JOB_QUEUED_BEHIND);
    long long skipped[2] = {not_counted(unlike, false), not_counted(unlike, true)};
    add_jobs(by_id, unlike);
    /* the head's jobs already read (most of them: their message is not
     * JOB_QUEUED_BEHIND) are not parsed again */
    for (int be = 0; be < 2; be++)
        add_jobs(by_id, store_jobs_queue_head(st, "Waiting", be, JOB_PLAN_DEPTH + skipped[be],
                                              by_id));
}

/* The jobs of `by_id` as a new array, by id. */
static json_t *jobs_by_id(json_t *by_id)
{
    json_t **sorted = xcalloc(json_object_size(by_id) + 1, sizeof(*sorted));
    size_t n = 0;
    const char *id;
    json_t *job;
    json_object_foreach(by_id, id, job) sorted[n++] = job;
    qsort(sorted, n, sizeof(*sorted), cmp_id);
    json_t *jobs = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(jobs, sorted[i]);
    free(sorted);
    return jobs;
}

/* Each job of the pass's list: a held one's task stopped, an active one
 * followed (run again on the same jobs, it changes nothing more). */
static void follow_jobs(struct jpass *p)
{
    size_t i;
    json_t *job;
    json_array_foreach(p->jobs, i, job)
    {
        bool waiting = jstr_is(job, "state", "Waiting") || jstr_is(job, "state", "Hold");
        json_t *task = find_task(p, jstr(job, "task_id"));
        if (waiting && task) /* (a job this pass ended is neither) */
            job_merge(p, job, json_pack("{s:s, s:s}", "state", "Finishing", "kill_reason",
                                        "held while launching: killed"));
        if (job_state_active(jstr(job, "state")))
            follow_job(p, job);
    }
}

/* The pass's list of jobs (p->jobs, indexed) made again from `by_id`. */
static void jpass_set_jobs(struct jpass *p, json_t *by_id)
{
    if (p->jobs) {
        jpass_done(p);
        json_decref(p->jobs);
    }
    p->jobs = jobs_by_id(by_id);
    jpass_index(p);
}

/* How many of `ops`, from `from` on, change the plan (store_op_changes_plan). */
static unsigned long long plan_changing_ops(json_t *ops, size_t from)
{
    unsigned long long n = 0;
    for (size_t i = from; i < json_array_size(ops); i++)
        n += store_op_changes_plan(json_array_get(ops, i));
    return n;
}

void jobs_plan_memo_clear(struct jobs_plan_memo *memo)
{
    free(memo->cores);
    *memo = (struct jobs_plan_memo){0};
}

/* Whether the last plan still holds, as far as the store and the time tell
 * (before the pass reads anything). */
static bool memo_fresh(const struct jobs_plan_memo *memo, struct store *st, int64_t now)
{
    return memo && memo->valid && memo->expect == store_plan_changes(st) &&
           now - memo->planned_at < JOB_PLAN_REUSE_MAX_MS && (memo->wake == 0 || now < memo->wake);
}

static bool memo_same_nodes(const struct jobs_plan_memo *memo, const struct sched_node *nodes,
                            int n)
{
    if (memo->nnodes != n)
        return false;
    for (int i = 0; i < n; i++)
        if (memo->cores[i] != nodes[i].cores)
            return false;
    return true;
}

static void memo_keep(struct jobs_plan_memo *memo, const struct sched_node *nodes, int n,
                      int64_t now, int64_t wake)
{
    jobs_plan_memo_clear(memo);
    memo->cores = xcalloc((size_t)n + 1, sizeof(*memo->cores));
    for (int i = 0; i < n; i++)
        memo->cores[i] = nodes[i].cores;
    *memo = (struct jobs_plan_memo){.valid = true, .planned_at = now, .wake = wake, .nnodes = n,
                                    .cores = memo->cores};
}

/* schedule(), its wake-up time kept apart in *sched_wake as well. */
static void schedule_noting_wake(struct jpass *p, const struct sched_node *nodes, int n,
                                 int64_t *sched_wake)
{
    int64_t *outer = p->wake_at;
    *sched_wake = 0;
    p->wake_at = sched_wake;
    schedule(p, p->jobs, nodes, n);
    p->wake_at = outer;
    if (*sched_wake)
        wake(p, *sched_wake);
}

/* A pass with jobs alive (`by_id`: those holding nodes or held, and the
 * waiting ones unless `reuse`): their tasks followed, then the queue planned,
 * or the memo's plan kept when nothing it depended on changed; `ops_before`:
 * the ops of the pass before the jobs'. */
static void pass_live_jobs(struct jpass *p, json_t *by_id, struct jobs_plan_memo *memo,
                           bool reuse, size_t ops_before)
{
    jpass_set_jobs(p, by_id);
    stop_tasks_of_ended_jobs(p);
    follow_jobs(p);
    int nnodes;
    struct sched_node *snodes = sched_nodes(p, &nnodes);
    if (reuse &&
        (plan_changing_ops(p->ops, ops_before) > 0 || !memo_same_nodes(memo, snodes, nnodes))) {
        /* a job ended (cores freed), or the nodes changed: plan after all */
        reuse = false;
        add_waiting_jobs(p->st, by_id);
        jpass_set_jobs(p, by_id);
        follow_jobs(p); /* the waiting jobs now read */
    }
    if (reuse) {
        if (memo->wake)
            wake(p, memo->wake);
    } else {
        int64_t sched_wake;
        schedule_noting_wake(p, snodes, nnodes, &sched_wake);
        if (memo)
            memo_keep(memo, snodes, nnodes, p->now, sched_wake);
    }
    if (memo && memo->valid) /* what the ops proposed make of the count, once applied */
        memo->expect = store_plan_changes(p->st) + plan_changing_ops(p->ops, 0);
    free(snodes);
    jpass_done(p);
    json_decref(p->jobs);
}

/* The progress merges the pass kept back go with its other ops (services'
 * included); with none, they are dropped and the pass asks to be woken when
 * the first is due alone (its jobs read again from the store then). */
static void progress_with_other_ops(struct jpass *p)
{
    if (json_array_size(p->ops) > 0)
        json_array_extend(p->ops, p->progress);
    else if (p->progress_wake)
        wake(p, p->progress_wake);
    json_decref(p->progress);
}

void jobs_pass_of(struct store *st, json_t *nodes, const struct jobs_tasks *tasks, json_t *ops,
                  int64_t now, int64_t *wake_at, struct jobs_plan_memo *memo)
{
    struct jpass p = {.st = st, .nodes = eligible_nodes(nodes), .all_nodes = nodes,
                      .tasks = tasks->of_jobs, .ops = ops, .progress = json_array(), .now = now,
                      .wake_at = wake_at};
    size_t ops_before = json_array_size(ops);
    /* the jobs holding nodes or held; the waiting ones only to plan */
    bool reuse = memo_fresh(memo, st, now);
    json_t *by_id = json_object();
    add_jobs(by_id, store_list_in(st, "jobs", "state", live_not_waiting, NULL));
    if (!reuse)
        add_waiting_jobs(st, by_id);
    if (!reuse && json_object_size(by_id) == 0) {
        /* no job alive (a pass of services only): no index of every task nor
         * load of every node to make, only tasks of ended jobs to stop */
        stop_tasks_of_ended_jobs(&p);
        if (memo)
            jobs_plan_memo_clear(memo);
    } else {
        p.tasks = tasks->all(tasks->arg);
        pass_live_jobs(&p, by_id, memo, reuse, ops_before);
    }
    progress_with_other_ops(&p);
    json_decref(by_id);
    json_decref(p.nodes);
}

static json_t *tasks_given(void *tasks)
{
    return tasks;
}

void jobs_pass(struct store *st, json_t *nodes, json_t *tasks, json_t *ops, int64_t now,
               int64_t *wake_at, struct jobs_plan_memo *memo)
{
    struct jobs_tasks all = {.of_jobs = tasks, .all = tasks_given, .arg = tasks};
    jobs_pass_of(st, nodes, &all, ops, now, wake_at, memo);
}

json_t *jobs_cores_by_node(struct store *st)
{
    json_t *jobs = active_jobs(st), *out = json_object();
    size_t i, k;
    json_t *job, *a;
    json_array_foreach(jobs, i, job)
    {
        if (!job_state_active(jstr(job, "state")))
            continue;
        json_array_foreach(json_object_get(job, "assigned"), k, a)
        {
            const char *node = jstr(a, "node_id");
            if (node)
                json_object_set_new(out, node, json_integer(iget(out, node) + iget(a, "cores")));
        }
    }
    json_decref(jobs);
    return out;
}

/* ---- the plan, read only ---- */

/* plans[j] of waiting[j] into out: {id: {"start", "node_ids"}}. */
static void plans_to_json(json_t *out, json_t *nodes, json_t **waiting, int n,
                          const struct sched_plan *plans)
{
    for (int j = 0; j < n; j++) {
        if (plans[j].start < 0)
            continue;
        json_t *ids = json_array();
        int nn = (int)iget(json_object_get(waiting[j], "resources"), "nodes");
        for (int k = 0; k < nn; k++)
            json_array_append_new(ids, json_string(jstr(json_array_get(nodes, (size_t)plans[j].node_idx[k]), "id")));
        json_object_set_new(out, jstr(waiting[j], "id"),
                            json_pack("{s:I, s:o}", "start", (json_int_t)plans[j].start, "node_ids", ids));
    }
}

/* As schedule(): normal jobs beside the normal active ones, then best-effort
 * jobs beside every active job and the normal jobs starting now. The pass's
 * ops (messages) go to a scratch array that is dropped. */
json_t *jobs_plan(struct store *st, int64_t now)
{
    json_t *all_nodes = store_list(st, "nodes", NULL);
    json_t *jobs = live_jobs(st);
    json_t *scratch = json_array(), *out = json_object();
    int64_t wake_at = 0;
    json_t *tasks = jobs_pass_tasks(st);
    struct jpass p = {.st = st, .nodes = eligible_nodes(all_nodes), .all_nodes = all_nodes,
                      .tasks = tasks, .jobs = jobs, .ops = scratch, .now = now,
                      .wake_at = &wake_at};
    jpass_index(&p);
    int nnormal, nbe, nnodes, nhard, nall;
    json_t **normal = waiting_jobs(&p, jobs, false, &nnormal);
    json_t **be = waiting_jobs(&p, jobs, true, &nbe);
    struct sched_node *nodes = sched_nodes(&p, &nnodes);
    struct sched_alloc *hard = running_allocs(&p, jobs, false, &nhard);
    struct sched_alloc *all = running_allocs(&p, jobs, true, &nall);
    struct sched_plan *plans = plan_waiting(&p, normal, nnormal, nodes, nnodes, hard, nhard);
    size_t cap = (size_t)nall + 1;
    for (int j = 0; j < nnormal; j++)
        cap += (size_t)iget(json_object_get(normal[j], "resources"), "nodes");
    struct sched_alloc *held = xcalloc(cap, sizeof(*held));
    int nheld = nall;
    memcpy(held, all, (size_t)nall * sizeof(*held));
    for (int j = 0; j < nnormal; j++) {
        json_t *res = json_object_get(normal[j], "resources");
        for (int k = 0; plans[j].start == now && k < (int)iget(res, "nodes"); k++)
            held[nheld++] = (struct sched_alloc){plans[j].node_idx[k], (int)iget(res, "cores"),
                                                 now, now + iget(res, "walltime_s") * 1000};
    }
    struct sched_plan *be_plans = plan_waiting(&p, be, nbe, nodes, nnodes, held, nheld);
    plans_to_json(out, p.nodes, normal, nnormal, plans);
    plans_to_json(out, p.nodes, be, nbe, be_plans);
    sched_plans_free(be_plans, nbe);
    sched_plans_free(plans, nnormal);
    free(held);
    free(all);
    free(hard);
    free(nodes);
    free(be);
    free(normal);
    jpass_done(&p);
    json_decref(p.nodes);
    json_decref(scratch);
    json_decref(tasks);
    json_decref(jobs);
    json_decref(all_nodes);
    return out;
}

/* ---- history ---- */

static int cmp_finished(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int64_t sx = iget(x, "stopped_at"), sy = iget(y, "stopped_at");
    if (sx != sy)
        return sx < sy ? -1 : 1;
    long long ix = atoll(jstr(x, "id")), iy = atoll(jstr(y, "id"));
    return ix < iy ? -1 : ix > iy;
}

void jobs_trim_history(struct store *st, long long keep, json_t *ops)
{
    if (store_count_in(st, "jobs", "state", final_states) <= (keep > 0 ? keep : 0))
        return; /* nothing to trim: no job read */
    json_t *jobs = store_list_in(st, "jobs", "state", final_states, NULL);
    json_t **done = xcalloc(json_array_size(jobs) + 1, sizeof(*done));
    size_t n = 0, i;
    json_t *job;
    json_array_foreach(jobs, i, job)
    {
        if (job_state_final(jstr(job, "state")))
            done[n++] = job;
    }
    if (keep < 0)
        keep = 0;
    if ((long long)n > keep) {
        qsort(done, n, sizeof(*done), cmp_finished);
        for (i = 0; i < n - (size_t)keep; i++) {
            json_t *task = jstr(done[i], "task_id") ? store_get(st, "tasks", jstr(done[i], "task_id"))
                                                    : NULL;
            bool stopping = task && !task_finished(task);
            if (task && !stopping)
                json_array_append_new(ops, op_del("tasks", task_id(task)));
            json_decref(task);
            if (!stopping) /* else a later pass, once jobs_pass has stopped it */
                json_array_append_new(ops, op_del("jobs", jstr(done[i], "id")));
        }
    }
    free(done);
    json_decref(jobs);
}
