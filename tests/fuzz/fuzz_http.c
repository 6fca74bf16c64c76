/* The API's HTTP server (http/http_server.c) as a connection drives it: the
 * input is every byte a client sends on one connection (pipelined requests,
 * bodies, spooled uploads), then the client half-closes. The router is the
 * API's route matching and access check (api/routes.c), query and JSON body
 * parsing, and an answer (a streamed one for some paths); the bytes the server
 * writes back are read until it closes the connection. */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"

/* match() and remote_allowed() are static: the routes are compiled in here. */
#include "api/routes.c"

static uv_loop_t loop;
static struct http_server *server;
static char *work_dir;

static void fuzz_router(struct http_server *srv, struct http_req *req)
{
    char buf[HTTP_MAX_URL], value[256];
    char *args[4] = {0};
    bool known = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]) && !known; i++) {
        known = match(routes[i].pattern, req->path, buf, sizeof(buf), args) &&
                strcmp(routes[i].method, req->method) == 0;
        if (known)
            remote_allowed(&routes[i], req);
    }
    if (!known) { /* like "service %s not found": the path in an error */
        struct serr err;
        serr_set(&err, SERR_NOT_FOUND, "%s not found", req->path);
        http_respond_error(req, &err);
        return;
    }
    http_query_get(req, "tail", value, sizeof(value));
    query_flag(req, "force");
    if (req->body_file) {
        http_respond(req, 200, "text/plain", "spooled", 7);
        return;
    }
    json_t *body = body_json(req, false);
    if (body == NULL)
        return; /* answered 400 */
    json_decref(body);
    if (strstr(req->path, "/logs")) {
        http_stream_start(req, 200, "text/plain");
        http_stream_write(req, req->path, strlen(req->path));
        http_stream_end(req);
        return;
    }
    respond_json(req, 200, json_pack("{s:s}", "path", req->path));
}

static void remove_work_dir(void)
{
    rm_rf(work_dir, NULL);
    free(work_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const spooled[] = {"/v1/images/load", "/v1/images/import", NULL};
    fuzz_quiet();
    uv_loop_init(&loop);
    work_dir = fuzz_tmpdir("http");
    atexit(remove_work_dir);
    char *sock = xasprintf("%s/api.sock", work_dir);
    struct serr err = {0};
    server = http_server_start(&loop, sock, work_dir, spooled, fuzz_router, NULL, &err);
    free(sock);
    if (server == NULL) {
        fprintf(stderr, "fuzz: http server: %s\n", err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        abort();
    if (shutdown(fds[1], SHUT_WR) < 0)
        abort();
    const char *role = size > 0 && data[0] == 'G' ? "manager" : "";
    if (http_server_adopt(server, fds[0], (const char *)data, size, "peer", role) < 0)
        abort();
    /* Until the server closes its end (it must: the client sent EOF). */
    char buf[65536];
    for (;;) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
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
