#include "manager/dispatcher.h"

#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"
#include "base/log.h"
#include "base/util.h"
#include "manager/netmodel.h"
#include "manager/stats.h"
#include "manager/subnets.h"
#include "model/node.h"
#include "model/task.h"
#include "raft/cluster.h"
#include "store/store.h"

/* A task as a node was last sent it: its id and a hash of its JSON text. */
struct sent_task {
    char *id;
    uint64_t hash;
};

struct seen {
    char node_id[64];
    int64_t at; /* monotonic ms of the last heartbeat */
    int64_t interval_ms; /* the interval the node was last asked for */
    /* The node's tasks as of the last answer, by id, named by `tasks_tag`
     * (the node sends the tag back: then it is sent only what changed) */
    struct sent_task *sent;
    size_t nsent;
    unsigned long long tasks_tag; /* 0: none sent yet */
    unsigned long long tasks_read_at; /* store_changes_now when `sent` was read */
};

struct dispatcher {
    struct dispatcher_host host;
    uv_timer_t timer;
    struct seen *seen;
    size_t nseen;
    json_t *seen_at; /* {node id: index in seen}: no scan of seen per node */
    int64_t heartbeat_ms; /* asked of the nodes now: dispatcher_heartbeat_ms */
    struct stats *stats; /* node metrics sent with heartbeats */
    bool was_leader;
    bool changing; /* a raft membership change is in flight */
    bool assigning; /* a node's subnet is being proposed */
    /* Proposals whose callback holds `d`: freed once the timer is closed
     * (dispatcher_stop) and the last of them has come back (raft calls
     * every callback, with an error when it stops). */
    int inflight;
    bool closed;
    json_t *mesh;   /* mesh_build() at store version mesh_version: shared by heartbeats */
    json_t *nodes;  /* host.node_addrs() at that version: task networking */
    json_t *managers; /* host.manager_addrs() at that version */
    unsigned long long mesh_version;
    unsigned long long node_changes; /* store_table_changes of nodes at that version */
    /* names the content of `mesh` and `nodes`: nodes that have them are not
     * sent them again (both grow with the cluster).
     * A random prefix per dispatcher: another leader's tags never match. */
    char mesh_tag[40];
    /* "mesh", "nodes" and "mesh_tag" of mesh_tag as compact JSON members
     * (jdumps_with_members), dumped at the first answer that sends them: a
     * service created changes the mesh, and every node's next answer carries
     * both again (500 nodes: 60 KB each; dumped per answer, a fifth of the
     * leader during a placement of 100 services). NULL: not dumped yet. */
    char *mesh_members;
    unsigned long long mesh_changes;
    unsigned long long tasks_changes; /* names the task lists sent (seen.tasks_tag) */
    char tag_prefix[9];
};

static struct store *store_of(struct dispatcher *d)
{
    return d->host.store(d->host.data);
}

static struct cluster *cluster_of(struct dispatcher *d)
{
    return d->host.cluster(d->host.data);
}

static struct seen *seen_entry(struct dispatcher *d, const char *node_id)
{
    json_t *at = json_object_get(d->seen_at, node_id);
    if (at)
        return &d->seen[json_integer_value(at)];
    json_object_set_new(d->seen_at, node_id, json_integer((json_int_t)d->nseen));
    d->seen = xrealloc(d->seen, (d->nseen + 1) * sizeof(*d->seen));
    struct seen *s = &d->seen[d->nseen++];
    snprintf(s->node_id, sizeof(s->node_id), "%s", node_id);
    s->at = mono_ms();
    s->interval_ms = d->heartbeat_ms;
    s->sent = NULL;
    s->nsent = 0;
    s->tasks_tag = 0;
    s->tasks_read_at = 0;
    return s;
}

static void forget_sent(struct sent_task *sent, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(sent[i].id);
    free(sent);
}

int64_t dispatcher_heartbeat_ms(size_t nodes)
{
    int64_t ms = (int64_t)nodes * 1000 / HEARTBEATS_PER_S;
    return ms < HEARTBEAT_MS ? HEARTBEAT_MS : ms > HEARTBEAT_MAX_MS ? HEARTBEAT_MAX_MS : ms;
}

