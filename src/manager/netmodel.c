/* User networks, published ports, virtual IPs and the mesh (netmodel.h). */
#include "manager/netmodel.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/json_get.h"
#include "base/util.h"
#include "manager/subnets.h"
#include "model/cidr.h"
#include "model/service.h"
#include "model/task.h"
#include "store/store.h"

/* ---- networks ---- */

static bool valid_network_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

/* The built-in network a name means in any case ("Bridge": "bridge"), or NULL. */
static const char *builtin_named(const char *name)
{
    if (strcasecmp(name, NETWORK_BRIDGE) == 0)
        return NETWORK_BRIDGE;
    return strcasecmp(name, NETWORK_HOST) == 0 ? NETWORK_HOST : NULL;
}

static const char *pool_of(struct store *st, char *buf, size_t buflen)
{
    json_t *meta = store_get(st, "meta", "cluster");
    snprintf(buf, buflen, "%s", subnets_pool(meta));
    json_decref(meta);
    return buf;
}

/* Every range of ours: the pool, then the user networks, as "name" -> CIDR. */
static json_t *ranges(struct store *st)
{
    char pool[32];
    json_t *out = json_pack("[{s:s, s:s, s:s}]", "id", NETWORK_BRIDGE, "name", NETWORK_BRIDGE,
                            "subnet", pool_of(st, pool, sizeof(pool)));
    json_t *nets = store_list(st, "networks", "name");
    size_t i;
    json_t *n;
    json_array_foreach(nets, i, n)
        json_array_append_new(out, json_pack("{s:O, s:O, s:O}", "id", json_object_get(n, "id"),
                                             "name", json_object_get(n, "name"), "subnet",
                                             json_object_get(n, "subnet")));
    json_decref(nets);
    return out;
}

/* A route of this host (other than ours) that shares addresses with the
 * range: the network would shadow it. Only the leader's view: the nodes'
 * LANs are usually one. */
