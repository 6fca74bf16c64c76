#include "manager/service.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/mount.h"
#include "base/json_get.h"
#include "base/util.h"
#include "manager/scheduler.h"
#include "manager/secret.h"
#include "manager/service_container.h"
#include "model/cron.h"
#include "model/imageref.h"
#include "store/store.h"

#define MAX_REPLICAS 100000

static bool valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

json_t *image_variants(struct store *st, const char *ref)
{
    struct image_ref r;
    if (ref == NULL || image_parse_ref(ref, &r, NULL) < 0 || r.digest[0] == '\0')
        return NULL;
    char *want = xasprintf("%s@%s", r.name, r.digest); /* a tag before '@' is ignored */
    json_t *all = store_list(st, "images", NULL);
    json_t *found = json_array();
    size_t i, k;
    json_t *img, *d;
    json_array_foreach(all, i, img)
    {
        bool match = false;
        json_array_foreach(json_object_get(img, "digests"), k, d)
        {
            match = match || (json_is_string(d) && strcmp(json_string_value(d), want) == 0);
        }
        if (match)
            json_array_append(found, img);
    }
    json_decref(all);
    free(want);
    return found;
}

/* "NAME@sha256:..." (a tag before the '@' is ignored, as Docker does): the
 * image pulled with that manifest digest from that repository (the first
 * variant of an index). */
static json_t *image_by_repo_digest(struct store *st, const char *ref)
{
    json_t *variants = image_variants(st, ref);
    json_t *found = json_incref(json_array_get(variants, 0));
    json_decref(variants);
    return found;
}

/* "linux/arm64/v8" is "linux/arm64": arm64 has no other variant. */
static bool same_platform(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 3 && strcmp(a + la - 3, "/v8") == 0 && strstr(a, "/arm64/"))
        la -= 3;
    if (lb > 3 && strcmp(b + lb - 3, "/v8") == 0 && strstr(b, "/arm64/"))
        lb -= 3;
    return la == lb && strncmp(a, b, la) == 0;
}

/* ", "-joined strings of an array into out[size]. */
static void join_strings(json_t *list, char *out, size_t size)
{
    size_t used = 0, i;
    json_t *s;
    out[0] = '\0';
    json_array_foreach(list, i, s)
    {
        if (json_is_string(s) && used < size)
            used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "",
                                     json_string_value(s));
    }
}

json_t *image_variant_for(json_t *variants, const char *ref, const char *platform, struct serr *err)
{
    json_t *first = json_array_get(variants, 0);
    json_t *offered = json_object_get(first, "platforms");
    if (first == NULL) {
        serr_set(err, SERR_NOT_FOUND, "No such image: %s", ref);
        return NULL;
    }
    if (platform == NULL || platform[0] == '\0' || !json_is_array(offered))
        return first; /* no platform known, or a plain manifest: as before variants */
    size_t i;
    json_t *img, *p;
    json_array_foreach(variants, i, img)
    {
        const char *has = jstr(img, "platform");
        if (has && same_platform(has, platform))
            return img;
    }
    bool offers = false;
    json_array_foreach(offered, i, p)
    {
        offers = offers || (json_is_string(p) && same_platform(json_string_value(p), platform));
    }
    if (offers) {
        serr_set(err, SERR_UNAVAILABLE,
                 "the %s variant of %s is not in the store: shoal image pull --platform %s %s",
                 platform, ref, platform, ref);
        return NULL;
    }
    char list[400];
    join_strings(offered, list, sizeof(list));
    serr_set(err, SERR_INVALID, "image %s has no variant for this node's platform %s (it has: %s)",
             ref, platform, list);
    return NULL;
}

json_t *image_resolve(struct store *st, const char *ref, struct serr *err)
{
    char norm[512];
    if (ref == NULL || *ref == '\0') {
        serr_set(err, SERR_INVALID, "image reference is empty");
        return NULL;
    }
    if (strchr(ref, '@')) {
        json_t *img = image_by_repo_digest(st, ref);
        if (img == NULL)
            serr_set(err, SERR_NOT_FOUND, "No such image: %s", ref);
        return img;
    }
    if (image_normalize_ref(ref, norm, sizeof(norm), NULL) == 0) {
        json_t *tag = store_get(st, "tags", norm);
        if (tag) {
            json_t *img = store_get(st, "images", jstr(tag, "image_id"));
            json_decref(tag);
            if (img)
                return img;
        }
    }
    char full[600];
    snprintf(full, sizeof(full), "%s%s", strncmp(ref, "sha256:", 7) == 0 ? "" : "sha256:", ref);
    struct serr ferr = {0};
    json_t *img = strlen(ref) >= 4 ? store_find(st, "images", full, &ferr) : NULL;
    if (img == NULL)
        serr_set(err, SERR_NOT_FOUND, "No such image: %s", ref);
    return img;
}

static int check_env(json_t *env, const char *field, struct serr *err)
{
    if (jcheck_string_array(env, field, err) < 0)
        return -1;
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        const char *s = json_string_value(e);
        const char *eq = strchr(s, '=');
        if (eq == NULL || eq == s)
            return serr_set(err, SERR_INVALID, "invalid environment variable '%s' (want KEY=VALUE)", s);
    }
    return 0;
}

/* Rejects keys of a nested object that are not in `known`. */
static int check_keys(json_t *obj, const char *const *known, const char *what, struct serr *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        if (!str_in_list(key, known))
            return serr_set(err, SERR_INVALID, "%s: unknown field '%s'", what, key);
    }
    return 0;
}

