/* Container runtime tests. They really run crun on a busybox rootfs, so they
 * need root, crun, /bin/busybox and overlayfs; without them they pass
 * without checking anything (and say so). Everything lives under a mkdtemp
 * directory removed at the end. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/runtime.h"
#include "agent/runtime_internal.h"
#include "base/util.h"
#include "unit.h"

static const char *const busybox_applets[] = {"sh",    "echo", "sleep", "cat",     "id",
                                              "pwd",   "touch", "mount", "unshare", "true",
                                              "mkdir", "grep",  NULL};

struct fixture {
    char tmp[64];
    char *layer;
    const char *layers[2];
    struct runtime rt;
};

static bool can_run_containers(void)
{
    if (geteuid() != 0 || access("/bin/busybox", X_OK) != 0 || system("command -v crun >/dev/null") != 0) {
        fprintf(stderr, "skipped: needs root, crun and /bin/busybox\n");
        return false;
    }
    return true;
}

static void copy_executable(const char *from, const char *to)
{
    char *data = NULL;
    size_t len = 0;
    CHECK(read_file(from, &data, &len, NULL) == 0);
    CHECK(write_file_atomic(to, data, len, false, NULL) == 0);
    CHECK(chmod(to, 0755) == 0);
    free(data);
}

/* A one-layer image: /bin/busybox and its applets as symlinks. */
static char *make_busybox_layer(const char *tmp)
{
    char *layer = xasprintf("%s/layer", tmp);
    char *bin = xasprintf("%s/bin", layer);
    CHECK(mkdir_p(bin, 0755, NULL) == 0);
    char *busybox = xasprintf("%s/busybox", bin);
    copy_executable("/bin/busybox", busybox);
    for (size_t i = 0; busybox_applets[i] != NULL; i++) {
        char *link = xasprintf("%s/%s", bin, busybox_applets[i]);
        CHECK(symlink("busybox", link) == 0);
        free(link);
    }
    char *mnt = xasprintf("%s/mnt", layer);
    CHECK(mkdir(mnt, 0755) == 0);
    free(mnt);
    free(busybox);
    free(bin);
    return layer;
}

/* A runtime under a new temporary directory, with a busybox layer: false
 * (the test then checks nothing) where containers cannot run. */
static bool setup(struct fixture *fx)
{
    if (!can_run_containers())
        return false;
    /* The containers' inits are reparented to us once crun exits. */
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    strcpy(fx->tmp, "/tmp/shoal-rt-XXXXXX");
    CHECK(mkdtemp(fx->tmp) != NULL);
    fx->layer = make_busybox_layer(fx->tmp);
    fx->layers[0] = fx->layer;
    fx->layers[1] = NULL;
    char *root = xasprintf("%s/crun", fx->tmp), *dir = xasprintf("%s/containers", fx->tmp);
    struct serr err = {0};
    if (runtime_init(&fx->rt, NULL, root, dir, &err) < 0) {
        fprintf(stderr, "runtime_init: %s\n", err.msg);
        CHECK(0);
    }
    free(root);
    free(dir);
    return true;
}

static void teardown(struct fixture *fx)
{
    struct serr err = {0};
    if (rm_rf(fx->tmp, &err) < 0)
        fprintf(stderr, "cleanup %s: %s\n", fx->tmp, err.msg);
    runtime_free(&fx->rt);
    free(fx->layer);
}

static json_t *spec_of(const char *text)
{
    json_error_t jerr;
    json_t *spec = json_loads(text, 0, &jerr);
    if (spec == NULL)
        fprintf(stderr, "bad test spec: %s\n", jerr.text);
    CHECK(spec != NULL);
    return spec;
}

/* A container id of this process's own: its cgroups are /shoal/<id>, and
 * two runs of the unit tests at once must not share them. */
#define ID_MAX 40
static void unique_id(char id[ID_MAX], const char *name)
{
    snprintf(id, ID_MAX, "%s-%d", name, (int)getpid());
}

static bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static char *bundle_of(struct fixture *fx, const char *id)
{
    return xasprintf("%s/%s", fx->rt.containers_dir, id);
}

/* A created (not started) container whose output goes to *out_read. */
static pid_t create_ok(struct fixture *fx, const char *id, const char *spec_text, int *out_read)
{
    int fds[2];
    CHECK(pipe2(fds, O_CLOEXEC) == 0);
    json_t *spec = spec_of(spec_text);
    struct serr err = {0};
    pid_t pid = 0;
    int rc = runtime_create(&fx->rt, id, spec, fx->layers, fds[1], &pid, &err);
    json_decref(spec);
    close(fds[1]);
    if (rc < 0)
        fprintf(stderr, "runtime_create: %s\n", err.msg);
    CHECK(rc == 0 && pid > 0);
    *out_read = fds[0];
    return pid;
}

static void start_ok(struct fixture *fx, const char *id)
{
    struct serr err = {0};
    if (runtime_start(&fx->rt, id, &err) < 0) {
        fprintf(stderr, "runtime_start: %s\n", err.msg);
        CHECK(0);
    }
}

/* Reads everything until the container closes its output. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (n += (size_t)r) == cap - 1)
            break;
    }
    close(fd);
    buf[n] = '\0';
    return n;
}

static int wait_status(pid_t pid)
{
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    return status;
}

static void delete_ok(struct fixture *fx, const char *id)
{
    struct serr err = {0};
    if (runtime_delete(&fx->rt, id, &err) < 0) {
        fprintf(stderr, "runtime_delete: %s\n", err.msg);
        CHECK(0);
    }
}

/* Runs a container to completion: output in out, returns the wait status. */
static double elapsed_ms(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static int run_to_exit(struct fixture *fx, const char *id, const char *spec_text, char *out,
                       size_t cap)
{
    struct timespec t[5];
    int out_read;
    clock_gettime(CLOCK_MONOTONIC, &t[0]);
    pid_t pid = create_ok(fx, id, spec_text, &out_read);
    clock_gettime(CLOCK_MONOTONIC, &t[1]);
    start_ok(fx, id);
    clock_gettime(CLOCK_MONOTONIC, &t[2]);
    read_all(out_read, out, cap);
    int status = wait_status(pid);
    clock_gettime(CLOCK_MONOTONIC, &t[3]);
    delete_ok(fx, id);
    clock_gettime(CLOCK_MONOTONIC, &t[4]);
    fprintf(stderr, "%s: create %.1f ms, start %.1f ms, run %.1f ms, delete %.1f ms\n", id,
            elapsed_ms(&t[0], &t[1]), elapsed_ms(&t[1], &t[2]), elapsed_ms(&t[2], &t[3]),
            elapsed_ms(&t[3], &t[4]));
    return status;
}

TEST(runtime_echo_and_exit_code)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "echo1");
    char out[256];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = run_to_exit(&fx, id, "{\"args\":[\"sh\",\"-c\",\"echo hi; exit 3\"]}", out,
                             sizeof(out));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "create+start+exit+delete of an echo: %.1f ms\n", elapsed_ms(&t0, &t1));
    CHECK_STR(out, "hi\n");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    teardown(&fx);
}

