/* Addresses of the cluster port: "HOST[:PORT]" as users type them, and the
 * choice of the address a node listens on and advertises (as Docker does).
 *
 * Listen: --listen-addr (IP or interface name, optional port), else
 * 0.0.0.0 on the advertised port (or 2377).
 * Advertise: --advertise-addr (IP or interface name; no port: the listen
 * port), else the listen address when it is a specific one, else the
 * detected address: on join, this host's source address toward the
 * manager; on init, the address of the default route's interface, or the
 * only usable address when there is no default route. When that choice is
 * ambiguous the caller gets an error that lists the candidates.
 *
 * addr_split, addr_default_route_if and addr_pick are pure (unit-tested);
 * addr_env_load reads the host's interfaces and routes. */
#ifndef SHOAL_DAEMON_ADDR_H
#define SHOAL_DAEMON_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define ADDR_HOST_MAX 254 /* a DNS name's 253 characters and the NUL */

struct addr_hostport {
    char host[ADDR_HOST_MAX];
    int port; /* default_port when the text has none */
    bool has_port;
};

/* "HOST" or "HOST:PORT" -> parts. HOST is anything without ':', '/',
 * spaces or brackets (an IPv4 address, a host name, an interface name);
 * the caller decides which it may be. IPv6 is refused. */
int addr_split(const char *in, int default_port, struct addr_hostport *out, struct serr *err);
bool addr_is_ipv4(const char *host);
/* RFC 1123 syntax: dot-separated labels of letters, digits, '-' and '_'. */
bool addr_is_hostname(const char *host);

/* One IPv4 address of a network interface. `candidate`: it may be chosen
 * without being named (up, not loopback, not link-local, not one of
 * shoal's own bridges). */
struct addr_iface {
    char name[16];
    char ip[16];
    bool candidate;
};

/* What the choice of addresses needs to know about the host. */
struct addr_env {
    struct addr_iface *ifs; /* owned (addr_env_free) */
    size_t nifs;
    char route_if[16];   /* interface of the IPv4 default route, "" when none */
    char route_err[200]; /* why the default route is ambiguous, else "" */
    char source_ip[16];  /* join: this host's address toward the manager, else "" */
};

/* The interface of the default route in /proc/net/route's text: the
 * lowest metric wins; several at that metric on different interfaces is
 * an error. "" (and 0) when there is none. */
int addr_default_route_if(const char *route_text, char *ifname, size_t len, struct serr *err);

/* Chooses "IP:PORT" to listen on and to advertise from the user's specs
 * (NULL or "" when not given), per the rules at the top of this file. */
int addr_pick(const struct addr_env *env, const char *listen_spec, const char *advertise_spec,
              char *listen, size_t listen_len, char *advertise, size_t advertise_len,
              struct serr *err);

/* Fills env from the host: its interfaces (own_bridge and "shn*" are
 * shoal's and never candidates), its default route and, when toward_ip is
 * not NULL, the source address of the route to it. */
int addr_env_load(struct addr_env *env, const char *own_bridge, const char *toward_ip,
                  struct serr *err);
void addr_env_free(struct addr_env *env);

#endif