static int check_tmpfs_mount(json_t *m, struct serr *err)
{
    if (json_object_get(m, "source") != NULL)
        return serr_set(err, SERR_INVALID, "mount: a tmpfs mount takes no source");
    json_t *size = json_object_get(m, "tmpfs_size"), *mode = json_object_get(m, "tmpfs_mode");
    if (size && (!json_is_integer(size) || json_integer_value(size) <= 0))
        return serr_set(err, SERR_INVALID, "mount: tmpfs_size must be a positive integer (bytes)");
    if (mode && (!json_is_integer(mode) || json_integer_value(mode) < 0 ||
                 json_integer_value(mode) > 07777))
        return serr_set(err, SERR_INVALID, "mount: tmpfs_mode must be permission bits (0 to 07777)");
    return 0;
}

static int check_mount(json_t *m, struct serr *err)
{
    static const char *const known[] = {"type",       "source",     "target", "readonly",
                                        "tmpfs_size", "tmpfs_mode", NULL};
    const char *type = jstr(m, "type");
    const char *src = jstr(m, "source");
    const char *dst = jstr(m, "target");
    json_t *ro = json_object_get(m, "readonly");
    if (check_keys(m, known, "mount", err) < 0)
        return -1;
    bool tmpfs = type && strcmp(type, "tmpfs") == 0;
    if (type == NULL || (strcmp(type, "bind") != 0 && strcmp(type, "volume") != 0 && !tmpfs))
        return serr_set(err, SERR_INVALID, "mount: type must be bind, volume or tmpfs");
    if (!tmpfs && (json_object_get(m, "tmpfs_size") || json_object_get(m, "tmpfs_mode")))
        return serr_set(err, SERR_INVALID, "mount: tmpfs_size and tmpfs_mode need type tmpfs");
    if (!tmpfs && (src == NULL || *src == '\0'))
        return serr_set(err, SERR_INVALID, "mount: source is required");
    if (dst == NULL || dst[0] != '/')
        return serr_set(err, SERR_INVALID, "mount: target must be an absolute path");
    const char *reserved = mount_reserved_target(dst);
    if (reserved != NULL)
        return serr_set(err, SERR_INVALID,
                        "mount: target %s is reserved: the container's %s is set up by the runtime",
                        dst, reserved);
    if (ro && !json_is_boolean(ro))
        return serr_set(err, SERR_INVALID, "mount: readonly must be true or false");
    if (tmpfs)
        return check_tmpfs_mount(m, err);
    if (strcmp(type, "bind") == 0 && src[0] != '/')
        return serr_set(err, SERR_INVALID, "mount: bind source must be an absolute path: %s", src);
    if (strcmp(type, "volume") == 0 && !valid_name(src, 64))
        return serr_set(err, SERR_INVALID, "mount: invalid volume name '%s'", src);
    return 0;
}

static int check_mounts(json_t *mounts, struct serr *err)
{
    if (!json_is_array(mounts))
        return serr_set(err, SERR_INVALID, "mounts must be an array");
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m)
    {
        if (!json_is_object(m))
            return serr_set(err, SERR_INVALID, "mounts must be objects");
        if (check_mount(m, err) < 0)
            return -1;
    }
    return 0;
}

static int check_limits(json_t *limits, struct serr *err)
{
    static const char *const known[] = {"cpus", "memory", "pids", NULL};
    if (!json_is_object(limits))
        return serr_set(err, SERR_INVALID, "limits must be an object");
    if (check_keys(limits, known, "limits", err) < 0)
        return -1;
    json_t *cpus = json_object_get(limits, "cpus");
    json_t *mem = json_object_get(limits, "memory");
    if (cpus && !json_is_number(cpus))
        return serr_set(err, SERR_INVALID, "limits.cpus: expected a number");
    if (cpus && (!(json_number_value(cpus) > 0) || json_number_value(cpus) > 1024))
        return serr_set(err, SERR_INVALID, "limits.cpus must be a number above 0");
    if (mem && !json_is_integer(mem))
        return serr_set(err, SERR_INVALID, "limits.memory: expected an integer (bytes)");
    if (mem && json_integer_value(mem) < 4 * 1024 * 1024)
        return serr_set(err, SERR_INVALID, "limits.memory must be at least 4MiB");
    json_t *pids = json_object_get(limits, "pids");
    if (pids && (!json_is_integer(pids) || json_integer_value(pids) < 1))
        return serr_set(err, SERR_INVALID, "limits.pids must be an integer of at least 1");
    return 0;
}

/* reservations {cpus, memory}: cores a task holds on its node (--reserve-cpu),
 * which the schedulers of tasks and batch jobs count, and bytes of the node's
 * memory (--reserve-memory), which the task scheduler counts. */
static int check_reservations(json_t *reservations, struct serr *err)
{
    static const char *const known[] = {"cpus", "memory", NULL};
    if (!json_is_object(reservations))
        return serr_set(err, SERR_INVALID, "reservations must be an object");
    if (check_keys(reservations, known, "reservations", err) < 0)
        return -1;
    json_t *cpus = json_object_get(reservations, "cpus");
    if (cpus && (!json_is_number(cpus) || json_number_value(cpus) < 0 ||
                 json_number_value(cpus) > 1024))
        return serr_set(err, SERR_INVALID, "reservations.cpus: expected a number from 0 to 1024");
    json_t *memory = json_object_get(reservations, "memory");
    if (memory && (!json_is_integer(memory) || json_integer_value(memory) < 0))
        return serr_set(err, SERR_INVALID, "reservations.memory: expected a number of bytes");
    return 0;
}

static int check_int(json_t *spec, const char *field, json_int_t min, json_int_t max,
                     struct serr *err)
{
    json_t *v = json_object_get(spec, field);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v))
        return serr_set(err, SERR_INVALID, "%s: expected an integer", field);
    if (json_integer_value(v) < min || json_integer_value(v) > max)
        return serr_set(err, SERR_INVALID, "%s must be an integer from %lld to %lld", field,
                        (long long)min, (long long)max);
    return 0;
}

