/* TLS proxy between a TCP connection and a socketpair, on memory BIOs. See tlsproxy.h.
 *
 * One `struct conn` per TCP connection goes through these states:
 *   HANDSHAKE   -> TLS handshake running (client: also the TCP connect)
 *   WAIT_TICKET -> TLS 1.3 client: handshake done, waiting for the server's verdict
 *   OPEN        -> the caller has its plain fd; bytes flow both ways
 *   FLUSHING    -> a failed handshake sends its last bytes (the alert) before closing
 *   CLOSING     -> handles are closing; freed when the last one is closed
 * The SSL object reads from `rbio` (filled with what TCP brought) and writes to
 * `wbio` (drained into TCP writes after every SSL call). */
#include "base/tlsproxy.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "base/log.h"
#include "base/util.h"

#define READ_CHUNK (64 * 1024)
#define RECORD_CHUNK (16 * 1024)
#define LOW_WATER (TLSPROXY_HIGH_WATER / 2)
#define FLUSH_TIMEOUT_MS 1000
#define REFUSED_LOG_INTERVAL_MS 10000

enum conn_state { HANDSHAKE, WAIT_TICKET, OPEN, FLUSHING, CLOSING };

struct tlsproxy_listener {
    uv_tcp_t tcp;
    SSL_CTX *ctx;           /* a reference of the listener's, or NULL with ctx_cb */
    tlsproxy_ctx_cb ctx_cb; /* the context of each connection, when ctx is NULL */
    tlsproxy_accept_cb cb;
    void *data;
    struct conn *handshaking; /* list of connections not yet given to cb */
    void (*done)(void *);
    void *done_arg;
    int port;
    /* Every connection accepted and not yet freed, handshaking or open: the
     * caps count them. The struct outlives its handle while they live. */
    struct conn *all;
    int nconns;
    int max_conns, max_per_addr; /* 0: no cap */
    bool (*exempt)(void *data, const char *ip); /* from max_conns */
    bool closed;
    struct log_limit refused_log;
};

struct conn {
    uv_loop_t *loop;
    enum conn_state state;
    uv_tcp_t tcp;
    uv_timer_t timer; /* handshake deadline */
    uv_pipe_t plain;  /* our end of the socketpair, from OPEN on */
    bool plain_opened;
    int open_handles; /* freed when this drops to 0 */
    uv_connect_t connect_req;
    uv_shutdown_t tcp_shutdown, plain_shutdown;
    int shutdowns_pending;
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    size_t tcp_pending, plain_pending; /* bytes queued for writing */
    bool tcp_paused, plain_paused;      /* reading stopped by back-pressure */
    bool tls_eof, plain_eof;            /* no more input from that side */
    char addr[80];
    char peer_id[256];
    char peer_role[32];
    /* server side */
    struct tlsproxy_listener *listener; /* while in its handshaking list */
    struct conn *next, *prev;
    struct tlsproxy_listener *owner; /* accepted it: until freed */
    struct conn *all_next, *all_prev;
    char ip[64];
    /* client side */
    tlsproxy_connect_cb connect_cb;
    void *data;
    bool reported;
    struct conn *live_next, *live_prev; /* every live connection (tlsproxy_close_all) */
};

static struct conn *live_conns;

struct write_req {
    uv_write_t req;
    struct conn *conn;
    size_t len;
    char bytes[];
};

static void conn_close(struct conn *c);
static void close_after_flush(struct conn *c);
static void pump_tls_to_plain(struct conn *c);
static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_plain_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- addresses ---- */

static int parse_addr(const char *addr, struct sockaddr_storage *sa, struct serr *err)
{
    const char *colon = strrchr(addr, ':');
    char host[64];
    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= sizeof(host))
        return serr_set(err, SERR_INVALID, "invalid address \"%s\": expected IP:PORT", addr);
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
        return serr_set(err, SERR_INVALID, "invalid port in address \"%s\"", addr);
    size_t hlen = strlen(host);
    if (host[0] == '[' && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        if (uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)sa) == 0)
            return 0;
    } else if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)sa) == 0) {
        return 0;
    }
    return serr_set(err, SERR_INVALID, "invalid IP address in \"%s\"", addr);
}

