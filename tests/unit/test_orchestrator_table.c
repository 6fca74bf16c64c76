/* Table tests of orchestrator_pass: each case is a store state (nodes,
 * services, tasks) and a few steps; a step may first apply an agent's report,
 * then runs one pass at its time, compares the ops (summarised, one line
 * each) and the wake time with the expected ones, and applies the ops as the
 * leader would. JSON in the tables is written with ' for ". */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "manager/orchestrator.h"
#include "store/store.h"
#include "store_ops.h"
#include "table.h"
#include "unit.h"

struct step {
    int64_t now;
    const char *report; /* "NAME=STATE": the newest task NAME reports STATE at `now`; or NULL */
    const char *ops;    /* the pass's ops, summarised (describe_op), "; " between them */
    int64_t wake;       /* the pass's wake time (0: none) */
};

struct orch_case {
    const char *name;
    const char *nodes;    /* JSON array; missing fields: table_node (table.h) */
    const char *services; /* JSON array; missing fields: service_defaults */
    const char *tasks;    /* JSON array; missing fields: task_defaults; id is the name */
    struct step steps[5]; /* up to the first with now == 0 */
    const char *cluster;  /* the cluster's settings (meta "cluster"), or NULL */
};

/* Five dead tasks of web's slot 1, h1 the oldest, h5 failed at 1000. */
#define DEAD_TASKS                                                                                \
    "{'id':'h1', 'slot':1, 'desired_state':'shutdown', 'state':'failed', 'created_at':1},"        \
    "{'id':'h2', 'slot':1, 'desired_state':'shutdown', 'state':'failed', 'created_at':2},"        \
    "{'id':'h3', 'slot':1, 'desired_state':'shutdown', 'state':'failed', 'created_at':3},"        \
    "{'id':'h4', 'slot':1, 'desired_state':'shutdown', 'state':'failed', 'created_at':4},"        \
    "{'id':'h5', 'slot':1, 'desired_state':'shutdown', 'state':'failed', 'created_at':5,"         \
    " 'state_at':1000}"

/* A replicated job every minute, in UTC, with this overlap policy. */
#define JOB_SPEC(overlap)                                                                         \
    "{'mode':'replicated-job', 'replicas':1, 'restart_condition':'none', 'schedule':'* * * * *',"   \
    " 'schedule_tz':'UTC', 'schedule_overlap':'" overlap "'}"

