/* Named time zones from the system's tz database (/usr/share/zoneinfo, the
 * tzdata package; $TZDIR overrides), for cron schedules (model/cron.h).
 *
 * A zone is read from its TZif file (RFC 8536: the 64-bit data of version
 * 2+, and the POSIX TZ rule of its footer for the times after its last
 * transition, as "slim" files need) and computed here: nothing touches the
 * process's TZ, so localtime_r in other threads (logs) is never disturbed
 * and no lock is held across libc's time functions (docs/design.md).
 *
 * Offsets are seconds east of UTC; times are seconds since the epoch. */
#ifndef SHOAL_BASE_TZ_H
#define SHOAL_BASE_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct tz;

/* The zone `name` ("Europe/Paris"): read from the tz database the first time
 * it is asked for, then kept (for the process's life, at most TZ_CACHE_MAX
 * zones; thread-safe). Borrowed; NULL with err (SERR_INVALID) for a bad or
 * unknown name or an unreadable file. */
#define TZ_CACHE_MAX 64
const struct tz *tz_get(const char *name, struct serr *err);

/* Parses a TZif file's bytes (new zone in *out, freed with tz_free). */
int tz_parse_tzif(const unsigned char *data, size_t len, struct tz **out, struct serr *err);
/* A zone from a POSIX TZ rule alone ("CET-1CEST,M3.5.0,M10.5.0/3",
 * "<+0330>-3:30", "EST5EDT"): tests, and the footer of TZif files. */
int tz_parse_rule(const char *rule, struct tz **out, struct serr *err);
void tz_free(struct tz *z);

/* The zone's offset at `utc`. */
int32_t tz_offset(const struct tz *z, int64_t utc);
/* The instant at which the zone's clocks show `local` (a wall-clock time
 * counted as if it were UTC, as timegm gives). A time that occurs twice (the
 * hour repeated when clocks go back) is its first occurrence; a time that
 * does not occur (skipped when clocks go forward) is taken with the offset
 * before the change (02:30 in a gap of 02:00-03:00 is 03:30 after it). */
int64_t tz_to_utc(const struct tz *z, int64_t local);

/* gmtime_r and timegm on 64-bit seconds, whatever the width of time_t (32
 * bits on armhf: 2038). tz_from_tm normalizes *tm as timegm does (fields
 * out of range roll over; tm_wday and tm_yday are set). */
struct tm;
void tz_to_tm(int64_t t, struct tm *tm);
int64_t tz_from_tm(struct tm *tm);

#endif
