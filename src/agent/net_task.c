/* A task's network namespace made and configured without `ip` (agent/net_int.h):
 * the namespace bound at /run/netns/shoal-<id> as `ip netns add` does, the
 * veth pair (eth0 in the namespace, the other end on the bridge), then from
 * inside lo and eth0 up, eth0's address and the default route. The same
 * rtnetlink requests the two `ip -batch` runs sent, made by the daemon
 * itself: two execs of ip less on the path to crun (~1 ms each here). The
 * calling thread enters a namespace only to make it or to open an rtnetlink
 * socket in it (the socket stays bound to that namespace), and comes back.
 * Removed the same way (no exec of ip in the removal either).
 *
 * A small pool of namespaces made ahead (NET_POOL_SIZE, filled after each
 * removal) takes the namespace's unshare, the veth's creation and lo and
 * eth0 up off the path to crun: a task takes one by binding it at its own
 * path and renaming the veth (design.md, Networks). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/veth.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/net.h"
#include "agent/net_int.h"
#include "base/log.h"
#include "base/util.h"

/* One request: header, its fixed part, then attributes. */
struct nl_req {
    struct nlmsghdr h;
    char body[256];
};

/* The requests here are fixed and small (< 200 bytes): more is a bug. */
static void *nl_room(struct nl_req *r, size_t len)
{
    if (NLMSG_ALIGN(r->h.nlmsg_len) + len > sizeof(*r))
        abort();
    return (char *)r + NLMSG_ALIGN(r->h.nlmsg_len);
}

static void nl_start(struct nl_req *r, uint16_t type, uint16_t flags, const void *fixed,
                     size_t fixed_len)
{
    memset(r, 0, sizeof(*r));
    r->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(fixed_len);
    r->h.nlmsg_type = type;
    r->h.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
    memcpy(r->body, fixed, fixed_len); /* NLMSG_DATA: right after the header */
}

static void nl_attr(struct nl_req *r, uint16_t type, const void *data, size_t len)
{
    struct rtattr *a = nl_room(r, RTA_SPACE(len));
    a->rta_type = type;
    a->rta_len = (uint16_t)RTA_LENGTH(len);
    if (len > 0)
        memcpy(RTA_DATA(a), data, len);
    r->h.nlmsg_len = (uint32_t)(NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len));
}

/* Raw bytes at the end of the request (a nested header, e.g. the veth peer's ifinfomsg). */
static void nl_put(struct nl_req *r, const void *data, size_t len)
{
    memcpy(nl_room(r, NLMSG_ALIGN(len)), data, len);
    r->h.nlmsg_len = (uint32_t)(NLMSG_ALIGN(r->h.nlmsg_len) + NLMSG_ALIGN(len));
}

/* A nested attribute: opened, attributes added, closed with its length. */
static struct rtattr *nl_nest(struct nl_req *r, uint16_t type)
{
    struct rtattr *a = nl_room(r, RTA_SPACE(0));
    nl_attr(r, type, NULL, 0);
    return a;
}

static void nl_nest_end(struct nl_req *r, struct rtattr *a)
{
    a->rta_len = (uint16_t)((char *)r + r->h.nlmsg_len - (char *)a);
}

/* Sends the request and reads its acknowledgement: 0, or -1 with the
 * kernel's error in err. */
