#include <string.h>

#include "manager/scheduler.h"
#include "unit.h"

static json_t *node(const char *id, const char *host, const char *role, const char *avail)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "id", id, "hostname", host, "role",
                     role, "availability", avail, "status", "ready", "labels", "zone", "a");
}

static json_t *task(const char *service, const char *node_id)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "service_id", service, "node_id", node_id,
                     "desired_state", "running", "state", "running");
}

/* Workers n1 (pi1) and n2 (pi2), each with `resources` (stolen). */
static json_t *two_workers(json_t *resources)
{
    json_t *nodes = json_array();
    for (int i = 0; i < 2; i++) {
        json_t *n = node(i ? "n2" : "n1", i ? "pi2" : "pi1", "worker", "active");
        json_object_set_new(n, "resources", json_deep_copy(resources));
        json_array_append_new(nodes, n);
    }
    json_decref(resources);
    return nodes;
}

TEST(constraint_parse_and_match)
{
    struct serr err;
    json_t *n = node("n1", "pi1", "manager", "active");
    CHECK(constraint_validate("node.role==manager", NULL) == 0);
    CHECK(constraint_match("node.role==manager", n));
    CHECK(!constraint_match("node.role!=manager", n));
    CHECK(constraint_match("node.hostname == pi1", n));
    CHECK(constraint_match("node.labels.zone==a", n));
    CHECK(constraint_match("node.labels.missing!=x", n));
    CHECK(!constraint_match("node.labels.missing==x", n));
    CHECK(constraint_match("node.id==n1", n));
    CHECK(constraint_validate("node.role=manager", &err) < 0);
    CHECK(strstr(err.msg, "operator") != NULL);
    CHECK(constraint_validate("node.color==red", &err) < 0);
    CHECK(constraint_validate("engine.labels.x==1", &err) == 0);
    CHECK(constraint_validate("engine.x==1", &err) < 0);
    CHECK(constraint_validate("node.role==", &err) < 0);
    CHECK(constraint_validate("node.role==boss", &err) < 0);
    CHECK(constraint_validate("node.labels.==x", &err) < 0);
    json_decref(n);
}

TEST(scheduler_spreads_and_filters)
{
    json_t *nodes = json_pack("[o,o,o]", node("n1", "a", "manager", "active"),
                              node("n2", "b", "worker", "active"),
                              node("n3", "c", "worker", "drain"));
    json_t *tasks = json_pack("[o,o,o]", task("s1", "n1"), task("s1", "n1"), task("s2", "n2"));
    /* fewest tasks of the same service wins: n2 has none of s1 */
    json_t *pick = scheduler_pick(nodes, tasks, "s1", NULL, NULL);
    CHECK_STR(json_string_value(json_object_get(pick, "id")), "n2");
    /* constraint to managers: only n1 */
    json_t *cons = json_pack("[s]", "node.role==manager");
    pick = scheduler_pick(nodes, tasks, "s1", cons, NULL);
    CHECK_STR(json_string_value(json_object_get(pick, "id")), "n1");
    json_decref(cons);
    /* the drained node never takes tasks */
    cons = json_pack("[s]", "node.hostname==c");
    struct serr err;
    CHECK(scheduler_pick(nodes, tasks, "s1", cons, &err) == NULL);
    CHECK(strstr(err.msg, "no suitable node") != NULL);
    json_decref(cons);
    /* ties on the service break on total load: s3 has no task; n2 has one, n1 two */
    pick = scheduler_pick(nodes, tasks, "s3", NULL, NULL);
    CHECK_STR(json_string_value(json_object_get(pick, "id")), "n2");
    json_decref(nodes);
    json_decref(tasks);
}

