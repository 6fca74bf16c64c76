/* Cgroups of containers: mode detection, the hybrid-host fix, and on v1 /
 * hybrid hosts the cgroups shoal manages itself (crun runs there with
 * --cgroup-manager=disabled). On v2 hosts crun owns the cgroup and this file
 * only reads statistics. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <dirent.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "agent/runtime_internal.h"
#include "base/json_get.h"
#include "base/util.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_UNIFIED CGROUP_ROOT "/unified"
#define CPU_PERIOD_US 100000
/* A cgroup cannot be removed while its last tasks are still exiting after
 * SIGKILL; wait this long for them. */
#define RMDIR_TRIES 100
#define RMDIR_PAUSE_NS (10 * 1000 * 1000)

/* v1 controllers a container is placed in. "devices" is there because
 * without crun's cgroup manager nothing else restricts device access;
 * "cpuset" confines a batch job to its cores (limits.cpuset). */
static const char *const v1_controllers[] = {"memory", "cpu", "cpuacct", "pids", "devices",
                                             "cpuset", NULL};

/* Docker's default device rules, in the devices.allow syntax. */
static const char *const v1_device_allow[] = {
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
    "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", NULL,
};

static bool fs_is(const char *path, long magic)
{
    struct statfs st;
    return statfs(path, &st) == 0 && (long)st.f_type == magic;
}

int runtime_cgroup_detect(enum cgroup_mode *mode, struct serr *err)
{
    if (fs_is(CGROUP_ROOT, CGROUP2_SUPER_MAGIC))
        *mode = CGROUP_V2;
    else if (fs_is(CGROUP_UNIFIED, CGROUP2_SUPER_MAGIC))
        *mode = CGROUP_HYBRID;
    else if (fs_is(CGROUP_ROOT, TMPFS_MAGIC))
        *mode = CGROUP_V1;
    else
        return serr_set(err, SERR_INTERNAL, "no cgroup filesystem mounted at " CGROUP_ROOT);
    return 0;
}

static bool blank(const char *s)
{
    return s[strspn(s, " \t\n")] == '\0';
}

static int mount_v1_controller(const char *name, struct serr *err)
{
    char *path = xasprintf(CGROUP_ROOT "/%s", name);
    int rc = 0;
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        rc = serr_errno(err, "mkdir %s", path);
    else if (mount("cgroup", path, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, name) < 0 &&
             errno != EBUSY)
        rc = serr_errno(err, "mount cgroup controller %s on %s", name, path);
    free(path);
    return rc;
}

int runtime_cgroup_fix_hybrid(struct serr *err)
{
    char *controllers = NULL, *subtree = NULL;
    int rc = 0;
    if (read_file(CGROUP_UNIFIED "/cgroup.controllers", &controllers, NULL, err) < 0)
        return -1;
    if (read_file(CGROUP_UNIFIED "/cgroup.subtree_control", &subtree, NULL, err) < 0) {
        free(controllers);
        return -1;
    }
    /* Controllers enabled in the v2 tree are in use there and cannot move;
     * crun will then explain what is wrong. */
    if (!blank(subtree))
        goto out;
    char *save = NULL;
    for (char *name = strtok_r(controllers, " \n", &save); name && rc == 0;
         name = strtok_r(NULL, " \n", &save))
        rc = mount_v1_controller(name, err);
out:
    free(controllers);
    free(subtree);
    return rc;
}

/* The parent of the containers' cgroups in each v1 controller ("shoal";
 * another in tests, runtime_cgroup_set_parent). */
static char cgroup_parent[64] = "shoal";

static char *v1_dir(const char *controller, const char *id)
{
    return xasprintf(CGROUP_ROOT "/%s/%s/%s", controller, cgroup_parent, id);
}

static bool controller_mounted(const char *controller)
{
    char *path = xasprintf(CGROUP_ROOT "/%s", controller);
    bool ok = fs_is(path, CGROUP_SUPER_MAGIC);
    free(path);
    return ok;
}

static int write_cgroup_file(const char *dir, const char *file, const char *value,
                             struct serr *err)
{
    char *path = xasprintf("%s/%s", dir, file);
    int rc = 0;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, value, strlen(value)) < 0)
        rc = serr_errno(err, "write \"%s\" to %s", value, path);
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

