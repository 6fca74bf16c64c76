/* Node agent: runs the tasks assigned to this node as containers, reports
 * their observed state, keeps their output, and finds running containers
 * again after a daemon restart (live restore).
 *
 * Per container the daemon holds: a pidfd polled for exit, and the read end
 * of a FIFO the container writes its stdout/stderr to. The container itself
 * holds the FIFO open read-write, so it never gets EPIPE while the daemon is
 * down; the daemon reopens the FIFO when it comes back. No helper process
 * runs beside a container.
 *
 * Output is appended to <run_dir>/logs/<id>.log (tmpfs: RAM by default),
 * rotated to .log.1 past LOG_CAP bytes. */
#ifndef SHOAL_AGENT_AGENT_H
#define SHOAL_AGENT_AGENT_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

struct agent;
struct agent_env;
struct agent_upstream;
struct agent_reply; /* agent/reply.h */

#define LOG_CAP (1024 * 1024)

/* Creates the agent and adopts containers that survived a restart. `env`
 * and `up` (agent/upstream.h) stay the caller's and must outlive the agent
 * and its containers' work in the thread pool. */
int agent_start(const struct agent_env *env, const struct agent_upstream *up, struct agent **out,
                struct serr *err);

/* Compares the tasks the store assigns to this node with local containers:
 * starts, stops and forgets. Called on every change of the store. */
void agent_sync(struct agent *a);

/* agent_sync, unless the upstream's sync_key is the one noted by the last
 * sync, at most AGENT_SYNC_MAX_MS ago: called after every applied entry,
 * most of which (a batch job's state, another node's tasks) change nothing
 * a sync reads. The agent's own events (a container's end, a bridge set
 * up) still sync at once (agent_kick). */
void agent_sync_if_changed(struct agent *a);

/* Stops every task container (swarm leave); `done` runs when all are gone,
 * or in bounded time whatever they do: what still runs 5 s past the longest
 * grace period is SIGKILLed, and 30 s later `done` runs anyway (the
 * containers that did not end are logged and left behind). */
void agent_stop_all(struct agent *a, void (*done)(void *arg), void *arg);

/* Removes the node's bridge, routes and NAT table (swarm leave, after
 * agent_stop_all). Blocks briefly. */
void agent_net_leave(struct agent *a);

/* Closes the agent's handles, leaving containers running (daemon restart).
 * `done` runs once everything is closed and `a` is freed. */
void agent_close(struct agent *a, void (*done)(void *arg), void *arg);

/* POST /v1/containers/run: `body` is the request JSON; answers through `r`
 * (201 {"id"} detached, or an NDJSON stream of output then {"exit":N}). */
void agent_run(struct agent *a, struct agent_reply *r, json_t *body);

/* GET /v1/containers: local (non-task) containers. */
json_t *agent_list_local(struct agent *a, bool with_tasks);

/* DELETE /v1/containers/{ref}: stops (force) and removes a local container;
 * answers through `r` (200 {}) once it is gone, or with why it cannot be. */
void agent_remove_local(struct agent *a, const char *ref, int force, struct agent_reply *r);
/* True when `ref` is a local container whose exit is fully cleaned up (what
 * prune removes; `rm` also takes one still being deleted, and waits). */
bool agent_local_done(struct agent *a, const char *ref);

/* POST /v1/containers/{ref}/stop (restart: .../restart): signals the
 * container (its stop signal, SIGKILL after timeout_s, -1: its grace
 * period) and answers through `r` (200 {}) once it ended; restart starts it
 * again then (201 {"id"} once it runs). A stopped container: answered at
 * once. */
void agent_ctr_stop(struct agent *a, const char *ref, int timeout_s, bool restart,
                    struct agent_reply *r);
/* POST /v1/containers/{ref}/kill: `signal` (a name as KILL, SIGUSR1, or a
 * number; NULL: KILL) to a running container. */
