/* The node's nftables table (agent/net.h net_rules_script): NAT to the
 * outside, the routing mesh of published ports, services' virtual IPs, and
 * the isolation of networks. Pure: JSON in, script out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/net.h"
#include "agent/net_int.h"
#include "base/json_get.h"
#include "base/util.h"

/* "{ a, b, c }" of one string field of each element (or the strings). */
static void add_set(struct script *t, json_t *items, const char *field)
{
    size_t i;
    json_t *it;
    script_add(t, "{ ");
    json_array_foreach(items, i, it)
    {
        const char *v = field ? jstr_or(it, field, "") : json_string_value(it);
        script_add(t, "%s%s", i ? ", " : "", v);
    }
    script_add(t, " }");
}

/* "{ "a", "b" }": quoted names (interfaces) of one field of each element. */
static void add_quoted_set(struct script *t, json_t *items, const char *field)
{
    size_t i;
    json_t *it;
    script_add(t, "{ ");
    json_array_foreach(items, i, it)
        script_add(t, "%s\"%s\"", i ? ", " : "", jstr_or(it, field, ""));
    script_add(t, " }");
}

/* "dnat to A" or "dnat to numgen inc mod N map { 0 : A, 1 : B }" of the
 * endpoints; `port` appended when non-zero. */
static void add_dnat(struct script *t, json_t *endpoints, json_int_t port)
{
    size_t n = json_array_size(endpoints), i;
    json_t *e;
    if (n == 1) {
        script_add(t, "dnat to %s", jstr_or(json_array_get(endpoints, 0), "addr", ""));
    } else {
        script_add(t, "dnat to numgen inc mod %zu map { ", n);
        json_array_foreach(endpoints, i, e)
            script_add(t, "%s%zu : %s", i ? ", " : "", i, jstr_or(e, "addr", ""));
        script_add(t, " }");
    }
    if (port > 0)
        script_add(t, " : %lld", (long long)port);
    script_add(t, "\n");
}

/* The endpoints a published port balances over: all of them in ingress
 * mode, this node's own in host mode (new reference). */
static json_t *port_endpoints(json_t *svc, json_t *port, const char *self)
{
    json_t *all = json_object_get(svc, "endpoints");
    if (strcmp(jstr_or(port, "mode", ""), "host") != 0)
        return json_incref(all);
    json_t *mine = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e)
    {
        if (strcmp(jstr_or(e, "node_id", ""), self) == 0)
            json_array_append(mine, e);
    }
    return mine;
}

/* Published ports: traffic to any address of this node. The port is matched
 * before the address type: a new connection to any other port (forwarded to a
 * task, or the node's own) then costs two compares, not a FIB lookup. */
static void add_port_rules(struct script *t, json_t *services, const char *self)
{
    size_t i, j;
    json_t *svc, *port;
    json_array_foreach(services, i, svc)
    {
        json_array_foreach(json_object_get(svc, "ports"), j, port)
        {
            json_t *eps = port_endpoints(svc, port, self);
            bool host = strcmp(jstr_or(port, "mode", ""), "host") == 0;
            if (json_array_size(eps) > 0) {
                script_add(t, "  %s dport %lld fib daddr type local ct mark set 0x%x ",
                           jstr_or(port, "protocol", ""), (long long)jint(port, "published", 0),
                           host ? NET_MARK_HOSTPORT : NET_MARK_INGRESS);
                add_dnat(t, eps, jint(port, "target", 0));
            }
            json_decref(eps);
        }
    }
}

static void add_vip_rules(struct script *t, json_t *services)
{
    size_t i;
    json_t *svc;
    json_array_foreach(services, i, svc)
    {
        json_t *eps = json_object_get(svc, "endpoints");
        if (json_array_size(eps) == 0 || jstr_or(svc, "vip", "")[0] == '\0')
            continue;
        script_add(t, "  ip daddr %s ct mark set 0x%x ", jstr_or(svc, "vip", ""), NET_MARK_VIP);
        add_dnat(t, eps, 0);
    }
}

