/* The jobs' read-only plan and the history bound, over a real store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"
#include "manager/jobs.h"
#include "store/store.h"
#include "store_ops.h"
#include "unit.h"

/* One ready node of 2 cores. */
static struct store *store_with_node(void)
{
    struct store *st;
    CHECK(store_open(&st, NULL) == 0);
    unit_apply_ops(st,
                   json_pack("[o]", op_put("nodes", json_pack("{s:s, s:s, s:s, s:s, s:{s:i}}", "id",
                                                              "n1", "hostname", "node-1", "status",
                                                              "ready", "availability", "active",
                                                              "resources", "cpus", 2))));
    return st;
}

static json_t *a_job(const char *id, const char *state, int cores, int walltime_s)
{
    return json_pack("{s:s, s:s, s:s, s:{s:i, s:i, s:i}}", "id", id, "state", state, "queue",
                     "default", "resources", "nodes", 1, "cores", cores, "walltime_s",
                     walltime_s);
}

/* Waiting job number i (its id) of 1 core for 60 s: the jobs of a long queue. */
static json_t *waiting_job(int i)
{
    char id[16];
    snprintf(id, sizeof(id), "%d", i);
    return a_job(id, "Waiting", 1, 60);
}

TEST(jobs_plan_places_a_waiting_job_without_writing)
{
    struct store *st = store_with_node();
    json_t *running = a_job("1", "Running", 2, 10);
    json_object_set_new(running, "started_at", json_integer(1000));
    json_object_set_new(running, "assigned", json_pack("[{s:s, s:s, s:i}]", "node_id", "n1",
                                                       "hostname", "node-1", "cores", 2));
    unit_apply_ops(st, json_pack("[o, o]", op_put("jobs", running),
                                 op_put("jobs", a_job("2", "Waiting", 1, 5))));
    unsigned long long version = store_version(st);
    json_t *plan = jobs_plan(st, 2000);
    json_t *p = json_object_get(plan, "2");
    CHECK(p != NULL && json_integer_value(json_object_get(p, "start")) == 11000);
    CHECK_STR(json_string_value(json_array_get(json_object_get(p, "node_ids"), 0)), "n1");
    CHECK(json_object_get(plan, "1") == NULL);
    CHECK(store_version(st) == version);
    json_t *again = store_get(st, "jobs", "2");
    CHECK(json_object_get(again, "message") == NULL); /* the pass's messages are dropped */
    json_decref(again);
    json_decref(plan);
    store_close(st);
}

TEST(jobs_trim_history_removes_the_oldest_finished)
{
    struct store *st = store_with_node();
    json_t *ops = json_array();
    for (int i = 1; i <= 5; i++) {
        char id[8], tid[8];
        snprintf(id, sizeof(id), "%d", i);
        snprintf(tid, sizeof(tid), "t%d", i);
        json_t *job = a_job(id, i == 3 ? "Error" : "Terminated", 1, 10);
        /* stop times out of id order: 5 ended first */
        json_object_set_new(job, "stopped_at", json_integer(i == 5 ? 10 : 100 + i));
        json_object_set_new(job, "task_id", json_string(tid));
        json_array_append_new(ops, op_put("jobs", job));
        json_array_append_new(ops, op_put("tasks", json_pack("{s:s, s:s, s:s, s:s}", "id", tid,
                                                             "job_id", id, "state",
                                                             i == 1 ? "running" : "complete",
                                                             "desired_state", "shutdown")));
    }
    json_array_append_new(ops, op_put("jobs", a_job("6", "Waiting", 1, 10)));
    unit_apply_ops(st, ops);
    ops = json_array();
    jobs_trim_history(st, 2, ops);
    /* the 3 oldest by stop time: 5 and 2 go; 1 stays while its task runs (a later pass) */
    char *text = json_dumps(ops, JSON_COMPACT);
    CHECK(strstr(text, "\"id\":\"1\"") == NULL && strstr(text, "\"id\":\"t1\"") == NULL);
    CHECK(strstr(text, "\"id\":\"5\"") && strstr(text, "\"id\":\"t5\""));
    CHECK(strstr(text, "\"id\":\"2\"") && strstr(text, "\"id\":\"t2\""));
    CHECK(strstr(text, "\"id\":\"3\"") == NULL && strstr(text, "\"id\":\"4\"") == NULL);
    CHECK(strstr(text, "\"id\":\"6\"") == NULL);
    free(text);
    unit_apply_ops(st, ops);
    json_t *left = store_list(st, "jobs", "CAST(id AS INTEGER)");
    CHECK(json_array_size(left) == 4); /* 1 (task running), 3, 4, 6 (waiting) */
    json_decref(left);
    ops = json_array();
    jobs_trim_history(st, 5, ops);
    CHECK(json_array_size(ops) == 0);
    json_decref(ops);
    store_close(st);
}

