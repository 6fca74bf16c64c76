/* Host jobs (`shoal job sub --host`): a batch job's command run as a process
 * of the host, not in a container. Its own session and process group (the
 * agent signals the group), confined to the job's cores: the cgroups of a
 * container less "devices" on v1/hybrid hosts, and the CPU affinity on every
 * host. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/runtime_internal.h"
#include "base/json_get.h"
#include "base/util.h"

/* "0,2-3" (limits.cpuset) into set; false when there is none or it is malformed. */
static bool parse_cpuset(const char *text, cpu_set_t *set)
{
    CPU_ZERO(set);
    if (text == NULL || *text == '\0')
        return false;
    const char *p = text;
    while (*p) {
        char *end;
        long lo = strtol(p, &end, 10), hi = lo;
        if (end == p || lo < 0 || lo >= CPU_SETSIZE)
            return false;
        if (*end == '-') {
            p = end + 1;
            hi = strtol(p, &end, 10);
            if (end == p || hi < lo || hi >= CPU_SETSIZE)
                return false;
        }
        for (long c = lo; c <= hi; c++)
            CPU_SET((int)c, set);
        if (*end == ',')
            end++;
        else if (*end != '\0')
            return false;
        p = end;
    }
    return true;
}

/* A NULL terminated copy of a JSON array of strings (free with runtime_strv_free);
 * NULL when an element is not a string. */
static char **strv_of(json_t *array)
{
    size_t n = json_array_size(array);
    char **v = xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(array, i));
        if (s == NULL) {
            runtime_strv_free(v);
            return NULL;
        }
        v[i] = xstrdup(s);
    }
    return v;
}

/* What the child of a host job's start gets, in the memory it shares with the
 * parent (CLONE_VM): it writes `failed` (the call that failed, and its errno)
 * before it exits when it could not lead its session or join its cgroups. */
struct host_child {
    char **argv, **envp;
    const int *cgroup_fds; /* cgroup.procs files to write "0" to, -1 ended */
    int null_fd, out_fd;
    bool confine;
    cpu_set_t cores;
    const char *failed;
    int failed_errno;
};

/* Between clone and exec, in the parent's memory (the parent's thread is
 * suspended until the exec: CLONE_VFORK): only system calls, no allocation
 * nor lock. Leads its own session and process group, joins the job's
 * cgroups itself (so the agent may signal the group and the job is confined
 * before any of its code runs), then execs. */
static int child_exec(void *arg)
{
    struct host_child *c = arg;
    if (setsid() < 0) {
        c->failed = "setsid", c->failed_errno = errno;
        _exit(126);
    }
    for (const int *fd = c->cgroup_fds; *fd >= 0; fd++) {
        if (write(*fd, "0", 1) != 1) {
            c->failed = "write cgroup.procs", c->failed_errno = errno;
            _exit(126);
        }
    }
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL); /* the daemon ignores SIGPIPE: not its jobs */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (c->confine && sched_setaffinity(0, sizeof(c->cores), &c->cores) < 0)
        _exit(126);
    if (dup2(c->null_fd, 0) < 0 || dup2(c->out_fd, 1) < 0 || dup2(c->out_fd, 2) < 0 ||
        chdir("/") < 0)
        _exit(126);
    execve(c->argv[0], c->argv, c->envp);
    _exit(127);
}

/* The job's cgroup.procs files opened for writing into fds (-1 ended; none
 * on v2 hosts); -1 with err when one cannot be opened. */
static int open_cgroup_procs(const struct runtime *rt, const char *id, int *fds, size_t max,
                             struct serr *err)
{
    char **files = runtime_cgroup_host_procs_files(rt, id);
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; files && files[i] && rc == 0; i++) {
        if (n + 1 >= max)
            rc = serr_set(err, SERR_INTERNAL, "host job %s: too many cgroups", id);
        else if ((fds[n] = open(files[i], O_WRONLY | O_CLOEXEC)) < 0)
            rc = serr_errno(err, "open %s", files[i]);
        else
            n++;
    }
    fds[n] = -1;
    runtime_strv_free(files);
    return rc;
}

static void close_fds(const int *fds)
{
    for (; *fds >= 0; fds++)
        close(*fds);
}

#define HOST_CHILD_STACK (64 * 1024)
#define HOST_MAX_CGROUPS 16

/* clone(CLONE_VM | CLONE_VFORK), as posix_spawn: the child shares the
 * daemon's memory until it execs instead of copying its page tables (a
 * fork's cost grows with the daemon's size, and its copy-on-write faults
 * land on every thread afterwards); this thread waits for the exec, the
 * others go on. Signals are blocked across the clone so that no handler of
 * the daemon runs in the child before it resets them. */
