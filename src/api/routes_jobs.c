/* /v1/jobs: batch jobs (manager/jobs.h). Submissions are checked and given
 * their id and time by the leader; the scheduling pass does the rest. */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "api/api_int.h"
#include "base/json_get.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "manager/jobs.h"
#include "store/store.h"

static const char *const job_states[] = {"Waiting", "Hold", "toLaunch", "Launching", "Running",
                                         "Finishing", "Terminated", "Error", NULL};

static bool known_state(const char *s)
{
    return str_in_list(s, job_states);
}

void get_jobs(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    char state[32];
    bool filter = http_query_get(req, "state", state, sizeof(state));
    if (filter && !known_state(state)) {
        respond_err(req, SERR_INVALID, "unknown job state (Waiting, Hold, toLaunch, Launching, "
                                       "Running, Finishing, Terminated, Error)");
        return;
    }
    json_t *all = store_list(sh->store, "jobs", "CAST(id AS INTEGER)");
    json_t *out = json_array();
    size_t i;
    json_t *job;
    json_array_foreach(all, i, job)
    {
        if (!filter || strcmp(jstr(job, "state"), state) == 0)
            json_array_append(out, job);
    }
    json_decref(all);
    respond_json(req, 200, out);
}

static json_t *find_job(struct shoal *sh, struct http_req *req, const char *id)
{
    json_t *job = store_get(sh->store, "jobs", id);
    if (job == NULL) {
        char msg[160];
        snprintf(msg, sizeof(msg), "job %.100s not found", id);
        respond_err(req, SERR_NOT_FOUND, msg);
    }
    return job;
}

void get_job(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    json_t *job = find_job(sh, req, args[0]);
    if (job)
        respond_json(req, 200, job);
}

/* The jobs of a submission: one, or array_size copies sharing the first's
 * id as array_id (indexes from 1). Appends their puts to group and their
 * ids to ids; returns the last id given. */
static long long number_jobs(struct shoal *sh, json_t *job, int64_t now, json_t *group,
                             json_t *ids)
{
    json_int_t count = json_integer_value(json_object_get(job, "array_size"));
    long long id = 0;
    char first[24] = "";
    for (json_int_t k = 1; k <= (count > 0 ? count : 1); k++) {
        json_t *one = json_deep_copy(job);
        id = job_next_id(sh->store, &sh->job_last_id);
        char idstr[24];
        snprintf(idstr, sizeof(idstr), "%lld", id);
        if (k == 1)
            snprintf(first, sizeof(first), "%s", idstr);
        json_object_set_new(one, "id", json_string(idstr));
        json_object_set_new(one, "submitted_at", json_integer(now));
        if (count > 0) {
            json_object_set_new(one, "array_id", json_string(first));
            json_object_set_new(one, "array_index", json_integer(k));
        }
        json_array_append_new(ids, json_string(idstr));
        json_array_append_new(group, op_put("jobs", one));
    }
    return id;
}

/* Host jobs run commands as root on the nodes: admin credentials only (the
 * local socket, managers, admin certificates, the admin dashboard token),
 * whoever else the job routes are opened to. */
static bool may_submit_host(struct http_req *req)
{
    return !req->remote || strcmp(req->peer_role, "manager") == 0 ||
           strcmp(req->peer_role, "admin") == 0;
}

/* A container job without an image gets the leader's daemon.json
 * "job-image" (else job_from_submission takes the cluster's first image). */
static void default_image(struct shoal *sh, json_t *body)
{
    if (sh->job_image && json_is_object(body) && json_object_get(body, "image") == NULL &&
        !json_is_true(json_object_get(body, "host")))
        json_object_set_new(body, "image", json_string(sh->job_image));
}

