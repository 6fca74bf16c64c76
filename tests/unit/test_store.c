#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "unit.h"

static int apply_str(struct store *s, const char *entry, struct store_result *res)
{
    return store_apply(s, entry, strlen(entry), res, NULL);
}

TEST(store_put_merge_del)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    struct store_result res;
    CHECK(apply_str(s,
                    "{\"groups\":[[{\"op\":\"put\",\"table\":\"services\",\"obj\":"
                    "{\"id\":\"abc123\",\"name\":\"web\",\"replicas\":1}}]]}",
                    &res) == 0);
    CHECK(res.ngroups == 1 && res.status[0] == 0);
    store_result_free(&res);
    json_t *svc = store_find(s, "services", "web", NULL);
    CHECK(svc && json_integer_value(json_object_get(svc, "replicas")) == 1);
    json_decref(svc);
    CHECK(apply_str(s,
                    "{\"groups\":[[{\"op\":\"merge\",\"table\":\"services\",\"id\":\"abc123\","
                    "\"fields\":{\"replicas\":3}}]]}",
                    NULL) == 0);
    svc = store_find(s, "services", "abc", NULL);
    CHECK(svc && json_integer_value(json_object_get(svc, "replicas")) == 3);
    json_decref(svc);
    CHECK(apply_str(s, "{\"groups\":[[{\"op\":\"del\",\"table\":\"services\",\"id\":\"abc123\"}]]}",
                    NULL) == 0);
    CHECK(store_get(s, "services", "abc123") == NULL);
    store_close(s);
}

TEST(store_groups_fail_alone)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    struct store_result res;
    /* The second group reuses the name "web": it alone fails and changes nothing. */
    CHECK(apply_str(s,
                    "{\"groups\":["
                    "[{\"op\":\"put\",\"table\":\"services\",\"obj\":{\"id\":\"a\",\"name\":\"web\"}}],"
                    "[{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"t1\",\"service_id\":\"b\"}},"
                    " {\"op\":\"put\",\"table\":\"services\",\"obj\":{\"id\":\"b\",\"name\":\"web\"}}],"
                    "[{\"op\":\"put\",\"table\":\"services\",\"obj\":{\"id\":\"c\",\"name\":\"db\"}}]]}",
                    &res) == 0);
    CHECK(res.ngroups == 3 && res.status[0] == 0 && res.status[1] != 0 && res.status[2] == 0);
    CHECK(strstr(res.msg[1], "UNIQUE") != NULL);
    store_result_free(&res);
    CHECK(store_get(s, "tasks", "t1") == NULL);
    json_t *all = store_list(s, "services", NULL);
    CHECK(json_array_size(all) == 2);
    json_decref(all);
    store_close(s);
}

TEST(store_ports_and_virtual_ips_have_one_owner)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    struct store_result res;
    /* two services racing for one port, then for one virtual IP: the second of each fails */
    CHECK(apply_str(s,
                    "{\"groups\":["
                    "[{\"op\":\"put\",\"table\":\"ports\",\"obj\":{\"id\":\"80/tcp\",\"service_id\":\"a\"}}],"
                    "[{\"op\":\"put\",\"table\":\"ports\",\"obj\":{\"id\":\"80/tcp\",\"service_id\":\"b\"}}],"
                    "[{\"op\":\"put\",\"table\":\"ports\",\"obj\":{\"id\":\"80/tcp\",\"service_id\":\"a\"}}],"
                    "[{\"op\":\"put\",\"table\":\"services\",\"obj\":{\"id\":\"a\",\"name\":\"x\",\"vip\":\"10.1.255.2\"}}],"
                    "[{\"op\":\"put\",\"table\":\"services\",\"obj\":{\"id\":\"b\",\"name\":\"y\",\"vip\":\"10.1.255.2\"}}],"
                    "[{\"op\":\"put\",\"table\":\"services\",\"obj\":{\"id\":\"c\",\"name\":\"z\"}}],"
                    "[{\"op\":\"put\",\"table\":\"services\",\"obj\":{\"id\":\"d\",\"name\":\"w\"}}]]}",
                    &res) == 0);
    CHECK(res.ngroups == 7 && res.status[0] == 0 && res.status[1] != 0 && res.status[2] == 0);
    CHECK(strstr(res.msg[1], "another service") != NULL);
    CHECK(res.status[3] == 0 && res.status[4] != 0);
    CHECK(res.status[5] == 0 && res.status[6] == 0); /* no virtual IP: no conflict */
    store_result_free(&res);
    json_t *p = store_get(s, "ports", "80/tcp");
    CHECK_STR(json_string_value(json_object_get(p, "service_id")), "a");
    json_decref(p);
    store_close(s);
}

