/* The blocking client over TLS (tcp:// hosts): a tiny OpenSSL server in a
 * thread, with a CA and certificates made by manager/ca.h in the test. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"
#include "http/http.h"
#include "manager/ca.h"
#include "tls/identity.h"
#include "tls/tls_ctx.h"
#include "unit.h"

/* ---- certificates ---- */

struct pki {
    char *root;    /* temporary directory holding everything */
    char *ca_dir;  /* the swarm CA (ca_create) */
    char *cli_dir; /* what `shoal swarm admin-cert` writes */
    char *ca_pem, *server_cert, *server_key;
};

static void write_pem(const char *dir, const char *name, const char *pem)
{
    char *path = xasprintf("%s/%s", dir, name);
    CHECK(write_file_atomic(path, pem, strlen(pem), false, NULL) == 0);
    free(path);
}

static char *make_ca(const char *root, const char *name)
{
    char *dir = xasprintf("%s/%s", root, name);
    struct serr err;
    CHECK(ca_create(dir, &err) == 0);
    return dir;
}

static void issue_admin(const char *ca_dir, const char *ca_pem_dir, const char *out_dir)
{
    struct serr err;
    char *key = NULL, *cert = NULL, *ca = NULL;
    CHECK(mkdir_p(out_dir, 0700, &err) == 0);
    CHECK(ca_issue_admin(ca_dir, &key, &cert, &err) == 0);
    CHECK(ca_cert_pem(ca_pem_dir, &ca, &err) == 0);
    write_pem(out_dir, HTTP_TLS_CA_FILE, ca);
    write_pem(out_dir, HTTP_TLS_CERT_FILE, cert);
    write_pem(out_dir, HTTP_TLS_KEY_FILE, key);
    free(key);
    free(cert);
    free(ca);
}

static void pki_init(struct pki *p)
{
    p->root = xstrdup("/tmp/shoal-test-tls-XXXXXX");
    CHECK(mkdtemp(p->root) != NULL);
    p->ca_dir = make_ca(p->root, "ca");
    p->cli_dir = xasprintf("%s/cli", p->root);
    issue_admin(p->ca_dir, p->ca_dir, p->cli_dir);
    struct serr err;
    char *csr = NULL;
    CHECK(ca_cert_pem(p->ca_dir, &p->ca_pem, &err) == 0);
    CHECK(node_key_csr("node0server", &p->server_key, &csr, &err) == 0);
    CHECK(ca_sign(p->ca_dir, csr, "node0server", "manager", &p->server_cert, &err) == 0);
    free(csr);
}

static void pki_free(struct pki *p)
{
    CHECK(rm_rf(p->root, NULL) == 0);
    free(p->root);
    free(p->ca_dir);
    free(p->cli_dir);
    free(p->ca_pem);
    free(p->server_cert);
    free(p->server_key);
}

/* ---- the server: one connection at a time, keep-alive ---- */

struct server {
    SSL_CTX *ctx;
    int listen_fd;
    int port;
    pthread_t thread;
};

/* Reads one request head (and a Content-Length body, dropped); 0 at EOF. */
static int read_request(SSL *ssl, char *head, size_t cap)
{
    size_t len = 0;
    while (strstr(head, "\r\n\r\n") == NULL) {
        size_t n = 0;
        if (len + 1 >= cap || SSL_read_ex(ssl, head + len, cap - 1 - len, &n) != 1)
            return 0;
        len += n;
        head[len] = '\0';
    }
    const char *cl = strstr(head, "Content-Length: ");
    size_t body_have = len - (size_t)(strstr(head, "\r\n\r\n") + 4 - head);
    size_t body_len = cl ? strtoul(cl + 16, NULL, 10) : 0;
    char drop[4096];
    while (body_have < body_len) {
        size_t n = 0;
        if (SSL_read_ex(ssl, drop, sizeof(drop), &n) != 1)
            return 0;
        body_have += n;
    }
    return 1;
}

static void peer_identity(SSL *ssl, char *out, size_t outlen)
{
    X509 *peer = SSL_get1_peer_certificate(ssl);
    char id[128] = "", role[32] = "";
    if (peer != NULL)
        cert_identity(peer, id, sizeof(id), role, sizeof(role), NULL);
    X509_free(peer);
    snprintf(out, outlen, "%s", role);
}

