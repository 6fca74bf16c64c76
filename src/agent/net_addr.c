/* Names of task networking (agent/net.h): pure functions. The address
 * arithmetic is in model/cidr.c. */
#include <stdio.h>
#include <string.h>

#include "agent/net.h"

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

void net_task_mac(uint32_t ip, unsigned char out[6])
{
    /* 02: locally administered unicast; 54: shoal's tasks (53: its VXLAN devices) */
    const unsigned char mac[6] = {0x02, 0x54, (unsigned char)(ip >> 24), (unsigned char)(ip >> 16),
                                  (unsigned char)(ip >> 8), (unsigned char)ip};
    memcpy(out, mac, sizeof(mac));
}

void net_format_mac(const unsigned char mac[6], char *out)
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
}

void net_netns_path(const char *id, char *out, size_t outlen)
{
    snprintf(out, outlen, NET_NETNS_DIR "/shoal-%s", id);
}
