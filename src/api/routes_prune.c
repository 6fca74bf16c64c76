/* Cleanup routes: POST /v1/images/prune (the leader removes unused images
 * from the store; each node's layer GC then frees their layers), POST
 * /v1/containers/prune (this node's stopped `shoal run` containers) and
 * GET /v1/system/df (what uses space, and what a prune would reclaim). */
#define _XOPEN_SOURCE 700 /* nftw */
#include <dirent.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/agent.h"
#include "agent/reply.h"
#include "api/api_int.h"
#include "base/json_get.h"
#include "base/util.h"
#include "daemon/image_gc.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "manager/prune.h"
#include "store/store.h"

/* Removed images as the reply lists them: {"id", "tags"}. */
static json_t *removed_view(json_t *candidates)
{
    json_t *out = json_array();
    size_t i;
    json_t *img;
    json_array_foreach(candidates, i, img)
    {
        json_array_append_new(out, json_pack("{s:O, s:O, s:O}", "id", json_object_get(img, "id"),
                                             "tags", json_object_get(img, "tags"), "size",
                                             json_object_get(img, "size")));
    }
    return out;
}

/* POST /v1/images/prune[?all=1] -> {"deleted": [{"id","tags","size"}], "space_reclaimed"}. */
void post_images_prune(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_leader(sh, req))
        return;
    json_t *in_use = image_gc_images_in_use(sh);
    json_t *gone = prune_image_candidates(sh->store, in_use, query_flag(req, "all"));
    json_t *reply = json_pack("{s:o, s:I}", "deleted", removed_view(gone), "space_reclaimed",
                              (json_int_t)prune_images_size(gone));
    if (json_array_size(gone) == 0)
        respond_json(req, 200, reply);
    else
        propose_and_reply(sh, req, prune_image_ops(gone), 200, reply);
    json_decref(gone);
    json_decref(in_use);
}

/* A reply on the stack for agent_remove_local: an exited container is
 * removed at once; one still being cleaned up is left for the next prune
 * (the agent is told the reply is gone). */
struct prune_reply {
    struct agent_reply r;
    bool answered;
    int status;
};

static void prune_respond(struct agent_reply *r, int status, const char *json)
{
    (void)json;
    struct prune_reply *p = r->data;
    p->answered = true;
    p->status = status;
}

static void prune_fail(struct agent_reply *r, const struct serr *err)
{
    (void)err;
    struct prune_reply *p = r->data;
    p->answered = true;
    p->status = 0;
}

static bool remove_exited(struct agent *a, const char *id)
{
    struct prune_reply p = {.r = {.respond = prune_respond, .fail = prune_fail}};
    p.r.data = &p;
    agent_remove_local(a, id, 0, &p.r);
    if (!p.answered && p.r.gone)
        p.r.gone(&p.r);
    return p.answered && p.status == 200;
}

/* POST /v1/containers/prune -> {"deleted": [{"id","name"}], "space_reclaimed"}:
 * this node's stopped containers of `shoal run` (task containers go with
 * their task: the history limit). */
void post_containers_prune(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    json_t *deleted = json_array();
    json_t *ctrs = sh->agent ? agent_list_local(sh->agent, false) : json_array();
    size_t i;
    json_t *c;
    json_array_foreach(ctrs, i, c)
    {
        if (!agent_local_done(sh->agent, jstr(c, "id")) || !remove_exited(sh->agent, jstr(c, "id")))
            continue; /* running, or its exit still being cleaned up: not yet */
        json_array_append_new(deleted, json_pack("{s:O, s:O}", "id", json_object_get(c, "id"),
                                                 "name", json_object_get(c, "name")));
    }
    json_decref(ctrs);
    respond_json(req, 200, json_pack("{s:o, s:i}", "deleted", deleted, "space_reclaimed", 0));
}

/* ---- df ---- */

static long long walk_total;

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        walk_total += (long long)st->st_blocks * 512;
    return 0;
}

/* Bytes used by the files under a directory (du); 0 when unreadable. */
long long api_dir_size(const char *dir)
{
    walk_total = 0;
    nftw(dir, add_size, 16, FTW_PHYS);
    return walk_total;
}

/* Volume names the services mount (a volume lives on the nodes that ran one). */
static json_t *volumes_in_use(struct shoal *sh)
{
    json_t *names = json_object();
    json_t *services = store_list(sh->store, "services", NULL);
    size_t i, k;
    json_t *svc, *m;
    json_array_foreach(services, i, svc)
    {
        json_array_foreach(json_object_get(json_object_get(svc, "spec"), "mounts"), k, m)
        {
            if (jstr_is(m, "type", "volume") && jstr(m, "source"))
                json_object_set_new(names, jstr(m, "source"), json_true());
        }
    }
    json_decref(services);
    return names;
}

static json_t *df_volumes(struct shoal *sh)
{
    json_t *in_use = volumes_in_use(sh);
    char *dir = shoal_state_path(sh, "volumes");
    DIR *d = opendir(dir);
    json_int_t total = 0, active = 0, size = 0, reclaimable = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        long long bytes = api_dir_size(path);
        free(path);
        bool used = json_object_get(in_use, de->d_name) != NULL;
        total++;
        active += used;
        size += bytes;
        reclaimable += used ? 0 : bytes;
    }
    if (d)
        closedir(d);
    free(dir);
    json_decref(in_use);
    return json_pack("{s:I, s:I, s:I, s:I}", "total", total, "active", active, "size", size,
                     "reclaimable", reclaimable);
}

static json_t *df_images(struct shoal *sh)
{
    json_t *in_use = image_gc_images_in_use(sh);
    json_t *all = store_list(sh->store, "images", NULL);
    json_t *unused = prune_image_candidates(sh->store, in_use, true);
    json_t *out = json_pack("{s:I, s:I, s:I, s:I}", "total", (json_int_t)json_array_size(all),
                            "active", (json_int_t)(json_array_size(all) - json_array_size(unused)),
                            "size", (json_int_t)prune_images_size(all), "reclaimable",
                            (json_int_t)prune_images_size(unused));
    json_decref(unused);
    json_decref(all);
    json_decref(in_use);
    return out;
}

/* This node's containers, tasks' included; those of `shoal run` that
 * stopped are reclaimable (their size is not measured: 0). */
static json_t *df_containers(struct shoal *sh)
{
    json_t *ctrs = sh->agent ? agent_list_local(sh->agent, true) : json_array();
    json_int_t active = 0, stopped = 0;
    size_t i;
    json_t *c;
    json_array_foreach(ctrs, i, c)
    {
        active += jstr_is(c, "state", "running");
        stopped += jstr(c, "task_id") == NULL && jstr_is(c, "state", "exited");
    }
    json_t *out = json_pack("{s:I, s:I, s:I, s:i, s:i}", "total", (json_int_t)json_array_size(ctrs),
                            "active", active, "stopped", stopped, "size", 0, "reclaimable", 0);
    json_decref(ctrs);
    return out;
}

/* GET /v1/system/df: images (the cluster's store), containers and volumes
 * (this node's). */
void get_system_df(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    respond_json(req, 200,
                 json_pack("{s:o, s:o, s:o}", "images", df_images(sh), "containers",
                           df_containers(sh), "volumes", df_volumes(sh)));
}
