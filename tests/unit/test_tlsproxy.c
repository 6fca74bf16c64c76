/* TLS proxy: mutual TLS between a listener and clients on 127.0.0.1, echo over
 * the plain fds, refusals (foreign CA, wrong pin, no certificate), timeouts. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "base/log.h"
#include "base/tlsproxy.h"
#include "base/util.h"
#include "manager/ca.h"
#include "tls/identity.h"
#include "tls/tls_ctx.h"
#include "unit.h"

#define BIG (2 * 1024 * 1024)

/* ---- certificates ---- */

struct pki {
    char *root;       /* temporary directory */
    char *ca_pem;     /* the cluster CA */
    char *digest;
    char *server_key, *server_cert; /* mgr-1, manager */
    char *client_key, *client_cert; /* node-7, worker */
    char *other_ca_pem;
    char *other_key, *other_cert; /* intruder, from the other CA */
};

static void issue(const char *dir, const char *id, const char *role, char **key, char **cert)
{
    struct serr err;
    char *csr = NULL;
    CHECK(node_key_csr(id, key, &csr, &err) == 0);
    CHECK(ca_sign(dir, csr, id, role, cert, &err) == 0);
    free(csr);
}

static void pki_make(struct pki *p)
{
    struct serr err;
    memset(p, 0, sizeof(*p));
    p->root = xstrdup("/tmp/shoal-test-tls-XXXXXX");
    CHECK(mkdtemp(p->root) != NULL);
    char *ca = xasprintf("%s/ca", p->root), *other = xasprintf("%s/other", p->root);
    CHECK(ca_create(ca, &err) == 0);
    CHECK(ca_create(other, &err) == 0);
    CHECK(ca_cert_pem(ca, &p->ca_pem, &err) == 0);
    CHECK(ca_cert_pem(other, &p->other_ca_pem, &err) == 0);
    p->digest = xmalloc(65);
    CHECK(ca_digest(p->ca_pem, p->digest, &err) == 0);
    issue(ca, "mgr-1", "manager", &p->server_key, &p->server_cert);
    issue(ca, "node-7", "worker", &p->client_key, &p->client_cert);
    issue(other, "intruder", "manager", &p->other_key, &p->other_cert);
    free(ca);
    free(other);
}

static void pki_free(struct pki *p)
{
    rm_rf(p->root, NULL);
    char **all[] = {&p->root, &p->ca_pem, &p->digest, &p->server_key, &p->server_cert,
                    &p->client_key, &p->client_cert, &p->other_ca_pem, &p->other_key,
                    &p->other_cert};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(*all[i]);
}

/* ---- the test's state ---- */

static uv_loop_t loop;
static struct tlsproxy_listener *listener;
static int accepted;
static char server_saw_id[64], server_saw_role[16], server_saw_addr[64];
static int connect_status = 1;
static char connect_msg[512], client_saw_id[64], client_saw_role[16];
static unsigned char *big_out;
static size_t echoed_in;
static bool echo_matches = true;
static bool listener_closed;

static void close_listener(void)
{
    if (listener) {
        tlsproxy_listener_close(listener, NULL, NULL);
        listener = NULL;
    }
}

static void alloc_buf(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    *buf = uv_buf_init(xmalloc(suggested), (unsigned)suggested);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* ---- echo server on the plain fd; it starts reading late so that data piles
 * up in the proxy and back-pressure has to kick in ---- */

struct echo {
    uv_pipe_t pipe;
    uv_timer_t delay;
    uv_shutdown_t shutdown;
    int open_handles;
};

static void echo_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

/* Both handles live in one allocation, freed when the last one is closed. */
static void echo_free(uv_handle_t *h)
{
    struct echo *e = h->data;
    if (--e->open_handles == 0)
        free(e);
}

static void echo_done(uv_shutdown_t *req, int status)
{
    (void)status;
    struct echo *e = req->data;
    uv_close((uv_handle_t *)&e->pipe, echo_free);
    uv_close((uv_handle_t *)&e->delay, echo_free);
}

static void echo_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct echo *e = s->data;
    if (nread > 0) {
        uv_write_t *req = xmalloc(sizeof(*req) + (size_t)nread);
        memcpy(req + 1, buf->base, (size_t)nread);
        uv_buf_t out = uv_buf_init((char *)(req + 1), (unsigned)nread);
        CHECK(uv_write(req, s, &out, 1, echo_written) == 0);
    } else if (nread < 0) {
        uv_read_stop(s);
        e->shutdown.data = e;
        CHECK(uv_shutdown(&e->shutdown, s, echo_done) == 0);
    }
    free(buf->base);
}

