/* Registry client: see registry.h.
 *
 * A pull: ping /v2/ (which also answers the authentication challenge and,
 * for insecure registries, picks https or http), the manifest by tag or
 * digest (an index or manifest list picks this node's platform), the config
 * blob (in memory, capped), then the layers the store lacks: blobs streamed
 * to spool files, a few at once, hashed on the way; each then unpacked into
 * the store (image_add_layer checks its diff_id). Push: registry_push.c,
 * on the HTTP and authentication helpers here (registry_int.h). */
#include "agent/registry.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/registry_int.h"
#include "base/json_get.h"
#include "base/platform.h"
#include "base/util.h"

#define MAX_MANIFEST (4 * 1024 * 1024)
#define MAX_CONFIG (8 * 1024 * 1024)
#define DEFAULT_PARALLEL 3
#define NO_PLATFORM "no matching manifest for " /* registry_missing_platform */

static const char manifest_accept[] = "Accept: application/vnd.oci.image.index.v1+json, "
                                      "application/vnd.docker.distribution.manifest.list.v2+json, "
                                      "application/vnd.oci.image.manifest.v1+json, "
                                      "application/vnd.docker.distribution.manifest.v2+json";

/* ---- platforms ---------------------------------------------------------- */

/* What this binary runs (uname may say more: a 32-bit userland on a 64-bit
 * kernel), unless the tests' SHOAL_TEST_PLATFORM says otherwise. */
const char *registry_host_platform(void)
{
    static _Thread_local char knob[100];
    if (getenv("SHOAL_TEST_PLATFORM")) {
        json_t *self = platform_self();
        platform_format(self, knob, sizeof(knob));
        json_decref(self);
        return knob;
    }
#if defined(__x86_64__)
    return "linux/amd64";
#elif defined(__aarch64__)
    return "linux/arm64";
#elif defined(__arm__)
    return "linux/arm/v7";
#elif defined(__i386__)
    return "linux/386";
#else
    return "linux/unknown";
#endif
}

struct want_platform {
    char os[32], arch[32], variant[32];
};

static int parse_platform(const char *text, struct want_platform *p, struct serr *err)
{
    memset(p, 0, sizeof(*p));
    const char *a = strchr(text, '/');
    const char *v = a ? strchr(a + 1, '/') : NULL;
    size_t os_len = a ? (size_t)(a - text) : 0;
    size_t arch_len = a ? (v ? (size_t)(v - a - 1) : strlen(a + 1)) : 0;
    bool ok = a && os_len > 0 && os_len < sizeof(p->os) && arch_len > 0 &&
              arch_len < sizeof(p->arch) &&
              (!v || (v[1] && !strchr(v + 1, '/') && strlen(v + 1) < sizeof(p->variant)));
    if (!ok)
        return serr_set(err, SERR_INVALID, "invalid platform '%s': expected OS/ARCH[/VARIANT]",
                        text);
    snprintf(p->os, sizeof(p->os), "%.*s", (int)os_len, text);
    snprintf(p->arch, sizeof(p->arch), "%.*s", (int)arch_len, a + 1);
    if (v)
        snprintf(p->variant, sizeof(p->variant), "%s", v + 1);
    return 0;
}

int registry_check_platform(const char *platform, struct serr *err)
{
    struct want_platform p;
    return parse_platform(platform, &p, err);
}

/* An index entry's platform against the wanted one. arm64's only variant is
 * v8, so an entry without one matches a wanted v8 (and the other way). */
static bool platform_matches(json_t *desc, const struct want_platform *want)
{
    json_t *p = json_object_get(desc, "platform");
    const char *os = jstr(p, "os");
    const char *arch = jstr(p, "architecture");
    const char *variant = jstr(p, "variant");
    if (!os || !arch || strcmp(os, want->os) != 0 || strcmp(arch, want->arch) != 0)
        return false;
    if (want->variant[0] == '\0' || (variant && strcmp(variant, want->variant) == 0))
        return true;
    bool arm64 = strcmp(arch, "arm64") == 0;
    return arm64 && (variant == NULL || variant[0] == '\0') && strcmp(want->variant, "v8") == 0;
}

/* The platforms an index offers, ["linux/amd64", "linux/arm/v7"] (a new
 * array; attestation entries, os "unknown", left out). */
static json_t *index_platforms(json_t *manifests)
{
    json_t *out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(manifests, i, d)
    {
        json_t *p = json_object_get(d, "platform");
        const char *os = jstr(p, "os");
        const char *arch = jstr(p, "architecture");
        const char *variant = jstr(p, "variant");
        if (!os || !arch || strcmp(os, "unknown") == 0)
            continue;
        json_array_append_new(out,
                              json_sprintf("%s/%s%s%s", os, arch, variant && variant[0] ? "/" : "",
                                           variant ? variant : ""));
    }
    return out;
}

