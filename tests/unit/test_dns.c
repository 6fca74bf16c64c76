/* The embedded DNS server (agent/dns.h) on real UDP sockets on 127.0.0.1, on
 * a loop in this thread; ldns builds the client's queries and parses the
 * answers. Each test ends by closing the server and checking that the loop
 * closes (no handle left). */
#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/dns.h"
#include "base/util.h"
#include "unit.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

struct names {
    int calls;
    char last_name[256];
    uint32_t last_client;
};

/* web -> one VIP, tasks.web -> three tasks, empty -> ours without address,
 * many -> 100 addresses; the rest is not ours. */
static int lookup(void *ctx, uint32_t client, const char *name, uint32_t *addrs, size_t max)
{
    struct names *t = ctx;
    t->calls++;
    snprintf(t->last_name, sizeof(t->last_name), "%s", name);
    t->last_client = client;
    if (strcmp(name, "web") == 0) {
        addrs[0] = IP(10, 0, 1, 2);
        return 1;
    }
    if (strcmp(name, "tasks.web") == 0) {
        for (uint32_t i = 0; i < 3 && i < max; i++)
            addrs[i] = IP(10, 42, 0, 2 + i);
        return 3;
    }
    if (strcmp(name, "empty") == 0)
        return 0;
    if (strncmp(name, "huge", 4) == 0) { /* more than an answer may carry */
        for (uint32_t i = 0; i < max; i++)
            addrs[i] = IP(10, 43, 0, 0) + i;
        return DNS_MAX_ADDRS + 100;
    }
    if (strcmp(name, "many") == 0) {
        for (uint32_t i = 0; i < 100 && i < max; i++)
            addrs[i] = IP(10, 42, 1, 1 + i);
        return 100;
    }
    return -1;
}

/* The "upstream" server of the forwarding tests knows only ext.example. */
static int upstream_lookup(void *ctx, uint32_t client, const char *name, uint32_t *addrs,
                           size_t max)
{
    if (strcmp(name, "ext.example") != 0)
        return -1;
    addrs[0] = IP(1, 2, 3, 4);
    return 1;
}

/* ---- client side ---- */

static int udp_socket(const char *ip, int port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    return fd;
}

static int socket_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    return ntohs(a.sin_port);
}

static void send_raw(int fd, const char *ip, int port, const void *data, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    CHECK(sendto(fd, data, len, 0, (struct sockaddr *)&a, sizeof(a)) == (ssize_t)len);
}

static uint8_t *query_wire(const char *name, ldns_rr_type type, uint16_t id, bool edns, size_t *len)
{
    ldns_rdf *dname = ldns_dname_new_frm_str(name);
    CHECK(dname != NULL);
    ldns_pkt *q = ldns_pkt_query_new(dname, type, LDNS_RR_CLASS_IN, LDNS_RD);
    CHECK(q != NULL);
    ldns_pkt_set_id(q, id);
    if (edns)
        ldns_pkt_set_edns_udp_size(q, 4096);
    uint8_t *wire = NULL;
    CHECK(ldns_pkt2wire(&wire, q, len) == LDNS_STATUS_OK);
    ldns_pkt_free(q);
    return wire;
}

static void send_query(int fd, const char *ip, int port, const char *name, ldns_rr_type type,
                       uint16_t id, bool edns)
{
    size_t len;
    uint8_t *wire = query_wire(name, type, id, edns, &len);
    send_raw(fd, ip, port, wire, len);
    free(wire);
}

/* Runs the loop until a datagram arrives on fd or timeout_ms passes; the
 * parsed answer (caller frees) or NULL. *rawlen gets its size. */
static ldns_pkt *wait_answer(uv_loop_t *loop, int fd, int timeout_ms, size_t *rawlen)
{
    static uint8_t buf[65536];
    int64_t end = mono_ms() + timeout_ms;
    while (mono_ms() < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0) {
            ldns_pkt *p = NULL;
            CHECK(ldns_wire2pkt(&p, buf, (size_t)n) == LDNS_STATUS_OK);
            if (rawlen)
                *rawlen = (size_t)n;
            return p;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, 5);
    }
    return NULL;
}

static ldns_pkt *ask(uv_loop_t *loop, int fd, int port, const char *name, ldns_rr_type type,
                     uint16_t id)
{
    send_query(fd, "127.0.0.1", port, name, type, id, false);
    ldns_pkt *p = wait_answer(loop, fd, 3000, NULL);
    CHECK(p != NULL);
    CHECK(ldns_pkt_id(p) == id);
    CHECK(ldns_pkt_qr(p));
    return p;
}

