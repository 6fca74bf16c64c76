/* HTTP server and client: a server on a libuv loop in this thread with a tiny
 * router, driven by the blocking client from a second thread. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>

#include "base/util.h"
#include "http/http.h"
#include "unit.h"

static char sock_path[256];
static char spool_dir[256];
static atomic_int router_calls;
static atomic_int aborted;
static char last_spool_path[512];
static uv_async_t stop_async;
static struct http_server *server;
static void (*client_body)(void);

/* ---- router ---- */

static void respond_json(struct http_req *req, int status, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    http_respond(req, status, "application/json", text, strlen(text));
    free(text);
    json_decref(obj);
}

static void route_upload(struct http_req *req)
{
    char *data = NULL;
    size_t len = 0;
    snprintf(last_spool_path, sizeof(last_spool_path), "%s", req->body_file);
    if (read_file(req->body_file, &data, &len, NULL) < 0) {
        http_respond(req, 500, "text/plain", "no file", 7);
        return;
    }
    /* Answer with the size and a checksum of the bytes that arrived. */
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + (unsigned char)data[i];
    free(data);
    respond_json(req, 200, json_pack("{s:I,s:I}", "size", (json_int_t)len, "sum", (json_int_t)sum));
}

static void follow_aborted(struct http_req *req)
{
    (void)req;
    atomic_store(&aborted, 1);
}

static void router(struct http_server *srv, struct http_req *req)
{
    (void)srv;
    atomic_fetch_add(&router_calls, 1);
    char value[64] = "";
    if (strcmp(req->path, "/upload") == 0) {
        route_upload(req);
    } else if (strcmp(req->path, "/stream") == 0) {
        http_stream_start(req, 200, "application/x-ndjson");
        http_stream_write(req, "{\"out\":\"a\"}\n", 12);
        http_stream_write(req, "", 0);
        http_stream_write(req, "{\"exit\":3}\n", 11);
        http_stream_end(req);
    } else if (strcmp(req->path, "/follow") == 0) {
        req->on_abort = follow_aborted;
        http_stream_start(req, 200, "text/plain");
        http_stream_write(req, "line 1\n", 7); /* and never ends */
    } else if (strcmp(req->method, "POST") == 0) {
        http_respond(req, 200, "application/json", req->body ? req->body : "", req->body_len);
    } else if (strcmp(req->path, "/forbidden") == 0) {
        struct serr err;
        serr_set(&err, SERR_FORBIDDEN, "not with this credential");
        http_respond_error(req, &err);
    } else if (strncmp(req->path, "/missing", 8) == 0) {
        struct serr err;
        serr_set(&err, SERR_NOT_FOUND, "no such thing");
        http_respond_error(req, &err);
    } else if (strncmp(req->path, "/named/", 7) == 0) { /* like "service %s not found" */
        struct serr err;
        serr_set(&err, SERR_NOT_FOUND, "%s not found", req->path + 7);
        http_respond_error(req, &err);
    } else {
        bool has = http_query_get(req, "x", value, sizeof(value));
        respond_json(req, 200, json_pack("{s:s,s:s,s:s,s:b}", "method", req->method, "path",
                                         req->path, "x", value, "has", has));
    }
}

/* ---- harness ---- */

static void on_stop(uv_async_t *a)
{
    http_server_stop(server);
    uv_close((uv_handle_t *)a, NULL);
}

static void *client_thread(void *arg)
{
    (void)arg;
    client_body();
    uv_async_send(&stop_async);
    return NULL;
}

static int tcp_port;

/* Runs `body` in a thread against a fresh TCP server (127.0.0.1) with
 * `limits`; tcp_port names its port. */
static void with_tcp_server(void (*body)(void), const struct http_limits *limits)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* A free port: bound, named, released, then taken by the server. */
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    CHECK(bind(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(getsockname(probe, (struct sockaddr *)&sa, &len) == 0);
    close(probe);
    tcp_port = ntohs(sa.sin_port);
    struct serr err;
    server = http_server_start_tcp(&loop, (struct sockaddr *)&sa, router, NULL, &err);
    CHECK(server != NULL);
    http_server_set_limits(server, limits);
    uv_async_init(&loop, &stop_async, on_stop);
    client_body = body;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, client_thread, NULL) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    CHECK(uv_loop_close(&loop) == 0);
}

