/* The dashboard listener: static assets without authentication (they hold
 * no data), everything else behind a bearer token, then the local router. */
#include "api/dashboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/events.h"
#include "api/routes.h"
#include "api/ui_assets.h"
#include "base/base64.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "http/http.h"

#define TOKEN_LEN 32

struct dashboard {
    struct http_server *http;
    char addr[128]; /* as given: the URL `shoal dashboard url` prints */
    char read_only_token[TOKEN_LEN + 1];
    char admin_token[TOKEN_LEN + 1];
};

/* ---- tokens ---- */

static bool token_valid(const char *t)
{
    return t && strlen(t) == TOKEN_LEN && strspn(t, "0123456789abcdef") == TOKEN_LEN;
}

static bool read_tokens(struct dashboard *d, const char *path)
{
    char *text = NULL;
    if (read_file(path, &text, NULL, NULL) < 0)
        return false;
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    const char *ro = json_string_value(json_object_get(j, "read_only"));
    const char *admin = json_string_value(json_object_get(j, "admin"));
    bool ok = token_valid(ro) && token_valid(admin);
    if (ok) {
        memcpy(d->read_only_token, ro, TOKEN_LEN + 1);
        memcpy(d->admin_token, admin, TOKEN_LEN + 1);
    }
    json_decref(j);
    return ok;
}

/* The tokens survive restarts so bookmarked URLs keep working. */
static int load_tokens(struct shoal *sh, struct dashboard *d, struct serr *err)
{
    char *path = shoal_state_path(sh, "dashboard.json");
    int rc = 0;
    if (!read_tokens(d, path)) {
        random_hex(d->read_only_token, TOKEN_LEN);
        random_hex(d->admin_token, TOKEN_LEN);
        json_t *j = json_pack("{s:s, s:s}", "read_only", d->read_only_token, "admin",
                              d->admin_token);
        char *text = json_dumps(j, JSON_INDENT(1));
        rc = write_file_atomic(path, text, strlen(text), true, err);
        free(text);
        json_decref(j);
    }
    free(path);
    return rc;
}

/* Compares in constant time: the listener is reachable from the network. */
static bool token_equal(const char *given, const char *token)
{
    if (strlen(given) != TOKEN_LEN)
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < TOKEN_LEN; i++)
        diff |= (unsigned char)(given[i] ^ token[i]);
    return diff == 0;
}

/* The bearer token, or ?token= (EventSource cannot send headers). */
static void request_token(const struct http_req *req, char *out, size_t outlen)
{
    const char *bearer = "Bearer ";
    out[0] = '\0';
    if (strncasecmp(req->authorization, bearer, strlen(bearer)) == 0)
        snprintf(out, outlen, "%s", req->authorization + strlen(bearer));
    else
        http_query_get(req, "token", out, outlen);
}

/* OAR's /oarapi-priv/ takes HTTP basic auth: the login names the OAR user
 * (a job's owner), the password is a dashboard token. Fills login and
 * password from "Basic base64(login:password)"; false when absent or
 * malformed (an empty login included). */
static bool request_basic(const struct http_req *req, char *login, size_t login_size,
                          char *password, size_t password_size)
{
    const char *basic = "Basic ";
    if (strncasecmp(req->authorization, basic, strlen(basic)) != 0)
        return false;
    size_t len;
    unsigned char *plain = base64_decode(req->authorization + strlen(basic), &len);
    if (plain == NULL)
        return false;
    plain[len] = '\0';
    char *colon = strchr((char *)plain, ':');
    bool ok = colon != NULL && colon != (char *)plain && strlen((char *)plain) == len &&
              (size_t)(colon - (char *)plain) < login_size && strlen(colon + 1) < password_size;
    if (ok) {
        snprintf(login, login_size, "%.*s", (int)(colon - (char *)plain), (char *)plain);
        snprintf(password, password_size, "%s", colon + 1);
    }
    free(plain);
    return ok;
}

static bool is_oar_priv(const struct http_req *req)
{
    return strncmp(req->path, "/oarapi-priv/", strlen("/oarapi-priv/")) == 0;
}

/* The token a request holds: bearer, ?token=, or (under /oarapi-priv/) the
 * basic auth password, whose login goes to login ("" otherwise). */
static void request_credential(const struct http_req *req, char *token, size_t token_size,
                               char *login, size_t login_size)
{
    login[0] = '\0';
    if (!is_oar_priv(req) || !request_basic(req, login, login_size, token, token_size))
        request_token(req, token, token_size);
}

/* ---- assets ---- */