static void echo_start(uv_timer_t *t)
{
    struct echo *e = t->data;
    uv_read_start((uv_stream_t *)&e->pipe, alloc_buf, echo_read);
}


static void on_accept(void *data, int plain_fd, const char *peer_id, const char *peer_role,
                      const char *peer_addr)
{
    (void)data;
    accepted++;
    snprintf(server_saw_id, sizeof(server_saw_id), "%s", peer_id);
    snprintf(server_saw_role, sizeof(server_saw_role), "%s", peer_role);
    snprintf(server_saw_addr, sizeof(server_saw_addr), "%s", peer_addr);
    struct echo *e = xcalloc(1, sizeof(*e));
    CHECK(uv_pipe_init(&loop, &e->pipe, 0) == 0);
    CHECK(uv_pipe_open(&e->pipe, plain_fd) == 0);
    uv_timer_init(&loop, &e->delay);
    e->pipe.data = e->delay.data = e;
    e->open_handles = 2;
    uv_timer_start(&e->delay, echo_start, 300, 0);
}

/* ---- client side: sends BIG bytes, reads them back, closes ---- */

static void client_written(uv_write_t *req, int status)
{
    CHECK(status == 0);
    free(req);
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    if (nread > 0) {
        if (echoed_in + (size_t)nread > BIG ||
            memcmp(big_out + echoed_in, buf->base, (size_t)nread) != 0)
            echo_matches = false;
        echoed_in += (size_t)nread;
        if (echoed_in >= BIG) {
            uv_close((uv_handle_t *)s, free_handle);
            close_listener();
        }
    } else if (nread < 0) {
        fprintf(stderr, "client read: %s after %zu bytes\n", uv_strerror((int)nread), echoed_in);
        echo_matches = false;
        uv_close((uv_handle_t *)s, free_handle);
        close_listener();
    }
    free(buf->base);
}

static void start_echo_client(int plain_fd)
{
    uv_pipe_t *pipe = xmalloc(sizeof(*pipe));
    CHECK(uv_pipe_init(&loop, pipe, 0) == 0);
    CHECK(uv_pipe_open(pipe, plain_fd) == 0);
    big_out = xmalloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big_out[i] = (unsigned char)(i * 7 + i / 4096);
    uv_write_t *req = xmalloc(sizeof(*req));
    uv_buf_t buf = uv_buf_init((char *)big_out, BIG);
    CHECK(uv_write(req, (uv_stream_t *)pipe, &buf, 1, client_written) == 0);
    uv_read_start((uv_stream_t *)pipe, alloc_buf, client_read);
}

static void on_connect(void *data, int status, int plain_fd, const char *peer_id,
                       const char *peer_role, const char *errmsg)
{
    bool echo = data != NULL;
    if (status < 0)
        log_debug("test: connect failed: %s", errmsg);
    connect_status = status;
    snprintf(connect_msg, sizeof(connect_msg), "%s", errmsg);
    snprintf(client_saw_id, sizeof(client_saw_id), "%s", peer_id);
    snprintf(client_saw_role, sizeof(client_saw_role), "%s", peer_role);
    if (status == 0 && echo) {
        start_echo_client(plain_fd);
        return;
    }
    if (plain_fd >= 0)
        close(plain_fd);
    close_listener();
}

/* ---- running one scenario ---- */

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("TLS_DEBUG"))
        log_set_level(LOG_DEBUG);
    CHECK(uv_loop_init(&loop) == 0);
    accepted = 0;
    connect_status = 1;
    connect_msg[0] = server_saw_id[0] = server_saw_role[0] = '\0';
    echoed_in = 0;
    echo_matches = true;
    listener_closed = false;
}

static void finish(void)
{
    CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    CHECK(uv_loop_close(&loop) == 0);
    free(big_out);
    big_out = NULL;
}

static char *listen_on_free_port(SSL_CTX *server_ctx)
{
    struct serr err;
    CHECK(tlsproxy_listen(&loop, "127.0.0.1:0", server_ctx, on_accept, NULL, &listener, &err) ==
          0);
    CHECK(tlsproxy_listener_port(listener) > 0);
    return xasprintf("127.0.0.1:%d", tlsproxy_listener_port(listener));
}

