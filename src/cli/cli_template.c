/* --format templates and --filter on listings, as Docker's: a small subset
 * of Go templates over one JSON object per row. Pure, unit-tested. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

/* Keys compared as Docker users write them: "DesiredState", "desired-state",
 * "desired_state" and "DESIRED STATE" are the same. */
static bool key_equal(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (;;) {
        while (i < alen && strchr("-_ ", a[i]))
            i++;
        while (*b && strchr("-_ ", *b))
            b++;
        if (i == alen || *b == '\0')
            return i == alen && *b == '\0';
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)*b))
            return false;
        i++;
        b++;
    }
}

static json_t *field_get(json_t *obj, const char *name, size_t len)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (strlen(key) == len && memcmp(key, name, len) == 0)
            return v;
    }
    json_object_foreach(obj, key, v)
    {
        if (key_equal(name, len, key))
            return v;
    }
    return NULL;
}

/* ".A.B" or "." -> the value (borrowed), NULL with err when absent. */
static json_t *resolve(json_t *obj, const char *path, size_t len, struct serr *err)
{
    if (len == 0 || path[0] != '.')
        return serr_set(err, SERR_INVALID, "template: expected a field such as .Name, got \"%.*s\"",
                        (int)len, path),
               NULL;
    json_t *cur = obj;
    size_t i = 1;
    while (i < len) {
        size_t start = i;
        while (i < len && path[i] != '.')
            i++;
        json_t *next = json_is_object(cur) ? field_get(cur, path + start, i - start) : NULL;
        if (next == NULL) {
            serr_set(err, SERR_INVALID, "template: no field \"%.*s\"", (int)(i - start),
                     path + start);
            return NULL;
        }
        cur = next;
        if (i < len)
            i++;
    }
    return cur;
}

static char *value_text(json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_null(v))
        return xstrdup("<nil>");
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* One action between {{ and }}: ".F", "json .F", "upper .F", "lower .F". */
static char *action(json_t *obj, const char *s, size_t len, struct serr *err)
{
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    const char *fn = NULL;
    size_t fnlen = 0;
    if (len && s[0] != '.') {
        fn = s;
        while (fnlen < len && !isspace((unsigned char)s[fnlen]))
            fnlen++;
        s += fnlen;
        len -= fnlen;
        while (len && isspace((unsigned char)*s))
            s++, len--;
    }
    json_t *v = resolve(obj, s, len, err);
    if (v == NULL)
        return NULL;
    if (fn == NULL)
        return value_text(v);
    if (fnlen == 4 && memcmp(fn, "json", 4) == 0)
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    bool up = fnlen == 5 && memcmp(fn, "upper", 5) == 0;
    if (up || (fnlen == 5 && memcmp(fn, "lower", 5) == 0)) {
        char *text = value_text(v);
        for (char *p = text; *p; p++)
            *p = (char)(up ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
        return text;
    }
    serr_set(err, SERR_INVALID, "template: function \"%.*s\" not defined (json, upper, lower)",
             (int)fnlen, fn);
    return NULL;
}

char *cli_template_expand(const char *tmpl, json_t *obj, struct serr *err)
{
    char *out = NULL;
    size_t len = 0, cap = 0;
    buf_append(&out, &len, &cap, "", 0);
    const char *p = tmpl;
    while (*p) {
        if (p[0] == '{' && p[1] == '{') {
            const char *end = strstr(p + 2, "}}");
            if (end == NULL) {
                free(out);
                serr_set(err, SERR_INVALID, "template: unclosed action \"%s\"", p);
                return NULL;
            }
            char *text = action(obj, p + 2, (size_t)(end - p - 2), err);
            if (text == NULL) {
                free(out);
                return NULL;
            }
            buf_append(&out, &len, &cap, text, strlen(text));
            free(text);
            p = end + 2;
        } else if (p[0] == '\\' && (p[1] == 't' || p[1] == 'n')) { /* as docker: \t, \n */
            buf_append(&out, &len, &cap, p[1] == 't' ? "\t" : "\n", 1);
            p += 2;
        } else {
            buf_append(&out, &len, &cap, p, 1);
            p++;
        }
    }
    return out;
}

/* ---- filters ---- */

int cli_filter_match(json_t *row, json_t *filters, bool *match, struct serr *err)
{
    /* keys AND, values of one key OR, as docker's */
    const char *key;
    json_t *values;
    *match = true;
    json_object_foreach(filters, key, values)
    {
        json_t *cell = field_get(row, key, strlen(key));
        if (cell == NULL) { /* name=: NAMES in `ps` */
            char *plural = xasprintf("%ss", key);
            cell = field_get(row, plural, strlen(plural));
            free(plural);
        }
        if (!json_is_string(cell))
            return serr_set(err, SERR_INVALID, "invalid filter '%s'", key);
        const char *have = json_string_value(cell);
        bool any = false;
        size_t i;
        json_t *v;
        json_array_foreach(values, i, v)
        {
            const char *want = json_string_value(v);
            if (key_equal(key, strlen(key), "id"))
                any |= strncmp(have, want, strlen(want)) == 0 || strncmp(want, have, strlen(have)) == 0;
            else if (key_equal(key, strlen(key), "name"))
                any |= strstr(have, want) != NULL;
            else
                any |= strcasecmp(have, want) == 0;
        }
        if (!any)
            *match = false;
    }
    return 0;
}

int cli_filter_add(json_t *filters, const char *arg, struct serr *err)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg)
        return serr_set(err, SERR_INVALID, "bad format of filter (expected name=value): %s", arg);
    char *key = xasprintf("%.*s", (int)(eq - arg), arg);
    json_t *values = json_object_get(filters, key);
    if (values == NULL) {
        values = json_array();
        json_object_set_new(filters, key, values);
    }
    json_array_append_new(values, json_string(eq + 1));
    free(key);
    return 0;
}