/* "linux/amd64, linux/arm/v7" for error messages (caller frees). */
static char *list_platforms(json_t *manifests)
{
    json_t *all = index_platforms(manifests);
    char *out = xstrdup("");
    size_t i;
    json_t *p;
    json_array_foreach(all, i, p)
    {
        char *next = xasprintf("%s%s%s", out, out[0] ? ", " : "", json_string_value(p));
        free(out);
        out = next;
    }
    json_decref(all);
    return out;
}

/* ---- insecure registries ------------------------------------------------ */

static bool in_cidr(const char *host, const char *cidr)
{
    char net[64];
    const char *slash = strchr(cidr, '/');
    if (slash == NULL || (size_t)(slash - cidr) >= sizeof(net))
        return false;
    snprintf(net, sizeof(net), "%.*s", (int)(slash - cidr), cidr);
    char *end;
    long bits = strtol(slash + 1, &end, 10);
    struct in_addr h, n;
    if (*end || bits < 0 || bits > 32 || inet_pton(AF_INET, host, &h) != 1 ||
        inet_pton(AF_INET, net, &n) != 1)
        return false;
    uint32_t mask = bits == 0 ? 0 : htonl(0xffffffffu << (32 - bits));
    return (h.s_addr & mask) == (n.s_addr & mask);
}

/* `domain` named in `list` exactly, by its host, or its host in a CIDR there. */
static bool listed(const char *const *list, const char *domain)
{
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)strcspn(domain, ":"), domain);
    for (size_t i = 0; list && list[i]; i++) {
        if (strcmp(list[i], domain) == 0 || strcmp(list[i], host) == 0 || in_cidr(host, list[i]))
            return true;
    }
    return false;
}

bool registry_is_insecure(const char *const *insecure, const char *domain)
{
    static const char *const loopback[] = {"localhost", "127.0.0.0/8", NULL};
    return listed(loopback, domain) || listed(insecure, domain);
}

static int check_allowed(const struct registry_opts *o, const char *domain, struct serr *err)
{
    if (o->allowed == NULL || listed(o->allowed, domain))
        return 0;
    return serr_set(err, SERR_INVALID,
                    "registry %s is not in this daemon's allowed-registries (daemon.json)", domain);
}

/* ---- HTTP --------------------------------------------------------------- */

void reg_reply_free(struct reply *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

size_t reg_mem_write(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    if (r->len + len > r->max) {
        r->too_big = true;
        return 0;
    }
    buf_append(&r->body, &r->len, &r->cap, data, len);
    return len;
}

static void copy_header_value(const char *line, size_t len, size_t name_len, char *out,
                              size_t outlen)
{
    const char *v = line + name_len;
    size_t n = len - name_len;
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    snprintf(out, outlen, "%.*s", (int)n, v);
}

size_t reg_header_cb(char *line, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    static const char www[] = "www-authenticate:", ctype[] = "content-type:", loc[] = "location:";
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (redirects) */
        r->challenge[0] = '\0';
        r->content_type[0] = '\0';
        r->location[0] = '\0';
    } else if (len > sizeof(loc) - 1 && strncasecmp(line, loc, sizeof(loc) - 1) == 0) {
        copy_header_value(line, len, sizeof(loc) - 1, r->location, sizeof(r->location));
    } else if (len > sizeof(www) - 1 && strncasecmp(line, www, sizeof(www) - 1) == 0) {
        copy_header_value(line, len, sizeof(www) - 1, r->challenge, sizeof(r->challenge));
    } else if (len > sizeof(ctype) - 1 && strncasecmp(line, ctype, sizeof(ctype) - 1) == 0) {
        copy_header_value(line, len, sizeof(ctype) - 1, r->content_type, sizeof(r->content_type));
    }
    return len;
}

/* The options every request shares. */
CURL *reg_easy_new(struct reg *g, const char *url, struct curl_slist *headers, char *errbuf)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        abort(); /* allocation failure */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L); /* stalled for a minute: give up */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "shoal");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (g->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (headers)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    errbuf[0] = '\0';
    return h;
}

const char *reg_curl_message(CURLcode rc, const char *errbuf)
{
    return errbuf[0] ? errbuf : curl_easy_strerror(rc);
}

/* GETs `url` into r->body (at most `max` bytes). `accept` is a header line
 * or NULL; the Authorization header goes along when set and `authorized`. */