TEST(scheduler_reason_counts_each_filter_stage)
{
    json_t *down = node("n4", "node-4", "worker", "active");
    json_object_set_new(down, "status", json_string("down"));
    json_t *nodes = json_pack("[o,o,o,o,o]", node("n1", "node-1", "manager", "active"),
                              node("n2", "node-2", "worker", "active"),
                              node("n3", "node-3", "worker", "drain"), down,
                              node("n5", "node-5", "worker", "pause"));
    json_t *tasks = json_array();
    struct serr err;
    /* Swarm's example: the bracket is no pattern, so no hostname matches */
    json_t *cons = json_pack("[s]", "node.hostname==node-[1-4]");
    CHECK(scheduler_pick(nodes, tasks, "s1", cons, &err) == NULL);
    CHECK_STR(err.msg, "no suitable node (3 nodes not available for new tasks; "
                       "scheduling constraints not satisfied on 2 nodes)");
    json_decref(cons);
    /* one of each, singular */
    cons = json_pack("[s]", "node.role==worker");
    json_array_remove(nodes, 4);
    json_array_remove(nodes, 3);
    json_array_remove(nodes, 1);
    CHECK(scheduler_pick(nodes, tasks, "s1", cons, &err) == NULL);
    CHECK_STR(err.msg, "no suitable node (1 node not available for new tasks; "
                       "scheduling constraints not satisfied on 1 node)");
    /* same inputs, same text: the orchestrator proposes a change only when it differs */
    struct serr again;
    CHECK(scheduler_pick(nodes, tasks, "s1", cons, &again) == NULL);
    CHECK_STR(again.msg, err.msg);
    json_decref(cons);
    /* only unavailable nodes; and none at all */
    json_array_remove(nodes, 0);
    CHECK(scheduler_pick(nodes, tasks, "s1", NULL, &err) == NULL);
    CHECK_STR(err.msg, "no suitable node (1 node not available for new tasks)");
    json_array_clear(nodes);
    CHECK(scheduler_pick(nodes, tasks, "s1", NULL, &err) == NULL);
    CHECK_STR(err.msg, "no suitable node (no node in the swarm)");
    json_decref(nodes);
    json_decref(tasks);
}

TEST(scheduler_skips_hot_nodes_with_the_reason)
{
    json_t *hot = node("n1", "node-1", "worker", "active");
    json_object_set_new(hot, "hot", json_true());
    json_t *nodes = json_pack("[o]", hot), *tasks = json_array();
    struct serr err;
    CHECK(!node_eligible(hot, NULL));
    CHECK(scheduler_pick(nodes, tasks, "s1", NULL, &err) == NULL);
    CHECK_STR(err.msg, "no suitable node (1 node too hot)");
    json_array_append_new(nodes, node("n2", "node-2", "worker", "active"));
    json_t *picked = scheduler_pick(nodes, tasks, "s1", NULL, &err);
    CHECK(picked != NULL);
    CHECK_STR(json_string_value(json_object_get(picked, "id")), "n2");
    json_decref(nodes);
    json_decref(tasks);
}

static json_t *rack_node(const char *id, const char *rack)
{
    json_t *n = node(id, id, "worker", "active");
    json_object_set_new(json_object_get(n, "labels"), "rack", json_string(rack));
    return n;
}

/* --placement-pref spread=node.labels.rack: the rack with fewer tasks of the
 * service wins over the node with fewer tasks. */
TEST(scheduler_spread_preference_over_label_values)
{
    json_t *nodes = json_pack("[o,o,o]", rack_node("a1", "a"), rack_node("a2", "a"),
                              rack_node("b1", "b"));
    json_t *tasks = json_pack("[o,o]", task("s1", "a1"), task("s1", "b1"));
    json_t *prefs = json_pack("[{s:s}]", "spread", "node.labels.rack");
    struct placement pl = {.preferences = prefs};
    /* plain spread: a2 (no task); by rack: a has 1, b has 1, then a2's 0 wins too */
    json_t *pick = scheduler_pick_placement(nodes, tasks, "s1", &pl, NULL);
    CHECK_STR(json_string_value(json_object_get(pick, "id")), "a2");
    json_array_append_new(tasks, task("s1", "a2"));
    /* now rack a has 2, b has 1: b1 though it already runs one */
    pick = scheduler_pick_placement(nodes, tasks, "s1", &pl, NULL);
    CHECK_STR(json_string_value(json_object_get(pick, "id")), "b1");
    pl.preferences = NULL;
    pick = scheduler_pick_placement(nodes, tasks, "s1", &pl, NULL);
    CHECK_STR(json_string_value(json_object_get(pick, "id")), "a1"); /* first of equal nodes */
    struct serr err;
    CHECK(placement_spread_validate("node.labels.rack", &err) == 0);
    CHECK(placement_spread_validate("node.role", &err) < 0);
    CHECK(placement_spread_validate("node.labels.", &err) < 0);
    json_decref(prefs);
    json_decref(nodes);
    json_decref(tasks);
}

