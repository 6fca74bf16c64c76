/* Internals shared by the kernel side of task networking (net.c,
 * net_vxlan.c, net_rules.c): scripts for `ip -batch -`, `bridge -batch -` and `nft -f -`,
 * run without a shell. Not for use outside src/agent/net*.c. */
#ifndef SHOAL_AGENT_NET_INT_H
#define SHOAL_AGENT_NET_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* A growing script; start it zeroed, free(text) when done. */
struct script {
    char *text;
    size_t len, cap;
};

/* Appends a printf-formatted line (or part of one). Aborts on allocation failure. */
__attribute__((format(printf, 2, 3))) void script_add(struct script *s, const char *fmt, ...);
/* Runs `argv` (argv[0] a tool name, looked up in the sbin and bin
 * directories) with `script` on stdin. On failure err has the tool's own
 * message. Blocks. */
int run_script(char *const argv[], const char *script, struct serr *err);
/* `ip -batch -`, with -force (go on after a failed line) when `force`. */
int ip_batch(const char *script, bool force, struct serr *err);
/* Network namespace shoal-<id> bound in /run/netns, the veth pair (eth0 in
 * it, the other end on `bridge`, both of MTU `mtu` when > 0), lo and eth0 up,
 * eth0 = `host`/24, default route via .1: by rtnetlink, no ip (net_task.c).
 * On failure the caller removes what was made (net_task_delete). */
/* True when the link's hardware address is `mac` ("xx:xx:xx:xx:xx:xx"). */
bool net_link_has_mac(const char *name, const char *mac);
int net_task_make(const char *id, const char *bridge, int mtu, uint32_t host, struct serr *err);
/* The same, from a namespace of the pool made for `bridge` and `mtu` (the
 * veth keeps its pool name, vsh<id> becomes its alternative name): -1 when
 * none is ready (err untouched) or on failure (err set; the caller removes
 * what was made under the task's names, net_task_delete). Records `bridge`
 * and `mtu` as the ones to fill the pool for. */
int net_pool_take(const char *id, const char *bridge, int mtu, uint32_t host, struct serr *err);

#endif
