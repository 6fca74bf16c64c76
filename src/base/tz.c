/* Time zones from TZif files and POSIX TZ rules (base/tz.h). */
#include "base/tz.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"

/* ---- POSIX TZ rules: "STD offset [DST [offset] [,start[/time],end[/time]]]" ---- */

enum date_kind { DATE_JULIAN1, DATE_JULIAN0, DATE_MONTH }; /* Jn, n, Mm.w.d */

struct rule_date {
    enum date_kind kind;
    int n, m, w, d; /* Jn / n: n; Mm.w.d */
    int32_t time;   /* seconds after local midnight (may be negative or past 24h) */
};

struct rule {
    int32_t std_off, dst_off; /* east of UTC */
    bool has_dst;
    struct rule_date start, end;
};

struct tz {
    int64_t *trans; /* transition instants, ascending */
    uint8_t *trans_type;
    size_t ntrans;
    int32_t *type_off; /* each local time type's offset */
    bool has_rule;     /* the footer (or the whole zone when ntrans == 0) */
    struct rule rule;
};

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

struct civil {
    int64_t year;
    int month, day; /* 1-12, 1-31 */
};

/* The inverse of days_from_civil (H. Hinnant's civil_from_days). */
static struct civil civil_from_days(int64_t days)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;                                   /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* from March 1 */
    int64_t mp = (5 * doy + 2) / 153;                                    /* March is 0 */
    int month = (int)(mp < 10 ? mp + 3 : mp - 9);
    return (struct civil){yoe + era * 400 + (month <= 2), month,
                          (int)(doy - (153 * mp + 2) / 5) + 1};
}

/* 0 for Sunday; 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
    return (int)((days % 7 + 11) % 7);
}

void tz_to_tm(int64_t t, struct tm *tm)
{
    int64_t days = floor_div(t, 86400), secs = t - days * 86400;
    struct civil c = civil_from_days(days);
    *tm = (struct tm){.tm_sec = (int)(secs % 60),
                      .tm_min = (int)(secs / 60 % 60),
                      .tm_hour = (int)(secs / 3600),
                      .tm_mday = c.day,
                      .tm_mon = c.month - 1,
                      .tm_year = (int)(c.year - 1900),
                      .tm_wday = weekday(days),
                      .tm_yday = (int)(days - days_from_civil(c.year, 1, 1))};
}

int64_t tz_from_tm(struct tm *tm)
{
    int64_t years = floor_div(tm->tm_mon, 12); /* a month out of 0-11 rolls into the years */
    int64_t y = 1900 + (int64_t)tm->tm_year + years;
    int64_t t =
        (days_from_civil(y, (int)(tm->tm_mon - years * 12) + 1, 1) + tm->tm_mday - 1) * 86400 +
        (int64_t)tm->tm_hour * 3600 + (int64_t)tm->tm_min * 60 + tm->tm_sec;
    int isdst = tm->tm_isdst;
    tz_to_tm(t, tm);
    tm->tm_isdst = isdst;
    return t;
}

static int days_in_month(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* The rule date's local midnight in year y, in days since the epoch. */
static int64_t rule_day(const struct rule_date *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);
    if (r->kind == DATE_JULIAN1) /* 1..365, February 29 never counted */
        return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60);
    if (r->kind == DATE_JULIAN0)
        return jan1 + r->n;
    int64_t first = days_from_civil(y, r->m, 1);
    int day = 1 + (r->d - weekday(first) + 7) % 7 + (r->w - 1) * 7;
    while (day > days_in_month(y, r->m))
        day -= 7;
    return first + day - 1;
}

static bool rule_is_dst(const struct rule *r, int64_t utc)
{
    if (!r->has_dst)
        return false;
    int64_t y = civil_from_days(floor_div(utc + r->std_off, 86400)).year;
    int64_t start = rule_day(&r->start, y) * 86400 + r->start.time - r->std_off;
    int64_t end = rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off;
    if (start <= end)
        return utc >= start && utc < end;
    return !(utc >= end && utc < start); /* southern hemisphere: DST across new year */
}

static int32_t rule_offset(const struct rule *r, int64_t utc)
{
    return rule_is_dst(r, utc) ? r->dst_off : r->std_off;
}

/* A zone abbreviation: letters, or <...> quoted (may hold digits, + and -). */
static bool parse_name(const char **s)
{
    const char *p = *s;
    if (*p == '<') {
        const char *close = strchr(p, '>');
        if (close == NULL || close - p < 4)
            return false;
        *s = close + 1;
        return true;
    }
    while (isalpha((unsigned char)*p))
        p++;
    if (p - *s < 3)
        return false;
    *s = p;
    return true;
}