static bool host_route_overlap(uint32_t net, int prefix, json_t *ours, char *what, size_t len)
{
    FILE *f = fopen("/proc/net/route", "r");
    if (f == NULL)
        return false;
    char line[256], iface[32];
    unsigned dst, gw, flags, refcnt, use, metric, mask;
    bool found = false;
    if (fgets(line, sizeof(line), f) == NULL) /* header */
        line[0] = '\0';
    while (!found && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%31s %x %x %x %u %u %u %x", iface, &dst, &gw, &flags, &refcnt, &use,
                   &metric, &mask) != 8 || mask == 0)
            continue;
        uint32_t rdst = __builtin_bswap32(dst), rmask = __builtin_bswap32(mask);
        int rprefix = __builtin_popcount(rmask);
        bool inside_ours = false;
        size_t i;
        json_t *r;
        json_array_foreach(ours, i, r)
        {
            uint32_t o;
            int op;
            if (net_parse_cidr(jstr(r, "subnet"), &o, &op, NULL) == 0 && rprefix >= op &&
                net_ranges_overlap(o, op, rdst, rprefix))
                inside_ours = true;
        }
        if (!inside_ours && net_ranges_overlap(net, prefix, rdst, rprefix)) {
            char ip[16];
            net_format_ip(rdst, ip);
            snprintf(what, len, "%s/%d on %s", ip, rprefix, iface);
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* 0 when the range is free; else err names what it overlaps. */
static int check_range(json_t *ours, uint32_t net, int prefix, struct serr *err)
{
    size_t i;
    json_t *r;
    json_array_foreach(ours, i, r)
    {
        const char *cidr = jstr(r, "subnet");
        uint32_t o;
        int op;
        if (net_parse_cidr(cidr, &o, &op, NULL) == 0 && net_ranges_overlap(net, prefix, o, op))
            return serr_set(err, SERR_CONFLICT, "subnet overlaps network %s (%s)", jstr(r, "name"),
                            cidr);
    }
    char what[64];
    if (host_route_overlap(net, prefix, ours, what, sizeof(what)))
        return serr_set(err, SERR_CONFLICT, "subnet overlaps a network of this host (%s)", what);
    return 0;
}

/* The first free 10.X.0.0/16 above 10.42. */
static int pick_range(json_t *ours, char *out, size_t len, struct serr *err)
{
    for (uint32_t x = 43; x < 255; x++) {
        uint32_t net = (10u << 24) | (x << 16);
        if (check_range(ours, net, 16, NULL) == 0) {
            char ip[16];
            net_format_ip(net, ip);
            snprintf(out, len, "%s/16", ip);
            return 0;
        }
    }
    return serr_set(err, SERR_UNAVAILABLE, "no free 10.X.0.0/16 left: give --subnet");
}

static int network_subnet(json_t *ours, json_t *body, char *out, size_t len, struct serr *err)
{
    json_t *v = json_object_get(body, "subnet");
    if (v == NULL || json_is_null(v))
        return pick_range(ours, out, len, err);
    uint32_t net;
    int prefix;
    if (!json_is_string(v) || net_parse_cidr(json_string_value(v), &net, &prefix, err) < 0)
        return serr_set(err, SERR_INVALID, "subnet must be a CIDR like 10.50.0.0/16");
    if (prefix < 8 || prefix > 23)
        return serr_set(err, SERR_INVALID,
                        "subnet %s: the prefix must be /8 to /23 (a /24 per node, plus one for "
                        "the virtual IPs)", json_string_value(v));
    if (check_range(ours, net, prefix, err) < 0)
        return -1;
    char ip[16];
    net_format_ip(net, ip);
    snprintf(out, len, "%s/%d", ip, prefix);
    return 0;
}

json_t *network_new(struct store *st, json_t *body, struct serr *err)
{
    static const char *const known[] = {"name", "subnet", NULL};
    const char *key;
    json_t *val;
    if (!json_is_object(body)) {
        serr_set(err, SERR_INVALID, "network must be a JSON object");
        return NULL;
    }
    json_object_foreach(body, key, val)
    {
        if (!str_in_list(key, known)) {
            serr_set(err, SERR_INVALID, "unknown field '%s' in network", key);
            return NULL;
        }
    }
    json_t *name_value = json_object_get(body, "name");
    if (name_value && !json_is_string(name_value)) {
        serr_set(err, SERR_INVALID, "name: expected a string");
        return NULL;
    }
    const char *name = json_string_value(name_value);
    if (!valid_network_name(name)) {
        serr_set(err, SERR_INVALID,
                 "invalid network name '%s' (letters, digits, '_', '.', '-'; at most 63)",
                 name ? name : "");
        return NULL;
    }
    json_t *dup = store_find_name(st, "networks", name, NULL);
    const char *taken = builtin_named(name) ? builtin_named(name) : dup ? jstr(dup, "name") : NULL;
    if (taken) {
        if (strcmp(taken, name) == 0)
            serr_set(err, SERR_CONFLICT, "network %s already exists", name);
        else
            serr_set(err, SERR_CONFLICT, "network %s already exists (name conflicts with network "
                     "%s: names are unique regardless of case)", name, taken);
        json_decref(dup);
        return NULL;
    }
    json_t *ours = ranges(st);
    char subnet[24];
    int rc = network_subnet(ours, body, subnet, sizeof(subnet), err);
    json_decref(ours);
    if (rc < 0)
        return NULL;
    char id[26];
    random_hex(id, 25);
    return json_pack("{s:s, s:s, s:s, s:I}", "id", id, "name", name, "subnet", subnet,
                     "created_at", (json_int_t)now_ms());
}

json_t *network_services(struct store *st, const char *name)
{
    json_t *svcs = store_list(st, "services", "name"), *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s)
    {
        const char *net = jstr(service_spec(s), "network");
        if (net && strcmp(net, name) == 0)
            json_array_append(out, json_object_get(s, "name"));
    }
    json_decref(svcs);
    return out;
}

static json_t *builtin(struct store *st, const char *name)
{
    char pool[32];
    json_t *n = json_pack("{s:s, s:s, s:s, s:b}", "id", name, "name", name, "driver",
                          strcmp(name, NETWORK_HOST) == 0 ? "host" : "bridge", "builtin", 1);
    if (strcmp(name, NETWORK_BRIDGE) == 0)
        json_object_set_new(n, "subnet", json_string(pool_of(st, pool, sizeof(pool))));
    return n;
}

static json_t *with_services(struct store *st, json_t *n)
{
    json_object_set_new(n, "services", network_services(st, jstr(n, "name")));
    return n;
}

json_t *network_list(struct store *st)
{
    json_t *out = json_pack("[o, o]", with_services(st, builtin(st, NETWORK_BRIDGE)),
                            with_services(st, builtin(st, NETWORK_HOST)));
    json_t *nets = store_list(st, "networks", "name");
    size_t i;
    json_t *n;
    json_array_foreach(nets, i, n)
    {
        json_object_set_new(n, "driver", json_string("bridge"));
        json_array_append_new(out, with_services(st, json_incref(n)));
    }
    json_decref(nets);
    return out;
}

