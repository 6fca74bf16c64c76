/* The VXLAN overlay (see agent/net.h), flannel-style: one device per
 * bridge, every entry written from the node list, nothing learned, no
 * multicast. A peer node P (underlay address) is reached as
 *   route    SUBNET via P dev VX onlink   (the next hop is P itself)
 *   neigh    P lladdr MAC(P) dev VX       (no ARP across the overlay)
 *   fdb      MAC(P) dst P dev VX          (where to send MAC(P)'s frames)
 * and P's own device has MAC(P), derived from P's address, so no node has
 * to be told another's MAC. */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/net.h"
#include "agent/net_int.h"

/* ---- names (pure) ---- */

void net_vxlan_name(const char *bridge, char *out, size_t outlen)
{
    if (strlen(bridge) + 2 < IFNAMSIZ) {
        snprintf(out, outlen, "%svx", bridge);
        return;
    }
    /* FNV-1a folded to 16 bits: long bridge names sharing a prefix still
     * get a device each */
    uint32_t h = 2166136261u;
    for (const char *p = bridge; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(out, outlen, "%.9s%04xvx", bridge, (unsigned)((h >> 16) ^ (h & 0xffffu)));
}

void net_vxlan_mac(uint32_t ip, char *out)
{
    /* 02: locally administered unicast; 53: an arbitrary byte, shoal's */
    snprintf(out, 18, "02:53:%02x:%02x:%02x:%02x", (unsigned)(ip >> 24), (unsigned)(ip >> 16) & 0xff,
             (unsigned)(ip >> 8) & 0xff, (unsigned)ip & 0xff);
}

/* ---- kernel (blocking) ---- */

static bool via_seen(const struct net_route *routes, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(routes[j].via, routes[i].via) == 0)
            return true;
    return false;
}

int net_vxlan_apply(const char *bridge, const struct net_bridge *bridges, size_t nbridges,
                    const char *local_ip, const struct net_route *routes, size_t n,
                    struct serr *err)
{
    char vx[IFNAMSIZ], mac[18];
    net_vxlan_name(bridge, vx, sizeof(vx));
    struct in_addr local;
    if (inet_pton(AF_INET, local_ip, &local) != 1) {
        serr_set(err, SERR_INVALID, "this node's address '%s' is not IPv4", local_ip);
        return serr_wrap(err, "vxlan overlay %s", vx);
    }
    char uplink[IFNAMSIZ];
    int mtu = net_addr_ifname(local_ip, uplink, sizeof(uplink)) == 0 ? net_link_mtu(uplink) : -1;
    if (mtu < 0) {
        serr_set(err, SERR_UNAVAILABLE,
                 "no interface has this node's address %s (the tunnels' source)", local_ip);
        return serr_wrap(err, "vxlan overlay %s", vx);
    }
    mtu -= NET_VXLAN_OVERHEAD;
    net_vxlan_mac(ntohl(local.s_addr), mac);

    struct script ip = {0}, fdb = {0};
    bool exists = net_link_exists(vx);
    if (exists && !net_link_has_mac(vx, mac)) {
        /* made for another address (the node's changed): made again */
        script_add(&ip, "link del %s\n", vx);
        exists = false;
    }
    if (!exists) /* no IPv6 link-local: its multicast would only be dropped (no flooding) */
        script_add(&ip,
                   "link add %s type vxlan id %d dstport %d local %s nolearning\n"
                   "link set %s addrgenmode none\n",
                   vx, NET_VXLAN_VNI, NET_VXLAN_PORT, local_ip, vx);
    /* tasks' packets must fit once wrapped: the bridge (and so the tasks'
     * veths, net_task_create) take the device's MTU */
    script_add(&ip, "link set %s address %s mtu %d up\n", vx, mac, mtu);
    for (size_t i = 0; i < nbridges; i++)
        script_add(&ip, "link set %s mtu %d\n", bridges[i].name, mtu);
    /* departed peers' neighbours and routes go; the others are written again */
    script_add(&ip, "neigh flush dev %s nud permanent\nroute flush proto %d\n", vx,
               NET_ROUTE_PROTO);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct in_addr peer;
        if (inet_pton(AF_INET, routes[i].via, &peer) != 1) {
            rc = serr_set(err, SERR_INVALID, "peer address '%s' is not IPv4", routes[i].via);
            break;
        }
        if (!via_seen(routes, i)) {
            char pmac[18];
            net_vxlan_mac(ntohl(peer.s_addr), pmac);
            script_add(&ip, "neigh replace %s lladdr %s dev %s nud permanent\n", routes[i].via,
                       pmac, vx);
            /* A departed peer's entry stays until the device goes: removing
             * it needs a listing (bulk flush of VXLAN entries is Linux 6.7+),
             * and it is inert, no neighbour or route leads to its MAC. */
            script_add(&fdb, "fdb replace %s dev %s dst %s self permanent\n", pmac, vx,
                       routes[i].via);
        }
        script_add(&ip, "route replace %s via %s dev %s onlink proto %d\n", routes[i].subnet,
                   routes[i].via, vx, NET_ROUTE_PROTO);
    }
    if (rc == 0)
        rc = ip_batch(ip.text, false, err);
    if (rc == 0 && fdb.text) {
        char *argv[] = {"bridge", "-batch", "-", NULL};
        rc = run_script(argv, fdb.text, err);
    }
    free(ip.text);
    free(fdb.text);
    return rc < 0 ? serr_wrap(err, "vxlan overlay %s", vx) : 0;
}
