/* `shoal dev`: the command lines of up, ls, exec, shell and down. */
#include "dev/dev.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/net.h"
#include "base/util.h"
#include "cli/cli.h"
#include "dev/dev_int.h"
#include "http/http.h"

#define DAEMON_START_TIMEOUT_MS 15000
#define CONVERGE_TIMEOUT_MS 15000

static const char up_usage[] =
    "Usage:  shoal dev up -n N [OPTIONS]\n"
    "\n"
    "Start a cluster of N nodes on this machine: one network namespace, veth\n"
    "pair and daemon per node on one bridge, joined into a swarm\n"
    "\n"
    "Options:\n"
    "  -n, --nodes int        Number of nodes (1 to 250)\n"
    "      --managers int     How many of them are managers (default 1)\n"
    "      --name string      Cluster name, 1 to 8 of [a-z0-9] (default \"dev\")\n"
    "      --subnet string    Node addresses (default " DEV_DEFAULT_SUBNET ")\n"
    "      --overlay string   swarm init --overlay: direct or vxlan (default direct)\n"
    "      --dir string       Where node state and logs go (default " DEV_DEFAULT_DIR ")\n"
    "  -v, --volume list      HOST_DIR:DIR: HOST_DIR (made if missing) shared by every\n"
    "                         node at DIR, in each node's own mount namespace\n";

static const char ls_usage[] = "Usage:  shoal dev ls [OPTIONS]\n"
                               "\n"
                               "List the nodes of a dev cluster and whether each daemon runs\n"
                               "\n"
                               "Options:\n"
                               "      --name string     Cluster name (default \"dev\")\n"
                               "      --dir string      State directory (default " DEV_DEFAULT_DIR
                               ")\n"
                               "      --format string   table or json\n";

static const char exec_usage[] =
    "Usage:  shoal dev exec NODE [OPTIONS] -- COMMAND [ARG...]\n"
    "\n"
    "Run a command in a node's network namespace with SHOAL_HOST set to its daemon\n"
    "(NODE is node-I or I; COMMAND \"shoal\" runs this shoal binary)\n"
    "\n"
    "Options:\n"
    "      --name string   Cluster name (default \"dev\")\n"
    "      --dir string    State directory (default " DEV_DEFAULT_DIR ")\n";

static const char shell_usage[] =
    "Usage:  shoal dev shell [NODE] [OPTIONS] [-- COMMAND [ARG...]]\n"
    "\n"
    "Open a shell ($SHELL, or /bin/sh) inside a node's namespaces (network, hostname,\n"
    "mounts), or run COMMAND there, with SHOAL_HOST set to its daemon (NODE is node-I\n"
    "or I, default node-1); the exit status is the shell's or COMMAND's\n"
    "\n"
    "Options:\n"
    "      --name string   Cluster name (default \"dev\")\n"
    "      --dir string    State directory (default " DEV_DEFAULT_DIR ")\n";

static const char down_usage[] =
    "Usage:  shoal dev down [OPTIONS]\n"
    "\n"
    "Stop every daemon and container of a dev cluster and remove its namespaces,\n"
    "links, mounts, cgroups and files\n"
    "\n"
    "Options:\n"
    "      --name string   Cluster name (default \"dev\")\n"
    "      --dir string    State directory (default " DEV_DEFAULT_DIR ")\n";

/* ---- command lines ---- */

#define DEV_MAX_VOLUMES 32

struct dev_args {
    const char *volumes[DEV_MAX_VOLUMES]; /* -v values, checked by dev_volume_add() */
    int nvolumes;
    const char *name, *dir, *subnet;
    const char *overlay; /* NULL: the daemon's default */
    int64_t nodes, managers;
    bool have_nodes, json;
    char *positional[2];
    int npositional;
    char **command; /* the words after "--" (exec); argv's NULL ends them */
    char dir_buf[PATH_MAX];
};

/* Mount points are compared with paths under DIR: DIR is made canonical
 * (absolute, no symlinks, no "." or trailing slash) when it exists. */
