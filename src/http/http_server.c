/* HTTP/1.1 server on a libuv Unix-socket listener, framed by http-parser.
 *
 * Life of a connection: bytes read are appended to conn->in and fed to the
 * parser by conn_process(). The parser pauses itself at the end of each
 * request so that the router is called outside of http_parser_execute() and
 * pipelined bytes wait in conn->in until the response ends. While a request is
 * with the router the connection keeps reading, so a client that goes away is
 * noticed (on_abort) even when nothing is being written to it.
 *
 * Ownership: the server owns connections, a connection owns its current
 * request. A request handed to the router stays valid until the router ends
 * the response or on_abort returns, even if the socket closed meanwhile: the
 * connection struct then outlives its handle (conn_release).
 *
 * Limits (http_server_set_limits): a remote connection carries a deadline,
 * moved on by each step of a request (its first byte, the end of its headers,
 * each piece of body, the end of its answer) and cleared while the router has
 * the request; a sweep timer closes those past it. The TCP listener counts
 * its connections and closes at once one over a cap. */
#include "http/http.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

#define MAX_HEADERS 100
/* Pipelined input waiting for the current response; beyond it we stop reading. */
#define MAX_PENDING_INPUT (64 * 1024)
/* A streaming reader this far behind is treated as gone (memory guard). */
#define MAX_WRITE_QUEUE (64 * 1024 * 1024)
#define READ_CHUNK (64 * 1024)
/* How often deadlines are checked, at most (a timeout may run over by this). */
#define SWEEP_MAX_MS 1000
#define REFUSED_LOG_INTERVAL_MS 10000

struct http_server {
    uv_loop_t *loop;
    union { /* a Unix socket (the API) or TCP (the dashboard) */
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } listener;
    bool tcp; /* TCP peers are remote, without a certificate: peer_role "" */
    char *spool_dir;
    char **spool_prefixes; /* NULL-terminated copies */
    uint64_t spool_max;    /* bytes a spooled body may have; 0: no cap */
    http_router_cb router;
    void *data;
    struct http_conn *conns;
    int nconns; /* in `conns` */
    int live; /* listener + connection structs (+ sweep timer) not yet freed */
    bool stopping;
    struct http_limits limits;
    http_gate_cb gate;
    uv_timer_t sweep; /* closes remote connections past their deadline */
    bool sweeping;
    struct log_limit refused_log;
    const char *(*headers)(void *data); /* http_server_set_headers */
};

struct http_conn {
    uv_pipe_t pipe;
    struct http_server *srv;
    struct http_conn *prev, *next;
    http_parser parser;

    /* Input not yet fed to the parser: in[in_off .. in_len). */
    char *in;
    size_t in_off, in_len, in_cap;
    bool processing; /* inside conn_process(): no re-entry */
    bool reading_paused;

    /* Current request, from on_message_begin until the response ends. */
    struct http_req *req;
    char *url;
    size_t url_len;
    size_t body_cap;
    int spool_fd;
    uint64_t spooled; /* bytes written to the spool file */
    int nheaders;
    bool header_was_value;
    char hdr_name[16]; /* only short names matter (Expect) */
    size_t hdr_name_len;
    bool hdr_is_expect;
    bool hdr_is_authorization;
    bool hdr_upgrade_tcp; /* Upgrade: tcp */

    bool dispatched;   /* the router has the request */
    bool streaming;    /* chunked response started */
    bool keep_alive;
    int rejected;      /* error status already sent for this request */
    bool discard_body; /* after an early 413: swallow the body, then close */
    bool peer_gone;    /* client half-closed: answer the request, then close */
    bool in_abort;     /* inside on_abort: the abort path frees the request */
    bool upgraded;     /* http_upgrade: a raw two-way stream from then on */

    int writes_in_flight;
    bool close_after_write;
    bool closing; /* uv_close() called */
    bool closed;  /* close callback ran */

    /* Connections adopted from the cluster port: the TLS peer's identity. */
    bool remote;
    char peer_id[64];
    char peer_role[16];
    char peer_ip[INET6_ADDRSTRLEN]; /* TCP listener's connections: for the per-address cap */

    /* Remote connections: closed at this uv_now() unless the router has the
     * request (0: no deadline). write_queued notices a reader's progress. */
    uint64_t deadline;
    size_t write_queued;
};

struct write_req {
    uv_write_t w;
    struct http_conn *conn;
    char data[];
};

static http_parser_settings parser_settings;

/* Remote connections must make progress within `ms` from now. */
static void set_deadline(struct http_conn *conn, unsigned ms)
{
    conn->deadline = conn->remote && ms > 0 ? uv_now(conn->srv->loop) + ms : 0;
}

static void conn_process(struct http_conn *conn);
static void conn_close(struct http_conn *conn);

/* ---- helpers shared with query parsing ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out[outlen]. Rejects bad escapes, %00 (it
 * would silently truncate a C string) and output that does not fit. */
