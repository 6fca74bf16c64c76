#include "store/store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"
#include "base/util.h"

/* At least the number of tables (NTABLES). */
#define TABLES_MAX 24

/* Numbers the ops applied by every store of the process (struct store's
 * reset_at). */
static _Atomic unsigned long long changes_seq;

/* How many statements are kept prepared. */
#define STMT_CACHE_SIZE 64

struct store {
    sqlite3 *db;
    unsigned long long version;
    /* The deletions of one node's tasks, for its agent's log sweep
     * (store_take_deleted_tasks): the node, and the ids of its tasks deleted
     * since the last take, or NULL when not known (no take yet, a restored
     * snapshot, too many). */
    char *watch_node;
    json_t *deleted;
    /* The ids of the tasks put, merged or deleted since the last
     * store_take_changed_tasks ({id: true}), or NULL when not known (no take
     * yet, a restored snapshot, a change of the jobs table, too many). */
    json_t *changed_tasks;
    /* Changes are numbered in changes_seq (of every store of the process,
     * so that a store made anew, a forced new cluster, never gives a reader
     * a number it kept of the one before). `reset_at`: the number of the
     * store's opening or last restored snapshot, which count as changes of
     * every table and every node's tasks. */
    unsigned long long reset_at;
    /* The number of the last op on a task of each node ({node id: number}):
     * a heartbeat skips the rows of a node none of whose tasks changed
     * (store_node_tasks_changed_at). */
    json_t *node_tasks_changed_at;
    /* Of each table, by index in `tables`: the number of the last op
     * applied on it (store_table_changes). */
    unsigned long long table_changes[TABLES_MAX];
    /* The rows of jobs the pass's queries parsed (job_rows): id -> parsed
     * data, dropped as soon as an op touches the row (a pass reads the same
     * head of the queue again and again, and parsing was most of its cost). */
    json_t *parsed_jobs;
    /* Ops applied that may change the plan of the job queue
     * (store_op_changes_plan), counted for store_plan_changes. */
    unsigned long long plan_changes;
    /* Ops applied that may change a node's network (store_op_changes_net),
     * counted for store_net_changes. */
    unsigned long long net_changes;
    /* The reads' statements, prepared once (prepared, finished): a pass and
     * an agent's sync run the same few queries after every entry, and
     * preparing them was a fifth of the daemon's time. */
    struct cached_stmt {
        char *sql;
        sqlite3_stmt *st;
        bool busy; /* handed out: a nested read of the same SQL prepares its own */
    } stmts[STMT_CACHE_SIZE];
    int stmt_next; /* the slot the next statement takes when all are used */
};

/* Past this many parsed rows kept, the cache is emptied. */
#define PARSED_JOBS_MAX 4096

/* What a rolled-back group or a restored snapshot adds to plan_changes: no
 * reader's count of the ops it expects can match after it. */
#define PLAN_CHANGES_UNKNOWN (1ULL << 32)

/* Past this many task ids noted and not taken (tasks that left the watched
 * node, tasks changed), the list is dropped: its reader is told it is not
 * known (store_take_deleted_tasks, store_take_changed_tasks). */
#define NOTED_TASKS_MAX 100000

struct table_def {
    const char *name;
    const char *keys[4]; /* generated key columns, NULL terminated */
};

static const struct table_def tables[] = {
    {"meta", {NULL}},
    {"nodes", {"hostname", NULL}},
    {"images", {NULL}},
    {"tags", {"image_id", NULL}},
    {"services", {"name", NULL}},
    {"tasks", {"service_id", "node_id", "slot", NULL}},
    {"networks", {"name", NULL}},
    {"ports", {NULL}}, /* "8080/tcp" -> {"service_id"}: who publishes it */
    {"secrets", {"name", NULL}},
    {"configs", {"name", NULL}},
    {"jobs", {"state", NULL}}, /* batch jobs (manager/jobs.h) */
    {"alert_rules", {NULL}}, /* manager/alert.h */
    {"alerts", {"state", NULL}},
    {"volumes", {"name", NULL}}, /* manager/volume.h; id = name */
    {"metrics_history", {NULL}}, /* a ring (op "append"), manager/stats.h */
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))
_Static_assert(NTABLES <= TABLES_MAX, "TABLES_MAX below the number of tables");

static const char schema[] =
    "CREATE TABLE meta (id TEXT PRIMARY KEY, data TEXT NOT NULL);"
    "CREATE TABLE nodes (id TEXT PRIMARY KEY, data TEXT NOT NULL,"
    "  hostname TEXT GENERATED ALWAYS AS (json_extract(data, '$.hostname')) STORED);"
    "CREATE TABLE images (id TEXT PRIMARY KEY, data TEXT NOT NULL);"
    "CREATE TABLE tags (id TEXT PRIMARY KEY, data TEXT NOT NULL,"
    "  image_id TEXT GENERATED ALWAYS AS (json_extract(data, '$.image_id')) STORED);"
    "CREATE TABLE services (id TEXT PRIMARY KEY, data TEXT NOT NULL,"
    "  name TEXT GENERATED ALWAYS AS (json_extract(data, '$.name')) STORED);"
    "CREATE UNIQUE INDEX services_name ON services(name);"
    "CREATE TABLE tasks (id TEXT PRIMARY KEY, data TEXT NOT NULL,"
    "  service_id TEXT GENERATED ALWAYS AS (json_extract(data, '$.service_id')) STORED,"
    "  node_id TEXT GENERATED ALWAYS AS (json_extract(data, '$.node_id')) STORED,"
    "  slot TEXT GENERATED ALWAYS AS (json_extract(data, '$.slot')) STORED);";

/* A job's place in the queue before its id: queue admin, then every other
 * queue but besteffort, then besteffort; store_job_queue_rank in C. The
 * index jobs_queue of existing stores is made of this text: it stays. */
#define JOB_QUEUE_RANK                                                                             \
    "(CASE json_extract(data, '$.queue') WHEN 'admin' THEN 0 WHEN 'besteffort' THEN 2 ELSE 1 END)"

int store_job_queue_rank(const char *queue)
{
    if (queue && strcmp(queue, "admin") == 0)
        return 0;
    if (queue && strcmp(queue, "besteffort") == 0)
        return 2;
    return 1;
}

/* Tables added since the first release: also made in restored snapshots of
 * older stores. */
