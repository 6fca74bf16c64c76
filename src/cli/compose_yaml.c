/* Compose files: YAML (libyaml's document API) into the JSON tree of
 * compose.h, with `${VAR}` interpolation, `<<` merge keys, and the merge of
 * several files. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/util.h"
#include "cli/compose.h"

/* ---- interpolation ---- */

/* Appends `n` bytes to the growing string *out of length *len. */
static void append(char **out, size_t *len, const char *s, size_t n)
{
    *out = realloc(*out, *len + n + 1);
    if (*out == NULL)
        abort();
    memcpy(*out + *len, s, n);
    *len += n;
    (*out)[*len] = '\0';
}

/* Nesting of "${A:-${B:-...}}" allowed (each level is a call). */
#define MAX_INTERPOLATION_DEPTH 8

static int interpolate(const char *s, const char *where, int depth, char **result,
                       struct serr *err);

/* The '}' closing the "${" at s[0..1], past nested "${...}"; NULL if none. */
static const char *closing_brace(const char *s)
{
    int depth = 0;
    for (const char *p = s + 1; *p; p++) {
        if (p[0] == '$' && (p[1] == '$' || p[1] == '{')) {
            depth += p[1] == '{';
            p++;
        } else if (*p == '}') {
            if (depth == 0)
                return p;
            depth--;
        }
    }
    return NULL;
}

/* Appends the default or error text of "${NAME:-TEXT}", itself interpolated. */
static int append_interpolated(const char *text, const char *where, int depth, char **out,
                               size_t *len, struct serr *err)
{
    char *v;
    if (depth >= MAX_INTERPOLATION_DEPTH)
        return serr_set(err, SERR_INVALID, "%s: interpolation nested too deeply", where);
    if (interpolate(text, where, depth + 1, &v, err) < 0)
        return -1;
    append(out, len, v, strlen(v));
    free(v);
    return 0;
}

/* "${...}" body without braces: NAME, NAME:-DEF, NAME-DEF, NAME:?ERR, NAME?ERR
 * (DEF and ERR may hold variables too). */
static int expand_braced(const char *body, const char *where, int depth, char **out, size_t *len,
                         struct serr *err)
{
    size_t n = 0;
    while (isalnum((unsigned char)body[n]) || body[n] == '_')
        n++;
    if (n == 0)
        return serr_set(err, SERR_INVALID, "%s: invalid interpolation \"${%s}\"", where, body);
    char *name = strndup(body, n);
    const char *value = getenv(name);
    const char *op = body + n;
    bool colon = op[0] == ':';
    const char *kind = colon ? op + 1 : op;
    bool unset = value == NULL || (colon && value[0] == '\0');
    int rc = 0;
    if (*op == '\0') {
        if (value)
            append(out, len, value, strlen(value));
    } else if (*kind == '-') {
        if (unset)
            rc = append_interpolated(kind + 1, where, depth, out, len, err);
        else
            append(out, len, value, strlen(value));
    } else if (*kind == '?') {
        char *msg = NULL;
        size_t mlen = 0;
        if (unset && (rc = append_interpolated(kind + 1, where, depth, &msg, &mlen, err)) == 0)
            rc = serr_set(err, SERR_INVALID, "%s: required variable %s is missing a value: %s",
                          where, name, msg);
        free(msg);
        if (!unset)
            append(out, len, value, strlen(value));
    } else {
        rc = serr_set(err, SERR_INVALID, "%s: invalid interpolation \"${%s}\"", where, body);
    }
    free(name);
    return rc;
}

/* `$$` is a `$`; `$NAME` and `${...}` take the environment's values. */
static int interpolate(const char *s, const char *where, int depth, char **result, struct serr *err)
{
    char *out = xstrdup("");
    size_t len = 0;
    while (*s) {
        const char *dollar = strchr(s, '$');
        if (dollar == NULL) {
            append(&out, &len, s, strlen(s));
            break;
        }
        append(&out, &len, s, (size_t)(dollar - s));
        s = dollar + 1;
        if (*s == '$') {
            append(&out, &len, "$", 1);
            s++;
        } else if (*s == '{') {
            const char *close = closing_brace(s);
            if (close == NULL) {
                free(out);
                return serr_set(err, SERR_INVALID, "%s: unclosed \"${\" in \"%s\"", where, dollar);
            }
            char *body = strndup(s + 1, (size_t)(close - s - 1));
            int rc = expand_braced(body, where, depth, &out, &len, err);
            free(body);
            if (rc < 0) {
                free(out);
                return -1;
            }
            s = close + 1;
        } else if (isalpha((unsigned char)*s) || *s == '_') {
            size_t n = 0;
            while (isalnum((unsigned char)s[n]) || s[n] == '_')
                n++;
            char *name = strndup(s, n);
            const char *value = getenv(name);
            if (value)
                append(&out, &len, value, strlen(value));
            free(name);
            s += n;
        } else {
            append(&out, &len, "$", 1);
        }
    }
    *result = out;
    return 0;
}