/* Stores a submission (stolen); `oar`: answers in OAR's shape. */
static void submit(struct shoal *sh, struct http_req *req, json_t *body, bool oar)
{
    struct serr err = {0};
    if (json_is_true(json_object_get(body, "host")) && !may_submit_host(req)) {
        json_decref(body);
        respond_err(req, SERR_FORBIDDEN, "permission denied: host jobs run commands as root on "
                                         "the nodes: admin credentials only");
        return;
    }
    default_image(sh, body);
    json_t *job = job_from_submission(sh->store, body, &err);
    json_decref(body);
    if (job == NULL) {
        http_respond_error(req, &err);
        return;
    }
    int64_t now = now_ms();
    json_t *group = json_array(), *ids = json_array();
    long long last = number_jobs(sh, job, now, group, ids);
    json_decref(job);
    const char *first = json_string_value(json_array_get(ids, 0));
    json_t *reply = oar ? json_pack("{s:I, s:I, s:[{s:s+, s:s}]}", "id", (json_int_t)atoll(first),
                                    "api_timestamp", (json_int_t)(now / 1000), "links", "href",
                                    "/oarapi/jobs/", first, "rel", "self")
                        : json_pack("{s:s, s:s, s:O}", "id", first, "state", "Waiting", "ids", ids);
    json_decref(ids);
    json_array_append_new(group, op_put("meta", json_pack("{s:s, s:I}", "id", "jobs", "last_id",
                                                          (json_int_t)last)));
    propose_and_reply(sh, req, group, 201, reply);
}

void post_job(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_leader(sh, req))
        return;
    json_t *body = body_json(req, true);
    if (body)
        submit(sh, req, body, false);
}

/* ---- OAR's REST API (the routes an OAR client uses for jobs) ---- */

static json_t *oar_job(json_t *job, bool full)
{
    const char *id = jstr(job, "id");
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:[{s:s+, s:s}]}", "id",
                          (json_int_t)atoll(id), "name", jstr(job, "name") ? jstr(job, "name") : "",
                          "state", jstr(job, "state"), "queue", jstr(job, "queue"), "owner",
                          jstr(job, "user") ? jstr(job, "user") : "shoal", "submission_time",
                          (json_int_t)(json_integer_value(json_object_get(job, "submitted_at")) / 1000),
                          "links", "href", "/oarapi/jobs/", id, "rel", "self");
    if (!full)
        return o;
    json_t *nodes = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(job, "assigned"), i, a)
        json_array_append_new(nodes, json_string(jstr(a, "hostname")));
    json_object_set_new(o, "assigned_network_address", nodes);
    json_object_set_new(o, "command", json_string(jstr(job, "command")));
    json_object_set_new(o, "wanted_resources", json_string(jstr(job, "request")));
    json_object_set_new(o, "properties",
                        json_string(jstr(job, "properties") ? jstr(job, "properties") : ""));
    json_object_set(o, "exit_code", json_object_get(job, "exit_code") ? json_object_get(job, "exit_code") : json_null());
    json_object_set_new(o, "start_time", json_integer(jint(job, "started_at", 0) / 1000));
    json_object_set_new(o, "stop_time", json_integer(jint(job, "stopped_at", 0) / 1000));
    json_object_set_new(o, "message",
                        json_string(jstr(job, "message") ? jstr(job, "message") : ""));
    return o;
}

void get_oar_jobs(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    json_t *all = store_list(sh->store, "jobs", "CAST(id AS INTEGER)");
    json_t *items = json_array();
    size_t i;
    json_t *job;
    json_array_foreach(all, i, job)
    {
        if (!job_state_final(jstr(job, "state")))
            json_array_append_new(items, oar_job(job, false)); /* OAR lists current jobs */
    }
    json_decref(all);
    respond_json(req, 200, json_pack("{s:I, s:i, s:I, s:o}", "total", (json_int_t)json_array_size(items),
                                     "offset", 0, "api_timestamp", (json_int_t)(now_ms() / 1000),
                                     "items", items));
}

/* "7.json" -> "7" in buf; false for another suffix. */
static bool oar_id(const char *arg, char *buf, size_t size)
{
    size_t n = strlen(arg);
    if (n <= 5 || n - 5 >= size || strcmp(arg + n - 5, ".json") != 0)
        return false;
    memcpy(buf, arg, n - 5);
    buf[n - 5] = '\0';
    return true;
}

void get_oar_job(struct shoal *sh, struct http_req *req, char **args)
{
    char id[64];
    if (!require_swarm(sh, req))
        return;
    if (!oar_id(args[0], id, sizeof(id))) {
        respond_err(req, SERR_NOT_FOUND, "page not found (want /oarapi/jobs/ID.json)");
        return;
    }
    json_t *job = find_job(sh, req, id);
    if (job)
        respond_json(req, 200, oar_job(job, true));
    json_decref(job);
}

