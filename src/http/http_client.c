/* Blocking HTTP/1.1 client for the CLI, over a Unix socket or, for
 * tcp://HOST:PORT hosts, over TLS with a client certificate (remote access to
 * a manager's cluster port). One connection, reused while the server keeps it
 * alive and reopened when it does not. Every byte goes through conn_send()
 * and conn_recv(), so the HTTP code does not know which transport it uses. */
#include "http/http.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"
#include "tls/pem.h"
#include "tls/tls_ctx.h"

#define RECV_CHUNK (64 * 1024)
/* The cluster port, where managers serve the API over TLS (SHOAL_DEFAULT_PORT). */
#define DEFAULT_TCP_PORT "2377"
/* Connect and handshake limits only: once connected, streams (logs -f) may
 * stay silent for as long as they like. */
#define CONNECT_TIMEOUT_MS 10000

struct http_client {
    char *host; /* as given, for messages */
    char *path; /* unix: the socket's path; NULL for tcp */
    /* tcp only */
    char *node, *port; /* for getaddrinfo */
    char *tls_dir;     /* for messages */
    SSL_CTX *tls;      /* trusts tls_dir/ca.pem, presents tls_dir/cert.pem */
    SSL *ssl;          /* the open connection's TLS state, or NULL */
    bool peer_eof;     /* the TCP peer closed (for the BIO's EOF query) */
    int fd;
};

/* ---- TLS plumbing ---- */

/* OpenSSL's socket BIO writes with write(2): a daemon that hangs up would
 * kill the CLI with SIGPIPE. This BIO sends with MSG_NOSIGNAL instead. Its
 * data is the struct http_client. */
static int sock_bio_write(BIO *bio, const char *data, int len)
{
    struct http_client *c = BIO_get_data(bio);
    ssize_t n;
    do
        n = send(c->fd, data, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return (int)n;
}

static int sock_bio_read(BIO *bio, char *buf, int len)
{
    struct http_client *c = BIO_get_data(bio);
    ssize_t n;
    do
        n = recv(c->fd, buf, (size_t)len, 0);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        c->peer_eof = true;
    return (int)n;
}

static long sock_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    (void)num, (void)ptr;
    if (cmd == BIO_CTRL_FLUSH)
        return 1; /* nothing is buffered */
    if (cmd == BIO_CTRL_EOF)
        return ((struct http_client *)BIO_get_data(bio))->peer_eof;
    return 0;
}

static BIO_METHOD *sock_bio_method_ptr;

static void sock_bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "shoal socket");
    BIO_meth_set_write(m, sock_bio_write);
    BIO_meth_set_read(m, sock_bio_read);
    BIO_meth_set_ctrl(m, sock_bio_ctrl);
    sock_bio_method_ptr = m; /* lives as long as the process */
}

static BIO *sock_bio_new(struct http_client *c)
{
    static CRYPTO_ONCE once = CRYPTO_ONCE_STATIC_INIT;
    if (!CRYPTO_THREAD_run_once(&once, sock_bio_method_init) || sock_bio_method_ptr == NULL)
        return NULL;
    BIO *bio = BIO_new(sock_bio_method_ptr);
    if (bio != NULL) {
        BIO_set_data(bio, c);
        BIO_set_init(bio, 1);
    }
    return bio;
}

static bool last_error_is_alert(void)
{
    /* Alerts received from the peer have reasons from SSL_AD_REASON_OFFSET on. */
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET;
}

char *http_client_tls_dir(const char *given)
{
    if (given != NULL && given[0] != '\0')
        return xstrdup(given);
    const char *env = getenv("SHOAL_TLS_DIR");
    if (env != NULL && env[0] != '\0')
        return xstrdup(env);
    const char *home = getenv("HOME");
    return xasprintf("%s/.shoal", home != NULL && home[0] != '\0' ? home : "/root");
}

static int check_readable(const char *dir, const char *file, struct serr *err)
{
    char *path = xasprintf("%s/%s", dir, file);
    int rc = 0;
    if (access(path, R_OK) < 0) {
        if (errno == ENOENT)
            rc = serr_set(err, SERR_INVALID,
                          "no client certificate in %s: run `shoal swarm admin-cert` on a "
                          "manager and copy it here",
                          dir);
        else
            rc = serr_errno(err, "cannot read %s", path);
    }
    free(path);
    return rc;
}

