/* POST /v1/images/build?t=NAME[:TAG]&dockerfile=PATH&buildargs=JSON: the
 * body is the build context (a tar, spooled to a file). The leader builds in
 * the thread pool (agent/build.h), streaming buildah's output as JSON lines
 * ({"stream": text}); the image is then committed as a load's, and the last
 * line is {"image": description, "status": "Successfully built ..."}, or
 * {"error": msg} when the build failed (nothing is committed then). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/build.h"
#include "agent/image.h"
#include "api/api_int.h"
#include "api/http.h"
#include "base/util.h"
#include "daemon/layers.h"
#include "daemon/shoal.h"
#include "raft/cluster.h"
#include "store/store.h"

struct build {
    struct shoal *sh;
    struct http_req *req; /* NULL once the client went away */
    uv_work_t work;
    uv_async_t async;
    uv_mutex_t lock;
    json_t *pending; /* output lines from the thread, under lock */
    char tag[600];
    char *context; /* the spooled body, taken from the request: unlinked at the end */
    char *dockerfile;
    char *work_dir;
    json_t *build_args;
    json_t *known; /* the store's images with their tags */
    json_t *image; /* the result */
    struct serr err;
};

static void build_send(struct build *b, json_t *line /* stolen */)
{
    if (b->req) {
        char *text = json_dumps(line, JSON_COMPACT);
        http_stream_write(b->req, text, strlen(text));
        http_stream_write(b->req, "\n", 1);
        free(text);
    }
    json_decref(line);
}

static void build_flush(uv_async_t *a)
{
    struct build *b = a->data;
    uv_mutex_lock(&b->lock);
    json_t *lines = b->pending;
    b->pending = json_array();
    uv_mutex_unlock(&b->lock);
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) build_send(b, json_incref(line));
    json_decref(lines);
}

/* From the building thread. */
static void build_output(void *arg, const char *text, size_t len)
{
    struct build *b = arg;
    json_t *line = json_pack("{s:s%}", "stream", text, len);
    uv_mutex_lock(&b->lock);
    json_array_append_new(b->pending, line);
    uv_mutex_unlock(&b->lock);
    uv_async_send(&b->async);
}

static void build_work(uv_work_t *w)
{
    struct build *b = w->data;
    struct build_opts o = {.context_tar = b->context,
                           .dockerfile = b->dockerfile,
                           .build_args = b->build_args,
                           .tag = b->tag,
                           .work_dir = b->work_dir,
                           .known = b->known,
                           .output = build_output,
                           .output_arg = b};
    build_image(b->sh->images, &o, &b->image, &b->err);
}

static void build_closed(uv_handle_t *h)
{
    struct build *b = h->data;
    uv_mutex_destroy(&b->lock);
    json_decref(b->pending);
    json_decref(b->image);
    json_decref(b->known);
    json_decref(b->build_args);
    unlink(b->context);
    free(b->context);
    free(b->dockerfile);
    free(b->work_dir);
    free(b);
}

static void build_end(struct build *b, json_t *last /* stolen */)
{
    build_flush(&b->async);
    build_send(b, last);
    if (b->req) {
        b->req->on_abort = NULL;
        http_stream_end(b->req);
    }
    layers_release(b->sh);
    uv_close((uv_handle_t *)&b->async, build_closed);
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

static void build_done(uv_work_t *w, int status)
{
    struct build *b = w->data;
    (void)status;
    if (b->image == NULL) {
        build_end(b, json_pack("{s:s}", "error", b->err.msg));
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

static void build_abort(struct http_req *req)
{
    struct build *b = req->data;
    b->req = NULL; /* the build goes on: its image is committed all the same */
}

/* The known images, each with its tags (bases for FROM). */
static json_t *known_images(struct shoal *sh)
{
    json_t *all = store_list(sh->store, "images", NULL);
    json_t *tags = store_list(sh->store, "tags", NULL);
    size_t i, k;
    json_t *img, *t;
    json_array_foreach(all, i, img)
    {
        json_t *names = json_array();
        json_array_foreach(tags, k, t)
        {
            if (json_equal(json_object_get(t, "image_id"), json_object_get(img, "id")))
                json_array_append(names, json_object_get(t, "id"));
        }
        json_object_set_new(img, "tags", names);
    }
    json_decref(tags);
    return all;
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

void post_image_build(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_leader(sh, req))
        return;
    struct build *b = xcalloc(1, sizeof(*b));
    if (!build_query(req, b)) {
        json_decref(b->build_args);
        free(b->dockerfile);
        free(b);
        return;
    }
    b->sh = sh;
    b->req = req;
    b->pending = json_array();
    b->work_dir = shoal_state_path(sh, "tmp");
    b->known = known_images(sh);
    b->context = req->body_file;
    req->body_file = NULL;
    uv_mutex_init(&b->lock);
    uv_async_init(sh->loop, &b->async, build_flush);
    b->async.data = b;
    b->work.data = b;
    req->data = b;
    req->on_abort = build_abort;
    http_stream_start(req, 200, "application/x-ndjson");
    layers_hold(sh); /* the layers it stores are not the GC's until committed */
    uv_queue_work(sh->loop, &b->work, build_work, build_done);
}