/* The spec's limits that fall to `controller`, written in the container's
 * cgroup `dir` of it. */
static int write_limits(const char *controller, const char *dir, json_t *limits, struct serr *err)
{
    char value[64];
    const char *cores = jstr(limits, "cpuset"); /* a batch job's cores */
    if (strcmp(controller, "cpuset") == 0 && cores)
        return write_cgroup_file(dir, "cpuset.cpus", cores, err);
    json_int_t memory = json_integer_value(json_object_get(limits, "memory"));
    double cpus = json_number_value(json_object_get(limits, "cpus"));
    if (strcmp(controller, "memory") == 0 && memory > 0) {
        snprintf(value, sizeof(value), "%" JSON_INTEGER_FORMAT, memory);
        return write_cgroup_file(dir, "memory.limit_in_bytes", value, err);
    }
    json_int_t pids = json_integer_value(json_object_get(limits, "pids"));
    if (strcmp(controller, "pids") == 0 && pids > 0) { /* --limit-pids */
        snprintf(value, sizeof(value), "%" JSON_INTEGER_FORMAT, pids);
        return write_cgroup_file(dir, "pids.max", value, err);
    }
    if (strcmp(controller, "cpu") == 0 && cpus > 0) {
        long quota = (long)(cpus * CPU_PERIOD_US);
        snprintf(value, sizeof(value), "%ld", quota < 1000 ? 1000 : quota);
        if (write_cgroup_file(dir, "cpu.cfs_period_us", "100000", err) < 0)
            return -1;
        return write_cgroup_file(dir, "cpu.cfs_quota_us", value, err);
    }
    return 0;
}

static int write_device_rules(const char *dir, struct serr *err)
{
    if (write_cgroup_file(dir, "devices.deny", "a", err) < 0)
        return -1;
    for (size_t i = 0; v1_device_allow[i] != NULL; i++) {
        if (write_cgroup_file(dir, "devices.allow", v1_device_allow[i], err) < 0)
            return -1;
    }
    return 0;
}

/* A new v1 cpuset cgroup has no cpus and no mems, and no process can join
 * it so: `file` (cpuset.cpus or cpuset.mems) of `dir` gets its parent's value
 * when empty. */
static int cpuset_inherit(const char *dir, const char *file, struct serr *err)
{
    char *path = xasprintf("%s/%s", dir, file), *value = NULL, *parent_value = NULL;
    char *parent = xasprintf("%s/../%s", dir, file);
    int rc = read_file(path, &value, NULL, err);
    if (rc == 0 && blank(value))
        rc = read_file(parent, &parent_value, NULL, err);
    if (rc == 0 && parent_value)
        rc = write_cgroup_file(dir, file, parent_value, err);
    free(parent_value);
    free(value);
    free(parent);
    free(path);
    return rc;
}

/* The container's cpuset: the parents' cpus and mems (shoal/ first);
 * write_limits then writes limits.cpuset (a batch job's cores) when given. */
static int write_cpuset(const char *dir, struct serr *err)
{
    char *shoal_dir = xasprintf(CGROUP_ROOT "/cpuset/%s", cgroup_parent);
    int rc = 0;
    const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2 && rc == 0; i++) {
        rc = cpuset_inherit(shoal_dir, files[i], err);
        if (rc == 0)
            rc = cpuset_inherit(dir, files[i], err);
    }
    free(shoal_dir);
    return rc;
}

/* The container's cgroup of `controller`: made (with what its parent
 * passes on, see runtime_cgroup_setup_parents), then given the spec's limits. */
static int create_one(const struct runtime *rt, const char *controller, const char *id,
                      json_t *spec, struct serr *err)
{
    char *dir = v1_dir(controller, id);
    int rc = mkdir(dir, 0755) == 0 ? 0 : mkdir_p(dir, 0755, err);
    if (rc == 0 && strcmp(controller, "cpuset") == 0 && !rt->cgroup_cpuset_inherited)
        rc = write_cpuset(dir, err);
    if (rc == 0)
        rc = write_limits(controller, dir, json_object_get(spec, "limits"), err);
    if (rc == 0 && strcmp(controller, "devices") == 0 && !rt->cgroup_devices_inherited)
        rc = write_device_rules(dir, err);
    free(dir);
    return rc;
}

/* A controller of the container's cgroups: mounted, and not "devices" for
 * a host job (devices false). */
