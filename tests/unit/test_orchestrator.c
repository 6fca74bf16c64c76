/* Orchestrator passes over a real store: one-shot slots, the pending reason. */
#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"
#include "base/util.h"
#include "manager/orchestrator.h"
#include "store/store.h"
#include "store_ops.h"
#include "unit.h"

static size_t pass(struct store *st, int64_t now)
{
    int64_t wake = 0;
    return unit_apply_ops(st, orchestrator_pass(st, now, &wake));
}

static struct store *store_with_node(void)
{
    struct store *st;
    CHECK(store_open(&st, NULL) == 0);
    json_t *ops = json_pack(
        "[o,o,o]",
        op_put("nodes", json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", "n1", "hostname", "node-1",
                                  "role", "manager", "status", "ready", "availability", "active")),
        op_put("images", json_pack("{s:s, s:{}}", "id", "sha256:abc", "config")),
        op_put("tags", json_pack("{s:s, s:s}", "id", "busybox:latest", "image_id", "sha256:abc")));
    unit_apply_ops(st, ops);
    return st;
}

static void put_service(struct store *st, const char *id, json_t *spec /* stolen */)
{
    json_object_set_new(spec, "image", json_string("busybox:latest"));
    json_object_set_new(spec, "mode", json_string("replicated"));
    json_object_set_new(spec, "restart_delay_ms", json_integer(0));
    unit_apply_ops(
        st, json_pack("[o]", op_put("services", json_pack("{s:s, s:s, s:i, s:o}", "id", id, "name",
                                                          id, "version", 1, "spec", spec))));
}

/* The agent's report: every task of the store ends in `state`. */
static void finish_all(struct store *st, const char *state, int64_t at)
{
    json_t *tasks = store_list(st, "tasks", NULL);
    json_t *ops = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        json_array_append_new(ops, op_merge("tasks", json_string_value(json_object_get(t, "id")),
                                            json_pack("{s:s, s:I}", "state", state, "state_at",
                                                      (json_int_t)at)));
    }
    unit_apply_ops(st, ops);
    json_decref(tasks);
}

TEST(orchestrator_one_shot_slots_end)
{
    struct store *st = store_with_node();
    put_service(st, "once", json_pack("{s:i, s:s}", "replicas", 2, "restart_condition", "none"));
    CHECK(pass(st, 1000) == 2); /* two tasks, each put assigned (one op a task) */
    finish_all(st, "complete", 2000);
    CHECK(pass(st, 3000) == 2); /* desired shutdown, as Swarm shows a finished task */
    CHECK(pass(st, 4000) == 0); /* and nothing replaces them */
    json_t *tasks = store_list(st, "tasks", NULL);
    CHECK(json_array_size(tasks) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(tasks, 0), "desired_state")),
              "shutdown");
    json_t *svc = store_get(st, "services", "once");
    CHECK(task_finished_for_good(svc, json_array_get(tasks, 0)));
    struct service_counts counts;
    service_count_tasks(svc, tasks, &counts);
    CHECK(counts.running == 0 && counts.completed == 2 && counts.failed == 0);
    json_decref(svc);
    json_decref(tasks);
    store_close(st);
}

TEST(orchestrator_on_failure_restarts_only_failures)
{
    struct store *st = store_with_node();
    put_service(st, "onf", json_pack("{s:i, s:s}", "replicas", 1, "restart_condition",
                                     "on-failure"));
    CHECK(pass(st, 1000) == 1); /* the task, put assigned */
    finish_all(st, "failed", 2000);
    CHECK(pass(st, 3000) == 1); /* desired shutdown */
    CHECK(pass(st, 4000) == 1); /* a new task in the slot, put assigned */
    finish_all(st, "complete", 5000);
    pass(st, 6000);
    CHECK(pass(st, 7000) == 0);
    json_t *tasks = store_list(st, "tasks", NULL);
    CHECK(json_array_size(tasks) == 2);
    json_t *svc = store_get(st, "services", "onf");
    struct service_counts counts;
    service_count_tasks(svc, tasks, &counts);
    CHECK(counts.completed == 1 && counts.failed == 0); /* the failed one was replaced */
    json_decref(svc);
    json_decref(tasks);
    store_close(st);
}