TEST(store_rejects_garbage)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    struct serr err;
    CHECK(store_apply(s, "nope", 4, NULL, &err) < 0);
    CHECK(apply_str(s, "{\"groups\":[[{\"op\":\"put\",\"table\":\"x; DROP\"}]]}",
                      NULL) == 0);
    struct store_result res;
    CHECK(apply_str(s, "{\"groups\":[[{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{}}], 7]}", &res) ==
          0);
    CHECK(res.status[0] != 0 && res.status[1] != 0);
    store_result_free(&res);
    store_close(s);
}

/* The leader applies its own entries parsed (raft/cluster.c): as the text
 * would, in one transaction whose groups still fail alone, the entry left as
 * it was. */
TEST(store_apply_parsed_applies_as_the_text_and_reads_only)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    json_t *entry = json_loads(
        "{\"groups\":["
        "[{\"op\":\"put\",\"table\":\"services\",\"obj\":{\"id\":\"a\",\"name\":\"web\"}}],"
        "[{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"t1\",\"service_id\":\"b\"}},"
        " {\"op\":\"put\",\"table\":\"services\",\"obj\":{\"id\":\"b\",\"name\":\"web\"}}],"
        "[{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"t2\",\"service_id\":\"a\","
        "\"node_id\":\"n1\"}}]]}",
        0, NULL);
    json_t *copy = json_deep_copy(entry);
    struct store_result res;
    unsigned long long version = store_version(s);
    CHECK(store_apply_parsed(s, entry, &res, NULL) == 0);
    CHECK(res.ngroups == 3 && res.status[0] == 0 && res.status[1] != 0 && res.status[2] == 0);
    store_result_free(&res);
    CHECK(store_version(s) == version + 1);
    CHECK(json_equal(entry, copy));
    CHECK(store_get(s, "tasks", "t1") == NULL);
    json_t *rows = store_list_where(s, "tasks", "node_id", "n1");
    CHECK(json_array_size(rows) == 1);
    json_decref(rows);
    rows = store_list_where(s, "tasks", "service_id", "a");
    CHECK(json_array_size(rows) == 1);
    json_decref(rows);
    /* the next entry applies in a transaction of its own */
    CHECK(apply_str(s, "{\"groups\":[[{\"op\":\"del\",\"table\":\"tasks\",\"id\":\"t2\"}]]}",
                    NULL) == 0);
    CHECK(store_get(s, "tasks", "t2") == NULL);
    json_t *bad = json_pack("{s:i}", "groups", 1);
    struct serr err = {0};
    CHECK(store_apply_parsed(s, bad, NULL, &err) < 0 && store_version(s) == version + 2);
    json_decref(bad);
    json_decref(copy);
    json_decref(entry);
    store_close(s);
}

TEST(store_snapshot_round_trip)
{
    struct store *a, *b;
    CHECK(store_open(&a, NULL) == 0 && store_open(&b, NULL) == 0);
    CHECK(apply_str(a,
                    "{\"groups\":[[{\"op\":\"put\",\"table\":\"tasks\",\"obj\":"
                    "{\"id\":\"t1\",\"service_id\":\"s1\",\"node_id\":\"n1\",\"slot\":1}}]]}",
                    NULL) == 0);
    void *buf;
    size_t len;
    CHECK(store_snapshot(a, &buf, &len, NULL) == 0);
    CHECK(store_restore(b, buf, len, NULL) == 0);
    free(buf);
    json_t *rows = store_list_where(b, "tasks", "node_id", "n1");
    CHECK(json_array_size(rows) == 1);
    json_decref(rows);
    /* the restored copy keeps working: writes and generated columns */
    CHECK(apply_str(b,
                    "{\"groups\":[[{\"op\":\"put\",\"table\":\"tasks\",\"obj\":"
                    "{\"id\":\"t2\",\"service_id\":\"s1\",\"node_id\":\"n1\",\"slot\":2}}]]}",
                    NULL) == 0);
    rows = store_list_where(b, "tasks", "service_id", "s1");
    CHECK(json_array_size(rows) == 2);
    json_decref(rows);
    store_close(a);
    store_close(b);
}

