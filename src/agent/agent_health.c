/* Health checks of task containers, with Docker's semantics (HEALTHCHECK
 * CMD-SHELL, interval, timeout, retries, start period). See agent_int.h.
 *
 * One probe at a time per container, and only on the loop thread, except
 * the three thread-pool steps (`working` set while one is queued):
 *   spawn    write the exec process file, start `crun exec` (runtime.c)
 *   kill     past the timeout: SIGKILL the command and what it started (the
 *            descendants of crun exec; crun then reaps them and ends)
 *   collect  remove the probe's files
 * In between, the loop waits for crun's exit on a pidfd, times the probe
 * with `timer` (which otherwise waits for the next interval), and reads the
 * command's output from a pipe, keeping its first HEALTH_OUTPUT_MAX bytes
 * (a file could fill the run directory's tmpfs with a chatty check).
 *
 * A struct health belongs to its container until health_stop detaches it
 * (h->c = NULL); it then finishes the probe in flight (killing it), and
 * frees itself in the close callback of its last handle, never sooner. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/runtime.h"
#include "base/json_get.h"
#include "base/log.h"
#include "base/util.h"

#define HEALTH_OUTPUT_MAX 4096   /* kept of a probe's output, like Docker */
#define HEALTH_KILL_WAIT_MS 2000 /* after killing the command, before killing crun */

enum probe_phase { PROBE_IDLE, PROBE_SPAWNING, PROBE_RUNNING, PROBE_COLLECTING };

struct health {
    const struct agent_env *env; /* outlives the agent: used by thread-pool steps */
    const struct agent_upstream *up;
    struct ctr *c; /* NULL once detached */
    char id[32];   /* the container (crun's id) */
    char *task_id;
    char *cmd;
    char *files; /* <run_dir>/health/<id>: prefix of .process.json and .pid */
    int64_t interval_ms, timeout_ms, start_period_ms;
    int retries;
    int64_t started_at; /* mono_ms() when checking began: the start period counts from here */
    struct health_state st;
    bool announced; /* `starting` reported */
    enum probe_phase probe;
    pid_t child; /* crun exec, our child until reaped */
    int pidfd;
    bool timed_out, killed;
    bool exit_ready;                    /* crun ended while the kill step ran: reaped after it */
    int exit_code;                      /* of the last probe; -1 when it could not run */
    char output[HEALTH_OUTPUT_MAX + 1]; /* of the probe, or why it could not run */
    size_t output_len;
    int out_fd;       /* read end of the probe's output pipe, until `out` takes it */
    uv_timer_t timer; /* next probe, probe timeout, then the wait after the kill */
    uv_poll_t poll;   /* crun's pidfd while a probe runs */
    uv_pipe_t out;    /* the probe's output while it runs */
    uv_work_t work;
    bool working, timer_open, poll_open, out_open;
    int closing; /* handles whose close callback is pending */
    struct serr werr;
};

/* ---- the state machine (pure) ---- */

bool health_apply(struct health_state *s, bool ok, bool in_start_period, int retries)
{
    enum health_status before = s->status;
    if (ok) {
        s->failures = 0;
        s->status = HEALTH_HEALTHY;
    } else if (s->status == HEALTH_STARTING && in_start_period) {
        /* Docker: failures in the start period do not count until a success */
    } else if (++s->failures >= retries) {
        s->status = HEALTH_UNHEALTHY;
    }
    return s->status != before;
}

const char *health_status_name(enum health_status status)
{
    switch (status) {
    case HEALTH_STARTING:
        return "starting";
    case HEALTH_HEALTHY:
        return "healthy";
    case HEALTH_UNHEALTHY:
        return "unhealthy";
    }
    return "unknown";
}

/* ---- lifetime ---- */

static void health_closed(uv_handle_t *handle)
{
    struct health *h = handle->data;
    /* the poll handle closes after every probe; the timer only in maybe_free */
    if (--h->closing > 0 || h->timer_open)
        return;
    free(h->task_id);
    free(h->cmd);
    free(h->files);
    free(h);
}

static void close_poll(struct health *h)
{
    if (h->pidfd >= 0) {
        /* the handle must go before its fd: uv_close stops it at once */
        if (h->poll_open) {
            h->poll_open = false;
            h->closing++;
            uv_close((uv_handle_t *)&h->poll, health_closed);
        }
        close(h->pidfd);
        h->pidfd = -1;
    }
}

static void output_add(struct health *h, const char *data, size_t len)
{
    size_t room = HEALTH_OUTPUT_MAX - h->output_len;
    if (len > room)
        len = room; /* the rest is read and dropped */
    memcpy(h->output + h->output_len, data, len);
    h->output_len += len;
    h->output[h->output_len] = '\0';
}

static void output_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static char sink[16384]; /* loop thread only; the data is copied at once */
    buf->base = sink;
    buf->len = sizeof(sink);
}

