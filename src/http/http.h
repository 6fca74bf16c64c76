/* HTTP/1.1 on libuv, framed by http-parser: the daemon's server side and the
 * CLI's blocking client side.
 *
 * Server: one uv_pipe (Unix socket) listener; each connection parses requests
 * with http-parser and hands each complete request to the router callback.
 * The router answers now or later (after a Raft commit) with http_respond(),
 * or streams with http_stream_*(). One request per connection at a time;
 * keep-alive is honoured.
 *
 * Bodies: JSON bodies are kept in memory up to HTTP_MAX_BODY (larger ones get
 * 413 without calling the router). Requests whose path starts with one of the
 * server's spool prefixes (image uploads) are written to a temporary file
 * instead, up to the server's spool cap (http_server_set_spool_max; a larger
 * one gets 413 and leaves no file); req->body_file names it and the server
 * unlinks it after the response. Only local, manager and admin peers spool;
 * cluster-port peers without a certificate get HTTP_MAX_ANON_BODY. */
#ifndef SHOAL_HTTP_HTTP_H
#define SHOAL_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/err.h"

#define HTTP_MAX_BODY (1024 * 1024)
/* Cluster-port peers without a certificate (joining nodes): no spooling. */
#define HTTP_MAX_ANON_BODY (64 * 1024)
#define HTTP_MAX_URL 8192

struct http_conn;
struct http_server;

/* One parsed request. Owned by the server; valid until the response ends
 * (http_respond() or http_stream_end()) or until on_abort fires. */
struct http_req {
    struct http_conn *conn;
    const char *method;   /* "GET", "POST", "DELETE", ... */
    char *path;           /* decoded path without the query: "/v1/services/web" */
    char *query;          /* raw query string without '?', "" when absent */
    char *body;           /* NUL-terminated body in memory, or NULL */
    size_t body_len;
    char *body_file;      /* spooled body's path (spool prefixes only), or NULL */
    void *data;           /* free for the router */
    /* Cluster-port requests (http_server_adopt): remote is true and the TLS
     * peer's certificate names peer_id and peer_role ("" without a client
     * certificate: a joining node). Unix-socket requests: local root. */
    bool remote;
    /* The Authorization header's value ("" when absent; truncated past 159
     * bytes): the dashboard listener's bearer tokens. */
    char authorization[160];
    const char *peer_id;
    const char *peer_role; /* also HTTP_ROLE_READ_ONLY: the dashboard's read-only token */
    /* Called at most once if the client goes away before the response ends
     * (streams: `follow` readers). After it returns, `req` is freed: the
     * router must drop every pointer to it. */
    void (*on_abort)(struct http_req *req);
    /* The request came with `Connection: Upgrade` and `Upgrade: tcp`
     * (Docker's hijacked streams); other Upgrade requests get 400. */
    bool upgrade_tcp;
    /* After http_upgrade(): the client's bytes as they come; (NULL, 0) when
     * it closed its side (the answer may go on). */
    void (*on_input)(struct http_req *req, const char *data, size_t len);
};

/* The peer_role the dashboard gives requests made with its read-only token. */
#define HTTP_ROLE_READ_ONLY "read-only"

typedef void (*http_router_cb)(struct http_server *srv, struct http_req *req);

/* Starts listening on a Unix socket at `path` (an old socket file is replaced;
 * mode 0600: root only). `spool_dir` receives spooled bodies. */
struct http_server *http_server_start(uv_loop_t *loop, const char *path, const char *spool_dir,
                                      const char *const *spool_prefixes, http_router_cb router,
                                      void *data, struct serr *err);
/* Caps spooled bodies at `max_bytes` (0: no cap, the default). */
void http_server_set_spool_max(struct http_server *srv, uint64_t max_bytes);
/* Plain HTTP on TCP (the dashboard): every request is remote with an empty
 * peer_role, so the router decides what an unauthenticated peer may do. */
struct http_server *http_server_start_tcp(uv_loop_t *loop, const struct sockaddr *addr,
                                          http_router_cb router, void *data, struct serr *err);
void *http_server_data(struct http_server *srv);
/* Header lines ("Name: value\r\n", valid until the next call, or NULL) that
 * `fn` gives for every complete response without headers of its own: a
 * manager's applied raft index (X-Shoal-Applied). */
void http_server_set_headers(struct http_server *srv, const char *(*fn)(void *data));

/* Limits against clients that hold connections (docs/design.md, "Security
 * model"). The timeouts apply to remote connections only (the TCP listener's
 * and adopted ones; the root-only Unix socket has none); the caps to the
 * connections the TCP listener accepts (the cluster port's are counted in
 * tlsproxy). A connection over a cap is closed at once. 0 means no limit.
 *   request_timeout_ms: a request's headers must arrive within it, and its
 *     body may pause no longer (also the wait for a new connection's first
 *     request, and for a client to read an answer: no progress that long);
 *   idle_timeout_ms: a keep-alive connection with no request in progress.
 * A request the router has (a write waiting for Raft, a stream: events,
 * logs -f) has no timeout. */
