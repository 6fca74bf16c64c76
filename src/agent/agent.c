#include "agent/agent.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/image.h"
#include "agent/net.h"
#include "agent/runtime.h"
#include "base/json_get.h"
#include "base/log.h"
#include "base/util.h"
#include "model/task.h"

static void ctr_maybe_free(struct ctr *c);
static void ctr_maybe_finish(struct ctr *c);

/* ---- paths and records ---- */

char *agent_state_path(const struct agent_env *env, const char *rel)
{
    return xasprintf("%s/%s", env->state_dir, rel);
}

char *agent_run_path(const struct agent_env *env, const char *rel)
{
    return xasprintf("%s/%s", env->run_dir, rel);
}

char *ctr_record_path(struct ctr *c, const char *suffix)
{
    return xasprintf("%s/agent/%s.%s", c->env->state_dir, c->id, suffix);
}

char *ctr_log_path(struct agent *a, const char *id, bool rotated)
{
    return xasprintf("%s/logs/%s.log%s", a->env->run_dir, id, rotated ? ".1" : "");
}

void ctr_logs_remove(struct agent *a, const char *id)
{
    char *log = ctr_log_path(a, id, false);
    char *old = ctr_log_path(a, id, true);
    unlink(log);
    unlink(old);
    free(log);
    free(old);
}

/* The task's address as text, or NULL on the host network. */
static const char *addr_text(struct ctr *c, char *buf)
{
    if (c->addr == 0)
        return NULL;
    net_format_ip(c->addr, buf);
    return buf;
}

static void record_write(struct ctr *c)
{
    char addr[16];
    json_t *rec = json_pack("{s:s, s:s?, s:s?, s:s, s:s, s:i, s:I, s:b, s:b, s:I, s:I}", "id",
                            c->id, "task_id", c->task_id, "service_id", c->service_id, "name",
                            c->name, "image", c->image, "pid", (int)c->pid, "start_time",
                            (json_int_t)c->start_time, "local", c->local, "rm", c->rm,
                            "created_at", (json_int_t)c->created_at, "grace_ms",
                            (json_int_t)c->grace_ms);
    if (addr_text(c, addr))
        json_object_set_new(rec, "addr", json_string(addr));
    if (c->healthcheck)
        json_object_set(rec, "healthcheck", c->healthcheck); /* checks resume after a restart */
    if (c->stop_signal > 0)
        json_object_set_new(rec, "stop_signal", json_integer(c->stop_signal));
    if (c->host)
        json_object_set_new(rec, "host", json_true());
    if (c->run_spec) /* `shoal start` after a daemon restart */
        json_object_set(rec, "run_spec", c->run_spec);
    if (json_object_get(c->rspec, "nodefile")) /* a host job's, removed at its end */
        json_object_set(rec, "nodefile", json_object_get(c->rspec, "nodefile"));
    if (json_object_get(c->rspec, "mounts")) /* backups resume (agent_volumes.c) */
        json_object_set(rec, "mounts", json_object_get(c->rspec, "mounts"));
    char *text = json_dumps(rec, JSON_COMPACT);
    char *path = ctr_record_path(c, "json");
    struct serr err;
    if (write_file_atomic(path, text, strlen(text), false, &err) < 0)
        log_warn("container %s: %s", c->id, err.msg);
    free(path);
    free(text);
    json_decref(rec);
}

/* Start time of a process in clock ticks since boot (field 22 of
 * /proc/PID/stat), to tell a surviving container from a reused PID. */
long long proc_start_time(pid_t pid)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_file(path, &text, NULL, NULL) < 0)
        return -1;
    char *p = strrchr(text, ')');
    long long start = -1;
    for (int field = 2; p && *p; p++) {
        if (*p != ' ')
            continue;
        field++;
        if (field == 22) {
            start = strtoll(p + 1, NULL, 10);
            break;
        }
    }
    free(text);
    return start;
}

/* ---- container objects ---- */

