/* Internals shared by the registry client's files: registry.c (HTTP,
 * authentication, pull, login) and registry_push.c (push). */
#ifndef SHOAL_AGENT_REGISTRY_INT_H
#define SHOAL_AGENT_REGISTRY_INT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/registry.h"

#define MAX_TOKEN (1024 * 1024) /* cap on small answers (tokens, errors) */
#define PROGRESS_EVERY_MS 300

/* One conversation with a registry about one repository. */
struct reg {
    const struct registry_opts *o;
    struct image_ref ref;
    char base[300]; /* "https://host:port" */
    char *authz;    /* "Authorization: ..." header, or NULL */
    bool insecure;
    bool push; /* scopes ask for pull,push; errors say "push" */
    struct image_store *store;
};

struct reply {
    long status;
    char *body;
    size_t len, cap, max;
    bool too_big;
    char challenge[1024]; /* WWW-Authenticate of the last response */
    char content_type[128];
    char location[2048]; /* Location (upload sessions) */
};

/* Frees the body and clears the reply. */
void reg_reply_free(struct reply *r);
/* curl callbacks filling a struct reply (body capped at r->max; headers:
 * WWW-Authenticate, Content-Type, Location). */
size_t reg_mem_write(char *data, size_t size, size_t n, void *arg);
size_t reg_header_cb(char *line, size_t size, size_t n, void *arg);
/* A new easy handle with the options every request shares (timeouts,
 * protocols, insecure TLS); `headers` and `errbuf` outlive it. */
CURL *reg_easy_new(struct reg *g, const char *url, struct curl_slist *headers, char *errbuf);
const char *reg_curl_message(CURLcode rc, const char *errbuf);
/* The registry's own error text, ": CODE: message", or "". */
void reg_error_text(const struct reply *r, char *out, size_t outlen);
/* Answers a 401's challenge for `scope`: sets g->authz. */
int reg_answer_challenge(struct reg *g, const char *challenge, const char *scope, struct serr *err);
/* The 401 message: wrong credentials, or "pull/push access denied". */
int reg_unauthorized(struct reg *g, struct serr *err);
/* "sha256:<hex>" of a finished hash, of a buffer; the 12-hex short id. */
void reg_format_digest(const unsigned char *md, unsigned int mdlen, char out[72]);
void reg_digest_of(const void *data, size_t len, char out[72]);
void reg_short_id(const char *digest, char out[13]);
/* Reports progress through g->o->progress when set. */
void reg_progress(struct reg *g, const char *id, const char *status, uint64_t cur, uint64_t total);
/* Parses `ref`, checks allowed-registries, pings /v2/ (scheme, challenge for
 * pull, or pull,push when `push`). The caller frees g->authz. */
int reg_open(struct reg *g, const struct registry_opts *o, const char *ref, bool push,
             struct serr *err);

#endif