static void format_addr(const struct sockaddr_storage *sa, char *out, size_t outlen)
{
    char ip[64] = "?";
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, sizeof(ip));
        snprintf(out, outlen, "[%s]:%d", ip, ntohs(in6->sin6_port));
    } else {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, ip, sizeof(ip));
        snprintf(out, outlen, "%s:%d", ip, ntohs(in->sin_port));
    }
}

/* ---- TLS helpers ---- */

/* Why the last SSL call failed. A text attached to an ERR_LIB_USER error wins
 * (verify callbacks such as the CA pinning put their reason there), then the
 * certificate verification result, then OpenSSL's newest reason. Empties the
 * error queue. */
static void tls_failure_reason(SSL *ssl, char *out, size_t outlen)
{
    unsigned long code, last = 0;
    const char *data = NULL;
    int flags = 0;
    bool have_text = false;
    while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        if (!have_text && ERR_GET_LIB(code) == ERR_LIB_USER && (flags & ERR_TXT_STRING) &&
            data && *data) {
            snprintf(out, outlen, "%s", data);
            have_text = true;
        }
        last = code;
    }
    if (have_text)
        return;
    long verify = SSL_get_verify_result(ssl);
    const char *reason = last ? ERR_reason_error_string(last) : NULL;
    if (verify != X509_V_OK)
        snprintf(out, outlen, "certificate verification: %s",
                 X509_verify_cert_error_string(verify));
    else
        snprintf(out, outlen, "%s", reason ? reason : "connection closed during handshake");
}

/* Exactly one value of `nid` in the subject, as UTF-8; "" otherwise. */
static void subject_text(X509 *cert, int nid, char *out, size_t outlen)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    int pos = X509_NAME_get_index_by_NID(name, nid, -1);
    out[0] = '\0';
    if (pos < 0 || X509_NAME_get_index_by_NID(name, nid, pos) >= 0)
        return;
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, pos)));
    if (len >= 0 && (size_t)len < outlen && memchr(utf8, '\0', (size_t)len) == NULL) {
        memcpy(out, utf8, (size_t)len);
        out[len] = '\0';
    }
    OPENSSL_free(utf8);
}

static void read_peer_identity(struct conn *c)
{
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    c->peer_id[0] = c->peer_role[0] = '\0';
    if (peer == NULL)
        return;
    subject_text(peer, NID_commonName, c->peer_id, sizeof(c->peer_id));
    subject_text(peer, NID_organizationalUnitName, c->peer_role, sizeof(c->peer_role));
}

/* ---- failing and closing ---- */

static void report_connect(struct conn *c, int status, int plain_fd, const char *msg)
{
    if (c->connect_cb == NULL || c->reported)
        return;
    c->reported = true;
    if (status < 0)
        c->connect_cb(c->data, status, -1, "", "", msg);
    else
        c->connect_cb(c->data, 0, plain_fd, c->peer_id, c->peer_role, "");
}

static void fail(struct conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends a connection that never reached OPEN: tells a connecting caller why. */
static void fail(struct conn *c, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->connect_cb)
        report_connect(c, status, -1, msg);
    else
        log_debug("tls: %s", msg);
    close_after_flush(c);
}

static void fail_tls(struct conn *c)
{
    char reason[256];
    tls_failure_reason(c->ssl, reason, sizeof(reason));
    fail(c, UV_EPROTO, "TLS handshake with %s failed: %s", c->addr, reason);
}

static void unlink_from_listener(struct conn *c)
{
    struct tlsproxy_listener *l = c->listener;
    if (l == NULL)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->handshaking = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->listener = NULL;
}

static void on_flush_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void listener_free(struct tlsproxy_listener *l)
{
    SSL_CTX_free(l->ctx);
    free(l);
}

/* A freed connection leaves its listener's count (and frees a closed
 * listener with the last one). */