/* A connection to the TCP server from `source` (127.0.0.x). */
static int tcp_connect(const char *source)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &src.sin_addr);
    CHECK(bind(fd, (struct sockaddr *)&src, sizeof(src)) == 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tcp_port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0);
    return fd;
}

/* Waits (up to 30 s) for the server to close fd: true on EOF or reset. */
static bool closed_by_server(int fd)
{
    char buf[4096];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    for (int i = 0; i < 300; i++) {
        if (poll(&p, 1, 100) == 1) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0)
                return true;
        }
    }
    return false;
}

/* True when the server has not closed fd (nothing to read, no EOF). */
static bool still_open(int fd)
{
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* Sends a whole GET and reads the answer's head. */
static void exchange(int fd, const char *path, char *out, size_t outlen)
{
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    CHECK(send(fd, req, (size_t)n, MSG_NOSIGNAL) == n);
    ssize_t got = recv(fd, out, outlen - 1, 0);
    CHECK(got > 0);
    out[got] = '\0';
}

/* Runs `body` in a thread against a fresh server; checks a clean shutdown. */
static void with_server(void (*body)(void))
{
    char dir[] = "/tmp/shoal-http-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    snprintf(sock_path, sizeof(sock_path), "%s/api.sock", dir);
    snprintf(spool_dir, sizeof(spool_dir), "%s/spool", dir);
    CHECK(mkdir(spool_dir, 0700) == 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    static const char *const prefixes[] = {"/upload", NULL};
    struct serr err;
    server = http_server_start(&loop, sock_path, spool_dir, prefixes, router, NULL, &err);
    CHECK(server != NULL);
    struct stat st;
    CHECK(stat(sock_path, &st) == 0 && (st.st_mode & 0777) == 0600);
    uv_async_init(&loop, &stop_async, on_stop);
    client_body = body;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, client_thread, NULL) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    CHECK(uv_loop_close(&loop) == 0);
    struct serr rm_err;
    CHECK(rm_rf(dir, &rm_err) == 0);
}

static struct http_client *client(void)
{
    struct serr err;
    char host[300];
    snprintf(host, sizeof(host), "unix://%s", sock_path);
    struct http_client *c = http_client_open(host, &err);
    CHECK(c != NULL);
    return c;
}

static json_t *parse(const struct http_response *resp)
{
    json_t *j = json_loads(resp->body, 0, NULL);
    CHECK(j != NULL);
    return j;
}

/* Raw exchange for requests the client would never send. */
static char *raw_exchange(const char *request, size_t len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
    CHECK(connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    send(fd, request, len, MSG_NOSIGNAL);
    static char buf[4096];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(buf) - 1 && (n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(fd);
    return buf;
}

/* ---- tests ---- */

static void get_and_query_body(void)
{
    struct http_client *c = client();
    struct http_response resp;
    struct serr err;
    CHECK(http_request(c, "GET", "/v1/a%20b?y=1&x=hello%20w%2Bo+rld", NULL, NULL, 0, &resp,
                       &err) == 0);
    CHECK(resp.status == 200);
    json_t *j = parse(&resp);
    CHECK_STR(json_string_value(json_object_get(j, "path")), "/v1/a b");
    CHECK_STR(json_string_value(json_object_get(j, "x")), "hello w+o rld");
    CHECK_STR(json_string_value(json_object_get(j, "method")), "GET");
    json_decref(j);
    free(resp.body);
    /* Same connection (keep-alive), absent parameter. */
    CHECK(http_request(c, "GET", "/v1/b?xx=1", NULL, NULL, 0, &resp, &err) == 0);
    j = parse(&resp);
    CHECK(json_is_false(json_object_get(j, "has")));
    json_decref(j);
    free(resp.body);
    CHECK(http_request(c, "GET", "/missing", NULL, NULL, 0, &resp, &err) == 0);
    CHECK(resp.status == 404);
    CHECK(strstr(resp.body, "\"message\": \"no such thing\"") != NULL ||
          strstr(resp.body, "\"message\":\"no such thing\"") != NULL);
    free(resp.body);
    http_client_close(c);
}

TEST(http_get_query_decoding)
{
    with_server(get_and_query_body);
}

/* A path segment that decodes to bytes that are not UTF-8, in an error
 * message: the answer is still JSON (it crashed the daemon: found by fuzz_http). */
static void error_with_path_bytes(void)
{
    struct serr err = {0};
    struct http_client *c = http_client_open(sock_path, &err);
    CHECK(c != NULL);
    struct http_response resp;
    CHECK(http_request(c, "GET", "/named/%F3x%C3%A9", NULL, NULL, 0, &resp, &err) == 0);
    CHECK(resp.status == 404);
    json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "message")), "?x?? not found");
    json_decref(j);
    free(resp.body);
    CHECK(http_request(c, "GET", "/named/%C3%A9", NULL, NULL, 0, &resp, &err) == 0);
    j = json_loadb(resp.body, resp.body_len, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(j, "message")), "\xc3\xa9 not found");
    json_decref(j);
    free(resp.body);
    http_client_close(c);
}