static const char schema_additions[] =
    "CREATE TABLE IF NOT EXISTS networks (id TEXT PRIMARY KEY, data TEXT NOT NULL,"
    "  name TEXT GENERATED ALWAYS AS (json_extract(data, '$.name')) STORED);"
    "CREATE UNIQUE INDEX IF NOT EXISTS networks_name ON networks(name);"
    /* Two services never share a virtual IP, nor a published port: the
     * leader checks before proposing; these catch two proposals racing. */
    "CREATE UNIQUE INDEX IF NOT EXISTS services_vip ON services(json_extract(data, '$.vip'));"
    "CREATE UNIQUE INDEX IF NOT EXISTS networks_subnet"
    "  ON networks(json_extract(data, '$.subnet'));"
    "CREATE TABLE IF NOT EXISTS ports (id TEXT PRIMARY KEY, data TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, data TEXT NOT NULL,"
    "  state TEXT GENERATED ALWAYS AS (json_extract(data, '$.state')) STORED);"
    /* the leader's pass reads the jobs not ended, not the whole history */
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);"
    /* nor every task: store_tasks_but_ended_jobs and store_node_tasks read the
     * task history from these indexes alone (issue 14) */
    "CREATE INDEX IF NOT EXISTS tasks_job ON tasks(json_extract(data, '$.job_id'));"
    "CREATE INDEX IF NOT EXISTS tasks_state ON tasks(json_extract(data, '$.state'));"
    "CREATE INDEX IF NOT EXISTS tasks_node_state ON tasks(node_id, json_extract(data, '$.state'),"
    "  json_extract(data, '$.desired_state'));"
    /* a pass reads the head of the waiting queue (store_jobs_queue_head), and
     * the waiting jobs whose message it may have to change (store_jobs_message_not) */
    "CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(state, " JOB_QUEUE_RANK ", CAST(id AS INTEGER));"
    "CREATE INDEX IF NOT EXISTS jobs_message ON jobs(state, json_extract(data, '$.message'));"
    /* Names are unique regardless of case (swarmkit's rule). Not a UNIQUE
     * index: a store from before the rule may hold "web" and "Web", and must
     * still load; puts with "unique_name" check against this index instead. */
    "CREATE INDEX IF NOT EXISTS services_name_nocase ON services(name COLLATE NOCASE);"
    "CREATE INDEX IF NOT EXISTS networks_name_nocase ON networks(name COLLATE NOCASE);"
    "CREATE TABLE IF NOT EXISTS secrets (id TEXT PRIMARY KEY, data TEXT NOT NULL,"
    "  name TEXT GENERATED ALWAYS AS (json_extract(data, '$.name')) STORED);"
    "CREATE INDEX IF NOT EXISTS secrets_name_nocase ON secrets(name COLLATE NOCASE);"
    "CREATE TABLE IF NOT EXISTS configs (id TEXT PRIMARY KEY, data TEXT NOT NULL,"
    "  name TEXT GENERATED ALWAYS AS (json_extract(data, '$.name')) STORED);"
    "CREATE INDEX IF NOT EXISTS configs_name_nocase ON configs(name COLLATE NOCASE);"
    "CREATE TABLE IF NOT EXISTS alert_rules (id TEXT PRIMARY KEY, data TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, data TEXT NOT NULL,"
    "  state TEXT GENERATED ALWAYS AS (json_extract(data, '$.state')) STORED);"
    "CREATE TABLE IF NOT EXISTS volumes (id TEXT PRIMARY KEY, data TEXT NOT NULL,"
    "  name TEXT GENERATED ALWAYS AS (json_extract(data, '$.name')) STORED);"
    "CREATE TABLE IF NOT EXISTS metrics_history (id TEXT PRIMARY KEY, data TEXT NOT NULL);"
    /* a service's running tasks (the mesh's endpoints, at each store
     * version) without a json_extract of every task of the service */
    "CREATE INDEX IF NOT EXISTS tasks_service_state ON tasks(service_id,"
    "  json_extract(data, '$.state'));"
    /* tasks_service (service_id) and tasks_node (node_id) of the first
     * schema: prefixes of tasks_service_state and tasks_node_state, which
     * serve the same look-ups; each was one more index entry written per
     * task put (100,000 in a c1m placement) */
    "DROP INDEX IF EXISTS tasks_service;"
    "DROP INDEX IF EXISTS tasks_node;"
    "CREATE TRIGGER IF NOT EXISTS ports_owned BEFORE UPDATE ON ports"
    "  WHEN json_extract(old.data, '$.service_id') IS NOT json_extract(new.data, '$.service_id')"
    "  BEGIN SELECT RAISE(ABORT, 'port already published by another service'); END;";

static const struct table_def *table_lookup(const char *name)
{
    for (size_t i = 0; name && i < NTABLES; i++)
        if (strcmp(tables[i].name, name) == 0)
            return &tables[i];
    return NULL;
}

/* Ring tables: rows keyed by time (store_ring_id), pruned by op "append". */
static bool table_is_ring(const struct table_def *t)
{
    return strcmp(t->name, "metrics_history") == 0;
}

static bool table_has_key(const struct table_def *t, const char *column)
{
    if (strcmp(column, "id") == 0)
        return true;
    for (int i = 0; t->keys[i]; i++)
        if (strcmp(t->keys[i], column) == 0)
            return true;
    return false;
}

/* Stores opened by this process (swarm leave opens a new one). */
static unsigned long long stores_opened;

int store_open(struct store **out, struct serr *err)
{
    struct store *s = xcalloc(1, sizeof(*s));
    if (sqlite3_open(":memory:", &s->db) != SQLITE_OK) {
        serr_set(err, SERR_INTERNAL, "sqlite open: %s", sqlite3_errmsg(s->db));
        goto err_after_open;
    }
    char *msg = NULL;
    if (sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->db, schema_additions, NULL, NULL, &msg) != SQLITE_OK) {
        serr_set(err, SERR_INTERNAL, "sqlite schema: %s", msg);
        sqlite3_free(msg);
        goto err_after_open;
    }
    s->parsed_jobs = json_object();
    s->net_changes = ++stores_opened << 40; /* apart from an earlier store's counts */
    s->node_tasks_changed_at = json_object();
    s->reset_at = ++changes_seq;
    *out = s;
    return 0;

err_after_open:
    sqlite3_close(s->db);
    free(s);
    return -1;
}

static void forget_stmts(struct store *s)
{
    for (int i = 0; i < STMT_CACHE_SIZE; i++) {
        sqlite3_finalize(s->stmts[i].st);
        free(s->stmts[i].sql);
        s->stmts[i] = (struct cached_stmt){0};
    }
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    forget_stmts(s);
    sqlite3_close(s->db);
    free(s->watch_node);
    json_decref(s->deleted);
    json_decref(s->changed_tasks);
    json_decref(s->parsed_jobs);
    json_decref(s->node_tasks_changed_at);
    free(s);
}

void store_result_free(struct store_result *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->ngroups; i++)
        free(r->msg[i]);
    free(r->msg);
    free(r->status);
    memset(r, 0, sizeof(*r));
}

