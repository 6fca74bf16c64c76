/* The embedded DNS server (agent/dns.h). Everything runs on one libuv loop.
 *
 * Ownership: the server owns its listeners, its TCP connections and its
 * forwards (queries in flight upstream); each of those owns its libuv handles
 * and is freed in the close callback of its last handle. The server counts
 * every open handle and is freed when the count drops to zero after
 * dns_server_close(). Received datagrams land in the server's one buffer
 * (callbacks never overlap on a loop); UDP answers go out with
 * uv_udp_try_send, so no buffer outlives a call: a datagram the kernel will
 * not take now is dropped, as UDP may be, and the client asks again. A TCP
 * connection reads into its own buffer; each TCP answer is a write request
 * owning a copy of the message, freed when the write completes. A forward
 * keeps where its answer goes (a dns_peer); a listener or connection that
 * closes first clears itself from the peers of the forwards in flight. */
#include "agent/dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <ldns/ldns.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "base/util.h"

/* The largest UDP answer we send to an EDNS client, whatever it offers:
 * traffic stays on the node's bridge, and 4096 holds ~250 A records. */
#define DNS_EDNS_SIZE 4096
/* Without EDNS (RFC 1035). */
#define DNS_UDP_SIZE 512

struct dns_listener {
    struct dns_server *s;
    struct dns_listener *next;
    uv_udp_t udp;
    uv_tcp_t tcp;            /* the same address and port, for answers too large for UDP */
    int handles;             /* open handles; freed at 0 */
    struct sockaddr_in addr; /* as bound: the port is the real one */
};

/* A client's TCP connection: queries and answers framed by a two-byte length
 * (RFC 1035 4.2.2, RFC 7766), several per connection, answered as they come. */
struct dns_conn {
    struct dns_server *s;
    struct dns_listener *l; /* accepted there: unlistening it closes the connection */
    struct dns_conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t idle; /* closes a connection left unused for DNS_TCP_IDLE_MS */
    int handles;     /* open handles; freed at 0 */
    int pending;     /* its queries forwarded upstream, not answered yet */
    bool eof;        /* the client sent all it will: close once `pending` is 0 */
    bool closing;
    struct sockaddr_in client;
    size_t len;                    /* bytes of buf holding unanswered input */
    uint8_t buf[2 + UINT16_MAX];   /* a whole message at most */
};

/* Where an answer goes: a UDP client of a listener, or a TCP connection. Both
 * NULL once that listener or connection is gone (the answer is dropped). */
struct dns_peer {
    struct dns_server *s;
    struct dns_listener *l;  /* UDP */
    struct dns_conn *conn;   /* TCP */
    struct sockaddr_in client;
};

/* A query forwarded upstream, from its arrival to its answer or failure. */
struct dns_fwd {
    struct dns_server *s;
    struct dns_peer peer; /* where the answer goes */
    struct dns_fwd *prev, *next;
    uv_udp_t udp;     /* ephemeral socket: the upstream's answer comes here */
    uv_timer_t timer; /* the current upstream's deadline */
    int handles;      /* open handles; freed at 0 */
    struct sockaddr_in to; /* the upstream asked now */
    size_t next_upstream;  /* index in s->upstreams of the one to try next */
    uint16_t client_id, id;
    uint8_t *query; /* the client's query, our id in its first two bytes */
    size_t len;
    size_t qend;    /* end of the question section in `query` */
};

struct dns_server {
    uv_loop_t *loop;
    dns_lookup_fn lookup;
    void *ctx;
    struct dns_listener *listeners;
    struct dns_conn *conns;
    size_t nconns;
    struct dns_fwd *fwds;
    size_t nfwds;
    struct sockaddr_in *upstreams;
    size_t nupstreams;
    uint64_t timeout_ms;
    unsigned rotation; /* round robin: the first address of the next answer */
    int handles;       /* open libuv handles of listeners and forwards */
    bool closing;
    uint8_t rbuf[65536];
};

/* ---- lifetimes ---- */

static void server_unref(struct dns_server *s)
{
    if (--s->handles == 0 && s->closing) {
        free(s->upstreams);
        free(s);
    }
}

static void listener_closed(uv_handle_t *h)
{
    struct dns_listener *l = h->data;
    struct dns_server *s = l->s;
    if (--l->handles == 0)
        free(l);
    server_unref(s);
}