/* Connects with client_ctx to a server presenting mgr-1; `echo` runs the 2 MiB echo. */
static void run_scenario(SSL_CTX *server_ctx, SSL_CTX *client_ctx, bool echo)
{
    struct serr err;
    setup();
    char *addr = listen_on_free_port(server_ctx);
    CHECK(tlsproxy_connect(&loop, addr, client_ctx, on_connect, echo ? (void *)1 : NULL, &err) ==
          0);
    finish();
    free(addr);
}

static SSL_CTX *server_ctx_for(struct pki *p, bool require_peer_cert)
{
    struct serr err;
    SSL_CTX *ctx = tls_ctx_new(p->ca_pem, p->server_cert, p->server_key, true, require_peer_cert,
                               &err);
    CHECK(ctx != NULL);
    return ctx;
}

/* A client context presenting the client certificate, verifying the server. */
static SSL_CTX *client_ctx_for(struct pki *p)
{
    struct serr err;
    SSL_CTX *ctx = tls_ctx_new(p->ca_pem, p->client_cert, p->client_key, false, true, &err);
    CHECK(ctx != NULL);
    return ctx;
}

TEST(tlsproxy_mutual_tls_echo)
{
    struct pki p;
    pki_make(&p);
    SSL_CTX *server = server_ctx_for(&p, true);
    SSL_CTX *client = client_ctx_for(&p);

    run_scenario(server, client, true);
    if (connect_status != 0)
        fprintf(stderr, "connect: %s\n", connect_msg);
    CHECK(connect_status == 0);
    CHECK_STR(client_saw_id, "mgr-1");
    CHECK_STR(client_saw_role, "manager");
    CHECK(accepted == 1);
    CHECK_STR(server_saw_id, "node-7");
    CHECK_STR(server_saw_role, "worker");
    CHECK(strncmp(server_saw_addr, "127.0.0.1:", 10) == 0);
    CHECK(echoed_in == BIG);
    CHECK(echo_matches);

    SSL_CTX_free(client);
    SSL_CTX_free(server);
    pki_free(&p);
}

/* ---- a listener asking for its context at each accept ---- */

static SSL_CTX *lazy_ctx; /* what lazy_ctx_of gives */
static int lazy_calls;

static SSL_CTX *lazy_ctx_of(void *data)
{
    (void)data;
    lazy_calls++;
    return lazy_ctx;
}

/* As run_scenario (no echo), the listener made by tlsproxy_listen_lazy. */
static void run_lazy_scenario(SSL_CTX *given, SSL_CTX *client_ctx)
{
    struct serr err;
    setup();
    lazy_ctx = given;
    lazy_calls = 0;
    CHECK(tlsproxy_listen_lazy(&loop, "127.0.0.1:0", lazy_ctx_of, on_accept, NULL, &listener,
                               &err) == 0);
    CHECK(lazy_calls == 0); /* not before a peer connects */
    char *addr = xasprintf("127.0.0.1:%d", tlsproxy_listener_port(listener));
    CHECK(tlsproxy_connect(&loop, addr, client_ctx, on_connect, NULL, &err) == 0);
    finish();
    free(addr);
}

TEST(tlsproxy_lazy_listener_asks_its_context_at_accept)
{
    struct pki p;
    pki_make(&p);
    SSL_CTX *server = server_ctx_for(&p, true);
    SSL_CTX *client = client_ctx_for(&p);

    run_lazy_scenario(server, client);
    CHECK(connect_status == 0);
    CHECK(lazy_calls == 1);
    CHECK(accepted == 1);
    CHECK_STR(client_saw_id, "mgr-1");
    CHECK_STR(server_saw_id, "node-7");

    /* No context to give: the connection is closed, no handshake runs. */
    run_lazy_scenario(NULL, client);
    CHECK(connect_status < 0);
    CHECK(lazy_calls == 1);
    CHECK(accepted == 0);

    SSL_CTX_free(client);
    SSL_CTX_free(server);
    pki_free(&p);
}