TEST(runtime_env_workdir_user)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "env1");
    char out[256];
    int status = run_to_exit(&fx, id,
                             "{\"args\":[\"sh\",\"-c\",\"echo $FOO; pwd; id -u; id -g; hostname\"],"
                             " \"env\":[\"PATH=/bin\",\"FOO=bar baz\"], \"workdir\":\"/srv/app\","
                             " \"user\":\"1000:1001\", \"hostname\":\"web-1\"}",
                             out, sizeof(out));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_STR(out, "bar baz\n/srv/app\n1000\n1001\nweb-1\n");
    teardown(&fx);
}

static char *read_text(const char *path)
{
    char *text = NULL;
    CHECK(read_file(path, &text, NULL, NULL) == 0);
    return text;
}

/* The text of a file of container id's cgroup (controller "" on v2). */
static char *cgroup_text(const char *controller, const char *id, const char *file)
{
    char *path = xasprintf("/sys/fs/cgroup/%s/shoal/%s/%s", controller, id, file);
    char *text = read_text(path);
    free(path);
    return text;
}

TEST(runtime_limits_reach_cgroups)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "lim1");
    int out_read;
    pid_t pid = create_ok(&fx, id,
                          "{\"args\":[\"true\"], \"limits\":{\"memory\":67108864, \"cpus\":0.5,"
                          " \"cpuset\":\"0\"}}",
                          &out_read);
    if (fx.rt.cgroup_mode == CGROUP_V2) {
        char *mem = cgroup_text("", id, "memory.max");
        CHECK_STR(mem, "67108864\n");
        free(mem);
    } else {
        char *mem = cgroup_text("memory", id, "memory.limit_in_bytes");
        char *quota = cgroup_text("cpu", id, "cpu.cfs_quota_us");
        char *procs = cgroup_text("memory", id, "cgroup.procs");
        CHECK_STR(mem, "67108864\n");
        CHECK_STR(quota, "50000\n");
        CHECK(atoi(procs) == pid);
        char *cpuset = cgroup_text("cpuset", id, "cpuset.cpus");
        CHECK_STR(cpuset, "0\n"); /* a batch job's cores */
        free(cpuset);
        free(mem);
        free(quota);
        free(procs);
    }
    start_ok(&fx, id);
    char out[64];
    read_all(out_read, out, sizeof(out));
    CHECK(WIFEXITED(wait_status(pid)));
    delete_ok(&fx, id);
    teardown(&fx);
}

TEST(runtime_bind_mounts)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "bind1");
    char *ro = xasprintf("%s/ro", fx.tmp), *rw = xasprintf("%s/rw", fx.tmp);
    char *file = xasprintf("%s/f", ro);
    CHECK(mkdir(ro, 0755) == 0 && mkdir(rw, 0755) == 0);
    CHECK(write_file_atomic(file, "content\n", 8, false, NULL) == 0);
    char *spec = xasprintf(
        "{\"args\":[\"sh\",\"-c\",\"cat /ro/f; touch /ro/x 2>/dev/null; echo ro=$?; "
        "touch /rw/y; echo rw=$?\"], \"mounts\":["
        "{\"type\":\"bind\",\"source\":\"%s\",\"target\":\"/ro\",\"readonly\":true},"
        "{\"type\":\"bind\",\"source\":\"%s\",\"target\":\"/rw\"}]}",
        ro, rw);
    char out[256];
    run_to_exit(&fx, id, spec, out, sizeof(out));
    CHECK_STR(out, "content\nro=1\nrw=0\n");
    char *created = xasprintf("%s/y", rw);
    CHECK(path_exists(created));
    free(created);
    free(spec);
    free(file);
    free(ro);
    free(rw);
    teardown(&fx);
}

TEST(runtime_missing_bind_source)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "bad1");
    json_t *spec = spec_of("{\"args\":[\"true\"], \"mounts\":[{\"type\":\"bind\","
                           "\"source\":\"/nonexistent/x\",\"target\":\"/x\"}]}");
    struct serr err = {0};
    pid_t pid = 0;
    CHECK(runtime_create(&fx.rt, id, spec, fx.layers, -1, &pid, &err) < 0);
    CHECK(err.kind == SERR_INVALID);
    CHECK_STR(err.msg, "invalid mount config for type \"bind\": bind source path does not exist: "
                       "/nonexistent/x");
    char *bundle = bundle_of(&fx, id);
    CHECK(!path_exists(bundle));
    free(bundle);
    json_decref(spec);
    teardown(&fx);
}

static bool cgroup_left(const char *id)
{
    static const char *const controllers[] = {"memory", "cpu",    "cpuacct", "pids",
                                              "devices", "cpuset", "",        NULL};
    for (size_t i = 0; controllers[i] != NULL; i++) {
        char *dir = xasprintf("/sys/fs/cgroup/%s/shoal/%s", controllers[i], id);
        bool left = path_exists(dir);
        free(dir);
        if (left)
            return true;
    }
    return false;
}

static bool mounted(const char *path)
{
    char *mountinfo = read_text("/proc/self/mountinfo");
    char *needle = xasprintf(" %s ", path);
    bool found = strstr(mountinfo, needle) != NULL;
    free(needle);
    free(mountinfo);
    return found;
}

/* No bundle, no rootfs mount, no cgroup, no crun state. */
static void check_nothing_left(struct fixture *fx, const char *id)
{
    char *bundle = bundle_of(fx, id);
    char *rootfs = xasprintf("%s/rootfs", bundle);
    char *state = xasprintf("%s/%s", fx->rt.runtime_root, id);
    CHECK(!path_exists(bundle));
    CHECK(!mounted(rootfs));
    CHECK(!path_exists(state));
    CHECK(!cgroup_left(id));
    free(state);
    free(rootfs);
    free(bundle);
}

