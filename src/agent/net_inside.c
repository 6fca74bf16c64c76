/* A task's network namespace configured from inside without `ip`: lo and
 * eth0 up, eth0's address, the default route (agent/net_int.h). The same
 * rtnetlink requests `ip -n NETNS -batch -` sent, made by the daemon itself:
 * one exec of ip less on the path to crun (~1 ms here). The calling thread
 * enters the namespace only to open its rtnetlink socket and look eth0 up;
 * the socket stays bound to that namespace after the thread is back. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/net.h"
#include "agent/net_int.h"
#include "base/log.h"

/* One request: header, its fixed part, then attributes. */
struct nl_req {
    struct nlmsghdr h;
    char body[256];
};

static void nl_start(struct nl_req *r, uint16_t type, uint16_t flags, const void *fixed,
                     size_t fixed_len)
{
    memset(r, 0, sizeof(*r));
    r->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(fixed_len);
    r->h.nlmsg_type = type;
    r->h.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
    memcpy(NLMSG_DATA(&r->h), fixed, fixed_len);
}

static void nl_attr(struct nl_req *r, uint16_t type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)((char *)&r->h + NLMSG_ALIGN(r->h.nlmsg_len));
    a->rta_type = type;
    a->rta_len = (uint16_t)RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    r->h.nlmsg_len = (uint32_t)(NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len));
}

/* Sends the request and reads its acknowledgement: 0, or -1 with the
 * kernel's error in err. */
static int nl_call(int fd, struct nl_req *r, const char *what, struct serr *err)
{
    if (send(fd, &r->h, r->h.nlmsg_len, 0) < 0)
        return serr_errno(err, "netlink %s", what);
    char buf[1024];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return serr_errno(err, "netlink %s", what);
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_type != NLMSG_ERROR)
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

/* In the namespace at `path`: an rtnetlink socket bound to it and eth0's
 * index. The thread comes back to its own namespace (aborts if it cannot:
 * a pool thread left in a task's namespace would do the next work there). */
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
        if (setns(own, CLONE_NEWNET) < 0) {
            log_error("setns back to the daemon's network namespace: %s", strerror(errno));
            abort();
        }
    }
    close(target);
    close(own);
    if (rc < 0 && *nl_fd >= 0) {
        close(*nl_fd);
        *nl_fd = -1;
    }
    return rc;
}

int net_task_inside(const char *id, uint32_t host, struct serr *err)
{
    char path[128];
    net_netns_path(id, path, sizeof(path));
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
