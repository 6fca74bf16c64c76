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