struct ctr *ctr_new(struct agent *a, const char *id)
{
    struct ctr *c = xcalloc(1, sizeof(*c));
    c->a = a;
    c->env = a->env;
    c->up = a->up;
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->pidfd = -1;
    c->log_fd = -1;
    c->out_rfd = -1;
    c->in_wfd = -1;
    c->exit_code = -1;
    c->at_line_start = true;
    c->grace_ms = 10000;
    c->created_at = now_ms();
    uv_timer_init(a->env->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    c->next = a->ctrs;
    a->ctrs = c;
    return c;
}

bool ctr_removing(const struct ctr *c)
{
    return c->local && c->rm && (c->phase == PH_FINISHING || c->phase == PH_DONE);
}

/* ref is c's id, its task id, or its name as a `run` container. */
static bool ctr_named(const struct ctr *c, const char *ref)
{
    return strcmp(c->id, ref) == 0 || (c->task_id && strcmp(c->task_id, ref) == 0) ||
           (c->local && c->name && strcmp(c->name, ref) == 0);
}

struct ctr *ctr_find_shown(struct agent *a, const char *ref)
{
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if (!ctr_removing(c) && ctr_named(c, ref))
            return c;
    return NULL;
}

struct ctr *ctr_find(struct agent *a, const char *ref)
{
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if (ctr_named(c, ref))
            return c;
    return NULL;
}

static void ctr_unlink(struct ctr *c)
{
    for (struct ctr **pp = &c->a->ctrs; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

static void handle_closed(uv_handle_t *h)
{
    struct ctr *c = h->data;
    c->closing--;
    ctr_maybe_free(c);
}

static void close_handle(struct ctr *c, uv_handle_t *h, bool *open)
{
    if (!*open)
        return;
    *open = false;
    c->closing++;
    uv_close(h, handle_closed);
}

static void ctr_close_handles(struct ctr *c)
{
    close_handle(c, (uv_handle_t *)&c->exit_poll, &c->poll_open);
    close_handle(c, (uv_handle_t *)&c->out, &c->out_open);
    close_handle(c, (uv_handle_t *)&c->in, &c->in_open);
    close_handle(c, (uv_handle_t *)&c->timer, &c->timer_open);
    if (c->pidfd >= 0) {
        close(c->pidfd);
        c->pidfd = -1;
    }
    if (c->log_fd >= 0) {
        close(c->log_fd);
        c->log_fd = -1;
    }
}

void ctr_free_run_state(struct ctr *c)
{
    json_decref(c->rspec);
    json_decref(c->layer_ids);
    json_decref(c->dns);
    json_decref(c->healthcheck);
    c->rspec = c->layer_ids = c->dns = c->healthcheck = NULL;
    for (int i = 0; c->layers && c->layers[i]; i++)
        free(c->layers[i]);
    free(c->layers);
    c->layers = NULL;
    free(c->image);
    free(c->error);
    c->image = c->error = NULL;
}

/* Frees a container once it is released (off the list) and its handles closed. */
static void ctr_maybe_free(struct ctr *c)
{
    if (!c->released || c->closing > 0 || c->working)
        return;
    if (c->in_wfd >= 0)
        close(c->in_wfd);
    ctr_free_run_state(c);
    json_decref(c->run_spec);
    json_decref(c->ports);
    json_decref(c->restores);
    json_decref(c->pending_container);
    free(c->task_id);
    free(c->service_id);
    free(c->name);
    free(c);
}

void ctr_release(struct ctr *c)
{
    if (c->released)
        return;
    ctr_unlink(c);
    c->released = true;
    health_stop(c);
    ctr_answer_remover(c);
    ctr_answer_starter(c);
    c->restart_after_stop = false;
    ctr_answer_stopper(c);
    followers_detach_ctr(c->a, c);
    ctr_close_handles(c);
    ctr_maybe_free(c);
}

/* ---- reporting ---- */

static void report(struct ctr *c, json_t *fields)
{
    if (c->task_id == NULL) {
        json_decref(fields);
        return;
    }
    json_object_set_new(fields, "state_at", json_integer(now_ms()));
    c->reported_at = mono_ms();
    c->up->report_task(c->up->data, c->task_id, fields);
}

/* A batch job's `running` report waits this long after its start: a job
 * that ends within it reports only its end, which carries its `started_at`
 * (per short job one Raft entry fewer, and the agent sync and orchestrator
 * pass after it: issue 14). Services report at once: updates and health
 * checks wait on it. */
#define AGENT_JOB_RUNNING_HOLD_MS 100

/* The `running` report, with the start time the task keeps (the report's
 * own `state_at` is when it was sent, later for a held one). */
static void report_running(struct ctr *c)
{
    char addr[16];
    c->running_held = false;
    report(c, json_pack("{s:s, s:s, s:i, s:s?, s:I}", "state", "running", "message", "started",
                        "pid", (int)c->pid, "addr", addr_text(c, addr), "started_at",
                        (json_int_t)c->started_at));
}

static void running_hold_expired(uv_timer_t *t)
{
    report_running(t->data);
}

/* Reports a started container running: a batch job's at the end of the
 * hold, unless its end comes first (ctr_maybe_finish) or a stop (ctr_stop,
 * whose grace period takes the timer). */
static void report_started(struct ctr *c)
{
    if (!c->job) {
        report_running(c);
        return;
    }
    int hold = c->env->job_running_hold_ms > 0 ? c->env->job_running_hold_ms
                                                : AGENT_JOB_RUNNING_HOLD_MS;
    c->running_held = true;
    uv_timer_start(&c->timer, running_hold_expired, (uint64_t)hold, 0);
}

/* The end's report, with the start time when the `running` report was still
 * held (a job that ended within the hold). Not for an adopted container
 * that ended while the daemon was stopped: its start is not recorded, and
 * the store may have the exact one from its `running` report. */
static json_t *end_report(struct ctr *c, json_t *fields)
{
    if (c->running_held && c->started_at > 0)
        json_object_set_new(fields, "started_at", json_integer(c->started_at));
    c->running_held = false;
    return fields;
}

/* ---- output ---- */

static void log_rotate_if_needed(struct ctr *c)
{
    if (c->log_size < LOG_CAP)
        return;
    char *path = ctr_log_path(c->a, c->id, false);
    char *old = ctr_log_path(c->a, c->id, true);
    rename(path, old);
    close(c->log_fd);
    c->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    c->log_size = 0;
    free(path);
    free(old);
}

/* The log file, opened (made if need be) at the container's first output:
 * a task that writes nothing, as most replicas of a service, makes no file
 * (its logs read as empty). */
static int log_open(struct ctr *c)
{
    char *log = ctr_log_path(c->a, c->id, false);
    c->log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    struct stat st;
    if (c->log_fd >= 0 && fstat(c->log_fd, &st) == 0)
        c->log_size = (size_t)st.st_size;
    free(log);
    return c->log_fd;
}

/* Every line in the file starts with the time its first bytes came
 * (LOG_TS_LEN characters and a space), so that logs of tasks on several
 * nodes can be merged by time. */
static void log_append(struct ctr *c, const char *data, size_t len)
{
    if (c->log_fd < 0 && log_open(c) < 0)
        return;
    char ts[LOG_TS_LEN + 2];
    log_timestamp(ts);
    ts[LOG_TS_LEN] = ' ';
    char *out = NULL;
    size_t out_len = 0, out_cap = 0;
    bool line_start = c->at_line_start;
    for (size_t i = 0; i < len;) {
        if (line_start)
            buf_append(&out, &out_len, &out_cap, ts, LOG_TS_LEN + 1);
        const char *nl = memchr(data + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (data + i)) + 1 : len - i;
        buf_append(&out, &out_len, &out_cap, data + i, n);
        line_start = nl != NULL;
        i += n;
    }
    ssize_t w = write(c->log_fd, out, out_len);
    free(out);
    if (w > 0)
        c->log_size += (size_t)w;
    log_rotate_if_needed(c);
}

static void out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ctr *c = h->data;
    buf->base = c->a->out_buf;
    buf->len = sizeof(c->a->out_buf);
}

static void out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct ctr *c = s->data;
    if (n > 0) {
        log_append(c, buf->base, (size_t)n);
        followers_output(c->a, c, buf->base, (size_t)n);
        return;
    }
    if (n == 0)
        return;
    /* EOF or error: every writer closed the FIFO, the container is gone */
    uv_read_stop(s);
    close_handle(c, (uv_handle_t *)&c->out, &c->out_open);
    c->out_eof = true;
    ctr_maybe_finish(c);
}

static int open_output(struct ctr *c, struct serr *err)
{
    char *fifo = ctr_record_path(c, "fifo");
    int fd = c->out_rfd >= 0 ? c->out_rfd : open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    c->out_rfd = -1;
    free(fifo);
    if (fd < 0)
        return serr_errno(err, "open output of %s", c->id);
    uv_pipe_init(c->env->loop, &c->out, 0);
    c->out.data = c;
    c->out_open = true;
    if (uv_pipe_open(&c->out, fd) != 0) {
        close(fd);
        return serr_set(err, SERR_INTERNAL, "uv_pipe_open failed");
    }
    uv_read_start((uv_stream_t *)&c->out, out_alloc, out_read);
    return 0;
}

void ctr_close_input(struct ctr *c)
{
    close_handle(c, (uv_handle_t *)&c->in, &c->in_open);
}

/* -i without -t: the write end of the stdin pipe made by work_create. */
static void open_input(struct ctr *c)
{
    int fd = c->in_wfd;
    c->in_wfd = -1;
    if (fd < 0)
        return;
    uv_pipe_init(c->env->loop, &c->in, 0);
    c->in.data = c;
    c->in_open = true;
    if (uv_pipe_open(&c->in, fd) != 0) {
        close(fd);
        ctr_close_input(c);
    }
}

/* ---- exit ---- */

static void eof_timeout(uv_timer_t *t)
{
    struct ctr *c = t->data;
    /* The container exited but something still holds its output open: stop
     * waiting for EOF. */
    if (!c->out_eof) {
        c->out_eof = true;
        close_handle(c, (uv_handle_t *)&c->out, &c->out_open);
        ctr_maybe_finish(c);
    }
}

static void on_exit_poll(uv_poll_t *p, int status, int events)
{
    struct ctr *c = p->data;
    int wstatus = 0;
    pid_t child = c->runner ? c->runner : c->pid; /* crun's status is the container's */
    pid_t r = waitpid(child, &wstatus, WNOHANG);
    if (r == 0)
        return; /* spurious wake-up */
    c->runner = 0;
    if (r == child)
        c->exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    else
        c->exit_code = -1; /* not our child (adopted after a restart): code unknown */
    c->exited = true;
    c->finished_at = now_ms();
    health_stop(c);
    close_handle(c, (uv_handle_t *)&c->exit_poll, &c->poll_open);
    uv_timer_stop(&c->timer);
    if (!c->out_eof)
        uv_timer_start(&c->timer, eof_timeout, 1000, 0);
    ctr_maybe_finish(c);
}

static int watch_exit(struct ctr *c, struct serr *err)
{
    pid_t child = c->runner ? c->runner : c->pid;
    c->pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    if (c->pidfd < 0)
        return serr_errno(err, "pidfd_open %d", (int)child);
    uv_poll_init(c->env->loop, &c->exit_poll, c->pidfd);
    c->exit_poll.data = c;
    c->poll_open = true;
    uv_poll_start(&c->exit_poll, UV_READABLE, on_exit_poll);
    return 0;
}

static json_t *final_state(struct ctr *c)
{
    if (c->error)
        return json_pack("{s:s, s:s, s:s}", "state", "rejected", "error", c->error, "message",
                         "rejected");
    if (c->unhealthy) /* stopped by the agent: whatever its exit code, the task failed */
        return json_pack("{s:s, s:s, s:s, s:i}", "state", "failed", "error",
                         "task: container unhealthy", "message", "failed", "exit_code",
                         c->exit_code);
    if (c->stop_requested)
        return json_pack("{s:s, s:s, s:i}", "state", "shutdown", "message", "shutdown",
                         "exit_code", c->exit_code);
    if (c->exit_code == 0)
        return json_pack("{s:s, s:s, s:i}", "state", "complete", "message", "finished",
                         "exit_code", 0);
    char msg[128];
    if (c->exit_code < 0)
        snprintf(msg, sizeof(msg), "task: exited while the daemon was stopped (exit code unknown)");
    else
        snprintf(msg, sizeof(msg), "task: non-zero exit (%d)", c->exit_code);
    return json_pack("{s:s, s:s, s:s, s:i}", "state", "failed", "error", msg, "message", "failed",
                     "exit_code", c->exit_code);
}

/* <state>/agent/<id>.netns exists while the task's network namespace may. */
static int netns_mark(struct ctr *c, bool present)
{
    char *path = ctr_record_path(c, "netns");
    int rc = 0;
    if (present && write_file_atomic(path, "", 0, false, &c->werr) < 0)
        rc = -1;
    if (!present)
        unlink(path);
    free(path);
    return rc;
}

/* --dns: the given nameservers, in order (as Docker: they replace the
 * others, so service names are not resolved). */
static char *dns_resolv_text(json_t *dns)
{
    char *text = xstrdup("");
    size_t i;
    json_t *a;
    json_array_foreach(dns, i, a)
    {
        char *more = xasprintf("%snameserver %s\n", text, json_string_value(a));
        free(text);
        text = more;
    }
    return text;
}

/* The container's /etc/resolv.conf: the DNS server of the node, on its
 * bridge's .1 (agent_dns.c); it forwards other names to the host's. */
static int write_resolv_conf(struct ctr *c)
{
    char gw[16];
    net_format_ip((c->addr & 0xffffff00u) + 1, gw);
    char *text = c->dns ? dns_resolv_text(c->dns)
                        : xasprintf("nameserver %s\noptions ndots:0\n", gw);
    char *path = ctr_record_path(c, "resolv");
    int rc = write_file_atomic(path, text, strlen(text), false, &c->werr);
    free(path);
    free(text);
    return rc;
}

bool ctr_running(const struct ctr *c)
{
    return c->phase == PH_RUNNING && c->created && !c->exited;
}

void ctr_signal(struct ctr *c, int signo)
{
    kill(c->host ? -c->pid : c->pid, signo);
}

/* The runtime's container, or what is left of a host job, deleted. */
static int ctr_runtime_delete(struct ctr *c, struct serr *err)
{
    return c->host ? runtime_host_delete(c->env->rt, c->id, err)
                   : runtime_delete(c->env->rt, c->id, err);
}

/* What a container may have beside its runtime's state: its network
 * namespace and veth, its secrets' mount, its resolv.conf. */
static void delete_container_extras(struct ctr *c)
{
    net_task_delete(c->id); /* after the container: nothing holds the namespace now */
    ctr_secret_cleanup(c->env, c->id);
    netns_mark(c, false);
    char *resolv = ctr_record_path(c, "resolv");
    unlink(resolv);
    free(resolv);
}

static void work_delete(uv_work_t *w)
{
    struct ctr *c = w->data;
    struct serr err;
    if (ctr_runtime_delete(c, &err) < 0)
        log_warn("delete container %s: %s", c->id, err.msg);
    const char *nodefile = jstr(c->rspec, "nodefile");
    if (c->host && nodefile)
        unlink(nodefile);
    net_pool_release_spent(); /* the pool's hold on the namespaces tasks took */
    if (!c->host)             /* a host job has no network, secrets nor resolv.conf */
        delete_container_extras(c);
    net_pool_fill(); /* for the next start, off its path */
    char *rec = ctr_record_path(c, "json");
    char *fifo = ctr_record_path(c, "fifo");
    unlink(rec);
    unlink(fifo);
    free(rec);
    free(fifo);
}

/* A task's container deleted: released now when a sync already found its
 * final report in the store (what the next sync would do), else left to
 * the sync after that report's entry. A full sync here, after every task's
 * end, was one more read of the node's tasks per batch job (issue 14). The
 * kick stays when a sync has more to do than the release: the task gone
 * from the store, logs waiting for containers to leave, the agent leaving. */
static void after_task_delete(struct ctr *c)
{
    struct agent *a = c->a;
    bool more = c->task_gone || json_array_size(a->logs_waiting) > 0 || a->stop_all_done != NULL;
    ctr_answer_stopper(c);
    if (more)
        agent_kick(a);
    else if (c->final_in_store)
        ctr_release(c);
}

static void after_delete(uv_work_t *w, int status)
{
    struct ctr *c = w->data;
    c->working = false;
    c->phase = PH_DONE;
    if (c->ports)
        agent_kick(c->a); /* its published ports go */
    if (c->released) {
        ctr_maybe_free(c);
        return;
    }
    if (c->local && c->rm) {
        ctr_logs_remove(c->a, c->id);
        ctr_release(c);
        return;
    }
    if (c->task_id) {
        after_task_delete(c);
        return;
    }
    ctr_answer_stopper(c);
}

/* Once the process is gone and its output drained: report, then delete the
 * container in the thread pool. */
static void ctr_maybe_finish(struct ctr *c)
{
    if (c->phase != PH_RUNNING || !c->exited || !c->out_eof)
        return;
    c->phase = PH_FINISHING;
    uv_timer_stop(&c->timer);
    report(c, end_report(c, final_state(c)));
    ctr_close_input(c);
    followers_exit(c->a, c); /* a `run --rm` one is hidden from now on (ctr_removing) */
    c->working = true;
    c->work.data = c;
    uv_queue_work(c->env->loop, &c->work, work_delete, after_delete);
}

/* ---- stop ---- */

static void grace_expired(uv_timer_t *t)
{
    struct ctr *c = t->data;
    if (!c->exited && c->pid > 0)
        ctr_signal(c, SIGKILL);
}

void ctr_stop(struct ctr *c)
{
    health_stop(c);
    if (c->stop_requested && c->phase != PH_RUNNING)
        return;
    bool first = !c->stop_requested;
    c->stop_requested = true;
    if (c->phase != PH_RUNNING || c->exited || !first)
        return; /* a container still being created is stopped when it is up */
    if (c->running_held) /* the grace period takes the timer: Running shows now */
        report_running(c);
    ctr_signal(c, c->stop_signal > 0 ? c->stop_signal : SIGTERM);
    uv_timer_start(&c->timer, grace_expired, (uint64_t)c->grace_ms, 0);
}

/* ---- create ---- */

/* -i without -t: the container's stdin is a pipe; *rfd its read end for
 * crun, the write end kept in c->in_wfd. */
static int stdin_pipe(struct ctr *c, int *rfd)
{
    int fds[2];
    if (!c->interactive || c->tty)
        return 0;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return serr_errno(&c->werr, "pipe");
    *rfd = fds[0];
    c->in_wfd = fds[1];
    return 0;
}

/* The container's output fifo, made anew: `*fd` the end the container
 * writes, c->out_rfd the daemon's reader. */
static int fifo_open(struct ctr *c, const char *fifo, int *fd)
{
    if (mkfifo(fifo, 0600) < 0)
        return serr_errno(&c->werr, "mkfifo %s", fifo);
    /* O_RDWR: the container holds a reader too, so its writes never fail with
     * EPIPE while the daemon is away (the pipe buffer fills instead). */
    *fd = open(fifo, O_RDWR | O_CLOEXEC);
    if (*fd < 0)
        return serr_errno(&c->werr, "open %s", fifo);
    /* Our reader, open before the start: a container that exits before
     * after_create runs must not take its buffered output away with it. */
    c->out_rfd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    return 0;
}

/* The task's network namespace and resolv.conf. crun joins the namespace:
 * it must exist before `crun create`. The marker lets a daemon killed
 * before the record exists find it again. */
static int network_prepare(struct ctr *c)
{
    if (c->addr != 0 && (netns_mark(c, true) < 0 || write_resolv_conf(c) < 0 ||
                         net_task_create(c->id, c->bridge, c->addr, &c->werr) < 0))
        return -1;
    if (c->addr == 0 && c->dns && write_resolv_conf(c) < 0) /* --dns on the host network */
        return -1;
    return 0;
}

/* A host job: its process started by the daemon itself, output to `fd`. */
static void host_start(struct ctr *c, int fd)
{
    c->created = runtime_host_start(c->env->rt, c->id, c->rspec, fd, &c->pid, &c->werr) == 0;
    if (c->created)
        c->start_time = proc_start_time(c->pid);
}

/* The container run by the OCI runtime, output to `fd` (or to its terminal
 * with -t), its stdin a pipe with -i alone. */
static void container_start(struct ctr *c, int fd)
{
    int in_rfd = -1;
    if (stdin_pipe(c, &in_rfd) < 0)
        return;
    if (c->tty)
        json_object_set_new(c->rspec, "tty", json_true());
    struct runtime_io io = {.in_fd = in_rfd, .out_fd = fd, .rows = c->rows, .cols = c->cols,
                            .attached = c->attached_runtime};
    int rc = runtime_run_io(c->env->rt, c->id, c->rspec, (const char *const *)c->layers, &io,
                            &c->pid, &c->werr);
    if (in_rfd >= 0)
        close(in_rfd);
    if (rc < 0) {
        c->pid = 0;
        return;
    }
    c->runner = io.runner;
    if (io.term_fd >= 0) { /* the terminal is its output from now on */
        close(c->out_rfd);
        c->out_rfd = io.term_fd;
    }
    c->start_time = proc_start_time(c->pid);
    c->created = true;
}

/* Takes back what a create that failed made: stdin pipe, reader, fifo,
 * network namespace. */
static void create_undo(struct ctr *c, const char *fifo)
{
    if (c->in_wfd >= 0) {
        close(c->in_wfd);
        c->in_wfd = -1;
    }
    if (c->out_rfd >= 0) {
        close(c->out_rfd);
        c->out_rfd = -1;
    }
    unlink(fifo);
    if (c->addr != 0) {
        net_task_delete(c->id);
        netns_mark(c, false);
    }
}

static void work_create(uv_work_t *w)
{
    struct ctr *c = w->data;
    char *fifo = ctr_record_path(c, "fifo");
    unlink(fifo);
    int fd = -1;
    if (ctr_volume_restore(c, &c->werr) == 0 && fifo_open(c, fifo, &fd) == 0 &&
        network_prepare(c) == 0) {
        if (c->host)
            host_start(c, fd);
        else
            container_start(c, fd);
    }
    if (fd >= 0)
        close(fd);
    if (c->created) /* here, not on the loop: a new file is costly on some disks */
        record_write(c);
    else
        create_undo(c, fifo);
    free(fifo);
}

static void ctr_fail_to_start(struct ctr *c, const char *msg)
{
    c->error = xstrdup(msg);
    ctr_answer_starter(c);
    c->exited = c->out_eof = true;
    c->phase = PH_RUNNING; /* so that finish runs the usual path */
    ctr_maybe_finish(c);
}

static void after_create(uv_work_t *w, int status)
{
    struct ctr *c = w->data;
    c->working = false;
    if (c->released) {
        if (c->out_rfd >= 0) {
            close(c->out_rfd);
            c->out_rfd = -1;
        }
        if (c->created) {
            ctr_signal(c, SIGKILL);
            while (c->runner && waitpid(c->runner, NULL, 0) < 0 && errno == EINTR)
                ;
            struct serr ignored;
            ctr_runtime_delete(c, &ignored);
            net_task_delete(c->id);
            char *rec = ctr_record_path(c, "json");
            unlink(rec);
            free(rec);
        }
        ctr_maybe_free(c);
        return;
    }
    if (!c->created) {
        log_info("container %s (%s) did not start: %s", c->id, c->name, c->werr.msg);
        ctr_fail_to_start(c, c->werr.msg);
        return;
    }
    struct serr err;
    if (open_output(c, &err) < 0 || watch_exit(c, &err) < 0) {
        log_error("container %s: %s", c->id, err.msg);
        ctr_signal(c, SIGKILL);
    }
    open_input(c);
    c->started_at = now_ms();
    c->phase = PH_RUNNING;
    ctr_answer_starter(c);
    followers_started(c->a, c);
    report_started(c);
    if (!c->stop_requested)
        health_start(c, false);
    if (c->stop_requested) {
        c->stop_requested = false;
        ctr_stop(c);
    }
}

int ctr_launch(struct ctr *c, json_t *container, struct serr *err)
{
    c->grace_ms = json_integer_value(json_object_get(container, "stop_grace_period_ms"));
    if (json_object_get(container, "stop_grace_period_ms") == NULL)
        c->grace_ms = 10000;
    c->image = xstrdup(jstr_or(container, "image", ""));
    json_t *hc = json_object_get(container, "healthcheck");
    c->healthcheck = json_is_object(hc) ? json_incref(hc) : NULL;
    json_decref(c->restores); /* a relaunch decides again */
    c->restores = NULL;
    if (ctr_prepare_spec(c, container, err) < 0)
        return -1;
    char *restoring = ctr_volume_restoring(c);
    if (restoring)
        report(c, json_pack("{s:s, s:s}", "state", "restoring", "message", restoring));
    free(restoring);
    c->phase = PH_CREATING;
    c->working = true;
    c->work.data = c;
    uv_queue_work(c->env->loop, &c->work, work_create, after_create);
    return 0;
}

static void launch_or_fail(struct ctr *c, json_t *container)
{
    struct serr err = {0};
    if (ctr_launch(c, container, &err) < 0)
        ctr_fail_to_start(c, err.msg);
}

static void layers_fetched(void *arg, int status, const char *errmsg)
{
    struct ctr *c = arg;
    c->working = false;
    json_t *container = c->pending_container;
    c->pending_container = NULL;
    if (c->released) {
        json_decref(container);
        ctr_maybe_free(c);
        return;
    }
    c->phase = PH_RUNNING;
    if (status < 0)
        ctr_fail_to_start(c, errmsg);
    else
        launch_or_fail(c, container);
    json_decref(container);
}

/* Starts a task's container, after fetching the image's layers from a
 * manager when this node lacks them. A container that cannot even be
 * prepared is reported rejected at once. */
static void start_task(struct agent *a, json_t *task)
{
    struct ctr *c = ctr_new(a, task_id(task));
    c->task_id = xstrdup(c->id);
    c->job = task_job_id(task) != NULL;
    const char *sid = task_service_id(task);
    c->service_id = sid ? xstrdup(sid) : NULL;
    const char *name = task_name(task);
    c->name = xstrdup(name ? name : c->id);
    json_t *container = task_container(task);
    const char *image_id = jstr(container, "image_id");
    json_t *image = image_id ? a->up->image_get(a->up->data, image_id) : NULL;
    if (image && !image_has_layers(a->env->images, image)) {
        c->phase = PH_CREATING;
        c->working = true;
        c->pending_container = json_incref(container);
        a->up->fetch_layers(a->up->data, image, layers_fetched, c);
    } else {
        launch_or_fail(c, container);
    }
    json_decref(image);
}

/* ---- adoption after a restart ---- */

/* What record_write kept of the runtime spec, for the container's end: its
 * mounts (backups resume) and a host job's node file (removed); NULL when
 * neither. */
static json_t *kept_rspec(json_t *rec)
{
    json_t *mounts = json_object_get(rec, "mounts"), *nodefile = json_object_get(rec, "nodefile");
    if (!json_is_array(mounts) && !json_is_string(nodefile))
        return NULL;
    json_t *rspec = json_object();
    if (json_is_array(mounts))
        json_object_set(rspec, "mounts", mounts);
    if (json_is_string(nodefile))
        json_object_set(rspec, "nodefile", nodefile);
    return rspec;
}

static void adopt(struct agent *a, json_t *rec)
{
    const char *id = jstr(rec, "id");
    if (id == NULL)
        return;
    struct ctr *c = ctr_new(a, id);
    const char *s;
    c->task_id = (s = jstr(rec, "task_id")) ? xstrdup(s) : NULL;
    c->service_id = (s = jstr(rec, "service_id")) ? xstrdup(s) : NULL;
    c->name = xstrdup(jstr_or(rec, "name", id));
    c->image = xstrdup(jstr_or(rec, "image", ""));
    c->pid = (pid_t)json_integer_value(json_object_get(rec, "pid"));
    c->start_time = json_integer_value(json_object_get(rec, "start_time"));
    c->local = json_is_true(json_object_get(rec, "local"));
    c->rm = json_is_true(json_object_get(rec, "rm"));
    c->host = json_is_true(json_object_get(rec, "host"));
    c->created_at = json_integer_value(json_object_get(rec, "created_at"));
    c->started_at = c->created_at; /* (not recorded: its start followed at once) */
    c->grace_ms = json_integer_value(json_object_get(rec, "grace_ms"));
    c->stop_signal = (int)json_integer_value(json_object_get(rec, "stop_signal"));
    json_t *hc = json_object_get(rec, "healthcheck");
    c->healthcheck = json_is_object(hc) ? json_incref(hc) : NULL;
    json_t *run_spec = json_object_get(rec, "run_spec");
    c->run_spec = json_is_object(run_spec) ? json_incref(run_spec) : NULL;
    c->rspec = kept_rspec(rec); /* never created again: what its end needs only */
    struct in_addr in;
    if ((s = jstr(rec, "addr")) && inet_pton(AF_INET, s, &in) == 1)
        c->addr = ntohl(in.s_addr); /* registered again: never handed out twice */
    c->created = true;
    c->phase = PH_RUNNING;
    struct serr err;
    bool alive = c->pid > 0 && proc_start_time(c->pid) == c->start_time;
    if (alive && open_output(c, &err) == 0 && watch_exit(c, &err) == 0) {
        log_info("found running container %s (%s, pid %d)", c->id, c->name, (int)c->pid);
        health_start(c, true);
        return;
    }
    log_info("container %s (%s) exited while the daemon was stopped", c->id, c->name);
    c->exited = c->out_eof = true;
    ctr_maybe_finish(c);
}

/* Namespaces of containers that never got a record (the daemon died while
 * creating them): nothing else would remove them. Blocks, once at start. */
static void sweep_orphan_netns(struct agent *a, const char *dir, const char *name)
{
    size_t n = strlen(name);
    if (n < 7 || strcmp(name + n - 6, ".netns") != 0)
        return;
    char *id = xasprintf("%.*s", (int)(n - 6), name);
    char *rec = xasprintf("%s/%s.json", dir, id);
    if (access(rec, F_OK) != 0) {
        log_info("removing the network namespace of unfinished container %s", id);
        net_task_delete(id);
        char *mark = xasprintf("%s/%s", dir, name);
        unlink(mark);
        free(mark);
    }
    free(rec);
    free(id);
}

static void adopt_all(struct agent *a)
{
    char *dir = agent_state_path(a->env, "agent");
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        sweep_orphan_netns(a, dir, de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        json_t *rec = json_load_file(path, 0, NULL);
        if (rec)
            adopt(a, rec);
        json_decref(rec);
        free(path);
    }
    if (d)
        closedir(d);
    free(dir);
}

/* ---- sync with the store ---- */

static void kick_cb(uv_timer_t *t)
{
    agent_sync(t->data);
}

void agent_kick(struct agent *a)
{
    uv_timer_start(&a->kick, kick_cb, 0, 0);
}

static bool task_waits_for_bridge(struct agent *a, json_t *task)
{
    const char *network = jstr(task_container(task), "network");
    /* a set-up that failed rejects the task instead, with the reason */
    return network && strcmp(network, "host") != 0 && !agent_net_ready(a, network) &&
           agent_net_error(a) == NULL;
}

/* A report is fire and forget: the daemon may stop before its entry is
 * committed (the container found running after the restart, the store still
 * saying assigned), a leader may fall with it. A sync that finds the store
 * behind the container says it again, once that report had time to land. */
#define REPORT_AGAIN_AFTER_MS 5000
#define REPORTS_AGAIN_MAX 3

static bool report_again_due(struct ctr *c)
{
    if (c->reports_again >= REPORTS_AGAIN_MAX)
        return false; /* a store that keeps refusing it: said often enough */
    return c->reported_at == 0 || mono_ms() - c->reported_at >= REPORT_AGAIN_AFTER_MS;
}

/* `state`: the store's for the task of c, which is still wanted running. */
static void report_again_if_lost(struct ctr *c, const char *state)
{
    bool store_behind = false;
    if (c->phase == PH_RUNNING && c->created && !c->exited && !c->running_held)
        store_behind = state && strcmp(state, "running") != 0 && !task_state_terminal(state);
    else if (c->phase == PH_DONE)
        store_behind = !task_state_terminal(state);
    if (!store_behind || !report_again_due(c))
        return;
    c->reports_again++;
    log_info("container %s (%s): the store says %s, reporting its state again", c->id, c->name,
             state ? state : "nothing");
    if (c->phase == PH_DONE)
        report(c, final_state(c));
    else
        report_running(c);
}

static void sync_task(struct agent *a, json_t *task)
{
    const char *id = task_id(task);
    const char *desired = task_desired_state(task);
    const char *state = task_state(task);
    struct ctr *c = ctr_find(a, id);
    bool want_running = desired && strcmp(desired, "running") == 0;
    if (c && c->phase == PH_DONE) {
        if (task_state_terminal(state))
            ctr_release(c); /* the store has our final report */
        else
            report_again_if_lost(c, state);
        return;
    }
    if (c) {
        if (task_state_terminal(state))
            c->final_in_store = true;
        if (!want_running)
            ctr_stop(c);
        else
            report_again_if_lost(c, state);
        return;
    }
    if (want_running && state && strcmp(state, "assigned") == 0) {
        if (task_waits_for_bridge(a, task))
            return; /* started by the kick that follows the bridge's set-up */
        if (a->stop_all_done == NULL) /* leaving: the orchestrator may still replace tasks */
            start_task(a, task);
    } else if (want_running && state && strcmp(state, "running") == 0) {
        report_lost(a, id);
    } else if (!want_running && !task_state_terminal(state)) {
        a->up->report_task(a->up->data, id,
                           json_pack("{s:s, s:s, s:I}", "state", "shutdown", "message", "shutdown",
                                     "state_at", (json_int_t)now_ms()));
    }
}

void report_lost(struct agent *a, const char *task_id)
{
    json_t *fields = json_pack("{s:s, s:s, s:s, s:I}", "state", "failed", "message", "failed",
                               "error", "task: container not found on the node",
                               "state_at", (json_int_t)now_ms());
    a->up->report_task(a->up->data, task_id, fields);
}

/* The container of this id (not name) still on the agent's list. */
static bool ctr_listed(struct agent *a, const char *id)
{
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return true;
    return false;
}

/* A log file's container id: "<id>.log" or "<id>.log.1", else false. */
static bool log_file_id(const char *name, char *id, size_t idlen)
{
    const char *dot = strstr(name, ".log");
    if (dot == NULL || dot == name || (strcmp(dot, ".log") != 0 && strcmp(dot, ".log.1") != 0) ||
        (size_t)(dot - name) >= idlen)
        return false;
    snprintf(id, idlen, "%.*s", (int)(dot - name), name);
    return true;
}

/* Logs go with their task: a log whose container is off the list and whose
 * task this node no longer has (out of the history, service removed, swarm
 * left, or gone while the daemon was stopped) is removed. `tasks` is the
 * node's whole list, history included. */
static void sweep_logs(struct agent *a, json_t *tasks)
{
    json_t *known = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const char *id = task_id(t);
        if (id)
            json_object_set_new(known, id, json_true());
    }
    char *dir = agent_run_path(a->env, "logs");
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        char id[256];
        if (!log_file_id(de->d_name, id, sizeof(id)) || json_object_get(known, id) ||
            ctr_listed(a, id))
            continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        unlink(path);
        free(path);
    }
    if (d)
        closedir(d);
    free(dir);
    json_decref(known);
}