/* The i-th answer record's address (host order); checks it is an A record. */
static uint32_t answer_addr(const ldns_pkt *p, size_t i)
{
    ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(p), i);
    CHECK(rr != NULL);
    CHECK(ldns_rr_get_type(rr) == LDNS_RR_TYPE_A);
    ldns_rdf *rd = ldns_rr_rdf(rr, 0);
    CHECK(ldns_rdf_size(rd) == 4);
    uint32_t be;
    memcpy(&be, ldns_rdf_data(rd), 4);
    return ntohl(be);
}

static void finish(uv_loop_t *loop, struct dns_server *s)
{
    dns_server_close(s);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(loop) == 0);
}

static struct dns_server *serve(uv_loop_t *loop, struct names *t, int *port)
{
    CHECK(uv_loop_init(loop) == 0);
    struct dns_server *s = dns_server_new(loop, lookup, t);
    struct serr err;
    CHECK(dns_server_listen(s, "127.0.0.1", 0, &err) == 0);
    *port = dns_server_port(s, "127.0.0.1");
    CHECK(*port > 0);
    dns_server_set_upstreams(s, NULL, 0);
    return s;
}

/* Makes a socket that never answers the server's only upstream; its fd. */
static int dead_upstream(struct dns_server *s)
{
    int dead = udp_socket("127.0.0.1", 0);
    char deadaddr[32];
    snprintf(deadaddr, sizeof(deadaddr), "127.0.0.1:%d", socket_port(dead));
    const char *ups[] = {deadaddr};
    dns_server_set_upstreams(s, ups, 1);
    return dead;
}

/* ---- tests ---- */

TEST(dns_answers_our_names)
{
    uv_loop_t loop;
    struct names t = {0};
    int port;
    struct dns_server *s = serve(&loop, &t, &port);
    int fd = udp_socket("127.0.0.1", 0);

    ldns_pkt *p = ask(&loop, fd, port, "web", LDNS_RR_TYPE_A, 0x1111);
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR);
    CHECK(ldns_pkt_aa(p) && ldns_pkt_rd(p) && ldns_pkt_ra(p) && !ldns_pkt_tc(p));
    CHECK(ldns_pkt_qdcount(p) == 1 && ldns_pkt_ancount(p) == 1);
    CHECK(answer_addr(p, 0) == IP(10, 0, 1, 2));
    CHECK(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p), 0)) == 0);
    CHECK_STR(t.last_name, "web");
    CHECK(t.last_client == IP(127, 0, 0, 1));
    ldns_pkt_free(p);

    /* Case and the trailing dot do not matter; the answer keeps the asker's case. */
    p = ask(&loop, fd, port, "WeB.", LDNS_RR_TYPE_A, 0x2222);
    CHECK(ldns_pkt_ancount(p) == 1 && answer_addr(p, 0) == IP(10, 0, 1, 2));
    CHECK_STR(t.last_name, "web");
    char *owner = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(p), 0)));
    CHECK_STR(owner, "WeB.");
    free(owner);
    ldns_pkt_free(p);

    /* AAAA (any type but A) for a name of ours: NOERROR, nothing. */
    p = ask(&loop, fd, port, "web", LDNS_RR_TYPE_AAAA, 0x3333);
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR && ldns_pkt_aa(p));
    CHECK(ldns_pkt_ancount(p) == 0);
    ldns_pkt_free(p);
    p = ask(&loop, fd, port, "tasks.web", LDNS_RR_TYPE_MX, 0x3334);
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR && ldns_pkt_ancount(p) == 0);
    ldns_pkt_free(p);

    /* Ours without an address now. */
    p = ask(&loop, fd, port, "empty", LDNS_RR_TYPE_A, 0x4444);
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR && ldns_pkt_aa(p));
    CHECK(ldns_pkt_ancount(p) == 0);
    ldns_pkt_free(p);

    /* Not ours, no upstream: SERVFAIL at once. */
    int64_t t0 = mono_ms();
    p = ask(&loop, fd, port, "example.org", LDNS_RR_TYPE_A, 0x5555);
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_SERVFAIL && !ldns_pkt_aa(p));
    CHECK(mono_ms() - t0 < 1000);
    ldns_pkt_free(p);

    close(fd);
    finish(&loop, s);
}

