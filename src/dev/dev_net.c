/* The dev cluster's network: a "LAN" namespace with one bridge, one namespace
 * and veth pair per node.
 *
 * The bridge lives in a namespace of its own (shoal-NAME-lan), not in this
 * machine's: where br_netfilter is loaded with bridge-nf-call-iptables=1 (other
 * software sets it), every frame a bridge of the root namespace forwards goes
 * through this machine's netfilter hooks and conntrack table, a third tracking
 * of each connection between nodes that a real LAN does not do. The sysctl is
 * per namespace (Linux 5.3 and later), so it is turned off in the LAN's alone;
 * this machine's own sysctls are left as they are. This machine reaches the
 * nodes through a veth pair (shoal-NAME here, with the subnet's last address,
 * <-> `host` on the bridge): routed, not bridged, in its namespace.
 *
 * Links are made by two `ip -batch -` processes for the whole cluster (one
 * fork+exec each instead of 3N): one in this namespace, one in the LAN's. The
 * namespace side of each node (addresses, links up) is set with plain ioctls by
 * the node's daemon process right after it enters its namespace, so it costs no
 * process at all and runs in parallel. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "dev/dev_int.h"

#define NETNS_DIR "/run/netns"
/* How long the kernel gets to remove veths with their namespaces. */
#define VETH_GONE_WAIT_MS 500

extern char **environ;

static uint32_t prefix_mask(int prefix)
{
    return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

int dev_parse_subnet(const char *text, uint32_t *net, int *prefix, struct serr *err)
{
    char ip[32];
    const char *slash = strchr(text, '/');
    size_t iplen = slash ? (size_t)(slash - text) : 0;
    char *end = NULL;
    long len = slash ? strtol(slash + 1, &end, 10) : -1;
    struct in_addr a;
    if (slash == NULL || iplen >= sizeof(ip) || end == slash + 1 || *end != '\0')
        return serr_set(err, SERR_INVALID, "invalid subnet '%s' (want IP/PREFIX)", text);
    memcpy(ip, text, iplen);
    ip[iplen] = '\0';
    if (inet_pton(AF_INET, ip, &a) != 1)
        return serr_set(err, SERR_INVALID, "invalid subnet '%s' (want an IPv4 address)", text);
    if (len < 8 || len > 24)
        return serr_set(err, SERR_INVALID, "invalid subnet '%s': prefix must be 8 to 24", text);
    *prefix = (int)len;
    *net = ntohl(a.s_addr) & prefix_mask(*prefix);
    return 0;
}

/* /proc/net/route prints addresses as the raw 32-bit value in hex. */
static uint32_t route_hex(const char *s)
{
    return ntohl((uint32_t)strtoul(s, NULL, 16));
}

int dev_check_routes(uint32_t net, int prefix, struct serr *err)
{
    FILE *f = fopen("/proc/net/route", "re");
    if (f == NULL)
        return serr_errno(err, "/proc/net/route");
    char line[512], iface[64], dst[16], gw[16], mask[16];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        unsigned flags, refcnt, use, metric;
        if (sscanf(line, "%63s %15s %15s %x %u %u %u %15s", iface, dst, gw, &flags, &refcnt,
                   &use, &metric, mask) != 8 || strcmp(iface, "Iface") == 0)
            continue;
        uint32_t rdst = route_hex(dst), rmask = route_hex(mask);
        if (rmask == 0)
            continue; /* the default route covers everything; it is no clash */
        uint32_t common = rmask & prefix_mask(prefix);
        if ((rdst & common) != (net & common)) 
            continue;
        struct in_addr a = {.s_addr = htonl(rdst)};
        char text[16];
        inet_ntop(AF_INET, &a, text, sizeof(text));
        rc = serr_set(err, SERR_CONFLICT,
                      "subnet overlaps the route to %s/%d on %s: pick another with --subnet",
                      text, 32 - __builtin_ctz(rmask), iface);
    }
    fclose(f);
    return rc;
}

