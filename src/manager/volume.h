/* Volumes (Docker's named volumes): records in the Raft-replicated store,
 * table "volumes", id = name. A record is {"id", "name", "labels": {k: v},
 * "created_at", "node_id": the node it was created on ("" when a service
 * made it before any task ran), "backup"?: its backup policy}. The policy is
 * also written, by the leader, to <backup-dir>/NAME/policy.json, where the
 * node holding the volume reads it (agent/volumes.h). The data itself is a directory on the node
 * that runs a task using the volume (<state_dir>/volumes/NAME/_data, made by
 * the agent on first use); this file only reads the store and builds ops. */
#ifndef SHOAL_MANAGER_VOLUME_H
#define SHOAL_MANAGER_VOLUME_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

struct store;

/* Docker's rule: letters, digits, '_', '.', '-', starting with a letter or
 * digit, at most 64 characters (the service mount check's rule too). */
bool volume_name_valid(const char *name);

#define VOLUME_KEEP_DEFAULT 7
#define VOLUME_KEEP_MAX 1000

/* A backup schedule: "daily", "hourly" or a duration of whole seconds, at
 * least 1 s ("10m", "90s": base/util.h parse_duration) -> seconds. */
int volume_schedule_seconds(const char *schedule, long long *seconds, struct serr *err);
/* A backup policy from {"schedule", "keep"?: 1..1000 (default 7), "hook"?:
 * a shell command run in the container using the volume first}: normalised
 * {"schedule", "interval_s", "keep", "hook"?} (new), NULL with err. */
json_t *volume_backup_policy(json_t *backup, struct serr *err);

/* A new record from an API body {"name", "labels"?: {k: v}, "backup"?:
 * policy (above)} made on node
 * `node_id`: validated, name free (SERR_CONFLICT otherwise). New reference,
 * NULL with err. */
json_t *volume_new(struct store *st, json_t *body, const char *node_id, struct serr *err);
/* The record named `name` (exact), new reference; NULL with SERR_NOT_FOUND. */
json_t *volume_get(struct store *st, const char *name, struct serr *err);

/* Names of the services whose spec mounts the volume (new array). */
json_t *volume_services(struct store *st, const char *name);
/* The tasks using it: those of its services not in a final state, each
 * {"id", "service", "node_id", "state"} (new array). */
json_t *volume_tasks(struct store *st, const char *name);

/* The id of the node holding the volume: that of a running task in `tasks`
 * (volume_tasks), else of any of them, else the record's node_id ("" when
 * none). Borrowed from rec or tasks. */
const char *volume_holder(json_t *rec, json_t *tasks);

/* Appends to `group` a put of a new record (node_id "") for each volume the
 * service spec mounts that the store lacks: a service creates its volumes as
 * Docker does. */
void volume_missing_ops(struct store *st, json_t *group, json_t *spec);

/* The records no service mounts ("dangling"), by name (new array). */
json_t *volume_dangling(struct store *st);

#endif
