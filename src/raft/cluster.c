#include "raft/cluster.h"

#include <raft.h>
#include <raft/uv.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

struct proposal {
    json_t *group;
    cluster_propose_cb cb;
    void *arg;
    struct proposal *next;
};

struct cluster {
    uv_loop_t *loop;
    struct store *store;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport; /* the library's TCP one, when own_transport */
    bool own_transport;
    struct raft_fsm fsm;
    char *addr;
    cluster_change_cb on_change;
    void *change_arg;

    struct proposal *queue_head, *queue_tail; /* waiting for the next entry */
    struct proposal *in_flight;               /* the groups of the entry in flight */
    uint64_t applied; /* the last entry whose callback ran: raft's own count
                         (raft_last_applied) moves only after the callback */
    struct store_result last_result; /* set by the FSM, taken by the apply callback */
    uv_timer_t flush_timer;          /* defers flushing out of the caller's stack */

    /* The entry in flight when leadership was lost: a new leader may still
     * commit it. Its proposals wait until this server applies the entry at
     * that index (ours when the bytes match) or the wait times out. */
    struct {
        struct proposal *proposals;
        uint64_t index;
        char *text; /* the entry as proposed */
        size_t len;
    } lost;
    uv_timer_t lost_timer;
    char *flight_text; /* the entry in flight, kept to recognize it later */
    size_t flight_len;
    /* The entry in flight as it was dumped into flight_text: applied as is
     * when raft commits those bytes (store_apply_parsed), so the leader does
     * not parse its own entries again (a pass's entry of 8,000 tasks is
     * 5.6 MB of JSON). Its groups are the proposers' (cluster_propose takes
     * them): nobody changes them once proposed. */
    json_t *flight_entry;

    bool stopping;
    void (*stop_done)(void *arg);
    void *stop_arg;
    int closing_handles;
};

static void fail_proposals(struct proposal *p, const char *msg)
{
    struct serr err;
    serr_set(&err, SERR_UNAVAILABLE, "%s", msg);
    while (p) {
        struct proposal *next = p->next;
        if (p->cb)
            p->cb(p->arg, -1, &err);
        json_decref(p->group);
        free(p);
        p = next;
    }
}

/* Answers the proposals of an applied entry, one store result per group. */
static void answer_applied(struct proposal *p, const struct store_result *res)
{
    for (int i = 0; p; i++) {
        struct proposal *next = p->next;
        struct serr err = {0};
        int rc = 0;
        if (i < res->ngroups && res->status[i] != 0)
            rc = serr_set(&err, (enum serr_kind)(-res->status[i] - 1), "%s", res->msg[i]);
        if (p->cb)
            p->cb(p->arg, rc, &err);
        json_decref(p->group);
        free(p);
        p = next;
    }
}

#define LOST_UNKNOWN                                                                          \
    "leadership was lost while the write was being committed; the write may have been "      \
    "applied: check before retrying"

/* Ends the wait on an entry proposed before leadership was lost: `applied`
 * 1 = it was committed (res holds its results), 0 = another entry took its
 * place, -1 = unknown. */
static void lost_finish(struct cluster *c, int applied, const struct store_result *res)
{
    struct proposal *p = c->lost.proposals;
    if (p == NULL)
        return;
    c->lost.proposals = NULL;
    free(c->lost.text);
    c->lost.text = NULL;
    uv_timer_stop(&c->lost_timer);
    if (applied == 1)
        answer_applied(p, res);
    else if (applied == 0)
        fail_proposals(p, "not committed: leadership was lost (nothing was applied)");
    else
        fail_proposals(p, LOST_UNKNOWN);
}

static void lost_timer_cb(uv_timer_t *t)
{
    lost_finish(t->data, -1, NULL);
}

