/* Address arithmetic for task networking (agent/net.h): pure functions, so
 * the leader's subnet choice and the agent's address choice are testable
 * and deterministic. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/net.h"

int net_parse_cidr(const char *text, uint32_t *network, int *prefix, struct serr *err)
{
    char ip[32];
    const char *slash = text ? strchr(text, '/') : NULL;
    if (slash == NULL || (size_t)(slash - text) >= sizeof(ip))
        return serr_set(err, SERR_INVALID, "invalid CIDR '%s' (want A.B.C.D/N)", text ? text : "");
    memcpy(ip, text, (size_t)(slash - text));
    ip[slash - text] = '\0';
    char *end;
    long bits = strtol(slash + 1, &end, 10);
    struct in_addr a;
    if (*end != '\0' || slash[1] == '\0' || bits < 0 || bits > 32 || inet_pton(AF_INET, ip, &a) != 1)
        return serr_set(err, SERR_INVALID, "invalid CIDR '%s' (want A.B.C.D/N)", text);
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    *network = ntohl(a.s_addr) & mask;
    *prefix = (int)bits;
    return 0;
}

bool net_parse_ip(const char *text, uint32_t *ip)
{
    struct in_addr a;
    if (text == NULL || inet_pton(AF_INET, text, &a) != 1)
        return false;
    *ip = ntohl(a.s_addr);
    return true;
}

void net_format_ip(uint32_t ip, char *out)
{
    snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

static bool contains(const uint32_t *set, size_t n, uint32_t v)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == v)
            return true;
    return false;
}

int net_pick_subnet(uint32_t pool, int pool_prefix, const uint32_t *taken, size_t ntaken,
                    uint32_t *subnet, struct serr *err)
{
    if (pool_prefix > 24)
        return serr_set(err, SERR_INVALID, "the address pool must be a /24 or larger");
    uint64_t count = 1ull << (24 - pool_prefix);
    for (uint64_t i = 0; i < count; i++) {
        uint32_t candidate = pool + (uint32_t)(i << 8);
        if (!contains(taken, ntaken, candidate)) {
            *subnet = candidate;
            return 0;
        }
    }
    return serr_set(err, SERR_UNAVAILABLE, "the address pool has no free /24 left");
}

int net_pick_host(uint32_t subnet, const uint32_t *used, size_t nused, uint32_t *host,
                  struct serr *err)
{
    for (uint32_t h = 2; h < 255; h++)
        if (!contains(used, nused, subnet + h)) {
            *host = subnet + h;
            return 0;
        }
    return serr_set(err, SERR_UNAVAILABLE, "no free address left in the node's subnet");
}

bool net_valid_ifname(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 15)
        return false;
    for (const char *p = name; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            *p != '_' && *p != '-')
            return false;
    return true;
}

void net_veth_name(const char *id, char *out, size_t outlen)
{
    snprintf(out, outlen, "vsh%.11s", id);
}

void net_netns_path(const char *id, char *out, size_t outlen)
{
    snprintf(out, outlen, NET_NETNS_DIR "/shoal-%s", id);
}