/* Whether node `n`'s tasks changed since `count` (store_changes_now). */
static bool node_changed_since(struct store *s, const char *n, unsigned long long count)
{
    return store_node_tasks_changed_at(s, n) > count;
}

/* What makes a heartbeat read a node's task rows again: an op on a task
 * that is, was or comes on the node, or a restored snapshot; not an op
 * on another node's task. */
TEST(store_node_tasks_changed_at_follows_each_node)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    CHECK(apply_str(s,
                    "{\"groups\":[[{\"op\":\"put\",\"table\":\"tasks\",\"obj\":"
                    "{\"id\":\"t1\",\"service_id\":\"s1\",\"node_id\":\"n1\"}}]]}",
                    NULL) == 0);
    unsigned long long read = store_changes_now();
    CHECK(!node_changed_since(s, "n1", read) && !node_changed_since(s, "n2", read));
    /* a merge that does not name the node: the node its row is on */
    CHECK(apply_str(s,
                    "{\"groups\":[[{\"op\":\"merge\",\"table\":\"tasks\",\"id\":\"t1\","
                    "\"fields\":{\"state\":\"running\"}}]]}",
                    NULL) == 0);
    CHECK(node_changed_since(s, "n1", read) && !node_changed_since(s, "n2", read));
    read = store_changes_now();
    /* moved: both nodes */
    CHECK(apply_str(s,
                    "{\"groups\":[[{\"op\":\"merge\",\"table\":\"tasks\",\"id\":\"t1\","
                    "\"fields\":{\"node_id\":\"n2\"}}]]}",
                    NULL) == 0);
    CHECK(node_changed_since(s, "n1", read) && node_changed_since(s, "n2", read));
    read = store_changes_now();
    /* another table's op: no node */
    CHECK(apply_str(s,
                    "{\"groups\":[[{\"op\":\"put\",\"table\":\"services\",\"obj\":"
                    "{\"id\":\"s1\",\"name\":\"web\"}}]]}",
                    NULL) == 0);
    CHECK(!node_changed_since(s, "n1", read) && !node_changed_since(s, "n2", read));
    /* deleted: the node it was on */
    CHECK(apply_str(s, "{\"groups\":[[{\"op\":\"del\",\"table\":\"tasks\",\"id\":\"t1\"}]]}",
                    NULL) == 0);
    CHECK(!node_changed_since(s, "n1", read) && node_changed_since(s, "n2", read));
    read = store_changes_now();
    /* a restored snapshot: every node, those never seen too */
    void *buf;
    size_t len;
    CHECK(store_snapshot(s, &buf, &len, NULL) == 0);
    CHECK(store_restore(s, buf, len, NULL) == 0);
    free(buf);
    CHECK(node_changed_since(s, "n1", read) && node_changed_since(s, "n3", read));
    store_close(s);
}

/* What makes the dispatcher make its node lists again: an op on the nodes
 * table, a restored snapshot, a store made anew; not an op on another. */
TEST(store_table_changes_follow_each_table)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    unsigned long long nodes = store_table_changes(s, "nodes");
    CHECK(apply_str(s,
                    "{\"groups\":[[{\"op\":\"put\",\"table\":\"tasks\",\"obj\":"
                    "{\"id\":\"t1\",\"node_id\":\"n1\"}}]]}",
                    NULL) == 0);
    CHECK(store_table_changes(s, "nodes") == nodes);
    CHECK(apply_str(s,
                    "{\"groups\":[[{\"op\":\"put\",\"table\":\"nodes\",\"obj\":"
                    "{\"id\":\"n1\",\"hostname\":\"a\"}}]]}",
                    NULL) == 0);
    CHECK(store_table_changes(s, "nodes") > nodes);
    nodes = store_table_changes(s, "nodes");
    void *buf;
    size_t len;
    CHECK(store_snapshot(s, &buf, &len, NULL) == 0);
    CHECK(store_restore(s, buf, len, NULL) == 0);
    free(buf);
    CHECK(store_table_changes(s, "nodes") > nodes);
    nodes = store_table_changes(s, "nodes");
    store_close(s);
    CHECK(store_open(&s, NULL) == 0);
    CHECK(store_table_changes(s, "nodes") > nodes);
    CHECK(store_table_changes(s, "no such table") == 0);
    store_close(s);
}

