/* Table tests of model/cron.c: parsing (and its errors) and next fires. */
#include <string.h>
#include <time.h>

#include "model/cron.h"
#include "unit.h"

/* "YYYY-MM-DD HH:MM" in UTC as seconds. */
static int64_t utc(const char *text)
{
    struct tm tm = {0};
    CHECK(sscanf(text, "%d-%d-%d %d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                 &tm.tm_min) == 5);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static const struct next_case {
    const char *expr;
    const char *after; /* UTC */
    const char *next;  /* UTC, or NULL: none */
} next_cases[] = {
    {"* * * * *", "2026-12-06 08:00", "2026-12-06 08:01"},
    {"0 3 * * *", "2026-12-06 08:00", "2026-12-07 03:00"},
    {"0 3 * * *", "2026-12-06 02:59", "2026-12-06 03:00"},
    {"0 3 * * *", "2026-12-06 03:00", "2026-12-07 03:00"}, /* strictly after */
    {"*/15 * * * *", "2026-12-06 08:01", "2026-12-06 08:15"},
    {"5-10/2 * * * *", "2026-12-06 08:06", "2026-12-06 08:07"},
    {"50/5 * * * *", "2026-12-06 08:56", "2026-12-06 09:50"}, /* a/n: a to the end */
    {"0 0 * * mon", "2026-12-06 08:00", "2026-12-07 00:00"},   /* 6 Dec 2026: a Sunday */
    {"0 0 * * 7", "2026-12-06 08:00", "2026-12-13 00:00"},     /* 7 is Sunday */
    {"0 0 1 jan *", "2026-12-06 08:00", "2027-01-01 00:00"},
    {"0 12 1,15 * *", "2026-12-06 08:00", "2026-12-15 12:00"},
    {"0 0 13 * fri", "2026-12-06 08:00", "2026-12-11 00:00"}, /* either day field */
    {"0 0 29 feb *", "2026-12-06 08:00", "2028-02-29 00:00"},
    {"0 0 30 feb *", "2026-12-06 08:00", NULL},
    {"@hourly", "2026-12-06 08:30", "2026-12-06 09:00"},
    {"@daily", "2026-12-06 08:30", "2026-12-07 00:00"},
    {"@weekly", "2026-12-06 08:30", "2026-12-13 00:00"},
    {"@monthly", "2026-12-06 08:30", "2027-01-01 00:00"},
    {"@yearly", "2026-12-06 08:30", "2027-01-01 00:00"},
    {"0 9-17 * * MON-FRI", "2026-12-11 17:30", "2026-12-14 09:00"},
};

TEST(cron_next_table)
{
    for (size_t i = 0; i < sizeof(next_cases) / sizeof(next_cases[0]); i++) {
        const struct next_case *k = &next_cases[i];
        struct cron c;
        struct serr err = {0};
        if (cron_parse(k->expr, &c, &err) < 0) {
            fprintf(stderr, "case '%s': %s\n", k->expr, err.msg);
            CHECK(0);
        }
        int64_t got = cron_next(&c, CRON_TZ_UTC, utc(k->after));
        int64_t want = k->next ? utc(k->next) : -1;
        if (got != want) {
            fprintf(stderr, "case '%s' after %s: got %lld, want %lld\n", k->expr, k->after,
                    (long long)got, (long long)want);
            CHECK(0);
        }
    }
}

static const struct bad_case {
    const char *expr;
    const char *error; /* a part of the message */
} bad_cases[] = {
    {"* * * *", "must have 5 fields"},
    {"* * * * * *", "must have 5 fields"},
    {"60 * * * *", "minute field: 60 is out of range 0-59"},
    {"* 24 * * *", "hour field: 24 is out of range 0-23"},
    {"* * 0 * *", "day-of-month field: 0 is out of range 1-31"},
    {"* * * 13 *", "month field: 13"},
    {"* * * * 8", "day-of-week field: 8"},
    {"* * * foo *", "month field: 'foo' is not a value"},
    {"5-1 * * * *", "minute field: range 5-1 is backwards"},
    {"*/0 * * * *", "minute field: bad step"},
    {"1,,2 * * * *", "minute field"},
    {"@often", "unknown macro"},
    {"", "must have 5 fields"},
};

TEST(cron_parse_errors_name_the_field)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct cron c;
        struct serr err = {0};
        CHECK(cron_parse(bad_cases[i].expr, &c, &err) < 0);
        if (strstr(err.msg, bad_cases[i].error) == NULL) {
            fprintf(stderr, "case '%s': got '%s'\n", bad_cases[i].expr, err.msg);
            CHECK(0);
        }
    }
}

TEST(cron_last_due_collapses_missed_fires)
{
    struct cron c;
    struct serr err = {0};
    CHECK(cron_parse("*/10 * * * *", &c, &err) == 0);
    int64_t after = utc("2026-12-06 08:00");
    CHECK(cron_last_due(&c, CRON_TZ_UTC, after, utc("2026-12-06 08:35")) == utc("2026-12-06 08:30"));
    CHECK(cron_last_due(&c, CRON_TZ_UTC, after, utc("2026-12-06 08:05")) == after);
}

TEST(cron_tz_names)
{
    enum cron_tz tz;
    struct serr err = {0};
    CHECK(cron_tz_parse(NULL, &tz, &err) == 0 && tz == CRON_TZ_UTC);
    CHECK(cron_tz_parse("UTC", &tz, &err) == 0 && tz == CRON_TZ_UTC);
    CHECK(cron_tz_parse("local", &tz, &err) == 0 && tz == CRON_TZ_LOCAL);
    CHECK(cron_tz_parse("Europe/Paris", &tz, &err) < 0);
    CHECK(strstr(err.msg, "Europe/Paris") != NULL);
}