static int canonical_dir(struct dev_args *a, struct serr *err)
{
    char resolved[PATH_MAX];
    if (realpath(a->dir, resolved) != NULL) {
        snprintf(a->dir_buf, sizeof(a->dir_buf), "%s", resolved);
        a->dir = a->dir_buf;
        return 0;
    }
    char cwd[PATH_MAX] = "";
    if (a->dir[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
        return serr_errno(err, "getcwd");
    int len = snprintf(a->dir_buf, sizeof(a->dir_buf), "%s%s%s", cwd, cwd[0] ? "/" : "", a->dir);
    if (len >= (int)sizeof(a->dir_buf))
        return serr_set(err, SERR_INVALID, "--dir: path too long");
    a->dir = a->dir_buf;
    return 0;
}

/* Options may come before or after positional words; "--" ends them.
 * Returns -1 to go on, or the exit code to return. */
static int parse_args(const char *cmd, const char *usage, int argc, char **argv,
                      struct dev_args *a)
{
    static const struct option longopts[] = {
        {"nodes", required_argument, NULL, 'n'}, {"managers", required_argument, NULL, 'm'},
        {"name", required_argument, NULL, 'N'},  {"subnet", required_argument, NULL, 's'},
        {"dir", required_argument, NULL, 'D'},   {"format", required_argument, NULL, 'F'},
        {"overlay", required_argument, NULL, 'O'}, {"help", no_argument, NULL, 'h'},
        {"volume", required_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    *a = (struct dev_args){.name = DEV_DEFAULT_NAME, .dir = DEV_DEFAULT_DIR,
                           .subnet = DEV_DEFAULT_SUBNET, .managers = 1};
    struct serr err;
    optind = 0;
    for (;;) {
        int c = cli_getopt(argc, argv, "hn:v:", longopts, &err);
        if (c == -1) {
            if (optind > 1 && strcmp(argv[optind - 1], "--") == 0) {
                a->command = argv + optind;
                break;
            }
            if (optind >= argc)
                break;
            if (a->npositional == 2)
                return cli_usage_error(cmd, "too many arguments");
            a->positional[a->npositional++] = argv[optind++];
            continue;
        }
        switch (c) {
        case 'h': return cli_help(usage);
        case 'n':
            a->have_nodes = true;
            if (cli_parse_uint("--nodes", optarg, 1000000, &a->nodes, &err) < 0)
                return cli_usage_error(cmd, "%s", err.msg);
            break;
        case 'm':
            if (cli_parse_uint("--managers", optarg, 1000000, &a->managers, &err) < 0)
                return cli_usage_error(cmd, "%s", err.msg);
            break;
        case 'N': a->name = optarg; break;
        case 'v':
            if (strcmp(cmd, "dev up") != 0)
                return cli_usage_error(cmd, "-v is an option of `dev up`");
            if (a->nvolumes == DEV_MAX_VOLUMES)
                return cli_usage_error(cmd, "-v: at most %d volumes", DEV_MAX_VOLUMES);
            a->volumes[a->nvolumes++] = optarg;
            break;
        case 's': a->subnet = optarg; break;
        case 'D': a->dir = optarg; break;
        case 'O':
            /* checked here too: a typo must not leave a cluster half made */
            if (strcmp(optarg, NET_OVERLAY_DIRECT) != 0 && strcmp(optarg, NET_OVERLAY_VXLAN) != 0)
                return cli_usage_error(cmd, "--overlay: want " NET_OVERLAY_DIRECT
                                       " or " NET_OVERLAY_VXLAN ", not '%s'", optarg);
            a->overlay = optarg;
            break;
        case 'F':
            if (cli_parse_format(optarg, &a->json, &err) < 0)
                return cli_usage_error(cmd, "%s", err.msg);
            break;
        default: return cli_usage_error(cmd, "%s", err.msg);
        }
    }
    if (strcmp(a->dir, DEV_DEFAULT_DIR) != 0 && canonical_dir(a, &err) < 0)
        return cli_usage_error(cmd, "%s", err.msg);
    return -1;
}

/* " --name X --dir D" for the commands we suggest, when not the defaults. */
static void cluster_flags(const struct dev_args *a, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s%s%s", strcmp(a->name, DEV_DEFAULT_NAME) ? " --name " : "",
             strcmp(a->name, DEV_DEFAULT_NAME) ? a->name : "",
             strcmp(a->dir, DEV_DEFAULT_DIR) ? " --dir " : "",
             strcmp(a->dir, DEV_DEFAULT_DIR) ? a->dir : "");
}

static int need_root(void)
{
    if (geteuid() == 0)
        return 0;
    cli_error("shoal dev needs root (it makes network namespaces and links)");
    return -1;
}

/* ---- up ---- */

static bool cluster_exists(const struct dev_cluster *c)
{
    int *idx;
    int count = dev_net_list(c->name, &idx);
    free(idx);
    char *bridge = xasprintf("/sys/class/net/%s", c->bridge);
    char *veth = xasprintf("/sys/class/net/%s", c->nodes[0].veth);
    bool exists = count > 0 || access(bridge, F_OK) == 0 || access(veth, F_OK) == 0 ||
                  dev_netns_inode(c->lan) != 0 || access(c->dir, F_OK) == 0;
    free(veth);
    free(bridge);
    return exists;
}

/* node-1's dashboard address with its read-only token, or NULL. */
static char *dashboard_url(const struct dev_node *node)
{
    struct serr err;
    char *host = xasprintf("unix://%s", node->socket);
    struct http_client *hc = http_client_open(host, &err);
    free(host);
    if (hc == NULL)
        return NULL;
    struct http_response resp = {0};
    char *url = NULL;
    if (http_request(hc, "GET", "/v1/dashboard/url", NULL, NULL, 0, &resp, &err) == 0 &&
        resp.status == 200) {
        json_t *answer = json_loads(resp.body, 0, NULL);
        const char *u = json_string_value(json_object_get(answer, "url"));
        url = u ? xstrdup(u) : NULL;
        json_decref(answer);
    }
    free(resp.body);
    http_client_close(hc);
    return url;
}

static void print_summary(const struct dev_cluster *c, const struct dev_args *a, bool joined,
                          int64_t took_ms)
{
    char flags[512];
    cluster_flags(a, flags, sizeof(flags));
    printf("dev cluster '%s': %d node%s on bridge %s (%s), up in %.2f s\n\n", c->name, c->n,
           c->n == 1 ? "" : "s", c->bridge, c->subnet, (double)took_ms / 1000.0);
    static const char *const head[] = {"NODE", "NAMESPACE", "ADDRESS", "ROLE", "PID"};
    struct table *t = table_new(5, head);
    for (int i = 0; i < c->n; i++) {
        const struct dev_node *node = &c->nodes[i];
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", (int)node->pid);
        const char *cells[] = {node->name, node->netns, node->addr,
                               node->role[0] ? node->role : "-", pid};
        table_add(t, cells);
    }
    table_print_free(t);
    const struct dev_node *first = &c->nodes[0];
    printf("\n");
    if (joined)
        printf("Manager: %s (%s:%d)\n", first->name, first->addr, DEV_CLUSTER_PORT);
    char *url = dashboard_url(first);
    if (url)
        printf("Web:     %s\n", url);
    free(url);
    printf("CLI:     shoal dev exec node-1%s -- shoal node ls\n", flags);
    printf("   or:   export SHOAL_HOST=unix://%s\n", first->socket);
    printf("Logs:    %s/node-*/daemon.log\n", c->dir);
    printf("State:   %s/cluster.json\n", c->dir);
    printf("Remove:  shoal dev down%s\n", flags);
}

static int up_cluster(struct dev_cluster *c, const struct dev_args *a)
{
    struct serr err;
    char flags[512];
    cluster_flags(a, flags, sizeof(flags));
    if (cluster_exists(c)) {
        cli_error("dev cluster '%s' exists: run `shoal dev down%s` first", c->name, flags);
        return CLI_EXIT_ERROR;
    }
    if (dev_check_routes(c->net, c->prefix, &err) < 0)
        return cli_fail(&err);
    int64_t start = mono_ms();
    /* The state file first: whatever fails later, `down` finds the cluster. */
    if (mkdir_p(c->dir, 0700, &err) < 0 || dev_cluster_save(c, &err) < 0 ||
        dev_net_create(c, &err) < 0 || dev_start_daemons(c, &err) < 0 ||
        dev_cluster_save(c, &err) < 0 || dev_wait_daemons(c, DAEMON_START_TIMEOUT_MS, &err) < 0) {
        cli_error("%s", err.msg);
        fprintf(stderr, "The cluster is partly up; `shoal dev down%s` removes it.\n", flags);
        return CLI_EXIT_ERROR;
    }
    int joined = dev_form_swarm(c, a->overlay, &err);
    dev_cluster_save(c, NULL);
    if (joined == 0 && dev_wait_converged(c, CONVERGE_TIMEOUT_MS, &err) < 0)
        joined = -1;
    if (joined < 0) {
        cli_error("%s", err.msg);
        fprintf(stderr, "The nodes are up but the swarm is not complete; see the logs in "
                        "%s/node-*/daemon.log, and `shoal dev down%s` removes it all.\n",
                c->dir, flags);
        return CLI_EXIT_ERROR;
    }
    print_summary(c, a, joined == 0, mono_ms() - start);
    if (joined == 1)
        printf("\ndev: nodes are up but not joined: this daemon does not support swarm join yet\n");
    return CLI_EXIT_OK;
}

/* Checks every -v against the cluster's directory; nothing is made yet. */
static int add_volumes(struct dev_cluster *c, const struct dev_args *a, struct serr *err)
{
    for (int i = 0; i < a->nvolumes; i++)
        if (dev_volume_add(c, a->volumes[i], err) < 0)
            return -1;
    return 0;
}

static int dev_up(struct cli *cli, int argc, char **argv)
{
    struct dev_args a;
    int rc = parse_args("dev up", up_usage, argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.npositional > 0 || a.command)
        return cli_usage_error("dev up", "unexpected argument \"%s\"",
                               a.npositional ? a.positional[0] : "--");
    if (!a.have_nodes)
        return cli_usage_error("dev up", "the number of nodes is required (-n N)");
    struct serr err;
    struct dev_cluster c;
    if (dev_cluster_init(&c, a.dir, a.name, (int)a.nodes, (int)a.managers, a.subnet, &err) < 0)
        return cli_usage_error("dev up", "%s", err.msg);
    if (add_volumes(&c, &a, &err) < 0) {
        dev_cluster_free(&c);
        return cli_usage_error("dev up", "%s", err.msg);
    }
    /* The arguments are good: make DIR so its canonical name is known. */
    if (strcmp(a.dir, DEV_DEFAULT_DIR) != 0 && mkdir_p(a.dir, 0755, NULL) == 0 &&
        canonical_dir(&a, &err) == 0) {
        dev_cluster_free(&c);
        dev_cluster_init(&c, a.dir, a.name, (int)a.nodes, (int)a.managers, a.subnet, &err);
        if (add_volumes(&c, &a, &err) < 0) {
            dev_cluster_free(&c);
            return cli_usage_error("dev up", "%s", err.msg);
        }
    }
    rc = need_root() < 0 ? CLI_EXIT_ERROR : up_cluster(&c, &a);
    dev_cluster_free(&c);
    return rc;
}

/* ---- ls ---- */

static int load_cluster(const struct dev_args *a, struct dev_cluster *c)
{
    struct serr err;
    if (dev_cluster_load(c, a->dir, a->name, &err) < 0) {
        cli_fail(&err);
        return -1;
    }
    return 0;
}

static void print_nodes_json(const struct dev_cluster *c)
{
    json_t *nodes = json_array();
    for (int i = 0; i < c->n; i++) {
        const struct dev_node *node = &c->nodes[i];
        json_array_append_new(
            nodes, json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:b}", "name", node->name, "netns",
                             node->netns, "addr", node->addr, "role", node->role, "pid",
                             (int)node->pid, "socket", node->socket, "alive",
                             dev_daemon_alive(node)));
    }
    cli_print_json(nodes, false);
    json_decref(nodes);
}

static void print_nodes_table(const struct dev_cluster *c)
{
    static const char *const head[] = {"NODE", "NAMESPACE", "ADDRESS", "ROLE", "PID", "DAEMON"};
    struct table *t = table_new(6, head);
    for (int i = 0; i < c->n; i++) {
        const struct dev_node *node = &c->nodes[i];
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", (int)node->pid);
        const char *cells[] = {node->name, node->netns, node->addr,
                               node->role[0] ? node->role : "-", pid,
                               dev_daemon_alive(node) ? "alive" : "dead"};
        table_add(t, cells);
    }
    table_print_free(t);
}

static int dev_ls(struct cli *cli, int argc, char **argv)
{
    struct dev_args a;
    int rc = parse_args("dev ls", ls_usage, argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.npositional > 0)
        return cli_usage_error("dev ls", "unexpected argument \"%s\"", a.positional[0]);
    struct dev_cluster c;
    if (load_cluster(&a, &c) < 0)
        return CLI_EXIT_ERROR;
    if (a.json)
        print_nodes_json(&c);
    else
        print_nodes_table(&c);
    dev_cluster_free(&c);
    return CLI_EXIT_OK;
}

/* ---- exec ---- */

/* The daemon's hostname too, when it runs: `hostname` says node-i. */
static void enter_daemon_uts(const struct dev_node *node)
{
    if (!dev_daemon_alive(node))
        return;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/uts", (int)node->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (setns(fd, CLONE_NEWUTS) < 0) {
            /* best effort: the network namespace is what matters */
        }
        close(fd);
    }
}

