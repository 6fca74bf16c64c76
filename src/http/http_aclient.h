/* Asynchronous one-shot HTTP/1.1 client on the daemon's loop: one request
 * over an already connected stream (the plain side of a TLS connection from
 * tlsproxy_connect), then the connection is closed (or handed back to the
 * caller: http_aopts.keep_fd). Used between nodes:
 * agent sessions, forwarded writes, layer downloads. */
#ifndef SHOAL_HTTP_HTTP_ACLIENT_H
#define SHOAL_HTTP_HTTP_ACLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* `status` is the HTTP status, or -1 when the exchange failed (then `errmsg`
 * says why and body is NULL). `body` (NUL-terminated) is valid only during
 * the call; it is NULL when the body went to out_fd. */
typedef void (*http_acb)(void *arg, int status, const char *body, size_t len, const char *errmsg);

/* Takes `fd` (closed at the end). `body` is copied. When out_fd >= 0 the
 * response body is written there instead of memory (not closed). The
 * callback runs exactly once, never from within this call. Bodies kept in
 * memory are capped at 64 MiB. */
void http_arequest(uv_loop_t *loop, int fd, const char *method, const char *path,
                   const char *content_type, const char *body, size_t len, int out_fd,
                   http_acb cb, void *arg);

struct http_aopts {
    unsigned timeout_ms; /* 0: none; else the exchange fails after that long */
    /* When not NULL: set to the answer's X-Shoal-Applied header (the raft
     * index the answering manager had applied), 0 when absent, before `cb`. */
    uint64_t *applied;
    /* When not NULL: the request does not ask to close the connection, and
     * when the answer came whole on a connection the server keeps open,
     * *keep_fd is set to a descriptor of it (the caller's, for its next
     * request), else to -1, before `cb`. */
    int *keep_fd;
};

/* http_arequest with options (`opts` is read during this call only). */
void http_arequest_opts(uv_loop_t *loop, int fd, const char *method, const char *path,
                        const char *content_type, const char *body, size_t len, int out_fd,
                        const struct http_aopts *opts, http_acb cb, void *arg);

/* Streaming (a long answer, e.g. followed logs): the body of a 2xx answer
 * goes to `chunk` as it comes, then `cb` runs once at the end (with body
 * "") or on failure; other answers are kept and given to `cb`. The handle
 * is valid until `cb` runs; http_arequest_cancel() before that closes the
 * connection and `cb` is not called (it may be called from `chunk`). */
struct areq;
typedef void (*http_achunk)(void *arg, const char *data, size_t len);
struct areq *http_arequest_stream(uv_loop_t *loop, int fd, const char *method, const char *path,
                                  const char *body, size_t len, http_achunk chunk, http_acb cb,
                                  void *arg);
void http_arequest_cancel(struct areq *r);

#endif
