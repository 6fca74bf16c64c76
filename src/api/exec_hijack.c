/* Docker's hijacked exec stream (docs/api.md, "exec over an upgraded
 * connection"): an exec request with `Connection: Upgrade` and `Upgrade:
 * tcp` is answered `101 UPGRADED` once the command runs, and the connection
 * carries the command's output one way and its input the other.
 *
 * The command itself runs as any exec does (here, or on its task's node
 * through the relay), writing shoal's frames to this reply; this reply
 * reads them and writes what Docker's clients expect: with a terminal its
 * raw bytes, without Docker's multiplexed frames (stdout 1, stderr 2), then
 * the exit code (frame 3). The session frame (4) is kept here: the client's
 * bytes go to the session's input, here or on its node (one request at a
 * time, in order), and the client closing its side ends the input. */
#include "api/exec_hijack.h"

#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/reply.h"
#include "base/util.h"
#include "http/http.h"

#define FRAME_HEAD 8
#define SMALL_FRAME_MAX 256 /* a session's id */

struct hijack {
    struct agent_reply r; /* what the command's frames are written to */
    struct shoal *sh;
    struct http_req *req; /* NULL once the client left */
    bool tty;
    bool takes_input; /* interactive or tty: a session; else the client's bytes are dropped */
    bool upgraded;
    bool ended; /* the command's stream ended: nothing more is written to r */
    /* the frame being read */
    unsigned char head[FRAME_HEAD];
    size_t head_len;
    size_t left; /* bytes of its payload still to come */
    char small[SMALL_FRAME_MAX + 1];
    size_t small_len;
    /* the client's input, waiting for the session or for its last send */
    char session[96];
    char *in;
    size_t in_len, in_cap;
    bool in_eof, in_closed, sending;
};

static void hijack_free_if_done(struct hijack *h)
{
    if (h->req == NULL && h->ended && !h->sending) {
        free(h->in);
        free(h);
    }
}

/* The client's request is answered: it no longer points here. */
static struct http_req *hijack_detach(struct hijack *h)
{
    struct http_req *req = h->req;
    h->req = NULL;
    req->data = NULL;
    req->on_abort = NULL;
    req->on_input = NULL;
    return req;
}

static void send_input(struct hijack *h);

static void input_sent(void *arg, int status)
{
    struct hijack *h = arg;
    h->sending = false;
    if (status < 0) { /* the session ended: its input is dropped */
        h->in_len = 0;
        h->in_closed = true;
    }
    if (h->req)
        send_input(h);
    hijack_free_if_done(h);
}

/* Sends what input waits, once the session is known, one send at a time. */
static void send_input(struct hijack *h)
{
    if (h->session[0] == '\0' || h->sending || h->in_closed || (h->in_len == 0 && !h->in_eof))
        return;
    h->sending = true;
    if (h->in_eof)
        h->in_closed = true;
    size_t len = h->in_len;
    h->in_len = 0;
    exec_session_send(h->sh, h->session, h->in, len, h->in_eof, input_sent, h);
}

static void client_input(struct http_req *req, const char *data, size_t len)
{
    struct hijack *h = req->data;
    if (data == NULL)
        h->in_eof = true;
    else if (h->takes_input && !h->in_closed)
        buf_append(&h->in, &h->in_len, &h->in_cap, data, len);
    send_input(h);
}

/* The client left: the command's frames are dropped until they end (an
 * exec's ends as its connection to the agent or the node does). */
static void client_gone(struct http_req *req)
{
    struct hijack *h = req->data;
    h->req = NULL;
    if (h->r.gone)
        h->r.gone(&h->r);
    h->ended = true;
    hijack_free_if_done(h);
}

/* 101 once the command runs: with a session, its id names it for resize
 * (`X-Shoal-Exec-Id`). */
static void upgrade(struct hijack *h)
{
    if (h->upgraded || h->req == NULL)
        return;
    h->upgraded = true;
    h->req->on_input = client_input;
    char *id_header = h->session[0] ? xasprintf("X-Shoal-Exec-Id: %s\r\n", h->session) : NULL;
    http_upgrade(h->req,
                 h->tty ? "application/vnd.docker.raw-stream"
                        : "application/vnd.docker.multiplexed-stream",
                 id_header);
    free(id_header);
}

