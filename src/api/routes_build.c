/* POST /v1/images/build?t=NAME[:TAG]&dockerfile=PATH&buildargs=JSON&node=NODE:
 * the body is the build context (a tar, spooled to a file). The leader builds
 * in the thread pool (agent/build.h), streaming buildah's output as JSON lines
 * ({"stream": text}); the image is then committed as a load's, and the last
 * line is {"image": description, "status": "Successfully built ..."}, or
 * {"error": msg} when the build failed (nothing is committed then).
 *
 * With node=NODE (another node): the leader bundles the context with the
 * store's bases (build_bundle) and posts it to the node's POST
 * /v1/node/build over the cluster port (managers only, as node exec); the
 * node builds into its own store and relays its lines; its last line carries
 * the image and its config. The leader then fetches the layers from that
 * node (layers_fetch_from, GET /v1/layers/ as nodes fetch from managers),
 * stores the config and commits the image: every node gets it from the
 * managers as any image. The builder keeps the layers from its GC for
 * BUILD_KEEP_MS, time for the leader to fetch them. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/build.h"
#include "agent/image.h"
#include "agent/registry.h"
#include "api/api_int.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/layers.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "http/http_aclient.h"
#include "http/json_lines.h"
#include "raft/cluster.h"

#define BUILD_KEEP_MS (10 * 60 * 1000)

struct build {
    struct shoal *sh;
    struct http_req *req; /* NULL once the client went away */
    uv_work_t work;
    struct json_lines lines; /* output from the thread */
    char tag[600];
    char *context; /* the spooled body, taken from the request: unlinked at the end */
    char *dockerfile;
    char *work_dir;
    json_t *build_args;
    json_t *known; /* the store's images with their tags */
    json_t *image; /* the result */
    struct serr err;
    bool on_node;  /* POST /v1/node/build: no commit; the last line has the config */
    char *config;  /* on_node: the image's config; remote: the one the node sent */
    char *node_addr; /* remote: the builder's cluster address */
    char *query;     /* remote: the options, passed on */
    char *bundle;    /* remote: the context with the bases */
    struct line_split answer; /* remote: the builder's answer, cut into lines */
};

static void build_send(void *arg, json_t *line /* stolen */)
{
    struct build *b = arg;
    if (b->req)
        http_stream_json_line(b->req, line);
    json_decref(line);
}

/* From the building thread. */
static void build_output(void *arg, const char *text, size_t len)
{
    struct build *b = arg;
    json_lines_queue(&b->lines, json_pack("{s:s%}", "stream", text, len));
}

/* Bases the store lacks: pulled as `image pull` would (anonymously). */
static struct registry_opts base_pulls(struct build *b)
{
    return (struct registry_opts){
        .spool_dir = b->work_dir,
        .insecure = (const char *const *)b->sh->insecure_registries,
        .allowed = (const char *const *)b->sh->allowed_registries,
    };
}

static void build_work(uv_work_t *w)
{
    struct build *b = w->data;
    struct registry_opts pull = base_pulls(b);
    struct build_opts o = {.context_tar = b->context,
                           .pull = b->on_node ? NULL : &pull,
                           .dockerfile = b->dockerfile,
                           .build_args = b->build_args,
                           .tag = b->tag,
                           .work_dir = b->work_dir,
                           .known = b->known,
                           .output = build_output,
                           .output_arg = b};
    size_t len;
    if (build_image(b->sh->images, &o, &b->image, &b->err) == 0 && b->on_node &&
        image_config_blob(b->sh->images, json_string_value(json_object_get(b->image, "id")),
                          &b->config, &len, &b->err) < 0) {
        json_decref(b->image);
        b->image = NULL;
    }
}

static void build_closed(void *arg)
{
    struct build *b = arg;
    json_decref(b->image);
    json_decref(b->known);
    json_decref(b->build_args);
    unlink(b->context);
    free(b->context);
    if (b->bundle)
        unlink(b->bundle);
    free(b->bundle);
    free(b->config);
    free(b->node_addr);
    free(b->query);
    line_split_end(&b->answer, false);
    free(b->dockerfile);
    free(b->work_dir);
    free(b);
}

struct keep {
    uv_timer_t timer;
    struct shoal *sh;
    int64_t until; /* mono_ms */
};

static void keep_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Checked every second, so that a stopping daemon is not kept waiting. */
static void keep_check(uv_timer_t *t)
{
    struct keep *k = t->data;
    if (mono_ms() < k->until && !k->sh->stopping)
        return;
    layers_release(k->sh);
    uv_close((uv_handle_t *)t, keep_closed);
}

/* The builder's hold ends later: the leader fetches the layers meanwhile. */
static void release_later(struct shoal *sh)
{
    struct keep *k = xcalloc(1, sizeof(*k));
    k->sh = sh;
    k->until = mono_ms() + BUILD_KEEP_MS;
    uv_timer_init(sh->loop, &k->timer);
    k->timer.data = k;
    uv_timer_start(&k->timer, keep_check, 1000, 1000);
}