TEST(tlsproxy_refuses_foreign_or_missing_cert)
{
    struct pki p;
    struct serr err;
    pki_make(&p);
    SSL_CTX *server = server_ctx_for(&p, true);

    /* The client trusts our CA but presents a certificate from another one. */
    SSL_CTX *intruder = tls_ctx_new(p.ca_pem, p.other_cert, p.other_key, false, true, &err);
    CHECK(intruder != NULL);
    run_scenario(server, intruder, false);
    CHECK(connect_status < 0);
    CHECK(strstr(connect_msg, "TLS handshake with 127.0.0.1:") != NULL);
    CHECK(accepted == 0);

    /* No client certificate at all. */
    SSL_CTX *anonymous = tls_ctx_new(p.ca_pem, NULL, NULL, false, true, &err);
    CHECK(anonymous != NULL);
    run_scenario(server, anonymous, false);
    CHECK(connect_status < 0);
    CHECK(accepted == 0);

    /* A client that trusts only the other CA refuses our server. */
    SSL_CTX *stranger = tls_ctx_new(p.other_ca_pem, p.other_cert, p.other_key, false, true, &err);
    CHECK(stranger != NULL);
    run_scenario(server, stranger, false);
    CHECK(connect_status < 0);
    CHECK(strstr(connect_msg, "certificate") != NULL);
    CHECK(accepted == 0);

    SSL_CTX_free(stranger);
    SSL_CTX_free(anonymous);
    SSL_CTX_free(intruder);
    SSL_CTX_free(server);
    pki_free(&p);
}

TEST(tlsproxy_pinning_join)
{
    struct pki p;
    struct serr err;
    pki_make(&p);
    SSL_CTX *server = server_ctx_for(&p, false);

    SSL_CTX *pinned = tls_ctx_new_pinning(p.digest, &err);
    CHECK(pinned != NULL);
    run_scenario(server, pinned, true);
    if (connect_status != 0)
        fprintf(stderr, "connect: %s\n", connect_msg);
    CHECK(connect_status == 0);
    CHECK_STR(client_saw_id, "mgr-1");
    CHECK_STR(client_saw_role, "manager");
    CHECK(accepted == 1);
    CHECK_STR(server_saw_id, "");
    CHECK_STR(server_saw_role, "");
    CHECK(echoed_in == BIG && echo_matches);

    /* The token's digest names another CA. */
    char other_digest[65];
    CHECK(ca_digest(p.other_ca_pem, other_digest, &err) == 0);
    SSL_CTX *wrong = tls_ctx_new_pinning(other_digest, &err);
    CHECK(wrong != NULL);
    run_scenario(server, wrong, false);
    CHECK(connect_status < 0);
    CHECK(strstr(connect_msg, "the manager's CA does not match the token's digest") != NULL);
    CHECK(accepted == 0);

    /* A server that requires certificates turns the joining client away. */
    SSL_CTX *strict = server_ctx_for(&p, true);
    run_scenario(strict, pinned, false);
    CHECK(connect_status < 0);
    CHECK(accepted == 0);

    SSL_CTX_free(strict);
    SSL_CTX_free(wrong);
    SSL_CTX_free(pinned);
    SSL_CTX_free(server);
    pki_free(&p);
}

/* ---- connect failures without a TLS server ---- */

static void on_silent_connection(uv_stream_t *server, int status)
{
    CHECK(status == 0);
    uv_tcp_t *conn = xmalloc(sizeof(*conn));
    uv_tcp_init(&loop, conn);
    CHECK(uv_accept(server, (uv_stream_t *)conn) == 0);
    server->data = conn; /* says nothing; closed with the server */
}

static void on_connect_then_close(void *data, int status, int plain_fd, const char *peer_id,
                                  const char *peer_role, const char *errmsg)
{
    uv_tcp_t *silent = data;
    on_connect(NULL, status, plain_fd, peer_id, peer_role, errmsg);
    if (silent) {
        if (silent->data)
            uv_close(silent->data, free_handle);
        uv_close((uv_handle_t *)silent, NULL);
    }
}

TEST(tlsproxy_connect_failures)
{
    struct pki p;
    struct serr err;
    pki_make(&p);
    SSL_CTX *client = client_ctx_for(&p);

    /* A port nobody listens on: take a free one and close it again. */
    setup();
    char *addr = listen_on_free_port(client);
    close_listener();
    CHECK(tlsproxy_connect(&loop, addr, client, on_connect_then_close, NULL, &err) == 0);
    finish();
    CHECK(connect_status == UV_ECONNREFUSED);
    CHECK(strstr(connect_msg, "connection refused") != NULL);
    free(addr);

    /* A TCP server that never answers the ClientHello. */
    setup();
    uv_tcp_t silent;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&loop, &silent);
    silent.data = NULL;
    CHECK(uv_tcp_bind(&silent, (struct sockaddr *)&sa, 0) == 0);
    CHECK(uv_listen((uv_stream_t *)&silent, 8, on_silent_connection) == 0);
    int len = sizeof(sa);
    uv_tcp_getsockname(&silent, (struct sockaddr *)&sa, &len);
    addr = xasprintf("127.0.0.1:%d", ntohs(sa.sin_port));
    uint64_t start = uv_hrtime();
    CHECK(tlsproxy_connect(&loop, addr, client, on_connect_then_close, &silent, &err) == 0);
    finish();
    CHECK(connect_status == UV_ETIMEDOUT);
    CHECK(strstr(connect_msg, "timeout after 5 s") != NULL);
    CHECK(uv_hrtime() - start >= 4900 * 1000000ull);
    free(addr);

    CHECK(tlsproxy_connect(&loop, "nowhere", client, on_connect, NULL, &err) < 0);
    CHECK(err.kind == SERR_INVALID);
    CHECK(tlsproxy_connect(&loop, "127.0.0.1:99999", client, on_connect, NULL, &err) < 0);

    SSL_CTX_free(client);
    pki_free(&p);
}

