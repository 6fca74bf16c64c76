/* Agent internals shared by agent.c (container lifecycle), agent_spec.c
 * (container spec -> runtime spec) and agent_stream.c (run, logs,
 * followers). Everything here lives on the loop thread, except the fields a
 * uv_work_t callback touches while `working` is set (werr, pid, created). */
#ifndef SHOAL_AGENT_AGENT_INT_H
#define SHOAL_AGENT_AGENT_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "agent/agent.h"
#include "agent/upstream.h"
#include "base/err.h"

struct follower;
struct health;
struct volumes_sched;

enum ctr_phase { PH_CREATING, PH_RUNNING, PH_FINISHING, PH_DONE };

struct ctr {
    struct agent *a;
    /* the agent's: they outlive it, for thread-pool callbacks */
    const struct agent_env *env;
    const struct agent_upstream *up;
    struct ctr *next;
    char id[32];
    char *task_id;    /* NULL for local containers (`shoal run`) */
    char *service_id;
    char *name;
    char *image;
    json_t *rspec;    /* runtime spec, built before creation */
    json_t *restores; /* volumes to restore before creation, or NULL (agent_volumes.c);
                       * read by work_create in the thread pool */
    json_t *pending_container; /* task container spec kept while layers are fetched */
    struct agent_reply *rm_reply;    /* an `rm -f` waiting for this container to be gone */
    struct agent_reply *start_reply; /* a detached `run` waiting for this container to start */
    struct agent_reply *stop_reply;  /* a `stop` (or `restart`) waiting for it to end */
    bool restart_after_stop;         /* with stop_reply: a `restart`, started again once stopped */
    json_t *run_spec; /* a local container's spec, kept for `shoal start` (NULL for tasks) */
    json_t *healthcheck; /* the task's {cmd, interval_ms...} or NULL (kept in the record) */
    struct health *health; /* checks running (agent_health.c), or NULL */
    char **layers;    /* layer dirs, bottom first, NULL terminated */
    json_t *layer_ids; /* their diff_ids, kept from the layer GC (NULL when adopted) */
    char *error;      /* why it could not start */
    pid_t pid;
    /* A `run --rm` the CLI waits on: crun runs attached, the container's
     * parent until it ends (runtime_io.attached), and `runner` is crun, the
     * child waited for instead of the container (0: none, or reaped). */
    bool attached_runtime;
    pid_t runner;
    uint32_t addr;    /* bridged: the address of its eth0 (host order); 0: host network */
    char bridge[16];  /* bridged: the bridge of its network (set before creation) */
    long long start_time;
    int pidfd;
    int log_fd;
    int out_rfd;      /* read end of the output FIFO opened before the start, or -1 */
    size_t log_size;
    int exit_code;    /* -1 = unknown */
    int64_t created_at;
    int64_t started_at, finished_at; /* ms since the epoch; 0: not yet */
    int64_t grace_ms;
    /* mono_ms() of its last state report (0: none from this process, as
     * for an adopted container), and how many times a sync said one again
     * (report_again_if_lost) */
    int64_t reported_at;
    int reports_again;
    int stop_signal;  /* --stop-signal; 0: SIGTERM */
    json_t *dns;      /* --dns: nameservers of its resolv.conf, or NULL */
    enum ctr_phase phase;
    bool local, rm;
    bool created, exited, out_eof, stop_requested;
    /* A sync found its task ended in the store while it was being deleted:
     * the delete's end releases it without another sync (after_delete). */
    bool final_in_store;
    bool task_gone; /* a sync found its task gone from the store */
    bool host;        /* a host job: a process of the host (runtime_host.c) */
    /* A batch job's task (`job_id`): its `running` report is held back
     * (AGENT_JOB_RUNNING_HOLD_MS, on `timer`) while `running_held`, so a job
     * that ends first reports only its end (a sync does not say it again
     * meanwhile: report_again_if_lost). */
    bool job, running_held;
    bool unhealthy;   /* stopped because its health check failed: the task fails */
    bool working;     /* a uv_work_t is queued */
    bool released;    /* off the list; freed when handles and work are done */
    bool at_line_start;
    bool poll_open, out_open, timer_open;
    /* `shoal run -i/-t` (agent_stream.c): with a terminal `out` is its
     * master, which takes the input too; with -i alone `in` is the write
     * end of the container's stdin pipe. */
    char session[80]; /* the session's id, "" without -i/-t */
    bool tty, interactive, in_open;
    int rows, cols;   /* the terminal's first size (0: crun's default) */
    int in_wfd;       /* the stdin pipe's write end until `in` takes it, or -1 */
    uv_pipe_t in;
    /* `shoal run -p`: [{"published","target","protocol"}] DNATed to its
     * address on this node (agent_net.c), or NULL */
    json_t *ports;
    int closing;      /* handles whose close callback is pending */
    uv_poll_t exit_poll;
    uv_pipe_t out;
    /* a job's held `running` report, the grace period, then the wait for
     * output EOF */
    uv_timer_t timer;
    uv_work_t work;
    struct serr werr;
};

