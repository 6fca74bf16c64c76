/* Typed reads of JSON fields, and arrays searched or sorted (json_get.h). */
#include "base/json_get.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

const char *jstr_or(json_t *o, const char *key, const char *def)
{
    const char *s = jstr(o, key);
    return s ? s : def;
}

bool jstr_is(json_t *o, const char *key, const char *want)
{
    const char *s = jstr(o, key);
    return s && strcmp(s, want) == 0;
}

int jarray_index(json_t *array, const char *key, const char *want)
{
    size_t i;
    json_t *o;
    json_array_foreach(array, i, o)
    {
        if (want && jstr_is(o, key, want))
            return (int)i;
    }
    return -1;
}

json_t *jarray_find(json_t *array, const char *key, const char *want)
{
    int i = jarray_index(array, key, want);
    return i < 0 ? NULL : json_array_get(array, (size_t)i);
}

json_t *jarray_sorted(json_t *array, int (*cmp)(const void *, const void *))
{
    size_t n = json_array_size(array);
    json_t **v = xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(array, i);
    qsort(v, n, sizeof(*v), cmp);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    json_decref(array);
    return out;
}

void jset_default(json_t *o, const char *key, json_t *value)
{
    if (json_object_get(o, key) == NULL)
        json_object_set_new(o, key, value);
    else
        json_decref(value);
}

json_int_t jint(json_t *o, const char *key, json_int_t def)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

bool jbool(json_t *o, const char *key, bool def)
{
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

int jcheck_string_array(json_t *v, const char *field, struct serr *err)
{
    if (!json_is_array(v))
        return serr_set(err, SERR_INVALID, "%s must be an array of strings", field);
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s))
            return serr_set(err, SERR_INVALID, "%s must be an array of strings", field);
    }
    return 0;
}

char *jdumps_with_members(json_t *obj, const char *members)
{
    if (!json_is_object(obj))
        return NULL;
    char *text = json_dumps(obj, JSON_COMPACT);
    if (text == NULL || members == NULL || members[0] == '\0')
        return text;
    size_t len = strlen(text), more = strlen(members);
    bool empty = json_object_size(obj) == 0; /* "{}" */
    char *out = xmalloc(len + more + 2);
    memcpy(out, text, len - 1); /* all but the closing brace */
    size_t at = len - 1;
    if (!empty)
        out[at++] = ',';
    memcpy(out + at, members, more);
    at += more;
    out[at++] = '}';
    out[at] = '\0';
    free(text);
    return out;
}
