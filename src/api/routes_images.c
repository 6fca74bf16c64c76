/* Image routes: uploads are unpacked in the thread pool, then the images'
 * descriptions and tags are proposed to Raft. */
#include <stdlib.h>
#include <string.h>

#include "agent/image.h"
#include "api/api_int.h"
#include "api/http.h"
#include "base/util.h"
#include "daemon/layers.h"
#include "daemon/shoal.h"
#include "raft/cluster.h"
#include "manager/service.h"
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

void get_images(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    json_t *all = store_list(sh->store, "images", NULL);
    json_t *out = json_array();
    size_t i;
    json_t *img;
    json_array_foreach(all, i, img) json_array_append_new(out, image_view(sh, img));
    json_decref(all);
    respond_json(req, 200, out);
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

/* Ops storing each image (without its tags) and pointing each tag at it. */
static json_t *image_ops(json_t *images, int64_t now)
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

/* Services whose spec names the tag or the image id. */
static const char *image_user(struct shoal *sh, json_t *tags, const char *image_id)
{
    static char name[256];
    json_t *services = store_list(sh->store, "services", NULL);
    const char *user = NULL;
    size_t i, k;
    json_t *svc, *tag;
    json_array_foreach(services, i, svc)
    {
        const char *ref = json_string_value(json_object_get(json_object_get(svc, "spec"), "image"));
        bool uses = ref && strcmp(ref, image_id) == 0;
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
    const char *user = image_user(sh, gone, id);
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
        bool last = json_array_size(all_tags) <= json_array_size(gone);
        if (last)
            json_array_append_new(group, op_del("images", id));
        json_t *reply = json_pack("{s:O, s:b}", "untagged", gone, "deleted", last);
        propose_and_reply(sh, req, group, 200, reply);
    }
    json_decref(gone);
    json_decref(all_tags);
    json_decref(img);
}
