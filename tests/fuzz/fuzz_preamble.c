/* The cluster port's first bytes after the TLS handshake (daemon/clusternet.c
 * net_incoming): "RAFT <id> <address>\n" hands the stream to Raft, anything
 * else is HTTP for the API server. The input is what the peer sends before it
 * half-closes; the test reads until the daemon closes its end, which it must
 * do (a hang is a timeout, reported as a failure). The HTTP side is a server
 * that answers 404 to everything (fuzz_http covers it). */
#include <errno.h>
#include <poll.h>
#include <raft.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/clusternet_int.h"
#include "daemon/shoal.h"
#include "fuzz.h"
#include "http/http.h"

static uv_loop_t loop;
static struct shoal *sh;
static struct net *net;
static char *work_dir;

/* Raft would keep the stream: here it is closed at once, like a refused one. */
static void raft_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                        struct uv_stream_s *stream)
{
    if (id == 0 || address == NULL || address[0] == '\0')
        abort(); /* the preamble's parser let a malformed line through */
    uv_close((uv_handle_t *)stream, (uv_close_cb)raft_free);
}

static void not_found(struct http_server *srv, struct http_req *req)
{
    http_respond(req, 404, "application/json", "{}", 2);
}

static void remove_work_dir(void)
{
    rm_rf(work_dir, NULL);
    free(work_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const no_spool[] = {NULL};
    fuzz_quiet();
    uv_loop_init(&loop);
    work_dir = fuzz_tmpdir("preamble");
    atexit(remove_work_dir);
    sh = xcalloc(1, sizeof(*sh));
    sh->loop = &loop;
    char *sock = xasprintf("%s/api.sock", work_dir);
    struct serr err = {0};
    sh->api = http_server_start(&loop, sock, work_dir, no_spool, not_found, sh, &err);
    free(sock);
    if (sh->api == NULL)
        abort();
    net = xcalloc(1, sizeof(*net));
    net->sh = sh;
    net->raft_accept = raft_accept;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        abort();
    if (size > 0 && write_all(fds[1], data, size) < 0)
        abort();
    if (shutdown(fds[1], SHUT_WR) < 0)
        abort();
    net_incoming(net, fds[0], "peer", "manager");
    char buf[65536];
    for (;;) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        if (n < 0) {
            struct pollfd p = {.fd = fds[1], .events = POLLIN};
            poll(&p, 1, 1);
        }
    }
    close(fds[1]);
    uv_run(&loop, UV_RUN_NOWAIT); /* close callbacks */
    return 0;
}