static void conn_closed(uv_handle_t *h)
{
    struct dns_conn *c = h->data;
    struct dns_server *s = c->s;
    if (--c->handles == 0)
        free(c);
    server_unref(s);
}

/* Unlinks the connection and closes it; forwards still due to it will drop
 * their answers. */
static void conn_close(struct dns_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct dns_server *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    for (struct dns_fwd *f = s->fwds; f; f = f->next)
        if (f->peer.conn == c)
            f->peer.conn = NULL;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->idle, conn_closed);
}

static void fwd_closed(uv_handle_t *h)
{
    struct dns_fwd *f = h->data;
    struct dns_server *s = f->s;
    if (--f->handles == 0) {
        free(f->query);
        free(f);
    }
    server_unref(s);
}

/* Unlinks the forward and closes its handles; it is freed once they closed. */
static void fwd_drop(struct dns_fwd *f)
{
    struct dns_server *s = f->s;
    if (f->prev)
        f->prev->next = f->next;
    else
        s->fwds = f->next;
    if (f->next)
        f->next->prev = f->prev;
    s->nfwds--;
    uv_close((uv_handle_t *)&f->udp, fwd_closed);
    uv_close((uv_handle_t *)&f->timer, fwd_closed);
}

/* ---- sending ---- */

struct tcp_write {
    uv_write_t req;
    uint8_t data[]; /* length prefix, then the message */
};

static void tcp_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write ends in a read error, which closes the connection */
    free(req->data);
}

/* Queues `data` on the connection with its length prefix (len <= UINT16_MAX). */
static void send_tcp(struct dns_conn *c, const uint8_t *data, size_t len)
{
    if (c->closing)
        return;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > DNS_TCP_MAX_QUEUED) {
        /* a client that asks and does not read: it would hold our memory */
        log_debug("dns: TCP client %s does not read its answers: closed",
                  inet_ntoa(c->client.sin_addr));
        conn_close(c);
        return;
    }
    struct tcp_write *w = xmalloc(sizeof(*w) + 2 + len);
    w->req.data = w;
    w->data[0] = (uint8_t)(len >> 8);
    w->data[1] = (uint8_t)len;
    memcpy(w->data + 2, data, len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)(2 + len));
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, tcp_written);
    if (rc < 0) {
        log_debug("dns: answer to %s over TCP dropped: %s", inet_ntoa(c->client.sin_addr),
                  uv_strerror(rc));
        free(w);
    }
}

static void send_raw(const struct dns_peer *p, const uint8_t *data, size_t len)
{
    if (p->conn) {
        send_tcp(p->conn, data, len);
        return;
    }
    if (p->l == NULL)
        return; /* its listener is gone */
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_udp_try_send(&p->l->udp, &b, 1, (const struct sockaddr *)&p->client);
    if (rc < 0)
        log_debug("dns: answer to %s dropped: %s", inet_ntoa(p->client.sin_addr),
                  uv_strerror(rc));
}

/* The answer's wire form in *wire (caller frees), or -1. */
static int to_wire(ldns_pkt *a, uint8_t **wire, size_t *len)
{
    *wire = NULL;
    ldns_status st = ldns_pkt2wire(wire, a, len);
    if (st != LDNS_STATUS_OK) {
        log_warn("dns: cannot build an answer: %s", ldns_get_errorstr_by_id(st));
        free(*wire);
        *wire = NULL;
        return -1;
    }
    return 0;
}

static void send_pkt(const struct dns_peer *p, ldns_pkt *a)
{
    uint8_t *wire;
    size_t len;
    if (to_wire(a, &wire, &len) == 0)
        send_raw(p, wire, len);
    free(wire);
}

/* An answer to `q` with its id, opcode and RD/CD, RA set (we recurse by
 * forwarding), `rcode`, the question when `with_question`, and an OPT record
 * when the query had one. Caller frees with ldns_pkt_free(). */
