/* `shoal node exec` / `shoal node cp` on this node's host (not in a
 * container): the node side of POST /v1/node/exec. The manager that was
 * called fans the request out to every targeted node (api/routes_exec.c).
 *
 * A command runs with uv_spawn in a session and process group of its own
 * (cwd "/", stdin /dev/null, the daemon's environment plus SHOAL_NODE=<this
 * node's hostname>), stdout and stderr merged into one pipe. Its output is
 * kept up to NODE_EXEC_OUTPUT_MAX bytes (the rest is read and dropped,
 * "truncated": true). At the timeout the whole process group gets SIGKILL
 * and the result says "timed_out". A file is written off the loop (libuv's
 * thread pool): a temporary file beside DEST, then renamed over it. */
#ifndef SHOAL_DAEMON_NODE_EXEC_H
#define SHOAL_DAEMON_NODE_EXEC_H

#include <jansson.h>

#include "base/err.h"

struct shoal;

#define NODE_EXEC_OUTPUT_MAX (1024 * 1024) /* per node and command */
#define NODE_EXEC_TIMEOUT_DEFAULT 60       /* seconds */
#define NODE_EXEC_TIMEOUT_MAX 86400
/* A pushed file travels base64 in a JSON body of at most HTTP_MAX_BODY (1 MiB). */
#define NODE_CP_MAX (512 * 1024)

/* `result` (borrowed: valid during the call) is
 *   a command: {"exit_code", "signal"?, "timed_out", "output": base64, "truncated"}
 *   a file:    {"path", "size", "mode"} or {"error": "why"} when it could not be written. */
typedef void (*node_exec_cb)(void *arg, json_t *result);

/* Runs `request` (borrowed): {"argv": [...], "timeout": seconds} or
 * {"file": {"path": absolute DEST, "name": basename, "mode": N, "data": base64}}.
 * 0: `cb` runs exactly once, never from within this call. -1: err says why
 * (SERR_FORBIDDEN when this node's daemon.json says "node-exec": false,
 * SERR_INVALID for a malformed request) and `cb` is never called. */
int node_exec_run(struct shoal *sh, json_t *request, node_exec_cb cb, void *arg,
                  struct serr *err);

#endif