static int nl_call(int fd, struct nl_req *r, const char *what, struct serr *err)
{
    if (send(fd, &r->h, r->h.nlmsg_len, 0) < 0)
        return serr_errno(err, "netlink %s", what);
    union { /* aligned for the header read from it */
        struct nlmsghdr h;
        char bytes[1024];
    } buf;
    ssize_t n;
    while ((n = recv(fd, buf.bytes, sizeof(buf.bytes), 0)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return serr_errno(err, "netlink %s", what);
    struct nlmsghdr *h = &buf.h;
    if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_type != NLMSG_ERROR ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
        return serr_set(err, SERR_INTERNAL, "netlink %s: unexpected answer", what);
    int code = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
    if (code != 0) {
        errno = -code;
        return serr_errno(err, "netlink %s", what);
    }
    return 0;
}

static int link_up(int fd, int index, const char *name, struct serr *err)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index,
                            .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    struct nl_req r;
    nl_start(&r, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
    char what[32];
    snprintf(what, sizeof(what), "link set %s up", name);
    return nl_call(fd, &r, what, err);
}

/* `link set eth0 address MAC` (a veth takes a new address while up). */
static int link_set_mac(int fd, int index, const unsigned char mac[6], struct serr *err)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
    struct nl_req r;
    nl_start(&r, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
    nl_attr(&r, IFLA_ADDRESS, mac, 6);
    return nl_call(fd, &r, "link set address", err);
}

static int addr_add(int fd, int index, uint32_t host, struct serr *err)
{
    struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = 24,
                            .ifa_index = (uint32_t)index};
    uint32_t be = htonl(host);
    struct nl_req r;
    nl_start(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
    nl_attr(&r, IFA_LOCAL, &be, sizeof(be));
    nl_attr(&r, IFA_ADDRESS, &be, sizeof(be));
    return nl_call(fd, &r, "addr add", err);
}

static int default_route(int fd, uint32_t gw, struct serr *err)
{
    struct rtmsg rtm = {.rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN,
                        .rtm_protocol = RTPROT_BOOT, .rtm_scope = RT_SCOPE_UNIVERSE,
                        .rtm_type = RTN_UNICAST};
    uint32_t be = htonl(gw);
    struct nl_req r;
    nl_start(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof(rtm));
    nl_attr(&r, RTA_GATEWAY, &be, sizeof(be));
    return nl_call(fd, &r, "route add default", err);
}

/* Back to the thread's own namespace `own`; aborts if it cannot: a pool
 * thread left in a task's namespace would do its next work there. */
static void setns_back(int own)
{
    if (setns(own, CLONE_NEWNET) < 0) {
        log_error("setns back to the daemon's network namespace: %s", strerror(errno));
        abort();
    }
}

/* /run/netns a shared mount point, as `ip netns add` makes it, so that a
 * namespace unbound in one mount namespace is unbound in all. */
static int netns_dir_shared(struct serr *err)
{
    if (mkdir(NET_NETNS_DIR, 0755) < 0 && errno != EEXIST)
        return serr_errno(err, "mkdir " NET_NETNS_DIR);
    if (mount("", NET_NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) == 0)
        return 0;
    if (errno != EINVAL || mount(NET_NETNS_DIR, NET_NETNS_DIR, "none", MS_BIND | MS_REC, NULL) < 0 ||
        mount("", NET_NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) < 0)
        return serr_errno(err, "mount " NET_NETNS_DIR);
    return 0;
}

/* A new network namespace bound at `path` (`ip netns add`): the thread
 * unshares one, binds it, and comes back. */
static int netns_add(const char *path, struct serr *err)
{
    if (netns_dir_shared(err) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0)
        return serr_errno(err, "create %s", path);
    close(fd);
    int rc = 0, own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (own < 0)
        rc = serr_errno(err, "open /proc/thread-self/ns/net");
    else if (unshare(CLONE_NEWNET) < 0)
        rc = serr_errno(err, "unshare a network namespace");
    else {
        if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0)
            rc = serr_errno(err, "mount %s", path);
        setns_back(own);
    }
    if (own >= 0)
        close(own);
    if (rc < 0)
        unlink(path);
    return rc;
}

/* `link add VETH mtu M type veth peer name eth0 address MAC mtu M netns
 * NS`: NS the namespace file open as ns_fd; mtu 0 leaves the default, a
 * NULL mac the kernel's random one. */
static int veth_add(int fd, const char *veth, uint32_t mtu, const unsigned char *mac, int ns_fd,
                    struct serr *err)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    uint32_t ns = (uint32_t)ns_fd;
    struct nl_req r;
    nl_start(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
    nl_attr(&r, IFLA_IFNAME, veth, strlen(veth) + 1);
    if (mtu > 0)
        nl_attr(&r, IFLA_MTU, &mtu, sizeof(mtu));
    struct rtattr *info = nl_nest(&r, IFLA_LINKINFO);
    nl_attr(&r, IFLA_INFO_KIND, "veth", 4);
    struct rtattr *data = nl_nest(&r, IFLA_INFO_DATA);
    struct rtattr *peer = nl_nest(&r, VETH_INFO_PEER);
    nl_put(&r, &ifi, sizeof(ifi));
    nl_attr(&r, IFLA_IFNAME, "eth0", 5);
    if (mac)
        nl_attr(&r, IFLA_ADDRESS, mac, 6);
    if (mtu > 0)
        nl_attr(&r, IFLA_MTU, &mtu, sizeof(mtu));
    nl_attr(&r, IFLA_NET_NS_FD, &ns, sizeof(ns));
    nl_nest_end(&r, peer);
    nl_nest_end(&r, data);
    nl_nest_end(&r, info);
    return nl_call(fd, &r, "link add veth", err);
}

/* `link set VETH master BRIDGE up`. */
static int veth_attach(int fd, const char *veth, const char *bridge, struct serr *err)
{
    uint32_t master = if_nametoindex(bridge);
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = (int)if_nametoindex(veth),
                            .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    if (master == 0 || ifi.ifi_index == 0)
        return serr_errno(err, "link set %s master %s", veth, bridge);
    struct nl_req r;
    nl_start(&r, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
    nl_attr(&r, IFLA_MASTER, &master, sizeof(master));
    return nl_call(fd, &r, "link set master up", err);
}

/* The host's side: the namespace at `path` and the veth pair (eth0 with
 * `mac`), on the bridge. */
static int make_outside(const char *path, const char *veth, const char *bridge, uint32_t mtu,
                        const unsigned char *mac, struct serr *err)
{
    if (netns_add(path, err) < 0)
        return -1;
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0)
        return serr_errno(err, "open %s", path);
    int rc = -1, fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        serr_errno(err, "netlink socket");
    else if (veth_add(fd, veth, mtu, mac, ns, err) == 0)
        rc = veth_attach(fd, veth, bridge, err);
    if (fd >= 0)
        close(fd);
    close(ns);
    return rc;
}

/* In the namespace at `path`: an rtnetlink socket bound to it and eth0's
 * index. */
static int enter_for_socket(const char *path, int *nl_fd, int *eth0, struct serr *err)
{
    int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (own < 0)
        return serr_errno(err, "open /proc/thread-self/ns/net");
    int target = open(path, O_RDONLY | O_CLOEXEC);
    if (target < 0) {
        close(own);
        return serr_errno(err, "open %s", path);
    }
    int rc = setns(target, CLONE_NEWNET);
    if (rc < 0)
        serr_errno(err, "setns %s", path);
    else {
        *nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        *eth0 = (int)if_nametoindex("eth0");
        if (*nl_fd < 0)
            rc = serr_errno(err, "netlink socket");
        else if (*eth0 == 0)
            rc = serr_errno(err, "eth0 in %s", path);
        setns_back(own);
    }
    close(target);
    close(own);
    if (rc < 0 && *nl_fd >= 0) {
        close(*nl_fd);
        *nl_fd = -1;
    }
    return rc;
}

/* The task's side, from inside: lo and eth0 up, the address, the route. */
static int make_inside(const char *path, uint32_t host, struct serr *err)
{
    int fd = -1, eth0 = 0;
    if (enter_for_socket(path, &fd, &eth0, err) < 0)
        return -1;
    int rc = link_up(fd, 1, "lo", err); /* lo is 1 in every namespace */
    if (rc == 0)
        rc = addr_add(fd, eth0, host, err);
    if (rc == 0)
        rc = link_up(fd, eth0, "eth0", err);
    if (rc == 0)
        rc = default_route(fd, (host & 0xffffff00u) + 1, err);
    close(fd);
    return rc;
}

int net_task_make(const char *id, const char *bridge, int mtu, uint32_t host, struct serr *err)
{
    char path[128], veth[IFNAMSIZ];
    net_netns_path(id, path, sizeof(path));
    net_veth_name(id, veth, sizeof(veth));
    unsigned char mac[6];
    net_task_mac(host, mac);
    if (make_outside(path, veth, bridge, mtu > 0 ? (uint32_t)mtu : 0, mac, err) < 0)
        return -1;
    return make_inside(path, host, err);
}

/* A rtnetlink socket told of every link change (RTNLGRP_LINK), or -1. */
static int link_watch_open(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1u << (RTNLGRP_LINK - 1)};
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Waits up to `ms` in all (other links' changes keep coming on a busy host)
 * for the kernel's RTM_DELLINK of link `index` on `watch`: true once it came
 * (or the link is gone), false on timeout or error. */
static bool link_gone_wait(int watch, int index, const char *name, int ms)
{
    struct pollfd p = {.fd = watch, .events = POLLIN};
    union { /* aligned for the headers read from it */
        struct nlmsghdr h;
        char bytes[8192];
    } buf;
    int64_t deadline = mono_ms() + ms, left = ms;
    while (left > 0 && poll(&p, 1, (int)left) > 0) {
        left = deadline - mono_ms();
        ssize_t n = recv(watch, buf.bytes, sizeof(buf.bytes), 0);
        if (n < 0) /* ENOBUFS: messages lost; the name says if it is still there */
            return if_nametoindex(name) == 0;
        for (struct nlmsghdr *h = &buf.h; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            struct ifinfomsg *ifi = NLMSG_DATA(h);
            if (h->nlmsg_type == RTM_DELLINK && h->nlmsg_len >= NLMSG_LENGTH(sizeof(*ifi)) &&
                ifi->ifi_index == index)
                return true;
        }
    }
    return if_nametoindex(name) == 0;
}

/* `link del VETH` (its peer goes with it). */
static void veth_del(const char *veth, int index)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct serr err;
    if (fd < 0)
        return;
    struct nl_req r;
    nl_start(&r, RTM_DELLINK, 0, &ifi, sizeof(ifi));
    if (nl_call(fd, &r, "link del", &err) < 0)
        log_warn("%s: %s", veth, err.msg);
    close(fd);
}

/* `netns del`: the binding unmounted and its file removed; the namespace
 * goes with its last user, and the kernel's teardown of it takes eth0 and
 * so the veth pair with it, batched with lo under one hold of the rtnl lock
 * (an RTM_DELLINK first held it once more, ~14 ms here, with the next
 * container's namespace waiting for it). Waits for the veth to be gone, so
 * that nothing of the task is left when the removal is done; deletes it
 * itself if the namespace was not bound (a leftover) or outlives the wait
 * (held by some other process). */
void net_task_delete(const char *id)
{
    char path[128], veth[IFNAMSIZ];
    net_netns_path(id, path, sizeof(path));
    net_veth_name(id, veth, sizeof(veth));
    int watch = if_nametoindex(veth) != 0 ? link_watch_open() : -1;
    int index = (int)if_nametoindex(veth); /* after the watch: its deletion cannot be missed */
    bool unbound = umount2(path, MNT_DETACH) == 0;
    if (unlink(path) < 0 && errno != ENOENT)
        log_warn("remove %s: %s", path, strerror(errno));
    if (index != 0 && !(unbound && watch >= 0 && link_gone_wait(watch, index, veth, 2000)))
        veth_del(veth, index);
    if (watch >= 0)
        close(watch);
}

/* ---- the pool of namespaces made ahead ----
 *
 * A ready slot is a namespace bound at /run/netns/shoal-pool-<key>-<i>
 * with lo and eth0 up in it (no address), the veth's host end on the bridge
 * and up, named vsp<6 chars of key><6 hex digits of a count> (unique: it
 * keeps that name when a task takes it), and an rtnetlink socket opened
 * inside for the address and route at take. A task's veth gets its name
 * vsh<id> as an alternative name (a rename needs the link down and costs an
 * RCU grace period, 3-4 ms here under load); the slot's own binding is
 * removed by the next fill (an unmount also waits for a grace period).
 * <key> derives from the state directory's device and inode: daemons on one
 * host have their own slots, and a daemon restarted after kill -9 (or `dev
 * down`) finds its leftovers. The lock guards the slots' states; the slow
 * work runs with the slot SLOT_BUSY, outside it. */

enum slot_state { SLOT_EMPTY, SLOT_BUSY, SLOT_READY, SLOT_SPENT /* taken, own binding left */ };

struct pool_slot {
    enum slot_state state;
    int mtu;        /* of the veth pair, 0: the default */
    int bridge;     /* the bridge's index: a bridge made again has another */
    int nl_fd;      /* rtnetlink socket bound to the namespace; -1 when not ready */
    int eth0;       /* its index in the namespace */
    char veth[IFNAMSIZ];
};

static struct {
    pthread_mutex_t lock;
    char key[9];                /* "" until net_pool_start: no pool */
    int mtu;                    /* of the last task network made; -1: none yet */
    char bridge[IFNAMSIZ];      /* its bridge */
    bool stopped;               /* net_pool_stop ran: a fill in flight undoes its slot */
    uint32_t made;              /* veths made, for their names */
    struct pool_slot slots[NET_POOL_SIZE];
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .mtu = -1};

static void pool_key(const char *state_dir, char *out, size_t outlen)
{
    struct stat st;
    uint64_t parts[2] = {0, 0};
    if (stat(state_dir, &st) == 0) {
        parts[0] = (uint64_t)st.st_dev;
        parts[1] = (uint64_t)st.st_ino;
    }
    uint32_t h = 2166136261u; /* FNV-1a over the two numbers' bytes */
    for (size_t i = 0; i < sizeof(parts); i++)
        h = (h ^ ((const uint8_t *)parts)[i]) * 16777619u;
    snprintf(out, outlen, "%08x", h);
}

static void slot_path(int i, char *out, size_t outlen)
{
    snprintf(out, outlen, NET_NETNS_DIR "/shoal-pool-%s-%d", pool.key, i);
}

/* The namespace bound at `path` unbound (its teardown takes the veth). */
static void netns_unbind(const char *path)
{
    umount2(path, MNT_DETACH);
    if (unlink(path) < 0 && errno != ENOENT)
        log_warn("remove %s: %s", path, strerror(errno));
}

/* The slot's namespace: its veth pair (the host end on `bridge`, up), and
 * from inside lo and eth0 up, the socket kept. */
static int slot_links(const char *path, const char *bridge, struct pool_slot *s,
                      struct serr *err)
{
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    int rc = ns < 0 || fd < 0 ? serr_errno(err, "netlink socket or %s", path)
                              : veth_add(fd, s->veth, s->mtu > 0 ? (uint32_t)s->mtu : 0, NULL,
                                         ns, err);
    if (rc == 0)
        rc = veth_attach(fd, s->veth, bridge, err);
    if (fd >= 0)
        close(fd);
    if (ns >= 0)
        close(ns);
    if (rc == 0)
        rc = enter_for_socket(path, &s->nl_fd, &s->eth0, err);
    if (rc == 0)
        rc = link_up(s->nl_fd, 1, "lo", err);
    if (rc == 0)
        rc = link_up(s->nl_fd, s->eth0, "eth0", err);
    return rc;
}

/* Slot i made for `bridge` and `mtu` (in s), while it is SLOT_BUSY. */
static int slot_make(int i, const char *bridge, struct pool_slot *s, struct serr *err)
{
    char path[128];
    slot_path(i, path, sizeof(path));
    netns_unbind(path); /* a leftover of a fill cut short, or a spent slot's */
    s->nl_fd = -1;
    s->bridge = (int)if_nametoindex(bridge);
    if (s->bridge == 0)
        return serr_errno(err, "bridge %s", bridge);
    if (netns_add(path, err) < 0)
        return -1;
    int rc = slot_links(path, bridge, s, err);
    if (rc < 0) {
        if (s->nl_fd >= 0)
            close(s->nl_fd);
        netns_unbind(path);
    }
    return rc;
}

/* A slot to make, marked busy: an empty or spent one, or a ready one made
 * for another bridge or MTU than the last task network's (*stale set: the
 * caller drops it first); -1 when none or there is nothing to fill for.
 * Under the lock. */
static int slot_to_fill(bool *stale)
{
    if (pool.key[0] == '\0' || pool.stopped || pool.mtu < 0)
        return -1;
    int bridge = (int)if_nametoindex(pool.bridge);
    if (bridge == 0) /* gone (the swarm left): nothing to fill for until a task network */
        return -1;
    for (int i = 0; i < NET_POOL_SIZE; i++) {
        struct pool_slot *s = &pool.slots[i];
        *stale = s->state == SLOT_READY && (s->mtu != pool.mtu || s->bridge != bridge);
        if (s->state == SLOT_EMPTY || s->state == SLOT_SPENT || *stale) {
            s->state = SLOT_BUSY;
            return i;
        }
    }
    return -1;
}

/* A slot's namespace binding removed and its socket closed (a spent slot's
 * namespace stays: the task's binding holds it). */
static void slot_drop(int i, struct pool_slot *s)
{
    char path[128];
    slot_path(i, path, sizeof(path));
    if (s->nl_fd >= 0)
        close(s->nl_fd);
    s->nl_fd = -1;
    netns_unbind(path);
}

/* The next veth name of the count that no link has (`out` IFNAMSIZ): the
 * tasks a daemon restarted with live kept theirs, and its count began at 0
 * again. Under the lock. */
static void veth_name_unused(char *out)
{
    do
        snprintf(out, IFNAMSIZ, "vsp%.6s%06x", pool.key, pool.made++ & 0xffffffu);
    while (if_nametoindex(out) != 0);
}

/* Slot i made again, for the last task network's bridge and MTU. */
static void slot_fill(int i, bool stale)
{
    pthread_mutex_lock(&pool.lock);
    struct pool_slot old = pool.slots[i], made = {.mtu = pool.mtu};
    char bridge[IFNAMSIZ];
    memcpy(bridge, pool.bridge, sizeof(bridge));
    veth_name_unused(made.veth);
    pthread_mutex_unlock(&pool.lock);
    if (stale)
        slot_drop(i, &old);
    struct serr err;
    int rc = slot_make(i, bridge, &made, &err);
    if (rc < 0)
        log_warn("network namespace made ahead: %s", err.msg);
    pthread_mutex_lock(&pool.lock);
    bool keep = rc == 0 && !pool.stopped;
    made.state = keep ? SLOT_READY : SLOT_EMPTY;
    pool.slots[i] = made;
    pthread_mutex_unlock(&pool.lock);
    if (rc == 0 && !keep)
        slot_drop(i, &made);
}

void net_pool_fill(void)
{
    for (int n = 0; n < NET_POOL_SIZE; n++) {
        bool stale = false;
        pthread_mutex_lock(&pool.lock);
        int i = slot_to_fill(&stale);
        pthread_mutex_unlock(&pool.lock);
        if (i < 0)
            return;
        slot_fill(i, stale);
    }
}

/* A ready slot for `bridge` and `mtu`, taken out (SLOT_BUSY, its fields
 * copied into `out`), or -1. Records them as the ones to fill for. */
static int slot_take(const char *bridge, int mtu, struct pool_slot *out)
{
    int taken = -1, index = (int)if_nametoindex(bridge);
    pthread_mutex_lock(&pool.lock);
    pool.mtu = mtu;
    snprintf(pool.bridge, sizeof(pool.bridge), "%s", bridge);
    for (int i = 0; i < NET_POOL_SIZE && taken < 0; i++) {
        struct pool_slot *s = &pool.slots[i];
        if (s->state == SLOT_READY && s->mtu == mtu && s->bridge == index) {
            *out = *s;
            s->state = SLOT_BUSY;
            taken = i;
        }
    }
    pthread_mutex_unlock(&pool.lock);
    return taken;
}

/* `link property add dev VETH altname NAME`. */
static int veth_altname(const char *veth, const char *name, struct serr *err)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = (int)if_nametoindex(veth)};
    if (ifi.ifi_index == 0)
        return serr_errno(err, "link %s", veth);
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return serr_errno(err, "netlink socket");
    struct nl_req r;
    nl_start(&r, RTM_NEWLINKPROP, NLM_F_CREATE | NLM_F_APPEND, &ifi, sizeof(ifi));
    struct rtattr *list = nl_nest(&r, IFLA_PROP_LIST | NLA_F_NESTED); /* checked strictly */
    nl_attr(&r, IFLA_ALT_IFNAME, name, strlen(name) + 1);
    nl_nest_end(&r, list);
    int rc = nl_call(fd, &r, "link property add altname", err);
    close(fd);
    return rc;
}