int64_t dispatcher_answer_wait_ms(int64_t interval_ms)
{
    if (interval_ms < HEARTBEAT_MS)
        interval_ms = HEARTBEAT_MS;
    return interval_ms * NODE_DOWN_MS / HEARTBEAT_MS - interval_ms;
}

/* Down after as many of the node's intervals as NODE_DOWN_MS is of the
 * base interval. */
static bool heartbeats_stopped(const struct seen *s)
{
    return mono_ms() - s->at > s->interval_ms * NODE_DOWN_MS / HEARTBEAT_MS;
}

static void set_node_status(struct dispatcher *d, json_t *node, const char *status, const char *msg)
{
    const char *id = node_id(node);
    log_info("node %s (%s) is %s%s%s", node_hostname(node), id, status, msg ? ": " : "",
             msg ? msg : "");
    json_t *fields = json_pack("{s:s, s:s, s:I}", "status", status, "message", msg ? msg : "",
                               "updated_at", (json_int_t)now_ms());
    cluster_propose(cluster_of(d), json_pack("[o]", op_merge("nodes", id, fields)), NULL,
                    NULL);
}

static void check_nodes(uv_timer_t *t);

static void dispatcher_free_when_idle(struct dispatcher *d);

/* A proposal's callback came back: false when the dispatcher was stopped
 * meanwhile (then it may be freed, and the answer is not for it). */
static bool callback_returns(struct dispatcher *d)
{
    d->inflight--;
    if (!d->closed)
        return true;
    dispatcher_free_when_idle(d);
    return false;
}

static void subnet_assigned(void *arg, int status, const struct serr *err)
{
    struct dispatcher *d = arg;
    if (!callback_returns(d))
        return;
    d->assigning = false;
    if (status < 0)
        log_warn("node subnet: %s", err->msg);
}

/* Subnets assigned by one proposal at most: nodes joining by the thousand
 * get theirs in a few entries, not one entry (and one orchestrator pass)
 * per node. */
#define SUBNETS_PER_PROPOSAL 256

/* Nodes get their /24 here, one proposal at a time, rather than in the join
 * request: racing joins then never pick the same one. A proposal assigns
 * the subnets of every node without one (up to SUBNETS_PER_PROPOSAL), each
 * picked with those before it as taken: `nodes` (store_list's, the caller's
 * own) is given them as it goes. */
static void assign_subnets(struct dispatcher *d, json_t *nodes)
{
    if (d->assigning)
        return;
    json_t *meta = store_get(store_of(d), "meta", "cluster");
    struct serr err = {0};
    json_t *group = json_array(), *op;
    while (json_array_size(group) < SUBNETS_PER_PROPOSAL &&
           (op = subnets_next_op(nodes, subnets_pool(meta), &err)) != NULL) {
        json_t *node = jarray_find(nodes, "id", jstr(op, "id"));
        json_array_append_new(group, op);
        if (node == NULL)
            break; /* not one of `nodes`: cannot be */
        json_object_set(node, "subnet", json_object_get(json_object_get(op, "fields"), "subnet"));
    }
    json_decref(meta);
    if (err.msg[0])
        log_warn("node subnet: %s", err.msg);
    if (json_array_size(group) == 0) {
        json_decref(group);
        return;
    }
    d->assigning = true;
    d->inflight++;
    cluster_propose(cluster_of(d), group, subnet_assigned, d);
}

static void membership_done(void *arg, int status, const struct serr *err)
{
    struct dispatcher *d = arg;
    if (!callback_returns(d))
        return;
    d->changing = false;
    if (status < 0)
        log_warn("raft membership: %s", err->msg);
    else /* the next manager need not wait for the next tick */
        uv_timer_start(&d->timer, check_nodes, 0, 500);
}

/* Raft voters follow the nodes' roles: a manager node becomes a voter once
 * its raft answers (retried every tick), a demoted one is removed. One
 * change at a time: raft allows no more. */