static ldns_pkt *answer_new(const ldns_pkt *q, ldns_pkt_rcode rcode, bool with_question)
{
    ldns_pkt *a = ldns_pkt_new();
    if (a == NULL) {
        log_error("dns: out of memory");
        abort();
    }
    ldns_pkt_set_id(a, ldns_pkt_id(q));
    ldns_pkt_set_qr(a, true);
    ldns_pkt_set_opcode(a, ldns_pkt_get_opcode(q));
    ldns_pkt_set_rd(a, ldns_pkt_rd(q));
    ldns_pkt_set_cd(a, ldns_pkt_cd(q));
    ldns_pkt_set_ra(a, true);
    ldns_pkt_set_rcode(a, (uint8_t)rcode);
    if (with_question) {
        ldns_rr_list *qs = ldns_pkt_question(q);
        for (size_t i = 0; i < ldns_rr_list_rr_count(qs); i++)
            ldns_pkt_push_rr(a, LDNS_SECTION_QUESTION, ldns_rr_clone(ldns_rr_list_rr(qs, i)));
    }
    if (ldns_pkt_edns(q))
        ldns_pkt_set_edns_udp_size(a, DNS_EDNS_SIZE);
    return a;
}

static void reply_status(const struct dns_peer *p, const ldns_pkt *q, ldns_pkt_rcode rcode,
                         bool with_question)
{
    ldns_pkt *a = answer_new(q, rcode, with_question);
    send_pkt(p, a);
    ldns_pkt_free(a);
}

/* ---- our names ---- */

static ldns_rr *a_record(const ldns_rdf *owner, uint32_t addr)
{
    uint32_t be = htonl(addr);
    ldns_rr *rr = ldns_rr_new();
    ldns_rdf *rd = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, sizeof(be), &be);
    ldns_rdf *name = ldns_rdf_clone(owner);
    if (rr == NULL || rd == NULL || name == NULL) {
        log_error("dns: out of memory");
        abort();
    }
    ldns_rr_set_owner(rr, name);
    ldns_rr_set_type(rr, LDNS_RR_TYPE_A);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, 0);
    ldns_rr_push_rdf(rr, rd);
    return rr;
}

/* Answers a name of ours: its addresses for A (rotated, as many as fit the
 * client's UDP size, TC when some did not; all of them over TCP), nothing for
 * other types. */
static void answer_ours(const struct dns_peer *p, const ldns_pkt *q, const ldns_rr *question,
                        const uint32_t *addrs, size_t n)
{
    size_t limit = DNS_UDP_SIZE;
    if (p->conn) {
        limit = UINT16_MAX;
    } else if (ldns_pkt_edns(q)) {
        size_t offered = ldns_pkt_edns_udp_size(q);
        limit = offered < DNS_UDP_SIZE ? DNS_UDP_SIZE : offered > DNS_EDNS_SIZE ? DNS_EDNS_SIZE : offered;
    }
    if (ldns_rr_get_type(question) != LDNS_RR_TYPE_A)
        n = 0;
    size_t start = n ? p->s->rotation++ % n : 0;
    size_t fit = n;
    for (;;) {
        ldns_pkt *a = answer_new(q, LDNS_RCODE_NOERROR, true);
        ldns_pkt_set_aa(a, true);
        for (size_t i = 0; i < fit; i++)
            ldns_pkt_push_rr(a, LDNS_SECTION_ANSWER,
                             a_record(ldns_rr_owner(question), addrs[(start + i) % n]));
        ldns_pkt_set_tc(a, fit < n);
        uint8_t *wire;
        size_t len;
        int rc = to_wire(a, &wire, &len);
        ldns_pkt_free(a);
        if (rc < 0)
            return;
        if (len <= limit || fit == 0) {
            send_raw(p, wire, len);
            free(wire);
            return;
        }
        free(wire);
        /* An A record takes 16 bytes with a compressed owner name. */
        size_t drop = (len - limit + 15) / 16;
        fit -= drop < fit ? drop : fit;
    }
}

/* ---- forwarding ---- */

static uint16_t random_id(void)
{
    static uint16_t fallback = 0x5eed;
    uint16_t id;
    if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id))
        id = fallback = (uint16_t)(fallback * 25173u + 13849u + (uint16_t)mono_ms());
    return id;
}

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* An upstream that is one of our own sockets would loop the query back to us. */
static bool is_own_address(const struct dns_server *s, const struct sockaddr_in *a)
{
    for (const struct dns_listener *l = s->listeners; l; l = l->next)
        if (same_addr(&l->addr, a))
            return true;
    return false;
}

/* Ends the forward: relays the upstream's answer (`answer`, id already the
 * client's), or SERVFAIL when `answer` is NULL; then drops it. */
