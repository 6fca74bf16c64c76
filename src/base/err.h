/* Error objects: every fallible function returns int (0 ok, -1 error) and takes
 * `struct serr *err` last. The callee records the message where the failure
 * happened; callers may prefix context with serr_wrap(). `err` may be NULL. */
#ifndef SHOAL_BASE_ERR_H
#define SHOAL_BASE_ERR_H

#include <stddef.h>

/* Error kinds map onto HTTP statuses in the API (see api/routes.c). */
enum serr_kind {
    SERR_INTERNAL = 0, /* 500 */
    SERR_INVALID,      /* 400: bad input */
    SERR_NOT_FOUND,    /* 404 */
    SERR_CONFLICT,     /* 409: duplicate name, object in use */
    SERR_UNAVAILABLE,  /* 503: no leader, no quorum, not a swarm manager */
    SERR_FORBIDDEN,    /* 403: the caller's credential may not do this */
};

struct serr {
    enum serr_kind kind;
    char msg[512];
};

/* Set the message (printf style). Always returns -1 so callers can write
 * `return serr_set(err, SERR_INVALID, "bad size %s", s);`. */
int serr_set(struct serr *err, enum serr_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like serr_set() with ": strerror(errno)" appended. */
int serr_errno(struct serr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the existing message with context: "ctx: old message". Returns -1. */
int serr_wrap(struct serr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