static int get_mem(struct reg *g, const char *url, const char *accept, bool authorized,
                   const char *basic_user, const char *basic_pass, size_t max, struct reply *r,
                   struct serr *err)
{
    memset(r, 0, sizeof(*r));
    r->max = max;
    struct curl_slist *headers = NULL;
    if (accept)
        headers = curl_slist_append(headers, accept);
    if (authorized && g->authz)
        headers = curl_slist_append(headers, g->authz);
    char errbuf[CURL_ERROR_SIZE];
    CURL *h = reg_easy_new(g, url, headers, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, reg_mem_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, reg_header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (basic_user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, basic_user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, basic_pass ? basic_pass : "");
    }
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    int ret = 0;
    if (r->too_big)
        ret = serr_set(err, SERR_INVALID, "%s: the answer is larger than %zu bytes", url, max);
    else if (rc != CURLE_OK)
        ret = serr_set(err, SERR_UNAVAILABLE, "%s: %s", url, reg_curl_message(rc, errbuf));
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    if (r->body == NULL)
        buf_append(&r->body, &r->len, &r->cap, "", 0);
    buf_append(&r->body, &r->len, &r->cap, "\0", 1);
    r->len--; /* NUL-terminated for messages, not counted */
    return ret;
}

/* The registry's own error text: {"errors":[{"code","message"}]}. */
void reg_error_text(const struct reply *r, char *out, size_t outlen)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    json_t *e = json_array_get(json_object_get(j, "errors"), 0);
    const char *msg = jstr(e, "message");
    const char *code = jstr(e, "code");
    if (msg)
        snprintf(out, outlen, ": %s%s%s", code ? code : "", code ? ": " : "", msg);
    else
        out[0] = '\0';
    json_decref(j);
}

/* ---- authentication ----------------------------------------------------- */

/* The value of key="v" (or key=v) in a challenge's parameter list. */
static bool challenge_param(const char *params, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    for (const char *p = params; *p;) {
        p += strspn(p, " ,");
        if (strncasecmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = (*v == '"') ? strcspn(++v, "\"") : strcspn(v, ",");
            snprintf(out, outlen, "%.*s", (int)n, v);
            return true;
        }
        /* skip this parameter, quoted values may hold commas */
        const char *eq = strchr(p, '=');
        if (eq == NULL)
            return false;
        p = eq + 1;
        if (*p == '"') {
            const char *close = strchr(p + 1, '"');
            if (close == NULL)
                return false;
            p = close + 1;
        } else {
            p += strcspn(p, ",");
        }
    }
    return false;
}

static void set_authz(struct reg *g, char *header)
{
    free(g->authz);
    g->authz = header;
}

int reg_unauthorized(struct reg *g, struct serr *err)
{
    if (g->o->username)
        return serr_set(err, SERR_INVALID, "unauthorized: wrong username or password for %s",
                        g->ref.domain);
    return serr_set(err, SERR_INVALID,
                    "%s access denied for %s, repository does not exist or may require "
                    "'shoal login %s'",
                    g->push ? "push" : "pull", g->ref.name, g->ref.domain);
}

/* Bearer: asks the realm for a token for `scope` (the challenge's own scope
 * when it names one), with the credentials when we have them. */
static int bearer_token(struct reg *g, const char *params, const char *scope, struct serr *err)
{
    char realm[512], service[256] = "", own_scope[512] = "";
    if (!challenge_param(params, "realm", realm, sizeof(realm)))
        return serr_set(err, SERR_INVALID, "%s: bearer challenge without a realm", g->ref.domain);
    challenge_param(params, "service", service, sizeof(service));
    challenge_param(params, "scope", own_scope, sizeof(own_scope));
    if (own_scope[0])
        scope = own_scope;
    CURL *esc = curl_easy_init();
    char *svc = curl_easy_escape(esc, service, 0);
    char *scp = scope ? curl_easy_escape(esc, scope, 0) : NULL;
    char *url = xasprintf("%s%sservice=%s%s%s", realm, strchr(realm, '?') ? "&" : "?", svc,
                          scp ? "&scope=" : "", scp ? scp : "");
    curl_free(svc);
    curl_free(scp);
    curl_easy_cleanup(esc);
    struct reply r;
    int rc = get_mem(g, url, NULL, false, g->o->username, g->o->password, MAX_TOKEN, &r, err);
    if (rc == 0 && (r.status == 401 || r.status == 403))
        rc = reg_unauthorized(g, err);
    else if (rc == 0 && r.status != 200)
        rc = serr_set(err, SERR_UNAVAILABLE, "token server %s answered %ld", realm, r.status);
    json_t *j = rc == 0 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    const char *token = jstr(j, "token");
    if (token == NULL)
        token = jstr(j, "access_token");
    if (rc == 0 && token == NULL)
        rc = serr_set(err, SERR_INVALID, "token server %s gave no token", realm);
    if (rc == 0)
        set_authz(g, xasprintf("Authorization: Bearer %s", token));
    json_decref(j);
    reg_reply_free(&r);
    free(url);
    return rc;
}