static void leave_owner(struct conn *c)
{
    struct tlsproxy_listener *l = c->owner;
    if (l == NULL)
        return;
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        l->all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    c->owner = NULL;
    if (--l->nconns == 0 && l->closed)
        listener_free(l);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    leave_owner(c);
    if (c->live_prev)
        c->live_prev->live_next = c->live_next;
    else
        live_conns = c->live_next;
    if (c->live_next)
        c->live_next->live_prev = c->live_prev;
    SSL_free(c->ssl);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (c->state == CLOSING)
        return;
    c->state = CLOSING;
    unlink_from_listener(c);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    if (c->plain_opened)
        uv_close((uv_handle_t *)&c->plain, on_conn_handle_closed);
}

static void on_flushed(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->handle->data);
}

/* Lets queued TCP bytes (a TLS alert) leave before closing, for at most
 * FLUSH_TIMEOUT_MS: a peer that reads nothing does not keep us. */
static void close_after_flush(struct conn *c)
{
    if (c->state == CLOSING || c->state == FLUSHING)
        return;
    unlink_from_listener(c);
    if (c->tcp_pending == 0 || uv_shutdown(&c->tcp_shutdown, (uv_stream_t *)&c->tcp, on_flushed) < 0) {
        conn_close(c);
        return;
    }
    c->state = FLUSHING;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_start(&c->timer, on_flush_timeout, FLUSH_TIMEOUT_MS, 0);
}

/* Errors once OPEN: the caller learns of them by its fd closing. */
static void drop(struct conn *c, const char *what, int status)
{
    log_debug("tls %s: %s: %s", c->addr, what, uv_strerror(status));
    conn_close(c);
}

static void drop_tls(struct conn *c, const char *what)
{
    char reason[256];
    tls_failure_reason(c->ssl, reason, sizeof(reason));
    log_debug("tls %s: %s: %s", c->addr, what, reason);
    conn_close(c);
}

/* ---- writing ---- */

static void alloc_chunk(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    *buf = uv_buf_init(xmalloc(READ_CHUNK), READ_CHUNK);
}

static struct write_req *write_req_new(struct conn *c, size_t cap)
{
    struct write_req *w = xmalloc(sizeof(*w) + cap);
    w->conn = c;
    w->len = 0;
    return w;
}

static void on_tcp_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->conn;
    c->tcp_pending -= w->len;
    free(w);
    if (c->state == CLOSING)
        return;
    if (status < 0) {
        drop(c, "write", status);
        return;
    }
    if (c->plain_paused && c->tcp_pending <= LOW_WATER) {
        c->plain_paused = false;
        if (!c->plain_eof)
            uv_read_start((uv_stream_t *)&c->plain, alloc_chunk, on_plain_read);
    }
}

/* Sends whatever OpenSSL produced. Returns -1 after closing the connection. */
static int flush_tls_output(struct conn *c)
{
    size_t n;
    while ((n = BIO_ctrl_pending(c->wbio)) > 0) {
        struct write_req *w = write_req_new(c, n);
        int got = BIO_read(c->wbio, w->bytes, (int)n);
        w->len = got > 0 ? (size_t)got : 0;
        uv_buf_t buf = uv_buf_init(w->bytes, (unsigned)w->len);
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_tcp_written);
        if (rc < 0) {
            free(w);
            fail(c, rc, "write to %s: %s", c->addr, uv_strerror(rc));
            return -1;
        }
        c->tcp_pending += w->len;
    }
    if (c->plain_opened && !c->plain_paused && c->tcp_pending > TLSPROXY_HIGH_WATER) {
        c->plain_paused = true;
        uv_read_stop((uv_stream_t *)&c->plain);
    }
    return 0;
}

static void on_plain_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->conn;
    c->plain_pending -= w->len;
    free(w);
    if (c->state == CLOSING)
        return;
    if (status < 0) {
        drop(c, "write to the plain side", status);
        return;
    }
    if (c->tcp_paused && c->plain_pending <= LOW_WATER) {
        c->tcp_paused = false;
        /* rbio is empty: the pump drained it before pausing. */
        if (!c->tls_eof)
            uv_read_start((uv_stream_t *)&c->tcp, alloc_chunk, on_tcp_read);
    }
}

/* ---- end of stream ---- */