TEST(runtime_missing_executable)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "noexec1");
    json_t *spec = spec_of("{\"args\":[\"nope\"], \"limits\":{\"memory\":67108864}}");
    struct serr err = {0};
    pid_t pid = 0;
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    CHECK(runtime_create(&fx.rt, id, spec, fx.layers, out, &pid, &err) < 0);
    close(out);
    if (strstr(err.msg, "executable file `nope` not found in $PATH") == NULL)
        fprintf(stderr, "unexpected error: %s\n", err.msg);
    CHECK(strstr(err.msg, "executable file `nope` not found in $PATH") != NULL);
    CHECK(err.kind == SERR_INVALID);
    check_nothing_left(&fx, id);
    json_decref(spec);
    teardown(&fx);
}

/* FS_TOPDIR_FL is set on fx->tmp's subdirectory `name`. */
static bool spreads_subdirs(struct fixture *fx, const char *name)
{
    char *path = xasprintf("%s/%s", fx->tmp, name);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), flags = 0;
    bool set = fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_TOPDIR_FL);
    if (fd >= 0)
        close(fd);
    free(path);
    return set;
}

TEST(runtime_init_spreads_bundles_and_crun_state_over_ext4s_groups)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    struct statfs fs;
    CHECK(statfs(fx.tmp, &fs) == 0);
    if (fs.f_type == EXT4_SUPER_MAGIC) /* elsewhere the flag does not exist */
        CHECK(spreads_subdirs(&fx, "containers") && spreads_subdirs(&fx, "crun"));
    teardown(&fx);
}

TEST(runtime_init_is_pid1)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "init1");
    CHECK(fx.rt.init_path != NULL);
    char out[256];
    run_to_exit(&fx, id, "{\"args\":[\"cat\",\"/proc/1/cmdline\"], \"init\":true}", out,
                sizeof(out));
    /* cmdline is NUL separated: the first word is enough. */
    CHECK_STR(out, "/sbin/shoal-init");
    teardown(&fx);
}

TEST(runtime_kill_and_delete)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "kill1");
    int out_read;
    pid_t pid = create_ok(&fx, id, "{\"args\":[\"sleep\",\"100\"]}", &out_read);
    start_ok(&fx, id);
    uint64_t cpu_ns = 0, mem_bytes = 0;
    int stats_rc = -1;
    /* a cgroup's usage is charged in per-CPU batches: it may read 0 at first */
    for (int i = 0; i < 100 && (stats_rc != 0 || mem_bytes == 0); i++) {
        stats_rc = runtime_stats(&fx.rt, id, &cpu_ns, &mem_bytes);
        if (mem_bytes == 0)
            usleep(20 * 1000);
    }
    struct serr err = {0};
    CHECK(runtime_kill(&fx.rt, id, SIGKILL, &err) == 0);
    int status = wait_status(pid);
    /* checked after the kill: a failed check must not leave the container behind */
    CHECK(stats_rc == 0 && mem_bytes > 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(out_read);
    delete_ok(&fx, id);
    check_nothing_left(&fx, id);
    delete_ok(&fx, id); /* idempotent */
    CHECK(runtime_kill(&fx.rt, id, SIGTERM, &err) < 0 && err.kind == SERR_NOT_FOUND);
    CHECK(runtime_start(&fx.rt, id, &err) < 0 && err.kind == SERR_NOT_FOUND);
    CHECK(runtime_kill(&fx.rt, "../x", SIGTERM, &err) < 0 && err.kind == SERR_INVALID);
    teardown(&fx);
}

TEST(runtime_delete_running_container)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "del1");
    int out_read;
    pid_t pid = create_ok(&fx, id, "{\"args\":[\"sleep\",\"100\"]}", &out_read);
    start_ok(&fx, id);
    delete_ok(&fx, id);
    CHECK(WIFSIGNALED(wait_status(pid)));
    close(out_read);
    check_nothing_left(&fx, id);
    teardown(&fx);
}

TEST(runtime_seccomp_denies_mount_and_unshare)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "sec1");
    char out[512];
    run_to_exit(&fx, id,
                "{\"args\":[\"sh\",\"-c\",\"unshare -u true 2>/dev/null; echo unshare=$?; "
                "mount -t tmpfs t /mnt 2>/dev/null; echo mount=$?; grep Seccomp: /proc/self/status\"]}",
                out, sizeof(out));
    /* Both also need CAP_SYS_ADMIN; Seccomp 2 shows the filter is there. */
    CHECK_STR(out, "unshare=1\nmount=1\nSeccomp:\t2\n");
    teardown(&fx);
}

struct parallel_run {
    struct fixture *fx;
    char id[ID_MAX];
    char out[64];
    int status;
};

static void *run_echo_thread(void *arg)
{
    struct parallel_run *run = arg;
    char *spec = xasprintf("{\"args\":[\"echo\",\"%s\"]}", run->id);
    run->status = run_to_exit(run->fx, run->id, spec, run->out, sizeof(run->out));
    free(spec);
    return NULL;
}

#define PARALLEL_RUNS 4

/* Runs `thread` on PARALLEL_RUNS containers <prefix>0.. at once; each echoed
 * its id and exited 0. */
static void run_in_threads(struct fixture *fx, const char *prefix, void *(*thread)(void *),
                           struct parallel_run runs[PARALLEL_RUNS])
{
    pthread_t threads[PARALLEL_RUNS];
    for (int i = 0; i < PARALLEL_RUNS; i++) {
        runs[i].fx = fx;
        char name[16];
        snprintf(name, sizeof(name), "%s%d", prefix, i);
        unique_id(runs[i].id, name);
        CHECK(pthread_create(&threads[i], NULL, thread, &runs[i]) == 0);
    }
    for (int i = 0; i < PARALLEL_RUNS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        char want[ID_MAX + 1];
        snprintf(want, sizeof(want), "%s\n", runs[i].id);
        CHECK_STR(runs[i].out, want);
        CHECK(WIFEXITED(runs[i].status) && WEXITSTATUS(runs[i].status) == 0);
    }
}

