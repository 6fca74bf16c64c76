#include "api/agent_reply.h"

#include <stdlib.h>
#include <string.h>

#include "agent/reply.h"
#include "base/util.h"
#include "http/http.h"

/* The request answered; the reply is not used again. */
static struct http_req *finish(struct agent_reply *r)
{
    struct http_req *req = r->data;
    req->on_abort = NULL;
    req->data = NULL;
    free(r);
    return req;
}

static void reply_respond(struct agent_reply *r, int status, const char *json)
{
    http_respond(finish(r), status, "application/json", json, strlen(json));
}

static void reply_fail(struct agent_reply *r, const struct serr *err)
{
    http_respond_error(finish(r), err);
}

static void reply_stream_start(struct agent_reply *r, const char *content_type)
{
    http_stream_start(r->data, 200, content_type);
}

static void reply_stream_write(struct agent_reply *r, const char *buf, size_t len)
{
    http_stream_write(r->data, buf, len);
}

static void reply_stream_end(struct agent_reply *r)
{
    http_stream_end(finish(r));
}

static void request_aborted(struct http_req *req)
{
    struct agent_reply *r = req->data;
    if (r->gone)
        r->gone(r);
    free(r);
}

struct agent_reply *agent_reply_http(struct http_req *req)
{
    struct agent_reply *r = xcalloc(1, sizeof(*r));
    *r = (struct agent_reply){
        .data = req,
        .respond = reply_respond,
        .fail = reply_fail,
        .stream_start = reply_stream_start,
        .stream_write = reply_stream_write,
        .stream_end = reply_stream_end,
    };
    req->data = r;
    req->on_abort = request_aborted;
    return r;
}
