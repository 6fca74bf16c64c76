/* Deploying a stack again: the service update patch (docs/api.md) that turns
 * a running service's spec into the Compose file's. Pure; unit-tested. */
#include <stdio.h>
#include <string.h>

#include "base/json_get.h"
#include "cli/compose.h"
#include "model/cron.h"
#include "model/imageref.h"

/* "busybox" -> "busybox:latest"; the digest the leader pinned a pulled tag
 * to ("nginx:1.25@sha256:...") is dropped when the file names a tag: the
 * same tag deployed again is no change. */
static void normalize_image(json_t *spec, bool drop_digest)
{
    const char *image = jstr(spec, "image");
    if (image == NULL)
        return;
    char tag[512], norm[512];
    snprintf(tag, sizeof(tag), "%s", image);
    char *at = strchr(tag, '@');
    if (at && !drop_digest)
        return; /* compared as written */
    if (at && at != tag)
        *at = '\0';
    if (image_normalize_ref(tag, norm, sizeof(norm), NULL) == 0)
        json_object_set_new(spec, "image", json_string(norm));
}

/* The daemon's defaults (manager/service.c), so that a spec compares equal
 * to the one it stored. */
static json_t *with_defaults(json_t *spec, bool drop_digest)
{
    json_t *s = json_deep_copy(spec);
    static const char *const not_compared[] = {"registry_auth", "force_update"};
    for (size_t i = 0; i < 2; i++)
        json_object_del(s, not_compared[i]);
    jset_default(s, "mode", json_string("replicated"));
    bool job = strstr(jstr(s, "mode"), "-job") != NULL;
    if (strncmp(jstr(s, "mode"), "replicated", 10) == 0)
        jset_default(s, "replicas", json_integer(1));
    if (job) /* a job runs once per run */
        jset_default(s, "restart_condition", json_string("none"));
    if (json_object_get(s, "schedule")) {
        cron_spec_split_zone(s);
        jset_default(s, "schedule_tz", json_string("UTC"));
        jset_default(s, "schedule_overlap", json_string("skip"));
    }
    static const char *const lists[] = {"env",  "mounts",  "constraints", "ports",
                                        "args", "secrets", "configs"};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        jset_default(s, lists[i], json_array());
    jset_default(s, "restart_condition", json_string("any"));
    jset_default(s, "restart_delay_ms", json_integer(1000));
    jset_default(s, "stop_grace_period_ms", json_integer(10000));
    jset_default(s, "init", json_false());
    jset_default(s, "limits", json_object());
    jset_default(s, "reservations", json_object());
    jset_default(s, "update_config", json_object());
    json_t *uc = json_object_get(s, "update_config");
    jset_default(uc, "parallelism", json_integer(1));
    jset_default(uc, "delay_ms", json_integer(0));
    json_t *rc = json_object_get(s, "rollback_config"); /* as the manager normalises it */
    if (rc) {
        jset_default(rc, "parallelism", json_integer(1));
        jset_default(rc, "delay_ms", json_integer(0));
    }
    json_t *hc = json_object_get(s, "healthcheck");
    if (json_is_object(hc)) {
        jset_default(hc, "interval_ms", json_integer(30000));
        jset_default(hc, "timeout_ms", json_integer(30000));
        jset_default(hc, "retries", json_integer(3));
        jset_default(hc, "start_period_ms", json_integer(0));
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s, "mounts"), i, v) jset_default(v, "readonly", json_false());
    json_array_foreach(json_object_get(s, "ports"), i, v)
    {
        jset_default(v, "protocol", json_string("tcp"));
        jset_default(v, "mode", json_string("ingress"));
    }
    static const char *const refs[][2] = {{"secrets", "/run/secrets/"}, {"configs", "/"}};
    for (int r = 0; r < 2; r++) {
        json_array_foreach(json_object_get(s, refs[r][0]), i, v)
        {
            json_object_del(v, "id");
            const char *target = jstr(v, "target");
            if (target && target[0] != '/') {
                char abs[512];
                snprintf(abs, sizeof(abs), "%s%s", refs[r][1], target);
                json_object_set_new(v, "target", json_string(abs));
            }
            jset_default(v, "uid", json_string("0"));
            jset_default(v, "gid", json_string("0"));
            jset_default(v, "mode", json_integer(0444));
        }
    }
    normalize_image(s, drop_digest);
    return s;
}

static json_t *member_array(json_t *obj, const char *key)
{
    json_t *m = json_object_get(obj, key);
    if (m == NULL)
        json_object_set_new(obj, key, m = json_array());
    return m;
}

static bool same(json_t *a, json_t *b, const char *key)
{
    json_t *x = json_object_get(a, key), *y = json_object_get(b, key);
    return x == y || json_equal(x, y); /* json_equal(NULL, NULL) is false */
}

/* Fields a patch cannot change: the service is replaced. */
static const char *unpatchable(json_t *old, json_t *new)
{
    static const char *const keys[] = {"mode",
                                       "mounts",
                                       "restart_condition",
                                       "restart_delay_ms",
                                       "stop_grace_period_ms",
                                       "init",
                                       "network",
                                       "labels",
                                       "schedule",
                                       "schedule_tz",
                                       "schedule_overlap",
                                       "max_concurrent",
                                       "hostname",
                                       "user",
                                       "workdir",
                                       "entrypoint",
                                       "container_labels",
                                       "read_only",
                                       "stop_signal",
                                       "cap_add",
                                       "cap_drop",
                                       "dns",
                                       "sysctls",
                                       "ulimits",
                                       "placement_preferences",
                                       "max_replicas_per_node",
                                       "restart_max_attempts",
                                       "restart_window_ms",
                                       NULL};
    for (int i = 0; keys[i]; i++)
        if (!same(old, new, keys[i]))
            return keys[i];
    /* limits merge: one that is gone cannot be removed */
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(old, "limits"), k, v)
    {
        if (json_object_get(json_object_get(new, "limits"), k) == NULL)
            return "limits";
    }
    return NULL;
}