static int percent_decode(const char *s, size_t n, bool plus_is_space, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = c;
    }
    if (outlen == 0)
        return -1;
    out[o] = '\0';
    return 0;
}

bool http_query_get(const struct http_req *req, const char *key, char *out, size_t outlen)
{
    const char *p = req->query;
    char name[256];
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq ? (size_t)(eq - p) : len;
        if (percent_decode(p, name_len, true, name, sizeof(name)) == 0 && strcmp(name, key) == 0) {
            if (eq == NULL)
                return percent_decode("", 0, true, out, outlen) == 0;
            return percent_decode(eq + 1, len - name_len - 1, true, out, outlen) == 0;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

static const char *status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : "Error";
    }
}

static char *error_body(const char *message)
{
    json_t *obj = json_pack("{s:s}", "message", message);
    if (obj == NULL) { /* not UTF-8: bytes of the request's path in the message */
        char *ascii = xstrdup(message);
        for (char *p = ascii; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        obj = json_pack("{s:s}", "message", ascii);
        free(ascii);
    }
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return text;
}

/* ---- connection memory and writes ---- */

static void server_release(struct http_server *srv)
{
    if (--srv->live > 0)
        return;
    for (char **p = srv->spool_prefixes; *p; p++)
        free(*p);
    free(srv->spool_prefixes);
    free(srv->spool_dir);
    free(srv);
}

static void drop_spool_file(struct http_req *req)
{
    if (req->body_file != NULL) {
        unlink(req->body_file);
        free(req->body_file);
        req->body_file = NULL;
    }
}

static void free_request(struct http_conn *conn)
{
    struct http_req *req = conn->req;
    if (req == NULL)
        return;
    if (conn->spool_fd >= 0)
        close(conn->spool_fd);
    conn->spool_fd = -1;
    drop_spool_file(req);
    free(req->path);
    free(req->query);
    free(req->body);
    free(req);
    conn->req = NULL;
    free(conn->url);
    conn->url = NULL;
    conn->url_len = 0;
}

/* Frees the struct once both the handle is closed and no request is out. */
static void conn_release(struct http_conn *conn)
{
    if (!conn->closed || conn->req != NULL)
        return;
    struct http_server *srv = conn->srv;
    free(conn->in);
    free(conn);
    server_release(srv);
}

/* The router is told about a lost client here, in the close callback, so
 * on_abort never runs inside one of the router's own calls (a write that
 * fails, a stream dropped for reading too slowly). A request without
 * on_abort stays valid; its answer is dropped when it comes. */
static void on_conn_closed(uv_handle_t *h)
{
    struct http_conn *conn = h->data;
    struct http_server *srv = conn->srv;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        srv->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    srv->nconns--;
    conn->closed = true;
    if (conn->dispatched && conn->req->on_abort != NULL) {
        void (*on_abort)(struct http_req *) = conn->req->on_abort;
        conn->req->on_abort = NULL;
        conn->in_abort = true;
        on_abort(conn->req);
        conn->in_abort = false;
        conn->dispatched = false;
    }
    if (!conn->dispatched)
        free_request(conn);
    conn_release(conn);
}

static void conn_close(struct http_conn *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    uv_close((uv_handle_t *)&conn->pipe, on_conn_closed);
}

/* Closes once queued writes are out (error answers, Connection: close). */
static void close_when_written(struct http_conn *conn)
{
    conn->close_after_write = true;
    if (conn->writes_in_flight == 0 && !conn->dispatched)
        conn_close(conn);
}

static void on_write_done(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    struct http_conn *conn = wr->conn;
    free(wr);
    conn->writes_in_flight--;
    if (status < 0)
        conn_close(conn);
    else if (conn->close_after_write && conn->writes_in_flight == 0 && !conn->dispatched)
        conn_close(conn);
}

/* Queues a copy of head+body (either may be empty). */
static void conn_write(struct http_conn *conn, const char *head, size_t head_len, const char *body,
                       size_t body_len, const char *tail, size_t tail_len)
{
    if (conn->closing || (conn->close_after_write && !conn->dispatched))
        return;
    struct write_req *wr = xmalloc(sizeof(*wr) + head_len + body_len + tail_len);
    wr->conn = conn;
    memcpy(wr->data, head, head_len);
    if (body_len)
        memcpy(wr->data + head_len, body, body_len);
    if (tail_len)
        memcpy(wr->data + head_len + body_len, tail, tail_len);
    uv_buf_t buf = uv_buf_init(wr->data, (unsigned)(head_len + body_len + tail_len));
    int rc = uv_write(&wr->w, (uv_stream_t *)&conn->pipe, &buf, 1, on_write_done);
    if (rc < 0) {
        /* Not closed here: we may be inside a parser callback. */
        free(wr);
        conn->close_after_write = true;
        conn->keep_alive = false;
        return;
    }
    conn->writes_in_flight++;
}

static void write_head_with(struct http_conn *conn, int status, const char *content_type,
                            const char *extra, const char *framing, const char *body,
                            size_t body_len)
{
    char head[1024];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s%s\r\n",
                     status, status_reason(status),
                     content_type ? content_type : "application/json", extra ? extra : "",
                     framing, conn->keep_alive ? "" : "Connection: close\r\n");
    if (n >= (int)sizeof(head))
        n = (int)sizeof(head) - 1; /* callers pass short fixed header lines */
    conn_write(conn, head, (size_t)n, body, body_len, NULL, 0);
}

