/* The fields of a service spec that shape its tasks' containers beyond
 * image, args and env: hostname, user, workdir, entrypoint, labels and
 * container labels (docs/api.md). Checked here; copied into each task's
 * container spec by task_container_spec. */
#include "manager/service_container.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "base/json_get.h"
#include "base/util.h"
#include "model/user.h"
#include "model/container_opts.h"

#define MAX_LABELS 256
#define MAX_LABEL_LEN 4096

/* RFC 1123: dot-separated labels of letters, digits and '-', each 1 to 63
 * long, not starting or ending with '-'; at most 253 in all. */
static bool valid_hostname(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ".");
        if (len == 0 || len > 63 || p[0] == '-' || p[len - 1] == '-')
            return false;
        for (size_t i = 0; i < len; i++)
            if (!isalnum((unsigned char)p[i]) && p[i] != '-')
                return false;
        p += len;
        if (*p == '.' && *++p == '\0')
            return false;
    }
    return true;
}

/* "user[:group]", names or numbers: the agent looks names up in the image
 * (model/user.h). */
bool service_valid_user(const char *s)
{
    return user_spec_valid(s);
}

static int check_string_field(json_t *spec, const char *field, json_t **out, struct serr *err)
{
    *out = json_object_get(spec, field);
    if (*out != NULL && !json_is_string(*out))
        return serr_set(err, SERR_INVALID, "%s: expected a string", field);
    return 0;
}

/* The placeholder "{{NAME}}" at `p` (its end at `end`), or -1. */
static int placeholder_index(const char *p, const char *end, const char *const *names)
{
    size_t n = (size_t)(end - p - 2);
    for (int i = 0; names[i]; i += 2)
        if (strlen(names[i]) == n && strncmp(p + 2, names[i], n) == 0)
            return i;
    return -1;
}

/* `tmpl` with each {{NAME}} replaced (names: NULL-terminated pairs NAME,
 * value); NULL for an unknown or unclosed placeholder. Caller frees. */
static char *expand(const char *tmpl, const char *const *names)
{
    char *out = NULL;
    size_t len = 0, cap = 0;
    for (const char *p = tmpl; *p;) {
        const char *open = strstr(p, "{{");
        if (open == NULL)
            open = p + strlen(p);
        buf_append(&out, &len, &cap, p, (size_t)(open - p));
        if (*open == '\0')
            break;
        const char *end = strstr(open, "}}");
        int i = end ? placeholder_index(open, end, names) : -1;
        if (i < 0) {
            free(out);
            return NULL;
        }
        buf_append(&out, &len, &cap, names[i + 1], strlen(names[i + 1]));
        p = end + 2;
    }
    buf_append(&out, &len, &cap, "", 0);
    return out;
}

char *service_hostname_expand(const char *tmpl, const char *service_id, const char *service_name,
                              const char *task_id, const char *task_name, const char *slot)
{
    const char *const names[] = {
        ".Service.ID", service_id, ".Service.Name", service_name, ".Task.ID", task_id,
        ".Task.Name",  task_name,  ".Task.Slot",    slot,         NULL};
    return expand(tmpl, names);
}

static int check_hostname(const char *tmpl, struct serr *err)
{
    char *sample = service_hostname_expand(tmpl, "sid", "svc", "tid", "svc.1", "1");
    if (sample == NULL)
        return serr_set(err, SERR_INVALID,
                        "invalid hostname '%s': templates are {{.Service.Name}}, {{.Service.ID}}, "
                        "{{.Task.Name}}, {{.Task.ID}}, {{.Task.Slot}}",
                        tmpl);
    bool ok = valid_hostname(sample);
    free(sample);
    if (!ok)
        return serr_set(err, SERR_INVALID,
                        "invalid hostname '%s' (letters, digits, '-' and '.'; labels of at most "
                        "63, 253 in all)",
                        tmpl);
    return 0;
}

static int check_hostname_user_workdir(json_t *spec, struct serr *err)
{
    json_t *v;
    if (check_string_field(spec, "hostname", &v, err) < 0)
        return -1;
    if (v && check_hostname(json_string_value(v), err) < 0)
        return -1;
    if (check_string_field(spec, "user", &v, err) < 0)
        return -1;
    if (v && !service_valid_user(json_string_value(v)))
        return serr_set(err, SERR_INVALID,
                        "invalid user '%s': give user[:group], names (looked up in the image) "
                        "or numbers",
                        json_string_value(v));
    if (check_string_field(spec, "workdir", &v, err) < 0)
        return -1;
    if (v && json_string_value(v)[0] != '/')
        return serr_set(err, SERR_INVALID, "invalid workdir '%s': must be an absolute path",
                        json_string_value(v));
    return 0;
}