static void fwd_finish(struct dns_fwd *f, const uint8_t *answer, size_t len)
{
    struct dns_conn *c = f->peer.conn;
    if (answer) {
        send_raw(&f->peer, answer, len);
    } else if (f->peer.l || c) {
        ldns_pkt *q = NULL;
        LDNS_ID_SET(f->query, f->client_id);
        if (ldns_wire2pkt(&q, f->query, f->len) == LDNS_STATUS_OK)
            reply_status(&f->peer, q, LDNS_RCODE_SERVFAIL, true);
        ldns_pkt_free(q);
    }
    fwd_drop(f);
    if (c && --c->pending == 0 && c->eof)
        conn_close(c);
}

static void fwd_timeout(uv_timer_t *t);

/* Sends the query to the next usable upstream and arms its deadline; when
 * none is left, answers SERVFAIL. */
static void fwd_try_next(struct dns_fwd *f)
{
    struct dns_server *s = f->s;
    while (f->next_upstream < s->nupstreams) {
        f->to = s->upstreams[f->next_upstream++];
        if (is_own_address(s, &f->to))
            continue;
        f->id = random_id();
        LDNS_ID_SET(f->query, f->id);
        uv_buf_t b = uv_buf_init((char *)f->query, (unsigned)f->len);
        int rc = uv_udp_try_send(&f->udp, &b, 1, (const struct sockaddr *)&f->to);
        if (rc < 0) {
            log_debug("dns: forward to %s:%d failed: %s", inet_ntoa(f->to.sin_addr),
                      ntohs(f->to.sin_port), uv_strerror(rc));
            continue;
        }
        uv_timer_start(&f->timer, fwd_timeout, s->timeout_ms, 0);
        return;
    }
    fwd_finish(f, NULL, 0);
}

static void fwd_timeout(uv_timer_t *t)
{
    struct dns_fwd *f = t->data;
    log_debug("dns: upstream %s:%d did not answer", inet_ntoa(f->to.sin_addr),
              ntohs(f->to.sin_port));
    fwd_try_next(f);
}

static void alloc_cb_fwd(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct dns_fwd *f = h->data;
    *buf = uv_buf_init((char *)f->s->rbuf, sizeof(f->s->rbuf));
}

/* Same question, names compared without case (label length bytes are < 64,
 * which tolower leaves alone). */
static bool same_question(const uint8_t *a, const uint8_t *b, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (tolower(a[i]) != tolower(b[i]))
            return false;
    return true;
}

static void on_upstream(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                        unsigned flags)
{
    struct dns_fwd *f = h->data;
    if (n <= 0 || from == NULL || from->sa_family != AF_INET || (flags & UV_UDP_PARTIAL))
        return;
    if (!uv_is_active((uv_handle_t *)&f->timer))
        return; /* between tries (cannot happen on one loop), or done */
    const uint8_t *data = (const uint8_t *)buf->base;
    size_t len = (size_t)n;
    /* Only the upstream asked now, its answer to our id and our question. */
    if (!same_addr((const struct sockaddr_in *)from, &f->to) || len < f->qend ||
        !LDNS_QR_WIRE(data) || LDNS_ID_WIRE(data) != f->id || LDNS_QDCOUNT(data) != 1 ||
        !same_question(data, f->query, LDNS_HEADER_SIZE, f->qend))
        return;
    uv_timer_stop(&f->timer);
    LDNS_ID_SET((uint8_t *)buf->base, f->client_id);
    fwd_finish(f, data, len);
}