static int check_one_of(json_t *spec, const char *field, const char *const *allowed,
                        struct serr *err)
{
    json_t *v = json_object_get(spec, field);
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return serr_set(err, SERR_INVALID, "%s: expected a string", field);
    if (str_in_list(json_string_value(v), allowed))
        return 0;
    return serr_set(err, SERR_INVALID, "invalid %s (want %s%s%s%s%s)", field, allowed[0],
                    allowed[1] ? ", " : "", allowed[1] ? allowed[1] : "",
                    allowed[1] && allowed[2] ? ", " : "", allowed[1] && allowed[2] ? allowed[2] : "");
}

static int check_constraints(json_t *cons, struct serr *err)
{
    if (jcheck_string_array(cons, "constraints", err) < 0)
        return -1;
    size_t i;
    json_t *c;
    json_array_foreach(cons, i, c)
    {
        if (constraint_validate(json_string_value(c), err) < 0)
            return -1;
    }
    return 0;
}

/* [{"spread": "node.labels.KEY"}, ...] */
static int check_preferences(json_t *prefs, struct serr *err)
{
    if (!json_is_array(prefs) || json_array_size(prefs) > 8)
        return serr_set(err, SERR_INVALID,
                        "placement_preferences must be an array of at most 8 {\"spread\": ...}");
    size_t i;
    json_t *p;
    json_array_foreach(prefs, i, p)
    {
        if (!json_is_object(p) || json_object_size(p) != 1)
            return serr_set(err, SERR_INVALID,
                            "placement_preferences: each is {\"spread\": \"node.labels.KEY\"}");
        if (placement_spread_validate(jstr(p, "spread"), err) < 0)
            return serr_wrap(err, "placement_preferences");
    }
    return 0;
}

/* One published port: {published, target, protocol?, mode?}; defaults are
 * filled in (tcp, ingress). */
static int check_port(json_t *p, struct serr *err)
{
    static const char *const known[] = {"published", "target", "protocol", "mode", NULL};
    static const char *const protocols[] = {"tcp", "udp", NULL};
    static const char *const modes[] = {"ingress", "host", NULL};
    if (!json_is_object(p))
        return serr_set(err, SERR_INVALID, "each port must be an object");
    if (check_keys(p, known, "port", err) < 0)
        return -1;
    if (!json_object_get(p, "target")) /* without published: one is chosen */
        return serr_set(err, SERR_INVALID, "a port needs a target");
    if (check_int(p, "published", 1, 65535, err) < 0 || check_int(p, "target", 1, 65535, err) < 0 ||
        check_one_of(p, "protocol", protocols, err) < 0 || check_one_of(p, "mode", modes, err) < 0)
        return serr_wrap(err, "port");
    if (json_object_get(p, "protocol") == NULL)
        json_object_set_new(p, "protocol", json_string("tcp"));
    if (json_object_get(p, "mode") == NULL)
        json_object_set_new(p, "mode", json_string("ingress"));
    return 0;
}

static int check_ports(json_t *ports, struct serr *err)
{
    if (!json_is_array(ports))
        return serr_set(err, SERR_INVALID, "ports must be an array");
    size_t i, j;
    json_t *p, *q;
    json_array_foreach(ports, i, p)
    {
        if (check_port(p, err) < 0)
            return -1;
        for (j = 0; j < i; j++) {
            q = json_array_get(ports, j);
            if (json_equal(json_object_get(p, "published"), json_object_get(q, "published")) &&
                json_equal(json_object_get(p, "protocol"), json_object_get(q, "protocol")))
                return serr_set(err, SERR_INVALID, "port %lld/%s is published twice",
                                (long long)jint(p, "published", 0), jstr(p, "protocol"));
        }
    }
    return 0;
}

static int check_failure_ratio(json_t *uc, struct serr *err)
{
    json_t *ratio = json_object_get(uc, "max_failure_ratio");
    if (ratio && (!json_is_number(ratio) || json_number_value(ratio) < 0 ||
                  json_number_value(ratio) > 1))
        return serr_set(err, SERR_INVALID, "max_failure_ratio must be a number from 0 to 1");
    return 0;
}

/* update_config or rollback_config (`what`): {"parallelism", "delay_ms",
 * "failure_action", "monitor_ms", "max_failure_ratio", "order"}, as Swarm's
 * UpdateConfig; a rollback's failure_action is pause or continue. */
static int check_rollout_config(json_t *uc, const char *what, struct serr *err)
{
    static const char *const known[] = {"parallelism", "delay_ms", "failure_action", "monitor_ms",
                                        "max_failure_ratio", "order", NULL};
    static const char *const orders[] = {"stop-first", "start-first", NULL};
    bool rollback = strcmp(what, "rollback_config") == 0;
    if (!json_is_object(uc))
        return serr_set(err, SERR_INVALID, "%s must be an object", what);
    if (check_keys(uc, known, what, err) < 0)
        return -1;
    json_t *fa = json_object_get(uc, "failure_action");
    const char *action = json_string_value(fa);
    if (fa && (action == NULL || (strcmp(action, "pause") != 0 && strcmp(action, "continue") != 0 &&
                                  (rollback || strcmp(action, "rollback") != 0))))
        return serr_set(err, SERR_INVALID, "%s: failure_action must be pause, continue%s", what,
                        rollback ? "" : " or rollback");
    if (check_int(uc, "parallelism", 0, MAX_REPLICAS, err) < 0 ||
        check_int(uc, "delay_ms", 0, 86400000LL * 365, err) < 0 ||
        check_int(uc, "monitor_ms", 0, 86400000LL * 365, err) < 0 ||
        check_failure_ratio(uc, err) < 0 || check_one_of(uc, "order", orders, err) < 0)
        return serr_wrap(err, "%s", what);
    return 0;
}

