/* The daemon's side of the dispatcher (manager/dispatcher.h): hands it the
 * store, the cluster and what the swarm code knows (addresses, overlay mode,
 * the CA, secrets). */
#ifndef SHOAL_DAEMON_DISPATCH_HOST_H
#define SHOAL_DAEMON_DISPATCH_HOST_H

struct shoal;
struct dispatcher;

/* dispatcher_start over `sh` (a manager with its cluster running); stop
 * with dispatcher_stop before `sh` goes. */
struct dispatcher *shoal_dispatcher_start(struct shoal *sh);

#endif