/* The ids of the tasks whose containers the agent holds (new array). */
static json_t *held_task_ids(struct agent *a)
{
    json_t *ids = json_array();
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if (c->task_id)
            json_array_append_new(ids, json_string(c->task_id));
    return ids;
}

/* The logs of the tasks that left the store (`deleted`, from the upstream's
 * deleted_tasks; NULL: none given) go at once, as sweep_logs would remove
 * them, without reading the node's history or the logs directory: a log
 * whose container is still on the list (being stopped) waits in
 * a->logs_waiting until the container leaves it. */
static void drop_deleted_logs(struct agent *a, json_t *deleted)
{
    size_t i;
    json_t *v;
    if (json_array_size(deleted) > 0) {
        if (a->logs_waiting == NULL)
            a->logs_waiting = json_array();
        json_array_extend(a->logs_waiting, deleted);
    }
    for (i = 0; i < json_array_size(a->logs_waiting);) {
        v = json_array_get(a->logs_waiting, i);
        const char *id = json_string_value(v);
        if (id && ctr_listed(a, id)) {
            i++;
            continue;
        }
        if (id && id[0] != '.' && id[0] != '\0' && strchr(id, '/') == NULL)
            ctr_logs_remove(a, id);
        json_array_remove(a->logs_waiting, i);
    }
}

