/* Cluster state: an in-memory SQLite database, changed only by applying
 * committed Raft entries (store_apply) and read by everyone on the loop.
 *
 * Every table holds JSON objects keyed by "id": nodes, images, tags (id =
 * "name:tag", image_id), services, tasks, meta (cluster-wide facts), secrets
 * and configs (manager/secret.h), alert_rules and alerts (manager/alert.h). Key
 * columns used in queries are generated from the JSON (service name, task
 * service_id / node_id / slot).
 *
 * An entry is {"groups": [[op, ...], ...]}; each group is applied atomically
 * (a savepoint) and succeeds or fails alone, so unrelated API writes can share
 * one entry. Ops:
 *   {"op":"put",   "table":T, "obj":{...,"id":ID}}     insert or replace
 *      with "unique_name":true: refused when another object has the name in
 *      any case (a flag, not a UNIQUE index: entries and snapshots written
 *      before the rule, which may hold such names, still apply)
 *   {"op":"merge", "table":T, "id":ID, "fields":{...}}  RFC 7396 merge patch
 *   {"op":"del",   "table":T, "id":ID}
 *   {"op":"append", "table":T, "obj":{...,"id":ID,"at":MS}, "keep_from":MS, "keep_max":N}
 *      only on a ring table (metrics_history): puts obj, whose id must be
 *      store_ring_id(at) (so ids sort by time), then deletes the rows older
 *      than keep_from and all but the newest keep_max (both optional): a
 *      bounded ring pruned by apply alone, from the op's numbers (no clock)
 * Ops carry every value (ids, times): applying is deterministic. */
#ifndef SHOAL_STORE_STORE_H
#define SHOAL_STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

struct store;

/* Result of applying one entry: one status per group (0 ok, -1 failed with msg). */
struct store_result {
    int ngroups;
    int *status;
    char **msg;
};
void store_result_free(struct store_result *r);

int store_open(struct store **out, struct serr *err);
void store_close(struct store *s);

/* Applies an entry. Returns -1 only when the entry itself is unreadable (then
 * nothing changed); group failures are reported in *res (caller frees with
 * store_result_free, res may be NULL). */
int store_apply(struct store *s, const char *entry, size_t len, struct store_result *res,
                struct serr *err);
/* store_apply of an entry already parsed (`entry` only read): the leader
 * applies its own entries so, not parsing again the text it dumped. */
int store_apply_parsed(struct store *s, json_t *entry, struct store_result *res,
                       struct serr *err);

/* Serialized database (sqlite3_serialize); caller frees with free(). */
int store_snapshot(struct store *s, void **buf, size_t *len, struct serr *err);
/* Replaces the whole state with a snapshot. `buf` is not taken. */
int store_restore(struct store *s, const void *buf, size_t len, struct serr *err);

/* Queries. Every json_t returned is a new reference owned by the caller. */
json_t *store_get(struct store *s, const char *table, const char *id);
/* All rows of a table, ordered by the given SQL ORDER BY clause (NULL: id). */
json_t *store_list(struct store *s, const char *table, const char *order_by);
/* Rows where a generated key column equals a value (column in the table's list). */
json_t *store_list_where(struct store *s, const char *table, const char *column, const char *value);
/* The rows of store_list_where (ordered by id), unparsed: fn(arg, id, the
 * JSON text, its length) for each, the text valid during the call only. */
typedef void (*store_row_cb)(void *arg, const char *id, const char *data, size_t len);
void store_each_where(struct store *s, const char *table, const char *column, const char *value,
                      store_row_cb fn, void *arg);
/* store_list_where, of the rows whose object's top-level `field` (a name
 * of lower-case letters and _) is the string field_value: SQLite checks it,
 * so the rows left out are never parsed into jansson. */
json_t *store_list_where_field(struct store *s, const char *table, const char *column,
                              const char *value, const char *field, const char *field_value);