static void write_head(struct http_conn *conn, int status, const char *content_type,
                       const char *framing, const char *body, size_t body_len)
{
    write_head_with(conn, status, content_type, NULL, framing, body, body_len);
}

/* Answers a request that never reaches the router, then closes. */
/* `headers`: extra header lines ("Name: value\r\n"), or "". */
static void reject_with(struct http_conn *conn, int status, const char *headers,
                        const char *message)
{
    if (conn->rejected)
        return;
    conn->rejected = status;
    conn->keep_alive = false;
    char *body = error_body(message);
    size_t len = strlen(body);
    char *framing = xasprintf("%sContent-Length: %zu\r\n", headers, len);
    write_head(conn, status, "application/json", framing, body, len);
    free(framing);
    free(body);
}

static void reject(struct http_conn *conn, int status, const char *message)
{
    reject_with(conn, status, "", message);
}

/* ---- parser callbacks: build conn->req ---- */

static struct http_conn *parser_conn(http_parser *p)
{
    return p->data;
}

static int on_message_begin(http_parser *p)
{
    struct http_conn *conn = parser_conn(p);
    if (conn->closing || conn->close_after_write)
        return -1;
    free_request(conn);
    conn->req = xcalloc(1, sizeof(*conn->req));
    conn->req->conn = conn;
    conn->req->remote = conn->remote;
    conn->req->peer_id = conn->peer_id;
    conn->req->peer_role = conn->peer_role;
    conn->body_cap = 0;
    conn->nheaders = 0;
    conn->header_was_value = false;
    conn->hdr_name_len = 0;
    conn->hdr_is_expect = false;
    conn->hdr_is_authorization = false;
    conn->hdr_upgrade_tcp = false;
    conn->rejected = 0;
    conn->discard_body = false;
    conn->spooled = 0;
    set_deadline(conn, conn->srv->limits.request_timeout_ms); /* for the headers */
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *conn = parser_conn(p);
    if (conn->url_len + len > HTTP_MAX_URL) {
        reject(conn, 414, "request URL is too long");
        return -1;
    }
    conn->url = xrealloc(conn->url, conn->url_len + len + 1);
    memcpy(conn->url + conn->url_len, at, len);
    conn->url_len += len;
    conn->url[conn->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *conn = parser_conn(p);
    if (conn->nheaders == 0 || conn->header_was_value) {
        if (++conn->nheaders > MAX_HEADERS) {
            reject(conn, 431, "too many request headers");
            return -1;
        }
        conn->hdr_name_len = 0;
        conn->header_was_value = false;
    }
    size_t room = sizeof(conn->hdr_name) - 1 - conn->hdr_name_len;
    size_t n = len < room ? len : room;
    memcpy(conn->hdr_name + conn->hdr_name_len, at, n);
    conn->hdr_name_len += n;
    conn->hdr_name[conn->hdr_name_len] = '\0';
    return 0;
}

static void append_bounded(char *dst, size_t size, const char *src, size_t len)
{
    size_t used = strlen(dst), room = size - 1 - used;
    memcpy(dst + used, src, len < room ? len : room);
    dst[used + (len < room ? len : room)] = '\0';
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *conn = parser_conn(p);
    if (!conn->header_was_value && strcasecmp(conn->hdr_name, "Expect") == 0)
        conn->hdr_is_expect = len >= 3 && strncmp(at, "100", 3) == 0;
    if (!conn->header_was_value)
        conn->hdr_is_authorization = strcasecmp(conn->hdr_name, "Authorization") == 0;
    if (!conn->header_was_value && strcasecmp(conn->hdr_name, "Upgrade") == 0)
        conn->hdr_upgrade_tcp = len == 3 && strncasecmp(at, "tcp", 3) == 0;
    if (conn->hdr_is_authorization) /* the value may come in pieces */
        append_bounded(conn->req->authorization, sizeof(conn->req->authorization), at, len);
    conn->header_was_value = true;
    return 0;
}

static bool is_spooled(struct http_server *srv, const char *path)
{
    for (char **prefix = srv->spool_prefixes; *prefix; prefix++)
        if (strncmp(path, *prefix, strlen(*prefix)) == 0)
            return true;
    return false;
}

/* Splits conn->url into the decoded path and the raw query. */
static int split_url(struct http_conn *conn)
{
    struct http_req *req = conn->req;
    const char *url = conn->url ? conn->url : "";
    size_t path_len = strcspn(url, "?#");
    if (url[0] != '/')
        return -1;
    req->path = xmalloc(path_len + 1);
    if (percent_decode(url, path_len, false, req->path, path_len + 1) < 0)
        return -1;
    const char *q = url[path_len] == '?' ? url + path_len + 1 : "";
    req->query = xmalloc(strlen(q) + 1);
    size_t qlen = strcspn(q, "#");
    memcpy(req->query, q, qlen);
    req->query[qlen] = '\0';
    return 0;
}

static int open_spool_file(struct http_conn *conn)
{
    char *path = xasprintf("%s/upload-XXXXXX", conn->srv->spool_dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        log_error("http: cannot create a spool file in %s: %s", conn->srv->spool_dir,
                  strerror(errno));
        free(path);
        return -1;
    }
    conn->spool_fd = fd;
    conn->req->body_file = path;
    return 0;
}

/* "4 GiB": the largest unit that divides n exactly. */
static void format_size(uint64_t n, char *out, size_t outlen)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (u + 1 < sizeof(units) / sizeof(units[0]) && n >= 1024 && n % 1024 == 0) {
        n /= 1024;
        u++;
    }
    snprintf(out, outlen, "%llu %s", (unsigned long long)n, units[u]);
}