TEST(store_names_unique_regardless_of_case)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    struct store_result res;
    /* two creates racing past the leader's check: the second is refused */
    CHECK(apply_str(s,
                    "{\"groups\":["
                    "[{\"op\":\"put\",\"table\":\"services\",\"unique_name\":true,\"obj\":{\"id\":\"a\",\"name\":\"web\"}}],"
                    "[{\"op\":\"put\",\"table\":\"services\",\"unique_name\":true,\"obj\":{\"id\":\"b\",\"name\":\"Web\"}}],"
                    "[{\"op\":\"put\",\"table\":\"networks\",\"unique_name\":true,\"obj\":{\"id\":\"n\",\"name\":\"A_B.c-d\",\"subnet\":\"10.9.0.0/24\"}}],"
                    "[{\"op\":\"put\",\"table\":\"networks\",\"unique_name\":true,\"obj\":{\"id\":\"m\",\"name\":\"a_b.C-D\",\"subnet\":\"10.9.1.0/24\"}}],"
                    "[{\"op\":\"put\",\"table\":\"services\",\"unique_name\":true,\"obj\":{\"id\":\"a\",\"name\":\"web\",\"v\":2}}]]}",
                    &res) == 0);
    CHECK(res.ngroups == 5 && res.status[0] == 0 && res.status[1] != 0 && res.status[2] == 0 &&
          res.status[3] != 0 && res.status[4] == 0); /* an update of itself passes */
    CHECK(strstr(res.msg[1], "name Web is already taken by web") != NULL);
    CHECK(strstr(res.msg[3], "regardless of case") != NULL);
    store_result_free(&res);
    json_t *svc = store_find(s, "services", "WEB", NULL);
    CHECK(svc && strcmp(json_string_value(json_object_get(svc, "id")), "a") == 0);
    json_decref(svc);
    json_t *net = store_find(s, "networks", "a_b.c-d", NULL);
    CHECK(net && strcmp(json_string_value(json_object_get(net, "id")), "n") == 0);
    json_decref(net);
    store_close(s);
}

TEST(store_names_from_before_the_case_rule_still_load)
{
    /* entries written before the rule (no unique_name) may hold names that
     * differ only in case: replaying them and restoring their snapshot keep
     * every object */
    struct store *a, *b;
    CHECK(store_open(&a, NULL) == 0 && store_open(&b, NULL) == 0);
    struct store_result res;
    CHECK(apply_str(a,
                    "{\"groups\":["
                    "[{\"op\":\"put\",\"table\":\"services\",\"obj\":{\"id\":\"a\",\"name\":\"tasks\"}}],"
                    "[{\"op\":\"put\",\"table\":\"services\",\"obj\":{\"id\":\"b\",\"name\":\"TASKS\"}}]]}",
                    &res) == 0);
    CHECK(res.status[0] == 0 && res.status[1] == 0);
    store_result_free(&res);
    void *buf;
    size_t len;
    CHECK(store_snapshot(a, &buf, &len, NULL) == 0);
    CHECK(store_restore(b, buf, len, NULL) == 0);
    free(buf);
    json_t *all = store_list(b, "services", NULL);
    CHECK(json_array_size(all) == 2);
    json_decref(all);
    /* the exact name finds its own; another case is ambiguous, not a guess */
    json_t *svc = store_find(b, "services", "TASKS", NULL);
    CHECK(svc && strcmp(json_string_value(json_object_get(svc, "id")), "b") == 0);
    json_decref(svc);
    struct serr err = {0};
    CHECK(store_find(b, "services", "Tasks", &err) == NULL);
    CHECK(err.kind == SERR_CONFLICT && strstr(err.msg, "more than one") != NULL);
    /* and no new name in a third case gets in */
    CHECK(apply_str(b,
                    "{\"groups\":[[{\"op\":\"put\",\"table\":\"services\",\"unique_name\":true,"
                    "\"obj\":{\"id\":\"c\",\"name\":\"Tasks\"}}]]}",
                    &res) == 0);
    CHECK(res.status[0] != 0);
    store_result_free(&res);
    store_close(a);
    store_close(b);
}

