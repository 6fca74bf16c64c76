/* Blocking HTTP/1.1 client over a Unix socket, for the CLI. One connection,
 * reused while the server keeps it alive and reopened when it does not. */
#include "api/http.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"

#define RECV_CHUNK (64 * 1024)

struct http_client {
    char *path;
    char *host; /* as given, for messages */
    int fd;
};

static int client_connect(struct http_client *c, struct serr *err)
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
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

struct http_client *http_client_open(const char *host, struct serr *err)
{
    const char *path = host;
    if (strncmp(host, "unix://", 7) == 0)
        path = host + 7;
    else if (strstr(host, "://") != NULL) {
        serr_set(err, SERR_INVALID, "unsupported host %s (use unix:///path/to/socket)", host);
        return NULL;
    }
    if (path[0] == '\0' || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        serr_set(err, SERR_INVALID, "invalid socket path in host %s", host);
        return NULL;
    }
    struct http_client *c = xcalloc(1, sizeof(*c));
    c->path = xstrdup(path);
    c->host = xstrdup(host);
    c->fd = -1;
    if (client_connect(c, err) < 0) {
        http_client_close(c);
        return NULL;
    }
    return c;
}

void http_client_close(struct http_client *c)
{
    if (c == NULL)
        return;
    client_disconnect(c);
    free(c->path);
    free(c->host);
    free(c);
}

/* MSG_NOSIGNAL: a daemon that hangs up must give an error, not SIGPIPE. */
static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
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
        if (send_all(c->fd, head, strlen(head)) == 0)
            return 0;
        int saved = errno;
        client_disconnect(c);
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
        ssize_t n = recv(c->fd, buf, RECV_CHUNK, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = serr_errno(err, "read the response from %s", c->host);
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
    if (col->len + len + 1 > col->cap) {
        size_t cap = col->cap ? col->cap : 4096;
        while (cap < col->len + len + 1)
            cap *= 2;
        col->data = xrealloc(col->data, cap);
        col->cap = cap;
    }
    memcpy(col->data + col->len, data, len);
    col->len += len;
    col->data[col->len] = '\0';
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
        send_all(c->fd, body, body_len);
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

static int send_file_body(int sock, int fd)
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
        if (send_all(sock, buf, (size_t)n) < 0)
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
    if (rc == 0 && send_file_body(c->fd, fd) < 0)
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