/* healthcheck: {"cmd", "interval_ms", "timeout_ms", "retries", "start_period_ms"}.
 * Durations are at least 1 ms (0 has no use: Docker's "inherit" needs an
 * image's own check, which shoal does not import); the start period may be 0. */
static int check_healthcheck(json_t *hc, struct serr *err)
{
    static const char *const known[] = {"cmd", "interval_ms", "timeout_ms", "retries",
                                        "start_period_ms", NULL};
    if (!json_is_object(hc))
        return serr_set(err, SERR_INVALID, "healthcheck must be an object");
    if (check_keys(hc, known, "healthcheck", err) < 0)
        return -1;
    json_t *cmd = json_object_get(hc, "cmd");
    if (cmd == NULL)
        return serr_set(err, SERR_INVALID, "healthcheck: cmd is required");
    const char *text = json_string_value(cmd);
    if (text == NULL || text[strspn(text, " \t\n")] == '\0')
        return serr_set(err, SERR_INVALID, "healthcheck: cmd must be a non-empty string");
    if (check_int(hc, "interval_ms", 1, 86400000, err) < 0 ||
        check_int(hc, "timeout_ms", 1, 86400000, err) < 0 ||
        check_int(hc, "retries", 1, 1000000, err) < 0 ||
        check_int(hc, "start_period_ms", 0, 86400000, err) < 0)
        return serr_wrap(err, "healthcheck");
    return 0;
}

bool service_mode_global(json_t *spec)
{
    return jstr_is(spec, "mode", "global") || jstr_is(spec, "mode", "global-job");
}

bool service_mode_job(json_t *spec)
{
    return jstr_is(spec, "mode", "replicated-job") || jstr_is(spec, "mode", "global-job");
}

static const char *const known_fields[] = {
    "name", "mode", "replicas", "image", "args", "env", "mounts", "restart_condition",
    "restart_delay_ms", "limits", "init", "constraints", "stop_grace_period_ms",
    "update_config", "rollback_config", "network", "healthcheck", "ports", "secrets", "configs", "force_update",
    "hostname", "user", "workdir", "entrypoint", "labels", "container_labels",
    "restart_max_attempts", "restart_window_ms", "read_only", "cap_add", "cap_drop", "sysctls",
    "ulimits", "stop_signal", "dns", "max_replicas_per_node", "placement_preferences", "schedule",
    "schedule_tz", "schedule_overlap", "reservations", "max_concurrent", NULL};

static int check_fields(json_t *spec, struct serr *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(spec, key, val)
    {
        if (!str_in_list(key, known_fields))
            return serr_set(err, SERR_INVALID, "unknown field '%s' in service spec", key);
    }
    return 0;
}

/* --schedule, --schedule-tz, --schedule-overlap: a replicated job's only. */
static int check_schedule(json_t *s, struct serr *err)
{
    static const char *const overlaps[] = {"skip", "queue", NULL};
    json_t *sched = json_object_get(s, "schedule");
    if (sched == NULL) {
        if (json_object_get(s, "schedule_tz") || json_object_get(s, "schedule_overlap"))
            return serr_set(err, SERR_INVALID, "schedule_tz and schedule_overlap need a schedule");
        return 0;
    }
    if (!jstr_is(s, "mode", "replicated-job"))
        return serr_set(err, SERR_INVALID, "schedule can only be used with replicated-job mode");
    struct cron c;
    if (!json_is_string(sched))
        return serr_set(err, SERR_INVALID, "schedule: expected a cron expression");
    char prefix_zone[160];
    const char *expr = cron_split_tz(json_string_value(sched), prefix_zone, sizeof(prefix_zone));
    if (cron_parse(expr, &c, err) < 0)
        return serr_wrap(err, "invalid schedule '%s'", json_string_value(sched));
    json_t *tz_name = json_object_get(s, "schedule_tz");
    struct cron_tz tz;
    if (tz_name && !json_is_string(tz_name))
        return serr_set(err, SERR_INVALID, "schedule_tz: expected a string");
    if (prefix_zone[0] && cron_tz_parse(prefix_zone, &tz, err) < 0)
        return -1;
    if (!prefix_zone[0] && tz_name && cron_tz_parse(json_string_value(tz_name), &tz, err) < 0)
        return -1;
    return check_one_of(s, "schedule_overlap", overlaps, err);
}

/* name, image, mode, restart_condition and network: their types and values. */
static int check_identity(json_t *s, struct serr *err)
{
    static const char *const modes[] = {"replicated", "global", "replicated-job", "global-job",
                                        NULL};
    static const char *const conds[] = {"any", "on-failure", "none", NULL};
    static const char *const strings[] = {"name", "image", "network", NULL};
    const char *name = jstr(s, "name");
    for (int i = 0; strings[i]; i++) {
        json_t *v = json_object_get(s, strings[i]);
        if (v && !json_is_null(v) && !json_is_string(v))
            return serr_set(err, SERR_INVALID, "%s: expected a string", strings[i]);
    }
    if (json_object_get(s, "name") && (name == NULL || !valid_name(name, 63)))
        return serr_set(err, SERR_INVALID,
                        "invalid service name '%s' (letters, digits, '_', '.', '-'; at most 63)",
                        name ? name : "");
    if (!json_is_string(json_object_get(s, "image")))
        return serr_set(err, SERR_INVALID, "image is required");
    if (check_one_of(s, "mode", modes, err) < 0 || check_one_of(s, "restart_condition", conds, err) < 0)
        return -1;
    json_t *network = json_object_get(s, "network");
    if (network && (!json_is_string(network) || json_string_length(network) == 0))
        return serr_set(err, SERR_INVALID, "network must be a network's name");
    return 0;
}

