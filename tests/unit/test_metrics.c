/* Node metrics parsers and sampler, on samples recorded from a real node
 * (tests/unit/data/metrics: proc/stat.1 and stat.2 one second apart,
 * meminfo, loadavg, and a thermal tree with two zones). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metrics.h"
#include "base/util.h"
#include "manager/metrics_history.h"
#include "manager/stats.h"
#include "store/store.h"
#include "store_ops.h"
#include "unit.h"

/* Tests run from the repository root (make test), like __FILE__'s path. */
#define DATA "tests/unit/data/metrics"

static char *data_file(const char *rel)
{
    char *path = xasprintf(DATA "/%s", rel);
    char *text = NULL;
    struct serr err;
    if (read_file(path, &text, NULL, &err) < 0) {
        fprintf(stderr, "%s (run the unit tests from the repository root)\n", err.msg);
        exit(1);
    }
    free(path);
    return text;
}

static bool near(double a, double b)
{
    return fabs(a - b) < 0.01;
}

TEST(metrics_stat_cpu_percent_between_two_samples)
{
    char *t1 = data_file("proc/stat.1"), *t2 = data_file("proc/stat.2");
    struct cpu_times a, b;
    int ncpus = 0;
    CHECK(metrics_parse_stat(t1, &a, &ncpus) == 0 && ncpus == 2);
    CHECK(metrics_parse_stat(t2, &b, &ncpus) == 0);
    /* deltas: user 26, system 39, idle 131, iowait 1 -> 65 busy of 197 */
    CHECK(b.total - a.total == 197 && b.busy - a.busy == 65);
    CHECK(near(metrics_cpu_percent(&a, &b), 100.0 * 65 / 197));
    CHECK(metrics_cpu_percent(&b, &b) == 0);  /* no time passed */
    CHECK(metrics_cpu_percent(&b, &a) == 0);  /* counters went back (never above 100) */
    CHECK(metrics_parse_stat("intr 1 2 3\n", &a, &ncpus) < 0);
    CHECK(metrics_parse_stat("cpu0 1 2 3 4\n", &a, &ncpus) < 0); /* no aggregate line */
    free(t1);
    free(t2);
}

TEST(metrics_meminfo_used_is_total_minus_available)
{
    char *text = data_file("proc/meminfo");
    uint64_t total, used;
    CHECK(metrics_parse_meminfo(text, &total, &used) == 0);
    CHECK(total == 24684084ULL * 1024);
    CHECK(used == (24684084ULL - 24200788ULL) * 1024);
    /* old kernels: no MemAvailable, MemFree stands in */
    CHECK(metrics_parse_meminfo("MemTotal: 1000 kB\nMemFree: 400 kB\n", &total, &used) == 0);
    CHECK(total == 1000 * 1024 && used == 600 * 1024);
    CHECK(metrics_parse_meminfo("MemFree: 400 kB\n", &total, &used) < 0);
    free(text);
}

TEST(metrics_loadavg)
{
    char *text = data_file("proc/loadavg");
    double load[3];
    CHECK(metrics_parse_loadavg(text, load) == 0);
    CHECK(near(load[0], 1.80) && near(load[1], 1.43) && near(load[2], 1.03));
    CHECK(metrics_parse_loadavg("garbage", load) < 0);
    free(text);
}

TEST(metrics_thermal_takes_the_hottest_zone)
{
    double c = 0;
    CHECK(metrics_thermal_max(DATA, &c));
    CHECK(near(c, 47.25));
    CHECK(!metrics_thermal_max(DATA "/nowhere", &c)); /* no sensors: unknown, not 0 */
}