static void stop_all_finish(struct agent *a)
{
    void (*done)(void *) = a->stop_all_done;
    a->stop_all_done = NULL;
    uv_timer_stop(&a->stop_all_timer);
    done(a->stop_all_arg);
}

/* Past this long since the last sync, agent_sync_if_changed syncs all the
 * same (a bound on what an uncounted change could delay). */
#define AGENT_SYNC_MAX_MS 1000

void agent_sync_if_changed(struct agent *a)
{
    unsigned long long key = a->up->sync_key ? a->up->sync_key(a->up->data) : 0;
    if (key != 0 && key == a->synced_key && mono_ms() - a->synced_at < AGENT_SYNC_MAX_MS)
        return;
    agent_sync(a);
}

void agent_sync(struct agent *a)
{
    if (a->closing)
        return;
    a->synced_key = a->up->sync_key ? a->up->sync_key(a->up->data) : 0;
    a->synced_at = mono_ms();
    agent_net_sync(a);
    /* Given the tasks deleted since the last sync, the ended tasks the agent
     * holds no container of need not come (nor the logs directory be read):
     * a sync costs the tasks going on, not the node's history (issue 14).
     * Not known (start, a worker): the whole list, and the logs swept with it. */
    json_t *deleted = a->up->deleted_tasks ? a->up->deleted_tasks(a->up->data) : NULL;
    json_t *held = deleted ? held_task_ids(a) : NULL;
    json_t *tasks = a->up->assigned_tasks(a->up->data, held);
    json_decref(held);
    if (tasks == NULL) { /* a worker that has not heard from the leader yet: change nothing */
        drop_deleted_logs(a, deleted);
        json_decref(deleted);
        return;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) sync_task(a, t);
    /* containers whose task is gone from the store */
    for (struct ctr *c = a->ctrs, *next; c; c = next) {
        next = c->next;
        if (c->task_id == NULL)
            continue;
        bool found = false;
        json_array_foreach(tasks, i, t)
        {
            if (strcmp(task_id(t), c->task_id) == 0)
                found = true;
        }
        if (found)
            continue;
        if (c->phase == PH_DONE) {
            ctr_release(c);
        } else {
            c->task_gone = true; /* its delete's end asks for a sync (after_task_delete) */
            ctr_stop(c);
        }
    }
    if (deleted == NULL)
        sweep_logs(a, tasks);
    drop_deleted_logs(a, deleted);
    json_decref(deleted);
    json_decref(tasks);
    if (a->stop_all_done && !agent_has_tasks(a))
        stop_all_finish(a);
}