TEST(dns_rotates_addresses)
{
    uv_loop_t loop;
    struct names t = {0};
    int port;
    struct dns_server *s = serve(&loop, &t, &port);
    int fd = udp_socket("127.0.0.1", 0);

    uint32_t first[3];
    for (int round = 0; round < 3; round++) {
        ldns_pkt *p = ask(&loop, fd, port, "tasks.web", LDNS_RR_TYPE_A, (uint16_t)(100 + round));
        CHECK(ldns_pkt_ancount(p) == 3);
        /* All three, each once, in the order rotated by one per answer. */
        uint32_t seen = 0;
        for (size_t i = 0; i < 3; i++) {
            uint32_t a = answer_addr(p, i);
            CHECK(a >= IP(10, 42, 0, 2) && a <= IP(10, 42, 0, 4));
            seen |= 1u << (a - IP(10, 42, 0, 2));
            if (i > 0)
                CHECK(a == IP(10, 42, 0, 2) + (answer_addr(p, i - 1) - IP(10, 42, 0, 2) + 1) % 3);
        }
        CHECK(seen == 7);
        first[round] = answer_addr(p, 0);
        ldns_pkt_free(p);
    }
    CHECK(first[0] != first[1] && first[1] != first[2] && first[0] != first[2]);

    close(fd);
    finish(&loop, s);
}

TEST(dns_truncates_without_edns)
{
    uv_loop_t loop;
    struct names t = {0};
    int port;
    struct dns_server *s = serve(&loop, &t, &port);
    int fd = udp_socket("127.0.0.1", 0);

    send_query(fd, "127.0.0.1", port, "many", LDNS_RR_TYPE_A, 7, false);
    size_t len = 0;
    ldns_pkt *p = wait_answer(&loop, fd, 3000, &len);
    CHECK(p != NULL);
    CHECK(len <= 512);
    CHECK(ldns_pkt_tc(p));
    CHECK(ldns_pkt_ancount(p) > 20 && ldns_pkt_ancount(p) < 100);
    ldns_pkt_free(p);

    /* With EDNS all 100 fit, and the answer carries an OPT record. */
    send_query(fd, "127.0.0.1", port, "many", LDNS_RR_TYPE_A, 8, true);
    p = wait_answer(&loop, fd, 3000, &len);
    CHECK(p != NULL);
    CHECK(len > 512);
    CHECK(!ldns_pkt_tc(p));
    CHECK(ldns_pkt_ancount(p) == 100);
    CHECK(ldns_pkt_edns(p) && ldns_pkt_edns_udp_size(p) >= 512);
    ldns_pkt_free(p);

    close(fd);
    finish(&loop, s);
}

