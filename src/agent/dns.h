/* An embedded DNS server for tasks: it answers A queries for the names a
 * lookup callback claims (a service's name -> its virtual IP, `tasks.NAME` ->
 * each task's address) and forwards every other query, unchanged but for its
 * transaction id, to the host's resolvers over UDP.
 *
 * Everything runs on the caller's libuv loop, no threads; DNS wire parsing and
 * building is ldns's. IPv4 only. UDP and TCP on the same address and port: an
 * answer that does not fit the client's UDP size (512 bytes, or its EDNS size
 * up to 4096) is truncated and flagged TC, and the client asks again over TCP,
 * where the whole answer goes (length-prefixed messages, several per
 * connection, at most DNS_MAX_CONNS connections, each closed after
 * DNS_TCP_IDLE_MS without a query).
 *
 * Our answers: A records with TTL 0, in an order rotated on every answer (round
 * robin), AA set, RD echoed, RA set (we recurse by forwarding). Any other type
 * for one of our names: NOERROR with no records. Queries with more or fewer
 * than one question get FORMERR, other opcodes NOTIMP; packets ldns cannot
 * parse, and answers, are dropped.
 *
 * Forwarding (for UDP and TCP clients alike): one ephemeral UDP socket per query in flight (random source port
 * and random id), tried on each upstream in turn for DNS_UPSTREAM_TIMEOUT_MS;
 * when all fail, or none is configured, the client gets SERVFAIL. At most
 * DNS_MAX_FORWARDS queries are in flight; beyond that, SERVFAIL at once. */
#ifndef SHOAL_AGENT_DNS_H
#define SHOAL_AGENT_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/err.h"

#define DNS_UPSTREAM_TIMEOUT_MS 2000
#define DNS_MAX_FORWARDS 256
#define DNS_MAX_CONNS 64
#define DNS_TCP_IDLE_MS 10000
/* Answers waiting for a TCP client to read them, in bytes, beyond which the
 * connection is closed. */
#define DNS_TCP_MAX_QUEUED (256 * 1024)
/* The most addresses one answer may carry (the lookup's `max`): 16 bytes
 * each, they fill one TCP message (64 kB) with room for the header, the
 * question and an OPT record. */
#define DNS_MAX_ADDRS 4000

struct dns_server;

/* Fills up to `max` IPv4 addresses (host byte order) for `name` (lower case,
 * no trailing dot) asked by `client` (host order IPv4 of the asker); returns
 * how many (0 = the name is ours but has no address now: answer NOERROR with
 * no records), or -1 when the name is not ours (the query is forwarded
 * upstream). Called on the loop, synchronously, for every query of class IN;
 * `name` is valid only during the call. */
typedef int (*dns_lookup_fn)(void *ctx, uint32_t client, const char *name, uint32_t *addrs,
                             size_t max);

/* A server on `loop` with no socket yet; `lookup` and `ctx` must outlive it.
 * The upstreams are the nameservers of /etc/resolv.conf (IPv4 ones). Freed by
 * dns_server_close() only. */
struct dns_server *dns_server_new(uv_loop_t *loop, dns_lookup_fn lookup, void *ctx);

/* Serves UDP and TCP on ip:port (IPv4 text; port 0 picks a free UDP port, see
 * dns_server_port(), and TCP takes the same); may be called for several
 * addresses (one socket of each kind per address). Without TCP (its port is
 * taken) it warns and serves UDP alone.
 * Returns 0, or -1 with err set (bad address, address in use). Listening again
 * on an address and port already served is a no-op. */
int dns_server_listen(struct dns_server *s, const char *ip, int port, struct serr *err);

/* The port the server listens on at `ip` (the first socket there), or -1. */
int dns_server_port(const struct dns_server *s, const char *ip);

/* Stops serving on that address, every port (no-op when not listening there).
 * Answers still due from upstreams for clients that came that way are
 * dropped. */
void dns_server_unlisten(struct dns_server *s, const char *ip);

/* Upstream resolvers: "IP" or "IP:PORT" (IPv4, default port 53). Replaces the
 * list (the strings are copied; invalid ones are skipped with a warning).
 * Default at creation: the nameservers of /etc/resolv.conf. An upstream that
 * is one of our own listening addresses is skipped when forwarding. */
void dns_server_set_upstreams(struct dns_server *s, const char *const *addrs, size_t n);

/* How long to wait for each upstream (default DNS_UPSTREAM_TIMEOUT_MS);
 * applies to the tries started afterwards. Meant for tests. */
void dns_server_set_timeout(struct dns_server *s, uint64_t ms);

/* Closes every socket and frees the server once libuv has closed the handles
 * (safe with queries in flight: they are abandoned, unanswered). `s` must not
 * be used after this call; the loop must run for the memory to be freed. */
void dns_server_close(struct dns_server *s);

#endif
