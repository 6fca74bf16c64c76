/* Cgroups of containers: mode detection, the hybrid-host fix, and on v1 /
 * hybrid hosts the cgroups shoal manages itself (crun runs there with
 * --cgroup-manager=disabled). On v2 hosts crun owns the cgroup and this file
 * only reads statistics. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

static char *v1_dir(const char *controller, const char *id)
{
    return xasprintf(CGROUP_ROOT "/%s/shoal/%s", controller, id);
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
 * cgroup `dir` of it (made, or a pool slot renamed). */
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
    const char *shoal_dir = CGROUP_ROOT "/cpuset/shoal";
    int rc = 0;
    const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2 && rc == 0; i++) {
        rc = cpuset_inherit(shoal_dir, files[i], err);
        if (rc == 0)
            rc = cpuset_inherit(dir, files[i], err);
    }
    return rc;
}

static int create_one(const char *controller, const char *id, json_t *spec, struct serr *err)
{
    char *dir = v1_dir(controller, id);
    int rc = mkdir_p(dir, 0755, err);
    if (rc == 0 && strcmp(controller, "cpuset") == 0)
        rc = write_cpuset(dir, err);
    if (rc == 0)
        rc = write_limits(controller, dir, json_object_get(spec, "limits"), err);
    if (rc == 0 && strcmp(controller, "devices") == 0)
        rc = write_device_rules(dir, err);
    free(dir);
    return rc;
}

/* A controller of the container's cgroups: mounted, and not "devices" for
 * a host job (devices false). */
static bool controller_used(const char *controller, bool devices)
{
    return controller_mounted(controller) && (devices || strcmp(controller, "devices") != 0);
}

static int create_all(const struct runtime *rt, const char *id, json_t *spec, bool devices,
                      struct serr *err)
{
    if (rt->cgroup_mode == CGROUP_V2)
        return 0;
    for (size_t i = 0; v1_controllers[i] != NULL; i++) {
        if (!controller_used(v1_controllers[i], devices))
            continue;
        if (create_one(v1_controllers[i], id, spec, err) < 0) {
            runtime_cgroup_remove(rt, id, NULL);
            return -1;
        }
    }
    return 0;
}

/* ---- the pool of cgroups made ahead (v1/hybrid) ----------------------
 *
 * A container's cgroups cost ~0.7 ms to make (6 mkdirs, 12 device rules,
 * cpuset copies): made ahead, off the path from the request to the
 * runtime's call, as `shoal/.pool-<tag>-<n>` in each controller (a name no
 * container id can have: ids do not start with '.'), then renamed to the
 * container's id (v1 allows a rename within the parent) and given its
 * limits. The tag, from the bundle directory, tells this daemon's cgroups
 * from another's on the same host (dev clusters share /sys/fs/cgroup); the
 * flock on its marker (below) tells a live daemon's pool from one left by a
 * daemon killed or crashed, which the next daemon to start removes. Filled
 * at start and after each delete (which runs once the exit was sent to the
 * client); removed by runtime_free. */
#define POOL_SIZE 4

struct cgroup_pool {
    pthread_mutex_t lock;
    char tag[9];
    unsigned next;          /* serial of the next slot made */
    unsigned ready[POOL_SIZE];
    int count;              /* ready slots */
    int making;             /* slots being made, counted against POOL_SIZE */
    int marker_fd;          /* holds the flock on its marker, shoal/.pool-TAG */
};

static char *slot_name(const struct cgroup_pool *pool, unsigned serial)
{
    return xasprintf(".pool-%s-%u", pool->tag, serial);
}

/* Renames the slot's cgroups to `to_id` in each controller used; on a
 * failure, those already renamed go back. */
static int rename_slot(const char *from, const char *to, struct serr *err)
{
    size_t done = 0;
    int rc = 0;
    for (; v1_controllers[done] != NULL && rc == 0; done++) {
        if (!controller_used(v1_controllers[done], true))
            continue;
        char *src = v1_dir(v1_controllers[done], from), *dst = v1_dir(v1_controllers[done], to);
        if (rename(src, dst) < 0)
            rc = serr_errno(err, "rename cgroup %s to %s", src, dst);
        free(src);
        free(dst);
    }
    if (rc == 0)
        return 0;
    for (size_t i = 0; i + 1 < done; i++) {
        if (!controller_used(v1_controllers[i], true))
            continue;
        char *src = v1_dir(v1_controllers[i], to), *dst = v1_dir(v1_controllers[i], from);
        rename(src, dst);
        free(src);
        free(dst);
    }
    return -1;
}

/* A ready slot's serial, taken from the pool, or -1 when there is none. */
static long take_slot(struct cgroup_pool *pool)
{
    long serial = -1;
    pthread_mutex_lock(&pool->lock);
    if (pool->count > 0)
        serial = pool->ready[--pool->count];
    pthread_mutex_unlock(&pool->lock);
    return serial;
}