static int exec_sql(sqlite3 *db, const char *sql, struct serr *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        serr_set(err, SERR_INTERNAL, "%s", msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *prepared(struct store *s, const char *sql, const char *const *params);
static void finished(struct store *s, sqlite3_stmt *st);

/* Runs a statement with text parameters (NULL terminated) that returns no
 * rows; kept prepared as the reads' are (the same few writes every entry). */
static int run_stmt(struct store *s, const char *sql, const char *const *params, struct serr *err)
{
    sqlite3_stmt *st = prepared(s, sql, params);
    if (st == NULL)
        return serr_set(err, SERR_INTERNAL, "prepare: %s", sqlite3_errmsg(s->db));
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(s->db);
    if (rc == SQLITE_CONSTRAINT)
        serr_set(err, SERR_CONFLICT, "conflict: %s", sqlite3_errmsg(s->db));
    else if (rc != SQLITE_DONE)
        serr_set(err, SERR_INTERNAL, "%s", sqlite3_errmsg(s->db));
    finished(s, st);
    return rc == SQLITE_DONE ? changes : -1;
}

static const char *name_column(const char *table);

/* Refuses obj when another object of the table has its name in any case. */
static int check_name_free(sqlite3 *db, const char *table, json_t *obj, struct serr *err)
{
    const char *col = name_column(table);
    const char *name = json_string_value(json_object_get(obj, col ? col : "name"));
    if (col == NULL || name == NULL)
        return serr_set(err, SERR_INVALID, "put: unique_name on %s without a name", table);
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE %s = ?1 COLLATE NOCASE AND id != ?2 LIMIT 1",
             col, table, col);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return serr_set(err, SERR_INTERNAL, "prepare: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, json_string_value(json_object_get(obj, "id")), -1, SQLITE_TRANSIENT);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = serr_set(err, SERR_CONFLICT, "name %s is already taken by %s (names are unique "
                      "regardless of case)", name, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc;
}

static int apply_put(struct store *s, const char *table, json_t *obj, bool unique_name,
                     struct serr *err)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    if (!json_is_object(obj) || id == NULL)
        return serr_set(err, SERR_INVALID, "put: object without id");
    if (unique_name && check_name_free(s->db, table, obj, err) < 0)
        return -1;
    char *data = json_dumps(obj, JSON_COMPACT);
    char sql[160];
    snprintf(sql, sizeof(sql), "INSERT INTO %s (id, data) VALUES (?, ?) "
             "ON CONFLICT(id) DO UPDATE SET data = excluded.data", table);
    const char *params[] = {id, data, NULL};
    int rc = run_stmt(s, sql, params, err);
    free(data);
    return rc < 0 ? -1 : 0;
}

static int apply_merge(struct store *s, const char *table, const char *id, json_t *fields,
                       struct serr *err)
{
    if (id == NULL || !json_is_object(fields))
        return serr_set(err, SERR_INVALID, "merge: missing id or fields");
    char *patch = json_dumps(fields, JSON_COMPACT);
    char sql[128];
    snprintf(sql, sizeof(sql), "UPDATE %s SET data = json_patch(data, ?) WHERE id = ?", table);
    const char *params[] = {patch, id, NULL};
    int rc = run_stmt(s, sql, params, err);
    free(patch);
    if (rc == 0)
        return serr_set(err, SERR_NOT_FOUND, "no such object in %s: %s", table, id);
    return rc < 0 ? -1 : 0;
}

static int apply_del(struct store *s, const char *table, const char *id, struct serr *err)
{
    if (id == NULL)
        return serr_set(err, SERR_INVALID, "del: missing id");
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", table);
    const char *params[] = {id, NULL};
    return run_stmt(s, sql, params, err) < 0 ? -1 : 0;
}

void store_ring_id(long long at, char out[STORE_RING_ID_LEN])
{
    snprintf(out, STORE_RING_ID_LEN, "%016lld", at);
}

/* The ring's rows older than `keep_from` (a time, ms) go, then all but the
 * newest `keep_max`. Both come from the op: the store reads no clock. */
static int prune_ring(struct store *s, const char *table, json_t *op, struct serr *err)
{
    json_t *keep_from = json_object_get(op, "keep_from");
    json_t *keep_max = json_object_get(op, "keep_max");
    if ((keep_from && !json_is_integer(keep_from)) ||
        (keep_max && (!json_is_integer(keep_max) || json_integer_value(keep_max) < 1)))
        return serr_set(err, SERR_INVALID, "append: keep_from and keep_max must be integers "
                        "(keep_max above zero)");
    char sql[160], bound[STORE_RING_ID_LEN], count[24];
    if (keep_from) {
        store_ring_id(json_integer_value(keep_from), bound);
        snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id < ?", table);
        const char *params[] = {bound, NULL};
        if (run_stmt(s, sql, params, err) < 0)
            return -1;
    }
    if (keep_max) {
        snprintf(count, sizeof(count), "%lld", (long long)json_integer_value(keep_max));
        snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id NOT IN "
                 "(SELECT id FROM %s ORDER BY id DESC LIMIT CAST(? AS INTEGER))", table, table);
        const char *params[] = {count, NULL};
        if (run_stmt(s, sql, params, err) < 0)
            return -1;
    }
    return 0;
}

static int apply_append(struct store *s, const struct table_def *t, json_t *op, struct serr *err)
{
    json_t *obj = json_object_get(op, "obj");
    json_t *at = json_object_get(obj, "at");
    if (!table_is_ring(t))
        return serr_set(err, SERR_INVALID, "append: %s is not a ring table", t->name);
    if (!json_is_integer(at) || json_integer_value(at) < 0)
        return serr_set(err, SERR_INVALID, "append: object without a time (at)");
    char id[STORE_RING_ID_LEN];
    store_ring_id(json_integer_value(at), id);
    const char *given = json_string_value(json_object_get(obj, "id"));
    if (given == NULL || strcmp(given, id) != 0)
        return serr_set(err, SERR_INVALID, "append: id must be %s (the time, padded)", id);
    if (apply_put(s, t->name, obj, false, err) < 0)
        return -1;
    return prune_ring(s, t->name, op, err);
}

/* A task of the watched node leaves it (deleted: `new_node` NULL, or put or
 * merged with another node): its id is kept for store_take_deleted_tasks.
 * One look-up by id, and only while a node is watched. */
/* A task's row before an op on it, read once for the notes the op makes
 * (the watched node, the nodes' tasks, the network). */
struct task_before {
    bool known;    /* looked up: an id, a statement */
    bool exists;   /* the row is there */
    bool job;      /* a batch job's task (job_id set) */
    char *node_id; /* its node (NULL: none); owned */
};

static void task_before_read(struct store *s, const char *id, struct task_before *b)
{
    *b = (struct task_before){0};
    const char *params[] = {id, NULL};
    sqlite3_stmt *st = id ? prepared(s,
                                     "SELECT node_id, json_extract(data, '$.job_id') IS NOT NULL "
                                     "FROM tasks WHERE id = ?",
                                     params)
                          : NULL;
    b->known = st != NULL;
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *node = (const char *)sqlite3_column_text(st, 0);
        b->exists = true;
        b->node_id = node ? xstrdup(node) : NULL;
        b->job = sqlite3_column_int64(st, 1) != 0;
    }
    finished(s, st);
}

static void note_task_leaving(struct store *s, const char *id, json_t *new_node, bool deleted,
                              const struct task_before *b)
{
    if (s->deleted == NULL || id == NULL)
        return;
    if (!deleted && json_is_string(new_node) &&
        strcmp(json_string_value(new_node), s->watch_node) == 0)
        return; /* stays on the node (or comes to it) */
    if (b->node_id == NULL || strcmp(b->node_id, s->watch_node) != 0)
        return;
    if (json_array_size(s->deleted) >= NOTED_TASKS_MAX) {
        json_decref(s->deleted); /* nobody takes them: a full sweep then */
        s->deleted = NULL;
    } else {
        json_array_append_new(s->deleted, json_string(id));
    }
}