/* Forwards the query `data` of `q` (a name not ours) upstream. */
static void forward(const struct dns_peer *p, const ldns_pkt *q, const ldns_rr *question,
                    const uint8_t *data, size_t len)
{
    struct dns_server *s = p->s;
    if (s->nupstreams == 0 || s->nfwds >= DNS_MAX_FORWARDS) {
        if (s->nupstreams) /* debug: a flood must not flood the log too */
            log_debug("dns: %d queries in flight upstream already, SERVFAIL", DNS_MAX_FORWARDS);
        reply_status(p, q, LDNS_RCODE_SERVFAIL, true);
        return;
    }
    struct dns_fwd *f = xcalloc(1, sizeof(*f));
    f->s = s;
    f->peer = *p;
    if (p->conn)
        p->conn->pending++;
    f->client_id = ldns_pkt_id(q);
    f->query = xmalloc(len);
    memcpy(f->query, data, len);
    f->len = len;
    /* The question's name is the first thing after the header, uncompressed. */
    f->qend = LDNS_HEADER_SIZE + ldns_rdf_size(ldns_rr_owner(question)) + 4;
    if (f->qend > len)
        f->qend = len;
    uv_udp_init(s->loop, &f->udp);
    uv_timer_init(s->loop, &f->timer);
    f->udp.data = f->timer.data = f;
    f->handles = 2;
    s->handles += 2;
    f->next = s->fwds;
    if (s->fwds)
        s->fwds->prev = f;
    s->fwds = f;
    s->nfwds++;

    struct sockaddr_in any;
    uv_ip4_addr("0.0.0.0", 0, &any);
    int rc = uv_udp_bind(&f->udp, (const struct sockaddr *)&any, 0);
    if (rc == 0)
        rc = uv_udp_recv_start(&f->udp, alloc_cb_fwd, on_upstream);
    if (rc < 0) {
        log_warn("dns: no socket to forward a query: %s", uv_strerror(rc));
        fwd_finish(f, NULL, 0);
        return;
    }
    fwd_try_next(f);
}

/* ---- queries ---- */

/* The question's name in lower case without the trailing dot (caller
 * frees), or NULL. */
static char *lookup_name(const ldns_rr *question)
{
    ldns_rdf *lower = ldns_rdf_clone(ldns_rr_owner(question));
    if (lower == NULL)
        return NULL;
    ldns_dname2canonical(lower);
    char *text = ldns_rdf2str(lower);
    ldns_rdf_deep_free(lower);
    if (text == NULL)
        return NULL;
    size_t n = strlen(text);
    if (n && text[n - 1] == '.')
        text[n - 1] = '\0';
    return text;
}

static void handle_query(const struct dns_peer *p, const uint8_t *data, size_t len)
{
    struct dns_server *s = p->s;
    const struct sockaddr_in *client = &p->client;
    if (len < LDNS_HEADER_SIZE || LDNS_QR_WIRE(data))
        return; /* not a query: never answer answers */
    ldns_pkt *q = NULL;
    ldns_status st = ldns_wire2pkt(&q, data, len);
    if (st != LDNS_STATUS_OK) {
        log_debug("dns: malformed query from %s dropped: %s", inet_ntoa(client->sin_addr),
                  ldns_get_errorstr_by_id(st));
        ldns_pkt_free(q);
        return;
    }
    if (ldns_pkt_get_opcode(q) != LDNS_PACKET_QUERY) {
        reply_status(p, q, LDNS_RCODE_NOTIMPL, false);
        goto out;
    }
    if (ldns_pkt_qdcount(q) != 1) {
        reply_status(p, q, LDNS_RCODE_FORMERR, false);
        goto out;
    }
    const ldns_rr *question = ldns_rr_list_rr(ldns_pkt_question(q), 0);
    int found = -1;
    uint32_t addrs[DNS_MAX_ADDRS];
    if (ldns_rr_get_class(question) == LDNS_RR_CLASS_IN) {
        char *name = lookup_name(question);
        if (name && name[0])
            found = s->lookup(s->ctx, ntohl(client->sin_addr.s_addr), name, addrs, DNS_MAX_ADDRS);
        free(name);
    }
    if (found >= 0)
        answer_ours(p, q, question, addrs,
                    (size_t)found > DNS_MAX_ADDRS ? DNS_MAX_ADDRS : (size_t)found);
    else
        forward(p, q, question, data, len);
out:
    ldns_pkt_free(q);
}

static void alloc_cb_listener(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct dns_listener *l = h->data;
    *buf = uv_buf_init((char *)l->s->rbuf, sizeof(l->s->rbuf));
}

static void on_query(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags)
{
    struct dns_listener *l = h->data;
    if (n < 0)
        log_debug("dns: receive: %s", uv_strerror((int)n));
    if (n <= 0 || from == NULL || from->sa_family != AF_INET || (flags & UV_UDP_PARTIAL))
        return;
    struct dns_peer p = {.s = l->s, .l = l, .client = *(const struct sockaddr_in *)from};
    handle_query(&p, (const uint8_t *)buf->base, (size_t)n);
}

/* ---- TCP ---- */