TEST(http_error_message_not_utf8)
{
    with_server(error_with_path_bytes);
}

static void post_json_body(void)
{
    struct http_client *c = client();
    struct http_response resp;
    struct serr err;
    const char *body = "{\"name\":\"web\"}";
    CHECK(http_request(c, "POST", "/v1/services", "application/json", body, strlen(body), &resp,
                       &err) == 0);
    CHECK(resp.status == 200);
    CHECK_STR(resp.body, body);
    free(resp.body);
    /* An empty POST still frames correctly. */
    CHECK(http_request(c, "POST", "/v1/x", NULL, NULL, 0, &resp, &err) == 0);
    CHECK(resp.status == 200 && resp.body_len == 0);
    free(resp.body);
    http_client_close(c);
}

TEST(http_post_json)
{
    with_server(post_json_body);
}

static void oversized_body(void)
{
    struct http_client *c = client();
    struct http_response resp;
    struct serr err;
    size_t len = HTTP_MAX_BODY + 1;
    char *big = xmalloc(len);
    memset(big, 'a', len);
    int before = atomic_load(&router_calls);
    CHECK(http_request(c, "POST", "/v1/services", "application/json", big, len, &resp, &err) == 0);
    CHECK(resp.status == 413);
    CHECK(strstr(resp.body, "message") != NULL);
    CHECK(atomic_load(&router_calls) == before);
    free(resp.body);
    /* Exactly the limit is fine, and the client reconnects after the close. */
    CHECK(http_request(c, "POST", "/v1/services", "application/json", big, len - 1, &resp,
                       &err) == 0);
    CHECK(resp.status == 200 && resp.body_len == len - 1);
    free(resp.body);
    free(big);
    http_client_close(c);
}

TEST(http_body_over_limit_413)
{
    with_server(oversized_body);
}

static void spooled_upload(void)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/../payload.tar", spool_dir);
    size_t len = 3 * 1024 * 1024 + 17; /* larger than the JSON cap */
    char *data = xmalloc(len);
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++) {
        data[i] = (char)(i * 7 + i / 1000);
        sum = sum * 31 + (unsigned char)data[i];
    }
    CHECK(write_file_atomic(path, data, len, false, NULL) == 0);
    free(data);
    struct http_client *c = client();
    struct http_response resp;
    struct serr err;
    CHECK(http_request_file(c, "POST", "/upload?name=x", path, &resp, &err) == 0);
    CHECK(resp.status == 200);
    json_t *j = parse(&resp);
    CHECK(json_integer_value(json_object_get(j, "size")) == (json_int_t)len);
    CHECK(json_integer_value(json_object_get(j, "sum")) == (json_int_t)sum);
    json_decref(j);
    free(resp.body);
    /* The spool file is gone once the response is out. */
    CHECK(strncmp(last_spool_path, spool_dir, strlen(spool_dir)) == 0);
    CHECK(access(last_spool_path, F_OK) != 0);
    http_client_close(c);
}

TEST(http_spooled_upload)
{
    with_server(spooled_upload);
}