/* The container's cgroups from the pool, with the spec's limits: 1 done, 0
 * no slot (or it could not be renamed: removed), -1 a limit failed. */
static int create_from_pool(const struct runtime *rt, const char *id, json_t *spec,
                            struct serr *err)
{
    long serial = rt->cgroup_pool ? take_slot(rt->cgroup_pool) : -1;
    if (serial < 0)
        return 0;
    char *name = slot_name(rt->cgroup_pool, (unsigned)serial);
    int rc = rename_slot(name, id, NULL) == 0 ? 1 : 0;
    if (rc == 0)
        runtime_cgroup_remove(rt, name, NULL);
    free(name);
    json_t *limits = json_object_get(spec, "limits");
    for (size_t i = 0; v1_controllers[i] != NULL && rc == 1; i++) {
        if (!controller_used(v1_controllers[i], true))
            continue;
        char *dir = v1_dir(v1_controllers[i], id);
        if (write_limits(v1_controllers[i], dir, limits, err) < 0)
            rc = -1;
        free(dir);
    }
    if (rc < 0)
        runtime_cgroup_remove(rt, id, NULL);
    return rc;
}

void runtime_cgroup_pool_fill(const struct runtime *rt)
{
    struct cgroup_pool *pool = rt->cgroup_pool;
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        bool full = pool->count + pool->making >= POOL_SIZE;
        unsigned serial = pool->next;
        if (!full) {
            pool->next++;
            pool->making++;
        }
        pthread_mutex_unlock(&pool->lock);
        if (full)
            return;
        char *name = slot_name(pool, serial);
        bool made = create_all(rt, name, NULL, true, NULL) == 0;
        free(name);
        pthread_mutex_lock(&pool->lock);
        pool->making--;
        if (made)
            pool->ready[pool->count++] = serial;
        pthread_mutex_unlock(&pool->lock);
        if (!made)
            return; /* not allowed here (not root...): containers make their own */
    }
}

/* Removes the slots of the pool tagged `tag` (".pool-TAG-N" in each controller). */
static void remove_slots(const struct runtime *rt, const char *tag)
{
    char *prefix = xasprintf(".pool-%s-", tag);
    for (size_t i = 0; v1_controllers[i] != NULL; i++) {
        char *parent = xasprintf(CGROUP_ROOT "/%s/shoal", v1_controllers[i]);
        DIR *d = opendir(parent);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
                runtime_cgroup_remove(rt, e->d_name, NULL);
        }
        if (d)
            closedir(d);
        free(parent);
    }
    free(prefix);
}

/* A pool's owner holds an flock on its marker, the cgroup directory
 * shoal/.pool-TAG (of memory, see marker_parent), while it runs: a marker
 * that can be locked was left by a daemon that is gone (killed, crashed),
 * with its slots. Returns the marker's tag when `name` is one, else NULL. */
static const char *marker_tag(const char *name)
{
    const char *tag = name + strlen(".pool-");
    bool marker = strncmp(name, ".pool-", strlen(".pool-")) == 0 && strlen(tag) == 8 &&
                  strspn(tag, "0123456789abcdef") == 8;
    return marker ? tag : NULL;
}

/* Where markers are: shoal/ of the first controller mounted (memory, unless
 * the kernel has none, as on Raspberry Pi OS without cgroup_enable=memory). */
static char *marker_parent(void)
{
    for (size_t i = 0; v1_controllers[i] != NULL; i++) {
        if (controller_mounted(v1_controllers[i]))
            return xasprintf(CGROUP_ROOT "/%s/shoal", v1_controllers[i]);
    }
    return NULL;
}

/* Removes the pools (slots and marker) of daemons that are gone. */
static void remove_dead_pools(const struct runtime *rt, const char *parent)
{
    DIR *d = opendir(parent);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        const char *tag = marker_tag(e->d_name);
        char *marker = tag ? xasprintf("%s/%s", parent, e->d_name) : NULL;
        int fd = marker ? open(marker, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
            remove_slots(rt, tag);
            rmdir(marker);
        }
        if (fd >= 0)
            close(fd);
        free(marker);
    }
    if (d)
        closedir(d);
}

/* Makes this daemon's marker, locked (made under another name, then
 * renamed, so that no other daemon sees it unlocked): its fd, or -1. */
static int make_marker(const char *parent, const char *tag)
{
    char *made = xasprintf("%s/.pool-new-%s", parent, tag);
    char *marker = xasprintf("%s/.pool-%s", parent, tag);
    int fd = -1;
    if (mkdir(made, 0755) == 0 || errno == EEXIST)
        fd = open(made, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 && (flock(fd, LOCK_EX | LOCK_NB) < 0 || rename(made, marker) < 0)) {
        close(fd);
        fd = -1;
        rmdir(made);
    }
    free(made);
    free(marker);
    return fd;
}