TEST(orchestrator_pending_reason_one_entry_per_change)
{
    struct store *st = store_with_node();
    put_service(st, "zoned", json_pack("{s:i, s:s, s:[s]}", "replicas", 1, "restart_condition",
                                       "any", "constraints", "node.hostname==node-[1-4]"));
    CHECK(pass(st, 1000) == 1); /* the task, put with its reason */
    json_t *first = store_list(st, "tasks", NULL);
    json_t *t = json_array_get(first, 0);
    CHECK_STR(json_string_value(json_object_get(t, "state")), "pending");
    CHECK_STR(json_string_value(json_object_get(t, "error")),
              "no suitable node (scheduling constraints not satisfied on 1 node)");
    CHECK(pass(st, 2000) == 0); /* unchanged: no entry */
    unit_apply_ops(
        st, json_pack("[o]", op_merge("nodes", "n1", json_pack("{s:s}", "availability", "drain"))));
    CHECK(pass(st, 3000) == 1);
    json_t *tasks = store_list(st, "tasks", NULL);
    CHECK_STR(json_string_value(json_object_get(json_array_get(tasks, 0), "error")),
              "no suitable node (1 node not available for new tasks)");
    json_t *svc = store_get(st, "services", "zoned");
    struct service_counts counts;
    service_count_tasks(svc, tasks, &counts);
    CHECK_STR(counts.pending_reason, "no suitable node (1 node not available for new tasks)");
    json_decref(tasks);
    json_decref(first);
    /* placed: the reason goes */
    unit_apply_ops(
        st,
        json_pack("[o,o]", op_merge("nodes", "n1", json_pack("{s:s}", "availability", "active")),
                  op_merge("services", "zoned", json_pack("{s:{s:[]}}", "spec", "constraints"))));
    CHECK(pass(st, 4000) == 1);
    tasks = store_list(st, "tasks", NULL);
    CHECK_STR(json_string_value(json_object_get(json_array_get(tasks, 0), "state")), "assigned");
    CHECK_STR(json_string_value(json_object_get(json_array_get(tasks, 0), "error")), "");
    json_decref(svc);
    json_decref(tasks);
    store_close(st);
}

static size_t count_tasks(struct store *st)
{
    json_t *tasks = store_list(st, "tasks", NULL);
    size_t n = json_array_size(tasks);
    json_decref(tasks);
    return n;
}

/* --restart-max-attempts 2: the first task and two restarts, then the slot is done. */
TEST(orchestrator_restart_max_attempts)
{
    struct store *st = store_with_node();
    put_service(st, "max", json_pack("{s:i, s:i}", "replicas", 1, "restart_max_attempts", 2));
    int64_t now = 1000;
    pass(st, now);
    for (int round = 0; round < 5; round++) {
        finish_all(st, "failed", now += 1000);
        pass(st, now += 1000);
        pass(st, now += 1000);
    }
    CHECK(count_tasks(st) == 3);
    json_t *tasks = store_list(st, "tasks", NULL);
    json_t *svc = store_get(st, "services", "max");
    struct service_counts counts;
    service_count_tasks(svc, tasks, &counts);
    CHECK(counts.failed == 1 && counts.running == 0);
    json_decref(svc);
    json_decref(tasks);
    store_close(st);
}

/* With a window, failures further apart than the window never reach the maximum. */
TEST(orchestrator_restart_window_resets_the_count)
{
    struct store *st = store_with_node();
    put_service(st, "win", json_pack("{s:i, s:i, s:i}", "replicas", 1, "restart_max_attempts", 1,
                                     "restart_window_ms", 500));
    int64_t now = 1000;
    pass(st, now);
    for (int round = 0; round < 4; round++) {
        finish_all(st, "failed", now += 1000);
        pass(st, now += 1000);
        pass(st, now += 1000);
    }
    CHECK(count_tasks(st) >= 5);
    store_close(st);
}

/* A pass of the leader's (tasks kept between passes); returns its ops' count. */
static size_t kept_pass(struct orch_tasks *kept, struct store *st, int64_t now)
{
    int64_t wake = 0;
    return unit_apply_ops(st, orchestrator_pass_kept(kept, st, now, &wake));
}

/* Kept passes skip the services settled since the last pass, and visit
 * again those whose record or tasks changed, and all of them when the
 * nodes did. */