static void maybe_finish(struct conn *c)
{
    if (c->tls_eof && c->plain_eof && c->shutdowns_pending == 0)
        conn_close(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->handle->data;
    c->shutdowns_pending--;
    if (c->state == CLOSING)
        return;
    if (status < 0)
        drop(c, "shutdown", status);
    else
        maybe_finish(c);
}

/* The peer sent close_notify or TCP ended: the caller reads EOF once the bytes
 * already queued are written. */
static void on_tls_eof(struct conn *c)
{
    if (c->tls_eof)
        return;
    c->tls_eof = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    int rc = uv_shutdown(&c->plain_shutdown, (uv_stream_t *)&c->plain, on_shutdown);
    if (rc < 0) {
        drop(c, "shutdown of the plain side", rc);
        return;
    }
    c->shutdowns_pending++;
    maybe_finish(c);
}

/* The caller closed or half-closed its fd: close_notify, then TCP FIN. */
static void on_plain_eof(struct conn *c)
{
    if (c->plain_eof)
        return;
    c->plain_eof = true;
    uv_read_stop((uv_stream_t *)&c->plain);
    ERR_clear_error();
    SSL_shutdown(c->ssl);
    ERR_clear_error();
    if (flush_tls_output(c) < 0)
        return;
    int rc = uv_shutdown(&c->tcp_shutdown, (uv_stream_t *)&c->tcp, on_shutdown);
    if (rc < 0) {
        drop(c, "shutdown", rc);
        return;
    }
    c->shutdowns_pending++;
    maybe_finish(c);
}

/* ---- data flow once OPEN ---- */

static void pump_tls_to_plain(struct conn *c)
{
    while (c->state == OPEN && !c->tls_eof) {
        struct write_req *w = write_req_new(c, RECORD_CHUNK);
        ERR_clear_error();
        int got = SSL_read(c->ssl, w->bytes, RECORD_CHUNK);
        if (got <= 0) {
            free(w);
            int e = SSL_get_error(c->ssl, got);
            if (flush_tls_output(c) < 0) /* e.g. a KeyUpdate answer */
                return;
            if (e == SSL_ERROR_ZERO_RETURN)
                on_tls_eof(c);
            else if (e != SSL_ERROR_WANT_READ)
                drop_tls(c, "read");
            break;
        }
        w->len = (size_t)got;
        uv_buf_t buf = uv_buf_init(w->bytes, (unsigned)got);
        int rc = uv_write(&w->req, (uv_stream_t *)&c->plain, &buf, 1, on_plain_written);
        if (rc < 0) {
            free(w);
            drop(c, "write to the plain side", rc);
            return;
        }
        c->plain_pending += (size_t)got;
    }
    if (c->state == OPEN && !c->tcp_paused && c->plain_pending > TLSPROXY_HIGH_WATER) {
        c->tcp_paused = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

static void on_plain_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread > 0 && c->state == OPEN) {
        ERR_clear_error();
        /* Memory BIOs grow as needed, so SSL_write takes everything at once. */
        if (SSL_write(c->ssl, buf->base, (int)nread) != (int)nread)
            drop_tls(c, "write");
        else
            flush_tls_output(c);
    } else if (nread == UV_EOF && c->state == OPEN) {
        on_plain_eof(c);
    } else if (nread < 0 && c->state == OPEN) {
        drop(c, "read from the plain side", (int)nread);
    }
    free(buf->base);
}

/* ---- handshake ---- */

static void go_open(struct conn *c)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) {
        fail(c, uv_translate_sys_error(errno), "socketpair: %s", strerror(errno));
        return;
    }
    uv_pipe_init(c->loop, &c->plain, 0);
    c->plain.data = c;
    c->plain_opened = true;
    c->open_handles++;
    int rc = uv_pipe_open(&c->plain, pair[0]);
    if (rc < 0) {
        close(pair[0]);
        close(pair[1]);
        fail(c, rc, "open socketpair: %s", uv_strerror(rc));
        return;
    }
    uv_timer_stop(&c->timer);
    c->state = OPEN;
    uv_read_start((uv_stream_t *)&c->plain, alloc_chunk, on_plain_read);

    struct tlsproxy_listener *l = c->listener;
    unlink_from_listener(c);
    if (l)
        l->cb(l->data, pair[1], c->peer_id, c->peer_role, c->addr);
    else
        report_connect(c, 0, pair[1], NULL);
    /* Application data may have come with the last handshake bytes. */
    pump_tls_to_plain(c);
}