static bool controller_used(const struct runtime *rt, size_t i, bool devices)
{
    const char *controller = v1_controllers[i];
    bool mounted = rt->cgroup_mounts_known ? (rt->cgroup_mounted & (1u << i)) != 0
                                           : controller_mounted(controller);
    return mounted && (devices || strcmp(controller, "devices") != 0);
}

static int create_all(const struct runtime *rt, const char *id, json_t *spec, bool devices,
                      struct serr *err)
{
    if (rt->cgroup_mode == CGROUP_V2)
        return 0;
    for (size_t i = 0; v1_controllers[i] != NULL; i++) {
        if (!controller_used(rt, i, devices))
            continue;
        if (create_one(rt, v1_controllers[i], id, spec, err) < 0) {
            runtime_cgroup_remove(rt, id, NULL);
            return -1;
        }
    }
    return 0;
}

/* v1/hybrid, once at runtime_init: the parents shoal/ of "devices" and
 * "cpuset" hold what a container's cgroup of them gets when it is made (the
 * kernel copies a parent's device rules, and a cpuset parent's cpus and mems
 * when its cgroup.clone_children is 1), so that making a container's
 * cgroups is mkdirs only. A parent that could not be set (devices: writing
 * "a" is refused while shoal/ has children, as when made by an older shoal)
 * leaves its controller's values written in each container's cgroup. Only
 * containers are made in shoal/: a host job has no devices cgroup
 * (runtime_cgroup_create_host) and the daemon is not placed there. */

/* devices.list of `dir` holds exactly the rules of v1_device_allow. */
static bool has_device_rules(const char *dir)
{
    char *path = xasprintf("%s/devices.list", dir), *text = NULL;
    bool ok = read_file(path, &text, NULL, NULL) == 0;
    size_t lines = 0, rules = 0;
    while (v1_device_allow[rules] != NULL)
        rules++;
    char *save = NULL;
    for (char *line = ok ? strtok_r(text, "\n", &save) : NULL; ok && line;
         line = strtok_r(NULL, "\n", &save), lines++) {
        ok = false;
        for (size_t i = 0; v1_device_allow[i] != NULL && !ok; i++)
            ok = strcmp(line, v1_device_allow[i]) == 0;
    }
    free(text);
    free(path);
    return ok && lines == rules;
}

static char *parent_dir(const char *controller)
{
    return xasprintf(CGROUP_ROOT "/%s/%s", controller, cgroup_parent);
}

