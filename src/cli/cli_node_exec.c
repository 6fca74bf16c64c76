/* shoal node exec | cp: commands and files on the hosts of a set of nodes,
 * targeted as Salt does (a glob, -E, -L, -G, --managers, --workers). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "cli/cli.h"
#include "base/base64.h"

#define TARGET_OPTIONS                                                                             \
    "Target (one of each may be combined; default: all nodes):\n"                                \
    "  GLOB                      Hostnames matching a shell glob ('node*')\n"                     \
    "  -E, --regex REGEX         Hostnames matching an extended regular expression\n"             \
    "                            (whole name: -E 'node-[1-4]')\n"                                  \
    "  -L, --list A,B,C          These nodes (hostnames or ids)\n"                                \
    "  -G, --label KEY[=VALUE]   Nodes with this label (shoal node update --label-add)\n"         \
    "      --managers            Managers only\n"                                                 \
    "      --workers             Workers only\n"

const char cli_node_exec_usage[] =
    "Usage:  shoal node exec [TARGET] [OPTIONS] -- COMMAND [ARG...]\n\n"
    "Run a command on the hosts of a set of nodes, in parallel (as root, not in a container;\n"
    "stdout and stderr merged; the environment has SHOAL_NODE=<hostname>)\n\n" TARGET_OPTIONS
    "\nOptions:\n"
    "      --timeout SECS        Kill the command (its process group) after SECS (default 60)\n"
    "      --group               Print each node's output as a block (default: lines\n"
    "                            prefixed with 'NODE: ')\n\n"
    "Output is kept up to 1 MiB per node. Exits 1 when the command failed on any node.\n";

const char cli_node_cp_usage[] =
    "Usage:  shoal node cp FILE [TARGET] [OPTIONS] DEST\n\n"
    "Copy a file (at most 512 KiB; its mode is kept) to the hosts of a set of nodes.\n"
    "DEST is an absolute path; a directory (or a path ending with '/') receives the file\n"
    "under its own name.\n\n" TARGET_OPTIONS;

/* ---- command lines ---- */

static int add_list(json_t *target, const char *arg, struct serr *err)
{
    json_t *list = json_object_get(target, "list");
    if (list == NULL)
        json_object_set_new(target, "list", list = json_array());
    char *copy = xstrdup(arg);
    char *save = NULL;
    for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save))
        json_array_append_new(list, json_string(name));
    free(copy);
    if (json_array_size(list) == 0)
        return serr_set(err, SERR_INVALID, "-L wants node names: A,B,C");
    return 0;
}

static int set_once(json_t *target, const char *key, const char *flag, const char *value,
                    struct serr *err)
{
    if (json_object_get(target, key))
        return serr_set(err, SERR_INVALID, "%s is given twice", flag);
    if (value[0] == '\0')
        return serr_set(err, SERR_INVALID, "%s wants a value", flag);
    json_object_set_new(target, key, json_string(value));
    return 0;
}

