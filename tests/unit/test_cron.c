/* Table tests of model/cron.c: parsing (and its errors) and next fires. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/tz.h"
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
    return tz_from_tm(&tm); /* timegm stops at 2038 where time_t is 32 bits */
}

static const struct cron_tz UTC_ZONE = {CRON_TZ_UTC, NULL};

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
        int64_t got = cron_next(&c, &UTC_ZONE, utc(k->after));
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
    CHECK(cron_last_due(&c, &UTC_ZONE, after, utc("2026-12-06 08:35")) == utc("2026-12-06 08:30"));
    CHECK(cron_last_due(&c, &UTC_ZONE, after, utc("2026-12-06 08:05")) == after);
}

TEST(cron_tz_names)
{
    struct cron_tz tz;
    struct serr err = {0};
    CHECK(cron_tz_parse(NULL, &tz, &err) == 0 && tz.kind == CRON_TZ_UTC);
    CHECK(cron_tz_parse("UTC", &tz, &err) == 0 && tz.kind == CRON_TZ_UTC);
    CHECK(cron_tz_parse("local", &tz, &err) == 0 && tz.kind == CRON_TZ_LOCAL);
    CHECK(cron_tz_parse("Nowhere/Atlantis", &tz, &err) < 0);
    CHECK(strstr(err.msg, "unknown time zone 'Nowhere/Atlantis'") != NULL);
    CHECK(cron_tz_parse("../../etc/passwd", &tz, &err) < 0);
    CHECK(strstr(err.msg, "invalid time zone name") != NULL);
    if (access("/usr/share/zoneinfo/Europe/Paris", R_OK) == 0 && getenv("TZDIR") == NULL) {
        CHECK(cron_tz_parse("Europe/Paris", &tz, &err) == 0 && tz.kind == CRON_TZ_NAMED);
        struct cron_tz again;
        CHECK(cron_tz_parse("Europe/Paris", &again, &err) == 0 && again.zone == tz.zone);
    }
}

TEST(cron_split_tz_prefix)
{
    char zone[64];
    CHECK_STR(cron_split_tz("CRON_TZ=Europe/Paris 0 3 * * *", zone, sizeof(zone)), "0 3 * * *");
    CHECK_STR(zone, "Europe/Paris");
    CHECK_STR(cron_split_tz("TZ=Asia/Tokyo  @daily", zone, sizeof(zone)), "@daily");
    CHECK_STR(zone, "Asia/Tokyo");
    CHECK_STR(cron_split_tz("0 3 * * *", zone, sizeof(zone)), "0 3 * * *");
    CHECK_STR(zone, "");
}

TEST(cron_spec_split_zone_moves_the_prefix_to_schedule_tz)
{
    json_t *spec = json_pack("{s:s, s:s}", "schedule", "CRON_TZ=Europe/Paris 0 3 * * *",
                             "schedule_tz", "UTC");
    cron_spec_split_zone(spec);
    CHECK_STR(json_string_value(json_object_get(spec, "schedule")), "0 3 * * *");
    CHECK_STR(json_string_value(json_object_get(spec, "schedule_tz")), "Europe/Paris");
    json_t *plain = json_pack("{s:s}", "schedule", "@daily");
    cron_spec_split_zone(plain);
    CHECK_STR(json_string_value(json_object_get(plain, "schedule")), "@daily");
    CHECK(json_object_get(plain, "schedule_tz") == NULL);
    json_t *none = json_object();
    cron_spec_split_zone(none);
    CHECK(json_object_size(none) == 0);
    json_decref(spec);
    json_decref(plain);
    json_decref(none);
}

/* Paris in 2026: CEST from 29 March 01:00 UTC (02:00 -> 03:00 local), CET
 * again from 25 October 01:00 UTC (03:00 -> 02:00 local). */