int service_check_labels(json_t *labels, const char *field, struct serr *err)
{
    if (!json_is_object(labels))
        return serr_set(err, SERR_INVALID, "%s must be an object of strings", field);
    if (json_object_size(labels) > MAX_LABELS)
        return serr_set(err, SERR_INVALID, "%s: at most %d labels", field, MAX_LABELS);
    const char *key;
    json_t *val;
    json_object_foreach(labels, key, val)
    {
        if (key[0] == '\0' || strlen(key) > MAX_LABEL_LEN || strpbrk(key, "= \t\n") != NULL)
            return serr_set(err, SERR_INVALID, "%s: invalid label key '%s'", field, key);
        if (!json_is_string(val) || json_string_length(val) > MAX_LABEL_LEN)
            return serr_set(err, SERR_INVALID, "%s.%s: expected a string (at most %d bytes)", field,
                            key, MAX_LABEL_LEN);
    }
    return 0;
}

static int check_caps(json_t *caps, const char *field, struct serr *err)
{
    if (!json_is_array(caps))
        return serr_set(err, SERR_INVALID, "%s must be an array of capabilities", field);
    size_t i;
    json_t *c;
    json_array_foreach(caps, i, c)
    {
        const char *name = json_string_value(c);
        if (name == NULL || (strcmp(name, "ALL") != 0 && !container_cap_known(name)))
            return serr_set(err, SERR_INVALID,
                            "%s: unknown capability '%s' (CAP_NET_ADMIN, CAP_SYS_TIME, ... or ALL)",
                            field, name ? name : "?");
    }
    return 0;
}

static int check_sysctls(json_t *sysctls, bool own_network, struct serr *err)
{
    if (!json_is_object(sysctls))
        return serr_set(err, SERR_INVALID, "sysctls must be an object of strings");
    const char *key;
    json_t *val;
    json_object_foreach(sysctls, key, val)
    {
        if (!json_is_string(val) || json_string_length(val) == 0)
            return serr_set(err, SERR_INVALID, "sysctls.%s: expected a non-empty string", key);
        if (!container_sysctl_allowed(key, own_network))
            return serr_set(err, SERR_INVALID,
                            "sysctl '%s' is not allowed: only namespaced ones (kernel.msg*, "
                            "kernel.sem, kernel.shm*, fs.mqueue.*, net.* off the host network)",
                            key);
    }
    return 0;
}

static int check_ulimits(json_t *ulimits, struct serr *err)
{
    if (!json_is_object(ulimits))
        return serr_set(err, SERR_INVALID, "ulimits must be an object");
    const char *key;
    json_t *val;
    json_object_foreach(ulimits, key, val)
    {
        if (container_ulimit_resource(key, NULL) < 0)
            return serr_set(err, SERR_INVALID,
                            "ulimits: unknown limit '%s' (nofile, nproc, core, ...)", key);
        json_t *soft = json_object_get(val, "soft"), *hard = json_object_get(val, "hard");
        if (!json_is_integer(soft) || !json_is_integer(hard) || json_integer_value(soft) < 0 ||
            json_integer_value(hard) < json_integer_value(soft) || json_object_size(val) != 2)
            return serr_set(err, SERR_INVALID,
                            "ulimits.%s: expected {\"soft\": N, \"hard\": M} with 0 <= N <= M",
                            key);
    }
    return 0;
}

static int check_dns(json_t *dns, struct serr *err)
{
    if (!json_is_array(dns))
        return serr_set(err, SERR_INVALID, "dns must be an array of IP addresses");
    size_t i;
    json_t *a;
    json_array_foreach(dns, i, a)
    {
        unsigned char buf[16];
        const char *s = json_string_value(a);
        if (s == NULL || (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1))
            return serr_set(err, SERR_INVALID, "dns: '%s' is not an IP address", s ? s : "?");
    }
    return 0;
}