/* A node's tasks (store_list_where on node_id), but each task that has ended
 * (state one of `ended_states`, at most 16) comes as only {"id", "state",
 * "desired_state"}: an agent's sync needs no more of its history (a batch
 * job's ended task stays desired running), and the full JSON of every ended
 * task is what it would cost. The tasks not ended come first (by id; a seek
 * of the index for each range of states between the ended ones: no index
 * entry of the history is walked), then the ended ones, read from an index
 * (no row of the history is parsed); with
 * `held` (an array of task ids), only the ended ones among those (looked up
 * by id: the cost follows `held`, not the history). */
json_t *store_node_tasks(struct store *s, const char *node_id, const char *const *ended_states,
                         json_t *held);
/* The ids of `node_id`'s tasks that left the store (deleted, or given to
 * another node) since the last call (new array), or NULL when not known: the
 * first call for this node (the store keeps those of one node only, from
 * then on), after a restored snapshot, or when more than 100,000 piled up
 * untaken. What an agent's log sweep needs (issue 14): a log goes with its
 * task, without reading the node's whole history at each sync. */
json_t *store_take_deleted_tasks(struct store *s, const char *node_id);
/* Every task but the ended ones of ended jobs (a job's task has `job_id`;
 * ended: its state is one of `task_final`, its job's state none of
 * `job_live`, or the job is gone), by id: what an orchestrator pass reads,
 * so that its cost does not grow with the job history. At most 16 of each.
 * A task's "container" (the spec its node runs, the bulk of its JSON) comes
 * as {"image_id"} only: SQLite cuts it, jansson never parses the rest (a
 * pass writes back only the fields it changes, and new tasks whole). */
json_t *store_tasks_but_ended_jobs(struct store *s, const char *const *task_final,
                                  const char *const *job_live);
/* Those of store_tasks_but_ended_jobs whose id is a key of the object
 * `ids`, by id: what changed of a pass's tasks (store_take_changed_tasks). */
json_t *store_tasks_but_ended_jobs_among(struct store *s, const char *const *task_final,
                                        const char *const *job_live, json_t *ids);
/* The ids of the tasks put, merged or deleted by the entries applied since
 * the last call, and of the tasks of the jobs put, merged or deleted (on a
 * job's state depends whether store_tasks_but_ended_jobs has its ended
 * tasks), as the keys of a new object, or NULL when not known: the first
 * call (the store notes changes from then on, for one reader: the leader's
 * orchestrator), after a restored snapshot, or when more than 100,000 piled
 * up. */
json_t *store_take_changed_tasks(struct store *s);
/* Stops noting them (the reader is gone: a leader no more). */
void store_forget_changed_tasks(struct store *s);
/* A job's place in the queue before its id, smallest first: 0 for queue
 * admin, 2 for besteffort, 1 for any other (or none): the order of
 * store_jobs_queue_head. */
int store_job_queue_rank(const char *queue);
/* Changes of the stores are numbered, in one sequence for the process (a
 * store made anew never gives a number of the one before); a store's
 * opening and each restored snapshot count as a change of every table and
 * of every node's tasks. The number of the last change so far: a reader
 * notes it as it reads, then a change number above it names a change
 * made since. */
unsigned long long store_changes_now(void);
/* The number of the last change of `table` (0 for a table unknown). */
unsigned long long store_table_changes(struct store *s, const char *table);
/* The number of the last op on a task that is or was on `node_id` (put,
 * merged or deleted there, or moved from or to it). */
unsigned long long store_node_tasks_changed_at(struct store *s, const char *node_id);
/* The first `limit` jobs in `state` of one class (besteffort: queue
 * besteffort; else every other queue) in queue order: queue admin first,
 * then by id as a number, but those whose id is a key of `known` (may be
 * NULL): they count in the limit, but are not parsed nor returned. Through
 * the index jobs_queue: the jobs behind are not read. */