static const struct next_case paris_cases[] = {
    {"0 3 * * *", "2026-12-06 08:00", "2026-12-07 02:00"},  /* winter: UTC+1 */
    {"0 3 * * *", "2026-07-01 00:00", "2026-07-01 01:00"},  /* summer: UTC+2 */
    {"0 3 * * *", "2026-03-28 12:00", "2026-03-29 01:00"},  /* 03:00 CEST, just after the change */
    {"30 2 * * *", "2026-03-28 12:00", "2026-03-29 01:30"}, /* 02:30 does not exist: 03:30 CEST */
    {"30 2 * * *", "2026-03-29 01:30", "2026-03-30 00:30"}, /* once that day */
    {"*/30 * * * *", "2026-03-29 00:45", "2026-03-29 01:00"}, /* 01:45 CET -> 03:00 CEST */
    {"*/30 * * * *", "2026-03-29 01:00", "2026-03-29 01:30"},
    {"30 2 * * *", "2026-10-24 12:00", "2026-10-25 00:30"}, /* 02:30 twice: the first (CEST) */
    {"30 2 * * *", "2026-10-25 00:30", "2026-10-26 01:30"}, /* not again in the repeated hour */
    {"*/30 * * * *", "2026-10-25 00:30", "2026-10-25 02:00"}, /* 02:30 CEST -> 03:00 CET */
    {"*/30 * * * *", "2026-10-25 01:10", "2026-10-25 02:00"}, /* from inside the repeated hour */
    {"0 0 1 * *", "2026-03-15 00:00", "2026-03-31 22:00"},  /* midnight of 1 April, CEST */
    {"0 3 * * *", "2040-07-01 00:00", "2040-07-01 01:00"},  /* past the file's transitions: */
    {"0 3 * * *", "2040-12-01 00:00", "2040-12-01 02:00"},  /* its footer's rule */
};

static void check_paris(const struct cron_tz *tz, const char *which)
{
    for (size_t i = 0; i < sizeof(paris_cases) / sizeof(paris_cases[0]); i++) {
        const struct next_case *k = &paris_cases[i];
        struct cron c;
        struct serr err = {0};
        CHECK(cron_parse(k->expr, &c, &err) == 0);
        int64_t got = cron_next(&c, tz, utc(k->after)), want = utc(k->next);
        if (got != want) {
            fprintf(stderr, "%s: '%s' after %s UTC: got %lld, want %lld (%s UTC)\n", which,
                    k->expr, k->after, (long long)got, (long long)want, k->next);
            CHECK(0);
        }
    }
}

TEST(cron_named_zone_across_daylight_saving_changes)
{
    struct tz *rule;
    struct serr err = {0};
    CHECK(tz_parse_rule("CET-1CEST,M3.5.0,M10.5.0/3", &rule, &err) == 0);
    struct cron_tz tz = {CRON_TZ_NAMED, rule};
    check_paris(&tz, "POSIX rule");
    tz_free(rule);
    /* the system's tz database, when this machine has it */
    if (access("/usr/share/zoneinfo/Europe/Paris", R_OK) == 0 && getenv("TZDIR") == NULL) {
        CHECK(cron_tz_parse("Europe/Paris", &tz, &err) == 0);
        check_paris(&tz, "Europe/Paris TZif");
    }
}

TEST(tz_rules_and_files)
{
    struct tz *z;
    struct serr err = {0};
    /* the southern hemisphere: summer time across the new year */
    CHECK(tz_parse_rule("AEST-10AEDT,M10.1.0,M4.1.0/3", &z, &err) == 0);
    CHECK(tz_offset(z, utc("2026-01-01 00:00")) == 11 * 3600);
    CHECK(tz_offset(z, utc("2026-07-01 00:00")) == 10 * 3600);
    tz_free(z);
    CHECK(tz_parse_rule("<+0330>-3:30", &z, &err) == 0); /* quoted name, no DST */
    CHECK(tz_offset(z, utc("2026-07-01 00:00")) == 3 * 3600 + 1800);
    CHECK(tz_to_utc(z, utc("2026-07-01 03:30")) == utc("2026-07-01 00:00"));
    tz_free(z);
    CHECK(tz_parse_rule("CET", &z, &err) < 0);
    CHECK(tz_parse_rule("CET-1CEST,M13.5.0,M10.5.0", &z, &err) < 0);
    static const unsigned char junk[] = "TZif2 this is not a zone";
    CHECK(tz_parse_tzif(junk, sizeof(junk), &z, &err) < 0);
    CHECK(strstr(err.msg, "not a valid TZif file") != NULL);
}

