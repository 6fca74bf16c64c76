/* store_net_changes: what moves the count the agent's network sync skips
 * its plan by (agent_net_sync). */
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store_ops.h"
#include "unit.h"

/* Applies `op` (stolen) alone: whether the count moved. */
static bool moves(struct store *s, json_t *op)
{
    unsigned long long before = store_net_changes(s);
    unit_apply_ops(s, json_pack("[o]", op));
    return store_net_changes(s) != before;
}

TEST(store_net_changes_moves_with_what_a_nodes_network_is_made_from)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    CHECK(moves(s, op_put("nodes", json_pack("{s:s, s:s}", "id", "n1", "subnet", "10.0.1.0/24"))));
    CHECK(moves(s, op_put("networks", json_pack("{s:s, s:s}", "id", "w1", "name", "web"))));
    CHECK(moves(s, op_put("services", json_pack("{s:s, s:s}", "id", "s1", "name", "api"))));
    CHECK(moves(s, op_put("meta", json_pack("{s:s, s:s}", "id", "cluster", "overlay", "vxlan"))));
    CHECK(moves(s, op_merge("meta", "cluster", json_pack("{s:s}", "overlay", "direct"))));
    /* a service's task: put, merged (its state, its address) and deleted */
    CHECK(moves(s, op_put("tasks", json_pack("{s:s, s:s, s:s}", "id", "t1", "service_id", "s1",
                                             "node_id", "n1"))));
    CHECK(moves(s, op_merge("tasks", "t1", json_pack("{s:s}", "state", "running"))));
    CHECK(moves(s, op_del("tasks", "t1")));
    /* deleting a task not there changes nothing */
    CHECK(!moves(s, op_del("tasks", "nope")));
    store_close(s);
}

TEST(store_net_changes_stays_for_batch_jobs_and_other_rows)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    CHECK(!moves(s, op_put("jobs", json_pack("{s:s, s:s}", "id", "1", "state", "Waiting"))));
    CHECK(!moves(s, op_put("meta", json_pack("{s:s, s:i}", "id", "jobs", "last_id", 1))));
    CHECK(!moves(s, op_put("tasks", json_pack("{s:s, s:s, s:s, s:s}", "id", "j1", "job_id", "1",
                                              "service_id", "job.1", "node_id", "n1"))));
    CHECK(!moves(s, op_merge("tasks", "j1", json_pack("{s:s, s:s}", "state", "running", "addr",
                                                      "10.0.1.5"))));
    CHECK(!moves(s, op_del("tasks", "j1")));
    /* a merge that may make a job's task a service's does move it */
    CHECK(!moves(s, op_put("tasks", json_pack("{s:s, s:s}", "id", "j2", "job_id", "2"))));
    CHECK(moves(s, op_merge("tasks", "j2", json_pack("{s:n}", "job_id"))));
    CHECK(!moves(s, op_put("tasks", json_pack("{s:s, s:s}", "id", "j3", "job_id", "3"))));
    CHECK(moves(s, op_merge("tasks", "j3", json_pack("{s:s}", "service_id", "s1"))));
    /* a job's task put over a service's task of the same id too */
    CHECK(moves(s, op_put("tasks", json_pack("{s:s, s:s}", "id", "t1", "service_id", "s1"))));
    CHECK(moves(s, op_put("tasks", json_pack("{s:s, s:s}", "id", "t1", "job_id", "3"))));
    store_close(s);
}

TEST(store_net_changes_moves_on_a_restore_and_differs_between_stores)
{
    struct store *s, *other;
    CHECK(store_open(&s, NULL) == 0);
    CHECK(store_open(&other, NULL) == 0);
    CHECK(store_net_changes(s) != store_net_changes(other)); /* swarm leave opens a new one */
    unsigned long long before = store_net_changes(s);
    void *snap;
    size_t len;
    CHECK(store_snapshot(s, &snap, &len, NULL) == 0);
    CHECK(store_restore(s, snap, len, NULL) == 0);
    free(snap);
    CHECK(store_net_changes(s) != before);
    store_close(other);
    store_close(s);
}