/* The server verified against the swarm CA only: shoal node certificates name
 * node ids, not host names, so there is no host check (tls/tls_ctx.h). */
static SSL_CTX *tls_client_ctx(const char *dir, struct serr *err)
{
    static const char *const files[] = {HTTP_TLS_CA_FILE, HTTP_TLS_CERT_FILE, HTTP_TLS_KEY_FILE};
    for (size_t i = 0; i < 3; i++)
        if (check_readable(dir, files[i], err) < 0)
            return NULL;
    char *ca = xasprintf("%s/" HTTP_TLS_CA_FILE, dir);
    char *cert = xasprintf("%s/" HTTP_TLS_CERT_FILE, dir);
    char *key = xasprintf("%s/" HTTP_TLS_KEY_FILE, dir);
    SSL_CTX *ctx = tls_ctx_new_client_files(ca, cert, key, err);
    free(ca);
    free(cert);
    free(key);
    return ctx;
}

static int handshake_error(struct http_client *c, int ret, struct serr *err)
{
    long verify = SSL_get_verify_result(c->ssl);
    int kind = SSL_get_error(c->ssl, ret);
    if (verify != X509_V_OK) {
        ERR_clear_error();
        return serr_set(err, SERR_UNAVAILABLE,
                        "TLS handshake with %s failed: the daemon's certificate does not verify "
                        "against %s/" HTTP_TLS_CA_FILE " (%s): is that the CA of this swarm?",
                        c->host, c->tls_dir, X509_verify_cert_error_string(verify));
    }
    if (kind == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)
        return serr_set(err, SERR_UNAVAILABLE,
                        "TLS handshake with %s failed: %s (is it a shoal cluster port?)", c->host,
                        errno != 0 ? strerror(errno) : "the connection closed");
    return serr_set(err, SERR_UNAVAILABLE, "TLS handshake with %s failed: %s", c->host,
                    tls_last_reason());
}

/* Bounds a blocking socket's waits (0: no bound). */
static void set_io_timeout(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int tls_handshake(struct http_client *c, struct serr *err)
{
    BIO *bio = sock_bio_new(c);
    c->ssl = SSL_new(c->tls);
    if (bio == NULL || c->ssl == NULL) {
        BIO_free(bio);
        return serr_set(err, SERR_INTERNAL, "TLS setup: %s", tls_last_reason());
    }
    SSL_set_bio(c->ssl, bio, bio);
    c->peer_eof = false;
    ERR_clear_error();
    errno = 0;
    set_io_timeout(c->fd, CONNECT_TIMEOUT_MS);
    int ret = SSL_connect(c->ssl);
    set_io_timeout(c->fd, 0);
    return ret == 1 ? 0 : handshake_error(c, ret, err);
}

/* ---- connections ---- */

/* A nonblocking connect bounded by CONNECT_TIMEOUT_MS; the socket is made
 * blocking again. -1 with errno set on failure. */
static int connect_bounded(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0)
        return -1;
    int error = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        error = errno;
        if (error == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n;
            do
                n = poll(&p, 1, CONNECT_TIMEOUT_MS);
            while (n < 0 && errno == EINTR);
            socklen_t len = sizeof(error);
            if (n <= 0)
                error = n == 0 ? ETIMEDOUT : errno;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                error = errno;
        }
    }
    if (error == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        error = errno;
    if (error != 0) {
        close(fd);
        errno = error;
        return -1;
    }
    /* The head and the body go in separate writes: no Nagle delay between. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int tcp_connect(struct http_client *c, struct serr *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(c->node, c->port, &hints, &res);
    if (gai != 0)
        return serr_set(err, SERR_UNAVAILABLE, "cannot resolve %s: %s", c->node, gai_strerror(gai));
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        if ((fd = connect_bounded(ai)) < 0)
            saved = errno;
    freeaddrinfo(res);
    if (fd < 0)
        return serr_set(err, SERR_UNAVAILABLE,
                        "Cannot connect to the shoal daemon at %s (%s). Is the daemon running?",
                        c->host, strerror(saved));
    c->fd = fd;
    return 0;
}

static int unix_connect(struct http_client *c, struct serr *err)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return serr_errno(err, "socket");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", c->path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int saved = errno;
        close(fd);
        return serr_set(err, SERR_UNAVAILABLE,
                        "Cannot connect to the shoal daemon at %s (%s). Is the daemon running?",
                        c->host, strerror(saved));
    }
    c->fd = fd;
    return 0;
}

static void client_disconnect(struct http_client *c)
{
    if (c->ssl != NULL) {
        /* close_notify only: nothing is read after it, so this does not block. */
        if (!c->peer_eof)
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl); /* frees the BIO too */
        c->ssl = NULL;
        ERR_clear_error();
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int client_connect(struct http_client *c, struct serr *err)
{
    if (c->path != NULL)
        return unix_connect(c, err);
    if (tcp_connect(c, err) < 0)
        return -1;
    if (tls_handshake(c, err) < 0) {
        client_disconnect(c);
        return -1;
    }
    return 0;
}

