/* Image routes: uploads are unpacked in the thread pool, then the images'
 * descriptions and tags are proposed to Raft. */
#include <stdlib.h>
#include <string.h>

#include "agent/image.h"
#include "agent/registry.h"
#include "api/api_int.h"
#include "base/log.h"
#include "base/platform.h"
#include "base/util.h"
#include "daemon/layers.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "http/json_lines.h"
#include "manager/service.h"
#include "raft/cluster.h"
#include "store/store.h"

static json_t *image_tags(struct shoal *sh, const char *image_id)
{
    json_t *tags = store_list_where(sh->store, "tags", "image_id", image_id);
    json_t *names = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) json_array_append(names, json_object_get(t, "id"));
    json_decref(tags);
    return names;
}

static json_t *image_view(struct shoal *sh, json_t *img)
{
    json_t *v = json_deep_copy(img);
    json_object_set_new(v, "tags", image_tags(sh, json_string_value(json_object_get(img, "id"))));
    return v;
}

json_t *images_with_tags(struct shoal *sh)
{
    json_t *all = store_list(sh->store, "images", NULL);
    json_t *out = json_array();
    size_t i;
    json_t *img;
    json_array_foreach(all, i, img) json_array_append_new(out, image_view(sh, img));
    json_decref(all);
    return out;
}

void get_images(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    respond_json(req, 200, images_with_tags(sh));
}

/* GET /v1/images/{ref|id}: one image, tags and repository digests included. */
void get_image(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    struct serr err = {0};
    json_t *img = image_resolve(sh->store, args[0], &err);
    if (img == NULL) {
        http_respond_error(req, &err);
        return;
    }
    respond_json(req, 200, image_view(sh, img));
    json_decref(img);
}

struct upload {
    struct shoal *sh;
    struct http_req *req;
    uv_work_t work;
    char ref[512]; /* import: the normalised NAME:TAG */
    bool load;
    json_t *images; /* result: array of descriptions */
    struct serr err;
};

static void upload_work(uv_work_t *w)
{
    struct upload *u = w->data;
    if (u->load) {
        image_load(u->sh->images, u->req->body_file, &u->images, &u->err);
        return;
    }
    json_t *img = NULL;
    if (image_import(u->sh->images, u->req->body_file, u->ref, &img, &u->err) == 0)
        u->images = json_pack("[o]", img);
}

json_t *image_ops(json_t *images, int64_t now)
{
    json_t *group = json_array();
    size_t i, k;
    json_t *img, *tag;
    json_array_foreach(images, i, img)
    {
        json_t *stored = json_deep_copy(img);
        json_object_del(stored, "tags");
        json_object_set_new(stored, "created_at", json_integer(now));
        json_array_foreach(json_object_get(img, "tags"), k, tag)
        {
            json_array_append_new(group, op_put("tags", json_pack("{s:O, s:O}", "id", tag,
                                                                  "image_id",
                                                                  json_object_get(img, "id"))));
        }
        json_array_append_new(group, op_put("images", stored));
    }
    return group;
}

/* The daemon's spool file is no business of the client's: its path in a
 * message becomes "the upload". */
static void hide_spool_path(struct serr *err, const char *spool_path)
{
    size_t plen = spool_path ? strlen(spool_path) : 0;
    char *at;
    while (plen > 0 && (at = strstr(err->msg, spool_path)) != NULL) {
        static const char word[] = "the upload";
        size_t tail = strlen(at + plen) + 1;
        if (plen < sizeof(word) - 1)
            return; /* never longer than the message it replaces */
        memcpy(at, word, sizeof(word) - 1);
        memmove(at + sizeof(word) - 1, at + plen, tail);
    }
}

/* The images are in the store (or will never be): their layers are the
 * GC's to judge again. */
static void upload_committed(void *arg, int status, const struct serr *err)
{
    struct upload *u = arg;
    if (status < 0) {
        http_respond_error(u->req, err);
    } else {
        json_t *reply = u->load ? json_incref(u->images) : json_incref(json_array_get(u->images, 0));
        respond_json(u->req, u->load ? 200 : 201, reply);
    }
    layers_release(u->sh);
    json_decref(u->images);
    free(u);
}