static void malformed_requests(void)
{
    const char garbage[] = "GARBAGE\r\n\r\n";
    CHECK(strncmp(raw_exchange(garbage, sizeof(garbage) - 1), "HTTP/1.1 400", 12) == 0);
    const char bad_escape[] = "GET /v1/%zz HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(strncmp(raw_exchange(bad_escape, sizeof(bad_escape) - 1), "HTTP/1.1 400", 12) == 0);
    const char nul_escape[] = "GET /v1/a%00b HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(strncmp(raw_exchange(nul_escape, sizeof(nul_escape) - 1), "HTTP/1.1 400", 12) == 0);
    /* A URL over the cap. */
    size_t url_len = HTTP_MAX_URL + 100;
    char *req = xmalloc(url_len + 64);
    int n = snprintf(req, 16, "GET /");
    memset(req + n, 'a', url_len);
    strcpy(req + n + url_len, " HTTP/1.1\r\n\r\n");
    CHECK(strncmp(raw_exchange(req, strlen(req)), "HTTP/1.1 414", 12) == 0);
    free(req);
    /* Too many headers. */
    char *many = xmalloc(200 * 16 + 64);
    size_t off = (size_t)sprintf(many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 200; i++)
        off += (size_t)sprintf(many + off, "X-%d: 1\r\n", i);
    strcpy(many + off, "\r\n");
    CHECK(strncmp(raw_exchange(many, strlen(many)), "HTTP/1.1 431", 12) == 0);
    free(many);
    /* Chunked JSON body over the cap (no Content-Length to reject early). */
    char head[] = "POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    size_t chunk = 600 * 1024;
    char *chunked = xmalloc(sizeof(head) + 2 * (chunk + 32) + 16);
    off = (size_t)sprintf(chunked, "%s", head);
    for (int i = 0; i < 2; i++) {
        off += (size_t)sprintf(chunked + off, "%zx\r\n", chunk);
        memset(chunked + off, 'b', chunk);
        off += chunk;
        off += (size_t)sprintf(chunked + off, "\r\n");
    }
    off += (size_t)sprintf(chunked + off, "0\r\n\r\n");
    CHECK(strncmp(raw_exchange(chunked, off), "HTTP/1.1 413", 12) == 0);
    free(chunked);
    /* Pipelined requests on one connection are answered in order. */
    const char two[] = "GET /a?x=1 HTTP/1.1\r\n\r\nGET /b?x=2 HTTP/1.1\r\nConnection: close\r\n\r\n";
    const char *out = raw_exchange(two, sizeof(two) - 1);
    const char *first = strstr(out, "\"x\":\"1\"");
    const char *second = strstr(out, "\"x\":\"2\"");
    CHECK(first != NULL && second != NULL && first < second);
}

TEST(http_malformed_requests)
{
    with_server(malformed_requests);
}

struct chunks {
    char text[256];
    size_t len;
    int calls;
};

static int gather(const char *data, size_t len, void *arg)
{
    struct chunks *ch = arg;
    CHECK(ch->len + len < sizeof(ch->text));
    memcpy(ch->text + ch->len, data, len);
    ch->len += len;
    ch->text[ch->len] = '\0';
    ch->calls++;
    return 0;
}

static int stop_after_first(const char *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    (void)arg;
    return 1;
}

static void streaming(void)
{
    struct http_client *c = client();
    struct serr err;
    struct chunks ch = {0};
    int status = 0;
    CHECK(http_request_stream(c, "POST", "/stream", "application/json", "{}", 2, &status, gather,
                              &ch, &err) == 0);
    CHECK(status == 200);
    CHECK_STR(ch.text, "{\"out\":\"a\"}\n{\"exit\":3}\n");
    /* The connection is still usable after a chunked response. */
    struct http_response resp;
    CHECK(http_request(c, "GET", "/x?x=after", NULL, NULL, 0, &resp, &err) == 0);
    CHECK(strstr(resp.body, "after") != NULL);
    free(resp.body);
    /* A follower that stops reading: the server notices and aborts. */
    CHECK(http_request_stream(c, "GET", "/follow", NULL, NULL, 0, &status, stop_after_first, NULL,
                              &err) == 0);
    for (int i = 0; i < 500 && !atomic_load(&aborted); i++)
        usleep(10000);
    CHECK(atomic_load(&aborted) == 1);
    http_client_close(c);
}

TEST(http_chunked_stream_and_abort)
{
    with_server(streaming);
}