TEST(dns_forwards_upstream)
{
    uv_loop_t loop;
    struct names t = {0};
    int port;
    struct dns_server *s = serve(&loop, &t, &port);
    struct serr err;
    struct dns_server *up = dns_server_new(&loop, upstream_lookup, NULL);
    dns_server_set_upstreams(up, NULL, 0);
    CHECK(dns_server_listen(up, "127.0.0.1", 0, &err) == 0);
    char upaddr[32];
    snprintf(upaddr, sizeof(upaddr), "127.0.0.1:%d", dns_server_port(up, "127.0.0.1"));
    const char *ups[] = {upaddr};
    dns_server_set_upstreams(s, ups, 1);
    int fd = udp_socket("127.0.0.1", 0);

    ldns_pkt *p = ask(&loop, fd, port, "ext.example", LDNS_RR_TYPE_A, 0xbeef);
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR);
    CHECK(ldns_pkt_ancount(p) == 1 && answer_addr(p, 0) == IP(1, 2, 3, 4));
    CHECK_STR(t.last_name, "ext.example"); /* asked us first */
    ldns_pkt_free(p);

    /* The upstream's own answer is relayed as it is: here its SERVFAIL. */
    p = ask(&loop, fd, port, "nowhere.example", LDNS_RR_TYPE_A, 0xcafe);
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_SERVFAIL);
    ldns_pkt_free(p);

    /* Our names are still ours. */
    p = ask(&loop, fd, port, "web", LDNS_RR_TYPE_A, 1);
    CHECK(ldns_pkt_ancount(p) == 1 && answer_addr(p, 0) == IP(10, 0, 1, 2));
    ldns_pkt_free(p);

    /* A first upstream that never answers: the second one answers after the timeout. */
    int dead = udp_socket("127.0.0.1", 0);
    char deadaddr[32];
    snprintf(deadaddr, sizeof(deadaddr), "127.0.0.1:%d", socket_port(dead));
    const char *ups2[] = {"not-an-address", deadaddr, upaddr};
    dns_server_set_upstreams(s, ups2, 3);
    dns_server_set_timeout(s, 200);
    int64_t t0 = mono_ms();
    p = ask(&loop, fd, port, "ext.example", LDNS_RR_TYPE_A, 0x7777);
    CHECK(mono_ms() - t0 >= 190);
    CHECK(ldns_pkt_ancount(p) == 1 && answer_addr(p, 0) == IP(1, 2, 3, 4));
    ldns_pkt_free(p);

    /* Answers from another address, or with another id, are ignored; the
     * upstream's real answer is relayed with the client's id. */
    dns_server_set_upstreams(s, (const char *[]){deadaddr}, 1);
    dns_server_set_timeout(s, 2000);
    uint8_t fwd[512];
    while (recv(dead, fwd, sizeof(fwd), 0) > 0) {
        /* the query of the try above */
    }
    send_query(fd, "127.0.0.1", port, "ext.example", LDNS_RR_TYPE_A, 0x0101, false);
    ssize_t n = -1;
    struct sockaddr_in from;
    socklen_t fromlen = sizeof(from);
    for (int i = 0; i < 1000 && n <= 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        n = recvfrom(dead, fwd, sizeof(fwd), 0, (struct sockaddr *)&from, &fromlen);
        if (n <= 0)
            usleep(1000);
    }
    CHECK(n >= 12);
    ldns_pkt *fq = NULL;
    CHECK(ldns_wire2pkt(&fq, fwd, (size_t)n) == LDNS_STATUS_OK);
    uint16_t fwd_id = ldns_pkt_id(fq);
    ldns_pkt_set_qr(fq, true);
    ldns_pkt_set_rcode(fq, LDNS_RCODE_REFUSED);
    uint8_t *wire;
    size_t wlen;
    CHECK(ldns_pkt2wire(&wire, fq, &wlen) == LDNS_STATUS_OK);
    int other = udp_socket("127.0.0.1", 0);
    char fip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from.sin_addr, fip, sizeof(fip));
    send_raw(other, fip, ntohs(from.sin_port), wire, wlen); /* wrong source */
    free(wire);
    ldns_pkt_set_id(fq, (uint16_t)(fwd_id + 1));
    CHECK(ldns_pkt2wire(&wire, fq, &wlen) == LDNS_STATUS_OK);
    send_raw(dead, fip, ntohs(from.sin_port), wire, wlen); /* wrong id */
    free(wire);
    CHECK(wait_answer(&loop, fd, 100, NULL) == NULL);
    ldns_pkt_set_id(fq, fwd_id);
    ldns_pkt_set_rcode(fq, LDNS_RCODE_NXDOMAIN);
    CHECK(ldns_pkt2wire(&wire, fq, &wlen) == LDNS_STATUS_OK);
    ldns_pkt_free(fq);
    send_raw(dead, fip, ntohs(from.sin_port), wire, wlen);
    free(wire);
    p = wait_answer(&loop, fd, 2000, NULL);
    CHECK(p != NULL && ldns_pkt_id(p) == 0x0101);
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NXDOMAIN);
    ldns_pkt_free(p);
    close(other);
    close(dead);

    close(fd);
    dns_server_close(up);
    finish(&loop, s);
}

TEST(dns_upstream_timeout_servfail)
{
    uv_loop_t loop;
    struct names t = {0};
    int port;
    struct dns_server *s = serve(&loop, &t, &port);
    int dead = dead_upstream(s);
    int fd = udp_socket("127.0.0.1", 0);

    /* The default timeout, as shipped. */
    int64_t t0 = mono_ms();
    ldns_pkt *p = ask(&loop, fd, port, "example.org", LDNS_RR_TYPE_A, 0x4242);
    int64_t took = mono_ms() - t0;
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_SERVFAIL);
    CHECK(took >= DNS_UPSTREAM_TIMEOUT_MS - 10 && took < DNS_UPSTREAM_TIMEOUT_MS + 900);
    CHECK(ldns_pkt_qdcount(p) == 1);
    ldns_pkt_free(p);

    /* Two dead upstreams: each gets its timeout. */
    char deadaddr[32];
    snprintf(deadaddr, sizeof(deadaddr), "127.0.0.1:%d", socket_port(dead));
    const char *ups2[] = {deadaddr, deadaddr};
    dns_server_set_upstreams(s, ups2, 2);
    dns_server_set_timeout(s, 150);
    t0 = mono_ms();
    p = ask(&loop, fd, port, "example.org", LDNS_RR_TYPE_A, 0x4343);
    took = mono_ms() - t0;
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_SERVFAIL);
    CHECK(took >= 290 && took < 1500);
    ldns_pkt_free(p);

    /* Our own address as upstream would loop: skipped, SERVFAIL at once. */
    char self[32];
    snprintf(self, sizeof(self), "127.0.0.1:%d", port);
    const char *ups3[] = {self};
    dns_server_set_upstreams(s, ups3, 1);
    dns_server_set_timeout(s, 1500);
    t0 = mono_ms();
    p = ask(&loop, fd, port, "example.org", LDNS_RR_TYPE_A, 0x4444);
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_SERVFAIL);
    CHECK(mono_ms() - t0 < 1000);
    ldns_pkt_free(p);

    close(dead);
    close(fd);
    finish(&loop, s);
}