TEST(jobs_plan_covers_the_head_of_a_long_queue_and_every_reservation)
{
    struct store *st = store_with_node();
    json_t *ops = json_array();
    int njobs = JOB_PLAN_DEPTH + 50;
    for (int i = 1; i <= njobs; i++) {
        json_t *job = waiting_job(i);
        if (i == njobs) /* last in the queue, yet planned: a reservation */
            json_object_set_new(job, "reservation_at", json_integer(10 * 1000 * 1000));
        json_array_append_new(ops, op_put("jobs", job));
    }
    unit_apply_ops(st, ops);
    json_t *plan = jobs_plan(st, 1000);
    CHECK(json_object_size(plan) == JOB_PLAN_DEPTH + 1);
    CHECK(json_object_get(plan, "1") != NULL);
    char deepest[16], behind[16], last[16];
    snprintf(deepest, sizeof(deepest), "%d", JOB_PLAN_DEPTH);
    snprintf(behind, sizeof(behind), "%d", JOB_PLAN_DEPTH + 1);
    snprintf(last, sizeof(last), "%d", njobs);
    CHECK(json_object_get(plan, deepest) != NULL && json_object_get(plan, behind) == NULL);
    CHECK(json_integer_value(json_object_get(json_object_get(plan, last), "start")) == 10 * 1000 * 1000);
    json_decref(plan);
    store_close(st);
}

/* --host: no image (none in the store is needed), "host": true kept;
 * host with image, or host not a boolean, refused. */
TEST(jobs_host_submission)
{
    struct store *st = store_with_node();
    struct serr err = {0};
    json_t *body = json_pack("{s:s, s:b}", "command", "hostname", "host", 1);
    json_t *job = job_from_submission(st, body, &err);
    CHECK(job != NULL);
    CHECK(json_is_true(json_object_get(job, "host")));
    CHECK(json_object_get(job, "image") == NULL && json_object_get(job, "image_id") == NULL);
    json_decref(job);
    json_decref(body);
    body = json_pack("{s:s, s:b, s:s}", "command", "true", "host", 1, "image", "alpine");
    CHECK(job_from_submission(st, body, &err) == NULL);
    CHECK(strstr(err.msg, "exclude") != NULL);
    json_decref(body);
    body = json_pack("{s:s, s:s}", "command", "true", "host", "yes");
    CHECK(job_from_submission(st, body, &err) == NULL);
    CHECK_STR(err.msg, "job: host must be true or false");
    json_decref(body);
    body = json_pack("{s:s}", "command", "true"); /* a container job: no image anywhere */
    CHECK(job_from_submission(st, body, &err) == NULL);
    CHECK(strstr(err.msg, "no image") != NULL);
    json_decref(body);
    store_close(st);
}

static const char *job_message(struct store *st, int id, char *buf, size_t size)
{
    char key[16];
    snprintf(key, sizeof(key), "%d", id);
    json_t *job = store_get(st, "jobs", key);
    const char *msg = json_string_value(json_object_get(job, "message"));
    snprintf(buf, size, "%s", msg ? msg : "");
    json_decref(job);
    return buf;
}

/* A pass (with `memo`: as the leader's, which keeps its plan), its ops applied. */
static void jobs_pass_memo(struct store *st, int64_t now, struct jobs_plan_memo *memo)
{
    int64_t wake = 0;
    json_t *nodes = store_list(st, "nodes", NULL), *tasks = json_array(), *ops = json_array();
    jobs_pass(st, nodes, tasks, ops, now, &wake, memo);
    unit_apply_ops(st, ops);
    json_decref(tasks);
    json_decref(nodes);
}

static void jobs_pass_on_store(struct store *st, int64_t now)
{
    jobs_pass_memo(st, now, NULL);
}

/* A leader's pass plans the queue again only when what the last plan
 * depended on changed: a job put (or ended, held, deleted), a node, the
 * time (JOB_PLAN_REUSE_MAX_MS); a change of only a job's message (as a
 * started job's progress) is not one. The node is paused: nothing starts. */
