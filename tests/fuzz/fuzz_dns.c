/* DNS queries to the tasks' embedded server (agent/dns.c). Each input is
 * used twice: as one query packet as it arrives over UDP, and as the bytes a
 * client sends on a TCP connection (length-prefixed messages) before it
 * half-closes. The lookup claims a few names (one with enough addresses to
 * need truncation); the rest are forwarded to no upstream (SERVFAIL). Every
 * answer is read back (from a loopback socket of ours) and must parse; a TCP
 * connection must be closed by the server once the client is done. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"

/* handle_query() is static: the server is compiled in here. */
#include "agent/dns.c"

static uv_loop_t loop;
static struct dns_server *server;
static int client_fd = -1;
static struct sockaddr_in client_addr;

static int lookup(void *ctx, uint32_t client, const char *name, uint32_t *addrs, size_t max)
{
    size_t n;
    if (strcmp(name, "web") == 0)
        n = 2;
    else if (strcmp(name, "tasks.web") == 0)
        n = 300; /* more than a UDP answer holds */
    else if (strcmp(name, "empty") == 0)
        n = 0;
    else
        return -1;
    for (size_t i = 0; i < n && i < max; i++)
        addrs[i] = 0x0a000002u + (uint32_t)i;
    return (int)n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    uv_loop_init(&loop);
    server = dns_server_new(&loop, lookup, NULL);
    dns_server_set_upstreams(server, NULL, 0);
    struct serr err = {0};
    if (dns_server_listen(server, "127.0.0.1", 0, &err) < 0) {
        fprintf(stderr, "fuzz: dns listen: %s\n", err.msg);
        abort();
    }
    client_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    client_addr.sin_family = AF_INET;
    client_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(client_addr);
    if (client_fd < 0 || bind(client_fd, (struct sockaddr *)&client_addr, len) < 0 ||
        getsockname(client_fd, (struct sockaddr *)&client_addr, &len) < 0) {
        perror("fuzz: client socket");
        abort();
    }
    return 0;
}

static void check_answer(const uint8_t *buf, size_t len)
{
    ldns_pkt *a = NULL;
    if (ldns_wire2pkt(&a, buf, len) != LDNS_STATUS_OK || !ldns_pkt_qr(a))
        abort(); /* we sent something that is not an answer */
    ldns_pkt_free(a);
}

/* Reads back every UDP answer sent to us. */
static void read_udp_answers(void)
{
    static uint8_t buf[65536];
    ssize_t n;
    while ((n = recv(client_fd, buf, sizeof(buf), 0)) > 0) {
        if (n > DNS_EDNS_SIZE)
            abort(); /* too large for UDP */
        check_answer(buf, (size_t)n);
    }
}

static void over_udp(const uint8_t *data, size_t size)
{
    struct dns_peer p = {.s = server, .l = server->listeners, .client = client_addr};
    handle_query(&p, data, size);
    uv_run(&loop, UV_RUN_NOWAIT);
    read_udp_answers();
}

/* Sends the input on a new TCP connection, half-closes, and reads the
 * answers until the server closes. */
static void over_tcp(const uint8_t *data, size_t size)
{
    static uint8_t buf[2 + UINT16_MAX + 65536];
    static uint32_t next_source;
    /* Each connection leaves a TIME_WAIT on our side (we close first): a new
     * loopback source address every time keeps ports from running out. */
    struct sockaddr_in from = {.sin_family = AF_INET};
    from.sin_addr.s_addr = htonl(0x7f010000u | (next_source++ % 0xfffe + 1));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = server->listeners->addr;
    if (fd < 0 || bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
        perror("fuzz: dns tcp connect");
        abort();
    }
    if (write_all(fd, data, size) < 0 || shutdown(fd, SHUT_WR) < 0) {
        perror("fuzz: dns tcp write");
        abort();
    }
    size_t have = 0;
    for (;;) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        if (n < 0) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, 1);
            continue;
        }
        have += (size_t)n;
        size_t at = 0;
        while (have - at >= 2 && have - at >= 2 + ((size_t)buf[at] << 8 | buf[at + 1])) {
            size_t len = (size_t)buf[at] << 8 | buf[at + 1];
            check_answer(buf + at + 2, len);
            at += 2 + len;
        }
        memmove(buf, buf + at, have - at);
        have -= at;
    }
    if (have != 0)
        abort(); /* an answer cut short */
    close(fd);
    uv_run(&loop, UV_RUN_NOWAIT); /* close callbacks */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    over_udp(data, size);
    over_tcp(data, size);
    return 0;
}
