/* The web dashboard (`shoal daemon --dashboard-addr ADDR:PORT`): a plain-HTTP
 * TCP listener serving the page (/ui/) and, to holders of a token, the JSON
 * API through routes_dispatch. Two random tokens per daemon live in
 * <state-dir>/dashboard.json: "read_only" (GET routes only) and "admin"
 * (what an admin certificate may do on the cluster port). */
#ifndef SHOAL_API_DASHBOARD_H
#define SHOAL_API_DASHBOARD_H

#include "base/err.h"

struct shoal;
struct http_req;
struct dashboard;

/* Loads or creates the tokens and starts listening; sets sh->dashboard. */
int dashboard_start(struct shoal *sh, const char *addr, struct serr *err);
/* Closes the listener and its connections. NULL is fine. */
void dashboard_stop(struct dashboard *d);

/* Route handlers (routes.c's table). */
void dashboard_get_url(struct shoal *sh, struct http_req *req, char **args);
void dashboard_get_events(struct shoal *sh, struct http_req *req, char **args);

#endif
