/* IPv4 address arithmetic (cidr.h). */
#include "model/cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

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

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int net_pick_subnet(uint32_t pool, int pool_prefix, const uint32_t *taken, size_t ntaken,
                    uint32_t *subnet, struct serr *err)
{
    if (pool_prefix > 24)
        return serr_set(err, SERR_INVALID, "the address pool must be a /24 or larger");
    /* the candidates rise: walked beside the taken ones sorted, not a scan
     * of them per candidate (thousands of nodes) */
    uint32_t *sorted = xmalloc((ntaken + 1) * sizeof(*sorted));
    if (ntaken > 0)
        memcpy(sorted, taken, ntaken * sizeof(*sorted));
    qsort(sorted, ntaken, sizeof(*sorted), compare_u32);
    uint64_t count = 1ull << (24 - pool_prefix);
    size_t at = 0;
    bool found = false;
    for (uint64_t i = 0; i < count && !found; i++) {
        uint32_t candidate = pool + (uint32_t)(i << 8);
        while (at < ntaken && sorted[at] < candidate)
            at++;
        if (at == ntaken || sorted[at] != candidate) {
            *subnet = candidate;
            found = true;
        }
    }
    free(sorted);
    return found ? 0 : serr_set(err, SERR_UNAVAILABLE, "the address pool has no free /24 left");
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

static uint32_t prefix_mask(int prefix)
{
    return prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix);
}

bool net_ranges_overlap(uint32_t a, int aprefix, uint32_t b, int bprefix)
{
    uint32_t mask = prefix_mask(aprefix < bprefix ? aprefix : bprefix);
    return (a & mask) == (b & mask);
}

bool net_slice(uint32_t pool, uint32_t node_subnet, uint32_t net, int prefix, uint32_t *slice)
{
    if (prefix > 23 || node_subnet < pool)
        return false;
    uint64_t k = (node_subnet - pool) >> 8;
    uint64_t count = 1ull << (24 - prefix);
    if (k + 1 >= count) /* the last /24 holds the virtual IPs */
        return false;
    *slice = net + (uint32_t)(k << 8);
    return true;
}

uint32_t net_vip_block(uint32_t net, int prefix)
{
    return (net | ~prefix_mask(prefix)) & 0xffffff00u;
}