TEST(dns_survives_garbage)
{
    uv_loop_t loop;
    struct names t = {0};
    int port;
    struct dns_server *s = serve(&loop, &t, &port);
    int fd = udp_socket("127.0.0.1", 0);
    size_t n = 0;

    /* Too short, random, an answer: dropped. */
    send_raw(fd, "127.0.0.1", port, "\x01\x02\x03", 3);
    uint8_t junk[300];
    srand(42);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)rand();
    junk[2] &= 0x7f; /* claims to be a query */
    send_raw(fd, "127.0.0.1", port, junk, sizeof(junk));
    uint8_t *q = query_wire("web", LDNS_RR_TYPE_A, 9, false, &n);
    q[2] |= 0x80; /* QR: an answer */
    send_raw(fd, "127.0.0.1", port, q, n);
    free(q);
    /* Header promises a question that is not there. */
    q = query_wire("web", LDNS_RR_TYPE_A, 10, false, &n);
    send_raw(fd, "127.0.0.1", port, q, 14);
    free(q);
    CHECK(wait_answer(&loop, fd, 200, NULL) == NULL);

    /* Two questions: FORMERR. */
    ldns_pkt *two = ldns_pkt_query_new(ldns_dname_new_frm_str("web"), LDNS_RR_TYPE_A,
                                       LDNS_RR_CLASS_IN, LDNS_RD);
    ldns_rr *q2 = NULL;
    CHECK(ldns_rr_new_question_frm_str(&q2, "tasks.web. IN A", NULL, NULL) == LDNS_STATUS_OK);
    ldns_pkt_push_rr(two, LDNS_SECTION_QUESTION, q2);
    ldns_pkt_set_id(two, 0x2020);
    uint8_t *wire;
    CHECK(ldns_pkt2wire(&wire, two, &n) == LDNS_STATUS_OK);
    ldns_pkt_free(two);
    send_raw(fd, "127.0.0.1", port, wire, n);
    free(wire);
    ldns_pkt *p = wait_answer(&loop, fd, 2000, NULL);
    CHECK(p != NULL && ldns_pkt_id(p) == 0x2020);
    CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_FORMERR);
    ldns_pkt_free(p);

    /* Another opcode: NOTIMP. */
    q = query_wire("web", LDNS_RR_TYPE_A, 11, false, &n);
    LDNS_OPCODE_SET(q, LDNS_PACKET_STATUS);
    send_raw(fd, "127.0.0.1", port, q, n);
    free(q);
    p = wait_answer(&loop, fd, 2000, NULL);
    CHECK(p != NULL && ldns_pkt_get_rcode(p) == LDNS_RCODE_NOTIMPL);
    ldns_pkt_free(p);

    /* Random bit flips of valid queries: whatever comes back parses. */
    uint8_t *base = query_wire("tasks.web", LDNS_RR_TYPE_A, 12, true, &n);
    uint8_t buf[512];
    for (int i = 0; i < 3000; i++) {
        memcpy(buf, base, n);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++)
            buf[rand() % n] ^= (uint8_t)(1u << (rand() % 8));
        size_t len = (size_t)(rand() % 8 == 0 ? rand() % (int)n : (int)n);
        send_raw(fd, "127.0.0.1", port, buf, len);
        if (i % 50 == 0) {
            uv_run(&loop, UV_RUN_NOWAIT);
            uint8_t ans[65536];
            while (recv(fd, ans, sizeof(ans), 0) > 0) {
            }
        }
    }
    free(base);
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    uint8_t drain[65536];
    while (recv(fd, drain, sizeof(drain), 0) > 0) {
    }

    /* Still serving. */
    p = ask(&loop, fd, port, "web", LDNS_RR_TYPE_A, 0x3030);
    CHECK(ldns_pkt_ancount(p) == 1 && answer_addr(p, 0) == IP(10, 0, 1, 2));
    ldns_pkt_free(p);

    close(fd);
    finish(&loop, s);
}

