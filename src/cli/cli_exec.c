/* shoal exec: a command in a running container or task (of any node when
 * asked of a manager); its output and exit code as the command's own. With
 * -i or -t it is a session: the answer's first frame names it, and a thread
 * sends stdin and the terminal's size as other requests (docs/api.md). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"
#include "http/http.h"

static const char exec_usage[] =
    "Usage:  shoal exec [OPTIONS] CONTAINER|TASK COMMAND [ARG...]\n\n"
    "Execute a command in a running container (the CLI exits with its exit code)\n\n"
    "Options:\n"
    "  -e, --env KEY=VALUE   Set an environment variable (repeatable)\n"
    "  -i, --interactive     Send stdin to the command\n"
    "  -t, --tty             Allocate a pseudo-TTY (the local terminal in raw mode)\n"
    "  -u, --user USER[:GROUP]  Run as this user (name or number)\n"
    "  -w, --workdir DIR     Working directory inside the container\n";

/* Exit code when the command's own could not be had (as docker exec). */
#define EXEC_EXIT_NO_CODE 126

/* Frames of the answer (docs/api.md): 8-byte headers, then payloads. */
struct session;

struct frames {
    struct session *session; /* NULL: no -i nor -t */
    unsigned char head[8];
    size_t head_len;
    size_t left; /* payload bytes still to come */
    int stream;
    char text[128]; /* the payload of a frame 3 or 4 */
    size_t text_len;
    int code;
    bool have_code;
};

static void session_start(struct session *s, const char *id, size_t len);

/* Stdout and stderr pass on as they come; the exit code (3) and the
 * session's id (4) once their frame is whole. */
static void payload(struct frames *f, const char *data, size_t n)
{
    if (f->stream == 1)
        fwrite(data, 1, n, stdout);
    else if (f->stream == 2)
        fwrite(data, 1, n, stderr);
    else if (f->text_len + n < sizeof(f->text)) {
        memcpy(f->text + f->text_len, data, n);
        f->text_len += n;
    }
}

static void frame_done(struct frames *f)
{
    f->text[f->text_len] = '\0';
    if (f->stream == 3) {
        f->code = atoi(f->text);
        f->have_code = true;
    } else if (f->stream == 4 && f->session) {
        session_start(f->session, f->text, f->text_len);
    }
    f->text_len = 0;
}

static int on_frames(const char *data, size_t len, void *arg)
{
    struct frames *f = arg;
    while (len > 0) {
        if (f->left == 0 && f->head_len < 8) {
            f->head[f->head_len++] = (unsigned char)*data++;
            len--;
            if (f->head_len == 8) {
                f->stream = f->head[0];
                f->left = (size_t)f->head[4] << 24 | (size_t)f->head[5] << 16 |
                          (size_t)f->head[6] << 8 | f->head[7];
                f->head_len = f->left ? 8 : 0;
                if (f->left == 0)
                    frame_done(f);
            }
            continue;
        }
        size_t n = len < f->left ? len : f->left;
        payload(f, data, n);
        data += n;
        len -= n;
        if ((f->left -= n) == 0) {
            f->head_len = 0;
            frame_done(f);
        }
    }
    fflush(stdout);
    return 0;
}