static int clone_exec(struct host_child *c, pid_t *pid, struct serr *err)
{
    char *stack = xmalloc(HOST_CHILD_STACK);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t child = clone(child_exec, stack + HOST_CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, c);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(stack);
    if (child < 0) {
        errno = clone_errno;
        return serr_errno(err, "clone");
    }
    if (c->failed) {
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
            ;
        errno = c->failed_errno;
        return serr_errno(err, "host job: process %d: %s", (int)child, c->failed);
    }
    *pid = child;
    return 0;
}

static int start_child(const struct runtime *rt, const char *id, char **argv, char **envp,
                       const char *cpuset, int out_fd, pid_t *pid, struct serr *err)
{
    struct host_child c = {.argv = argv, .envp = envp, .out_fd = out_fd};
    c.confine = parse_cpuset(cpuset, &c.cores);
    if (cpuset && !c.confine)
        return serr_set(err, SERR_INVALID, "host job %s: bad cpuset '%s'", id, cpuset);
    int cgroup_fds[HOST_MAX_CGROUPS];
    if (open_cgroup_procs(rt, id, cgroup_fds, HOST_MAX_CGROUPS, err) < 0) {
        close_fds(cgroup_fds);
        return -1;
    }
    c.cgroup_fds = cgroup_fds;
    int rc = (c.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0
                 ? serr_errno(err, "open /dev/null")
                 : clone_exec(&c, pid, err);
    if (c.null_fd >= 0)
        close(c.null_fd);
    close_fds(cgroup_fds);
    return rc;
}

/* The job's node file, when its spec gives one with its text. */
static int write_nodefile(json_t *spec, struct serr *err)
{
    const char *path = jstr(spec, "nodefile");
    json_t *text = json_object_get(spec, "nodefile_text");
    if (path == NULL || !json_is_string(text))
        return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return serr_errno(err, "open %s", path);
    int rc = write_all(fd, json_string_value(text), json_string_length(text));
    if (rc < 0)
        serr_errno(err, "write %s", path);
    close(fd);
    return rc < 0 ? -1 : 0;
}

int runtime_host_start(struct runtime *rt, const char *id, json_t *spec, int out_fd, pid_t *pid,
                       struct serr *err)
{
    if (runtime_check_id(id, err) < 0)
        return -1;
    char **argv = strv_of(json_object_get(spec, "args"));
    char **envp = strv_of(json_object_get(spec, "env"));
    int rc = 0;
    if (argv == NULL || argv[0] == NULL || argv[0][0] != '/' || envp == NULL)
        rc = serr_set(err, SERR_INVALID, "host job %s: args (absolute program first) and env "
                      "must be arrays of strings", id);
    json_t *limits = json_object_get(spec, "limits");
    const char *cpuset = jstr(limits, "cpuset");
    if (rc == 0)
        rc = write_nodefile(spec, err);
    if (rc == 0)
        rc = runtime_cgroup_create_host(rt, id, spec, err);
    if (rc == 0 && start_child(rt, id, argv, envp, cpuset, out_fd, pid, err) < 0) {
        runtime_cgroup_remove(rt, id, NULL);
        rc = -1;
    }
    runtime_strv_free(argv);
    runtime_strv_free(envp);
    return rc;
}

/* SIGKILL to every process still in the job's cpuset cgroup (its
 * background processes, also those that left its process group). Those
 * reparented to the daemon (a child subreaper) are reaped here: nobody else
 * waits for them. True when there was one, or when it is not known (no
 * cpuset cgroup, or its list could not be read). */
static bool kill_cgroup_procs(const struct runtime *rt, const char *id)
{
    char *dir = runtime_cgroup_cpuset_dir(rt, id);
    if (dir == NULL)
        return true; /* not known */
    char *path = xasprintf("%s/cgroup.procs", dir);
    FILE *f = fopen(path, "re");
    long pid;
    bool found = false;
    while (f && fscanf(f, "%ld", &pid) == 1) {
        found = true;
        if (pid <= 1 || kill((pid_t)pid, SIGKILL) < 0)
            continue;
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
            ; /* ECHILD: another's child, its parent reaps it */
    }
    if (f)
        fclose(f);
    free(path);
    free(dir);
    return found || f == NULL;
}

/* The job's cgroups kept for the next host job when none of its processes
 * was left in them (those killed may still be exiting: removed then). */
int runtime_host_delete(struct runtime *rt, const char *id, struct serr *err)
{
    if (runtime_check_id(id, err) < 0)
        return -1;
    bool left = kill_cgroup_procs(rt, id);
    return runtime_cgroup_release_host(rt, id, !left, err);
}
