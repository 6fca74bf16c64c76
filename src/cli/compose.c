/* Compose document (compose_yaml.c) -> the stack's networks, secrets,
 * configs and service specs (compose.h). Every key of the document is
 * looked at: known keys are converted, keys Docker ignores in swarm mode
 * give a warning, the others an error naming the file, line and key. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"
#include "base/util.h"
#include "cli/cli.h"
#include "cli/compose.h"
#include "model/container_opts.h"

#define MAX_REPLICAS 100000

/* The conversion's state: what it reads and what it has made. */
struct conv {
    json_t *doc;
    const char *stack, *workdir;
    json_t *plan, *warnings;
    struct serr *err;
};

/* A place in the document: the mapping holding `key`, and the key's path. */
struct at {
    json_t *obj;
    const char *key;
    const char *path; /* "services.web.deploy" (the mapping's) */
};

static const char *pos_of(json_t *obj, const char *key)
{
    const char *p = jstr(json_object_get(obj, COMPOSE_POS), key);
    return p ? p : "?";
}

/* "FILE:LINE: PATH.KEY: message" into the error; returns -1. */
static int fail(struct conv *c, const struct at *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct conv *c, const struct at *a, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return serr_set(c->err, SERR_INVALID, "%s: %s%s%s: %s", pos_of(a->obj, a->key), a->path,
                    a->path[0] ? "." : "", a->key, msg);
}

/* Wraps an error of a shared parser (cli_parse_publish...) with the place. */
static int fail_wrap(struct conv *c, const struct at *a)
{
    char msg[sizeof(c->err->msg)];
    snprintf(msg, sizeof(msg), "%s", c->err->msg);
    return fail(c, a, "%s", msg);
}

static void warn(struct conv *c, const struct at *a, const char *what)
{
    char *w = xasprintf("%s: %s%s%s: %s", pos_of(a->obj, a->key), a->path, a->path[0] ? "." : "",
                        a->key, what);
    json_array_append_new(c->warnings, json_string(w));
    free(w);
}

static bool is_extension(const char *key)
{
    return strncmp(key, "x-", 2) == 0 || strcmp(key, COMPOSE_POS) == 0;
}

/* A key's handler: converts `val` (the value at a->key). */
typedef int (*key_fn)(struct conv *c, const struct at *a, json_t *val, json_t *out);

struct key_rule {
    const char *key;
    key_fn fn;       /* NULL: unsupported (error), or ignored with `warning` */
    const char *why; /* for unsupported keys: the reason; for ignored: the warning */
    bool ignored;
};

/* Runs the rule of each key of `obj` (extension fields x-* skipped). */
static int walk(struct conv *c, json_t *obj, const char *path, const struct key_rule *rules,
                json_t *out)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        if (is_extension(key))
            continue;
        struct at a = {obj, key, path};
        const struct key_rule *r = rules;
        while (r->key && strcmp(r->key, key) != 0)
            r++;
        if (r->key == NULL)
            return fail(c, &a, "unknown key");
        if (r->ignored) {
            warn(c, &a, r->why);
            continue;
        }
        if (r->fn == NULL)
            return fail(c, &a, "not supported by shoal%s%s", r->why ? ": " : "",
                        r->why ? r->why : "");
        if (r->fn(c, &a, val, out) < 0)
            return -1;
    }
    return 0;
}

static int want_object(struct conv *c, const struct at *a, json_t *val)
{
    return json_is_object(val) ? 0 : fail(c, a, "must be a mapping");
}

static const char *want_string(struct conv *c, const struct at *a, json_t *val)
{
    const char *s = json_string_value(val);
    if (s == NULL)
        fail(c, a, "must be a string");
    return s;
}

static char *child_path(const struct at *a)
{
    return xasprintf("%s%s%s", a->path, a->path[0] ? "." : "", a->key);
}

/* Runs `rules` over the mapping at `a`. */
static int walk_child(struct conv *c, const struct at *a, json_t *val, const struct key_rule *rules,
                      json_t *out)
{
    if (want_object(c, a, val) < 0)
        return -1;
    char *path = child_path(a);
    int rc = walk(c, val, path, rules, out);
    free(path);
    return rc;
}

/* ---- scalar values ---- */

static int parse_bool(struct conv *c, const struct at *a, json_t *val, bool *out)
{
    const char *s = json_string_value(val);
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "yes") == 0)) {
        *out = true;
        return 0;
    }
    if (s && (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "no") == 0)) {
        *out = false;
        return 0;
    }
    return fail(c, a, "must be true or false");
}

static int parse_uint(struct conv *c, const struct at *a, json_t *val, int64_t max, int64_t *out)
{
    const char *s = want_string(c, a, val);
    if (s == NULL)
        return -1;
    if (cli_parse_uint(a->key, s, max, out, c->err) < 0)
        return fail_wrap(c, a);
    return 0;
}

static int set_duration(struct conv *c, const struct at *a, json_t *val, json_t *out,
                        const char *field)
{
    const char *s = want_string(c, a, val);
    int64_t ms;
    if (s == NULL)
        return -1;
    if (parse_duration(s, &ms, c->err) < 0)
        return fail_wrap(c, a);
    json_object_set_new(out, field, json_integer(ms));
    return 0;
}

static int set_one_of(struct conv *c, const struct at *a, json_t *val, json_t *out,
                      const char *field, const char *const *allowed)
{
    const char *s = want_string(c, a, val);
    if (s == NULL)
        return -1;
    char choices[200] = "";
    for (int i = 0; allowed[i]; i++) {
        if (strcmp(allowed[i], s) == 0) {
            json_object_set_new(out, field, json_string(s));
            return 0;
        }
        size_t n = strlen(choices);
        snprintf(choices + n, sizeof(choices) - n, "%s%s", i ? ", " : "", allowed[i]);
    }
    return fail(c, a, "\"%s\" is not one of %s", s, choices);
}

static json_t *member(json_t *obj, const char *key)
{
    json_t *m = json_object_get(obj, key);
    if (m == NULL)
        json_object_set_new(obj, key, m = json_object());
    return m;
}

static json_t *array_member(json_t *obj, const char *key)
{
    json_t *m = json_object_get(obj, key);
    if (m == NULL)
        json_object_set_new(obj, key, m = json_array());
    return m;
}

/* A relative path is the work directory's. */
static char *abs_path(struct conv *c, const char *path)
{
    if (path[0] == '/')
        return xstrdup(path);
    if (path[0] == '~' && path[1] == '/' && getenv("HOME"))
        return xasprintf("%s%s", getenv("HOME"), path + 1);
    if (strncmp(path, "./", 2) == 0)
        path += 2;
    return xasprintf("%s/%s", c->workdir, path);
}

/* A top-level object (networks, volumes, secrets, configs) by its key. */
static json_t *top_entry(struct conv *c, const char *section, const char *name)
{
    return json_object_get(json_object_get(c->doc, section), name);
}

static bool is_external(json_t *def)
{
    json_t *ext = json_object_get(def, "external");
    const char *s = json_string_value(ext);
    return json_is_object(ext) ||
           (s && (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "yes") == 0));
}

/* The object's name: its "name:" (or external's), the key of an external
 * one, else STACK_key as Docker does. */
static char *object_name(struct conv *c, const char *section, const char *key)
{
    json_t *def = top_entry(c, section, key);
    const char *given = jstr(def, "name");
    const char *ext_name = jstr(json_object_get(def, "external"), "name");
    if (given || ext_name)
        return xstrdup(given ? given : ext_name);
    if (is_external(def))
        return xstrdup(key);
    return xasprintf("%s_%s", c->stack, key);
}

/* ---- shell words: `command: sh -c "echo hi"` ---- */