static void upload_done(uv_work_t *w, int status)
{
    struct upload *u = w->data;
    if (u->images != NULL && require_leader(u->sh, u->req)) {
        cluster_propose(u->sh->cluster, image_ops(u->images, now_ms()), upload_committed, u);
        return;
    }
    if (u->images == NULL) {
        hide_spool_path(&u->err, u->req->body_file);
        http_respond_error(u->req, &u->err);
    }
    layers_release(u->sh);
    json_decref(u->images);
    free(u);
}

static void start_upload(struct shoal *sh, struct http_req *req, struct upload *u)
{
    u->sh = sh;
    u->req = req;
    u->work.data = u;
    layers_hold(sh); /* the layers it stores are not the GC's until committed */
    uv_queue_work(sh->loop, &u->work, upload_work, upload_done);
}

void post_image_import(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    char name[512];
    struct serr err = {0};
    if (!http_query_get(req, "name", name, sizeof(name)) || name[0] == '\0') {
        respond_err(req, SERR_INVALID, "import needs ?name=NAME[:TAG]");
        return;
    }
    struct upload *u = xcalloc(1, sizeof(*u));
    if (image_normalize_ref(name, u->ref, sizeof(u->ref), &err) < 0) {
        http_respond_error(req, &err);
        free(u);
        return;
    }
    if (req->body_file == NULL) {
        respond_err(req, SERR_INVALID, "import needs a tarball as the request body");
        free(u);
        return;
    }
    start_upload(sh, req, u);
}

void post_image_load(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    if (req->body_file == NULL) {
        respond_err(req, SERR_INVALID, "load needs an image archive as the request body");
        return;
    }
    struct upload *u = xcalloc(1, sizeof(*u));
    u->load = true;
    start_upload(sh, req, u);
}

/* ---- pulls from registries ---- */

/* POST /v1/images/pull {"ref", "platform"?, "username"?, "password"?}: the
 * leader pulls in the thread pool and streams progress as JSON lines
 * ({"id","status","current","total"}); the last line is {"image": ...,
 * "status": "Status: ..."} once the image is committed, or {"error": msg}.
 * The layers stay on the leader; other nodes fetch them from managers. */
struct pull {
    struct shoal *sh;
    struct http_req *req; /* NULL once the client went away */
    uv_work_t work;
    struct json_lines lines; /* progress from the thread */
    char *ref, *platform, *username, *password, *spool;
    json_t *image; /* result (push: the image to push) */
    int fetched;   /* layers downloaded (push: blobs uploaded) */
    bool new_tag;
    bool push;
    int rc;
    char digest[72]; /* push: the manifest's */
    struct serr err;
    /* image_pull_then: no stream; `then` continues the request with obj */
    image_pulled_fn then;
    json_t *obj;
    char *arg;
    json_t *platforms; /* image_pull_then: the nodes' platforms, the leader's first */
    json_t *variants;  /* the images pulled for them (pull_variants) */
    bool best_effort;  /* the image is stored already: a failed pull goes on without */
    bool background;   /* no request: image_pull_missing_variants */
};

static void pull_send(void *arg, json_t *line /* stolen */)
{
    struct pull *p = arg;
    if (p->req && p->then == NULL)
        http_stream_json_line(p->req, line);
    json_decref(line);
}

static void pull_progress(void *arg, const char *id, const char *status, uint64_t cur,
                          uint64_t total)
{
    struct pull *p = arg;
    json_t *line = json_pack("{s:s, s:s}", "id", id, "status", status);
    if (total || cur) {
        json_object_set_new(line, "current", json_integer((json_int_t)cur));
        json_object_set_new(line, "total", json_integer((json_int_t)total));
    }
    json_lines_queue(&p->lines, line);
}

/* An image for each of p->platforms, all from the index the tag points at
 * now (resolved once, then pulled by digest): a platform the index lacks is
 * skipped (that node's tasks are refused with the list of those it has).
 * The first image pulled keeps the tag. */