/* read_only, cap_add, cap_drop, sysctls, ulimits, stop_signal, dns */
static int check_runtime_options(json_t *spec, struct serr *err)
{
    json_t *v;
    if ((v = json_object_get(spec, "read_only")) && !json_is_boolean(v))
        return serr_set(err, SERR_INVALID, "read_only must be true or false");
    if ((v = json_object_get(spec, "cap_add")) && check_caps(v, "cap_add", err) < 0)
        return -1;
    if ((v = json_object_get(spec, "cap_drop")) && check_caps(v, "cap_drop", err) < 0)
        return -1;
    const char *network = jstr(spec, "network");
    bool own_network = network == NULL || strcmp(network, "host") != 0;
    if ((v = json_object_get(spec, "sysctls")) && check_sysctls(v, own_network, err) < 0)
        return -1;
    if ((v = json_object_get(spec, "ulimits")) && check_ulimits(v, err) < 0)
        return -1;
    if ((v = json_object_get(spec, "stop_signal")) &&
        container_signal_number(json_string_value(v)) < 0)
        return serr_set(err, SERR_INVALID, "invalid stop_signal (SIGTERM, SIGINT, TERM, 15, ...)");
    if ((v = json_object_get(spec, "dns")) && check_dns(v, err) < 0)
        return -1;
    return 0;
}

int service_container_check(json_t *spec, struct serr *err)
{
    if (check_runtime_options(spec, err) < 0)
        return -1;
    if (check_hostname_user_workdir(spec, err) < 0)
        return -1;
    json_t *v;
    if ((v = json_object_get(spec, "entrypoint")) && jcheck_string_array(v, "entrypoint", err) < 0)
        return -1;
    if ((v = json_object_get(spec, "labels")) && service_check_labels(v, "labels", err) < 0)
        return -1;
    if ((v = json_object_get(spec, "container_labels")) &&
        service_check_labels(v, "container_labels", err) < 0)
        return -1;
    return 0;
}

void service_container_apply(json_t *spec, json_t *container)
{
    static const char *const copied[] = {"hostname",    "user",     "workdir", "read_only",
                                         "cap_add",     "cap_drop", "sysctls", "ulimits",
                                         "stop_signal", "dns",      NULL};
    for (int i = 0; copied[i]; i++) {
        json_t *v = json_object_get(spec, copied[i]);
        if (v != NULL && !json_is_null(v))
            json_object_set(container, copied[i], v);
    }
    json_t *labels = json_object_get(spec, "container_labels");
    if (json_object_size(labels) > 0)
        json_object_set(container, "labels", labels);
}

json_t *service_task_args(json_t *spec, json_t *image_config)
{
    json_t *args = json_array();
    json_t *entrypoint = json_object_get(spec, "entrypoint");
    json_t *cmd = json_object_get(spec, "args");
    if (entrypoint != NULL) {
        /* as swarmkit: an entrypoint of the spec drops the image's Cmd too */
        json_array_extend(args, entrypoint);
        json_array_extend(args, cmd);
        return args;
    }
    json_array_extend(args, json_object_get(image_config, "Entrypoint"));
    json_array_extend(args, json_array_size(cmd) ? cmd : json_object_get(image_config, "Cmd"));
    return args;
}

/* s[key] (an object) less the keys of patch[key_rm], with patch[key_add]
 * merged in: labels, container_labels, sysctls, ulimits. The values are
 * checked with the whole spec afterwards. */
static int patch_object(json_t *s, const char *key, json_t *patch, struct serr *err)
{
    char add_key[48], rm_key[48];
    snprintf(add_key, sizeof(add_key), "%s_add", key);
    snprintf(rm_key, sizeof(rm_key), "%s_rm", key);
    json_t *add = json_object_get(patch, add_key), *rm = json_object_get(patch, rm_key);
    if (add && !json_is_object(add))
        return serr_set(err, SERR_INVALID, "%s must be an object", add_key);
    if (rm && !json_is_array(rm))
        return serr_set(err, SERR_INVALID, "%s must be an array of keys", rm_key);
    if (add == NULL && rm == NULL)
        return 0;
    json_t *obj = json_object_get(s, key);
    if (!json_is_object(obj))
        json_object_set_new(s, key, obj = json_object());
    size_t i;
    json_t *k;
    json_array_foreach(rm, i, k)
    {
        if (!json_is_string(k))
            return serr_set(err, SERR_INVALID, "%s must be an array of keys", rm_key);
        json_object_del(obj, json_string_value(k));
    }
    json_object_update(obj, add);
    return 0;
}

/* s[key] (an array) less the elements equal to those of patch[key_rm],
 * then those of patch[key_add] not there yet: dns, placement_preferences. */
