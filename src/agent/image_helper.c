/* Layers unpacked by a helper process (image.h, image_store_unpack_apart):
 * the daemon runs its own binary, `shoal IMAGE_UNPACK_COMMAND FILE DIR`, once
 * per layer, and reads the result from a pipe. The work is the same
 * image_layer_unpack; only the libraries it loads stay out of the daemon. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "agent/image_int.h"
#include "agent/runtime.h"

/* The result line is "HEX SIZE" or "KIND MESSAGE": a message and a little more. */
#define REPORT_MAX (sizeof(((struct serr *)0)->msg) + 32)

int image_unpack_main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: shoal %s FILE DIR\n", IMAGE_UNPACK_COMMAND);
        return 2;
    }
    char hex[HEX_LEN + 1];
    uint64_t size;
    struct serr err = {0};
    if (image_layer_unpack(argv[2], argv[3], hex, &size, &err) < 0) {
        printf("%d %s\n", (int)err.kind, err.msg);
        return 1;
    }
    printf("%s %" PRIu64 "\n", hex, size);
    return 0;
}

/* The helper's result: the layer's diff_id and size when it exited 0, its
 * error (kind and message) when it exited 1. */
static int parse_report(const char *report, int status, char hex[HEX_LEN + 1], uint64_t *size,
                        struct serr *err)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
        sscanf(report, "%64[0-9a-f] %" SCNu64, hex, size) == 2 && strlen(hex) == HEX_LEN)
        return 0;
    int kind, at = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && sscanf(report, "%d %n", &kind, &at) == 1 &&
        at > 0 && kind >= SERR_INTERNAL && kind <= SERR_FORBIDDEN)
        return serr_set(err, (enum serr_kind)kind, "%s", report + at);
    if (WIFSIGNALED(status))
        return serr_set(err, SERR_INTERNAL, "layer unpacking process killed by signal %d",
                        WTERMSIG(status));
    return serr_set(err, SERR_INTERNAL, "layer unpacking process failed (status %d)%s%s",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1, report[0] ? ": " : "", report);
}

int image_layer_unpack_apart(const char *exe, const char *path, const char *dest,
                             char hex[HEX_LEN + 1], uint64_t *size, struct serr *err)
{
    char *const argv[] = {"shoal", IMAGE_UNPACK_COMMAND, (char *)path, (char *)dest, NULL};
    char report[REPORT_MAX];
    int status;
    if (runtime_run_helper(exe, argv, report, sizeof(report), &status, err) < 0)
        return IMAGE_HELPER_NOT_RUN;
    int rc = parse_report(report, status, hex, size, err);
    return rc < 0 && WIFEXITED(status) && WEXITSTATUS(status) == 127 ? IMAGE_HELPER_NOT_RUN : rc;
}