TEST(metrics_sample_on_a_recorded_tree)
{
    struct metrics_sampler s;
    metrics_sampler_init(&s, DATA, NULL, NULL);
    json_t *sample;
    CHECK(metrics_sample(&s, "/", &sample) == 0);
    static const char *const keys[] = {"at", "cpu_percent", "cpus", "mem_total", "mem_used",
                                       "disk_total", "disk_used", "load1", "load5", "load15",
                                       "temp_c", "tasks", NULL};
    for (int i = 0; keys[i]; i++)
        CHECK(json_object_get(sample, keys[i]) != NULL);
    /* the first sample averages since boot */
    double cpu = json_real_value(json_object_get(sample, "cpu_percent"));
    CHECK(cpu > 0 && cpu < 100);
    CHECK(json_integer_value(json_object_get(sample, "cpus")) == 2);
    CHECK(json_integer_value(json_object_get(sample, "mem_used")) ==
          (json_int_t)(24684084LL - 24200788LL) * 1024);
    CHECK(json_integer_value(json_object_get(sample, "disk_total")) > 0);
    CHECK(near(json_real_value(json_object_get(sample, "temp_c")), 47.25));
    CHECK(json_array_size(json_object_get(sample, "tasks")) == 0);
    json_decref(sample);
    /* same counters again: nothing ran in between */
    CHECK(metrics_sample(&s, "/", &sample) == 0);
    CHECK(json_real_value(json_object_get(sample, "cpu_percent")) == 0);
    json_decref(sample);
    metrics_sampler_free(&s);

    metrics_sampler_init(&s, DATA "/nowhere", NULL, NULL);
    CHECK(metrics_sample(&s, "/", &sample) < 0 && sample == NULL);
    metrics_sampler_free(&s);
}

TEST(metrics_sample_of_this_machine)
{
    struct metrics_sampler s;
    metrics_sampler_init(&s, "", NULL, NULL);
    json_t *sample;
    CHECK(metrics_sample(&s, "/", &sample) == 0);
    json_int_t total = json_integer_value(json_object_get(sample, "mem_total"));
    json_int_t used = json_integer_value(json_object_get(sample, "mem_used"));
    CHECK(total > 0 && used > 0 && used <= total);
    CHECK(json_object_get(sample, "temp_c") != NULL); /* a number or null */
    json_decref(sample);
    metrics_sampler_free(&s);
}

static json_t *fake_sample(json_int_t at, double cpu)
{
    return json_pack("{s:I, s:f, s:I, s:n, s:f}", "at", at, "cpu_percent", cpu, "mem_used",
                     (json_int_t)1000, "temp_c", "load1", 0.5);
}

TEST(stats_keep_one_point_every_10s_for_an_hour)
{
    struct stats *st = stats_new();
    json_t *h = stats_history(st, "n1");
    CHECK(stats_latest(st, "n1") == NULL && json_array_size(h) == 0);
    json_decref(h);
    /* two hours of samples every 2 s: 5 samples per kept point */
    for (int i = 0; i < 3600; i++) {
        json_t *s = fake_sample(1000000 + i * 2000, i % 100);
        stats_record(st, "n1", s, (int64_t)i * 2000);
        stats_record(st, "n1", s, (int64_t)i * 2000 + 500); /* the same sample again */
        json_decref(s);
    }
    h = stats_history(st, "n1");
    CHECK(json_array_size(h) == STATS_HISTORY_POINTS);
    json_int_t first = json_integer_value(json_object_get(json_array_get(h, 0), "at"));
    json_int_t last = json_integer_value(json_object_get(json_array_get(h, 359), "at"));
    CHECK(last - first == 359 * 10000); /* oldest first, 10 s apart, the last hour */
    CHECK(json_is_null(json_object_get(json_array_get(h, 0), "temp_c")));
    CHECK(json_integer_value(json_object_get(stats_latest(st, "n1"), "at")) ==
          1000000 + 3599 * 2000);
    json_decref(h);
    stats_record(st, "n2", json_null(), 0); /* not a sample: ignored */
    CHECK(stats_latest(st, "n2") == NULL);
    stats_free(st);
}

/* Numbers in a node's sample that do not fit the history's types are no value
 * (1e300 into an int64 was undefined behaviour: found by fuzz_api_json). */
TEST(stats_sample_out_of_range_numbers)
{
    struct stats *st = stats_new();
    json_t *s = json_pack("{s:I, s:f, s:f}", "at", (json_int_t)1, "mem_used", 1e300, "cpu_percent",
                          -1e300);
    stats_record(st, "n1", s, 0);
    json_decref(s);
    s = json_pack("{s:I, s:f}", "at", (json_int_t)2, "mem_used", -5.0);
    stats_record(st, "n1", s, STATS_POINT_EVERY_MS);
    json_decref(s);
    json_t *h = stats_history(st, "n1");
    CHECK(json_array_size(h) == 2);
    CHECK(json_integer_value(json_object_get(json_array_get(h, 0), "mem_used")) == 0);
    CHECK(json_integer_value(json_object_get(json_array_get(h, 1), "mem_used")) == 0);
    json_decref(h);
    stats_free(st);
}