static int parse_exec(int argc, char **argv, json_t *req, bool *interactive, bool *tty,
                      struct serr *err)
{
    static const struct option longopts[] = {
        {"env", required_argument, NULL, 'e'},   {"interactive", no_argument, NULL, 'i'},
        {"tty", no_argument, NULL, 't'},         {"user", required_argument, NULL, 'u'},
        {"workdir", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    json_t *env = json_array();
    json_object_set_new(req, "env", env);
    int opt;
    optind = 0;
    while ((opt = cli_getopt(argc, argv, "e:itu:w:h", longopts, err)) != -1) {
        switch (opt) {
        case 'e':
            if (strchr(optarg, '=') == NULL || optarg[0] == '=')
                return serr_set(err, SERR_INVALID, "invalid env \"%s\": expected KEY=VALUE",
                                optarg);
            json_array_append_new(env, json_string(optarg));
            break;
        case 'i':
            *interactive = true;
            break;
        case 't':
            *tty = true;
            break;
        case 'u':
            json_object_set_new(req, "user", json_string(optarg));
            break;
        case 'w':
            json_object_set_new(req, "workdir", json_string(optarg));
            break;
        case 'h':
            return 1;
        default:
            return -1;
        }
    }
    if (argc - optind < 2)
        return serr_set(err, SERR_INVALID, "requires a container and a command");
    json_t *cmd = json_array();
    for (int i = optind + 1; i < argc; i++)
        json_array_append_new(cmd, json_string(argv[i]));
    json_object_set_new(req, "cmd", cmd);
    return 0;
}

/* ---- a session: stdin and the terminal's size, sent by a thread ---- */

struct session {
    const char *host, *tls_dir;
    bool interactive, tty;
    bool detach_keys; /* attach: ctrl-p ctrl-q leaves, the container runs on */
    bool saw_ctrl_p;
    char id[128];
    pthread_t thread;
    bool started;
    volatile sig_atomic_t stop; /* the command ended: the thread returns */
};

static volatile sig_atomic_t window_changed;
static struct termios saved_termios;
static bool raw_mode;

static void on_winch(int sig)
{
    (void)sig;
    window_changed = 1;
}

static void terminal_restore(void)
{
    if (raw_mode)
        tcsetattr(0, TCSAFLUSH, &saved_termios);
    raw_mode = false;
}

/* The local terminal passes every key on (Ctrl-C to the container's tty). */
static void terminal_raw(void)
{
    if (!isatty(0) || tcgetattr(0, &saved_termios) < 0)
        return;
    struct termios t = saved_termios;
    cfmakeraw(&t);
    if (tcsetattr(0, TCSANOW, &t) == 0) { /* keeps what was typed ahead */
        raw_mode = true;
        atexit(terminal_restore);
    }
}

static bool window_size(int *rows, int *cols)
{
    struct winsize ws;
    if ((ioctl(1, TIOCGWINSZ, &ws) < 0 && ioctl(0, TIOCGWINSZ, &ws) < 0) || ws.ws_row == 0)
        return false;
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return true;
}

static int session_post(struct session *s, struct http_client **c, const char *what,
                        const char *query, const char *data, size_t len)
{
    struct serr err;
    if (*c == NULL && (*c = http_client_open_tls(s->host, s->tls_dir, &err)) == NULL)
        return -1;
    char *path = xasprintf("/v1/exec/%s/%s%s%s", s->id, what, query[0] ? "?" : "", query);
    struct http_response resp = {0};
    int rc = http_request(*c, "POST", path, "application/octet-stream", data, len, &resp, &err);
    free(path);
    free(resp.body);
    return rc < 0 || resp.status / 100 != 2 ? -1 : 0;
}

static void send_size(struct session *s, struct http_client **c)
{
    int rows, cols;
    window_changed = 0;
    if (!window_size(&rows, &cols))
        return;
    char q[48];
    snprintf(q, sizeof(q), "h=%d&w=%d", rows, cols);
    session_post(s, c, "resize", q, NULL, 0);
}

#define CTRL_P 0x10
#define CTRL_Q 0x11

/* Sends stdin's bytes but Docker's detach keys (ctrl-p ctrl-q): those end
 * the CLI at once (exit 0), the container running on. -1: no more input. */
static int send_typed(struct session *s, struct http_client **c, const char *buf, size_t len)
{
    if (!s->detach_keys)
        return session_post(s, c, "input", "", buf, len);
    char *out = xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s->saw_ctrl_p) {
            s->saw_ctrl_p = false;
            if (buf[i] == CTRL_Q) {
                session_post(s, c, "input", "", out, n);
                terminal_restore();
                fflush(stdout);
                _exit(0);
            }
            out[n++] = CTRL_P;
        }
        if (buf[i] == CTRL_P)
            s->saw_ctrl_p = true;
        else
            out[n++] = buf[i];
    }
    int rc = n ? session_post(s, c, "input", "", out, n) : 0;
    free(out);
    return rc;
}

/* Until stdin ends (then, without a terminal, the command's stdin ends
 * too) or the session is gone; the process exits with the command. */
static void *session_main(void *arg)
{
    struct session *s = arg;
    struct http_client *c = NULL;
    bool reading = s->interactive;
    char buf[4096];
    while (!s->stop) {
        if (s->tty && window_changed)
            send_size(s, &c);
        struct pollfd p = {.fd = 0, .events = POLLIN};
        int n = poll(&p, reading ? 1 : 0, 200);
        if (n <= 0)
            continue;
        ssize_t got = read(0, buf, sizeof(buf));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            reading = false;
            if (!s->tty)
                session_post(s, &c, "input", "close=1", NULL, 0);
            continue;
        }
        if (send_typed(s, &c, buf, (size_t)got) < 0)
            reading = false; /* the command ended or takes no input */
    }
    if (c)
        http_client_close(c);
    return NULL;
}

static void session_start(struct session *s, const char *id, size_t len)
{
    if (s->started || len == 0 || len >= sizeof(s->id))
        return;
    memcpy(s->id, id, len);
    s->id[len] = '\0';
    s->started = pthread_create(&s->thread, NULL, session_main, s) == 0;
}

