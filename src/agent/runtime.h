/* Container runtime: OCI bundles run by crun (runc accepted).
 *
 * A container's bundle lives in <containers_dir>/<id>/:
 *   config.json   generated OCI runtime config
 *   rootfs/       overlayfs mount point (lowerdirs = image layers, top first)
 *   upper/ work/  overlay's upper and work directories
 *
 * Container spec (jansson object given to runtime_create, not kept):
 *   {"args": ["httpd","-f"],            // required, already resolved with the image's
 *                                        // Entrypoint/Cmd
 *    "env": ["PATH=...","K=V"],          // final environment
 *    "workdir": "/", "user": "0:0",      // user[:group], names from the rootfs (absent = 0:0)
 *    "hostname": "web-1",
 *    "mounts": [{"type":"bind","source":"/abs/host/path","target":"/in/ctr",
 *                "readonly":true}],     // volumes are already resolved to host paths
 *    "limits": {"cpus": 0.5, "memory": 67108864},   // optional
 *    "init": true,                        // run the small init (tini) as PID 1
 *    "tty": true,                         // a terminal (runtime_create_io)
 *    "stop_signal": "SIGTERM",
 *    "netns": "/run/netns/shoal-<id>",  // optional: join this network namespace
 *    "resolv_conf": "/path"}           // optional: mounted as /etc/resolv.conf
 *
 * Defaults every container gets: pid, mount, uts and ipc namespaces (the host
 * network unless "netns" is given), Docker's default capability set, a default seccomp profile,
 * no-new-privileges, masked and read-only /proc paths, /dev, /dev/pts,
 * /dev/shm, /dev/mqueue, read-only /sys, the host's /etc/resolv.conf and
 * /etc/hosts read-only.
 *
 * Cgroups: on a pure v2 host crun's own cgroup manager places the container
 * (cgroupsPath "/shoal/<id>", resources in config.json). On a v1 or hybrid
 * host crun runs with --cgroup-manager=disabled and shoal creates
 * /sys/fs/cgroup/<controller>/shoal/<id> itself (memory, cpu, cpuacct, pids),
 * writes the limits and puts the container there: crun joins them before it
 * execs (runtime_run_io), or the container's PID is moved there between
 * `crun create` and `crun start`. On a hybrid host whose v2 mount still lists controllers
 * (crun refuses those), runtime_init mounts each such controller as a v1
 * hierarchy under /sys/fs/cgroup/<name>.
 *
 * All functions block (fork/exec of crun, mounts): call them from libuv's
 * thread pool. They are thread safe for distinct ids. */
#ifndef SHOAL_AGENT_RUNTIME_H
#define SHOAL_AGENT_RUNTIME_H

#include <jansson.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

enum cgroup_mode { CGROUP_V1, CGROUP_HYBRID, CGROUP_V2 };

struct runtime {
    char *runtime_path;   /* crun binary (default: "crun" found on PATH) */
    char *runtime_root;   /* crun --root: its state directory */
    char *containers_dir; /* bundles */
    char *init_path;      /* static init bind-mounted as /sbin/shoal-init (tini-static) */
    enum cgroup_mode cgroup_mode;
    /* The kernel has mount_setattr (Linux 5.12+): a readonly bind is made
     * read-only recursively (crun's "rro"), submounts included. Without it,
     * a readonly bind of a tree with submounts is refused. */
    bool recursive_ro;
    /* v1/hybrid: the parents shoal/ of "devices" / "cpuset" pass their
     * device rules / cpus and mems on to a container's new cgroup
     * (runtime_cgroup.c); false: they are written in each. */
    bool cgroup_devices_inherited;
    bool cgroup_cpuset_inherited;
    /* v1/hybrid: which controllers of a container's cgroups are mounted
     * (runtime_cgroup.c), as runtime_init found them: bit i for the i-th.
     * Not known (a runtime not made by runtime_init): looked up at each use. */
    bool cgroup_mounts_known;
    unsigned cgroup_mounted;
    /* v1/hybrid: the cgroups of ended host jobs kept for the next ones
     * (runtime_cgroup.c; its own lock); NULL: none kept (v2, or a runtime
     * not made by runtime_init). */
    struct cgroup_pool *host_pool;
};

/* Fills `rt` (copies the strings), creates directories, detects the cgroup
 * mode and fixes a hybrid host as described above. runtime_path NULL = crun. */
int runtime_init(struct runtime *rt, const char *runtime_path, const char *runtime_root,
                 const char *containers_dir, struct serr *err);
void runtime_free(struct runtime *rt);