TEST(jobs_pass_reuses_its_plan_until_the_queue_changes)
{
    struct store *st = store_with_node();
    unit_apply_ops(st, json_pack("[o]", op_merge("nodes", "n1",
                                                 json_pack("{s:s}", "availability", "pause"))));
    unit_apply_ops(st, json_pack("[o]", op_put("jobs", waiting_job(1))));
    struct jobs_plan_memo memo = {0};
    char msg[200];
    const char *none = "not enough nodes available (drained, paused or down)";
    json_t *mark = json_pack("[o]", op_merge("jobs", "1", json_pack("{s:s}", "message", "mark")));
    jobs_pass_memo(st, 1000, &memo);
    CHECK_STR(job_message(st, 1, msg, sizeof(msg)), none);
    unit_apply_ops(st, json_deep_copy(mark));
    jobs_pass_memo(st, 1100, &memo); /* the plan kept: the message left as it is */
    CHECK_STR(job_message(st, 1, msg, sizeof(msg)), "mark");
    unit_apply_ops(st, json_pack("[o]", op_put("jobs", waiting_job(2))));
    jobs_pass_memo(st, 1200, &memo); /* a new job: planned again */
    CHECK_STR(job_message(st, 1, msg, sizeof(msg)), none);
    CHECK_STR(job_message(st, 2, msg, sizeof(msg)), none);
    unit_apply_ops(st, json_deep_copy(mark));
    jobs_pass_memo(st, 1300, &memo);
    CHECK_STR(job_message(st, 1, msg, sizeof(msg)), "mark");
    jobs_pass_memo(st, 1200 + JOB_PLAN_REUSE_MAX_MS, &memo); /* planned again in time */
    CHECK_STR(job_message(st, 1, msg, sizeof(msg)), none);
    unit_apply_ops(st, json_deep_copy(mark));
    unit_apply_ops(st, json_pack("[o]", op_merge("nodes", "n1",
                                                 json_pack("{s:s}", "availability", "pause"))));
    jobs_pass_memo(st, 1300 + JOB_PLAN_REUSE_MAX_MS, &memo); /* a node's op: planned again */
    CHECK_STR(job_message(st, 1, msg, sizeof(msg)), none);
    json_decref(mark);
    jobs_plan_memo_clear(&memo);
    store_close(st);
}

/* A pass reads the waiting jobs deep in the queue only once they reach its
 * head: those behind keep JOB_QUEUED_BEHIND, and move into the head (their
 * message changes) when jobs before them leave it or when an admin job
 * comes before them. The node is paused: nothing starts. */
TEST(jobs_pass_follows_the_head_of_a_long_queue)
{
    struct store *st = store_with_node();
    unit_apply_ops(st, json_pack("[o]", op_merge("nodes", "n1",
                                                 json_pack("{s:s}", "availability", "pause"))));
    json_t *ops = json_array();
    int njobs = JOB_PLAN_DEPTH + 20;
    for (int i = 1; i <= njobs; i++) {
        json_t *job = waiting_job(i);
        json_object_set_new(job, "message", json_string(""));
        json_array_append_new(ops, op_put("jobs", job));
    }
    unit_apply_ops(st, ops);
    char msg[200];
    const char *none = "not enough nodes available (drained, paused or down)";
    jobs_pass_on_store(st, 1000);
    CHECK_STR(job_message(st, JOB_PLAN_DEPTH, msg, sizeof(msg)), none);
    CHECK_STR(job_message(st, JOB_PLAN_DEPTH + 1, msg, sizeof(msg)), JOB_QUEUED_BEHIND);
    /* ten jobs of the head end: ten behind come into it */
    ops = json_array();
    for (int i = 1; i <= 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", i);
        json_array_append_new(ops, op_merge("jobs", id, json_pack("{s:s}", "state", "Error")));
    }
    unit_apply_ops(st, ops);
    jobs_pass_on_store(st, 2000);
    CHECK_STR(job_message(st, JOB_PLAN_DEPTH + 10, msg, sizeof(msg)), none);
    CHECK_STR(job_message(st, JOB_PLAN_DEPTH + 11, msg, sizeof(msg)), JOB_QUEUED_BEHIND);
    /* an admin job goes before them all: the last of the head goes behind */
    json_t *admin = a_job("500", "Waiting", 1, 60);
    json_object_set_new(admin, "queue", json_string("admin"));
    unit_apply_ops(st, json_pack("[o]", op_put("jobs", admin)));
    jobs_pass_on_store(st, 3000);
    CHECK_STR(job_message(st, 500, msg, sizeof(msg)), none);
    CHECK_STR(job_message(st, JOB_PLAN_DEPTH + 9, msg, sizeof(msg)), none);
    CHECK_STR(job_message(st, JOB_PLAN_DEPTH + 10, msg, sizeof(msg)), JOB_QUEUED_BEHIND);
    /* a job waiting for a dependency does not count in the head */
    unit_apply_ops(st, json_pack("[o]", op_merge("jobs", "11", json_pack("{s:[s]}", "after", "12"))));
    jobs_pass_on_store(st, 4000);
    CHECK_STR(job_message(st, 11, msg, sizeof(msg)), "waiting for job 12 to end");
    CHECK_STR(job_message(st, JOB_PLAN_DEPTH + 10, msg, sizeof(msg)), none);
    store_close(st);
}