static const struct orch_case cases[] = {
    {"new_service_gets_its_replicas_spread",
     "[{'id':'n1'}, {'id':'n2'}]",
     "[{'id':'web', 'spec':{'replicas':2}}]",
     "[]",
     {{1000, NULL,
       "put web.1 state=assigned node=n1; put web.2 state=assigned node=n2",
       0},
      {2000, NULL, "", 0}}, NULL},
    {"scale_down_stops_the_highest_slots",
     "[{'id':'n1'}, {'id':'n2'}]",
     "[{'id':'web', 'spec':{'replicas':1}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1'}, {'id':'web.2', 'slot':2, 'node_id':'n2'},"
     " {'id':'web.3', 'slot':3, 'node_id':'n1'}]",
     {{1000, NULL, "merge web.2 desired=shutdown; merge web.3 desired=shutdown", 0},
      {2000, "web.2=shutdown", "", 0}}, NULL},
    {"down_node_keeps_its_tasks_for_the_grace_then_they_move",
     "[{'id':'n1'}, {'id':'n2', 'status':'down', 'updated_at':1000}]",
     "[{'id':'web', 'spec':{'replicas':1, 'restart_delay_ms':60000}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n2'}]",
     {{2000, NULL, "", 4000}, /* NODE_DOWN_MS after the last heartbeat, ORPHAN_GRACE_MS more */
      {4000, NULL, "merge web.1 state=orphaned; merge web.1 desired=shutdown", 0},
      /* a lost node is no crash: no restart delay */
      {4001, NULL, "put web.1 state=assigned node=n1", 0}}, NULL},
    {"restart_delay_is_a_wake_time",
     "[{'id':'n1'}]",
     "[{'id':'web', 'spec':{'replicas':1, 'restart_delay_ms':5000}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'state':'failed', 'state_at':1000}]",
     {{2000, NULL, "merge web.1 desired=shutdown", 0},
      {3000, NULL, "", 6000},
      {5999, NULL, "", 6000},
      {6000, NULL, "put web.1 state=assigned node=n1", 0}}, NULL},
    {"global_one_task_per_eligible_node",
     "[{'id':'n1'}, {'id':'n2'}, {'id':'n3', 'availability':'drain'},"
     " {'id':'n4', 'status':'down', 'updated_at':1000}]",
     "[{'id':'agent', 'spec':{'mode':'global'}}]",
     "[]",
     {{1000, NULL,
       "put agent.n1 state=assigned node=n1; "
       "put agent.n2 state=assigned node=n2",
       4000}, /* n4's grace */
      {2000, NULL, "", 4000}}, NULL},
    {"constraint_excludes_a_node",
     "[{'id':'n1', 'role':'manager'}, {'id':'n2'}]",
     "[{'id':'web', 'spec':{'replicas':2, 'constraints':['node.role==worker']}},"
     " {'id':'mon', 'spec':{'mode':'global', 'constraints':['node.role!=manager']}}]",
     "[]",
     {{1000, NULL,
       "put mon.n2 state=assigned node=n2; "
       "put web.1 state=assigned node=n2; put web.2 state=assigned node=n2",
       0}}, NULL},
    {"one_shot_service_is_not_restarted",
     "[{'id':'n1'}]",
     "[{'id':'once', 'spec':{'replicas':1, 'restart_condition':'none'}}]",
     "[{'id':'once.1', 'service_id':'once', 'slot':1, 'node_id':'n1'}]",
     {{1000, "once.1=complete", "merge once.1 desired=shutdown", 0},
      {2000, NULL, "", 0},
      {90000, NULL, "", 0}}, NULL},
    {"rolling_update_one_at_a_time_in_slot_order",
     "[{'id':'n1'}, {'id':'n2'}, {'id':'n3'}]",
     "[{'id':'web', 'version':2, 'spec':{'replicas':3, 'update_config':{'parallelism':1}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1'}, {'id':'web.2', 'slot':2, 'node_id':'n2'},"
     " {'id':'web.3', 'slot':3, 'node_id':'n3'}]",
     {{1000, NULL, "merge web.1 desired=shutdown", 0},
      {2000, NULL, "", 0}, /* the old task is still stopping */
      {3000, "web.1=shutdown", "put web.1 state=assigned node=n1", 0},
      {4000, NULL, "", 0}, /* the new one is not running yet */
      {5000, "web.1=running", "merge web.2 desired=shutdown", 0}}, NULL},
    {"rolling_update_delay_after_the_last_started",
     "[{'id':'n1'}, {'id':'n2'}]",
     "[{'id':'web', 'version':2,"
     " 'spec':{'replicas':2, 'update_config':{'parallelism':1, 'delay_ms':10000}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'spec_version':2, 'state_at':1000},"
     " {'id':'web.2', 'slot':2, 'node_id':'n2'}]",
     {{2000, NULL, "", 11000}, {11000, NULL, "merge web.2 desired=shutdown", 0}}, NULL},
    /* --update-order start-first: the old task runs until the new one does */
    {"rolling_update_start_first_starts_the_new_task_before_stopping_the_old",
     "[{'id':'n1'}]",
     "[{'id':'web', 'version':2,"
     " 'spec':{'replicas':1, 'update_config':{'parallelism':1, 'order':'start-first'}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1'}]",
     {{1000, NULL, "put web.1 state=assigned node=n1", 0},
      {2000, NULL, "", 0}, /* both tasks wanted running while the new one starts */
      {3000, "web.1=running", "merge web.1 desired=shutdown", 0},
      {4000, NULL, "", 0}}, NULL},
    {"rolling_update_start_first_new_task_failing_stops_the_old_too",
     "[{'id':'n1'}]",
     "[{'id':'web', 'version':2,"
     " 'spec':{'replicas':1, 'update_config':{'parallelism':1, 'order':'start-first'}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1'}]",
     {{1000, NULL, "put web.1 state=assigned node=n1", 0},
      {2000, "web.1=failed", "merge web.1 desired=shutdown; merge web.1 desired=shutdown", 0}},
     NULL},
    /* a global service's new task goes beside the old one, on the node of its slot */
    {"global_start_first_update_keeps_each_task_on_its_node",
     "[{'id':'n1'}, {'id':'n2'}]",
     "[{'id':'web', 'version':2, 'spec':{'mode':'global',"
     " 'update_config':{'parallelism':0, 'order':'start-first'}}},"
     " {'id':'db', 'spec':{'replicas':1}}]",
     /* db's task makes n1 the busier node: spreading alone would put web.n1 on n2 */
     "[{'id':'web.n1', 'slot':'n1', 'node_id':'n1'}, {'id':'web.n2', 'slot':'n2', 'node_id':'n2'},"
     " {'id':'db.1', 'service_id':'db', 'slot':1, 'node_id':'n1'}]",
     {{1000, NULL,
       "put web.n1 state=assigned node=n1; put web.n2 state=assigned node=n2",
       0}}, NULL},
    /* --update-monitor: the wait between replacements when failures are watched */
    {"rolling_update_waits_the_monitor_time_after_the_last_started",
     "[{'id':'n1'}, {'id':'n2'}]",
     "[{'id':'web', 'version':2, 'spec':{'replicas':2, 'update_config':{'parallelism':1,"
     " 'failure_action':'pause', 'monitor_ms':20000}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'spec_version':2, 'state_at':1000},"
     " {'id':'web.2', 'slot':2, 'node_id':'n2'}]",
     {{2000, NULL, "", 21000}, {21000, NULL, "merge web.2 desired=shutdown", 0}}, NULL},
    {"rolling_update_completes_after_the_monitor_time",
     "[{'id':'n1'}]",
     "[{'id':'web', 'version':2, 'update_state':'updating', 'spec':{'replicas':1,"
     " 'update_config':{'failure_action':'pause', 'monitor_ms':20000}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'spec_version':2, 'state_at':1000}]",
     {{2000, NULL, "", 21000}, {21000, NULL, "merge service web update_state=completed", 0}},
     NULL},
    /* --update-max-failure-ratio 0.25: one failure of four tolerated, not two */
    {"rolling_update_failure_ratio_tolerates_a_share_of_failures",
     "[{'id':'n1'}]",
     "[{'id':'web', 'version':2, 'update_state':'updating', 'updated_at':0, 'spec':{'replicas':4,"
     " 'update_config':{'parallelism':1, 'failure_action':'pause', 'max_failure_ratio':0.25}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'spec_version':2, 'state':'failed', 'state_at':500},"
     " {'id':'web.2', 'slot':2, 'node_id':'n1', 'spec_version':2},"
     " {'id':'web.3', 'slot':3, 'node_id':'n1'}, {'id':'web.4', 'slot':4, 'node_id':'n1'}]",
     {{1000, NULL, "merge web.1 desired=shutdown; merge web.3 desired=shutdown", 0},
      {2000, "web.2=failed",
       "put web.1 state=assigned node=n1; merge web.2 desired=shutdown; "
       "merge service web update_state=paused",
       0}}, NULL},
    /* a rollback follows the rollback_config of the spec rolled back to */
    {"rollback_replaces_tasks_with_the_rollback_parallelism",
     "[{'id':'n1'}]",
     "[{'id':'web', 'version':3, 'update_state':'rollback_started', 'spec':{'replicas':3,"
     " 'update_config':{'parallelism':0}, 'rollback_config':{'parallelism':1}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'spec_version':2},"
     " {'id':'web.2', 'slot':2, 'node_id':'n1', 'spec_version':2},"
     " {'id':'web.3', 'slot':3, 'node_id':'n1', 'spec_version':2}]",
     {{1000, NULL, "merge web.1 desired=shutdown", 0}}, NULL},
    {"update_replaces_tasks_with_the_update_parallelism",
     "[{'id':'n1'}]",
     "[{'id':'web', 'version':3, 'update_state':'updating', 'spec':{'replicas':3,"
     " 'update_config':{'parallelism':0}, 'rollback_config':{'parallelism':1}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'spec_version':2},"
     " {'id':'web.2', 'slot':2, 'node_id':'n1', 'spec_version':2},"
     " {'id':'web.3', 'slot':3, 'node_id':'n1', 'spec_version':2}]",
     {{1000, NULL,
       "merge web.1 desired=shutdown; merge web.2 desired=shutdown; merge web.3 desired=shutdown",
       0}}, NULL},
    {"rollback_failure_action_continue_goes_on",
     "[{'id':'n1'}]",
     "[{'id':'web', 'version':3, 'update_state':'rollback_started', 'spec':{'replicas':2,"
     " 'update_config':{'parallelism':1, 'failure_action':'pause'},"
     " 'rollback_config':{'parallelism':1, 'failure_action':'continue', 'monitor_ms':0}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'spec_version':3, 'state':'failed', 'state_at':500},"
     " {'id':'web.2', 'slot':2, 'node_id':'n1', 'spec_version':2}]",
     {{1000, NULL, "merge web.1 desired=shutdown; merge web.2 desired=shutdown", 0}}, NULL},
    {"rollback_failing_with_failure_action_pause_pauses",
     "[{'id':'n1'}]",
     "[{'id':'web', 'version':3, 'update_state':'rollback_started', 'spec':{'replicas':1,"
     " 'rollback_config':{'failure_action':'pause'}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'spec_version':3, 'state':'failed', 'state_at':500}]",
     {{1000, NULL, "merge web.1 desired=shutdown; merge service web update_state=rollback_paused", 0}},
     NULL},
    /* failures are judged before completion: the only new task failing pauses */
    {"update_whose_only_task_fails_pauses_not_completes",
     "[{'id':'n1'}]",
     "[{'id':'web', 'version':2, 'update_state':'updating', 'spec':{'replicas':1,"
     " 'update_config':{'failure_action':'pause'}}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'spec_version':2, 'state':'failed', 'state_at':500}]",
     {{1000, NULL, "merge web.1 desired=shutdown; merge service web update_state=paused", 0}},
     NULL},
    {"history_keeps_five_tasks_per_slot_by_default",
     "[{'id':'n1'}]",
     "[{'id':'web', 'spec':{'replicas':1}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'created_at':10}," DEAD_TASKS "]",
     {{1000, NULL, "del h1", 0}, {2000, NULL, "", 0}}, NULL},
    {"history_limit_is_the_cluster_setting",
     "[{'id':'n1'}]",
     "[{'id':'web', 'spec':{'replicas':1}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'created_at':10}," DEAD_TASKS "]",
     {{1000, NULL, "del h1; del h2; del h3; del h4", 0}, {2000, NULL, "", 0}},
     "{'task_history_limit':2}"},
    {"history_limit_negative_keeps_everything",
     "[{'id':'n1'}]",
     "[{'id':'web', 'spec':{'replicas':1}}]",
     "[{'id':'web.1', 'slot':1, 'node_id':'n1', 'created_at':10}," DEAD_TASKS "]",
     {{1000, NULL, "", 0}},
     "{'task_history_limit':-1}"},
    /* the newest dead task still times the restart delay */
    {"history_limit_zero_keeps_the_newest_task_of_a_slot",
     "[{'id':'n1'}]",
     "[{'id':'web', 'spec':{'replicas':1, 'restart_delay_ms':60000}}]",
     "[" DEAD_TASKS "]",
     {{2000, NULL, "del h1; del h2; del h3; del h4", 61000}},
     "{'task_history_limit':0}"},
    /* replicated jobs (manager/job_runs.h); times from the epoch: a minute is 60000 */
    {"scheduled_job_fires_at_its_time_not_before_and_wakes_for_the_next",
     "[{'id':'n1'}]",
     "[{'id':'job', 'created_at':0, 'spec':" JOB_SPEC("skip") "}]",
     "[]",
     {{1000, NULL, "", 60000},
      {59999, NULL, "", 60000},
      {60000, NULL, "merge service job run=1; put job.1 state=assigned node=n1", 120000},
      {61000, "job.1=complete", "merge service job ended=complete; merge job.1 desired=shutdown",
       120000},
      {120000, NULL, "merge service job run=2; put job.1 state=assigned node=n1",
       180000}}, NULL},
    {"scheduled_job_overlap_skip_skips_the_fire_during_a_run",
     "[{'id':'n1'}]",
     "[{'id':'job', 'created_at':0, 'spec':" JOB_SPEC("skip") "}]",
     "[]",
     {{60000, NULL, "merge service job run=1; put job.1 state=assigned node=n1", 120000},
      {120000, "job.1=running", "merge service job skipped=1", 180000},
      {130000, "job.1=complete", "merge service job ended=complete; merge job.1 desired=shutdown",
       180000},
      {180000, NULL, "merge service job run=2; put job.1 state=assigned node=n1",
       240000}}, NULL},
    {"scheduled_job_overlap_queue_runs_when_the_run_ends",
     "[{'id':'n1'}]",
     "[{'id':'job', 'created_at':0, 'spec':" JOB_SPEC("queue") "}]",
     "[]",
     {{60000, NULL, "merge service job run=1; put job.1 state=assigned node=n1", 120000},
      {150000, "job.1=running", "", 0},
      {170000, "job.1=failed", "merge service job run=2; merge job.1 desired=shutdown", 180000},
      {170001, NULL, "put job.1 state=assigned node=n1", 180000}}, NULL},
    {"job_without_schedule_runs_once",
     "[{'id':'n1'}]",
     "[{'id':'once', 'spec':{'mode':'replicated-job', 'replicas':1, 'restart_condition':'none'}}]",
     "[]",
     {{1000, NULL, "merge service once run=1; put once.1 state=assigned node=n1", 0},
      {2000, "once.1=complete", "merge service once ended=complete; merge once.1 desired=shutdown", 0},
      {3000, NULL, "", 0}}, NULL},
    /* --mode global-job: one task per eligible node, run to completion */
    {"global_job_runs_once_per_node",
     "[{'id':'n1'}, {'id':'n2'}, {'id':'n3', 'availability':'drain'}]",
     "[{'id':'gj', 'spec':{'mode':'global-job', 'restart_condition':'none'}}]",
     "[]",
     {{1000, NULL,
       "merge service gj run=1; put gj.n1 state=assigned node=n1; "
       "put gj.n2 state=assigned node=n2",
       0},
      {2000, "gj.n1=complete", "merge gj.n1 desired=shutdown", 0},
      {3000, "gj.n2=complete", "merge service gj ended=complete; merge gj.n2 desired=shutdown", 0},
      {4000, NULL, "", 0}}, NULL},
    /* --max-concurrent 1: the second node's task waits; it still goes to its node */
    {"global_job_max_concurrent_holds_slots_back_and_pins_them_to_their_node",
     "[{'id':'n1'}, {'id':'n2'}]",
     "[{'id':'gj', 'spec':{'mode':'global-job', 'restart_condition':'none', 'max_concurrent':1}}]",
     "[]",
     {{1000, NULL, "merge service gj run=1; put gj.n1 state=assigned node=n1", 0},
      {1500, "gj.n1=running", "", 0},
      {2000, "gj.n1=complete",
       "merge gj.n1 desired=shutdown; put gj.n2 state=assigned node=n2", 0}}, NULL},
    {"replicated_job_max_concurrent_two_of_three",
     "[{'id':'n1'}]",
     "[{'id':'job', 'spec':{'mode':'replicated-job', 'replicas':3, 'restart_condition':'none',"
     " 'max_concurrent':2}}]",
     "[]",
     {{1000, NULL,
       "merge service job run=1; put job.1 state=assigned node=n1; "
       "put job.2 state=assigned node=n1",
       0},
      {2000, "job.2=complete",
       "merge job.2 desired=shutdown; put job.3 state=assigned node=n1", 0},
      {3000, "job.1=complete", "merge job.1 desired=shutdown", 0},
      {4000, "job.3=complete", "merge service job ended=complete; merge job.3 desired=shutdown",
       0}}, NULL},
};