bool agent_has_tasks(struct agent *a)
{
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if (c->task_id && c->phase != PH_DONE)
            return true;
    return false;
}

/* Metrics: the task containers whose process runs now. */
json_t *agent_running_tasks(struct agent *a)
{
    json_t *out = json_array();
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if (c->task_id && ctr_running(c))
            json_array_append_new(out, json_pack("{s:s, s:s, s:I}", "id", c->task_id, "container",
                                                 c->id, "pid", (json_int_t)c->pid));
    return out;
}

void agent_layer_users(struct agent *a, json_t *users, json_t *keep)
{
    for (struct ctr *c = a->ctrs; c; c = c->next) {
        if (c->host)
            continue; /* no image: its leaving frees no layer */
        json_object_set_new(users, c->id, json_true());
        size_t i;
        json_t *l;
        json_array_foreach(c->layer_ids, i, l)
        {
            if (json_is_string(l))
                json_object_set_new(keep, json_string_value(l), json_true());
        }
    }
}

/* Past the grace periods, what still runs is killed, whatever it does; a
 * container that still does not end (a process stuck in the kernel) is left
 * behind so that leaving ends in bounded time. */
#define STOP_ALL_KILL_AFTER_MS 5000
#define STOP_ALL_GIVE_UP_AFTER_MS 30000

