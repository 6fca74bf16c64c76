/* shoal exec: a command in a running container or task of the node the
 * CLI talks to; its output and exit code as the command's own. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/util.h"
#include "cli/cli.h"

static const char exec_usage[] =
    "Usage:  shoal exec [OPTIONS] CONTAINER|TASK COMMAND [ARG...]\n\n"
    "Execute a command in a running container (the CLI exits with its exit code)\n\n"
    "Options:\n"
    "  -e, --env KEY=VALUE   Set an environment variable (repeatable)\n"
    "  -i, --interactive     Send stdin to the command (read to its end first)\n"
    "  -t, --tty             Allocate a pseudo-TTY (not supported yet)\n"
    "  -u, --user UID[:GID]  Run as this user (numbers)\n"
    "  -w, --workdir DIR     Working directory inside the container\n";

/* Exit code when the command's own could not be had (as docker exec). */
#define EXEC_EXIT_NO_CODE 126

static char *read_all_stdin(size_t *len)
{
    size_t cap = 65536;
    char *buf = xmalloc(cap);
    *len = 0;
    ssize_t n;
    while ((n = read(0, buf + *len, cap - *len)) > 0) {
        *len += (size_t)n;
        if (*len == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    return buf;
}

/* Frames of the answer (docs/api.md): 8-byte headers, then payloads. */
struct frames {
    unsigned char head[8];
    size_t head_len;
    size_t left; /* payload bytes still to come */
    int stream;
    char code[24];
    size_t code_len;
    bool have_code;
};

static void payload(struct frames *f, const char *data, size_t n)
{
    if (f->stream == 1)
        fwrite(data, 1, n, stdout);
    else if (f->stream == 2)
        fwrite(data, 1, n, stderr);
    else if (f->stream == 3 && f->code_len + n < sizeof(f->code)) {
        memcpy(f->code + f->code_len, data, n);
        f->code_len += n;
        f->code[f->code_len] = '\0';
        f->have_code = true;
    }
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
            }
            continue;
        }
        size_t n = len < f->left ? len : f->left;
        payload(f, data, n);
        data += n;
        len -= n;
        if ((f->left -= n) == 0)
            f->head_len = 0;
    }
    fflush(stdout);
    return 0;
}

static int parse_exec(int argc, char **argv, json_t *req, bool *interactive, struct serr *err)
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
            return serr_set(err, SERR_INVALID, "-t: a TTY is not supported yet");
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

int cli_exec(struct cli *cli, int argc, char **argv)
{
    json_t *req = json_object();
    bool interactive = false;
    struct serr err;
    int rc = parse_exec(argc, argv, req, &interactive, &err);
    if (rc != 0) {
        json_decref(req);
        return rc == 1 ? cli_help(exec_usage) : cli_usage_error("exec", "%s", err.msg);
    }
    if (interactive) {
        size_t len;
        char *in = read_all_stdin(&len);
        char *b64 = base64_encode((unsigned char *)in, len);
        json_object_set_new(req, "stdin", json_string(b64));
        free(b64);
        free(in);
    }
    char *path = xasprintf("/v1/containers/%s/exec", argv[optind]);
    struct frames f = {0};
    rc = cli_stream(cli, "POST", path, req, on_frames, &f, &err);
    free(path);
    json_decref(req);
    fflush(stdout);
    if (rc < 0)
        return cli_fail(&err);
    if (!f.have_code) {
        cli_error("the command's exit code was not received");
        return EXEC_EXIT_NO_CODE;
    }
    return atoi(f.code);
}