static void build_end(struct build *b, json_t *last /* stolen */)
{
    json_lines_flush(&b->lines);
    build_send(b, last);
    if (b->req) {
        b->req->on_abort = NULL;
        http_stream_end(b->req);
    }
    if (b->on_node && b->image)
        release_later(b->sh);
    else
        layers_release(b->sh);
    json_lines_close(&b->lines, build_closed);
}

static void build_committed(void *arg, int status, const struct serr *err)
{
    struct build *b = arg;
    if (status < 0) {
        build_end(b, json_pack("{s:s}", "error", err->msg));
        return;
    }
    char *line = xasprintf("Successfully built %s\nSuccessfully tagged %s\n",
                           json_string_value(json_object_get(b->image, "id")), b->tag);
    build_end(b, json_pack("{s:s, s:O}", "status", line, "image", b->image));
    free(line);
}

/* The image is in this node's store: the leader commits it; a node hands it
 * over (the last line). */
static void build_stored(struct build *b)
{
    if (b->image == NULL) {
        build_end(b, json_pack("{s:s}", "error", b->err.msg));
        return;
    }
    if (b->on_node) {
        build_end(b, json_pack("{s:O, s:s}", "image", b->image, "config", b->config));
        return;
    }
    if (!cluster_is_leader(b->sh->cluster)) {
        build_end(b, json_pack("{s:s}", "error",
                               "this manager lost the leadership during the build: try again"));
        return;
    }
    json_t *images = json_pack("[O]", b->image);
    cluster_propose(b->sh->cluster, image_ops(images, now_ms()), build_committed, b);
    json_decref(images);
}

static void build_done(uv_work_t *w, int status)
{
    (void)status;
    build_stored(w->data);
}

/* ---- on another node ---- */

static void describe_work(uv_work_t *w)
{
    struct build *b = w->data;
    json_t *tags = json_pack("[s]", b->tag);
    image_describe_config(b->sh->images, b->config, strlen(b->config), tags, &b->image, &b->err);
    json_decref(tags);
}

static void remote_layers(void *arg, int status, const char *errmsg)
{
    struct build *b = arg;
    if (status < 0) {
        serr_set(&b->err, SERR_UNAVAILABLE, "fetching the built image's layers: %s", errmsg);
        build_stored(b);
        return;
    }
    uv_queue_work(b->sh->loop, &b->work, describe_work, build_done);
}

/* One line of the builder's answer: output is passed on, the end kept. */
static void remote_line(void *arg, const char *data, size_t len)
{
    struct build *b = arg;
    json_t *line = json_loadb(data, len, 0, NULL);
    json_t *image = json_object_get(line, "image");
    const char *config = json_string_value(json_object_get(line, "config"));
    const char *error = json_string_value(json_object_get(line, "error"));
    if (error)
        serr_set(&b->err, SERR_INVALID, "%s", error);
    else if (json_is_object(image) && config) {
        json_decref(b->image);
        b->image = json_incref(image);
        free(b->config);
        b->config = xstrdup(config);
    } else if (json_is_object(line))
        build_send(b, json_incref(line));
    json_decref(line);
}

static void remote_chunk(void *arg, const char *data, size_t len)
{
    struct build *b = arg;
    line_split_feed(&b->answer, data, len);
}

static void remote_answer(void *arg, int status, const char *body, size_t len,
                          const char *errmsg)
{
    struct build *b = arg;
    if (status != 200 && b->err.msg[0] == '\0') {
        json_t *j = status < 0 ? NULL : json_loadb(body, len, 0, NULL);
        const char *msg = json_string_value(json_object_get(j, "message"));
        serr_set(&b->err, SERR_UNAVAILABLE, "the building node: %s",
                 status < 0 ? errmsg : msg ? msg : "an unexpected answer");
        json_decref(j);
    }
    json_t *image = b->image; /* the node's: committed once its layers are here */
    b->image = NULL;
    if (b->err.msg[0]) {
        json_decref(image);
        image = NULL;
    }
    if (image == NULL) {
        if (b->err.msg[0] == '\0')
            serr_set(&b->err, SERR_UNAVAILABLE, "the building node's answer ended early");
        build_stored(b);
        return;
    }
    json_t *sources = json_pack("[s]", b->node_addr);
    layers_fetch_from(b->sh, image, sources, remote_layers, b);
    json_decref(sources);
    json_decref(image);
}

static void remote_connected(void *arg, int fd, const char *errmsg)
{
    struct build *b = arg;
    char *body = NULL;
    size_t len = 0;
    if (fd >= 0 && read_file(b->bundle, &body, &len, &b->err) < 0)
        close(fd);
    if (fd < 0 || body == NULL) {
        if (fd < 0)
            serr_set(&b->err, SERR_UNAVAILABLE, "the building node: %s", errmsg);
        build_stored(b);
        return;
    }
    b->answer = (struct line_split){.on_line = remote_line, .arg = b};
    char *path = xasprintf("/v1/node/build?%s", b->query);
    http_arequest_stream(b->sh->loop, fd, "POST", path, body, len, remote_chunk, remote_answer, b);
    free(path);
    free(body);
}

