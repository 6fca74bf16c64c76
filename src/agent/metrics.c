#include "agent/metrics.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "agent/agent.h"
#include "agent/runtime.h"
#include "agent/volumes.h"
#include "base/json_get.h"
#include "base/util.h"

/* ---- parsers ---- */

/* The line starting with `prefix` (a whole word), or NULL. */
static const char *find_line(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, n) == 0 && (p[n] == ' ' || p[n] == '\t'))
            return p + n;
    return NULL;
}

int metrics_parse_stat(const char *text, struct cpu_times *out, int *ncpus)
{
    const char *line = find_line(text, "cpu");
    if (line == NULL)
        return -1;
    /* user nice system idle iowait irq softirq steal; guest time is already
     * counted in user. Idle and iowait are the idle part. */
    unsigned long long v[8] = {0};
    if (sscanf(line, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) < 4)
        return -1;
    uint64_t total = 0;
    for (int i = 0; i < 8; i++)
        total += v[i];
    out->total = total;
    out->busy = total - v[3] - v[4];
    int n = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, "cpu", 3) == 0 && p[3] >= '0' && p[3] <= '9')
            n++;
    *ncpus = n > 0 ? n : 1;
    return 0;
}

double metrics_cpu_percent(const struct cpu_times *prev, const struct cpu_times *cur)
{
    if (cur->total <= prev->total || cur->busy < prev->busy)
        return 0;
    double pct = 100.0 * (double)(cur->busy - prev->busy) / (double)(cur->total - prev->total);
    return pct > 100 ? 100 : pct;
}

/* "Key:   1234 kB" -> bytes. */
static int meminfo_bytes(const char *text, const char *key, uint64_t *bytes)
{
    const char *line = NULL;
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, n) == 0 && p[n] == ':')
            line = p + n + 1;
    unsigned long long kb;
    if (line == NULL || sscanf(line, "%llu", &kb) != 1)
        return -1;
    *bytes = (uint64_t)kb * 1024;
    return 0;
}

int metrics_parse_meminfo(const char *text, uint64_t *total, uint64_t *used)
{
    uint64_t available;
    if (meminfo_bytes(text, "MemTotal", total) < 0)
        return -1;
    /* kernels before 3.14 lack MemAvailable: free memory is the best guess */
    if (meminfo_bytes(text, "MemAvailable", &available) < 0 &&
        meminfo_bytes(text, "MemFree", &available) < 0)
        return -1;
    *used = available < *total ? *total - available : 0;
    return 0;
}

int metrics_parse_loadavg(const char *text, double load[3])
{
    return sscanf(text, "%lf %lf %lf", &load[0], &load[1], &load[2]) == 3 ? 0 : -1;
}

bool metrics_thermal_max(const char *root, double *celsius)
{
    char *pattern = xasprintf("%s/sys/class/thermal/thermal_zone*/temp", root);
    glob_t g;
    bool found = false;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            char *text = NULL;
            long milli;
            /* a zone whose sensor is off fails to read (ENODATA): skip it */
            if (read_file(g.gl_pathv[i], &text, NULL, NULL) == 0 &&
                sscanf(text, "%ld", &milli) == 1 && (!found || milli / 1000.0 > *celsius)) {
                *celsius = milli / 1000.0;
                found = true;
            }
            free(text);
        }
        globfree(&g);
    }
    free(pattern);
    return found;
}

int metrics_disk(const char *path, uint64_t *total, uint64_t *used)
{
    struct statvfs st;
    if (statvfs(path, &st) < 0)
        return -1;
    *total = (uint64_t)st.f_blocks * st.f_frsize;
    *used = (uint64_t)(st.f_blocks - st.f_bfree) * st.f_frsize;
    return 0;
}

/* ---- sampler ---- */

void metrics_sampler_init(struct metrics_sampler *s, const char *root, struct agent *agent,
                          struct runtime *rt)
{
    *s = (struct metrics_sampler){.root = root, .agent = agent, .rt = rt};
}

void metrics_sampler_free(struct metrics_sampler *s)
{
    free(s->prev_tasks);
    s->prev_tasks = NULL;
    s->nprev_tasks = 0;
}

static char *read_under(const struct metrics_sampler *s, const char *rel)
{
    char *path = xasprintf("%s%s", s->root, rel);
    char *text = NULL;
    if (read_file(path, &text, NULL, NULL) < 0)
        text = NULL;
    free(path);
    return text;
}

static uint64_t prev_task_cpu(const struct metrics_sampler *s, const char *task_id, bool *known)
{
    for (size_t i = 0; i < s->nprev_tasks; i++)
        if (strcmp(s->prev_tasks[i].task_id, task_id) == 0) {
            *known = true;
            return s->prev_tasks[i].cpu_ns;
        }
    *known = false;
    return 0;
}

