/* Container mount targets (model/: used by agent/ and manager/). */
#ifndef SHOAL_MODEL_MOUNT_H
#define SHOAL_MODEL_MOUNT_H

/* Where the runtime binds shoal's init in a container (--init). */
#define MOUNT_INIT_TARGET "/sbin/shoal-init"

/* When `target` is a mount point the runtime sets up itself ("/", "/proc",
 * "/sys", "/dev", "/dev/pts", the init's path), the reserved path it names
 * (after removing "//", "." and ".."): a static string; else NULL. Pure:
 * service specs are checked with it (manager/service.c, manager/secret.c). */
const char *mount_reserved_target(const char *target);

#endif