/* name list for publish_rm / secrets_rm: "8080/tcp" or the sources, once each. */
static json_t *rm_keys(json_t *list, bool ports)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        char key[300];
        if (ports)
            snprintf(key, sizeof(key), "%lld/%s",
                     (long long)json_integer_value(json_object_get(v, "published")),
                     jstr(v, "protocol"));
        else
            snprintf(key, sizeof(key), "%s", jstr(v, "source"));
        bool seen = false;
        size_t j;
        json_t *w;
        json_array_foreach(out, j, w) seen |= strcmp(json_string_value(w), key) == 0;
        if (!seen)
            json_array_append_new(out, json_string(key));
    }
    return out;
}

/* Whether `s` is in the list of strings. */
static bool has_string(json_t *list, json_t *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_equal(v, s))
            return true;
    }
    return false;
}

static void diff_constraints(json_t *old, json_t *new, json_t *patch)
{
    json_t *o = json_object_get(old, "constraints"), *n = json_object_get(new, "constraints");
    size_t i;
    json_t *v;
    json_array_foreach(o, i, v)
    {
        if (!has_string(n, v))
            json_array_append(member_array(patch, "constraints_rm"), v);
    }
    json_array_foreach(n, i, v)
    {
        if (!has_string(o, v))
            json_array_append(member_array(patch, "constraints_add"), v);
    }
}

static void diff_lists(json_t *old, json_t *new, json_t *patch)
{
    if (!same(old, new, "env")) {
        json_t *rm = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(old, "env"), i, v)
        {
            const char *e = json_string_value(v);
            json_array_append_new(rm, json_stringn(e, strcspn(e, "=")));
        }
        json_object_set_new(patch, "env_rm", rm);
        json_object_set(patch, "env_add", json_object_get(new, "env"));
    }
    if (!same(old, new, "ports")) {
        json_object_set_new(patch, "publish_rm", rm_keys(json_object_get(old, "ports"), true));
        json_object_set(patch, "publish_add", json_object_get(new, "ports"));
    }
    static const char *const refs[] = {"secrets", "configs"};
    for (int r = 0; r < 2; r++) {
        if (same(old, new, refs[r]))
            continue;
        char rm[16], add[16];
        snprintf(rm, sizeof(rm), "%s_rm", refs[r]);
        snprintf(add, sizeof(add), "%s_add", refs[r]);
        json_object_set_new(patch, rm, rm_keys(json_object_get(old, refs[r]), false));
        json_object_set(patch, add, json_object_get(new, refs[r]));
    }
    diff_constraints(old, new, patch);
}

static void diff_values(json_t *old, json_t *new, json_t *patch)
{
    static const char *const keys[] = {"image",  "args",         "replicas",        "update_config",
                                       "limits", "reservations", "rollback_config", NULL};
    for (int i = 0; keys[i]; i++)
        if (!same(old, new, keys[i]) && json_object_get(new, keys[i]))
            json_object_set(patch, keys[i], json_object_get(new, keys[i]));
    if (!same(old, new, "healthcheck")) {
        json_t *hc = json_object_get(new, "healthcheck");
        json_object_set_new(patch, "healthcheck", hc ? json_incref(hc) : json_null());
    }
}

static json_t *port_published(json_t *ports, json_int_t published, const char *protocol)
{
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p)
    {
        if (jint(p, "published", 0) == published && strcmp(jstr(p, "protocol"), protocol) == 0)
            return p;
    }
    return NULL;
}

/* A port given with its target only keeps the published port the manager
 * chose for it (the same target and protocol), else each deploy would
 * publish it again on another. */
static void keep_chosen_ports(json_t *old, json_t *new)
{
    json_t *new_ports = json_object_get(new, "ports");
    size_t i, j;
    json_t *p, *q;
    json_array_foreach(new_ports, i, p)
    {
        if (json_object_get(p, "published"))
            continue;
        json_array_foreach(json_object_get(old, "ports"), j, q)
        {
            json_int_t published = jint(q, "published", 0);
            if (jint(q, "target", 0) == jint(p, "target", 0) &&
                strcmp(jstr(q, "protocol"), jstr(p, "protocol")) == 0 &&
                port_published(new_ports, published, jstr(q, "protocol")) == NULL) {
                json_object_set_new(p, "published", json_integer(published));
                break;
            }
        }
    }
}

int stack_service_patch(json_t *old_spec, json_t *new_spec, json_t **patch,
                        const char **replace_why)
{
    const char *image = jstr(new_spec, "image");
    bool drop_digest = image && strchr(image, '@') == NULL;
    json_t *old = with_defaults(old_spec, drop_digest), *new = with_defaults(new_spec, drop_digest);
    keep_chosen_ports(old, new);
    *replace_why = unpatchable(old, new);
    *patch = json_object();
    if (*replace_why == NULL) {
        diff_values(old, new, *patch);
        diff_lists(old, new, *patch);
    }
    json_decref(old);
    json_decref(new);
    return *replace_why ? 1 : 0;
}
