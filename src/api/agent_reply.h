/* An agent reply (agent/reply.h) over an HTTP request: answers and streams
 * become HTTP responses; the client going away (on_abort) becomes the
 * reply's `gone`. */
#ifndef SHOAL_API_AGENT_REPLY_H
#define SHOAL_API_AGENT_REPLY_H

struct http_req;
struct agent_reply;

/* A reply answering `req`, which it takes over (req->data, req->on_abort).
 * It frees itself when the answer ends or the client goes away. */
struct agent_reply *agent_reply_http(struct http_req *req);

#endif