static void pull_variants(struct pull *p, struct registry_opts *o)
{
    struct image_ref r;
    char digest[72];
    if (image_parse_ref(p->ref, &r, &p->err) < 0 ||
        registry_resolve(o, p->ref, digest, &p->err) < 0)
        return;
    char *pinned = xasprintf("%s@%s", r.name, digest);
    struct serr missing = {0};
    p->variants = json_array();
    size_t i;
    json_t *platform;
    json_array_foreach(p->platforms, i, platform)
    {
        struct serr err = {0};
        json_t *img = NULL;
        int fetched = 0;
        o->platform = json_string_value(platform);
        if (registry_pull(p->sh->images, o, pinned, &img, &fetched, &err) < 0) {
            if (!registry_missing_platform(&err)) {
                p->err = err;
                json_array_clear(p->variants);
                break;
            }
            if (missing.msg[0] == '\0')
                missing = err;
            continue;
        }
        bool again = false; /* "linux/arm64" and "linux/arm64/v8": one manifest */
        size_t k;
        json_t *v;
        json_array_foreach(p->variants, k, v)
        {
            again = again || json_equal(json_object_get(v, "id"), json_object_get(img, "id"));
        }
        if (again)
            json_decref(img);
        else
            json_array_append_new(p->variants, img);
    }
    free(pinned);
    p->image = json_incref(json_array_get(p->variants, 0));
    if (p->image == NULL && p->err.msg[0] == '\0')
        p->err = missing;
    if (p->image && r.tag[0] && r.digest[0] == '\0')
        json_object_set_new(p->image, "tags", json_pack("[s++]", r.name, ":", r.tag));
}

static void pull_work(uv_work_t *w)
{
    struct pull *p = w->data;
    const char *const *insecure = (const char *const *)p->sh->insecure_registries;
    struct registry_opts o = {.spool_dir = p->spool,
                              .platform = p->platform,
                              .insecure = insecure,
                              .username = p->username,
                              .allowed = (const char *const *)p->sh->allowed_registries,
                              .password = p->password,
                              .progress = p->then ? NULL : pull_progress,
                              .progress_arg = p};
    if (p->push)
        p->rc = registry_push(p->sh->images, &o, p->ref, p->image, p->digest, &p->fetched, &p->err);
    else if (p->platforms)
        pull_variants(p, &o);
    else
        registry_pull(p->sh->images, &o, p->ref, &p->image, &p->fetched, &p->err);
}

static void pull_closed(void *arg)
{
    struct pull *p = arg;
    json_decref(p->image);
    free(p->ref);
    free(p->platform);
    free(p->username);
    free(p->password);
    free(p->spool);
    json_decref(p->obj);
    json_decref(p->platforms);
    json_decref(p->variants);
    free(p->arg);
    free(p);
}

/* image_pull_then's end: the request goes on with the image pinned, or
 * gets the error. */
static void pull_continue(struct pull *p, json_t *last)
{
    struct http_req *req = p->req;
    if (req == NULL)
        return;
    req->on_abort = NULL;
    const char *error = json_string_value(json_object_get(last, "error"));
    if (error && p->best_effort) { /* stored already: the nodes lacking a variant say so */
        p->then(p->sh, req, p->obj, p->arg);
        return;
    }
    if (error) {
        struct serr err;
        serr_set(&err, SERR_NOT_FOUND, "No such image: %s (pull: %s)", p->ref, error);
        http_respond_error(req, &err);
        return;
    }
    struct image_ref r;
    const char *digests =
        json_string_value(json_array_get(json_object_get(p->image, "digests"), 0));
    const char *at = digests ? strchr(digests, '@') : NULL;
    if (image_parse_ref(p->ref, &r, NULL) == 0 && at) {
        json_object_set_new(p->obj, "image",
                            json_sprintf("%s%s%s%s", r.name, r.tag[0] ? ":" : "", r.tag, at));
    }
    p->then(p->sh, req, p->obj, p->arg);
}