static int basic_authz(struct reg *g, struct serr *err)
{
    if (g->o->username == NULL)
        return reg_unauthorized(g, err);
    char *plain = xasprintf("%s:%s", g->o->username, g->o->password ? g->o->password : "");
    size_t n = strlen(plain);
    char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, (int)n);
    set_authz(g, xasprintf("Authorization: Basic %s", b64));
    free(b64);
    free(plain);
    return 0;
}

/* Answers a 401's challenge: sets g->authz. */
int reg_answer_challenge(struct reg *g, const char *challenge, const char *scope, struct serr *err)
{
    if (strncasecmp(challenge, "Bearer ", 7) == 0)
        return bearer_token(g, challenge + 7, scope, err);
    if (strncasecmp(challenge, "Basic", 5) == 0)
        return basic_authz(g, err);
    return serr_set(err, SERR_INVALID, "%s: unsupported authentication '%.40s'", g->ref.domain,
                    challenge);
}

/* GET /v2/: picks the scheme (insecure registries: https without checks,
 * else plain http) and answers the challenge for `scope`. */
static int ping(struct reg *g, const char *scope, struct serr *err)
{
    bool hub = strcmp(g->ref.domain, IMAGE_DEFAULT_DOMAIN) == 0;
    const char *host = hub ? REGISTRY_HUB_HOST : g->ref.domain;
    static const char *const schemes[] = {"https", "http"};
    struct reply r = {0};
    int rc = -1;
    char tried[700] = "";
    for (size_t i = 0; i < (g->insecure ? 2u : 1u); i++) {
        snprintf(g->base, sizeof(g->base), "%s://%s", schemes[i], host);
        char *url = xasprintf("%s/v2/", g->base);
        rc = get_mem(g, url, NULL, false, NULL, NULL, MAX_TOKEN, &r, err);
        free(url);
        if (rc == 0 && (r.status == 200 || r.status == 401))
            break;
        if (rc == 0)
            rc = serr_set(err, SERR_UNAVAILABLE, "%s/v2/ answered %ld: not a registry", g->base,
                          r.status);
        size_t used = strlen(tried);
        snprintf(tried + used, sizeof(tried) - used, "%s%s", used ? "; " : "", err->msg);
        reg_reply_free(&r);
    }
    if (rc < 0) {
        serr_set(err, SERR_UNAVAILABLE, "cannot reach registry %s: %s", g->ref.domain, tried);
        return -1;
    }
    if (r.status == 401)
        rc = reg_answer_challenge(g, r.challenge, scope, err);
    else if (g->o->username && strncasecmp(r.challenge, "Basic", 5) == 0)
        rc = basic_authz(g, err);
    reg_reply_free(&r);
    return rc;
}

/* GET of an API path under /v2/<repo>/ with the authorization; a 401 gets
 * its challenge answered once more (an expired token, a new scope). */
static int api_get(struct reg *g, const char *what, const char *accept, size_t max, struct reply *r,
                   struct serr *err)
{
    char *url = xasprintf("%s/v2/%s/%s", g->base, g->ref.path, what);
    char *scope = xasprintf("repository:%s:%s", g->ref.path, g->push ? "pull,push" : "pull");
    int rc = get_mem(g, url, accept, true, NULL, NULL, max, r, err);
    if (rc == 0 && r->status == 401) {
        char challenge[sizeof(r->challenge)];
        snprintf(challenge, sizeof(challenge), "%s", r->challenge);
        reg_reply_free(r);
        rc = reg_answer_challenge(g, challenge, scope, err);
        if (rc == 0)
            rc = get_mem(g, url, accept, true, NULL, NULL, max, r, err);
        if (rc == 0 && r->status == 401) {
            reg_reply_free(r);
            rc = reg_unauthorized(g, err);
        }
    }
    free(scope);
    free(url);
    return rc;
}

/* ---- digests ------------------------------------------------------------ */

/* "sha256:<hex>" of a finished hash. */
void reg_format_digest(const unsigned char *md, unsigned int mdlen, char out[72])
{
    char *p = out + sprintf(out, "sha256:");
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        p += sprintf(p, "%02x", md[i]);
}

void reg_digest_of(const void *data, size_t len, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        abort(); /* allocation failure */
    reg_format_digest(md, mdlen, out);
}