/* The replica count and the restart policy's numbers. */
static int check_counts(json_t *s, struct serr *err)
{
    if (check_int(s, "replicas", 0, MAX_REPLICAS, err) < 0 ||
        check_int(s, "restart_delay_ms", 0, 86400000, err) < 0 ||
        check_int(s, "stop_grace_period_ms", 0, 86400000, err) < 0 ||
        check_int(s, "restart_max_attempts", 0, 1000000, err) < 0 ||
        check_int(s, "restart_window_ms", 0, 31LL * 86400000, err) < 0)
        return -1;
    return 0;
}

/* What each task runs with: args, env, mounts, limits, reservations, init,
 * force_update and constraints, each when given. */
static int check_task_parts(json_t *s, struct serr *err)
{
    json_t *v;
    if ((v = json_object_get(s, "args")) && jcheck_string_array(v, "args", err) < 0)
        return -1;
    if ((v = json_object_get(s, "env")) && check_env(v, "env", err) < 0)
        return -1;
    if ((v = json_object_get(s, "mounts")) && check_mounts(v, err) < 0)
        return -1;
    if ((v = json_object_get(s, "limits")) && check_limits(v, err) < 0)
        return -1;
    if ((v = json_object_get(s, "reservations")) && check_reservations(v, err) < 0)
        return -1;
    if ((v = json_object_get(s, "init")) && !json_is_boolean(v))
        return serr_set(err, SERR_INVALID, "init must be true or false");
    if ((v = json_object_get(s, "force_update")) && check_int(s, "force_update", 0, INT32_MAX, err) < 0)
        return -1;
    if ((v = json_object_get(s, "constraints")) && check_constraints(v, err) < 0)
        return -1;
    return 0;
}

/* update_config and rollback_config, then the healthcheck (null: removed),
 * the published ports and the container's own options (service_container.c). */
static int check_rollouts_and_health(json_t *s, struct serr *err)
{
    json_t *v;
    if ((v = json_object_get(s, "update_config")) &&
        check_rollout_config(v, "update_config", err) < 0)
        return -1;
    if ((v = json_object_get(s, "rollback_config")) &&
        check_rollout_config(v, "rollback_config", err) < 0)
        return -1;
    v = json_object_get(s, "healthcheck");
    if (v && !json_is_null(v) && check_healthcheck(v, err) < 0)
        return -1;
    if ((v = json_object_get(s, "ports")) && check_ports(v, err) < 0)
        return -1;
    return service_container_check(s, err);
}

/* Placement (max_replicas_per_node, preferences) and the fields that only
 * some modes take: replicas, max_replicas_per_node and max_concurrent. */
static int check_placement(json_t *s, struct serr *err)
{
    json_t *v;
    if (check_int(s, "max_replicas_per_node", 0, MAX_REPLICAS, err) < 0)
        return -1;
    if ((v = json_object_get(s, "placement_preferences")) && check_preferences(v, err) < 0)
        return -1;
    if (service_mode_global(s) && jint(s, "max_replicas_per_node", 0) > 0)
        return serr_set(err, SERR_INVALID,
                        "max_replicas_per_node can only be used with replicated mode");
    if (service_mode_global(s) && json_object_get(s, "replicas"))
        return serr_set(err, SERR_INVALID, "replicas can only be used with replicated mode");
    if (check_int(s, "max_concurrent", 1, MAX_REPLICAS, err) < 0)
        return -1;
    if (json_object_get(s, "max_concurrent") && !service_mode_job(s))
        return serr_set(err, SERR_INVALID,
                        "max_concurrent can only be used with replicated-job or global-job mode");
    return 0;
}

/* The spec's checks, in turn: the first that fails sets err. */
static int validate(json_t *s, struct serr *err)
{
    if (check_fields(s, err) < 0 || check_identity(s, err) < 0 || check_counts(s, err) < 0 ||
        check_task_parts(s, err) < 0 || check_rollouts_and_health(s, err) < 0 ||
        check_placement(s, err) < 0)
        return -1;
    return check_schedule(s, err);
}

/* Docker's defaults; a null healthcheck (what an update sends to remove it)
 * is dropped. */
static void healthcheck_defaults(json_t *s)
{
    json_t *hc = json_object_get(s, "healthcheck");
    if (json_is_null(hc)) {
        json_object_del(s, "healthcheck");
        return;
    }
    if (hc == NULL)
        return;
    jset_default(hc, "interval_ms", json_integer(30000));
    jset_default(hc, "timeout_ms", json_integer(30000));
    jset_default(hc, "retries", json_integer(3));
    jset_default(hc, "start_period_ms", json_integer(0));
}

