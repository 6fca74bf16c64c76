#include <string.h>

#include "base/util.h"
#include "unit.h"

TEST(parse_size_units)
{
    int64_t b;
    CHECK(parse_size("512M", &b, NULL) == 0 && b == 512LL * 1024 * 1024);
    CHECK(parse_size("1g", &b, NULL) == 0 && b == 1024LL * 1024 * 1024);
    CHECK(parse_size("1024", &b, NULL) == 0 && b == 1024);
    CHECK(parse_size("64MiB", &b, NULL) == 0 && b == 64LL * 1024 * 1024);
    struct serr err;
    CHECK(parse_size("12Q", &b, &err) < 0 && err.kind == SERR_INVALID);
    CHECK(parse_size("", &b, &err) < 0);
    CHECK(parse_size("-1M", &b, &err) < 0);
}

TEST(parse_duration_units)
{
    int64_t ms;
    CHECK(parse_duration("10s", &ms, NULL) == 0 && ms == 10000);
    CHECK(parse_duration("1m30s", &ms, NULL) == 0 && ms == 90000);
    CHECK(parse_duration("500ms", &ms, NULL) == 0 && ms == 500);
    CHECK(parse_duration("0", &ms, NULL) == 0 && ms == 0);
    CHECK(parse_duration("10", &ms, NULL) < 0);
    CHECK(parse_duration("x", &ms, NULL) < 0);
}