/* [{"id","cpu_percent","mem_bytes"}] for the running tasks; remembers their
 * CPU time for the next sample (tasks gone meanwhile are forgotten). */
static json_t *sample_tasks(struct metrics_sampler *s, int64_t elapsed_ms)
{
    json_t *out = json_array();
    json_t *running = s->agent ? agent_running_tasks(s->agent) : json_array();
    size_t n = json_array_size(running);
    struct task_cpu *now = xcalloc(n ? n : 1, sizeof(*now));
    size_t i;
    json_t *t;
    json_array_foreach(running, i, t)
    {
        const char *id = jstr(t, "id");
        const char *ctr = jstr(t, "container");
        uint64_t cpu_ns = 0, mem = 0;
        runtime_stats(s->rt, ctr, &cpu_ns, &mem);
        bool known;
        uint64_t before = prev_task_cpu(s, id, &known);
        double pct = known && elapsed_ms > 0 && cpu_ns >= before
                         ? 100.0 * (double)(cpu_ns - before) / ((double)elapsed_ms * 1e6)
                         : 0;
        snprintf(now[i].task_id, sizeof(now[i].task_id), "%s", id);
        now[i].cpu_ns = cpu_ns;
        json_array_append_new(out, json_pack("{s:s, s:f, s:I}", "id", id, "cpu_percent", pct,
                                             "mem_bytes", (json_int_t)mem));
    }
    free(s->prev_tasks);
    s->prev_tasks = now;
    s->nprev_tasks = n;
    json_decref(running);
    return out;
}

static json_t *sample_cpu(struct metrics_sampler *s, const char *stat_text)
{
    struct cpu_times cur;
    int ncpus;
    if (metrics_parse_stat(stat_text, &cur, &ncpus) < 0)
        return NULL;
    double pct = metrics_cpu_percent(&s->prev_cpu, &cur);
    s->prev_cpu = cur;
    return json_pack("{s:f, s:i}", "cpu_percent", pct, "cpus", ncpus);
}

static void add_load_and_temp(struct metrics_sampler *s, json_t *out)
{
    char *text = read_under(s, "/proc/loadavg");
    double load[3] = {0, 0, 0};
    if (text)
        metrics_parse_loadavg(text, load);
    free(text);
    json_object_set_new(out, "load1", json_real(load[0]));
    json_object_set_new(out, "load5", json_real(load[1]));
    json_object_set_new(out, "load15", json_real(load[2]));
    double temp;
    /* SHOAL_THERMAL_ROOT (tests, boards without sensors): a directory
     * holding sys/class/thermal/thermal_zone* /temp read instead of the host's */
    const char *thermal_root = getenv("SHOAL_THERMAL_ROOT");
    if (thermal_root == NULL || s->root[0] != '\0')
        thermal_root = s->root;
    json_object_set_new(out, "temp_c",
                        metrics_thermal_max(thermal_root, &temp) ? json_real(temp) : json_null());
}

int metrics_sample(struct metrics_sampler *s, const char *disk_path, json_t **out)
{
    *out = NULL;
    char *stat_text = read_under(s, "/proc/stat");
    char *mem_text = read_under(s, "/proc/meminfo");
    uint64_t mem_total = 0, mem_used = 0, disk_total = 0, disk_used = 0;
    json_t *sample = stat_text ? sample_cpu(s, stat_text) : NULL;
    free(stat_text);
    if (sample && (mem_text == NULL || metrics_parse_meminfo(mem_text, &mem_total, &mem_used) < 0)) {
        json_decref(sample);
        sample = NULL;
    }
    free(mem_text);
    if (sample == NULL)
        return -1;
    metrics_disk(disk_path, &disk_total, &disk_used); /* zeros when it fails */
    int64_t mono = mono_ms();
    int64_t elapsed = s->prev_mono ? mono - s->prev_mono : 0;
    s->prev_mono = mono;
    json_object_set_new(sample, "at", json_integer(now_ms()));
    json_object_set_new(sample, "mem_total", json_integer((json_int_t)mem_total));
    json_object_set_new(sample, "mem_used", json_integer((json_int_t)mem_used));
    json_object_set_new(sample, "disk_total", json_integer((json_int_t)disk_total));
    json_object_set_new(sample, "disk_used", json_integer((json_int_t)disk_used));
    add_load_and_temp(s, sample);
    json_object_set_new(sample, "tasks", sample_tasks(s, elapsed));
    json_t *failures = s->agent ? agent_volumes_failures(s->agent) : NULL;
    if (json_array_size(failures) > 0) /* only then: samples go with every heartbeat */
        json_object_set(sample, "backup_failures", failures);
    json_decref(failures);
    *out = sample;
    return 0;
}