/* Peers the cluster port adopted without a certificate may only join: small
 * bodies, kept in memory, whatever the path (an upload would otherwise be
 * spooled to disk before the router refuses it). Workers do not upload. */
static bool anonymous(const struct http_conn *conn)
{
    return conn->remote && !conn->srv->tcp && conn->peer_role[0] == '\0';
}

static bool may_spool(const struct http_conn *conn)
{
    return !conn->remote || strcmp(conn->peer_role, "manager") == 0 ||
           strcmp(conn->peer_role, "admin") == 0;
}

static size_t body_limit(const struct http_conn *conn)
{
    return anonymous(conn) ? HTTP_MAX_ANON_BODY : HTTP_MAX_BODY;
}

static void reject_too_large(struct http_conn *conn)
{
    char limit[32], msg[80];
    format_size(body_limit(conn), limit, sizeof(limit));
    snprintf(msg, sizeof(msg), "request body is too large (limit %s)", limit);
    reject(conn, 413, msg);
    conn->discard_body = true;
}

/* 413 for a spooled body over the server's cap; the rest of the body is
 * read and dropped, and nothing of it stays on disk. */
static void reject_too_large_upload(struct http_conn *conn)
{
    if (conn->spool_fd >= 0) {
        close(conn->spool_fd);
        conn->spool_fd = -1;
    }
    drop_spool_file(conn->req);
    char limit[32], msg[160];
    format_size(conn->srv->spool_max, limit, sizeof(limit));
    snprintf(msg, sizeof(msg), "upload is too large (limit %s: shoal daemon --max-upload)", limit);
    reject(conn, 413, msg);
    conn->discard_body = true;
}