/* Appends a metrics_history row at `at` (ms) holding node n1's values
 * [at / 1000], keeping rows from keep_from on, at most keep_max. */
static int append_point(struct store *s, long long at, long long keep_from, long long keep_max,
                        struct store_result *res)
{
    json_t *obj = json_pack("{s:I, s:i, s:[s], s:{s:[I]}}", "at", (json_int_t)at, "step", 1000,
                            "fields", "cpu_percent_x10", "nodes", "n1", (json_int_t)(at / 1000));
    json_t *entry = json_pack("{s:[[o]]}", "groups",
                              op_append("metrics_history", obj, keep_from, keep_max));
    char *text = json_dumps(entry, JSON_COMPACT);
    int rc = apply_str(s, text, res);
    free(text);
    json_decref(entry);
    return rc;
}

static long long ring_at(json_t *rows, size_t i)
{
    return json_integer_value(json_object_get(json_array_get(rows, i), "at"));
}

TEST(store_ring_append_keeps_a_bounded_window)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    /* one point a second for 20 s, keeping 5 s: the op's times decide, no clock */
    for (long long at = 1000; at <= 20000; at += 1000)
        CHECK(append_point(s, at, at - 5000, 100, NULL) == 0);
    json_t *rows = store_ring_member(s, "metrics_history", 0, "n1");
    CHECK(json_array_size(rows) == 6); /* 15 s to 20 s */
    CHECK(ring_at(rows, 0) == 15000 && ring_at(rows, 5) == 20000);
    json_t *first = json_array_get(rows, 0);
    CHECK(json_integer_value(json_object_get(first, "step")) == 1000);
    CHECK(json_integer_value(json_array_get(json_object_get(first, "values"), 0)) == 15);
    CHECK_STR(json_string_value(json_array_get(json_object_get(first, "fields"), 0)),
              "cpu_percent_x10");
    json_decref(rows);
    /* the count bound: at most 3 rows whatever their times */
    CHECK(append_point(s, 21000, 0, 3, NULL) == 0);
    rows = store_ring_member(s, "metrics_history", 0, "n1");
    CHECK(json_array_size(rows) == 3 && ring_at(rows, 0) == 19000 && ring_at(rows, 2) == 21000);
    json_decref(rows);
    /* since, and a node without values */
    rows = store_ring_member(s, "metrics_history", 20000, "n1");
    CHECK(json_array_size(rows) == 2);
    json_decref(rows);
    rows = store_ring_member(s, "metrics_history", 0, "n2");
    CHECK(json_array_size(rows) == 0);
    json_decref(rows);
    rows = store_ring_member(s, "metrics_history", 0, "n\"1");
    CHECK(json_array_size(rows) == 0);
    json_decref(rows);
    store_close(s);
}

TEST(store_ring_append_refuses_bad_ops)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    struct store_result res;
    CHECK(apply_str(s,
                    "{\"groups\":["
                    /* not a ring table */
                    "[{\"op\":\"append\",\"table\":\"services\",\"obj\":{\"id\":\"0000000000001000\",\"at\":1000}}],"
                    /* an id that does not sort as its time */
                    "[{\"op\":\"append\",\"table\":\"metrics_history\",\"obj\":{\"id\":\"1000\",\"at\":1000}}],"
                    /* no time */
                    "[{\"op\":\"append\",\"table\":\"metrics_history\",\"obj\":{\"id\":\"x\"}}],"
                    /* a bound that is not a number */
                    "[{\"op\":\"append\",\"table\":\"metrics_history\",\"obj\":{\"id\":\"0000000000001000\",\"at\":1000},\"keep_max\":0}],"
                    "[{\"op\":\"append\",\"table\":\"metrics_history\",\"obj\":{\"id\":\"0000000000002000\",\"at\":2000}}]]}",
                    &res) == 0);
    CHECK(res.ngroups == 5);
    CHECK(res.status[0] != 0 && strstr(res.msg[0], "not a ring") != NULL);
    CHECK(res.status[1] != 0 && strstr(res.msg[1], "0000000000001000") != NULL);
    CHECK(res.status[2] != 0 && res.status[3] != 0 && res.status[4] == 0);
    store_result_free(&res);
    json_t *all = store_list(s, "metrics_history", NULL);
    CHECK(json_array_size(all) == 1); /* the failed group's put was rolled back */
    json_decref(all);
    /* the ring survives a snapshot */
    struct store *b;
    CHECK(store_open(&b, NULL) == 0);
    void *buf;
    size_t len;
    CHECK(store_snapshot(s, &buf, &len, NULL) == 0);
    CHECK(store_restore(b, buf, len, NULL) == 0);
    free(buf);
    all = store_list(b, "metrics_history", NULL);
    CHECK(json_array_size(all) == 1);
    json_decref(all);
    store_close(b);
    store_close(s);
}