/* Before a task's put, merge or del: whether it leaves the watched node. */
static void watch_task_op(struct store *s, const char *kind, const char *id, json_t *op,
                          const struct task_before *b)
{
    if (s->deleted == NULL)
        return;
    if (strcmp(kind, "del") == 0) {
        note_task_leaving(s, id, NULL, true, b);
    } else if (strcmp(kind, "put") == 0) {
        json_t *obj = json_object_get(op, "obj");
        note_task_leaving(s, json_string_value(json_object_get(obj, "id")),
                          json_object_get(obj, "node_id"), false, b);
    } else if (strcmp(kind, "merge") == 0) {
        json_t *fields = json_object_get(op, "fields");
        json_t *node = json_object_get(fields, "node_id");
        if (node) /* a merge without node_id keeps the task where it is */
            note_task_leaving(s, id, node, false, b);
    }
}

/* `node_id`'s tasks changed by op number `at` (node_id may be NULL: none). */
static void note_node_tasks(struct store *s, const char *node_id, unsigned long long at)
{
    if (node_id == NULL)
        return;
    json_t *was = json_object_get(s->node_tasks_changed_at, node_id);
    if (was)
        json_integer_set(was, (json_int_t)at);
    else
        json_object_set_new(s->node_tasks_changed_at, node_id, json_integer((json_int_t)at));
}

/* Before a task's put, merge or del numbered `at`: notes the nodes whose
 * task rows it changes: the one its row is on (one look-up by id) and the
 * one it names. */
static void note_task_nodes(struct store *s, const char *kind, json_t *op,
                            const struct task_before *b, unsigned long long at)
{
    json_t *obj = json_object_get(op, strcmp(kind, "put") == 0 ? "obj" : "fields");
    note_node_tasks(s, json_string_value(json_object_get(obj, "node_id")), at);
    note_node_tasks(s, b->node_id, at);
}

/* The tasks of job `job_id`, noted as changed: whether its ended ones are
 * among those a pass reads depends on the job's state
 * (store_tasks_but_ended_jobs). */
static void note_job_tasks(struct store *s, const char *job_id)
{
    const char *params[] = {job_id, NULL};
    sqlite3_stmt *st =
        prepared(s, "SELECT id FROM tasks WHERE json_extract(data, '$.job_id') = ?", params);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (id)
            json_object_set_new(s->changed_tasks, id, json_true());
    }
    finished(s, st);
}

/* Notes a task's put, merge or del for store_take_changed_tasks, and a
 * job's tasks on a change of the job (a job put, merged or deleted). A
 * failed group's ids stay noted: reading a task again that did not change
 * is harmless. */
static void note_change(struct store *s, const struct table_def *t, const char *id, json_t *op)
{
    if (s->changed_tasks == NULL)
        return;
    if (json_object_size(s->changed_tasks) >= NOTED_TASKS_MAX) {
        json_decref(s->changed_tasks);
        s->changed_tasks = NULL;
        return;
    }
    bool job = strcmp(t->name, "jobs") == 0;
    if (!job && strcmp(t->name, "tasks") != 0)
        return;
    if (id == NULL) /* a put names its row in its object */
        id = json_string_value(json_object_get(json_object_get(op, "obj"), "id"));
    if (id && job)
        note_job_tasks(s, id);
    else if (id)
        json_object_set_new(s->changed_tasks, id, json_true());
}

/* A job's row changes (or may: a group rolled back): its parse is dropped. */
static void forget_parsed_job(struct store *s, const char *id)
{
    if (id)
        json_object_del(s->parsed_jobs, id);
    else
        json_object_clear(s->parsed_jobs);
}

/* Whether task `id` is absent or a batch job's (job_id set): the mesh
 * lists services' tasks only. One look-up by id. */
static bool task_absent_or_job(const struct task_before *b)
{
    return b->known && (!b->exists || b->job);
}

/* Whether an op may change what a node's network is made from (the nodes,
 * the mesh: networks, services and their tasks, the meta row "cluster"):
 * any op on those tables but one on another meta row, or on a batch job's
 * task that leaves it one of the same job and service_id. */
static bool op_changes_net(const char *table, const char *kind, const char *id, json_t *op,
                           const struct task_before *b)
{
    static const char *const net_tables[] = {"nodes", "networks", "services", NULL};
    json_t *obj = json_object_get(op, "obj");
    if (str_in_list(table, net_tables))
        return true;
    if (strcmp(table, "meta") == 0) {
        const char *row = id ? id : jstr(obj, "id");
        return row == NULL || strcmp(row, "cluster") == 0;
    }
    if (strcmp(table, "tasks") != 0)
        return false;
    if (strcmp(kind, "put") == 0)
        return jstr(obj, "job_id") == NULL || !task_absent_or_job(b);
    json_t *fields = json_object_get(op, "fields");
    if (strcmp(kind, "merge") == 0 &&
        (json_object_get(fields, "job_id") || json_object_get(fields, "service_id")))
        return true; /* the task may become a service's */
    return !task_absent_or_job(b);
}

static int apply_op(struct store *s, json_t *op, struct serr *err)
{
    const char *kind = json_string_value(json_object_get(op, "op"));
    const struct table_def *t = table_lookup(json_string_value(json_object_get(op, "table")));
    if (kind == NULL || t == NULL)
        return serr_set(err, SERR_INVALID, "op without a known kind or table");
    const char *id = json_string_value(json_object_get(op, "id"));
    unsigned long long at = s->table_changes[t - tables] = ++changes_seq;
    struct task_before before = {0};
    if (strcmp(t->name, "tasks") == 0) { /* a put names its row in its object */
        task_before_read(s, id ? id : jstr(json_object_get(op, "obj"), "id"), &before);
        watch_task_op(s, kind, id, op, &before);
        note_task_nodes(s, kind, op, &before, at);
    }
    note_change(s, t, id, op);
    s->plan_changes += store_op_changes_plan(op);
    s->net_changes += op_changes_net(t->name, kind, id, op, &before);
    free(before.node_id);
    if (strcmp(t->name, "jobs") == 0) /* a put names its row in its object */
        forget_parsed_job(s, id ? id : jstr(json_object_get(op, "obj"), "id"));
    if (strcmp(kind, "put") == 0)
        return apply_put(s, t->name, json_object_get(op, "obj"),
                         json_is_true(json_object_get(op, "unique_name")), err);
    if (strcmp(kind, "merge") == 0)
        return apply_merge(s, t->name, id, json_object_get(op, "fields"), err);
    if (strcmp(kind, "del") == 0)
        return apply_del(s, t->name, id, err);
    if (strcmp(kind, "append") == 0)
        return apply_append(s, t, op, err);
    return serr_set(err, SERR_INVALID, "unknown op '%s'", kind);
}

static int apply_group(struct store *s, json_t *group, struct serr *err)
{
    sqlite3 *db = s->db;
    if (!json_is_array(group))
        return serr_set(err, SERR_INVALID, "group is not an array");
    if (exec_sql(db, "SAVEPOINT grp", err) < 0)
        return -1;
    size_t i, kept = json_array_size(s->deleted);
    json_t *op;
    json_array_foreach(group, i, op)
    {
        if (apply_op(s, op, err) < 0) {
            exec_sql(db, "ROLLBACK TO grp; RELEASE grp", NULL);
            s->plan_changes += PLAN_CHANGES_UNKNOWN; /* which of its ops stayed: not known */
            s->net_changes++;
            /* the group's deletions did not happen */
            while (s->deleted && json_array_size(s->deleted) > kept)
                json_array_remove(s->deleted, json_array_size(s->deleted) - 1);
            return -1;
        }
    }
    return exec_sql(db, "RELEASE grp", err);
}