/* ---- building the store ---- */

static json_t *service_defaults(json_t *svc)
{
    json_t *spec = json_object_get(svc, "spec");
    json_object_update_missing_new(
        spec, json_pack("{s:s, s:s, s:i, s:s}", "image", "busybox:latest", "mode", "replicated",
                        "restart_delay_ms", 0, "restart_condition", "any"));
    json_object_update_missing_new(
        svc, json_pack("{s:O, s:i}", "name", json_object_get(svc, "id"), "version", 1));
    return svc;
}

static json_t *task_defaults(json_t *t)
{
    json_object_update_missing_new(
        t, json_pack("{s:O, s:s, s:s, s:s, s:i, s:i, s:i}", "name", json_object_get(t, "id"),
                     "service_id", "web", "desired_state", "running", "state", "running",
                     "spec_version", 1, "created_at", 0, "state_at", 0));
    return t;
}

static void put_all(json_t *ops, const char *table, const char *objs,
                    json_t *(*defaults)(json_t *))
{
    json_t *list = table_json(objs);
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o) json_array_append_new(ops, op_put(table, defaults(json_incref(o))));
    json_decref(list);
}

static struct store *store_of_case(const struct orch_case *c)
{
    struct store *st;
    CHECK(store_open(&st, NULL) == 0);
    json_t *ops = json_pack(
        "[o,o]", op_put("images", json_pack("{s:s, s:{}}", "id", "sha256:abc", "config")),
        op_put("tags", json_pack("{s:s, s:s}", "id", "busybox:latest", "image_id", "sha256:abc")));
    put_all(ops, "nodes", c->nodes, table_node);
    put_all(ops, "services", c->services, service_defaults);
    put_all(ops, "tasks", c->tasks, task_defaults);
    if (c->cluster) {
        json_t *meta = table_json(c->cluster);
        json_object_set_new(meta, "id", json_string("cluster"));
        json_array_append_new(ops, op_put("meta", meta));
    }
    unit_apply_ops(st, ops);
    return st;
}