/* The daemon's mount namespace when it has its own (volumes, -v), so that
 * DIR shows what the node sees; the working directory is kept if it exists
 * there. */
static int enter_daemon_mnt(const struct dev_node *node, struct serr *err)
{
    char path[64];
    struct stat theirs, ours;
    snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)node->pid);
    if (!dev_daemon_alive(node) || stat(path, &theirs) < 0 ||
        stat("/proc/self/ns/mnt", &ours) < 0 || theirs.st_ino == ours.st_ino)
        return 0;
    char cwd[PATH_MAX];
    bool have_cwd = getcwd(cwd, sizeof(cwd)) != NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return serr_errno(err, "open %s", path);
    int rc = setns(fd, CLONE_NEWNS);
    close(fd);
    if (rc < 0)
        return serr_errno(err, "%s: entering its mount namespace", node->name);
    if (!have_cwd || chdir(cwd) < 0) {
        if (chdir("/") < 0) {
            /* "/" always exists */
        }
    }
    return 0;
}

/* This binary's directory first in PATH: `shoal` typed in `dev shell` (or in
 * `dev exec NODE -- sh -c ...`) is the shoal that made the cluster. */
static void put_self_in_path(void)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0)
        return;
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL || slash == self)
        return;
    *slash = '\0';
    const char *path = getenv("PATH");
    char *joined = xasprintf("%s%s%s", self, path && path[0] ? ":" : "", path ? path : "");
    setenv("PATH", joined, 1);
    free(joined);
}