static void reconcile_membership(struct dispatcher *d, json_t *nodes)
{
    struct cluster *cluster = cluster_of(d);
    if (d->changing)
        return;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *rid = jstr(n, "raft_id");
        const char *role = node_role(n);
        const char *addr = node_addr(n);
        const char *status = node_status(n);
        if (rid == NULL || role == NULL || addr == NULL)
            continue;
        uint64_t id = strtoull(rid, NULL, 16);
        bool voter = cluster_has_voter(cluster, id);
        if (strcmp(role, "manager") == 0 && !voter && status && strcmp(status, "ready") == 0) {
            d->changing = true;
            d->inflight++;
            log_info("adding manager %s (%s) as a raft voter", node_hostname(n), addr);
            cluster_add_voter(cluster, id, addr, membership_done, d);
            return;
        }
        if (strcmp(role, "worker") == 0 && voter) {
            d->changing = true;
            d->inflight++;
            cluster_remove(cluster, id, membership_done, d);
            return;
        }
    }
}

/* Marks nodes whose heartbeats stopped as down. A new leader first gives
 * every node a full period at the interval the cluster's size implies (what
 * the previous leader asked for): it has seen none of them yet. */
static void check_nodes(uv_timer_t *t)
{
    struct dispatcher *d = t->data;
    bool leader = cluster_is_leader(cluster_of(d));
    json_t *nodes = leader ? store_list(store_of(d), "nodes", NULL) : NULL;
    d->heartbeat_ms = dispatcher_heartbeat_ms(json_array_size(nodes));
    if (leader && !d->was_leader)
        for (size_t i = 0; i < d->nseen; i++) {
            d->seen[i].at = mono_ms();
            if (d->seen[i].interval_ms < d->heartbeat_ms)
                d->seen[i].interval_ms = d->heartbeat_ms;
        }
    d->was_leader = leader;
    if (!leader)
        return;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *id = node_id(n);
        const char *status = node_status(n);
        if (strcmp(id, d->host.node_id) == 0) {
            if (status && strcmp(status, "ready") != 0)
                set_node_status(d, n, "ready", NULL);
            continue;
        }
        struct seen *s = seen_entry(d, id);
        if (status && strcmp(status, "ready") == 0 && heartbeats_stopped(s))
            set_node_status(d, n, "down", "heartbeat failure");
    }
    reconcile_membership(d, nodes);
    assign_subnets(d, nodes);
    json_decref(nodes);
}

struct dispatcher *dispatcher_start(const struct dispatcher_host *host)
{
    struct dispatcher *d = xcalloc(1, sizeof(*d));
    d->host = *host;
    d->stats = stats_new();
    d->seen_at = json_object();
    d->heartbeat_ms = HEARTBEAT_MS;
    random_hex(d->tag_prefix, 8);
    uv_timer_init(host->loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, check_nodes, 100, 500);
    return d;
}

static void dispatcher_free_when_idle(struct dispatcher *d)
{
    if (d->inflight > 0)
        return;
    for (size_t i = 0; i < d->nseen; i++)
        forget_sent(d->seen[i].sent, d->seen[i].nsent);
    free(d->seen);
    json_decref(d->seen_at);
    json_decref(d->mesh);
    json_decref(d->nodes);
    free(d->mesh_members);
    json_decref(d->managers);
    stats_free(d->stats);
    free(d);
}

static void dispatcher_closed(uv_handle_t *h)
{
    struct dispatcher *d = h->data;
    d->closed = true;
    dispatcher_free_when_idle(d);
}

void dispatcher_stop(struct dispatcher *d)
{
    if (d)
        uv_close((uv_handle_t *)&d->timer, dispatcher_closed);
}

/* True when the task is assigned to `node_id`: a node reports only its own. */
static bool task_on_node(struct store *st, const char *task_id, const char *node_id)
{
    json_t *t = store_get(st, "tasks", task_id);
    const char *on = task_node_id(t);
    bool mine = on && strcmp(on, node_id) == 0;
    json_decref(t);
    return mine;
}

