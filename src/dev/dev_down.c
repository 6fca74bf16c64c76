/* `shoal dev down`: removes everything a dev cluster made, in the order that
 * lets each step succeed: processes first (they hold mounts, cgroups and
 * namespaces), then mounts, cgroups, links and namespaces, then the files.
 * Every step finds its objects on the machine itself (namespaces by name,
 * processes by namespace, mounts by path), so it also cleans up after a
 * partial `up` or a second `down`. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/net.h"
#include "base/util.h"
#include "dev/dev_int.h"

#define KILL_WAIT_MS 2000

struct pid_list {
    pid_t *pids;
    int count;
};

static void pid_list_add(struct pid_list *l, pid_t pid)
{
    for (int i = 0; i < l->count; i++)
        if (l->pids[i] == pid)
            return;
    l->pids = xrealloc(l->pids, (size_t)(l->count + 1) * sizeof(pid_t));
    l->pids[l->count++] = pid;
}

static void kill_and_note(struct pid_list *killed, pid_t pid)
{
    if (pid > 1 && pid != getpid() && kill(pid, SIGKILL) == 0)
        pid_list_add(killed, pid);
}

/* ---- processes ---- */

/* Daemons and their containers (host network: the node's namespace) all live
 * in the cluster's namespaces; every such process goes. `kind` is "net" or
 * "pid" (/proc/PID/ns/KIND). */
static void kill_in_namespaces(const char *kind, const ino_t *inodes, int count,
                               struct pid_list *killed)
{
    if (count == 0)
        return;
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[64];
        struct stat st;
        snprintf(path, sizeof(path), "/proc/%s/ns/%s", e->d_name, kind);
        if (stat(path, &st) < 0)
            continue;
        for (int i = 0; i < count; i++)
            if (inodes[i] != 0 && st.st_ino == inodes[i])
                kill_and_note(killed, (pid_t)atoi(e->d_name));
    }
    closedir(proc);
}

/* A daemon of the state file whose namespace is already gone (deleted by
 * hand) is recognized by its command line, which names its socket. */
static bool cmdline_has(pid_t pid, const char *arg)
{
    char path[64], *text = NULL;
    size_t len;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    if (read_file(path, &text, &len, NULL) < 0)
        return false;
    bool found = false;
    for (size_t off = 0; off < len && !found; off += strlen(text + off) + 1)
        found = strcmp(text + off, arg) == 0;
    free(text);
    return found;
}

static void kill_recorded_daemons(const char *dir, const char *name, struct pid_list *killed)
{
    struct dev_cluster c;
    struct serr err;
    if (dev_cluster_load(&c, dir, name, &err) < 0)
        return;
    for (int i = 0; i < c.n; i++)
        if (c.nodes[i].pid > 0 && cmdline_has(c.nodes[i].pid, c.nodes[i].socket))
            kill_and_note(killed, c.nodes[i].pid);
    dev_cluster_free(&c);
}

static void wait_gone(const struct pid_list *killed)
{
    int64_t deadline = mono_ms() + KILL_WAIT_MS;
    for (int i = 0; i < killed->count; i++)
        /* A zombie has already let go of its mounts and namespaces. */
        while (dev_pid_running(killed->pids[i]) && mono_ms() < deadline) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 2 * 1000000L};
            nanosleep(&ts, NULL);
        }
}

/* ---- the nodes' containers ---- */

struct id_list {
    char **ids;
    int count;
};

static void id_list_add(struct id_list *l, const char *id, size_t len)
{
    /* ids become paths and glob patterns: only what the agent makes */
    if (len == 0 || len > 64 || strspn(id, "0123456789abcdefghijklmnopqrstuvwxyz") < len)
        return;
    for (int i = 0; i < l->count; i++)
        if (strlen(l->ids[i]) == len && strncmp(l->ids[i], id, len) == 0)
            return;
    l->ids = xrealloc(l->ids, (size_t)(l->count + 1) * sizeof(char *));
    l->ids[l->count++] = xasprintf("%.*s", (int)len, id);
}

static void id_list_free(struct id_list *l)
{
    for (int i = 0; i < l->count; i++)
        free(l->ids[i]);
    free(l->ids);
}

/* The containers the nodes made, from every trace one leaves in the
 * cluster's directory, whatever state its daemon is in (killed before it
 * wrote a record, or after it removed one): its record state/agent/ID.json,
 * its network namespace marker ID.netns, crun's state run/runtime/ID, its
 * bundle state/containers/ID. */
static void collect_container_ids(const char *cluster_dir, struct id_list *ids)
{
    static const char *const patterns[] = {"node-*/state/agent/*.json",
                                           "node-*/state/agent/*.netns",
                                           "node-*/run/runtime/*", "node-*/state/containers/*",
                                           NULL};
    for (int p = 0; patterns[p]; p++) {
        char *pattern = xasprintf("%s/%s", cluster_dir, patterns[p]);
        glob_t found;
        if (glob(pattern, 0, NULL, &found) == 0) {
            for (size_t i = 0; i < found.gl_pathc; i++) {
                const char *base = strrchr(found.gl_pathv[i], '/') + 1;
                const char *dot = strchr(base, '.');
                id_list_add(ids, base, dot ? (size_t)(dot - base) : strlen(base));
            }
            globfree(&found);
        }
        free(pattern);
    }
}

