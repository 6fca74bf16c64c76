/* Container mount targets, checked by the manager (service specs) and the
 * agent (the container's config) alike. */
#include <stdbool.h>
#include <string.h>

#include "model/mount.h"

/* Mount points the runtime itself sets up: a bind there hides them and
 * every start of the container fails. */
static const char *const reserved_targets[] = {"/", "/proc", "/sys", "/dev", "/dev/pts", NULL};

/* `path` (absolute) without "//", "." and ".." components, into out[outlen]
 * ("/" at least). False when it does not fit. */
static bool normalize_path(const char *path, char *out, size_t outlen)
{
    size_t len = 0;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.')) {
            p += n;
            continue;
        }
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (len > 0 && out[len] != '/')
                len--;
            out[len] = '\0';
            p += n;
            continue;
        }
        if (len + 1 + n >= outlen)
            return false;
        out[len++] = '/';
        memcpy(out + len, p, n);
        len += n;
        p += n;
        out[len] = '\0';
    }
    if (len == 0) {
        if (outlen < 2)
            return false;
        out[len++] = '/';
    }
    out[len] = '\0';
    return true;
}

const char *mount_reserved_target(const char *target)
{
    if (target == NULL || target[0] != '/')
        return NULL;
    char norm[4096];
    if (!normalize_path(target, norm, sizeof(norm)))
        return NULL;
    for (size_t i = 0; reserved_targets[i] != NULL; i++)
        if (strcmp(norm, reserved_targets[i]) == 0)
            return reserved_targets[i];
    if (strcmp(norm, MOUNT_INIT_TARGET) == 0)
        return MOUNT_INIT_TARGET;
    return NULL;
}
