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

void net_netns_path(const char *id, char *out, size_t outlen)
{
    snprintf(out, outlen, NET_NETNS_DIR "/shoal-%s", id);
}