json_t *dispatcher_report_fields(json_t *fields)
{
    static const char *const keys[] = {"state", "state_at", "started_at", "message", "error",
                                       "exit_code", "pid", "addr", "health", NULL};
    json_t *allowed = json_object();
    for (int k = 0; keys[k]; k++)
        if (json_object_get(fields, keys[k]))
            json_object_set(allowed, keys[k], json_object_get(fields, keys[k]));
    return allowed;
}

/* Reports are applied one group each: a report about a task deleted
 * meanwhile fails alone. */
static void apply_reports(struct dispatcher *d, const char *node_id, json_t *reports)
{
    size_t i;
    json_t *r;
    json_array_foreach(reports, i, r)
    {
        const char *id = jstr(r, "id");
        json_t *fields = json_object_get(r, "fields");
        if (id == NULL || !json_is_object(fields) || !task_on_node(store_of(d), id, node_id))
            continue;
        json_t *allowed = dispatcher_report_fields(fields);
        cluster_propose(cluster_of(d), json_pack("[o]", op_merge("tasks", id, allowed)), NULL,
                        NULL);
    }
}

static json_t *images_of(struct store *st, json_t *tasks)
{
    json_t *images = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const char *id = jstr(task_container(t), "image_id");
        if (id == NULL || json_object_get(images, id))
            continue;
        json_t *img = store_get(st, "images", id);
        if (img)
            json_object_set_new(images, id, img);
    }
    return images;
}

/* A node whose role changed (promote, demote) sends a CSR: it gets a
 * certificate for its new role, which the cluster port checks. */
static void renew_certificate(struct dispatcher *d, json_t *node, const char *csr, json_t *reply)
{
    if (csr == NULL)
        return;
    const struct dispatcher_host *h = &d->host;
    struct serr err = {0};
    char *cert = NULL;
    const char *role = node_role(node);
    if (h->sign_csr(h->data, csr, node_id(node), role, &cert, &err) == 0) {
        json_object_set_new(reply, "cert", json_string(cert));
        if (role && strcmp(role, "manager") == 0) /* a promoted node: the secrets key too */
            h->secrets_key_offer(h->data, reply);
    } else
        log_warn("certificate renewal: %s", err.msg);
    free(cert);
}

/* The mesh, the node list and the managers' addresses of the store's
 * current version (each a pass over every node: once per change, not per
 * heartbeat), and the tag of the first two. */
static void refresh_network(struct dispatcher *d)
{
    unsigned long long version = store_version(store_of(d));
    if (d->mesh != NULL && d->mesh_version == version)
        return;
    json_t *mesh = mesh_build(store_of(d));
    unsigned long long node_changes = store_table_changes(store_of(d), "nodes");
    json_t *nodes = d->nodes;
    if (nodes == NULL || node_changes != d->node_changes) { /* the nodes table changed */
        nodes = d->host.node_addrs(d->host.data);
        json_decref(d->managers);
        d->managers = d->host.manager_addrs(d->host.data);
    } else {
        json_incref(nodes);
    }
    if (d->mesh == NULL || !json_equal(mesh, d->mesh) || !json_equal(nodes, d->nodes)) {
        snprintf(d->mesh_tag, sizeof(d->mesh_tag), "%s-%llu", d->tag_prefix, ++d->mesh_changes);
        free(d->mesh_members);
        d->mesh_members = NULL;
    }
    json_decref(d->mesh);
    json_decref(d->nodes);
    d->mesh = mesh;
    d->nodes = nodes;
    d->mesh_version = version;
    d->node_changes = node_changes;
}

json_t *dispatcher_mesh(struct dispatcher *d)
{
    refresh_network(d);
    return d->mesh;
}

/* FNV-1a: tells a task's JSON text from the one a node was sent before. */
static uint64_t text_hash(const char *data, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)data[i]) * 1099511628211ull;
    return h;
}

/* One pass over a node's task rows (by id) beside what it was sent (by id
 * too): the rows that differ are parsed, the others not (all of them when
 * `whole`: the node has no list we know). */
