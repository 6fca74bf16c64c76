/* DNS queries to the tasks' embedded server (agent/dns.c): each input is one
 * query packet as it arrives over UDP, answered from a lookup that claims a
 * few names (one with enough addresses to need truncation) and, for the rest,
 * forwarded to no upstream (SERVFAIL). Answers go to a loopback socket of
 * ours and are read back to check they parse. */
#include <arpa/inet.h>
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

/* Reads back every answer sent to us: each must be a DNS message we can parse. */
static void read_answers(void)
{
    static uint8_t buf[65536];
    ssize_t n;
    while ((n = recv(client_fd, buf, sizeof(buf), 0)) > 0) {
        ldns_pkt *a = NULL;
        if (ldns_wire2pkt(&a, buf, (size_t)n) != LDNS_STATUS_OK || !ldns_pkt_qr(a))
            abort(); /* we sent something that is not an answer */
        if (n > DNS_EDNS_SIZE)
            abort(); /* too large for UDP */
        ldns_pkt_free(a);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_peer p = {.s = server, .l = server->listeners, .client = client_addr};
    handle_query(&p, data, size);
    uv_run(&loop, UV_RUN_NOWAIT);
    read_answers();
    return 0;
}