int agent_ctr_kill(struct agent *a, const char *ref, const char *signal, struct serr *err);
/* POST /v1/containers/{ref}/start: a stopped local container is created
 * again from the spec it was run with; answered 201 {"id"} once it runs
 * (200 {} when it runs already). */
void agent_ctr_start(struct agent *a, const char *ref, struct agent_reply *r);
/* GET /v1/containers/{ref}/json: the container's state and spec (new). */
json_t *agent_ctr_inspect(struct agent *a, const char *ref, struct serr *err);
/* GET /v1/containers/stats and /v1/containers/{ref}/stats: [{"id","name",
 * "state","cpu_ns","read_ns","mem_bytes","mem_limit","pids"}] of the
 * running containers (all: stopped ones too), or of `ref` (NULL: all).
 * mem_limit is the machine's memory when the container has no limit. New
 * array. */
json_t *agent_ctr_stats(struct agent *a, const char *ref, bool all, struct serr *err);

/* POST /v1/node/logs: the log lines of some of a service's tasks on this
 * node, body {"service", "tasks": [ids], "tail": N (-1 = all, per task),
 * "since": TS, "follow": bool}, as text lines "TS TASKID LINE". With follow,
 * an empty line ends the past lines, then new output of the service's
 * tasks here comes as it is written. */
void agent_node_logs(struct agent *a, struct agent_reply *r, json_t *body);

/* GET /v1/containers/{ref}/logs (`shoal logs CONTAINER`): the container's
 * log lines (each after its time with `timestamps`) since `since` ("" =
 * all; a log timestamp), the last `tail` (-1 = all); with `follow` and the
 * container not ended, then its output as it comes, until it ends. */
struct ctr_logs_opts {
    long tail;
    const char *since;
    bool follow, timestamps;
    bool run_only; /* a task's container is "No such container" too */
};
void agent_ctr_logs(struct agent *a, const char *ref, const struct ctr_logs_opts *o,
                    struct agent_reply *r);

/* POST /v1/containers/{ref}/attach (`shoal attach`): the running
 * container's output from now on as a `run -i/-t` stream's frames (its
 * session first, when it has one: input and resize go there), then its exit
 * code. 409 when it is not running. */
void agent_attach(struct agent *a, const char *ref, struct agent_reply *r);
/* The container `ref` runs on a terminal (`run -t`). */
bool agent_ctr_tty(struct agent *a, const char *ref);

/* `shoal exec`: runs body's {cmd: [...], env: ["K=V"], user, workdir, stdin
 * (base64)} in the running container `ref` (id, name or task id) and
 * streams frames on `r` (agent_exec.c: stdout, stderr, then the exit code). */
void agent_exec(struct agent *a, const char *ref, json_t *body, struct agent_reply *r);
/* GET /v1/exec/{id}/json (Docker's exec inspect): {"id", "running", "exit_code"
 * (null while it runs)} of a session of this node that runs or ended
 * lately (the last 32 kept), else NULL with a 404 in err. */
json_t *agent_exec_inspect(struct agent *a, const char *id, struct serr *err);
/* Input of an interactive exec session (the id of the answer's frame 4):
 * `data` goes to the command's stdin (or its terminal); `close` ends its
 * stdin once what came before is written (no effect with a terminal). */
int agent_exec_input(struct agent *a, const char *id, const char *data, size_t len, bool close,
                     struct serr *err);
/* The size of a session's terminal (the command gets SIGWINCH). */
int agent_exec_resize(struct agent *a, const char *id, int rows, int cols, struct serr *err);
/* A container of this node answers to `ref` (id, local name or task id). */
bool agent_has_container(struct agent *a, const char *ref);

/* The task containers running now: [{"id":TASK,"container","pid"}] (new). */
json_t *agent_running_tasks(struct agent *a);

/* For the layer GC (daemon/layers.h): adds the id of every container on the
 * agent's list to `users` and the diff_ids of its image's layers to `keep`
 * (both sets: JSON objects); host jobs, which have no image, are left out, so
 * that their leaving does not run the GC. */
void agent_layer_users(struct agent *a, json_t *users, json_t *keep);

#endif
