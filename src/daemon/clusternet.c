#include "daemon/clusternet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/clusternet_int.h"
#include "daemon/shoal.h"
#include "http/http.h"

/* ---- incoming connections: Raft or HTTP ---- */

#define PREAMBLE_MAX 160

struct incoming {
    struct net *net;
    uv_poll_t poll;
    int fd;
    char peer_id[64];
    char peer_role[16];
    /* The bytes read so far: a part of the RAFT line, or the start of HTTP. */
    char line[PREAMBLE_MAX + 1];
    size_t len;
};

/* Hands the connection to the HTTP server with the bytes already read of it. */
static void adopt_http(struct net *net, int fd, const char *read, size_t len, const char *peer_id,
                       const char *peer_role)
{
    if (net->sh->api == NULL || http_server_adopt(net->sh->api, fd, read, len, peer_id, peer_role) < 0)
        close(fd);
}

static void incoming_closed(uv_handle_t *h)
{
    free(h->data);
}

static void incoming_drop(struct incoming *in, bool close_fd)
{
    if (close_fd)
        close(in->fd);
    uv_close((uv_handle_t *)&in->poll, incoming_closed);
}

/* "RAFT <id> <address>\n" from a manager: hand the stream to raft. */
static void accept_raft(struct incoming *in, const char *line)
{
    struct net *net = in->net;
    unsigned long long id = 0;
    char addr[96];
    if (sscanf(line, "RAFT %llu %95s", &id, addr) != 2 || id == 0 || net->raft_accept == NULL ||
        strcmp(in->peer_role, "manager") != 0) {
        log_warn("refused a raft connection from %s (%s)", in->peer_id[0] ? in->peer_id : "?",
                 in->peer_role[0] ? in->peer_role : "no certificate");
        incoming_drop(in, true);
        return;
    }
    uv_pipe_t *pipe = raft_malloc(sizeof(*pipe));
    uv_pipe_init(net->sh->loop, pipe, 0);
    if (uv_pipe_open(pipe, in->fd) != 0) {
        uv_close((uv_handle_t *)pipe, (uv_close_cb)raft_free);
        incoming_drop(in, true);
        return;
    }
    net->raft_accept(&net->transport, id, addr, (uv_stream_t *)pipe);
    incoming_drop(in, false);
}

/* Reads the preamble up to its newline (never past it: what follows is the
 * Raft stream). Bytes are consumed as they come, so a peer that sends part
 * of a line and then waits or half-closes leaves the socket quiet or at EOF
 * (the poll is level-triggered: unread bytes would make it fire forever). */
static void incoming_readable(uv_poll_t *p, int status, int events)
{
    struct incoming *in = p->data;
    char *at = in->line + in->len;
    ssize_t n = status < 0 ? -1 : recv(in->fd, at, PREAMBLE_MAX - in->len, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && status >= 0)
        return;
    if (n <= 0) {
        incoming_drop(in, true);
        return;
    }
    char *nl = memchr(at, '\n', (size_t)n);
    size_t take = nl ? (size_t)(nl - at) + 1 : (size_t)n;
    if (recv(in->fd, at, take, 0) != (ssize_t)take) {
        incoming_drop(in, true);
        return;
    }
    in->len += take;
    in->line[in->len] = '\0';
    bool raft = strncmp(in->line, "RAFT ", in->len < 5 ? in->len : 5) == 0;
    if (!raft) {
        uv_poll_stop(p);
        adopt_http(in->net, in->fd, in->line, in->len, in->peer_id, in->peer_role);
        incoming_drop(in, false);
        return;
    }
    if (nl == NULL) {
        if (in->len >= PREAMBLE_MAX)
            incoming_drop(in, true);
        return; /* wait for the rest of the line */
    }
    in->line[in->len - 1] = '\0';
    uv_poll_stop(p);
    accept_raft(in, in->line);
}

/* Called by the secure listener for each connection whose handshake is done.
 * Only managers speak Raft: the others go to the HTTP server at once, whose
 * timeouts then hold them (no wait for a preamble that may never come). */