/* TLS 1.3 client: the server's first ticket (or data) means it accepted us; an
 * alert means it did not. SSL_peek leaves application data for the pump. */
static void check_verdict(struct conn *c)
{
    char byte;
    ERR_clear_error();
    int got = SSL_peek(c->ssl, &byte, 1);
    int e = got > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, got);
    if (flush_tls_output(c) < 0)
        return;
    if (got > 0 || (e == SSL_ERROR_WANT_READ && SSL_SESSION_has_ticket(SSL_get0_session(c->ssl))))
        go_open(c);
    else if (e == SSL_ERROR_ZERO_RETURN)
        fail(c, UV_EPROTO, "TLS handshake with %s failed: the server closed the connection",
             c->addr);
    else if (e != SSL_ERROR_WANT_READ)
        fail_tls(c);
}

static void handshake_done(struct conn *c)
{
    if (SSL_get0_peer_certificate(c->ssl) && SSL_get_verify_result(c->ssl) != X509_V_OK) {
        fail_tls(c); /* cannot happen with SSL_VERIFY_PEER; kept as a guard */
        return;
    }
    read_peer_identity(c);
    if (c->connect_cb && SSL_version(c->ssl) >= TLS1_3_VERSION) {
        c->state = WAIT_TICKET;
        check_verdict(c);
    } else {
        go_open(c);
    }
}

static void do_handshake(struct conn *c)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, rc);
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
        /* Send our alert (fail() lets it out) so the peer learns why. */
        char reason[256];
        tls_failure_reason(c->ssl, reason, sizeof(reason));
        if (flush_tls_output(c) == 0)
            fail(c, UV_EPROTO, "TLS handshake with %s failed: %s", c->addr, reason);
        return;
    }
    if (flush_tls_output(c) < 0)
        return;
    if (e == SSL_ERROR_NONE)
        handshake_done(c);
}

static void drive(struct conn *c)
{
    if (c->state == HANDSHAKE)
        do_handshake(c);
    else if (c->state == WAIT_TICKET)
        check_verdict(c);
    else if (c->state == OPEN)
        pump_tls_to_plain(c);
}

/* Whether the client of a connection accepted here closed its side before
 * its first flight was answered (its FIN queued behind the bytes read): it
 * gave up waiting, as clients of a starved server's backlog do, and the
 * server's answer (a signature) would be computed for nobody. A client
 * closes no side of a handshake it means to finish. */
static bool client_left(struct conn *c)
{
    uv_os_fd_t fd;
    char byte;
    if (c->listener == NULL || !SSL_in_before(c->ssl) ||
        uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        return false;
    return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread > 0 && c->state == HANDSHAKE && client_left(c)) {
        fail(c, UV_EPROTO, "TLS handshake with %s: the client left before it was answered",
             c->addr);
    } else if (nread > 0 && c->state < FLUSHING) {
        BIO_write(c->rbio, buf->base, (int)nread);
        drive(c);
    } else if (nread < 0 && c->state == OPEN) {
        if (nread == UV_EOF)
            on_tls_eof(c); /* without close_notify: treated as the end all the same */
        else
            drop(c, "read", (int)nread);
    } else if (nread < 0 && c->state < OPEN) {
        fail(c, UV_EPROTO, "TLS handshake with %s failed: %s", c->addr,
             nread == UV_EOF ? "the peer closed the connection" : uv_strerror((int)nread));
    }
    free(buf->base);
}

static void on_handshake_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    fail(c, UV_ETIMEDOUT, "connect to %s: timeout after %d s", c->addr,
         TLSPROXY_HANDSHAKE_TIMEOUT_MS / 1000);
}

/* ---- connection set-up ---- */

