/* `shoal exec`: a command in a running container of this node, its stdout
 * and stderr streamed back in frames (agent.h: agent_exec), then its exit
 * code. Its stdin is given with the request, or, in an interactive session,
 * comes by agent_exec_input; with a terminal the command's side is a pty
 * whose master crun sends over a console socket. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/reply.h"
#include "agent/runtime.h"
#include "base/base64.h"
#include "base/json_get.h"
#include "base/util.h"

struct exec_cmd {
    struct agent *a;         /* only while linked */
    uv_loop_t *loop;
    struct exec_cmd *next;   /* on a->execs while the session takes input */
    bool linked;
    char id[80];             /* the session's (interactive), "" otherwise */
    struct agent_reply *out; /* NULL once the client left */
    char *files;             /* path prefix of FILES.process.json, FILES.sock */
    uv_process_t proc;
    uv_pipe_t in, pipes[2];  /* stdin; stdout, stderr (crun's own with a terminal) */
    uv_pipe_t term;          /* the terminal's master, once crun sent it */
    uv_poll_t console;       /* the console socket, until crun connected */
    int console_fd;
    uv_write_t write_req;
    unsigned char *input;    /* stdin's bytes given with the request */
    size_t input_len;
    int open_handles;
    int open_outputs;
    int rows, cols;
    bool tty, term_open, console_open, exited, in_closed;
    int64_t exit_code;
};

void agent_write_frame(struct agent_reply *out, int stream, const char *data, size_t len)
{
    unsigned char head[8] = {(unsigned char)stream, 0, 0, 0, (unsigned char)(len >> 24),
                             (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                             (unsigned char)len};
    out->stream_write(out, (const char *)head, sizeof(head));
    if (len)
        out->stream_write(out, data, len);
}

static void session_unlink(struct exec_cmd *x)
{
    if (!x->linked)
        return;
    x->linked = false;
    for (struct exec_cmd **pp = &x->a->execs; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            return;
        }
}

static void unlink_file(const char *files, const char *suffix)
{
    char *path = xasprintf("%s.%s", files, suffix);
    unlink(path);
    free(path);
}

static void cmd_closed(uv_handle_t *h)
{
    struct exec_cmd *x = h->data;
    if (--x->open_handles > 0)
        return;
    unlink_file(x->files, "process.json");
    unlink_file(x->files, "sock");
    unlink_file(x->files, "pid");
    if (x->console_fd >= 0)
        close(x->console_fd);
    free(x->files);
    free(x->input);
    free(x);
}

static void close_handle(struct exec_cmd *x, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, cmd_closed);
}

static void close_input(struct exec_cmd *x)
{
    x->in_closed = true;
    close_handle(x, (uv_handle_t *)&x->in);
}

/* The command exited and its output was read to the end: the exit code
 * ends the stream; then every handle closes. */
static void maybe_finish(struct exec_cmd *x)
{
    if (!x->exited || x->open_outputs > 0)
        return;
    if (x->linked)
        session_ended(x->a, x->id, x->exit_code);
    session_unlink(x);
    if (x->out) {
        char code[24];
        int n = snprintf(code, sizeof(code), "%lld", (long long)x->exit_code);
        agent_write_frame(x->out, 3, code, (size_t)n);
        x->out->gone = NULL;
        x->out->stream_end(x->out);
        x->out = NULL;
    }
    close_input(x);
    close_handle(x, (uv_handle_t *)&x->pipes[0]);
    close_handle(x, (uv_handle_t *)&x->pipes[1]);
    close_handle(x, (uv_handle_t *)&x->proc);
    if (x->console_open)
        close_handle(x, (uv_handle_t *)&x->console);
    if (x->term_open)
        close_handle(x, (uv_handle_t *)&x->term);
}

static void alloc_buf(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = xmalloc(size);
    buf->len = size;
}

static void output_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct exec_cmd *x = s->data;
    int stream = s == (uv_stream_t *)&x->pipes[1] ? 2 : 1;
    if (n > 0 && x->out)
        agent_write_frame(x->out, stream, buf->base, (size_t)n);
    free(buf->base);
    if (n < 0) { /* EOF; a terminal's master says EIO once the command is gone */
        uv_read_stop(s);
        x->open_outputs--;
        maybe_finish(x);
    }
}