json_t *service_spec_normalize(struct store *st, json_t *spec, struct serr *err)
{
    if (!json_is_object(spec)) {
        serr_set(err, SERR_INVALID, "service spec must be a JSON object");
        return NULL;
    }
    if (validate(spec, err) < 0)
        return NULL;
    json_t *img = image_resolve(st, jstr(spec, "image"), err);
    if (img == NULL)
        return NULL;
    json_decref(img);
    json_t *s = json_deep_copy(spec);
    if (secret_refs_normalize(st, s, err) < 0) {
        json_decref(s);
        return NULL;
    }
    char norm[512];
    if (image_normalize_ref(jstr(s, "image"), norm, sizeof(norm), NULL) == 0)
        json_object_set_new(s, "image", json_string(norm));
    jset_default(s, "mode", json_string("replicated"));
    if (!service_mode_global(s))
        jset_default(s, "replicas", json_integer(1));
    if (service_mode_job(s)) /* a job runs once per run */
        jset_default(s, "restart_condition", json_string("none"));
    if (json_object_get(s, "schedule")) {
        cron_spec_split_zone(s);
        jset_default(s, "schedule_tz", json_string("UTC"));
        jset_default(s, "schedule_overlap", json_string("skip"));
    }
    jset_default(s, "env", json_array());
    jset_default(s, "mounts", json_array());
    jset_default(s, "constraints", json_array());
    jset_default(s, "restart_condition", json_string("any"));
    jset_default(s, "restart_delay_ms", json_integer(1000));
    jset_default(s, "stop_grace_period_ms", json_integer(10000));
    jset_default(s, "init", json_false());
    jset_default(s, "network", json_string(SERVICE_DEFAULT_NETWORK));
    jset_default(s, "ports", json_array());
    jset_default(s, "update_config", json_object());
    json_t *uc = json_object_get(s, "update_config");
    jset_default(uc, "parallelism", json_integer(1));
    jset_default(uc, "delay_ms", json_integer(0));
    json_t *rc = json_object_get(s, "rollback_config"); /* optional: update_config's then */
    if (rc) {
        jset_default(rc, "parallelism", json_integer(1));
        jset_default(rc, "delay_ms", json_integer(0));
    }
    healthcheck_defaults(s);
    return s;
}

/* Removes every env entry whose key equals `key` ("K" or "K=V" given). */
static void env_remove(json_t *env, const char *entry)
{
    size_t klen = strcspn(entry, "=");
    for (size_t i = json_array_size(env); i-- > 0;) {
        const char *e = json_string_value(json_array_get(env, i));
        if (e && strncmp(e, entry, klen) == 0 && (e[klen] == '=' || e[klen] == '\0'))
            json_array_remove(env, i);
    }
}

/* patch "healthcheck": null removes it; an object's fields replace the
 * current ones (the result is validated with the spec). */
static int patch_healthcheck(json_t *s, json_t *v, struct serr *err)
{
    if (json_is_null(v)) {
        json_object_del(s, "healthcheck");
        return 0;
    }
    if (!json_is_object(v))
        return serr_set(err, SERR_INVALID, "healthcheck must be an object or null");
    json_t *hc = json_object_get(s, "healthcheck");
    if (json_is_object(hc))
        json_object_update(hc, v);
    else
        json_object_set(s, "healthcheck", v);
    return 0;
}

/* True when `p` is the port `key` names: "P" or "P/PROTOCOL" (tcp by default). */
static bool port_is(json_t *p, const char *key)
{
    char *end;
    long published = strtol(key, &end, 10);
    const char *proto = *end == '/' ? end + 1 : "tcp";
    const char *pp = jstr(p, "protocol");
    return (*end == '\0' || *end == '/') && jint(p, "published", 0) == published &&
           strcmp(pp ? pp : "tcp", proto) == 0;
}

static void ports_remove(json_t *ports, const char *key)
{
    for (size_t i = json_array_size(ports); i-- > 0;)
        if (port_is(json_array_get(ports, i), key))
            json_array_remove(ports, i);
}

/* publish_rm: ["8080", "53/udp"]; publish_add: port objects (replacing
 * the same published port). */
static int patch_ports(json_t *spec, json_t *patch, struct serr *err)
{
    json_t *rm = json_object_get(patch, "publish_rm"), *add = json_object_get(patch, "publish_add");
    if (rm && jcheck_string_array(rm, "publish_rm", err) < 0)
        return -1;
    if (add && !json_is_array(add))
        return serr_set(err, SERR_INVALID, "publish_add must be an array");
    json_t *ports = json_object_get(spec, "ports");
    if (!json_is_array(ports)) {
        ports = json_array();
        json_object_set_new(spec, "ports", ports);
    }
    size_t i;
    json_t *v;
    json_array_foreach(rm, i, v) ports_remove(ports, json_string_value(v));
    json_array_foreach(add, i, v)
    {
        if (check_port(v, err) < 0)
            return -1;
        char key[32];
        snprintf(key, sizeof(key), "%lld/%s", (long long)jint(v, "published", 0),
                 jstr(v, "protocol"));
        ports_remove(ports, key);
        json_array_append(ports, v);
    }
    return 0;
}

/* network_rm, then network_add (names). A service is on one network here:
 * an add needs it on the default one (bridge) or the rm of its own first. */
static int patch_network(json_t *s, json_t *patch, struct serr *err)
{
    json_t *rm = json_object_get(patch, "network_rm"), *add = json_object_get(patch, "network_add");
    if ((rm && !json_is_string(rm)) || (add && !json_is_string(add)))
        return serr_set(err, SERR_INVALID, "network_add, network_rm: expected a network's name");
    json_t *have = json_object_get(s, "network");
    if (rm) {
        if (!json_is_string(have) || strcasecmp(json_string_value(have),
                                                json_string_value(rm)) != 0)
            return serr_set(err, SERR_INVALID, "the service is not on network %s",
                            json_string_value(rm));
        json_object_del(s, "network");
        have = NULL;
    }
    if (add && json_is_string(have) && strcmp(json_string_value(have), "bridge") != 0 &&
        strcasecmp(json_string_value(have), json_string_value(add)) != 0)
        return serr_set(err, SERR_INVALID,
                        "a service is on one network here, and this one is on %s: give "
                        "--network-rm %s with --network-add %s",
                        json_string_value(have), json_string_value(have),
                        json_string_value(add));
    if (add)
        json_object_set(s, "network", add);
    return 0;
}