static int patch_list(json_t *s, const char *key, json_t *patch, struct serr *err)
{
    char add_key[48], rm_key[48];
    snprintf(add_key, sizeof(add_key), "%s_add", key);
    snprintf(rm_key, sizeof(rm_key), "%s_rm", key);
    json_t *add = json_object_get(patch, add_key), *rm = json_object_get(patch, rm_key);
    if ((add && !json_is_array(add)) || (rm && !json_is_array(rm)))
        return serr_set(err, SERR_INVALID, "%s and %s must be arrays", add_key, rm_key);
    if (add == NULL && rm == NULL)
        return 0;
    json_t *list = json_object_get(s, key);
    if (!json_is_array(list))
        json_object_set_new(s, key, list = json_array());
    size_t i, k;
    json_t *v, *have;
    json_array_foreach(rm, i, v)
    {
        for (k = json_array_size(list); k-- > 0;)
            if (json_equal(json_array_get(list, k), v))
                json_array_remove(list, k);
    }
    json_array_foreach(add, i, v)
    {
        bool dup = false;
        json_array_foreach(list, k, have) dup |= json_equal(have, v);
        if (!dup)
            json_array_append(list, v);
    }
    return 0;
}

static void mounts_remove(json_t *mounts, const char *target)
{
    for (size_t i = json_array_size(mounts); i-- > 0;) {
        const char *t = jstr(json_array_get(mounts, i), "target");
        if (t && strcmp(t, target) == 0)
            json_array_remove(mounts, i);
    }
}

/* mounts_rm: targets; mounts_add: mount objects replacing a mount of the
 * same target (checked with the whole spec afterwards). */
static int patch_mounts(json_t *s, json_t *add, json_t *rm, struct serr *err)
{
    if ((rm && !json_is_array(rm)) || (add && !json_is_array(add)))
        return serr_set(err, SERR_INVALID, "mounts_add and mounts_rm must be arrays");
    json_t *mounts = json_object_get(s, "mounts");
    if (!json_is_array(mounts))
        json_object_set_new(s, "mounts", mounts = json_array());
    size_t i;
    json_t *v;
    json_array_foreach(rm, i, v)
    {
        if (!json_is_string(v))
            return serr_set(err, SERR_INVALID, "mounts_rm must be an array of targets");
        mounts_remove(mounts, json_string_value(v));
    }
    json_array_foreach(add, i, v)
    {
        if (!json_is_object(v) || !json_is_string(json_object_get(v, "target")))
            return serr_set(err, SERR_INVALID, "mounts_add: each mount needs a target");
        mounts_remove(mounts, jstr(v, "target"));
        json_array_append(mounts, v);
    }
    return 0;
}

/* hostname, user, workdir, entrypoint, max_replicas_per_node, restart_max_attempts,
 * restart_window_ms, stop_signal, read_only: a value replaces the current one,
 * null removes it (back to the default or the image's). */
static void patch_replaced(json_t *s, json_t *patch)
{
    static const char *const replaced[] = {"hostname",
                                           "user",
                                           "workdir",
                                           "entrypoint",
                                           "max_replicas_per_node",
                                           "restart_max_attempts",
                                           "restart_window_ms",
                                           "stop_signal",
                                           "read_only",
                                           NULL};
    for (int i = 0; replaced[i]; i++) {
        json_t *v = json_object_get(patch, replaced[i]);
        if (json_is_null(v))
            json_object_del(s, replaced[i]);
        else if (v)
            json_object_set(s, replaced[i], v);
    }
}

const char *const service_container_patch_fields[] = {
    "hostname",
    "user",
    "workdir",
    "entrypoint",
    "max_replicas_per_node",
    "restart_max_attempts",
    "restart_window_ms",
    "stop_signal",
    "read_only",
    "labels_add",
    "labels_rm",
    "container_labels_add",
    "container_labels_rm",
    "sysctls_add",
    "sysctls_rm",
    "ulimits_add",
    "ulimits_rm",
    "dns_add",
    "dns_rm",
    "placement_preferences_add",
    "placement_preferences_rm",
    "mounts_add",
    "mounts_rm",
    NULL};

int service_container_patch(json_t *s, json_t *patch, struct serr *err)
{
    static const char *const objects[] = {"labels", "container_labels", "sysctls", "ulimits",
                                          NULL};
    static const char *const lists[] = {"dns", "placement_preferences", NULL};
    patch_replaced(s, patch);
    for (int i = 0; objects[i]; i++)
        if (patch_object(s, objects[i], patch, err) < 0)
            return -1;
    for (int i = 0; lists[i]; i++)
        if (patch_list(s, lists[i], patch, err) < 0)
            return -1;
    return patch_mounts(s, json_object_get(patch, "mounts_add"),
                        json_object_get(patch, "mounts_rm"), err);
}