static void add_nat_chains(struct script *t, json_t *plan)
{
    json_t *services = json_object_get(plan, "services");
    const char *self = jstr_or(plan, "self", "");
    script_add(t, " chain prerouting {\n  type nat hook prerouting priority dstnat; policy accept;\n");
    add_port_rules(t, services, self);
    add_vip_rules(t, services);
    script_add(t, " }\n chain output {\n  type nat hook output priority -100; policy accept;\n");
    add_port_rules(t, services, self);
    script_add(t, " }\n chain postrouting {\n  type nat hook postrouting priority srcnat; policy accept;\n");
    json_t *bridges = json_object_get(plan, "bridges");
    /* An ingress connection sent on to another node is masqueraded: the
     * answer must come back through this node, which translated it. One
     * served here comes back through here anyway (the task's gateway), and
     * keeps the client's address, unless the client is on this node itself
     * (loopback, or a task on the bridge: the answer would skip us). */
    script_add(t, "  ct mark 0x%x oifname != ", NET_MARK_INGRESS);
    add_quoted_set(t, bridges, "name");
    script_add(t, " masquerade\n  ct mark 0x%x ip saddr { 127.0.0.0/8", NET_MARK_INGRESS);
    size_t i;
    json_t *b;
    json_array_foreach(bridges, i, b) script_add(t, ", %s", jstr_or(b, "slice", ""));
    script_add(t, " } masquerade\n");
    json_array_foreach(json_object_get(plan, "bridges"), i, b)
    {
        /* a task reaching a virtual IP served on its own bridge: the answer
         * must come back through us, not straight over the bridge */
        script_add(t, "  ct mark 0x%x ip saddr %s ip daddr %s masquerade\n", NET_MARK_VIP,
                   jstr_or(b, "slice", ""), jstr_or(b, "slice", ""));
        script_add(t, "  ip saddr %s oifname != \"%s\" ip daddr != ", jstr_or(b, "slice", ""),
                   jstr_or(b, "name", ""));
        add_set(t, json_object_get(plan, "networks"), "subnet");
        script_add(t, " masquerade\n");
    }
    script_add(t, " }\n");
}

/* Virtual IPs with no endpoint and traffic between networks are refused
 * where it enters: on the sender's node, before any masquerade. */
static void add_filter_chain(struct script *t, json_t *plan)
{
    json_t *networks = json_object_get(plan, "networks");
    script_add(t, " chain isolation {\n  type filter hook forward priority filter; policy accept;\n");
    script_add(t, "  ct mark { 0x%x, 0x%x } accept\n", NET_MARK_INGRESS, NET_MARK_HOSTPORT);
    json_t *blocks = json_object_get(plan, "vip_blocks");
    if (json_array_size(blocks) > 0) {
        script_add(t, "  ct state new ip daddr ");
        add_set(t, blocks, NULL);
        script_add(t, " reject\n");
    }
    size_t i;
    json_t *n;
    if (json_array_size(networks) > 1) {
        json_array_foreach(networks, i, n)
        {
            script_add(t, "  ip saddr %s ip daddr ", jstr_or(n, "subnet", ""));
            add_set(t, networks, "subnet");
            script_add(t, " ip daddr != %s drop\n", jstr_or(n, "subnet", ""));
        }
    }
    script_add(t, " }\n");
}

/* Published ports answer on 127.0.0.1 too: that needs route_localnet
 * (net_apply), which would also let other hosts send to 127.0.0.0/8 here;
 * such packets are dropped as they come in (as kube-proxy does). */
static void add_localnet_chain(struct script *t, json_t *services)
{
    script_add(t, " chain localnet {\n  type filter hook prerouting priority raw; policy accept;\n");
    /* the address first: it fails at once for nearly every packet */
    script_add(t, "  ip daddr 127.0.0.0/8 iifname != \"lo\" drop\n }\n");
    /* an empty chain that says route_localnet is needed (net_localnet_restore:
     * another daemon of the namespace must not take it away) */
    size_t i;
    json_t *svc;
    json_array_foreach(services, i, svc)
    {
        if (json_array_size(json_object_get(svc, "ports")) > 0) {
            script_add(t, " chain " NET_LOCALNET_USER " {\n }\n");
            break;
        }
    }
}

char *net_rules_script(const char *table, json_t *plan)
{
    struct script t = {0};
    script_add(&t, "table ip %s\ndelete table ip %s\ntable ip %s {\n", table, table, table);
    add_localnet_chain(&t, json_object_get(plan, "services"));
    add_nat_chains(&t, plan);
    add_filter_chain(&t, plan);
    script_add(&t, "}\n");
    return t.text;
}