/* iproute2's own place first: root's PATH does not always hold sbin, and a
 * PATH search tries every directory before it. */
static const char *ip_path(void)
{
    static const char *const known[] = {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (access(known[i], X_OK) == 0)
            return known[i];
    return "ip";
}

/* Runs `ip [-n NETNS] [-force] -batch -` with `script` on its stdin. */
static int ip_batch_in(const char *netns, const char *script, bool force, struct serr *err)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return serr_errno(err, "pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[0], 0);
    char *argv[8];
    int argc = 0;
    argv[argc++] = "ip";
    if (netns != NULL) {
        argv[argc++] = "-n";
        argv[argc++] = (char *)netns;
    }
    if (force)
        argv[argc++] = "-force";
    argv[argc++] = "-batch";
    argv[argc++] = "-";
    argv[argc] = NULL;
    pid_t pid;
    int rc = posix_spawnp(&pid, ip_path(), &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[0]);
    if (rc != 0) {
        close(pipefd[1]);
        errno = rc;
        return serr_errno(err, "cannot run ip (iproute2)");
    }
    /* a failed write means ip stopped reading: its exit status tells why */
    (void)write_all(pipefd[1], script, strlen(script));
    close(pipefd[1]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return serr_set(err, SERR_INTERNAL, "ip -batch failed (see the message above)");
    return 0;
}

static int ip_batch(const char *script, bool force, struct serr *err)
{
    return ip_batch_in(NULL, script, force, err);
}

/* Appends to a growing script. */
static void script_add(char **script, size_t *len, const char *fmt, const char *a,
                       const char *b)
{
    char *line = xasprintf(fmt, a, b);
    size_t add = strlen(line);
    *script = xrealloc(*script, *len + add + 1);
    memcpy(*script + *len, line, add + 1);
    *len += add;
    free(line);
}

void dev_bridge_addr(const struct dev_cluster *c, char *out, size_t outlen)
{
    uint32_t last = c->net | (c->prefix >= 32 ? 0 : (0xffffffffu >> c->prefix));
    struct in_addr a = {.s_addr = htonl(last - 1)};
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, text, sizeof(text));
    snprintf(out, outlen, "%s/%d", text, c->prefix);
}

void dev_lan_netns(const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "shoal-%s-lan", name);
}

void dev_bridge_name(const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "shoal-%s", name);
}

void dev_node_netns(const char *name, int i, char *out, size_t outlen)
{
    snprintf(out, outlen, "shoal-%s-%d", name, i);
}

/* This namespace's side: the namespaces, this machine's veth end with its
 * address, and every veth pair made straight between the LAN and a node. */
static char *host_side_script(const struct dev_cluster *c)
{
    char *script = xstrdup("");
    size_t len = 0;
    script_add(&script, &len, "netns add %s\n", c->lan, NULL);
    script_add(&script, &len, "link add %s type veth peer name host netns %s\n", c->bridge,
               c->lan);
    /* No IPv6 link-local address on this side. The veth takes the subnet's
     * last address so that this machine reaches the nodes (a browser on the
     * managers' dashboards); `up` refused subnets that overlap a route. */
    script_add(&script, &len, "link set %s addrgenmode none up\n", c->bridge, NULL);
    char host_addr[40];
    dev_bridge_addr(c, host_addr, sizeof(host_addr));
    script_add(&script, &len, "addr add %s dev %s\n", host_addr, c->bridge);
    for (int i = 0; i < c->n; i++) {
        const struct dev_node *node = &c->nodes[i];
        script_add(&script, &len, "netns add %s\n", node->netns, NULL);
        script_add(&script, &len, "link add %s netns %s type veth", node->veth, c->lan);
        script_add(&script, &len, " peer name eth0 netns %s\n", node->netns, NULL);
    }
    return script;
}