static bool digest_ok(const char *d)
{
    if (d == NULL || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
        return false;
    return strspn(d + 7, "0123456789abcdef") == 64;
}

/* "sha256:0123456789ab..." -> "0123456789ab" (Docker's layer ids). */
void reg_short_id(const char *digest, char out[13])
{
    snprintf(out, 13, "%s", strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest);
}

void reg_progress(struct reg *g, const char *id, const char *status, uint64_t cur, uint64_t total)
{
    if (g->o->progress)
        g->o->progress(g->o->progress_arg, id, status, cur, total);
}

/* ---- manifests ---------------------------------------------------------- */

static json_t *parse_manifest(struct reg *g, const struct reply *r, const char *what,
                              struct serr *err)
{
    json_error_t jerr;
    json_t *m = json_loadb(r->body, r->len, 0, &jerr);
    if (!json_is_object(m)) {
        json_decref(m);
        serr_set(err, SERR_INVALID, "registry %s sent an invalid manifest for %s: %s",
                 g->ref.domain, what, m ? "not a JSON object" : jerr.text);
        return NULL;
    }
    json_int_t version = json_integer_value(json_object_get(m, "schemaVersion"));
    if (version != 2) {
        json_decref(m);
        serr_set(err, SERR_INVALID,
                 "%s: manifest schema version %lld is not supported (only v2 and OCI)", what,
                 (long long)version);
        return NULL;
    }
    return m;
}

/* Fetches the manifest named `what` (a tag or a digest); *digest gets its
 * sha256, which must equal `what` when that is a digest. */
static json_t *fetch_manifest(struct reg *g, const char *what, char digest[72], struct serr *err)
{
    struct reply r;
    char *label = xasprintf("%s%s%s", g->ref.name, digest_ok(what) ? "@" : ":", what);
    json_t *m = NULL;
    char *path = xasprintf("manifests/%s", what);
    int rc = api_get(g, path, manifest_accept, MAX_MANIFEST, &r, err);
    free(path);
    if (rc < 0) {
        serr_wrap(err, "manifest for %s", label);
        free(label);
        return NULL;
    }
    char msg[300];
    reg_error_text(&r, msg, sizeof(msg));
    if (r.status == 404)
        serr_set(err, SERR_NOT_FOUND, "manifest for %s not found%s", label,
                 msg[0] ? msg : ": manifest unknown");
    else if (r.status != 200)
        serr_set(err, SERR_UNAVAILABLE, "manifest for %s: registry %s answered %ld%s", label,
                 g->ref.domain, r.status, msg);
    else {
        reg_digest_of(r.body, r.len, digest);
        if (digest_ok(what) && strcmp(what, digest) != 0)
            serr_set(err, SERR_INVALID, "manifest for %s does not match its digest (got %s)", label,
                     digest);
        else
            m = parse_manifest(g, &r, label, err);
    }
    reg_reply_free(&r);
    free(label);
    return m;
}

static bool is_index(json_t *m)
{
    return json_is_array(json_object_get(m, "manifests"));
}

/* An index or manifest list: the manifest for the wanted platform. */
static json_t *pick_platform(struct reg *g, json_t *index, const struct want_platform *want,
                             char digest[72], struct serr *err)
{
    json_t *manifests = json_object_get(index, "manifests");
    size_t i;
    json_t *d;
    json_array_foreach(manifests, i, d)
    {
        if (!platform_matches(d, want))
            continue;
        const char *dd = jstr(d, "digest");
        if (!digest_ok(dd)) {
            serr_set(err, SERR_INVALID, "%s: index entry %zu has an invalid digest", g->ref.name,
                     i);
            return NULL;
        }
        return fetch_manifest(g, dd, digest, err);
    }
    char *have = list_platforms(manifests);
    serr_set(err, SERR_NOT_FOUND, NO_PLATFORM "%s/%s%s%s in %s (it has: %s)", want->os, want->arch,
             want->variant[0] ? "/" : "", want->variant, g->ref.name,
             have[0] ? have : "no platforms");
    free(have);
    return NULL;
}

bool registry_missing_platform(const struct serr *err)
{
    return err->kind == SERR_NOT_FOUND && strncmp(err->msg, NO_PLATFORM, strlen(NO_PLATFORM)) == 0;
}

/* ---- blobs -------------------------------------------------------------- */

static int fetch_config(struct reg *g, const char *digest, struct reply *r, struct serr *err)
{
    char *what = xasprintf("blobs/%s", digest);
    int rc = api_get(g, what, NULL, MAX_CONFIG, r, err);
    free(what);
    if (rc < 0)
        return serr_wrap(err, "config %s", digest);
    char got[72] = "";
    if (r->status == 200)
        reg_digest_of(r->body, r->len, got);
    if (r->status != 200)
        rc = serr_set(err, r->status == 404 ? SERR_NOT_FOUND : SERR_UNAVAILABLE,
                      "config %s: registry answered %ld", digest, r->status);
    else if (strcmp(got, digest) != 0)
        rc = serr_set(err, SERR_INVALID, "config blob %s does not match its digest (got %s)",
                      digest, got);
    if (rc < 0)
        reg_reply_free(r);
    return rc;
}

/* One layer download. */
struct xfer {
    struct reg *g;
    CURL *h;
    struct curl_slist *headers;
    char digest[72], diff_id[72], id[13];
    char *path; /* spool file */
    int fd;
    EVP_MD_CTX *md;
    uint64_t got, size; /* size 0: not given */
    bool too_big, write_failed;
    int64_t last_progress;
    char errbuf[CURL_ERROR_SIZE];
    bool done, ok;
    char error[400];
};

static size_t xfer_write(char *data, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return len; /* an error page: not the blob, not hashed */
    if (x->size && x->got + len > x->size) {
        x->too_big = true;
        return 0;
    }
    if (write_all(x->fd, data, len) < 0) {
        snprintf(x->error, sizeof(x->error), "blob %s: write %s: %s", x->digest, x->path,
                 strerror(errno));
        x->write_failed = true;
        return 0;
    }
    EVP_DigestUpdate(x->md, data, len);
    x->got += len;
    int64_t now = mono_ms();
    if (now - x->last_progress >= PROGRESS_EVERY_MS) {
        x->last_progress = now;
        reg_progress(x->g, x->id, "Downloading", x->got, x->size);
    }
    return len;
}

static int xfer_start(struct xfer *x, struct serr *err)
{
    char *tmpl = xasprintf("%s/blob-XXXXXX", x->g->o->spool_dir);
    x->fd = mkostemp(tmpl, O_CLOEXEC);
    if (x->fd < 0) {
        serr_errno(err, "create a spool file in %s", x->g->o->spool_dir);
        free(tmpl);
        return -1;
    }
    x->path = tmpl;
    x->md = EVP_MD_CTX_new();
    if (x->md == NULL || EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) != 1)
        abort();
    char *url = xasprintf("%s/v2/%s/blobs/%s", x->g->base, x->g->ref.path, x->digest);
    if (x->g->authz)
        x->headers = curl_slist_append(NULL, x->g->authz);
    x->h = reg_easy_new(x->g, url, x->headers, x->errbuf);
    free(url);
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, xfer_write);
    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
    reg_progress(x->g, x->id, "Pulling fs layer", 0, 0);
    return 0;
}

