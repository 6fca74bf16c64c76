/* Node metrics: what a node reports about itself every few seconds (CPU,
 * memory, disk, load, temperature, and its running task containers).
 *
 * The parsers are pure: they take the text of /proc files, so unit tests
 * feed them recorded samples. The sampler reads the files under a root
 * prefix ("" on a real node, a recorded tree in tests) and keeps the
 * previous CPU counters, since a CPU percentage needs two samples. */
#ifndef SHOAL_AGENT_METRICS_H
#define SHOAL_AGENT_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct agent;
struct runtime;

/* Jiffies of the aggregate "cpu" line of /proc/stat. */
struct cpu_times {
    uint64_t busy;
    uint64_t total;
};

/* /proc/stat -> aggregate CPU times and the number of CPUs ("cpuN" lines).
 * Returns -1 when there is no "cpu" line. */
int metrics_parse_stat(const char *text, struct cpu_times *out, int *ncpus);
/* Share of the whole machine busy between two samples, 0..100 (0 when no
 * time passed). */
double metrics_cpu_percent(const struct cpu_times *prev, const struct cpu_times *cur);
/* /proc/meminfo -> bytes; used = MemTotal - MemAvailable. */
int metrics_parse_meminfo(const char *text, uint64_t *total, uint64_t *used);
/* /proc/loadavg -> the 1, 5 and 15 minute load averages. */
int metrics_parse_loadavg(const char *text, double load[3]);
/* The hottest <root>/sys/class/thermal/thermal_zone* /temp (millidegrees)
 * in °C. False when no zone gives a reading (machines without sensors). */
bool metrics_thermal_max(const char *root, double *celsius);
/* statvfs: bytes of the file system holding `path` (used as df counts it). */
int metrics_disk(const char *path, uint64_t *total, uint64_t *used);

/* CPU time of a task's container at the previous sample. */
struct task_cpu {
    char task_id[64];
    uint64_t cpu_ns;
};

struct metrics_sampler {
    const char *root;   /* "" on a node; prefix of /proc and /sys (borrowed) */
    struct agent *agent; /* running tasks; NULL: none (borrowed) */
    struct runtime *rt;  /* their cgroup counters (borrowed) */
    struct cpu_times prev_cpu; /* zero before the first sample: average since boot */
    int64_t prev_mono;   /* ms */
    struct task_cpu *prev_tasks;
    size_t nprev_tasks;
};

void metrics_sampler_init(struct metrics_sampler *s, const char *root, struct agent *agent,
                          struct runtime *rt);
void metrics_sampler_free(struct metrics_sampler *s);

/* One sample (new object in *out):
 * {"at","cpu_percent","cpus","mem_total","mem_used","disk_total","disk_used",
 *  "load1","load5","load15","temp_c"|null,"tasks":[{"id","cpu_percent","mem_bytes"}],
 *  "backup_failures"?:[{"volume","error","at"}] (agent_volumes_failures; only when some)}.
 * A task's cpu_percent is docker's: 100 is one CPU (0 at its first sample).
 * Returns -1 (and *out NULL) when /proc/stat or /proc/meminfo is unreadable. */
int metrics_sample(struct metrics_sampler *s, const char *disk_path, json_t **out);

#endif