/* Called before each entry applied by the FSM, `index` being its index. */
static void lost_check(struct cluster *c, uint64_t index, const struct raft_buffer *buf)
{
    if (c->lost.proposals == NULL || index < c->lost.index)
        return;
    if (index > c->lost.index) {
        lost_finish(c, -1, NULL);
        return;
    }
    bool ours = buf->len == c->lost.len && memcmp(buf->base, c->lost.text, buf->len) == 0;
    if (!ours)
        lost_finish(c, 0, NULL);
    /* ours: answered after the store applied it (fsm_apply) */
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct cluster *c = fsm->data;
    struct serr err;
    store_result_free(&c->last_result);
    *result = NULL;
    /* raft moves last_applied past an entry after this callback */
    lost_check(c, raft_last_applied(&c->raft) + 1, buf);
    bool ours = c->flight_entry && buf->len == c->flight_len &&
                memcmp(buf->base, c->flight_text, buf->len) == 0;
    int rc = ours ? store_apply_parsed(c->store, c->flight_entry, &c->last_result, &err)
                  : store_apply(c->store, buf->base, buf->len, &c->last_result, &err);
    if (rc < 0)
        log_error("raft entry not applied: %s", err.msg);
    if (c->lost.proposals)
        lost_finish(c, 1, &c->last_result);
    if (c->on_change)
        c->on_change(c->change_arg);
    return 0;
}

/* Version 1 FSM: raft frees the buffers with raft_free. */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct cluster *c = fsm->data;
    void *data;
    size_t len;
    if (store_snapshot(c->store, &data, &len, NULL) < 0)
        return RAFT_NOMEM;
    *bufs = raft_malloc(sizeof(**bufs));
    void *copy = raft_malloc(len);
    if (*bufs == NULL || copy == NULL) {
        raft_free(*bufs);
        raft_free(copy);
        free(data);
        return RAFT_NOMEM;
    }
    memcpy(copy, data, len);
    free(data);
    (*bufs)[0].base = copy;
    (*bufs)[0].len = len;
    *n_bufs = 1;
    return 0;
}

/* On success the FSM owns buf->base (raft's contract) and frees it. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct cluster *c = fsm->data;
    struct serr err;
    if (store_restore(c->store, buf->base, buf->len, &err) < 0) {
        log_error("snapshot restore: %s", err.msg);
        return RAFT_CORRUPT;
    }
    raft_free(buf->base);
    lost_finish(c, -1, NULL); /* a snapshot says nothing about one entry */
    if (c->on_change)
        c->on_change(c->change_arg);
    return 0;
}

static void flush(struct cluster *c);

static void flush_timer_cb(uv_timer_t *t)
{
    flush(t->data);
}

/* Proposals of the entry in flight when leadership was lost wait to learn
 * whether a new leader committed it (10 s at most, then "unknown"). */
static void lost_wait(struct cluster *c, struct proposal *p, uint64_t index)
{
    lost_finish(c, -1, NULL); /* one wait at a time: an older one ends unknown */
    c->lost.proposals = p;
    c->lost.index = index;
    c->lost.text = c->flight_text;
    c->lost.len = c->flight_len;
    c->flight_text = NULL;
    json_decref(c->flight_entry); /* applied, if ever, from the text */
    c->flight_entry = NULL;
    uv_timer_start(&c->lost_timer, lost_timer_cb, 10000, 0);
}

/* One request per entry: raft may still hold a request while it runs its
 * callback (it walks its queue of requests when leadership is lost), so a
 * request is never handed to raft again; it is freed by its callback. */
static void apply_done(struct raft_apply *req, int status, void *result)
{
    (void)result;
    struct cluster *c = req->data;
    uint64_t index = req->index;
    if (status == 0 && index > c->applied)
        c->applied = index; /* the answers below name it as applied */
    free(req);
    struct proposal *p = c->in_flight;
    c->in_flight = NULL;
    struct store_result res = c->last_result;
    memset(&c->last_result, 0, sizeof(c->last_result));
    if (status == 0)
        answer_applied(p, &res);
    else if (status == RAFT_LEADERSHIPLOST && index > 0 && !c->stopping)
        lost_wait(c, p, index);
    else if (status == RAFT_LEADERSHIPLOST || status == RAFT_SHUTDOWN)
        fail_proposals(p, LOST_UNKNOWN);
    else {
        char msg[160];
        snprintf(msg, sizeof(msg), "not committed: %s", raft_strerror(status));
        fail_proposals(p, msg);
    }
    free(c->flight_text);
    c->flight_text = NULL;
    json_decref(c->flight_entry);
    c->flight_entry = NULL;
    store_result_free(&res);
    /* The next batch goes on the next loop turn, never from within raft's
     * callback (re-entering raft_apply from there crashed the leader). */
    if (c->queue_head && !c->stopping)
        uv_timer_start(&c->flush_timer, flush_timer_cb, 0, 0);
}

