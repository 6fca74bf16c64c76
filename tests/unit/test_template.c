#include <string.h>

#include "cli/cli.h"
#include "unit.h"

static char *expand(const char *tmpl, const char *obj_json)
{
    json_t *obj = json_loads(obj_json, 0, NULL);
    struct serr err = {0};
    char *out = cli_template_expand(tmpl, obj, &err);
    json_decref(obj);
    return out ? out : strdup(err.msg);
}

TEST(template_fields_and_functions)
{
    const char *row = "{\"ID\":\"abc\",\"Name\":\"web\",\"Replicas\":\"1/2\",\"DesiredState\":\"Running\","
                      "\"spec\":{\"image\":\"busybox\",\"replicas\":2}}";
    char *s;
    CHECK_STR(s = expand("{{.Name}} {{.Replicas}}", row), "web 1/2");
    free(s);
    CHECK_STR(s = expand("{{ .ID }}\\t{{.Name}}", row), "abc\tweb");
    free(s);
    CHECK_STR(s = expand("{{.name}}|{{.desired_state}}|{{.Desired-State}}", row),
              "web|Running|Running");
    free(s);
    CHECK_STR(s = expand("{{.Spec.Image}} {{.spec.replicas}}", row), "busybox 2");
    free(s);
    CHECK_STR(s = expand("{{json .Name}} {{json .spec}}", row),
              "\"web\" {\"image\":\"busybox\",\"replicas\":2}");
    free(s);
    CHECK_STR(s = expand("{{upper .Name}}-{{lower .DesiredState}}", row), "WEB-running");
    free(s);
    CHECK_STR(s = expand("no actions", row), "no actions");
    free(s);
    s = expand("{{json .}}", "{\"a\":\"b\"}");
    CHECK_STR(s, "{\"a\":\"b\"}");
    free(s);
}

TEST(template_errors_name_themselves)
{
    char *s;
    CHECK(strstr(s = expand("{{.Nope}}", "{\"Name\":\"x\"}"), "no field \"Nope\""));
    free(s);
    CHECK(strstr(s = expand("{{.Name", "{\"Name\":\"x\"}"), "unclosed"));
    free(s);
    CHECK(strstr(s = expand("{{printf .Name}}", "{\"Name\":\"x\"}"), "printf"));
    free(s);
    CHECK(strstr(s = expand("{{Name}}", "{\"Name\":\"x\"}"), "expected a field"));
    free(s);
}

static bool passes(const char *row_json, const char *const *filters)
{
    json_t *row = json_loads(row_json, 0, NULL);
    json_t *f = json_object();
    struct serr err;
    for (; *filters; filters++)
        CHECK(cli_filter_add(f, *filters, &err) == 0);
    bool match = false;
    CHECK(cli_filter_match(row, f, &match, &err) == 0);
    json_decref(f);
    json_decref(row);
    return match;
}

TEST(filters_as_docker)
{
    const char *row = "{\"ID\":\"abc123\",\"Name\":\"web.1\",\"Node\":\"node-2\","
                      "\"DesiredState\":\"Running\"}";
    CHECK(passes(row, (const char *const[]){"id=abc", NULL}));
    CHECK(!passes(row, (const char *const[]){"id=bc", NULL}));
    CHECK(passes(row, (const char *const[]){"name=eb", NULL}));
    CHECK(passes(row, (const char *const[]){"desired-state=running", NULL}));
    CHECK(!passes(row, (const char *const[]){"desired-state=shutdown", NULL}));
    /* values of one key OR, keys AND */
    CHECK(passes(row, (const char *const[]){"node=node-1", "node=node-2", NULL}));
    CHECK(!passes(row, (const char *const[]){"node=node-2", "name=db", NULL}));
    json_t *f = json_object();
    struct serr err;
    CHECK(cli_filter_add(f, "novalue", &err) < 0 && strstr(err.msg, "novalue"));
    CHECK(cli_filter_add(f, "colour=red", &err) == 0);
    json_t *r = json_loads(row, 0, NULL);
    bool match;
    CHECK(cli_filter_match(r, f, &match, &err) < 0 && strstr(err.msg, "invalid filter 'colour'"));
    json_decref(r);
    json_decref(f);
}
