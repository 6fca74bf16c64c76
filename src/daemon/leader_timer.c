#include "daemon/leader_timer.h"

#include "base/log.h"
#include "daemon/shoal.h"
#include "raft/cluster.h"

static void tick(uv_timer_t *timer)
{
    struct leader_timer *t = timer->data;
    struct shoal *sh = t->sh;
    t->tick(t, !sh->stopping && sh->cluster && sh->dispatcher && cluster_is_leader(sh->cluster));
}

void leader_timer_start(struct leader_timer *t, struct shoal *sh, uint64_t every_ms,
                        const char *failed, leader_tick_cb tick_cb, leader_closed_cb closed_cb)
{
    t->sh = sh;
    t->tick = tick_cb;
    t->closed_cb = closed_cb;
    t->failed = failed;
    t->proposing = t->closed = false;
    uv_timer_init(sh->loop, &t->timer);
    t->timer.data = t;
    uv_timer_start(&t->timer, tick, every_ms, every_ms);
}

static void proposed(void *arg, int status, const struct serr *err)
{
    struct leader_timer *t = arg;
    t->proposing = false;
    if (status < 0)
        log_warn("%s: %s", t->failed, err ? err->msg : "?");
    if (t->closed)
        t->closed_cb(t);
}

void leader_timer_propose(struct leader_timer *t, json_t *group)
{
    t->proposing = true;
    cluster_propose(t->sh->cluster, group, proposed, t);
}

static void timer_closed(uv_handle_t *h)
{
    struct leader_timer *t = h->data;
    t->closed = true;
    if (!t->proposing)
        t->closed_cb(t);
}

void leader_timer_stop(struct leader_timer *t)
{
    uv_close((uv_handle_t *)&t->timer, timer_closed);
}
