/* `--user NAME[:GROUP]`: names looked up in the container's own /etc/passwd
 * and /etc/group, as Docker does (the host's files are never read). */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/runtime_internal.h"
#include "base/util.h"
#include "model/user.h"

/* Without openat2 (kernels before 5.6, valgrind): each component opened
 * below the last with O_NOFOLLOW, so a symlink anywhere is refused rather
 * than followed out of the rootfs. */
static int open_no_links(int root, const char *path)
{
    char copy[64];
    snprintf(copy, sizeof(copy), "%s", path);
    int dir = dup(root);
    char *save = NULL;
    for (char *part = strtok_r(copy, "/", &save); part && dir >= 0;) {
        char *next = strtok_r(NULL, "/", &save);
        int flags = O_CLOEXEC | O_NOFOLLOW | (next ? O_PATH | O_DIRECTORY : O_RDONLY | O_NONBLOCK);
        int fd = openat(dir, part, flags);
        close(dir);
        dir = fd;
        if (next == NULL)
            return fd;
        part = next;
    }
    if (dir >= 0)
        close(dir);
    return -1;
}

/* `path` ("etc/passwd") inside `rootfs`, resolved as if rootfs were "/" (an
 * image's absolute symlink stays inside it); a regular file only. NULL when
 * it cannot be opened. */
static FILE *open_in_root(const char *rootfs, const char *path)
{
    int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return NULL;
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS)
        fd = open_no_links(root, path);
    close(root);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (f == NULL && fd >= 0)
        close(fd);
    return f;
}

/* Splits a passwd or group line on ':' into at most `max` fields (in place). */
static int split_fields(char *line, char **fields, int max)
{
    line[strcspn(line, "\r\n")] = '\0';
    int n = 0;
    for (char *p = line; n < max; n++) {
        fields[n] = p;
        char *colon = strchr(p, ':');
        if (colon == NULL)
            return n + 1;
        *colon = '\0';
        p = colon + 1;
    }
    return n;
}

static bool parse_id(const char *s, uint32_t *out)
{
    if (!user_part_numeric(s, strlen(s)))
        return false;
    *out = (uint32_t)strtoul(s, NULL, 10);
    return true;
}

/* The passwd entry of `name`: its uid and primary gid. */
static bool find_passwd(const char *rootfs, const char *name, uint32_t *uid, uint32_t *gid)
{
    FILE *f = open_in_root(rootfs, "etc/passwd");
    if (f == NULL)
        return false;
    char *line = NULL, *fields[4];
    size_t cap = 0;
    bool found = false;
    while (!found && getline(&line, &cap, f) > 0)
        found = split_fields(line, fields, 4) == 4 && strcmp(fields[0], name) == 0 &&
                parse_id(fields[2], uid) && parse_id(fields[3], gid);
    free(line);
    fclose(f);
    return found;
}

static bool has_gid(json_t *gids, uint32_t gid)
{
    size_t i;
    json_t *g;
    json_array_foreach(gids, i, g) if (json_integer_value(g) == (json_int_t)gid) return true;
    return false;
}

/* The gid of group `name`, or (with `member`) every group listing `member`
 * appended to `gids`. */
static bool scan_groups(const char *rootfs, const char *name, uint32_t *gid, const char *member,
                        json_t *gids)
{
    FILE *f = open_in_root(rootfs, "etc/group");
    if (f == NULL)
        return false;
    char *line = NULL, *fields[4];
    size_t cap = 0;
    bool found = false;
    while (!found && getline(&line, &cap, f) > 0) {
        uint32_t id;
        if (split_fields(line, fields, 4) != 4 || !parse_id(fields[2], &id))
            continue;
        if (name && strcmp(fields[0], name) == 0) {
            *gid = id;
            found = true;
        }
        char *save = NULL;
        for (char *m = member ? strtok_r(fields[3], ",", &save) : NULL; m;
             m = strtok_r(NULL, ",", &save))
            if (strcmp(m, member) == 0 && !has_gid(gids, id))
                json_array_append_new(gids, json_integer(id));
    }
    free(line);
    fclose(f);
    return found;
}

int runtime_user_check(const char *user, struct serr *err)
{
    if (user && user[0] && !user_spec_valid(user))
        return serr_set(err, SERR_INVALID, "invalid user \"%s\": expected user[:group] (names or "
                        "numbers)", user);
    return 0;
}

int runtime_user_resolve(const char *rootfs, const char *user, struct runtime_user *out,
                         struct serr *err)
{
    *out = (struct runtime_user){0};
    if (runtime_user_check(user, err) < 0)
        return -1;
    if (user == NULL || *user == '\0')
        return 0;
    char *copy = xstrdup(user);
    char *colon = strchr(copy, ':');
    const char *group = colon ? colon + 1 : NULL;
    if (colon)
        *colon = '\0';
    int rc = 0;
    if (user_part_numeric(copy, strlen(copy))) {
        parse_id(copy, &out->uid);
    } else if (!find_passwd(rootfs, copy, &out->uid, &out->gid)) {
        rc = serr_set(err, SERR_INVALID, "unable to find user %s: no matching entries in "
                      "passwd file", copy);
    } else if (group == NULL) {
        /* as initgroups(3) and Docker: the primary group, then those listing the user */
        out->additional_gids = json_pack("[I]", (json_int_t)out->gid);
        scan_groups(rootfs, NULL, NULL, copy, out->additional_gids);
    }
    if (rc == 0 && group && user_part_numeric(group, strlen(group)))
        parse_id(group, &out->gid);
    else if (rc == 0 && group && !scan_groups(rootfs, group, &out->gid, NULL, NULL))
        rc = serr_set(err, SERR_INVALID, "unable to find group %s: no matching entries in "
                      "group file", group);
    free(copy);
    if (rc < 0) {
        json_decref(out->additional_gids);
        out->additional_gids = NULL;
    }
    return rc;
}

json_t *runtime_user_json(struct runtime_user *u)
{
    json_t *ids = json_pack("{s:I, s:I}", "uid", (json_int_t)u->uid, "gid", (json_int_t)u->gid);
    if (json_array_size(u->additional_gids) > 0)
        json_object_set(ids, "additionalGids", u->additional_gids);
    json_decref(u->additional_gids);
    u->additional_gids = NULL;
    return ids;
}
