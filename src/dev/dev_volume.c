/* `shoal dev up -v HOST_DIR:DIR`: a host directory shared by every node at
 * DIR. Each daemon of such a cluster gets its own mount namespace (a slave
 * of the host's: host mounts still reach it, its own do not leak out) where
 * HOST_DIR is bound at DIR; its host jobs inherit it, and `dev exec` and
 * `dev shell` enter it. The mounts end with the daemons, so `dev down`
 * leaves none. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "dev/dev_int.h"

/* DIR may be none of these: the node would lose what it runs on. */
static const char *const reserved_dirs[] = {
    "/",     "/bin",  "/boot", "/dev",  "/etc", "/lib", "/lib32", "/lib64",
    "/proc", "/root", "/run",  "/sbin", "/sys", "/tmp", "/usr",   "/var",
};
/* ... nor anything under these (kernel file systems, namespaces, sockets). */
static const char *const reserved_trees[] = {"/proc", "/sys", "/dev", "/run"};

/* True when `path` is `top` or lies under it. */
static bool path_within(const char *path, const char *top)
{
    size_t len = strlen(top);
    if (strcmp(top, "/") == 0)
        return true;
    return strncmp(path, top, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

/* Absolute, no empty, "." or ".." component, no trailing slash (but "/"). */
static int check_path(const char *what, const char *path, struct serr *err)
{
    if (path[0] != '/')
        return serr_set(err, SERR_INVALID, "-v: %s '%s' is not an absolute path", what, path);
    if (strlen(path) >= PATH_MAX / 2)
        return serr_set(err, SERR_INVALID, "-v: %s is too long", what);
    if (strcmp(path, "/") == 0)
        return 0;
    for (const char *p = path; *p != '\0';) {
        const char *next = strchr(p + 1, '/');
        size_t len = next ? (size_t)(next - p - 1) : strlen(p + 1);
        if (len == 0 || (len == 1 && p[1] == '.') || (len == 2 && strncmp(p + 1, "..", 2) == 0))
            return serr_set(err, SERR_INVALID,
                            "-v: %s '%s': want a plain absolute path (no '//', '.', '..' "
                            "or trailing '/')",
                            what, path);
        p = next ? next : p + 1 + len;
    }
    return 0;
}

/* Fails when `path` exists and is not a directory. */
static int check_dir_or_missing(const char *what, const char *path, struct serr *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
        return serr_set(err, SERR_INVALID, "-v: %s '%s' exists and is not a directory", what, path);
    return 0;
}

static int check_target(const char *dir, const char *cluster_dir, struct serr *err)
{
    for (size_t i = 0; i < sizeof(reserved_dirs) / sizeof(reserved_dirs[0]); i++)
        if (strcmp(dir, reserved_dirs[i]) == 0)
            return serr_set(err, SERR_INVALID,
                            "-v: DIR '%s' is reserved: choose another "
                            "directory, such as /data",
                            dir);
    for (size_t i = 0; i < sizeof(reserved_trees) / sizeof(reserved_trees[0]); i++)
        if (path_within(dir, reserved_trees[i]))
            return serr_set(err, SERR_INVALID, "-v: DIR '%s' is under %s, which is reserved", dir,
                            reserved_trees[i]);
    if (path_within(dir, cluster_dir) || path_within(cluster_dir, dir))
        return serr_set(err, SERR_INVALID,
                        "-v: DIR '%s' would cover or lie in the cluster's directory %s", dir,
                        cluster_dir);
    return 0;
}

int dev_volume_add(struct dev_cluster *c, const char *spec, struct serr *err)
{
    const char *colon = strchr(spec, ':');
    if (colon == NULL)
        return serr_set(err, SERR_INVALID, "-v '%s': want HOST_DIR:DIR", spec);
    if (strchr(colon + 1, ':') != NULL)
        return serr_set(err, SERR_INVALID, "-v '%s': want HOST_DIR:DIR (no ':' in paths)", spec);
    char *host = xasprintf("%.*s", (int)(colon - spec), spec);
    const char *dir = colon + 1;
    int rc = 0;
    if (host[0] == '\0' || dir[0] == '\0')
        rc = serr_set(err, SERR_INVALID, "-v '%s': want HOST_DIR:DIR", spec);
    else if (check_path("HOST_DIR", host, err) < 0 || check_path("DIR", dir, err) < 0 ||
             check_target(dir, c->dir, err) < 0 ||
             check_dir_or_missing("HOST_DIR", host, err) < 0 ||
             check_dir_or_missing("DIR", dir, err) < 0)
        rc = -1;
    for (int i = 0; i < c->nvolumes && rc == 0; i++)
        if (strcmp(c->volumes[i].dir, dir) == 0)
            rc = serr_set(err, SERR_INVALID, "-v: DIR '%s' given twice", dir);
    if (rc < 0) {
        free(host);
        return -1;
    }
    c->volumes = xrealloc(c->volumes, (size_t)(c->nvolumes + 1) * sizeof(*c->volumes));
    c->volumes[c->nvolumes++] = (struct dev_volume){.host = host, .dir = xstrdup(dir)};
    return 0;
}

void dev_volumes_free(struct dev_cluster *c)
{
    for (int i = 0; i < c->nvolumes; i++) {
        free(c->volumes[i].host);
        free(c->volumes[i].dir);
        free(c->volumes[i].made);
    }
    free(c->volumes);
    c->volumes = NULL;
    c->nvolumes = 0;
}

/* The topmost missing directory on the way to `dir` (caller frees), or NULL. */
static char *first_missing(const char *dir)
{
    char *made = NULL, *path = xstrdup(dir);
    while (strcmp(path, "/") != 0 && access(path, F_OK) < 0) {
        free(made);
        made = xstrdup(path);
        char *slash = strrchr(path, '/');
        slash[slash == path ? 1 : 0] = '\0';
    }
    free(path);
    return made;
}

int dev_volumes_prepare(struct dev_cluster *c, struct serr *err)
{
    for (int i = 0; i < c->nvolumes; i++) {
        struct dev_volume *v = &c->volumes[i];
        free(v->made);
        v->made = first_missing(v->dir);
        if (mkdir_p(v->host, 0755, err) < 0 || mkdir_p(v->dir, 0755, err) < 0)
            return serr_wrap(err, "-v %s:%s", v->host, v->dir);
    }
    return 0;
}

void dev_volumes_remove_made(const struct dev_cluster *c)
{
    for (int i = 0; i < c->nvolumes; i++) {
        const struct dev_volume *v = &c->volumes[i];
        if (v->made == NULL || !path_within(v->dir, v->made))
            continue;
        /* DIR, then each parent up to `made`, while they are empty */
        char *path = xstrdup(v->dir);
        while (rmdir(path) == 0 && strcmp(path, v->made) != 0)
            *strrchr(path, '/') = '\0';
        free(path);
    }
}

json_t *dev_volumes_json(const struct dev_cluster *c)
{
    json_t *volumes = json_array();
    for (int i = 0; i < c->nvolumes; i++) {
        const struct dev_volume *v = &c->volumes[i];
        json_t *j = json_pack("{s:s, s:s}", "host", v->host, "dir", v->dir);
        if (v->made)
            json_object_set_new(j, "made", json_string(v->made));
        json_array_append_new(volumes, j);
    }
    return volumes;
}

void dev_volumes_load(struct dev_cluster *c, json_t *volumes)
{
    size_t i;
    json_t *j;
    json_array_foreach(volumes, i, j)
    {
        const char *host = json_string_value(json_object_get(j, "host"));
        const char *dir = json_string_value(json_object_get(j, "dir"));
        const char *made = json_string_value(json_object_get(j, "made"));
        if (host == NULL || dir == NULL || dir[0] != '/')
            continue;
        c->volumes = xrealloc(c->volumes, (size_t)(c->nvolumes + 1) * sizeof(*c->volumes));
        c->volumes[c->nvolumes++] = (struct dev_volume){
            .host = xstrdup(host), .dir = xstrdup(dir), .made = made ? xstrdup(made) : NULL};
    }
}

int dev_volumes_mount_inside(const struct dev_cluster *c, struct serr *err)
{
    if (c->nvolumes == 0)
        return 0;
    if (unshare(CLONE_NEWNS) < 0)
        return serr_errno(err, "unshare(CLONE_NEWNS)");
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
        return serr_errno(err, "making / a slave mount");
    for (int i = 0; i < c->nvolumes; i++)
        if (mount(c->volumes[i].host, c->volumes[i].dir, NULL, MS_BIND | MS_REC, NULL) < 0)
            return serr_errno(err, "bind mount %s on %s", c->volumes[i].host, c->volumes[i].dir);
    return 0;
}