TEST(store_node_tasks_gives_ended_tasks_as_their_states_only)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    CHECK(apply_str(s,
                    "{\"groups\":[["
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"a\",\"node_id\":\"n1\","
                    "\"desired_state\":\"running\",\"state\":\"running\",\"container\":{}}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"b\",\"node_id\":\"n1\","
                    "\"desired_state\":\"shutdown\",\"state\":\"complete\",\"container\":{}}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"c\",\"node_id\":\"n1\","
                    "\"desired_state\":\"shutdown\",\"state\":\"running\",\"container\":{}}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"d\",\"node_id\":\"n1\","
                    "\"desired_state\":\"running\",\"state\":\"failed\",\"container\":{}}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"e\",\"node_id\":\"n2\","
                    "\"desired_state\":\"shutdown\",\"state\":\"complete\"}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"ba\",\"node_id\":\"n1\","
                    "\"desired_state\":\"running\"}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"bb\",\"node_id\":\"n1\","
                    "\"desired_state\":\"running\",\"state\":\"assigned\"}}]]}",
                    NULL) == 0);
    /* not in order: the store sorts them (the tasks going on are the ranges between) */
    static const char *const ended[] = {"failed", "complete", NULL};
    json_t *rows = store_node_tasks(s, "n1", ended, NULL);
    CHECK(json_array_size(rows) == 6);
    /* the tasks going on first, by id (a; ba, without a state; bb, assigned, before
     * "complete"; c), then the ended ones: b and d (a batch job's task stays
     * desired running) */
    CHECK_STR(json_string_value(json_object_get(json_array_get(rows, 1), "id")), "ba");
    CHECK_STR(json_string_value(json_object_get(json_array_get(rows, 2), "id")), "bb");
    json_array_remove(rows, 1);
    json_array_remove(rows, 1);
    json_t *b = json_array_get(rows, 2), *d = json_array_get(rows, 3);
    CHECK_STR(json_string_value(json_object_get(b, "id")), "b");
    CHECK_STR(json_string_value(json_object_get(b, "state")), "complete");
    CHECK_STR(json_string_value(json_object_get(b, "desired_state")), "shutdown");
    CHECK(json_object_size(b) == 3);
    CHECK_STR(json_string_value(json_object_get(d, "desired_state")), "running");
    CHECK(json_object_size(d) == 3);
    CHECK_STR(json_string_value(json_object_get(d, "id")), "d");
    CHECK(json_object_get(json_array_get(rows, 0), "container") != NULL);
    CHECK_STR(json_string_value(json_object_get(json_array_get(rows, 1), "id")), "c");
    CHECK(json_object_get(json_array_get(rows, 1), "container") != NULL);
    json_decref(rows);
    /* held: the ended tasks among those only (d), the others all (a, ba, bb, c) */
    json_t *held = json_pack("[s, s, s]", "d", "a", "e");
    rows = store_node_tasks(s, "n1", ended, held);
    json_decref(held);
    CHECK(json_array_size(rows) == 5);
    CHECK_STR(json_string_value(json_object_get(json_array_get(rows, 4), "id")), "d");
    CHECK_STR(json_string_value(json_object_get(json_array_get(rows, 4), "state")), "failed");
    json_decref(rows);
    /* no states: the whole rows */
    static const char *const none[] = {NULL};
    rows = store_node_tasks(s, "n1", none, NULL);
    CHECK(json_object_get(json_array_get(rows, 1), "container") != NULL);
    json_decref(rows);
    store_close(s);
}

/* The watched node's tasks that leave the store (deleted, or moved to
 * another node), taken once; a group that fails keeps none of its own; a
 * restored snapshot's are not known. */
