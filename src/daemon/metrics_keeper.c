#include "daemon/metrics_keeper.h"

#include <stdlib.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "manager/dispatcher.h"
#include "manager/metrics_history.h"
#include "manager/stats.h"
#include "raft/cluster.h"

struct metrics_keeper {
    struct shoal *sh;
    uv_timer_t timer;
    int64_t every_ms;
    bool leading;   /* leader at the last tick: its windows are whole */
    bool proposing; /* the last row is not committed yet */
    bool closed;    /* the timer's handle is closed: free when not proposing */
};

static int64_t window_ms(void)
{
    const char *knob = getenv("SHOAL_METRICS_HISTORY_EVERY_MS");
    long long ms = knob ? atoll(knob) : 0;
    return ms >= 100 ? ms : METRICS_HISTORY_EVERY_MS_DEFAULT;
}

static void proposed(void *arg, int status, const struct serr *err)
{
    struct metrics_keeper *k = arg;
    k->proposing = false;
    if (status < 0)
        log_warn("metrics history: a row was not committed: %s", err ? err->msg : "?");
    if (k->closed)
        free(k);
}

static void tick(uv_timer_t *t)
{
    struct metrics_keeper *k = t->data;
    struct shoal *sh = k->sh;
    bool leader = !sh->stopping && sh->cluster && sh->dispatcher && cluster_is_leader(sh->cluster);
    if (!leader || sh->metrics_history_days <= 0) {
        k->leading = false;
        return;
    }
    struct stats *st = dispatcher_stats(sh->dispatcher);
    if (!k->leading) { /* samples from an earlier term, or a part of a window: not a row */
        json_decref(stats_take_windows(st));
        k->leading = true;
        return;
    }
    if (k->proposing)
        return; /* the samples add up until the last row is in */
    json_t *nodes = stats_take_windows(st);
    if (json_object_size(nodes) == 0) {
        json_decref(nodes);
        return;
    }
    int64_t keep_ms = (int64_t)sh->metrics_history_days * 24 * 3600 * 1000;
    json_t *op = metrics_history_op(nodes, now_ms(), k->every_ms, keep_ms);
    k->proposing = true;
    cluster_propose(sh->cluster, json_pack("[o]", op), proposed, k);
}

struct metrics_keeper *metrics_keeper_start(struct shoal *sh)
{
    struct metrics_keeper *k = xcalloc(1, sizeof(*k));
    k->sh = sh;
    k->every_ms = window_ms();
    uv_timer_init(sh->loop, &k->timer);
    k->timer.data = k;
    uv_timer_start(&k->timer, tick, (uint64_t)k->every_ms, (uint64_t)k->every_ms);
    return k;
}

static void timer_closed(uv_handle_t *h)
{
    struct metrics_keeper *k = h->data;
    k->closed = true;
    if (!k->proposing)
        free(k);
}

void metrics_keeper_stop(struct metrics_keeper *k)
{
    if (k)
        uv_close((uv_handle_t *)&k->timer, timer_closed);
}