/* The last line, the end of the stream, and the pull's resources. */
static void pull_end(struct pull *p, json_t *last /* stolen */)
{
    json_lines_flush(&p->lines);
    const char *error = json_string_value(json_object_get(last, "error"));
    if (p->background && error)
        log_warn("pull of %s for the nodes' platforms: %s", p->ref, error);
    else if (p->background)
        log_info("pulled %s for the nodes' platforms (%zu variants)", p->ref,
                 json_array_size(p->variants));
    if (p->then) {
        pull_continue(p, last);
        json_decref(last);
    } else {
        pull_send(p, last);
        if (p->req) {
            p->req->on_abort = NULL;
            http_stream_end(p->req);
        }
    }
    layers_release(p->sh);
    json_lines_close(&p->lines, pull_closed);
}

static void pull_committed(void *arg, int status, const struct serr *err)
{
    struct pull *p = arg;
    if (status < 0) {
        pull_end(p, json_pack("{s:s}", "error", err->msg));
        return;
    }
    const char *tag = json_string_value(json_array_get(json_object_get(p->image, "tags"), 0));
    const char *digest = json_string_value(json_array_get(json_object_get(p->image, "digests"), 0));
    const char *name = tag ? tag : digest;
    char line[700];
    snprintf(line, sizeof(line), "Status: %s %s",
             p->fetched > 0 || p->new_tag ? "Downloaded newer image for"
                                          : "Image is up to date for",
             name ? name : "");
    pull_end(p, json_pack("{s:s, s:s, s:O}", "id", "", "status", line, "image", p->image));
}

/* Another image's digests stay with the stored description. */
static void merge_digests(struct shoal *sh, json_t *image)
{
    json_t *old = store_get(sh->store, "images", json_string_value(json_object_get(image, "id")));
    json_t *digests = json_object_get(image, "digests");
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(old, "digests"), i, d)
    {
        bool have = false;
        size_t k;
        json_t *e;
        json_array_foreach(digests, k, e) have = have || json_equal(d, e);
        if (!have)
            json_array_append(digests, d);
    }
    json_decref(old);
}

static void pull_done(uv_work_t *w, int status)
{
    struct pull *p = w->data;
    if (p->image == NULL) {
        pull_end(p, json_pack("{s:s}", "error", p->err.msg));
        return;
    }
    if (!cluster_is_leader(p->sh->cluster)) {
        pull_end(p, json_pack("{s:s}", "error",
                              "this manager lost the leadership during the "
                              "pull: try again"));
        return;
    }
    json_t *images = p->variants ? json_incref(p->variants) : json_pack("[O]", p->image);
    size_t i;
    json_t *img;
    json_array_foreach(images, i, img) merge_digests(p->sh, img);
    const char *tag = json_string_value(json_array_get(json_object_get(p->image, "tags"), 0));
    json_t *old_tag = tag ? store_get(p->sh->store, "tags", tag) : NULL;
    p->new_tag =
        tag && !json_equal(json_object_get(old_tag, "image_id"), json_object_get(p->image, "id"));
    json_decref(old_tag);
    cluster_propose(p->sh->cluster, image_ops(images, now_ms()), pull_committed, p);
    json_decref(images);
}

/* ---- pushes to registries ---- */

/* The push is done (and its digest committed, or not: `note`). */
static void push_end(struct pull *p, const char *note)
{
    json_t *last = json_pack("{s:s, s:s, s:s, s:i}", "id", "", "status", note, "digest", p->digest,
                             "uploaded", p->fetched);
    json_t *img =
        store_get(p->sh->store, "images", json_string_value(json_object_get(p->image, "id")));
    json_object_set_new(last, "image", img ? image_view(p->sh, img) : json_incref(p->image));
    json_decref(img);
    pull_end(p, last);
}

static void push_committed(void *arg, int status, const struct serr *err)
{
    struct pull *p = arg;
    if (status < 0) {
        char note[600];
        snprintf(note, sizeof(note), "pushed, but the digest was not recorded: %s", err->msg);
        push_end(p, note);
        return;
    }
    push_end(p, "");
}

/* The registry has the image: NAME@DIGEST joins the image's digests (as a
 * pull records them), so `image ls --digests` and later pins show it. */
