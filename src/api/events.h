/* Server-sent events (GET /v1/events): "the cluster state changed" pushes for
 * the dashboard. Clients re-fetch what they show on each event, so an event
 * carries only the store version; bursts of changes are coalesced. Audit
 * events (events_publish) carry their data and are sent at once. */
#ifndef SHOAL_API_EVENTS_H
#define SHOAL_API_EVENTS_H

#include <jansson.h>
#include <uv.h>

struct http_req;
struct store;
struct events_hub;

/* At most one change event per EVENTS_COALESCE_MS; a comment line every
 * EVENTS_HEARTBEAT_MS keeps proxies and idle-timeouts from cutting streams. */
#define EVENTS_COALESCE_MS 100
#define EVENTS_HEARTBEAT_MS 15000

struct events_hub *events_hub_new(uv_loop_t *loop, struct store *store);
/* Something may have changed (called from shoal_kick): cheap, coalesced. */
void events_changed(struct events_hub *hub);
/* Answers `req` with a text/event-stream that lasts until the client goes. */
void events_subscribe(struct events_hub *hub, struct http_req *req);
/* An audit event ("event: TYPE\ndata: JSON") to every stream of this daemon,
 * now (not coalesced): node exec and node cp calls with who, what and where.
 * `data` is borrowed. */
void events_publish(struct events_hub *hub, const char *type, json_t *data);
/* Ends every stream, then frees the hub in its handles' close callbacks. */
void events_hub_stop(struct events_hub *hub);

#endif
