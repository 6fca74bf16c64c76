/* Image references (imageref.h): Docker's grammar, pure string work. */
#include "model/imageref.h"

#include <stdio.h>
#include <string.h>

/* ---- digests ---------------------------------------------------------- */

bool image_parse_digest(const char *digest, char hex[IMAGE_HEX_LEN + 1])
{
    if (digest == NULL || strncmp(digest, "sha256:", 7) != 0)
        return false;
    const char *h = digest + 7;
    for (size_t i = 0; i < IMAGE_HEX_LEN; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return false;
    if (h[IMAGE_HEX_LEN] != '\0')
        return false;
    memcpy(hex, h, IMAGE_HEX_LEN + 1);
    return true;
}

/* ---- references --------------------------------------------------------- */

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* A path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*, over s[0..n). */
static bool path_component_ok(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (!is_lower_alnum(s[i]))
            return false;
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == n)
            return true;
        size_t sep = i;
        while (i < n && !is_lower_alnum(s[i]))
            i++;
        size_t seplen = i - sep;
        bool dashes = strspn(s + sep, "-") >= seplen;
        bool ok = dashes || (seplen == 1 && (s[sep] == '.' || s[sep] == '_')) ||
                  (seplen == 2 && s[sep] == '_' && s[sep + 1] == '_');
        if (!ok || i == n)
            return false;
    }
    return n > 0;
}

/* A registry host: letters, digits, '.', '-', then an optional :port. */
static bool domain_ok(const char *s, size_t n)
{
    size_t host = strcspn(s, ":");
    if (host > n)
        host = n;
    if (host == 0)
        return false;
    for (size_t i = 0; i < host; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-';
        if (!ok)
            return false;
    }
    if (host == n)
        return true;
    if (host + 1 == n)
        return false;
    for (size_t i = host + 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool looks_like_domain(const char *s, size_t n)
{
    return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && memcmp(s, "localhost", 9) == 0);
}

static bool name_ok(const char *name, size_t len)
{
    const char *p = name, *end = name + len;
    bool first = true;
    while (p <= end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = slash ? slash : end;
        size_t n = (size_t)(stop - p);
        bool ok = (first && slash && looks_like_domain(p, n)) ? domain_ok(p, n)
                                                              : path_component_ok(p, n);
        if (!ok)
            return false;
        if (!slash)
            return true;
        p = slash + 1;
        first = false;
    }
    return false;
}

static bool tag_ok(const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > 128 || tag[0] == '.' || tag[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = tag[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Docker Hub's names: "docker.io/library/x" and "library/x" are "x". */
static void set_familiar_name(struct image_ref *r)
{
    const char *path = r->path;
    bool hub = strcmp(r->domain, IMAGE_DEFAULT_DOMAIN) == 0;
    if (hub && strncmp(path, "library/", 8) == 0 && strchr(path + 8, '/') == NULL)
        path += 8;
    snprintf(r->name, sizeof(r->name), "%s%s%s", hub ? "" : r->domain, hub ? "" : "/", path);
}

/* Splits NAME into domain and path as Docker does: the first component is a
 * registry when it has a '.' or a ':' or is "localhost". */
static int split_domain(const char *ref, const char *name, size_t len, struct image_ref *r,
                        struct serr *err)
{
    const char *slash = memchr(name, '/', len);
    bool has_domain = slash && looks_like_domain(name, (size_t)(slash - name));
    const char *path = has_domain ? slash + 1 : name;
    size_t path_len = len - (size_t)(path - name);
    if (has_domain)
        snprintf(r->domain, sizeof(r->domain), "%.*s", (int)(slash - name), name);
    else
        snprintf(r->domain, sizeof(r->domain), "%s", IMAGE_DEFAULT_DOMAIN);
    if (strcmp(r->domain, "index.docker.io") == 0)
        snprintf(r->domain, sizeof(r->domain), "%s", IMAGE_DEFAULT_DOMAIN);
    bool hub = strcmp(r->domain, IMAGE_DEFAULT_DOMAIN) == 0;
    bool official = hub && memchr(path, '/', path_len) == NULL;
    int n = snprintf(r->path, sizeof(r->path), "%s%.*s", official ? "library/" : "", (int)path_len,
                     path);
    if (n < 0 || (size_t)n >= sizeof(r->path))
        return serr_set(err, SERR_INVALID, "reference '%s' is too long", ref);
    set_familiar_name(r);
    return 0;
}

int image_parse_ref(const char *ref, struct image_ref *r, struct serr *err)
{
    memset(r, 0, sizeof(*r));
    if (ref == NULL || *ref == '\0')
        return serr_set(err, SERR_INVALID, "empty image reference");
    const char *at = strchr(ref, '@');
    if (at) {
        char hex[IMAGE_HEX_LEN + 1];
        if (!image_parse_digest(at + 1, hex))
            return serr_set(err, SERR_INVALID,
                            "invalid reference '%s': a digest is sha256: and 64 hex digits", ref);
        snprintf(r->digest, sizeof(r->digest), "%s", at + 1);
    }
    size_t len = at ? (size_t)(at - ref) : strlen(ref);
    /* A ':' after the last '/' starts the tag; one before it is a registry port. */
    const char *slash = memrchr(ref, '/', len);
    const char *colon =
        memrchr(slash ? slash : ref, ':', len - (size_t)((slash ? slash : ref) - ref));
    size_t name_len = colon ? (size_t)(colon - ref) : len;
    if (colon)
        snprintf(r->tag, sizeof(r->tag), "%.*s", (int)(len - name_len - 1), colon + 1);
    else if (!at)
        snprintf(r->tag, sizeof(r->tag), "latest");
    if (name_len == 0 || name_len > 255 || !name_ok(ref, name_len))
        return serr_set(err, SERR_INVALID,
                        "invalid reference '%s': name must be lowercase letters, digits and "
                        "separators (. _ __ -), components split by '/'",
                        ref);
    if ((colon || !at) && (len - name_len > 129 || !tag_ok(r->tag)))
        return serr_set(err, SERR_INVALID,
                        "invalid reference '%s': tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
                        ref);
    return split_domain(ref, ref, name_len, r, err);
}

int image_normalize_ref(const char *ref, char *out, size_t outlen, struct serr *err)
{
    struct image_ref r;
    if (image_parse_ref(ref, &r, err) < 0)
        return -1;
    if (r.digest[0])
        return serr_set(err, SERR_INVALID, "invalid reference '%s': digests are not supported here",
                        ref);
    int n = snprintf(out, outlen, "%s:%s", r.name, r.tag);
    if (n < 0 || (size_t)n >= outlen)
        return serr_set(err, SERR_INVALID, "reference '%s' is too long", ref);
    return 0;
}
