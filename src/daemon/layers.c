#include "daemon/layers.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/image.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/session.h"
#include "daemon/shoal.h"
#include "http/http_aclient.h"
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
    layers_release(f->sh); /* after cb: a task has claimed its layers by now */
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
    json_t *managers = known_managers(sh);
    layers_fetch_from(sh, image, managers, cb, arg);
    json_decref(managers);
}

void layers_fetch_from(struct shoal *sh, json_t *image, json_t *sources, layers_cb cb, void *arg)
{
    struct fetch *f = xcalloc(1, sizeof(*f));
    layers_hold(sh);
    f->sh = sh;
    f->cb = cb;
    f->arg = arg;
    f->fd = -1;
    f->missing = json_array();
    f->managers = json_deep_copy(sources);
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

/* ---- garbage collection ---- */

struct gc {
    int holds;      /* producers in flight */
    bool started;   /* the first pass after start has run */
    bool wanted;    /* a run is due once nothing holds the store */
    json_t *users;  /* ids of the images and containers seen by the last pass */
};

/* One daemon per process: the GC state is the process's. */
static struct gc gc;

void layers_hold(struct shoal *sh)
{
    (void)sh;
    gc.holds++;
}

/* A producer that failed half-way (an archive whose third layer is corrupt,
 * a proposal refused) leaves layers no image names: look again. */
void layers_release(struct shoal *sh)
{
    gc.wanted = true;
    if (--gc.holds == 0)
        shoal_kick(sh);
}

/* The images whose layers this node keeps, or NULL when it cannot tell yet
 * (a worker that has not heard from the leader). */
static json_t *known_images(struct shoal *sh)
{
    if (sh->cluster)
        return store_list(sh->store, "images", NULL);
    json_t *tasks = shoal_assigned_tasks(sh, NULL);
    if (tasks == NULL)
        return NULL;
    json_t *images = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const char *id = json_string_value(
            json_object_get(json_object_get(t, "container"), "image_id"));
        json_t *img = id ? shoal_image_get(sh, id) : NULL;
        if (img)
            json_array_append_new(images, img);
    }
    json_decref(tasks);
    return images;
}

static void purge_work(uv_work_t *w)
{
    image_gc_purge(w->data);
}

static void purge_done(uv_work_t *w, int status)
{
    (void)status;
    free(w);
}

static void gc_run(struct shoal *sh, json_t *keep)
{
    char *trash = NULL;
    struct serr err = {0};
    if (image_gc_detach(sh->images, keep, &trash, &err) < 0)
        log_warn("layer gc: %s", err.msg);
    if (trash == NULL)
        return;
    log_info("layer gc: removing the layers no image or container uses");
    uv_work_t *w = xcalloc(1, sizeof(*w));
    w->data = trash;
    uv_queue_work(sh->loop, w, purge_work, purge_done);
}

/* True when an id of `before` is not in `now`: an image or container left. */
static bool someone_left(json_t *before, json_t *now)
{
    const char *id;
    json_t *v;
    json_object_foreach(before, id, v)
    {
        if (json_object_get(now, id) == NULL)
            return true;
    }
    return false;
}

void layers_gc_pass(struct shoal *sh)
{
    if (sh->agent == NULL)
        return;
    json_t *images = known_images(sh);
    if (images == NULL)
        return;
    json_t *users = json_object();
    json_t *keep = json_object();
    size_t i;
    json_t *img;
    json_array_foreach(images, i, img)
    {
        const char *id = json_string_value(json_object_get(img, "id"));
        if (id)
            json_object_set_new(users, id, json_true());
        image_keep_layers(keep, img);
    }
    agent_layer_users(sh->agent, users, keep);
    if (!gc.started || (gc.users && someone_left(gc.users, users)))
        gc.wanted = true;
    gc.started = true;
    json_decref(gc.users);
    gc.users = users;
    if (gc.wanted && gc.holds == 0) {
        gc.wanted = false;
        gc_run(sh, keep);
    }
    json_decref(keep);
    json_decref(images);
}
