#include "table.h"

#include <stdlib.h>
#include <string.h>

#include "unit.h"

json_t *table_json(const char *text)
{
    char *s = strdup(text);
    for (char *c = s; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_error_t jerr;
    json_t *v = json_loads(s, 0, &jerr);
    if (v == NULL)
        fprintf(stderr, "bad table JSON: %s: %s\n", jerr.text, s);
    CHECK(v != NULL);
    free(s);
    return v;
}

json_t *table_node(json_t *node)
{
    json_object_update_missing_new(
        node, json_pack("{s:O, s:s, s:s, s:s, s:i}", "hostname", json_object_get(node, "id"),
                        "role", "worker", "status", "ready", "availability", "active",
                        "updated_at", 0));
    return node;
}
