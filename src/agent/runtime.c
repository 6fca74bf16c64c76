/* Container runtime: bundles (overlay rootfs + config.json) run by crun.
 * See agent/runtime.h for the contract. config.json is built in
 * runtime_config.c, cgroups are handled in runtime_cgroup.c. */
#include "agent/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/runtime_internal.h"
#include "base/json_get.h"
#include "base/util.h"

extern char **environ;

#define MAX_ID_LEN 128
/* Static inits looked for when the runtime is set up; the first found is used. */
static const char *const init_candidates[] = {"/usr/bin/tini-static", "/usr/local/bin/tini-static",
                                              "/sbin/tini-static", NULL};

static const char *find_init(void)
{
    for (size_t i = 0; init_candidates[i] != NULL; i++)
        if (access(init_candidates[i], X_OK) == 0)
            return init_candidates[i];
    return NULL;
}

/* mount_setattr(2), which crun's "rro" needs, came with Linux 5.12. The
 * kernel's release says so without calling it (a probe call would also be an
 * unknown syscall to valgrind, which the test suite runs the daemon under). */
static bool kernel_has_mount_setattr(void)
{
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return false;
    return major > 5 || (major == 5 && minor >= 12);
}

/* write_file_atomic's leftovers (config.json, an exec's process file) in
 * each bundle, of a daemon killed mid-write: nothing writes in the bundles
 * before runtime_init returns. Not below them: root filesystems are users'. */
static void remove_stale_bundle_tmp(const char *containers_dir)
{
    int64_t start_ms = now_ms();
    DIR *d = opendir(containers_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *bundle = xasprintf("%s/%s", containers_dir, e->d_name);
        remove_stale_tmp_files(bundle, start_ms);
        free(bundle);
    }
    if (d)
        closedir(d);
}

int runtime_init(struct runtime *rt, const char *runtime_path, const char *runtime_root,
                 const char *containers_dir, struct serr *err)
{
    memset(rt, 0, sizeof(*rt));
    rt->runtime_path = xstrdup(runtime_path ? runtime_path : "crun");
    rt->runtime_root = xstrdup(runtime_root);
    rt->containers_dir = xstrdup(containers_dir);
    const char *init = find_init();
    rt->init_path = init ? xstrdup(init) : NULL;
    if (mkdir_p(runtime_root, 0700, err) < 0 || mkdir_p(containers_dir, 0711, err) < 0)
        goto fail;
    remove_stale_bundle_tmp(containers_dir);
    dir_spread_subdirs(containers_dir); /* a bundle per subdirectory */
    dir_spread_subdirs(runtime_root);   /* crun's state, a directory per container */
    if (runtime_cgroup_detect(&rt->cgroup_mode, err) < 0)
        goto fail;
    rt->recursive_ro = kernel_has_mount_setattr();
    if (rt->cgroup_mode == CGROUP_HYBRID && runtime_cgroup_fix_hybrid(err) < 0)
        goto fail;
    runtime_cgroup_setup_parents(rt);
    runtime_cgroup_pool_init(rt);
    return 0;
fail:
    runtime_free(rt);
    return -1;
}

void runtime_free(struct runtime *rt)
{
    runtime_cgroup_pool_free(rt);
    free(rt->runtime_path);
    free(rt->runtime_root);
    free(rt->containers_dir);
    free(rt->init_path);
    memset(rt, 0, sizeof(*rt));
}

int runtime_check_id(const char *id, struct serr *err)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > MAX_ID_LEN || id[0] == '.' || id[0] == '-' ||
        strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != len)
        return serr_set(err, SERR_INVALID, "invalid container id \"%s\"", id ? id : "");
    return 0;
}

static char *bundle_path(const struct runtime *rt, const char *id)
{
    return xasprintf("%s/%s", rt->containers_dir, id);
}

static bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- running crun ---------------------------------------------------- */

/* The last error crun wrote to its JSON log, or NULL (caller frees). */
static char *crun_log_error(const char *log_path)
{
    char *text = NULL, *found = NULL, *save = NULL;
    if (log_path == NULL || read_file(log_path, &text, NULL, NULL) < 0)
        return NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *entry = json_loads(line, 0, NULL);
        const char *msg = jstr(entry, "msg");
        const char *level = jstr(entry, "level");
        if (msg != NULL && (level == NULL || strcmp(level, "error") == 0)) {
            free(found);
            found = xstrdup(msg);
        }
        json_decref(entry);
    }
    free(text);
    return found;
}

static int crun_failed(const char *log_path, const char *command, int status, struct serr *err)
{
    char *msg = crun_log_error(log_path);
    if (msg != NULL) {
        /* A command that cannot be executed is the user's mistake. */
        enum serr_kind kind = strstr(msg, "executable file") ? SERR_INVALID : SERR_INTERNAL;
        serr_set(err, kind, "crun: %s", msg);
        free(msg);
        return -1;
    }
    if (WIFSIGNALED(status))
        return serr_set(err, SERR_INTERNAL, "crun %s killed by signal %d", command,
                        WTERMSIG(status));
    return serr_set(err, SERR_INTERNAL, "crun %s failed with status %d", command,
                    WEXITSTATUS(status));
}

void runtime_spawn_attr_init(posix_spawnattr_t *attr)
{
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_init(attr);
    posix_spawnattr_setsigdefault(attr, &all);
    posix_spawnattr_setsigmask(attr, &none);
    posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
}