struct http_limits {
    int max_conns;
    int max_conns_per_addr;
    unsigned request_timeout_ms;
    unsigned idle_timeout_ms;
};
void http_server_set_limits(struct http_server *srv, const struct http_limits *limits);
/* A check of a request that comes with a body, made once its headers are in
 * (method, path, query and authorization are set; the body is not): NULL lets
 * it through; else the 401 is answered at once with the header lines
 * returned (a static string: "WWW-Authenticate: ...\r\n") and the body is
 * dropped unread, so that clients without a credential cannot make the
 * server hold bodies in memory. Requests without a body always reach the
 * router. */
typedef const char *(*http_gate_cb)(struct http_server *srv, const struct http_req *req);
void http_server_set_gate(struct http_server *srv, http_gate_cb gate);

/* Serves HTTP on an already connected stream `fd` (the plain side of a TLS
 * connection), whose first `initial_len` bytes were already read into
 * `initial`. Takes `fd` (closed with the connection). 0, or -1 when the
 * server is stopping (fd closed too). */
int http_server_adopt(struct http_server *srv, int fd, const char *initial, size_t initial_len,
                      const char *peer_id, const char *peer_role);
/* Closes the listener and every connection; frees everything in close callbacks. */
void http_server_stop(struct http_server *srv);

/* Looks up a query parameter (decoded copy in out[outlen]); false when absent. */
bool http_query_get(const struct http_req *req, const char *key, char *out, size_t outlen);

/* The connection closes once the answer to `req` is out (no keep-alive). */
void http_close_after_response(struct http_req *req);

/* Sends a complete response. `body` is copied. Ends the request. */
void http_respond(struct http_req *req, int status, const char *content_type, const char *body,
                  size_t len);
/* http_respond() with extra header lines ("Name: value\r\n"...; NULL for none). */
void http_respond_with(struct http_req *req, int status, const char *content_type,
                       const char *extra_headers, const char *body, size_t len);
/* Sends {"message": msg} with the status of err->kind (400/404/409/500/503). */
void http_respond_error(struct http_req *req, const struct serr *err);

/* Streaming responses (chunked transfer encoding). */
void http_stream_start(struct http_req *req, int status, const char *content_type);
void http_stream_write(struct http_req *req, const char *data, size_t len);
void http_stream_end(struct http_req *req);
/* Answers an upgrade_tcp request `101 UPGRADED` (Connection: Upgrade,
 * Upgrade: tcp, `content_type`, extra header lines or NULL): from then on
 * http_stream_write() sends raw bytes, the client's bytes go to
 * req->on_input (set it first), and http_stream_end() closes the connection
 * once its output is out. */
void http_upgrade(struct http_req *req, const char *content_type, const char *extra_headers);

/* ---- client (blocking; used by the CLI) ---- */

/* `host` is "unix:///run/shoal/shoal.sock", a plain path, or "tcp://HOST[:PORT]"
 * (port 2377 by default; "[IPv6]:PORT" works too). tcp hosts speak HTTP over
 * TLS 1.2+ to a manager's cluster port: the client presents tls_dir/cert.pem
 * with tls_dir/key.pem and trusts exactly the CA in tls_dir/ca.pem (no host
 * name check: shoal certificates name node ids). Missing files fail at once
 * with a message saying how to get them (`shoal swarm admin-cert`). */
#define HTTP_TLS_CA_FILE "ca.pem"
#define HTTP_TLS_CERT_FILE "cert.pem"
#define HTTP_TLS_KEY_FILE "key.pem"
struct http_client;
/* Connects at once (and runs the TLS handshake for tcp hosts). tls_dir NULL
 * means http_client_tls_dir(NULL). */
struct http_client *http_client_open_tls(const char *host, const char *tls_dir,
                                         struct serr *err);
/* http_client_open_tls(host, NULL, err). */
struct http_client *http_client_open(const char *host, struct serr *err);
void http_client_close(struct http_client *c);
/* `given` when set, else $SHOAL_TLS_DIR, else $HOME/.shoal (caller frees). */
char *http_client_tls_dir(const char *given);

struct http_response {
    int status;
    char *body; /* NUL-terminated, caller frees with free() */
    size_t body_len;
};

/* Sends a request with an optional in-memory body and reads the whole reply. */
int http_request(struct http_client *c, const char *method, const char *path,
                 const char *content_type, const char *body, size_t body_len,
                 struct http_response *resp, struct serr *err);
/* Sends a file as the body (uploads). */
int http_request_file(struct http_client *c, const char *method, const char *path,
                      const char *file_path, struct http_response *resp, struct serr *err);
/* Sends a request and calls on_data for each piece of the body as it
 * arrives (streams: logs -f, run). Returns the status in *status, which is
 * set as soon as the headers arrive, so on_data may look at it to tell an
 * error answer from the stream. on_data returning non-zero stops reading. */
int http_request_stream(struct http_client *c, const char *method, const char *path,
                        const char *content_type, const char *body, size_t body_len,
                        int *status,
                        int (*on_data)(const char *data, size_t len, void *arg), void *arg,
                        struct serr *err);

#endif