/* Prepares the bundle (overlay over `layer_dirs`, bottom layer first, NULL
 * terminated; config.json from `spec`) and runs `crun create`. The container's
 * stdout and stderr are `out_fd`. Places the PID in cgroups (v1). On success
 * *pid is the container's init PID, still stopped before exec; the caller
 * then calls runtime_start. On failure nothing is left behind (bundle,
 * mount, cgroups and crun state removed) and err says why in the user's
 * terms: "bind source path does not exist: /x", "crun: executable file `foo`
 * not found in $PATH"... */
int runtime_create(struct runtime *rt, const char *id, json_t *spec,
                   const char *const *layer_dirs, int out_fd, pid_t *pid, struct serr *err);

/* runtime_create with the container's stdin and a terminal: stdin is in_fd
 * (/dev/null when < 0); with the spec's "tty": true the process gets a
 * terminal (`crun create --console-socket`), whose master, received over
 * the socket (SCM_RIGHTS), is *term_fd on success, close-on-exec, the
 * caller's to close (out_fd then gets crun's own errors only). */
struct runtime_io {
    int in_fd, out_fd;
    int term_fd;    /* out: the terminal's master, or -1 */
    int rows, cols; /* runtime_run_io: the terminal's size (0: crun's default) */
    bool attached;  /* runtime_run_io: the runtime may stay the container's parent */
    pid_t runner;   /* out: that runtime process (0: none), the caller's child to
                     * wait for: its exit status is the container's */
};
int runtime_create_io(struct runtime *rt, const char *id, json_t *spec,
                      const char *const *layer_dirs, struct runtime_io *io, pid_t *pid,
                      struct serr *err);

/* A terminal's master as crun sends it (`--console-socket PATH`):
 * runtime_console_listen makes the unix socket listening at `path` (one
 * there before is replaced; -1 with err set); runtime_console_accept takes
 * crun's connection on it and receives the master (one fd in SCM_RIGHTS,
 * close-on-exec, the caller's), -1 when none came. Both block: crun's
 * connection is accepted once it came (after `crun create`, or when the
 * socket polls readable). */
int runtime_console_listen(const char *path, struct serr *err);
/* A terminal's size (ignored when rows or cols is 0); what clients ask is at
 * most TERM_MAX_SIZE either way (agent_int.h). */
void runtime_term_set_size(int fd, int rows, int cols);
int runtime_console_accept(int listen_fd);

/* `crun start`: the container's process execs its command. */
int runtime_start(struct runtime *rt, const char *id, struct serr *err);

/* runtime_create_io and runtime_start in one: on success the container runs
 * its command (a terminal gets io->rows x io->cols before it starts). When
 * it can, one runtime call: `crun run --detach`, crun forked into the
 * container's v1 cgroups (its child joins them before it execs crun), so
 * the container is born there; with a terminal, memory or process limits
 * (which crun would count against), or runc: create, placement, start.
 * With io->attached a one-call start is `crun run` without --detach, its
 * pid in io->runner (waited for by the caller), returning once crun wrote
 * the container's pid. On failure nothing is left behind, as for runtime_create. */
int runtime_run_io(struct runtime *rt, const char *id, json_t *spec,
                   const char *const *layer_dirs, struct runtime_io *io, pid_t *pid,
                   struct serr *err);

/* A host job (runtime_host.c): `spec` is {"args": [absolute program, ...],
 * "env": [...], "limits": {"cpuset": "0,2"}}. Runs args as a process of the
 * host, leader of its own session and process group, stdin /dev/null,
 * stdout and stderr `out_fd`, in "/", confined to limits.cpuset (CPU
 * affinity; on v1/hybrid hosts also the cgroups of a container but
 * "devices", made before it execs). With "nodefile" and "nodefile_text"
 * (strings), that text is written to that file first (0644, replaced).
 * *pid is the caller's child to reap. On failure nothing is left behind
 * (the node file is the caller's to remove, as at the job's end). */
int runtime_host_start(struct runtime *rt, const char *id, json_t *spec, int out_fd, pid_t *pid,
                       struct serr *err);

/* SIGKILL to what is left of host job `id` in its cgroups, which are
 * removed. Idempotent. */
int runtime_host_delete(struct runtime *rt, const char *id, struct serr *err);

/* Sends a signal to the container's init (crun kill). */
int runtime_kill(struct runtime *rt, const char *id, int signo, struct serr *err);

/* `crun delete --force`, unmounts the rootfs, removes cgroups and the bundle.
 * Idempotent: a container already gone is not an error. */
int runtime_delete(struct runtime *rt, const char *id, struct serr *err);

