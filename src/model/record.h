/* How model/ defines the typed accessors of a store record's fields
 * (model/task.h, service.h, node.h): one line a field, on base/json_get.h, so
 * a field's key is written once and a misspelled accessor is a compile error.
 * Every accessor is NULL-safe: a NULL record, a missing field or one of
 * another type reads as NULL, 0 or false. Strings and objects are borrowed
 * from the record. */
#ifndef SHOAL_MODEL_RECORD_H
#define SHOAL_MODEL_RECORD_H

#include <jansson.h>
#include <stdbool.h>

#include "base/json_get.h"

/* const char *fn(json_t *record): the string at `key`, or NULL. */
#define RECORD_STR(fn, key)                                                                        \
    static inline const char *fn(json_t *record)                                                   \
    {                                                                                              \
        return jstr(record, key);                                                                  \
    }
/* bool fn(json_t *record, const char *want): true when `key` holds `want`. */
#define RECORD_STR_IS(fn, key)                                                                     \
    static inline bool fn(json_t *record, const char *want)                                        \
    {                                                                                              \
        return jstr_is(record, key, want);                                                         \
    }
/* json_int_t fn(json_t *record): the integer at `key`, or 0. */
#define RECORD_INT(fn, key)                                                                        \
    static inline json_int_t fn(json_t *record)                                                    \
    {                                                                                              \
        return jint(record, key, 0);                                                               \
    }
/* json_t *fn(json_t *record): the value at `key` (borrowed), or NULL. */
#define RECORD_JSON(fn, key)                                                                       \
    static inline json_t *fn(json_t *record)                                                       \
    {                                                                                              \
        return json_object_get(record, key);                                                       \
    }

#endif