static void stop_with_open_stream(void)
{
    /* Leaves a follower connected: http_server_stop must abort and free it. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
    CHECK(connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    const char req[] = "GET /follow HTTP/1.1\r\n\r\n";
    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
    char buf[512];
    CHECK(recv(fd, buf, sizeof(buf), 0) > 0);
    /* Also a half-sent request. */
    int fd2 = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(fd2, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    send(fd2, "POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nab", 42, MSG_NOSIGNAL);
    usleep(50000);
    /* The socket fds stay open: the server side closes. */
}

TEST(http_stop_closes_everything)
{
    with_server(stop_with_open_stream);
    CHECK(atomic_load(&aborted) == 1);
}

/* ---- limits (TCP listener) ---- */

static void caps(void)
{
    char head[1024];
    /* Two from one address are served; the third is closed at once. */
    int a1 = tcp_connect("127.0.0.1"), a2 = tcp_connect("127.0.0.1");
    int a3 = tcp_connect("127.0.0.1");
    CHECK(closed_by_server(a3));
    exchange(a1, "/x", head, sizeof(head));
    CHECK(strncmp(head, "HTTP/1.1 200", 12) == 0);
    exchange(a2, "/forbidden", head, sizeof(head));
    CHECK(strncmp(head, "HTTP/1.1 403 Forbidden", 22) == 0);
    /* Another address gets the listener's last place, then the cap. */
    int b1 = tcp_connect("127.0.0.2"), b2 = tcp_connect("127.0.0.2");
    CHECK(closed_by_server(b2));
    exchange(b1, "/x", head, sizeof(head));
    CHECK(strncmp(head, "HTTP/1.1 200", 12) == 0);
    CHECK(still_open(a1) && still_open(a2));
    /* A place freed is a place taken again. */
    close(a1);
    int a4 = -1;
    for (int i = 0; i < 1500; i++) { /* until the server noticed a1's end (30 s at most) */
        a4 = tcp_connect("127.0.0.1");
        usleep(20000);
        if (still_open(a4))
            break;
        close(a4);
        a4 = -1;
    }
    CHECK(a4 >= 0);
    exchange(a4, "/x", head, sizeof(head));
    CHECK(strncmp(head, "HTTP/1.1 200", 12) == 0);
    int fds[] = {a2, a3, a4, b1, b2};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        close(fds[i]);
}

TEST(http_tcp_caps_per_listener_and_address)
{
    struct http_limits limits = {.max_conns = 3, .max_conns_per_addr = 2};
    with_tcp_server(caps, &limits);
}

static void timeouts(void)
{
    char head[1024];
    /* A half-sent request, a silent connection, an idle keep-alive one:
     * each is closed; a stream the router holds is not. */
    int half = tcp_connect("127.0.0.1");
    CHECK(send(half, "GET /x HTTP/1.1\r\nHo", 20, MSG_NOSIGNAL) == 20);
    int silent = tcp_connect("127.0.0.1");
    int idle = tcp_connect("127.0.0.1");
    exchange(idle, "/x", head, sizeof(head));
    CHECK(strncmp(head, "HTTP/1.1 200", 12) == 0);
    int follow = tcp_connect("127.0.0.1");
    exchange(follow, "/follow", head, sizeof(head));
    CHECK(strncmp(head, "HTTP/1.1 200", 12) == 0);
    CHECK(closed_by_server(half));
    CHECK(closed_by_server(silent));
    CHECK(closed_by_server(idle));
    CHECK(still_open(follow));
    close(half);
    close(silent);
    close(idle);
    close(follow);
}

TEST(http_tcp_request_and_idle_timeouts)
{
    struct http_limits limits = {.request_timeout_ms = 200, .idle_timeout_ms = 300};
    with_tcp_server(timeouts, &limits);
}

TEST(http_client_refused)
{
    struct serr err;
    CHECK(http_client_open("unix:///nonexistent/shoal.sock", &err) == NULL);
    CHECK(err.kind == SERR_UNAVAILABLE);
    CHECK(strstr(err.msg, "Is the daemon running?") != NULL);
    CHECK(http_client_open("ftp://1.2.3.4:2375", &err) == NULL);
    CHECK(err.kind == SERR_INVALID);
}
