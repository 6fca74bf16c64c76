#include "store_ops.h"

#include <stdlib.h>
#include <string.h>

#include "unit.h"

size_t unit_apply_ops(struct store *st, json_t *ops)
{
    size_t n = json_array_size(ops);
    json_t *entry = json_pack("{s:[o]}", "groups", ops);
    char *text = json_dumps(entry, JSON_COMPACT);
    struct store_result res;
    CHECK(store_apply(st, text, strlen(text), &res, NULL) == 0);
    CHECK(res.ngroups == 1 && res.status[0] == 0);
    store_result_free(&res);
    free(text);
    json_decref(entry);
    return n;
}