/* A transfer ended: its status, size and digest decide. */
static void xfer_finish(struct xfer *x, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    close(x->fd);
    x->fd = -1;
    x->done = true;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(x->md, md, &mdlen);
    char got[72];
    reg_format_digest(md, mdlen, got);
    if (x->write_failed)
        return;
    if (x->too_big)
        snprintf(x->error, sizeof(x->error),
                 "blob %s is larger than the %" PRIu64 " bytes its manifest gives", x->digest,
                 x->size);
    else if (rc != CURLE_OK)
        snprintf(x->error, sizeof(x->error), "blob %s: %s", x->digest,
                 reg_curl_message(rc, x->errbuf));
    else if (status != 200)
        snprintf(x->error, sizeof(x->error), "blob %s: registry %s answered %ld", x->digest,
                 x->g->ref.domain, status);
    else if ((x->size && x->got != x->size) || strcmp(got, x->digest) != 0)
        snprintf(x->error, sizeof(x->error),
                 "blob %s does not match its digest (got %s, %" PRIu64 " bytes): refused",
                 x->digest, got, x->got);
    else {
        x->ok = true;
        reg_progress(x->g, x->id, "Download complete", x->got, x->size);
    }
}

static void xfer_free(struct xfer *x)
{
    if (x->h)
        curl_easy_cleanup(x->h);
    curl_slist_free_all(x->headers);
    if (x->fd >= 0)
        close(x->fd);
    if (x->path) {
        unlink(x->path);
        free(x->path);
    }
    EVP_MD_CTX_free(x->md);
}

/* Runs the transfers, `parallel` at a time, until all are done or one fails. */
static int download_all(struct reg *g, struct xfer *xs, size_t n, struct serr *err)
{
    CURLM *m = curl_multi_init();
    int parallel = g->o->parallel > 0 ? g->o->parallel : DEFAULT_PARALLEL;
    size_t next = 0, done = 0;
    int running = 0, rc = 0;
    while (rc == 0 && done < n) {
        while (next < n && running < parallel) {
            if (xfer_start(&xs[next], err) < 0) {
                rc = -1;
                break;
            }
            curl_multi_add_handle(m, xs[next++].h);
            running++;
        }
        if (rc < 0)
            break;
        int still = 0;
        curl_multi_perform(m, &still);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            struct xfer *x = (struct xfer *)(void *)priv;
            xfer_finish(x, msg->data.result);
            curl_multi_remove_handle(m, x->h);
            running--;
            done++;
            if (!x->ok && rc == 0)
                rc = serr_set(err, x->write_failed ? SERR_INTERNAL : SERR_INVALID, "%s", x->error);
        }
        if (rc == 0 && done < n && still > 0)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    for (size_t i = 0; i < n; i++)
        if (xs[i].h && !xs[i].done)
            curl_multi_remove_handle(m, xs[i].h);
    curl_multi_cleanup(m);
    return rc;
}