/* Field 22 of /proc/PID/stat (start time), -1 when gone. */
static long long start_time_of(pid_t pid)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_file(path, &text, NULL, NULL) < 0)
        return -1;
    long long start = -1;
    char *p = strrchr(text, ')');
    for (int field = 2; p && *p && start < 0; p++)
        if (*p == ' ' && ++field == 22)
            start = strtoll(p + 1, NULL, 10);
    free(text);
    return start;
}

/* The pid namespaces of the recorded containers whose init still runs (the
 * same process: its start time matches), and their network namespaces
 * (/run/netns/shoal-ID, bridged tasks): everything in them goes, processes
 * that left the container's cgroups too (health checks' `crun exec`). */
static void collect_namespaces(const char *cluster_dir, const struct id_list *ids, ino_t **pid_ns,
                               int *npid, ino_t **net_ns, int *nnet)
{
    *pid_ns = xcalloc((size_t)ids->count + 1, sizeof(ino_t));
    *net_ns = xcalloc((size_t)ids->count + 1, sizeof(ino_t));
    *npid = *nnet = 0;
    for (int i = 0; i < ids->count; i++) {
        char netns[96];
        snprintf(netns, sizeof(netns), "shoal-%s", ids->ids[i]);
        ino_t net = dev_netns_inode(netns);
        if (net != 0)
            (*net_ns)[(*nnet)++] = net;
        char *pattern = xasprintf("%s/node-*/state/agent/%s.json", cluster_dir, ids->ids[i]);
        glob_t found;
        if (glob(pattern, 0, NULL, &found) == 0) {
            json_t *rec = json_load_file(found.gl_pathv[0], 0, NULL);
            pid_t pid = (pid_t)json_integer_value(json_object_get(rec, "pid"));
            long long start = json_integer_value(json_object_get(rec, "start_time"));
            char path[64];
            struct stat st;
            snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
            if (pid > 1 && start > 0 && start_time_of(pid) == start && stat(path, &st) == 0)
                (*pid_ns)[(*npid)++] = st.st_ino;
            json_decref(rec);
            globfree(&found);
        }
        free(pattern);
    }
}

/* A container's cgroups are /sys/fs/cgroup/shoal/<id> (v2) or
 * /sys/fs/cgroup/<ctrl>/shoal/<id>. */
static void collect_cgroups(const struct id_list *ids, glob_t *cgroups)
{
    int flags = 0;
    for (int i = 0; i < ids->count; i++) {
        char *v2 = xasprintf("/sys/fs/cgroup/shoal/%s", ids->ids[i]);
        char *v1 = xasprintf("/sys/fs/cgroup/*/shoal/%s", ids->ids[i]);
        glob(v2, flags, NULL, cgroups);
        flags = GLOB_APPEND;
        glob(v1, flags, NULL, cgroups);
        free(v2);
        free(v1);
    }
    if (flags == 0)
        memset(cgroups, 0, sizeof(*cgroups));
}

static void kill_cgroup(const char *cgroup, struct pid_list *killed)
{
    char *path = xasprintf("%s/cgroup.procs", cgroup);
    FILE *f = fopen(path, "re");
    free(path);
    if (f == NULL)
        return;
    int pid;
    while (fscanf(f, "%d", &pid) == 1)
        kill_and_note(killed, (pid_t)pid);
    fclose(f);
}

static void remove_cgroups(const glob_t *cgroups)
{
    for (size_t i = 0; i < cgroups->gl_pathc; i++) {
        /* A cgroup whose last process just died may still be busy a moment. */
        for (int tries = 0; rmdir(cgroups->gl_pathv[i]) < 0 && errno == EBUSY && tries < 50;
             tries++) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 2 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

/* ---- mounts ---- */

static int cmp_deepest_first(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

static void unmount_under(const char *cluster_dir)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (f == NULL)
        return;
    size_t dlen = strlen(cluster_dir), count = 0;
    char **mounts = NULL, line[4096], point[4096];
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1)
            continue;
        mountinfo_unescape(point);
        if (strncmp(point, cluster_dir, dlen) != 0 || (point[dlen] != '/' && point[dlen] != 0))
            continue;
        mounts = xrealloc(mounts, (count + 1) * sizeof(char *));
        mounts[count++] = xstrdup(point);
    }
    fclose(f);
    if (count > 0)
        qsort(mounts, count, sizeof(char *), cmp_deepest_first);
    for (size_t i = 0; i < count; i++) {
        umount2(mounts[i], MNT_DETACH);
        free(mounts[i]);
    }
    free(mounts);
}