static int split_words(const char *s, json_t *out)
{
    char *word = xmalloc(strlen(s) + 1);
    size_t n = 0;
    bool in_word = false;
    while (*s) {
        char ch = *s++;
        if (ch == '\'' || ch == '"') {
            in_word = true;
            while (*s && *s != ch) {
                if (ch == '"' && *s == '\\' && s[1])
                    s++;
                word[n++] = *s++;
            }
            if (*s != ch) {
                free(word);
                return -1;
            }
            s++;
        } else if (ch == '\\' && *s) {
            in_word = true;
            word[n++] = *s++;
        } else if (isspace((unsigned char)ch)) {
            if (in_word)
                json_array_append_new(out, json_stringn(word, n));
            n = 0;
            in_word = false;
        } else {
            in_word = true;
            word[n++] = ch;
        }
    }
    if (in_word)
        json_array_append_new(out, json_stringn(word, n));
    free(word);
    return 0;
}

/* A string (shell words) or a list of strings, appended to `out`. */
static int command_words(struct conv *c, const struct at *a, json_t *val, json_t *out)
{
    if (json_is_string(val)) {
        if (split_words(json_string_value(val), out) < 0)
            return fail(c, a, "unterminated quote");
        return 0;
    }
    if (!json_is_array(val))
        return fail(c, a, "must be a string or a list of strings");
    size_t i;
    json_t *w;
    json_array_foreach(val, i, w)
    {
        if (!json_is_string(w))
            return fail(c, a, "must be a list of strings");
        json_array_append(out, w);
    }
    return 0;
}

/* ---- service keys ---- */

/* Keys filled in after the walk (command after entrypoint) go to a scratch
 * object in the spec, removed at the end. */
#define SCRATCH "\x01scratch"

static int svc_image(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    const char *s = want_string(c, a, val);
    if (s == NULL)
        return -1;
    if (s[0] == '\0')
        return fail(c, a, "empty");
    json_object_set_new(spec, "image", json_string(s));
    return 0;
}

static int svc_words(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    json_t *words = json_array();
    json_object_set_new(member(spec, SCRATCH), a->key, words);
    return command_words(c, a, val, words);
}

static int add_env_line(struct conv *c, const struct at *a, json_t *env, const char *key,
                        const char *value)
{
    if (key[0] == '\0' || strchr(key, '=') != NULL)
        return fail(c, a, "invalid variable name \"%s\"", key);
    if (value == NULL)
        value = getenv(key); /* "K" alone: the shell's value, as docker does */
    if (value == NULL)
        return 0;
    /* a later value replaces an earlier one of the same name */
    size_t klen = strlen(key), i;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        const char *s = json_string_value(e);
        if (strncmp(s, key, klen) == 0 && s[klen] == '=') {
            json_array_remove(env, i);
            break;
        }
    }
    char *line = xasprintf("%s=%s", key, value);
    json_array_append_new(env, json_string(line));
    free(line);
    return 0;
}

static int svc_environment(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    json_t *env = array_member(member(spec, SCRATCH), "environment");
    if (json_is_object(val)) {
        const char *k;
        json_t *v;
        json_object_foreach(val, k, v)
        {
            if (strcmp(k, COMPOSE_POS) == 0)
                continue;
            if (!json_is_null(v) && !json_is_string(v))
                return fail(c, a, "the value of %s must be a string", k);
            if (add_env_line(c, a, env, k, json_string_value(v)) < 0)
                return -1;
        }
        return 0;
    }
    if (!json_is_array(val))
        return fail(c, a, "must be a mapping or a list of KEY=VALUE");
    size_t i;
    json_t *item;
    json_array_foreach(val, i, item)
    {
        const char *s = json_string_value(item);
        if (s == NULL)
            return fail(c, a, "must be a list of KEY=VALUE strings");
        const char *eq = strchr(s, '=');
        char *key = eq ? strndup(s, (size_t)(eq - s)) : xstrdup(s);
        int rc = add_env_line(c, a, env, key, eq ? eq + 1 : NULL);
        free(key);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* One env_file: KEY=VALUE lines, # comments and blank lines skipped. */
static int read_env_file(struct conv *c, const struct at *a, const char *file, json_t *env)
{
    char *path = abs_path(c, file), *text = NULL;
    size_t len;
    int rc = read_file(path, &text, &len, c->err);
    free(path);
    if (rc < 0)
        return fail_wrap(c, a);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); rc == 0 && line;
         line = strtok_r(NULL, "\n", &save)) {
        line[strcspn(line, "\r")] = '\0';
        while (isspace((unsigned char)*line))
            line++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *eq = strchr(line, '=');
        if (eq)
            *eq = '\0';
        rc = add_env_line(c, a, env, line, eq ? eq + 1 : NULL);
    }
    free(text);
    return rc;
}

static int svc_env_file(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    json_t *env = array_member(member(spec, SCRATCH), "env_file");
    if (json_is_string(val))
        return read_env_file(c, a, json_string_value(val), env);
    if (!json_is_array(val))
        return fail(c, a, "must be a file or a list of files");
    size_t i;
    json_t *f;
    json_array_foreach(val, i, f)
    {
        const char *file = json_string_value(f);
        if (file == NULL && json_is_object(f))
            file = jstr(f, "path");
        if (file == NULL)
            return fail(c, a, "must be a list of files");
        if (read_env_file(c, a, file, env) < 0)
            return -1;
    }
    return 0;
}

static int add_port(struct conv *c, const struct at *a, json_t *spec, const char *text)
{
    json_t *port;
    if (cli_parse_publish(text, &port, c->err) < 0)
        return fail_wrap(c, a);
    json_array_append_new(array_member(spec, "ports"), port);
    return 0;
}

/* Long syntax: {target, published, protocol, mode}. */
static int port_long(struct conv *c, const struct at *a, json_t *p, json_t *spec)
{
    static const char *const known[] = {"target", "published", "protocol", "mode", NULL};
    char text[200] = "";
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v)
    {
        if (is_extension(k))
            continue;
        if (!str_in_list(k, known))
            return fail(c, a,
                        "port key \"%s\" is not supported (target, published, protocol, "
                        "mode)",
                        k);
        const char *s = json_string_value(v);
        if (s == NULL)
            return fail(c, a, "port %s must be a value", k);
        size_t n = strlen(text);
        snprintf(text + n, sizeof(text) - n, "%s%s=%s", n ? "," : "", k, s);
    }
    return add_port(c, a, spec, text);
}

