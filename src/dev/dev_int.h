/* `shoal dev`: internals shared by the dev cluster's files.
 *
 * A dev cluster NAME on this machine is, for node i in 1..N:
 *   network namespace  shoal-NAME-i   (/run/netns/shoal-NAME-i)
 *   veth pair          sh-NAME-i (on bridge shoal-NAME, in namespace shoal-NAME-lan)
 *                      <-> eth0 in the node's namespace
 *   address            subnet base + i, on eth0
 *   directory          DIR/NAME/node-i/{state,run,daemon.log}
 *   daemon             `shoal daemon` in the namespace, hostname node-i (own UTS namespace;
 *                      own mount namespace too when volumes are given: dev_volume.c)
 * and, once per cluster, the "LAN": namespace shoal-NAME-lan holding bridge shoal-NAME, with
 * a veth pair shoal-NAME (this machine's end, with the subnet's last address) <-> host on
 * the bridge, so that this machine reaches the nodes without bridging anything itself
 * (dev_net.c says why). DIR/NAME/cluster.json records it. Every name derives from (DIR, NAME, i),
 * so `dev down` can clean up after a partial `up` without the state file. */
#ifndef SHOAL_DEV_DEV_INT_H
#define SHOAL_DEV_DEV_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "base/err.h"

#define DEV_DEFAULT_NAME "dev"
#define DEV_DEFAULT_DIR "/var/lib/shoal-dev"
#define DEV_DEFAULT_SUBNET "10.213.0.0/24"
#define DEV_MAX_NODES 250
/* Interface names are at most 15 characters: "sh-NAME-250" must fit. */
#define DEV_MAX_NAME 8
#define DEV_CLUSTER_PORT 2377

struct dev_node {
    int index;          /* 1-based */
    char name[16];      /* "node-3" (also its hostname) */
    char netns[32];     /* "shoal-dev-3" */
    char veth[16];      /* host end of the veth pair: "sh-dev-3" */
    char addr[16];      /* "10.213.0.3" */
    char role[16];      /* "manager", "worker", or "" while not joined */
    char *dir;          /* DIR/NAME/node-3 */
    char *state_dir;    /* .../state */
    char *run_dir;      /* .../run */
    char *socket;       /* .../run/shoal.sock */
    char *log;          /* .../daemon.log */
    pid_t pid;          /* the daemon, 0 when not started */
};

/* -v HOST_DIR:DIR: HOST_DIR bound at DIR in every node's mount namespace. */
struct dev_volume {
    char *host;
    char *dir;
    char *made; /* the topmost directory `up` made for DIR, NULL when DIR existed */
};

struct dev_cluster {
    char name[DEV_MAX_NAME + 1];
    char bridge[16];    /* "shoal-NAME": the bridge (in lan) and this machine's veth end */
    char lan[32];       /* "shoal-NAME-lan": the namespace of the bridge */
    char subnet[32];    /* "10.213.0.0/24" as given (normalized) */
    uint32_t net;       /* subnet base, host order */
    int prefix;         /* subnet prefix length */
    char *dir;          /* DIR/NAME */
    int managers;
    int n;
    struct dev_node *nodes; /* n of them */
    struct dev_volume *volumes; /* nvolumes of them (-v), owned */
    int nvolumes;
};

/* The port managers of a dev cluster serve their dashboard on. */
#define DEV_DASHBOARD_PORT 8080
/* "A.B.C.D/P": the bridge's address (the subnet's last host address). */
void dev_bridge_addr(const struct dev_cluster *c, char *out, size_t outlen);

/* ---- dev_state.c: the cluster's description and its state file ---- */

/* Checks NAME (1..8 of [a-z0-9]) and fills every derived name for n nodes. */
int dev_cluster_init(struct dev_cluster *c, const char *dir, const char *name, int n,
                     int managers, const char *subnet, struct serr *err);
void dev_cluster_free(struct dev_cluster *c);
char *dev_cluster_file(const struct dev_cluster *c); /* DIR/NAME/cluster.json; caller frees */
int dev_cluster_save(const struct dev_cluster *c, struct serr *err);
/* Reads DIR/NAME/cluster.json; SERR_NOT_FOUND when there is none. */
int dev_cluster_load(struct dev_cluster *c, const char *dir, const char *name,
                     struct serr *err);
