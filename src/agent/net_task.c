/* A task's network namespace made and configured without `ip` (agent/net_int.h):
 * the namespace bound at /run/netns/shoal-<id> as `ip netns add` does, the
 * veth pair (eth0 in the namespace, the other end on the bridge), then from
 * inside lo and eth0 up, eth0's address and the default route. The same
 * rtnetlink requests the two `ip -batch` runs sent, made by the daemon
 * itself: two execs of ip less on the path to crun (~1 ms each here). The
 * calling thread enters a namespace only to make it or to open an rtnetlink
 * socket in it (the socket stays bound to that namespace), and comes back.
 * Removed the same way (no exec of ip in the removal either). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/veth.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
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

/* `link add VETH mtu M type veth peer name eth0 mtu M netns NS`: NS the
 * namespace file open as ns_fd; mtu 0 leaves the default. */
static int veth_add(int fd, const char *veth, uint32_t mtu, int ns_fd, struct serr *err)
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

/* The host's side: the namespace at `path` and the veth pair, on the bridge. */
static int make_outside(const char *path, const char *veth, const char *bridge, uint32_t mtu,
                        struct serr *err)
{
    if (netns_add(path, err) < 0)
        return -1;
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0)
        return serr_errno(err, "open %s", path);
    int rc = -1, fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        serr_errno(err, "netlink socket");
    else if (veth_add(fd, veth, mtu, ns, err) == 0)
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
    if (make_outside(path, veth, bridge, mtu > 0 ? (uint32_t)mtu : 0, err) < 0)
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