static void send_str(SSL *ssl, const char *s)
{
    size_t n;
    SSL_write_ex(ssl, s, strlen(s), &n);
}

/* GET /close answers and closes; GET /stream answers chunked; anything else
 * echoes the request line and the client certificate's role. */
static int answer(SSL *ssl, const char *head)
{
    char line[256], role[32];
    snprintf(line, sizeof(line), "%.*s", (int)strcspn(head, "\r"), head);
    peer_identity(ssl, role, sizeof(role));
    if (strncmp(line, "GET /stream ", 12) == 0) {
        send_str(ssl, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        send_str(ssl, "3\r\none\r\n");
        send_str(ssl, "3\r\ntwo\r\n0\r\n\r\n");
        return 1;
    }
    json_t *j = json_pack("{s:s,s:s}", "line", line, "role", role);
    char *body = json_dumps(j, JSON_COMPACT);
    bool close_after = strncmp(line, "GET /close ", 11) == 0;
    char *resp = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: %zu\r\n%s\r\n%s",
                           strlen(body), close_after ? "Connection: close\r\n" : "", body);
    send_str(ssl, resp);
    free(resp);
    free(body);
    json_decref(j);
    return !close_after;
}

static void serve_connection(SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        char head[8192] = "";
        while (read_request(ssl, head, sizeof(head)) && answer(ssl, head))
            head[0] = '\0';
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            break; /* shutdown() by server_stop */
        serve_connection(s->ctx, fd);
    }
    return NULL;
}