static void proc_exited(uv_process_t *p, int64_t status, int term_signal)
{
    struct exec_cmd *x = p->data;
    x->exited = true;
    x->exit_code = term_signal ? 128 + term_signal : status;
    if (x->console_open) { /* crun ended before it sent a terminal */
        x->console_open = false;
        close_handle(x, (uv_handle_t *)&x->console);
    }
    maybe_finish(x);
}

static void input_written(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void given_input_written(uv_write_t *w, int status)
{
    (void)status;
    close_input(w->data); /* EOF for the command */
}

/* The command crun started (a process of the host's pid namespace), as
 * crun wrote it down; 0 when not (yet) known. */
static pid_t command_pid(struct exec_cmd *x)
{
    char *path = xasprintf("%s.pid", x->files);
    char *text = NULL;
    size_t len;
    pid_t pid = 0;
    if (read_file(path, &text, &len, NULL) == 0)
        pid = (pid_t)atol(text);
    free(text);
    free(path);
    return pid;
}

/* The client left: the command and crun are killed; their end frees
 * everything. */
static void client_gone(struct agent_reply *r)
{
    struct exec_cmd *x = r->agent_data;
    x->out = NULL;
    session_unlink(x);
    if (x->exited)
        return;
    pid_t pid = command_pid(x);
    if (pid > 0)
        kill(pid, SIGKILL);
    uv_process_kill(&x->proc, SIGKILL);
}

/* ---- the terminal ---- */

static void console_ready(uv_poll_t *p, int status, int events)
{
    (void)events;
    struct exec_cmd *x = p->data;
    x->console_open = false;
    close_handle(x, (uv_handle_t *)&x->console);
    int master = status < 0 ? -1 : runtime_console_accept(x->console_fd);
    if (master < 0)
        return; /* crun reports its failure on stderr and exits */
    runtime_term_set_size(master, x->rows, x->cols);
    uv_pipe_init(x->loop, &x->term, 0);
    x->term.data = x;
    x->open_handles++;
    x->term_open = true;
    if (uv_pipe_open(&x->term, master) < 0) {
        close(master);
        close_handle(x, (uv_handle_t *)&x->term);
        return;
    }
    x->open_outputs++;
    uv_read_start((uv_stream_t *)&x->term, alloc_buf, output_read);
    if (x->out) /* the terminal takes input from now on */
        agent_write_frame(x->out, 4, x->id, strlen(x->id));
}

/* A unix socket at FILES.sock that crun connects to; read as it comes. */
static int console_listen(struct exec_cmd *x, char **path, struct serr *err)
{
    *path = xasprintf("%s.sock", x->files);
    x->console_fd = runtime_console_listen(*path, err);
    if (x->console_fd < 0)
        return -1;
    uv_poll_init(x->loop, &x->console, x->console_fd);
    x->console.data = x;
    x->open_handles++;
    x->console_open = true;
    uv_poll_start(&x->console, UV_READABLE, console_ready);
    return 0;
}

/* ---- starting ---- */

static int spawn_cmd(struct exec_cmd *x, char **argv, struct serr *err)
{
    uv_loop_t *loop = x->loop;
    uv_pipe_init(loop, &x->in, 0);
    uv_pipe_init(loop, &x->pipes[0], 0);
    uv_pipe_init(loop, &x->pipes[1], 0);
    x->in.data = x->pipes[0].data = x->pipes[1].data = x->proc.data = x;
    x->open_handles += 3;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&x->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&x->pipes[0]},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&x->pipes[1]},
    };
    uv_process_options_t opts = {
        .exit_cb = proc_exited,
        .file = argv[0],
        .args = argv,
        .stdio_count = 3,
        .stdio = stdio,
    };
    int rc = uv_spawn(loop, &x->proc, &opts);
    x->open_handles++; /* the process handle is initialized even on failure */
    if (rc < 0) {
        serr_set(err, SERR_INTERNAL, "cannot run %s: %s", argv[0], uv_strerror(rc));
        x->exited = true;
        maybe_finish(x);
        return -1;
    }
    x->open_outputs = 2;
    uv_read_start((uv_stream_t *)&x->pipes[0], alloc_buf, output_read);
    uv_read_start((uv_stream_t *)&x->pipes[1], alloc_buf, output_read);
    if (x->tty || x->id[0]) /* a terminal takes input by the master; a session by input calls */
        return 0;
    if (x->input_len == 0) {
        close_input(x);
    } else {
        uv_buf_t b = uv_buf_init((char *)x->input, (unsigned)x->input_len);
        x->write_req.data = x;
        uv_write(&x->write_req, (uv_stream_t *)&x->in, &b, 1, given_input_written);
    }
    return 0;
}