/* The whole session frame: its id is kept. */
static void session_frame(struct hijack *h)
{
    h->small[h->small_len] = '\0';
    snprintf(h->session, sizeof(h->session), "%s", h->small);
    upgrade(h);
    send_input(h);
}

/* Stdout and stderr pass on; the exit code (3) too, but with a terminal
 * (Docker's raw stream has no frames). */
static bool passes_on(const struct hijack *h)
{
    int stream = h->head[0];
    return h->req && (stream == 1 || stream == 2 || (stream == 3 && !h->tty));
}

/* A frame's header is in: what its payload becomes. */
static void frame_begins(struct hijack *h)
{
    h->left = (size_t)h->head[4] << 24 | (size_t)h->head[5] << 16 | (size_t)h->head[6] << 8 |
              (size_t)h->head[7];
    h->small_len = 0;
    if (h->head[0] != 4) /* the session's: once its id is in */
        upgrade(h);
    if (passes_on(h) && !h->tty)
        http_stream_write(h->req, (const char *)h->head, FRAME_HEAD);
}

static size_t frame_payload(struct hijack *h, const char *data, size_t len)
{
    size_t n = len < h->left ? len : h->left;
    if (passes_on(h)) {
        http_stream_write(h->req, data, n);
    } else if (h->head[0] == 4) {
        size_t room = SMALL_FRAME_MAX - h->small_len;
        memcpy(h->small + h->small_len, data, n < room ? n : room);
        h->small_len += n < room ? n : room;
    }
    h->left -= n;
    return n;
}

static void reply_stream_write(struct agent_reply *r, const char *data, size_t len)
{
    struct hijack *h = r->data;
    while (len > 0) {
        if (h->head_len < FRAME_HEAD) {
            size_t n = FRAME_HEAD - h->head_len < len ? FRAME_HEAD - h->head_len : len;
            memcpy(h->head + h->head_len, data, n);
            h->head_len += n;
            data += n;
            len -= n;
            if (h->head_len == FRAME_HEAD)
                frame_begins(h);
        } else {
            size_t n = frame_payload(h, data, len);
            data += n;
            len -= n;
        }
        if (h->head_len == FRAME_HEAD && h->left == 0) {
            if (h->head[0] == 4)
                session_frame(h);
            h->head_len = 0;
        }
    }
}

static void reply_stream_start(struct agent_reply *r, const char *content_type)
{
    (void)r;
    (void)content_type; /* upgraded at the first frame: the command runs then */
}

static void reply_stream_end(struct agent_reply *r)
{
    struct hijack *h = r->data;
    h->ended = true;
    if (h->req) {
        upgrade(h); /* a command that ended without a frame */
        http_stream_end(hijack_detach(h));
    }
    hijack_free_if_done(h);
}

static void reply_respond(struct agent_reply *r, int status, const char *json)
{
    struct hijack *h = r->data;
    h->ended = true;
    if (h->req && h->upgraded)
        http_stream_end(hijack_detach(h));
    else if (h->req)
        http_respond(hijack_detach(h), status, "application/json", json, strlen(json));
    hijack_free_if_done(h);
}

static void reply_fail(struct agent_reply *r, const struct serr *err)
{
    struct hijack *h = r->data;
    h->ended = true;
    if (h->req && h->upgraded)
        http_stream_end(hijack_detach(h));
    else if (h->req)
        http_respond_error(hijack_detach(h), err);
    hijack_free_if_done(h);
}

struct agent_reply *exec_hijack_reply(struct shoal *sh, struct http_req *req, bool tty,
                                      bool interactive)
{
    struct hijack *h = xcalloc(1, sizeof(*h));
    h->sh = sh;
    h->req = req;
    h->tty = tty;
    h->takes_input = tty || interactive;
    h->r = (struct agent_reply){
        .data = h,
        .respond = reply_respond,
        .fail = reply_fail,
        .stream_start = reply_stream_start,
        .stream_write = reply_stream_write,
        .stream_end = reply_stream_end,
    };
    req->data = h;
    req->on_abort = client_gone;
    return &h->r;
}
