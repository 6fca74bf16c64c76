/* The agent's side of task networking (agent/net.h): keeps the node's
 * bridges (one per network), routes, NAT, published ports and virtual IPs
 * in line with the node list and the mesh (manager/netmodel.h), and hands
 * out task addresses. Runs on the loop; kernel changes go to the thread
 * pool. */
#include <arpa/inet.h>
#include <net/if.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_int.h"
#include "agent/dns.h"
#include "agent/net.h"
#include "base/json_get.h"
#include "base/log.h"
#include "base/util.h"
#include "model/cidr.h"
#include "model/node.h"

/* What one pass wants the kernel to have. */
struct net_want {
    char *key; /* everything below, to skip work when nothing changed */
    char *nft;
    struct net_bridge *bridges;
    size_t nbridges;
    char **stale; /* bridges of networks gone */
    size_t nstale;
    struct net_route *routes;
    size_t nroutes;
    json_t *local; /* network name -> {"bridge", "slice"} */
    bool vxlan;    /* the cluster's overlay mode (upstream) */
    bool localnet; /* some port is published: route_localnet on (net_apply) */
    char self_ip[16]; /* this node's address: the VXLAN tunnels' source */
};

/* A pass that changes only rules and routes (the bridges stay: no task
 * waits for it) starts at least this long after the previous one ended: the
 * commits of a burst of task reports, each changing a service's endpoints,
 * make one pass or two, each with the newest state, not one each. */
#define NET_PASS_GAP_MS 1000

struct agent_net {
    struct agent *a; /* NULL once the agent closed (then freed by the pass or deferred_closed) */
    const char *bridge; /* the daemon's --bridge (the "bridge" network's): outlives us */
    uv_work_t work;
    bool working;
    uv_timer_t deferred; /* the next pass, held back (NET_PASS_GAP_MS) */
    bool deferred_open;  /* until its handle closed */
    uint64_t pass_ended; /* loop time (ms) the last pass ended */
    unsigned passes;     /* started since the daemon started (debug log) */
    bool ready;          /* the kernel has `applied` */
    bool teardown_after; /* swarm left while the work ran */
    char *applied;       /* the key of the last success */
    json_t *local;       /* its networks on this node: name -> {"bridge", "slice"} */
    char *local_path;    /* `local` as last saved: bridges made before a restart */
    char *localnet_path; /* route_localnet's value before we set it (net_apply) */
    json_t *mesh;        /* the mesh it was made from (DNS answers) */
    /* What the last plan found current was made from: up->net_changes (0:
     * no such plan, or not known) and runs_key() then. While both are the
     * same, a sync neither reads the nodes and the mesh nor plans. */
    unsigned long long current_changes;
    char *current_runs;
    struct dns_server *dns; /* on .1 of each bridge: service names for the tasks */
    struct net_want want; /* the work's input */
    json_t *want_mesh;
    int rc;
    struct serr err;
    char last_error[sizeof(((struct serr *)0)->msg)];
};

static int dns_lookup(void *ctx, uint32_t client, const char *name, uint32_t *addrs, size_t max);
/* True for a bridge name this daemon may have made: its own, or a user
 * network's (bridge_name). Anything else in the saved file is ignored, so a
 * damaged file cannot make us delete the host's devices. */
static bool ours(struct agent_net *n, const char *name)
{
    return name && strlen(name) < IF_NAMESIZE &&
           (strcmp(name, n->bridge) == 0 || (strncmp(name, "shn", 3) == 0 && name[3]));
}

/* The networks set up before this daemon started (saved by local_save), so
 * that the bridges of networks removed meanwhile are found stale. */
static json_t *local_load(struct agent_net *n)
{
    json_t *saved = json_load_file(n->local_path, 0, NULL);
    json_t *local = json_object();
    const char *name;
    json_t *v;
    json_object_foreach(saved, name, v)
    {
        json_t *bridge = json_object_get(v, "bridge");
        if (json_is_integer(json_object_get(v, "slice")) && ours(n, json_string_value(bridge)))
            json_object_set(local, name, v);
    }
    json_decref(saved);
    return local;
}

static void local_write(struct agent_net *n, json_t *local)
{
    char *text = json_dumps(local, JSON_COMPACT);
    struct serr err;
    if (text == NULL || write_file_atomic(n->local_path, text, strlen(text), false, &err) < 0)
        log_warn("saving this node's networks to %s: %s", n->local_path,
                 text ? err.msg : "out of memory");
    free(text);
}