static void flush(struct cluster *c)
{
    if (c->in_flight || c->queue_head == NULL || c->stopping)
        return;
    if (c->raft.state != RAFT_LEADER) {
        struct proposal *p = c->queue_head;
        c->queue_head = c->queue_tail = NULL;
        fail_proposals(p, "this manager is not the leader (no quorum?)");
        return;
    }
    json_t *groups = json_array();
    for (struct proposal *p = c->queue_head; p; p = p->next)
        json_array_append(groups, p->group);
    json_t *entry = json_pack("{s:o}", "groups", groups);
    char *text = json_dumps(entry, JSON_COMPACT);
    json_decref(c->flight_entry);
    c->flight_entry = entry;
    /* libraft 0.15 writes entries as they are but its loader expects their
     * sizes to be multiples of 8 (a segment with other sizes is declared
     * corrupt on restart): pad with JSON whitespace. */
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t)7;
    struct raft_buffer buf = {.base = raft_malloc(padded), .len = padded};
    memcpy(buf.base, text, len);
    memset((char *)buf.base + len, ' ', padded - len);
    free(text);
    free(c->flight_text);
    c->flight_text = xmalloc(padded);
    memcpy(c->flight_text, buf.base, padded);
    c->flight_len = padded;
    c->in_flight = c->queue_head;
    c->queue_head = c->queue_tail = NULL;
    struct raft_apply *req = xcalloc(1, sizeof(*req));
    req->data = c;
    int rv = raft_apply(&c->raft, req, &buf, 1, apply_done);
    if (rv != 0) {
        free(req);
        raft_free(buf.base);
        struct proposal *p = c->in_flight;
        c->in_flight = NULL;
        json_decref(c->flight_entry);
        c->flight_entry = NULL;
        fail_proposals(p, raft_strerror(rv));
    }
}

void cluster_propose(struct cluster *c, json_t *group, cluster_propose_cb cb, void *arg)
{
    struct proposal *p = xcalloc(1, sizeof(*p));
    p->group = group;
    p->cb = cb;
    p->arg = arg;
    if (c->queue_tail)
        c->queue_tail->next = p;
    else
        c->queue_head = p;
    c->queue_tail = p;
    if (!c->stopping)
        uv_timer_start(&c->flush_timer, flush_timer_cb, 0, 0);
}

bool cluster_is_leader(struct cluster *c)
{
    return c && c->raft.state == RAFT_LEADER;
}

bool cluster_busy(struct cluster *c)
{
    return c->in_flight != NULL || c->queue_head != NULL;
}

const char *cluster_addr(struct cluster *c)
{
    return c->addr;
}

uint64_t cluster_last_applied(struct cluster *c)
{
    uint64_t n = raft_last_applied(&c->raft);
    return n > c->applied ? n : c->applied;
}

static int bootstrap(struct cluster *c, const struct cluster_config *cfg, struct serr *err)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = raft_configuration_add(&conf, cfg->raft_id, cfg->addr, RAFT_VOTER);
    if (rv == 0)
        rv = raft_bootstrap(&c->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0)
        return serr_set(err, SERR_INTERNAL, "raft bootstrap: %s", raft_errmsg(&c->raft));
    return 0;
}

static int recover_alone(struct cluster *c, const struct cluster_config *cfg, struct serr *err)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = raft_configuration_add(&conf, cfg->raft_id, cfg->addr, RAFT_VOTER);
    if (rv == 0)
        rv = raft_recover(&c->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0)
        return serr_set(err, SERR_INTERNAL, "raft recover: %s", raft_errmsg(&c->raft));
    return 0;
}

