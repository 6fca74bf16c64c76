/* Pieces of the container runtime shared between runtime*.c files; not a
 * public interface (see agent/runtime.h). */
#ifndef SHOAL_AGENT_RUNTIME_INTERNAL_H
#define SHOAL_AGENT_RUNTIME_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "agent/runtime.h"
#include "base/err.h"
#include "model/mount.h"

/* Where the static init appears inside every container that asks for it. */
#define RUNTIME_INIT_TARGET MOUNT_INIT_TARGET

/* runtime_config.c: builds the OCI config.json object for a validated spec
 * (see runtime_spec_check). Returns a new reference or NULL with err set. */
json_t *runtime_config_build(const struct runtime *rt, const char *id, json_t *spec,
                             struct serr *err);

/* runtime_config.c: checks what the user can get wrong before anything is
 * created on disk: args, user, mounts (bind sources must exist), limits. */
int runtime_spec_check(const struct runtime *rt, json_t *spec, struct serr *err);

/* runtime.c: ids become path components (bundle, cgroups) and crun
 * arguments: letters, digits, '_', '.' and '-', not first '.' or '-', at
 * most 128 characters. SERR_INVALID otherwise (err may be NULL). */
int runtime_check_id(const char *id, struct serr *err);
/* The runtime is runc (by its path), whose options and run steps differ from crun's. */
static inline bool runtime_is_runc(const struct runtime *rt)
{
    return strstr(rt->runtime_path, "runc") != NULL;
}

/* runtime.c: frees each string of a NULL terminated array (NULL: none), then it. */
void runtime_strv_free(char **v);

/* runtime_user.c: a container's user and groups. */
struct runtime_user {
    uint32_t uid, gid;
    json_t *additional_gids; /* owned: array of gids, or NULL */
};
/* `user` ("name", "uid", "name:group", "uid:gid", mixes; NULL or "": root)
 * to ids. Names are looked up in rootfs's /etc/passwd and /etc/group as
 * Docker does (a user name alone brings its passwd gid, which is also the
 * first additional gid, then the groups that list it); numbers are taken as they are. An unknown name fails with Docker's
 * message ("unable to find user NAME: no matching entries in passwd file"). */
int runtime_user_resolve(const char *rootfs, const char *user, struct runtime_user *out,
                         struct serr *err);
/* Only the form of `user` (no file read): SERR_INVALID unless NULL, "" or
 * user[:group] of names or numbers. */
int runtime_user_check(const char *user, struct serr *err);
/* The OCI process's "user": {"uid", "gid", "additionalGids" when there are
 * some} (new object); u->additional_gids is taken over. */
json_t *runtime_user_json(struct runtime_user *u);

/* runtime_cgroup.c */
int runtime_cgroup_detect(enum cgroup_mode *mode, struct serr *err);
/* Hybrid hosts: moves controllers still attached to the v2 hierarchy to v1
 * mounts so that crun accepts to run. */
int runtime_cgroup_fix_hybrid(struct serr *err);
/* v1/hybrid: creates the container's cgroups and writes the spec's limits. */
int runtime_cgroup_create(const struct runtime *rt, const char *id, json_t *spec,
                          struct serr *err);
/* v1/hybrid, at runtime_init: writes the device rules, and the cpus, mems
 * and cgroup.clone_children 1, in the parents shoal/ of "devices" and
 * "cpuset", whose new children inherit them; sets rt->cgroup_*_inherited
 * (false where it could not: the values are then written per container). */
void runtime_cgroup_setup_parents(struct runtime *rt);
/* Tests: the parent of the containers' v1 cgroups, "shoal" by default. */
void runtime_cgroup_set_parent(const char *name);
/* v1/hybrid: the cgroups of a host job (runtime_host.c): the container's
 * less "devices" (a host process keeps the host's devices); a set the pool
 * kept, renamed to `id` with its limits written again, when there is one
 * and the spec gives the job's cores (limits.cpuset). */
int runtime_cgroup_create_host(const struct runtime *rt, const char *id, json_t *spec,
                               struct serr *err);
/* v1/hybrid: the pool of host jobs' cgroup sets (runtime_cgroup.c): made
 * at runtime_init (removing the sets a killed run of this daemon left),
 * freed with its kept sets at runtime_free. Nothing on v2 hosts. */
void runtime_cgroup_pool_init(struct runtime *rt);
void runtime_cgroup_pool_free(struct runtime *rt);
/* v1/hybrid: a host job's cgroups after its end: kept for the next host job
 * when `empty` (no process of the job left in them) and the pool has room,
 * else removed as runtime_cgroup_remove. */
int runtime_cgroup_release_host(const struct runtime *rt, const char *id, bool empty,
                                struct serr *err);
/* v1/hybrid: moves `pid` into the container's cgroups. */
int runtime_cgroup_place(const struct runtime *rt, const char *id, pid_t pid, struct serr *err);
/* v1/hybrid: the cgroup.procs files of the cgroups runtime_cgroup_create
 * made, NULL terminated (the caller frees each and the array); a process
 * writing "0" to each joins them all. NULL on v2 hosts. _host: those of
 * runtime_cgroup_create_host (no "devices"). */
char **runtime_cgroup_procs_files(const struct runtime *rt, const char *id);
char **runtime_cgroup_host_procs_files(const struct runtime *rt, const char *id);
/* v1/hybrid: the container's cpuset cgroup (new string), which a `crun exec`
 * command joins so that it keeps to a batch job's cores (crun without a
 * cgroup manager would leave it in the daemon's cgroups); NULL on v2 hosts or
 * when the container has none. */
char *runtime_cgroup_cpuset_dir(const struct runtime *rt, const char *id);
/* Removes the container's cgroups (v1/hybrid); missing ones are fine. */
int runtime_cgroup_remove(const struct runtime *rt, const char *id, struct serr *err);
void runtime_cgroup_stats(const struct runtime *rt, const char *id, uint64_t *cpu_ns,
                          uint64_t *mem_bytes);
/* memory limit (0: none; v1's "no limit" value too) and process count */
void runtime_cgroup_limits(const struct runtime *rt, const char *id, uint64_t *mem_limit,
                           uint64_t *pids);

#endif
