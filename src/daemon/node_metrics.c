#include "daemon/node_metrics.h"

#include <stdlib.h>

#include "agent/metrics.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "manager/dispatcher.h"
#include "manager/stats.h"
#include "raft/cluster.h"

struct node_metrics {
    struct shoal *sh;
    uv_timer_t timer;
    struct metrics_sampler sampler;
    json_t *latest;
    bool warned;
};

static void sample_now(uv_timer_t *t)
{
    struct node_metrics *m = t->data;
    struct shoal *sh = m->sh;
    if (sh->stopping)
        return;
    json_t *sample;
    if (metrics_sample(&m->sampler, sh->state_dir, &sample) < 0) {
        if (!m->warned)
            log_warn("node metrics: /proc/stat or /proc/meminfo unreadable");
        m->warned = true;
        return;
    }
    json_decref(m->latest);
    m->latest = sample;
    /* the leader sends no heartbeat: it records its own sample */
    if (sh->dispatcher && sh->cluster && cluster_is_leader(sh->cluster))
        stats_record(dispatcher_stats(sh->dispatcher), sh->node_id, sample, mono_ms());
}

struct node_metrics *node_metrics_start(struct shoal *sh)
{
    struct node_metrics *m = xcalloc(1, sizeof(*m));
    m->sh = sh;
    metrics_sampler_init(&m->sampler, "", sh->agent, &sh->rt);
    uv_timer_init(sh->loop, &m->timer);
    m->timer.data = m;
    uv_timer_start(&m->timer, sample_now, 0, NODE_METRICS_EVERY_MS);
    return m;
}

static void timer_closed(uv_handle_t *h)
{
    struct node_metrics *m = h->data;
    metrics_sampler_free(&m->sampler);
    json_decref(m->latest);
    free(m);
}

void node_metrics_stop(struct node_metrics *m)
{
    if (m)
        uv_close((uv_handle_t *)&m->timer, timer_closed);
}

json_t *node_metrics_latest(struct node_metrics *m)
{
    return m ? m->latest : NULL;
}
