#include "daemon/daemon_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "daemon/shoal.h"
#include "manager/metrics_history.h"

/* "host[:port]" or "a.b.c.d/bits". */
static bool registry_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == ':' || c == '/' || c == '[' || c == ']';
        if (!ok)
            return false;
    }
    return true;
}

static int load_list(char ***out, const char *key, json_t *v, const char *path, struct serr *err)
{
    if (!json_is_array(v))
        return serr_set(err, SERR_INVALID, "%s: %s must be an array of strings", path, key);
    char **list = xcalloc(json_array_size(v) + 1, sizeof(*list));
    *out = list;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *s = json_string_value(e);
        if (s == NULL || !registry_name_ok(s))
            return serr_set(err, SERR_INVALID, "%s: %s[%zu]: expected \"host[:port]\" or a CIDR",
                            path, key, i);
        list[i] = xstrdup(s);
    }
    return 0;
}

/* "node-exec", "host-jobs": true (the default) or false into *disabled. */
static int load_switch(bool *disabled, const char *key, json_t *v, const char *path,
                       struct serr *err)
{
    if (!json_is_boolean(v))
        return serr_set(err, SERR_INVALID, "%s: %s must be true or false", path, key);
    *disabled = json_is_false(v);
    return 0;
}

static int load_percent(int *out, const char *key, json_t *v, const char *path, struct serr *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100)
        return serr_set(err, SERR_INVALID, "%s: %s must be an integer from 0 to 100", path, key);
    *out = (int)json_integer_value(v);
    return 0;
}

static int check_gc_percents(struct shoal *sh, const char *path, struct serr *err)
{
    if (sh->image_gc_low >= sh->image_gc_high && sh->image_gc_high < 100)
        return serr_set(err, SERR_INVALID,
                        "%s: image-gc-low-percent (%d) must be below image-gc-high-percent (%d)",
                        path, sh->image_gc_low, sh->image_gc_high);
    return 0;
}

static int load_job_history(struct shoal *sh, json_t *v, const char *path, struct serr *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return serr_set(err, SERR_INVALID, "%s: job-history must be a number of jobs above zero",
                        path);
    sh->job_history = (long long)json_integer_value(v);
    return 0;
}

static int load_history_days(struct shoal *sh, json_t *v, const char *path, struct serr *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 366)
        return serr_set(err, SERR_INVALID,
                        "%s: metrics-history-days must be a number of days (0 to 366)", path);
    sh->metrics_history_days = (int)json_integer_value(v);
    return 0;
}

static int load_string(char **out, const char *key, json_t *v, const char *prefix,
                       const char *path, struct serr *err)
{
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0' || (prefix && strncmp(s, prefix, strlen(prefix)) != 0))
        return serr_set(err, SERR_INVALID, "%s: %s must be a string%s%s", path, key,
                        prefix ? " starting with " : "", prefix ? prefix : "");
    free(*out);
    *out = xstrdup(s);
    return 0;
}

/* Docker's daemon.json "labels": ["key=value", ...] (engine labels, for
 * constraints engine.labels.KEY). */
static int load_engine_labels(struct shoal *sh, json_t *v, const char *path, struct serr *err)
{
    json_t *labels = json_object();
    size_t i;
    json_t *item;
    int rc = json_is_array(v) ? 0 : -1;
    json_array_foreach(v, i, item)
    {
        const char *kv = json_string_value(item);
        size_t klen = kv ? strcspn(kv, "=") : 0;
        if (klen == 0 || kv[klen] != '=' || strcspn(kv, " \t\n") < klen) {
            rc = -1;
            break;
        }
        char *key = xasprintf("%.*s", (int)klen, kv);
        json_object_set_new(labels, key, json_string(kv + klen + 1));
        free(key);
    }
    if (rc < 0) {
        json_decref(labels);
        return serr_set(err, SERR_INVALID, "%s: labels must be a list of \"key=value\" strings",
                        path);
    }
    json_decref(sh->engine_labels);
    sh->engine_labels = labels;
    return 0;
}

