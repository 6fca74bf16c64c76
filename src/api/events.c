/* Server-sent events: one list of subscribed requests, one coalescing timer
 * and one heartbeat timer per daemon. */
#include "api/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "http/http.h"
#include "store/store.h"

struct events_sub {
    struct events_hub *hub;
    struct http_req *req;
    struct events_sub *prev, *next;
};

struct events_hub {
    struct store *store;
    uv_timer_t coalesce, heartbeat;
    struct events_sub *subs;
    unsigned long long sent_version;
    uint64_t last_sent_ms; /* uv_now() of the last change event */
    int open_handles;
};

static void unlink_sub(struct events_hub *hub, struct events_sub *sub)
{
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        hub->subs = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    free(sub);
}

static void broadcast(struct events_hub *hub, const char *text, size_t len)
{
    for (struct events_sub *s = hub->subs; s; s = s->next)
        http_stream_write(s->req, text, len);
}

static void send_change(struct events_hub *hub)
{
    unsigned long long version = store_version(hub->store);
    if (version == hub->sent_version)
        return; /* a reconcile pass without a state change */
    hub->sent_version = version;
    hub->last_sent_ms = uv_now(hub->coalesce.loop);
    char text[96];
    int n = snprintf(text, sizeof(text), "event: change\ndata: {\"version\":%llu}\n\n", version);
    broadcast(hub, text, (size_t)n);
}

static void coalesce_cb(uv_timer_t *t)
{
    send_change(t->data);
}

static void heartbeat_cb(uv_timer_t *t)
{
    static const char comment[] = ": heartbeat\n\n";
    broadcast(t->data, comment, sizeof(comment) - 1);
}

struct events_hub *events_hub_new(uv_loop_t *loop, struct store *store)
{
    struct events_hub *hub = xcalloc(1, sizeof(*hub));
    hub->store = store;
    hub->sent_version = store_version(store);
    uv_timer_init(loop, &hub->coalesce);
    uv_timer_init(loop, &hub->heartbeat);
    hub->coalesce.data = hub->heartbeat.data = hub;
    hub->open_handles = 2;
    uv_timer_start(&hub->heartbeat, heartbeat_cb, EVENTS_HEARTBEAT_MS, EVENTS_HEARTBEAT_MS);
    uv_unref((uv_handle_t *)&hub->heartbeat); /* never what keeps the loop alive */
    return hub;
}

void events_changed(struct events_hub *hub)
{
    if (hub == NULL || hub->subs == NULL || uv_is_active((uv_handle_t *)&hub->coalesce))
        return;
    uint64_t now = uv_now(hub->coalesce.loop), due = hub->last_sent_ms + EVENTS_COALESCE_MS;
    uv_timer_start(&hub->coalesce, coalesce_cb, due > now ? due - now : 0, 0);
}

void events_publish(struct events_hub *hub, const char *type, json_t *data)
{
    if (hub == NULL || hub->subs == NULL)
        return;
    char *json = json_dumps(data, JSON_COMPACT);
    if (json == NULL)
        return;
    char *text = xasprintf("event: %s\ndata: %s\n\n", type, json);
    broadcast(hub, text, strlen(text));
    free(text);
    free(json);
}

static void on_sub_abort(struct http_req *req)
{
    struct events_sub *sub = req->data;
    unlink_sub(sub->hub, sub);
}

void events_subscribe(struct events_hub *hub, struct http_req *req)
{
    struct events_sub *sub = xcalloc(1, sizeof(*sub));
    sub->hub = hub;
    sub->req = req;
    sub->next = hub->subs;
    if (hub->subs)
        hub->subs->prev = sub;
    hub->subs = sub;
    req->data = sub;
    req->on_abort = on_sub_abort;
    http_stream_start(req, 200, "text/event-stream");
    /* The first event tells the client where it stands, and that the stream works. */
    char text[96];
    int n = snprintf(text, sizeof(text), "retry: 1000\nevent: change\ndata: {\"version\":%llu}\n\n",
                     store_version(hub->store));
    http_stream_write(req, text, (size_t)n);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct events_hub *hub = h->data;
    if (--hub->open_handles == 0)
        free(hub);
}

void events_hub_stop(struct events_hub *hub)
{
    if (hub == NULL)
        return;
    while (hub->subs) {
        struct http_req *req = hub->subs->req;
        req->on_abort = NULL;
        unlink_sub(hub, hub->subs);
        http_stream_end(req);
    }
    uv_close((uv_handle_t *)&hub->coalesce, on_timer_closed);
    uv_close((uv_handle_t *)&hub->heartbeat, on_timer_closed);
}
