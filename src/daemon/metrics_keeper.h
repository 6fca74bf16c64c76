/* The leader's stored node metrics history (manager/metrics_history.h):
 * every window (5 minutes; the test knob SHOAL_METRICS_HISTORY_EVERY_MS
 * shortens it) the leader proposes one row with every node's means and
 * maxima since the last, keeping daemon.json "metrics-history-days" (default
 * 7; 0: none is written). Through Raft: every manager has the history, and
 * a new leader goes on with it. */
#ifndef SHOAL_DAEMON_METRICS_KEEPER_H
#define SHOAL_DAEMON_METRICS_KEEPER_H

struct shoal;
struct metrics_keeper;

/* Starts the timer; it does nothing on nodes that are not the leader. */
struct metrics_keeper *metrics_keeper_start(struct shoal *sh);
/* Stops the timer; frees once the handle is closed and no row is being
 * committed. NULL is fine. */
void metrics_keeper_stop(struct metrics_keeper *k);

#endif