static const char *message_read(struct store *st)
{
    static char out[64];
    json_t *rows = store_jobs_message_not(st, "Waiting", "none");
    json_t *head = store_jobs_queue_head(st, "Waiting", false, 10, NULL);
    const char *m = jstr(json_array_get(rows, 0), "message");
    CHECK(json_array_size(rows) == json_array_size(head));
    CHECK(json_array_size(rows) == 0 ||
          json_equal(json_array_get(rows, 0), json_array_get(head, 0)));
    snprintf(out, sizeof(out), "%s", m ? m : "(gone)");
    /* what a reader does to a job it unshared stays there (a pass changes its jobs) */
    if (json_array_size(rows) > 0)
        store_job_unshare(st, json_array_get(rows, 0));
    json_object_set_new(json_array_get(rows, 0), "message", json_string("changed by a reader"));
    json_decref(head);
    json_decref(rows);
    return out;
}

/* The pass's reads of the queue keep each row parsed; every write of a row
 * (merge, put, delete) is seen by the next read. */
TEST(store_job_reads_follow_each_write)
{
    struct store *st = store_with_node();
    json_t *job = waiting_job(1);
    json_object_set_new(job, "message", json_string("a"));
    unit_apply_ops(st, json_pack("[o]", op_put("jobs", job)));
    CHECK_STR(message_read(st), "a");
    CHECK_STR(message_read(st), "a");
    unit_apply_ops(st, json_pack("[o]", op_merge("jobs", "1", json_pack("{s:s}", "message", "b"))));
    CHECK_STR(message_read(st), "b");
    job = waiting_job(1);
    json_object_set_new(job, "message", json_string("c"));
    unit_apply_ops(st, json_pack("[o]", op_put("jobs", job)));
    CHECK_STR(message_read(st), "c");
    json_t *known = json_pack("{s:b}", "1", 1);
    json_t *head = store_jobs_queue_head(st, "Waiting", false, 10, known);
    CHECK(json_array_size(head) == 0);
    json_decref(head);
    json_decref(known);
    unit_apply_ops(st, json_pack("[o]", op_del("jobs", "1")));
    CHECK_STR(message_read(st), "(gone)");
    store_close(st);
}

/* A pass changes the jobs it read from the store's cache of parsed rows
 * (their messages) only once they are its own: with its ops dropped, as a
 * leader's whose entry failed, the store's reads are what they were. */
TEST(jobs_pass_changes_no_job_the_store_shares)
{
    struct store *st = store_with_node();
    unit_apply_ops(st, json_pack("[o]", op_merge("nodes", "n1",
                                                 json_pack("{s:s}", "availability", "pause"))));
    json_t *job = waiting_job(1);
    json_object_set_new(job, "message", json_string("a"));
    unit_apply_ops(st, json_pack("[o]", op_put("jobs", job)));
    json_decref(store_jobs_message_not(st, "Waiting", "none")); /* parsed and kept */
    int64_t wake = 0;
    json_t *nodes = store_list(st, "nodes", NULL), *tasks = json_array(), *ops = json_array();
    jobs_pass(st, nodes, tasks, ops, 1000, &wake, NULL);
    CHECK(json_array_size(ops) == 1); /* the message "not enough nodes ..." */
    json_t *rows = store_jobs_message_not(st, "Waiting", "none");
    CHECK_STR(jstr(json_array_get(rows, 0), "message"), "a");
    json_decref(rows);
    json_decref(ops);
    json_decref(tasks);
    json_decref(nodes);
    store_close(st);
}