TEST(store_take_deleted_tasks_gives_the_node_tasks_gone_since)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    CHECK(apply_str(s,
                    "{\"groups\":[["
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"a\",\"node_id\":\"n1\"}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"b\",\"node_id\":\"n1\"}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"c\",\"node_id\":\"n1\"}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"d\",\"node_id\":\"n1\"}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"e\",\"node_id\":\"n2\"}}]]}",
                    NULL) == 0);
    CHECK(store_take_deleted_tasks(s, "n1") == NULL); /* the first: not known */
    json_t *ids = store_take_deleted_tasks(s, "n1");
    CHECK(ids != NULL && json_array_size(ids) == 0);
    json_decref(ids);
    CHECK(apply_str(s,
                    "{\"groups\":[["
                    "{\"op\":\"del\",\"table\":\"tasks\",\"id\":\"a\"},"
                    "{\"op\":\"del\",\"table\":\"tasks\",\"id\":\"e\"},"
                    "{\"op\":\"merge\",\"table\":\"tasks\",\"id\":\"b\",\"fields\":{\"node_id\":\"n2\"}},"
                    "{\"op\":\"merge\",\"table\":\"tasks\",\"id\":\"c\",\"fields\":{\"state\":\"x\"}}],"
                    "[{\"op\":\"del\",\"table\":\"tasks\",\"id\":\"c\"},"
                    "{\"op\":\"merge\",\"table\":\"tasks\",\"id\":\"nope\",\"fields\":{}}]]}",
                    NULL) == 0);
    json_t *c = store_get(s, "tasks", "c");
    CHECK(c != NULL); /* the second group failed */
    json_decref(c);
    ids = store_take_deleted_tasks(s, "n1");
    CHECK(ids != NULL && json_array_size(ids) == 2);
    CHECK_STR(json_string_value(json_array_get(ids, 0)), "a");
    CHECK_STR(json_string_value(json_array_get(ids, 1)), "b");
    json_decref(ids);
    void *snap;
    size_t len;
    CHECK(store_snapshot(s, &snap, &len, NULL) == 0);
    CHECK(store_restore(s, snap, len, NULL) == 0);
    free(snap);
    CHECK(store_take_deleted_tasks(s, "n1") == NULL);
    store_close(s);
}

TEST(store_tasks_but_ended_jobs_leaves_the_job_history_out)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    CHECK(apply_str(s,
                    "{\"groups\":[["
                    "{\"op\":\"put\",\"table\":\"jobs\",\"obj\":{\"id\":\"1\",\"state\":\"Terminated\"}},"
                    "{\"op\":\"put\",\"table\":\"jobs\",\"obj\":{\"id\":\"2\",\"state\":\"Finishing\"}},"
                    "{\"op\":\"put\",\"table\":\"jobs\",\"obj\":{\"id\":\"3\",\"state\":\"Error\"}},"
                    /* a service's task, ended: kept */
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"a\",\"state\":\"complete\"}},"
                    /* an ended job's ended task: left out */
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"b\",\"job_id\":\"1\","
                    "\"state\":\"complete\"}},"
                    /* a live job's ended task: kept (the pass ends the job) */
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"c\",\"job_id\":\"2\","
                    "\"state\":\"failed\"}},"
                    /* an ended job's task still going: kept (the pass stops it) */
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"d\",\"job_id\":\"3\","
                    "\"state\":\"running\"}},"
                    /* no state yet, job gone: kept */
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"e\",\"job_id\":\"9\"}},"
                    /* ended, job gone: left out */
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"f\",\"job_id\":\"9\","
                    "\"state\":\"shutdown\"}}]]}",
                    NULL) == 0);
    static const char *const final[] = {"complete", "failed", "shutdown", NULL};
    static const char *const live[] = {"Waiting", "Finishing", NULL};
    json_t *rows = store_tasks_but_ended_jobs(s, final, live);
    const char *want[] = {"a", "c", "d", "e"};
    CHECK(json_array_size(rows) == 4);
    for (size_t i = 0; i < 4; i++)
        CHECK_STR(json_string_value(json_object_get(json_array_get(rows, i), "id")), want[i]);
    json_decref(rows);
    store_close(s);
}