int store_apply_parsed(struct store *s, json_t *entry, struct store_result *res,
                       struct serr *err)
{
    json_t *groups = json_object_get(entry, "groups");
    if (!json_is_array(groups))
        return serr_set(err, SERR_INVALID, "raft entry is not a group list");
    size_t n = json_array_size(groups);
    /* one transaction for the entry (each group a savepoint in it): not one
     * per group */
    bool in_tx = exec_sql(s->db, "BEGIN", NULL) == 0;
    if (res) {
        res->ngroups = (int)n;
        res->status = xcalloc(n, sizeof(int));
        res->msg = xcalloc(n, sizeof(char *));
    }
    for (size_t i = 0; i < n; i++) {
        struct serr gerr = {0};
        int rc = apply_group(s, json_array_get(groups, i), &gerr);
        if (res) {
            res->status[i] = rc < 0 ? -(int)gerr.kind - 1 : 0;
            res->msg[i] = rc < 0 ? xstrdup(gerr.msg) : NULL;
        }
    }
    if (in_tx)
        exec_sql(s->db, "COMMIT", NULL);
    s->version++;
    return 0;
}

int store_apply(struct store *s, const char *entry, size_t len, struct store_result *res,
                struct serr *err)
{
    json_t *root = json_loadb(entry, len, 0, NULL);
    int rc = store_apply_parsed(s, root, res, err);
    json_decref(root);
    return rc;
}

int store_snapshot(struct store *s, void **buf, size_t *len, struct serr *err)
{
    sqlite3_int64 size = 0;
    unsigned char *data = sqlite3_serialize(s->db, "main", &size, 0);
    if (data == NULL)
        return serr_set(err, SERR_INTERNAL, "sqlite3_serialize failed");
    *buf = xmalloc((size_t)size);
    memcpy(*buf, data, (size_t)size);
    *len = (size_t)size;
    sqlite3_free(data);
    return 0;
}

int store_restore(struct store *s, const void *buf, size_t len, struct serr *err)
{
    unsigned char *copy = sqlite3_malloc64(len);
    if (copy == NULL)
        return serr_set(err, SERR_INTERNAL, "out of memory restoring a snapshot");
    memcpy(copy, buf, len);
    forget_stmts(s); /* none is running: the restore is applied between reads */
    int rc = sqlite3_deserialize(s->db, "main", copy, (sqlite3_int64)len, (sqlite3_int64)len,
                                 SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
    if (rc != SQLITE_OK)
        return serr_set(err, SERR_INTERNAL, "sqlite3_deserialize: %s", sqlite3_errstr(rc));
    char *msg = NULL;
    if (sqlite3_exec(s->db, schema_additions, NULL, NULL, &msg) != SQLITE_OK) {
        serr_set(err, SERR_INTERNAL, "sqlite schema: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    json_decref(s->deleted); /* the deletions a snapshot stands for are not known */
    s->deleted = NULL;
    json_decref(s->changed_tasks); /* nor its changes */
    s->changed_tasks = NULL;
    s->reset_at = ++changes_seq; /* nor which tables and nodes' tasks changed */
    json_object_clear(s->node_tasks_changed_at);
    json_object_clear(s->parsed_jobs);
    s->plan_changes += PLAN_CHANGES_UNKNOWN;
    s->net_changes++;
    s->version++;
    return 0;
}

/* Keeps `st` (prepared from `sql`, handed out) in `slot`, or when that is
 * -1 (all used) in the next one not handed out, in turn; else not at all. */
static void keep_stmt(struct store *s, int slot, const char *sql, sqlite3_stmt *st)
{
    for (int tries = 0; slot < 0 && tries < STMT_CACHE_SIZE; tries++) {
        struct cached_stmt *c = &s->stmts[s->stmt_next];
        s->stmt_next = (s->stmt_next + 1) % STMT_CACHE_SIZE;
        if (!c->busy) {
            sqlite3_finalize(c->st);
            free(c->sql);
            slot = (int)(c - s->stmts);
        }
    }
    if (slot >= 0)
        s->stmts[slot] = (struct cached_stmt){xstrdup(sql), st, true};
}

/* `sql` prepared with its text parameters bound (params NULL terminated, or
 * NULL: none), or NULL when it does not prepare; given back with finished().
 * A statement of the same SQL prepared before and not in use is reused. */
static sqlite3_stmt *prepared(struct store *s, const char *sql, const char *const *params)
{
    sqlite3_stmt *st = NULL;
    int free_slot = -1;
    for (int i = 0; i < STMT_CACHE_SIZE && st == NULL; i++) {
        struct cached_stmt *c = &s->stmts[i];
        if (c->sql && !c->busy && strcmp(c->sql, sql) == 0)
            st = c->st, c->busy = true;
        else if (c->sql == NULL && free_slot < 0)
            free_slot = i;
    }
    if (st == NULL) {
        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
            return NULL;
        keep_stmt(s, free_slot, sql, st);
    }
    for (int i = 0; params && params[i]; i++)
        sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_TRANSIENT);
    return st;
}

/* Ends a read of a statement from prepared(): kept ready for the next. */
static void finished(struct store *s, sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < STMT_CACHE_SIZE; i++) {
        if (s->stmts[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            s->stmts[i].busy = false;
            return;
        }
    }
    sqlite3_finalize(st);
}

json_t *store_take_deleted_tasks(struct store *s, const char *node_id)
{
    json_t *taken = NULL;
    if (s->watch_node && strcmp(s->watch_node, node_id) == 0) {
        taken = s->deleted;
    } else {
        free(s->watch_node);
        s->watch_node = xstrdup(node_id);
        json_decref(s->deleted);
    }
    s->deleted = json_array();
    return taken;
}

json_t *store_take_changed_tasks(struct store *s)
{
    json_t *taken = s->changed_tasks;
    s->changed_tasks = json_object();
    return taken;
}

/* The later of two change numbers. */
static unsigned long long later(unsigned long long a, unsigned long long b)
{
    return a > b ? a : b;
}

unsigned long long store_table_changes(struct store *s, const char *table)
{
    const struct table_def *t = table_lookup(table);
    return t ? later(s->table_changes[t - tables], s->reset_at) : 0;
}

unsigned long long store_changes_now(void)
{
    return changes_seq;
}

unsigned long long store_node_tasks_changed_at(struct store *s, const char *node_id)
{
    json_t *at = json_object_get(s->node_tasks_changed_at, node_id);
    return later((unsigned long long)json_integer_value(at), s->reset_at);
}

void store_forget_changed_tasks(struct store *s)
{
    json_decref(s->changed_tasks);
    s->changed_tasks = NULL;
}

/* Collects the data column of a query's rows into a JSON array. */
static json_t *query_rows(struct store *s, const char *sql, const char *const *params)
{
    json_t *out = json_array();
    sqlite3_stmt *st = prepared(s, sql, params);
    if (st == NULL)
        return out;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *data = (const char *)sqlite3_column_text(st, 0);
        json_t *obj = data ? json_loads(data, 0, NULL) : NULL;
        if (obj)
            json_array_append_new(out, obj);
    }
    finished(s, st);
    return out;
}

static json_t *first_or_null(json_t *rows)
{
    json_t *one = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return one;
}

json_t *store_get(struct store *s, const char *table, const char *id)
{
    if (table_lookup(table) == NULL || id == NULL)
        return NULL;
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT data FROM %s WHERE id = ?", table);
    const char *params[] = {id, NULL};
    return first_or_null(query_rows(s, sql, params));
}

json_t *store_list(struct store *s, const char *table, const char *order_by)
{
    if (table_lookup(table) == NULL)
        return json_array();
    char *sql = xasprintf("SELECT data FROM %s ORDER BY %s", table, order_by ? order_by : "id");
    json_t *rows = query_rows(s, sql, NULL);
    free(sql);
    return rows;
}

/* "?FIRST, ?FIRST+1, ..." for `values` into sql (false when there are none or
 * more than 16). */
static bool param_list(char *sql, size_t size, int first, const char *const *values)
{
    size_t used = 0;
    sql[0] = 0;
    for (int i = 0; values[i]; i++) {
        if (i >= 16 || used + 8 >= size)
            return false;
        used += (size_t)snprintf(sql + used, size - used, "%s?%d", i ? ", " : "", first + i);
    }
    return values[0] != NULL;
}

/* "COLUMN IN (?1, ?2, ...)" for `values` into sql: false when `table` has no
 * key `column`, or there are no values or too many. */
static bool in_clause(char *sql, size_t size, const char *table, const char *column,
                      const char *const *values)
{
    const struct table_def *t = table_lookup(table);
    char list[200];
    if (t == NULL || !table_has_key(t, column) || !param_list(list, sizeof(list), 1, values))
        return false;
    int n = snprintf(sql, size, "%s IN (%s)", column, list);
    return n > 0 && (size_t)n < size;
}

json_t *store_list_in(struct store *s, const char *table, const char *column,
                      const char *const *values, const char *order_by)
{
    char in[200];
    if (!in_clause(in, sizeof(in), table, column, values))
        return json_array();
    char *sql = xasprintf("SELECT data FROM %s WHERE %s ORDER BY %s", table, in,
                          order_by ? order_by : "id");
    json_t *rows = query_rows(s, sql, values);
    free(sql);
    return rows;
}

long long store_count_in(struct store *s, const char *table, const char *column,
                         const char *const *values)
{
    char in[200], sql[300];
    if (!in_clause(in, sizeof(in), table, column, values))
        return 0;
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE %s", table, in);
    sqlite3_stmt *st = prepared(s, sql, values);
    long long n = 0;
    if (st == NULL)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    finished(s, st);
    return n;
}

/* Into sql: "SELECT COLS FROM TABLE WHERE COLUMN = ?1 ORDER BY id", with
 * " AND json_extract(data, '$.FIELD') = ?2" when `field` is not NULL; false
 * when `table` has no key `column`, or `field` is not a plain name (it goes
 * into the SQL). */
static bool where_sql(char *sql, size_t size, const char *cols, const char *table,
                      const char *column, const char *field)
{
    const struct table_def *t = table_lookup(table);
    if (t == NULL || !table_has_key(t, column) ||
        (field && field[strspn(field, "abcdefghijklmnopqrstuvwxyz_")]))
        return false;
    char cond[96] = "";
    if (field)
        snprintf(cond, sizeof(cond), " AND json_extract(data, '$.%s') = ?2", field);
    int n = snprintf(sql, size, "SELECT %s FROM %s WHERE %s = ?1%s ORDER BY id", cols, table,
                     column, cond);
    return n > 0 && (size_t)n < size;
}

/* Rows where key `column` is `value` and, when `field` is not NULL, the
 * object's top-level `field` is the string field_value. */
static json_t *list_where(struct store *s, const char *table, const char *column,
                          const char *value, const char *field, const char *field_value)
{
    char sql[200];
    if (!where_sql(sql, sizeof(sql), "data", table, column, field))
        return json_array();
    const char *params[] = {value, field_value, NULL};
    return query_rows(s, sql, params);
}

json_t *store_list_where(struct store *s, const char *table, const char *column, const char *value)
{
    return list_where(s, table, column, value, NULL, NULL);
}

void store_each_where(struct store *s, const char *table, const char *column, const char *value,
                      store_row_cb fn, void *arg)
{
    char sql[200];
    if (!where_sql(sql, sizeof(sql), "id, data", table, column, NULL))
        return;
    const char *params[] = {value, NULL};
    sqlite3_stmt *st = prepared(s, sql, params);
    if (st == NULL)
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *data = (const char *)sqlite3_column_text(st, 1);
        if (id && data)
            fn(arg, id, data, (size_t)sqlite3_column_bytes(st, 1));
    }
    finished(s, st);
}