json_t *network_find(struct store *st, const char *ref, struct serr *err)
{
    if (ref && builtin_named(ref))
        return with_services(st, builtin(st, builtin_named(ref)));
    json_t *n = store_find(st, "networks", ref, err);
    if (n == NULL) {
        if (err && err->msg[0] == '\0')
            serr_set(err, SERR_NOT_FOUND, "network %s not found", ref ? ref : "");
        return NULL;
    }
    json_object_set_new(n, "driver", json_string("bridge"));
    return with_services(st, n);
}

/* ---- services: ports and virtual IPs ---- */

static int check_port_free(struct store *st, json_t *svc, json_t *port, struct serr *err)
{
    json_int_t published = jint(port, "published", 0);
    const char *proto = jstr(port, "protocol");
    json_t *svcs = store_list(st, "services", "name");
    size_t i, j;
    json_t *other, *p;
    int rc = 0;
    json_array_foreach(svcs, i, other)
    {
        if (rc < 0 || strcmp(service_id(other), service_id(svc)) == 0)
            continue;
        json_array_foreach(json_object_get(service_spec(other), "ports"), j, p)
        {
            if (jint(p, "published", 0) == published && strcmp(jstr(p, "protocol"), proto) == 0) {
                rc = serr_set(err, SERR_CONFLICT, "port %lld/%s is already published by service %s",
                              (long long)published, proto, service_name(other));
                break;
            }
        }
    }
    json_decref(svcs);
    return rc;
}

/* The nodes' cluster ports are the swarm's own. */
static int check_port_not_cluster(struct store *st, json_t *port, struct serr *err)
{
    json_int_t published = jint(port, "published", 0);
    json_t *nodes = store_list(st, "nodes", NULL);
    size_t i;
    json_t *n;
    int rc = 0;
    json_array_foreach(nodes, i, n)
    {
        const char *addr = jstr(n, "addr"), *colon = addr ? strrchr(addr, ':') : NULL;
        if (rc == 0 && strcmp(jstr(port, "protocol"), "tcp") == 0 && colon &&
            atoll(colon + 1) == published)
            rc = serr_set(err, SERR_CONFLICT, "port %lld/tcp is the swarm's cluster port on %s",
                          (long long)published, addr);
    }
    json_decref(nodes);
    return rc;
}

/* True when a socket of this host (the leader's namespace) listens on the
 * port: /proc/net/{tcp,tcp6} in state LISTEN, /proc/net/{udp,udp6} bound. */
static bool port_listening(json_int_t port, const char *proto)
{
    bool tcp = strcmp(proto, "tcp") == 0, found = false;
    const char *files[] = {tcp ? "/proc/net/tcp" : "/proc/net/udp",
                           tcp ? "/proc/net/tcp6" : "/proc/net/udp6"};
    for (size_t i = 0; i < 2 && !found; i++) {
        FILE *f = fopen(files[i], "r");
        char line[512], local[64];
        unsigned lport, state;
        while (f && !found && fgets(line, sizeof(line), f)) {
            if (sscanf(line, " %*[^:]: %63[0-9A-Fa-f]:%x %*s %x", local, &lport, &state) == 3 &&
                (json_int_t)lport == port && state == (tcp ? 0x0Au : 0x07u))
                found = true;
        }
        if (f)
            fclose(f);
    }
    return found;
}

/* A port the service did not publish yet must not be one a process of the
 * leader's host listens on: the mesh would take its connections away. */
static int check_port_unused(struct store *st, json_t *svc, json_t *port, struct serr *err)
{
    json_int_t published = jint(port, "published", 0);
    const char *proto = jstr(port, "protocol");
    json_t *old = store_get(st, "services", service_id(svc));
    size_t i;
    json_t *p;
    bool had = false;
    json_array_foreach(json_object_get(service_spec(old), "ports"), i, p)
    {
        if (jint(p, "published", 0) == published && strcmp(jstr(p, "protocol"), proto) == 0)
            had = true;
    }
    json_decref(old);
    if (!had && port_listening(published, proto))
        return serr_set(err, SERR_CONFLICT,
                        "port %lld/%s is in use on this manager (a process listens on it)",
                        (long long)published, proto);
    return 0;
}