struct agent {
    const struct agent_env *env;     /* handed down (agent/upstream.h) */
    const struct agent_upstream *up;
    struct ctr *ctrs;
    struct follower *followers;
    struct run_waiting *runs_waiting; /* `shoal run`s waiting for the bridge (agent_stream.c) */
    struct exec_cmd *execs; /* interactive `shoal exec` sessions (agent_exec.c) */
    /* The exit codes of the last sessions that ended (exec's and run -i/-t's),
     * for agent_exec_inspect; oldest overwritten first. */
    struct ended_session {
        char id[80];
        int64_t exit_code;
    } ended[32];
    unsigned ended_next;
    struct agent_net *net; /* agent_net.c */
    uv_timer_t kick;
    uv_timer_t stop_all_timer;
    uv_signal_t sigchld; /* reaps orphans of containers (runtime_reap_orphans) */
    void (*stop_all_done)(void *arg);
    void *stop_all_arg;
    int64_t stop_all_kill_at;    /* mono_ms: SIGKILL what still runs (and reap) */
    int64_t stop_all_give_up_at; /* mono_ms: done without what still does not end */
    void (*close_done)(void *arg);
    void *close_arg;
    int closing_timers;
    bool closing;
    /* Ids of tasks gone from the store whose logs wait for their container to
     * leave the list (drop_deleted_logs); NULL: none yet. */
    json_t *logs_waiting;
    unsigned long long synced_key; /* up->sync_key at the last sync's start (0: none) */
    int64_t synced_at;             /* mono_ms of that sync */
    struct volumes_sched *volumes; /* scheduled backups (agent_volumes.c) */
    uv_timer_t volumes_timer;      /* every second: which volumes are due */
    /* Every container's output is read into this one buffer: the loop reads
     * one pipe at a time and out_read is done with it when it returns. */
    char out_buf[16384];
};

/* agent.c */
struct ctr *ctr_new(struct agent *a, const char *id);
struct ctr *ctr_find(struct agent *a, const char *ref);
/* A `run --rm` container that has exited is being removed: its client has
 * its exit, and, as after Docker's, it is no longer listed or found by the
 * users' verbs, and its name is free (the removal goes on in the thread pool). */
bool ctr_removing(const struct ctr *c);
/* ctr_find among the containers not being removed (the users' view). */
struct ctr *ctr_find_shown(struct agent *a, const char *ref);
int ctr_launch(struct ctr *c, json_t *container, struct serr *err);
void ctr_stop(struct ctr *c);
/* Created, running, and not seen to exit. */
bool ctr_running(const struct ctr *c);
/* A signal to the container's init, or to a host job's process group. */
void ctr_signal(struct ctr *c, int signo);
void ctr_release(struct ctr *c);
/* Frees (and empties) what one run made of the container's spec: rspec,
 * layers, layer_ids, dns, healthcheck, image, error; at its end, or before
 * `shoal start` runs it again. */