/* The daemon calls the runtime from libuv's thread pool. */
TEST(runtime_parallel_containers)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    struct parallel_run runs[PARALLEL_RUNS];
    run_in_threads(&fx, "par", run_echo_thread, runs);
    teardown(&fx);
}

/* runtime_run_io of spec_text: its pid, its output to *out_read. */
static pid_t run_io_ok(struct fixture *fx, const char *id, const char *spec_text, int *out_read)
{
    int fds[2];
    CHECK(pipe2(fds, O_CLOEXEC) == 0);
    json_t *spec = spec_of(spec_text);
    struct serr err = {0};
    struct runtime_io io = {.in_fd = -1, .out_fd = fds[1]};
    pid_t pid = 0;
    int rc = runtime_run_io(&fx->rt, id, spec, fx->layers, &io, &pid, &err);
    json_decref(spec);
    close(fds[1]);
    if (rc < 0)
        fprintf(stderr, "runtime_run_io: %s\n", err.msg);
    CHECK(rc == 0 && pid > 0 && io.term_fd < 0);
    *out_read = fds[0];
    return pid;
}

/* Our children named `name` (/proc/self/task/TID/children, one list per thread). */
static int children_named(const char *name)
{
    DIR *tasks = opendir("/proc/self/task");
    struct dirent *de;
    int count = 0;
    while (tasks && (de = readdir(tasks)) != NULL) {
        char path[96], *list = NULL, *save = NULL;
        snprintf(path, sizeof(path), "/proc/self/task/%s/children", de->d_name);
        if (de->d_name[0] == '.' || read_file(path, &list, NULL, NULL) < 0)
            continue;
        for (char *pid = strtok_r(list, " ", &save); pid; pid = strtok_r(NULL, " ", &save)) {
            char *comm_path = xasprintf("/proc/%s/comm", pid), *comm = NULL;
            char *want = xasprintf("%s\n", name);
            if (read_file(comm_path, &comm, NULL, NULL) == 0 && strcmp(comm, want) == 0)
                count++;
            free(want);
            free(comm);
            free(comm_path);
        }
        free(list);
    }
    if (tasks)
        closedir(tasks);
    return count;
}

/* The parent of process `pid` (/proc/PID/status), 0 when gone. */
static long parent_of(pid_t pid)
{
    char *path = xasprintf("/proc/%d/status", (int)pid), *text = NULL;
    long ppid = 0;
    if (read_file(path, &text, NULL, NULL) == 0 && strstr(text, "\nPPid:"))
        ppid = strtol(strstr(text, "\nPPid:") + 7, NULL, 10);
    free(text);
    free(path);
    return ppid;
}

/* One call (`crun run --detach`): the command's output, the container's
 * init in its v1 cgroups (crun joined them first) and our child as soon as
 * the call returns, crun's detached process reaped (at once, or as an orphan). */
TEST(runtime_run_in_one_call)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "one1");
    int out_read;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = run_io_ok(&fx, id,
                          "{\"args\":[\"sh\",\"-c\",\"echo hi; exec sleep 100 >&- 2>&-\"],"
                          " \"limits\":{\"cpus\":0.5}}",
                          &out_read);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "run in one call: %.1f ms\n", elapsed_ms(&t0, &t1));
    long parent = parent_of(pid);
    char want[32], *procs[4] = {NULL};
    snprintf(want, sizeof(want), "%d\n", (int)pid);
    static const char *const controllers[] = {"memory", "cpu", "pids", "devices"};
    for (size_t i = 0; i < 4 && fx.rt.cgroup_mode != CGROUP_V2; i++) {
        char *path = xasprintf("/sys/fs/cgroup/%s/shoal/%s/cgroup.procs", controllers[i], id);
        procs[i] = read_text(path);
        free(path);
    }
    char out[64];
    read_all(out_read, out, sizeof(out)); /* sleep runs with its output closed */
    int left = 1;
    for (int i = 0; i < 200 && left > 0; i++) {
        runtime_reap_orphans();
        if ((left = children_named("crun")) > 0)
            usleep(10 * 1000);
    }
    struct serr err = {0};
    CHECK(runtime_kill(&fx.rt, id, SIGKILL, &err) == 0);
    int status = wait_status(pid);
    /* checked after the kill: a failed check must not leave the container behind */
    for (size_t i = 0; i < 4 && fx.rt.cgroup_mode != CGROUP_V2; i++) {
        char *listed = xasprintf("\n%s", procs[i]), *line = xasprintf("\n%s", want);
        CHECK(strstr(listed, line) != NULL);
        free(listed);
        free(line);
        free(procs[i]);
    }
    CHECK(left == 0);
    CHECK(parent == (long)getpid());
    CHECK_STR(out, "hi\n");
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    delete_ok(&fx, id);
    check_nothing_left(&fx, id);
    teardown(&fx);
}

/* A command crun cannot find fails the one call as it fails create. */
TEST(runtime_run_in_one_call_missing_executable)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "noexec2");
    json_t *spec = spec_of("{\"args\":[\"nope\"]}");
    struct serr err = {0};
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    struct runtime_io io = {.in_fd = -1, .out_fd = out};
    pid_t pid = 0;
    CHECK(runtime_run_io(&fx.rt, id, spec, fx.layers, &io, &pid, &err) < 0);
    close(out);
    if (strstr(err.msg, "executable file `nope` not found in $PATH") == NULL)
        fprintf(stderr, "unexpected error: %s\n", err.msg);
    CHECK(strstr(err.msg, "executable file `nope` not found in $PATH") != NULL);
    CHECK(err.kind == SERR_INVALID);
    check_nothing_left(&fx, id);
    json_decref(spec);
    teardown(&fx);
}

/* The runtime runs crun through a script that appends each command line to
 * the text file it returns (new string, the caller frees). */
static char *log_crun_calls(struct fixture *fx)
{
    char *script = xasprintf("%s/logged-crun", fx->tmp), *calls = xasprintf("%s/calls", fx->tmp);
    char *text = xasprintf("#!/bin/sh\necho \"$*\" >>%s\nexec crun \"$@\"\n", calls);
    CHECK(write_file_atomic(script, text, strlen(text), false, NULL) == 0);
    CHECK(chmod(script, 0755) == 0);
    free(text);
    free(fx->rt.runtime_path);
    fx->rt.runtime_path = script;
    return calls;
}