int cluster_start(uv_loop_t *loop, struct store *store, const struct cluster_config *cfg,
                  cluster_change_cb on_change, void *change_arg, struct cluster **out,
                  struct serr *err)
{
    if (mkdir_p(cfg->dir, 0700, err) < 0)
        return -1;
    struct cluster *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->store = store;
    c->addr = xstrdup(cfg->addr);
    c->on_change = on_change;
    c->change_arg = change_arg;
    c->fsm = (struct raft_fsm){.version = 1, .data = c, .apply = fsm_apply,
                               .snapshot = fsm_snapshot, .restore = fsm_restore};
    struct raft_uv_transport *transport = cfg->transport ? cfg->transport : &c->transport;
    c->own_transport = cfg->transport == NULL;
    int rv = c->own_transport ? raft_uv_tcp_init(&c->transport, loop) : 0;
    if (rv != 0) {
        serr_set(err, SERR_INTERNAL, "raft transport: %s", raft_strerror(rv));
        goto err_after_alloc;
    }
    rv = raft_uv_init(&c->io, loop, cfg->dir, transport);
    if (rv != 0) {
        serr_set(err, SERR_INTERNAL, "raft I/O in %s: %s", cfg->dir, c->io.errmsg);
        goto err_after_transport;
    }
    rv = raft_init(&c->raft, &c->io, &c->fsm, cfg->raft_id, cfg->addr);
    if (rv != 0) {
        serr_set(err, SERR_INTERNAL, "raft init: %s", raft_strerror(rv));
        goto err_after_io;
    }
    raft_set_snapshot_threshold(&c->raft, 512);
    raft_set_snapshot_trailing(&c->raft, 128);
    raft_set_election_timeout(&c->raft, 600); /* leader loss noticed in 0.6-1.2 s */
    raft_set_heartbeat_timeout(&c->raft, 100);
    if (cfg->bootstrap && bootstrap(c, cfg, err) < 0)
        goto err_after_raft;
    if (cfg->force_new && recover_alone(c, cfg, err) < 0)
        goto err_after_raft;
    rv = raft_start(&c->raft);
    if (rv != 0) {
        serr_set(err, SERR_INTERNAL, "raft start on %s: %s", cfg->addr, raft_errmsg(&c->raft));
        goto err_after_raft;
    }
    uv_timer_init(loop, &c->flush_timer);
    c->flush_timer.data = c;
    uv_timer_init(loop, &c->lost_timer);
    c->lost_timer.data = c;
    *out = c;
    return 0;

err_after_raft:
    /* raft_init succeeded: its memory is released only through raft_close,
     * which needs the loop to run; the daemon exits on this error anyway. */
    return -1;
err_after_io:
    raft_uv_close(&c->io);
err_after_transport:
    if (c->own_transport)
        raft_uv_tcp_close(&c->transport);
err_after_alloc:
    free(c->addr);
    free(c);
    return -1;
}

static void handle_closed(uv_handle_t *h)
{
    struct cluster *c = h->data;
    if (--c->closing_handles > 0)
        return;
    raft_uv_close(&c->io);
    if (c->own_transport)
        raft_uv_tcp_close(&c->transport);
    store_result_free(&c->last_result);
    free(c->flight_text);
    json_decref(c->flight_entry);
    void (*done)(void *) = c->stop_done;
    void *arg = c->stop_arg;
    free(c->addr);
    free(c);
    if (done)
        done(arg);
}

/* libraft 0.15 may run its I/O close callback twice: in uv_finalize.c a
 * barrier's callback (UvUnblock) fires the close, then its caller fires it
 * again. That callback frees the server's address, log and configuration,
 * then calls close_cb: a second run freed them again (a double free under
 * ASan on `swarm leave`, about one run in ten). They are freed by now:
 * emptied here, and close_cb cleared, a second run frees nothing and calls
 * nobody. It comes from the same call stack, before our handles close. */
