/* Task networking: the kernel side (see agent/net.h). Every change is a
 * short script given to `ip -batch -` or `nft -f -` on stdin, so user data
 * never meets a shell and one process makes many changes; but a task's
 * namespace and veth are made by rtnetlink (net_task.c), on the path to crun. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/net.h"
#include "agent/net_int.h"
#include "agent/runtime.h"
#include "base/log.h"
#include "base/util.h"

extern char **environ;

/* The tool's usual place first: root's PATH does not always hold sbin. */
static const char *tool_path(const char *name)
{
    static const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"};
    static __thread char path[64];
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dirs[i], name);
        if (access(path, X_OK) == 0)
            return path;
    }
    return name;
}

/* Reads the tool's stderr into buf (NUL-terminated, trailing newline cut). */
static void read_errors(int fd, char *buf, size_t buflen)
{
    size_t off = 0;
    ssize_t r;
    while (off + 1 < buflen && ((r = read(fd, buf + off, buflen - 1 - off)) > 0 ||
                                (r < 0 && errno == EINTR)))
        off += r > 0 ? (size_t)r : 0;
    buf[off] = '\0';
    while (off > 0 && buf[off - 1] == '\n')
        buf[--off] = '\0';
}

/* Runs `argv` (argv[0] a tool name) with `script` on stdin. On failure err
 * has the tool's own message. */
