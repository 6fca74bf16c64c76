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