TEST(orchestrator_kept_passes_visit_what_changed)
{
    struct store *st = store_with_node();
    struct orch_tasks *kept = orch_tasks_new();
    put_service(st, "web", json_pack("{s:i}", "replicas", 1));
    put_service(st, "db", json_pack("{s:i}", "replicas", 1));
    unit_apply_ops(st, json_pack("[o]", op_put("services", json_pack(
        "{s:s, s:s, s:i, s:{s:s, s:s}}", "id", "mon", "name", "mon", "version", 1, "spec",
        "image", "busybox:latest", "mode", "global"))));
    CHECK(kept_pass(kept, st, 1000) == 3);
    CHECK(kept_pass(kept, st, 2000) == 0); /* all settled */
    put_service(st, "web", json_pack("{s:i}", "replicas", 2)); /* its record changed */
    CHECK(kept_pass(kept, st, 3000) == 1);
    CHECK(kept_pass(kept, st, 4000) == 0);
    json_t *db = store_list_where(st, "tasks", "service_id", "db");
    unit_apply_ops(st, json_pack("[o]", op_merge("tasks", json_string_value(json_object_get(
        json_array_get(db, 0), "id")), json_pack("{s:s, s:i}", "state", "failed", "state_at",
                                                 4500)))); /* one of its tasks changed */
    json_decref(db);
    CHECK(kept_pass(kept, st, 5000) == 1); /* desired shutdown */
    CHECK(kept_pass(kept, st, 6000) == 1); /* its replacement */
    CHECK(kept_pass(kept, st, 7000) == 0);
    unit_apply_ops(st, json_pack("[o]", op_put("nodes", json_pack(
        "{s:s, s:s, s:s, s:s, s:s}", "id", "n2", "hostname", "node-2", "role", "worker",
        "status", "ready", "availability", "active")))); /* the nodes changed */
    CHECK(kept_pass(kept, st, 8000) == 1); /* the global service's task on n2 */
    CHECK(kept_pass(kept, st, 9000) == 0);
    orch_tasks_free(kept);
    store_close(st);
}

/* The node of the one task of `service` on a node other than `not_on`
 * (NULL: any); a copy. */
static char *node_of_task(struct store *st, const char *service, const char *not_on)
{
    json_t *tasks = store_list_where(st, "tasks", "service_id", service);
    char *node = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const char *n = json_string_value(json_object_get(t, "node_id"));
        if (node == NULL && n && (not_on == NULL || strcmp(n, not_on) != 0))
            node = xstrdup(n);
    }
    json_decref(tasks);
    return node;
}

/* The scheduler's loads kept across the leader's passes follow the tasks
 * the store changed between them: a task that stopped counting frees its
 * node for the next placement, as loads counted afresh would. */
TEST(orchestrator_kept_loads_follow_the_store)
{
    struct store *st = store_with_node();
    unit_apply_ops(st, json_pack("[o]", op_put("nodes", json_pack(
        "{s:s, s:s, s:s, s:s, s:s}", "id", "n2", "hostname", "node-2", "role", "worker",
        "status", "ready", "availability", "active"))));
    struct orch_tasks *kept = orch_tasks_new();
    put_service(st, "a", json_pack("{s:i, s:s}", "replicas", 2, "restart_condition", "on-failure"));
    CHECK(kept_pass(kept, st, 1000) == 2); /* one on each node */
    CHECK(kept_pass(kept, st, 2000) == 0);
    /* a probe's one task, placed now, could go to either node: the first pick */
    put_service(st, "probe", json_pack("{s:i}", "replicas", 1));
    CHECK(kept_pass(kept, st, 3000) == 1);
    char *first_pick = node_of_task(st, "probe", NULL);
    unit_apply_ops(st, json_pack("[o]", op_del("services", "probe")));
    CHECK(kept_pass(kept, st, 4000) == 1); /* its task removed */
    json_t *probe = store_list_where(st, "tasks", "service_id", "probe");
    unit_apply_ops(st, json_pack("[o]", op_del("tasks", json_string_value(json_object_get(
        json_array_get(probe, 0), "id")))));
    json_decref(probe);
    /* a's task on the other node completes: not restarted, no longer counted */
    json_t *a = store_list_where(st, "tasks", "service_id", "a");
    size_t i;
    json_t *t;
    json_array_foreach(a, i, t)
    {
        if (first_pick && !jstr_is(t, "node_id", first_pick))
            unit_apply_ops(st, json_pack("[o]", op_merge("tasks", jstr(t, "id"), json_pack(
                "{s:s, s:i}", "state", "complete", "state_at", 4500))));
    }
    json_decref(a);
    CHECK(kept_pass(kept, st, 5000) == 1); /* its desired state: shutdown */
    put_service(st, "b", json_pack("{s:i}", "replicas", 1));
    CHECK(kept_pass(kept, st, 6000) == 1);
    char *b_on = node_of_task(st, "b", NULL);
    CHECK(b_on && first_pick && strcmp(b_on, first_pick) != 0); /* the node without a live task */
    free(b_on);
    free(first_pick);
    orch_tasks_free(kept);
    store_close(st);
}