/* OAR's body: {"resource", "command", "name"?, "queue"?, "type"?, "property"?}. */
void post_oar_job(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    json_t *body = leader_body(sh, req);
    if (body == NULL)
        return;
    json_t *sub = json_object();
    const char *key;
    json_t *val;
    json_object_foreach(body, key, val)
    {
        const char *to = strcmp(key, "resource") == 0   ? "resources"
                         : strcmp(key, "type") == 0     ? "types"
                         : strcmp(key, "property") == 0 ? "properties"
                                                        : key;
        if (strcmp(to, "types") == 0 && json_is_string(val))
            json_object_set_new(sub, to, json_pack("[O]", val));
        else
            json_object_set(sub, to, val);
    }
    json_decref(body);
    submit(sh, req, sub, true);
}

void delete_oar_job(struct shoal *sh, struct http_req *req, char **args)
{
    char id[64];
    if (!oar_id(args[0], id, sizeof(id))) {
        respond_err(req, SERR_NOT_FOUND, "page not found (want /oarapi/jobs/ID.json)");
        return;
    }
    char *one[1] = {id};
    delete_job(sh, req, one);
}

/* A state change asked for: `from` lists the states it applies to. */
static void change_job(struct shoal *sh, struct http_req *req, const char *id, json_t *fields,
                       const char *const *from, const char *verb)
{
    json_t *job = find_job(sh, req, id);
    if (job == NULL) {
        json_decref(fields);
        return;
    }
    const char *state = jstr(job, "state");
    bool ok = false;
    for (int i = 0; from[i]; i++)
        ok = ok || strcmp(from[i], state) == 0;
    if (!ok) {
        char msg[200];
        snprintf(msg, sizeof(msg), "cannot %s job %s: it is %s", verb, id, state);
        respond_err(req, SERR_CONFLICT, msg);
        json_decref(fields);
    } else {
        json_t *reply = json_pack("{s:s, s:O}", "id", id, "state",
                                  json_object_get(fields, "state")
                                      ? json_object_get(fields, "state")
                                      : json_object_get(job, "state"));
        propose_and_reply(sh, req, json_pack("[o]", op_merge("jobs", id, fields)), 200, reply);
    }
    json_decref(job);
}

void delete_job(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *job = find_job(sh, req, args[0]);
    if (job == NULL)
        return;
    const char *state = jstr(job, "state");
    if (job_state_final(state)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "job %s has already ended (%s)", args[0], state);
        respond_err(req, SERR_CONFLICT, msg);
    } else if (job_state_active(state)) {
        /* the pass stops its task; the job ends in Error with the reason */
        static const char *const from[] = {"toLaunch", "Launching", "Running", "Finishing", NULL};
        change_job(sh, req, args[0], json_pack("{s:s}", "kill_reason", "deleted by the user: killed"),
                   from, "delete");
    } else {
        static const char *const from[] = {"Waiting", "Hold", NULL};
        change_job(sh, req, args[0],
                   json_pack("{s:s, s:s, s:I}", "state", "Error", "message",
                             "deleted by the user before it started", "stopped_at",
                             (json_int_t)now_ms()),
                   from, "delete");
    }
    json_decref(job);
}

void post_job_hold(struct shoal *sh, struct http_req *req, char **args)
{
    static const char *const from[] = {"Waiting", NULL};
    if (require_leader(sh, req))
        change_job(sh, req, args[0], json_pack("{s:s, s:s}", "state", "Hold", "message", "held"),
                   from, "hold");
}

void post_job_resume(struct shoal *sh, struct http_req *req, char **args)
{
    static const char *const from[] = {"Hold", NULL};
    if (require_leader(sh, req))
        change_job(sh, req, args[0], json_pack("{s:s, s:s}", "state", "Waiting", "message", ""),
                   from, "resume");
}

/* The job's output, read from the node that ran it (as service logs are). */
void get_job_logs(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    json_t *job = find_job(sh, req, args[0]);
    if (job == NULL)
        return;
    json_t *task =
        jstr(job, "task_id") ? store_get(sh->store, "tasks", jstr(job, "task_id")) : NULL;
    if (task == NULL) {
        char msg[400];
        snprintf(msg, sizeof(msg), "job %s has no output: it has not started", args[0]);
        respond_err(req, SERR_CONFLICT, msg);
    } else {
        json_t *svc = json_pack("{s:O}", "id", json_object_get(task, "service_id"));
        service_logs_fanout(sh, req, svc, jstr(task, "id"), -1, "");
        json_decref(svc);
    }
    json_decref(task);
    json_decref(job);
}
