/* The agent's answers to its clients (`shoal run`, `rm -f`, a node's logs)
 * through a small interface instead of HTTP: api/agent_reply.c makes one over
 * an HTTP request. A reply is one answer (respond or fail) or a stream
 * (stream_start, stream_write..., stream_end).
 *
 * The reply belongs to its maker. It stays valid until respond, fail or
 * stream_end was called, or until the maker calls `gone` (the client left);
 * after either the agent never touches it again. While the agent keeps a
 * reply for later it sets `gone` and `agent_data` (NULL otherwise: nothing
 * to tell). */
#ifndef SHOAL_AGENT_REPLY_H
#define SHOAL_AGENT_REPLY_H

#include <stddef.h>

#include "base/err.h"

struct agent_reply {
    void *data; /* the maker's */
    /* One JSON answer (`json`: its text, borrowed). */
    void (*respond)(struct agent_reply *r, int status, const char *json);
    /* An error answer, from err's kind and message. */
    void (*fail)(struct agent_reply *r, const struct serr *err);
    /* A stream: status 200, then chunks, then its end. */
    void (*stream_start)(struct agent_reply *r, const char *content_type);
    void (*stream_write)(struct agent_reply *r, const char *buf, size_t len);
    void (*stream_end)(struct agent_reply *r);

    void (*gone)(struct agent_reply *r); /* the agent's, called by the maker */
    void *agent_data;
};

/* The content type of a stream of frames (exec, `run -i/-t`): a manager
 * relays a node's stream under the same type. */
#define AGENT_FRAMES_TYPE "application/vnd.shoal.raw-stream"

#endif