/* The network's range: the pool for "bridge". */
static int network_range(struct store *st, const char *name, uint32_t *net, int *prefix,
                         struct serr *err)
{
    char pool[32];
    const char *cidr = pool_of(st, pool, sizeof(pool));
    json_t *n = NULL;
    if (strcmp(name, NETWORK_BRIDGE) != 0) {
        json_t *found = store_list_where(st, "networks", "name", name);
        n = json_incref(json_array_get(found, 0));
        json_decref(found);
        if (n == NULL)
            return serr_set(err, SERR_NOT_FOUND, "network %s not found (see `shoal network ls`)",
                            name);
        cidr = jstr(n, "subnet");
    }
    int rc = net_parse_cidr(cidr, net, prefix, err);
    json_decref(n);
    return rc;
}

/* The lowest address of the block no other service of the network has. */
/* Virtual IPs handed out lately: their services may not be committed yet
 * (creates in flight), so the next pick must not give them again. A
 * proposal is committed or failed well within VIP_HOLD_MS. */
#define VIP_HOLD_MS 10000
static struct {
    uint32_t vip;
    int64_t at;
} handed_out[256];

static bool recently_handed_out(uint32_t vip, int64_t now)
{
    for (size_t i = 0; i < sizeof(handed_out) / sizeof(handed_out[0]); i++)
        if (handed_out[i].vip == vip && now - handed_out[i].at < VIP_HOLD_MS)
            return true;
    return false;
}

static void hand_out(uint32_t vip, int64_t now)
{
    size_t oldest = 0;
    for (size_t i = 1; i < sizeof(handed_out) / sizeof(handed_out[0]); i++)
        if (handed_out[i].at < handed_out[oldest].at)
            oldest = i;
    handed_out[oldest].vip = vip;
    handed_out[oldest].at = now;
}

static int pick_vip(struct store *st, json_t *svc, const char *network, uint32_t block,
                    uint32_t *vip, struct serr *err)
{
    json_t *svcs = store_list(st, "services", NULL);
    bool used[256] = {false};
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s)
    {
        const char *net = jstr(service_spec(s), "network");
        const char *v = jstr(s, "vip");
        if (strcmp(service_id(s), service_id(svc)) == 0 || !net || strcmp(net, network) != 0 || !v)
            continue;
        uint32_t a;
        if (net_parse_ip(v, &a) && (a & 0xffffff00u) == block)
            used[a & 0xff] = true;
    }
    json_decref(svcs);
    int64_t now = mono_ms();
    for (uint32_t h = 2; h < 255; h++)
        if (!used[h] && !recently_handed_out(block + h, now)) {
            *vip = block + h;
            hand_out(*vip, now);
            return 0;
        }
    return serr_set(err, SERR_UNAVAILABLE, "network %s has no virtual IP left (254 services)",
                    network);
}

static bool vip_in_block(const char *vip, uint32_t block)
{
    uint32_t a;
    return net_parse_ip(vip, &a) && (a & 0xffffff00u) == block;
}

/* A network named in another case ("--network MyNet" for "mynet"): the
 * spec keeps the network's own name, which the mesh and the agents compare
 * exactly. */
static void network_name_canonical(struct store *st, json_t *spec)
{
    const char *network = jstr(spec, "network");
    if (network == NULL)
        return;
    const char *builtin = builtin_named(network);
    json_t *found = builtin ? NULL : store_find_name(st, "networks", network, NULL);
    const char *name = builtin ? builtin : found ? jstr(found, "name") : NULL;
    if (name && strcmp(name, network) != 0)
        json_object_set_new(spec, "network", json_string(name));
    json_decref(found);
}

/* Docker's range for published ports it chooses (-p TARGET). */
#define DYNAMIC_PORT_FIRST 30000
#define DYNAMIC_PORT_LAST 32767

static bool spec_publishes(json_t *ports, json_int_t published, const char *proto)
{
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p)
    {
        if (jint(p, "published", 0) == published && strcmp(jstr(p, "protocol"), proto) == 0)
            return true;
    }
    return false;
}

/* A port given with its target only gets the first port of the range that
 * no service publishes, no node's cluster port is, and nothing listens on. */
static int choose_published(struct store *st, json_t *svc, json_t *ports, json_t *port,
                            struct serr *err)
{
    const char *proto = jstr(port, "protocol");
    for (json_int_t n = DYNAMIC_PORT_FIRST; n <= DYNAMIC_PORT_LAST; n++) {
        if (spec_publishes(ports, n, proto))
            continue;
        json_object_set_new(port, "published", json_integer(n));
        struct serr ignored;
        if (check_port_free(st, svc, port, &ignored) == 0 &&
            check_port_not_cluster(st, port, &ignored) == 0 && !port_listening(n, proto))
            return 0;
    }
    json_object_del(port, "published");
    return serr_set(err, SERR_CONFLICT, "no free port to publish in %d-%d", DYNAMIC_PORT_FIRST,
                    DYNAMIC_PORT_LAST);
}