static struct conn *conn_new(uv_loop_t *loop, SSL_CTX *ctx, const char *addr)
{
    SSL *ssl = SSL_new(ctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (ssl == NULL || rbio == NULL || wbio == NULL)
        abort(); /* only fails without memory, like xmalloc */
    BIO_set_mem_eof_return(rbio, -1); /* empty means "wait", not EOF */
    SSL_set_bio(ssl, rbio, wbio);

    struct conn *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->ssl = ssl;
    c->rbio = rbio;
    c->wbio = wbio;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    uv_timer_start(&c->timer, on_handshake_timeout, TLSPROXY_HANDSHAKE_TIMEOUT_MS, 0);
    c->live_next = live_conns;
    if (live_conns)
        live_conns->live_prev = c;
    live_conns = c;
    return c;
}

void tlsproxy_close_all(uv_loop_t *loop)
{
    struct conn *next;
    for (struct conn *c = live_conns; c; c = next) {
        next = c->live_next;
        if (c->loop != loop || c->state == CLOSING)
            continue;
        if (c->connect_cb && !c->reported)
            fail(c, UV_ECANCELED, "connect to %s: the daemon is stopping", c->addr);
        else
            conn_close(c);
    }
}

static void tune_tcp(struct conn *c)
{
    uv_tcp_nodelay(&c->tcp, 1); /* Raft heartbeats are small and latency-bound */
    uv_tcp_keepalive(&c->tcp, 1, 30);
}

/* ---- server ---- */

static void format_ip(const struct sockaddr_storage *sa, char *out, size_t outlen)
{
    if (sa->ss_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)sa, out, outlen);
    else
        uv_ip4_name((const struct sockaddr_in *)sa, out, outlen);
}

/* Which cap a new connection from `ip` would go over, or NULL. */
static const char *over_cap(const struct tlsproxy_listener *l, const char *ip)
{
    bool exempt = l->exempt != NULL && l->exempt(l->data, ip);
    if (!exempt && l->max_conns > 0 && l->nconns >= l->max_conns)
        return "connections";
    int per_addr = exempt ? l->max_conns : l->max_per_addr;
    if (per_addr <= 0)
        return NULL;
    int same = 0;
    for (const struct conn *c = l->all; c != NULL; c = c->all_next)
        same += strcmp(c->ip, ip) == 0;
    return same >= per_addr ? "connections from one address" : NULL;
}

static void refuse_over_cap(struct tlsproxy_listener *l, struct conn *c, const char *what)
{
    unsigned long suppressed;
    if (log_limit_allow(&l->refused_log, uv_now(c->loop), REFUSED_LOG_INTERVAL_MS, &suppressed))
        log_warn("cluster port: refused a connection from %s: too many %s (%lu more refused "
                 "since the last message)", c->ip[0] ? c->ip : "?", what, suppressed);
    conn_close(c);
}

void tlsproxy_listener_set_caps(struct tlsproxy_listener *l, int max_conns, int max_per_addr,
                                bool (*exempt)(void *data, const char *ip))
{
    l->max_conns = max_conns;
    l->max_per_addr = max_per_addr;
    l->exempt = exempt;
}

int tlsproxy_listener_conn_count(const struct tlsproxy_listener *l)
{
    return l->nconns;
}

/* Accepts a connection and closes it at once (the listener has no context to
 * run its handshake with). */
static void refuse_without_ctx(uv_stream_t *server)
{
    uv_tcp_t *tcp = xmalloc(sizeof(*tcp));
    uv_tcp_init(server->loop, tcp);
    uv_accept(server, (uv_stream_t *)tcp);
    uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct tlsproxy_listener *l = server->data;
    if (status < 0) {
        log_warn("tls listener: %s", uv_strerror(status));
        return;
    }
    SSL_CTX *ctx = l->ctx_cb ? l->ctx_cb(l->data) : l->ctx;
    if (ctx == NULL) {
        refuse_without_ctx(server);
        return;
    }
    struct conn *c = conn_new(server->loop, ctx, "?");
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) == 0) {
        format_addr(&sa, c->addr, sizeof(c->addr));
        format_ip(&sa, c->ip, sizeof(c->ip));
    }
    const char *cap = over_cap(l, c->ip);
    if (cap != NULL) {
        refuse_over_cap(l, c, cap);
        return;
    }
    c->owner = l;
    c->all_next = l->all;
    if (l->all)
        l->all->all_prev = c;
    l->all = c;
    l->nconns++;
    c->listener = l;
    c->next = l->handshaking;
    if (c->next)
        c->next->prev = c;
    l->handshaking = c;
    tune_tcp(c);
    SSL_set_accept_state(c->ssl);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_chunk, on_tcp_read);
}