/* Options and positionals (at most `max`, in pos[]) of exec and cp. */
static int parse_target(int argc, char **argv, json_t *target, const char **pos, int max,
                        int *npos, json_t *body, bool *group, struct serr *err)
{
    static const struct option opts[] = {
        {"regex", required_argument, NULL, 'E'},  {"list", required_argument, NULL, 'L'},
        {"label", required_argument, NULL, 'G'},  {"managers", no_argument, NULL, 'M'},
        {"workers", no_argument, NULL, 'W'},      {"timeout", required_argument, NULL, 't'},
        {"group", no_argument, NULL, 'g'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    int opt, rc = 0;
    *npos = 0;
    while (rc == 0) {
        opt = cli_getopt(argc, argv, "hE:L:G:", opts, err);
        if (opt == -1) {
            if (optind >= argc)
                break;
            if (*npos == max)
                return serr_set(err, SERR_INVALID, "too many arguments ('%s')", argv[optind]);
            pos[(*npos)++] = argv[optind++];
            continue;
        }
        if (opt == '?')
            rc = -1;
        else if (opt == 'h')
            rc = 1;
        else if (opt == 'E')
            rc = set_once(target, "regex", "-E", optarg, err);
        else if (opt == 'L')
            rc = add_list(target, optarg, err);
        else if (opt == 'G')
            rc = set_once(target, "label", "-G", optarg, err);
        else if (opt == 'M' || opt == 'W')
            rc = set_once(target, "role", "--managers/--workers", opt == 'M' ? "manager" : "worker",
                          err);
        else if (opt == 't' && group) {
            int64_t secs;
            rc = cli_parse_uint("--timeout", optarg, 86400, &secs, err);
            if (rc == 0 && secs == 0)
                rc = serr_set(err, SERR_INVALID, "--timeout: at least 1 second");
            if (rc == 0)
                json_object_set_new(body, "timeout", json_integer(secs));
        } else if (opt == 'g' && group)
            *group = true;
        else
            rc = serr_set(err, SERR_INVALID, "unknown flag: %s", argv[optind - 1]);
    }
    return rc;
}

int cli_build_node_exec(int argc, char **argv, json_t **body, bool *group, struct serr *err)
{
    int dashes = 1;
    while (dashes < argc && strcmp(argv[dashes], "--") != 0)
        dashes++;
    json_t *b = json_object(), *target = json_object();
    json_object_set_new(b, "target", target);
    const char *glob = NULL;
    int npos;
    *group = false;
    int rc = parse_target(dashes, argv, target, &glob, 1, &npos, b, group, err);
    if (rc == 0 && dashes + 1 >= argc)
        rc = serr_set(err, SERR_INVALID, "the command is missing: shoal node exec [TARGET] -- "
                                         "COMMAND [ARG...]");
    if (rc == 0 && glob)
        rc = set_once(target, "glob", "GLOB", glob, err);
    if (rc != 0) {
        json_decref(b);
        return rc;
    }
    json_t *cmd = json_array();
    json_object_set_new(b, "argv", cmd);
    for (int i = dashes + 1; i < argc; i++) {
        json_t *arg = json_string(argv[i]);
        if (arg == NULL) {
            json_decref(b);
            return serr_set(err, SERR_INVALID, "the command's arguments must be UTF-8 text");
        }
        json_array_append_new(cmd, arg);
    }
    *body = b;
    return 0;
}

int cli_build_node_cp(int argc, char **argv, json_t **body, const char **file, struct serr *err)
{
    json_t *b = json_object(), *target = json_object();
    json_object_set_new(b, "target", target);
    const char *pos[3] = {0};
    int npos;
    int rc = parse_target(argc, argv, target, pos, 3, &npos, b, NULL, err);
    if (rc == 0 && npos < 2)
        rc = serr_set(err, SERR_INVALID, "requires FILE [TARGET] DEST");
    const char *dest = npos >= 2 ? pos[npos - 1] : NULL;
    if (rc == 0 && dest[0] != '/')
        rc = serr_set(err, SERR_INVALID, "DEST must be an absolute path, not '%s'", dest);
    if (rc == 0 && npos == 3)
        rc = set_once(target, "glob", "GLOB", pos[1], err);
    if (rc != 0) {
        json_decref(b);
        return rc;
    }
    const char *slash = strrchr(pos[0], '/');
    json_t *spec = json_pack("{s:s, s:s}", "path", dest, "name", slash ? slash + 1 : pos[0]);
    if (spec == NULL || (slash && slash[1] == '\0')) {
        json_decref(spec);
        json_decref(b);
        return serr_set(err, SERR_INVALID, "FILE must name a file and DEST be UTF-8 text");
    }
    json_object_set_new(b, "file", spec);
    *file = pos[0];
    *body = b;
    return 0;
}

/* ---- results ---- */

static void print_output(const char *node, const char *out, size_t len, bool group)
{
    if (group) {
        printf("%s:\n", node);
        node = NULL;
    }
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(out + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (out + i)) : len - i;
        if (group)
            printf("    %.*s\n", (int)n, out + i);
        else
            printf("%s: %.*s\n", node, (int)n, out + i);
        i += n + 1;
    }
}

/* Why a node failed ("exit 1", "timed out", "refused"), or NULL when it did not. */
static char *failure_of(json_t *r, bool cp)
{
    const char *error = json_string_value(json_object_get(r, "error"));
    if (json_is_true(json_object_get(r, "refused")))
        return xstrdup("refused");
    if (error)
        return xstrdup("error");
    if (cp)
        return NULL;
    if (json_is_true(json_object_get(r, "timed_out")))
        return xstrdup("timed out");
    int64_t code = cli_int(r, "exit_code");
    return code == 0 ? NULL : xasprintf("exit %lld", (long long)code);
}

static void print_node(json_t *r, bool cp, bool group)
{
    const char *node = cli_str(r, "node");
    const char *error = json_string_value(json_object_get(r, "error"));
    if (error) {
        fprintf(stderr, "%s: error: %s\n", node, error);
        return;
    }
    if (cp) {
        printf("%s: %s (%lld bytes, mode %04llo)\n", node, cli_str(r, "path"),
               (long long)cli_int(r, "size"), (unsigned long long)cli_int(r, "mode"));
        return;
    }
    size_t len = 0;
    unsigned char *out = base64_decode(cli_str(r, "output"), &len);
    print_output(node, (const char *)out, out ? len : 0, group);
    free(out);
    if (json_is_true(json_object_get(r, "truncated")))
        printf("%s: [output truncated at 1 MiB]\n", node);
    if (json_is_true(json_object_get(r, "timed_out")))
        fprintf(stderr, "%s: timed out: the command's process group was killed\n", node);
    else if (cli_int(r, "exit_code") != 0)
        fprintf(stderr, "%s: exit %lld\n", node, (long long)cli_int(r, "exit_code"));
}

/* "3 nodes: 2 ok, 1 failed (node-3: exit 1)"; returns the failures. */
static int print_summary(json_t *nodes, bool cp)
{
    size_t i, total = json_array_size(nodes);
    json_t *r;
    int failed = 0;
    char *why = NULL;
    size_t why_len = 0, why_cap = 0;
    json_array_foreach(nodes, i, r)
    {
        char *f = failure_of(r, cp);
        if (f == NULL)
            continue;
        char *item = xasprintf("%s%s: %s", failed ? ", " : "", cli_str(r, "node"), f);
        buf_append(&why, &why_len, &why_cap, item, strlen(item));
        free(item);
        free(f);
        failed++;
    }
    printf("%zu node%s: %zu ok", total, total == 1 ? "" : "s", total - (size_t)failed);
    if (failed)
        printf(", %d failed (%.*s)", failed, (int)why_len, why);
    printf("\n");
    free(why);
    return failed;
}

static int run_and_print(struct cli *cli, const char *path, json_t *body, bool cp, bool group)
{
    struct serr err;
    json_t *answer;
    if (cli_call(cli, "POST", path, body, &answer, &err) < 0)
        return cli_fail(&err);
    json_t *nodes = json_object_get(answer, "nodes");
    size_t i;
    json_t *r;
    json_array_foreach(nodes, i, r) print_node(r, cp, group);
    fflush(stderr);
    int failed = print_summary(nodes, cp);
    json_decref(answer);
    return failed ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_node_exec(struct cli *cli, int argc, char **argv)
{
    json_t *body;
    bool group;
    struct serr err;
    int rc = cli_build_node_exec(argc, argv, &body, &group, &err);
    if (rc == 1)
        return cli_help(cli_node_exec_usage);
    if (rc < 0)
        return cli_usage_error("node exec", "%s", err.msg);
    rc = run_and_print(cli, "/v1/nodes/exec", body, false, group);
    json_decref(body);
    return rc;
}

/* The file's bytes (at most 512 KiB) as base64, and its mode, into body.file. */
static int attach_file(json_t *body, const char *file, struct serr *err)
{
    struct stat st;
    if (stat(file, &st) < 0)
        return serr_errno(err, "%s", file);
    if (!S_ISREG(st.st_mode))
        return serr_set(err, SERR_INVALID, "%s is not a regular file", file);
    if (st.st_size > 512 * 1024)
        return serr_set(err, SERR_INVALID, "%s is larger than 512 KiB, the most node cp copies",
                        file);
    char *data;
    size_t len;
    if (read_file(file, &data, &len, err) < 0)
        return -1;
    char *b64 = base64_encode((const unsigned char *)data, len);
    free(data);
    json_t *f = json_object_get(body, "file");
    json_object_set_new(f, "data", json_string(b64));
    json_object_set_new(f, "mode", json_integer(st.st_mode & 07777));
    free(b64);
    return 0;
}

int cli_node_cp(struct cli *cli, int argc, char **argv)
{
    json_t *body;
    const char *file;
    struct serr err;
    int rc = cli_build_node_cp(argc, argv, &body, &file, &err);
    if (rc == 1)
        return cli_help(cli_node_cp_usage);
    if (rc < 0)
        return cli_usage_error("node cp", "%s", err.msg);
    if (attach_file(body, file, &err) < 0) {
        json_decref(body);
        return cli_fail(&err);
    }
    rc = run_and_print(cli, "/v1/nodes/cp", body, true, false);
    json_decref(body);
    return rc;
}
