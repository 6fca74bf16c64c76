/* The node side of `shoal node exec` and `shoal node cp` (node_exec.h). */
#include "daemon/node_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "manager/secret.h"

extern char **environ;

/* After the command exited, how long its output may still come (a child it
 * left in the background holding the pipe is not waited for). */
#define NODE_EXEC_DRAIN_MS 1000

/* ---- a command ---- */

struct exec_run {
    node_exec_cb cb;
    void *arg;
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer; /* the timeout, then the drain after the exit */
    int open_handles;
    char *output; /* at most NODE_EXEC_OUTPUT_MAX bytes */
    size_t len, cap;
    bool spawned, truncated, exited, eof, timed_out, reported;
    int64_t exit_code;
    int term_signal;
};

static void run_handle_closed(uv_handle_t *h)
{
    struct exec_run *r = h->data;
    if (--r->open_handles > 0)
        return;
    free(r->output);
    free(r);
}

static void run_finish(struct exec_run *r)
{
    if (r->reported)
        return;
    r->reported = true;
    char *b64 = base64_encode((const unsigned char *)(r->output ? r->output : ""), r->len);
    json_t *result = json_pack("{s:I, s:b, s:s, s:b}", "exit_code", (json_int_t)r->exit_code,
                               "timed_out", r->timed_out, "output", b64 ? b64 : "", "truncated",
                               r->truncated);
    if (r->term_signal)
        json_object_set_new(result, "signal", json_integer(r->term_signal));
    free(b64);
    r->cb(r->arg, result);
    json_decref(result);
    uv_close((uv_handle_t *)&r->proc, run_handle_closed);
    uv_close((uv_handle_t *)&r->out, run_handle_closed);
    uv_close((uv_handle_t *)&r->timer, run_handle_closed);
}

static void run_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = xmalloc(suggested);
    buf->len = suggested;
}

static void run_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct exec_run *r = s->data;
    if (n > 0) {
        size_t room = NODE_EXEC_OUTPUT_MAX - r->len;
        size_t keep = (size_t)n < room ? (size_t)n : room;
        if (keep > 0)
            buf_append(&r->output, &r->len, &r->cap, buf->base, keep);
        if ((size_t)n > keep)
            r->truncated = true; /* read on, so the command never blocks on a full pipe */
    }
    free(buf->base);
    if (n < 0) { /* EOF, or an error: either way no more output */
        uv_read_stop(s);
        r->eof = true;
        if (r->exited)
            run_finish(r);
    }
}

static void run_timer(uv_timer_t *t)
{
    struct exec_run *r = t->data;
    if (r->exited) { /* the drain is over */
        run_finish(r);
        return;
    }
    r->timed_out = true;
    kill(-r->proc.pid, SIGKILL); /* its process group: what it started too */
}

static void run_exited(uv_process_t *p, int64_t status, int term_signal)
{
    struct exec_run *r = p->data;
    r->exited = true;
    r->exit_code = term_signal ? 128 + term_signal : status;
    r->term_signal = term_signal;
    if (r->eof) {
        run_finish(r);
        return;
    }
    uv_timer_start(&r->timer, run_timer, NODE_EXEC_DRAIN_MS, 0);
}

/* environ plus SHOAL_NODE=hostname: the array and *own (that string) are the caller's. */
static char **run_env(struct shoal *sh, char **own)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = xcalloc(n + 2, sizeof(*env));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "SHOAL_NODE=", 11) != 0)
            env[k++] = environ[i];
    env[k] = *own = xasprintf("SHOAL_NODE=%s", sh->hostname);
    return env;
}

static int argv_of(json_t *jargv, char ***out, struct serr *err)
{
    size_t n = json_array_size(jargv);
    if (!json_is_array(jargv) || n == 0)
        return serr_set(err, SERR_INVALID, "argv: a non-empty array of strings is required");
    char **argv = xcalloc(n + 1, sizeof(*argv));
    for (size_t i = 0; i < n; i++) {
        argv[i] = (char *)json_string_value(json_array_get(jargv, i));
        if (argv[i] == NULL) {
            free(argv);
            return serr_set(err, SERR_INVALID, "argv[%zu]: a string is required", i);
        }
    }
    *out = argv;
    return 0;
}

static int run_spawn(struct shoal *sh, struct exec_run *r, char **argv, struct serr *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return serr_errno(err, "pipe");
    char *own;
    char **env = run_env(sh, &own);
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
        {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
    };
    uv_process_options_t opts = {
        .exit_cb = run_exited,
        .file = argv[0],
        .args = argv,
        .env = env,
        .cwd = "/",
        .flags = UV_PROCESS_DETACHED, /* setsid: a process group to kill at the timeout */
        .stdio_count = 3,
        .stdio = stdio,
    };
    int rc = uv_spawn(sh->loop, &r->proc, &opts);
    free(own);
    free(env);
    r->spawned = true; /* the handle is initialized even when uv_spawn failed */
    close(fds[1]);
    if (rc < 0) {
        close(fds[0]);
        return serr_set(err, SERR_INVALID, "cannot run '%s': %s", argv[0], uv_strerror(rc));
    }
    uv_pipe_init(sh->loop, &r->out, 0);
    uv_pipe_open(&r->out, fds[0]);
    return 0;
}

