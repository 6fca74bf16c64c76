#include "manager/volume.h"

#include <ctype.h>
#include <string.h>

#include "base/json_get.h"
#include "base/util.h"
#include "model/service.h"
#include "model/task.h"
#include "store/store.h"

bool volume_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

static int check_labels(json_t *labels, struct serr *err)
{
    if (labels == NULL)
        return 0;
    if (!json_is_object(labels))
        return serr_set(err, SERR_INVALID, "labels must be an object of strings");
    const char *key;
    json_t *val;
    json_object_foreach(labels, key, val)
    {
        if (*key == '\0' || !json_is_string(val))
            return serr_set(err, SERR_INVALID, "label %s: expected a non-empty key and a "
                            "string value", key);
    }
    return 0;
}

static int check_body(json_t *body, struct serr *err)
{
    if (!json_is_object(body))
        return serr_set(err, SERR_INVALID, "volume must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach(body, key, val)
    {
        if (strcmp(key, "name") != 0 && strcmp(key, "labels") != 0 && strcmp(key, "backup") != 0)
            return serr_set(err, SERR_INVALID, "unknown field '%s' in volume", key);
    }
    const char *name = jstr(body, "name");
    if (!volume_name_valid(name))
        return serr_set(err, SERR_INVALID, "invalid volume name '%s' (letters, digits, '_', "
                        "'.', '-', starting with a letter or digit; at most 64)",
                        name ? name : "");
    return check_labels(json_object_get(body, "labels"), err);
}

int volume_schedule_seconds(const char *schedule, long long *seconds, struct serr *err)
{
    int64_t ms = 0;
    if (schedule && strcmp(schedule, "daily") == 0)
        ms = 86400000;
    else if (schedule && strcmp(schedule, "hourly") == 0)
        ms = 3600000;
    else if (schedule == NULL || *schedule == '\0' || parse_duration(schedule, &ms, NULL) < 0 ||
             ms < 1000 || ms % 1000 != 0)
        return serr_set(err, SERR_INVALID, "invalid backup schedule '%s': daily, hourly or an "
                        "interval of whole seconds such as 30m, 6h, 90s", schedule ? schedule : "");
    *seconds = ms / 1000;
    return 0;
}

json_t *volume_backup_policy(json_t *backup, struct serr *err)
{
    if (!json_is_object(backup)) {
        serr_set(err, SERR_INVALID, "backup must be an object {\"schedule\", \"keep\", \"hook\"}");
        return NULL;
    }
    const char *key;
    json_t *val;
    json_object_foreach(backup, key, val)
    {
        if (strcmp(key, "schedule") && strcmp(key, "keep") && strcmp(key, "hook")) {
            serr_set(err, SERR_INVALID, "unknown field '%s' in backup", key);
            return NULL;
        }
    }
    long long seconds = 0;
    json_t *keep = json_object_get(backup, "keep"), *hook = json_object_get(backup, "hook");
    if (volume_schedule_seconds(jstr(backup, "schedule"), &seconds, err) < 0)
        return NULL;
    if (keep && (!json_is_integer(keep) || json_integer_value(keep) < 1 ||
                 json_integer_value(keep) > VOLUME_KEEP_MAX)) {
        serr_set(err, SERR_INVALID, "backup keep must be a number of backups from 1 to %d",
                 VOLUME_KEEP_MAX);
        return NULL;
    }
    if (hook && (!json_is_string(hook) || json_string_length(hook) == 0)) {
        serr_set(err, SERR_INVALID, "backup hook must be a non-empty command");
        return NULL;
    }
    json_t *policy = json_pack("{s:s, s:I, s:I}", "schedule", jstr(backup, "schedule"),
                               "interval_s", (json_int_t)seconds, "keep",
                               keep ? json_integer_value(keep) : (json_int_t)VOLUME_KEEP_DEFAULT);
    if (hook)
        json_object_set(policy, "hook", hook);
    return policy;
}

static json_t *record(const char *name, json_t *labels, const char *node_id)
{
    return json_pack("{s:s, s:s, s:O, s:I, s:s}", "id", name, "name", name, "labels", labels,
                     "created_at", (json_int_t)now_ms(), "node_id", node_id);
}

json_t *volume_new(struct store *st, json_t *body, const char *node_id, struct serr *err)
{
    if (check_body(body, err) < 0)
        return NULL;
    const char *name = jstr(body, "name");
    json_t *dup = volume_get(st, name, NULL);
    if (dup) {
        json_decref(dup);
        serr_set(err, SERR_CONFLICT, "volume %s already exists", name);
        return NULL;
    }
    json_t *policy = NULL, *backup = json_object_get(body, "backup");
    if (backup && (policy = volume_backup_policy(backup, err)) == NULL)
        return NULL;
    json_t *labels = json_object_get(body, "labels");
    json_t *empty = json_object();
    json_t *rec = record(name, labels ? labels : empty, node_id);
    json_decref(empty);
    if (policy)
        json_object_set_new(rec, "backup", policy);
    return rec;
}

json_t *volume_get(struct store *st, const char *name, struct serr *err)
{
    json_t *rows = store_list_where(st, "volumes", "name", name ? name : "");
    json_t *rec = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    if (rec == NULL)
        serr_set(err, SERR_NOT_FOUND, "no such volume: %s", name ? name : "");
    return rec;
}

static bool spec_mounts(json_t *spec, const char *name)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(spec, "mounts"), i, m)
    {
        if (jstr_is(m, "type", "volume") && jstr_is(m, "source", name))
            return true;
    }
    return false;
}