/* ---- pull --------------------------------------------------------------- */

struct plan {
    json_t *manifest;    /* the platform's image manifest */
    json_t *platforms;   /* an index's platforms (index_platforms), or NULL */
    char top_digest[72]; /* what the tag points at (index or manifest) */
    struct reply config;
};

static int resolve_manifest(struct reg *g, struct plan *p, struct serr *err)
{
    struct want_platform want;
    if (parse_platform(g->o->platform ? g->o->platform : registry_host_platform(), &want, err) < 0)
        return -1;
    const char *what = g->ref.digest[0] ? g->ref.digest : g->ref.tag;
    json_t *m = fetch_manifest(g, what, p->top_digest, err);
    if (m && is_index(m)) {
        char digest[72];
        p->platforms = index_platforms(json_object_get(m, "manifests"));
        json_t *chosen = pick_platform(g, m, &want, digest, err);
        json_decref(m);
        m = chosen;
        if (m && is_index(m)) {
            json_decref(m);
            m = NULL;
            serr_set(err, SERR_INVALID, "%s: an index inside an index is not supported",
                     g->ref.name);
        }
    }
    if (m == NULL)
        return -1;
    p->manifest = m;
    return 0;
}

/* The layers to download: those whose diff_id the store lacks. */
static int plan_layers(struct reg *g, struct plan *p, struct xfer **out, size_t *count,
                       struct serr *err)
{
    json_t *layers = json_object_get(p->manifest, "layers");
    const char *cfg_digest = jstr(json_object_get(p->manifest, "config"), "digest");
    if (!json_is_array(layers) || !digest_ok(cfg_digest))
        return serr_set(err, SERR_INVALID, "%s: manifest without a valid config or layers",
                        g->ref.name);
    if (fetch_config(g, cfg_digest, &p->config, err) < 0)
        return -1;
    json_t *cfg = json_loadb(p->config.body, p->config.len, 0, NULL);
    json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    int rc = 0;
    if (!json_is_array(diff_ids) || json_array_size(diff_ids) != json_array_size(layers))
        rc = serr_set(err, SERR_INVALID, "%s: the config's rootfs.diff_ids do not match the layers",
                      g->ref.name);
    struct xfer *xs = xcalloc(json_array_size(layers) + 1, sizeof(*xs));
    size_t n = 0, i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        if (rc < 0)
            break;
        const char *digest = jstr(l, "digest");
        const char *diff = json_string_value(json_array_get(diff_ids, i));
        json_int_t size = json_integer_value(json_object_get(l, "size"));
        if (!digest_ok(digest) || !digest_ok(diff) || size < 0) {
            rc = serr_set(err, SERR_INVALID, "%s: layer %zu has an invalid digest or size",
                          g->ref.name, i);
            break;
        }
        char id[13];
        reg_short_id(digest, id);
        char *dir = image_layer_dir(g->store, diff);
        if (dir) {
            reg_progress(g, id, "Already exists", 0, 0);
            free(dir);
            continue;
        }
        struct xfer *x = &xs[n++];
        x->g = g;
        x->fd = -1;
        x->size = (uint64_t)size;
        snprintf(x->digest, sizeof(x->digest), "%s", digest);
        snprintf(x->diff_id, sizeof(x->diff_id), "%s", diff);
        memcpy(x->id, id, sizeof(x->id));
    }
    json_decref(cfg);
    *out = xs;
    *count = n;
    return rc;
}

/* Unpacks the downloaded layers into the store, bottom first. */
static int store_layers(struct reg *g, struct xfer *xs, size_t n, struct serr *err)
{
    for (size_t i = 0; i < n; i++) {
        reg_progress(g, xs[i].id, "Extracting", 0, 0);
        if (image_add_layer(g->store, xs[i].path, xs[i].diff_id, err) < 0)
            return serr_wrap(err, "layer %s", xs[i].digest);
        reg_progress(g, xs[i].id, "Pull complete", 0, 0);
        unlink(xs[i].path);
    }
    return 0;
}

static json_t *image_of(struct reg *g, struct plan *p, struct serr *err)
{
    json_t *tags = json_array();
    if (g->ref.tag[0] && g->ref.digest[0] == '\0')
        json_array_append_new(tags, json_sprintf("%s:%s", g->ref.name, g->ref.tag));
    json_t *image = NULL;
    if (image_describe_config(g->store, p->config.body, p->config.len, tags, &image, err) == 0) {
        json_object_set_new(image, "digests", json_pack("[s++]", g->ref.name, "@", p->top_digest));
        json_t *cfg = json_loadb(p->config.body, p->config.len, 0, NULL);
        const char *os = jstr(cfg, "os");
        const char *arch = jstr(cfg, "architecture");
        const char *variant = jstr(cfg, "variant");
        if (os && arch)
            json_object_set_new(
                image, "platform",
                json_sprintf("%s/%s%s%s", os, arch, variant ? "/" : "", variant ? variant : ""));
        json_decref(cfg);
        if (p->platforms) /* the other variants, for nodes of other platforms */
            json_object_set(image, "platforms", p->platforms);
    }
    json_decref(tags);
    return image;
}