void net_incoming(struct net *net, int fd, const char *peer_id, const char *peer_role)
{
    if (peer_role == NULL || strcmp(peer_role, "manager") != 0) {
        adopt_http(net, fd, NULL, 0, peer_id, peer_role);
        return;
    }
    struct incoming *in = xcalloc(1, sizeof(*in));
    in->net = net;
    in->fd = fd;
    snprintf(in->peer_id, sizeof(in->peer_id), "%s", peer_id ? peer_id : "");
    snprintf(in->peer_role, sizeof(in->peer_role), "%s", peer_role ? peer_role : "");
    uv_poll_init(net->sh->loop, &in->poll, fd);
    in->poll.data = in;
    uv_poll_start(&in->poll, UV_READABLE, incoming_readable);
}

/* ---- raft transport ---- */

struct raft_connect {
    struct net *net;
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    struct raft_connect *next;
    bool canceled;
};

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct net *net = t->impl;
    net->raft_id = id;
    snprintf(net->raft_addr, sizeof(net->raft_addr), "%s", address);
    return 0;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct net *net = t->impl;
    net->raft_accept = cb;
    return 0;
}

static void unlink_connect(struct raft_connect *rc)
{
    for (struct raft_connect **pp = &rc->net->connects; *pp; pp = &(*pp)->next)
        if (*pp == rc) {
            *pp = rc->next;
            return;
        }
}

static void raft_connected(void *arg, int fd, const char *errmsg)
{
    struct raft_connect *rc = arg;
    struct net *net = rc->net;
    unlink_connect(rc);
    if (rc->canceled) {
        if (fd >= 0)
            close(fd);
        free(rc);
        return;
    }
    char line[PREAMBLE_MAX];
    snprintf(line, sizeof(line), "RAFT %llu %s\n", (unsigned long long)net->raft_id,
             net->raft_addr);
    uv_pipe_t *pipe = NULL;
    if (fd >= 0 && write_all(fd, line, strlen(line)) == 0) {
        pipe = raft_malloc(sizeof(*pipe));
        uv_pipe_init(net->sh->loop, pipe, 0);
        if (uv_pipe_open(pipe, fd) != 0) {
            uv_close((uv_handle_t *)pipe, (uv_close_cb)raft_free);
            pipe = NULL;
        }
    } else if (fd >= 0) {
        close(fd);
    }
    rc->cb(rc->req, (uv_stream_t *)pipe, pipe ? 0 : RAFT_NOCONNECTION);
    free(rc);
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                     const char *address, raft_uv_connect_cb cb)
{
    struct net *net = t->impl;
    struct raft_connect *rc = xcalloc(1, sizeof(*rc));
    rc->net = net;
    rc->req = req;
    rc->cb = cb;
    rc->next = net->connects;
    net->connects = rc;
    clusternet_connect(net->sh, address, raft_connected, rc);
    return 0;
}

static void close_deferred(uv_timer_t *timer)
{
    struct net *net = timer->data;
    raft_uv_transport_close_cb cb = net->close_cb;
    net->close_cb = NULL;
    uv_close((uv_handle_t *)timer, (uv_close_cb)free);
    if (cb)
        cb(&net->transport);
}

/* Pending connects are answered RAFT_CANCELED now; their sockets are
 * closed when they complete. The close callback runs on a later loop
 * iteration: raft's own close path goes on after this call returns and must
 * not see the transport closed under it. */
static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct net *net = t->impl;
    net->raft_accept = NULL;
    for (struct raft_connect *rc = net->connects; rc; rc = rc->next) {
        if (!rc->canceled) {
            rc->canceled = true;
            rc->cb(rc->req, NULL, RAFT_CANCELED);
        }
    }
    net->close_cb = cb;
    uv_timer_t *timer = xmalloc(sizeof(*timer));
    uv_timer_init(net->sh->loop, timer);
    timer->data = net;
    uv_timer_start(timer, close_deferred, 0, 0);
}

struct raft_uv_transport *clusternet_raft_transport(struct shoal *sh)
{
    struct net *net = net_get(sh);
    net->transport.impl = net;
    net->transport.init = t_init;
    net->transport.listen = t_listen;
    net->transport.connect = t_connect;
    net->transport.close = t_close;
    return &net->transport;
}
