#include "daemon/image_gc.h"

#include <sys/statvfs.h>

#include "agent/agent.h"
#include "base/json_get.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "manager/prune.h"
#include "raft/cluster.h"
#include "store/store.h"

/* One daemon per process: the last look is the process's. */
static int64_t last_look_ms;

json_t *image_gc_images_in_use(struct shoal *sh)
{
    json_t *in_use = prune_images_in_use(sh->store);
    json_t *ctrs = sh->agent ? agent_list_local(sh->agent, false) : json_array();
    size_t i;
    json_t *c;
    json_array_foreach(ctrs, i, c) prune_mark_ref(sh->store, in_use, jstr(c, "image"));
    json_decref(ctrs);
    return in_use;
}

/* Candidates old enough: an image that just came in may be named by a
 * service create or update on its way (kubelet's minimum GC age). */
static json_t *old_enough(json_t *candidates, int64_t now)
{
    json_t *out = json_array();
    size_t i;
    json_t *img;
    json_array_foreach(candidates, i, img)
    {
        if (jint(img, "created_at", 0) + IMAGE_GC_MIN_AGE_MS <= now)
            json_array_append(out, img);
    }
    return out;
}

static void log_removed(json_t *gone, double used_pct, int high)
{
    size_t i;
    json_t *img;
    json_array_foreach(gone, i, img)
        log_info("image gc: disk %.0f%% used (above %d%%): removing unused image %s (%lld bytes)",
                 used_pct, high, jstr(img, "id"), (long long)jint(img, "size", 0));
}

void image_gc_pass(struct shoal *sh)
{
    if (sh->cluster == NULL || !cluster_is_leader(sh->cluster) || cluster_busy(sh->cluster) ||
        sh->image_gc_high >= 100)
        return;
    int64_t now = now_ms();
    if (now - last_look_ms < IMAGE_GC_PERIOD_MS)
        return;
    last_look_ms = now;
    struct statvfs fs;
    if (statvfs(sh->state_dir, &fs) < 0 || fs.f_blocks == 0)
        return;
    long long capacity = (long long)fs.f_blocks * (long long)fs.f_frsize;
    long long avail = (long long)fs.f_bavail * (long long)fs.f_frsize;
    double used_pct = 100.0 * (double)(capacity - avail) / (double)capacity;
    if (used_pct <= sh->image_gc_high)
        return;
    json_t *in_use = image_gc_images_in_use(sh);
    json_t *unused = prune_image_candidates(sh->store, in_use, true);
    json_t *candidates = old_enough(unused, now);
    json_decref(unused);
    json_t *gone =
        prune_gc_choice(candidates, used_pct, sh->image_gc_high, sh->image_gc_low, capacity);
    if (json_array_size(gone) > 0) {
        log_removed(gone, used_pct, sh->image_gc_high);
        cluster_propose(sh->cluster, prune_image_ops(gone), NULL, NULL);
    }
    json_decref(gone);
    json_decref(candidates);
    json_decref(in_use);
}