static void stop_all_kill(struct agent *a)
{
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if (c->task_id && c->phase == PH_RUNNING && !c->exited && c->pid > 0) {
            log_warn("container %s did not stop within its grace period: killing it", c->id);
            ctr_signal(c, SIGKILL);
        }
    runtime_reap_orphans();
}

static void stop_all_tick(uv_timer_t *t)
{
    struct agent *a = t->data;
    int64_t now = mono_ms();
    if (a->stop_all_kill_at && now >= a->stop_all_kill_at) {
        a->stop_all_kill_at = 0;
        stop_all_kill(a);
    }
    if (!agent_has_tasks(a)) {
        stop_all_finish(a);
        return;
    }
    if (now >= a->stop_all_give_up_at) {
        for (struct ctr *c = a->ctrs; c; c = c->next)
            if (c->task_id && c->phase != PH_DONE)
                log_error("container %s of task %s did not end: left behind", c->id, c->task_id);
        stop_all_finish(a);
        return;
    }
    agent_sync(a);
}

void agent_stop_all(struct agent *a, void (*done)(void *arg), void *arg)
{
    a->stop_all_done = done;
    a->stop_all_arg = arg;
    int64_t grace = 0;
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if (c->task_id) {
            ctr_stop(c);
            grace = c->grace_ms > grace ? c->grace_ms : grace;
        }
    a->stop_all_kill_at = mono_ms() + grace + STOP_ALL_KILL_AFTER_MS;
    a->stop_all_give_up_at = a->stop_all_kill_at + STOP_ALL_GIVE_UP_AFTER_MS;
    /* the store is about to go away: check completion on a timer */
    uv_timer_start(&a->stop_all_timer, stop_all_tick, 50, 50);
    agent_sync(a);
}