/* caps_add / caps_drop: each name joins one list and leaves the other (Docker's
 * update --cap-add / --cap-drop). */
static void patch_caps(json_t *s, json_t *names, const char *into, const char *from)
{
    if (json_array_size(names) == 0)
        return;
    size_t i, k;
    json_t *name, *have;
    json_t *to = json_object_get(s, into), *other = json_object_get(s, from);
    if (!json_is_array(to))
        json_object_set_new(s, into, to = json_array());
    json_array_foreach(names, i, name)
    {
        for (k = json_array_size(other); k-- > 0;)
            if (json_equal(json_array_get(other, k), name))
                json_array_remove(other, k);
        bool dup = false;
        json_array_foreach(to, k, have) dup |= json_equal(have, name);
        if (!dup)
            json_array_append(to, name);
    }
    if (json_array_size(other) == 0)
        json_object_del(s, from);
}

/* restart_condition, restart_delay_ms, stop_grace_period_ms, init: replaced
 * (the normalize after checks them). */
static void patch_replaced(json_t *s, json_t *patch)
{
    static const char *const replaced[] = {"restart_condition", "restart_delay_ms",
                                           "stop_grace_period_ms", "init", NULL};
    for (int i = 0; replaced[i]; i++) {
        json_t *v = json_object_get(patch, replaced[i]);
        if (v)
            json_object_set(s, replaced[i], v);
    }
}

/* patch[key], an object, merged into the spec's (set when it has none). */
static int patch_merge_object(json_t *s, json_t *patch, const char *key, struct serr *err)
{
    json_t *v = json_object_get(patch, key), *have = json_object_get(s, key);
    if (v == NULL)
        return 0;
    if (!json_is_object(v))
        return serr_set(err, SERR_INVALID, "%s must be an object", key);
    if (json_is_object(have))
        json_object_update(have, v);
    else
        json_object_set(s, key, v);
    return 0;
}

/* constraints_add/_rm (lists of expressions), limits {cpus, memory} and
 * reservations {cpus, memory} merged, force: the tasks are replaced even
 * when nothing else changed (Docker's ForceUpdate counter). */
static int patch_constraints_limits_force(json_t *s, json_t *patch, struct serr *err)
{
    json_t *rm = json_object_get(patch, "constraints_rm");
    json_t *add = json_object_get(patch, "constraints_add");
    if ((rm && jcheck_string_array(rm, "constraints_rm", err) < 0) ||
        (add && jcheck_string_array(add, "constraints_add", err) < 0))
        return -1;
    json_t *cons = json_object_get(s, "constraints");
    if (!json_is_array(cons))
        json_object_set_new(s, "constraints", cons = json_array());
    size_t i, k;
    json_t *c, *have;
    json_array_foreach(rm, i, c)
    {
        for (k = json_array_size(cons); k-- > 0;)
            if (json_equal(json_array_get(cons, k), c))
                json_array_remove(cons, k);
    }
    json_array_foreach(add, i, c)
    {
        bool dup = false;
        json_array_foreach(cons, k, have) dup |= json_equal(have, c);
        if (!dup)
            json_array_append(cons, c);
    }
    if (patch_merge_object(s, patch, "limits", err) < 0 ||
        patch_merge_object(s, patch, "reservations", err) < 0)
        return -1;
    json_t *force = json_object_get(patch, "force");
    if (force && !json_is_boolean(force))
        return serr_set(err, SERR_INVALID, "force must be a boolean");
    if (json_is_true(force))
        json_object_set_new(s, "force_update", json_integer(jint(s, "force_update", 0) + 1));
    return 0;
}

/* A service update's patch: an object of known fields only. */
static int check_patch_keys(json_t *patch, struct serr *err)
{
    static const char *const fields[] = {"image",       "env_add",    "env_rm",
                                         "args",        "replicas",   "update_config",
                                         "healthcheck", "publish_add", "publish_rm",
                                         "secrets_add", "secrets_rm", "configs_add",
                                         "configs_rm",  "limits",     "constraints_add",
                                         "constraints_rm", "force",  "schedule",
                                         "schedule_tz", "schedule_overlap", "network_add",
                                         "network_rm", "caps_add", "caps_drop",
                                         "restart_condition", "restart_delay_ms",
                                         "stop_grace_period_ms", "init", "reservations",
                                         "rollback_config", "max_concurrent", NULL};
    if (!json_is_object(patch))
        return serr_set(err, SERR_INVALID, "update must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach(patch, key, val)
    {
        if (!str_in_list(key, fields) && !str_in_list(key, service_container_patch_fields))
            return serr_set(err, SERR_INVALID, "unknown field '%s' in service update", key);
    }
    return 0;
}

/* The patch's env_rm (names) and env_add (NAME=VALUE, replacing the same
 * name) applied to spec `s`'s env. */
static int patch_env(json_t *s, json_t *patch, struct serr *err)
{
    json_t *env = json_object_get(s, "env");
    json_t *v;
    if ((v = json_object_get(patch, "env_rm")) && jcheck_string_array(v, "env_rm", err) < 0)
        return -1;
    if ((v = json_object_get(patch, "env_add")) && check_env(v, "env_add", err) < 0)
        return -1;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(patch, "env_rm"), i, e) env_remove(env, json_string_value(e));
    json_array_foreach(json_object_get(patch, "env_add"), i, e)
    {
        env_remove(env, json_string_value(e));
        json_array_append(env, e);
    }
    return 0;
}

/* The patch's update_config and rollback_config: merged into the spec's
 * when both are objects, else set (checked by the normalize after). */