/* The LAN's side: the bridge and its ports. */
static char *lan_side_script(const struct dev_cluster *c)
{
    char *script = xstrdup("");
    size_t len = 0;
    script_add(&script, &len, "link add %s type bridge\n", c->bridge, NULL);
    script_add(&script, &len, "link set %s addrgenmode none up\n", c->bridge, NULL);
    script_add(&script, &len, "link set host addrgenmode none master %s up\n", c->bridge, NULL);
    for (int i = 0; i < c->n; i++)
        script_add(&script, &len, "link set %s addrgenmode none master %s up\n",
                   c->nodes[i].veth, c->bridge);
    return script;
}

/* Writes "0" to /proc/sys/net/bridge/bridge-nf-call-KIND if it exists (it
 * does only while br_netfilter is loaded). */
static int bridge_nf_off(const char *kind, struct serr *err)
{
    char *path = xasprintf("/proc/sys/net/bridge/bridge-nf-call-%s", kind);
    int rc = 0;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write_all(fd, "0\n", 2) < 0)
            rc = serr_errno(err, "%s", path);
        close(fd);
    } else if (errno != ENOENT) {
        rc = serr_errno(err, "%s", path);
    }
    free(path);
    return rc;
}

/* The LAN's bridge forwards frames without calling netfilter, whatever this
 * machine's own namespace does: sysctls are set from inside the namespace. */
static int lan_netfilter_off(const char *lan, struct serr *err)
{
    int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0)
        return serr_errno(err, "/proc/self/ns/net");
    int rc = dev_netns_enter(lan, err);
    if (rc == 0) {
        static const char *const kinds[] = {"iptables", "ip6tables", "arptables"};
        for (size_t i = 0; rc == 0 && i < sizeof(kinds) / sizeof(kinds[0]); i++)
            rc = bridge_nf_off(kinds[i], err);
        if (setns(home, CLONE_NEWNET) < 0 && rc == 0)
            rc = serr_errno(err, "back to this machine's network namespace");
    }
    close(home);
    return rc;
}

int dev_net_create(const struct dev_cluster *c, struct serr *err)
{
    char *host_side = host_side_script(c), *lan_side = lan_side_script(c);
    int rc = ip_batch(host_side, false, err);
    if (rc == 0)
        rc = lan_netfilter_off(c->lan, err);
    if (rc == 0)
        rc = ip_batch_in(c->lan, lan_side, false, err);
    free(lan_side);
    free(host_side);
    return rc < 0 ? serr_wrap(err, "creating the network of dev cluster '%s'", c->name) : 0;
}

static int set_flag_up(int fd, const char *ifname, struct serr *err)
{
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return serr_errno(err, "%s: get flags", ifname);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        return serr_errno(err, "%s: set up", ifname);
    return 0;
}

static int set_inet(int fd, const char *ifname, unsigned long request, uint32_t value,
                    struct serr *err)
{
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(value)};
    memcpy(&ifr.ifr_addr, &sin, sizeof(sin));
    if (ioctl(fd, request, &ifr) < 0)
        return serr_errno(err, "%s: set address", ifname);
    return 0;
}

int dev_net_configure_inside(const char *addr, int prefix, struct serr *err)
{
    struct in_addr a;
    if (inet_pton(AF_INET, addr, &a) != 1)
        return serr_set(err, SERR_INVALID, "bad address %s", addr);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return serr_errno(err, "socket");
    uint32_t ip = ntohl(a.s_addr), mask = prefix_mask(prefix);
    /* The netmask after the address: the kernel first gives a classful mask. */
    int rc = set_flag_up(fd, "lo", err);
    if (rc == 0)
        rc = set_inet(fd, "eth0", SIOCSIFADDR, ip, err);
    if (rc == 0)
        rc = set_inet(fd, "eth0", SIOCSIFNETMASK, mask, err);
    if (rc == 0)
        rc = set_inet(fd, "eth0", SIOCSIFBRDADDR, ip | ~mask, err);
    if (rc == 0)
        rc = set_flag_up(fd, "eth0", err);
    close(fd);
    return rc;
}