static void local_save(struct agent_net *n)
{
    local_write(n, n->local);
}

/* Before a pass: what it may leave in the kernel should the daemon stop
 * before it completes, the applied bridges and the wanted ones (a bridge
 * replaced under the same network name is kept under "NAME/replaced", a
 * name no network can have). */
static void local_save_ahead(struct agent_net *n)
{
    json_t *both = json_copy(n->local);
    const char *name;
    json_t *v;
    json_object_foreach(n->want.local, name, v)
    {
        json_t *had = json_object_get(both, name);
        if (had && strcmp(jstr(had, "bridge"), jstr(v, "bridge")) != 0) {
            char *key = xasprintf("%s/replaced", name);
            json_object_set(both, key, had);
            free(key);
        }
        json_object_set(both, name, v);
    }
    local_write(n, both);
    json_decref(both);
}

struct agent_net *agent_net_new(struct agent *a)
{
    struct agent_net *n = xcalloc(1, sizeof(*n));
    n->a = a;
    n->bridge = a->env->bridge;
    n->local_path = agent_state_path(a->env, "networks.local");
    n->localnet_path = agent_state_path(a->env, "route_localnet.saved");
    n->local = local_load(n);
    n->dns = dns_server_new(a->env->loop, dns_lookup, n);
    uv_timer_init(a->env->loop, &n->deferred);
    n->deferred.data = n;
    n->deferred_open = true;
    return n;
}

static void want_clear(struct net_want *w)
{
    free(w->key);
    free(w->nft);
    free(w->bridges);
    for (size_t i = 0; i < w->nstale; i++)
        free(w->stale[i]);
    free(w->stale);
    free(w->routes);
    json_decref(w->local);
    memset(w, 0, sizeof(*w));
}

static void net_free(struct agent_net *n)
{
    want_clear(&n->want);
    json_decref(n->want_mesh);
    json_decref(n->local);
    json_decref(n->mesh);
    free(n->applied);
    free(n->current_runs);
    free(n->local_path);
    free(n->localnet_path);
    free(n);
}

/* Freed by the last of the pass in flight and the timer's close. */
static void deferred_closed(uv_handle_t *h)
{
    struct agent_net *n = h->data;
    n->deferred_open = false;
    if (!n->working)
        net_free(n);
}

void agent_net_close(struct agent_net *n)
{
    n->a = NULL;
    dns_server_close(n->dns);
    n->dns = NULL;
    uv_close((uv_handle_t *)&n->deferred, deferred_closed);
}