/* Binds and listens; the caller sets the context (ctx or ctx_cb). */
static int listen_on(uv_loop_t *loop, const char *addr, tlsproxy_accept_cb cb, void *data,
                     struct tlsproxy_listener **out, struct serr *err)
{
    struct sockaddr_storage sa;
    if (parse_addr(addr, &sa, err) < 0)
        return -1;
    struct tlsproxy_listener *l = xcalloc(1, sizeof(*l));
    uv_tcp_init(loop, &l->tcp);
    l->tcp.data = l;
    int rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, TLSPROXY_BACKLOG, on_connection);
    if (rc < 0) {
        serr_set(err, SERR_UNAVAILABLE, "listen on %s: %s", addr, uv_strerror(rc));
        uv_close((uv_handle_t *)&l->tcp, (uv_close_cb)free);
        return -1;
    }
    int len = sizeof(sa);
    uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&sa, &len);
    l->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                             : ((struct sockaddr_in *)&sa)->sin_port);
    l->cb = cb;
    l->data = data;
    *out = l;
    return 0;
}

int tlsproxy_listen(uv_loop_t *loop, const char *addr, SSL_CTX *ctx, tlsproxy_accept_cb cb,
                    void *data, struct tlsproxy_listener **out, struct serr *err)
{
    if (listen_on(loop, addr, cb, data, out, err) < 0)
        return -1;
    SSL_CTX_up_ref(ctx);
    (*out)->ctx = ctx;
    return 0;
}

int tlsproxy_listen_lazy(uv_loop_t *loop, const char *addr, tlsproxy_ctx_cb ctx_cb,
                         tlsproxy_accept_cb cb, void *data, struct tlsproxy_listener **out,
                         struct serr *err)
{
    if (listen_on(loop, addr, cb, data, out, err) < 0)
        return -1;
    (*out)->ctx_cb = ctx_cb;
    return 0;
}

int tlsproxy_listener_port(const struct tlsproxy_listener *l)
{
    return l->port;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct tlsproxy_listener *l = h->data;
    void (*done)(void *) = l->done;
    void *arg = l->done_arg;
    l->closed = true;
    if (l->nconns == 0)
        listener_free(l);
    if (done)
        done(arg);
}

void tlsproxy_listener_close(struct tlsproxy_listener *l, void (*done)(void *), void *arg)
{
    while (l->handshaking)
        conn_close(l->handshaking); /* unlinks it */
    l->done = done;
    l->done_arg = arg;
    uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
}

/* ---- client ---- */

static void on_connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->state == CLOSING)
        return;
    if (status < 0) {
        fail(c, status, "connect to %s: %s", c->addr, uv_strerror(status));
        return;
    }
    tune_tcp(c);
    SSL_set_connect_state(c->ssl);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_chunk, on_tcp_read);
    do_handshake(c); /* sends the ClientHello */
}

int tlsproxy_connect(uv_loop_t *loop, const char *addr, SSL_CTX *ctx, tlsproxy_connect_cb cb,
                     void *data, struct serr *err)
{
    struct sockaddr_storage sa;
    if (parse_addr(addr, &sa, err) < 0)
        return -1;
    struct conn *c = conn_new(loop, ctx, addr);
    c->connect_cb = cb;
    c->data = data;
    c->connect_req.data = c;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)&sa, on_connected);
    if (rc < 0) {
        c->reported = true; /* the caller hears it from the return value */
        conn_close(c);
        return serr_set(err, SERR_UNAVAILABLE, "connect to %s: %s", addr, uv_strerror(rc));
    }
    return 0;
}