/* The tasks of a removed service are stopped, the other services' kept. */
TEST(orchestrator_removed_service_tasks_stopped)
{
    struct store *st = store_with_node();
    put_service(st, "web", json_pack("{s:i}", "replicas", 2));
    put_service(st, "db", json_pack("{s:i}", "replicas", 1));
    CHECK(pass(st, 1000) == 3);
    CHECK(pass(st, 2000) == 0);
    unit_apply_ops(st, json_pack("[o]", op_del("services", "web")));
    CHECK(pass(st, 3000) == 2);
    json_t *web = store_list_where(st, "tasks", "service_id", "web");
    size_t i;
    json_t *t;
    json_array_foreach(web, i, t)
        CHECK_STR(json_string_value(json_object_get(t, "desired_state")), "remove");
    json_decref(web);
    json_t *db = store_list_where(st, "tasks", "service_id", "db");
    CHECK_STR(json_string_value(json_object_get(json_array_get(db, 0), "desired_state")),
              "running");
    json_decref(db);
    store_close(st);
}

/* The ops a pass reading every task would propose now (none applied). */
static size_t fresh_ops(struct store *st, int64_t now)
{
    int64_t wake = 0;
    json_t *ops = orchestrator_pass(st, now, &wake);
    size_t n = json_array_size(ops);
    json_decref(ops);
    return n;
}

/* A kept pass that proposes what a pass reading every task would: the
 * leader's groups of tasks by service follow the store as one would read it. */
static size_t kept_pass_as_fresh(struct orch_tasks *kept, struct store *st, int64_t now)
{
    size_t want = fresh_ops(st, now);
    size_t got = kept_pass(kept, st, now);
    CHECK(got == want);
    return got;
}

/* The leader keeps its tasks grouped by service and merges only the groups
 * of the tasks changed: a removed service's tasks, stopped then deleted,
 * leave their group (a deleted task kept would be deleted again at every
 * pass), and a task of no service is found among the strays. */
TEST(orchestrator_kept_groups_follow_the_store)
{
    struct store *st = store_with_node();
    struct orch_tasks *kept = orch_tasks_new();
    put_service(st, "web", json_pack("{s:i}", "replicas", 2));
    put_service(st, "db", json_pack("{s:i}", "replicas", 1));
    CHECK(kept_pass_as_fresh(kept, st, 1000) == 3);
    CHECK(kept_pass_as_fresh(kept, st, 2000) == 0);
    unit_apply_ops(st, json_pack("[o]", op_del("services", "web")));
    CHECK(kept_pass_as_fresh(kept, st, 3000) == 2); /* desired remove */
    CHECK(kept_pass_as_fresh(kept, st, 4000) == 0);
    json_t *web = store_list_where(st, "tasks", "service_id", "web");
    json_t *ops = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(web, i, t)
        json_array_append_new(ops, op_merge("tasks", jstr(t, "id"), json_pack(
            "{s:s, s:i}", "state", "shutdown", "state_at", 4500)));
    unit_apply_ops(st, ops);
    json_decref(web);
    CHECK(kept_pass_as_fresh(kept, st, 5000) == 2); /* both forgotten */
    CHECK(kept_pass_as_fresh(kept, st, 6000) == 0); /* and not again */
    unit_apply_ops(st, json_pack("[o]", op_put("tasks", json_pack(
        "{s:s, s:s, s:s, s:s, s:i}", "id", "stray", "node_id", "n1", "desired_state",
        "running", "state", "running", "created_at", 6500))));
    CHECK(kept_pass_as_fresh(kept, st, 7000) == 1); /* a task of no service: removed */
    CHECK(kept_pass_as_fresh(kept, st, 8000) == 0);
    json_t *stray = store_get(st, "tasks", "stray");
    CHECK_STR(jstr(stray, "desired_state"), "remove");
    json_decref(stray);
    orch_tasks_free(kept);
    store_close(st);
}