TEST(scheduler_max_replicas_per_node)
{
    json_t *nodes = json_pack("[o,o]", node("n1", "a", "manager", "active"),
                              node("n2", "b", "worker", "drain"));
    json_t *tasks = json_pack("[o]", task("s1", "n1"));
    struct placement pl = {.max_per_node = 1};
    struct serr err;
    CHECK(scheduler_pick_placement(nodes, tasks, "s1", &pl, &err) == NULL);
    CHECK_STR(err.msg, "no suitable node (1 node not available for new tasks; max replicas per "
                       "node limit exceeded on 1 node)");
    pl.max_per_node = 2;
    CHECK(scheduler_pick_placement(nodes, tasks, "s1", &pl, &err) != NULL);
    json_decref(nodes);
    json_decref(tasks);
}

TEST(scheduler_reserved_cores_count_tasks_and_jobs)
{
    json_t *nodes = two_workers(json_pack("{s:i}", "cpus", 2)), *tasks = json_array();
    /* n1: a task reserving 1.5 cores; n2: a job holding one core */
    json_t *t = task("other", "n1");
    json_object_set_new(t, "reserved_cpus", json_real(1.5));
    json_array_append_new(tasks, t);
    json_t *reserved = scheduler_reserved_by_node(tasks);
    CHECK(json_real_value(json_object_get(reserved, "n1")) == 1.5 &&
          json_object_get(reserved, "n2") == NULL);
    json_decref(reserved);
    json_t *job_cores = json_pack("{s:i}", "n2", 1);
    struct placement pl = {.reserve_cpus = 1, .job_cores = job_cores};
    struct serr err = {0};
    json_t *pick = scheduler_pick_placement(nodes, tasks, "s1", &pl, &err);
    CHECK(pick != NULL && strcmp(json_string_value(json_object_get(pick, "id")), "n2") == 0);
    pl.reserve_cpus = 1.5; /* n1 has 0.5 left, n2 1 */
    CHECK(scheduler_pick_placement(nodes, tasks, "s1", &pl, &err) == NULL);
    CHECK(strstr(err.msg, "no suitable node (insufficient resources on 2 nodes") != NULL);
    pl.reserve_cpus = 0; /* no reservation: never held back */
    CHECK(scheduler_pick_placement(nodes, tasks, "s1", &pl, &err) != NULL);
    /* a finished task reserves nothing */
    json_object_set_new(t, "state", json_string("complete"));
    reserved = scheduler_reserved_by_node(tasks);
    CHECK(json_object_get(reserved, "n1") == NULL);
    json_decref(reserved);
    pl.reserve_cpus = 1.5; /* n1 has its 2 cores again, n2 still 1 */
    pick = scheduler_pick_placement(nodes, tasks, "s1", &pl, &err);
    CHECK(pick != NULL && strcmp(json_string_value(json_object_get(pick, "id")), "n1") == 0);
    json_decref(job_cores);
    json_decref(nodes);
    json_decref(tasks);
}