/* A memory limit: create, placement of the init alone, start (crun must not
 * count against the limit): two crun calls, no `crun run`. */
TEST(runtime_run_with_memory_limit_in_two_calls)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    char id[ID_MAX];
    unique_id(id, "two1");
    char *calls_path = log_crun_calls(&fx);
    int out_read;
    pid_t pid = run_io_ok(&fx, id, "{\"args\":[\"echo\",\"hi\"],"
                          " \"limits\":{\"memory\":67108864}}", &out_read);
    char out[64];
    read_all(out_read, out, sizeof(out));
    CHECK_STR(out, "hi\n");
    CHECK(WIFEXITED(wait_status(pid)));
    char *calls = read_text(calls_path);
    CHECK(strstr(calls, " create ") != NULL && strstr(calls, " start ") != NULL);
    CHECK(strstr(calls, " run ") == NULL);
    free(calls);
    free(calls_path);
    delete_ok(&fx, id);
    check_nothing_left(&fx, id);
    teardown(&fx);
}

static void *run_io_thread(void *arg)
{
    struct parallel_run *run = arg;
    char *spec = xasprintf("{\"args\":[\"echo\",\"%s\"]}", run->id);
    int out_read;
    pid_t pid = run_io_ok(run->fx, run->id, spec, &out_read);
    read_all(out_read, run->out, sizeof(run->out));
    run->status = wait_status(pid);
    delete_ok(run->fx, run->id);
    free(spec);
    return NULL;
}

/* Children forked from several threads at once each join their own cgroups. */
TEST(runtime_run_in_one_call_from_threads)
{
    struct fixture fx;
    if (!setup(&fx))
        return;
    struct parallel_run runs[PARALLEL_RUNS];
    run_in_threads(&fx, "opar", run_io_thread, runs);
    for (int i = 0; i < PARALLEL_RUNS; i++)
        check_nothing_left(&fx, runs[i].id);
    teardown(&fx);
}

/* v1: the joined child (clone on a stack of its own) cannot exec the runtime:
 * it reports why on its pipe, and the start fails with that, leaving nothing.
 * Under `make test-asan` the child must leave no sanitizer report either. */
TEST(runtime_run_joined_exec_failure_reported)
{
    if (access("/sys/fs/cgroup/memory", F_OK) != 0)
        return; /* v2: crun places itself, no joined child */
    struct fixture fx;
    if (!setup(&fx))
        return;
    char *script = xasprintf("%s/not-executable", fx.tmp);
    CHECK(write_file_atomic(script, "#!/bin/sh\n", 10, false, NULL) == 0);
    CHECK(chmod(script, 0644) == 0);
    free(fx.rt.runtime_path);
    fx.rt.runtime_path = script;
    char id[ID_MAX];
    unique_id(id, "jfail1");
    json_t *spec = spec_of("{\"args\":[\"true\"]}");
    struct serr err = {0};
    struct runtime_io io = {.in_fd = -1, .out_fd = -1};
    pid_t pid = 0;
    CHECK(runtime_run_io(&fx.rt, id, spec, fx.layers, &io, &pid, &err) < 0);
    if (strstr(err.msg, "cannot run") == NULL || strstr(err.msg, "ermission denied") == NULL)
        fprintf(stderr, "unexpected error: %s\n", err.msg);
    CHECK(strstr(err.msg, "cannot run") != NULL && strstr(err.msg, "ermission denied") != NULL);
    check_nothing_left(&fx, id);
    json_decref(spec);
    teardown(&fx);
}

static const char *const parent_controllers[] = {"memory", "cpu", "cpuacct", "pids", "devices",
                                                  "cpuset", NULL};

static void remove_parent(const char *parent)
{
    for (size_t i = 0; parent_controllers[i] != NULL; i++) {
        char *dir = xasprintf("/sys/fs/cgroup/%s/%s", parent_controllers[i], parent);
        CHECK(rmdir(dir) == 0 || errno == ENOENT);
        free(dir);
    }
}

/* Docker's default rules, as a container's devices.list lists them. */
#define DEFAULT_DEVICES                                                                           \
    "c *:* m\nb *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:1 " \
    "rwm\nc 5:2 rwm\nc 136:* rwm\n"

/* One container in the cgroup parent `parent`: its cgroups have Docker's
 * device rules, the parent's cpus and mems (or the job's cores), its limits. */
static void check_container_cgroups(struct fixture *fx, const char *parent, const char *id,
                                    const char *limits)
{
    int out_read;
    char *spec = xasprintf("{\"args\":[\"cat\",\"/proc/self/cgroup\"], \"limits\":%s}", limits);
    pid_t pid = run_io_ok(fx, id, spec, &out_read);
    char *path = xasprintf("/sys/fs/cgroup/devices/%s/%s/devices.list", parent, id);
    char *devices = read_text(path);
    CHECK_STR(devices, DEFAULT_DEVICES);
    free(path);
    path = xasprintf("/sys/fs/cgroup/pids/%s/%s/pids.max", parent, id);
    char *pids = read_text(path);
    CHECK_STR(pids, "64\n");
    free(path);
    path = xasprintf("/sys/fs/cgroup/cpuset/%s/%s/cpuset.cpus", parent, id);
    char *cpus = read_text(path), *host_cpus = read_text("/sys/fs/cgroup/cpuset/cpuset.cpus");
    CHECK_STR(cpus, strstr(limits, "cpuset") ? "0\n" : host_cpus);
    free(path);
    path = xasprintf("/sys/fs/cgroup/cpuset/%s/%s/cpuset.mems", parent, id);
    char *mems = read_text(path), *host_mems = read_text("/sys/fs/cgroup/cpuset/cpuset.mems");
    CHECK_STR(mems, host_mems);
    char out[4096];
    read_all(out_read, out, sizeof(out));
    char *in = xasprintf("devices:/%s/%s\n", parent, id);
    CHECK(strstr(out, in) != NULL); /* the container ran in them */
    CHECK(WIFEXITED(wait_status(pid)));
    delete_ok(fx, id);
    check_nothing_left(fx, id);
    for (size_t i = 0; parent_controllers[i] != NULL; i++) {
        char *left = xasprintf("/sys/fs/cgroup/%s/%s/%s", parent_controllers[i], parent, id);
        CHECK(!path_exists(left));
        free(left);
    }
    free(in);
    free(path);
    free(mems);
    free(host_mems);
    free(cpus);
    free(host_cpus);
    free(pids);
    free(devices);
    free(spec);
}

