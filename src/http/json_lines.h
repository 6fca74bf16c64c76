/* The lines of a streamed answer made in the thread pool (image pull
 * progress, build output): the work queues JSON values from its thread, the
 * loop hands each to the owner's `send` (which writes it as one line of the
 * request's stream: http_stream_json_line). */
#ifndef SHOAL_HTTP_JSON_LINES_H
#define SHOAL_HTTP_JSON_LINES_H

#include <jansson.h>
#include <uv.h>

struct http_req;

typedef void (*json_lines_send_cb)(void *owner, json_t *line /* stolen */);
typedef void (*json_lines_closed_cb)(void *owner);

struct json_lines {
    uv_async_t async;
    uv_mutex_t lock;
    json_t *pending; /* the lines from the thread, under lock */
    void *owner;
    json_lines_send_cb send;
    json_lines_closed_cb closed;
};

/* On the loop, before the work is queued: `l` is the caller's (it lives
 * until `closed`). */
void json_lines_init(struct json_lines *l, uv_loop_t *loop, void *owner, json_lines_send_cb send);
/* From the work's thread: `line` (stolen) goes to `send` soon, on the loop. */
void json_lines_queue(struct json_lines *l, json_t *line);
/* On the loop: sends the lines queued so far (the last ones, before the end). */
void json_lines_flush(struct json_lines *l);
/* On the loop, once the work is done: closed(owner) follows, `l` released. */
void json_lines_close(struct json_lines *l, json_lines_closed_cb closed);

/* `line` written to the request's stream as JSON on one line. */
void http_stream_json_line(struct http_req *req, json_t *line);

#endif