static void conn_idle(uv_timer_t *t)
{
    conn_close(t->data);
}

static void alloc_cb_conn(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct dns_conn *c = h->data;
    *buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

/* Answers every whole message in the buffer and keeps the rest. */
static void conn_drain(struct dns_conn *c)
{
    size_t at = 0;
    while (!c->closing && c->len - at >= 2) {
        size_t mlen = ((size_t)c->buf[at] << 8) | c->buf[at + 1];
        if (c->len - at < 2 + mlen)
            break;
        struct dns_peer p = {.s = c->s, .conn = c, .client = c->client};
        handle_query(&p, c->buf + at + 2, mlen);
        at += 2 + mlen;
    }
    memmove(c->buf, c->buf + at, c->len - at);
    c->len -= at;
}

static void on_conn_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct dns_conn *c = h->data;
    if (n == UV_EOF) { /* answer what was asked, then close */
        uv_read_stop(h);
        c->eof = true;
        if (c->pending == 0)
            conn_close(c);
        return;
    }
    if (n < 0) {
        log_debug("dns: TCP client %s: %s", inet_ntoa(c->client.sin_addr), uv_strerror((int)n));
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    uv_timer_again(&c->idle);
    conn_drain(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct dns_listener *l = server->data;
    struct dns_server *s = l->s;
    if (status < 0)
        return;
    struct dns_conn *c = xcalloc(1, sizeof(*c));
    c->s = s;
    c->l = l;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->idle);
    c->tcp.data = c->idle.data = c;
    c->handles = 2;
    s->handles += 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    int namelen = sizeof(c->client);
    int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc == 0)
        rc = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->client, &namelen);
    if (rc == 0 && s->nconns > DNS_MAX_CONNS)
        rc = UV_EMFILE;
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb_conn, on_conn_read);
    if (rc < 0) {
        log_debug("dns: TCP connection refused: %s", uv_strerror(rc));
        conn_close(c);
        return;
    }
    uv_timer_start(&c->idle, conn_idle, DNS_TCP_IDLE_MS, DNS_TCP_IDLE_MS);
}

/* TCP on the listener's address and port; UDP goes on without it when that
 * fails (a warning: only answers too large for UDP need it). */
static void listen_tcp(struct dns_listener *l)
{
    struct dns_server *s = l->s;
    uv_tcp_init(s->loop, &l->tcp);
    l->tcp.data = l;
    l->handles++;
    s->handles++;
    int rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&l->addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 16, on_connection);
    if (rc < 0) {
        log_warn("dns: no TCP on %s:%d (answers stay UDP-sized): %s",
                 inet_ntoa(l->addr.sin_addr), ntohs(l->addr.sin_port), uv_strerror(rc));
        uv_close((uv_handle_t *)&l->tcp, listener_closed);
    }
}

/* Closes the listener's sockets and the connections it accepted. */
static void listener_close(struct dns_listener *l)
{
    struct dns_server *s = l->s;
    for (struct dns_fwd *f = s->fwds; f; f = f->next)
        if (f->peer.l == l)
            f->peer.l = NULL;
    for (struct dns_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->l == l)
            conn_close(c);
    }
    uv_close((uv_handle_t *)&l->udp, listener_closed);
    if (!uv_is_closing((uv_handle_t *)&l->tcp))
        uv_close((uv_handle_t *)&l->tcp, listener_closed);
}

/* ---- the server ---- */

struct dns_server *dns_server_new(uv_loop_t *loop, dns_lookup_fn lookup, void *ctx)
{
    struct dns_server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->lookup = lookup;
    s->ctx = ctx;
    s->timeout_ms = DNS_UPSTREAM_TIMEOUT_MS;

