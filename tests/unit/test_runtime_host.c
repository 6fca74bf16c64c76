/* Host jobs' processes (agent/runtime_host.c), without cgroups (a v2 host:
 * crun's business there), so not as root; the last test, as root on a v1
 * host, with shoal's own cgroups kept from one job to the next. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/runtime.h"
#include "agent/runtime_internal.h"
#include "base/util.h"
#include "unit.h"

static pid_t start(struct runtime *rt, const char *script, const char *cpuset, int out_fd,
                   struct serr *err)
{
    json_t *spec = json_pack("{s:[s, s, s], s:[s], s:{s:s}}", "args", "/bin/sh", "-c", script,
                             "env", "FOO=bar", "limits", "cpuset", cpuset);
    pid_t pid = 0;
    int rc = runtime_host_start(rt, "hostjob1", spec, out_fd, &pid, err);
    json_decref(spec);
    return rc < 0 ? -1 : pid;
}

/* The exit code of child `pid` (-1 if it did not exit), and all it wrote on
 * `fd` (closed) into out, NUL-terminated. */
static int exit_code_and_output(pid_t pid, int fd, char *out, size_t len)
{
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    size_t used = 0;
    ssize_t n;
    while (used + 1 < len && (n = read(fd, out + used, len - 1 - used)) > 0)
        used += (size_t)n;
    out[used] = '\0';
    close(fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(runtime_host_env_cores_group_and_exit_code)
{
    struct runtime rt = {.cgroup_mode = CGROUP_V2};
    struct serr err = {0};
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = start(&rt, "grep Cpus_allowed_list /proc/self/status; echo $FOO; "
                           "ps -o pgid= -p $$ 2>/dev/null || echo nops; exit 3", "0", fds[1], &err);
    CHECK(pid > 0);
    CHECK(getpgid(pid) == pid || getpgid(pid) < 0); /* its own group (or already gone) */
    close(fds[1]);
    char out[512];
    CHECK(exit_code_and_output(pid, fds[0], out, sizeof(out)) == 3);
    CHECK(strstr(out, "Cpus_allowed_list:\t0\n") != NULL);
    CHECK(strstr(out, "\nbar\n") != NULL);
    CHECK(runtime_host_delete(&rt, "hostjob1", &err) == 0);
}

TEST(runtime_host_group_killed)
{
    struct runtime rt = {.cgroup_mode = CGROUP_V2};
    struct serr err = {0};
    /* signalled once the shell runs (its "up" read): before its exec, the
     * child is still this process's copy (under valgrind, valgrind's) */
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = start(&rt, "echo up; sleep 100 & sleep 100", "0", fds[1], &err);
    close(fds[1]);
    CHECK(pid > 0);
    CHECK(getpgid(pid) == pid);
    char up[3] = "";
    CHECK(read(fds[0], up, 2) == 2 && strcmp(up, "up") == 0);
    CHECK(kill(-pid, SIGTERM) == 0);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    close(fds[0]);
}

TEST(runtime_host_bad_spec)
{
    struct runtime rt = {.cgroup_mode = CGROUP_V2};
    struct serr err = {0};
    pid_t pid;
    json_t *spec = json_pack("{s:[s], s:[]}", "args", "sh", "env");
    CHECK(runtime_host_start(&rt, "hostjob2", spec, -1, &pid, &err) < 0);
    CHECK(strstr(err.msg, "absolute") != NULL);
    json_decref(spec);
    CHECK(start(&rt, "true", "x", -1, &err) < 0);
    CHECK(strstr(err.msg, "bad cpuset") != NULL);
    json_t *good = json_pack("{s:[s], s:[]}", "args", "/bin/true", "env");
    CHECK(runtime_host_start(&rt, "../x", good, -1, &pid, &err) < 0); /* the id alone is bad */
    CHECK(strstr(err.msg, "invalid") != NULL);
    json_decref(good);
}

/* The node file is written before the command runs, which reads it. */
TEST(runtime_host_writes_the_node_file_first)
{
    struct runtime rt = {.cgroup_mode = CGROUP_V2};
    struct serr err = {0};
    char path[64];
    snprintf(path, sizeof(path), "/tmp/shoal-unit-nodefile-%d", (int)getpid());
    json_t *spec = json_pack("{s:[s, s, s, s], s:[], s:s, s:s}", "args", "/bin/sh", "-c",
                             "cat \"$0\"", path, "env", "nodefile", path, "nodefile_text",
                             "n1\nn1\n");
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = 0;
    CHECK(runtime_host_start(&rt, "hostjob3", spec, fds[1], &pid, &err) == 0);
    close(fds[1]);
    char out[64];
    CHECK(exit_code_and_output(pid, fds[0], out, sizeof(out)) == 0);
    CHECK(strcmp(out, "n1\nn1\n") == 0);
    CHECK(unlink(path) == 0);
    json_decref(spec);
}

struct starter {
    int exited; /* of the starts, how many ended within the time */
};

/* Several threads start host processes at once (the agent forks them in
 * its thread pool): each ends. Two gated forks at once used to hold each
 * other's gate open, both children waiting for ever. */
static void *start_many(void *arg)
{
    struct starter *st = arg;
    struct runtime rt = {.cgroup_mode = CGROUP_V2};
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    for (int i = 0; i < 10; i++) {
        struct serr err = {0};
        json_t *spec = json_pack("{s:[s, s, s], s:[]}", "args", "/bin/sh", "-c", "true", "env");
        pid_t pid = 0;
        char id[32];
        snprintf(id, sizeof(id), "many%p%d", (void *)st, i);
        int rc = runtime_host_start(&rt, id, spec, out, &pid, &err);
        json_decref(spec);
        if (rc < 0)
            continue;
        for (int waited = 0; waited < 1000; waited++) { /* 10 s */
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                st->exited++;
                break;
            }
            usleep(10000);
        }
        if (kill(pid, 0) == 0) { /* stuck: end it for the next tests */
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    close(out);
    return NULL;
}

TEST(runtime_host_starts_at_once_all_end)
{
    struct starter st[4] = {{0}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, start_many, &st[i]) == 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(st[i].exited == 10);
    }
}

/* ---- v1 cgroups kept from one host job to the next (as root) ---------- */

static const char *const pool_controllers[] = {"memory", "cpu", "cpuacct", "pids", "cpuset",
                                               "devices", NULL};

/* The first unsigned number in file `path` (0 when it cannot be read). */
static unsigned long long number_in(const char *path)
{
    FILE *f = fopen(path, "re");
    unsigned long long v = 0;
    if (f && fscanf(f, "%llu", &v) != 1)
        v = 0;
    if (f)
        fclose(f);
    return v;
}

/* Runs host job `id` on `cores` with `script` to its end, then deletes it:
 * the inode of its cpuset cgroup (the same one when reused) and its CPU
 * usage in ns (cpuacct.usage). The job checks it runs in its cpuset cgroup. */
static ino_t run_pooled(struct runtime *rt, const char *parent, const char *id,
                        const char *cores, const char *script, unsigned long long *usage)
{
    char *check = xasprintf("grep -q ':cpuset:/%s/%s$' /proc/self/cgroup || exit 9; %s", parent,
                            id, script);
    json_t *spec = json_pack("{s:[s, s, s], s:[], s:{s:s, s:i}}", "args", "/bin/sh", "-c", check,
                             "env", "limits", "cpuset", cores, "cpus", 1);
    struct serr err = {0};
    pid_t pid = 0;
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    CHECK(runtime_host_start(rt, id, spec, out, &pid, &err) == 0);
    close(out);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *dir = xasprintf("/sys/fs/cgroup/cpuset/%s/%s", parent, id);
    char *cpus = xasprintf("%s/cpuset.cpus", dir), *acct = xasprintf(
        "/sys/fs/cgroup/cpuacct/%s/%s/cpuacct.usage", parent, id);
    struct stat st;
    CHECK(stat(dir, &st) == 0);
    CHECK(number_in(cpus) == strtoull(cores, NULL, 10));
    *usage = number_in(acct);
    CHECK(runtime_host_delete(rt, id, &err) == 0);
    CHECK(access(dir, F_OK) != 0); /* kept under another name, or removed */
    free(acct);
    free(cpus);
    free(dir);
    free(check);
    json_decref(spec);
    return st.st_ino;
}

/* v1: the cgroups of an ended host job are kept (renamed) and the next
 * host job gets them (the same cgroup: no mkdir nor rmdir per job), with
 * its own cores and its CPU usage counted from zero; runtime_free removes
 * what the pool kept. */
TEST(runtime_host_reuses_an_ended_jobs_cgroups)
{
    if (geteuid() != 0 || access("/sys/fs/cgroup/cpuset/cpuset.cpus", F_OK) != 0 ||
        access("/sys/fs/cgroup/cpuacct/cpuacct.usage", F_OK) != 0)
        return; /* v2 or not root: no cgroups of shoal's own */
    char parent[64], tmp[] = "/tmp/shoal-unit-pool-XXXXXX";
    snprintf(parent, sizeof(parent), "shoal-ut-pool-%d", (int)getpid());
    runtime_cgroup_set_parent(parent);
    CHECK(mkdtemp(tmp) != NULL);
    char *root = xasprintf("%s/crun", tmp), *dir = xasprintf("%s/containers", tmp);
    struct runtime rt;
    struct serr err = {0};
    CHECK(runtime_init(&rt, NULL, root, dir, &err) == 0);
    const char *last = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? "1" : "0";
    unsigned long long busy = 0, idle = 0;
    ino_t first = run_pooled(&rt, parent, "pool1", "0",
                             "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done", &busy);
    ino_t second = run_pooled(&rt, parent, "pool2", last, "true", &idle);
    CHECK(first == second);
    CHECK(idle < busy);
    runtime_free(&rt);
    char *cpuset_parent = xasprintf("/sys/fs/cgroup/cpuset/%s", parent);
    DIR *d = opendir(cpuset_parent);
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        CHECK(strncmp(e->d_name, ".pool-", 6) != 0);
    closedir(d);
    for (size_t i = 0; pool_controllers[i] != NULL; i++) {
        char *p = xasprintf("/sys/fs/cgroup/%s/%s", pool_controllers[i], parent);
        CHECK(rmdir(p) == 0 || errno == ENOENT);
        free(p);
    }
    runtime_cgroup_set_parent("shoal");
    CHECK(rm_rf(tmp, &err) == 0);
    free(cpuset_parent);
    free(root);
    free(dir);
}