/* Slot i's namespace bound at `path` too (its own binding is left to the
 * next fill). */
static int slot_bind(int i, const char *path, struct serr *err)
{
    char own[128];
    slot_path(i, own, sizeof(own));
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0)
        return serr_errno(err, "create %s", path);
    close(fd);
    if (mount(own, path, "none", MS_BIND, NULL) < 0) {
        serr_errno(err, "mount %s on %s", own, path);
        unlink(path);
        return -1;
    }
    return 0;
}

/* Slot i (taken) made the task's: bound at its path, its veth named after
 * it, eth0's MAC from the address (net_task_mac), the address and route
 * set. On failure the caller removes what is left
 * under the task's names (net_task_delete). */
static int slot_assign(int i, struct pool_slot *s, const char *id, uint32_t host,
                       struct serr *err)
{
    char path[128], name[IFNAMSIZ];
    net_netns_path(id, path, sizeof(path));
    net_veth_name(id, name, sizeof(name));
    unsigned char mac[6];
    net_task_mac(host, mac);
    int rc = slot_bind(i, path, err);
    if (rc == 0)
        rc = veth_altname(s->veth, name, err);
    if (rc == 0)
        rc = link_set_mac(s->nl_fd, s->eth0, mac, err);
    if (rc == 0)
        rc = addr_add(s->nl_fd, s->eth0, host, err);
    if (rc == 0)
        rc = default_route(s->nl_fd, (host & 0xffffff00u) + 1, err);
    return rc;
}

