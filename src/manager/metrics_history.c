#include "manager/metrics_history.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "store/store.h"

static const char *const stored_fields[] = {
    "cpu_percent_x10", "cpu_percent_max_x10", "mem_used_kib", "mem_used_max_kib", "load1_x100",
    "load1_max_x100",  "temp_c_x10",          "temp_c_max_x10", "disk_used_kib", NULL};

/* A number of the sample, or NAN when missing or out of what a node can
 * mean (a fuzzed 1e300 must not overflow the integers stored). */
static double number(json_t *sample, const char *key, double lo, double hi)
{
    json_t *v = json_object_get(sample, key);
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    return x >= lo && x <= hi ? x : NAN;
}

static void add_to(double *sum, double *max, double x, bool first)
{
    *sum += x;
    if (first || x > *max)
        *max = x;
}

void metrics_window_add(struct metrics_window *w, json_t *sample)
{
    double cpu = number(sample, "cpu_percent", 0, 1e6);
    double mem = number(sample, "mem_used", 0, 1e18);
    double load = number(sample, "load1", 0, 1e6);
    double temp = number(sample, "temp_c", -300, 1000);
    double disk = number(sample, "disk_used", 0, 1e18);
    if (isnan(cpu) && isnan(mem) && isnan(load))
        return;
    bool first = w->samples == 0;
    if (first)
        w->disk_used = -1;
    add_to(&w->cpu_sum, &w->cpu_max, isnan(cpu) ? 0 : cpu, first);
    add_to(&w->mem_sum, &w->mem_max, isnan(mem) ? 0 : mem, first);
    add_to(&w->load_sum, &w->load_max, isnan(load) ? 0 : load, first);
    w->samples++;
    if (!isnan(temp)) {
        add_to(&w->temp_sum, &w->temp_max, temp, w->temp_samples == 0);
        w->temp_samples++;
    }
    if (!isnan(disk))
        w->disk_used = disk;
}

static json_t *scaled(double x, double scale)
{
    return isnan(x) || x < 0 ? json_null() : json_integer((json_int_t)llround(x * scale));
}

static json_t *scaled_temp(double x)
{
    return isnan(x) ? json_null() : json_integer((json_int_t)llround(x * 10));
}

json_t *metrics_window_values(const struct metrics_window *w)
{
    if (w->samples == 0)
        return NULL;
    double n = w->samples, tn = w->temp_samples;
    return json_pack("[o, o, o, o, o, o, o, o, o]", scaled(w->cpu_sum / n, 10),
                     scaled(w->cpu_max, 10), scaled(w->mem_sum / n, 1.0 / 1024),
                     scaled(w->mem_max, 1.0 / 1024), scaled(w->load_sum / n, 100),
                     scaled(w->load_max, 100),
                     scaled_temp(w->temp_samples ? w->temp_sum / tn : NAN),
                     scaled_temp(w->temp_samples ? w->temp_max : NAN),
                     scaled(w->disk_used, 1.0 / 1024));
}

json_t *metrics_history_fields(void)
{
    json_t *out = json_array();
    for (int i = 0; stored_fields[i]; i++)
        json_array_append_new(out, json_string(stored_fields[i]));
    return out;
}

json_t *metrics_history_op(json_t *nodes, int64_t at, int64_t step, int64_t keep_ms)
{
    json_t *row = json_pack("{s:I, s:I, s:o, s:o}", "at", (json_int_t)at, "step",
                            (json_int_t)step, "fields", metrics_history_fields(), "nodes", nodes);
    return op_append(METRICS_HISTORY_TABLE, row, at - keep_ms, keep_ms / step + 1);
}

/* ---- reading ---- */

#define MAX_FIELDS 32

/* A stored field's name in the API ("cpu_percent_x10" -> "cpu_percent")
 * and how to get its unit. */
struct field {
    char name[64];
    double mul, div; /* value = stored * mul / div (exact for tenths) */
    bool is_max;
    bool integer; /* bytes */
};

static bool cut_suffix(char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    if (n <= k || strcmp(name + n - k, suffix) != 0)
        return false;
    name[n - k] = '\0';
    return true;
}

static void field_from_stored(struct field *f, const char *stored)
{
    snprintf(f->name, sizeof(f->name), "%s", stored ? stored : "");
    f->mul = f->div = 1;
    f->integer = false;
    if (cut_suffix(f->name, "_x10"))
        f->div = 10;
    else if (cut_suffix(f->name, "_x100"))
        f->div = 100;
    else if (cut_suffix(f->name, "_kib")) {
        f->mul = 1024;
        f->integer = true;
    }
    size_t n = strlen(f->name);
    f->is_max = n > 4 && strcmp(f->name + n - 4, "_max") == 0;
}

/* One bucket being merged: the rows' fields (all alike), sums and maxima. */
struct bucket {
    json_t *fields; /* borrowed from the first row */
    size_t nfields;
    struct field field[MAX_FIELDS];
    double sum[MAX_FIELDS], max[MAX_FIELDS];
    int count[MAX_FIELDS];
    int64_t key, at, step;
    int rows;
};

static void bucket_start(struct bucket *b, json_t *row, int64_t key)
{
    memset(b, 0, sizeof(*b));
    b->fields = json_object_get(row, "fields");
    b->nfields = json_array_size(b->fields) < MAX_FIELDS ? json_array_size(b->fields) : MAX_FIELDS;
    for (size_t i = 0; i < b->nfields; i++)
        field_from_stored(&b->field[i], json_string_value(json_array_get(b->fields, i)));
    b->key = key;
}

static void bucket_add(struct bucket *b, json_t *row)
{
    json_t *values = json_object_get(row, "values");
    for (size_t i = 0; i < b->nfields; i++) {
        json_t *v = json_array_get(values, i);
        if (!json_is_number(v))
            continue;
        double x = json_number_value(v) * b->field[i].mul / b->field[i].div;
        add_to(&b->sum[i], &b->max[i], x, b->count[i] == 0);
        b->count[i]++;
    }
    b->at = json_integer_value(json_object_get(row, "at"));
    if (b->rows++ == 0)
        b->step = json_integer_value(json_object_get(row, "step"));
}

static json_t *bucket_point(const struct bucket *b, int64_t step)
{
    json_t *p = json_pack("{s:I, s:I}", "at", (json_int_t)b->at, "step",
                          (json_int_t)(step > b->step ? step : b->step));
    for (size_t i = 0; i < b->nfields; i++) {
        const struct field *f = &b->field[i];
        double x = f->is_max ? b->max[i] : b->sum[i] / b->count[i];
        json_t *v = b->count[i] == 0 ? json_null()
                    : f->integer     ? json_integer((json_int_t)llround(x))
                                     : json_real(x);
        json_object_set_new(p, f->name, v);
    }
    return p;
}

json_t *metrics_history_points(json_t *rows, int64_t step)
{
    json_t *out = json_array();
    struct bucket b = {0};
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        int64_t at = json_integer_value(json_object_get(row, "at"));
        /* a row ends its window: it belongs to the bucket holding at - 1 */
        int64_t key = step > 0 ? (at - 1) / step : (int64_t)i;
        if (b.rows > 0 && (key != b.key || !json_equal(b.fields, json_object_get(row, "fields")))) {
            json_array_append_new(out, bucket_point(&b, step));
            b.rows = 0;
        }
        if (b.rows == 0)
            bucket_start(&b, row, key);
        bucket_add(&b, row);
    }
    if (b.rows > 0)
        json_array_append_new(out, bucket_point(&b, step));
    return out;
}
