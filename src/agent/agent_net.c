/* The agent's side of task networking (agent/net.h): keeps the node's
 * bridge, NAT and routes in line with the node list, and hands out task
 * addresses of the node's /24. Runs on the loop; kernel changes go to the
 * thread pool. */
#include <stdlib.h>
#include <string.h>

#include "agent/agent_int.h"
#include "agent/net.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/shoal.h"

struct agent_net {
    struct agent *a; /* NULL once the agent closed: the work in flight frees this */
    const char *bridge; /* the daemon's --bridge: outlives us */
    uv_work_t work;
    bool working;
    bool ready;          /* the bridge is up for `subnet` */
    bool teardown_after; /* swarm left while the work ran */
    uint32_t subnet;
    char *applied;       /* what the kernel has (want_key of the last success) */
    /* the work's input and result */
    char *want_key;
    uint32_t want_subnet;
    bool want_vxlan;      /* the cluster's overlay mode (shoal_overlay) */
    char want_local[16];  /* this node's address: the VXLAN tunnels' source */
    struct net_route *routes;
    size_t nroutes;
    const char **exempt;
    int rc;
    struct serr err;
    char last_error[sizeof(((struct serr *)0)->msg)];
};

struct agent_net *agent_net_new(struct agent *a)
{
    struct agent_net *n = xcalloc(1, sizeof(*n));
    n->a = a;
    n->bridge = a->sh->bridge;
    return n;
}

static void clear_want(struct agent_net *n)
{
    free(n->want_key);
    free(n->routes);
    free(n->exempt);
    n->want_key = NULL;
    n->routes = NULL;
    n->exempt = NULL;
    n->nroutes = 0;
}

static void net_free(struct agent_net *n)
{
    clear_want(n);
    free(n->applied);
    free(n);
}

void agent_net_close(struct agent_net *n)
{
    n->a = NULL;
    if (!n->working)
        net_free(n);
}

bool agent_net_ready(struct agent *a)
{
    return a->net->ready;
}

const char *agent_net_error(struct agent *a)
{
    return a->net->last_error[0] ? a->net->last_error : NULL;
}

/* "IP:PORT" -> "IP" */
static void addr_ip(const char *addr, char *out, size_t outlen)
{
    const char *colon = strrchr(addr, ':');
    size_t len = colon ? (size_t)(colon - addr) : strlen(addr);
    snprintf(out, outlen, "%.*s", (int)(len < outlen ? len : outlen - 1), addr);
}

/* Fills the wanted state from the node list; false when this node has no
 * subnet yet. The key describes it, to skip work when nothing changed. */
static bool plan(struct agent_net *n, json_t *nodes, const char *self_id, const char *overlay)
{
    size_t count = json_array_size(nodes), i;
    json_t *node;
    n->routes = xcalloc(count + 1, sizeof(*n->routes));
    n->exempt = xcalloc(count + 1, sizeof(*n->exempt));
    n->want_vxlan = strcmp(overlay, NET_OVERLAY_VXLAN) == 0;
    n->want_key = xasprintf("%s;", overlay);
    bool found = false;
    json_array_foreach(nodes, i, node)
    {
        const char *id = json_string_value(json_object_get(node, "id"));
        const char *subnet = json_string_value(json_object_get(node, "subnet"));
        const char *addr = json_string_value(json_object_get(node, "addr"));
        uint32_t net;
        int prefix;
        if (!id || !subnet || !addr || net_parse_cidr(subnet, &net, &prefix, NULL) < 0)
            continue;
        if (strcmp(id, self_id) == 0) {
            n->want_subnet = net;
            addr_ip(addr, n->want_local, sizeof(n->want_local));
            found = true;
        } else {
            struct net_route *r = &n->routes[n->nroutes++];
            snprintf(r->subnet, sizeof(r->subnet), "%s", subnet);
            addr_ip(addr, r->via, sizeof(r->via));
            n->exempt[n->nroutes - 1] = r->subnet;
        }
        char *key = xasprintf("%s%s=%s;", n->want_key, subnet, addr);
        free(n->want_key);
        n->want_key = key;
    }
    return found;
}

static void work_apply(uv_work_t *w)
{
    struct agent_net *n = w->data;
    n->rc = net_setup(n->bridge, n->want_subnet, n->exempt, n->nroutes, &n->err);
    if (n->rc == 0)
        n->rc = n->want_vxlan ? net_vxlan_apply(n->bridge, n->want_local, n->routes, n->nroutes,
                                                &n->err)
                              : net_routes_apply(n->routes, n->nroutes, &n->err);
}

static void after_apply(uv_work_t *w, int status)
{
    struct agent_net *n = w->data;
    n->working = false;
    if (n->a == NULL) {
        net_free(n);
        return;
    }
    if (n->teardown_after) {
        n->teardown_after = false;
        net_teardown(n->bridge);
    } else if (n->rc == 0) {
        free(n->applied);
        n->applied = n->want_key;
        n->want_key = NULL;
        n->subnet = n->want_subnet;
        n->ready = true;
        n->last_error[0] = '\0';
        log_info("task network ready: bridge %s, %zu route(s) to other nodes", n->bridge,
                 n->nroutes);
        agent_kick(n->a); /* tasks waiting for the bridge */
    } else if (strcmp(n->last_error, n->err.msg) != 0) {
        /* retried on the next kick (at least every second); said once */
        snprintf(n->last_error, sizeof(n->last_error), "%s", n->err.msg);
        log_warn("%s", n->err.msg);
    }
    clear_want(n);
}

void agent_net_sync(struct agent *a)
{
    struct agent_net *n = a->net;
    if (n->working)
        return; /* its completion kicks the agent again */
    if (n->ready && !net_link_exists(n->bridge)) {
        /* someone removed our bridge: make it again before the next task */
        log_warn("bridge %s is gone: setting it up again", n->bridge);
        n->ready = false;
        free(n->applied);
        n->applied = NULL;
    }
    json_t *nodes = a->sh->role[0] ? shoal_nodes(a->sh) : NULL;
    if (nodes == NULL)
        return;
    /* The node list's JSON (tasks, images...) is tiny: planning every kick is cheap. */
    bool have_subnet = plan(n, nodes, a->sh->node_id, shoal_overlay(a->sh));
    bool changed = n->applied == NULL || strcmp(n->applied, n->want_key) != 0;
    if (!have_subnet || !changed) {
        clear_want(n);
        json_decref(nodes);
        return;
    }
    n->working = true;
    n->work.data = n;
    json_decref(nodes);
    uv_queue_work(a->sh->loop, &n->work, work_apply, after_apply);
}

void agent_net_leave(struct agent *a)
{
    struct agent_net *n = a->net;
    n->ready = false;
    n->subnet = 0;
    free(n->applied);
    n->applied = NULL;
    if (n->working)
        n->teardown_after = true;
    else
        net_teardown(n->bridge); /* once, while leaving: blocking is acceptable here */
}

int agent_net_alloc(struct agent *a, uint32_t *addr, struct serr *err)
{
    size_t count = 0;
    for (struct ctr *c = a->ctrs; c; c = c->next)
        count++;
    uint32_t *used = xcalloc(count + 1, sizeof(*used));
    size_t nused = 0;
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if (c->addr != 0 && c->phase != PH_DONE)
            used[nused++] = c->addr;
    int rc = net_pick_host(a->net->subnet, used, nused, addr, err);
    free(used);
    return rc;
}