static int on_headers_complete(http_parser *p)
{
    struct http_conn *conn = parser_conn(p);
    struct http_req *req = conn->req;
    set_deadline(conn, conn->srv->limits.request_timeout_ms); /* for the body's progress */
    req->method = http_method_str((enum http_method)p->method);
    if (split_url(conn) < 0) {
        reject(conn, 400, "malformed request path");
        return -1;
    }
    bool has_body = (p->flags & F_CHUNKED) ||
                    ((p->flags & F_CONTENTLENGTH) && p->content_length > 0);
    const char *challenge = has_body && conn->srv->gate ? conn->srv->gate(conn->srv, req) : NULL;
    if (challenge != NULL) {
        reject_with(conn, 401, challenge,
                    "access denied: a valid credential is required to send a body");
        conn->discard_body = true;
        return 0;
    }
    bool spool = is_spooled(conn->srv, req->path) && may_spool(conn);
    if (spool && conn->srv->spool_max > 0 && (p->flags & F_CONTENTLENGTH) &&
        p->content_length > conn->srv->spool_max) {
        reject_too_large_upload(conn);
        return 0;
    } else if (spool) {
        if (open_spool_file(conn) < 0) {
            reject(conn, 500, "cannot store the request body");
            return -1;
        }
    } else if ((p->flags & F_CONTENTLENGTH) && p->content_length > body_limit(conn)) {
        /* Answer now; keep reading the body to let the client finish sending. */
        reject_too_large(conn);
        return 0;
    }
    if (conn->hdr_is_expect) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_write(conn, cont, sizeof(cont) - 1, NULL, 0, NULL, 0);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *conn = parser_conn(p);
    struct http_req *req = conn->req;
    set_deadline(conn, conn->srv->limits.request_timeout_ms);
    if (conn->discard_body)
        return 0;
    if (conn->spool_fd >= 0 && conn->srv->spool_max > 0 &&
        conn->spooled + len > conn->srv->spool_max) {
        reject_too_large_upload(conn);
        return 0;
    }
    if (conn->spool_fd >= 0) {
        conn->spooled += len;
        /* Blocking write: spool files live on local disk, and a slow disk
         * only delays this one upload's loop iteration. */
        if (write_all(conn->spool_fd, at, len) < 0) {
            log_error("http: writing %s: %s", req->body_file, strerror(errno));
            reject(conn, 500, "cannot store the request body");
            return -1;
        }
        return 0;
    }
    if (req->body_len + len > body_limit(conn)) {
        reject_too_large(conn);
        return 0;
    }
    buf_append(&req->body, &req->body_len, &conn->body_cap, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_conn *conn = parser_conn(p);
    if (conn->spool_fd >= 0) {
        close(conn->spool_fd);
        conn->spool_fd = -1;
    }
    if (p->upgrade && !conn->hdr_upgrade_tcp)
        reject(conn, 400, "protocol upgrades are not supported (but Upgrade: tcp)");
    if (!conn->rejected)
        conn->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    conn->req->upgrade_tcp = p->upgrade && conn->hdr_upgrade_tcp;
    /* Stop here: the router runs outside http_parser_execute(). */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- feeding input ---- */

static void dispatch(struct http_conn *conn)
{
    conn->deadline = 0; /* the router's: a write waiting for Raft, a stream */
    conn->dispatched = true;
    conn->streaming = false;
    conn->srv->router(conn->srv, conn->req);
}

/* Ends the router's request; continues with pipelined input if any. */
static void finish_request(struct http_conn *conn)
{
    if (conn->in_abort)
        return; /* on_conn_closed() frees it after on_abort returns */
    conn->dispatched = false;
    conn->streaming = false;
    free_request(conn);
    if (conn->closing) {
        conn_release(conn);
        return;
    }
    set_deadline(conn, conn->srv->limits.idle_timeout_ms);
    if (!conn->keep_alive || conn->peer_gone || conn->close_after_write) {
        set_deadline(conn, conn->srv->limits.request_timeout_ms); /* to read the answer */
        close_when_written(conn);
        return;
    }
    http_parser_pause(&conn->parser, 0);
    conn_process(conn);
}

static void read_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    buf->base = xmalloc(READ_CHUNK);
    buf->len = READ_CHUNK;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void resume_reading(struct http_conn *conn)
{
    if (conn->reading_paused && !conn->closing && !conn->peer_gone) {
        conn->reading_paused = false;
        uv_read_start((uv_stream_t *)&conn->pipe, read_alloc, on_read);
    }
}

/* Feeds buffered input to the parser until it runs out, a request goes to
 * the router, or the connection is done. */
static void conn_process(struct http_conn *conn)
{
    if (conn->processing)
        return;
    conn->processing = true;
    while (!conn->closing && !conn->dispatched && !conn->close_after_write &&
           conn->in_off < conn->in_len) {
        size_t avail = conn->in_len - conn->in_off;
        size_t n = http_parser_execute(&conn->parser, &parser_settings, conn->in + conn->in_off,
                                       avail);
        conn->in_off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&conn->parser);
        if (e == HPE_PAUSED && !conn->rejected) {
            dispatch(conn);
        } else if (e != HPE_OK || n == 0) {
            if (e != HPE_PAUSED)
                reject(conn, e == HPE_HEADER_OVERFLOW ? 431 : 400,
                       e == HPE_OK ? "malformed request" : http_errno_description(e));
            close_when_written(conn);
        }
    }
    if (conn->in_off == conn->in_len)
        conn->in_off = conn->in_len = 0;
    conn->processing = false;
    if (conn->close_after_write && !conn->dispatched && conn->writes_in_flight == 0)
        conn_close(conn);
    if (!conn->dispatched)
        resume_reading(conn);
}

static void append_input(struct http_conn *conn, const char *data, size_t len)
{
    if (conn->in_len + len > conn->in_cap && conn->in_off > 0) {
        /* Reuse the consumed front before growing. */
        memmove(conn->in, conn->in + conn->in_off, conn->in_len - conn->in_off);
        conn->in_len -= conn->in_off;
        conn->in_off = 0;
    }
    if (conn->in_len + len > conn->in_cap) {
        conn->in_cap = conn->in_len + len;
        conn->in = xrealloc(conn->in, conn->in_cap);
    }
    memcpy(conn->in + conn->in_len, data, len);
    conn->in_len += len;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct http_conn *conn = stream->data;
    if (nread < 0) {
        free(buf->base);
        uv_read_stop(stream);
        /* A client that half-closes after its request still gets the
         * answer, unless it is a stream that would never end. */
        if (nread == UV_EOF && conn->upgraded) { /* its input ends; the output goes on */
            conn->peer_gone = true;
            if (conn->req && conn->req->on_input)
                conn->req->on_input(conn->req, NULL, 0);
            return;
        }
        if (nread == UV_EOF && conn->dispatched && conn->req->on_abort == NULL) {
            conn->peer_gone = true;
            return;
        }
        conn_close(conn);
        return;
    }
    if (conn->upgraded) { /* no request once its answer ended: the bytes are dropped */
        if (nread > 0 && conn->req && conn->req->on_input)
            conn->req->on_input(conn->req, buf->base, (size_t)nread);
        free(buf->base);
        return;
    }
    if (nread > 0 && !conn->close_after_write)
        append_input(conn, buf->base, (size_t)nread);
    free(buf->base);
    if (conn->dispatched) {
        /* Pipelined input waits; reading on would only grow memory. */
        if (conn->in_len - conn->in_off > MAX_PENDING_INPUT) {
            uv_read_stop(stream);
            conn->reading_paused = true;
        }
        return;
    }
    conn_process(conn);
}

/* ---- listener ---- */

static struct http_conn *conn_new(struct http_server *srv)
{
    struct http_conn *conn = xcalloc(1, sizeof(*conn));
    conn->srv = srv;
    conn->spool_fd = -1;
    uv_pipe_init(srv->loop, &conn->pipe, 0);
    conn->pipe.data = conn;
    http_parser_init(&conn->parser, HTTP_REQUEST);
    conn->parser.data = conn;
    conn->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = conn;
    srv->conns = conn;
    srv->nconns++;
    srv->live++;
    return conn;
}

/* The peer's IP address in text (empty when unknown). */
static void peer_ip(struct http_conn *conn)
{
    uv_os_fd_t fd;
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    conn->peer_ip[0] = '\0';
    if (uv_fileno((uv_handle_t *)&conn->pipe, &fd) < 0 ||
        getpeername(fd, (struct sockaddr *)&sa, &len) < 0)
        return;
    if (sa.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, conn->peer_ip,
                  sizeof(conn->peer_ip));
    else if (sa.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, conn->peer_ip,
                  sizeof(conn->peer_ip));
}

/* Which cap (if any) `conn`, just accepted and counted, goes over. */
static const char *over_cap(struct http_server *srv, struct http_conn *conn)
{
    const struct http_limits *lim = &srv->limits;
    if (lim->max_conns > 0 && srv->nconns > lim->max_conns)
        return "connections";
    if (lim->max_conns_per_addr <= 0)
        return NULL;
    int same = 0;
    for (struct http_conn *c = srv->conns; c != NULL; c = c->next)
        if (strcmp(c->peer_ip, conn->peer_ip) == 0)
            same++;
    return same > lim->max_conns_per_addr ? "connections from one address" : NULL;
}

static void refuse_over_cap(struct http_server *srv, struct http_conn *conn, const char *what)
{
    unsigned long suppressed;
    int cap = strcmp(what, "connections") == 0 ? srv->limits.max_conns
                                               : srv->limits.max_conns_per_addr;
    if (log_limit_allow(&srv->refused_log, uv_now(srv->loop), REFUSED_LOG_INTERVAL_MS,
                        &suppressed))
        log_warn("http: refused a connection from %s: more than %d %s (%lu more refused "
                 "since the last message)", conn->peer_ip[0] ? conn->peer_ip : "?", cap, what,
                 suppressed);
    conn_close(conn);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *srv = listener->data;
    if (status < 0 || srv->stopping)
        return;
    struct http_conn *conn = conn_new(srv);
    conn->remote = srv->tcp;
    /* libuv accepts a TCP connection into a pipe handle too (both are plain
     * stream fds on Unix), so connections keep one handle type. */
    if (uv_accept(listener, (uv_stream_t *)&conn->pipe) < 0) {
        conn_close(conn);
        return;
    }
    if (srv->tcp) {
        peer_ip(conn);
        const char *cap = over_cap(srv, conn);
        if (cap != NULL) {
            refuse_over_cap(srv, conn, cap);
            return;
        }
    }
    set_deadline(conn, srv->limits.request_timeout_ms); /* for the first request */
    if (uv_read_start((uv_stream_t *)&conn->pipe, read_alloc, on_read) < 0)
        conn_close(conn);
}

int http_server_adopt(struct http_server *srv, int fd, const char *initial, size_t initial_len,
                      const char *peer_id, const char *peer_role)
{
    if (srv->stopping)
        return -1;
    struct http_conn *conn = conn_new(srv);
    snprintf(conn->peer_id, sizeof(conn->peer_id), "%s", peer_id ? peer_id : "");
    snprintf(conn->peer_role, sizeof(conn->peer_role), "%s", peer_role ? peer_role : "");
    conn->remote = true;
    set_deadline(conn, srv->limits.request_timeout_ms); /* for the first request */
    if (uv_pipe_open(&conn->pipe, fd) < 0) {
        conn_close(conn);
        return -1;
    }
    if (initial_len > 0)
        append_input(conn, initial, initial_len);
    if (uv_read_start((uv_stream_t *)&conn->pipe, read_alloc, on_read) < 0) {
        conn_close(conn);
        return -1;
    }
    if (initial_len > 0)
        conn_process(conn);
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    server_release(h->data);
}

static void init_parser_settings(void)
{
    http_parser_settings_init(&parser_settings);
    parser_settings.on_message_begin = on_message_begin;
    parser_settings.on_url = on_url;
    parser_settings.on_header_field = on_header_field;
    parser_settings.on_header_value = on_header_value;
    parser_settings.on_headers_complete = on_headers_complete;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;
}

/* Removes a stale socket file, refusing to delete anything else. */
static int remove_old_socket(const char *path, struct serr *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : serr_errno(err, "stat %s", path);
    if (!S_ISSOCK(st.st_mode))
        return serr_set(err, SERR_INVALID, "%s exists and is not a socket", path);
    if (unlink(path) < 0)
        return serr_errno(err, "remove old socket %s", path);
    return 0;
}

static int bind_private(struct http_server *srv, const char *path, struct serr *err)
{
    /* The umask closes the window between bind() and chmod() in which
     * another user could connect. */
    mode_t old_mask = umask(0177);
    int rc = uv_pipe_bind(&srv->listener.pipe, path);
    umask(old_mask);
    if (rc < 0)
        return serr_set(err, SERR_INTERNAL, "listen on %s: %s", path, uv_strerror(rc));
    if (chmod(path, 0600) < 0)
        return serr_errno(err, "chmod %s", path);
    rc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
    if (rc < 0)
        return serr_set(err, SERR_INTERNAL, "listen on %s: %s", path, uv_strerror(rc));
    return 0;
}

static struct http_server *server_new(uv_loop_t *loop, const char *spool_dir,
                                      const char *const *spool_prefixes, http_router_cb router,
                                      void *data)
{
    init_parser_settings();
    struct http_server *srv = xcalloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->spool_dir = xstrdup(spool_dir ? spool_dir : "/tmp");
    size_t n = 0;
    while (spool_prefixes && spool_prefixes[n])
        n++;
    srv->spool_prefixes = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        srv->spool_prefixes[i] = xstrdup(spool_prefixes[i]);
    srv->router = router;
    srv->data = data;
    srv->live = 1;
    return srv;
}

struct http_server *http_server_start(uv_loop_t *loop, const char *path, const char *spool_dir,
                                      const char *const *spool_prefixes, http_router_cb router,
                                      void *data, struct serr *err)
{
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        serr_set(err, SERR_INVALID, "socket path %s is too long", path);
        return NULL;
    }
    if (remove_old_socket(path, err) < 0)
        return NULL;
    struct http_server *srv = server_new(loop, spool_dir, spool_prefixes, router, data);
    uv_pipe_init(loop, &srv->listener.pipe, 0);
    srv->listener.pipe.data = srv;
    if (bind_private(srv, path, err) < 0) {
        srv->stopping = true;
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
        return NULL;
    }
    return srv;
}