static void push_done(uv_work_t *w, int status)
{
    struct pull *p = w->data;
    if (p->rc < 0) {
        pull_end(p, json_pack("{s:s}", "error", p->err.msg));
        return;
    }
    struct image_ref r;
    json_t *stored =
        store_get(p->sh->store, "images", json_string_value(json_object_get(p->image, "id")));
    if (stored == NULL || !cluster_is_leader(p->sh->cluster) ||
        image_parse_ref(p->ref, &r, NULL) < 0) {
        json_decref(stored);
        push_end(p, "pushed; the image changed meanwhile: its digest was not recorded");
        return;
    }
    json_t *digests = json_object_get(stored, "digests");
    if (!json_is_array(digests)) {
        digests = json_array();
        json_object_set_new(stored, "digests", digests);
    }
    json_t *mine = json_sprintf("%s@%s", r.name, p->digest);
    size_t i;
    json_t *d;
    json_array_foreach(digests, i, d)
    {
        const char *s = json_string_value(d);
        if (s && strncmp(s, r.name, strlen(r.name)) == 0 && s[strlen(r.name)] == '@')
            break; /* the tag's digest before this push: replaced */
    }
    if (i < json_array_size(digests))
        json_array_set_new(digests, i, mine);
    else
        json_array_append_new(digests, mine);
    cluster_propose(p->sh->cluster, json_pack("[o]", op_put("images", stored)), push_committed, p);
}

static void pull_abort(struct http_req *req)
{
    struct pull *p = req->data;
    p->req = NULL; /* the pull goes on: its image is committed all the same */
}

static char *body_string(json_t *body, const char *key)
{
    const char *v = json_string_value(json_object_get(body, key));
    return v && v[0] ? xstrdup(v) : NULL;
}

static struct pull *pull_new(struct shoal *sh, struct http_req *req, const char *ref)
{
    struct pull *p = xcalloc(1, sizeof(*p));
    p->sh = sh;
    p->req = req;
    p->ref = xstrdup(ref);
    p->spool = shoal_state_path(sh, "tmp");
    return p;
}

static void pull_start(struct pull *p)
{
    json_lines_init(&p->lines, p->sh->loop, p, pull_send);
    p->work.data = p;
    if (p->req) { /* NULL: in the background (image_pull_missing_variants) */
        p->req->data = p;
        p->req->on_abort = pull_abort;
    }
    layers_hold(p->sh); /* the layers it stores are not the GC's until committed */
    uv_queue_work(p->sh->loop, &p->work, pull_work, p->push ? push_done : pull_done);
}

void image_pin(struct shoal *sh, json_t *obj)
{
    const char *ref = json_string_value(json_object_get(obj, "image"));
    struct image_ref r;
    if (ref == NULL || strchr(ref, '@') || image_parse_ref(ref, &r, NULL) < 0)
        return;
    json_t *img = image_resolve(sh->store, ref, NULL);
    size_t n = strlen(r.name), i;
    json_t *d;
    json_array_foreach(json_object_get(img, "digests"), i, d)
    {
        const char *s = json_string_value(d);
        if (s && strncmp(s, r.name, n) == 0 && s[n] == '@') {
            json_object_set_new(obj, "image", json_sprintf("%s:%s%s", r.name, r.tag, s + n));
            break;
        }
    }
    json_decref(img);
}

/* The platforms of the cluster's nodes, this one's first, each once. */
static json_t *node_platforms(struct shoal *sh)
{
    json_t *out = json_pack("[s]", registry_host_platform());
    json_t *nodes = store_list(sh->store, "nodes", NULL);
    size_t i, k;
    json_t *n, *have;
    json_array_foreach(nodes, i, n)
    {
        char platform[100];
        platform_format(json_object_get(n, "platform"), platform, sizeof(platform));
        bool known = platform[0] == '\0';
        json_array_foreach(out, k, have)
        {
            known = known || strcmp(json_string_value(have), platform) == 0;
        }
        if (!known)
            json_array_append_new(out, json_string(platform));
    }
    json_decref(nodes);
    return out;
}

/* A stored image from an index lacks the variant of one of `platforms`
 * (node_platforms). */