static int exec_command(struct shoal *sh, json_t *request, node_exec_cb cb, void *arg,
                        struct serr *err)
{
    char **argv = NULL;
    if (argv_of(json_object_get(request, "argv"), &argv, err) < 0)
        return -1;
    json_int_t timeout = json_integer_value(json_object_get(request, "timeout"));
    if (timeout <= 0)
        timeout = NODE_EXEC_TIMEOUT_DEFAULT;
    if (timeout > NODE_EXEC_TIMEOUT_MAX)
        timeout = NODE_EXEC_TIMEOUT_MAX;
    struct exec_run *r = xcalloc(1, sizeof(*r));
    r->cb = cb;
    r->arg = arg;
    if (run_spawn(sh, r, argv, err) < 0) {
        free(argv);
        if (!r->spawned) {
            free(r);
            return -1;
        }
        r->open_handles = 1;
        r->proc.data = r;
        uv_close((uv_handle_t *)&r->proc, run_handle_closed);
        return -1;
    }
    free(argv);
    r->proc.data = r->out.data = r->timer.data = r;
    r->open_handles = 3;
    uv_timer_init(sh->loop, &r->timer);
    uv_timer_start(&r->timer, run_timer, (uint64_t)timeout * 1000, 0);
    uv_read_start((uv_stream_t *)&r->out, run_alloc, run_read);
    return 0;
}

/* ---- a file ---- */

struct file_write {
    uv_work_t work;
    node_exec_cb cb;
    void *arg;
    char *dest, *name;
    char *path; /* the final path (DEST, or DEST/name for a directory): set by file_work */
    unsigned char *data;
    size_t len;
    unsigned mode;
    struct serr err;
    int rc;
};

/* DEST, or DEST/name when DEST is a directory (or ends with '/'). */
static char *file_target(const char *dest, const char *name)
{
    struct stat st;
    size_t n = strlen(dest);
    if ((n > 0 && dest[n - 1] == '/') || (stat(dest, &st) == 0 && S_ISDIR(st.st_mode)))
        return xasprintf("%s%s%s", dest, n > 0 && dest[n - 1] == '/' ? "" : "/", name);
    return xstrdup(dest);
}

/* In the thread pool: a temporary file beside the target, renamed over it. */
static void file_work(uv_work_t *w)
{
    struct file_write *f = w->data;
    f->path = file_target(f->dest, f->name); /* stat(): off the loop too */
    char *tmp = xasprintf("%s.shoal-cp-XXXXXX", f->path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        f->rc = serr_errno(&f->err, "cannot create a file beside %s", f->path);
        free(tmp);
        return;
    }
    if (write_all(fd, f->data, f->len) < 0 || fchmod(fd, f->mode) < 0 || fsync(fd) < 0) {
        f->rc = serr_errno(&f->err, "cannot write %s", tmp);
        close(fd);
        unlink(tmp);
    } else if (close(fd) < 0 || rename(tmp, f->path) < 0) {
        f->rc = serr_errno(&f->err, "cannot rename %s to %s", tmp, f->path);
        unlink(tmp);
    }
    free(tmp);
}

static void file_done(uv_work_t *w, int status)
{
    struct file_write *f = w->data;
    json_t *result = f->rc < 0 || status < 0
                         ? json_pack("{s:s}", "error", f->rc < 0 ? f->err.msg : "cancelled")
                         : json_pack("{s:s, s:I, s:I}", "path", f->path, "size",
                                     (json_int_t)f->len, "mode", (json_int_t)f->mode);
    f->cb(f->arg, result);
    json_decref(result);
    free(f->dest);
    free(f->name);
    free(f->path);
    free(f->data);
    free(f);
}

static int copy_file(struct shoal *sh, json_t *file, node_exec_cb cb, void *arg,
                     struct serr *err)
{
    const char *dest = json_string_value(json_object_get(file, "path"));
    const char *name = json_string_value(json_object_get(file, "name"));
    const char *data = json_string_value(json_object_get(file, "data"));
    json_int_t mode = json_integer_value(json_object_get(file, "mode"));
    if (dest == NULL || dest[0] != '/')
        return serr_set(err, SERR_INVALID, "file.path: an absolute path is required");
    if (name == NULL || name[0] == '\0' || strchr(name, '/') || strcmp(name, "..") == 0 ||
        strcmp(name, ".") == 0)
        return serr_set(err, SERR_INVALID, "file.name: a file name without '/' is required");
    if (mode < 0 || mode > 07777)
        return serr_set(err, SERR_INVALID, "file.mode: a mode 0 to 07777 is required");
    size_t len = 0;
    unsigned char *bytes = data ? base64_decode(data, &len) : NULL;
    if (bytes == NULL)
        return serr_set(err, SERR_INVALID, "file.data: base64 is required");
    if (len > NODE_CP_MAX) {
        free(bytes);
        return serr_set(err, SERR_INVALID, "the file is larger than %d KiB", NODE_CP_MAX / 1024);
    }
    struct file_write *f = xcalloc(1, sizeof(*f));
    f->cb = cb;
    f->arg = arg;
    f->dest = xstrdup(dest);
    f->name = xstrdup(name);
    f->data = bytes;
    f->len = len;
    f->mode = (unsigned)mode;
    f->work.data = f;
    uv_queue_work(sh->loop, &f->work, file_work, file_done);
    return 0;
}

int node_exec_run(struct shoal *sh, json_t *request, node_exec_cb cb, void *arg,
                  struct serr *err)
{
    if (sh->node_exec_disabled)
        return serr_set(err, SERR_FORBIDDEN,
                        "node %s refuses node exec and node cp (its daemon.json says "
                        "\"node-exec\": false)",
                        sh->hostname);
    json_t *file = json_object_get(request, "file");
    if (file)
        return copy_file(sh, file, cb, arg, err);
    return exec_command(sh, request, cb, arg, err);
}
