#include "api/front.h"

#include "api/dashboard.h"
#include "api/events.h"
#include "api/routes.h"
#include "daemon/shoal.h"

static int front_start(struct shoal *sh, const char *dashboard_addr, struct serr *err)
{
    sh->events = events_hub_new(sh->loop, sh->store);
    if (dashboard_addr && dashboard_start(sh, dashboard_addr, err) < 0)
        return -1;
    return 0;
}

static void front_changed(struct shoal *sh)
{
    events_changed(sh->events); /* tell the dashboards */
}

static void front_stop(struct shoal *sh)
{
    events_hub_stop(sh->events); /* ends the streams while their connections live */
    sh->events = NULL;
    dashboard_stop(sh->dashboard);
    sh->dashboard = NULL;
}

const struct daemon_front api_front = {
    .route = routes_dispatch,
    .headers = routes_headers,
    .start = front_start,
    .changed = front_changed,
    .stop = front_stop,
};