json_t *store_jobs_queue_head(struct store *s, const char *state, bool besteffort,
                              long long limit, json_t *known);
/* The jobs in `state` whose "message" is not `message` (absent counts as
 * not), by id, through the index jobs_message. */
json_t *store_jobs_message_not(struct store *s, const char *state, const char *message);
/* The jobs these two return are shared with the store's cache of parsed
 * rows (a pass reads the same head again after each job's end; copying it
 * was most of the read): read only, but for one that store_job_unshare made
 * the caller's alone first (the store hands that object out no more; a no-op
 * for any other job). */
void store_job_unshare(struct store *s, json_t *job);
/* Rows where a generated key column is one of `values` (NULL terminated,
 * at most 16), ordered as store_list: with an index on the column, the cost
 * follows the rows found, not the table (jobs: the ones not ended). */
json_t *store_list_in(struct store *s, const char *table, const char *column,
                      const char *const *values, const char *order_by);
/* How many rows store_list_in would return (none parsed). */
long long store_count_in(struct store *s, const char *table, const char *column,
                         const char *const *values);
/* A service, task or node by full id, unique id prefix, or name (services:
 * name; nodes: hostname). NULL when absent; SERR_CONFLICT when ambiguous. */
json_t *store_find(struct store *s, const char *table, const char *ref, struct serr *err);
/* A service or network by name (nodes: hostname), names being unique
 * regardless of case: the exact name first, else the one name equal but for
 * case. NULL when absent; SERR_CONFLICT when two names differ from it only in
 * case (a store from before the rule). */
json_t *store_find_name(struct store *s, const char *table, const char *name, struct serr *err);
/* Index of the last applied entry (meta "applied"), for watchers. */
unsigned long long store_version(struct store *s);
/* Whether an op may change what the job queue's plan starts (a job put,
 * deleted, or merged otherwise than by its progress once started: toLaunch,
 * Launching, Running, Finishing, their message, times and kill reason; any
 * op on a node). */
bool store_op_changes_plan(json_t *op);
/* A count of the ops applied that change the plan (store_op_changes_plan),
 * raised by far more by a rolled-back group or a restored snapshot: a pass
 * that planned, knowing the ops it proposed, reuses its plan while the count
 * is what those ops make it (jobs_pass). */
unsigned long long store_plan_changes(struct store *s);
/* A count that moves with every applied op that may change what a node's
 * network is made from (nodes, networks, services, meta, and tasks but
 * batch jobs'), a rolled-back group or a restored snapshot: equal counts,
 * the same nodes, mesh and overlay (agent_net_sync). */
unsigned long long store_net_changes(struct store *s);

/* A ring row's id: its time (ms) zero-padded to 16 digits, so that ids
 * sort as times. */
#define STORE_RING_ID_LEN 24
void store_ring_id(long long at, char out[STORE_RING_ID_LEN]);
/* The rows of a ring table from time `since` (ms) on, oldest first, each
 * cut to {"at", "step", "fields", "values": the row's nodes[key]}; rows
 * without that key are left out. SQLite extracts the member, so a row of a
 * thousand nodes is not parsed into jansson to read one. */
json_t *store_ring_member(struct store *s, const char *table, long long since, const char *key);

/* Op builders (new references). */
json_t *op_put(const char *table, json_t *obj /* stolen */);
/* A put that the store refuses (SERR_CONFLICT) when another object of the
 * table has the same name in any case: creates racing cannot both pass. */
json_t *op_put_unique_name(const char *table, json_t *obj /* stolen */);
json_t *op_merge(const char *table, const char *id, json_t *fields /* stolen */);
json_t *op_del(const char *table, const char *id);
/* Appends obj (stolen; its "at" sets its id) to a ring table, keeping the
 * rows from keep_from (ms) on, at most keep_max of them. */
json_t *op_append(const char *table, json_t *obj, long long keep_from, long long keep_max);

#endif