int net_pool_take(const char *id, const char *bridge, int mtu, uint32_t host, struct serr *err)
{
    struct pool_slot s;
    int i = slot_take(bridge, mtu, &s);
    if (i < 0)
        return -1;
    int rc = slot_assign(i, &s, id, host, err);
    close(s.nl_fd);
    s.nl_fd = -1;
    if (rc < 0) {
        log_warn("network namespace made ahead for %s: %s", id, err->msg);
        slot_drop(i, &s); /* its namespace goes unless the task's binding was made */
    }
    pthread_mutex_lock(&pool.lock);
    bool stopped = pool.stopped; /* the stop passed this slot by: its binding is ours to drop */
    pool.slots[i].state = rc == 0 && !stopped ? SLOT_SPENT : SLOT_EMPTY;
    pool.slots[i].nl_fd = -1;
    pthread_mutex_unlock(&pool.lock);
    if (rc == 0 && stopped)
        slot_drop(i, &s);
    return rc;
}

/* Marks the spent slots busy (under the lock) into `spent`; returns how many. */
static int spent_take(int spent[NET_POOL_SIZE])
{
    int n = 0;
    pthread_mutex_lock(&pool.lock);
    for (int i = 0; i < NET_POOL_SIZE; i++)
        if (pool.slots[i].state == SLOT_SPENT) {
            pool.slots[i].state = SLOT_BUSY;
            spent[n++] = i;
        }
    pthread_mutex_unlock(&pool.lock);
    return n;
}