/* ---- the bytes ---- */

/* Sends everything; -1 with errno set on failure. */
static int conn_send(struct http_client *c, const char *data, size_t len)
{
    while (len > 0) {
        if (c->ssl != NULL) {
            size_t n = 0;
            ERR_clear_error();
            errno = 0;
            if (SSL_write_ex(c->ssl, data, len, &n) != 1) {
                if (errno == 0)
                    errno = EPROTO;
                return -1;
            }
            data += n;
            len -= n;
            continue;
        }
        /* MSG_NOSIGNAL: a daemon that hangs up must give an error, not SIGPIPE. */
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static ssize_t tls_recv(struct http_client *c, char *buf, size_t len, struct serr *err)
{
    size_t n = 0;
    ERR_clear_error();
    errno = 0;
    int ret = SSL_read_ex(c->ssl, buf, len, &n);
    if (ret == 1)
        return (ssize_t)n;
    int kind = SSL_get_error(c->ssl, ret);
    /* A peer that closes without close_notify is an EOF too: HTTP framing
     * tells a complete answer from a cut one. */
    if (kind == SSL_ERROR_ZERO_RETURN || (kind == SSL_ERROR_SYSCALL && errno == 0) ||
        (kind == SSL_ERROR_SSL &&
         ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
        ERR_clear_error();
        return 0;
    }
    if (kind == SSL_ERROR_SYSCALL)
        return serr_errno(err, "read the response from %s", c->host);
    /* TLS 1.3 clients learn that their certificate was refused only now. */
    if (last_error_is_alert())
        return serr_set(err, SERR_UNAVAILABLE,
                        "%s refused the TLS connection (%s): is the client certificate in %s "
                        "from this swarm?",
                        c->host, tls_last_reason(), c->tls_dir);
    return serr_set(err, SERR_UNAVAILABLE, "TLS error from %s: %s", c->host, tls_last_reason());
}

/* Bytes read, 0 at EOF, -1 with err filled. */
static ssize_t conn_recv(struct http_client *c, char *buf, size_t len, struct serr *err)
{
    if (c->ssl != NULL)
        return tls_recv(c, buf, len, err);
    ssize_t n;
    do
        n = recv(c->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return serr_errno(err, "read the response from %s", c->host);
    return n;
}

/* ---- opening ---- */

/* "HOST:PORT", "HOST", "[V6]:PORT" -> node and port for getaddrinfo. */
static int parse_tcp_host(struct http_client *c, const char *addr, struct serr *err)
{
    const char *host_end, *rest;
    const char *node = addr;
    if (addr[0] == '[') {
        node = addr + 1;
        host_end = strchr(node, ']');
        rest = host_end ? host_end + 1 : NULL;
    } else {
        host_end = strchr(addr, ':');
        if (host_end == NULL)
            host_end = addr + strlen(addr);
        rest = host_end;
    }
    if (host_end == NULL || host_end == node || (rest[0] != '\0' && rest[0] != ':') ||
        (rest[0] == ':' && (rest[1] == '\0' || strspn(rest + 1, "0123456789") != strlen(rest + 1))))
        return serr_set(err, SERR_INVALID, "invalid host %s (use tcp://HOST:PORT)", c->host);
    c->node = xasprintf("%.*s", (int)(host_end - node), node);
    c->port = xstrdup(rest[0] == ':' ? rest + 1 : DEFAULT_TCP_PORT);
    return 0;
}

static int setup_tcp(struct http_client *c, const char *addr, const char *tls_dir,
                     struct serr *err)
{
    if (parse_tcp_host(c, addr, err) < 0)
        return -1;
    c->tls_dir = http_client_tls_dir(tls_dir);
    c->tls = tls_client_ctx(c->tls_dir, err);
    return c->tls != NULL ? 0 : -1;
}

static int setup_unix(struct http_client *c, const char *host, struct serr *err)
{
    const char *path = host;
    if (strncmp(host, "unix://", 7) == 0)
        path = host + 7;
    else if (strstr(host, "://") != NULL)
        return serr_set(err, SERR_INVALID,
                        "unsupported host %s (use unix:///path/to/socket or tcp://HOST:PORT)",
                        host);
    if (path[0] == '\0' || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return serr_set(err, SERR_INVALID, "invalid socket path in host %s", host);
    c->path = xstrdup(path);
    return 0;
}

struct http_client *http_client_open_tls(const char *host, const char *tls_dir,
                                         struct serr *err)
{
    struct http_client *c = xcalloc(1, sizeof(*c));
    c->host = xstrdup(host);
    c->fd = -1;
    int rc = strncmp(host, "tcp://", 6) == 0 ? setup_tcp(c, host + 6, tls_dir, err)
                                              : setup_unix(c, host, err);
    if (rc < 0 || client_connect(c, err) < 0) {
        http_client_close(c);
        return NULL;
    }
    return c;
}

struct http_client *http_client_open(const char *host, struct serr *err)
{
    return http_client_open_tls(host, NULL, err);
}

void http_client_close(struct http_client *c)
{
    if (c == NULL)
        return;
    client_disconnect(c);
    if (c->tls != NULL) /* not SSL_CTX_free(NULL): a unix socket's client never loads libssl */
        SSL_CTX_free(c->tls);
    free(c->tls_dir);
    free(c->node);
    free(c->port);
    free(c->path);
    free(c->host);
    free(c);
}

static char *request_head(const char *method, const char *path, const char *content_type,
                          bool has_body, uint64_t body_len)
{
    char length[64] = "";
    if (has_body)
        snprintf(length, sizeof(length), "Content-Length: %llu\r\n", (unsigned long long)body_len);
    char type[256] = "";
    if (has_body && content_type != NULL)
        snprintf(type, sizeof(type), "Content-Type: %s\r\n", content_type);
    return xasprintf("%s %s HTTP/1.1\r\nHost: shoal\r\nUser-Agent: shoal-cli\r\n%s%s\r\n", method,
                     path, type, length);
}

/* Sends the head; on a reused connection the daemon may have closed it
 * meanwhile, so a failure there reconnects once. */
static int send_head(struct http_client *c, const char *head, struct serr *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = c->fd < 0;
        if (fresh && client_connect(c, err) < 0)
            return -1;
        if (conn_send(c, head, strlen(head)) == 0)
            return 0;
        int saved = errno;
        bool tls = c->ssl != NULL;
        client_disconnect(c);
        if (fresh && tls && (saved == ECONNRESET || saved == EPIPE))
            /* TLS 1.3: a server that refuses our certificate resets the
             * connection after the handshake, often before its alert is read */
            return serr_set(err, SERR_UNAVAILABLE,
                            "%s refused the TLS connection (%s): is the client certificate in %s "
                            "from this swarm?",
                            c->host, strerror(saved), c->tls_dir);
        if (fresh) {
            errno = saved;
            return serr_errno(err, "send request to %s", c->host);
        }
    }
    return serr_set(err, SERR_UNAVAILABLE, "cannot send a request to %s", c->host);
}

/* ---- reading the response ---- */

struct reader {
    int status;
    int *status_out; /* set when the headers arrive, for on_data to see */
    bool done;
    bool stopped; /* on_data asked to stop */
    int (*on_data)(const char *data, size_t len, void *arg);
    void *arg;
};

static int on_resp_headers(http_parser *p)
{
    struct reader *r = p->data;
    r->status = (int)p->status_code;
    if (r->status_out != NULL)
        *r->status_out = r->status;
    return 0;
}

static int on_resp_body(http_parser *p, const char *at, size_t len)
{
    struct reader *r = p->data;
    if (r->on_data(at, len, r->arg) != 0) {
        r->stopped = true;
        return -1;
    }
    return 0;
}

static int on_resp_complete(http_parser *p)
{
    struct reader *r = p->data;
    r->done = true;
    http_parser_pause(p, 1);
    return 0;
}

static int read_response(struct http_client *c, struct reader *r, struct serr *err)
{
    http_parser_settings settings;
    http_parser_settings_init(&settings);
    settings.on_headers_complete = on_resp_headers;
    settings.on_body = on_resp_body;
    settings.on_message_complete = on_resp_complete;
    http_parser parser;
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = r;
    char *buf = xmalloc(RECV_CHUNK);
    int rc = 0;
    while (!r->done && !r->stopped) {
        ssize_t n = conn_recv(c, buf, RECV_CHUNK, err);
        if (n < 0) {
            rc = -1;
            break;
        }
        /* A zero-length execute tells the parser about EOF (bodies that
         * end with the connection). */
        http_parser_execute(&parser, &settings, buf, (size_t)n);
        enum http_errno e = HTTP_PARSER_ERRNO(&parser);
        if (r->done || r->stopped)
            break;
        if (e != HPE_OK) {
            rc = serr_set(err, SERR_INTERNAL, "malformed response from %s: %s", c->host,
                          http_errno_description(e));
            break;
        }
        if (n == 0) {
            rc = serr_set(err, SERR_UNAVAILABLE, "the daemon closed the connection early");
            break;
        }
    }
    free(buf);
    /* A 100 Continue is never asked for, so the first response is ours. */
    if (rc < 0 || r->stopped || !http_should_keep_alive(&parser))
        client_disconnect(c);
    return rc;
}

/* ---- requests ---- */

struct collect {
    char *data;
    size_t len, cap;
};

static int collect_body(const char *data, size_t len, void *arg)
{
    struct collect *col = arg;
    buf_append(&col->data, &col->len, &col->cap, data, len);
    return 0;
}

static int finish_collect(struct reader *r, struct collect *col, struct http_response *resp)
{
    resp->status = r->status;
    resp->body = col->data ? col->data : xstrdup("");
    resp->body_len = col->len;
    return 0;
}

int http_request_stream(struct http_client *c, const char *method, const char *path,
                        const char *content_type, const char *body, size_t body_len,
                        int *status, int (*on_data)(const char *data, size_t len, void *arg),
                        void *arg, struct serr *err)
{
    bool has_body = body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
    char *head = request_head(method, path, content_type, has_body, body_len);
    int rc = send_head(c, head, err);
    free(head);
    if (rc < 0)
        return -1;
    /* If the body cannot be sent (the daemon refused it early, 413), the
     * daemon's answer is still worth reading. */
    if (body_len > 0)
        conn_send(c, body, body_len);
    struct reader r = {.on_data = on_data, .arg = arg, .status_out = status};
    rc = read_response(c, &r, err);
    if (status != NULL)
        *status = r.status;
    return rc;
}

int http_request(struct http_client *c, const char *method, const char *path,
                 const char *content_type, const char *body, size_t body_len,
                 struct http_response *resp, struct serr *err)
{
    struct collect col = {0};
    int status = 0;
    if (http_request_stream(c, method, path, content_type, body, body_len, &status, collect_body,
                            &col, err) < 0) {
        free(col.data);
        return -1;
    }
    struct reader r = {.status = status};
    return finish_collect(&r, &col, resp);
}

static int send_file_body(struct http_client *c, int fd)
{
    char *buf = xmalloc(RECV_CHUNK);
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, RECV_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -1 : 0;
            break;
        }
        if (conn_send(c, buf, (size_t)n) < 0)
            break; /* the answer may say why */
    }
    free(buf);
    return rc;
}

int http_request_file(struct http_client *c, const char *method, const char *path,
                      const char *file_path, struct http_response *resp, struct serr *err)
{
    int fd = open(file_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return serr_errno(err, "open %s", file_path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return serr_set(err, SERR_INVALID, "%s is not a regular file", file_path);
    }
    char *head = request_head(method, path, "application/x-tar", true, (uint64_t)st.st_size);
    int rc = send_head(c, head, err);
    free(head);
    if (rc == 0 && send_file_body(c, fd) < 0)
        rc = serr_errno(err, "read %s", file_path);
    close(fd);
    if (rc < 0) {
        client_disconnect(c);
        return -1;
    }
    struct collect col = {0};
    struct reader r = {.on_data = collect_body, .arg = &col};
    if (read_response(c, &r, err) < 0) {
        free(col.data);
        return -1;
    }
    return finish_collect(&r, &col, resp);
}