int reg_open(struct reg *g, const struct registry_opts *o, const char *ref, bool push,
             struct serr *err)
{
    memset(g, 0, sizeof(*g));
    g->o = o;
    g->push = push;
    if (image_parse_ref(ref, &g->ref, err) < 0)
        return -1;
    if (check_allowed(o, g->ref.domain, err) < 0)
        return -1;
    g->insecure = registry_is_insecure(o->insecure, g->ref.domain);
    char *scope = xasprintf("repository:%s:%s", g->ref.path, push ? "pull,push" : "pull");
    int rc = ping(g, scope, err);
    free(scope);
    return rc;
}

int registry_pull(struct image_store *s, const struct registry_opts *o, const char *ref,
                  json_t **image, int *fetched, struct serr *err)
{
    struct reg g;
    struct plan p = {0};
    struct xfer *xs = NULL;
    size_t n = 0;
    *image = NULL;
    *fetched = 0;
    int rc = reg_open(&g, o, ref, false, err);
    g.store = s;
    if (rc == 0) {
        char line[400];
        snprintf(line, sizeof(line), "%s: Pulling from %s", g.ref.tag[0] ? g.ref.tag : g.ref.digest,
                 g.ref.path);
        reg_progress(&g, "", line, 0, 0);
        rc = resolve_manifest(&g, &p, err);
    }
    if (rc == 0)
        rc = plan_layers(&g, &p, &xs, &n, err);
    if (rc == 0)
        rc = download_all(&g, xs, n, err);
    if (rc == 0)
        rc = store_layers(&g, xs, n, err);
    if (rc == 0 && (*image = image_of(&g, &p, err)) == NULL)
        rc = -1;
    if (rc == 0) {
        *fetched = (int)n;
        char line[100];
        snprintf(line, sizeof(line), "Digest: %s", p.top_digest);
        reg_progress(&g, "", line, 0, 0);
    }
    for (size_t i = 0; xs && i < n; i++)
        xfer_free(&xs[i]);
    free(xs);
    json_decref(p.manifest);
    json_decref(p.platforms);
    reg_reply_free(&p.config);
    free(g.authz);
    return rc;
}

int registry_resolve(const struct registry_opts *o, const char *ref, char digest[72],
                     struct serr *err)
{
    struct reg g;
    int rc = reg_open(&g, o, ref, false, err);
    if (rc == 0) {
        json_t *m = fetch_manifest(&g, g.ref.digest[0] ? g.ref.digest : g.ref.tag, digest, err);
        rc = m ? 0 : -1;
        json_decref(m);
    }
    free(g.authz);
    return rc;
}

int registry_login(const struct registry_opts *o, const char *registry, struct serr *err)
{
    struct reg g;
    memset(&g, 0, sizeof(g));
    g.o = o;
    char ref[400];
    snprintf(ref, sizeof(ref), "%s/login-check", registry);
    if (image_parse_ref(ref, &g.ref, err) < 0)
        return serr_set(err, SERR_INVALID, "invalid registry address '%s'", registry);
    if (strcmp(registry, "docker.io") == 0 || strcmp(registry, "index.docker.io") == 0)
        snprintf(g.ref.domain, sizeof(g.ref.domain), "%s", IMAGE_DEFAULT_DOMAIN);
    else if (strcmp(g.ref.domain, registry) != 0)
        return serr_set(err, SERR_INVALID,
                        "invalid registry address '%s': expected HOST[:PORT] with a '.' or ':' "
                        "(or localhost)",
                        registry);
    if (check_allowed(o, g.ref.domain, err) < 0)
        return -1;
    g.insecure = registry_is_insecure(o->insecure, g.ref.domain);
    int rc = ping(&g, NULL, err);
    if (rc == 0 && g.authz && strncmp(g.authz, "Authorization: Basic", 20) == 0) {
        /* basic: the server must take these credentials on /v2/ */
        struct reply r;
        char *url = xasprintf("%s/v2/", g.base);
        rc = get_mem(&g, url, NULL, true, NULL, NULL, MAX_TOKEN, &r, err);
        free(url);
        if (rc == 0 && r.status != 200)
            rc = reg_unauthorized(&g, err);
        reg_reply_free(&r);
    }
    free(g.authz);
    return rc;
}