void runtime_spawn_setup(posix_spawn_file_actions_t *actions, posix_spawnattr_t *attr,
                         int in_fd, int out_fd)
{
    posix_spawn_file_actions_init(actions);
    runtime_spawn_attr_init(attr);
    if (in_fd < 0)
        posix_spawn_file_actions_addopen(actions, 0, "/dev/null", O_RDONLY, 0);
    else
        posix_spawn_file_actions_adddup2(actions, in_fd, 0);
    if (out_fd < 0) {
        posix_spawn_file_actions_addopen(actions, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(actions, 1, 2);
    } else {
        posix_spawn_file_actions_adddup2(actions, out_fd, 1);
        posix_spawn_file_actions_adddup2(actions, out_fd, 2);
    }
}

/* Waits for our own child `pid` (the daemon reaps its other children
 * itself): its wait status in *status. */
static int wait_child(pid_t pid, int *status, const char *what, struct serr *err)
{
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR)
            return serr_errno(err, "waitpid %s", what);
    }
    return 0;
}

static int spawn_and_wait(char *const argv[], int in_fd, int out_fd, int *status,
                          struct serr *err)
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    runtime_spawn_setup(&actions, &attr, in_fd, out_fd);
    pid_t child;
    int rc = posix_spawnp(&child, argv[0], &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return serr_errno(err, "cannot run %s", argv[0]);
    }
    return wait_child(child, status, argv[0], err);
}

/* What a helper printed on fd (at most len - 1 bytes, NUL-terminated), up to
 * its first newline. */