/* Starts `argv` (NULL terminated) inside the running container `id` with
 * `crun exec`, under the settings of the container's own process (user, env,
 * cwd, capabilities, seccomp, no-new-privileges) read from its config.json.
 * `files` is a path prefix for what crun needs: FILES.process.json (written
 * here) and FILES.pid (written by crun: the command's pid, in the host's pid
 * namespace); the caller removes both. stdout and stderr are out_fd, crun's
 * own errors included. Does not wait: *child is the crun process, the
 * caller's child, which the caller must reap; its exit status is the
 * command's. On v1 and hybrid hosts (crun without a cgroup manager) the
 * command stays in the daemon's cgroups, not the container's. */
/* Reaps the daemon's zombie children that live in a container's pid
 * namespace without being its init: commands of `crun exec` whose crun died
 * first, reparented to the daemon (a child subreaper). Nobody else waits for
 * them, and until they are reaped the kernel holds their container's init in
 * its exit (zap_pid_ns_processes): the container never ends. Also the process
 * `crun run --detach` forks to make a container, reparented to the daemon
 * once crun's first child exits (crun's, outside the daemon's session, not
 * leading one of its own). Returns how many
 * were reaped. Never touches the daemon's own children (crun, ip, nft) nor
 * containers' inits, whose waiters need their status. */
int runtime_reap_orphans(void);
int runtime_exec_start(struct runtime *rt, const char *id, const char *const *argv,
                       const char *files, int out_fd, pid_t *child, struct serr *err);

/* `shoal exec`: a command in the running container `id`, with the settings
 * of its own process changed as asked (user "user[:group]", cwd absolute, env
 * entries "K=V" replacing the container's own K). Writes FILES.process.json
 * (the caller removes it; crun writes the command's host pid to FILES.pid,
 * the caller's to remove too) and returns the crun command line to spawn, NULL
 * terminated (free with runtime_exec_argv_free), or NULL with err set. crun
 * exits with the command's status. Without console_socket the process's
 * stdio is the spawner's; with it the process gets a terminal whose master
 * crun sends over that unix socket (SCM_RIGHTS), rows x cols when given.
 * On v1/hybrid hosts the line is crun's behind `/bin/sh -c` joining the
 * container's cpuset cgroup first, so the command keeps to its cores (a
 * batch job's); its other cgroups stay the daemon's. */
struct runtime_exec_opts {
    const char *const *argv; /* NULL terminated */
    const char *user;        /* or NULL: the container's */
    const char *cwd;         /* or NULL: the container's */
    json_t *env;             /* array of "K=V", or NULL */
    const char *console_socket; /* a terminal: the socket's path; NULL: none */
    int rows, cols;             /* the terminal's size (0: crun's default) */
};
char **runtime_exec_prepare(const struct runtime *rt, const char *id,
                            const struct runtime_exec_opts *o, const char *files, struct serr *err);
void runtime_exec_argv_free(char **argv);

/* Initialises the attributes of a posix_spawn of a tool: the child gets
 * default signal dispositions and an empty mask, whatever the daemon
 * ignores or blocks (SIGPIPE...), which must not leak into containers or
 * tools. The caller destroys attr after the spawn. */
void runtime_spawn_attr_init(posix_spawnattr_t *attr);
/* Sets up a posix_spawn of a tool (crun, buildah): the attributes of
 * runtime_spawn_attr_init; stdin is in_fd (/dev/null when < 0); stdout and
 * stderr are out_fd (or /dev/null when < 0). The caller destroys both after
 * the spawn. */
void runtime_spawn_setup(posix_spawn_file_actions_t *actions, posix_spawnattr_t *attr,
                         int in_fd, int out_fd);

/* Runs a helper process of this binary, `exe` with argv (no $PATH search;
 * stdin /dev/null, stdout on a pipe, stderr the caller's), and waits for it,
 * and only for it: the daemon reaps its other children itself. `report` gets
 * the first line the helper printed (at most len - 1 bytes, NUL-terminated),
 * *status its wait status. -1 when it could not be run or waited for (err
 * says why, naming argv[1], the helper's verb). Blocks: at start, or off the loop. */
int runtime_run_helper(const char *exe, char *const argv[], char *report, size_t len, int *status,
                       struct serr *err);

/* CPU time (ns) and memory (bytes) used by the container's cgroup; 0 when unknown. */
int runtime_stats(struct runtime *rt, const char *id, uint64_t *cpu_ns, uint64_t *mem_bytes);
/* The memory limit (bytes; 0 when none is set) and the number of processes
 * of the container's cgroup (`shoal stats`). */
int runtime_limits(struct runtime *rt, const char *id, uint64_t *mem_limit, uint64_t *pids);

#endif
