#include <string.h>

#include "api/api_int.h"
#include "unit.h"

/* 2026-12-06T04:00:00Z */
#define NOW_NS (1796529600.0L * 1e9L)

TEST(logs_since_forms)
{
    char ts[32];
    struct serr err;
    CHECK(logs_since_ts("2026-12-06T04:28:27Z", NOW_NS, ts, &err) == 0);
    CHECK_STR(ts, "2026-12-06T04:28:27.000000000Z");
    CHECK(logs_since_ts("2026-12-06T04:28:27.5Z", NOW_NS, ts, &err) == 0);
    CHECK_STR(ts, "2026-12-06T04:28:27.500000000Z");
    CHECK(logs_since_ts("2026-12-06T04:28:27", NOW_NS, ts, &err) == 0);
    CHECK_STR(ts, "2026-12-06T04:28:27.000000000Z");
    CHECK(logs_since_ts("1796529600", NOW_NS, ts, &err) == 0);
    CHECK_STR(ts, "2026-12-06T04:00:00.000000000Z");
    CHECK(logs_since_ts("10m", NOW_NS, ts, &err) == 0);
    CHECK_STR(ts, "2026-12-06T03:50:00.000000000Z");
    CHECK(logs_since_ts("1h30m", NOW_NS, ts, &err) == 0);
    CHECK_STR(ts, "2026-12-06T02:30:00.000000000Z");
}

TEST(logs_since_refuses)
{
    char ts[32];
    struct serr err;
    CHECK(logs_since_ts("yesterday", NOW_NS, ts, &err) < 0 && err.kind == SERR_INVALID);
    CHECK(strstr(err.msg, "yesterday") != NULL);
    CHECK(logs_since_ts("2026-12-06T04:28:27+02:00", NOW_NS, ts, &err) < 0);
    CHECK(logs_since_ts("", NOW_NS, ts, &err) < 0);
    CHECK(logs_since_ts("-5", NOW_NS, ts, &err) < 0);
}