/* [+-]hh[:mm[:ss]] with hh up to max_hours, into seconds. */
static bool parse_hms(const char **s, int max_hours, int32_t *out)
{
    const char *p = *s;
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*p))
        return false;
    long parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        char *end;
        parts[i] = strtol(p, &end, 10);
        if (end == p || end - p > 3)
            return false;
        p = end;
        if (*p != ':' || i == 2)
            break;
        p++;
    }
    if (parts[0] > max_hours || parts[1] > 59 || parts[2] > 59)
        return false;
    *out = (int32_t)(sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]));
    *s = p;
    return true;
}

static bool parse_int(const char **s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(*s, &end, 10);
    if (end == *s || !isdigit((unsigned char)**s) || v < lo || v > hi)
        return false;
    *out = (int)v;
    *s = end;
    return true;
}

static bool parse_date(const char **s, struct rule_date *out)
{
    const char *p = *s;
    bool ok;
    if (*p == 'J') {
        p++;
        out->kind = DATE_JULIAN1;
        ok = parse_int(&p, 1, 365, &out->n);
    } else if (*p == 'M') {
        p++;
        out->kind = DATE_MONTH;
        ok = parse_int(&p, 1, 12, &out->m) && *p++ == '.' && parse_int(&p, 1, 5, &out->w) &&
             *p++ == '.' && parse_int(&p, 0, 6, &out->d);
    } else {
        out->kind = DATE_JULIAN0;
        ok = parse_int(&p, 0, 365, &out->n);
    }
    out->time = 2 * 3600;
    if (ok && *p == '/') {
        p++;
        ok = parse_hms(&p, 167, &out->time);
    }
    *s = p;
    return ok;
}

static bool parse_rule_text(const char *text, struct rule *r)
{
    const char *p = text;
    int32_t west;
    memset(r, 0, sizeof(*r));
    if (!parse_name(&p) || !parse_hms(&p, 24, &west))
        return false;
    r->std_off = -west;
    if (*p == '\0')
        return true;
    if (!parse_name(&p))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        if (!parse_hms(&p, 24, &west))
            return false;
        r->dst_off = -west;
    }
    if (*p == '\0') { /* no dates: the USA's since 2007, as glibc */
        r->start = (struct rule_date){DATE_MONTH, 0, 3, 2, 0, 7200};
        r->end = (struct rule_date){DATE_MONTH, 0, 11, 1, 0, 7200};
        return true;
    }
    return *p++ == ',' && parse_date(&p, &r->start) && *p++ == ',' && parse_date(&p, &r->end) &&
           *p == '\0';
}

int tz_parse_rule(const char *rule, struct tz **out, struct serr *err)
{
    struct tz *z = xcalloc(1, sizeof(*z));
    if (rule == NULL || !parse_rule_text(rule, &z->rule)) {
        free(z);
        return serr_set(err, SERR_INVALID, "bad POSIX TZ rule '%s'", rule ? rule : "");
    }
    z->has_rule = true;
    *out = z;
    return 0;
}

/* ---- TZif (RFC 8536) ---- */

#define TZIF_HEADER 44

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool read_header(const unsigned char *p, size_t len, struct tzif_counts *c)
{
    if (len < TZIF_HEADER || memcmp(p, "TZif", 4) != 0)
        return false;
    const unsigned char *n = p + 20;
    *c = (struct tzif_counts){be32(n),      be32(n + 4),  be32(n + 8),
                              be32(n + 12), be32(n + 16), be32(n + 20)};
    return c->type > 0 && c->type <= 256 && c->time <= 100000 && c->leap <= 100000 &&
           c->chars <= 100000 && c->isut <= 256 && c->isstd <= 256;
}

/* Bytes of the data block after a header, with times of `tsize` bytes. */
static size_t block_size(const struct tzif_counts *c, size_t tsize)
{
    return c->time * tsize + c->time + c->type * 6 + c->chars + c->leap * (tsize + 4) + c->isstd +
           c->isut;
}

static int tzif_fail(struct tz *z, struct serr *err, const char *why)
{
    tz_free(z);
    return serr_set(err, SERR_INVALID, "not a valid TZif file: %s", why);
}