static int load_celsius(double *out, const char *key, json_t *v, const char *path,
                        struct serr *err)
{
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 200)
        return serr_set(err, SERR_INVALID, "%s: %s must be a number of degrees (0 to 200)", path,
                        key);
    *out = json_number_value(v);
    return 0;
}

int daemon_config_load(struct shoal *sh, const char *path, struct serr *err)
{
    const char *file = path ? path : DAEMON_CONFIG_DEFAULT;
    sh->image_gc_high = IMAGE_GC_HIGH_DEFAULT;
    sh->image_gc_low = IMAGE_GC_LOW_DEFAULT;
    sh->heat_hysteresis = 5;
    sh->metrics_history_days = METRICS_HISTORY_DAYS_DEFAULT;
    struct stat st;
    if (path == NULL && stat(file, &st) < 0 && errno == ENOENT)
        return 0;
    json_error_t jerr;
    json_t *cfg = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (cfg == NULL)
        return serr_set(err, SERR_INVALID, "configuration %s: %s", file, jerr.text);
    int rc = json_is_object(cfg) ? 0
                                 : serr_set(err, SERR_INVALID,
                                            "configuration %s: expected a "
                                            "JSON object",
                                            file);
    const char *key;
    json_t *v;
    json_object_foreach(cfg, key, v)
    {
        if (rc < 0)
            break;
        if (strcmp(key, "insecure-registries") == 0 && sh->insecure_registries == NULL)
            rc = load_list(&sh->insecure_registries, key, v, file, err);
        else if (strcmp(key, "allowed-registries") == 0 && sh->allowed_registries == NULL)
            rc = load_list(&sh->allowed_registries, key, v, file, err);
        else if (strcmp(key, "node-exec") == 0)
            rc = load_switch(&sh->node_exec_disabled, key, v, file, err);
        else if (strcmp(key, "host-jobs") == 0)
            rc = load_switch(&sh->host_jobs_disabled, key, v, file, err);
        else if (strcmp(key, "job-image") == 0)
            rc = load_string(&sh->job_image, key, v, NULL, file, err);
        else if (strcmp(key, "image-gc-high-percent") == 0)
            rc = load_percent(&sh->image_gc_high, key, v, file, err);
        else if (strcmp(key, "image-gc-low-percent") == 0)
            rc = load_percent(&sh->image_gc_low, key, v, file, err);
        else if (strcmp(key, "job-history") == 0)
            rc = load_job_history(sh, v, file, err);
        else if (strcmp(key, "metrics-history-days") == 0)
            rc = load_history_days(sh, v, file, err);
        else if (strcmp(key, "smtp-relay") == 0)
            rc = load_string(&sh->smtp_relay, key, v, "smtp", file, err);
        else if (strcmp(key, "smtp-from") == 0)
            rc = load_string(&sh->smtp_from, key, v, NULL, file, err);
        else if (strcmp(key, "backup-dir") == 0)
            rc = load_string(&sh->backup_dir, key, v, "/", file, err);
        else if (strcmp(key, "labels") == 0)
            rc = load_engine_labels(sh, v, file, err);
        else if (strcmp(key, "heat-threshold-celsius") == 0)
            rc = load_celsius(&sh->heat_threshold, key, v, file, err);
        else if (strcmp(key, "heat-hysteresis-celsius") == 0)
            rc = load_celsius(&sh->heat_hysteresis, key, v, file, err);
        else
            rc = serr_set(err, SERR_INVALID, "configuration %s: unknown key '%s'", file, key);
    }
    json_decref(cfg);
    if (rc == 0)
        rc = check_gc_percents(sh, file, err);
    if (rc < 0)
        daemon_config_free(sh);
    return rc;
}

static void free_list(char ***list)
{
    for (size_t i = 0; *list && (*list)[i]; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
}

void daemon_config_free(struct shoal *sh)
{
    free_list(&sh->insecure_registries);
    free_list(&sh->allowed_registries);
    free(sh->smtp_relay);
    free(sh->smtp_from);
    free(sh->backup_dir);
    free(sh->job_image);
    sh->smtp_relay = sh->smtp_from = sh->backup_dir = sh->job_image = NULL;
    json_decref(sh->engine_labels);
    sh->engine_labels = NULL;
}