static void close_output(struct health *h)
{
    if (h->out_open) {
        h->out_open = false;
        h->closing++;
        uv_close((uv_handle_t *)&h->out, health_closed);
    }
}

static void output_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct health *h = stream->data;
    if (n > 0)
        output_add(h, buf->base, (size_t)n);
    else if (n < 0)
        close_output(h); /* EOF: every writer is gone */
}

/* crun exited: what is in the pipe now is the output (a descendant that
 * still holds the pipe is not waited for). The fd is non-blocking. */
static void output_finish(struct health *h)
{
    uv_os_fd_t fd;
    if (h->out_open && uv_fileno((uv_handle_t *)&h->out, &fd) == 0) {
        char buf[4096];
        ssize_t n;
        /* bounded: a descendant may still be writing */
        for (int i = 0; i < 32 && (n = read(fd, buf, sizeof(buf))) > 0; i++)
            output_add(h, buf, (size_t)n);
    }
    close_output(h);
}

/* Detached and nothing in flight: close the handles; the last close frees. */
static void maybe_free(struct health *h)
{
    if (h->c != NULL || h->working || h->probe != PROBE_IDLE)
        return;
    close_poll(h);
    close_output(h);
    if (h->timer_open) {
        h->timer_open = false;
        h->closing++;
        uv_close((uv_handle_t *)&h->timer, health_closed);
    }
}

static void report(struct health *h)
{
    h->up->report_task(h->up->data, h->task_id,
                       json_pack("{s:s}", "health", health_status_name(h->st.status)));
}

/* ---- one probe ---- */

static void schedule(struct health *h, uint64_t delay_ms);

static void work_spawn(uv_work_t *w)
{
    struct health *h = w->data;
    char *dir = agent_run_path(h->env, "health");
    int fds[2] = {-1, -1};
    h->child = 0;
    h->out_fd = -1;
    if (mkdir_p(dir, 0700, &h->werr) < 0)
        goto out;
    if (pipe2(fds, O_CLOEXEC) < 0) {
        serr_errno(&h->werr, "pipe");
        goto out;
    }
    const char *argv[] = {"/bin/sh", "-c", h->cmd, NULL};
    if (runtime_exec_start(h->env->rt, h->id, argv, h->files, fds[1], &h->child, &h->werr) < 0)
        h->child = 0;
out:
    if (fds[1] >= 0)
        close(fds[1]);
    if (h->child > 0)
        h->out_fd = fds[0];
    else if (fds[0] >= 0)
        close(fds[0]);
    free(dir);
}

static void work_collect(uv_work_t *w)
{
    struct health *h = w->data;
    static const char *const suffixes[] = {"process.json", "pid", NULL};
    for (size_t i = 0; suffixes[i] != NULL; i++) {
        char *path = xasprintf("%s.%s", h->files, suffixes[i]);
        unlink(path);
        free(path);
    }
}

#define KILL_TREE_MAX 1024

/* Adds to `tree` (n entries, the first the root) every process whose parent
 * is in it, stopping each so that it forks no more. One pass over /proc. */