struct task_diff {
    const struct seen *was;
    size_t at;          /* in was->sent */
    bool whole;
    json_t *changed;    /* the tasks new or changed (every task when whole) */
    json_t *removed;    /* ids of the tasks sent before and gone since */
    struct sent_task *now;
    size_t nnow, capnow;
};

static void diff_skip_removed(struct task_diff *df, const char *id)
{
    const struct seen *was = df->was;
    while (df->at < was->nsent && (id == NULL || strcmp(was->sent[df->at].id, id) < 0))
        json_array_append_new(df->removed, json_string(was->sent[df->at++].id));
}

static void diff_row(void *arg, const char *id, const char *data, size_t len)
{
    struct task_diff *df = arg;
    uint64_t hash = text_hash(data, len);
    diff_skip_removed(df, id);
    bool known = df->at < df->was->nsent && strcmp(df->was->sent[df->at].id, id) == 0;
    bool same = known && df->was->sent[df->at++].hash == hash;
    if (!same || df->whole) {
        json_t *task = json_loadb(data, len, 0, NULL);
        if (task)
            json_array_append_new(df->changed, task);
    }
    if (df->nnow == df->capnow) {
        df->capnow = df->capnow ? df->capnow * 2 : 16;
        df->now = xrealloc(df->now, df->capnow * sizeof(*df->now));
    }
    df->now[df->nnow++] = (struct sent_task){xstrdup(id), hash};
}

/* Whether a task of the node may have changed since `seen->sent` was read
 * (if not, its rows are not read: nothing would differ). */
static bool node_tasks_changed(struct dispatcher *d, const struct seen *seen)
{
    return store_node_tasks_changed_at(store_of(d), seen->node_id) > seen->tasks_read_at;
}

/* Reads the node's task rows beside what it was sent (diff_row), which
 * they then replace. */
static void read_node_tasks(struct dispatcher *d, struct seen *seen, struct task_diff *df)
{
    seen->tasks_read_at = store_changes_now();
    store_each_where(store_of(d), "tasks", "node_id", seen->node_id, diff_row, df);
    diff_skip_removed(df, NULL);
    forget_sent(seen->sent, seen->nsent);
    seen->sent = df->now;
    seen->nsent = df->nnow;
}

/* The node's tasks: the whole list ("tasks") when the node does not have
 * the list of `have_tag`, else what changed since ("task_changes":
 * {"changed": tasks, "removed": ids}, left out when nothing did); and the
 * tag of the list it then has ("tasks_tag"). Returns the tasks sent (a new
 * reference). */
static json_t *add_tasks(struct dispatcher *d, struct seen *seen, const char *have_tag,
                         json_t *reply)
{
    char tag[48];
    snprintf(tag, sizeof(tag), "%s-%llu", d->tag_prefix, seen->tasks_tag);
    struct task_diff df = {.was = seen, .changed = json_array(), .removed = json_array()};
    df.whole = seen->tasks_tag == 0 || have_tag == NULL || strcmp(have_tag, tag) != 0;
    if (df.whole || node_tasks_changed(d, seen))
        read_node_tasks(d, seen, &df);
    if (df.whole)
        json_object_set(reply, "tasks", df.changed);
    else if (json_array_size(df.changed) > 0 || json_array_size(df.removed) > 0)
        json_object_set_new(reply, "task_changes", json_pack("{s:O, s:O}", "changed", df.changed,
                                                             "removed", df.removed));
    if (df.whole || json_object_get(reply, "task_changes"))
        seen->tasks_tag = ++d->tasks_changes;
    snprintf(tag, sizeof(tag), "%s-%llu", d->tag_prefix, seen->tasks_tag);
    json_object_set_new(reply, "tasks_tag", json_string(tag));
    json_decref(df.removed);
    return df.changed;
}

/* The node's assignments (add_tasks) and what it needs to run them: the
 * images of the tasks sent. Returns the tasks sent (a new reference). */