static void patch_rollout_configs(json_t *s, json_t *patch)
{
    static const char *const rollout_configs[] = {"update_config", "rollback_config"};
    for (size_t k = 0; k < sizeof(rollout_configs) / sizeof(rollout_configs[0]); k++) {
        json_t *current = json_object_get(s, rollout_configs[k]);
        json_t *v = json_object_get(patch, rollout_configs[k]);
        if (v && json_is_object(v) && json_is_object(current))
            json_object_update(current, v);
        else if (v)
            json_object_set(s, rollout_configs[k], v);
    }
}

json_t *service_spec_patch(struct store *st, json_t *spec, json_t *patch, struct serr *err)
{
    if (check_patch_keys(patch, err) < 0)
        return NULL;
    json_t *s = json_deep_copy(spec);
    json_t *v;
    if (patch_env(s, patch, err) < 0 || patch_ports(s, patch, err) < 0 ||
        secret_refs_patch(s, patch, err) < 0)
        goto err_after_copy;
    if ((v = json_object_get(patch, "image")))
        json_object_set(s, "image", v);
    if ((v = json_object_get(patch, "args")))
        json_object_set(s, "args", v);
    if ((v = json_object_get(patch, "max_concurrent")))
        json_object_set(s, "max_concurrent", v); /* checked by the normalize below */
    if ((v = json_object_get(patch, "replicas"))) {
        if (service_mode_global(s)) {
            serr_set(err, SERR_INVALID, "replicas can only be used with replicated mode");
            goto err_after_copy;
        }
        json_object_set(s, "replicas", v);
    }
    patch_rollout_configs(s, patch);
    if ((v = json_object_get(patch, "healthcheck")) && patch_healthcheck(s, v, err) < 0)
        goto err_after_copy;
    if (patch_constraints_limits_force(s, patch, err) < 0 ||
        service_container_patch(s, patch, err) < 0 || patch_network(s, patch, err) < 0)
        goto err_after_copy;
    if (((v = json_object_get(patch, "caps_add")) && jcheck_string_array(v, "caps_add", err) < 0) ||
        ((v = json_object_get(patch, "caps_drop")) && jcheck_string_array(v, "caps_drop", err) < 0))
        goto err_after_copy;
    patch_caps(s, json_object_get(patch, "caps_add"), "cap_add", "cap_drop");
    patch_caps(s, json_object_get(patch, "caps_drop"), "cap_drop", "cap_add");
    patch_replaced(s, patch);
    static const char *const schedule_fields[] = {"schedule", "schedule_tz", "schedule_overlap"};
    for (size_t k = 0; k < sizeof(schedule_fields) / sizeof(schedule_fields[0]); k++) {
        if ((v = json_object_get(patch, schedule_fields[k])))
            json_object_set(s, schedule_fields[k], v); /* checked by the normalize below */
    }
    json_t *out = service_spec_normalize(st, s, err);
    json_decref(s);
    return out;

err_after_copy:
    json_decref(s);
    return NULL;
}

int service_spec_template_changed(json_t *a, json_t *b)
{
    static const char *const fields[] = {"image", "args", "env", "mounts", "limits", "init",
                                         "stop_grace_period_ms", "network", "healthcheck",
                                         "secrets", "configs", "force_update", "constraints",
                                         "hostname", "user", "workdir", "entrypoint",
                                         "container_labels", "read_only", "cap_add",
                                         "cap_drop", "sysctls", "ulimits", "stop_signal",
                                         "dns", "reservations", NULL};
    for (int i = 0; fields[i]; i++)
        if (!json_equal(json_object_get(a, fields[i]), json_object_get(b, fields[i])) &&
            (json_object_get(a, fields[i]) || json_object_get(b, fields[i])))
            return 1;
    return 0;
}

static json_t *merged_env(json_t *image_env, json_t *spec_env)
{
    json_t *env = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(image_env, i, e)
    {
        if (json_is_string(e))
            json_array_append(env, e);
    }
    if (json_array_size(env) == 0)
        json_array_append_new(
            env, json_string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    json_array_foreach(spec_env, i, e)
    {
        env_remove(env, json_string_value(e));
        json_array_append(env, e);
    }
    return env;
}

json_t *task_container_spec(json_t *spec, json_t *image)
{
    json_t *cfg = json_object_get(image, "config");
    json_t *args = service_task_args(spec, cfg);
    const char *workdir = jstr(cfg, "WorkingDir");
    const char *user = jstr(cfg, "User");
    json_t *c = json_pack("{s:O, s:O, s:o, s:o, s:s, s:s, s:O, s:O, s:O}", "image",
                          json_object_get(spec, "image"), "image_id", json_object_get(image, "id"),
                          "args", args, "env",
                          merged_env(json_object_get(cfg, "Env"), json_object_get(spec, "env")),
                          "workdir", workdir && *workdir ? workdir : "/", "user",
                          user && *user ? user : "0:0", "mounts", json_object_get(spec, "mounts"),
                          "init", json_object_get(spec, "init"), "stop_grace_period_ms",
                          json_object_get(spec, "stop_grace_period_ms"));
    json_t *limits = json_object_get(spec, "limits");
    if (limits)
        json_object_set(c, "limits", limits);
    json_t *network = json_object_get(spec, "network");
    if (network)
        json_object_set(c, "network", network);
    json_t *healthcheck = json_object_get(spec, "healthcheck");
    if (json_is_object(healthcheck))
        json_object_set(c, "healthcheck", healthcheck);
    if (json_array_size(json_object_get(spec, "secrets"))) /* references, never the data */
        json_object_set(c, "secrets", json_object_get(spec, "secrets"));
    if (json_array_size(json_object_get(spec, "configs")))
        json_object_set(c, "configs", json_object_get(spec, "configs"));
    service_container_apply(spec, c);
    return c;
}