/* ---- links and namespaces ---- */

static bool network_left(const char *name)
{
    int *idx;
    int count = dev_net_list(name, &idx);
    free(idx);
    char bridge[32], path[64], lan[32];
    dev_bridge_name(name, bridge, sizeof(bridge));
    snprintf(path, sizeof(path), "/sys/class/net/%s", bridge);
    dev_lan_netns(name, lan, sizeof(lan));
    return count > 0 || access(path, F_OK) == 0 || dev_netns_inode(lan) != 0;
}

/* Bridged tasks have their own network namespace, /run/netns/shoal-<id>
 * (agent/net.h), made by the node's daemon: gone with the processes that
 * used it once its mount goes. */
static void remove_task_netns(const struct id_list *ids)
{
    for (int i = 0; i < ids->count; i++) {
        char *path = xasprintf("/run/netns/shoal-%s", ids->ids[i]);
        umount2(path, MNT_DETACH);
        unlink(path);
        free(path);
    }
}

/* The namespaces each node's daemon made ahead (agent/net.h), keyed by its
 * state directory: unbound, as the killed daemons could not. */
static void remove_pool_netns(const char *cluster_dir)
{
    char *pattern = xasprintf("%s/node-*/state", cluster_dir);
    glob_t found;
    if (glob(pattern, GLOB_ONLYDIR, NULL, &found) == 0) {
        for (size_t i = 0; i < found.gl_pathc; i++)
            net_pool_remove_leftovers(found.gl_pathv[i]);
        globfree(&found);
    }
    free(pattern);
}

/* An `up` killed while its `ip -batch` ran leaves that ip process going on
 * for some milliseconds: what it makes after a pass is removed by the next. */
static int destroy_network(const char *name, struct serr *err)
{
    for (int pass = 0; pass < 3; pass++) {
        if (dev_net_destroy(name, err) < 0)
            return -1;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
        nanosleep(&ts, NULL);
        if (!network_left(name))
            return 0;
    }
    return serr_set(err, SERR_INTERNAL, "namespaces or bridge of '%s' are still there", name);
}

/* The directories `up -v` made for DIR: their mounts ended with the daemons. */
static void remove_made_mountpoints(const char *dir, const char *name)
{
    struct dev_cluster c;
    struct serr err;
    if (dev_cluster_load(&c, dir, name, &err) < 0)
        return;
    dev_volumes_remove_made(&c);
    dev_cluster_free(&c);
}

/* ---- all of it ---- */

int dev_down(const char *dir, const char *name, struct serr *err)
{
    if (dev_check_name(name, err) < 0)
        return -1;
    char *cluster_dir = xasprintf("%s/%s", dir, name);
    /* mountinfo names mount points by their canonical path. */
    char *canonical = realpath(cluster_dir, NULL);
    if (canonical != NULL) {
        free(cluster_dir);
        cluster_dir = canonical;
    }
    int *idx;
    int count = dev_net_list(name, &idx);
    ino_t *inodes = xcalloc((size_t)count + 1, sizeof(ino_t));
    for (int k = 0; k < count; k++) {
        char netns[40];
        dev_node_netns(name, idx[k], netns, sizeof(netns));
        inodes[k] = dev_netns_inode(netns);
    }
    struct pid_list killed = {0};
    kill_in_namespaces("net", inodes, count, &killed);
    kill_recorded_daemons(dir, name, &killed);
    /* the containers, whatever their daemon did (it may be long dead) */
    struct id_list ids = {0};
    collect_container_ids(cluster_dir, &ids);
    ino_t *pid_ns, *net_ns;
    int npid, nnet;
    collect_namespaces(cluster_dir, &ids, &pid_ns, &npid, &net_ns, &nnet);
    kill_in_namespaces("pid", pid_ns, npid, &killed);
    kill_in_namespaces("net", net_ns, nnet, &killed);
    glob_t cgroups;
    collect_cgroups(&ids, &cgroups);
    for (size_t i = 0; i < cgroups.gl_pathc; i++)
        kill_cgroup(cgroups.gl_pathv[i], &killed);
    wait_gone(&killed);
    unmount_under(cluster_dir);
    remove_made_mountpoints(dir, name);
    remove_task_netns(&ids);
    remove_pool_netns(cluster_dir);
    remove_cgroups(&cgroups);
    id_list_free(&ids);
    free(pid_ns);
    free(net_ns);
    int rc = destroy_network(name, err);
    if (rc == 0)
        rc = rm_rf(cluster_dir, err);
    /* The default DIR is ours: gone with the last cluster (fails if not empty). */
    if (rc == 0 && strcmp(dir, DEV_DEFAULT_DIR) == 0)
        rmdir(dir);
    globfree(&cgroups);
    free(killed.pids);
    free(inodes);
    free(idx);
    free(cluster_dir);
    return rc;
}
