/* Alerts on the leader: every few seconds the leader evaluates the alert
 * rules (manager/alert.h) on the samples it holds, commits fired and
 * resolved alerts to the store (so a new leader continues them), flags hot
 * nodes (heat), and sends the notifications: webhooks (JSON POST) and
 * e-mails (SMTP through daemon.json "smtp-relay"), with libcurl on libuv's
 * threadpool so the loop never waits on the network. */
#ifndef SHOAL_DAEMON_ALERTING_H
#define SHOAL_DAEMON_ALERTING_H

#define ALERTING_EVERY_MS 2000
/* A notification's attempts give up after this (each), and are tried twice. */
#define NOTIFY_TIMEOUT_S 10

struct shoal;
struct alerting;

/* Starts the timer; it does nothing on nodes that are not the leader. */
struct alerting *alerting_start(struct shoal *sh);
/* Stops the timer; frees once the handle is closed and the last changes
 * proposed are answered (notifications in flight finish on their own). NULL
 * is fine. */
void alerting_stop(struct alerting *a);

#endif
