/* Task networking on one node: a bridge (`shoal0`, address .1 of the node's
 * /24), a veth pair and a network namespace (/run/netns/shoal-<id>) per task,
 * routes to the other nodes' subnets (direct, or through a VXLAN device:
 * the cluster's overlay mode), NAT (nftables masquerade) to the outside.
 * Kernel changes go through `ip -batch -`, `bridge -batch -` and `nft -f -`
 * (posix_spawn, no shell).
 *
 * The net_* functions that change the kernel block: call them from libuv's
 * thread pool (or where blocking is acceptable: leaving the swarm). The
 * address helpers are pure. */
#ifndef SHOAL_AGENT_NET_H
#define SHOAL_AGENT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"
#include "model/cidr.h" /* addresses, for this header's callers */

#define NET_BRIDGE "shoal0"
#define NET_NETNS_DIR "/run/netns"
/* Routes to other nodes' subnets carry this protocol number, so a restarted
 * daemon can find (and flush) its own routes without touching others. */
#define NET_ROUTE_PROTO 213

/* ---- names (pure; the address arithmetic is model/cidr.h) ---- */

/* An interface name safe in ip and nft scripts: [A-Za-z0-9_-], 1..15 characters. */
bool net_valid_ifname(const char *name);
/* The veth's host end for a task: "vsh" + the id's first 11 characters. */
void net_veth_name(const char *id, char *out, size_t outlen);
/* The hardware address of `ip` (host order) on a task bridge, a task's
 * eth0 or the bridge's own (its .1): 02:54 + the address's four bytes. A
 * task given an address another had answers under the same MAC, so the
 * neighbour entries the node and the other tasks on the bridge kept for
 * that address still lead to it. */
void net_task_mac(uint32_t ip, unsigned char out[6]);
/* "xx:xx:xx:xx:xx:xx" of `mac` into out (18 bytes). */
void net_format_mac(const unsigned char mac[6], char *out);

/* ---- the nftables table (pure) ---- */

/* Connection marks of the table's rules: traffic to a published port
 * (ingress: masqueraded, crosses networks), to a host-mode port, and to a
 * virtual IP. */
#define NET_MARK_INGRESS 0x5ea1
#define NET_MARK_VIP 0x5ea2
#define NET_MARK_HOSTPORT 0x5ea3

/* The script that replaces table `ip TABLE` with the node's rules. `plan`:
 * {"self": node id, "bridges": [{name, slice}], "networks": [{name,
 * subnet}], "vip_blocks": [CIDR], "services": the mesh's services}
 * (manager/netmodel.h). Caller frees. */
char *net_rules_script(const char *table, json_t *plan);

/* ---- kernel (blocking) ---- */

struct net_route {
    char subnet[20]; /* "10.42.1.0/24" */
    char via[16];    /* the node's address */
};

/* A bridge of this node: one per network, holding the node's /24 of it. */
struct net_bridge {
    char name[16];
    uint32_t slice; /* network address of the /24 (host order); the bridge has .1 */
};

/* Makes each bridge if missing with address .1/24 of its slice, up;
 * deletes the `stale` bridges (networks gone); enables IPv4 forwarding;
 * loads `nft` (net_rules_script) in one transaction. Then, with `localnet`
 * (ports are published: 127.0.0.1:PORT is translated to tasks), turns
 * route_localnet on, first saving the value found into `localnet_saved`
 * unless that holds one already (or the value is 1 already); without it,
 * restores the saved value (net_localnet_restore). */
int net_apply(const struct net_bridge *bridges, size_t n, char *const *stale, size_t nstale,
              const char *nft, bool localnet, const char *localnet_saved, const char *table,
              struct serr *err);
/* Puts back the route_localnet value net_apply saved in `saved` and removes
 * the file; nothing when there is none. The value stays 1 while another
 * nft table than `table` (our own) has the NET_LOCALNET_USER chain: another
 * daemon of the namespace publishing ports. */
#define NET_LOCALNET_USER "publishes_ports"
int net_localnet_restore(const char *saved, const char *table, struct serr *err);
/* Deletes bridges (best effort). */
void net_bridges_delete(char *const *names, size_t n);
/* Replaces the routes this daemon made (NET_ROUTE_PROTO) with `routes`. */
int net_routes_apply(const struct net_route *routes, size_t n, struct serr *err);
/* The name of the device holding IPv4 address `ip` ("10.0.0.5") into out
 * (an address label's ":suffix" cut); -1 when none does (or `ip` is not an
 * address). */