/* v1: runtime_init writes the device rules, cpus, mems and clone_children
 * in the containers' parent cgroups, and a container's cgroups, made by
 * mkdir only, have the same rules and values as when they were written in
 * each; a parent with children already (made by an older shoal) cannot
 * take "a" in devices.deny: its containers get the rules written. */
TEST(runtime_cgroup_parents_pass_rules_on)
{
    if (!can_run_containers() || access("/sys/fs/cgroup/devices/devices.list", F_OK) != 0 ||
        access("/sys/fs/cgroup/cpuset/cpuset.cpus", F_OK) != 0)
        return; /* v2, or v1 without these controllers */
    char parent[64], old[64];
    snprintf(parent, sizeof(parent), "shoal-ut-%d", (int)getpid());
    snprintf(old, sizeof(old), "shoal-ut-old-%d", (int)getpid());
    runtime_cgroup_set_parent(parent);
    struct fixture fx;
    CHECK(setup(&fx)); /* can_run_containers above */
    CHECK(fx.rt.cgroup_devices_inherited && fx.rt.cgroup_cpuset_inherited);
    char *path = xasprintf("/sys/fs/cgroup/devices/%s/devices.list", parent);
    char *rules = read_text(path);
    CHECK_STR(rules, DEFAULT_DEVICES);
    check_container_cgroups(&fx, parent, "par1", "{\"pids\":64}");
    check_container_cgroups(&fx, parent, "par2", "{\"pids\":64, \"cpuset\":\"0\"}");
    struct runtime again; /* a daemon started again finds the rules there */
    char *root = xasprintf("%s/crun", fx.tmp), *dir = xasprintf("%s/containers", fx.tmp);
    struct serr err = {0};
    CHECK(runtime_init(&again, NULL, root, dir, &err) == 0);
    CHECK(again.cgroup_devices_inherited && again.cgroup_cpuset_inherited);
    runtime_free(&again);
    teardown(&fx);
    remove_parent(parent);

    /* the parent of an older shoal, with a container's cgroup in it */
    char *child = xasprintf("/sys/fs/cgroup/devices/%s/left", old);
    CHECK(mkdir_p(child, 0755, NULL) == 0);
    runtime_cgroup_set_parent(old);
    CHECK(setup(&fx));
    CHECK(!fx.rt.cgroup_devices_inherited && fx.rt.cgroup_cpuset_inherited);
    check_container_cgroups(&fx, old, "par3", "{\"pids\":64}");
    teardown(&fx);
    CHECK(rmdir(child) == 0);
    remove_parent(old);
    runtime_cgroup_set_parent("shoal");
    free(child);
    free(root);
    free(dir);
    free(rules);
    free(path);
}


/* ---- config.json, no crun needed -------------------------------------- */

static json_t *config_for(enum cgroup_mode mode, const char *spec_text)
{
    struct runtime rt = {.init_path = (char *)"/usr/bin/tini-static", .cgroup_mode = mode,
                         .recursive_ro = true};
    json_t *spec = spec_of(spec_text);
    struct serr err = {0};
    json_t *config = runtime_config_build(&rt, "c1", spec, &err);
    json_decref(spec);
    if (config == NULL)
        fprintf(stderr, "runtime_config_build: %s\n", err.msg);
    CHECK(config != NULL);
    return config;
}

static bool has_namespace(json_t *config, const char *type)
{
    size_t i;
    json_t *ns;
    json_array_foreach(json_object_get(json_object_get(config, "linux"), "namespaces"), i, ns) {
        if (strcmp(json_string_value(json_object_get(ns, "type")), type) == 0)
            return true;
    }
    return false;
}

static json_t *mount_at(json_t *config, const char *destination)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(config, "mounts"), i, m) {
        if (strcmp(json_string_value(json_object_get(m, "destination")), destination) == 0)
            return m;
    }
    return NULL;
}

TEST(runtime_config_v1)
{
    json_t *config = config_for(CGROUP_V1, "{\"args\":[\"a b\",\"\\\"q\\\"\"], \"user\":\"7:8\","
                                           " \"init\":true, \"limits\":{\"memory\":67108864},"
                                           " \"mounts\":[{\"type\":\"bind\",\"source\":\"/tmp\","
                                           "\"target\":\"/data\",\"readonly\":true}]}");
    json_t *process = json_object_get(config, "process");
    json_t *args = json_object_get(process, "args");
    CHECK(json_array_size(args) == 4);
    CHECK_STR(json_string_value(json_array_get(args, 0)), "/sbin/shoal-init");
    CHECK_STR(json_string_value(json_array_get(args, 2)), "a b");
    CHECK_STR(json_string_value(json_array_get(args, 3)), "\"q\"");
    CHECK(json_integer_value(json_object_get(json_object_get(process, "user"), "uid")) == 7);
    CHECK(json_integer_value(json_object_get(json_object_get(process, "user"), "gid")) == 8);
    CHECK_STR(json_string_value(json_object_get(process, "cwd")), "/");
    json_t *env = json_object_get(process, "env");
    CHECK(json_array_size(env) == 1 &&
          strncmp(json_string_value(json_array_get(env, 0)), "PATH=", 5) == 0);
    CHECK(has_namespace(config, "pid") && has_namespace(config, "mount"));
    CHECK(!has_namespace(config, "cgroup") && !has_namespace(config, "network"));
    CHECK(mount_at(config, "/sys/fs/cgroup") == NULL);
    CHECK(json_object_get(json_object_get(config, "linux"), "resources") == NULL);
    json_t *data = mount_at(config, "/data");
    CHECK(data != NULL);
    CHECK_STR(json_string_value(json_array_get(json_object_get(data, "options"), 2)), "ro");
    CHECK_STR(json_string_value(json_array_get(json_object_get(data, "options"), 3)), "rro");
    CHECK(mount_at(config, "/sbin/shoal-init") != NULL);
    json_decref(config);
}