static json_t *assignments(struct dispatcher *d, struct seen *seen, json_t *node,
                           const char *have_tag, json_t *reply)
{
    const struct dispatcher_host *h = &d->host;
    json_t *tasks = add_tasks(d, seen, have_tag, reply);
    refresh_network(d);
    json_object_set_new(reply, "images", images_of(store_of(d), tasks));
    json_object_set(reply, "managers", d->managers);
    if (h->leader_addr(h->data))
        json_object_set_new(reply, "leader", json_string(h->leader_addr(h->data)));
    json_object_set(reply, "role", json_object_get(node, "role"));
    json_object_set_new(reply, "overlay", json_string(h->overlay(h->data)));
    return tasks;
}

/* The mesh and the node list go only to nodes whose copy is not the current
 * one (an agent keeps what it was last sent of either). */
static bool wants_mesh(struct dispatcher *d, const char *have)
{
    refresh_network(d);
    return have == NULL || strcmp(have, d->mesh_tag) != 0;
}

static void add_mesh(struct dispatcher *d, json_t *reply)
{
    json_object_set(reply, "mesh", d->mesh);
    json_object_set(reply, "nodes", d->nodes);
    json_object_set_new(reply, "mesh_tag", json_string(d->mesh_tag));
}

/* The members add_mesh sets, as text: dumped once per mesh tag. */
static const char *mesh_members(struct dispatcher *d)
{
    if (d->mesh_members == NULL) {
        json_t *m = json_object();
        add_mesh(d, m);
        char *text = json_dumps(m, JSON_COMPACT);
        json_decref(m);
        size_t len = text ? strlen(text) : 0;
        if (len < 2) { /* did not encode: sent as JSON members of each answer then */
            free(text);
            return NULL;
        }
        memmove(text, text + 1, len - 2); /* without its braces */
        text[len - 2] = '\0';
        d->mesh_members = text;
    }
    return d->mesh_members;
}

/* The answer to a heartbeat but the mesh; *mesh: whether it is to go with it. */
static json_t *answer_but_mesh(struct dispatcher *d, const char *node_id, json_t *heartbeat,
                               bool *mesh, struct serr *err)
{
    const struct dispatcher_host *h = &d->host;
    json_t *node = store_get(store_of(d), "nodes", node_id);
    if (node == NULL) {
        serr_set(err, SERR_NOT_FOUND, "this node is not part of the swarm (removed?)");
        return NULL;
    }
    struct seen *seen = seen_entry(d, node_id);
    seen->at = mono_ms();
    seen->interval_ms = d->heartbeat_ms;
    const char *status = node_status(node);
    if (status && strcmp(status, "ready") != 0)
        set_node_status(d, node, "ready", NULL);
    apply_reports(d, node_id, json_object_get(heartbeat, "reports"));
    stats_record(d->stats, node_id, json_object_get(heartbeat, "metrics"), mono_ms());
    json_t *reply = json_object();
    json_t *tasks = assignments(d, seen, node, jstr(heartbeat, "tasks_tag"), reply);
    json_object_set_new(reply, "heartbeat_ms", json_integer(d->heartbeat_ms));
    *mesh = wants_mesh(d, jstr(heartbeat, "mesh_tag"));
    renew_certificate(d, node, jstr(heartbeat, "csr"), reply);
    /* the secrets of the tasks sent: the node keeps those of the others */
    h->secrets_for_node(h->data, tasks, json_object_get(heartbeat, "secret_ids"), reply);
    json_decref(tasks);
    json_decref(node);
    return reply;
}

char *dispatcher_heartbeat_text(struct dispatcher *d, const char *node_id, json_t *heartbeat,
                                struct serr *err)
{
    bool mesh = false;
    json_t *reply = answer_but_mesh(d, node_id, heartbeat, &mesh, err);
    if (reply == NULL)
        return NULL;
    const char *members = mesh ? mesh_members(d) : NULL;
    if (mesh && members == NULL)
        add_mesh(d, reply);
    char *text = jdumps_with_members(reply, members);
    json_decref(reply);
    if (text == NULL)
        serr_set(err, SERR_INTERNAL, "the heartbeat's answer cannot be encoded as JSON");
    return text;
}

struct stats *dispatcher_stats(struct dispatcher *d)
{
    return d->stats;
}
