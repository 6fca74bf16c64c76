#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/build.h"
#include "base/util.h"
#include "unit.h"

/* buildah runs with default signal dispositions and an empty mask, whatever
 * the daemon blocks or ignores: a fake buildah (first in PATH) fails with a
 * last line naming the masks it got, which the build's error carries. (Only
 * the test's own signals are looked at: glibc's internal ones are out of
 * sigfillset's reach.) */
TEST(build_runs_buildah_with_default_signals)
{
    char dir[] = "/tmp/shoal-build-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "cd %s && printf 'FROM scratch\\n' >Dockerfile && tar -cf ctx.tar Dockerfile && "
             "printf '#!/bin/sh\\necho blocked=$(sed -n \"s/^SigBlk:\\\\t//p\" /proc/$$/status)"
             " ignored=$(sed -n \"s/^SigIgn:\\\\t//p\" /proc/$$/status)\\nexit 1\\n' >buildah && "
             "chmod +x buildah",
             dir);
    CHECK(system(cmd) == 0);
    char *path = NULL;
    CHECK(asprintf(&path, "%s:%s", dir, getenv("PATH")) > 0);
    setenv("PATH", path, 1);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    signal(SIGPIPE, SIG_IGN);

    char *tar = NULL;
    CHECK(asprintf(&tar, "%s/ctx.tar", dir) > 0);
    struct build_opts o = {.context_tar = tar, .tag = "docker.io/library/t:1", .work_dir = dir};
    json_t *image = NULL;
    struct serr err = {0};
    int rc = build_image(NULL, &o, &image, &err);
    CHECK(rm_rf(dir, NULL) == 0);
    CHECK(rc < 0);
    unsigned long long blocked, ignored;
    CHECK(sscanf(err.msg, "the build failed: blocked=%llx ignored=%llx", &blocked, &ignored) == 2);
    CHECK((blocked & 1ull << (SIGUSR1 - 1)) == 0);
    CHECK((ignored & 1ull << (SIGPIPE - 1)) == 0);
    free(tar);
    free(path);
}
