/* The daemon's configuration file (JSON, like Docker's daemon.json):
 * `shoal daemon --config PATH`, else /etc/shoal/daemon.json when it exists.
 * Keys (docs/design.md "Daemon configuration"):
 *   "insecure-registries": ["host:port", "10.0.0.0/8", ...]  registries reached
 *       over plain HTTP or TLS without certificate checks (127.0.0.0/8 always is)
 *   "allowed-registries": [...]  same form: the only registries pulls may use
 *       (absent: any); an air-gapped cluster names its own registry here
 *   "node-exec": false  this node refuses `shoal node exec` and `shoal node cp`
 *       (default true: admins may run commands on the host and push files)
 *   "host-jobs": false  this node refuses host jobs (`job sub --host`): they
 *       fail there with why (default true: admins' host jobs run)
 *   "job-image": "alpine:3.20"  the image of container jobs submitted without
 *       --image (the leader's setting applies; absent: the cluster's first
 *       image by name)
 *   "image-gc-high-percent": 85, "image-gc-low-percent": 80  the automatic
 *       image GC (daemon/image_gc.h): above high percent of the state dir's
 *       filesystem used, unused images go until use is down to low (100: off)
 *   "job-history": N  finished batch jobs kept (default 10000, manager/jobs.h);
 *       the leader removes the oldest beyond N (the leader's setting applies)
 *   "metrics-history-days": 7  node metrics history kept in the store (0 to
 *       366; 0: none written), a row every 5 minutes (daemon/metrics_keeper.h);
 *       the leader's setting applies
 *   "smtp-relay": "smtp://127.0.0.1:25"  the mail relay alert e-mails go
 *       through (smtps:// for TLS); "smtp-from": the sender (default shoal@HOSTNAME)
 *   "backup-dir": "/var/backups/shoal"  where volume backups go (absolute; a
 *       directory every node mounts at the same path: NFS, SMB; agent/volumes.h)
 *   "heat-threshold-celsius": 75  a node at or above it takes no new tasks
 *       until it cools below it minus "heat-hysteresis-celsius" (default 5);
 *       the leader's setting counts (absent or 0: off)
 * Unknown keys are refused, so a typo does not go unnoticed. */
#ifndef SHOAL_DAEMON_DAEMON_CONFIG_H
#define SHOAL_DAEMON_DAEMON_CONFIG_H

#include "base/err.h"

#define DAEMON_CONFIG_DEFAULT "/etc/shoal/daemon.json"
#define IMAGE_GC_HIGH_DEFAULT 85 /* kubelet's */
#define IMAGE_GC_LOW_DEFAULT 80

struct shoal;

/* `path` NULL: the default file, which may be missing. Fills sh's settings. */
int daemon_config_load(struct shoal *sh, const char *path, struct serr *err);
void daemon_config_free(struct shoal *sh);

#endif
