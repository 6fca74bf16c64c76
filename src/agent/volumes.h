/* Volume backups on a node (issue 16): archives of a volume's data in the
 * backup directory every node shares (daemon.json "backup-dir": NFS in real
 * life, a host directory in a dev cluster), restores from them.
 *
 * Layout: <backup_dir>/<NAME>/<NAME>-<YYYYmmddTHHMMSS.mmmZ>.tar.gz (pax tar,
 * gzip; entries "./PATH" relative to the volume's _data) and beside it
 * <archive>.sha256 ("<hex>  <archive name>\n", `sha256sum -c` reads it),
 * written last: an archive without one is incomplete and never listed. The
 * leader writes <backup_dir>/<NAME>/policy.json ({"schedule", "interval_s",
 * "keep", "hook"}) when a volume with a backup policy is created; the node
 * holding the volume reads it there (manager/volume.h).
 *
 * The functions of this first part block (file I/O, compression): call them
 * from libuv's thread pool. */
#ifndef SHOAL_AGENT_VOLUMES_H
#define SHOAL_AGENT_VOLUMES_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

struct agent;

/* Archives `data_dir` into a new backup of `name`, then removes the oldest
 * beyond `keep` (0: keeps all). 0 and *out = {"name", "path", "size",
 * "created_at" (ms), "sha256"} (new), or -1 with err (nothing left behind). */
int volumes_archive(const char *data_dir, const char *backup_dir, const char *name, int keep,
                    json_t **out, struct serr *err);
/* The complete backups of `name`, newest first, each as volumes_archive
 * describes it (new array; empty when none or no directory). */
json_t *volumes_list(const char *backup_dir, const char *name);
/* Recomputes the archive's sha256 and compares it with its .sha256 file. */
int volumes_verify(const char *archive, struct serr *err);
/* Extracts `archive` into a temporary directory beside <vol_dir>/_data
 * (gunzipped and hashed by a second thread while this one writes), checks
 * its sha256 against its .sha256 file, then renames it to _data. `replace`: an existing _data is
 * swapped out and removed; else one that appeared meanwhile (another task
 * restored it) wins and this extraction is dropped. On any failure nothing
 * changes in _data. */
int volumes_restore(const char *archive, const char *vol_dir, bool replace, struct serr *err);

/* The policy.json of `name` in the backup dir (new), NULL when none. */
json_t *volumes_policy(const char *backup_dir, const char *name);

/* ---- on the loop: by request (agent_volumes.c) ----
 * `cb` runs once, later, on the loop, with the result (borrowed: {"name",
 * "path", "size", "created_at", "sha256"} of the new backup; a restore's
 * {"name", "restored": path}) or NULL and why. -1: err says why at once and
 * `cb` is never called. */
typedef void (*agent_volume_cb)(void *arg, json_t *result, const struct serr *err);

/* Backs up the volume's data on this node now: its policy's hook first (in a
 * running container of this node that mounts it, `/bin/sh -c HOOK` through
 * crun exec; a failing hook fails the backup), its policy's retention after.
 * SERR_NOT_FOUND when this node has no data of it, SERR_INVALID without a
 * backup dir. */
int agent_volume_backup(struct agent *a, const char *name, agent_volume_cb cb, void *arg,
                        struct serr *err);
/* Replaces the volume's data on this node with backup `from` (its file
 * name; NULL: the newest), verified first. SERR_CONFLICT while a container
 * of this node uses it, SERR_NOT_FOUND when there is no such backup. */
int agent_volume_restore(struct agent *a, const char *name, const char *from, agent_volume_cb cb,
                         void *arg, struct serr *err);

/* The volumes of this node whose last scheduled backup failed (until a
 * backup of them succeeds, or no task of this node used them for a minute):
 * [{"volume", "error", "at": ms}] (new). The node's metrics samples carry it
 * to the leader, where backup-failing alert rules read it (manager/alert.h). */
json_t *agent_volumes_failures(struct agent *a);

#endif