TEST(store_list_in_reads_the_rows_of_some_states)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    CHECK(apply_str(s,
                    "{\"groups\":[["
                    "{\"op\":\"put\",\"table\":\"jobs\",\"obj\":{\"id\":\"10\",\"state\":\"Waiting\"}},"
                    "{\"op\":\"put\",\"table\":\"jobs\",\"obj\":{\"id\":\"9\",\"state\":\"Running\"}},"
                    "{\"op\":\"put\",\"table\":\"jobs\",\"obj\":{\"id\":\"2\",\"state\":\"Error\"}},"
                    "{\"op\":\"put\",\"table\":\"jobs\",\"obj\":{\"id\":\"1\",\"state\":\"Waiting\"}}]]}",
                    NULL) == 0);
    static const char *const live[] = {"Waiting", "Running", NULL};
    json_t *rows = store_list_in(s, "jobs", "state", live, "CAST(id AS INTEGER)");
    CHECK(json_array_size(rows) == 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(rows, 0), "id")), "1");
    CHECK_STR(json_string_value(json_object_get(json_array_get(rows, 2), "id")), "10");
    json_decref(rows);
    CHECK(store_count_in(s, "jobs", "state", live) == 3);
    static const char *const ended[] = {"Error", "Terminated", NULL};
    CHECK(store_count_in(s, "jobs", "state", ended) == 1);
    /* a column that is no key of the table, or no value: nothing */
    rows = store_list_in(s, "jobs", "data", live, NULL);
    CHECK(json_array_size(rows) == 0);
    json_decref(rows);
    static const char *const none[] = {NULL};
    CHECK(store_count_in(s, "jobs", "state", none) == 0);
    store_close(s);
}

TEST(store_list_where_field_reads_only_the_matching_rows)
{
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    CHECK(apply_str(s,
                    "{\"groups\":[["
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"t3\",\"service_id\":\"s1\","
                    "\"state\":\"running\"}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"t2\",\"service_id\":\"s1\","
                    "\"state\":\"pending\"}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"t1\",\"service_id\":\"s1\","
                    "\"state\":\"running\"}},"
                    "{\"op\":\"put\",\"table\":\"tasks\",\"obj\":{\"id\":\"t4\",\"service_id\":\"s2\","
                    "\"state\":\"running\"}}]]}",
                    NULL) == 0);
    json_t *rows = store_list_where_field(s, "tasks", "service_id", "s1", "state", "running");
    CHECK(json_array_size(rows) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(rows, 0), "id")), "t1");
    CHECK_STR(json_string_value(json_object_get(json_array_get(rows, 1), "id")), "t3");
    json_decref(rows);
    /* a field that is not a plain name: nothing (it goes into the SQL) */
    rows = store_list_where_field(s, "tasks", "service_id", "s1", "state') OR ('1", "running");
    CHECK(json_array_size(rows) == 0);
    json_decref(rows);
    store_close(s);
}

static const char *waiting_message(struct store *s)
{
    static char out[32];
    json_t *rows = store_jobs_message_not(s, "Waiting", "none");
    const char *m = json_string_value(json_object_get(json_array_get(rows, 0), "message"));
    snprintf(out, sizeof(out), "%s", m ? m : "(none)");
    json_decref(rows);
    return out;
}

/* Reads keep their statements and parsed jobs: a restore replaces both. */
TEST(store_reads_after_a_restore_see_the_restored_rows)
{
    struct store *a, *b;
    CHECK(store_open(&a, NULL) == 0 && store_open(&b, NULL) == 0);
    const char *put = "{\"groups\":[[{\"op\":\"put\",\"table\":\"jobs\",\"obj\":"
                      "{\"id\":\"1\",\"state\":\"Waiting\",\"message\":\"%s\"}}]]}";
    char entry[200];
    snprintf(entry, sizeof(entry), put, "old");
    CHECK(apply_str(b, entry, NULL) == 0);
    CHECK_STR(waiting_message(b), "old");
    CHECK_STR(waiting_message(b), "old");
    snprintf(entry, sizeof(entry), put, "new");
    CHECK(apply_str(a, entry, NULL) == 0);
    void *buf;
    size_t len;
    CHECK(store_snapshot(a, &buf, &len, NULL) == 0);
    CHECK(store_restore(b, buf, len, NULL) == 0);
    free(buf);
    CHECK_STR(waiting_message(b), "new");
    store_close(a);
    store_close(b);
}
