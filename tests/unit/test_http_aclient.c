/* The daemon's one-shot HTTP client: the applied index a manager answers
 * with, the timeout that leaves a manager that does not answer, and the
 * connection kept for the next request (sessions). */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "http/http_aclient.h"
#include "unit.h"

struct answer {
    int calls;
    int status;
    char body[64];
    char errmsg[160];
};

static void on_answer(void *arg, int status, const char *body, size_t len, const char *errmsg)
{
    struct answer *a = arg;
    a->calls++;
    a->status = status;
    snprintf(a->body, sizeof(a->body), "%.*s", (int)len, body ? body : "");
    snprintf(a->errmsg, sizeof(a->errmsg), "%s", errmsg ? errmsg : "");
}

/* The server's side: `reply` written whole on `fd` before the request. */
static void send_reply(int fd, const char *reply)
{
    CHECK(write(fd, reply, strlen(reply)) == (ssize_t)strlen(reply));
}

TEST(aclient_reads_the_applied_index)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    static const char reply[] = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                                "X-Shoal-Applied: 1234\r\nContent-Length: 2\r\n\r\n{}";
    send_reply(sv[1], reply);
    struct answer a = {0};
    uint64_t applied = 99;
    struct http_aopts opts = {.applied = &applied};
    http_arequest_opts(&loop, sv[0], "POST", "/v1/services", NULL, "{}", 2, -1, &opts, on_answer, &a);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(a.calls == 1 && a.status == 201);
    CHECK_STR(a.body, "{}");
    CHECK(applied == 1234);
    close(sv[1]);
    CHECK(uv_loop_close(&loop) == 0);
}

TEST(aclient_without_the_header_reads_zero)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    static const char reply[] = "HTTP/1.1 200 OK\r\nX-Shoal-Appliedx: 7\r\nContent-Length: 0\r\n\r\n";
    send_reply(sv[1], reply);
    struct answer a = {0};
    uint64_t applied = 99;
    struct http_aopts opts = {.applied = &applied};
    http_arequest_opts(&loop, sv[0], "GET", "/", NULL, NULL, 0, -1, &opts, on_answer, &a);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(a.calls == 1 && a.status == 200 && applied == 0);
    close(sv[1]);
    CHECK(uv_loop_close(&loop) == 0);
}

TEST(aclient_gives_up_on_a_silent_peer)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct answer a = {0};
    struct http_aopts opts = {.timeout_ms = 100};
    http_arequest_opts(&loop, sv[0], "POST", "/v1/cluster/session", NULL, "{}", 2, -1, &opts,
                       on_answer, &a);
    uv_run(&loop, UV_RUN_DEFAULT); /* the peer never answers: only the timeout ends it */
    CHECK(a.calls == 1 && a.status == -1);
    CHECK(strstr(a.errmsg, "no answer within 0.1 s") != NULL);
    close(sv[1]);
    CHECK(uv_loop_close(&loop) == 0);
}

/* Reads what the client sent on `fd` (one read: the request is small). */
static void read_request(int fd, char *buf, size_t size)
{
    ssize_t n = read(fd, buf, size - 1);
    buf[n > 0 ? n : 0] = '\0';
}

TEST(aclient_hands_back_a_kept_connection)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    send_reply(sv[1], reply);
    struct answer a = {0};
    int kept = 99;
    struct http_aopts opts = {.keep_fd = &kept};
    http_arequest_opts(&loop, sv[0], "POST", "/v1/cluster/session", NULL, "{}", 2, -1, &opts,
                       on_answer, &a);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(a.calls == 1 && a.status == 200);
    char req[512];
    read_request(sv[1], req, sizeof(req));
    CHECK(strstr(req, "Connection: close") == NULL);
    CHECK(kept >= 0);
    /* the same connection carries the next request */
    send_reply(sv[1], reply);
    a.calls = 0;
    opts.keep_fd = NULL;
    http_arequest_opts(&loop, kept, "POST", "/v1/cluster/session", NULL, "{}", 2, -1, &opts,
                       on_answer, &a);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(a.calls == 1 && a.status == 200);
    read_request(sv[1], req, sizeof(req));
    CHECK(strstr(req, "POST /v1/cluster/session") != NULL && strstr(req, "Connection: close"));
    close(sv[1]);
    CHECK(uv_loop_close(&loop) == 0);
}

TEST(aclient_keeps_no_connection_the_server_closes)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    static const char reply[] = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}";
    send_reply(sv[1], reply);
    struct answer a = {0};
    int kept = 99;
    struct http_aopts opts = {.keep_fd = &kept};
    http_arequest_opts(&loop, sv[0], "POST", "/v1/cluster/session", NULL, "{}", 2, -1, &opts,
                       on_answer, &a);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(a.calls == 1 && a.status == 200 && kept == -1);
    close(sv[1]);
    CHECK(uv_loop_close(&loop) == 0);
}