static bool variants_missing(struct shoal *sh, const char *ref, json_t *platforms)
{
    json_t *obj = json_pack("{s:s}", "image", ref);
    image_pin(sh, obj); /* NAME:TAG@DIGEST, as the service will be */
    const char *pinned = json_string_value(json_object_get(obj, "image"));
    json_t *variants = image_variants(sh->store, pinned);
    bool missing = false;
    size_t i;
    json_t *platform;
    json_array_foreach(platforms, i, platform)
    {
        struct serr err = {0};
        if (variants && !image_variant_for(variants, pinned, json_string_value(platform), &err))
            missing = missing || err.kind == SERR_UNAVAILABLE;
    }
    json_decref(variants);
    json_decref(obj);
    return missing;
}

bool image_needs_pull(struct shoal *sh, json_t *obj)
{
    const char *ref = json_string_value(json_object_get(obj, "image"));
    struct image_ref r;
    if (ref == NULL || image_parse_ref(ref, &r, NULL) < 0)
        return false;
    json_t *img = image_resolve(sh->store, ref, NULL);
    json_decref(img);
    if (img == NULL)
        return true;
    json_t *platforms = node_platforms(sh);
    bool missing = variants_missing(sh, ref, platforms);
    json_decref(platforms);
    return missing;
}

void image_pull_then(struct shoal *sh, struct http_req *req, json_t *obj, const char *arg,
                     image_pulled_fn then)
{
    const char *ref = json_string_value(json_object_get(obj, "image"));
    json_t *stored = image_resolve(sh->store, ref, NULL);
    struct pull *p = pull_new(sh, req, ref);
    json_t *auth = json_object_get(obj, "registry_auth");
    p->username = body_string(auth, "username");
    p->password = body_string(auth, "password");
    p->obj = json_incref(obj);
    p->arg = arg ? xstrdup(arg) : NULL;
    p->then = then;
    p->platforms = node_platforms(sh);
    p->best_effort = stored != NULL;
    json_decref(stored);
    pull_start(p);
}

void image_pull_missing_variants(struct shoal *sh)
{
    if (sh->cluster == NULL || !cluster_is_leader(sh->cluster))
        return;
    json_t *services = store_list(sh->store, "services", NULL);
    json_t *platforms = node_platforms(sh); /* read once, not per service */
    json_t *started = json_object(); /* one pull per pinned reference */
    size_t i;
    json_t *svc;
    json_array_foreach(services, i, svc)
    {
        const char *ref = json_string_value(json_object_get(json_object_get(svc, "spec"), "image"));
        if (ref == NULL || strchr(ref, '@') == NULL || json_object_get(started, ref) ||
            !variants_missing(sh, ref, platforms))
            continue;
        json_object_set_new(started, ref, json_true());
        struct pull *p = pull_new(sh, NULL, ref);
        p->platforms = json_deep_copy(platforms); /* its own: read by the pulling thread */
        p->background = true;
        log_info("pulling %s for the platforms of the nodes", ref);
        pull_start(p);
    }
    json_decref(started);
    json_decref(platforms);
    json_decref(services);
}

void post_image_pull(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *body = leader_body(sh, req);
    if (body == NULL)
        return;
    struct serr err = {0};
    struct image_ref ref;
    const char *text = json_string_value(json_object_get(body, "ref"));
    const char *platform = json_string_value(json_object_get(body, "platform"));
    if (text == NULL)
        serr_set(&err, SERR_INVALID, "pull needs {\"ref\": IMAGE}");
    if (err.msg[0] || image_parse_ref(text, &ref, &err) < 0 ||
        (platform && platform[0] && registry_check_platform(platform, &err) < 0)) {
        http_respond_error(req, &err);
        json_decref(body);
        return;
    }
    struct pull *p = pull_new(sh, req, text);
    p->platform = body_string(body, "platform");
    p->username = body_string(body, "username");
    p->password = body_string(body, "password");
    json_decref(body);
    http_stream_start(req, 200, "application/x-ndjson");
    pull_start(p);
}

/* POST /v1/registry/login {"registry","username","password"}: checks the
 * credentials against the registry (the CLI keeps them). */