void runtime_cgroup_pool_init(struct runtime *rt)
{
    char *parent = rt->cgroup_mode == CGROUP_V2 ? NULL : marker_parent();
    if (parent == NULL)
        return;
    char tag[9];
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (const char *c = rt->containers_dir; *c; c++)
        hash = (hash ^ (unsigned char)*c) * 16777619u;
    snprintf(tag, sizeof(tag), "%08" PRIx32, hash);
    /* shoal/ itself: made with the first container's cgroups otherwise */
    bool ready = mkdir_p(parent, 0755, NULL) == 0;
    if (ready)
        remove_dead_pools(rt, parent);
    int fd = ready ? make_marker(parent, tag) : -1;
    free(parent);
    if (fd < 0)
        return; /* not allowed here, or another daemon has the same bundles */
    struct cgroup_pool *pool = xcalloc(1, sizeof(*pool));
    pthread_mutex_init(&pool->lock, NULL);
    memcpy(pool->tag, tag, sizeof(tag));
    pool->marker_fd = fd;
    rt->cgroup_pool = pool;
    runtime_cgroup_pool_fill(rt);
}

char **runtime_cgroup_pool_slots(const struct runtime *rt)
{
    struct cgroup_pool *pool = rt->cgroup_pool;
    char **names = xcalloc(POOL_SIZE + 1, sizeof(*names));
    if (pool == NULL)
        return names;
    pthread_mutex_lock(&pool->lock);
    for (int i = 0; i < pool->count; i++)
        names[i] = slot_name(pool, pool->ready[i]);
    pthread_mutex_unlock(&pool->lock);
    return names;
}

void runtime_cgroup_pool_free(struct runtime *rt)
{
    struct cgroup_pool *pool = rt->cgroup_pool;
    if (pool == NULL)
        return;
    for (int i = 0; i < pool->count; i++) {
        char *name = slot_name(pool, pool->ready[i]);
        runtime_cgroup_remove(rt, name, NULL);
        free(name);
    }
    char *parent = marker_parent();
    char *marker = parent ? xasprintf("%s/.pool-%s", parent, pool->tag) : NULL;
    if (marker)
        rmdir(marker);
    free(marker);
    free(parent);
    close(pool->marker_fd);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
    rt->cgroup_pool = NULL;
}

int runtime_cgroup_create(const struct runtime *rt, const char *id, json_t *spec,
                          struct serr *err)
{
    if (rt->cgroup_mode == CGROUP_V2)
        return 0;
    int rc = create_from_pool(rt, id, spec, err);
    return rc != 0 ? (rc > 0 ? 0 : -1) : create_all(rt, id, spec, true, err);
}

int runtime_cgroup_create_host(const struct runtime *rt, const char *id, json_t *spec,
                               struct serr *err)
{
    return create_all(rt, id, spec, false, err);
}

/* Writes pid into the cgroups create_all made (the same `devices`). */
static int place_all(const struct runtime *rt, const char *id, pid_t pid, bool devices,
                     struct serr *err)
{
    if (rt->cgroup_mode == CGROUP_V2)
        return 0;
    char value[32];
    snprintf(value, sizeof(value), "%d", (int)pid);
    for (size_t i = 0; v1_controllers[i] != NULL; i++) {
        if (!controller_used(v1_controllers[i], devices))
            continue;
        char *dir = v1_dir(v1_controllers[i], id);
        int rc = write_cgroup_file(dir, "cgroup.procs", value, err);
        free(dir);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int runtime_cgroup_place(const struct runtime *rt, const char *id, pid_t pid, struct serr *err)
{
    return place_all(rt, id, pid, true, err);
}

int runtime_cgroup_place_host(const struct runtime *rt, const char *id, pid_t pid,
                              struct serr *err)
{
    return place_all(rt, id, pid, false, err);
}

char **runtime_cgroup_procs_files(const struct runtime *rt, const char *id)
{
    if (rt->cgroup_mode == CGROUP_V2)
        return NULL;
    size_t n = 0;
    char **files = xcalloc(sizeof(v1_controllers) / sizeof(v1_controllers[0]), sizeof(*files));
    for (size_t i = 0; v1_controllers[i] != NULL; i++) {
        if (!controller_used(v1_controllers[i], true))
            continue;
        char *dir = v1_dir(v1_controllers[i], id);
        files[n++] = xasprintf("%s/cgroup.procs", dir);
        free(dir);
    }
    return files;
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
    return xasprintf(CGROUP_ROOT "/%s/shoal/%s/%s", controller, id, v1_file);
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
