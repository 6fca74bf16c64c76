/* Typed reads of a field of a JSON object (store records, API bodies), one
 * helper for every layer instead of a private copy per file. All are
 * NULL-safe: a NULL object, a missing key and a value of another type read
 * as "absent". What they return is borrowed from `o`. */
#ifndef SHOAL_BASE_JSON_GET_H
#define SHOAL_BASE_JSON_GET_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

/* The string at `key`, or NULL when absent or not a string. */
const char *jstr(json_t *o, const char *key);
/* The string at `key`, or `def` when absent or not a string. */
const char *jstr_or(json_t *o, const char *key, const char *def);
/* True when `key` holds the string `want` (false when absent). */
bool jstr_is(json_t *o, const char *key, const char *want);
/* The first object of `array` whose `key` holds the string `want`, or NULL
 * (also for a NULL `want`). */
json_t *jarray_find(json_t *array, const char *key, const char *want);
/* The index of that object in `array`, or -1 (none, or a NULL `want`). */
int jarray_index(json_t *array, const char *key, const char *want);
/* The members of `array` (taken) in the order of `cmp` (qsort's, over
 * json_t *const * pointers): a new array holding the same members. */
json_t *jarray_sorted(json_t *array, int (*cmp)(const void *, const void *));
/* Sets `key` to `value` (taken: freed when not used) unless `key` is there. */
void jset_default(json_t *o, const char *key, json_t *value);
/* The integer at `key`, or `def` when absent or not an integer. */
json_int_t jint(json_t *o, const char *key, json_int_t def);
/* The boolean at `key`, or `def` when absent or not a boolean. */
bool jbool(json_t *o, const char *key, bool def);

/* The compact text of object `obj` with `members` (the compact text of
 * more members, "\"k\":v,...", without braces; NULL or "": none) added
 * at its end: a text dumped once (a large member shared by many answers)
 * is not dumped again into each. A new string (free it), or NULL when obj
 * is not an object or does not encode. */
char *jdumps_with_members(json_t *obj, const char *members);
/* 0 when `v` is an array of strings; else -1 with SERR_INVALID "<field> must
 * be an array of strings". */
int jcheck_string_array(json_t *v, const char *field, struct serr *err);

#endif