int net_addr_ifname(const char *ip, char *out, size_t outlen);
/* Turns off ICMP redirects (send_redirects of `all` and of the interface
 * holding `local_ip`, the node's address, when one does). A node forwards a
 * published port's connection sent on to another node out of the interface
 * it came in by, and its answers the same way: with redirects on, the kernel
 * checks every such packet's source against the routes a second time
 * (__fib_validate_source) and readies a redirect to a client that never
 * needs one (an LVS-NAT director on one network turns them off alike). Left
 * off after leaving, as forwarding is left on. */
int net_redirects_off(const char *local_ip, struct serr *err);
/* True when the interface exists (one cheap syscall). */
bool net_link_exists(const char *name);
/* The interface's MTU, -1 when it does not exist. */
int net_link_mtu(const char *name);
/* Removes the bridge, the VXLAN device, our routes and our nft table (swarm
 * leave). Idempotent. */
void net_teardown(const char *bridge);

/* Network namespace shoal-<id> with eth0 = `host`/24, lo up, default route
 * via .1, the veth's other end on the bridge. Both ends get the bridge's MTU
 * (smaller than usual with the VXLAN overlay). Leftovers of an earlier try
 * are removed first. On failure nothing is left. */
int net_task_create(const char *id, const char *bridge, uint32_t host, struct serr *err);
/* Removes the namespace and the veth. Idempotent. */
void net_task_delete(const char *id);

/* Namespaces made ahead (net_task.c): at most this many, for the MTU of the
 * last task network made. */
#define NET_POOL_SIZE 2
/* The pool's names keyed by `state_dir` (daemons on one host keep apart);
 * the bindings of that key left by a daemon killed before its stop are
 * removed. Before any other net_pool_ call. */
void net_pool_start(const char *state_dir);
/* The bindings of the pool of the daemon of `state_dir` removed (the daemon
 * killed: `dev down`, a restart); a task's namespace taken from it stays. */
void net_pool_remove_leftovers(const char *state_dir);
/* Makes namespaces until the pool is full, for the bridge and MTU of the
 * last task network made (none before the first). Blocks: for the thread pool, off
 * the path of a start (after a removal). */
void net_pool_fill(void);
/* The pool's own bindings of the namespaces tasks took removed (a task's
 * binding then holds its namespace alone, and its removal's teardown is not
 * held up). Blocks (an unmount): before a task's removal, off the path of a
 * start. */
void net_pool_release_spent(void);
/* The pool emptied: every namespace made ahead unbound (the kernel's
 * teardown takes its veth); a fill in flight undoes its own. */
void net_pool_stop(void);
/* "/run/netns/shoal-<id>" into out. */
void net_netns_path(const char *id, char *out, size_t outlen);

/* ---- VXLAN overlay (agent/net_vxlan.c) ----
 * The cluster's overlay mode (`swarm init --overlay`): "direct" routes
 * other nodes' subnets via their addresses (one L2 segment); "vxlan" routes
 * them through a VXLAN device, for nodes that only reach each other by IP.
 * Everything is written, nothing learned: a fixed VNI, each node's device
 * MAC derived from its address, one forwarding entry and one neighbour per
 * peer. */

#define NET_OVERLAY_DIRECT "direct"
#define NET_OVERLAY_VXLAN "vxlan"
#define NET_VXLAN_VNI 4242
#define NET_VXLAN_PORT 4789
/* What encapsulation adds: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
#define NET_VXLAN_OVERHEAD 50

/* The VXLAN device's name for a bridge (daemons sharing a namespace have a
 * bridge each): bridge + "vx" when that fits 15 characters, else the
 * bridge's first 9 characters, 4 hex digits of a hash of its name, "vx". */
void net_vxlan_name(const char *bridge, char *out, size_t outlen);
/* The VXLAN device MAC of the node with underlay address `ip` (host order):
 * "02:53:" + the address's bytes in hex. out must hold 18 bytes. */
void net_vxlan_mac(uint32_t ip, char *out);
/* Makes (if missing) the bridge's VXLAN device: VNI NET_VXLAN_VNI, UDP port
 * NET_VXLAN_PORT, source `local_ip`, no learning, MAC from `local_ip`, MTU
 * of the interface holding `local_ip` less NET_VXLAN_OVERHEAD (`bridges`,
 * the node's bridges, get that MTU too), up. The device is named after
 * `bridge` (the daemon's). Then for each distinct `via` of `routes` (peer
 * nodes' underlay addresses) a forwarding entry and a permanent neighbour,
 * and replaces the routes this daemon made (NET_ROUTE_PROTO) with
 * `SUBNET via PEER dev VX onlink`. Idempotent. Blocks. */
int net_vxlan_apply(const char *bridge, const struct net_bridge *bridges, size_t nbridges,
                    const char *local_ip, const struct net_route *routes, size_t n,
                    struct serr *err);

#endif