/* A change of a job names its tasks among the changed ones (whether a pass
 * reads its ended tasks depends on its state), not "not known". */
TEST(store_changed_tasks_name_a_changed_jobs_tasks)
{
    struct store *st = store_with_node();
    unit_apply_ops(st, json_pack("[o, o, o]", op_put("jobs", a_job("1", "Running", 1, 60)),
                                 op_put("jobs", a_job("2", "Running", 1, 60)),
                                 op_put("tasks", json_pack("{s:s, s:s, s:s, s:s}", "id", "t1",
                                                           "job_id", "1", "state", "complete",
                                                           "node_id", "n1"))));
    json_decref(store_take_changed_tasks(st)); /* the first: not known; noted from then on */
    unit_apply_ops(st, json_pack("[o, o]", op_merge("jobs", "1", json_pack("{s:s}", "state",
                                                                           "Terminated")),
                                 op_merge("jobs", "2", json_pack("{s:s}", "state", "Error"))));
    json_t *ids = store_take_changed_tasks(st);
    CHECK(ids != NULL);
    CHECK(json_object_get(ids, "t1") != NULL);
    CHECK(json_object_size(ids) == 1);
    json_decref(ids);
    store_close(st);
}

/* The queue's order in SQL (store_jobs_queue_head, the index jobs_queue) and
 * in C (store_job_queue_rank, the pass's sort of the waiting jobs) agree:
 * rank, then id as a number. */
TEST(store_job_queue_rank_is_the_queue_heads_order)
{
    struct store *st = store_with_node();
    static const char *const queues[] = {"besteffort", "default", NULL, "admin", "other",
                                         "admin", "besteffort"};
    json_t *ops = json_array();
    for (int i = 0; i < 7; i++) {
        json_t *job = waiting_job(10 - i); /* ids 10 down to 4: "10" sorts first as text */
        if (queues[i])
            json_object_set_new(job, "queue", json_string(queues[i]));
        else
            json_object_del(job, "queue");
        json_array_append_new(ops, op_put("jobs", job));
    }
    unit_apply_ops(st, ops);
    for (int be = 0; be < 2; be++) {
        json_t *head = store_jobs_queue_head(st, "Waiting", be, 10, NULL);
        CHECK(json_array_size(head) == (be ? 2u : 5u));
        for (size_t i = 0; i < json_array_size(head); i++) {
            const char *queue = jstr(json_array_get(head, i), "queue");
            CHECK((store_job_queue_rank(queue) == 2) == (be == 1));
            if (i == 0)
                continue;
            json_t *prev = json_array_get(head, i - 1);
            int r0 = store_job_queue_rank(jstr(prev, "queue")), r1 = store_job_queue_rank(queue);
            CHECK(r0 < r1 || (r0 == r1 && atoi(jstr(prev, "id")) <
                                              atoi(jstr(json_array_get(head, i), "id"))));
        }
        json_decref(head);
    }
    CHECK(store_job_queue_rank("admin") < store_job_queue_rank("default"));
    CHECK(store_job_queue_rank(NULL) == store_job_queue_rank("other"));
    CHECK(store_job_queue_rank("default") < store_job_queue_rank("besteffort"));
    store_close(st);
}

/* A job launched at 1000 on n1 whose task t1 is `state` since 1000. */
static struct store *store_with_started_job(const char *state)
{
    struct store *st = store_with_node();
    json_t *job = a_job("1", "toLaunch", 1, 60);
    json_object_set_new(job, "task_id", json_string("t1"));
    json_object_set_new(job, "scheduled_at", json_integer(1000));
    json_object_set_new(job, "assigned", json_pack("[{s:s, s:s, s:i, s:[i]}]", "node_id", "n1",
                                                   "hostname", "node-1", "cores", 1, "cpuset", 0));
    json_t *task = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "id", "t1", "job_id", "1",
                             "node_id", "n1", "desired_state", "running", "state", state,
                             "state_at", 1000);
    if (strcmp(state, "complete") == 0)
        json_object_set_new(task, "exit_code", json_integer(3));
    unit_apply_ops(st, json_pack("[o, o]", op_put("jobs", job), op_put("tasks", task)));
    return st;
}

/* A pass at `now` over the store's tasks, with `ops` (taken) before the
 * jobs' as a pass's services' ops: the ops it leaves, its wake-up time. */
