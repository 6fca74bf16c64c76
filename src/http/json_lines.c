#include "http/json_lines.h"

#include <stdlib.h>
#include <string.h>

#include "http/http.h"

static void flush_cb(uv_async_t *a)
{
    json_lines_flush(a->data);
}

void json_lines_init(struct json_lines *l, uv_loop_t *loop, void *owner, json_lines_send_cb send)
{
    l->pending = json_array();
    l->owner = owner;
    l->send = send;
    uv_mutex_init(&l->lock);
    uv_async_init(loop, &l->async, flush_cb);
    l->async.data = l;
}

void json_lines_queue(struct json_lines *l, json_t *line)
{
    uv_mutex_lock(&l->lock);
    json_array_append_new(l->pending, line);
    uv_mutex_unlock(&l->lock);
    uv_async_send(&l->async);
}

void json_lines_flush(struct json_lines *l)
{
    uv_mutex_lock(&l->lock);
    json_t *lines = l->pending;
    l->pending = json_array();
    uv_mutex_unlock(&l->lock);
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) l->send(l->owner, json_incref(line));
    json_decref(lines);
}

static void closed_cb(uv_handle_t *h)
{
    struct json_lines *l = h->data;
    uv_mutex_destroy(&l->lock);
    json_decref(l->pending);
    l->closed(l->owner);
}

void json_lines_close(struct json_lines *l, json_lines_closed_cb closed)
{
    l->closed = closed;
    uv_close((uv_handle_t *)&l->async, closed_cb);
}

void http_stream_json_line(struct http_req *req, json_t *line)
{
    char *text = json_dumps(line, JSON_COMPACT);
    http_stream_write(req, text, strlen(text));
    http_stream_write(req, "\n", 1);
    free(text);
}
