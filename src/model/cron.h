/* Cron schedules (`service create --schedule`): the 5 fields of cron(5)
 * (minute hour day-of-month month day-of-week) with `*`, ranges `a-b`,
 * lists `a,b`, steps `*\/n` and `a-b/n`, names (jan..dec, sun..sat; 7 is
 * sunday too), and the macros @yearly (@annually), @monthly, @weekly,
 * @daily (@midnight), @hourly. As cron, when both day fields are
 * restricted a day matching either one fires.
 *
 * Pure: no store, no I/O. Time zones: UTC, or the process's local zone
 * (localtime_r/mktime, which follow the process's TZ and are thread-safe);
 * named zones are refused (cron_tz_parse). */
#ifndef SHOAL_MODEL_CRON_H
#define SHOAL_MODEL_CRON_H

#include <stdbool.h>
#include <stdint.h>

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

enum cron_tz { CRON_TZ_UTC, CRON_TZ_LOCAL };

/* Parses `text` into *out; on error names the field and the bad part
 * ("hour field: 24 is out of range 0-23") and leaves *out undefined. */
int cron_parse(const char *text, struct cron *out, struct serr *err);

/* "UTC" (also NULL, "", "Etc/UTC") or "local"; any other name is refused. */
int cron_tz_parse(const char *name, enum cron_tz *out, struct serr *err);

/* The first fire strictly after `after` (seconds since the epoch), in
 * seconds; -1 when none within 8 years (e.g. "0 0 30 2 *"). */
int64_t cron_next(const struct cron *c, enum cron_tz tz, int64_t after);

/* The last fire at or before `at` and after `after` (fires missed while a
 * run was going on collapse into this one); `after` when there is none. */
int64_t cron_last_due(const struct cron *c, enum cron_tz tz, int64_t after, int64_t at);

#endif