TEST(runtime_config_readonly_bind_recursive)
{
    char dir[] = "/tmp/shoal-rro-XXXXXX"; /* no submounts, unlike /tmp on a busy host */
    CHECK(mkdtemp(dir) != NULL);
    char *text = xasprintf("{\"args\":[\"x\"], \"mounts\":[{\"type\":\"bind\",\"source\":\"%s\","
                           "\"target\":\"/ro\",\"readonly\":true}, {\"type\":\"bind\","
                           "\"source\":\"%s\",\"target\":\"/rw\"}]}",
                           dir, dir);
    json_t *spec = spec_of(text);
    for (int recursive = 0; recursive <= 1; recursive++) {
        struct runtime rt = {.cgroup_mode = CGROUP_V1, .recursive_ro = recursive};
        struct serr err = {0};
        json_t *config = runtime_config_build(&rt, "c1", spec, &err);
        CHECK(config != NULL);
        json_t *ro = json_object_get(mount_at(config, "/ro"), "options");
        json_t *rw = json_object_get(mount_at(config, "/rw"), "options");
        CHECK(json_array_size(ro) == (recursive ? 4u : 3u)); /* rro only with mount_setattr */
        CHECK_STR(json_string_value(json_array_get(ro, 0)), "rbind");
        CHECK_STR(json_string_value(json_array_get(ro, 2)), "ro");
        if (recursive)
            CHECK_STR(json_string_value(json_array_get(ro, 3)), "rro");
        CHECK(json_array_size(rw) == 2);
        json_decref(config);
    }
    json_decref(spec);
    free(text);
    CHECK(rmdir(dir) == 0);
}

/* Without mount_setattr, a readonly bind of a tree with submounts is refused
 * (/ has /proc below it everywhere); a tree without them is fine. */
TEST(runtime_spec_readonly_tree_without_mount_setattr)
{
    struct runtime rt = {.cgroup_mode = CGROUP_V1, .recursive_ro = false};
    struct serr err = {0};
    json_t *spec = spec_of("{\"args\":[\"x\"], \"mounts\":[{\"type\":\"bind\",\"source\":\"/\","
                           "\"target\":\"/host\",\"readonly\":true}]}");
    CHECK(runtime_spec_check(&rt, spec, &err) < 0 && err.kind == SERR_INVALID);
    CHECK(strstr(err.msg, "mounted below it") != NULL);
    json_decref(spec);
    rt.recursive_ro = true;
    spec = spec_of("{\"args\":[\"x\"], \"mounts\":[{\"type\":\"bind\",\"source\":\"/\","
                   "\"target\":\"/host\",\"readonly\":true}]}");
    CHECK(runtime_spec_check(&rt, spec, &err) == 0);
    json_decref(spec);
}

TEST(runtime_reserved_targets)
{
    const char *reserved[][2] = {
        {"/", "/"},           {"//", "/"},          {"/proc", "/proc"},
        {"/proc/", "/proc"},  {"//proc/.", "/proc"}, {"/x/../proc", "/proc"},
        {"/../sys", "/sys"},  {"/dev", "/dev"},      {"/dev//pts/", "/dev/pts"},
        {"/a/..", "/"},       {"/sbin/shoal-init", "/sbin/shoal-init"},
        {"/a/b/../..", "/"},  {"/a/b/../../proc", "/proc"}, {"/dev/x/../pts", "/dev/pts"},
    };
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        const char *got = mount_reserved_target(reserved[i][0]);
        CHECK(got != NULL);
        CHECK_STR(got, reserved[i][1]);
    }
    const char *fine[] = {"/data", "/proc2", "/dev/shm", "/sys/fs/cgroup", "/host", "/a/proc",
                          "/a/b/../proc", "/../a/./b",
                          "/etc/hosts", "relative", NULL};
    for (size_t i = 0; fine[i] != NULL; i++)
        CHECK(mount_reserved_target(fine[i]) == NULL);
    struct runtime rt = {.cgroup_mode = CGROUP_V1};
    struct serr err = {0};
    json_t *spec = spec_of("{\"args\":[\"x\"], \"mounts\":[{\"type\":\"bind\",\"source\":\"/tmp\","
                           "\"target\":\"/proc/\"}]}");
    CHECK(runtime_spec_check(&rt, spec, &err) < 0 && err.kind == SERR_INVALID);
    CHECK(strstr(err.msg, "reserved") != NULL);
    json_decref(spec);
}

TEST(runtime_config_v2_resources)
{
    json_t *config = config_for(CGROUP_V2, "{\"args\":[\"x\"], \"limits\":{\"memory\":67108864,"
                                           " \"cpus\":1.5, \"cpuset\":\"0,2-3\"}}");
    json_t *linux_ = json_object_get(config, "linux");
    CHECK_STR(json_string_value(json_object_get(linux_, "cgroupsPath")), "/shoal/c1");
    json_t *resources = json_object_get(linux_, "resources");
    CHECK(json_integer_value(json_object_get(json_object_get(resources, "memory"), "limit")) ==
          67108864);
    CHECK(json_integer_value(json_object_get(json_object_get(resources, "cpu"), "quota")) ==
          150000);
    CHECK_STR(json_string_value(json_object_get(json_object_get(resources, "cpu"), "cpus")),
              "0,2-3"); /* a batch job's cores */
    json_decref(config);
}

TEST(runtime_spec_rejects_bad_input)
{
    struct runtime rt = {.cgroup_mode = CGROUP_V1};
    struct serr err = {0};
    const char *bad[] = {
        "{}", "{\"args\":[]}", "{\"args\":[1]}", "{\"args\":[\"x\"], \"user\":\"ro ot\"}",
        "{\"args\":[\"x\"], \"workdir\":\"rel\"}", "{\"args\":[\"x\"], \"init\":true}",
        "{\"args\":[\"x\"], \"limits\":{\"memory\":1024}}",
        "{\"args\":[\"x\"], \"limits\":{\"cpuset\":\"\"}}",
        "{\"args\":[\"x\"], \"limits\":{\"cpuset\":\"0;1\"}}",
        "{\"args\":[\"x\"], \"limits\":{\"cpuset\":1}}", NULL,
    };
    for (size_t i = 0; bad[i] != NULL; i++) {
        json_t *spec = spec_of(bad[i]);
        CHECK(runtime_spec_check(&rt, spec, &err) < 0 && err.kind == SERR_INVALID);
        json_decref(spec);
    }
}

/* A process of a child pid namespace whose parent (like crun exec) died
 * first is reparented to us, the subreaper, and must be reaped by us: the
 * namespace's init, and our own children of our namespace, are left to
 * their waiters. */