/* The request's {cmd: [...], env, user, workdir, stdin (base64),
 * interactive, tty, rows, cols}. */
static int read_request(struct exec_cmd *x, json_t *body, const char ***argv, struct serr *err)
{
    json_t *cmd = json_object_get(body, "cmd");
    json_t *env = json_object_get(body, "env");
    const char *in = jstr(body, "stdin");
    if (!json_is_array(cmd) || json_array_size(cmd) == 0 || (env && !json_is_array(env)))
        return serr_set(err, SERR_INVALID, "expected {cmd: [...], env, user, workdir, stdin, "
                                           "interactive, tty, rows, cols}");
    if (in && in[0] && (x->input = base64_decode(in, &x->input_len)) == NULL)
        return serr_set(err, SERR_INVALID, "stdin: invalid base64");
    x->tty = json_is_true(json_object_get(body, "tty"));
    x->rows = (int)json_integer_value(json_object_get(body, "rows"));
    x->cols = (int)json_integer_value(json_object_get(body, "cols"));
    if (x->rows < 0 || x->rows > TERM_MAX_SIZE || x->cols < 0 || x->cols > TERM_MAX_SIZE)
        return serr_set(err, SERR_INVALID, "rows, cols: out of range");
    size_t n = json_array_size(cmd);
    *argv = xcalloc(n + 1, sizeof(**argv));
    for (size_t i = 0; i < n; i++)
        if (((*argv)[i] = json_string_value(json_array_get(cmd, i))) == NULL)
            return serr_set(err, SERR_INVALID, "cmd: expected strings");
    return 0;
}

/* The crun command line for `c`, its files written; NULL with err set. */
static char **prepare(struct exec_cmd *x, struct ctr *c, json_t *body, const char **argv,
                      struct serr *err)
{
    static unsigned counter;
    char *dir = agent_run_path(x->a->env, "exec");
    x->files = xasprintf("%s/%.12s-%u", dir, c->id, ++counter);
    int rc = mkdir_p(dir, 0700, err);
    free(dir);
    char *sock = NULL;
    if (rc == 0 && x->tty)
        rc = console_listen(x, &sock, err);
    struct runtime_exec_opts o = {
        .argv = argv,
        .user = jstr(body, "user"),
        .cwd = jstr(body, "workdir"),
        .env = json_object_get(body, "env"),
        .console_socket = sock,
        .rows = x->rows,
        .cols = x->cols,
    };
    char **crun = rc == 0 ? runtime_exec_prepare(x->a->env->rt, c->id, &o, x->files, err) : NULL;
    free(sock);
    return crun;
}

void agent_session_id(struct agent *a, char *out, size_t size)
{
    const char *node = a->env->node_id;
    char rnd[17];
    random_hex(rnd, 16);
    snprintf(out, size, "%s-%s", node && node[0] ? node : "local", rnd);
}

/* An interactive session: an id that names this node for the managers. */
static void start_session(struct exec_cmd *x)
{
    agent_session_id(x->a, x->id, sizeof(x->id));
    x->next = x->a->execs;
    x->a->execs = x;
    x->linked = true;
}

/* Frees what a failed start before the spawn left: the console socket's
 * handle, if made, closes later and frees then. */
static void drop(struct exec_cmd *x)
{
    if (x->console_open) {
        x->console_open = false;
        close_handle(x, (uv_handle_t *)&x->console);
        return;
    }
    if (x->console_fd >= 0)
        close(x->console_fd);
    if (x->files)
        unlink_file(x->files, "sock");
    free(x->files);
    free(x->input);
    free(x);
}