/* Checks NAME alone (for commands that do not build a cluster). */
int dev_check_name(const char *name, struct serr *err);
/* "node-3", "3" -> 3; 0 when it is neither. */
int dev_node_index(const char *text);

/* ---- dev_net.c: namespaces, links, addresses ---- */

/* "10.213.0.0/24" -> base (host order, host bits cleared) and prefix (8..24). */
int dev_parse_subnet(const char *text, uint32_t *net, int *prefix, struct serr *err);
/* Fails when a route of this machine's main table overlaps the subnet. */
int dev_check_routes(uint32_t net, int prefix, struct serr *err);
/* The LAN's namespace and bridge, the nodes' namespaces and veth pairs: two `ip -batch`. */
int dev_net_create(const struct dev_cluster *c, struct serr *err);
/* Inside a node's namespace (after setns): lo and eth0 up, eth0's address. */
int dev_net_configure_inside(const char *addr, int prefix, struct serr *err);
/* "shoal-NAME-lan": the namespace of cluster NAME's bridge. */
void dev_lan_netns(const char *name, char *out, size_t outlen);
/* "shoal-NAME": cluster NAME's bridge (in the LAN) and this machine's veth end. */
void dev_bridge_name(const char *name, char *out, size_t outlen);
/* "shoal-NAME-i": the network namespace of cluster NAME's node i. */
void dev_node_netns(const char *name, int i, char *out, size_t outlen);
/* Deletes the namespaces shoal-NAME-* that exist and the bridge; missing is fine. */
int dev_net_destroy(const char *name, struct serr *err);
/* Indices i of the namespaces shoal-NAME-i that exist now, ascending; returns
 * the count (caller frees *out). */
int dev_net_list(const char *name, int **out);
/* The inode of /run/netns/NS (0 when missing): identifies the namespace. */
ino_t dev_netns_inode(const char *netns);
/* Enters the namespace (setns). */
int dev_netns_enter(const char *netns, struct serr *err);

/* ---- dev_node.c: daemons and the swarm ---- */

/* Forks every daemon into its namespace; fills pids. */
int dev_start_daemons(struct dev_cluster *c, struct serr *err);
/* Waits until every daemon answers GET /v1/info, or one dies, or timeout. */
int dev_wait_daemons(struct dev_cluster *c, int64_t timeout_ms, struct serr *err);
/* Init on node 1 (with `swarm init --overlay OVERLAY` unless NULL), then
 * joins in parallel. Returns 0, 1 when this daemon has no join API yet
 * (404), -1 on error. */
int dev_form_swarm(struct dev_cluster *c, const char *overlay, struct serr *err);
/* Waits until every manager's state lists all nodes as ready, so that any
 * manager answers `node ls` in full when `up` returns. */
int dev_wait_converged(const struct dev_cluster *c, int64_t timeout_ms, struct serr *err);
/* True when pid exists and is not a zombie. */
bool dev_pid_running(pid_t pid);
/* True when pid is a live (not zombie) process in the node's namespace. */
bool dev_daemon_alive(const struct dev_node *node);

/* ---- dev_volume.c: -v HOST_DIR:DIR ---- */

/* Checks one -v value against c (its dir set) and appends it; nothing is made. */
int dev_volume_add(struct dev_cluster *c, const char *spec, struct serr *err);
void dev_volumes_free(struct dev_cluster *c);
/* Makes every HOST_DIR and DIR that is missing (before the daemons start). */
int dev_volumes_prepare(struct dev_cluster *c, struct serr *err);
/* Removes the empty directories `up` made for each DIR (after the daemons). */
void dev_volumes_remove_made(const struct dev_cluster *c);
/* Reads the "volumes" array of cluster.json into c. */
void dev_volumes_load(struct dev_cluster *c, json_t *volumes);
json_t *dev_volumes_json(const struct dev_cluster *c);
/* In a daemon's child: its own mount namespace with every volume bound;
 * nothing when there is no volume. */
int dev_volumes_mount_inside(const struct dev_cluster *c, struct serr *err);

/* ---- dev_down.c ---- */

/* Removes everything of cluster NAME under DIR; fine when nothing exists. */
int dev_down(const char *dir, const char *name, struct serr *err);

#endif