/* A command exec'd in a container outliving its crun (a health check killed
 * under load) becomes our zombie: the container could not end before it is
 * reaped. */
static void on_sigchld(uv_signal_t *s, int signum)
{
    (void)signum;
    int n = runtime_reap_orphans();
    if (n > 0)
        log_debug("reaped %d orphaned process(es) of containers", n);
    (void)s;
}

int agent_start(const struct agent_env *env, const struct agent_upstream *up, struct agent **out,
                struct serr *err)
{
    struct agent *a = xcalloc(1, sizeof(*a));
    a->env = env;
    a->up = up;
    char *agent_dir = agent_state_path(env, "agent");
    char *logs = agent_run_path(env, "logs");
    int rc = mkdir_p(agent_dir, 0700, err);
    if (rc == 0) /* a record's half-written copy: nothing writes here before the start */
        remove_stale_tmp_files(agent_dir, now_ms());
    if (rc == 0)
        rc = mkdir_p(logs, 0700, err);
    free(agent_dir);
    free(logs);
    if (rc < 0) {
        free(a);
        return -1;
    }
    uv_timer_init(env->loop, &a->kick);
    a->kick.data = a;
    uv_timer_init(env->loop, &a->stop_all_timer);
    a->stop_all_timer.data = a;
    uv_signal_init(env->loop, &a->sigchld);
    a->sigchld.data = a;
    uv_signal_start(&a->sigchld, on_sigchld, SIGCHLD);
    runtime_reap_orphans(); /* any left from before a restart */
    net_pool_start(env->state_dir);
    a->net = agent_net_new(a);
    agent_volumes_start(a);
    adopt_all(a);
    *out = a;
    return 0;
}

static void agent_timer_closed(uv_handle_t *h)
{
    struct agent *a = h->data;
    if (--a->closing_timers > 0)
        return;
    /* containers keep running; their handles close on their own */
    void (*done)(void *) = a->close_done;
    void *arg = a->close_arg;
    json_decref(a->logs_waiting);
    free(a);
    if (done)
        done(arg);
}

void agent_close(struct agent *a, void (*done)(void *arg), void *arg)
{
    a->closing = true;
    a->close_done = done;
    a->close_arg = arg;
    followers_close_all(a);
    runs_waiting_close_all(a);
    while (a->ctrs)
        ctr_release(a->ctrs);
    agent_net_close(a->net); /* the bridge, routes and namespaces stay: live restore */
    net_pool_stop();         /* not the ones made ahead: they are no task's */
    a->net = NULL;
    agent_volumes_stop(a);
    a->closing_timers = 4;
    uv_close((uv_handle_t *)&a->volumes_timer, agent_timer_closed);
    uv_close((uv_handle_t *)&a->kick, agent_timer_closed);
    uv_close((uv_handle_t *)&a->stop_all_timer, agent_timer_closed);
    uv_close((uv_handle_t *)&a->sigchld, agent_timer_closed);
}