static json_t *window_sample(json_int_t at, double cpu, double mem, double load, json_t *temp)
{
    return json_pack("{s:I, s:f, s:f, s:f, s:o, s:I}", "at", at, "cpu_percent", cpu, "mem_used",
                     mem, "load1", load, "temp_c", temp, "disk_used", (json_int_t)2048);
}

static void record_window(struct stats *st, const char *node, json_int_t at, double cpu,
                          double mem, double load, json_t *temp)
{
    json_t *s = window_sample(at, cpu, mem, load, temp);
    stats_record(st, node, s, at);
    json_decref(s);
}

static double point_number(json_t *points, size_t i, const char *key)
{
    return json_number_value(json_object_get(json_array_get(points, i), key));
}

/* Appends a window's row to the store's ring at `at`. */
static void append_window(struct store *s, struct stats *st, int64_t at)
{
    json_t *op = metrics_history_op(stats_take_windows(st), at, 300000, 86400000);
    CHECK(json_integer_value(json_object_get(op, "keep_from")) == at - 86400000);
    CHECK(json_integer_value(json_object_get(op, "keep_max")) == 289); /* a day of 5 min */
    unit_apply_ops(s, json_pack("[o]", op));
}

TEST(stats_windows_become_stored_history)
{
    struct stats *st = stats_new();
    struct store *s;
    CHECK(store_open(&s, NULL) == 0);
    record_window(st, "n1", 1000, 10, 1024 * 1000, 0.5, json_null());
    record_window(st, "n1", 1000, 90, 0, 0, json_null()); /* the same sample again: ignored */
    record_window(st, "n1", 3000, 30, 1024 * 3000, 1.5, json_real(40.04));
    record_window(st, "n2", 3000, 1e300, -1, 1, json_null()); /* out of range: no value */
    json_t *w = stats_take_windows(st);
    char *text = json_dumps(json_object_get(w, "n1"), JSON_COMPACT);
    CHECK_STR(text, "[200,300,2000,3000,100,150,400,400,2]");
    free(text);
    text = json_dumps(json_object_get(w, "n2"), JSON_COMPACT);
    CHECK_STR(text, "[0,0,0,0,100,100,null,null,2]");
    free(text);
    json_decref(w);
    w = stats_take_windows(st); /* a new window: empty until the next sample */
    CHECK(json_object_size(w) == 0);
    json_decref(w);

    record_window(st, "n1", 5000, 10, 1024 * 1000, 0.5, json_null());
    record_window(st, "n1", 7000, 30, 1024 * 3000, 1.5, json_real(40));
    append_window(s, st, 300000);
    record_window(st, "n1", 9000, 50, 1024 * 5000, 2.5, json_real(50));
    append_window(s, st, 600000);
    json_t *rows = store_ring_member(s, METRICS_HISTORY_TABLE, 0, "n1");
    json_t *points = metrics_history_points(rows, 0);
    CHECK(json_array_size(points) == 2);
    CHECK(point_number(points, 0, "at") == 300000 && point_number(points, 0, "step") == 300000);
    CHECK(point_number(points, 0, "cpu_percent") == 20 && point_number(points, 0, "cpu_percent_max") == 30);
    CHECK(point_number(points, 0, "mem_used") == 2000 * 1024 && point_number(points, 0, "disk_used") == 2048);
    CHECK(point_number(points, 0, "load1") == 1 && point_number(points, 0, "temp_c") == 40);
    CHECK(json_is_integer(json_object_get(json_array_get(points, 0), "mem_used")));
    json_decref(points);
    /* merged into 10-minute buckets: means of the averages, max of the maxima */
    points = metrics_history_points(rows, 600000);
    CHECK(json_array_size(points) == 1);
    CHECK(point_number(points, 0, "at") == 600000 && point_number(points, 0, "step") == 600000);
    CHECK(point_number(points, 0, "cpu_percent") == 35 && point_number(points, 0, "cpu_percent_max") == 50);
    CHECK(point_number(points, 0, "temp_c") == 45 && point_number(points, 0, "temp_c_max") == 50);
    json_decref(points);
    json_decref(rows);
    store_close(s);
    stats_free(st);
}