/* "NAME=STATE": the newest task named NAME reports STATE at `now`. */
static void apply_report(struct store *st, const char *report, int64_t now)
{
    char name[64];
    const char *eq = strchr(report, '=');
    CHECK(eq != NULL && (size_t)(eq - report) < sizeof(name));
    snprintf(name, sizeof(name), "%.*s", (int)(eq - report), report);
    json_t *tasks = store_list(st, "tasks", NULL);
    json_t *newest = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0 &&
            (newest == NULL || json_integer_value(json_object_get(t, "created_at")) >
                                   json_integer_value(json_object_get(newest, "created_at"))))
            newest = t;
    }
    CHECK(newest != NULL);
    unit_apply_ops(
        st, json_pack("[o]", op_merge("tasks", json_string_value(json_object_get(newest, "id")),
                                      json_pack("{s:s, s:I}", "state", eq + 1, "state_at",
                                                (json_int_t)now))));
    json_decref(tasks);
}

/* ---- summarising ops ---- */

static void append(char *buf, size_t size, const char *fmt, const char *a, const char *b)
{
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, fmt, a, b);
}

/* A replicated job's fields: " run=N" (a run starts), " skipped=N" (a fire
 * skipped), " ended=STATE" (the last run in "runs" is over). */
static void describe_job_run(json_t *fields, char *buf, size_t size)
{
    char n[32];
    static const char *const counters[][2] = {{"run", "run"}, {"runs_skipped", "skipped"}};
    for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
        json_t *v = json_object_get(fields, counters[k][0]);
        if (!json_is_integer(v))
            continue;
        snprintf(n, sizeof(n), "%lld", (long long)json_integer_value(v));
        append(buf, size, " %s=%s", counters[k][1], n);
    }
    json_t *runs = json_object_get(fields, "runs");
    json_t *last = json_array_get(runs, json_array_size(runs) - 1);
    if (json_object_get(last, "ended_at"))
        append(buf, size, " %s=%s", "ended", json_string_value(json_object_get(last, "state")));
}