TEST(scheduler_reserved_memory_counts_live_tasks)
{
    json_t *nodes =
        two_workers(json_pack("{s:i, s:I}", "cpus", 4, "memory", (json_int_t)1024 * 1024 * 1024));
    json_t *tasks = json_array();
    /* n1: 768 MiB reserved by a task of another service; n2: 1 MiB */
    json_t *t = task("other", "n1");
    json_object_set_new(t, "reserved_memory", json_integer(768 * 1024 * 1024));
    json_array_append_new(tasks, t);
    json_t *small = task("other", "n2");
    json_object_set_new(small, "reserved_memory", json_integer(1024 * 1024));
    json_array_append_new(tasks, small);
    struct placement pl = {.reserve_memory = 512 * 1024 * 1024};
    struct serr err = {0};
    json_t *pick = scheduler_pick_placement(nodes, tasks, "s1", &pl, &err);
    CHECK(pick != NULL && strcmp(json_string_value(json_object_get(pick, "id")), "n2") == 0);
    pl.reserve_memory = (json_int_t)2 * 1024 * 1024 * 1024; /* more than any node has */
    CHECK(scheduler_pick_placement(nodes, tasks, "s1", &pl, &err) == NULL);
    CHECK_STR(err.msg, "no suitable node (insufficient memory on 2 nodes (memory reserved by "
                       "services))");
    /* a finished task reserves nothing: n1 has its whole GiB again */
    json_object_set_new(t, "state", json_string("complete"));
    pl.reserve_memory = 1024 * 1024 * 1024;
    pick = scheduler_pick_placement(nodes, tasks, "s1", &pl, &err);
    CHECK(pick != NULL && strcmp(json_string_value(json_object_get(pick, "id")), "n1") == 0);
    json_decref(nodes);
    json_decref(tasks);
}

/* A load kept with sched_load_count picks as one counted afresh. */
TEST(scheduler_load_kept_current_picks_as_a_fresh_count)
{
    json_t *nodes = two_workers(json_pack("{s:i}", "cpus", 4));
    json_t *tasks = json_pack("[o,o]", task("s1", "n1"), task("s2", "n2"));
    struct sched_load *load = sched_load_new(tasks);
    struct placement pl = {0};
    /* n2 has none of s1 */
    CHECK_STR(json_string_value(json_object_get(
                  scheduler_pick_loaded(nodes, load, "s1", &pl, NULL), "id")), "n2");
    /* a new s1 task, unplaced (not counted), then placed on n2 */
    json_t *t = task("s1", "n2");
    json_object_del(t, "node_id");
    json_array_append_new(tasks, t);
    sched_load_count(load, t, 1);
    sched_load_count(load, t, -1);
    json_object_set_new(t, "node_id", json_string("n2"));
    sched_load_count(load, t, 1);
    /* n1: 1 of s1, 1 in all; n2: 1 of s1, 2 in all */
    CHECK_STR(json_string_value(json_object_get(
                  scheduler_pick_loaded(nodes, load, "s1", &pl, NULL), "id")), "n1");
    /* the s1 task of n1 stops: n1 has none of s1 */
    json_t *on_n1 = json_array_get(tasks, 0);
    sched_load_count(load, on_n1, -1);
    json_object_set_new(on_n1, "desired_state", json_string("shutdown"));
    sched_load_count(load, on_n1, 1);
    for (int i = 0; i < 2; i++) {
        const char *svc = i ? "s2" : "s1";
        json_t *fresh = scheduler_pick_placement(nodes, tasks, svc, &pl, NULL);
        CHECK(scheduler_pick_loaded(nodes, load, svc, &pl, NULL) == fresh);
    }
    CHECK_STR(json_string_value(json_object_get(
                  scheduler_pick_loaded(nodes, load, "s1", &pl, NULL), "id")), "n1");
    sched_load_free(load);
    json_decref(tasks);
    json_decref(nodes);
}

/* Candidates' arrays made and freed one after another (a global service's
 * one node each): each is read for its own nodes, whatever its address. */
TEST(scheduler_load_reads_each_candidates_array_afresh)
{
    json_t *all = two_workers(json_pack("{s:i}", "cpus", 4));
    json_t *tasks = json_pack("[o]", task("s1", "n1"));
    struct sched_load *load = sched_load_new(tasks);
    struct placement pl = {.max_per_node = 1};
    for (size_t i = 0; i < 2; i++) {
        json_t *only = json_pack("[O]", json_array_get(all, i));
        json_t *pick = scheduler_pick_loaded(only, load, "s1", &pl, NULL);
        CHECK(i == 0 ? pick == NULL : pick == json_array_get(all, 1)); /* n1 holds its one */
        json_decref(only);
    }
    sched_load_free(load);
    json_decref(tasks);
    json_decref(all);
}
