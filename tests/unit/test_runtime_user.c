/* --user names looked up in a container's /etc/passwd and /etc/group. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/runtime_internal.h"
#include "base/util.h"
#include "model/user.h"
#include "unit.h"

static void put(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    CHECK(write_file_atomic(path, text, strlen(text), false, NULL) == 0);
    free(path);
}

/* openat2 (Linux 5.6) as this process sees it: valgrind 3.19 lacks it. */
static bool have_openat2(void)
{
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
    if (fd >= 0)
        close(fd);
    return !(fd < 0 && errno == ENOSYS);
}

TEST(user_spec_syntax)
{
    const char *good[] = {"0", "1000:1000", "nobody", "www-data", "www-data:adm", "1000:adm",
                          "nobody:65534", "a.b_c", NULL};
    const char *bad[] = {"", ":", "1:", ":1", "a b", "-x", "1:2:3", "99999999999", "root:",
                         "x/y", NULL};
    for (int i = 0; good[i]; i++)
        CHECK(user_spec_valid(good[i]));
    for (int i = 0; bad[i]; i++)
        CHECK(!user_spec_valid(bad[i]));
}

TEST(runtime_user_resolves_names_in_the_rootfs)
{
    char dir[] = "/tmp/shoal-ruser-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *etc = xasprintf("%s/etc", dir);
    CHECK(mkdir(etc, 0755) == 0);
    put(etc, "passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        "web:x:1000:1001::/srv:/bin/sh\nbroken line\n");
    put(etc, "group", "root:x:0:\nweb:x:1001:\nadm:x:4:web,other\nwheel:x:10:root,web\n"
                      "nogroup:x:65534:\n");
    struct runtime_user u;
    struct serr err = {0};
    CHECK(runtime_user_resolve(dir, "nobody", &u, &err) == 0);
    CHECK(u.uid == 65534 && u.gid == 65534);
    CHECK(json_array_size(u.additional_gids) == 1);
    json_decref(u.additional_gids);
    /* a name: its passwd gid, and the groups that list it */
    CHECK(runtime_user_resolve(dir, "web", &u, &err) == 0);
    CHECK(u.uid == 1000 && u.gid == 1001);
    CHECK(json_array_size(u.additional_gids) == 3);
    CHECK(json_integer_value(json_array_get(u.additional_gids, 0)) == 1001);
    CHECK(json_integer_value(json_array_get(u.additional_gids, 1)) == 4);
    CHECK(json_integer_value(json_array_get(u.additional_gids, 2)) == 10);
    json_decref(u.additional_gids);
    CHECK(runtime_user_resolve(dir, "web:adm", &u, &err) == 0);
    CHECK(u.uid == 1000 && u.gid == 4 && u.additional_gids == NULL);
    CHECK(runtime_user_resolve(dir, "1234:nogroup", &u, &err) == 0);
    CHECK(u.uid == 1234 && u.gid == 65534);
    CHECK(runtime_user_resolve(dir, "5:6", &u, &err) == 0);
    CHECK(u.uid == 5 && u.gid == 6 && u.additional_gids == NULL);
    CHECK(runtime_user_resolve(dir, "42", &u, &err) == 0);
    CHECK(u.uid == 42 && u.gid == 0); /* numbers as they are */
    CHECK(runtime_user_resolve(dir, NULL, &u, &err) == 0 && u.uid == 0);
    CHECK(runtime_user_resolve(dir, "ghost", &u, &err) < 0);
    CHECK_STR(err.msg, "unable to find user ghost: no matching entries in passwd file");
    CHECK(runtime_user_resolve(dir, "web:ghosts", &u, &err) < 0);
    CHECK_STR(err.msg, "unable to find group ghosts: no matching entries in group file");
    CHECK(runtime_user_resolve(dir, "a b", &u, &err) < 0 && err.kind == SERR_INVALID);
    /* an absolute symlink resolves inside the rootfs, never to the host's file */
    char *passwd = xasprintf("%s/passwd", etc), *real = xasprintf("%s/passwd.real", etc);
    CHECK(rename(passwd, real) == 0);
    CHECK(symlink("/etc/passwd.real", passwd) == 0);
    if (have_openat2()) {
        CHECK(runtime_user_resolve(dir, "web", &u, &err) == 0 && u.uid == 1000);
        json_decref(u.additional_gids);
    } else { /* old kernels, valgrind: a symlink is refused, never followed */
        CHECK(runtime_user_resolve(dir, "web", &u, &err) < 0);
    }
    CHECK(unlink(passwd) == 0);
    CHECK(symlink("/etc/hostname-of-the-host/../../../../etc/passwd.real", passwd) == 0);
    CHECK(runtime_user_resolve(dir, "root", &u, &err) < 0); /* no such dir inside */
    free(passwd);
    free(real);
    free(etc);
    CHECK(rm_rf(dir, NULL) == 0);
}

/* The OCI process's user: additionalGids only when there are some, the
 * array taken over. */
TEST(runtime_user_json_has_gids_when_some)
{
    struct runtime_user u = {.uid = 1000, .gid = 1001,
                             .additional_gids = json_pack("[i, i]", 1001, 4)};
    json_t *j = runtime_user_json(&u);
    CHECK(u.additional_gids == NULL);
    CHECK(json_integer_value(json_object_get(j, "uid")) == 1000);
    CHECK(json_integer_value(json_object_get(j, "gid")) == 1001);
    CHECK(json_array_size(json_object_get(j, "additionalGids")) == 2);
    json_decref(j);
    u = (struct runtime_user){.uid = 5, .gid = 6, .additional_gids = json_array()};
    j = runtime_user_json(&u);
    CHECK(json_object_get(j, "additionalGids") == NULL && json_object_size(j) == 2);
    json_decref(j);
}