bool agent_net_ready(struct agent *a, const char *network)
{
    return a->net->ready && json_object_get(a->net->local, network) != NULL;
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

static bool parse_cidr(json_t *o, const char *key, uint32_t *net, int *prefix)
{
    const char *text = jstr(o, key);
    return text && net_parse_cidr(text, net, prefix, NULL) == 0;
}

static void cidr24(uint32_t net, char *out)
{
    char ip[16];
    net_format_ip(net, ip);
    snprintf(out, 20, "%s/24", ip);
}

/* The bridge of a network on this node: the daemon's own for "bridge". */
static void bridge_name(struct agent_net *n, json_t *network, char *out)
{
    if (strcmp(jstr(network, "name"), NETWORK_BRIDGE) == 0)
        snprintf(out, 16, "%s", n->bridge);
    else
        snprintf(out, 16, "shn%.12s", jstr(network, "id") ? jstr(network, "id") : "");
}

/* Bridges of this node: one per network that has a /24 for it. */
static void plan_bridges(struct agent_net *n, json_t *networks, uint32_t pool, uint32_t self,
                         json_t *rules)
{
    struct net_want *w = &n->want;
    json_t *list = json_array();
    w->bridges = xcalloc(json_array_size(networks) + 1, sizeof(*w->bridges));
    size_t i;
    json_t *net;
    json_array_foreach(networks, i, net)
    {
        uint32_t base, slice;
        int prefix;
        if (!parse_cidr(net, "subnet", &base, &prefix) || !net_slice(pool, self, base, prefix, &slice))
            continue;
        struct net_bridge *b = &w->bridges[w->nbridges++];
        bridge_name(n, net, b->name);
        b->slice = slice;
        char cidr[20];
        cidr24(slice, cidr);
        json_object_set_new(w->local, jstr(net, "name"),
                            json_pack("{s:s, s:I}", "bridge", b->name, "slice", (json_int_t)slice));
        json_array_append_new(list, json_pack("{s:s, s:s}", "name", b->name, "slice", cidr));
    }
    json_object_set_new(rules, "bridges", list);
}

/* Routes to the other nodes' /24s of every network. */
static void plan_routes(struct agent_net *n, json_t *nodes, json_t *networks, uint32_t pool,
                        const char *self_id)
{
    struct net_want *w = &n->want;
    w->routes = xcalloc(json_array_size(nodes) * json_array_size(networks) + 1, sizeof(*w->routes));
    size_t i, j;
    json_t *node, *net;
    json_array_foreach(nodes, i, node)
    {
        uint32_t subnet, base, slice;
        int prefix;
        const char *addr = node_addr(node), *id = node_id(node);
        if (!id || !addr || strcmp(id, self_id) == 0 || !parse_cidr(node, "subnet", &subnet, &prefix))
            continue;
        json_array_foreach(networks, j, net)
        {
            if (!parse_cidr(net, "subnet", &base, &prefix) ||
                !net_slice(pool, subnet, base, prefix, &slice))
                continue;
            struct net_route *r = &w->routes[w->nroutes++];
            cidr24(slice, r->subnet);
            addr_ip(addr, r->via, sizeof(r->via));
        }
    }
}

static json_t *vip_blocks(json_t *networks)
{
    json_t *out = json_array();
    size_t i;
    json_t *net;
    json_array_foreach(networks, i, net)
    {
        uint32_t base;
        int prefix;
        char cidr[20];
        if (!parse_cidr(net, "subnet", &base, &prefix) || prefix > 23)
            continue;
        cidr24(net_vip_block(base, prefix), cidr);
        json_array_append_new(out, json_string(cidr));
    }
    return out;
}

/* Applied bridges no longer wanted (the "bridge" network's is never stale):
 * the network is gone, or it is a new network of the same name. */
static void plan_stale(struct agent_net *n)
{
    struct net_want *w = &n->want;
    const char *name;
    json_t *v;
    w->stale = xcalloc(json_object_size(n->local) + 1, sizeof(*w->stale));
    json_object_foreach(n->local, name, v)
    {
        json_t *wanted = json_object_get(w->local, name);
        if (wanted == NULL || strcmp(jstr(wanted, "bridge"), jstr(v, "bridge")) != 0)
            w->stale[w->nstale++] = xstrdup(jstr(v, "bridge"));
    }
}

static bool publishes_ports(json_t *services)
{
    size_t i;
    json_t *svc;
    json_array_foreach(services, i, svc)
    {
        if (json_array_size(json_object_get(svc, "ports")) > 0)
            return true;
    }
    return false;
}

/* The mesh's services, and for each container of `shoal run -p` on this
 * node one more whose only endpoint is the container: its ports answer on
 * this node's addresses alone, as the mesh's do (new reference). */
static json_t *published_services(struct agent *a, json_t *mesh_services, const char *self_id)
{
    json_t *services = json_is_array(mesh_services) ? json_copy(mesh_services) : json_array();
    for (struct ctr *c = a ? a->ctrs : NULL; c; c = c->next) {
        if (c->ports == NULL || c->addr == 0 || c->phase == PH_DONE)
            continue;
        char addr[16];
        net_format_ip(c->addr, addr);
        char *name = xasprintf("run.%s", c->name);
        json_array_append_new(services,
                              json_pack("{s:s, s:O, s:[{s:s, s:s}]}", "name", name, "ports",
                                        c->ports, "endpoints", "addr", addr, "node_id", self_id));
        free(name);
    }
    return services;
}

static char *plan_key(struct net_want *w, const char *overlay)
{
    char *key = xasprintf("%s;%d;%s;%s", overlay, w->localnet, w->self_ip, w->nft);
    size_t len = strlen(key), cap = len + 1;
    for (size_t i = 0; i < w->nroutes; i++) {
        char route[48];
        int n = snprintf(route, sizeof(route), "%s>%s;", w->routes[i].subnet, w->routes[i].via);
        buf_append(&key, &len, &cap, route, (size_t)n);
    }
    return key;
}

/* Fills n->want from the node list and the mesh; false when this node has
 * no subnet yet (or no mesh came yet). */
static bool plan(struct agent_net *n, json_t *nodes, json_t *mesh, const char *self_id,
                 const char *overlay)
{
    uint32_t pool, self = 0;
    int prefix;
    size_t i;
    json_t *node;
    if (!parse_cidr(mesh, "pool", &pool, &prefix))
        return false;
    json_array_foreach(nodes, i, node)
    {
        if (strcmp(node_id(node) ? node_id(node) : "", self_id) != 0)
            continue;
        if (!parse_cidr(node, "subnet", &self, &prefix) || node_addr(node) == NULL)
            return false;
        addr_ip(node_addr(node), n->want.self_ip, sizeof(n->want.self_ip));
    }
    if (self == 0)
        return false;
    json_t *networks = json_object_get(mesh, "networks");
    json_t *services = published_services(n->a, json_object_get(mesh, "services"), self_id);
    json_t *rules = json_pack("{s:s, s:O, s:o, s:o}", "self", self_id, "networks", networks,
                              "vip_blocks", vip_blocks(networks), "services", services);
    n->want.local = json_object();
    plan_bridges(n, networks, pool, self, rules);
    plan_routes(n, nodes, networks, pool, self_id);
    plan_stale(n);
    n->want.nft = net_rules_script(n->bridge, rules);
    n->want.localnet = publishes_ports(services);
    json_decref(rules);
    n->want.vxlan = strcmp(overlay, NET_OVERLAY_VXLAN) == 0;
    n->want.key = plan_key(&n->want, overlay);
    return true;
}

static void work_apply(uv_work_t *w)
{
    struct agent_net *n = w->data;
    struct net_want *want = &n->want;
    n->rc = net_apply(want->bridges, want->nbridges, want->stale, want->nstale, want->nft,
                      want->localnet, n->localnet_path, n->bridge, &n->err);
    if (n->rc == 0)
        n->rc = net_redirects_off(want->self_ip, &n->err);
    if (n->rc == 0)
        n->rc = want->vxlan ? net_vxlan_apply(n->bridge, want->bridges, want->nbridges,
                                              want->self_ip, want->routes, want->nroutes, &n->err)
                            : net_routes_apply(want->routes, want->nroutes, &n->err);
}

static void bridge_gw(json_t *local_entry, char *out)
{
    net_format_ip((uint32_t)json_integer_value(json_object_get(local_entry, "slice")) + 1, out);
}

/* The DNS server answers on the .1 of every bridge of `now`, no longer on
 * those only in `before`. */
static void dns_follow(struct agent_net *n, json_t *before, json_t *now)
{
    const char *name;
    json_t *v;
    char gw[16];
    json_object_foreach(before, name, v)
    {
        if (json_object_get(now, name) == NULL) {
            bridge_gw(v, gw);
            dns_server_unlisten(n->dns, gw);
        }
    }
    json_object_foreach(now, name, v)
    {
        struct serr err = {0};
        bridge_gw(v, gw);
        if (dns_server_listen(n->dns, gw, 53, &err) < 0)
            log_warn("DNS server on %s: %s", gw, err.msg);
    }
}

static void applied(struct agent_net *n)
{
    dns_follow(n, n->local, n->want.local);
    free(n->applied);
    n->applied = n->want.key;
    n->want.key = NULL;
    json_decref(n->local);
    n->local = n->want.local;
    n->want.local = NULL;
    local_save(n);
    json_decref(n->mesh);
    n->mesh = n->want_mesh;
    n->want_mesh = NULL;
    if (!n->ready || n->last_error[0])
        log_info("task network ready: %zu bridge(s), %zu route(s) to other nodes",
                 n->want.nbridges, n->want.nroutes);
    n->ready = true;
    n->last_error[0] = '\0';
    agent_kick(n->a); /* tasks waiting for their bridge */
}

static void teardown(struct agent_net *n)
{
    json_t *none = json_object();
    if (n->dns)
        dns_follow(n, n->local, none);
    json_decref(none);
    char **names = xcalloc(json_object_size(n->local) + 1, sizeof(*names));
    size_t count = 0;
    const char *name;
    json_t *v;
    json_object_foreach(n->local, name, v) names[count++] = (char *)jstr(v, "bridge");
    net_bridges_delete(names, count);
    free(names);
    struct serr err = {0};
    if (net_localnet_restore(n->localnet_path, n->bridge, &err) < 0) /* before its guard goes */
        log_warn("restoring route_localnet: %s", err.msg);
    net_teardown(n->bridge);
    json_object_clear(n->local);
    local_save(n);
}

static void after_apply(uv_work_t *w, int status)
{
    (void)status;
    struct agent_net *n = w->data;
    n->working = false;
    bool left = n->teardown_after;
    if (left) { /* even when closing: nothing of ours stays in the kernel */
        n->teardown_after = false;
        json_decref(n->local);
        n->local = json_incref(n->want.local);
        teardown(n);
    }
    if (n->a == NULL) {
        if (!n->deferred_open)
            net_free(n);
        return;
    }
    n->pass_ended = uv_now(n->a->env->loop);
    if (!left && n->rc == 0) {
        applied(n);
    } else if (!left && strcmp(n->last_error, n->err.msg) != 0) {
        /* retried on the next kick (at least every second); said once */
        snprintf(n->last_error, sizeof(n->last_error), "%s", n->err.msg);
        log_warn("%s", n->err.msg);
    }
    want_clear(&n->want);
    json_decref(n->want_mesh);
    n->want_mesh = NULL;
}

/* A device the last set-up made that no longer exists (deleted by hand),
 * or NULL. One cheap syscall per device. */
static const char *missing_link(struct agent_net *n)
{
    static __thread char vx[IF_NAMESIZE];
    const char *name;
    json_t *v;
    json_object_foreach(n->local, name, v)
    {
        if (!net_link_exists(jstr(v, "bridge")))
            return jstr(v, "bridge");
    }
    net_vxlan_name(n->bridge, vx, sizeof(vx));
    if (n->applied && strncmp(n->applied, NET_OVERLAY_VXLAN ";", 6) == 0 && !net_link_exists(vx))
        return vx;
    return NULL;
}

static void deferred_due(uv_timer_t *t)
{
    struct agent_net *n = t->data;
    agent_kick(n->a); /* plans again: the newest state */
}

/* True when the pass planned in n->want waits: it keeps the bridges as they
 * are and the previous pass ended less than NET_PASS_GAP_MS ago. The timer
 * then kicks the agent once the gap is over. */
static bool pass_deferred(struct agent_net *n, uv_loop_t *loop)
{
    uint64_t since = uv_now(loop) - n->pass_ended;
    if (!n->ready || since >= NET_PASS_GAP_MS || !json_equal(n->want.local, n->local))
        return false;
    if (!uv_is_active((uv_handle_t *)&n->deferred))
        uv_timer_start(&n->deferred, deferred_due, NET_PASS_GAP_MS - since, 0);
    return true;
}

static void pass_start(struct agent_net *n, json_t *mesh, uv_loop_t *loop)
{
    local_save_ahead(n);
    n->want_mesh = mesh;
    n->working = true;
    n->passes++;
    log_debug("network pass %u: %zu bridge(s), %zu route(s), %zu bytes of rules", n->passes,
              n->want.nbridges, n->want.nroutes, strlen(n->want.nft));
    n->work.data = n;
    uv_queue_work(loop, &n->work, work_apply, after_apply);
}

/* What the plan takes from the agent itself: the containers of `shoal run
 * -p` (published_services), as text ("" when none; newly allocated). */
static char *runs_key(struct agent *a)
{
    char *key = xstrdup("");
    size_t len = 0, cap = 1;
    for (struct ctr *c = a->ctrs; c; c = c->next) {
        if (c->ports == NULL || c->addr == 0 || c->phase == PH_DONE)
            continue;
        char *ports = json_dumps(c->ports, JSON_COMPACT | JSON_SORT_KEYS);
        char *one = xasprintf("%s@%u:%s;", c->name, (unsigned)c->addr, ports ? ports : "?");
        buf_append(&key, &len, &cap, one, strlen(one));
        free(one);
        free(ports);
    }
    return key;
}

static void forget_current(struct agent_net *n)
{
    n->current_changes = 0;
    free(n->current_runs);
    n->current_runs = NULL;
}

/* True when nothing the last plan found current was made from can have
 * changed since: the kernel has it (no device missing) and the upstream's
 * count and the local published containers are the same. */
static bool still_current(struct agent_net *n, unsigned long long changes, const char *runs)
{
    return n->ready && n->applied && changes != 0 && changes == n->current_changes &&
           n->current_runs && strcmp(runs, n->current_runs) == 0;
}

void agent_net_sync(struct agent *a)
{
    struct agent_net *n = a->net;
    if (n->working)
        return; /* its completion kicks the agent again */
    const char *gone = n->ready ? missing_link(n) : NULL;
    if (gone) {
        /* someone removed one of our devices: make them again before the next task */
        log_warn("%s is gone: setting the network up again", gone);
        n->ready = false;
        free(n->applied);
        n->applied = NULL;
    }
    const struct agent_upstream *up = a->up;
    unsigned long long changes = up->net_changes ? up->net_changes(up->data) : 0;
    char *runs = runs_key(a);
    if (still_current(n, changes, runs)) {
        free(runs);
        return;
    }
    forget_current(n);
    json_t *nodes = up->nodes(up->data);
    json_t *mesh = nodes ? up->mesh(up->data) : NULL;
    bool planned = mesh && plan(n, nodes, mesh, a->env->node_id, up->overlay(up->data));
    json_decref(nodes);
    bool current = planned && n->applied && strcmp(n->applied, n->want.key) == 0;
    if (!planned || current || pass_deferred(n, a->env->loop)) {
        if (current && n->ready) { /* the kernel is up to date; the names may not be */
            json_decref(n->mesh);
            n->mesh = mesh;
            mesh = NULL;
            n->current_changes = changes;
            n->current_runs = runs;
            runs = NULL;
        }
        want_clear(&n->want);
        json_decref(mesh);
        free(runs);
        return;
    }
    free(runs);
    pass_start(n, mesh, a->env->loop);
}

void agent_net_leave(struct agent *a)
{
    struct agent_net *n = a->net;
    n->ready = false;
    free(n->applied);
    n->applied = NULL;
    forget_current(n);
    if (n->working)
        n->teardown_after = true;
    else
        teardown(n); /* once, while leaving: blocking is acceptable here */
}

int agent_net_attach(struct agent *a, const char *network, char *bridge, uint32_t *addr,
                     struct serr *err)
{
    json_t *local = json_object_get(a->net->local, network);
    if (local == NULL)
        return serr_set(err, SERR_UNAVAILABLE, "network %s is not set up on this node", network);
    uint32_t slice = (uint32_t)json_integer_value(json_object_get(local, "slice"));
    size_t count = 0;
    for (struct ctr *c = a->ctrs; c; c = c->next)
        count++;
    uint32_t *used = xcalloc(count + 1, sizeof(*used));
    size_t nused = 0;
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if (c->addr != 0 && c->phase != PH_DONE && (c->addr & 0xffffff00u) == slice)
            used[nused++] = c->addr;
    int rc = net_pick_host(slice, used, nused, addr, err);
    free(used);
    if (rc == 0)
        snprintf(bridge, 16, "%s", jstr(local, "bridge"));
    return rc;
}

json_t *agent_net_mesh(struct agent *a)
{
    return a->net->mesh;
}

/* ---- DNS answers: NAME -> the service's virtual IP, tasks.NAME -> its
 * tasks' addresses, for services of the asking task's network ---- */

static const char *client_network(json_t *mesh, uint32_t client)
{
    size_t i;
    json_t *net;
    json_array_foreach(json_object_get(mesh, "networks"), i, net)
    {
        uint32_t base;
        int prefix;
        if (parse_cidr(net, "subnet", &base, &prefix) &&
            (client & (prefix ? 0xffffffffu << (32 - prefix) : 0)) == base)
            return jstr(net, "name");
    }
    return NULL;
}

static int dns_lookup(void *ctx, uint32_t client, const char *name, uint32_t *addrs, size_t max)
{
    struct agent_net *n = ctx;
    const char *network = client_network(n->mesh, client);
    bool tasks = strncmp(name, "tasks.", 6) == 0;
    const char *svc_name = tasks ? name + 6 : name;
    size_t i, j;
    json_t *svc, *e;
    if (network == NULL)
        return -1;
    json_array_foreach(json_object_get(n->mesh, "services"), i, svc)
    {
        const char *sname = jstr(svc, "name"), *snet = jstr(svc, "network");
        if (!sname || !snet || strcasecmp(sname, svc_name) != 0 || strcmp(snet, network) != 0)
            continue;
        if (!tasks)
            return max > 0 && net_parse_ip(jstr(svc, "vip"), &addrs[0]) ? 1 : 0;
        int count = 0;
        json_array_foreach(json_object_get(svc, "endpoints"), j, e)
        {
            if ((size_t)count < max && net_parse_ip(jstr(e, "addr"), &addrs[count]))
                count++;
        }
        return count;
    }
    return -1;
}
