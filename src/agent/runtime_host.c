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
#include <sys/socket.h>
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

/* Between fork and exec: async-signal-safe calls only. Leads its own
 * session and process group, says so on `gate`, waits for the parent to
 * have placed it in its cgroups (EOF on gate), then execs. */
static void child_exec(int gate, int null_fd, int out_fd, const cpu_set_t *cores, bool confine,
                       char **argv, char **envp)
{
    char byte = setsid() < 0 ? 'e' : 's';
    if (write(gate, &byte, 1) != 1)
        _exit(126);
    while (read(gate, &byte, 1) < 0 && errno == EINTR)
        ;
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL); /* the daemon ignores SIGPIPE: not its jobs */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (confine && sched_setaffinity(0, sizeof(*cores), cores) < 0)
        _exit(126);
    if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0 || chdir("/") < 0)
        _exit(126);
    execve(argv[0], argv, envp);
    _exit(127);
}

/* Waits for the child to lead its process group: the agent may signal the
 * group as soon as this returns. */
static int child_session(pid_t child, int gate, struct serr *err)
{
    char byte = 0;
    ssize_t n;
    while ((n = read(gate, &byte, 1)) < 0 && errno == EINTR)
        ;
    if (n == 1 && byte == 's')
        return 0;
    return serr_set(err, SERR_INTERNAL, "host job: process %d could not start a session",
                    (int)child);
}

/* One gated fork at a time: a child forked while another's gate is open
 * holds a copy of that gate's write end until it execs, and waits on its own
 * gate, which the other may hold in turn: both would wait for ever (two host
 * jobs of `true` stayed Running when started together from the thread pool). */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;

static int fork_gated_locked(const struct runtime *rt, const char *id, char **argv,
                             char **envp, const char *cpuset, int out_fd, pid_t *pid,
                             struct serr *err);

static int fork_gated(const struct runtime *rt, const char *id, char **argv, char **envp,
                      const char *cpuset, int out_fd, pid_t *pid, struct serr *err)
{
    pthread_mutex_lock(&gate_lock);
    int rc = fork_gated_locked(rt, id, argv, envp, cpuset, out_fd, pid, err);
    pthread_mutex_unlock(&gate_lock);
    return rc;
}

static int fork_gated_locked(const struct runtime *rt, const char *id, char **argv,
                             char **envp, const char *cpuset, int out_fd, pid_t *pid,
                             struct serr *err)
{
    cpu_set_t cores;
    bool confine = parse_cpuset(cpuset, &cores);
    if (cpuset && !confine)
        return serr_set(err, SERR_INVALID, "host job %s: bad cpuset '%s'", id, cpuset);
    int gate[2], null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0)
        return serr_errno(err, "open /dev/null");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gate) < 0) {
        close(null_fd);
        return serr_errno(err, "socketpair");
    }
    pid_t child = fork();
    if (child == 0) {
        close(gate[1]); /* the parent's end: its close is the go */
        child_exec(gate[0], null_fd, out_fd, &cores, confine, argv, envp);
    }
    close(gate[0]);
    close(null_fd);
    int rc = child < 0 ? serr_errno(err, "fork") : child_session(child, gate[1], err);
    if (rc == 0)
        rc = runtime_cgroup_place_host(rt, id, child, err);
    if (rc < 0 && child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    close(gate[1]); /* the child goes on */
    *pid = child;
    return rc;
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
        rc = runtime_cgroup_create_host(rt, id, spec, err);
    if (rc == 0 && fork_gated(rt, id, argv, envp, cpuset, out_fd, pid, err) < 0) {
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
 * waits for them. */
static void kill_cgroup_procs(const struct runtime *rt, const char *id)
{
    char *dir = runtime_cgroup_cpuset_dir(rt, id);
    if (dir == NULL)
        return;
    char *path = xasprintf("%s/cgroup.procs", dir);
    FILE *f = fopen(path, "re");
    long pid;
    while (f && fscanf(f, "%ld", &pid) == 1) {
        if (pid <= 1 || kill((pid_t)pid, SIGKILL) < 0)
            continue;
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
            ; /* ECHILD: another's child, its parent reaps it */
    }
    if (f)
        fclose(f);
    free(path);
    free(dir);
}

int runtime_host_delete(struct runtime *rt, const char *id, struct serr *err)
{
    if (runtime_check_id(id, err) < 0)
        return -1;
    kill_cgroup_procs(rt, id);
    return runtime_cgroup_remove(rt, id, err);
}