static bool setup_devices_parent(struct serr *err)
{
    char *dir = parent_dir("devices");
    bool ok = false;
    int fd = -1;
    if (mkdir_p(dir, 0755, err) == 0 && (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
        flock(fd, LOCK_EX) == 0) /* daemons of one host starting together */
        ok = has_device_rules(dir) || (write_device_rules(dir, err) == 0 && has_device_rules(dir));
    if (fd >= 0)
        close(fd);
    free(dir);
    return ok;
}

static bool setup_cpuset_parent(struct serr *err)
{
    char *dir = parent_dir("cpuset");
    bool ok = mkdir_p(dir, 0755, err) == 0 && cpuset_inherit(dir, "cpuset.cpus", err) == 0 &&
              cpuset_inherit(dir, "cpuset.mems", err) == 0 &&
              write_cgroup_file(dir, "cgroup.clone_children", "1", err) == 0;
    free(dir);
    return ok;
}

void runtime_cgroup_setup_parents(struct runtime *rt)
{
    rt->cgroup_devices_inherited = rt->cgroup_cpuset_inherited = false;
    if (rt->cgroup_mode == CGROUP_V2)
        return;
    /* once here, not a statfs per controller twice at each container start */
    rt->cgroup_mounted = 0;
    for (size_t i = 0; v1_controllers[i] != NULL; i++)
        if (controller_mounted(v1_controllers[i]))
            rt->cgroup_mounted |= 1u << i;
    rt->cgroup_mounts_known = true;
    struct serr err = {0};
    rt->cgroup_devices_inherited = controller_mounted("devices") && setup_devices_parent(&err);
    rt->cgroup_cpuset_inherited = controller_mounted("cpuset") && setup_cpuset_parent(&err);
}

void runtime_cgroup_set_parent(const char *name)
{
    snprintf(cgroup_parent, sizeof(cgroup_parent), "%s", name);
}

int runtime_cgroup_create(const struct runtime *rt, const char *id, json_t *spec,
                          struct serr *err)
{
    return create_all(rt, id, spec, true, err);
}

/* ---- host jobs' cgroups kept for the next ones ----------------------------
 * v1/hybrid: making a host job's cgroups and removing them after it (a mkdir
 * and an rmdir in each of five controllers; a memory cgroup's set-up and its
 * offlining are the kernel's heavier work) was a cost of every job. The
 * sets of ended host jobs are kept, empty, renamed ".pool-TAG-N" in the same
 * parents (v1 renames a cgroup within its parent), and a new host job's set
 * is one of them renamed to its id, its limits written again. TAG is of the
 * daemon's containers directory: the daemons of one host share shoal/, each
 * keeps its own sets, and a daemon started again on its state removes those
 * a killed one left. Container ids cannot start with '.', so no container's
 * cgroup has such a name. */
#define POOL_MAX 64

struct cgroup_pool {
    pthread_mutex_t lock; /* the thread pool's starts and deletes */
    char tag[17];
    unsigned next;          /* N of the next set kept */
    size_t max, count;      /* max: twice the cores, plus two */
    unsigned kept[POOL_MAX]; /* N of the kept sets, the last one reused first */
};

static void pool_name(const struct cgroup_pool *p, unsigned n, char *name, size_t size)
{
    snprintf(name, size, ".pool-%s-%u", p->tag, n);
}

/* Renames the host job's cgroups named `from` to `to` in each parent; false
 * at the first failure (those renamed stay so). */
static bool rename_set(const struct runtime *rt, const char *from, const char *to)
{
    bool ok = true;
    for (size_t i = 0; v1_controllers[i] != NULL && ok; i++) {
        if (!controller_used(rt, i, false))
            continue;
        char *a = v1_dir(v1_controllers[i], from), *b = v1_dir(v1_controllers[i], to);
        ok = rename(a, b) == 0;
        free(a);
        free(b);
    }
    return ok;
}

/* A value of `limits` not set: its default written again in a reused set
 * (which the previous job may have set), and the CPU usage counted anew. */
static int write_unset_limit(const char *controller, const char *dir, json_t *limits,
                             struct serr *err)
{
    if (strcmp(controller, "cpuacct") == 0)
        return write_cgroup_file(dir, "cpuacct.usage", "0", err);
    if (strcmp(controller, "memory") == 0 &&
        json_integer_value(json_object_get(limits, "memory")) <= 0)
        return write_cgroup_file(dir, "memory.limit_in_bytes", "-1", err);
    if (strcmp(controller, "pids") == 0 && json_integer_value(json_object_get(limits, "pids")) <= 0)
        return write_cgroup_file(dir, "pids.max", "max", err);
    if (strcmp(controller, "cpu") == 0 && json_number_value(json_object_get(limits, "cpus")) <= 0)
        return write_cgroup_file(dir, "cpu.cfs_quota_us", "-1", err);
    return 0;
}

static int write_reused_limits(const struct runtime *rt, const char *id, json_t *limits,
                               struct serr *err)
{
    int rc = 0;
    for (size_t i = 0; v1_controllers[i] != NULL && rc == 0; i++) {
        if (!controller_used(rt, i, false))
            continue;
        char *dir = v1_dir(v1_controllers[i], id);
        rc = write_limits(v1_controllers[i], dir, limits, err);
        if (rc == 0)
            rc = write_unset_limit(v1_controllers[i], dir, limits, err);
        free(dir);
    }
    return rc;
}

/* A kept set renamed to `id`: true, or false when none is kept or the
 * renames failed (what they left removed). */
static bool reuse_kept_set(const struct runtime *rt, const char *id)
{
    struct cgroup_pool *p = rt->host_pool;
    unsigned n = 0;
    bool taken = false;
    pthread_mutex_lock(&p->lock);
    if (p->count > 0)
        n = p->kept[--p->count], taken = true;
    pthread_mutex_unlock(&p->lock);
    if (!taken)
        return false;
    char name[64];
    pool_name(p, n, name, sizeof(name));
    if (rename_set(rt, name, id))
        return true;
    runtime_cgroup_remove(rt, name, NULL);
    runtime_cgroup_remove(rt, id, NULL);
    return false;
}

/* Keeps job `id`'s set (empty): true (kept, or removed when the pool filled
 * meanwhile), or false when the pool is full or a rename failed (what was
 * renamed removed: the caller removes the rest). */
static bool keep_set(const struct runtime *rt, const char *id)
{
    struct cgroup_pool *p = rt->host_pool;
    pthread_mutex_lock(&p->lock);
    bool room = p->count < p->max;
    unsigned n = p->next++;
    pthread_mutex_unlock(&p->lock);
    if (!room)
        return false;
    char name[64];
    pool_name(p, n, name, sizeof(name));
    if (!rename_set(rt, id, name)) {
        runtime_cgroup_remove(rt, name, NULL);
        return false;
    }
    pthread_mutex_lock(&p->lock);
    bool kept = p->count < POOL_MAX;
    if (kept)
        p->kept[p->count++] = n;
    pthread_mutex_unlock(&p->lock);
    if (!kept)
        runtime_cgroup_remove(rt, name, NULL);
    return true;
}

int runtime_cgroup_create_host(const struct runtime *rt, const char *id, json_t *spec,
                               struct serr *err)
{
    json_t *limits = json_object_get(spec, "limits");
    /* a kept set's cpuset.cpus is the previous job's: only a job with its cores takes one */
    if (rt->host_pool == NULL || jstr(limits, "cpuset") == NULL || !reuse_kept_set(rt, id))
        return create_all(rt, id, spec, false, err);
    if (write_reused_limits(rt, id, limits, err) < 0) {
        runtime_cgroup_remove(rt, id, NULL);
        return -1;
    }
    return 0;
}

int runtime_cgroup_release_host(const struct runtime *rt, const char *id, bool empty,
                                struct serr *err)
{
    if (rt->host_pool != NULL && empty && keep_set(rt, id))
        return 0;
    return runtime_cgroup_remove(rt, id, err);
}

/* The sets `prefix`* a previous run of this daemon left (killed). */
static void remove_left_sets(const struct runtime *rt, const char *prefix)
{
    for (size_t i = 0; v1_controllers[i] != NULL; i++) {
        if (!controller_used(rt, i, false))
            continue;
        char *parent = parent_dir(v1_controllers[i]);
        DIR *d = opendir(parent);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
                continue;
            char *dir = xasprintf("%s/%s", parent, e->d_name);
            rmdir(dir);
            free(dir);
        }
        if (d)
            closedir(d);
        free(parent);
    }
}