json_t *store_list_where_field(struct store *s, const char *table, const char *column,
                              const char *value, const char *field, const char *field_value)
{
    return list_where(s, table, column, value, field, field_value);
}

/* params = a then b (a has na values, b NULL terminated), into out[34]. */
static void params_of(const char **out, const char *const *a, int na, const char *const *b)
{
    int n = 0;
    for (int i = 0; i < na; i++)
        out[n++] = a[i];
    for (int i = 0; b && b[i]; i++)
        out[n++] = b[i];
    out[n] = NULL;
}

/* Appends to `out` a node's ended tasks as {"id", "state", "desired_state"}
 * from `sql`'s three columns (read from the index tasks_node_state alone: no
 * row's JSON is parsed). */
static void append_ended_tasks(struct store *s, json_t *out, const char *sql,
                               const char *const *params)
{
    sqlite3_stmt *st = prepared(s, sql, params);
    if (st == NULL)
        return;
    static const char *const fields[] = {"id", "state", "desired_state"};
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *task = json_object();
        for (int col = 0; col < 3; col++) {
            const char *v = (const char *)sqlite3_column_text(st, col);
            if (v)
                json_object_set_new(task, fields[col], json_string(v));
        }
        json_array_append_new(out, task);
    }
    finished(s, st);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The query (new string) of node ?1's tasks going on, by id: state NULL or
 * none of the `nended` ended states ?2, ?3... (bound in ascending order). A
 * seek of the index tasks_node_state for each range of states between the
 * ended ones (a NOT IN would walk the node's whole history in the index, an
 * entry per ended task, on every sync). */
static char *tasks_going_on_sql(int nended)
{
#define NODE_STATE "SELECT id, data FROM tasks WHERE node_id = ?1 AND "
#define STATE "json_extract(data, '$.state')"
    char *sql = xstrdup(NODE_STATE STATE " IS NULL");
    for (int i = 0; i <= nended; i++) {
        char range[128];
        if (i == 0)
            snprintf(range, sizeof(range), STATE " < ?2");
        else if (i == nended)
            snprintf(range, sizeof(range), STATE " > ?%d", i + 1);
        else
            snprintf(range, sizeof(range), STATE " > ?%d AND " STATE " < ?%d", i + 1, i + 2);
        char *more = xasprintf("%s UNION ALL " NODE_STATE "%s", sql, range);
        free(sql);
        sql = more;
    }
#undef NODE_STATE
#undef STATE
    char *ordered = xasprintf("SELECT data FROM (%s) ORDER BY id", sql);
    free(sql);
    return ordered;
}

