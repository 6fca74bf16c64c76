/* The daemon's API routes (docs/api.md): the router given to the HTTP server. */
#ifndef SHOAL_API_ROUTES_H
#define SHOAL_API_ROUTES_H

struct http_server;
struct http_req;

/* http_router_cb; the server's data is the daemon's struct shoal. */
void routes_dispatch(struct http_server *srv, struct http_req *req);
/* For http_server_set_headers: "X-Shoal-Applied: N" on a manager. */
const char *routes_headers(void *data);

#endif