static int exec_in_node(const struct dev_cluster *c, const struct dev_node *node,
                        char **command)
{
    struct serr err;
    if (dev_netns_enter(node->netns, &err) < 0)
        return cli_fail(&err);
    enter_daemon_uts(node);
    if (enter_daemon_mnt(node, &err) < 0)
        return cli_fail(&err);
    if (c->nvolumes > 0 && !dev_daemon_alive(node))
        fprintf(stderr, "shoal dev: %s's daemon is not running: its -v directories are not "
                        "mounted here\n", node->name);
    char *host = xasprintf("unix://%s", node->socket);
    setenv("SHOAL_HOST", host, 1);
    free(host);
    put_self_in_path();
    fflush(NULL);
    /* "shoal" means this binary: the one that made the cluster. */
    if (strcmp(command[0], "shoal") == 0)
        execv("/proc/self/exe", command);
    else
        execvp(command[0], command);
    cli_error("%s: %s", command[0], strerror(errno));
    return 127;
}

/* exec_in_node on the node named `which` ("node-2", ...) of the cluster
 * `a` names, as root; CLI_EXIT_ERROR when there is no such node. */
static int exec_in_named_node(const struct dev_args *a, const char *which, char **command)
{
    struct dev_cluster c;
    if (load_cluster(a, &c) < 0)
        return CLI_EXIT_ERROR;
    int rc, i = dev_node_index(which);
    if (i < 1 || i > c.n) {
        cli_error("no node '%s' in dev cluster '%s' (nodes: node-1 to node-%d)", which, c.name,
                  c.n);
        rc = CLI_EXIT_ERROR;
    } else if (need_root() < 0) {
        rc = CLI_EXIT_ERROR;
    } else {
        rc = exec_in_node(&c, &c.nodes[i - 1], command);
    }
    dev_cluster_free(&c);
    return rc;
}