void ctr_free_run_state(struct ctr *c);
char *ctr_record_path(struct ctr *c, const char *suffix);
char *ctr_log_path(struct agent *a, const char *id, bool rotated);
/* Unlinks the task's log and its rotated one (either may be missing). */
void ctr_logs_remove(struct agent *a, const char *id);
/* Ends the container's stdin (-i): the pipe's write end closes once what
 * was written is flushed. */
void ctr_close_input(struct ctr *c);
/* Newly allocated "<state_dir>/<rel>" and "<run_dir>/<rel>". */
char *agent_state_path(const struct agent_env *env, const char *rel);
char *agent_run_path(const struct agent_env *env, const char *rel);
long long proc_start_time(pid_t pid);
void agent_kick(struct agent *a);
bool agent_has_tasks(struct agent *a);
void report_lost(struct agent *a, const char *task_id);

/* agent_net.c: the node's bridges, routes, NAT and mesh; task addresses */
struct agent_net *agent_net_new(struct agent *a);
void agent_net_close(struct agent_net *n);
void agent_net_sync(struct agent *a);
/* True when the network's bridge is up on this node. */
bool agent_net_ready(struct agent *a, const char *network);
/* Why the last set-up failed, or NULL. */
const char *agent_net_error(struct agent *a);
/* A free address of the node's /24 of `network` and its bridge (16 bytes). */
int agent_net_attach(struct agent *a, const char *network, char *bridge, uint32_t *addr,
                     struct serr *err);
/* The mesh the kernel has now (borrowed; NULL before the first set-up). */
json_t *agent_net_mesh(struct agent *a);

/* agent_health.c: health checks (Docker's HEALTHCHECK CMD-SHELL semantics).
 * A task container whose spec has a healthcheck runs `/bin/sh -c CMD` inside
 * itself every interval (crun exec, started in the thread pool, waited for on
 * the loop through a pidfd, killed past the timeout) and reports the task's
 * `health` on every change: starting, healthy, unhealthy. */
enum health_status { HEALTH_STARTING, HEALTH_HEALTHY, HEALTH_UNHEALTHY };

struct health_state {
    enum health_status status;
    int failures; /* consecutive failures that counted */
};

/* One probe's result into `s` (pure): a success makes it healthy; a failure
 * while still starting inside the start period does not count; `retries`
 * consecutive counted failures make it unhealthy. True when the status
 * changed. */
bool health_apply(struct health_state *s, bool ok, bool in_start_period, int retries);
const char *health_status_name(enum health_status status);

/* Starts checking c (a running task container with c->healthcheck), from
 * `starting`; the first probe runs one interval later. When the container
 * turns unhealthy, c->unhealthy is set and the container is stopped.
 * `adopted`: c ran before this daemon started; its task keeps the health the
 * cluster knows (no `starting` is reported, which would take it out of the
 * mesh), the first probe runs at once and the start period counts from the
 * container's creation. */
void health_start(struct ctr *c, bool adopted);
/* Stops checking c (stop, exit, release). A probe in flight is killed; its
 * state is freed on its own once the probe is reaped. Idempotent. */
void health_stop(struct ctr *c);

/* agent_volumes.c: a volume mount's data dir "<state>/volumes/NAME/_data"
 * (new string, NULL with err). Made empty, unless this node lacks it and
 * the backup dir has backups of NAME: then the newest is queued in
 * c->restores, which ctr_volume_restore (thread pool, before the container
 * is created) restores; ctr_volume_restoring says so for the task's message
 * (new string, NULL when nothing is to be restored). */
char *ctr_volume_prepare(struct ctr *c, const char *name, struct serr *err);
char *ctr_volume_restoring(struct ctr *c);
int ctr_volume_restore(struct ctr *c, struct serr *err);
/* The backup schedule: every second, each volume a running task of this
 * node mounts whose policy (backup dir's policy.json) has an interval is
 * backed up once that long passed since its newest backup. stop drops the
 * agent's share of the state (jobs in flight keep theirs); the caller closes
 * volumes_timer. */