/* Task ids are random: ops name tasks by their name, from the store or
 * from a put earlier in the same pass. */
static const char *task_name(json_t *names, const char *id)
{
    const char *name = json_string_value(json_object_get(names, id));
    return name ? name : id;
}

/* One op as "put NAME" (with " state=.. node=.." when placed), "del NAME", "merge NAME state=.. node=.. desired=.."
 * (the fields among those present), "put service ID", "merge service ID
 * update_state=..". */
static void describe_op(json_t *op, json_t *names, char *buf, size_t size)
{
    const char *kind = json_string_value(json_object_get(op, "op"));
    const char *table = json_string_value(json_object_get(op, "table"));
    json_t *obj = json_object_get(op, "obj");
    if (strcmp(table, "tasks") != 0) {
        const char *id = obj ? json_string_value(json_object_get(obj, "id"))
                             : json_string_value(json_object_get(op, "id"));
        append(buf, size, "%s service %s", kind, id);
        const char *us = json_string_value(
            json_object_get(json_object_get(op, "fields"), "update_state"));
        if (us)
            append(buf, size, " %s=%s", "update_state", us);
        describe_job_run(json_object_get(op, "fields"), buf, size);
        return;
    }
    if (obj) {
        json_object_set(names, json_string_value(json_object_get(obj, "id")),
                        json_object_get(obj, "name"));
        append(buf, size, "%s %s", kind, json_string_value(json_object_get(obj, "name")));
        const char *node = json_string_value(json_object_get(obj, "node_id"));
        if (node) /* placed in the pass that created it: one put */
            append(buf, size, " state=%s node=%s",
                   json_string_value(json_object_get(obj, "state")), node);
        return;
    }
    append(buf, size, "%s %s", kind, task_name(names, json_string_value(json_object_get(op, "id"))));
    static const char *const shown[][2] = {
        {"state", "state"}, {"node_id", "node"}, {"desired_state", "desired"}};
    json_t *fields = json_object_get(op, "fields");
    for (size_t k = 0; k < sizeof(shown) / sizeof(shown[0]); k++) {
        const char *v = json_string_value(json_object_get(fields, shown[k][0]));
        if (v)
            append(buf, size, " %s=%s", shown[k][1], v);
    }
}