static json_t *pass_with(struct store *st, int64_t now, json_t *ops, int64_t *wake)
{
    *wake = 0;
    json_t *nodes = store_list(st, "nodes", NULL), *tasks = jobs_pass_tasks(st);
    jobs_pass(st, nodes, tasks, ops, now, wake, NULL);
    json_decref(tasks);
    json_decref(nodes);
    return ops;
}

static const char *op_state(json_t *ops, size_t i)
{
    return jstr(json_object_get(json_array_get(ops, i), "fields"), "state");
}

/* The start time the agent put on the task (its end report when the job
 * ended within the hold of its `running` report, or a held `running` report
 * sent after the start) is the job's, not its launch nor the report's time. */
TEST(jobs_pass_takes_a_jobs_start_from_its_tasks_started_at)
{
    struct store *st = store_with_started_job("complete");
    unit_apply_ops(st, json_pack("[o]", op_merge("tasks", "t1", json_pack("{s:i, s:i}", "started_at",
                                                                          1004, "state_at", 1009))));
    int64_t wake;
    json_t *ops = pass_with(st, 1010, json_array(), &wake);
    CHECK(json_array_size(ops) == 1);
    CHECK_STR(op_state(ops, 0), "Terminated");
    unit_apply_ops(st, ops);
    json_t *job = store_get(st, "jobs", "1");
    CHECK(json_integer_value(json_object_get(job, "started_at")) == 1004);
    CHECK(json_integer_value(json_object_get(job, "stopped_at")) == 1010);
    json_decref(job);
    store_close(st);
    st = store_with_started_job("running"); /* held: sent at 1100, started at 1002 */
    unit_apply_ops(st, json_pack("[o]", op_merge("tasks", "t1", json_pack("{s:i, s:i}", "started_at",
                                                                          1002, "state_at", 1100))));
    ops = pass_with(st, 1100 + JOB_PROGRESS_ALONE_MS, json_array(), &wake);
    CHECK(json_array_size(ops) == 1);
    CHECK_STR(op_state(ops, 0), "Running");
    CHECK(json_integer_value(json_object_get(json_object_get(json_array_get(ops, 0), "fields"),
                                             "started_at")) == 1002);
    CHECK(wake == 1002 + 60 * 1000); /* the walltime counts from the start */
    json_decref(ops);
    store_close(st);
}

/* A job's Running waits JOB_PROGRESS_ALONE_MS for other ops to go with
 * (issue 14): a trivial job that ends within it makes no entry of its own
 * for Running; its end then goes straight to Terminated. */
TEST(jobs_pass_proposes_running_alone_only_once_it_is_due)
{
    struct store *st = store_with_started_job("running");
    int64_t wake, due = 1000 + JOB_PROGRESS_ALONE_MS;
    json_t *ops = pass_with(st, due - 1, json_array(), &wake);
    CHECK(json_array_size(ops) == 0);
    CHECK(wake == due);
    json_decref(ops);
    json_t *other = op_merge("nodes", "n1", json_pack("{s:s}", "note", "x"));
    ops = pass_with(st, due - 1, json_pack("[o]", other), &wake); /* other ops: goes along */
    CHECK(json_array_size(ops) == 2);
    CHECK_STR(op_state(ops, 1), "Running");
    json_decref(ops);
    ops = pass_with(st, due, json_array(), &wake); /* due: alone */
    CHECK(json_array_size(ops) == 1);
    CHECK_STR(op_state(ops, 0), "Running");
    CHECK(json_integer_value(json_object_get(json_object_get(json_array_get(ops, 0), "fields"),
                                             "started_at")) == 1000);
    unit_apply_ops(st, ops);
    json_t *job = store_get(st, "jobs", "1");
    CHECK_STR(jstr(job, "state"), "Running");
    json_decref(job);
    store_close(st);
    st = store_with_started_job("complete"); /* ended before its Running was proposed */
    ops = pass_with(st, 1010, json_array(), &wake);
    CHECK(json_array_size(ops) == 1);
    CHECK_STR(op_state(ops, 0), "Terminated");
    unit_apply_ops(st, ops);
    job = store_get(st, "jobs", "1");
    CHECK(json_integer_value(json_object_get(job, "exit_code")) == 3);
    CHECK(json_integer_value(json_object_get(job, "started_at")) == 1000);
    json_decref(job);
    store_close(st);
}
