#include "model/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/tz.h"

struct field {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] is value min + i, or NULL */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},
    {"month", 1, 12, month_names},
    {"day-of-week", 0, 7, day_names}, /* 7: sunday too */
};

/* A number or a name of the field at *s; advances *s. */
static int parse_value(const struct field *f, const char **s, int *out, struct serr *err)
{
    const char *p = *s;
    if (isdigit((unsigned char)*p)) {
        long v = strtol(p, (char **)s, 10);
        if (v < f->min || v > f->max)
            return serr_set(err, SERR_INVALID, "%s field: %ld is out of range %d-%d", f->name, v,
                            f->min, f->max);
        *out = (int)v;
        return 0;
    }
    for (int i = 0; f->names && f->names[i]; i++) {
        if (strncasecmp(p, f->names[i], 3) == 0 && !isalpha((unsigned char)p[3])) {
            *out = f->min + i;
            *s = p + 3;
            return 0;
        }
    }
    return serr_set(err, SERR_INVALID, "%s field: '%.20s' is not a value", f->name, p);
}

/* One element of a list: *, a, a-b, each with an optional /step. */
static int parse_element(const struct field *f, const char *s, uint64_t *bits, struct serr *err)
{
    int lo = f->min, hi = f->max, step = 1;
    bool single = false;
    if (*s == '*') {
        s++;
    } else {
        if (parse_value(f, &s, &lo, err) < 0)
            return -1;
        hi = lo;
        single = *s != '-';
        if (*s == '-') {
            s++;
            if (parse_value(f, &s, &hi, err) < 0)
                return -1;
            if (hi < lo)
                return serr_set(err, SERR_INVALID, "%s field: range %d-%d is backwards", f->name,
                                lo, hi);
        }
    }
    if (*s == '/') {
        char *end;
        long v = strtol(s + 1, &end, 10);
        if (end == s + 1 || v < 1 || v > f->max)
            return serr_set(err, SERR_INVALID, "%s field: bad step '%s'", f->name, s + 1);
        step = (int)v;
        s = end;
        if (single)
            hi = f->max; /* "a/n": from a to the end */
    }
    if (*s != '\0')
        return serr_set(err, SERR_INVALID, "%s field: unexpected '%s'", f->name, s);
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << v;
    return 0;
}

/* A comma-separated list of elements; *any when the field is "*". */
static int parse_field(const struct field *f, const char *text, uint64_t *bits, bool *any,
                       struct serr *err)
{
    *bits = 0;
    *any = strcmp(text, "*") == 0;
    char buf[128];
    if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf))
        return serr_set(err, SERR_INVALID, "%s field: too long", f->name);
    size_t len = strlen(text);
    if (len == 0 || text[0] == ',' || text[len - 1] == ',' || strstr(text, ",,"))
        return serr_set(err, SERR_INVALID, "%s field: empty list element in '%s'", f->name, text);
    char *save = NULL;
    for (char *el = strtok_r(buf, ",", &save); el; el = strtok_r(NULL, ",", &save)) {
        if (parse_element(f, el, bits, err) < 0)
            return -1;
    }
    if (*bits == 0)
        return serr_set(err, SERR_INVALID, "%s field: empty", f->name);
    return 0;
}

static const char *expand_macro(const char *text)
{
    static const char *const macros[][2] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}};
    for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
        if (strcasecmp(text, macros[i][0]) == 0)
            return macros[i][1];
    }
    return NULL;
}

int cron_parse(const char *text, struct cron *out, struct serr *err)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL)
        return serr_set(err, SERR_INVALID, "missing cron expression");
    if (text[0] == '@') {
        const char *expanded = expand_macro(text);
        if (expanded == NULL)
            return serr_set(err, SERR_INVALID,
                            "unknown macro '%s' (@yearly, @monthly, @weekly, @daily, "
                            "@hourly)",
                            text);
        text = expanded;
    }
    char words[5][128];
    char extra[2];
    int n = sscanf(text, "%127s %127s %127s %127s %127s %1s", words[0], words[1], words[2],
                   words[3], words[4], extra);
    if (n != 5)
        return serr_set(err, SERR_INVALID,
                        "'%s' must have 5 fields (minute hour day-of-month month "
                        "day-of-week)",
                        text);
    uint64_t bits[5];
    bool any[5];
    for (int i = 0; i < 5; i++) {
        if (parse_field(&fields[i], words[i], &bits[i], &any[i], err) < 0)
            return -1;
    }
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->mday = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    out->wday = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is sunday */
    out->mday_any = any[2];
    out->wday_any = any[4];
    return 0;
}