static int svc_ports(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    if (!json_is_array(val))
        return fail(c, a, "must be a list");
    size_t i;
    json_t *p;
    json_array_foreach(val, i, p)
    {
        int rc;
        if (json_is_object(p))
            rc = port_long(c, a, p, spec);
        else if (!json_is_string(p))
            rc = fail(c, a, "must be a list of ports");
        else
            rc = add_port(c, a, spec, json_string_value(p));
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* A named volume must be declared at the top level; its name is STACK_name
 * (or the external / given one). */
static int volume_source(struct conv *c, const struct at *a, const char *type, const char *src,
                         char **out)
{
    if (strcmp(type, "bind") == 0) {
        *out = abs_path(c, src);
        return 0;
    }
    json_t *vols = json_object_get(c->doc, "volumes");
    if (!json_is_object(vols) || json_object_get(vols, src) == NULL)
        return fail(c, a, "volume \"%s\" is not declared in the top-level volumes", src);
    *out = object_name(c, "volumes", src);
    return 0;
}

/* The --mount `text` parsed, onto the array `mounts`. */
static int append_mount(json_t *mounts, const char *text, struct serr *err)
{
    json_t *m;
    if (cli_parse_mount(text, &m, err) < 0)
        return -1;
    json_array_append_new(mounts, m);
    return 0;
}

static int add_mount(struct conv *c, const struct at *a, json_t *spec, const char *type,
                     const char *src, const char *dst, bool ro)
{
    char *source = NULL;
    if (volume_source(c, a, type, src, &source) < 0)
        return -1;
    char *text = xasprintf("type=%s,src=%s,dst=%s%s", type, source, dst, ro ? ",readonly" : "");
    free(source);
    int rc = append_mount(array_member(spec, "mounts"), text, c->err);
    free(text);
    return rc < 0 ? fail_wrap(c, a) : 0;
}

/* "SRC:DST[:ro|rw]": SRC a path (bind) or a volume's name. */
static int volume_short(struct conv *c, const struct at *a, const char *text, json_t *spec)
{
    char *copy = xstrdup(text);
    char *parts[4] = {0};
    int n = 0;
    char *save = NULL;
    for (char *p = strtok_r(copy, ":", &save); p && n < 4; p = strtok_r(NULL, ":", &save))
        parts[n++] = p;
    int rc;
    if (n < 2)
        rc = fail(c, a, "\"%s\": anonymous volumes are not supported (give SOURCE:TARGET)", text);
    else if (n > 3 || (n == 3 && strcmp(parts[2], "ro") != 0 && strcmp(parts[2], "rw") != 0))
        rc = fail(c, a, "\"%s\": only the ro and rw modes are supported", text);
    else {
        bool bind = strchr("/.~", parts[0][0]) != NULL;
        rc = add_mount(c, a, spec, bind ? "bind" : "volume", parts[0], parts[1],
                       n == 3 && strcmp(parts[2], "ro") == 0);
    }
    free(copy);
    return rc;
}

/* {type: tmpfs, target, tmpfs: {size}} (--mount type=tmpfs,dst=,tmpfs-size=) */
static int tmpfs_long(struct conv *c, const struct at *a, json_t *v, json_t *spec)
{
    const char *dst = jstr(v, "target");
    json_t *opts = json_object_get(v, "tmpfs");
    const char *size = jstr(opts, "size");
    size_t known = (json_object_get(opts, COMPOSE_POS) != NULL) + (size != NULL);
    if (dst == NULL || json_object_get(v, "source"))
        return fail(c, a, "a tmpfs takes a target and no source");
    if (opts && (!json_is_object(opts) || json_object_size(opts) != known))
        return fail(c, a, "tmpfs options: size only");
    char *text =
        xasprintf("type=tmpfs,dst=%s%s%s", dst, size ? ",tmpfs-size=" : "", size ? size : "");
    int rc = append_mount(array_member(spec, "mounts"), text, c->err);
    free(text);
    return rc < 0 ? fail_wrap(c, a) : 0;
}

/* Long syntax: {type: volume|bind|tmpfs, source, target, read_only, tmpfs}. */
static int volume_long(struct conv *c, const struct at *a, json_t *v, json_t *spec)
{
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (!is_extension(k) && strcmp(k, "type") && strcmp(k, "source") && strcmp(k, "target") &&
            strcmp(k, "read_only") && strcmp(k, "tmpfs"))
            return fail(c, a,
                        "volume key \"%s\" is not supported (type, source, target, "
                        "read_only, tmpfs)",
                        k);
    }
    const char *type = jstr(v, "type");
    const char *src = jstr(v, "source");
    const char *dst = jstr(v, "target");
    if (type && strcmp(type, "tmpfs") == 0)
        return tmpfs_long(c, a, v, spec);
    if (json_object_get(v, "tmpfs"))
        return fail(c, a, "tmpfs options need type: tmpfs");
    if (type == NULL || (strcmp(type, "bind") != 0 && strcmp(type, "volume") != 0))
        return fail(c, a, "type must be volume, bind or tmpfs");
    if (src == NULL || dst == NULL)
        return fail(c, a, "source and target are required");
    bool ro = false;
    json_t *r = json_object_get(v, "read_only");
    struct at ra = {v, "read_only", a->path};
    if (r && parse_bool(c, &ra, r, &ro) < 0)
        return -1;
    return add_mount(c, a, spec, type, src, dst, ro);
}

static int svc_volumes(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    if (!json_is_array(val))
        return fail(c, a, "must be a list");
    size_t i;
    json_t *v;
    json_array_foreach(val, i, v)
    {
        int rc = json_is_string(v)   ? volume_short(c, a, json_string_value(v), spec)
                 : json_is_object(v) ? volume_long(c, a, v, spec)
                                     : fail(c, a, "must be a list of volumes");
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int set_network(struct conv *c, const struct at *a, json_t *spec, const char *net)
{
    json_t *nets = json_object_get(c->doc, "networks");
    if (strcmp(net, "default") != 0 && (!json_is_object(nets) || !json_object_get(nets, net)))
        return fail(c, a, "network \"%s\" is not declared in the top-level networks", net);
    json_object_set_new(member(spec, SCRATCH), "network", json_string(net));
    return 0;
}

static int svc_networks(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    const char *only = NULL;
    size_t n = 0;
    if (json_is_array(val)) {
        n = json_array_size(val);
        only = json_string_value(json_array_get(val, 0));
    } else if (json_is_object(val)) {
        const char *k;
        json_t *v;
        json_object_foreach(val, k, v)
        {
            if (strcmp(k, COMPOSE_POS) == 0)
                continue;
            n++;
            only = k;
            if (!json_is_null(v) && !(json_is_object(v) && json_object_size(v) <= 1))
                return fail(c, a, "network options (aliases, ipv4_address...) are not supported");
        }
    } else {
        return fail(c, a, "must be a list or a mapping");
    }
    if (n != 1 || only == NULL)
        return fail(c, a, "a shoal service is on exactly one network (%zu given)", n);
    return set_network(c, a, spec, only);
}

static int svc_network_mode(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    const char *s = want_string(c, a, val);
    if (s == NULL)
        return -1;
    if (strcmp(s, "host") != 0)
        return fail(c, a, "only \"host\" is supported");
    json_object_set_new(spec, "network", json_string("host"));
    return 0;
}

/* Appends a word for /bin/sh to *cmd: single-quoted unless plain. */
static void append_shell_word(char **cmd, const char *w)
{
    static const char plain_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789-_./:=,@%+";
    bool plain = w[0] != '\0' && strspn(w, plain_chars) == strlen(w);
    size_t n = strlen(*cmd);
    char *out = xmalloc(n + 4 * strlen(w) + 4), *o = out + n;
    memcpy(out, *cmd, n);
    if (n > 0)
        *o++ = ' ';
    if (!plain)
        *o++ = '\'';
    for (const char *p = w; *p; p++) {
        if (!plain && *p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    if (!plain)
        *o++ = '\'';
    *o = '\0';
    free(*cmd);
    *cmd = out;
}

/* test: "CMD" | ["CMD-SHELL", "cmd"] | ["CMD", "prog", "arg"...] | ["NONE"]. */
static int health_test(struct conv *c, const struct at *a, json_t *val, json_t *hc)
{
    if (json_is_string(val)) {
        json_object_set_new(hc, "cmd", json_string(json_string_value(val)));
        return 0;
    }
    const char *kind = json_string_value(json_array_get(val, 0));
    if (kind == NULL)
        return fail(c, a, "must be a string or a list [CMD|CMD-SHELL|NONE, ...]");
    if (strcmp(kind, "NONE") == 0) {
        json_object_set_new(hc, "disable", json_true());
        return 0;
    }
    if (strcmp(kind, "CMD-SHELL") == 0 && json_array_size(val) == 2 &&
        json_is_string(json_array_get(val, 1))) {
        json_object_set(hc, "cmd", json_array_get(val, 1));
        return 0;
    }
    if (strcmp(kind, "CMD") != 0 || json_array_size(val) < 2)
        return fail(c, a, "must be [\"CMD\", PROG, ARG...] or [\"CMD-SHELL\", COMMAND]");
    char *cmd = xstrdup("");
    for (size_t i = 1; i < json_array_size(val); i++) {
        const char *w = json_string_value(json_array_get(val, i));
        if (w == NULL) {
            free(cmd);
            return fail(c, a, "must be a list of strings");
        }
        append_shell_word(&cmd, w);
    }
    json_object_set_new(hc, "cmd", json_string(cmd));
    free(cmd);
    return 0;
}

static int hc_test(struct conv *c, const struct at *a, json_t *val, json_t *hc)
{
    return health_test(c, a, val, hc);
}
static int hc_interval(struct conv *c, const struct at *a, json_t *val, json_t *hc)
{
    return set_duration(c, a, val, hc, "interval_ms");
}
static int hc_timeout(struct conv *c, const struct at *a, json_t *val, json_t *hc)
{
    return set_duration(c, a, val, hc, "timeout_ms");
}
static int hc_start_period(struct conv *c, const struct at *a, json_t *val, json_t *hc)
{
    return set_duration(c, a, val, hc, "start_period_ms");
}
static int hc_retries(struct conv *c, const struct at *a, json_t *val, json_t *hc)
{
    int64_t n;
    if (parse_uint(c, a, val, 1000000, &n) < 0)
        return -1;
    if (n < 1)
        return fail(c, a, "must be at least 1");
    json_object_set_new(hc, "retries", json_integer(n));
    return 0;
}
static int hc_disable(struct conv *c, const struct at *a, json_t *val, json_t *hc)
{
    bool off;
    if (parse_bool(c, a, val, &off) < 0)
        return -1;
    if (off)
        json_object_set_new(hc, "disable", json_true());
    return 0;
}

static const struct key_rule healthcheck_rules[] = {
    {"test", hc_test, NULL, false},        {"interval", hc_interval, NULL, false},
    {"timeout", hc_timeout, NULL, false},  {"start_period", hc_start_period, NULL, false},
    {"retries", hc_retries, NULL, false},  {"disable", hc_disable, NULL, false},
    {"start_interval", NULL, NULL, false}, {NULL, NULL, NULL, false},
};

static int svc_healthcheck(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    json_t *hc = json_object();
    int rc = walk_child(c, a, val, healthcheck_rules, hc);
    if (rc == 0 && json_object_get(hc, "disable") == NULL && json_object_get(hc, "cmd") == NULL)
        rc = fail(c, a, "needs a test (shoal does not read the image's HEALTHCHECK)");
    if (rc == 0 && json_object_get(hc, "disable") == NULL)
        json_object_set(spec, "healthcheck", hc);
    json_decref(hc);
    return rc;
}

/* "0440" (octal, as written in YAML 1.1) or a decimal. */
static int parse_mode(struct conv *c, const struct at *a, const char *s, long *mode)
{
    char *end;
    errno = 0;
    *mode = strtol(s, &end, s[0] == '0' ? 8 : 10);
    if (*s == '\0' || *end != '\0' || errno || *mode < 0 || *mode > 0777)
        return fail(c, a, "invalid mode \"%s\"", s);
    return 0;
}

/* secrets: / configs: of a service: "NAME" or {source, target, uid, gid, mode}. */
static int secret_ref(struct conv *c, const struct at *a, const char *section, json_t *item,
                      json_t *list)
{
    const char *source = json_is_string(item) ? json_string_value(item) : jstr(item, "source");
    if (source == NULL)
        return fail(c, a, "each entry needs a source");
    if (top_entry(c, section, source) == NULL)
        return fail(c, a, "\"%s\" is not declared in the top-level %s", source, section);
    char *name = object_name(c, section, source);
    json_t *ref = json_pack("{s:s, s:s}", "source", name, "target", source);
    free(name);
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(json_is_object(item) ? item : NULL, k, v)
    {
        const char *s = json_string_value(v);
        long mode;
        if (is_extension(k) || strcmp(k, "source") == 0)
            continue;
        if (s == NULL)
            rc = fail(c, a, "%s must be a value", k);
        else if (strcmp(k, "target") == 0 || strcmp(k, "uid") == 0 || strcmp(k, "gid") == 0)
            json_object_set_new(ref, k, json_string(s));
        else if (strcmp(k, "mode") == 0 && (rc = parse_mode(c, a, s, &mode)) == 0)
            json_object_set_new(ref, "mode", json_integer(mode));
        else if (rc == 0)
            rc = fail(c, a, "key \"%s\" is not supported (source, target, uid, gid, mode)", k);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        json_array_append(list, ref);
    json_decref(ref);
    return rc;
}

static int svc_refs(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    if (!json_is_array(val))
        return fail(c, a, "must be a list");
    json_t *list = array_member(spec, a->key);
    size_t i;
    json_t *item;
    json_array_foreach(val, i, item)
    {
        if (secret_ref(c, a, a->key, item, list) < 0)
            return -1;
    }
    return 0;
}

static int svc_stop_grace(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return set_duration(c, a, val, spec, "stop_grace_period_ms");
}

static int svc_init(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    bool on;
    if (parse_bool(c, a, val, &on) < 0)
        return -1;
    json_object_set_new(spec, "init", json_boolean(on));
    return 0;
}

/* ---- deploy: ---- */

static int dep_mode(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    static const char *const modes[] = {"replicated", "global", "replicated-job", "global-job",
                                        NULL};
    return set_one_of(c, a, val, spec, "mode", modes);
}

static int dep_replicas(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    int64_t n;
    if (parse_uint(c, a, val, MAX_REPLICAS, &n) < 0)
        return -1;
    json_object_set_new(spec, "replicas", json_integer(n));
    return 0;
}

/* "node.role == manager" -> "node.role==manager" */
static int add_constraint(struct conv *c, const struct at *a, const char *expr, json_t *spec)
{
    char *flat = xmalloc(strlen(expr) + 1), *o = flat;
    for (const char *p = expr; *p; p++)
        if (!isspace((unsigned char)*p))
            *o++ = *p;
    *o = '\0';
    const char *op = strstr(flat, "==") ? strstr(flat, "==") : strstr(flat, "!=");
    int rc = 0;
    bool known_prefix = strncmp(flat, "node.", 5) == 0 || strncmp(flat, "engine.labels.", 14) == 0;
    if (op == NULL || !known_prefix || op[2] == '\0')
        rc = fail(c, a,
                  "\"%s\": use node.role, node.hostname, node.id, node.platform.arch, "
                  "node.platform.os, node.labels.KEY or engine.labels.KEY with == or !=",
                  expr);
    else
        json_array_append_new(array_member(spec, "constraints"), json_string(flat));
    free(flat);
    return rc;
}

static int pl_constraints(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    if (!json_is_array(val))
        return fail(c, a, "must be a list");
    size_t i;
    json_t *e;
    json_array_foreach(val, i, e)
    {
        if (!json_is_string(e))
            return fail(c, a, "must be a list of strings");
        if (add_constraint(c, a, json_string_value(e), spec) < 0)
            return -1;
    }
    return 0;
}

/* preferences: [{spread: node.labels.KEY}] (--placement-pref spread=node.labels.KEY) */
static int pl_preferences(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    if (!json_is_array(val))
        return fail(c, a, "must be a list");
    size_t i;
    json_t *e;
    json_array_foreach(val, i, e)
    {
        const char *spread = jstr(e, "spread");
        bool only_spread = json_is_object(e) &&
                           json_object_size(e) == 1 + (json_object_get(e, COMPOSE_POS) != NULL);
        if (spread == NULL || !only_spread || strncmp(spread, "node.labels.", 12) != 0 ||
            spread[12] == '\0')
            return fail(c, a, "use a list of {spread: node.labels.KEY}");
        json_array_append_new(array_member(spec, "placement_preferences"),
                              json_pack("{s:s}", "spread", spread));
    }
    return 0;
}

static int pl_max_replicas_per_node(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    int64_t n;
    if (parse_uint(c, a, val, MAX_REPLICAS, &n) < 0)
        return -1;
    json_object_set_new(spec, "max_replicas_per_node", json_integer(n));
    return 0;
}

static const struct key_rule placement_rules[] = {
    {"constraints", pl_constraints, NULL, false},
    {"preferences", pl_preferences, NULL, false},
    {"max_replicas_per_node", pl_max_replicas_per_node, NULL, false},
    {NULL, NULL, NULL, false},
};

static int dep_placement(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return walk_child(c, a, val, placement_rules, spec);
}

/* spec.<member>.cpus = the positive number `val` (limits, reservations). */
static int set_cpus(struct conv *c, const struct at *a, json_t *val, json_t *spec,
                    const char *member_name)
{
    const char *s = want_string(c, a, val);
    double cpus;
    if (s == NULL)
        return -1;
    if (cli_parse_positive_double("cpus", s, &cpus, c->err) < 0)
        return fail_wrap(c, a);
    json_object_set_new(member(spec, member_name), "cpus", json_real(cpus));
    return 0;
}

static int lim_cpus(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return set_cpus(c, a, val, spec, "limits");
}

/* spec.<member>.memory = the positive size `val` (limits, reservations). */
static int set_memory(struct conv *c, const struct at *a, json_t *val, json_t *spec,
                      const char *member_name)
{
    const char *s = want_string(c, a, val);
    int64_t bytes;
    if (s == NULL)
        return -1;
    if (parse_size(s, &bytes, c->err) < 0)
        return fail_wrap(c, a);
    if (bytes <= 0)
        return fail(c, a, "must be positive");
    json_object_set_new(member(spec, member_name), "memory", json_integer(bytes));
    return 0;
}

static int lim_memory(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return set_memory(c, a, val, spec, "limits");
}

static int lim_pids(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    int64_t n;
    if (parse_uint(c, a, val, INT32_MAX, &n) < 0)
        return -1;
    if (n < 1)
        return fail(c, a, "at least 1");
    json_object_set_new(member(spec, "limits"), "pids", json_integer(n));
    return 0;
}

static const struct key_rule limits_rules[] = {
    {"cpus", lim_cpus, NULL, false},
    {"memory", lim_memory, NULL, false},
    {"pids", lim_pids, NULL, false},
    {NULL, NULL, NULL, false},
};

static int res_limits(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return walk_child(c, a, val, limits_rules, spec);
}

/* reservations.cpus: --reserve-cpu (cores batch jobs and other reservations
 * leave to the task). */
static int res_cpus(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return set_cpus(c, a, val, spec, "reservations");
}

/* reservations.memory: --reserve-memory. */
static int res_memory(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return set_memory(c, a, val, spec, "reservations");
}

static const struct key_rule reservations_rules[] = {
    {"cpus", res_cpus, NULL, false},
    {"memory", res_memory, NULL, false},
    {NULL, NULL, NULL, false},
};

static int res_reservations(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return walk_child(c, a, val, reservations_rules, spec);
}

static const struct key_rule resources_rules[] = {
    {"limits", res_limits, NULL, false},
    {"reservations", res_reservations, NULL, false},
    {NULL, NULL, NULL, false},
};

static int dep_resources(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return walk_child(c, a, val, resources_rules, spec);
}

static int rp_condition(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    static const char *const conds[] = {"none", "on-failure", "any", NULL};
    return set_one_of(c, a, val, spec, "restart_condition", conds);
}

static int rp_delay(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return set_duration(c, a, val, spec, "restart_delay_ms");
}

static int rp_max_attempts(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    int64_t n;
    if (parse_uint(c, a, val, 1000000, &n) < 0)
        return -1;
    json_object_set_new(spec, "restart_max_attempts", json_integer(n));
    return 0;
}

static int rp_window(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return set_duration(c, a, val, spec, "restart_window_ms");
}

static const struct key_rule restart_rules[] = {
    {"condition", rp_condition, NULL, false},
    {"delay", rp_delay, NULL, false},
    {"max_attempts", rp_max_attempts, NULL, false},
    {"window", rp_window, NULL, false},
    {NULL, NULL, NULL, false},
};

static int dep_restart_policy(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return walk_child(c, a, val, restart_rules, spec);
}

static int uc_parallelism(struct conv *c, const struct at *a, json_t *val, json_t *uc)
{
    int64_t n;
    if (parse_uint(c, a, val, MAX_REPLICAS, &n) < 0)
        return -1;
    json_object_set_new(uc, "parallelism", json_integer(n));
    return 0;
}

static int uc_delay(struct conv *c, const struct at *a, json_t *val, json_t *uc)
{
    return set_duration(c, a, val, uc, "delay_ms");
}

static int uc_failure_action(struct conv *c, const struct at *a, json_t *val, json_t *uc)
{
    static const char *const actions[] = {"pause", "continue", "rollback", NULL};
    return set_one_of(c, a, val, uc, "failure_action", actions);
}

static int uc_monitor(struct conv *c, const struct at *a, json_t *val, json_t *uc)
{
    return set_duration(c, a, val, uc, "monitor_ms");
}

static int uc_max_failure_ratio(struct conv *c, const struct at *a, json_t *val, json_t *uc)
{
    const char *s = want_string(c, a, val);
    if (s == NULL)
        return -1;
    double ratio;
    if (cli_parse_ratio(a->key, s, &ratio, c->err) < 0)
        return fail(c, a, "\"%s\" is not a number from 0 to 1", s);
    json_object_set_new(uc, "max_failure_ratio", json_real(ratio));
    return 0;
}

static int uc_order(struct conv *c, const struct at *a, json_t *val, json_t *uc)
{
    static const char *const orders[] = {"stop-first", "start-first", NULL};
    return set_one_of(c, a, val, uc, "order", orders);
}

static const struct key_rule update_rules[] = {
    {"parallelism", uc_parallelism, NULL, false},
    {"delay", uc_delay, NULL, false},
    {"failure_action", uc_failure_action, NULL, false},
    {"monitor", uc_monitor, NULL, false},
    {"max_failure_ratio", uc_max_failure_ratio, NULL, false},
    {"order", uc_order, NULL, false},
    {NULL, NULL, NULL, false},
};

static int dep_update_config(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return walk_child(c, a, val, update_rules, member(spec, "update_config"));
}

/* A rollback is not rolled back: its failure_action is pause or continue. */
static int rc_failure_action(struct conv *c, const struct at *a, json_t *val, json_t *rc)
{
    static const char *const actions[] = {"pause", "continue", NULL};
    return set_one_of(c, a, val, rc, "failure_action", actions);
}

static const struct key_rule rollback_rules[] = {
    {"parallelism", uc_parallelism, NULL, false},
    {"delay", uc_delay, NULL, false},
    {"failure_action", rc_failure_action, NULL, false},
    {"monitor", uc_monitor, NULL, false},
    {"max_failure_ratio", uc_max_failure_ratio, NULL, false},
    {"order", uc_order, NULL, false},
    {NULL, NULL, NULL, false},
};

static int dep_rollback_config(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return walk_child(c, a, val, rollback_rules, member(spec, "rollback_config"));
}

/* A mapping or a list of KEY=VALUE (labels, sysctls) into the object `dest`. */
static int key_values(struct conv *c, const struct at *a, json_t *val, json_t *dest)
{
    json_t *map = json_is_array(val) ? json_object() : json_incref(val);
    if (json_is_array(val)) {
        size_t i;
        json_t *e;
        json_array_foreach(val, i, e)
        {
            const char *s = json_string_value(e);
            const char *eq = s ? strchr(s, '=') : NULL;
            char *k = eq ? strndup(s, (size_t)(eq - s)) : xstrdup(s ? s : "");
            json_object_set_new(map, k, json_string(eq ? eq + 1 : ""));
            free(k);
        }
    }
    int rc = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_is_object(map) ? map : NULL, k, v)
    {
        if (strcmp(k, COMPOSE_POS) == 0)
            continue;
        if (k[0] == '\0' || !(json_is_string(v) || json_is_null(v))) {
            rc = fail(c, a, "must be KEY: VALUE strings");
            break;
        }
        json_object_set_new(dest, k, json_string(json_is_null(v) ? "" : json_string_value(v)));
    }
    if (!json_is_object(map))
        rc = fail(c, a, "must be a mapping or a list of KEY=VALUE");
    json_decref(map);
    return rc;
}

/* deploy.labels shoal.schedule: CRON -> the replicated job's schedule;
 * shoal.max-concurrent: N -> a job's max_concurrent (Compose has no key) */
#define SCHEDULE_LABEL "shoal.schedule"
#define MAX_CONCURRENT_LABEL "shoal.max-concurrent"

static int dep_labels(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    json_t *labels = member(spec, "labels");
    if (key_values(c, a, val, labels) < 0)
        return -1;
    json_t *schedule = json_object_get(labels, SCHEDULE_LABEL);
    if (schedule) /* the daemon checks the expression */
        json_object_set(spec, "schedule", schedule);
    json_t *max = json_object_get(labels, MAX_CONCURRENT_LABEL);
    int64_t n;
    if (max && parse_uint(c, a, max, MAX_REPLICAS, &n) < 0)
        return -1;
    if (max && n < 1)
        return fail(c, a, MAX_CONCURRENT_LABEL ": at least 1");
    if (max)
        json_object_set_new(spec, "max_concurrent", json_integer(n));
    return 0;
}

static int dep_endpoint_mode(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    const char *s = want_string(c, a, val);
    if (s == NULL)
        return -1;
    return strcmp(s, "vip") == 0 ? 0 : fail(c, a, "only vip is supported");
}

static const struct key_rule deploy_rules[] = {
    {"mode", dep_mode, NULL, false},
    {"replicas", dep_replicas, NULL, false},
    {"placement", dep_placement, NULL, false},
    {"resources", dep_resources, NULL, false},
    {"restart_policy", dep_restart_policy, NULL, false},
    {"update_config", dep_update_config, NULL, false},
    {"rollback_config", dep_rollback_config, NULL, false},
    {"labels", dep_labels, NULL, false},
    {"endpoint_mode", dep_endpoint_mode, NULL, false},
    {NULL, NULL, NULL, false},
};

static int svc_deploy(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return walk_child(c, a, val, deploy_rules, spec);
}

/* ---- container settings (as service create's flags) ---- */

static int svc_entrypoint(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    json_t *words = json_array();
    json_object_set_new(spec, "entrypoint", words);
    return command_words(c, a, val, words);
}

/* hostname, user, working_dir: checked as --hostname, --user, --workdir. */
static int svc_container_flag(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    const char *s = want_string(c, a, val);
    if (s == NULL)
        return -1;
    const char *flag = strcmp(a->key, "working_dir") == 0 ? "workdir" : a->key;
    if (cli_container_flag(spec, flag, s, c->err) < 0)
        return fail_wrap(c, a);
    return 0;
}

static int svc_read_only(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    bool on;
    if (parse_bool(c, a, val, &on) < 0)
        return -1;
    if (on)
        json_object_set_new(spec, "read_only", json_true());
    return 0;
}

static int svc_stop_signal(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    const char *s = want_string(c, a, val);
    if (s == NULL)
        return -1;
    if (container_signal_number(s) < 0)
        return fail(c, a, "\"%s\" is not a signal name or number (SIGINT, TERM, 15)", s);
    json_object_set_new(spec, "stop_signal", json_string(s));
    return 0;
}

typedef int (*value_adder)(json_t *obj, const char *key, const char *flag, const char *arg,
                           struct serr *err);

/* A string or a list of strings, each given to `add` (spec[field]). */
static int each_string(struct conv *c, const struct at *a, json_t *val, json_t *spec,
                       const char *field, value_adder add)
{
    json_t *list = json_is_string(val) ? json_pack("[O]", val) : json_incref(val);
    int rc = json_is_array(list) ? 0 : fail(c, a, "must be a string or a list of strings");
    size_t i;
    json_t *e;
    json_array_foreach(rc == 0 ? list : NULL, i, e)
    {
        if (!json_is_string(e))
            rc = fail(c, a, "must be a list of strings");
        else if (add(spec, field, a->key, json_string_value(e), c->err) < 0)
            rc = fail_wrap(c, a);
        if (rc < 0)
            break;
    }
    json_decref(list);
    return rc;
}

static int svc_caps(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return each_string(c, a, val, spec, a->key, cli_add_caps); /* cap_add, cap_drop */
}

static int svc_dns(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return each_string(c, a, val, spec, "dns", cli_add_dns);
}

static int svc_labels(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return key_values(c, a, val, member(spec, "container_labels"));
}

static int svc_sysctls(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    json_t *map = json_object();
    int rc = key_values(c, a, val, map);
    const char *k;
    json_t *v;
    json_object_foreach(rc == 0 ? map : NULL, k, v)
    {
        char *text = xasprintf("%s=%s", k, json_string_value(v));
        rc = cli_add_sysctl(spec, "sysctls", "sysctls", text, c->err);
        free(text);
        if (rc < 0) {
            rc = fail_wrap(c, a);
            break;
        }
    }
    json_decref(map);
    return rc;
}

/* NAME: N or NAME: {soft: N, hard: M} -> "NAME=N:M" (-2: -1, unlimited, given) */
static int ulimit_text(json_t *v, char **text, const char *name)
{
    const char *soft = json_string_value(v), *hard = NULL;
    if (json_is_object(v)) {
        soft = jstr(v, "soft");
        hard = jstr(v, "hard");
        if (soft == NULL || hard == NULL ||
            json_object_size(v) != 2 + (json_object_get(v, COMPOSE_POS) != NULL))
            return -1;
    }
    if (soft == NULL)
        return -1;
    if (strcmp(soft, "-1") == 0 || (hard && strcmp(hard, "-1") == 0))
        return -2;
    *text = hard ? xasprintf("%s=%s:%s", name, soft, hard) : xasprintf("%s=%s", name, soft);
    return 0;
}

static int svc_ulimits(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    if (want_object(c, a, val) < 0)
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach(val, k, v)
    {
        if (strcmp(k, COMPOSE_POS) == 0)
            continue;
        char *text = NULL;
        int rc = ulimit_text(v, &text, k);
        if (rc == -2)
            return fail(c, a, "%s: -1 (unlimited) is not supported by shoal", k);
        if (rc < 0)
            return fail(c, a, "%s: give a number or {soft: N, hard: M}", k);
        rc = cli_parse_ulimit(text, member(spec, "ulimits"), c->err);
        free(text);
        if (rc < 0)
            return fail_wrap(c, a);
    }
    return 0;
}

/* tmpfs: a path or a list of paths (type=tmpfs mounts) */
static int add_tmpfs(json_t *spec, const char *key, const char *flag, const char *path,
                     struct serr *err)
{
    (void)flag;
    char *text = xasprintf("type=tmpfs,dst=%s", path);
    int rc = strchr(path, ',') ? serr_set(err, SERR_INVALID, "\"%s\": a path", path)
                               : append_mount(array_member(spec, key), text, err);
    free(text);
    return rc;
}

static int svc_tmpfs(struct conv *c, const struct at *a, json_t *val, json_t *spec)
{
    return each_string(c, a, val, spec, "mounts", add_tmpfs);
}

/* Keys with no handler: ignored with a warning, or refused. */
#define IGNORED_WHY "ignored: not used by stacks (as Docker)"

static const struct key_rule service_rules[] = {
    {"image", svc_image, NULL, false},
    {"command", svc_words, NULL, false},
    {"entrypoint", svc_entrypoint, NULL, false},
    {"environment", svc_environment, NULL, false},
    {"env_file", svc_env_file, NULL, false},
    {"ports", svc_ports, NULL, false},
    {"volumes", svc_volumes, NULL, false},
    {"networks", svc_networks, NULL, false},
    {"network_mode", svc_network_mode, NULL, false},
    {"healthcheck", svc_healthcheck, NULL, false},
    {"secrets", svc_refs, NULL, false},
    {"configs", svc_refs, NULL, false},
    {"deploy", svc_deploy, NULL, false},
    {"stop_grace_period", svc_stop_grace, NULL, false},
    {"init", svc_init, NULL, false},
    {"hostname", svc_container_flag, NULL, false},
    {"user", svc_container_flag, NULL, false},
    {"working_dir", svc_container_flag, NULL, false},
    {"read_only", svc_read_only, NULL, false},
    {"stop_signal", svc_stop_signal, NULL, false},
    {"cap_add", svc_caps, NULL, false},
    {"cap_drop", svc_caps, NULL, false},
    {"dns", svc_dns, NULL, false},
    {"sysctls", svc_sysctls, NULL, false},
    {"ulimits", svc_ulimits, NULL, false},
    {"tmpfs", svc_tmpfs, NULL, false},
    {"labels", svc_labels, NULL, false},
    /* what `docker stack deploy` ignores ("Ignoring unsupported options") */
    {"build", NULL, IGNORED_WHY, true},
    {"cgroupns_mode", NULL, IGNORED_WHY, true},
    {"cgroup_parent", NULL, IGNORED_WHY, true},
    {"devices", NULL, IGNORED_WHY, true},
    {"domainname", NULL, IGNORED_WHY, true},
    {"external_links", NULL, IGNORED_WHY, true},
    {"ipc", NULL, IGNORED_WHY, true},
    {"links", NULL, IGNORED_WHY, true},
    {"mac_address", NULL, IGNORED_WHY, true},
    {"pid", NULL, IGNORED_WHY, true},
    {"privileged", NULL, IGNORED_WHY, true},
    {"restart", NULL, IGNORED_WHY, true},
    {"security_opt", NULL, IGNORED_WHY, true},
    {"shm_size", NULL, IGNORED_WHY, true},
    {"userns_mode", NULL, IGNORED_WHY, true},
    {"container_name", NULL, IGNORED_WHY, true},
    {"depends_on", NULL, IGNORED_WHY, true},
    {"expose", NULL, IGNORED_WHY, true},
    /* what Swarm runs and shoal does not (yet) */
    {"credential_spec", NULL, NULL, false},
    {"dns_opt", NULL, NULL, false},
    {"dns_search", NULL, NULL, false},
    {"extra_hosts", NULL, NULL, false},
    {"isolation", NULL, NULL, false},
    {"logging", NULL, NULL, false},
    {"stdin_open", NULL, NULL, false},
    {"tty", NULL, NULL, false},
    {NULL, NULL, NULL, false},
};

/* command -> args; env_file then environment -> env; network. */
static void finish_service(struct conv *c, json_t *spec)
{
    json_t *scratch = member(spec, SCRATCH);
    json_t *args = json_array();
    json_array_extend(args, array_member(scratch, "command"));
    if (json_array_size(args) > 0)
        json_object_set(spec, "args", args);
    json_decref(args);
    json_t *env = json_array();
    json_array_extend(env, array_member(scratch, "env_file"));
    size_t i;
    json_t *e;
    json_array_foreach(array_member(scratch, "environment"), i, e)
    {
        const char *line = json_string_value(e);
        size_t klen = strcspn(line, "=");
        for (size_t j = 0; j < json_array_size(env); j++)
            if (strncmp(json_string_value(json_array_get(env, j)), line, klen + 1) == 0) {
                json_array_remove(env, j);
                break;
            }
        json_array_append(env, e);
    }
    if (json_array_size(env) > 0)
        json_object_set(spec, "env", env);
    json_decref(env);
    if (json_object_get(spec, "network") == NULL) {
        const char *net = jstr(scratch, "network");
        char *name = object_name(c, "networks", net ? net : "default");
        json_object_set_new(spec, "network", json_string(name));
        free(name);
    }
    json_object_del(spec, SCRATCH);
}

static int convert_service(struct conv *c, json_t *services, const char *key, json_t *def)
{
    struct at a = {services, key, "services"};
    if (want_object(c, &a, def) < 0)
        return -1;
    char *name = xasprintf("%s_%s", c->stack, key);
    json_t *spec =
        json_pack("{s:s, s:{s:s}}", "name", name, "labels", COMPOSE_NAMESPACE_LABEL, c->stack);
    free(name);
    char *path = xasprintf("services.%s", key);
    int rc = walk(c, def, path, service_rules, spec);
    free(path);
    if (rc == 0 && json_object_get(spec, "image") == NULL)
        rc = fail(c, &a, "needs an image");
    if (rc == 0 && strlen(c->stack) + 1 + strlen(key) > 63)
        rc = fail(c, &a, "the service's name %s_%s is longer than 63 characters", c->stack, key);
    /* the stack's own label, whatever deploy.labels say */
    json_object_set_new(member(spec, "labels"), COMPOSE_NAMESPACE_LABEL, json_string(c->stack));
    const char *mode = jstr_or(spec, "mode", "replicated");
    if (rc == 0 && strncmp(mode, "global", 6) == 0 && json_object_get(spec, "replicas"))
        rc = fail(c, &a, "deploy.replicas can only be used with replicated mode");
    if (rc == 0 && json_object_get(spec, "schedule") && strcmp(mode, "replicated-job") != 0)
        rc = fail(c, &a, "deploy.labels." SCHEDULE_LABEL " needs deploy.mode: replicated-job");
    if (rc == 0 && json_object_get(spec, "max_concurrent") && strstr(mode, "-job") == NULL)
        rc = fail(c, &a,
                  "deploy.labels." MAX_CONCURRENT_LABEL " needs deploy.mode: replicated-job or "
                  "global-job");
    if (rc == 0 && json_object_get(spec, "network") &&
        json_object_get(member(spec, SCRATCH), "network"))
        rc = fail(c, &a, "network_mode: host and networks exclude each other");
    if (rc < 0) {
        json_decref(spec);
        return -1;
    }
    finish_service(c, spec);
    json_array_append_new(json_object_get(c->plan, "services"), spec);
    return 0;
}

/* ---- top-level objects ---- */

static bool plan_has(json_t *list, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        if (strcmp(jstr(o, "name"), name) == 0)
            return true;
    }
    return false;
}

/* Checks the keys of one top-level definition against `allowed`. */
static int check_def(struct conv *c, const char *section, const char *key, json_t *def,
                     const char *const *allowed)
{
    struct at a = {json_object_get(c->doc, section), key, section};
    if (json_is_null(def))
        return 0;
    if (want_object(c, &a, def) < 0)
        return -1;
    const char *k;
    json_t *v;
    char *path = xasprintf("%s.%s", section, key);
    int rc = 0;
    json_object_foreach(def, k, v)
    {
        if (is_extension(k))
            continue;
        struct at ka = {def, k, path};
        if (!str_in_list(k, allowed)) {
            rc = fail(c, &ka, "not supported by shoal");
            break;
        }
        if (strcmp(k, "external") == 0 && !json_is_object(v)) {
            bool b;
            if ((rc = parse_bool(c, &ka, v, &b)) < 0)
                break;
        }
    }
    free(path);
    return rc;
}

static int network_def(struct conv *c, const char *key, json_t *def)
{
    static const char *const allowed[] = {"driver", "external", "name", "attachable", "ipam", NULL};
    if (check_def(c, "networks", key, def, allowed) < 0)
        return -1;
    char *path = xasprintf("networks.%s", key);
    struct at a = {def, "driver", path}, ia = {def, "ipam", path};
    const char *driver = jstr(def, "driver");
    json_t *ipam = json_object_get(def, "ipam");
    json_t *cfg = json_object_get(ipam, "config");
    const char *subnet = jstr(json_array_get(cfg, 0), "subnet");
    int rc = 0;
    if (driver && strcmp(driver, "overlay") != 0)
        rc = fail(c, &a, "only the overlay driver (shoal networks span the cluster)");
    else if (ipam && (json_object_size(ipam) != 2 || json_array_size(cfg) != 1 || subnet == NULL ||
                      json_object_size(json_array_get(cfg, 0)) != 2))
        rc = fail(c, &ia, "only ipam: {config: [{subnet: CIDR}]} is supported");
    free(path);
    if (rc < 0 || is_external(def))
        return rc;
    char *name = object_name(c, "networks", key);
    json_t *net = json_pack("{s:s}", "name", name);
    free(name);
    if (subnet)
        json_object_set_new(net, "subnet", json_string(subnet));
    json_array_append_new(json_object_get(c->plan, "networks"), net);
    return 0;
}

/* The backup policy of a volume's labels (COMPOSE_BACKUP_LABEL...) into
 * vol["backup"], as `volume create --backup --keep --hook` sends it. */
static int volume_backup(struct conv *c, const struct at *a, json_t *labels, json_t *vol)
{
    const char *schedule = jstr(labels, COMPOSE_BACKUP_LABEL);
    const char *keep = jstr(labels, COMPOSE_BACKUP_KEEP_LABEL);
    const char *hook = jstr(labels, COMPOSE_BACKUP_HOOK_LABEL);
    if (schedule == NULL) {
        if (keep || hook)
            return fail(c, a, "%s and %s need %s: SCHEDULE", COMPOSE_BACKUP_KEEP_LABEL,
                        COMPOSE_BACKUP_HOOK_LABEL, COMPOSE_BACKUP_LABEL);
        return 0;
    }
    json_t *backup = json_pack("{s:s}", "schedule", schedule);
    json_object_set_new(vol, "backup", backup);
    if (hook)
        json_object_set_new(backup, "hook", json_string(hook));
    if (keep == NULL)
        return 0;
    char *end;
    long n = strtol(keep, &end, 10);
    if (end == keep || *end != '\0' || n < 1 || n > 1000)
        return fail(c, a, "%s: \"%s\" is not a number of backups from 1 to 1000",
                    COMPOSE_BACKUP_KEEP_LABEL, keep);
    json_object_set_new(backup, "keep", json_integer(n));
    return 0;
}

/* A volume with labels is made by the stack (with them, and the backup
 * policy they give) before its services; one without is made by the first
 * service mounting it, as before. */
static int volume_def(struct conv *c, const char *key, json_t *def)
{
    static const char *const allowed[] = {"driver", "external", "name", "labels", NULL};
    if (check_def(c, "volumes", key, def, allowed) < 0)
        return -1;
    const char *driver = jstr(def, "driver");
    char *path = xasprintf("volumes.%s", key);
    struct at a = {def, "driver", path}, la = {def, "labels", path};
    json_t *labels_val = json_object_get(def, "labels");
    int rc = driver && strcmp(driver, "local") != 0 ? fail(c, &a, "only the local driver") : 0;
    if (rc == 0 && labels_val && !is_external(def)) {
        char *name = object_name(c, "volumes", key);
        json_t *vol = json_pack("{s:s}", "name", name);
        free(name);
        rc = key_values(c, &la, labels_val, member(vol, "labels"));
        if (rc == 0)
            rc = volume_backup(c, &la, json_object_get(vol, "labels"), vol);
        if (rc == 0) {
            json_object_set_new(json_object_get(vol, "labels"), COMPOSE_NAMESPACE_LABEL,
                                json_string(c->stack));
            json_array_append(json_object_get(c->plan, "volumes"), vol);
        }
        json_decref(vol);
    }
    free(path);
    return rc;
}

/* secrets and configs: file: (or content: for configs), or external. */
static int data_def(struct conv *c, const char *section, const char *key, json_t *def)
{
    static const char *const secret_keys[] = {"file", "external", "name", NULL};
    static const char *const config_keys[] = {"file", "content", "external", "name", NULL};
    bool config = strcmp(section, "configs") == 0;
    if (check_def(c, section, key, def, config ? config_keys : secret_keys) < 0)
        return -1;
    struct at a = {json_object_get(c->doc, section), key, section};
    if (is_external(def))
        return 0;
    const char *file = jstr(def, "file");
    const char *content = jstr(def, "content");
    if ((file == NULL) == (content == NULL))
        return fail(c, &a, "needs file:%s or external: true", config ? " (or content:)" : "");
    char *name = object_name(c, section, key);
    json_t *obj = json_pack("{s:s}", "name", name);
    free(name);
    if (file) {
        char *path = abs_path(c, file);
        json_object_set_new(obj, "file", json_string(path));
        free(path);
    } else {
        json_object_set_new(obj, "data", json_string(content));
    }
    json_array_append_new(json_object_get(c->plan, section), obj);
    return 0;
}

/* Only the networks, secrets, configs and volumes that some service uses. */
static void keep_used(json_t *plan)
{
    static const char *const sections[][2] = {{"networks", "network"},
                                              {"secrets", "secrets"},
                                              {"configs", "configs"},
                                              {"volumes", "mounts"}};
    for (size_t s = 0; s < 4; s++) {
        json_t *list = json_object_get(plan, sections[s][0]);
        for (size_t i = json_array_size(list); i-- > 0;) {
            const char *name = jstr(json_array_get(list, i), "name");
            bool used = false;
            size_t j;
            json_t *spec;
            json_array_foreach(json_object_get(plan, "services"), j, spec)
            {
                json_t *v = json_object_get(spec, sections[s][1]);
                if (json_is_string(v))
                    used |= strcmp(json_string_value(v), name) == 0;
                size_t k;
                json_t *ref;
                json_array_foreach(json_is_array(v) ? v : NULL, k, ref)
                {
                    used |= jstr_is(ref, "source", name);
                }
            }
            if (!used)
                json_array_remove(list, i);
        }
    }
}

static int each_def(struct conv *c, const char *section,
                    int (*fn)(struct conv *c, const char *key, json_t *def))
{
    json_t *defs = json_object_get(c->doc, section);
    struct at a = {c->doc, section, ""};
    if (defs == NULL || json_is_null(defs))
        return 0;
    if (want_object(c, &a, defs) < 0)
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach(defs, k, v)
    {
        if (!is_extension(k) && fn(c, k, v) < 0)
            return -1;
    }
    return 0;
}

static int secret_def(struct conv *c, const char *key, json_t *def)
{
    return data_def(c, "secrets", key, def);
}
static int config_def(struct conv *c, const char *key, json_t *def)
{
    return data_def(c, "configs", key, def);
}

static int top_ignored(struct conv *c, const struct at *a, json_t *val, json_t *out)
{
    return 0; /* version: and name: say nothing shoal needs */
}

static const struct key_rule top_rules[] = {
    {"version", top_ignored, NULL, false},  {"name", top_ignored, NULL, false},
    {"services", top_ignored, NULL, false}, {"networks", top_ignored, NULL, false},
    {"volumes", top_ignored, NULL, false},  {"secrets", top_ignored, NULL, false},
    {"configs", top_ignored, NULL, false},  {NULL, NULL, NULL, false},
};

static int convert_all(struct conv *c)
{
    if (walk(c, c->doc, "", top_rules, NULL) < 0 || each_def(c, "networks", network_def) < 0 ||
        each_def(c, "volumes", volume_def) < 0 || each_def(c, "secrets", secret_def) < 0 ||
        each_def(c, "configs", config_def) < 0)
        return -1;
    json_t *services = json_object_get(c->doc, "services");
    struct at a = {c->doc, "services", ""};
    if (!json_is_object(services) || json_object_size(services) <= 1)
        return serr_set(c->err, SERR_INVALID, "%s: no services", c->stack);
    if (want_object(c, &a, services) < 0)
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach(services, k, v)
    {
        if (!is_extension(k) && convert_service(c, services, k, v) < 0)
            return -1;
    }
    /* the default network, when a service is on it */
    char *def = xasprintf("%s_default", c->stack);
    json_t *nets = json_object_get(c->plan, "networks");
    if (!plan_has(nets, def) && top_entry(c, "networks", "default") == NULL)
        json_array_append_new(nets, json_pack("{s:s}", "name", def));
    free(def);
    keep_used(c->plan);
    return 0;
}

int compose_check_stack_name(const char *name, struct serr *err)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n <= 40 && isalnum((unsigned char)name[0]);
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || strchr("-._", name[i]) != NULL;
    if (!ok)
        return serr_set(err, SERR_INVALID,
                        "invalid stack name \"%s\": letters, digits, '-', '.' and '_' after a "
                        "letter or digit, at most 40",
                        name);
    return 0;
}

int compose_convert(json_t *doc, const char *stack, const char *workdir, json_t **plan,
                    struct serr *err)
{
    if (compose_check_stack_name(stack, err) < 0)
        return -1;
    struct conv c = {doc, stack, workdir, NULL, NULL, err};
    c.plan = json_pack("{s:[], s:[], s:[], s:[], s:[], s:[]}", "networks", "secrets", "configs",
                       "volumes", "services", "warnings");
    c.warnings = json_object_get(c.plan, "warnings");
    if (convert_all(&c) < 0) {
        json_decref(c.plan);
        return -1;
    }
    *plan = c.plan;
    return 0;
}