static void session_end(struct session *s)
{
    if (!s->started)
        return;
    s->stop = 1;
    pthread_join(s->thread, NULL);
    s->started = false;
}

static int session_stream(struct cli *cli, const char *path, json_t *req, bool interactive,
                          bool tty, bool attach, int *code, struct serr *err)
{
    struct session s = {.host = cli->host, .tls_dir = cli->tls_dir, .interactive = interactive,
                        .tty = tty, .detach_keys = attach && tty && interactive};
    window_changed = attach && tty; /* its terminal takes this one's size */
    struct frames f = {.session = interactive || tty ? &s : NULL};
    json_object_set_new(req, "interactive", json_boolean(interactive));
    json_object_set_new(req, "tty", json_boolean(tty));
    int rows, cols;
    if (tty && window_size(&rows, &cols)) {
        json_object_set_new(req, "rows", json_integer(rows));
        json_object_set_new(req, "cols", json_integer(cols));
    }
    if (tty) {
        signal(SIGWINCH, on_winch);
        if (interactive)
            terminal_raw();
    }
    int rc = cli_stream(cli, "POST", path, req, on_frames, &f, err);
    session_end(&s);
    fflush(stdout);
    terminal_restore();
    if (tty)
        signal(SIGWINCH, SIG_DFL);
    if (rc < 0)
        return -1;
    *code = f.code;
    return f.have_code ? 0 : 1;
}

int cli_session_stream(struct cli *cli, const char *path, json_t *req, bool interactive,
                       bool tty, int *code, struct serr *err)
{
    return session_stream(cli, path, req, interactive, tty, false, code, err);
}

int cli_exec_run(struct cli *cli, const char *target, json_t *req, bool interactive, bool tty)
{
    struct serr err;
    char *path = xasprintf("/v1/containers/%s/exec", target);
    int code;
    int rc = cli_session_stream(cli, path, req, interactive, tty, &code, &err);
    free(path);
    if (rc < 0)
        return cli_fail(&err);
    if (rc > 0) {
        cli_error("the command's exit code was not received");
        return EXEC_EXIT_NO_CODE;
    }
    return code;
}

int cli_exec(struct cli *cli, int argc, char **argv)
{
    json_t *req = json_object();
    bool interactive = false, tty = false;
    struct serr err;
    int rc = parse_exec(argc, argv, req, &interactive, &tty, &err);
    if (rc != 0) {
        json_decref(req);
        return rc == 1 ? cli_help(exec_usage) : cli_usage_error("exec", "%s", err.msg);
    }
    rc = cli_exec_run(cli, argv[optind], req, interactive, tty);
    json_decref(req);
    return rc;
}

/* ---- attach ---- */

static const char attach_usage[] =
    "Usage:  shoal attach [OPTIONS] CONTAINER\n\n"
    "Attach local standard input, output, and error streams to a running container\n"
    "(detach with ctrl-p ctrl-q when it has a terminal)\n\n"
    "Options:\n"
    "      --no-stdin   Do not attach STDIN\n";

int cli_attach(struct cli *cli, int argc, char **argv)
{
    bool no_stdin = false;
    const char *ref = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return cli_help(attach_usage);
        else if (strcmp(argv[i], "--no-stdin") == 0)
            no_stdin = true;
        else if (argv[i][0] == '-')
            return cli_usage_error("attach", "unknown flag: %s", argv[i]);
        else if (ref == NULL)
            ref = argv[i];
        else
            return cli_usage_error("attach", "\"attach\" requires exactly 1 argument.");
    }
    if (ref == NULL)
        return cli_usage_error("attach", "\"attach\" requires exactly 1 argument.");
    struct serr err = {0};
    char *path = cli_path("/v1/containers/%s/json", ref);
    json_t *ctr = NULL;
    int rc = cli_call(cli, "GET", path, NULL, &ctr, &err);
    free(path);
    if (rc < 0)
        return cli_fail(&err);
    bool tty = json_is_true(json_object_get(ctr, "tty"));
    bool interactive = !no_stdin && json_is_true(json_object_get(ctr, "interactive"));
    json_decref(ctr);
    json_t *req = json_object();
    path = cli_path("/v1/containers/%s/attach", ref);
    int code;
    rc = session_stream(cli, path, req, interactive, tty, true, &code, &err);
    free(path);
    json_decref(req);
    if (rc < 0)
        return cli_fail(&err);
    return rc > 0 ? EXEC_EXIT_NO_CODE : code;
}