int run_script(char *const argv[], const char *script, struct serr *err)
{
    int in[2] = {-1, -1}, errp[2] = {-1, -1};
    int rc = -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        serr_errno(err, "pipe");
        goto out;
    }
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    posix_spawnattr_t attr;
    runtime_spawn_attr_init(&attr);
    pid_t pid;
    int sr = posix_spawn(&pid, tool_path(argv[0]), &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    close(in[0]);
    close(errp[1]);
    in[0] = errp[1] = -1;
    if (sr != 0) {
        errno = sr;
        serr_errno(err, "cannot run %s", argv[0]);
        goto out;
    }
    /* Scripts are a few KiB at most: they fit the pipe, and the tool's
     * error output is read after. */
    /* a failed write means the tool stopped reading: its exit status tells why */
    (void)write_all(in[1], script, strlen(script));
    close(in[1]);
    in[1] = -1;
    char msg[400];
    read_errors(errp[0], msg, sizeof(msg));
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        rc = 0;
    else
        serr_set(err, SERR_INTERNAL, "%s: %s", argv[0], msg[0] ? msg : "failed");
out:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int ip_batch(const char *script, bool force, struct serr *err)
{
    char *force_argv[] = {"ip", "-force", "-batch", "-", NULL};
    char *plain_argv[] = {"ip", "-batch", "-", NULL};
    return run_script(force ? force_argv : plain_argv, script, err);
}

static int nft_script(const char *script, struct serr *err)
{
    char *argv[] = {"nft", "-f", "-", NULL};
    return run_script(argv, script, err);
}

/* A growing script (agent/net_int.h): printf-style appends. */
void script_add(struct script *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    buf_append(&s->text, &s->len, &s->cap, line, (size_t)n); /* doubles: linear in the end */
    free(line);
}

/* ---- node: bridge, forwarding, NAT ---- */

static int write_sysctl(const char *path, const char *value, struct serr *err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return serr_errno(err, "open %s", path);
    ssize_t w = write(fd, value, strlen(value));
    close(fd);
    return w < 0 ? serr_errno(err, "write %s", path) : 0;
}

#define ROUTE_LOCALNET "/proc/sys/net/ipv4/conf/all/route_localnet"

/* "0" or "1" from a sysctl or a saved copy of it, or NULL. */
static const char *localnet_value(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    if (read_file(path, &text, &len, NULL) < 0)
        return NULL;
    const char *v = len > 0 && text[0] == '1' ? "1\n" : len > 0 && text[0] == '0' ? "0\n" : NULL;
    free(text);
    return v;
}

/* Turns route_localnet on, having saved the value found in `saved` the first
 * time (a value saved earlier is the host's: it is kept). */
static int localnet_on(const char *saved, struct serr *err)
{
    if (localnet_value(saved) == NULL) {
        const char *found = localnet_value(ROUTE_LOCALNET);
        if (found == NULL)
            return serr_set(err, SERR_INTERNAL, "cannot read %s", ROUTE_LOCALNET);
        if (strcmp(found, "1\n") == 0)
            return 0; /* the host's own setting: nothing to save or restore */
        if (write_file_atomic(saved, found, strlen(found), true, err) < 0)
            return -1;
    }
    return write_sysctl(ROUTE_LOCALNET, "1\n", err);
}

/* `nft list tables ip` (the names, one a line after "table ip "), or NULL. */
static char *nft_tables(void)
{
    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *argv[] = {"nft", "list", "tables", "ip", NULL};
    posix_spawnattr_t attr;
    runtime_spawn_attr_init(&attr);
    pid_t pid;
    int sr = posix_spawn(&pid, tool_path("nft"), &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    char *text = NULL;
    if (sr == 0) {
        char buf[8192];
        read_errors(out[0], buf, sizeof(buf)); /* reads it all: a few lines */
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            text = xstrdup(buf);
    }
    close(out[0]);
    return text;
}

/* Another daemon of this network namespace (daemons side by side, as the
 * tests run them) publishes ports: its table has the NET_LOCALNET_USER chain
 * (and the guard that drops 127/8 from outside); it needs route_localnet. Unknown (nft failed) counts as yes: keeping the
 * value with the guards in place is safe, taking it from under a published
 * port is not. */
static bool localnet_used_by_another(const char *own_table)
{
    char *tables = nft_tables(), *save = NULL;
    if (tables == NULL)
        return true;
    bool used = false;
    for (char *line = strtok_r(tables, "\n", &save); line && !used;
         line = strtok_r(NULL, "\n", &save)) {
        const char *name = strncmp(line, "table ip ", 9) == 0 ? line + 9 : NULL;
        if (name == NULL || strcmp(name, own_table) == 0 || !net_valid_ifname(name))
            continue;
        char *argv[] = {"nft", "list", "chain", "ip", (char *)name, NET_LOCALNET_USER, NULL};
        used = run_script(argv, "", NULL) == 0;
    }
    free(tables);
    return used;
}

int net_localnet_restore(const char *saved, const char *own_table, struct serr *err)
{
    const char *value = localnet_value(saved);
    if (value == NULL) {
        unlink(saved); /* never ours to restore, or damaged: the kernel keeps its value */
        return 0;
    }
    if (strcmp(value, "0\n") == 0 && localnet_used_by_another(own_table)) {
        /* the saved value stays: put back by a later pass or leave of ours */
        log_info("route_localnet stays 1 while another shoal daemon of this namespace publishes "
                 "ports (its table drops 127/8 arriving from outside)");
        return 0;
    }
    if (write_sysctl(ROUTE_LOCALNET, value, err) < 0)
        return -1;
    if (unlink(saved) < 0 && errno != ENOENT)
        return serr_errno(err, "remove %s", saved);
    return 0;
}

/* The bridge of the /24 at `slice`: its gateway's MAC, as text. */
static void bridge_mac(uint32_t slice, char *out)
{
    unsigned char mac[6];
    net_task_mac(slice + 1, mac);
    net_format_mac(mac, out);
}

int net_apply(const struct net_bridge *bridges, size_t n, char *const *stale, size_t nstale,
              const char *nft, bool localnet, const char *localnet_saved, const char *table,
              struct serr *err)
{
    struct script s = {0};
    script_add(&s, "\n"); /* an empty batch is fine */
    for (size_t i = 0; i < nstale; i++)
        if (if_nametoindex(stale[i]) != 0)
            script_add(&s, "link del %s\n", stale[i]);
    for (size_t i = 0; i < n; i++) {
        char gw[16], mac[18];
        net_format_ip(bridges[i].slice + 1, gw);
        bridge_mac(bridges[i].slice, mac);
        /* A MAC of its own: one taken from its ports (the lowest) changes when
         * that port goes, and the tasks' neighbour entries of the gateway
         * then lead nowhere. Set, it stays (a bridge made before keeps its
         * neighbours until it changes once). */
        if (if_nametoindex(bridges[i].name) == 0)
            script_add(&s, "link add %s address %s type bridge\n", bridges[i].name, mac);
        else if (!net_link_has_mac(bridges[i].name, mac))
            script_add(&s, "link set %s address %s\n", bridges[i].name, mac);
        /* replace: a restarted daemon converges without a gap for the running tasks */
        script_add(&s, "addr replace %s/24 dev %s\nlink set %s up\n", gw, bridges[i].name,
                   bridges[i].name);
    }
    int rc = ip_batch(s.text, false, err);
    free(s.text);
    if (rc == 0)
        rc = write_sysctl("/proc/sys/net/ipv4/ip_forward", "1\n", err);
    /* 127.0.0.1:PORT of a published port is translated to a task's address:
     * the kernel must accept a loopback source leaving by another device
     * (until masqueraded). Turned on only while ports are published, and
     * only once the table that drops 127/8 arriving from outside is in. */
    if (rc == 0)
        rc = nft_script(nft, err);
    if (rc == 0)
        rc = localnet ? localnet_on(localnet_saved, err)
                      : net_localnet_restore(localnet_saved, table, err);
    return rc < 0 ? serr_wrap(err, "network setup") : 0;
}

void net_bridges_delete(char *const *names, size_t n)
{
    struct script s = {0};
    script_add(&s, "\n");
    for (size_t i = 0; i < n; i++)
        script_add(&s, "link del %s\n", names[i]);
    struct serr err;
    if (ip_batch(s.text, true, &err) < 0)
        log_debug("network teardown: %s", err.msg);
    free(s.text);
}

int net_routes_apply(const struct net_route *routes, size_t n, struct serr *err)
{
    struct script s = {0};
    script_add(&s, "route flush proto %d\n", NET_ROUTE_PROTO);
    for (size_t i = 0; i < n; i++)
        script_add(&s, "route replace %s via %s proto %d\n", routes[i].subnet, routes[i].via,
                   NET_ROUTE_PROTO);
    int rc = ip_batch(s.text, false, err);
    free(s.text);
    return rc < 0 ? serr_wrap(err, "routes to the other nodes") : 0;
}

int net_addr_ifname(const char *ip, char *out, size_t outlen)
{
    struct in_addr want;
    struct ifaddrs *ifs;
    if (inet_pton(AF_INET, ip, &want) != 1 || getifaddrs(&ifs) < 0)
        return -1;
    int rc = -1;
    for (struct ifaddrs *i = ifs; i && rc < 0; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
            ((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr.s_addr == want.s_addr) {
            /* an address's label ("eth0:1") names its device up to the ':' */
            snprintf(out, outlen, "%.*s", (int)strcspn(i->ifa_name, ":"), i->ifa_name);
            rc = 0;
        }
    freeifaddrs(ifs);
    return rc;
}

/* The kernel sends redirects out of an interface when `all` or the
 * interface's own value is 1: both go to 0. */
int net_redirects_off(const char *local_ip, struct serr *err)
{
    char dev[IFNAMSIZ], path[80];
    if (write_sysctl("/proc/sys/net/ipv4/conf/all/send_redirects", "0\n", err) < 0)
        return serr_wrap(err, "ICMP redirects off");
    if (net_addr_ifname(local_ip, dev, sizeof(dev)) < 0)
        return 0; /* the address is not this host's (behind NAT): nothing forwards on it */
    snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/send_redirects", dev);
    if (write_sysctl(path, "0\n", err) < 0)
        return serr_wrap(err, "ICMP redirects off");
    return 0;
}

bool net_link_has_mac(const char *name, const char *mac)
{
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int rc = ioctl(fd, SIOCGIFHWADDR, &ifr);
    close(fd);
    if (rc < 0)
        return false;
    char have[18];
    net_format_mac((const unsigned char *)ifr.ifr_hwaddr.sa_data, have);
    return strcmp(have, mac) == 0;
}

bool net_link_exists(const char *name)
{
    return if_nametoindex(name) != 0;
}

int net_link_mtu(const char *name)
{
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = ioctl(fd, SIOCGIFMTU, &ifr);
    close(fd);
    return rc < 0 ? -1 : ifr.ifr_mtu;
}

void net_teardown(const char *bridge)
{
    struct serr err;
    char vx[IFNAMSIZ];
    net_vxlan_name(bridge, vx, sizeof(vx));
    struct script ip = {0};
    script_add(&ip, "route flush proto %d\nlink del %s\n", NET_ROUTE_PROTO, bridge);
    if (net_link_exists(vx)) /* its forwarding entries and neighbours go with it */
        script_add(&ip, "link del %s\n", vx);
    if (ip_batch(ip.text, true, &err) < 0)
        log_debug("network teardown: %s", err.msg);
    free(ip.text);
    char *nft = xasprintf("table ip %s\ndelete table ip %s\n", bridge, bridge);
    if (nft_script(nft, &err) < 0)
        log_debug("network teardown: %s", err.msg);
    free(nft);
}

/* ---- tasks ---- */

int net_task_create(const char *id, const char *bridge, uint32_t host, struct serr *err)
{
    net_task_delete(id); /* leftovers of a try cut short (daemon killed) */
    int mtu = net_link_mtu(bridge);
    struct serr taken;
    if (net_pool_take(id, bridge, mtu, host, &taken) == 0)
        return 0;
    net_task_delete(id); /* what a failed take left, if any */
    if (net_task_make(id, bridge, mtu, host, err) < 0) {
        net_task_delete(id);
        return serr_wrap(err, "task network");
    }
    return 0;
}