int service_endpoint_assign(struct store *st, json_t *svc, json_t *spec, struct serr *err)
{
    network_name_canonical(st, spec);
    const char *network = jstr(spec, "network");
    json_t *ports = json_object_get(spec, "ports");
    size_t i;
    json_t *p;
    if (network == NULL || strcmp(network, NETWORK_HOST) == 0) {
        json_object_del(svc, "vip");
        if (json_array_size(ports) > 0)
            return serr_set(err, SERR_INVALID, "a service on the host network listens on the "
                                               "nodes' ports itself: it cannot publish ports");
        return 0;
    }
    uint32_t net, vip = 0;
    int prefix;
    if (network_range(st, network, &net, &prefix, err) < 0)
        return -1;
    json_array_foreach(ports, i, p)
    {
        if (jint(p, "published", 0) == 0 && choose_published(st, svc, ports, p, err) < 0)
            return -1;
    }
    json_array_foreach(ports, i, p)
    {
        if (check_port_free(st, svc, p, err) < 0 || check_port_not_cluster(st, p, err) < 0 ||
            check_port_unused(st, svc, p, err) < 0)
            return -1;
    }
    uint32_t block = net_vip_block(net, prefix);
    if (vip_in_block(jstr(svc, "vip"), block))
        return 0;
    if (pick_vip(st, svc, network, block, &vip, err) < 0)
        return -1;
    char text[16];
    net_format_ip(vip, text);
    json_object_set_new(svc, "vip", json_string(text));
    return 0;
}

static void port_key(json_t *port, char *out, size_t len)
{
    snprintf(out, len, "%lld/%s", (long long)jint(port, "published", 0),
             jstr(port, "protocol") ? jstr(port, "protocol") : "tcp");
}

static bool spec_has_port(json_t *spec, const char *key)
{
    size_t i;
    json_t *p;
    char k[32];
    json_array_foreach(json_object_get(spec, "ports"), i, p)
    {
        port_key(p, k, sizeof(k));
        if (strcmp(k, key) == 0)
            return true;
    }
    return false;
}

void service_port_ops(json_t *group, const char *service_id, json_t *old_spec, json_t *spec)
{
    size_t i;
    json_t *p;
    char key[32];
    json_array_foreach(json_object_get(old_spec, "ports"), i, p)
    {
        port_key(p, key, sizeof(key));
        if (!spec_has_port(spec, key))
            json_array_append_new(group, op_del("ports", key));
    }
    json_array_foreach(json_object_get(spec, "ports"), i, p)
    {
        port_key(p, key, sizeof(key));
        json_array_append_new(group, op_put("ports", json_pack("{s:s, s:s}", "id", key,
                                                               "service_id", service_id)));
    }
}

/* ---- the mesh ---- */

static bool in_rotation(json_t *task)
{
    if (!task_desired_is(task, "running") || !task_state_is(task, "running") ||
        jstr(task, "addr") == NULL)
        return false;
    if (json_object_get(task_container(task), "healthcheck") == NULL)
        return true;
    return jstr_is(task, "health", "healthy");
}

static json_t *endpoints(struct store *st, json_t *svc)
{
    /* only running tasks can be in rotation: the others are not parsed */
    json_t *tasks =
        store_list_where_field(st, "tasks", "service_id", service_id(svc), "state", "running");
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        if (in_rotation(t))
            json_array_append_new(out, json_pack("{s:O, s:O}", "addr", json_object_get(t, "addr"),
                                                 "node_id", json_object_get(t, "node_id")));
    }
    json_decref(tasks);
    return out;
}

json_t *mesh_build(struct store *st)
{
    json_t *svcs = store_list(st, "services", "name"), *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s)
    {
        json_t *spec = service_spec(s);
        const char *network = jstr(spec, "network");
        if (network == NULL || strcmp(network, NETWORK_HOST) == 0 || jstr(s, "vip") == NULL)
            continue;
        json_t *ports = json_object_get(spec, "ports");
        json_array_append_new(out, json_pack("{s:O, s:s, s:O, s:o, s:o}", "name",
                                             json_object_get(s, "name"), "network", network, "vip",
                                             json_object_get(s, "vip"), "ports",
                                             ports ? json_incref(ports) : json_array(),
                                             "endpoints", endpoints(st, s)));
    }
    json_decref(svcs);
    char pool[32];
    return json_pack("{s:s, s:o, s:o}", "pool", pool_of(st, pool, sizeof(pool)), "networks",
                     ranges(st), "services", out);
}
