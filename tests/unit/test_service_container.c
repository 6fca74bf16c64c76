/* Service spec fields of the task containers (manager/service_container.c). */
#include <stdlib.h>
#include <string.h>

#include "manager/service_container.h"
#include "unit.h"

static int check_json(const char *text, struct serr *err)
{
    json_t *spec = json_loads(text, 0, NULL);
    int rc = service_container_check(spec, err);
    json_decref(spec);
    return rc;
}

TEST(service_container_check_fields)
{
    struct serr err;
    CHECK(check_json("{}", &err) == 0);
    CHECK(check_json("{\"hostname\": \"web-1.local\", \"user\": \"1000:1000\", "
                     "\"workdir\": \"/srv\", \"entrypoint\": [\"sh\", \"-c\"], "
                     "\"labels\": {\"a\": \"b\"}, \"container_labels\": {}}",
                     &err) == 0);
    CHECK(check_json("{\"hostname\": \"-web\"}", &err) < 0);
    CHECK(strstr(err.msg, "hostname") != NULL);
    CHECK(check_json("{\"hostname\": \"a..b\"}", &err) < 0);
    CHECK(check_json("{\"hostname\": 3}", &err) < 0);
    CHECK(check_json("{\"user\": \"root\"}", &err) == 0); /* names: looked up by the agent */
    CHECK(check_json("{\"user\": \"ro ot\"}", &err) < 0);
    CHECK(strstr(err.msg, "user") != NULL);
    CHECK(check_json("{\"user\": \"1:2:3\"}", &err) < 0);
    CHECK(check_json("{\"user\": \"99999999999\"}", &err) < 0);
    CHECK(check_json("{\"workdir\": \"srv\"}", &err) < 0);
    CHECK(check_json("{\"entrypoint\": \"sh\"}", &err) < 0);
    CHECK(check_json("{\"entrypoint\": [1]}", &err) < 0);
    CHECK(check_json("{\"labels\": {\"a\": 1}}", &err) < 0);
    CHECK(strstr(err.msg, "labels.a") != NULL);
    CHECK(check_json("{\"container_labels\": {\"a=b\": \"c\"}}", &err) < 0);
    CHECK(check_json("{\"labels\": []}", &err) < 0);
}

TEST(service_container_entrypoint_drops_image_cmd)
{
    json_t *cfg = json_pack("{s:[s], s:[s]}", "Entrypoint", "/init", "Cmd", "serve");
    json_t *spec = json_pack("{s:[s]}", "args", "x");
    json_t *args = service_task_args(spec, cfg);
    CHECK(json_array_size(args) == 2); /* /init x */
    json_decref(args);
    json_object_set_new(spec, "entrypoint", json_pack("[s, s]", "sh", "-c"));
    json_object_del(spec, "args");
    args = service_task_args(spec, cfg);
    CHECK(json_array_size(args) == 2); /* sh -c: no Cmd */
    CHECK_STR(json_string_value(json_array_get(args, 0)), "sh");
    json_decref(args);
    json_decref(spec);
    json_decref(cfg);
}

TEST(service_hostname_templates)
{
    char *h = service_hostname_expand("{{.Service.Name}}-{{.Task.Slot}}", "sid", "web", "tid",
                                      "web.3", "3");
    CHECK_STR(h, "web-3");
    free(h);
    h = service_hostname_expand("plain", "s", "n", "t", "n.1", "1");
    CHECK_STR(h, "plain");
    free(h);
    CHECK(service_hostname_expand("{{.Node.Hostname}}", "s", "n", "t", "n.1", "1") == NULL);
    CHECK(service_hostname_expand("x{{.Task.Slot", "s", "n", "t", "n.1", "1") == NULL);
    struct serr err;
    CHECK(check_json("{\"hostname\": \"w-{{.Task.Slot}}\"}", &err) == 0);
    CHECK(check_json("{\"hostname\": \"w-{{.Node.ID}}\"}", &err) < 0);
    CHECK(strstr(err.msg, "templates") != NULL);
}