/* FNV-1a, 64 bits: the tag of a containers directory. */
static uint64_t text_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void runtime_cgroup_pool_init(struct runtime *rt)
{
    if (rt->cgroup_mode == CGROUP_V2 || rt->containers_dir == NULL)
        return;
    struct cgroup_pool *p = xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    snprintf(p->tag, sizeof(p->tag), "%016" PRIx64, text_hash(rt->containers_dir));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p->max = cores > 0 && (size_t)cores * 2 + 2 < POOL_MAX ? (size_t)cores * 2 + 2 : POOL_MAX;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), ".pool-%s-", p->tag);
    remove_left_sets(rt, prefix);
    rt->host_pool = p;
}

void runtime_cgroup_pool_free(struct runtime *rt)
{
    struct cgroup_pool *p = rt->host_pool;
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->count; i++) {
        char name[64];
        pool_name(p, p->kept[i], name, sizeof(name));
        runtime_cgroup_remove(rt, name, NULL);
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
    rt->host_pool = NULL;
}

/* Writes pid into the cgroups runtime_cgroup_create made. */
int runtime_cgroup_place(const struct runtime *rt, const char *id, pid_t pid, struct serr *err)
{
    if (rt->cgroup_mode == CGROUP_V2)
        return 0;
    char value[32];
    snprintf(value, sizeof(value), "%d", (int)pid);
    for (size_t i = 0; v1_controllers[i] != NULL; i++) {
        if (!controller_used(rt, i, true))
            continue;
        char *dir = v1_dir(v1_controllers[i], id);
        int rc = write_cgroup_file(dir, "cgroup.procs", value, err);
        free(dir);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static char **procs_files(const struct runtime *rt, const char *id, bool devices)
{
    if (rt->cgroup_mode == CGROUP_V2)
        return NULL;
    size_t n = 0;
    char **files = xcalloc(sizeof(v1_controllers) / sizeof(v1_controllers[0]), sizeof(*files));
    for (size_t i = 0; v1_controllers[i] != NULL; i++) {
        if (!controller_used(rt, i, devices))
            continue;
        char *dir = v1_dir(v1_controllers[i], id);
        files[n++] = xasprintf("%s/cgroup.procs", dir);
        free(dir);
    }
    return files;
}

char **runtime_cgroup_procs_files(const struct runtime *rt, const char *id)
{
    return procs_files(rt, id, true);
}

char **runtime_cgroup_host_procs_files(const struct runtime *rt, const char *id)
{
    return procs_files(rt, id, false);
}

char *runtime_cgroup_cpuset_dir(const struct runtime *rt, const char *id)
{
    if (rt->cgroup_mode == CGROUP_V2 || !controller_mounted("cpuset"))
        return NULL;
    char *dir = v1_dir("cpuset", id);
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return dir;
    free(dir);
    return NULL;
}

static int rmdir_patiently(const char *dir, struct serr *err)
{
    for (int i = 0; i < RMDIR_TRIES; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            break;
        struct timespec pause = {0, RMDIR_PAUSE_NS};
        nanosleep(&pause, NULL);
    }
    return serr_errno(err, "remove cgroup %s", dir);
}

int runtime_cgroup_remove(const struct runtime *rt, const char *id, struct serr *err)
{
    if (rt->cgroup_mode == CGROUP_V2)
        return 0; /* crun delete removes the cgroup it created */
    int rc = 0;
    for (size_t i = 0; v1_controllers[i] != NULL; i++) {
        char *dir = v1_dir(v1_controllers[i], id);
        if (rmdir_patiently(dir, err) < 0)
            rc = -1; /* keep going: remove as much as possible */
        free(dir);
    }
    return rc;
}

/* First unsigned number in `path` after `key` (or at the start when key is NULL). */
static uint64_t read_counter(const char *path, const char *key)
{
    char *text = NULL;
    if (read_file(path, &text, NULL, NULL) < 0)
        return 0;
    const char *p = text;
    if (key != NULL) {
        p = strstr(text, key);
        p = p ? p + strlen(key) : "";
    }
    uint64_t v = strtoull(p, NULL, 10);
    free(text);
    return v;
}

/* The container's cgroup file: `v2_file` of its v2 cgroup, or `v1_file` of
 * its v1 `controller` cgroup (new string). */
static char *counter_path(const struct runtime *rt, const char *id, const char *controller,
                          const char *v1_file, const char *v2_file)
{
    if (rt->cgroup_mode == CGROUP_V2)
        return xasprintf(CGROUP_ROOT "/shoal/%s/%s", id, v2_file);
    return xasprintf(CGROUP_ROOT "/%s/%s/%s/%s", controller, cgroup_parent, id, v1_file);
}

void runtime_cgroup_stats(const struct runtime *rt, const char *id, uint64_t *cpu_ns,
                          uint64_t *mem_bytes)
{
    char *cpu_path = counter_path(rt, id, "cpuacct", "cpuacct.usage", "cpu.stat");
    char *mem_path = counter_path(rt, id, "memory", "memory.usage_in_bytes", "memory.current");
    if (rt->cgroup_mode == CGROUP_V2)
        *cpu_ns = read_counter(cpu_path, "usage_usec ") * 1000;
    else
        *cpu_ns = read_counter(cpu_path, NULL);
    *mem_bytes = read_counter(mem_path, NULL);
    free(cpu_path);
    free(mem_path);
}

/* v1 reports "no limit" as a huge page-rounded number; v2 as "max". */
#define CGROUP_NO_LIMIT_ABOVE (1ULL << 62)

void runtime_cgroup_limits(const struct runtime *rt, const char *id, uint64_t *mem_limit,
                           uint64_t *pids)
{
    char *mem_path = counter_path(rt, id, "memory", "memory.limit_in_bytes", "memory.max");
    char *pids_path = counter_path(rt, id, "pids", "pids.current", "pids.current");
    *mem_limit = read_counter(mem_path, NULL);
    if (*mem_limit >= CGROUP_NO_LIMIT_ABOVE)
        *mem_limit = 0;
    *pids = read_counter(pids_path, NULL);
    free(mem_path);
    free(pids_path);
}
