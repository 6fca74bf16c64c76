#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/registry_int.h"
#include "unit.h"

/* WWW-Authenticate is kept from any spelling of the header, trimmed; a new
 * response (a redirect's next) forgets it. */
TEST(registry_header_keeps_the_challenge)
{
    struct reply r = {0};
    char line[] = "Www-Authenticate:  Bearer realm=\"https://auth.example/token\"  \r\n";
    CHECK(reg_header_cb(line, 1, strlen(line), &r) == strlen(line));
    CHECK_STR(r.challenge, "Bearer realm=\"https://auth.example/token\"");
    char status[] = "HTTP/1.1 200 OK\r\n";
    reg_header_cb(status, 1, strlen(status), &r);
    CHECK_STR(r.challenge, "");
}

/* A token server of one request on 127.0.0.1: answers `body` with `status`,
 * keeps the request line and the Authorization header it got. */
struct token_server {
    int fd, port, status;
    const char *body;
    char request[512], authorization[256];
    pthread_t thread;
};

static void *token_serve(void *arg)
{
    struct token_server *s = arg;
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1)
        return NULL; /* never asked: the test's checks say what went wrong */
    int c = accept(s->fd, NULL, NULL);
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && (n = read(c, buf + len, sizeof(buf) - 1 - len)) > 0) {
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[len] = '\0';
    snprintf(s->request, sizeof(s->request), "%.*s", (int)strcspn(buf, "\r\n"), buf);
    const char *a = strstr(buf, "\r\nAuthorization: ");
    if (a)
        snprintf(s->authorization, sizeof(s->authorization), "%.*s",
                 (int)strcspn(a + 2, "\r\n"), a + 2);
    char answer[1024];
    int m = snprintf(answer, sizeof(answer),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     s->status, strlen(s->body), s->body);
    CHECK(write(c, answer, (size_t)m) == m);
    close(c);
    return NULL;
}

static void token_server_start(struct token_server *s, int status, const char *body)
{
    memset(s, 0, sizeof(*s));
    s->status = status;
    s->body = body;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    CHECK(bind(s->fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(s->fd, 1) == 0);
    CHECK(getsockname(s->fd, (struct sockaddr *)&a, &alen) == 0);
    s->port = ntohs(a.sin_port);
    CHECK(pthread_create(&s->thread, NULL, token_serve, s) == 0);
}

static void token_server_end(struct token_server *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void reg_for(struct reg *g, const struct registry_opts *o)
{
    memset(g, 0, sizeof(*g));
    g->o = o;
    CHECK(image_parse_ref("reg.example:5000/a/b:1", &g->ref, NULL) == 0);
}

/* Bearer: the token is asked of the realm (which may have a query of its
 * own) for the service and the challenge's own scope, quoted values holding
 * commas, else for the caller's scope; the credentials go along as Basic. */
TEST(registry_bearer_challenge_asks_the_realm_for_a_token)
{
    static const char *const proxies[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++)
        unsetenv(proxies[i]); /* the token server is on loopback */
    struct registry_opts anonymous = {0}, user = {.username = "u", .password = "p"};
    struct reg g;
    struct serr err = {0};
    struct token_server s;
    char challenge[512];

    token_server_start(&s, 200, "{\"token\":\"T1\"}");
    snprintf(challenge, sizeof(challenge),
             "Bearer realm=\"http://127.0.0.1:%d/token\",service=\"reg.example\","
             "scope=\"repository:a/b:pull,push\"",
             s.port);
    reg_for(&g, &anonymous);
    CHECK(reg_answer_challenge(&g, challenge, "repository:x:pull", &err) == 0);
    token_server_end(&s);
    CHECK_STR(s.request,
              "GET /token?service=reg.example&scope=repository%3Aa%2Fb%3Apull%2Cpush HTTP/1.1");
    CHECK_STR(s.authorization, "");
    CHECK_STR(g.authz, "Authorization: Bearer T1");
    free(g.authz);

    token_server_start(&s, 200, "{\"access_token\":\"T2\"}");
    snprintf(challenge, sizeof(challenge),
             "bearer service=svc, realm=http://127.0.0.1:%d/auth?account=x", s.port);
    reg_for(&g, &user);
    CHECK(reg_answer_challenge(&g, challenge, "repository:a/b:pull", &err) == 0);
    token_server_end(&s);
    CHECK_STR(s.request, "GET /auth?account=x&service=svc&scope=repository%3Aa%2Fb%3Apull HTTP/1.1");
    CHECK_STR(s.authorization, "Authorization: Basic dTpw");
    CHECK_STR(g.authz, "Authorization: Bearer T2");
    free(g.authz);

    /* the token server refuses the credentials */
    token_server_start(&s, 401, "{}");
    snprintf(challenge, sizeof(challenge), "Bearer realm=\"http://127.0.0.1:%d/t\"", s.port);
    reg_for(&g, &user);
    CHECK(reg_answer_challenge(&g, challenge, NULL, &err) < 0);
    token_server_end(&s);
    CHECK_STR(err.msg, "unauthorized: wrong username or password for reg.example:5000");
    CHECK(g.authz == NULL);
}

/* Basic: the credentials, base64; none, or a challenge of another kind or
 * without a realm, is refused saying so. */
TEST(registry_basic_and_bad_challenges)
{
    struct registry_opts anonymous = {0}, user = {.username = "user", .password = "secret"};
    struct reg g;
    struct serr err = {0};
    reg_for(&g, &user);
    CHECK(reg_answer_challenge(&g, "Basic realm=\"Registry\"", NULL, &err) == 0);
    CHECK_STR(g.authz, "Authorization: Basic dXNlcjpzZWNyZXQ=");
    free(g.authz);

    reg_for(&g, &anonymous);
    CHECK(reg_answer_challenge(&g, "basic realm=x", NULL, &err) < 0);
    CHECK_STR(err.msg, "pull access denied for reg.example:5000/a/b, repository does not exist "
                       "or may require 'shoal login reg.example:5000'");
    CHECK(reg_answer_challenge(&g, "Bearer service=\"x\",scope=\"y\"", NULL, &err) < 0);
    CHECK_STR(err.msg, "reg.example:5000: bearer challenge without a realm");
    CHECK(reg_answer_challenge(&g, "Negotiate abc", NULL, &err) < 0);
    CHECK_STR(err.msg, "reg.example:5000: unsupported authentication 'Negotiate abc'");
    CHECK(g.authz == NULL);
}