/* ---- the server ends a connection; the listener closes mid-handshake ---- */

static bool client_saw_eof;

static void on_accept_and_hang_up(void *data, int plain_fd, const char *peer_id,
                                  const char *peer_role, const char *peer_addr)
{
    (void)data, (void)peer_id, (void)peer_role, (void)peer_addr;
    accepted++;
    close(plain_fd);
    close_listener();
}

static void eof_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    free(buf->base);
    if (nread == UV_EOF)
        client_saw_eof = true;
    if (nread < 0)
        uv_close((uv_handle_t *)s, free_handle);
}

static void on_connect_expect_eof(void *data, int status, int plain_fd, const char *peer_id,
                                  const char *peer_role, const char *errmsg)
{
    (void)data, (void)peer_id, (void)peer_role;
    connect_status = status;
    snprintf(connect_msg, sizeof(connect_msg), "%s", errmsg);
    if (status < 0)
        return;
    uv_pipe_t *pipe = xmalloc(sizeof(*pipe));
    CHECK(uv_pipe_init(&loop, pipe, 0) == 0);
    CHECK(uv_pipe_open(pipe, plain_fd) == 0);
    uv_read_start((uv_stream_t *)pipe, alloc_buf, eof_read);
}

TEST(tlsproxy_server_hangs_up)
{
    struct pki p;
    struct serr err;
    pki_make(&p);
    SSL_CTX *server = server_ctx_for(&p, true);
    SSL_CTX *client = client_ctx_for(&p);
    setup();
    client_saw_eof = false;
    CHECK(tlsproxy_listen(&loop, "127.0.0.1:0", server, on_accept_and_hang_up, NULL, &listener,
                          &err) == 0);
    char *addr = xasprintf("127.0.0.1:%d", tlsproxy_listener_port(listener));
    CHECK(tlsproxy_connect(&loop, addr, client, on_connect_expect_eof, NULL, &err) == 0);
    finish();
    CHECK(connect_status == 0);
    CHECK(accepted == 1);
    CHECK(client_saw_eof);
    free(addr);
    SSL_CTX_free(client);
    SSL_CTX_free(server);
    pki_free(&p);
}

static int listener_done_calls;

static void on_listener_done(void *arg)
{
    CHECK(arg == &listener_done_calls);
    listener_done_calls++;
}

static void close_listener_later(uv_timer_t *t)
{
    tlsproxy_listener_close(listener, on_listener_done, &listener_done_calls);
    listener = NULL;
    uv_close((uv_handle_t *)t, free_handle);
}

static void on_raw_connected(uv_connect_t *req, int status)
{
    CHECK(status == 0);
    /* Leave the server waiting for a ClientHello (accepted by then), then close
     * the listener. */
    uv_timer_t *timer = xmalloc(sizeof(*timer));
    uv_timer_init(&loop, timer);
    uv_timer_start(timer, close_listener_later, 100, 0);
    uv_read_start(req->handle, alloc_buf, eof_read);
    free(req);
}

TEST(tlsproxy_listener_close_drops_handshakes)
{
    struct pki p;
    pki_make(&p);
    SSL_CTX *server = server_ctx_for(&p, true);
    setup();
    client_saw_eof = false;
    listener_done_calls = 0;
    char *addr = listen_on_free_port(server);
    SSL_CTX_free(server); /* the listener holds its own reference */

    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", tlsproxy_listener_port(listener), &sa);
    uv_tcp_t *raw = xmalloc(sizeof(*raw));
    uv_tcp_init(&loop, raw);
    uv_connect_t *req = xmalloc(sizeof(*req));
    CHECK(uv_tcp_connect(req, raw, (struct sockaddr *)&sa, on_raw_connected) == 0);
    finish();
    CHECK(listener_done_calls == 1);
    CHECK(client_saw_eof); /* the half-open handshake was dropped */
    CHECK(accepted == 0);
    free(addr);
    pki_free(&p);
}

