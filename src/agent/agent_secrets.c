/* A task's secrets and configs: written into a tmpfs mounted for the
 * container at <run_dir>/secrets/<container id> (never the node's disk),
 * each file bind-mounted read-only at its target. Removed with the
 * container. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "base/base64.h"
#include "base/json_get.h"
#include "base/log.h"
#include "base/util.h"

/* "secret" or "config", for messages. */
static const char *noun(const char *table)
{
    return strcmp(table, "secrets") == 0 ? "secret" : "config";
}

static char *secrets_dir(const struct agent_env *env, const char *ctr_id)
{
    char *rel = xasprintf("secrets/%s", ctr_id);
    char *dir = agent_run_path(env, rel);
    free(rel);
    return dir;
}

static int write_one(const struct agent_upstream *up, const char *dir, size_t index,
                     const char *table, json_t *ref, json_t *mounts, struct serr *err)
{
    const char *id = jstr(ref, "id");
    char *data = id ? up->secret_data(up->data, table, id, err) : NULL;
    if (data == NULL)
        return err->msg[0] ? -1 : serr_set(err, SERR_INVALID, "a reference without an id");
    size_t len = 0;
    unsigned char *raw = base64_decode(data, &len);
    OPENSSL_cleanse(data, strlen(data));
    free(data);
    if (raw == NULL)
        return serr_set(err, SERR_INTERNAL, "%s %s: malformed data", noun(table), id);
    const char *uid = jstr(ref, "uid");
    const char *gid = jstr(ref, "gid");
    json_t *mode = json_object_get(ref, "mode");
    char *path = xasprintf("%s/%c%zu", dir, table[0], index);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = fd < 0 || write_all(fd, raw, len) < 0 ? -1 : 0;
    if (rc == 0 && (fchown(fd, uid ? (uid_t)strtoul(uid, NULL, 10) : 0,
                           gid ? (gid_t)strtoul(gid, NULL, 10) : 0) < 0 ||
                    fchmod(fd, mode ? (mode_t)json_integer_value(mode) : 0444) < 0))
        rc = -1;
    if (rc < 0)
        serr_errno(err, "writing %s %s", noun(table), id);
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(raw, len);
    free(raw);
    if (rc == 0)
        json_array_append_new(mounts, json_pack("{s:s, s:O, s:s, s:b, s:b}", "type", "bind",
                                                "target", json_object_get(ref, "target"),
                                                "source", path, "readonly", 1, "file", 1));
    free(path);
    return rc;
}

int ctr_secret_mounts(struct ctr *c, json_t *container, json_t *mounts, struct serr *err)
{
    json_t *secrets = json_object_get(container, "secrets");
    json_t *configs = json_object_get(container, "configs");
    if (json_array_size(secrets) == 0 && json_array_size(configs) == 0)
        return 0;
    char *dir = secrets_dir(c->env, c->id);
    int rc = mkdir_p(dir, 0700, err);
    if (rc == 0 && mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                         "mode=0700,size=16m") < 0)
        rc = serr_errno(err, "mounting a tmpfs for the task's secrets at %s", dir);
    for (size_t i = 0; rc == 0 && i < json_array_size(secrets); i++)
        rc = write_one(c->up, dir, i, "secrets", json_array_get(secrets, i), mounts, err);
    for (size_t i = 0; rc == 0 && i < json_array_size(configs); i++)
        rc = write_one(c->up, dir, i, "configs", json_array_get(configs, i), mounts, err);
    free(dir);
    if (rc < 0)
        ctr_secret_cleanup(c->env, c->id);
    return rc;
}

void ctr_secret_cleanup(const struct agent_env *env, const char *ctr_id)
{
    char *dir = secrets_dir(env, ctr_id);
    if (umount2(dir, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        log_warn("unmounting %s: %s", dir, strerror(errno));
    rm_rf(dir, NULL);
    free(dir);
}
