/* Cron schedules (`service create --schedule`): the 5 fields of cron(5)
 * (minute hour day-of-month month day-of-week) with `*`, ranges `a-b`,
 * lists `a,b`, steps `*\/n` and `a-b/n`, names (jan..dec, sun..sat; 7 is
 * sunday too), and the macros @yearly (@annually), @monthly, @weekly,
 * @daily (@midnight), @hourly. As cron, when both day fields are
 * restricted a day matching either one fires.
 *
 * No store; the only I/O is cron_tz_parse reading a named zone from the tz
 * database the first time it is named (base/tz.h caches it). Time zones: UTC,
 * the process's local zone (localtime_r/mktime, which follow the process's TZ
 * and are thread-safe), or a named zone ("Europe/Paris") computed by
 * base/tz.h from its TZif file. Daylight saving as cron does it: a time
 * skipped when clocks go forward fires once, at the same wall-clock time
 * after the change (02:30 -> 03:30); a time repeated when they go back fires
 * once, at its first occurrence. */
#ifndef SHOAL_MODEL_CRON_H
#define SHOAL_MODEL_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"

/* A parsed expression: one bit per allowed value of each field. */
struct cron {
    uint64_t minute; /* bits 0..59 */
    uint32_t hour;   /* bits 0..23 */
    uint32_t mday;   /* bits 1..31 */
    uint16_t month;  /* bits 1..12 */
    uint8_t wday;    /* bits 0..6, sunday 0 */
    bool mday_any, wday_any; /* the field was '*' (for the either-day rule) */
};

struct tz;

enum cron_tz_kind { CRON_TZ_UTC, CRON_TZ_LOCAL, CRON_TZ_NAMED };

struct cron_tz {
    enum cron_tz_kind kind;
    const struct tz *zone; /* CRON_TZ_NAMED: borrowed (base/tz.h's cache keeps it) */
};

/* `CRON_TZ=ZONE EXPR` (or `TZ=ZONE EXPR`, as cronie accepts): ZONE into
 * zone (size bytes; "" without the prefix), and the expression after it
 * returned (a pointer into text). */
const char *cron_split_tz(const char *text, char *zone, size_t size);

/* A spec's `CRON_TZ=ZONE EXPR` schedule (checked before) stored as schedule
 * EXPR and schedule_tz ZONE: the prefix wins over a schedule_tz beside it.
 * A spec without a schedule, or whose schedule has no prefix, is left as is. */
void cron_spec_split_zone(json_t *spec);

/* Parses `text` into *out; on error names the field and the bad part
 * ("hour field: 24 is out of range 0-23") and leaves *out undefined. */
int cron_parse(const char *text, struct cron *out, struct serr *err);

/* "UTC" (also NULL, "", "Etc/UTC"), "local", or a zone of the tz database
 * ("Europe/Paris"; an unknown one is SERR_INVALID). */
int cron_tz_parse(const char *name, struct cron_tz *out, struct serr *err);

/* The first fire strictly after `after` (seconds since the epoch), in
 * seconds; -1 when none within 8 years (e.g. "0 0 30 2 *"). */
int64_t cron_next(const struct cron *c, const struct cron_tz *tz, int64_t after);

/* The last fire at or before `at` and after `after` (fires missed while a
 * run was going on collapse into this one); `after` when there is none. */
int64_t cron_last_due(const struct cron *c, const struct cron_tz *tz, int64_t after, int64_t at);

#endif
