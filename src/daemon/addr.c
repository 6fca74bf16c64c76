#include "daemon/addr.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/shoal.h"

/* ---- parsing ---- */

int addr_split(const char *in, int default_port, struct addr_hostport *out, struct serr *err)
{
    if (in[0] == '[' || strchr(in, ':') != strrchr(in, ':'))
        return serr_set(err, SERR_INVALID, "invalid address '%s': IPv6 is not supported", in);
    const char *colon = strchr(in, ':');
    size_t hostlen = colon ? (size_t)(colon - in) : strlen(in);
    if (hostlen == 0 || hostlen >= sizeof(out->host) || strcspn(in, "/ \t[]") < hostlen)
        return serr_set(err, SERR_INVALID, "invalid address '%s' (want HOST[:PORT])", in);
    memcpy(out->host, in, hostlen);
    out->host[hostlen] = '\0';
    out->port = default_port;
    out->has_port = colon != NULL;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || port < 1 || port > 65535)
            return serr_set(err, SERR_INVALID, "invalid port in address '%s'", in);
        out->port = (int)port;
    }
    return 0;
}

bool addr_is_ipv4(const char *host)
{
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1;
}

bool addr_is_hostname(const char *host)
{
    size_t len = strlen(host), label = 0;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char ch = host[i];
        if (ch == '.' || ch == '\0') {
            if (label == 0 || label > 63 || host[i - 1] == '-')
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '_' || (ch == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* ---- the default route ---- */

int addr_default_route_if(const char *route_text, char *ifname, size_t len, struct serr *err)
{
    char best[16] = "", other[16] = "";
    long best_metric = -1;
    const char *line = strchr(route_text, '\n'); /* skips the header */
    while (line && *++line) {
        char name[16];
        unsigned long dest, gateway, mask;
        unsigned flags;
        long metric;
        if (sscanf(line, "%15s %lx %lx %x %*d %*d %ld %lx", name, &dest, &gateway, &flags, &metric,
                   &mask) == 6 &&
            dest == 0 && mask == 0 && (flags & 1) /* RTF_UP */) {
            if (best_metric < 0 || metric < best_metric) {
                snprintf(best, sizeof(best), "%s", name);
                other[0] = '\0';
                best_metric = metric;
            } else if (metric == best_metric && strcmp(name, best) != 0) {
                snprintf(other, sizeof(other), "%s", name);
            }
        }
        line = strchr(line, '\n');
    }
    snprintf(ifname, len, "%s", best);
    if (other[0])
        return serr_set(err, SERR_INVALID, "several default routes (through %s and %s)", best,
                        other);
    return 0;
}

/* ---- choosing ---- */

static void list_add(char *list, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void list_add(char *list, size_t len, const char *fmt, ...)
{
    size_t used = strlen(list);
    if (used > 0 && used + 2 < len) {
        memcpy(list + used, ", ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(list + used, len - used, fmt, ap);
    va_end(ap);
}

/* An IPv4 address, or the one address of the interface named `host`. */
static int local_ip(const struct addr_env *env, const char *host, const char *flag, char *ip,
                    struct serr *err)
{
    if (addr_is_ipv4(host)) {
        snprintf(ip, 16, "%s", host);
        return 0;
    }
    char found[400] = "", names[400] = "";
    size_t count = 0;
    for (size_t i = 0; i < env->nifs; i++) {
        const struct addr_iface *f = &env->ifs[i];
        if (strcmp(f->name, host) == 0) {
            list_add(found, sizeof(found), "%s", f->ip);
            snprintf(ip, 16, "%s", f->ip);
            count++;
        } else if (i == 0 || strcmp(f->name, env->ifs[i - 1].name) != 0) {
            list_add(names, sizeof(names), "%s", f->name);
        }
    }
    if (count == 1)
        return 0;
    if (count > 1)
        return serr_set(err, SERR_INVALID,
                        "%s: interface %s has several IPv4 addresses (%s): pass one of them", flag,
                        host, found);
    return serr_set(err, SERR_INVALID,
                    "%s: '%s' is neither an IPv4 address nor a network interface with one "
                    "(interfaces: %s)",
                    flag, host, names[0] ? names : "none");
}

static const char pass_advertise[] = "pass --advertise-addr (an address or an interface name)";

/* The address to advertise when none was given and the listen address is 0.0.0.0. */
static int detect_ip(const struct addr_env *env, char *ip, struct serr *err)
{
    if (env->source_ip[0]) {
        snprintf(ip, 16, "%s", env->source_ip);
        return 0;
    }
    if (env->route_err[0])
        return serr_set(err, SERR_INVALID, "could not choose an address to advertise: %s; %s",
                        env->route_err, pass_advertise);
    char list[400] = "";
    size_t count = 0;
    if (env->route_if[0]) {
        for (size_t i = 0; i < env->nifs; i++)
            if (strcmp(env->ifs[i].name, env->route_if) == 0) {
                list_add(list, sizeof(list), "%s", env->ifs[i].ip);
                snprintf(ip, 16, "%s", env->ifs[i].ip);
                count++;
            }
        if (count == 1)
            return 0;
        if (count > 1)
            return serr_set(err, SERR_INVALID,
                            "could not choose an address to advertise: interface %s (of the "
                            "default route) has several IPv4 addresses (%s); %s",
                            env->route_if, list, pass_advertise);
    }
    for (size_t i = 0; i < env->nifs; i++)
        if (env->ifs[i].candidate) {
            list_add(list, sizeof(list), "%s on %s", env->ifs[i].ip, env->ifs[i].name);
            snprintf(ip, 16, "%s", env->ifs[i].ip);
            count++;
        }
    if (count == 1)
        return 0;
    if (count == 0)
        return serr_set(err, SERR_INVALID,
                        "could not choose an address to advertise: no IPv4 address besides "
                        "loopback on this host; %s",
                        pass_advertise);
    return serr_set(err, SERR_INVALID,
                    "could not choose an address to advertise: no default route and several "
                    "addresses (%s); %s",
                    list, pass_advertise);
}

int addr_pick(const struct addr_env *env, const char *listen_spec, const char *advertise_spec,
              char *listen, size_t listen_len, char *advertise, size_t advertise_len,
              struct serr *err)
{
    bool want_listen = listen_spec && *listen_spec, want_adv = advertise_spec && *advertise_spec;
    struct addr_hostport lis = {.host = "0.0.0.0", .port = SHOAL_DEFAULT_PORT}, adv = {0};
    char lis_ip[16] = "0.0.0.0", adv_ip[16];
    if (want_listen && (addr_split(listen_spec, SHOAL_DEFAULT_PORT, &lis, err) < 0 ||
                        local_ip(env, lis.host, "--listen-addr", lis_ip, err) < 0))
        return -1;
    if (want_adv && (addr_split(advertise_spec, SHOAL_DEFAULT_PORT, &adv, err) < 0 ||
                     local_ip(env, adv.host, "--advertise-addr", adv_ip, err) < 0))
        return -1;
    if (!want_listen && want_adv && adv.has_port)
        lis.port = adv.port; /* a node is reached where it says it is */
    if (want_adv && !adv.has_port)
        adv.port = lis.port;
    if (want_adv && strcmp(adv_ip, "0.0.0.0") == 0)
        return serr_set(err, SERR_INVALID,
                        "--advertise-addr: 0.0.0.0 is not an address other nodes can reach");
    if (!want_adv) {
        adv.port = lis.port;
        if (strcmp(lis_ip, "0.0.0.0") != 0)
            snprintf(adv_ip, sizeof(adv_ip), "%s", lis_ip);
        else if (detect_ip(env, adv_ip, err) < 0)
            return -1;
    }
    snprintf(listen, listen_len, "%s:%d", lis_ip, lis.port);
    snprintf(advertise, advertise_len, "%s:%d", adv_ip, adv.port);
    return 0;
}

/* ---- the host ---- */

static bool is_candidate(const struct ifaddrs *ifa, const struct in_addr *a, const char *own_bridge)
{
    uint32_t ip = ntohl(a->s_addr);
    return (ifa->ifa_flags & IFF_UP) && !(ifa->ifa_flags & IFF_LOOPBACK) &&
           (ip >> 16) != 0xa9fe /* 169.254/16, link-local */ && (ip >> 24) != 127 &&
           !(own_bridge && strcmp(ifa->ifa_name, own_bridge) == 0) &&
           strncmp(ifa->ifa_name, "shn", 3) != 0;
}

static int load_ifaces(struct addr_env *env, const char *own_bridge, struct serr *err)
{
    struct ifaddrs *all;
    if (getifaddrs(&all) < 0)
        return serr_errno(err, "getifaddrs");
    size_t cap = 0;
    for (struct ifaddrs *ifa = all; ifa; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != AF_INET)
            continue;
        if (env->nifs == cap) {
            cap = cap ? cap * 2 : 8;
            env->ifs = xrealloc(env->ifs, cap * sizeof(*env->ifs));
        }
        struct addr_iface *f = &env->ifs[env->nifs++];
        const struct in_addr *a = &((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr;
        snprintf(f->name, sizeof(f->name), "%s", ifa->ifa_name);
        inet_ntop(AF_INET, a, f->ip, sizeof(f->ip));
        f->candidate = is_candidate(ifa, a, own_bridge);
    }
    freeifaddrs(all);
    return 0;
}

/* The source address of the route to `ip` (a UDP connect sends nothing). */
static void source_toward(const char *ip, char *out, size_t outlen)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(SHOAL_DEFAULT_PORT)};
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    out[0] = '\0';
    if (fd < 0)
        return;
    if (inet_pton(AF_INET, ip, &to.sin_addr) == 1 &&
        connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0 &&
        getsockname(fd, (struct sockaddr *)&me, &len) == 0 && me.sin_addr.s_addr != 0)
        inet_ntop(AF_INET, &me.sin_addr, out, (socklen_t)outlen);
    close(fd);
}

int addr_env_load(struct addr_env *env, const char *own_bridge, const char *toward_ip,
                  struct serr *err)
{
    memset(env, 0, sizeof(*env));
    if (load_ifaces(env, own_bridge, err) < 0)
        return -1;
    char *routes = NULL;
    struct serr route_err = {0};
    if (read_file("/proc/net/route", &routes, NULL, NULL) == 0 &&
        addr_default_route_if(routes, env->route_if, sizeof(env->route_if), &route_err) < 0)
        snprintf(env->route_err, sizeof(env->route_err), "%s", route_err.msg);
    free(routes);
    if (toward_ip)
        source_toward(toward_ip, env->source_ip, sizeof(env->source_ip));
    return 0;
}

void addr_env_free(struct addr_env *env)
{
    free(env->ifs);
    env->ifs = NULL;
    env->nifs = 0;
}