void agent_volumes_start(struct agent *a);
void agent_volumes_stop(struct agent *a);

#define TERM_MAX_SIZE 10000

/* agent_exec.c: the framed streams of exec and `run -i/-t` */
/* A frame as Docker's: the stream (1 stdout, 2 stderr, 3 the exit code as
 * decimal text, 4 the session's id), three zero bytes, the payload's length
 * big-endian, then the payload. */
void agent_write_frame(struct agent_reply *out, int stream, const char *data, size_t len);
/* A new session id (out: 80 bytes) that names this node for the managers,
 * who send the session's input there. */
void agent_session_id(struct agent *a, char *out, size_t size);
/* Writes a copy of data to `to` (NULL: nowhere to write); -1 when `to`
 * takes no input (NULL or closing) and len > 0. */
int agent_write_input(uv_stream_t *to, const char *data, size_t len);

/* agent_spec.c: fills c->rspec and c->layers from a task's container spec */
int ctr_prepare_spec(struct ctr *c, json_t *container, struct serr *err);

/* agent_stream.c */
/* Log timestamps: "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (UTC, fixed width, so they
 * sort as text). `out` has room for LOG_TS_LEN + 1 bytes. */
#define LOG_TS_LEN 30
void log_timestamp(char *out);
void followers_output(struct agent *a, struct ctr *c, const char *data, size_t len);
void followers_exit(struct agent *a, struct ctr *c);
/* agent_exec.c: session `id` ended with `exit_code` (kept for inspect). */
void session_ended(struct agent *a, const char *id, int64_t exit_code);
/* The container of a `run -i/-t` session runs: its followers get the
 * session's id (frame 4), input is taken from then on. */
void followers_started(struct agent *a, struct ctr *c);
/* Input and resize of a `run -i/-t` session (as agent_exec_input and
 * agent_exec_resize, which ask here for ids that are not exec sessions). */
int run_session_input(struct agent *a, const char *id, const char *data, size_t len, bool close,
                      struct serr *err);
int run_session_resize(struct agent *a, const char *id, int rows, int cols, struct serr *err);
void followers_detach_ctr(struct agent *a, struct ctr *c);
void followers_close_all(struct agent *a);
/* Answers the `shoal run`s still waiting for the node's bridge: the daemon stops. */
void runs_waiting_close_all(struct agent *a);
void ctr_answer_remover(struct ctr *c);
void ctr_answer_starter(struct ctr *c);
/* A reply kept for later in *slot (rm_reply, start_reply, stop_reply of a
 * container): its `gone` (the client left) empties the slot; reply_take
 * takes it out again to answer it (NULL when the slot is empty). */
void reply_wait(struct agent_reply **slot, struct agent_reply *r);
struct agent_reply *reply_take(struct agent_reply **slot);
/* Another live container of this node publishing `port`, or NULL. */
struct ctr *ctr_port_taken(struct agent *a, json_t *port);

/* agent_ctl.c: stop, kill, start, restart, inspect and stats of containers */
/* c ended (PH_DONE, or released): answers a waiting `stop`, or starts it
 * again for a `restart`. */
void ctr_answer_stopper(struct ctr *c);
/* The container `ref` names (an id or a unique prefix of it, a run name, a
 * task id, or a task container's NAME.SLOT.TASKID), else NULL with a 404 in
 * err (a 400 when several ids start with ref). */
struct ctr *ctr_find_or_fail(struct agent *a, const char *ref, struct serr *err);
/* The same, without an error: NULL when none or several match. */
struct ctr *ctr_lookup(struct agent *a, const char *ref);

/* agent_secrets.c: the task's secrets and configs on a tmpfs of their own,
 * bind mounts added to `mounts` (the runtime spec's); cleanup unmounts and
 * removes it (nothing there: no-op). */
int ctr_secret_mounts(struct ctr *c, json_t *container, json_t *mounts, struct serr *err);
void ctr_secret_cleanup(const struct agent_env *env, const char *ctr_id);

#endif