/* ---- YAML nodes into JSON ---- */

/* Aliases make a tree out of a graph: the copies are bounded ("billion
 * laughs" files). */
#define MAX_NODES 200000

struct loader {
    yaml_document_t *doc;
    const char *name;
    int depth;
    long nodes; /* converted so far */
};

static char *where(const struct loader *ld, const yaml_node_t *node)
{
    return xasprintf("%s:%zu", ld->name, node->start_mark.line + 1);
}

static int node_to_json(struct loader *ld, yaml_node_t *node, json_t **out, struct serr *err);

static json_t *positions(json_t *obj)
{
    json_t *pos = json_object_get(obj, COMPOSE_POS);
    if (pos == NULL) {
        pos = json_object();
        json_object_set_new(obj, COMPOSE_POS, pos);
    }
    return pos;
}

/* `<<: *anchor` or `<<: [*a, *b]`: keys not set yet come from the mappings. */
static int merge_key(struct loader *ld, json_t *obj, yaml_node_t *value, struct serr *err)
{
    json_t *v;
    if (node_to_json(ld, value, &v, err) < 0)
        return -1;
    json_t *list = json_is_array(v) ? v : NULL;
    size_t n = list ? json_array_size(list) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *m = list ? json_array_get(list, i) : v;
        if (!json_is_object(m)) {
            char *at = where(ld, value);
            serr_set(err, SERR_INVALID, "%s: \"<<\" needs a mapping", at);
            free(at);
            json_decref(v);
            return -1;
        }
        const char *k;
        json_t *x;
        json_object_foreach(m, k, x)
        {
            if (strcmp(k, COMPOSE_POS) == 0 || json_object_get(obj, k))
                continue;
            /* a copy: a later file's merge changes each service's own */
            json_object_set_new(obj, k, json_deep_copy(x));
            json_t *p = json_object_get(json_object_get(m, COMPOSE_POS), k);
            if (p)
                json_object_set(positions(obj), k, p);
        }
    }
    json_decref(v);
    return 0;
}

static int mapping_to_json(struct loader *ld, yaml_node_t *node, json_t **out, struct serr *err)
{
    json_t *obj = json_object();
    positions(obj);
    yaml_node_pair_t *pair;
    yaml_node_t *merge = NULL;
    for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, pair->value);
        char *at = where(ld, k);
        int rc = 0;
        if (k->type != YAML_SCALAR_NODE) {
            rc = serr_set(err, SERR_INVALID, "%s: a key must be a plain string", at);
        } else if (strcmp((char *)k->data.scalar.value, "<<") == 0) {
            merge = v;
        } else {
            const char *key = (const char *)k->data.scalar.value;
            json_t *val;
            if (json_object_get(obj, key))
                rc = serr_set(err, SERR_INVALID, "%s: duplicate key \"%s\"", at, key);
            else if ((rc = node_to_json(ld, v, &val, err)) == 0) {
                json_object_set_new(obj, key, val);
                json_object_set_new(positions(obj), key, json_string(at));
            }
        }
        free(at);
        if (rc < 0) {
            json_decref(obj);
            return -1;
        }
    }
    if (merge && merge_key(ld, obj, merge, err) < 0) {
        json_decref(obj);
        return -1;
    }
    *out = obj;
    return 0;
}

static int node_to_json(struct loader *ld, yaml_node_t *node, json_t **out, struct serr *err)
{
    if (++ld->nodes > MAX_NODES)
        return serr_set(err, SERR_INVALID, "%s: too large once its aliases are expanded", ld->name);
    if (++ld->depth > 64) { /* aliases can loop */
        ld->depth--;
        return serr_set(err, SERR_INVALID, "%s: nested too deeply", ld->name);
    }
    int rc = 0;
    if (node->type == YAML_MAPPING_NODE) {
        rc = mapping_to_json(ld, node, out, err);
    } else if (node->type == YAML_SEQUENCE_NODE) {
        json_t *arr = json_array();
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             rc == 0 && it < node->data.sequence.items.top; it++) {
            json_t *v;
            if ((rc = node_to_json(ld, yaml_document_get_node(ld->doc, *it), &v, err)) == 0)
                json_array_append_new(arr, v);
        }
        if (rc == 0)
            *out = arr;
        else
            json_decref(arr);
    } else {
        const char *text = (const char *)node->data.scalar.value;
        bool plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (plain &&
            (strcmp(text, "") == 0 || strcmp(text, "~") == 0 || strcmp(text, "null") == 0)) {
            *out = json_null();
        } else {
            char *at = where(ld, node), *value = NULL;
            rc = interpolate(text, at, 0, &value, err);
            free(at);
            if (rc == 0) {
                *out = json_string(value);
                free(value);
            }
        }
    }
    ld->depth--;
    return rc;
}

