#include "daemon/metrics_keeper.h"

#include <stdlib.h>

#include "base/util.h"
#include "daemon/leader_timer.h"
#include "daemon/shoal.h"
#include "manager/dispatcher.h"
#include "manager/metrics_history.h"
#include "manager/stats.h"

struct metrics_keeper {
    struct leader_timer timer;
    int64_t every_ms;
    bool leading; /* leader at the last tick: its windows are whole */
};

static int64_t window_ms(void)
{
    const char *knob = getenv("SHOAL_METRICS_HISTORY_EVERY_MS");
    long long ms = knob ? atoll(knob) : 0;
    return ms >= 100 ? ms : METRICS_HISTORY_EVERY_MS_DEFAULT;
}

static void tick(struct leader_timer *t, bool leader)
{
    struct metrics_keeper *k = t->data;
    struct shoal *sh = t->sh;
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
    if (t->proposing)
        return; /* the samples add up until the last row is in */
    json_t *nodes = stats_take_windows(st);
    if (json_object_size(nodes) == 0) {
        json_decref(nodes);
        return;
    }
    int64_t keep_ms = (int64_t)sh->metrics_history_days * 24 * 3600 * 1000;
    json_t *op = metrics_history_op(nodes, now_ms(), k->every_ms, keep_ms);
    leader_timer_propose(t, json_pack("[o]", op));
}

static void keeper_free(struct leader_timer *t)
{
    free(t->data);
}

struct metrics_keeper *metrics_keeper_start(struct shoal *sh)
{
    struct metrics_keeper *k = xcalloc(1, sizeof(*k));
    k->every_ms = window_ms();
    k->timer.data = k;
    leader_timer_start(&k->timer, sh, (uint64_t)k->every_ms,
                       "metrics history: a row was not committed", tick, keeper_free);
    return k;
}

void metrics_keeper_stop(struct metrics_keeper *k)
{
    if (k)
        leader_timer_stop(&k->timer);
}
