/* `shoal exec`: a command in a running container of this node, its stdin
 * given with the request, its stdout and stderr streamed back in frames
 * (agent.h: agent_exec), then its exit code. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/reply.h"
#include "agent/runtime.h"
#include "base/base64.h"
#include "base/util.h"

struct exec_cmd {
    struct agent_reply *out; /* NULL once the client left */
    char *files;             /* path prefix of FILES.process.json */
    uv_process_t proc;
    uv_pipe_t in, pipes[2];  /* stdin; stdout, stderr */
    uv_write_t write_req;
    unsigned char *input;    /* stdin's bytes, written then closed */
    size_t input_len;
    int open_handles;
    int open_outputs;
    bool exited;
    int64_t exit_code;
};

/* A frame as Docker's: the stream (1 stdout, 2 stderr, 3 the exit code as
 * decimal text), three zero bytes, the payload's length big-endian. */
static void write_frame(struct agent_reply *out, int stream, const char *data, size_t len)
{
    unsigned char head[8] = {(unsigned char)stream, 0, 0, 0, (unsigned char)(len >> 24),
                             (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                             (unsigned char)len};
    out->stream_write(out, (const char *)head, sizeof(head));
    if (len)
        out->stream_write(out, data, len);
}

static void cmd_closed(uv_handle_t *h)
{
    struct exec_cmd *x = h->data;
    if (--x->open_handles > 0)
        return;
    char *path = xasprintf("%s.process.json", x->files);
    unlink(path);
    free(path);
    free(x->files);
    free(x->input);
    free(x);
}

static void close_handle(struct exec_cmd *x, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, cmd_closed);
}

/* The command exited and its output was read to the end: the exit code
 * ends the stream; then every handle closes. */
static void maybe_finish(struct exec_cmd *x)
{
    if (!x->exited || x->open_outputs > 0)
        return;
    if (x->out) {
        char code[24];
        int n = snprintf(code, sizeof(code), "%lld", (long long)x->exit_code);
        write_frame(x->out, 3, code, (size_t)n);
        x->out->gone = NULL;
        x->out->stream_end(x->out);
        x->out = NULL;
    }
    close_handle(x, (uv_handle_t *)&x->in);
    close_handle(x, (uv_handle_t *)&x->pipes[0]);
    close_handle(x, (uv_handle_t *)&x->pipes[1]);
    close_handle(x, (uv_handle_t *)&x->proc);
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
    int stream = s == (uv_stream_t *)&x->pipes[0] ? 1 : 2;
    if (n > 0 && x->out)
        write_frame(x->out, stream, buf->base, (size_t)n);
    free(buf->base);
    if (n < 0) {
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
    maybe_finish(x);
}

static void input_written(uv_write_t *w, int status)
{
    (void)status;
    struct exec_cmd *x = w->data;
    close_handle(x, (uv_handle_t *)&x->in); /* EOF for the command */
}

/* The client left: the command is killed; its end frees everything. */
static void client_gone(struct agent_reply *r)
{
    struct exec_cmd *x = r->agent_data;
    x->out = NULL;
    if (!x->exited)
        uv_process_kill(&x->proc, SIGKILL);
}

static int spawn_cmd(struct agent *a, struct exec_cmd *x, char **argv, struct serr *err)
{
    uv_loop_t *loop = a->env->loop;
    uv_pipe_init(loop, &x->in, 0);
    uv_pipe_init(loop, &x->pipes[0], 0);
    uv_pipe_init(loop, &x->pipes[1], 0);
    x->in.data = x->pipes[0].data = x->pipes[1].data = x->proc.data = x;
    x->open_handles = 3;
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
    if (x->input_len == 0) {
        close_handle(x, (uv_handle_t *)&x->in);
    } else {
        uv_buf_t b = uv_buf_init((char *)x->input, (unsigned)x->input_len);
        x->write_req.data = x;
        uv_write(&x->write_req, (uv_stream_t *)&x->in, &b, 1, input_written);
    }
    return 0;
}

/* The request's {cmd: [...], env, user, workdir, stdin (base64)}. */
static int read_request(json_t *body, const char ***argv, unsigned char **input, size_t *input_len,
                        struct serr *err)
{
    json_t *cmd = json_object_get(body, "cmd");
    json_t *env = json_object_get(body, "env");
    const char *in = json_string_value(json_object_get(body, "stdin"));
    if (!json_is_array(cmd) || json_array_size(cmd) == 0 || (env && !json_is_array(env)))
        return serr_set(err, SERR_INVALID, "expected {cmd: [...], env, user, workdir, stdin}");
    *input = NULL;
    *input_len = 0;
    if (in && in[0] && (*input = base64_decode(in, input_len)) == NULL)
        return serr_set(err, SERR_INVALID, "stdin: invalid base64");
    size_t n = json_array_size(cmd);
    *argv = xcalloc(n + 1, sizeof(**argv));
    for (size_t i = 0; i < n; i++) {
        (*argv)[i] = json_string_value(json_array_get(cmd, i));
        if ((*argv)[i] == NULL) {
            free(*argv);
            free(*input);
            return serr_set(err, SERR_INVALID, "cmd: expected strings");
        }
    }
    return 0;
}

static int exec_start(struct agent *a, const char *ref, json_t *body, struct agent_reply *r,
                      struct serr *err)
{
    struct ctr *c = ctr_find(a, ref);
    if (c == NULL)
        return serr_set(err, SERR_NOT_FOUND, "No such container: %s", ref);
    if (c->phase != PH_RUNNING)
        return serr_set(err, SERR_CONFLICT, "container %s is not running", ref);
    const char **argv = NULL;
    unsigned char *input = NULL;
    size_t input_len = 0;
    if (read_request(body, &argv, &input, &input_len, err) < 0)
        return -1;
    static unsigned counter;
    char *dir = agent_run_path(a->env, "exec");
    char *files = xasprintf("%s/%s-%u", dir, c->id, ++counter);
    struct runtime_exec_opts o = {
        .argv = argv,
        .user = json_string_value(json_object_get(body, "user")),
        .cwd = json_string_value(json_object_get(body, "workdir")),
        .env = json_object_get(body, "env"),
    };
    char **crun = NULL;
    if (mkdir_p(dir, 0700, err) == 0)
        crun = runtime_exec_prepare(a->env->rt, c->id, &o, files, err);
    free(dir);
    free(argv);
    if (crun == NULL) {
        free(files);
        free(input);
        return -1;
    }
    struct exec_cmd *x = xcalloc(1, sizeof(*x));
    x->files = files;
    x->input = input;
    x->input_len = input_len;
    int rc = spawn_cmd(a, x, crun, err);
    runtime_exec_argv_free(crun);
    if (rc < 0)
        return -1;
    x->out = r;
    r->agent_data = x;
    r->gone = client_gone;
    r->stream_start(r, "application/vnd.shoal.raw-stream");
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
    return ctr_find(a, ref) != NULL;
}