/* "shoal-NAME-12" -> 12 when the name has this cluster's prefix, else 0. */
static int netns_index(const char *entry, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (strncmp(entry, prefix, plen) != 0)
        return 0;
    return dev_node_index(entry + plen);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Indices of the entries of `dir` named PREFIX<i>. */
static int list_indices(const char *dir, const char *prefix, int **out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int i = netns_index(e->d_name, prefix);
        if (i <= 0)
            continue;
        *out = xrealloc(*out, (size_t)(count + 1) * sizeof(int));
        (*out)[count++] = i;
    }
    closedir(d);
    if (count > 0)
        qsort(*out, (size_t)count, sizeof(int), cmp_int);
    return count;
}

int dev_net_list(const char *name, int **out)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "shoal-%s-", name);
    return list_indices(NETNS_DIR, prefix, out);
}

static bool link_here(const char *ifname, const char *sub)
{
    char *path = xasprintf("/sys/class/net/%s%s", ifname, sub);
    bool here = access(path, F_OK) == 0;
    free(path);
    return here;
}

/* Appends "link del" for every link of the cluster still in this namespace:
 * this machine's veth end (it goes with the LAN's namespace) and, from a
 * cluster made before the LAN had its namespace, the nodes' veth ends. */
static size_t script_del_links(const char *name, char **script, size_t *len)
{
    char prefix[32], bridge[32];
    int *idx;
    snprintf(prefix, sizeof(prefix), "sh-%s-", name);
    int count = list_indices("/sys/class/net", prefix, &idx);
    for (int k = 0; k < count; k++) {
        char veth[32];
        snprintf(veth, sizeof(veth), "%s%d", prefix, idx[k]);
        script_add(script, len, "link del %s\n", veth, NULL);
    }
    free(idx);
    dev_bridge_name(name, bridge, sizeof(bridge));
    if (link_here(bridge, "")) {
        script_add(script, len, "link del %s\n", bridge, NULL);
        count++;
    }
    return (size_t)count;
}

/* Deleting a namespace takes its veth pairs with it, all in one batch of the
 * kernel's asynchronous clean-up; deleting them one by one would cost a
 * grace period (~20 ms) each. So: the nodes' namespaces and the LAN's (with
 * the bridge), then a wait for this side's veth ends to go, and only what
 * stays (a namespace someone still holds open) is deleted by name. A bridge
 * in this namespace (a cluster made before the LAN had its own) goes at once. */
int dev_net_destroy(const char *name, struct serr *err)
{
    char *script = xstrdup(""), bridge[32], lan[32];
    size_t len = 0;
    int *idx;
    int count = dev_net_list(name, &idx);
    for (int k = 0; k < count; k++) {
        char netns[40];
        dev_node_netns(name, idx[k], netns, sizeof(netns));
        script_add(&script, &len, "netns del %s\n", netns, NULL);
    }
    free(idx);
    dev_lan_netns(name, lan, sizeof(lan));
    if (dev_netns_inode(lan) != 0)
        script_add(&script, &len, "netns del %s\n", lan, NULL);
    dev_bridge_name(name, bridge, sizeof(bridge));
    if (link_here(bridge, "/bridge"))
        script_add(&script, &len, "link del %s\n", bridge, NULL);
    int rc = len > 0 ? ip_batch(script, true, err) : 0;
    int64_t deadline = mono_ms() + VETH_GONE_WAIT_MS;
    for (;;) {
        len = 0;
        script[0] = '\0';
        if (rc < 0 || script_del_links(name, &script, &len) == 0)
            break;
        if (mono_ms() > deadline) {
            rc = ip_batch(script, true, err);
            break;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 2 * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(script);
    return rc;
}

ino_t dev_netns_inode(const char *netns)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), NETNS_DIR "/%s", netns);
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

int dev_netns_enter(const char *netns, struct serr *err)
{
    char path[64];
    snprintf(path, sizeof(path), NETNS_DIR "/%s", netns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return serr_errno(err, "namespace %s", netns);
    int rc = setns(fd, CLONE_NEWNET);
    close(fd);
    return rc < 0 ? serr_errno(err, "entering namespace %s", netns) : 0;
}
