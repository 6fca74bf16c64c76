/* The cluster port's preamble (daemon/clusternet.c net_incoming): what a peer
 * sends first after the TLS handshake picks Raft or HTTP. A socketpair stands
 * in for the TLS side. */
#include <errno.h>
#include <poll.h>
#include <raft.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/clusternet_int.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "unit.h"

static struct {
    raft_id id;
    char addr[96];
    char rest[32]; /* what the raft stream read after the line */
    char http_path[64];
} seen;

static void raft_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                        struct uv_stream_s *stream)
{
    seen.id = id;
    snprintf(seen.addr, sizeof(seen.addr), "%s", address);
    uv_os_fd_t fd;
    CHECK(uv_fileno((uv_handle_t *)stream, &fd) == 0);
    ssize_t n = recv(fd, seen.rest, sizeof(seen.rest) - 1, 0);
    CHECK(n >= 0);
    seen.rest[n] = '\0';
    uv_close((uv_handle_t *)stream, (uv_close_cb)raft_free);
}

static void router(struct http_server *srv, struct http_req *req)
{
    snprintf(seen.http_path, sizeof(seen.http_path), "%s", req->path);
    http_respond(req, 200, "text/plain", "ok", 2);
}

struct peer {
    uv_loop_t loop;
    struct shoal sh;
    struct net net;
    int fds[2]; /* [0] the daemon's side, [1] the peer's */
};

static void peer_start(struct peer *p)
{
    memset(&seen, 0, sizeof(seen));
    memset(p, 0, sizeof(*p));
    uv_loop_init(&p->loop);
    p->sh.loop = &p->loop;
    p->net.sh = &p->sh;
    p->net.raft_accept = raft_accept;
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->fds) == 0);
}

/* Runs the loop until the daemon closes its side; false after 10 s. */
static bool closed_by_daemon(struct peer *p)
{
    int64_t deadline = mono_ms() + 10000;
    char buf[256];
    while (mono_ms() < deadline) {
        uv_run(&p->loop, UV_RUN_NOWAIT);
        ssize_t n = recv(p->fds[1], buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN))
            return true;
        if (n < 0) {
            struct pollfd pfd = {.fd = p->fds[1], .events = POLLIN};
            poll(&pfd, 1, 5);
        }
    }
    return false;
}

/* Closes the peer's side and everything the daemon side still holds. */
static void peer_finish(struct peer *p)
{
    close(p->fds[1]);
    if (p->sh.api)
        http_server_stop(p->sh.api);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&p->loop) == 0);
}

static void send_text(struct peer *p, const char *text)
{
    CHECK(write_all(p->fds[1], text, strlen(text)) == 0);
}

/* A peer that sends part of the RAFT line and half-closes is dropped (it was
 * polled forever: the unread bytes kept the socket readable). */
TEST(cluster_preamble_partial_raft_line_then_eof_closes)
{
    struct peer p;
    peer_start(&p);
    send_text(&p, "RAFT 1");
    CHECK(shutdown(p.fds[1], SHUT_WR) == 0);
    net_incoming(&p.net, p.fds[0], "peer", "manager");
    CHECK(closed_by_daemon(&p));
    CHECK(seen.id == 0);
    peer_finish(&p);
}

/* The line may come in pieces; the bytes after it stay for raft. */
TEST(cluster_preamble_raft_line_in_pieces)
{
    struct peer p;
    peer_start(&p);
    net_incoming(&p.net, p.fds[0], "peer", "manager");
    send_text(&p, "RAF");
    for (int i = 0; i < 5; i++)
        uv_run(&p.loop, UV_RUN_NOWAIT);
    send_text(&p, "T 7 10.0.0.1:2377\nraft-bytes");
    CHECK(shutdown(p.fds[1], SHUT_WR) == 0);
    CHECK(closed_by_daemon(&p));
    CHECK(seen.id == 7);
    CHECK_STR(seen.addr, "10.0.0.1:2377");
    CHECK_STR(seen.rest, "raft-bytes");
    peer_finish(&p);
}

/* Anything else is HTTP, the bytes read to tell included. */
TEST(cluster_preamble_http_request)
{
    static const char *const no_spool[] = {NULL};
    struct peer p;
    peer_start(&p);
    char dir[] = "/tmp/shoal-unit-preamble-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *sock = xasprintf("%s/api.sock", dir);
    struct serr err = {0};
    p.sh.api = http_server_start(&p.loop, sock, dir, no_spool, router, NULL, &err);
    CHECK(p.sh.api != NULL);
    net_incoming(&p.net, p.fds[0], "peer", "manager");
    send_text(&p, "GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(shutdown(p.fds[1], SHUT_WR) == 0);
    CHECK(closed_by_daemon(&p));
    CHECK_STR(seen.http_path, "/v1/info");
    peer_finish(&p);
    CHECK(rm_rf(dir, NULL) == 0);
    free(sock);
}