static void describe_ops(struct store *st, json_t *ops, char *buf, size_t size)
{
    json_t *names = json_object();
    json_t *tasks = store_list(st, "tasks", NULL);
    size_t i;
    json_t *o;
    json_array_foreach(tasks, i, o)
        json_object_set(names, json_string_value(json_object_get(o, "id")), json_object_get(o, "name"));
    buf[0] = '\0';
    json_array_foreach(ops, i, o)
    {
        if (i > 0)
            append(buf, size, "%s%s", "; ", "");
        describe_op(o, names, buf, size);
    }
    json_decref(tasks);
    json_decref(names);
}

/* A pass of the step: with `kept` (orchestrator_pass_kept), else reading
 * every task (orchestrator_pass). Returns whether it gave the step's ops and
 * wake time; *ops gets them. */
static bool step_pass(const struct orch_case *c, size_t s, struct store *st,
                      struct orch_tasks *kept, json_t **ops)
{
    const struct step *step = &c->steps[s];
    int64_t wake = -1;
    *ops = kept ? orchestrator_pass_kept(kept, st, step->now, &wake)
                : orchestrator_pass(st, step->now, &wake);
    char got[2048];
    describe_ops(st, *ops, got, sizeof(got));
    bool ok = strcmp(got, step->ops) == 0 && wake == step->wake;
    if (!ok)
        fprintf(stderr, "%s%s, step %zu (now %lld):\n  ops  %s\n  want %s\n  wake %lld, want %lld\n",
                c->name, kept ? " (kept tasks)" : "", s + 1, (long long)step->now, got, step->ops,
                (long long)wake, (long long)step->wake);
    return ok;
}

