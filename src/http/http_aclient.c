#include "http/http_aclient.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/util.h"

#define MAX_BODY (64u * 1024 * 1024)

struct areq {
    uv_pipe_t pipe;
    uv_write_t write;
    uv_timer_t defer; /* reports failures after the caller's stack unwound */
    http_parser parser;
    char *out;        /* request bytes */
    char *body;       /* response body in memory */
    size_t body_len, body_cap;
    int out_fd;
    bool done, complete, pipe_open;
    int handles;
    char errmsg[160];
    char field[24];   /* the header field being read, truncated */
    size_t field_len;
    bool value_seen;  /* a value came: the next field callback starts a new name */
    uint64_t *applied;
    int *keep_fd;     /* http_aopts.keep_fd */
    http_acb cb;
    http_achunk chunk_cb; /* streaming: the body of a 2xx answer goes here */
    void *arg;
};

static http_parser_settings settings;

static void handle_closed(uv_handle_t *h)
{
    struct areq *r = h->data;
    if (--r->handles > 0)
        return;
    free(r->out);
    free(r->body);
    free(r);
}

/* A whole answer on a connection the server keeps: the caller gets a
 * descriptor of it (the pipe's own is closed with the pipe). */
static void hand_back_connection(struct areq *r, int status)
{
    uv_os_fd_t fd;
    if (status >= 0 && r->pipe_open && http_should_keep_alive(&r->parser) &&
        uv_fileno((uv_handle_t *)&r->pipe, &fd) == 0)
        *r->keep_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

static void finish(struct areq *r, int status, const char *fmt, const char *detail)
{
    if (r->done)
        return;
    r->done = true;
    if (r->keep_fd)
        hand_back_connection(r, status);
    if (status < 0) {
        snprintf(r->errmsg, sizeof(r->errmsg), fmt, detail ? detail : "");
        r->cb(r->arg, -1, NULL, 0, r->errmsg);
    } else {
        r->cb(r->arg, status, r->out_fd >= 0 ? NULL : (r->body ? r->body : ""), r->body_len, NULL);
    }
    if (r->pipe_open)
        uv_close((uv_handle_t *)&r->pipe, handle_closed);
    uv_close((uv_handle_t *)&r->defer, handle_closed);
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct areq *r = p->data;
    if (r->chunk_cb && p->status_code / 100 == 2) {
        r->chunk_cb(r->arg, at, len);
        return r->done ? -1 : 0; /* cancelled from the callback */
    }
    if (r->out_fd >= 0)
        return write_all(r->out_fd, at, len);
    if (r->body_len + len + 1 > MAX_BODY)
        return -1;
    buf_append(&r->body, &r->body_len, &r->body_cap, at, len);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct areq *r = p->data;
    if (r->value_seen) { /* a new field starts */
        r->value_seen = false;
        r->field_len = 0;
    }
    for (size_t i = 0; i < len && r->field_len + 1 < sizeof(r->field); i++)
        r->field[r->field_len++] = at[i];
    r->field[r->field_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct areq *r = p->data;
    if (r->field_len > 0 && strcasecmp(r->field, "X-Shoal-Applied") == 0 && r->applied)
        for (size_t i = 0; i < len; i++)
            if (at[i] >= '0' && at[i] <= '9')
                *r->applied = *r->applied * 10 + (uint64_t)(at[i] - '0');
    r->value_seen = true; /* the next field callback starts a new name */
    return 0;
}

static int on_complete(http_parser *p)
{
    struct areq *r = p->data;
    r->complete = true;
    return 0;
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    buf->base = xmalloc(65536);
    buf->len = 65536;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct areq *r = s->data;
    if (n > 0) {
        size_t used = http_parser_execute(&r->parser, &settings, buf->base, (size_t)n);
        if (used != (size_t)n && !r->complete)
            finish(r, -1, "malformed response: %s", http_errno_description(HTTP_PARSER_ERRNO(&r->parser)));
    } else if (n < 0) {
        http_parser_execute(&r->parser, &settings, NULL, 0); /* EOF ends a close-delimited body */
        if (!r->complete)
            finish(r, -1, "connection closed before the response ended%s", "");
    }
    free(buf->base);
    if (r->complete)
        finish(r, r->parser.status_code, NULL, NULL);
}

static void write_cb(uv_write_t *w, int status)
{
    struct areq *r = w->data;
    if (status < 0)
        finish(r, -1, "send failed: %s", uv_strerror(status));
}

static void on_timeout(uv_timer_t *t)
{
    struct areq *r = t->data;
    char within[32];
    snprintf(within, sizeof(within), "%s", r->errmsg);
    finish(r, -1, "no answer within %s", within);
}

static void fail_later(uv_timer_t *t)
{
    struct areq *r = t->data;
    char msg[sizeof(r->errmsg)];
    memcpy(msg, r->errmsg, sizeof(msg));
    finish(r, -1, "%s", msg);
}

static struct areq *arequest_start(uv_loop_t *loop, int fd, const char *method, const char *path,
                                   const char *content_type, const char *body, size_t len,
                                   int out_fd, const struct http_aopts *opts,
                                   http_achunk chunk_cb, http_acb cb, void *arg)
{
    if (settings.on_body == NULL) {
        http_parser_settings_init(&settings);
        settings.on_body = on_body;
        settings.on_message_complete = on_complete;
        settings.on_header_field = on_header_field;
        settings.on_header_value = on_header_value;
    }
    struct areq *r = xcalloc(1, sizeof(*r));
    r->cb = cb;
    r->chunk_cb = chunk_cb;
    r->arg = arg;
    r->applied = opts ? opts->applied : NULL;
    if (r->applied)
        *r->applied = 0;
    r->keep_fd = opts ? opts->keep_fd : NULL;
    if (r->keep_fd)
        *r->keep_fd = -1;
    r->out_fd = out_fd;
    r->handles = 1;
    uv_timer_init(loop, &r->defer);
    r->defer.data = r;
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    uv_pipe_init(loop, &r->pipe, 0);
    r->pipe.data = r;
    if (uv_pipe_open(&r->pipe, fd) != 0) {
        close(fd);
        r->handles = 2;
        uv_close((uv_handle_t *)&r->pipe, handle_closed);
        snprintf(r->errmsg, sizeof(r->errmsg), "cannot use the connection");
        uv_timer_start(&r->defer, fail_later, 0, 0);
        return r;
    }
    r->pipe_open = true;
    r->handles = 2;
    char *head = xasprintf("%s %s HTTP/1.1\r\nHost: shoal\r\n%s"
                           "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                           method, path, r->keep_fd ? "" : "Connection: close\r\n",
                           content_type ? content_type : "application/json", len);
    size_t hlen = strlen(head);
    r->out = xmalloc(hlen + len);
    memcpy(r->out, head, hlen);
    if (len)
        memcpy(r->out + hlen, body, len);
    free(head);
    uv_buf_t buf = uv_buf_init(r->out, (unsigned)(hlen + len));
    r->write.data = r;
    uv_write(&r->write, (uv_stream_t *)&r->pipe, &buf, 1, write_cb);
    uv_read_start((uv_stream_t *)&r->pipe, alloc_cb, read_cb);
    if (opts && opts->timeout_ms > 0) {
        snprintf(r->errmsg, sizeof(r->errmsg), "%.1f s", opts->timeout_ms / 1000.0);
        uv_timer_start(&r->defer, on_timeout, opts->timeout_ms, 0);
    }
    return r;
}

void http_arequest_opts(uv_loop_t *loop, int fd, const char *method, const char *path,
                        const char *content_type, const char *body, size_t len, int out_fd,
                        const struct http_aopts *opts, http_acb cb, void *arg)
{
    arequest_start(loop, fd, method, path, content_type, body, len, out_fd, opts, NULL, cb, arg);
}

void http_arequest(uv_loop_t *loop, int fd, const char *method, const char *path,
                   const char *content_type, const char *body, size_t len, int out_fd,
                   http_acb cb, void *arg)
{
    arequest_start(loop, fd, method, path, content_type, body, len, out_fd, NULL, NULL, cb, arg);
}

struct areq *http_arequest_stream(uv_loop_t *loop, int fd, const char *method, const char *path,
                                  const char *body, size_t len, http_achunk chunk, http_acb cb,
                                  void *arg)
{
    return arequest_start(loop, fd, method, path, NULL, body, len, -1, NULL, chunk, cb, arg);
}

void http_arequest_cancel(struct areq *r)
{
    if (r->done)
        return;
    r->done = true;
    if (r->pipe_open) {
        uv_read_stop((uv_stream_t *)&r->pipe);
        uv_close((uv_handle_t *)&r->pipe, handle_closed);
    }
    uv_close((uv_handle_t *)&r->defer, handle_closed);
}
