/* Names that a service spec gives and the runtime applies, known to both
 * the manager (which refuses unknown ones) and the agent: capabilities,
 * resource limits (ulimits), namespaced sysctls, signals. Pure. */
#ifndef SHOAL_MODEL_CONTAINER_OPTS_H
#define SHOAL_MODEL_CONTAINER_OPTS_H

#include <stdbool.h>

/* A batch job's node file (its nodes, one a line) is JOB_NODEFILE_PREFIX<job
 * id>, inside its container or, for a host job, on the host: the agent
 * removes a host job's at its end, and no file not under this prefix. */
#define JOB_NODEFILE_PREFIX "/tmp/shoal-nodefile-"

/* Every Linux capability, "CAP_CHOWN" ... "CAP_CHECKPOINT_RESTORE", NULL-terminated. */
extern const char *const container_all_caps[];

/* True for a name of container_all_caps ("CAP_NET_ADMIN"; the prefix is required). */
bool container_cap_known(const char *name);

/* The RLIMIT_ number of a ulimit name as Docker spells it ("nofile", "nproc",
 * "core", ...), or -1. `oci_name` (when not NULL) gets "RLIMIT_NOFILE". */
int container_ulimit_resource(const char *name, const char **oci_name);

/* True when a sysctl is namespaced, so a container may set it (Docker's
 * list: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, and net.* when
 * the container has its own network namespace). */
bool container_sysctl_allowed(const char *key, bool own_network);

/* The number of "SIGTERM", "TERM" or "15" (1 to 64), or -1. */
int container_signal_number(const char *name);

#endif