void http_server_set_spool_max(struct http_server *srv, uint64_t max_bytes)
{
    srv->spool_max = max_bytes;
}

struct http_server *http_server_start_tcp(uv_loop_t *loop, const struct sockaddr *addr,
                                          http_router_cb router, void *data, struct serr *err)
{
    struct http_server *srv = server_new(loop, NULL, NULL, router, data);
    srv->tcp = true;
    uv_tcp_init(loop, &srv->listener.tcp);
    srv->listener.tcp.data = srv;
    int rc = uv_tcp_bind(&srv->listener.tcp, addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener.tcp, 128, on_connection);
    if (rc < 0) {
        serr_set(err, SERR_INVALID, "listen: %s", uv_strerror(rc));
        srv->stopping = true;
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
        return NULL;
    }
    return srv;
}

void *http_server_data(struct http_server *srv)
{
    return srv->data;
}

/* A reader taking an answer in makes progress: it gets another
 * request_timeout from now (an idle deadline further away stays). */
static void note_reader_progress(struct http_conn *conn)
{
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&conn->pipe);
    bool progressed = queued < conn->write_queued;
    conn->write_queued = queued;
    uint64_t later = uv_now(conn->srv->loop) + conn->srv->limits.request_timeout_ms;
    if (progressed && later > conn->deadline)
        conn->deadline = later;
}

