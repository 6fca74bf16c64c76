#include "daemon/layers.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/image.h"
#include "api/api_int.h"
#include "api/http.h"
#include "api/http_aclient.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/session.h"
#include "daemon/shoal.h"
#include "store/store.h"

struct fetch {
    struct shoal *sh;
    json_t *missing;  /* diff_ids still to fetch */
    json_t *managers; /* addresses to try */
    size_t layer;     /* index in missing */
    size_t source;    /* index in managers */
    char *tmp;        /* download file */
    int fd;
    uv_work_t work;
    struct serr err;
    char last_error[300];
    layers_cb cb;
    void *arg;
};

static void fetch_next(struct fetch *f);

static void fetch_done(struct fetch *f, int status, const char *msg)
{
    f->cb(f->arg, status, msg);
    json_decref(f->missing);
    json_decref(f->managers);
    free(f->tmp);
    free(f);
}

static void add_work(uv_work_t *w)
{
    struct fetch *f = w->data;
    const char *diff = json_string_value(json_array_get(f->missing, f->layer));
    if (image_add_layer(f->sh->images, f->tmp, diff, &f->err) < 0)
        f->err.kind = SERR_INVALID;
}

static void add_done(uv_work_t *w, int status)
{
    struct fetch *f = w->data;
    unlink(f->tmp);
    if (f->err.msg[0]) {
        snprintf(f->last_error, sizeof(f->last_error), "%s", f->err.msg);
        memset(&f->err, 0, sizeof(f->err));
        f->source++; /* a bad copy: try the next manager */
    } else {
        f->layer++;
        f->source = 0;
    }
    fetch_next(f);
}

static void on_layer(void *arg, int status, const char *body, size_t len, const char *errmsg)
{
    struct fetch *f = arg;
    close(f->fd);
    f->fd = -1;
    if (status != 200) {
        snprintf(f->last_error, sizeof(f->last_error), "%s",
                 status < 0 ? errmsg : "the manager does not have it");
        unlink(f->tmp);
        f->source++;
        fetch_next(f);
        return;
    }
    f->work.data = f;
    uv_queue_work(f->sh->loop, &f->work, add_work, add_done);
}

static void on_connected(void *arg, int fd, const char *errmsg)
{
    struct fetch *f = arg;
    if (fd < 0) {
        on_layer(f, -1, NULL, 0, errmsg);
        return;
    }
    char path[200];
    snprintf(path, sizeof(path), "/v1/layers/%s",
             json_string_value(json_array_get(f->missing, f->layer)));
    http_arequest(f->sh->loop, fd, "GET", path, NULL, NULL, 0, f->fd, on_layer, f);
}

static void fetch_next(struct fetch *f)
{
    if (f->layer >= json_array_size(f->missing)) {
        fetch_done(f, 0, NULL);
        return;
    }
    const char *source = json_string_value(json_array_get(f->managers, f->source));
    if (source == NULL) {
        char msg[500];
        snprintf(msg, sizeof(msg), "cannot fetch layer %s from any manager: %s",
                 json_string_value(json_array_get(f->missing, f->layer)), f->last_error);
        fetch_done(f, -1, msg);
        return;
    }
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        fetch_done(f, -1, "cannot create a download file");
        return;
    }
    clusternet_connect(f->sh, source, on_connected, f);
}

static json_t *known_managers(struct shoal *sh)
{
    if (sh->session)
        return json_deep_copy(session_managers(sh->session));
    return json_array();
}

void layers_fetch(struct shoal *sh, json_t *image, layers_cb cb, void *arg)
{
    struct fetch *f = xcalloc(1, sizeof(*f));
    f->sh = sh;
    f->cb = cb;
    f->arg = arg;
    f->fd = -1;
    f->missing = json_array();
    f->managers = known_managers(sh);
    char name[40];
    random_hex(name, 16);
    char *rel = xasprintf("tmp/layer-%s", name);
    f->tmp = shoal_state_path(sh, rel);
    free(rel);
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(image, "layers"), i, l)
    {
        char *dir = image_layer_dir(sh->images, json_string_value(l));
        if (dir == NULL)
            json_array_append(f->missing, l);
        free(dir);
    }
    log_info("fetching %zu layer(s) of %s", json_array_size(f->missing),
             json_string_value(json_object_get(image, "id")));
    fetch_next(f);
}

void layers_serve(struct shoal *sh, struct http_req *req, const char *diff_id)
{
    char *path = image_layer_blob(sh->images, diff_id);
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

/* ---- managers keep a copy of every image ---- */

struct replication {
    struct shoal *sh;
    bool busy;
    int64_t failed_at; /* after a failure, wait before trying again */
    json_t *complete;  /* ids of images whose layers are all here: not checked again */
};

/* One daemon per process: the replication state is the process's. */
static struct replication replication;

static void replicated(void *arg, int status, const char *errmsg)
{
    struct replication *r = arg;
    r->busy = false;
    if (status < 0) {
        log_warn("image replication: %s", errmsg);
        r->failed_at = mono_ms();
    } else {
        shoal_kick(r->sh); /* the next image, if any */
    }
}

/* Runs on every change of the store: images already known complete cost a
 * hash lookup, not a look at the disk. */
void layers_replicate(struct shoal *sh)
{
    if (replication.busy || sh->cluster == NULL || sh->session == NULL)
        return;
    if (replication.failed_at && mono_ms() - replication.failed_at < 10000)
        return;
    json_t *images = store_list(sh->store, "images", NULL);
    json_t *complete = json_object(); /* rebuilt: forgets removed images */
    size_t i;
    json_t *img;
    json_array_foreach(images, i, img)
    {
        const char *id = json_string_value(json_object_get(img, "id"));
        if (id == NULL)
            continue;
        if (json_object_get(replication.complete, id) || image_has_layers(sh->images, img)) {
            json_object_set_new(complete, id, json_true());
            continue;
        }
        if (!replication.busy) {
            replication.sh = sh;
            replication.busy = true;
            layers_fetch(sh, img, replicated, &replication);
        }
    }
    json_decref(replication.complete);
    replication.complete = complete;
    json_decref(images);
}