/* Returns whether every step gave the ops and wake time of the table. With
 * `kept_tasks`, each step's passes keep their tasks (orchestrator_pass_kept),
 * and a first pass's ops are dropped (as a proposal that failed): the
 * second, whose are applied, must be the same. */
static bool run_case(const struct orch_case *c, bool kept_tasks)
{
    struct store *st = store_of_case(c);
    struct orch_tasks *kept = kept_tasks ? orch_tasks_new() : NULL;
    bool ok = true;
    for (size_t s = 0; ok && s < sizeof(c->steps) / sizeof(c->steps[0]) && c->steps[s].now; s++) {
        if (c->steps[s].report)
            apply_report(st, c->steps[s].report, c->steps[s].now);
        json_t *ops = NULL;
        if (kept) {
            ok = step_pass(c, s, st, kept, &ops);
            json_decref(ops);
            ops = NULL;
        }
        if (ok)
            ok = step_pass(c, s, st, kept, &ops);
        if (json_array_size(ops))
            unit_apply_ops(st, ops);
        else
            json_decref(ops);
    }
    orch_tasks_free(kept);
    store_close(st);
    return ok;
}

TEST(orchestrator_table)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        failed += !run_case(&cases[i], false);
    CHECK(failed == 0);
}

/* The same table, the tasks kept from one pass to the next. */
TEST(orchestrator_table_kept_tasks)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        failed += !run_case(&cases[i], true);
    CHECK(failed == 0);
}