static void read_report(int fd, char *buf, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        ssize_t r = read(fd, buf + n, len - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

static int spawn_helper(const char *exe, char *const argv[], int out_fd, pid_t *pid,
                        struct serr *err)
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    runtime_spawn_attr_init(&attr);
    int rc = posix_spawn(pid, exe, &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return serr_errno(err, "cannot run the %s process", argv[1]);
    }
    return 0;
}

int runtime_run_helper(const char *exe, char *const argv[], char *report, size_t len, int *status,
                       struct serr *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return serr_errno(err, "pipe");
    pid_t pid;
    int rc = spawn_helper(exe, argv, fds[1], &pid, err);
    close(fds[1]);
    if (rc == 0)
        read_report(fds[0], report, len);
    close(fds[0]);
    if (rc < 0)
        return -1;
    return wait_child(pid, status, argv[1], err);
}

/* The first executable `name` in the directories of `path` (new string), or NULL. */
static char *path_search(const char *name, const char *path)
{
    char *dirs = xstrdup(path);
    char *found = NULL, *save = NULL;
    for (char *dir = strtok_r(dirs, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char *candidate = xasprintf("%s/%s", dir, name);
        if (access(candidate, X_OK) == 0)
            found = candidate;
        else
            free(candidate);
    }
    free(dirs);
    return found;
}

/* The last search of program_path: the name, $PATH then, and what was found
 * (kept for the daemon's life, as a shell's `hash` keeps it). */
static struct {
    pthread_mutex_t lock;
    char *name, *path, *found;
} last_search = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* last_search's answer for `name` in `path` when it still names an
 * executable (new string), or NULL. */
static char *last_search_for(const char *name, const char *path)
{
    char *found = NULL;
    pthread_mutex_lock(&last_search.lock);
    if (last_search.found && strcmp(last_search.name, name) == 0 &&
        strcmp(last_search.path, path) == 0 && access(last_search.found, X_OK) == 0)
        found = xstrdup(last_search.found);
    pthread_mutex_unlock(&last_search.lock);
    return found;
}

static void last_search_keep(const char *name, const char *path, const char *found)
{
    pthread_mutex_lock(&last_search.lock);
    free(last_search.name);
    free(last_search.path);
    free(last_search.found);
    last_search.name = xstrdup(name);
    last_search.path = xstrdup(path);
    last_search.found = xstrdup(found);
    pthread_mutex_unlock(&last_search.lock);
}

/* `name` as execve needs it: itself when it has a '/', else the first
 * executable of that name in $PATH (new string), or NULL. The search is
 * kept: the next start of the same name under the same $PATH checks the
 * one path found (one access instead of one per directory before it, ~10
 * here: ~1% of a `run --rm`'s CPU). */
static char *program_path(const char *name)
{
    if (strchr(name, '/') != NULL)
        return xstrdup(name);
    const char *env = getenv("PATH");
    const char *path = env && *env ? env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                           "/sbin:/bin";
    char *found = last_search_for(name, path);
    if (found == NULL && (found = path_search(name, path)) != NULL)
        last_search_keep(name, path, found);
    return found;
}

/* What a joined child reports before it exits 127: the index in `join` of
 * the cgroup it could not join (-1: the exec failed) and the errno. */
struct join_failure {
    int index, error;
};

/* The joined child's stack: a few frames of its own, then execve. */
#define JOINED_STACK_SIZE (64 * 1024)

/* What the joined child needs, in the parent's memory (the child shares it). */
struct joined_start {
    const char *prog;
    char *const *argv, *const *join;
    int in_fd, out_fd, report;
};

/* The child of clone(CLONE_VM | CLONE_VFORK), on its own stack, the parent
 * thread stopped until it execs or exits: async-signal-safe calls only, and
 * nothing written to memory but its own stack. Joins each cgroup of `join`
 * ("0" written to its cgroup.procs moves the writer; NULL on v2 hosts, where
 * crun places the container), takes the stdio and
 * signal state spawn_setup gives, then execs. Not instrumented by ASan: its
 * stack is not the thread's it knows, and before _exit it would report
 * that (a report file of the child's pid, which `make test-asan` fails on). */
__attribute__((no_sanitize_address)) static int joined_child(void *arg)
{
    const struct joined_start *start = arg;
    char *const *join = start->join;
    struct join_failure f = {-1, 0};
    for (int i = 0; join && join[i] != NULL && f.error == 0; i++) {
        int fd = open(join[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1)
            f = (struct join_failure){i, errno};
        if (fd >= 0)
            close(fd);
    }
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int in = start->in_fd >= 0 ? start->in_fd : open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = start->out_fd >= 0 ? start->out_fd : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (f.error == 0 && (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0))
        f.error = errno;
    if (f.error == 0) {
        execve(start->prog, start->argv, environ);
        f.error = errno;
    }
    if (write(start->report, &f, sizeof(f)) < 0)
        _exit(127);
    _exit(127);
}

static int joined_failed(char *const argv[], char *const *join, int report, struct serr *err)
{
    struct join_failure f;
    if (read(report, &f, sizeof(f)) != (ssize_t)sizeof(f))
        return 0;
    errno = f.error;
    if (f.index >= 0)
        return serr_errno(err, "join cgroup %s", join[f.index]);
    return serr_errno(err, "cannot run %s", argv[0]);
}

/* Starts joined_child as posix_spawn starts its child: in the daemon's
 * memory (no copy of the daemon's address space: a fork costs ~0.4 ms here
 * and the copy-on-write faults after it), on a stack of its own, this thread
 * waiting until it has exec'd or exited. Returns its pid, or -1. */
static pid_t clone_joined(struct joined_start *start)
{
    char *stack = malloc(JOINED_STACK_SIZE);
    if (stack == NULL)
        return -1;
    /* No handler of the daemon's may run in the child before it resets them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t child = clone(joined_child, stack + JOINED_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD,
                        start);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(stack);
    errno = saved;
    return child;
}

/* joined_child started, not waited for: its pid once it has exec'd, or -1
 * (a failed join or exec reported, the child reaped). */
static pid_t spawn_joined(char *const argv[], char *const *join, int in_fd, int out_fd,
                          struct serr *err)
{
    char *prog = program_path(argv[0]);
    if (prog == NULL) {
        serr_set(err, SERR_INTERNAL, "cannot run %s: not found in $PATH", argv[0]);
        return -1;
    }
    /* Non-blocking: other children forked meanwhile hold the write end until
     * they exec; a report, when there is one, is there once clone returns
     * (CLONE_VFORK: the child has exec'd or exited). */
    int report[2];
    if (pipe2(report, O_CLOEXEC | O_NONBLOCK) < 0) {
        free(prog);
        serr_errno(err, "pipe");
        return -1;
    }
    pid_t child = clone_joined(&(struct joined_start){prog, argv, join, in_fd, out_fd, report[1]});
    close(report[1]);
    free(prog);
    if (child < 0)
        serr_errno(err, "fork");
    else if (joined_failed(argv, join, report[0], err) < 0) {
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
            ;
        child = -1;
    }
    close(report[0]);
    return child;
}

/* spawn_and_wait, the child joining the cgroups of `join` (cgroup.procs
 * files) before it execs: what it starts is born in them. Not posix_spawn:
 * the child itself must write before it execs. */
static int spawn_joined_and_wait(char *const argv[], char *const *join, int in_fd, int out_fd,
                                 int *status, struct serr *err)
{
    pid_t child = spawn_joined(argv, join, in_fd, out_fd, err);
    if (child < 0)
        return -1;
    return wait_child(child, status, argv[0], err);
}

#define CRUN_MAX_ARGS 16

/* crun's log for its errors: BUNDLE/crun.log when the bundle exists. */
static char *crun_log_path(const struct runtime *rt, const char *id)
{
    char *bundle = bundle_path(rt, id);
    char *log_path = path_exists(bundle) ? xasprintf("%s/crun.log", bundle) : NULL;
    free(bundle);
    return log_path;
}

/* Starts `crun <global options> <args...>`; with `join` (cgroup.procs files,
 * or NULL) crun runs in those cgroups, and so does what it starts. With
 * `runner` crun is not waited for: its pid goes there (0 on failure);
 * otherwise its status goes to *status. crun's own errors are written to a
 * JSON log in the bundle (crun_log_path): its stderr may be the container's
 * output. */
static int spawn_crun(const struct runtime *rt, const char *id, const char *const *args,
                      char *const *join, int in_fd, int out_fd, pid_t *runner, int *status,
                      struct serr *err)
{
    char *log_path = crun_log_path(rt, id);
    /* runc takes a plain path after --log and has no --cgroup-manager: on v1
     * and hybrid hosts it makes its own cgroups too, and shoal's placement
     * then moves the process into shoal's. */
    bool runc = runtime_is_runc(rt);
    char *log_opt = log_path ? xasprintf(runc ? "--log=%s" : "--log=file:%s", log_path) : NULL;
    char *root_opt = xasprintf("--root=%s", rt->runtime_root);
    const char *argv[CRUN_MAX_ARGS];
    size_t n = 0;
    argv[n++] = rt->runtime_path;
    if (rt->cgroup_mode != CGROUP_V2 && !runc)
        argv[n++] = "--cgroup-manager=disabled";
    argv[n++] = root_opt;
    if (log_opt) {
        argv[n++] = log_opt;
        argv[n++] = "--log-format=json";
    }
    for (size_t i = 0; args[i] != NULL && n < CRUN_MAX_ARGS - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    if (log_path)
        unlink(log_path); /* only this command's errors */
    int rc;
    if (runner) {
        *runner = spawn_joined((char *const *)argv, join, in_fd, out_fd, err);
        rc = *runner > 0 ? 0 : -1;
        if (*runner < 0)
            *runner = 0;
    } else {
        rc = join ? spawn_joined_and_wait((char *const *)argv, join, in_fd, out_fd, status, err)
                  : spawn_and_wait((char *const *)argv, in_fd, out_fd, status, err);
    }
    free(log_path);
    free(log_opt);
    free(root_opt);
    return rc;
}

/* Runs `crun <global options> <args...>` (spawn_crun) and waits for it: -1
 * with crun's error when it failed. */
static int run_crun_io(const struct runtime *rt, const char *id, const char *const *args,
                       char *const *join, int in_fd, int out_fd, struct serr *err)
{
    int status = 0;
    int rc = spawn_crun(rt, id, args, join, in_fd, out_fd, NULL, &status, err);
    if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char *log_path = crun_log_path(rt, id);
        rc = crun_failed(log_path, args[0], status, err);
        free(log_path);
    }
    return rc;
}

/* run_crun_io with stdin /dev/null. */
static int run_crun(const struct runtime *rt, const char *id, const char *const *args, int out_fd,
                    struct serr *err)
{
    return run_crun_io(rt, id, args, NULL, -1, out_fd, err);
}

/* ---- rootfs ---------------------------------------------------------- */

/* overlay's option string: lowerdir is top layer first, layers are given
 * bottom first. ',' and ':' would be read as separators by the kernel. */
static char *overlay_options(const char *bundle, const char *const *layers, struct serr *err)
{
    size_t count = 0, len = 0;
    for (; layers[count] != NULL; count++) {
        if (strpbrk(layers[count], ",:") != NULL) {
            serr_set(err, SERR_INVALID, "layer path %s contains ',' or ':'", layers[count]);
            return NULL;
        }
        len += strlen(layers[count]) + 1;
    }
    char *lower = xmalloc(len + 1), *p = lower;
    for (size_t i = count; i-- > 0;)
        p += sprintf(p, "%s%s", p == lower ? "" : ":", layers[i]);
    char *opts = xasprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, bundle, bundle);
    free(lower);
    /* The kernel reads at most one page of mount options. */
    if (strlen(opts) >= 4096) {
        serr_set(err, SERR_INVALID, "too many image layers for an overlay mount (%zu)", count);
        free(opts);
        return NULL;
    }
    return opts;
}

static int mount_rootfs(const char *bundle, const char *const *layers, struct serr *err)
{
    char *opts = overlay_options(bundle, layers, err);
    if (opts == NULL)
        return -1;
    char *rootfs = xasprintf("%s/rootfs", bundle);
    int rc = 0;
    if (mount("overlay", rootfs, "overlay", 0, opts) < 0)
        rc = serr_errno(err, "mount overlay on %s", rootfs);
    free(rootfs);
    free(opts);
    return rc;
}

static int unmount_rootfs(const char *bundle, struct serr *err)
{
    char *rootfs = xasprintf("%s/rootfs", bundle);
    int rc = 0;
    if (umount2(rootfs, 0) < 0 && errno != EINVAL && errno != ENOENT) {
        /* Still busy (a process holding it open): detach, the kernel
         * finishes when it is released. */
        if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL)
            rc = serr_errno(err, "unmount %s", rootfs);
    }
    free(rootfs);
    return rc;
}

static int make_subdirs(const char *bundle, struct serr *err)
{
    static const char *const subdirs[] = {"rootfs", "upper", "work", NULL};
    for (size_t i = 0; subdirs[i] != NULL; i++) {
        char *dir = xasprintf("%s/%s", bundle, subdirs[i]);
        int rc = mkdir(dir, 0755);
        if (rc < 0)
            serr_errno(err, "mkdir %s", dir);
        free(dir);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int write_config(const struct runtime *rt, const char *id, const char *bundle, json_t *spec,
                        struct serr *err)
{
    json_t *config = runtime_config_build(rt, id, spec, err);
    if (config == NULL)
        return -1;
    char *text = json_dumps(config, JSON_INDENT(2));
    json_decref(config);
    if (text == NULL)
        return serr_set(err, SERR_INTERNAL, "cannot serialize config.json");
    char *path = xasprintf("%s/config.json", bundle);
    int rc = write_file_atomic(path, text, strlen(text), false, err);
    free(path);
    free(text);
    return rc;
}

static int prepare_bundle(const struct runtime *rt, const char *id, const char *bundle,
                          json_t *spec, const char *const *layers, struct serr *err)
{
    if (make_subdirs(bundle, err) < 0 || mount_rootfs(bundle, layers, err) < 0)
        return -1;
    return write_config(rt, id, bundle, spec, err);
}

/* ---- lifecycle ------------------------------------------------------- */

static int read_pid_file_at(const char *path, pid_t *pid, struct serr *err)
{
    char *text = NULL;
    int rc = read_file(path, &text, NULL, err);
    if (rc == 0) {
        long v = strtol(text, NULL, 10);
        if (v <= 0)
            rc = serr_set(err, SERR_INTERNAL, "bad pid in %s: \"%s\"", path, text);
        else
            *pid = (pid_t)v;
    }
    free(text);
    return rc;
}

static int read_pid_file(const char *bundle, pid_t *pid, struct serr *err)
{
    char *path = xasprintf("%s/pid", bundle);
    int rc = read_pid_file_at(path, pid, err);
    free(path);
    return rc;
}

int runtime_console_accept(int listen_fd)
{
    int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        return -1;
    char byte[256];
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = byte, .iov_len = sizeof(byte)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                         .msg_controllen = sizeof(ctl)};
    int fd = -1;
    if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) >= 0) {
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(&fd, CMSG_DATA(c), sizeof(fd));
    }
    close(conn);
    return fd;
}

int runtime_console_listen(const char *path, struct serr *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return serr_set(err, SERR_INTERNAL, "console socket path too long: %s", path);
    strcpy(sa.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
        serr_errno(err, "console socket %s", path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* With `tty`: a terminal, its master received into io->term_fd. */
static int crun_create(const struct runtime *rt, const char *id, const char *bundle, bool tty,
                       struct runtime_io *io, pid_t *pid, struct serr *err)
{
    char *bundle_opt = xasprintf("--bundle=%s", bundle);
    char *pid_opt = xasprintf("--pid-file=%s/pid", bundle);
    char *sock = xasprintf("%s/console.sock", bundle);
    char *console_opt = xasprintf("--console-socket=%s", sock);
    int listen_fd = tty ? runtime_console_listen(sock, err) : -1;
    const char *args[] = {"create", bundle_opt, pid_opt, tty ? console_opt : id, tty ? id : NULL,
                          NULL};
    int rc = tty && listen_fd < 0 ? -1
                                  : run_crun_io(rt, id, args, NULL, io->in_fd, io->out_fd, err);
    if (rc == 0)
        rc = read_pid_file(bundle, pid, err);
    if (rc == 0 && tty && (io->term_fd = runtime_console_accept(listen_fd)) < 0)
        rc = serr_set(err, SERR_INTERNAL, "crun sent no terminal");
    if (listen_fd >= 0)
        close(listen_fd);
    unlink(sock);
    free(bundle_opt);
    free(pid_opt);
    free(sock);
    free(console_opt);
    return rc;
}

int runtime_create(struct runtime *rt, const char *id, json_t *spec,
                   const char *const *layer_dirs, int out_fd, pid_t *pid, struct serr *err)
{
    struct runtime_io io = {.in_fd = -1, .out_fd = out_fd, .term_fd = -1};
    return runtime_create_io(rt, id, spec, layer_dirs, &io, pid, err);
}

/* Checks, then the bundle and the cgroups: what precedes the runtime's call. */
static int make_container(struct runtime *rt, const char *id, json_t *spec,
                          const char *const *layer_dirs, struct serr *err)
{
    /* Everything the user can get wrong is checked before touching the disk. */
    if (runtime_check_id(id, err) < 0 || runtime_spec_check(rt, spec, err) < 0)
        return -1;
    if (layer_dirs == NULL || layer_dirs[0] == NULL)
        return serr_set(err, SERR_INVALID, "container %s has no image layers", id);
    char *bundle = bundle_path(rt, id);
    int rc = 0;
    if (mkdir(bundle, 0711) < 0) {
        if (errno == EEXIST)
            serr_set(err, SERR_CONFLICT, "container %s already exists", id);
        else
            serr_errno(err, "mkdir %s", bundle);
        free(bundle);
        return -1;
    }
    if (prepare_bundle(rt, id, bundle, spec, layer_dirs, err) < 0 ||
        runtime_cgroup_create(rt, id, spec, err) < 0) {
        runtime_delete(rt, id, NULL);
        rc = -1;
    }
    free(bundle);
    return rc;
}

void runtime_term_set_size(int fd, int rows, int cols)
{
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    if (rows > 0 && cols > 0)
        ioctl(fd, TIOCSWINSZ, &ws);
}

/* A failed create or start: its terminal closed, all of it deleted. */
static void discard_created(struct runtime *rt, const char *id, struct runtime_io *io)
{
    if (io->term_fd >= 0)
        close(io->term_fd);
    io->term_fd = -1;
    runtime_delete(rt, id, NULL);
}

int runtime_create_io(struct runtime *rt, const char *id, json_t *spec,
                      const char *const *layer_dirs, struct runtime_io *io, pid_t *pid,
                      struct serr *err)
{
    io->term_fd = -1;
    bool tty = json_is_true(json_object_get(spec, "tty"));
    if (make_container(rt, id, spec, layer_dirs, err) < 0)
        return -1;
    char *bundle = bundle_path(rt, id);
    int rc = crun_create(rt, id, bundle, tty, io, pid, err);
    if (rc == 0)
        rc = runtime_cgroup_place(rt, id, *pid, err);
    if (rc < 0)
        discard_created(rt, id, io);
    free(bundle);
    return rc;
}

/* One runtime call can start the container: no terminal (its size is set
 * between create and start), crun (runc makes cgroups of its own on v1),
 * and no memory or process limit, which crun itself would count against
 * while it runs in the container's cgroups. */
static bool one_call_start(const struct runtime *rt, json_t *spec)
{
    json_t *limits = json_object_get(spec, "limits");
    return !json_is_true(json_object_get(spec, "tty")) &&
           !runtime_is_runc(rt) &&
           json_integer_value(json_object_get(limits, "memory")) <= 0 &&
           json_integer_value(json_object_get(limits, "pids")) <= 0;
}

void runtime_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void adopt_container(pid_t pid);

/* `crun run --detach`, crun born in the container's v1 cgroups (on v2 its
 * own cgroup manager places the container). */
static int crun_run_detached(const struct runtime *rt, const char *id, const char *bundle,
                             const struct runtime_io *io, pid_t *pid, struct serr *err)
{
    char *bundle_opt = xasprintf("--bundle=%s", bundle);
    char *pid_opt = xasprintf("--pid-file=%s/pid", bundle);
    char **join = runtime_cgroup_procs_files(rt, id);
    const char *args[] = {"run", "--detach", bundle_opt, pid_opt, id, NULL};
    int rc = run_crun_io(rt, id, args, join, io->in_fd, io->out_fd, err);
    if (rc == 0)
        rc = read_pid_file(bundle, pid, err);
    if (rc == 0)
        adopt_container(*pid);
    runtime_strv_free(join);
    free(bundle_opt);
    free(pid_opt);
    return rc;
}

/* The pid crun writes into the FIFO `fifo_fd` (read end, non-blocking):
 * 1 when it is all there (crun closed its end), 0 not yet, -1 never (crun
 * closed it empty). */
static int read_pid_fifo(int fifo_fd, char *text, size_t size, size_t *len, short revents)
{
    ssize_t n;
    while ((n = read(fifo_fd, text + *len, size - 1 - *len)) > 0)
        *len += (size_t)n;
    text[*len] = '\0';
    if (n == 0 && *len > 0)
        return 1;
    return (revents & POLLHUP) && *len == 0 ? -1 : 0;
}

/* Waits until crun `runner` (our child) wrote the container's pid into its
 * --pid-file, the FIFO `fifo` (`fifo_fd` its read end, opened before crun
 * started), or exited without: then reaps it and returns -1 with its error.
 * crun writes the pid once the container runs its command (not when the
 * command is not found). A FIFO rather than a watch of a file: closing an
 * inotify instance or removing a watch waits for an SRCU grace period,
 * 10-30 ms here under load. Should a crun replace the file instead of
 * writing into it, it is read when crun exits or every 100 ms. */
static int await_pid_fifo(const char *log_path, pid_t runner, const char *fifo, int fifo_fd,
                          pid_t *pid, struct serr *err)
{
    int pidfd = (int)syscall(SYS_pidfd_open, runner, 0);
    char text[32];
    size_t len = 0;
    int got = 0;
    bool exited = false;
    struct stat st;
    struct serr quiet;
    while (got == 0 && !exited) {
        struct pollfd fds[2] = {{.fd = fifo_fd, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
        int ready = poll(fds, 2, pidfd < 0 ? 10 : 100);
        got = read_pid_fifo(fifo_fd, text, sizeof(text), &len, fds[0].revents);
        if (got == 0 && (ready == 0 || (fds[1].revents & POLLIN)) && lstat(fifo, &st) == 0 &&
            !S_ISFIFO(st.st_mode))
            got = read_pid_file_at(fifo, pid, &quiet) == 0 ? 2 : 0;
        siginfo_t info = {0};
        exited = pidfd >= 0 ? (fds[1].revents & POLLIN) != 0
                            : waitid(P_PID, (id_t)runner, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                                  info.si_pid == runner;
        if (exited && got == 0) /* what it wrote just before it exited */
            got = read_pid_fifo(fifo_fd, text, sizeof(text), &len, POLLHUP);
    }
    if (pidfd >= 0)
        close(pidfd);
    long v = got == 1 ? strtol(text, NULL, 10) : 0;
    if (got == 1 && v > 0)
        *pid = (pid_t)v;
    if (got == 2 || (got == 1 && v > 0))
        return 0;
    int status = 0;
    while (waitpid(runner, &status, 0) < 0 && errno == EINTR)
        ;
    if (got == 1)
        return serr_set(err, SERR_INTERNAL, "bad pid from crun: \"%s\"", text);
    return crun_failed(log_path, "run", status, err);
}

/* `crun run` attached: crun, born in the container's v1 cgroups, stays the
 * container's parent until it ends; its pid goes to io->runner, for the
 * caller to wait for (its exit status is the container's: 128 + signal when
 * killed). No fork and start handshake of --detach (benchmarks.md), but one
 * crun process per running container. */
static int crun_run_attached(const struct runtime *rt, const char *id, const char *bundle,
                             struct runtime_io *io, pid_t *pid, struct serr *err)
{
    char *fifo = xasprintf("%s/pid", bundle);
    char *bundle_opt = xasprintf("--bundle=%s", bundle);
    char *pid_opt = xasprintf("--pid-file=%s", fifo);
    char **join = runtime_cgroup_procs_files(rt, id);
    const char *args[] = {"run", bundle_opt, pid_opt, id, NULL};
    int fifo_fd = -1, rc = 0;
    if (mkfifo(fifo, 0600) < 0 || (fifo_fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
        rc = serr_errno(err, "pid FIFO %s", fifo);
    if (rc == 0)
        rc = spawn_crun(rt, id, args, join, io->in_fd, io->out_fd, &io->runner, NULL, err);
    if (rc == 0) {
        char *log_path = crun_log_path(rt, id);
        rc = await_pid_fifo(log_path, io->runner, fifo, fifo_fd, pid, err);
        free(log_path);
    }
    if (rc < 0)
        io->runner = 0;
    if (fifo_fd >= 0)
        close(fifo_fd);
    runtime_strv_free(join);
    free(fifo);
    free(bundle_opt);
    free(pid_opt);
    return rc;
}

static int run_in_one_call(struct runtime *rt, const char *id, json_t *spec,
                           const char *const *layer_dirs, struct runtime_io *io, pid_t *pid,
                           struct serr *err)
{
    if (make_container(rt, id, spec, layer_dirs, err) < 0)
        return -1;
    char *bundle = bundle_path(rt, id);
    int rc = io->attached ? crun_run_attached(rt, id, bundle, io, pid, err)
                          : crun_run_detached(rt, id, bundle, io, pid, err);
    if (rc < 0)
        runtime_delete(rt, id, NULL);
    free(bundle);
    return rc;
}

static int run_in_two_calls(struct runtime *rt, const char *id, json_t *spec,
                            const char *const *layer_dirs, struct runtime_io *io, pid_t *pid,
                            struct serr *err)
{
    if (runtime_create_io(rt, id, spec, layer_dirs, io, pid, err) < 0)
        return -1;
    if (io->term_fd >= 0)
        runtime_term_set_size(io->term_fd, io->rows, io->cols);
    if (runtime_start(rt, id, err) == 0)
        return 0;
    discard_created(rt, id, io);
    return -1;
}

int runtime_run_io(struct runtime *rt, const char *id, json_t *spec,
                   const char *const *layer_dirs, struct runtime_io *io, pid_t *pid,
                   struct serr *err)
{
    io->term_fd = -1;
    io->runner = 0;
    if (one_call_start(rt, spec))
        return run_in_one_call(rt, id, spec, layer_dirs, io, pid, err);
    return run_in_two_calls(rt, id, spec, layer_dirs, io, pid, err);
}

/* crun has state for `id` (created and not deleted). */
static bool crun_knows(const struct runtime *rt, const char *id)
{
    char *state = xasprintf("%s/%s", rt->runtime_root, id);
    bool known = path_exists(state);
    free(state);
    return known;
}

static int check_known(const struct runtime *rt, const char *id, struct serr *err)
{
    if (runtime_check_id(id, err) < 0)
        return -1;
    if (!crun_knows(rt, id))
        return serr_set(err, SERR_NOT_FOUND, "no such container: %s", id);
    return 0;
}

int runtime_start(struct runtime *rt, const char *id, struct serr *err)
{
    if (check_known(rt, id, err) < 0)
        return -1;
    const char *args[] = {"start", id, NULL};
    return run_crun(rt, id, args, -1, err);
}

int runtime_kill(struct runtime *rt, const char *id, int signo, struct serr *err)
{
    if (check_known(rt, id, err) < 0)
        return -1;
    char sig[16];
    snprintf(sig, sizeof(sig), "%d", signo);
    const char *args[] = {"kill", id, sig, NULL};
    return run_crun(rt, id, args, -1, err);
}

/* crun's state for `id` exists: delete it (killing what still runs). */
static int crun_delete(const struct runtime *rt, const char *id, struct serr *err)
{
    if (!crun_knows(rt, id))
        return 0;
    const char *args[] = {"delete", "--force", id, NULL};
    return run_crun(rt, id, args, -1, err);
}

int runtime_delete(struct runtime *rt, const char *id, struct serr *err)
{
    if (runtime_check_id(id, err) < 0)
        return -1;
    /* A container crun could not stop still uses its rootfs and cgroups:
     * leave them for a later retry. */
    if (crun_delete(rt, id, err) < 0)
        return -1;
    char *bundle = bundle_path(rt, id);
    int rc = runtime_cgroup_remove(rt, id, err);
    if (unmount_rootfs(bundle, err) < 0 || rm_rf(bundle, err) < 0)
        rc = -1;
    free(bundle);
    return rc;
}

/* FILES.process.json: the container's process with other args, no terminal. */
static int write_exec_process(const struct runtime *rt, const char *id, const char *const *argv,
                              const char *path, struct serr *err)
{
    char *config_path = xasprintf("%s/%s/config.json", rt->containers_dir, id);
    json_error_t jerr;
    json_t *config = json_load_file(config_path, 0, &jerr);
    free(config_path);
    json_t *process = json_object_get(config, "process");
    if (!json_is_object(process)) {
        json_decref(config);
        return serr_set(err, SERR_NOT_FOUND, "no config for container %s", id);
    }
    json_t *args = json_array();
    for (size_t i = 0; argv[i] != NULL; i++)
        json_array_append_new(args, json_string(argv[i]));
    json_object_set_new(process, "args", args);
    json_object_set_new(process, "terminal", json_false());
    json_object_del(process, "consoleSize");
    char *text = json_dumps(process, JSON_COMPACT);
    json_decref(config);
    int rc = write_file_atomic(path, text, strlen(text), false, err);
    free(text);
    return rc;
}

/* What /proc/PID/status says of a process. */
struct proc_info {
    int levels;      /* NSpid levels ("NSpid: 812 7": 2) */
    long last;       /* its pid in its own pid namespace (7) */
    long ppid, sid;  /* parent and session, in our pid namespace */
    char state;      /* 'Z': a zombie */
    char name[16];   /* its command's name */
};

/* false when the process is gone */
static bool proc_info_of(const char *pid, struct proc_info *info)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof(path), "/proc/%s/status", pid);
    if (read_file(path, &text, NULL, NULL) < 0)
        return false;
    *info = (struct proc_info){.state = '?'};
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "Name:", 5) == 0)
            sscanf(line + 5, " %15s", info->name);
        else if (strncmp(line, "State:", 6) == 0)
            sscanf(line + 6, " %c", &info->state);
        else if (strncmp(line, "PPid:", 5) == 0)
            info->ppid = strtol(line + 5, NULL, 10);
        else if (strncmp(line, "NSsid:", 6) == 0)
            info->sid = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "NSpid:", 6) == 0)
            for (char *p = line + 6, *end;; p = end) {
                long v = strtol(p, &end, 10);
                if (end == p)
                    break;
                info->last = v;
                info->levels++;
            }
    }
    free(text);
    return info->levels > 0;
}

/* A zombie child of ours that nobody waits for: in a pid namespace deeper
 * than ours and not that namespace's init (a command of `crun exec` whose
 * crun died first); or crun's own, in our namespace, of another session
 * than ours and not leading its own: the process `crun run --detach` forks
 * to make the container, reparented to us when crun's first child, which
 * led its session, exits (a container's init leads a session of its own). */
static bool unwaited_zombie(const struct proc_info *p, const struct proc_info *self)
{
    if (p->state != 'Z' || p->ppid != (long)getpid())
        return false;
    if (p->levels > self->levels)
        return p->last != 1;
    return strcmp(p->name, "crun") == 0 && p->sid != self->sid && p->sid != p->last;
}

/* After `crun run --detach` the container is still the child of the process
 * that made it, which exits just after crun: only then is the container
 * ours (a child subreaper), to wait for as after `crun create`. That process
 * is our child already (its parent, crun's first child, has exited): waits
 * for it when it is still the container's parent. */
static void adopt_container(pid_t pid)
{
    char text[24];
    struct proc_info info;
    snprintf(text, sizeof(text), "%d", (int)pid);
    if (!proc_info_of(text, &info) || info.ppid == (long)getpid() || info.ppid <= 1)
        return;
    while (waitpid((pid_t)info.ppid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* `pid` is a child of ours (of any of our threads) and a zombie: a peek
 * (WNOWAIT reaps nothing). One syscall, where reading /proc/PID/stat took
 * three and the kernel's formatting of the whole line, for each of up to
 * hundreds of running containers at every SIGCHLD. */
static bool child_is_zombie(const char *pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    pid_t p = (pid_t)strtol(pid, NULL, 10);
    return waitid(P_PID, (id_t)p, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == p;
}

/* Some child of ours is a zombie (a peek: WNOWAIT reaps nothing). Most
 * SIGCHLDs come from a crun or ip a thread has already waited for: then
 * there is nothing to scan. */
static bool some_child_is_zombie(void)
{
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
        return errno != ECHILD;
    return info.si_pid != 0;
}

static bool reap_if_orphan(const char *pid, const struct proc_info *self)
{
    struct proc_info info;
    if (pid[0] < '1' || pid[0] > '9' || !child_is_zombie(pid) || !proc_info_of(pid, &info))
        return false;
    return unwaited_zombie(&info, self) &&
           waitpid((pid_t)strtol(pid, NULL, 10), NULL, WNOHANG) > 0;
}

/* The children of our main thread, from its /proc/self/task/PID/children,
 * as "PID PID ...": NULL when the kernel has no such file. An orphan goes to
 * the first live thread of its subreaper, the thread group's leader: the
 * other threads' children (the runtime calls of the thread pool) are never
 * reparented, and each is waited for by the thread that started it. One file
 * instead of one per thread: this runs at each SIGCHLD, several times per
 * container start, on the loop. */
static char *own_children(void)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
    return read_file(path, &text, NULL, NULL) == 0 ? text : NULL;
}

int runtime_reap_orphans(void)
{
    struct proc_info self;
    int reaped = 0;
    if (!some_child_is_zombie() || !proc_info_of("self", &self))
        return 0;
    char *children = own_children(), *save = NULL;
    if (children) {
        for (char *pid = strtok_r(children, " ", &save); pid; pid = strtok_r(NULL, " ", &save))
            reaped += reap_if_orphan(pid, &self);
        free(children);
        return reaped;
    }
    /* every process: not every kernel has the children files */
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        reaped += reap_if_orphan(de->d_name, &self);
    if (d)
        closedir(d);
    return reaped;
}

int runtime_exec_start(struct runtime *rt, const char *id, const char *const *argv,
                       const char *files, int out_fd, pid_t *child, struct serr *err)
{
    if (check_known(rt, id, err) < 0)
        return -1;
    char *process_path = xasprintf("%s.process.json", files);
    char *process_opt = xasprintf("--process=%s", process_path);
    char *pid_opt = xasprintf("--pid-file=%s.pid", files);
    char *root_opt = xasprintf("--root=%s", rt->runtime_root);
    int rc = write_exec_process(rt, id, argv, process_path, err);
    if (rc == 0) {
        bool runc = runtime_is_runc(rt);
        const char *args[8];
        size_t n = 0;
        args[n++] = rt->runtime_path;
        if (rt->cgroup_mode != CGROUP_V2 && !runc)
            args[n++] = "--cgroup-manager=disabled";
        args[n++] = root_opt;
        args[n++] = "exec";
        args[n++] = process_opt;
        args[n++] = pid_opt;
        args[n++] = id;
        args[n] = NULL;
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        runtime_spawn_setup(&actions, &attr, -1, out_fd);
        int e = posix_spawnp(child, args[0], &actions, &attr, (char *const *)args, environ);
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        if (e != 0) {
            errno = e;
            rc = serr_errno(err, "cannot run %s", args[0]);
        }
    }
    free(process_path);
    free(process_opt);
    free(pid_opt);
    free(root_opt);
    return rc;
}

int runtime_stats(struct runtime *rt, const char *id, uint64_t *cpu_ns, uint64_t *mem_bytes)
{
    *cpu_ns = 0;
    *mem_bytes = 0;
    if (runtime_check_id(id, NULL) < 0)
        return -1;
    runtime_cgroup_stats(rt, id, cpu_ns, mem_bytes);
    return 0;
}

int runtime_limits(struct runtime *rt, const char *id, uint64_t *mem_limit, uint64_t *pids)
{
    *mem_limit = 0;
    *pids = 0;
    if (runtime_check_id(id, NULL) < 0)
        return -1;
    runtime_cgroup_limits(rt, id, mem_limit, pids);
    return 0;
}