static size_t find_descendants(pid_t *tree, size_t n)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL && n < KILL_TREE_MAX) {
        pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
        if (pid <= 0)
            continue;
        char path[64], *text = NULL;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (read_file(path, &text, NULL, NULL) < 0)
            continue;
        const char *p = strrchr(text, ')'); /* the name may hold anything */
        pid_t ppid = 0;
        if (p && p[1] == ' ' && p[2] != '\0' && p[3] == ' ')
            ppid = (pid_t)strtol(p + 4, NULL, 10);
        free(text);
        bool known = false, child = false;
        for (size_t i = 0; i < n; i++) {
            known = known || tree[i] == pid;
            child = child || tree[i] == ppid;
        }
        if (child && !known) {
            kill(pid, SIGSTOP);
            tree[n++] = pid;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* SIGKILLs the descendants of `root` (what `sh -c` started: Docker kills only
 * the command, which leaves its children running in the container), and
 * `root` too unless `spare_root`, which is then continued. Returns how many
 * descendants there were. */
static size_t kill_tree(pid_t root, bool spare_root)
{
    pid_t tree[KILL_TREE_MAX];
    size_t n = 1;
    tree[0] = root;
    kill(root, SIGSTOP);
    /* until a pass finds nothing new: a process forked before its parent
     * stopped is found by the next one (deeper ones too) */
    for (size_t before = 0; before != n;) {
        before = n;
        n = find_descendants(tree, n);
    }
    for (size_t i = spare_root ? 1 : 0; i < n; i++)
        kill(tree[i], SIGKILL);
    if (spare_root)
        kill(root, SIGCONT);
    return n - 1;
}

/* Kills what crun exec started, from crun down, but not crun: it reaps its
 * command and ends, which on_probe_exit sees. A command whose crun died first
 * would be reparented to the daemon (runtime_reap_orphans), and crun killed
 * half-way leaves its helpers behind. Only a crun that started nothing yet
 * is killed itself. (The pid file is not needed: the tree holds the
 * command, even before crun wrote the file, which is what a loaded machine
 * shows.) */
static void work_kill(uv_work_t *w)
{
    struct health *h = w->data;
    if (kill_tree(h->child, true) == 0)
        kill(h->child, SIGKILL);
}

#define LOG_OUTPUT_MAX 200

/* The start of the output on one line, for the log: control characters
 * become spaces, trailing ones go, "..." marks a cut. */
static void log_excerpt(const struct health *h, char out[LOG_OUTPUT_MAX + 4])
{
    size_t n = h->output_len < LOG_OUTPUT_MAX ? h->output_len : LOG_OUTPUT_MAX;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)h->output[i] < ' ' ? ' ' : h->output[i];
    while (n > 0 && out[n - 1] == ' ')
        n--;
    strcpy(out + n, h->output_len > LOG_OUTPUT_MAX ? "..." : "");
}

static void after_collect(uv_work_t *w, int status)
{
    struct health *h = w->data;
    h->working = false;
    h->probe = PROBE_IDLE;
    if (h->c == NULL) {
        maybe_free(h);
        return;
    }
    bool ok = !h->timed_out && h->exit_code == 0;
    bool in_start = mono_ms() - h->started_at < h->start_period_ms;
    enum health_status before = h->st.status;
    char said[LOG_OUTPUT_MAX + 4];
    log_excerpt(h, said);
    if (!ok && h->timed_out)
        log_debug("container %s: health check timed out: %s", h->id, said);
    else if (!ok)
        log_debug("container %s: health check failed (exit code %d): %s", h->id, h->exit_code,
                  said);
    if (health_apply(&h->st, ok, in_start, h->retries)) {
        log_info("container %s (%s): %s -> %s%s%s", h->id, h->c->name, health_status_name(before),
                 health_status_name(h->st.status),
                 ok ? "" : ", last check: ", ok ? "" : (h->timed_out ? "timed out" : said));
        report(h);
    }
    if (h->st.status == HEALTH_UNHEALTHY) {
        struct ctr *c = h->c;
        c->unhealthy = true;
        ctr_stop(c); /* detaches h (health_stop) */
        return;
    }
    schedule(h, (uint64_t)h->interval_ms);
}

/* crun exited: the probe is over. */
static void probe_exited(struct health *h, int wstatus)
{
    h->exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    h->child = 0;
    uv_timer_stop(&h->timer);
    close_poll(h);
    output_finish(h);
    h->probe = PROBE_COLLECTING;
    h->working = true;
    uv_queue_work(h->env->loop, &h->work, work_collect, after_collect);
}

/* Reaps crun if it ended; true when it did. */
static bool probe_reap(struct health *h)
{
    int wstatus = 0;
    pid_t r = waitpid(h->child, &wstatus, WNOHANG);
    if (r == 0)
        return false;
    if (r < 0)
        wstatus = 0xff00; /* gone (reaped elsewhere): a failure, exit 255 */
    probe_exited(h, wstatus);
    return true;
}

static void on_probe_exit(uv_poll_t *p, int status, int events)
{
    struct health *h = p->data;
    if (h->working) {
        /* the kill step may still signal h->child: keep the zombie (its
         * pid cannot be reused) until after_kill reaps it */
        uv_poll_stop(p);
        h->exit_ready = true;
        return;
    }
    probe_reap(h); /* false: spurious wake-up */
}

static void kill_wait_expired(uv_timer_t *t)
{
    struct health *h = t->data;
    if (h->probe == PROBE_RUNNING && h->child > 0)
        kill(h->child, SIGKILL); /* crun did not end with its command */
}

static void after_kill(uv_work_t *w, int status)
{
    struct health *h = w->data;
    h->working = false;
    if (h->exit_ready && probe_reap(h))
        return;
    if (h->exit_ready) {
        h->exit_ready = false;
        uv_poll_start(&h->poll, UV_READABLE, on_probe_exit);
    }
    uv_timer_start(&h->timer, kill_wait_expired, HEALTH_KILL_WAIT_MS, 0);
}

/* Timeout (or stop): kill the command; crun then exits and on_probe_exit
 * collects. Once per probe. */
static void probe_kill(struct health *h)
{
    if (h->probe != PROBE_RUNNING || h->killed || h->working)
        return;
    h->killed = true;
    uv_timer_stop(&h->timer);
    h->working = true;
    uv_queue_work(h->env->loop, &h->work, work_kill, after_kill);
}

static void probe_timeout(uv_timer_t *t)
{
    struct health *h = t->data;
    h->timed_out = true;
    probe_kill(h);
}

static void after_spawn(uv_work_t *w, int status)
{
    struct health *h = w->data;
    h->working = false;
    if (h->child <= 0) {
        h->output_len = 0;
        output_add(h, h->werr.msg, strlen(h->werr.msg));
        h->exit_code = -1;
        h->probe = PROBE_COLLECTING;
        h->working = true;
        uv_queue_work(h->env->loop, &h->work, work_collect, after_collect);
        return;
    }
    h->probe = PROBE_RUNNING;
    h->output_len = 0;
    h->output[0] = '\0';
    uv_pipe_init(h->env->loop, &h->out, 0);
    h->out.data = h;
    h->out_open = true;
    if (uv_pipe_open(&h->out, h->out_fd) == 0)
        uv_read_start((uv_stream_t *)&h->out, output_alloc, output_read);
    else
        close(h->out_fd); /* no output then; the handle closes with the probe */
    h->out_fd = -1;
    h->pidfd = (int)syscall(SYS_pidfd_open, h->child, 0);
    if (h->pidfd < 0) {
        /* cannot watch it: wait for it here, after killing it (rare) */
        log_warn("container %s: pidfd_open: %s", h->id, strerror(errno));
        kill(h->child, SIGKILL);
        int wstatus = 0;
        while (waitpid(h->child, &wstatus, 0) < 0 && errno == EINTR) {
        }
        h->timed_out = true;
        probe_exited(h, wstatus);
        return;
    }
    uv_poll_init(h->env->loop, &h->poll, h->pidfd);
    h->poll.data = h;
    h->poll_open = true;
    uv_poll_start(&h->poll, UV_READABLE, on_probe_exit);
    if (h->c == NULL)
        probe_kill(h);
    else
        uv_timer_start(&h->timer, probe_timeout, (uint64_t)h->timeout_ms, 0);
}

static void probe_start(uv_timer_t *t)
{
    struct health *h = t->data;
    if (!h->announced) {
        /* first tick, on the next loop turn: after a restart, reports only
         * reach the cluster once the swarm is resumed */
        h->announced = true;
        report(h);
        schedule(h, (uint64_t)h->interval_ms);
        return;
    }
    if (h->c == NULL || h->probe != PROBE_IDLE || h->working)
        return;
    h->probe = PROBE_SPAWNING;
    h->timed_out = h->killed = h->exit_ready = false;
    h->exit_code = -1;
    h->working = true;
    uv_queue_work(h->env->loop, &h->work, work_spawn, after_spawn);
}

static void schedule(struct health *h, uint64_t delay_ms)
{
    uv_timer_start(&h->timer, probe_start, delay_ms, 0);
}

/* ---- container side ---- */

static int64_t hc_int(json_t *hc, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(hc, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : dflt;
}

void health_start(struct ctr *c, bool adopted)
{
    const char *cmd = jstr(c->healthcheck, "cmd");
    if (c->health != NULL || c->task_id == NULL || cmd == NULL || *cmd == '\0')
        return;
    struct health *h = xcalloc(1, sizeof(*h));
    h->env = c->env;
    h->up = c->up;
    h->c = c;
    snprintf(h->id, sizeof(h->id), "%s", c->id);
    h->task_id = xstrdup(c->task_id);
    h->cmd = xstrdup(cmd);
    h->files = agent_run_path(c->env, "health/");
    char *files = xasprintf("%s%s", h->files, c->id);
    free(h->files);
    h->files = files;
    /* defaults as Docker's, should the manager not have filled them in */
    h->interval_ms = hc_int(c->healthcheck, "interval_ms", 30000);
    h->timeout_ms = hc_int(c->healthcheck, "timeout_ms", 30000);
    h->retries = (int)hc_int(c->healthcheck, "retries", 3);
    json_t *sp = json_object_get(c->healthcheck, "start_period_ms");
    h->start_period_ms = json_is_integer(sp) ? json_integer_value(sp) : 0;
    h->started_at = mono_ms();
    if (adopted) {
        h->announced = true;
        int64_t age = c->created_at > 0 ? now_ms() - c->created_at : INT64_MAX / 2;
        h->started_at -= age > 0 ? age : 0;
    }
    h->pidfd = -1;
    h->out_fd = -1;
    h->work.data = h;
    uv_timer_init(c->env->loop, &h->timer);
    h->timer.data = h;
    h->timer_open = true;
    c->health = h;
    schedule(h, 0);
}

void health_stop(struct ctr *c)
{
    struct health *h = c->health;
    if (h == NULL)
        return;
    c->health = NULL;
    h->c = NULL;
    if (h->probe == PROBE_IDLE)
        uv_timer_stop(&h->timer);
    probe_kill(h);
    maybe_free(h);
}