int tz_parse_tzif(const unsigned char *data, size_t len, struct tz **out, struct serr *err)
{
    struct tzif_counts c;
    struct tz *z = NULL;
    if (!read_header(data, len, &c))
        return tzif_fail(z, err, "bad header");
    size_t tsize = 4, at = TZIF_HEADER;
    if (data[4] >= '2') { /* skip the 32-bit block: the 64-bit one follows */
        at += block_size(&c, 4);
        if (at > len || !read_header(data + at, len - at, &c))
            return tzif_fail(z, err, "bad second header");
        at += TZIF_HEADER;
        tsize = 8;
    }
    if (block_size(&c, tsize) > len - at)
        return tzif_fail(z, err, "truncated");
    const unsigned char *p = data + at;
    z = xcalloc(1, sizeof(*z));
    z->ntrans = c.time;
    z->trans = xcalloc(c.time ? c.time : 1, sizeof(*z->trans));
    z->trans_type = xcalloc(c.time ? c.time : 1, 1);
    z->type_off = xcalloc(c.type, sizeof(*z->type_off));
    for (uint32_t i = 0; i < c.time; i++)
        z->trans[i] = tsize == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
    p += c.time * tsize;
    for (uint32_t i = 0; i < c.time; i++)
        if ((z->trans_type[i] = p[i]) >= c.type)
            return tzif_fail(z, err, "bad type index");
    p += c.time;
    for (uint32_t i = 0; i < c.type; i++)
        z->type_off[i] = (int32_t)be32(p + i * 6);
    at += block_size(&c, tsize);
    if (tsize == 8 && at < len && data[at] == '\n') { /* the footer: "\nRULE\n" */
        const char *start = (const char *)data + at + 1;
        const char *nl = memchr(start, '\n', len - at - 1);
        if (nl && nl > start) {
            char *text = xasprintf("%.*s", (int)(nl - start), start);
            z->has_rule = parse_rule_text(text, &z->rule);
            free(text);
        }
    }
    *out = z;
    return 0;
}

void tz_free(struct tz *z)
{
    if (z == NULL)
        return;
    free(z->trans);
    free(z->trans_type);
    free(z->type_off);
    free(z);
}

/* ---- offsets ---- */

int32_t tz_offset(const struct tz *z, int64_t utc)
{
    if (z->ntrans == 0 || (z->has_rule && utc >= z->trans[z->ntrans - 1]))
        return z->has_rule ? rule_offset(&z->rule, utc) : z->type_off[0];
    if (utc < z->trans[0])
        return z->type_off[0];
    size_t lo = 0, hi = z->ntrans; /* the last transition at or before utc */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= utc)
            lo = mid;
        else
            hi = mid;
    }
    return z->type_off[z->trans_type[lo]];
}

int64_t tz_to_utc(const struct tz *z, int64_t local)
{
    /* the offsets a day before and after: no zone changes twice in two days */
    int32_t before = tz_offset(z, local - 86400), after = tz_offset(z, local + 86400);
    int64_t a = local - before, b = local - after;
    bool a_ok = a + tz_offset(z, a) == local, b_ok = b + tz_offset(z, b) == local;
    if (a_ok && b_ok)
        return a < b ? a : b;
    if (b_ok)
        return b;
    return a; /* valid, or in a gap: the offset before it */
}

/* ---- the tz database ---- */

static bool name_ok(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '/' || strlen(name) > 128)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && strchr("/_+-", *p) == NULL)
            return false;
    return strstr(name, "..") == NULL;
}

static int tz_load(const char *name, struct tz **out, struct serr *err)
{
    const char *dir = getenv("TZDIR");
    char *path = xasprintf("%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    char *data = NULL;
    size_t len = 0;
    int rc = read_file(path, &data, &len, NULL);
    if (rc < 0)
        rc = serr_set(err, SERR_INVALID,
                      "unknown time zone '%s' (no %s: a name of the tz "
                      "database such as Europe/Paris, UTC or local)",
                      name, path);
    else if (tz_parse_tzif((const unsigned char *)data, len, out, err) < 0)
        rc = serr_wrap(err, "time zone '%s' (%s)", name, path);
    free(data);
    free(path);
    return rc;
}

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *name;
    struct tz *zone;
} cache[TZ_CACHE_MAX];

const struct tz *tz_get(const char *name, struct serr *err)
{
    if (!name_ok(name)) {
        serr_set(err, SERR_INVALID, "invalid time zone name '%s'", name ? name : "");
        return NULL;
    }
    struct tz *found = NULL;
    pthread_mutex_lock(&cache_lock);
    int i = 0;
    for (; i < TZ_CACHE_MAX && cache[i].name && !found; i++)
        if (strcmp(cache[i].name, name) == 0)
            found = cache[i].zone;
    if (found == NULL && i == TZ_CACHE_MAX)
        serr_set(err, SERR_INVALID, "time zone '%s': more than %d zones in use", name,
                 TZ_CACHE_MAX);
    else if (found == NULL && tz_load(name, &found, err) == 0) {
        cache[i].name = xstrdup(name);
        cache[i].zone = found;
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}