const char *cron_split_tz(const char *text, char *zone, size_t size)
{
    zone[0] = '\0';
    size_t skip = strncmp(text, "CRON_TZ=", 8) == 0 ? 8 : strncmp(text, "TZ=", 3) == 0 ? 3 : 0;
    if (skip == 0)
        return text;
    size_t n = strcspn(text + skip, " \t");
    snprintf(zone, size, "%.*s", (int)n, text + skip);
    const char *rest = text + skip + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return rest;
}

void cron_spec_split_zone(json_t *spec)
{
    json_t *schedule = json_object_get(spec, "schedule");
    const char *text = json_string_value(schedule);
    char zone[160];
    const char *expr = text ? cron_split_tz(text, zone, sizeof(zone)) : NULL;
    if (expr == NULL || zone[0] == '\0')
        return;
    json_object_set_new(spec, "schedule_tz", json_string(zone));
    json_object_set_new(spec, "schedule", json_string(expr));
}

int cron_tz_parse(const char *name, struct cron_tz *out, struct serr *err)
{
    *out = (struct cron_tz){CRON_TZ_UTC, NULL};
    if (name == NULL || name[0] == '\0' || strcmp(name, "UTC") == 0 ||
        strcmp(name, "Etc/UTC") == 0)
        return 0;
    if (strcmp(name, "local") == 0) {
        out->kind = CRON_TZ_LOCAL;
        return 0;
    }
    const struct tz *zone = tz_get(name, err);
    if (zone == NULL)
        return serr_wrap(err, "schedule time zone");
    *out = (struct cron_tz){CRON_TZ_NAMED, zone};
    return 0;
}

static void to_tm(const struct cron_tz *tz, int64_t t, struct tm *tm)
{
    if (tz->kind == CRON_TZ_LOCAL) {
        time_t tt = (time_t)t;
        localtime_r(&tt, tm);
    } else {
        tz_to_tm(tz->kind == CRON_TZ_NAMED ? t + tz_offset(tz->zone, t) : t, tm);
    }
}

static int64_t from_tm(const struct cron_tz *tz, struct tm *tm)
{
    tm->tm_isdst = -1;
    if (tz->kind == CRON_TZ_LOCAL)
        return (int64_t)mktime(tm);
    int64_t wall = tz_from_tm(tm); /* 64 bits: time_t is 32 on armhf */
    return tz->kind == CRON_TZ_NAMED ? tz_to_utc(tz->zone, wall) : wall;
}

static bool day_matches(const struct cron *c, const struct tm *tm)
{
    if (!(c->month & (1u << (tm->tm_mon + 1))))
        return false;
    bool mday = c->mday & (1u << tm->tm_mday);
    bool wday = c->wday & (1u << tm->tm_wday);
    if (!c->mday_any && !c->wday_any)
        return mday || wday;
    return mday && wday;
}

/* The first matching minute of this day at or after hour:min that comes
 * after `after`, or -1. (After `after`: in the hour repeated when clocks go
 * back, a wall-clock minute may map to an instant already past.) */
static int64_t first_in_day(const struct cron *c, const struct cron_tz *tz, struct tm *tm,
                            int hour, int min, int64_t after)
{
    for (int h = hour; h < 24; h++) {
        if (!(c->hour & (1u << h)))
            continue;
        for (int m = h == hour ? min : 0; m < 60; m++) {
            if (c->minute & (1ULL << m)) {
                struct tm at = *tm;
                at.tm_hour = h;
                at.tm_min = m;
                at.tm_sec = 0;
                int64_t t = from_tm(tz, &at);
                if (t > after)
                    return t;
            }
        }
    }
    return -1;
}

#define CRON_SEARCH_DAYS (8 * 366)

int64_t cron_next(const struct cron *c, const struct cron_tz *tz, int64_t after)
{
    int64_t t = after - (after % 60 + 60) % 60 + 60; /* the next whole minute */
    struct tm tm;
    to_tm(tz, t, &tm);
    int hour = tm.tm_hour, min = tm.tm_min;
    for (int day = 0; day < CRON_SEARCH_DAYS; day++) {
        if (day_matches(c, &tm)) {
            int64_t at = first_in_day(c, tz, &tm, hour, min, after);
            if (at >= 0)
                return at;
        }
        /* noon of the next day: no daylight saving change moves it to another day */
        tm.tm_mday++;
        tm.tm_hour = 12;
        tm.tm_min = tm.tm_sec = 0;
        to_tm(tz, from_tm(tz, &tm), &tm);
        hour = min = 0;
    }
    return -1;
}

int64_t cron_last_due(const struct cron *c, const struct cron_tz *tz, int64_t after, int64_t at)
{
    int64_t last = after;
    for (int64_t t = cron_next(c, tz, after); t >= 0 && t <= at; t = cron_next(c, tz, t))
        last = t;
    return last;
}