/* The services mounting the volume (new array of service records). */
static json_t *services_mounting(struct store *st, const char *name)
{
    json_t *svcs = store_list(st, "services", "name"), *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s)
    {
        if (spec_mounts(service_spec(s), name))
            json_array_append(out, s);
    }
    json_decref(svcs);
    return out;
}

json_t *volume_services(struct store *st, const char *name)
{
    json_t *svcs = services_mounting(st, name), *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s)
        json_array_append(out, json_object_get(s, "name"));
    json_decref(svcs);
    return out;
}

json_t *volume_tasks(struct store *st, const char *name)
{
    json_t *svcs = services_mounting(st, name), *out = json_array();
    size_t i, j;
    json_t *s, *t;
    json_array_foreach(svcs, i, s)
    {
        json_t *tasks = store_list_where(st, "tasks", "service_id", service_id(s));
        json_array_foreach(tasks, j, t)
        {
            if (task_finished(t))
                continue;
            json_array_append_new(out, json_pack("{s:s?, s:s?, s:s?, s:s?}", "id", task_id(t),
                                                 "service", service_name(s), "node_id",
                                                 task_node_id(t), "state", task_state(t)));
        }
        json_decref(tasks);
    }
    json_decref(svcs);
    return out;
}

/* The node holding the volume: that of a running task using it, else of
 * any task using it, else the one it was created on ("" when none). */
const char *volume_holder(json_t *rec, json_t *tasks)
{
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (task_state_is(t, "running") && task_node_id(t))
            return task_node_id(t);
    }
    json_array_foreach(tasks, i, t)
    {
        if (task_node_id(t) && *task_node_id(t))
            return task_node_id(t);
    }
    return jstr_or(rec, "node_id", "");
}

void volume_missing_ops(struct store *st, json_t *group, json_t *spec)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(spec, "mounts"), i, m)
    {
        const char *name = jstr(m, "source");
        if (!jstr_is(m, "type", "volume") || !volume_name_valid(name))
            continue;
        json_t *rec = volume_get(st, name, NULL);
        if (rec == NULL) {
            json_t *labels = json_object();
            json_array_append_new(group, op_put("volumes", record(name, labels, "")));
            json_decref(labels);
        }
        json_decref(rec);
    }
}

json_t *volume_dangling(struct store *st)
{
    json_t *vols = store_list(st, "volumes", "name"), *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(vols, i, v)
    {
        json_t *users = services_mounting(st, jstr(v, "name"));
        if (json_array_size(users) == 0)
            json_array_append(out, v);
        json_decref(users);
    }
    json_decref(vols);
    return out;
}