/* ---- connection caps ---- */

static int blocking_connect(const char *source, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    dst.sin_port = htons((uint16_t)port);
    CHECK(bind(fd, (struct sockaddr *)&src, sizeof(src)) == 0);
    CHECK(connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0);
    return fd;
}

static bool exempt_dot_two(void *data, const char *ip)
{
    (void)data;
    return strcmp(ip, "127.0.0.2") == 0;
}

struct cap_check {
    uv_timer_t timer;
    int held, refused, exempt;
    int rounds;
};

static bool got_eof(int fd)
{
    char byte;
    return recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
}

/* Until the listener holds the first and the exempt connection and the
 * second one was closed (30 s at most), then ends everything. */
static void check_caps(uv_timer_t *t)
{
    struct cap_check *c = t->data;
    bool done = tlsproxy_listener_conn_count(listener) == 2 && got_eof(c->refused);
    if (!done && ++c->rounds < 3000)
        return;
    CHECK(done);
    CHECK(!got_eof(c->held) && !got_eof(c->exempt));
    close(c->held);
    close(c->refused);
    close(c->exempt);
    close_listener();
    uv_close((uv_handle_t *)t, NULL);
}

TEST(tlsproxy_caps_refuse_at_once_but_not_exempt_addresses)
{
    struct pki p;
    pki_make(&p);
    SSL_CTX *server = server_ctx_for(&p, false);
    setup();
    char *addr = listen_on_free_port(server);
    SSL_CTX_free(server);
    tlsproxy_listener_set_caps(listener, 1, 0, exempt_dot_two);
    int port = tlsproxy_listener_port(listener);
    /* Queued in the backlog in this order before the loop accepts them. */
    struct cap_check c = {.held = blocking_connect("127.0.0.1", port),
                          .refused = blocking_connect("127.0.0.1", port),
                          .exempt = blocking_connect("127.0.0.2", port)};
    uv_timer_init(&loop, &c.timer);
    c.timer.data = &c;
    uv_timer_start(&c.timer, check_caps, 10, 10);
    finish();
    CHECK(accepted == 0); /* no handshake was made */
    free(addr);
    pki_free(&p);
}

/* The first flight of a TLS client of `ctx` (its ClientHello); *len gets
 * its size. Caller frees. */
static unsigned char *client_hello(SSL_CTX *ctx, size_t *len)
{
    SSL *ssl = SSL_new(ctx);
    SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(ssl);
    CHECK(SSL_do_handshake(ssl) <= 0); /* waits for the server's answer */
    char *data;
    long n = BIO_get_mem_data(SSL_get_wbio(ssl), &data);
    CHECK(n > 0);
    unsigned char *hello = xmalloc((size_t)n);
    memcpy(hello, data, (size_t)n);
    *len = (size_t)n;
    SSL_free(ssl);
    return hello;
}

/* A client that sent its ClientHello and closed its side (it gave up
 * waiting) is dropped unanswered: no ServerHello, no handshake computed. */
TEST(tlsproxy_drops_a_client_that_left_unanswered)
{
    struct pki p;
    struct serr err;
    pki_make(&p);
    SSL_CTX *server = server_ctx_for(&p, true);
    SSL_CTX *client = client_ctx_for(&p);
    setup();
    CHECK(tlsproxy_listen(&loop, "127.0.0.1:0", server, on_accept, NULL, &listener, &err) == 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)tlsproxy_listener_port(listener))};
    CHECK(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr) == 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    size_t len;
    unsigned char *hello = client_hello(client, &len);
    CHECK(write(fd, hello, len) == (ssize_t)len);
    CHECK(shutdown(fd, SHUT_WR) == 0);
    char byte;
    while (recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN)
        uv_run(&loop, UV_RUN_ONCE); /* until the server answers or closes */
    CHECK(recv(fd, &byte, 1, 0) == 0); /* closed, nothing sent */
    close(fd);
    close_listener();
    finish();
    CHECK(accepted == 0);
    free(hello);
    SSL_CTX_free(client);
    SSL_CTX_free(server);
    pki_free(&p);
}