TEST(runtime_reaps_orphans_of_container_namespaces_only)
{
    if (geteuid() != 0) {
        fprintf(stderr, "skipped: needs root\n");
        return;
    }
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t helper = fork();
    if (helper == 0) { /* crun's part: a new pid namespace, its init, one more process */
        if (unshare(CLONE_NEWPID) < 0)
            _exit(1);
        pid_t init = fork();
        if (init == 0) {
            pause();
            _exit(0);
        }
        pid_t other = fork();
        if (other == 0)
            _exit(0); /* a zombie of the helper, then ours */
        pid_t pids[2] = {init, other};
        (void)!write(fds[1], pids, sizeof(pids));
        _exit(0);
    }
    close(fds[1]);
    pid_t pids[2] = {0, 0};
    CHECK(read(fds[0], pids, sizeof(pids)) == (ssize_t)sizeof(pids));
    close(fds[0]);
    CHECK(waitpid(helper, NULL, 0) == helper);
    pid_t own = fork(); /* a zombie of ours in our namespace: someone waits for it */
    if (own == 0)
        _exit(7);
    int reaped = 0;
    for (int i = 0; i < 500 && reaped == 0; i++) {
        reaped = runtime_reap_orphans();
        if (reaped == 0)
            usleep(10000);
    }
    CHECK(reaped == 1);
    CHECK(waitpid(pids[1], NULL, WNOHANG) < 0 && errno == ECHILD); /* it was the one */
    CHECK(kill(pids[0], 0) == 0);                                   /* the init is untouched */
    int status = 0;
    CHECK(waitpid(own, &status, 0) == own && WEXITSTATUS(status) == 7);
    kill(pids[0], SIGKILL);
    CHECK(waitpid(pids[0], NULL, 0) == pids[0]);
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 0) == 0);
}

static bool has_string(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* The service flags of issue #15 in config.json. */
TEST(runtime_config_service_flags)
{
    json_t *config = config_for(
        CGROUP_V2, "{\"args\":[\"true\"], \"read_only\":true, \"cap_add\":[\"CAP_NET_ADMIN\"],"
                   "\"cap_drop\":[\"CAP_CHOWN\"], \"sysctls\":{\"kernel.shmmni\":\"2048\"},"
                   "\"ulimits\":{\"nofile\":{\"soft\":10,\"hard\":20}}, \"limits\":{\"pids\":7},"
                   "\"annotations\":{\"team\":\"ops\"}, \"hostname\":\"web-1\", \"mounts\":"
                   "[{\"type\":\"tmpfs\",\"target\":\"/t\",\"size\":1048576,\"mode\":1023}]}");
    CHECK(json_is_true(json_object_get(json_object_get(config, "root"), "readonly")));
    json_t *caps = json_object_get(json_object_get(config, "process"), "capabilities");
    CHECK(has_string(json_object_get(caps, "effective"), "CAP_NET_ADMIN"));
    CHECK(!has_string(json_object_get(caps, "bounding"), "CAP_CHOWN"));
    CHECK(has_string(json_object_get(caps, "permitted"), "CAP_KILL"));
    json_t *rl = json_object_get(json_object_get(config, "process"), "rlimits");
    CHECK(json_array_size(rl) == 1);
    CHECK(json_integer_value(json_object_get(json_array_get(rl, 0), "soft")) == 10);
    json_t *linux_ = json_object_get(config, "linux");
    CHECK_STR(json_string_value(json_object_get(json_object_get(linux_, "sysctl"), "kernel.shmmni")),
              "2048");
    json_t *pids = json_object_get(json_object_get(linux_, "resources"), "pids");
    CHECK(json_integer_value(json_object_get(pids, "limit")) == 7);
    CHECK_STR(json_string_value(json_object_get(json_object_get(config, "annotations"), "team")),
              "ops");
    CHECK_STR(json_string_value(json_object_get(config, "hostname")), "web-1");
    json_t *mounts = json_object_get(config, "mounts");
    json_t *last = json_array_get(mounts, json_array_size(mounts) - 1);
    CHECK_STR(json_string_value(json_object_get(last, "type")), "tmpfs");
    CHECK_STR(json_string_value(json_object_get(last, "destination")), "/t");
    json_t *opts = json_object_get(last, "options");
    CHECK(has_string(opts, "size=1048576") && has_string(opts, "mode=1777"));
    json_decref(config);
    config = config_for(CGROUP_V2, "{\"args\":[\"true\"], \"cap_drop\":[\"ALL\"]}");
    caps = json_object_get(json_object_get(config, "process"), "capabilities");
    CHECK(json_array_size(json_object_get(caps, "effective")) == 0);
    json_decref(config);
}

/* crun's side of --console-socket: connects and sends one fd (SCM_RIGHTS). */
static void send_fd_to(const char *path, int fd)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    char byte = 'x', ctl[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                         .msg_controllen = sizeof(ctl)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(fd));
    CHECK(sendmsg(s, &msg, 0) == 1);
    close(s);
}

/* The terminal's master comes through the console socket (run -t, exec -t);
 * a connection that sends no fd gives -1. */
TEST(runtime_console_socket_passes_an_fd)
{
    char dir[] = "/tmp/shoal-console-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = xasprintf("%s/console.sock", dir);
    struct serr err = {0};
    int listen_fd = runtime_console_listen(path, &err);
    CHECK(listen_fd >= 0);
    int fds[2];
    CHECK(pipe(fds) == 0);
    send_fd_to(path, fds[1]);
    int got = runtime_console_accept(listen_fd);
    CHECK(got >= 0 && got != fds[1]);
    CHECK((fcntl(got, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(write(got, "hi", 2) == 2);
    char buf[3] = "";
    CHECK(read(fds[0], buf, 2) == 2 && strcmp(buf, "hi") == 0);
    close(got);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int bare = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(connect(bare, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    close(bare);
    CHECK(runtime_console_accept(listen_fd) == -1);
    close(listen_fd);
    close(fds[0]);
    close(fds[1]);
    char *long_path = xasprintf("%s/%0200d", dir, 0);
    CHECK(runtime_console_listen(long_path, &err) < 0 && strstr(err.msg, "too long") != NULL);
    free(long_path);
    free(path);
    CHECK(rm_rf(dir, NULL) == 0);
}