static void disarm_second_close(struct raft *r)
{
    r->address = NULL;
    r->log.entries = NULL;
    r->log.refs = NULL;
    r->configuration.servers = NULL;
    r->configuration.n = 0;
    r->close_cb = NULL;
}

static void raft_closed(struct raft *r)
{
    struct cluster *c = r->data;
    disarm_second_close(r);
    lost_finish(c, -1, NULL);
    c->closing_handles = 2;
    uv_close((uv_handle_t *)&c->flush_timer, handle_closed);
    uv_close((uv_handle_t *)&c->lost_timer, handle_closed);
}

void cluster_stop(struct cluster *c, void (*done)(void *arg), void *arg)
{
    c->stopping = true;
    c->stop_done = done;
    c->stop_arg = arg;
    struct proposal *p = c->queue_head;
    c->queue_head = c->queue_tail = NULL;
    fail_proposals(p, "the daemon is stopping");
    c->raft.data = c;
    raft_close(&c->raft, raft_closed);
}

/* ---- membership ---- */

/* Two requests, so the one raft hands back in add_done is never given to it
 * again from within that callback. */
struct change {
    struct raft_change req;        /* raft_add, or the only step */
    struct raft_change assign_req; /* raft_assign after raft_add */
    struct cluster *c;
    uint64_t id;
    int step; /* add: 0 = adding, 1 = assigning */
    cluster_change_cb_fn cb;
    void *arg;
};

static void change_finish(struct change *ch, int status)
{
    struct serr err = {0};
    int rc = 0;
    if (status != 0)
        rc = serr_set(&err, SERR_UNAVAILABLE, "raft membership change: %s", raft_strerror(status));
    if (ch->cb)
        ch->cb(ch->arg, rc, &err);
    free(ch);
}

static void assign_done(struct raft_change *req, int status)
{
    change_finish(req->data, status);
}

static void add_done(struct raft_change *req, int status)
{
    struct change *ch = req->data;
    if (status != 0) {
        change_finish(ch, status);
        return;
    }
    int rv = raft_assign(&ch->c->raft, &ch->assign_req, ch->id, RAFT_VOTER, assign_done);
    if (rv != 0)
        change_finish(ch, rv);
}

static struct change *change_new(struct cluster *c, uint64_t id, cluster_change_cb_fn cb, void *arg)
{
    struct change *ch = xcalloc(1, sizeof(*ch));
    ch->c = c;
    ch->id = id;
    ch->cb = cb;
    ch->arg = arg;
    ch->req.data = ch;
    ch->assign_req.data = ch;
    return ch;
}

void cluster_add_voter(struct cluster *c, uint64_t id, const char *addr, cluster_change_cb_fn cb,
                       void *arg)
{
    struct change *ch = change_new(c, id, cb, arg);
    const struct raft_server *known = NULL;
    for (unsigned i = 0; i < c->raft.configuration.n; i++)
        if (c->raft.configuration.servers[i].id == id)
            known = &c->raft.configuration.servers[i];
    int rv = known ? raft_assign(&c->raft, &ch->req, id, RAFT_VOTER, assign_done)
                   : raft_add(&c->raft, &ch->req, id, addr, add_done);
    if (rv != 0)
        change_finish(ch, rv);
}

void cluster_remove(struct cluster *c, uint64_t id, cluster_change_cb_fn cb, void *arg)
{
    struct change *ch = change_new(c, id, cb, arg);
    int rv = raft_remove(&c->raft, &ch->req, id, assign_done);
    if (rv != 0)
        change_finish(ch, rv);
}

const char *cluster_leader_addr(struct cluster *c)
{
    raft_id id;
    const char *addr = NULL;
    raft_leader(&c->raft, &id, &addr);
    return addr ? addr : "";
}

bool cluster_has_voter(struct cluster *c, uint64_t id)
{
    for (unsigned i = 0; i < c->raft.configuration.n; i++)
        if (c->raft.configuration.servers[i].id == id &&
            c->raft.configuration.servers[i].role == RAFT_VOTER)
            return true;
    return false;
}