static int exec_start(struct agent *a, const char *ref, json_t *body, struct agent_reply *r,
                      struct serr *err)
{
    struct ctr *c = ctr_find_or_fail(a, ref, err);
    if (c == NULL)
        return -1;
    if (c->phase != PH_RUNNING)
        return serr_set(err, SERR_CONFLICT, "container %s is not running", ref);
    struct exec_cmd *x = xcalloc(1, sizeof(*x));
    x->a = a;
    x->loop = a->env->loop;
    x->console_fd = -1;
    const char **argv = NULL;
    char **crun = NULL;
    if (read_request(x, body, &argv, err) == 0)
        crun = prepare(x, c, body, argv, err);
    free(argv);
    if (crun == NULL) {
        drop(x);
        return -1;
    }
    if (x->tty || json_is_true(json_object_get(body, "interactive")))
        start_session(x);
    int rc = spawn_cmd(x, crun, err);
    runtime_exec_argv_free(crun);
    if (rc < 0)
        return -1; /* spawn_cmd closes what it made */
    x->out = r;
    r->agent_data = x;
    r->gone = client_gone;
    r->stream_start(r, AGENT_FRAMES_TYPE);
    if (x->id[0] && !x->tty) /* a terminal's session: once crun sent it */
        agent_write_frame(r, 4, x->id, strlen(x->id));
    return 0;
}

void agent_exec(struct agent *a, const char *ref, json_t *body, struct agent_reply *r)
{
    struct serr err = {0};
    if (exec_start(a, ref, body, r, &err) < 0)
        r->fail(r, &err);
}

bool agent_has_container(struct agent *a, const char *ref)
{
    return ctr_lookup(a, ref) != NULL;
}

/* ---- input of a session ---- */

static struct exec_cmd *session_find(struct agent *a, const char *id)
{
    for (struct exec_cmd *x = a->execs; x; x = x->next)
        if (strcmp(x->id, id) == 0)
            return x;
    return NULL;
}

void session_ended(struct agent *a, const char *id, int64_t exit_code)
{
    struct ended_session *e = &a->ended[a->ended_next++ % (sizeof(a->ended) / sizeof(a->ended[0]))];
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->exit_code = exit_code;
}

json_t *agent_exec_inspect(struct agent *a, const char *id, struct serr *err)
{
    bool running = session_find(a, id) != NULL;
    for (struct ctr *c = a->ctrs; c && !running; c = c->next)
        running = c->session[0] && strcmp(c->session, id) == 0 && c->phase == PH_RUNNING;
    if (running)
        return json_pack("{s:s, s:b, s:n}", "id", id, "running", true, "exit_code");
    for (size_t i = 0; id[0] && i < sizeof(a->ended) / sizeof(a->ended[0]); i++)
        if (strcmp(a->ended[i].id, id) == 0)
            return json_pack("{s:s, s:b, s:I}", "id", id, "running", false, "exit_code",
                             (json_int_t)a->ended[i].exit_code);
    serr_set(err, SERR_NOT_FOUND, "No such exec session: %s", id);
    return NULL;
}

int agent_write_input(uv_stream_t *to, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    if (to == NULL)
        return -1;
    uv_write_t *w = xmalloc(sizeof(*w));
    w->data = xmalloc(len);
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(w, to, &b, 1, input_written) < 0) {
        free(w->data);
        free(w);
        return -1;
    }
    return 0;
}

int agent_exec_input(struct agent *a, const char *id, const char *data, size_t len, bool close,
                     struct serr *err)
{
    struct exec_cmd *x = session_find(a, id);
    if (x == NULL)
        return run_session_input(a, id, data, len, close, err);
    uv_stream_t *to = x->tty ? (x->term_open ? (uv_stream_t *)&x->term : NULL)
                             : (x->in_closed ? NULL : (uv_stream_t *)&x->in);
    if (agent_write_input(to, data, len) < 0)
        return serr_set(err, SERR_CONFLICT, "exec session %s takes no more input", id);
    if (close && !x->tty && !x->in_closed)
        close_input(x); /* after the writes queued before */
    return 0;
}

int agent_exec_resize(struct agent *a, const char *id, int rows, int cols, struct serr *err)
{
    struct exec_cmd *x = session_find(a, id);
    if (x == NULL)
        return run_session_resize(a, id, rows, cols, err);
    if (rows <= 0 || cols <= 0 || rows > TERM_MAX_SIZE || cols > TERM_MAX_SIZE)
        return serr_set(err, SERR_INVALID, "rows, cols: out of range");
    x->rows = rows;
    x->cols = cols;
    uv_os_fd_t fd;
    if (x->term_open && uv_fileno((uv_handle_t *)&x->term, &fd) == 0)
        runtime_term_set_size(fd, rows, cols);
    return 0;
}
