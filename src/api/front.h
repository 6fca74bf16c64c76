/* The API as the daemon serves it (daemon/daemon.h's struct daemon_front):
 * the routes, the event streams and the dashboard, handed to daemon_main by
 * src/main.c so that daemon/ includes nothing of api/. */
#ifndef SHOAL_API_FRONT_H
#define SHOAL_API_FRONT_H

#include "daemon/daemon.h"

extern const struct daemon_front api_front;

#endif