int compose_parse(const char *text, size_t len, const char *name, json_t **doc, struct serr *err)
{
    yaml_parser_t parser;
    yaml_document_t ydoc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &ydoc)) {
        serr_set(err, SERR_INVALID, "%s:%zu: %s", name, parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&ydoc);
    struct loader ld = {&ydoc, name, 0, 0};
    int rc;
    if (root == NULL)
        rc = serr_set(err, SERR_INVALID, "%s: empty file", name);
    else if (root->type != YAML_MAPPING_NODE)
        rc = serr_set(err, SERR_INVALID, "%s:%zu: the top level must be a mapping", name,
                      root->start_mark.line + 1);
    else
        rc = node_to_json(&ld, root, doc, err);
    yaml_document_delete(&ydoc);
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- merging files ---- */

/* ["K=V", "K"] -> {"K": "V", "K": null}; positions are the list's. */
static json_t *list_to_map(json_t *list, json_t *list_pos)
{
    json_t *map = json_object();
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        const char *s = json_string_value(item);
        if (s == NULL)
            continue;
        const char *eq = strchr(s, '=');
        char *key = eq ? strndup(s, (size_t)(eq - s)) : xstrdup(s);
        json_object_set_new(map, key, eq ? json_string(eq + 1) : json_null());
        if (list_pos)
            json_object_set(positions(map), key, list_pos);
        free(key);
    }
    return map;
}

/* environment and labels: a list on one side, a mapping on the other. */
static bool merged_as_map(const char *key)
{
    return strcmp(key, "environment") == 0 || strcmp(key, "labels") == 0;
}

void compose_merge(json_t *base, json_t *over)
{
    const char *k;
    json_t *v;
    json_t *base_pos = positions(base), *over_pos = json_object_get(over, COMPOSE_POS);
    json_object_foreach(over, k, v)
    {
        if (strcmp(k, COMPOSE_POS) == 0)
            continue;
        json_t *b = json_object_get(base, k);
        json_t *pos = json_object_get(over_pos, k);
        if (merged_as_map(k) && json_is_array(b)) {
            json_object_set_new(base, k, b = list_to_map(b, json_object_get(base_pos, k)));
        }
        if (json_is_object(b) && (json_is_object(v) || (merged_as_map(k) && json_is_array(v)))) {
            json_t *o = json_is_array(v) ? list_to_map(v, pos) : json_incref(v);
            compose_merge(b, o);
            json_decref(o);
        } else {
            json_object_set(base, k, v);
        }
        if (pos)
            json_object_set(base_pos, k, pos);
    }
}

int compose_load_files(const char *const *files, int nfiles, const char *stack, json_t **plan,
                       struct serr *err)
{
    json_t *merged = NULL;
    for (int i = 0; i < nfiles; i++) {
        char *text = NULL;
        size_t len = 0;
        json_t *doc;
        if (strcmp(files[i], "-") == 0 ? serr_set(err, SERR_INVALID, "-c -: give a file")
                                       : read_file(files[i], &text, &len, err) < 0) {
            json_decref(merged);
            return -1;
        }
        int rc = compose_parse(text, len, files[i], &doc, err);
        free(text);
        if (rc < 0) {
            json_decref(merged);
            return -1;
        }
        if (merged == NULL) {
            merged = doc;
        } else {
            compose_merge(merged, doc);
            json_decref(doc);
        }
    }
    char *workdir = xstrdup(files[0]);
    char *slash = strrchr(workdir, '/');
    if (slash)
        slash[slash == workdir ? 1 : 0] = '\0';
    /* relative binds are under the first file's directory, made absolute */
    char *dir = realpath(slash ? workdir : ".", NULL);
    int rc = compose_convert(merged, stack, dir ? dir : slash ? workdir : ".", plan, err);
    free(dir);
    free(workdir);
    json_decref(merged);
    return rc;
}