/* tz_to_tm / tz_from_tm agree with gmtime_r / timegm where time_t reaches
 * (64 bits here), and go past 2038 where it is 32 bits (armhf). */
TEST(tz_tm_conversions_are_gmtime_and_timegm_on_64_bits)
{
    static const int64_t samples[] = {0, -1, 86399, 951782400 /* 2000-02-29 */, 2147483647,
                                      2147483648LL, 2224800000LL /* 2040-07-01 */,
                                      4107542400LL /* 2100-03-01 */, -2208988800LL /* 1900 */};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        struct tm ours, theirs;
        tz_to_tm(samples[i], &ours);
        CHECK(ours.tm_year + 1900 >= 1900);
        if (sizeof(time_t) == 8) {
            time_t tt = (time_t)samples[i];
            gmtime_r(&tt, &theirs);
            CHECK(ours.tm_year == theirs.tm_year && ours.tm_mon == theirs.tm_mon &&
                  ours.tm_mday == theirs.tm_mday && ours.tm_hour == theirs.tm_hour &&
                  ours.tm_min == theirs.tm_min && ours.tm_sec == theirs.tm_sec &&
                  ours.tm_wday == theirs.tm_wday && ours.tm_yday == theirs.tm_yday);
        }
        CHECK(tz_from_tm(&ours) == samples[i]);
    }
    /* out-of-range fields roll over as timegm's: 2040-02-30 25:00 is 2040-03-02 01:00 */
    struct tm tm = {.tm_year = 140, .tm_mon = 1, .tm_mday = 30, .tm_hour = 25};
    CHECK(tz_from_tm(&tm) == utc("2040-03-02 01:00"));
    CHECK(tm.tm_mon == 2 && tm.tm_mday == 2 && tm.tm_hour == 1 && tm.tm_wday == 5);
    tm = (struct tm){.tm_year = 126, .tm_mon = -1, .tm_mday = 1}; /* month -1: December before */
    CHECK(tz_from_tm(&tm) == utc("2025-12-01 00:00"));
}

/* Every day from 1800 to 2500, at a second that moves through the day: the
 * same fields as gmtime_r, and back by tz_from_tm (where time_t is 64 bits). */
TEST(tz_to_tm_is_gmtime_every_day_from_1800_to_2500)
{
    if (sizeof(time_t) != 8)
        return;
    int64_t first = utc("1800-01-01 00:00") / 86400, last = utc("2500-12-31 00:00") / 86400;
    for (int64_t day = first; day <= last; day++) {
        int64_t t = day * 86400 + (day * 7919 % 86400 + 86400) % 86400;
        struct tm ours, theirs;
        time_t tt = (time_t)t;
        tz_to_tm(t, &ours);
        gmtime_r(&tt, &theirs);
        if (ours.tm_year != theirs.tm_year || ours.tm_mon != theirs.tm_mon ||
            ours.tm_mday != theirs.tm_mday || ours.tm_hour != theirs.tm_hour ||
            ours.tm_min != theirs.tm_min || ours.tm_sec != theirs.tm_sec ||
            ours.tm_wday != theirs.tm_wday || ours.tm_yday != theirs.tm_yday) {
            fprintf(stderr, "tz_to_tm(%lld) is not gmtime_r's\n", (long long)t);
            CHECK(0);
        }
        CHECK(tz_from_tm(&ours) == t);
    }
}