static void on_sweep(uv_timer_t *t)
{
    struct http_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    for (struct http_conn *conn = srv->conns; conn != NULL; conn = conn->next) {
        if (conn->deadline == 0 || conn->dispatched || conn->closing)
            continue;
        note_reader_progress(conn);
        if (now >= conn->deadline) {
            log_debug("http: closing a connection from %s: no request or progress in time",
                      conn->peer_ip[0] ? conn->peer_ip : conn->peer_id[0] ? conn->peer_id : "?");
            conn_close(conn); /* unlinked in its close callback, later */
        }
    }
}

static void on_sweep_closed(uv_handle_t *h)
{
    server_release(h->data);
}

void http_server_set_gate(struct http_server *srv, http_gate_cb gate)
{
    srv->gate = gate;
}

void http_server_set_limits(struct http_server *srv, const struct http_limits *limits)
{
    srv->limits = *limits;
    unsigned shortest = limits->request_timeout_ms;
    if (limits->idle_timeout_ms > 0 && (shortest == 0 || limits->idle_timeout_ms < shortest))
        shortest = limits->idle_timeout_ms;
    if (shortest == 0 || srv->stopping)
        return;
    if (!srv->sweeping) {
        uv_timer_init(srv->loop, &srv->sweep);
        srv->sweep.data = srv;
        uv_unref((uv_handle_t *)&srv->sweep);
        srv->sweeping = true;
        srv->live++;
    }
    uint64_t every = shortest / 4 < SWEEP_MAX_MS ? shortest / 4 : SWEEP_MAX_MS;
    uv_timer_start(&srv->sweep, on_sweep, every ? every : 1, every ? every : 1);
}