    char *conf = NULL;
    const char *ns[16];
    size_t nns = 0;
    if (read_file("/etc/resolv.conf", &conf, NULL, NULL) == 0) {
        char *save = NULL;
        for (char *line = strtok_r(conf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *w = NULL;
            char *key = strtok_r(line, " \t", &w);
            char *val = key ? strtok_r(NULL, " \t", &w) : NULL;
            struct in_addr a;
            if (key && val && strcmp(key, "nameserver") == 0 && inet_pton(AF_INET, val, &a) == 1 &&
                nns < sizeof(ns) / sizeof(ns[0]))
                ns[nns++] = val;
        }
    }
    dns_server_set_upstreams(s, ns, nns);
    free(conf);
    return s;
}

int dns_server_listen(struct dns_server *s, const char *ip, int port, struct serr *err)
{
    struct sockaddr_in addr;
    if (port < 0 || port > 65535 || uv_ip4_addr(ip, port, &addr) != 0)
        return serr_set(err, SERR_INVALID, "dns: bad listen address %s:%d", ip, port);
    for (struct dns_listener *l = s->listeners; l; l = l->next)
        if (port != 0 && same_addr(&l->addr, &addr))
            return 0;
    struct dns_listener *l = xcalloc(1, sizeof(*l));
    l->s = s;
    uv_udp_init(s->loop, &l->udp);
    l->udp.data = l;
    l->handles = 1;
    s->handles++;
    int rc = uv_udp_bind(&l->udp, (const struct sockaddr *)&addr, 0);
    int namelen = sizeof(l->addr);
    if (rc == 0)
        rc = uv_udp_getsockname(&l->udp, (struct sockaddr *)&l->addr, &namelen);
    if (rc == 0)
        rc = uv_udp_recv_start(&l->udp, alloc_cb_listener, on_query);
    if (rc < 0) {
        uv_close((uv_handle_t *)&l->udp, listener_closed);
        return serr_set(err, rc == UV_EADDRINUSE ? SERR_CONFLICT : SERR_INTERNAL,
                        "dns: listen on %s:%d: %s", ip, port, uv_strerror(rc));
    }
    listen_tcp(l);
    l->next = s->listeners;
    s->listeners = l;
    return 0;
}

int dns_server_port(const struct dns_server *s, const char *ip)
{
    struct in_addr a;
    if (inet_pton(AF_INET, ip, &a) != 1)
        return -1;
    int port = -1;
    for (const struct dns_listener *l = s->listeners; l; l = l->next)
        if (l->addr.sin_addr.s_addr == a.s_addr)
            port = ntohs(l->addr.sin_port); /* the list is newest first: keep the oldest */
    return port;
}

void dns_server_unlisten(struct dns_server *s, const char *ip)
{
    struct in_addr a;
    if (inet_pton(AF_INET, ip, &a) != 1)
        return;
    struct dns_listener **pl = &s->listeners;
    while (*pl) {
        struct dns_listener *l = *pl;
        if (l->addr.sin_addr.s_addr != a.s_addr) {
            pl = &l->next;
            continue;
        }
        *pl = l->next;
        listener_close(l);
    }
}

void dns_server_set_upstreams(struct dns_server *s, const char *const *addrs, size_t n)
{
    free(s->upstreams);
    s->upstreams = n ? xcalloc(n, sizeof(*s->upstreams)) : NULL;
    s->nupstreams = 0;
    for (size_t i = 0; i < n; i++) {
        char ip[INET_ADDRSTRLEN];
        long port = 53;
        const char *colon = strchr(addrs[i], ':');
        size_t iplen = colon ? (size_t)(colon - addrs[i]) : strlen(addrs[i]);
        if (colon) {
            char *end;
            port = strtol(colon + 1, &end, 10);
            if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
                port = -1;
        }
        if (iplen >= sizeof(ip) || port < 0) {
            log_warn("dns: bad upstream %s skipped (IPv4 or IPv4:PORT)", addrs[i]);
            continue;
        }
        memcpy(ip, addrs[i], iplen);
        ip[iplen] = '\0';
        struct in_addr a;
        if (inet_pton(AF_INET, ip, &a) != 1) {
            log_warn("dns: bad upstream %s skipped (IPv4 or IPv4:PORT)", addrs[i]);
            continue;
        }
        uv_ip4_addr(ip, (int)port, &s->upstreams[s->nupstreams++]);
    }
}

void dns_server_set_timeout(struct dns_server *s, uint64_t ms)
{
    s->timeout_ms = ms;
}

void dns_server_close(struct dns_server *s)
{
    s->closing = true;
    while (s->listeners) {
        struct dns_listener *l = s->listeners;
        s->listeners = l->next;
        listener_close(l);
    }
    while (s->conns)
        conn_close(s->conns);
    while (s->fwds)
        fwd_drop(s->fwds);
    if (s->handles == 0) {
        free(s->upstreams);
        free(s);
    }
}
