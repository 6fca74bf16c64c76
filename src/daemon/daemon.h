/* `shoal daemon`: the node daemon (one libuv loop: API, Raft, manager, agent). */
#ifndef SHOAL_DAEMON_DAEMON_H
#define SHOAL_DAEMON_DAEMON_H

#include "base/err.h"
#include "http/http.h"

struct shoal;

/* The API the daemon serves, handed to it from above (api/front.h's
 * api_front, by src/main.c) as the raft library gets its raft_io: the daemon
 * calls it and includes nothing of api/. Every function runs on the loop. */
struct daemon_front {
    /* The router of the API server (the Unix socket and the cluster port's
     * connections); the server's data is the struct shoal. */
    http_router_cb route;
    /* Header lines of each answer (http_server_set_headers; data: the shoal). */
    const char *(*headers)(void *data);
    /* Once the API server listens: the event streams and, when
     * `dashboard_addr` is set, the dashboard. -1 with err set on failure. */
    int (*start)(struct shoal *sh, const char *dashboard_addr, struct serr *err);
    /* The cluster state may have changed (from shoal_kick): cheap. */
    void (*changed)(struct shoal *sh);
    /* On a stop signal, before the API server closes: ends the streams and
     * the dashboard. */
    void (*stop)(struct shoal *sh);
};

/* Parses the daemon's flags (argv[0] is "daemon") and runs until SIGTERM/SIGINT,
 * serving `front` (borrowed: it outlives the call). Returns the process exit code. */
int daemon_main(int argc, char **argv, const struct daemon_front *front);

#endif