void http_server_set_headers(struct http_server *srv, const char *(*fn)(void *data))
{
    srv->headers = fn;
}

void http_server_stop(struct http_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    /* Take a reference so the struct survives the loop below. */
    srv->live++;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    if (srv->sweeping)
        uv_close((uv_handle_t *)&srv->sweep, on_sweep_closed);
    for (struct http_conn *conn = srv->conns; conn != NULL; conn = conn->next)
        conn_close(conn);
    server_release(srv);
}

/* ---- responses ---- */

/* The router may answer after the client left: then only free. */
static bool answerable(struct http_req *req)
{
    return !req->conn->closing;
}

void http_close_after_response(struct http_req *req)
{
    req->conn->keep_alive = false;
}

void http_respond(struct http_req *req, int status, const char *content_type, const char *body,
                  size_t len)
{
    http_respond_with(req, status, content_type, NULL, body, len);
}

void http_respond_with(struct http_req *req, int status, const char *content_type,
                       const char *extra_headers, const char *body, size_t len)
{
    struct http_conn *conn = req->conn;
    /* Gone before the client sees the answer, so it can rely on that. */
    drop_spool_file(req);
    if (answerable(req)) {
        char framing[64];
        snprintf(framing, sizeof(framing), "Content-Length: %zu\r\n", len);
        if (extra_headers == NULL && conn->srv->headers)
            extra_headers = conn->srv->headers(conn->srv->data);
        write_head_with(conn, status, content_type, extra_headers, framing, body, len);
    }
    finish_request(conn);
}

static int error_status(enum serr_kind kind)
{
    switch (kind) {
    case SERR_INVALID: return 400;
    case SERR_NOT_FOUND: return 404;
    case SERR_CONFLICT: return 409;
    case SERR_UNAVAILABLE: return 503;
    case SERR_FORBIDDEN: return 403;
    case SERR_INTERNAL: return 500;
    }
    return 500;
}

void http_respond_error(struct http_req *req, const struct serr *err)
{
    char *body = error_body(err->msg);
    http_respond(req, error_status(err->kind), "application/json", body, strlen(body));
    free(body);
}

void http_stream_start(struct http_req *req, int status, const char *content_type)
{
    struct http_conn *conn = req->conn;
    conn->streaming = true;
    if (answerable(req))
        write_head(conn, status, content_type, "Transfer-Encoding: chunked\r\n", NULL, 0);
}

void http_stream_write(struct http_req *req, const char *data, size_t len)
{
    struct http_conn *conn = req->conn;
    /* An empty chunk would end the stream. */
    if (len == 0 || !answerable(req))
        return;
    char size_line[32];
    int n = conn->upgraded ? 0 : snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
    conn_write(conn, size_line, (size_t)n, data, len, "\r\n", conn->upgraded ? 0 : 2);
    if (!conn->closing && uv_stream_get_write_queue_size((uv_stream_t *)&conn->pipe) >
                              MAX_WRITE_QUEUE) {
        /* on_abort follows from the close callback, not from here. */
        log_warn("http: dropping a client that does not read its stream");
        conn_close(conn);
    }
}

void http_stream_end(struct http_req *req)
{
    struct http_conn *conn = req->conn;
    if (answerable(req) && !conn->upgraded) {
        static const char last[] = "0\r\n\r\n";
        conn_write(conn, last, sizeof(last) - 1, NULL, 0, NULL, 0);
    }
    finish_request(conn);
}

void http_upgrade(struct http_req *req, const char *content_type, const char *extra_headers)
{
    struct http_conn *conn = req->conn;
    conn->streaming = true;
    conn->keep_alive = false;
    if (!answerable(req))
        return;
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\n"
                     "Upgrade: tcp\r\n%s\r\n",
                     content_type, extra_headers ? extra_headers : "");
    if (n >= (int)sizeof(head))
        n = (int)sizeof(head) - 1; /* callers pass short header lines */
    conn_write(conn, head, (size_t)n, NULL, 0, NULL, 0);
    conn->upgraded = true;
    /* bytes the client sent right after its request */
    size_t start = conn->in_off, pending = conn->in_len - conn->in_off;
    conn->in_off = conn->in_len = 0;
    if (pending > 0 && req->on_input)
        req->on_input(req, conn->in + start, pending);
    resume_reading(conn);
}