static void server_start(struct server *s, const struct pki *p)
{
    struct serr err;
    s->ctx = tls_ctx_new(p->ca_pem, p->server_cert, p->server_key, true, true, &err);
    CHECK(s->ctx != NULL);
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    CHECK(bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    CHECK(listen(s->listen_fd, 8) == 0);
    CHECK(getsockname(s->listen_fd, (struct sockaddr *)&addr, &len) == 0);
    s->port = ntohs(addr.sin_port);
    CHECK(pthread_create(&s->thread, NULL, server_main, s) == 0);
}

static void server_stop(struct server *s)
{
    shutdown(s->listen_fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    SSL_CTX_free(s->ctx);
}

static char *host_of(const struct server *s)
{
    return xasprintf("tcp://127.0.0.1:%d", s->port);
}

static json_t *get_json(struct http_client *c, const char *path)
{
    struct http_response resp;
    struct serr err;
    if (http_request(c, "GET", path, NULL, NULL, 0, &resp, &err) < 0) {
        fprintf(stderr, "request failed: %s\n", err.msg);
        CHECK(0);
    }
    CHECK(resp.status == 200);
    json_t *j = json_loads(resp.body, 0, NULL);
    free(resp.body);
    CHECK(j != NULL);
    return j;
}

/* ---- tests ---- */

static int collect_stream(const char *data, size_t len, void *arg)
{
    strncat(arg, data, len);
    return 0;
}

TEST(http_tls_requests_with_client_certificate)
{
    struct pki p;
    struct server s;
    pki_init(&p);
    server_start(&s, &p);
    char *host = host_of(&s);
    struct serr err;
    struct http_client *c = http_client_open_tls(host, p.cli_dir, &err);
    CHECK(c != NULL);
    json_t *j = get_json(c, "/v1/info");
    CHECK_STR(json_string_value(json_object_get(j, "line")), "GET /v1/info HTTP/1.1");
    CHECK_STR(json_string_value(json_object_get(j, "role")), "admin");
    json_decref(j);
    /* A body, on the same connection. */
    struct http_response resp;
    CHECK(http_request(c, "POST", "/v1/x", "application/json", "{\"a\":1}", 7, &resp, &err) == 0);
    CHECK(resp.status == 200 && strstr(resp.body, "POST /v1/x") != NULL);
    free(resp.body);
    /* The server closes: the next request reconnects with a new handshake. */
    json_decref(get_json(c, "/close"));
    json_decref(get_json(c, "/v1/after"));
    char streamed[64] = "";
    int status = 0;
    CHECK(http_request_stream(c, "GET", "/stream", NULL, NULL, 0, &status, collect_stream,
                              streamed, &err) == 0);
    CHECK(status == 200);
    CHECK_STR(streamed, "onetwo");
    http_client_close(c);
    server_stop(&s);
    free(host);
    pki_free(&p);
}

TEST(http_tls_dir_from_environment)
{
    struct pki p;
    struct server s;
    pki_init(&p);
    server_start(&s, &p);
    char *host = host_of(&s);
    setenv("SHOAL_TLS_DIR", p.cli_dir, 1);
    struct serr err;
    struct http_client *c = http_client_open(host, &err);
    CHECK(c != NULL);
    json_decref(get_json(c, "/v1/info"));
    http_client_close(c);
    server_stop(&s);
    free(host);
    pki_free(&p);
}

TEST(http_tls_missing_certificate)
{
    char dir[] = "/tmp/shoal-test-tls-empty-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct serr err;
    CHECK(http_client_open_tls("tcp://127.0.0.1:1", dir, &err) == NULL);
    CHECK(err.kind == SERR_INVALID);
    CHECK(strstr(err.msg, "no client certificate in ") != NULL);
    CHECK(strstr(err.msg, dir) != NULL);
    CHECK(strstr(err.msg, "shoal swarm admin-cert") != NULL);
    rmdir(dir);
}

TEST(http_tls_server_from_another_swarm)
{
    struct pki p;
    struct server s;
    pki_init(&p);
    server_start(&s, &p);
    char *host = host_of(&s);
    /* A client that trusts a different CA refuses the server. */
    char *other_ca = make_ca(p.root, "other-ca");
    char *other_cli = xasprintf("%s/other-cli", p.root);
    issue_admin(other_ca, other_ca, other_cli);
    struct serr err;
    CHECK(http_client_open_tls(host, other_cli, &err) == NULL);
    CHECK(strstr(err.msg, "TLS handshake with") != NULL);
    CHECK(strstr(err.msg, "does not verify") != NULL);
    server_stop(&s);
    free(other_ca);
    free(other_cli);
    free(host);
    pki_free(&p);
}

TEST(http_tls_client_certificate_refused)
{
    struct pki p;
    struct server s;
    pki_init(&p);
    server_start(&s, &p);
    char *host = host_of(&s);
    /* Trusts the right CA but presents a certificate of another one. */
    char *other_ca = make_ca(p.root, "other-ca");
    char *mixed = xasprintf("%s/mixed", p.root);
    issue_admin(other_ca, p.ca_dir, mixed);
    struct serr err;
    struct http_client *c = http_client_open_tls(host, mixed, &err);
    /* TLS 1.3 tells the client only when it reads. */
    if (c != NULL) {
        struct http_response resp;
        CHECK(http_request(c, "GET", "/v1/info", NULL, NULL, 0, &resp, &err) < 0);
        http_client_close(c);
    }
    CHECK(strstr(err.msg, "refused the TLS connection") != NULL ||
          strstr(err.msg, "TLS handshake with") != NULL);
    server_stop(&s);
    free(other_ca);
    free(mixed);
    free(host);
    pki_free(&p);
}

TEST(http_tls_host_syntax_and_dir)
{
    struct serr err;
    CHECK(http_client_open_tls("tcp://", "/nonexistent", &err) == NULL);
    CHECK(err.kind == SERR_INVALID && strstr(err.msg, "tcp://HOST:PORT") != NULL);
    CHECK(http_client_open_tls("tcp://h:port", "/nonexistent", &err) == NULL);
    CHECK(strstr(err.msg, "tcp://HOST:PORT") != NULL);
    CHECK(http_client_open_tls("tcp://[::1:2377", "/nonexistent", &err) == NULL);
    CHECK(strstr(err.msg, "tcp://HOST:PORT") != NULL);
    CHECK(http_client_open("http://x", &err) == NULL && err.kind == SERR_INVALID);

    char *dir = http_client_tls_dir("/given");
    CHECK_STR(dir, "/given");
    free(dir);
    setenv("SHOAL_TLS_DIR", "/from/env", 1);
    dir = http_client_tls_dir(NULL);
    CHECK_STR(dir, "/from/env");
    free(dir);
    unsetenv("SHOAL_TLS_DIR");
    setenv("HOME", "/home/someone", 1);
    dir = http_client_tls_dir(NULL);
    CHECK_STR(dir, "/home/someone/.shoal");
    free(dir);
}
