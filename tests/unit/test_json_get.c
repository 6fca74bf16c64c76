/* Typed reads of JSON fields (base/json_get.h). */
#include <string.h>

#include "base/json_get.h"
#include "unit.h"

TEST(json_get_reads_typed_fields)
{
    json_t *o = json_pack("{s:s, s:I, s:b, s:n}", "name", "web", "count", (json_int_t)3, "on", 1,
                          "none");
    CHECK_STR(jstr(o, "name"), "web");
    CHECK(jstr(o, "count") == NULL); /* not a string */
    CHECK(jstr(o, "missing") == NULL);
    CHECK(jstr(NULL, "name") == NULL);
    CHECK_STR(jstr_or(o, "missing", "-"), "-");
    CHECK_STR(jstr_or(o, "name", "-"), "web");
    CHECK(jstr_is(o, "name", "web"));
    CHECK(!jstr_is(o, "name", "db"));
    CHECK(!jstr_is(o, "missing", "web"));
    CHECK(jint(o, "count", -1) == 3);
    CHECK(jint(o, "name", -1) == -1);
    CHECK(jint(NULL, "count", 7) == 7);
    CHECK(jbool(o, "on", false));
    CHECK(jbool(o, "none", true)); /* null is not a boolean: the default */
    CHECK(!jbool(o, "missing", false));
    json_decref(o);
}

TEST(jarray_find_gives_the_first_object_holding_the_string)
{
    json_t *nodes = json_pack("[{s:s}, {s:s, s:s}, {s:s, s:s}, {s:i}]", "hostname", "x", "id",
                              "n2", "hostname", "b", "id", "n2", "hostname", "c", "id", 3);
    CHECK_STR(jstr(jarray_find(nodes, "id", "n2"), "hostname"), "b");
    CHECK(jarray_find(nodes, "id", "n3") == NULL);
    CHECK(jarray_find(nodes, "id", NULL) == NULL);
    CHECK(jarray_find(NULL, "id", "n2") == NULL);
    json_decref(nodes);
}

TEST(jset_default_sets_only_a_missing_key)
{
    json_t *o = json_pack("{s:i}", "replicas", 3);
    jset_default(o, "replicas", json_integer(1));
    jset_default(o, "mode", json_string("replicated"));
    CHECK(jint(o, "replicas", 0) == 3);
    CHECK_STR(jstr(o, "mode"), "replicated");
    json_decref(o);
}

TEST(jcheck_string_array_names_the_field)
{
    struct serr err = {0};
    json_t *ok = json_pack("[s, s]", "a", "b"), *mixed = json_pack("[s, i]", "a", 1);
    json_t *empty = json_array(), *text = json_string("a");
    CHECK(jcheck_string_array(ok, "args", &err) == 0);
    CHECK(jcheck_string_array(empty, "args", &err) == 0);
    CHECK(jcheck_string_array(mixed, "args", &err) < 0 && err.kind == SERR_INVALID);
    CHECK_STR(err.msg, "args must be an array of strings");
    CHECK(jcheck_string_array(text, "entrypoint", &err) < 0);
    CHECK_STR(err.msg, "entrypoint must be an array of strings");
    CHECK(jcheck_string_array(NULL, "env", &err) < 0);
    json_decref(ok);
    json_decref(mixed);
    json_decref(empty);
    json_decref(text);
}

TEST(jarray_index_gives_the_place_of_the_first_object_holding_the_string)
{
    json_t *nodes = json_pack("[{s:s}, {s:s}, {s:s}, {s:i}]", "id", "n1", "id", "n2", "id", "n2",
                              "id", 3);
    CHECK(jarray_index(nodes, "id", "n1") == 0);
    CHECK(jarray_index(nodes, "id", "n2") == 1);
    CHECK(jarray_index(nodes, "id", "n3") == -1);
    CHECK(jarray_index(nodes, "id", NULL) == -1);
    CHECK(jarray_index(NULL, "id", "n1") == -1);
    json_decref(nodes);
}

TEST(jdumps_with_members_adds_text_members_at_the_end)
{
    json_t *o = json_pack("{s:i}", "a", 1);
    char *t = jdumps_with_members(o, "\"m\":[1,2],\"t\":\"x\"");
    CHECK_STR(t, "{\"a\":1,\"m\":[1,2],\"t\":\"x\"}");
    free(t);
    t = jdumps_with_members(o, NULL);
    CHECK_STR(t, "{\"a\":1}");
    free(t);
    json_t *empty = json_object();
    t = jdumps_with_members(empty, "\"m\":{}");
    CHECK_STR(t, "{\"m\":{}}");
    free(t);
    json_t *arr = json_array();
    CHECK(jdumps_with_members(arr, "\"m\":1") == NULL);
    json_decref(arr);
    json_decref(empty);
    json_decref(o);
}