TEST(dns_close_with_forward_in_flight)
{
    uv_loop_t loop;
    struct names t = {0};
    int port;
    struct dns_server *s = serve(&loop, &t, &port);
    int dead = dead_upstream(s);
    int fd = udp_socket("127.0.0.1", 0);

    for (int i = 0; i < 3; i++)
        send_query(fd, "127.0.0.1", port, "example.org", LDNS_RR_TYPE_A, (uint16_t)(i + 1), false);
    /* Wait until the three reached the upstream. */
    int got = 0;
    for (int i = 0; i < 1000 && got < 3; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        uint8_t buf[512];
        if (recv(dead, buf, sizeof(buf), 0) > 0)
            got++;
        else
            usleep(1000);
    }
    CHECK(got == 3);
    /* Unlisten with forwards in flight, then close: no answer, no leak, no handle left. */
    dns_server_unlisten(s, "127.0.0.1");
    CHECK(dns_server_port(s, "127.0.0.1") == -1);
    close(dead);
    close(fd);
    finish(&loop, s);
}

TEST(dns_listen_unlisten)
{
    uv_loop_t loop;
    struct names t = {0};
    int port;
    struct dns_server *s = serve(&loop, &t, &port);
    struct serr err;

    /* In use, or not an address: an error that says so. */
    int busy = udp_socket("127.0.0.1", 0);
    CHECK(dns_server_listen(s, "127.0.0.1", socket_port(busy), &err) == -1);
    CHECK(strstr(err.msg, "in use") != NULL);
    CHECK(dns_server_listen(s, "nonsense", 53, &err) == -1);
    CHECK(dns_server_listen(s, "127.0.0.1", 70000, &err) == -1);
    close(busy);
    /* Again on the same address and port: no-op. */
    CHECK(dns_server_listen(s, "127.0.0.1", port, &err) == 0);

    /* A second address (all of 127/8 is local). */
    CHECK(dns_server_listen(s, "127.0.0.2", 0, &err) == 0);
    int port2 = dns_server_port(s, "127.0.0.2");
    CHECK(port2 > 0);
    int fd = udp_socket("127.0.0.1", 0);
    send_query(fd, "127.0.0.2", port2, "web", LDNS_RR_TYPE_A, 5, false);
    ldns_pkt *p = wait_answer(&loop, fd, 2000, NULL);
    CHECK(p != NULL && ldns_pkt_ancount(p) == 1);
    ldns_pkt_free(p);

    dns_server_unlisten(s, "127.0.0.2");
    dns_server_unlisten(s, "127.0.0.3"); /* not there: nothing happens */
    CHECK(dns_server_port(s, "127.0.0.2") == -1);
    send_query(fd, "127.0.0.2", port2, "web", LDNS_RR_TYPE_A, 6, false);
    CHECK(wait_answer(&loop, fd, 200, NULL) == NULL);
    p = ask(&loop, fd, port, "web", LDNS_RR_TYPE_A, 7);
    CHECK(ldns_pkt_ancount(p) == 1);
    ldns_pkt_free(p);

    close(fd);
    finish(&loop, s);
}

/* ---- TCP ---- */

struct tcp_client {
    int fd;
    size_t len;
    uint8_t buf[2 + 65535 + 4096];
};