/* Appends node ?1's ended tasks (states `ended`, a list of placeholders of
 * `params`), only those among `held` when not NULL (then bound after the
 * last of `params`, which has room for it). */
static void append_node_ended_tasks(struct store *s, json_t *rows, const char *ended,
                                    const char **params, json_t *held)
{
    int nparams = 0;
    while (params[nparams])
        nparams++;
    char *held_text = held ? json_dumps(held, JSON_COMPACT) : NULL;
    char only_held[64] = "";
    if (held_text) { /* by id (the primary key, CROSS JOIN: in this order): the cost
                      * follows `held`, not the history */
        params[nparams] = held_text;
        params[nparams + 1] = NULL;
        snprintf(only_held, sizeof(only_held), "json_each(?%d) AS h CROSS JOIN ", nparams + 1);
    }
    char *sql = xasprintf("SELECT tasks.id, json_extract(data, '$.state'),"
                          " json_extract(data, '$.desired_state') FROM %stasks WHERE %snode_id = ?1"
                          " AND json_extract(data, '$.state') IN (%s)",
                          only_held, held_text ? "tasks.id = h.value AND " : "", ended);
    append_ended_tasks(s, rows, sql, params);
    free(sql);
    free(held_text);
}

json_t *store_node_tasks(struct store *s, const char *node_id, const char *const *ended_states,
                         json_t *held)
{
    char ended[200];
    if (!param_list(ended, sizeof(ended), 2, ended_states))
        return store_list_where(s, "tasks", "node_id", node_id);
    const char *params[35]; /* node_id, up to 16 states, held, NULL */
    params_of(params, &node_id, 1, ended_states);
    int nended = 0;
    while (params[1 + nended])
        nended++;
    qsort(params + 1, (size_t)nended, sizeof(params[0]), cmp_strp); /* ?2.. in order */
    char *sql = tasks_going_on_sql(nended);
    json_t *rows = query_rows(s, sql, params);
    free(sql);
    append_node_ended_tasks(s, rows, ended, params, held);
    return rows;
}

/* A task's JSON with its container spec cut to its image_id. */
#define TASK_CONTAINER_CUT                                                                      \
    "CASE WHEN json_type(data, '$.container') IS NULL THEN data"                               \
    " ELSE json_set(data, '$.container', json_object('image_id',"                             \
    " json_extract(data, '$.container.image_id'))) END"

/* The placeholders of the task states (from ?first) and, after them, of the
 * job states ("NULL" when none) of the two queries below; the number of task
 * states, or -1 when they do not fit. */
static int final_and_live(char *final, char *live, size_t size, int first,
                          const char *const *task_final, const char *const *job_live)
{
    if (!param_list(final, size, first, task_final))
        return -1;
    int nfinal = 0;
    while (task_final[nfinal])
        nfinal++;
    if (!param_list(live, size, nfinal + first, job_live))
        snprintf(live, size, "NULL");
    return nfinal;
}

json_t *store_tasks_but_ended_jobs(struct store *s, const char *const *task_final,
                                  const char *const *job_live)
{
    char final[200], live[200];
    int nfinal = final_and_live(final, live, sizeof(final), 1, task_final, job_live);
    if (nfinal < 0)
        return store_list(s, "tasks", NULL);
    /* three indexed parts (tasks_job, tasks_state, jobs_state then tasks_job), so
     * that the ended tasks of ended jobs are not read; `+j.id` (no affinity)
     * lets the expression index tasks_job be searched; the container spec cut
     * to its image_id by SQLite (the pass needs no more of it) */
    char *sql = xasprintf(
        "SELECT " TASK_CONTAINER_CUT " FROM tasks WHERE rowid IN"
        " (SELECT rowid FROM tasks WHERE json_extract(data, '$.job_id') IS NULL"
        " UNION SELECT rowid FROM tasks INDEXED BY tasks_state WHERE"
        " json_extract(data, '$.state') IS NULL OR json_extract(data, '$.state') NOT IN (%s)"
        " UNION SELECT t.rowid FROM jobs j CROSS JOIN tasks t"
        " WHERE j.state IN (%s) AND json_extract(t.data, '$.job_id') = +j.id)"
        " ORDER BY id",
        final, live);
    const char *params[34];
    params_of(params, task_final, nfinal, job_live);
    json_t *rows = query_rows(s, sql, params);
    free(sql);
    return rows;
}

json_t *store_tasks_but_ended_jobs_among(struct store *s, const char *const *task_final,
                                        const char *const *job_live, json_t *ids)
{
    char final[200], live[200];
    int nfinal = final_and_live(final, live, sizeof(final), 2, task_final, job_live);
    if (nfinal < 0)
        return json_array();
    /* the conditions of store_tasks_but_ended_jobs, on the rows of `ids` only */
    char *sql = xasprintf(
        "SELECT " TASK_CONTAINER_CUT " FROM tasks WHERE id IN (SELECT key FROM json_each(?1))"
        " AND (json_extract(data, '$.job_id') IS NULL OR json_extract(data, '$.state') IS NULL"
        " OR json_extract(data, '$.state') NOT IN (%s) OR EXISTS (SELECT 1 FROM jobs j"
        " WHERE j.state IN (%s) AND j.id = json_extract(tasks.data, '$.job_id')))"
        " ORDER BY id",
        final, live);
    char *id_text = json_dumps(ids, JSON_COMPACT);
    const char *params[35];
    params[0] = id_text;
    params_of(params + 1, task_final, nfinal, job_live);
    json_t *rows = query_rows(s, sql, params);
    free(id_text);
    free(sql);
    return rows;
}

/* A job's row, parsed once (parsed_jobs): a new reference to the cache's
 * object, which the caller shares until store_job_unshare. */
static json_t *parsed_job(struct store *s, const char *id, const char *data)
{
    json_t *parsed = json_object_get(s->parsed_jobs, id);
    if (parsed == NULL) {
        parsed = json_loads(data, 0, NULL);
        if (parsed == NULL)
            return NULL;
        if (json_object_size(s->parsed_jobs) >= PARSED_JOBS_MAX)
            json_object_clear(s->parsed_jobs);
        json_object_set_new(s->parsed_jobs, id, parsed);
    }
    return json_incref(parsed);
}

void store_job_unshare(struct store *s, json_t *job)
{
    const char *id = json_string_value(json_object_get(job, "id"));
    if (id && json_object_get(s->parsed_jobs, id) == job)
        json_object_del(s->parsed_jobs, id);
}

/* The jobs of a query of their id and data, but those whose id is a key of
 * `known` (may be NULL), shared with parsed_jobs (store_job_unshare). */
static json_t *job_rows(struct store *s, const char *sql, const char *const *params, json_t *known)
{
    json_t *out = json_array();
    sqlite3_stmt *st = prepared(s, sql, params);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *data = (const char *)sqlite3_column_text(st, 1);
        if (id == NULL || data == NULL || (known && json_object_get(known, id)))
            continue;
        json_t *job = parsed_job(s, id, data);
        if (job)
            json_array_append_new(out, job);
    }
    finished(s, st);
    return out;
}

