/* The node certificate checked at the daemon's start, in a process of its
 * own (clusternet.h). The cluster port's contexts are made at its first
 * connection (clusternet_tls.c), so that a node no peer talks to never loads
 * OpenSSL; the check still stops a start whose certificate cannot make them,
 * with the reason, and OpenSSL stays out of the daemon: only the helper, a
 * short-lived `shoal CLUSTERNET_CHECK_COMMAND TLS_DIR`, loads it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "agent/runtime.h"
#include "base/log.h"
#include "daemon/clusternet.h"
#include "daemon/clusternet_int.h"
#include "daemon/shoal.h"

/* "node certificate: ..." and a little more. */
#define REPORT_MAX (sizeof(((struct serr *)0)->msg) + 32)

/* Both contexts made and freed: loads OpenSSL into the calling process. */
static int check_here(const char *tls_dir, struct serr *err)
{
    SSL_CTX *server, *client;
    if (clusternet_tls_contexts(tls_dir, &server, &client, err) < 0)
        return -1;
    SSL_CTX_free(server);
    SSL_CTX_free(client);
    return 0;
}

int clusternet_check_main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: shoal %s TLS_DIR\n", CLUSTERNET_CHECK_COMMAND);
        return 2;
    }
    struct serr err = {0};
    if (check_here(argv[2], &err) < 0) {
        printf("%s\n", err.msg);
        return 1;
    }
    return 0;
}

/* The helper's verdict: 0 when it exited 0; its message when it exited 1. */
static int check_verdict(const char *report, int status, struct serr *err)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && report[0])
        return serr_set(err, SERR_INVALID, "%s", report);
    if (WIFSIGNALED(status))
        return serr_set(err, SERR_INTERNAL, "node certificate check killed by signal %d",
                        WTERMSIG(status));
    return serr_set(err, SERR_INTERNAL, "node certificate check failed (status %d)%s%s",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1, report[0] ? ": " : "", report);
}

int clusternet_check_tls(struct shoal *sh, struct serr *err)
{
    char *tls_dir = shoal_state_path(sh, "tls");
    char *const argv[] = {"shoal", CLUSTERNET_CHECK_COMMAND, tls_dir, NULL};
    char report[REPORT_MAX] = "";
    int status, rc;
    if (sh->exe == NULL) { /* the binary cannot be named: in the daemon */
        rc = check_here(tls_dir, err);
    } else if (runtime_run_helper(sh->exe, argv, report, sizeof(report), &status, err) < 0) {
        log_warn("%s: checking the node certificate in the daemon", err->msg);
        memset(err, 0, sizeof(*err));
        rc = check_here(tls_dir, err);
    } else {
        rc = check_verdict(report, status, err);
    }
    free(tls_dir);
    return rc;
}