struct login {
    struct http_req *req;
    struct shoal *sh;
    uv_work_t work;
    json_t *body;
    struct serr err;
    int rc;
};

static void login_work(uv_work_t *w)
{
    struct login *l = w->data;
    struct registry_opts o = {
        .insecure = (const char *const *)l->sh->insecure_registries,
        .username = json_string_value(json_object_get(l->body, "username")),
        .password = json_string_value(json_object_get(l->body, "password")),
    };
    l->rc = registry_login(&o, json_string_value(json_object_get(l->body, "registry")), &l->err);
}

static void login_done(uv_work_t *w, int status)
{
    struct login *l = w->data;
    if (l->rc < 0)
        http_respond_error(l->req, &l->err);
    else
        respond_json(l->req, 200, json_pack("{s:s}", "status", "Login Succeeded"));
    json_decref(l->body);
    free(l);
}

void post_registry_login(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *body = body_json(req, true);
    if (body == NULL)
        return;
    if (!json_is_string(json_object_get(body, "registry")) ||
        !json_is_string(json_object_get(body, "username")) ||
        !json_is_string(json_object_get(body, "password"))) {
        respond_err(req, SERR_INVALID, "login needs {\"registry\", \"username\", \"password\"}");
        json_decref(body);
        return;
    }
    struct login *l = xcalloc(1, sizeof(*l));
    l->req = req;
    l->sh = sh;
    l->body = body;
    l->work.data = l;
    uv_queue_work(sh->loop, &l->work, login_work, login_done);
}

/* A pinned "NAME:TAG@DIGEST" that resolves to the image. */
static bool pinned_to(struct shoal *sh, const char *ref, const char *image_id)
{
    if (ref == NULL || strchr(ref, '@') == NULL)
        return false;
    json_t *variants = image_variants(sh->store, ref); /* every platform's image of an index */
    bool same = false;
    size_t i;
    json_t *img;
    json_array_foreach(variants, i, img)
    {
        same = same || strcmp(json_string_value(json_object_get(img, "id")), image_id) == 0;
    }
    json_decref(variants);
    return same;
}

/* Services whose spec names the tag or the image id (or, when the image
 * itself goes, a digest pinned to it). */
static const char *image_user(struct shoal *sh, json_t *tags, const char *image_id, bool last)
{
    static char name[256];
    json_t *services = store_list(sh->store, "services", NULL);
    const char *user = NULL;
    size_t i, k;
    json_t *svc, *tag;
    json_array_foreach(services, i, svc)
    {
        const char *ref = json_string_value(json_object_get(json_object_get(svc, "spec"), "image"));
        bool uses = (ref && strcmp(ref, image_id) == 0) || (last && pinned_to(sh, ref, image_id));
        json_array_foreach(tags, k, tag) uses = uses || (ref && strcmp(ref, json_string_value(tag)) == 0);
        if (uses && user == NULL) {
            snprintf(name, sizeof(name), "%s", json_string_value(json_object_get(svc, "name")));
            user = name;
        }
    }
    json_decref(services);
    return user;
}

void delete_image(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    struct serr err = {0};
    json_t *img = image_resolve(sh->store, args[0], &err);
    if (img == NULL) {
        http_respond_error(req, &err);
        return;
    }
    const char *id = json_string_value(json_object_get(img, "id"));
    json_t *all_tags = image_tags(sh, id);
    char norm[512];
    json_t *tag = image_normalize_ref(args[0], norm, sizeof(norm), NULL) == 0
                      ? store_get(sh->store, "tags", norm)
                      : NULL;
    bool by_tag = tag != NULL;
    json_decref(tag);
    json_t *gone = by_tag ? json_pack("[s]", norm) : json_incref(all_tags);
    bool last = json_array_size(all_tags) <= json_array_size(gone);
    const char *user = image_user(sh, gone, id, last);
    if (user && !query_flag(req, "force")) {
        char msg[700];
        snprintf(msg, sizeof(msg), "unable to remove image %s: service %s uses it (use force)",
                 args[0], user);
        respond_err(req, SERR_CONFLICT, msg);
    } else {
        json_t *group = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(gone, i, t) json_array_append_new(group, op_del("tags", json_string_value(t)));
        if (last)
            json_array_append_new(group, op_del("images", id));
        json_t *reply = json_pack("{s:O, s:b}", "untagged", gone, "deleted", last);
        propose_and_reply(sh, req, group, 200, reply);
    }
    json_decref(gone);
    json_decref(all_tags);
    json_decref(img);
}