json_t *store_jobs_queue_head(struct store *s, const char *state, bool besteffort,
                              long long limit, json_t *known)
{
    char n[24];
    snprintf(n, sizeof(n), "%lld", limit);
    const char *params[] = {state, n, NULL};
    /* the same expressions as the index jobs_queue: it gives the order */
    char *sql = xasprintf("SELECT id, data FROM jobs WHERE state = ?1 AND " JOB_QUEUE_RANK " %s 2"
                          " ORDER BY " JOB_QUEUE_RANK ", CAST(id AS INTEGER) LIMIT ?2",
                          besteffort ? "=" : "<");
    json_t *rows = job_rows(s, sql, params, known);
    free(sql);
    return rows;
}

json_t *store_jobs_message_not(struct store *s, const char *state, const char *message)
{
    const char *params[] = {state, message, NULL};
    /* a seek of the index jobs_message for each range but `message`: IS NOT
     * would walk every entry of the state (the whole queue behind) */
#define JOBS_MESSAGE_PART(cond)                                                                    \
    "SELECT id, data, CAST(id AS INTEGER) AS n FROM jobs WHERE state = ?1"                         \
    " AND json_extract(data, '$.message') " cond
    return job_rows(s,
                    JOBS_MESSAGE_PART("IS NULL") " UNION ALL " JOBS_MESSAGE_PART("< ?2")
                    " UNION ALL " JOBS_MESSAGE_PART("> ?2") " ORDER BY n",
                    params, NULL);
#undef JOBS_MESSAGE_PART
}

static const char *name_column(const char *table)
{
    if (strcmp(table, "services") == 0 || strcmp(table, "networks") == 0 ||
        strcmp(table, "secrets") == 0 || strcmp(table, "configs") == 0)
        return "name";
    if (strcmp(table, "nodes") == 0)
        return "hostname";
    return NULL;
}

json_t *store_find_name(struct store *s, const char *table, const char *name, struct serr *err)
{
    const char *col = table_lookup(table) ? name_column(table) : NULL;
    if (col == NULL || name == NULL)
        return NULL;
    json_t *exact = first_or_null(store_list_where(s, table, col, name));
    if (exact)
        return exact;
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT data FROM %s WHERE %s = ? COLLATE NOCASE LIMIT 2", table,
             col);
    const char *params[] = {name, NULL};
    json_t *rows = query_rows(s, sql, params);
    if (json_array_size(rows) > 1) { /* only in a store from before the rule */
        json_decref(rows);
        serr_set(err, SERR_CONFLICT, "'%s' matches more than one name in another case; give "
                 "the exact name or the ID", name);
        return NULL;
    }
    return first_or_null(rows);
}

json_t *store_find(struct store *s, const char *table, const char *ref, struct serr *err)
{
    if (table_lookup(table) == NULL || ref == NULL || *ref == '\0')
        return NULL;
    json_t *exact = store_get(s, table, ref);
    if (exact)
        return exact;
    const char *col = name_column(table);
    if (col) {
        struct serr name_err = {0};
        json_t *named = store_find_name(s, table, ref, &name_err);
        if (named)
            return named;
        if (name_err.msg[0]) {
            if (err)
                *err = name_err;
            return NULL;
        }
    }
    /* Unique prefix of the id; LIKE special characters in ref would widen the
     * match, so compare with substr instead. */
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT data FROM %s WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2",
             table);
    const char *params[] = {ref, NULL};
    json_t *rows = query_rows(s, sql, params);
    if (json_array_size(rows) > 1) {
        json_decref(rows);
        serr_set(err, SERR_CONFLICT, "'%s' matches more than one object; give more of the ID",
                 ref);
        return NULL;
    }
    return first_or_null(rows);
}

json_t *store_ring_member(struct store *s, const char *table, long long since, const char *key)
{
    const struct table_def *t = table_lookup(table);
    if (t == NULL || !table_is_ring(t) || key == NULL || strpbrk(key, "\"\\") != NULL)
        return json_array();
    char bound[STORE_RING_ID_LEN];
    store_ring_id(since < 0 ? 0 : since, bound);
    char *path = xasprintf("$.nodes.\"%s\"", key);
    char sql[320];
    snprintf(sql, sizeof(sql), "SELECT json_object('at', json_extract(data, '$.at'), 'step', "
             "json_extract(data, '$.step'), 'fields', json(json_extract(data, '$.fields')), "
             "'values', json(json_extract(data, ?2))) FROM %s "
             "WHERE id >= ?1 AND json_type(data, ?2) IS NOT NULL ORDER BY id", table);
    const char *params[] = {bound, path, NULL};
    json_t *rows = query_rows(s, sql, params);
    free(path);
    return rows;
}

unsigned long long store_version(struct store *s)
{
    return s->version;
}

/* A job's progress once started (the pass that started it planned for it):
 * a merge of only these fields, its state (if named) one of these. */
static bool job_progress_merge(json_t *fields)
{
    static const char *const keys[] = {"state", "message", "started_at", "scheduled_at",
                                       "assigned", "task_id", "kill_reason", NULL};
    static const char *const states[] = {"toLaunch", "Launching", "Running", "Finishing", NULL};
    const char *key, *state = jstr(fields, "state");
    json_t *val;
    json_object_foreach(fields, key, val)
    {
        if (!str_in_list(key, keys))
            return false;
    }
    return state == NULL || str_in_list(state, states);
}

bool store_op_changes_plan(json_t *op)
{
    if (jstr_is(op, "table", "nodes"))
        return true;
    if (!jstr_is(op, "table", "jobs"))
        return false;
    return !jstr_is(op, "op", "merge") || !job_progress_merge(json_object_get(op, "fields"));
}

unsigned long long store_plan_changes(struct store *s)
{
    return s->plan_changes;
}

unsigned long long store_net_changes(struct store *s)
{
    return s->net_changes;
}

json_t *op_put(const char *table, json_t *obj)
{
    return json_pack("{s:s, s:s, s:o}", "op", "put", "table", table, "obj", obj);
}

json_t *op_put_unique_name(const char *table, json_t *obj)
{
    json_t *op = op_put(table, obj);
    json_object_set_new(op, "unique_name", json_true());
    return op;
}

json_t *op_merge(const char *table, const char *id, json_t *fields)
{
    return json_pack("{s:s, s:s, s:s, s:o}", "op", "merge", "table", table, "id", id, "fields",
                     fields);
}

json_t *op_append(const char *table, json_t *obj, long long keep_from, long long keep_max)
{
    char id[STORE_RING_ID_LEN];
    store_ring_id(json_integer_value(json_object_get(obj, "at")), id);
    json_object_set_new(obj, "id", json_string(id));
    return json_pack("{s:s, s:s, s:o, s:I, s:I}", "op", "append", "table", table, "obj", obj,
                     "keep_from", (json_int_t)keep_from, "keep_max", (json_int_t)keep_max);
}

json_t *op_del(const char *table, const char *id)
{
    return json_pack("{s:s, s:s, s:s}", "op", "del", "table", table, "id", id);
}
