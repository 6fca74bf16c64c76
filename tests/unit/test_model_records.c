/* Typed accessors of the store's task, service and node records (model/). */
#include <string.h>

#include "model/node.h"
#include "model/service.h"
#include "model/task.h"
#include "unit.h"

TEST(model_task_accessors_read_the_record)
{
    json_t *t = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:i}", "id", "t1",
                          "service_id", "s1", "node_id", "n1", "state", "failed",
                          "desired_state", "running", "error", "exit 1", "state_at",
                          (json_int_t)2000, "spec_version", (json_int_t)4, "slot", 2);
    CHECK_STR(task_id(t), "t1");
    CHECK_STR(task_service_id(t), "s1");
    CHECK(task_of_service(t, "s1") && !task_of_service(t, "s2"));
    CHECK(task_placed_on(t, "n1") && !task_placed_on(t, "n2"));
    CHECK_STR(task_state(t), "failed");
    CHECK(task_state_is(t, "failed") && task_desired_is(t, "running"));
    CHECK(task_finished(t));
    CHECK_STR(task_error(t), "exit 1");
    CHECK(task_state_at(t) == 2000 && task_spec_version(t) == 4);
    CHECK(task_run(t) == 0 && task_created_at(t) == 0); /* absent: 0 */
    CHECK(json_integer_value(task_slot(t)) == 2);
    CHECK(task_container(t) == NULL);
    CHECK(task_id(NULL) == NULL && !task_finished(NULL));
    json_decref(t);
}

TEST(model_service_and_node_accessors_read_the_record)
{
    json_t *s = json_pack("{s:s, s:s, s:I, s:{s:s}}", "id", "s1", "name", "web", "version",
                          (json_int_t)3, "spec", "image", "nginx");
    CHECK_STR(service_id(s), "s1");
    CHECK_STR(service_name(s), "web");
    CHECK(service_version(s) == 3 && service_run(s) == 0);
    CHECK_STR(jstr(service_spec(s), "image"), "nginx");
    json_decref(s);

    json_t *n = json_pack("{s:s, s:s, s:s, s:{s:s}}", "id", "n1", "hostname", "h1", "status",
                          "ready", "labels", "zone", "a");
    CHECK_STR(node_id(n), "n1");
    CHECK_STR(node_hostname(n), "h1");
    CHECK(node_status_is(n, "ready") && !node_status_is(n, "down"));
    CHECK_STR(jstr(node_labels(n), "zone"), "a");
    CHECK(node_availability(n) == NULL);
    json_decref(n);
}