/* ---- tags ---- */

void post_image_tag(struct shoal *sh, struct http_req *req, char **args)
{
    json_t *body = leader_body(sh, req);
    if (body == NULL)
        return;
    struct serr err = {0};
    char target[512];
    const char *text = json_string_value(json_object_get(body, "target"));
    json_t *img = NULL;
    if (text == NULL)
        serr_set(&err, SERR_INVALID, "tag needs {\"target\": NAME[:TAG]}");
    else if (image_normalize_ref(text, target, sizeof(target), &err) == 0)
        img = image_resolve(sh->store, args[0], &err);
    json_decref(body);
    if (img == NULL) {
        http_respond_error(req, &err);
        return;
    }
    json_t *id = json_object_get(img, "id");
    json_t *group =
        json_pack("[o]", op_put("tags", json_pack("{s:s, s:O}", "id", target, "image_id", id)));
    propose_and_reply(sh, req, group, 201, json_pack("{s:O, s:s}", "id", id, "tag", target));
    json_decref(img);
}

/* POST /v1/images/{NAME[:TAG]}/push {"username"?, "password"?}: the leader
 * pushes the image from its store, streaming progress lines as a pull does;
 * the last line is {"id":"","status":"","digest","uploaded","image"} or
 * {"error"}. */
void post_image_push(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *body = body_json(req, false);
    if (body == NULL)
        return; /* malformed: answered */
    struct serr err = {0};
    struct image_ref ref;
    json_t *img = NULL;
    if (image_parse_ref(args[0], &ref, &err) == 0) {
        if (ref.digest[0])
            serr_set(&err, SERR_INVALID, "push needs NAME[:TAG], not a digest: %s", args[0]);
        else
            img = image_resolve(sh->store, args[0], &err);
    }
    if (img == NULL) {
        http_respond_error(req, &err);
        json_decref(body);
        return;
    }
    char norm[600];
    snprintf(norm, sizeof(norm), "%s:%s", ref.name, ref.tag);
    struct pull *p = pull_new(sh, req, norm);
    p->push = true;
    p->image = img;
    p->username = body_string(body, "username");
    p->password = body_string(body, "password");
    json_decref(body);
    http_stream_start(req, 200, "application/x-ndjson");
    pull_start(p);
}

/* GET /v1/images/{name|id}/history: the rows of image_history, each with
 * "id" (the image's on the newest row, "<missing>" below, as Docker
 * shows them). The config is in the store of the manager that stored the
 * image: a follower without it asks the leader. */
void get_image_history(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    struct serr err = {0};
    json_t *img = image_resolve(sh->store, args[0], &err);
    json_t *rows = NULL;
    const char *id = json_string_value(json_object_get(img, "id"));
    if (img && image_history(sh->images, id, &rows, &err) < 0 && err.kind == SERR_NOT_FOUND &&
        !cluster_is_leader(sh->cluster)) {
        json_decref(img);
        forward_to_leader(sh, req, "application/json");
        return;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
        json_object_set_new(row, "id", json_string(i ? "<missing>" : id));
    if (rows)
        respond_json(req, 200, rows);
    else
        http_respond_error(req, &err);
    json_decref(img);
}

void get_layer(struct shoal *sh, struct http_req *req, char **args)
{
    char *path = image_layer_blob(sh->images, args[0]);
    char *data = NULL;
    size_t len = 0;
    struct serr err = {0};
    if (path == NULL) {
        respond_err(req, SERR_NOT_FOUND, "layer not on this node");
    } else if (read_file(path, &data, &len, &err) < 0) {
        http_respond_error(req, &err);
    } else {
        http_respond(req, 200, "application/octet-stream", data, len);
    }
    free(data);
    free(path);
}
