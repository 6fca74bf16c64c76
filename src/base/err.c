#include "base/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int serr_set(struct serr *err, enum serr_kind kind, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    err->kind = kind;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

int serr_errno(struct serr *err, const char *fmt, ...)
{
    int saved = errno;
    if (err == NULL)
        return -1;
    char head[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    err->kind = (saved == ENOENT) ? SERR_NOT_FOUND : SERR_INTERNAL;
    snprintf(err->msg, sizeof(err->msg), "%s: %s", head, strerror(saved));
    return -1;
}

int serr_wrap(struct serr *err, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    char head[256], old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", head, old);
    return -1;
}