static void tcp_connect(struct tcp_client *c, uv_loop_t *loop, int port)
{
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(c->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int rc = connect(c->fd, (struct sockaddr *)&a, sizeof(a));
    CHECK(rc == 0 || errno == EINPROGRESS);
    /* the loop accepts it */
    for (int i = 0; i < 20; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

static void tcp_write_all(struct tcp_client *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        CHECK(n > 0 || errno == EAGAIN);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
}

/* The query framed for TCP (caller frees); *len gets its size with the prefix. */
static uint8_t *tcp_query(const char *name, uint16_t id, size_t *len)
{
    size_t qlen;
    uint8_t *wire = query_wire(name, LDNS_RR_TYPE_A, id, false, &qlen);
    uint8_t *framed = xmalloc(qlen + 2);
    framed[0] = (uint8_t)(qlen >> 8);
    framed[1] = (uint8_t)qlen;
    memcpy(framed + 2, wire, qlen);
    free(wire);
    *len = qlen + 2;
    return framed;
}

static void tcp_ask(struct tcp_client *c, const char *name, uint16_t id)
{
    size_t len;
    uint8_t *q = tcp_query(name, id, &len);
    tcp_write_all(c, q, len);
    free(q);
}

/* Runs the loop until a whole message is in; NULL when the connection
 * closed or timeout_ms passed first. *closed tells the first. */
static ldns_pkt *tcp_answer(uv_loop_t *loop, struct tcp_client *c, int timeout_ms, bool *closed)
{
    int64_t end = mono_ms() + timeout_ms;
    if (closed)
        *closed = false;
    for (;;) {
        if (c->len >= 2) {
            size_t mlen = ((size_t)c->buf[0] << 8) | c->buf[1];
            if (c->len >= 2 + mlen) {
                ldns_pkt *p = NULL;
                CHECK(ldns_wire2pkt(&p, c->buf + 2, mlen) == LDNS_STATUS_OK);
                memmove(c->buf, c->buf + 2 + mlen, c->len - 2 - mlen);
                c->len -= 2 + mlen;
                return p;
            }
        }
        if (mono_ms() >= end)
            return NULL;
        uv_run(loop, UV_RUN_NOWAIT);
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            if (closed)
                *closed = true;
            return NULL;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        poll(&pfd, 1, 5);
    }
}

TEST(dns_tcp_whole_answers)
{
    uv_loop_t loop;
    struct names t = {0};
    int port;
    struct dns_server *s = serve(&loop, &t, &port);
    struct tcp_client *c = xcalloc(1, sizeof(*c));
    tcp_connect(c, &loop, port);

    /* All 100 addresses, no TC: what a client truncated over UDP asks for. */
    tcp_ask(c, "many", 11);
    ldns_pkt *p = tcp_answer(&loop, c, 3000, NULL);
    CHECK(p != NULL && ldns_pkt_id(p) == 11);
    CHECK(!ldns_pkt_tc(p) && ldns_pkt_ancount(p) == 100);
    CHECK(t.last_client == IP(127, 0, 0, 1));
    ldns_pkt_free(p);
    /* As many as one message holds (a service of thousands of tasks). */
    char longest[254] = "huge", label[64];
    memset(label, 'x', 63);
    label[63] = '\0';
    for (int i = 0; i < 4; i++) /* 4 + 3 * 64 + 57 = 253 characters */
        snprintf(longest + strlen(longest), sizeof(longest) - strlen(longest), ".%.*s",
                 i < 3 ? 63 : 56, label);
    CHECK(strlen(longest) == 253);
    tcp_ask(c, longest, 9);
    p = tcp_answer(&loop, c, 3000, NULL);
    CHECK(p != NULL && ldns_pkt_id(p) == 9);
    CHECK(!ldns_pkt_tc(p) && ldns_pkt_ancount(p) == DNS_MAX_ADDRS);
    uint32_t first = answer_addr(p, 0);
    CHECK(first >= IP(10, 43, 0, 0) && first < IP(10, 43, 0, 0) + DNS_MAX_ADDRS);
    ldns_pkt_free(p);

    /* Two queries in one write, then one sent a byte at a time: three answers, in order. */
    size_t l1, l2, l3;
    uint8_t *q1 = tcp_query("web", 12, &l1), *q2 = tcp_query("tasks.web", 13, &l2);
    uint8_t *both = xmalloc(l1 + l2);
    memcpy(both, q1, l1);
    memcpy(both + l1, q2, l2);
    tcp_write_all(c, both, l1 + l2);
    uint8_t *q3 = tcp_query("empty", 14, &l3);
    for (size_t i = 0; i < l3; i++) {
        tcp_write_all(c, q3 + i, 1);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    free(q1);
    free(q2);
    free(q3);
    free(both);
    p = tcp_answer(&loop, c, 3000, NULL);
    CHECK(p != NULL && ldns_pkt_id(p) == 12 && ldns_pkt_ancount(p) == 1);
    ldns_pkt_free(p);
    p = tcp_answer(&loop, c, 3000, NULL);
    CHECK(p != NULL && ldns_pkt_id(p) == 13 && ldns_pkt_ancount(p) == 3);
    ldns_pkt_free(p);
    p = tcp_answer(&loop, c, 3000, NULL);
    CHECK(p != NULL && ldns_pkt_id(p) == 14 && ldns_pkt_ancount(p) == 0);
    ldns_pkt_free(p);

    /* A name not ours goes upstream (over UDP) and the answer comes back on
     * the connection, even after the client closed its sending side. */
    struct serr err;
    struct dns_server *up = dns_server_new(&loop, upstream_lookup, NULL);
    dns_server_set_upstreams(up, NULL, 0);
    CHECK(dns_server_listen(up, "127.0.0.1", 0, &err) == 0);
    char upaddr[32];
    snprintf(upaddr, sizeof(upaddr), "127.0.0.1:%d", dns_server_port(up, "127.0.0.1"));
    const char *ups[] = {upaddr};
    dns_server_set_upstreams(s, ups, 1);
    tcp_ask(c, "ext.example", 15);
    CHECK(shutdown(c->fd, SHUT_WR) == 0);
    p = tcp_answer(&loop, c, 3000, NULL);
    CHECK(p != NULL && ldns_pkt_id(p) == 15);
    CHECK(ldns_pkt_ancount(p) == 1 && answer_addr(p, 0) == IP(1, 2, 3, 4));
    ldns_pkt_free(p);
    bool closed;
    CHECK(tcp_answer(&loop, c, 3000, &closed) == NULL && closed); /* then it closes */
    close(c->fd);

    free(c);
    dns_server_close(up);
    finish(&loop, s);
}

TEST(dns_tcp_bad_clients)
{
    uv_loop_t loop;
    struct names t = {0};
    int port;
    struct dns_server *s = serve(&loop, &t, &port);
    int dead = dead_upstream(s);
    struct tcp_client *c = xcalloc(1, sizeof(*c));

    /* An empty message, garbage, a message cut short, then a good query:
     * the connection still answers (garbage is dropped as over UDP). */
    tcp_connect(c, &loop, port);
    uint8_t junk[] = {0, 0, 0, 5, 1, 2, 3, 4, 5};
    tcp_write_all(c, junk, sizeof(junk));
    tcp_ask(c, "web", 21);
    ldns_pkt *p = tcp_answer(&loop, c, 3000, NULL);
    CHECK(p != NULL && ldns_pkt_id(p) == 21);
    ldns_pkt_free(p);
    /* A length of 65535 and then hanging up mid-message. */
    uint8_t big[] = {0xff, 0xff, 1, 2, 3};
    tcp_write_all(c, big, sizeof(big));
    close(c->fd);

    /* A client that hangs up with a query still upstream (which never answers). */
    tcp_connect(c, &loop, port);
    tcp_ask(c, "example.org", 22);
    uint8_t buf[512];
    int got = 0;
    for (int i = 0; i < 1000 && !got; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (recv(dead, buf, sizeof(buf), 0) > 0)
            got = 1;
        else
            usleep(1000);
    }
    CHECK(got);
    close(c->fd);
    for (int i = 0; i < 50; i++)
        uv_run(&loop, UV_RUN_NOWAIT);

    /* More connections than DNS_MAX_CONNS: the ones beyond are closed at once,
     * the others still answer. */
    int fds[DNS_MAX_CONNS + 1];
    for (int i = 0; i <= DNS_MAX_CONNS; i++) {
        tcp_connect(c, &loop, port);
        fds[i] = c->fd;
    }
    c->fd = fds[DNS_MAX_CONNS];
    c->len = 0;
    bool closed;
    CHECK(tcp_answer(&loop, c, 3000, &closed) == NULL && closed);
    c->fd = fds[0];
    tcp_ask(c, "web", 23);
    p = tcp_answer(&loop, c, 3000, NULL);
    CHECK(p != NULL && ldns_pkt_id(p) == 23);
    ldns_pkt_free(p);

    /* Closing with open connections and a TCP query upstream: no leak, no handle left. */
    tcp_ask(c, "example.org", 24);
    for (int i = 0; i < 50; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    dns_server_unlisten(s, "127.0.0.1");
    CHECK(tcp_answer(&loop, c, 3000, &closed) == NULL && closed);
    for (int i = 0; i <= DNS_MAX_CONNS; i++)
        close(fds[i]);
    free(c);
    close(dead);
    finish(&loop, s);
}

TEST(dns_tcp_client_that_does_not_read)
{
    uv_loop_t loop;
    struct names t = {0};
    int port;
    struct dns_server *s = serve(&loop, &t, &port);
    struct tcp_client *c = xcalloc(1, sizeof(*c));
    tcp_connect(c, &loop, port);
    int small = 4096;
    CHECK(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0);

    /* 100 addresses per answer, about 1.6 kB. Queries go on until the server
     * closes the connection: once the kernel's buffers are full (a few MB at
     * most) and DNS_TCP_MAX_QUEUED more wait. Sending then fails. The cap (64 MB
     * of answers) and the deadline only turn a server that never closes into
     * a failure rather than a hang. */
    size_t qlen;
    uint8_t *q = tcp_query("many", 1, &qlen);
    bool closed = false;
    int64_t end = mono_ms() + 120000;
    for (int i = 0; i < 40000 && !closed && mono_ms() < end; i++) {
        size_t off = 0;
        while (off < qlen && !closed && mono_ms() < end) {
            ssize_t n = send(c->fd, q + off, qlen - off, MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
            else if (errno == EAGAIN)
                uv_run(&loop, UV_RUN_NOWAIT);
            else
                closed = true; /* EPIPE or ECONNRESET: the server closed */
        }
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    free(q);
    CHECK(closed);
    close(c->fd);
    free(c);
    finish(&loop, s);
}