static int dev_exec(struct cli *cli, int argc, char **argv)
{
    struct dev_args a;
    int rc = parse_args("dev exec", exec_usage, argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.npositional == 0)
        return cli_usage_error("dev exec", "which node? (shoal dev exec NODE -- COMMAND)");
    if (a.npositional > 1)
        return cli_usage_error("dev exec", "put \"--\" before the command: "
                                           "shoal dev exec NODE -- COMMAND");
    char **command = a.command;
    if (command == NULL || command[0] == NULL)
        return cli_usage_error("dev exec", "no command to run (shoal dev exec NODE -- COMMAND)");
    return exec_in_named_node(&a, a.positional[0], command);
}

/* ---- shell ---- */

static int dev_shell(struct cli *cli, int argc, char **argv)
{
    struct dev_args a;
    int rc = parse_args("dev shell", shell_usage, argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.npositional > 1)
        return cli_usage_error("dev shell", "put \"--\" before the command: "
                                            "shoal dev shell [NODE] -- COMMAND");
    const char *shell = getenv("SHELL");
    char *interactive[] = {(char *)(shell && shell[0] ? shell : "/bin/sh"), NULL};
    char **command = a.command && a.command[0] ? a.command : interactive;
    return exec_in_named_node(&a, a.npositional ? a.positional[0] : "node-1", command);
}

/* ---- down ---- */

static int dev_down_cmd(struct cli *cli, int argc, char **argv)
{
    struct dev_args a;
    int rc = parse_args("dev down", down_usage, argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.npositional > 0)
        return cli_usage_error("dev down", "unexpected argument \"%s\"", a.positional[0]);
    if (need_root() < 0)
        return CLI_EXIT_ERROR;
    struct serr err;
    if (dev_down(a.dir, a.name, &err) < 0)
        return cli_fail(&err);
    return CLI_EXIT_OK;
}

static const struct cli_cmd dev_cmds[] = {
    {"up", NULL, dev_up, "Start a cluster of N nodes on this machine"},
    {"ls", NULL, dev_ls, "List the nodes and whether their daemons run"},
    {"exec", NULL, dev_exec, "Run a command in a node's namespace, SHOAL_HOST set"},
    {"shell", NULL, dev_shell, "Open a shell (or run a command) inside a node's namespaces"},
    {"down", NULL, dev_down_cmd, "Remove the cluster and everything it made"},
    {NULL, NULL, NULL, NULL},
};

int cli_dev(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "dev", dev_cmds, argc, argv);
}