static void bundle_work(uv_work_t *w)
{
    struct build *b = w->data;
    struct registry_opts pull = base_pulls(b);
    struct build_opts o = {.context_tar = b->context,
                           .dockerfile = b->dockerfile,
                           .work_dir = b->work_dir,
                           .known = b->known,
                           .pull = &pull,
                           .output = build_output,
                           .output_arg = b};
    build_bundle(b->sh->images, &o, b->bundle, &b->err);
}

static void bundle_done(uv_work_t *w, int status)
{
    (void)status;
    struct build *b = w->data;
    if (b->err.msg[0])
        build_stored(b);
    else
        clusternet_connect(b->sh, b->node_addr, remote_connected, b);
}

static void build_abort(struct http_req *req)
{
    struct build *b = req->data;
    b->req = NULL; /* the build goes on: its image is committed all the same */
}

/* The query's options into `b`; false (answered) on a bad one. */
static bool build_query(struct http_req *req, struct build *b)
{
    char text[4096];
    struct serr err = {0};
    if (!http_query_get(req, "t", text, sizeof(text)) || text[0] == '\0')
        serr_set(&err, SERR_INVALID, "build needs ?t=NAME[:TAG]");
    else
        image_normalize_ref(text, b->tag, sizeof(b->tag), &err);
    if (err.msg[0] == '\0' && http_query_get(req, "dockerfile", text, sizeof(text)))
        b->dockerfile = xstrdup(text);
    if (err.msg[0] == '\0' && http_query_get(req, "buildargs", text, sizeof(text)) && text[0]) {
        b->build_args = json_loads(text, 0, NULL);
        const char *k;
        json_t *v;
        bool strings = json_is_object(b->build_args);
        json_object_foreach(b->build_args, k, v) strings = strings && json_is_string(v);
        if (!strings)
            serr_set(&err, SERR_INVALID, "buildargs: a JSON object of strings is required");
    }
    if (err.msg[0] == '\0' && req->body_file == NULL)
        serr_set(&err, SERR_INVALID, "build needs the build context (a tar) as the request body");
    if (err.msg[0] == '\0')
        return true;
    http_respond_error(req, &err);
    return false;
}

static void build_free_early(struct build *b)
{
    json_decref(b->build_args);
    free(b->dockerfile);
    free(b->node_addr);
    free(b);
}

/* node=NODE: false (answered) when unknown or unreachable; `b` gets its
 * address unless it is this node. */
static bool build_node(struct shoal *sh, struct http_req *req, struct build *b)
{
    char ref[256];
    if (!http_query_get(req, "node", ref, sizeof(ref)) || ref[0] == '\0')
        return true;
    json_t *n = find_node(sh, req, ref);
    if (n == NULL)
        return false;
    struct serr err = {0};
    const char *id = json_string_value(json_object_get(n, "id"));
    const char *addr = json_string_value(json_object_get(n, "addr"));
    const char *status = json_string_value(json_object_get(n, "status"));
    if (id && strcmp(id, sh->node_id) != 0) {
        if (status && strcmp(status, "down") == 0)
            serr_set(&err, SERR_UNAVAILABLE, "node %s is down", ref);
        else if (addr == NULL || addr[0] == '\0')
            serr_set(&err, SERR_UNAVAILABLE, "node %s has no address", ref);
        else
            b->node_addr = xstrdup(addr);
    }
    json_decref(n);
    if (err.msg[0] == '\0')
        return true;
    http_respond_error(req, &err);
    return false;
}

static void build_start(struct shoal *sh, struct http_req *req, struct build *b)
{
    b->sh = sh;
    b->req = req;
    b->work_dir = shoal_state_path(sh, "tmp");
    b->context = req->body_file;
    req->body_file = NULL;
    json_lines_init(&b->lines, sh->loop, b, build_send);
    b->work.data = b;
    req->data = b;
    req->on_abort = build_abort;
    http_stream_start(req, 200, "application/x-ndjson");
    layers_hold(sh); /* the layers it stores are not the GC's until committed */
    if (b->node_addr == NULL) {
        uv_queue_work(sh->loop, &b->work, build_work, build_done);
        return;
    }
    char name[17];
    random_hex(name, 16);
    char *rel = xasprintf("tmp/build-bundle-%s.tar", name);
    b->bundle = shoal_state_path(sh, rel);
    free(rel);
    b->query = xstrdup(req->query);
    uv_queue_work(sh->loop, &b->work, bundle_work, bundle_done);
}

void post_image_build(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_leader(sh, req))
        return;
    struct build *b = xcalloc(1, sizeof(*b));
    if (!build_query(req, b) || !build_node(sh, req, b)) {
        build_free_early(b);
        return;
    }
    b->known = images_with_tags(sh); /* bases for FROM */
    build_start(sh, req, b);
}

/* On the node a manager chose: the build, into this node's store; the last
 * line hands the image over (see the top). Only managers may ask. */
void post_node_build(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_manager_caller(req, "ask a node to build"))
        return;
    struct build *b = xcalloc(1, sizeof(*b));
    if (!build_query(req, b)) {
        build_free_early(b);
        return;
    }
    b->on_node = true;
    b->known = json_array(); /* the bases come in the context */
    build_start(sh, req, b);
}