void net_pool_release_spent(void)
{
    int spent[NET_POOL_SIZE], n = spent_take(spent);
    for (int k = 0; k < n; k++) { /* unmounts, outside the lock: a take waits for none */
        char path[128];
        slot_path(spent[k], path, sizeof(path));
        netns_unbind(path);
    }
    pthread_mutex_lock(&pool.lock);
    for (int k = 0; k < n; k++)
        pool.slots[spent[k]].state = SLOT_EMPTY;
    pthread_mutex_unlock(&pool.lock);
}

void net_pool_remove_leftovers(const char *state_dir)
{
    char key[9], prefix[32];
    pool_key(state_dir, key, sizeof(key));
    int n = snprintf(prefix, sizeof(prefix), "shoal-pool-%s-", key);
    DIR *d = opendir(NET_NETNS_DIR);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, (size_t)n) == 0) {
            char path[300];
            snprintf(path, sizeof(path), NET_NETNS_DIR "/%s", e->d_name);
            log_info("removing %s, a network namespace made ahead before a restart", path);
            netns_unbind(path);
        }
    closedir(d);
}

void net_pool_start(const char *state_dir)
{
    net_pool_remove_leftovers(state_dir);
    pthread_mutex_lock(&pool.lock);
    pool_key(state_dir, pool.key, sizeof(pool.key));
    pool.stopped = false;
    pool.mtu = -1;
    for (int i = 0; i < NET_POOL_SIZE; i++)
        pool.slots[i] = (struct pool_slot){.state = SLOT_EMPTY, .nl_fd = -1};
    pthread_mutex_unlock(&pool.lock);
}

void net_pool_stop(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stopped = true;
    for (int i = 0; i < NET_POOL_SIZE; i++)
        if (pool.slots[i].state == SLOT_READY || pool.slots[i].state == SLOT_SPENT) {
            slot_drop(i, &pool.slots[i]);
            pool.slots[i].state = SLOT_EMPTY;
        }
    pthread_mutex_unlock(&pool.lock);
}