static const struct ui_asset *find_asset(const char *name)
{
    for (const struct ui_asset *a = ui_assets; a->name; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

/* index.html is revalidated on each load; it links app.js and style.css
 * with ?v=<content hash>, so those may be cached for good. */
static void serve_asset(struct http_req *req)
{
    const char *name = req->path + strlen("/ui/");
    const struct ui_asset *a = find_asset(*name ? name : "index.html");
    if (a == NULL) {
        respond_err(req, SERR_NOT_FOUND, "page not found");
        return;
    }
    bool is_page = strcmp(a->name, "index.html") == 0;
    const char *headers = is_page ? "Cache-Control: no-cache\r\n"
                                    "X-Content-Type-Options: nosniff\r\n"
                                    /* inline style attributes: colours and bar widths */
                                    "Content-Security-Policy: default-src 'self'; "
                                    "style-src 'self' 'unsafe-inline'\r\n"
                                  : "Cache-Control: public, max-age=31536000, immutable\r\n"
                                    "X-Content-Type-Options: nosniff\r\n";
    http_respond_with(req, 200, a->content_type, headers, (const char *)a->data,
                      strcmp(req->method, "HEAD") == 0 ? 0 : a->len);
}

/* ---- router ---- */

/* The header of a 401: OAR clients are asked for basic auth, the others for
 * a bearer token. */
static const char *challenge(const struct http_req *req)
{
    return is_oar_priv(req) ? "WWW-Authenticate: Basic realm=\"shoal\"\r\n"
                            : "WWW-Authenticate: Bearer\r\n";
}

static void deny(struct http_req *req, int status, const char *msg)
{
    char body[200];
    int n = snprintf(body, sizeof(body), "{\"message\":\"%s\"}", msg);
    http_respond_with(req, status, "application/json", status == 401 ? challenge(req) : NULL,
                      body, (size_t)n);
}

/* An OAR submission through /oarapi-priv/ is owned by the login it was
 * made with, whatever its body says: the body (a JSON object; anything
 * else is left for the route to refuse) gets "user" before routing, so
 * that it goes along when a follower forwards the write to the leader. */
static void own_submission(struct http_req *req, const char *login)
{
    if (strcmp(req->method, "POST") != 0 || req->body == NULL)
        return;
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    if (json_is_object(body)) {
        json_object_set_new(body, "user", json_string(login));
        char *text = json_dumps(body, JSON_COMPACT);
        free(req->body);
        req->body = text;
        req->body_len = strlen(text);
    }
    json_decref(body);
}

/* Bodies are read only for holders of a token (http_gate_cb). */
static const char *dashboard_gate(struct http_server *srv, const struct http_req *req)
{
    struct shoal *sh = http_server_data(srv);
    struct dashboard *d = sh->dashboard;
    char token[TOKEN_LEN + 8], login[72];
    request_credential(req, token, sizeof(token), login, sizeof(login));
    bool valid = token_equal(token, d->admin_token) || token_equal(token, d->read_only_token);
    return valid ? NULL : challenge(req);
}

static void dashboard_route(struct http_server *srv, struct http_req *req)
{
    struct shoal *sh = http_server_data(srv);
    struct dashboard *d = sh->dashboard;
    bool read = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (strcmp(req->path, "/") == 0 || strcmp(req->path, "/ui") == 0) {
        http_respond_with(req, 302, "text/plain", "Location: /ui/\r\n", "", 0);
        return;
    }
    if (strncmp(req->path, "/ui/", 4) == 0 && read) {
        serve_asset(req);
        return;
    }
    char token[TOKEN_LEN + 8], login[72];
    request_credential(req, token, sizeof(token), login, sizeof(login));
    bool admin = token_equal(token, d->admin_token);
    if (!admin && !token_equal(token, d->read_only_token)) {
        deny(req, 401, is_oar_priv(req) ? "access denied: basic auth with a user name and a "
                                          "dashboard token as password is required"
                                        : "access denied: a valid dashboard token is required");
        return;
    }
    if (login[0])
        own_submission(req, login);
    /* Authenticated: the admin token sees the API as an admin certificate
     * does on the cluster port; the read-only token gets the routes whose
     * access is READ (routes.c decides, 403 for the others). */
    req->peer_role = admin ? "admin" : HTTP_ROLE_READ_ONLY;
    routes_dispatch(srv, req);
}

int dashboard_start(struct shoal *sh, const char *addr, struct serr *err)
{
    char host[128];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= sizeof(host))
        return serr_set(err, SERR_INVALID, "--dashboard-addr wants ADDR:PORT, got '%s'", addr);
    snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    struct sockaddr_storage sa;
    bool v6 = host[0] == '[' && host[strlen(host) - 1] == ']';
    if (v6) {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    if (*end != '\0' || port <= 0 || port > 65535 ||
        (v6 ? uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&sa)
            : uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&sa)) != 0)
        return serr_set(err, SERR_INVALID, "--dashboard-addr wants IP:PORT, got '%s'", addr);
    struct dashboard *d = xcalloc(1, sizeof(*d));
    snprintf(d->addr, sizeof(d->addr), "%s", addr);
    if (load_tokens(sh, d, err) < 0 ||
        (d->http = http_server_start_tcp(sh->loop, (struct sockaddr *)&sa, dashboard_route, sh,
                                         err)) == NULL) {
        free(d);
        return serr_wrap(err, "dashboard on %s", addr);
    }
    http_server_set_limits(d->http, &sh->net_limits);
    http_server_set_gate(d->http, dashboard_gate);
    sh->dashboard = d;
    log_info("dashboard on http://%s/ui/ (shoal dashboard url prints the link)", addr);
    return 0;
}

void dashboard_stop(struct dashboard *d)
{
    if (d == NULL)
        return;
    http_server_stop(d->http);
    free(d);
}

/* ---- routes ---- */

void dashboard_get_url(struct shoal *sh, struct http_req *req, char **args)
{
    struct dashboard *d = sh->dashboard;
    if (d == NULL) {
        respond_err(req, SERR_CONFLICT, "the dashboard is off: start the daemon with "
                                        "--dashboard-addr ADDR:PORT");
        return;
    }
    bool admin = query_flag(req, "admin");
    char *url = xasprintf("http://%s/ui/#token=%s", d->addr,
                          admin ? d->admin_token : d->read_only_token);
    respond_json(req, 200, json_pack("{s:s, s:s}", "url", url, "access",
                                     admin ? "admin" : "read-only"));
    free(url);
}

void dashboard_get_events(struct shoal *sh, struct http_req *req, char **args)
{
    events_subscribe(sh->events, req);
}
