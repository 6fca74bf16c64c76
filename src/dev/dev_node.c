/* The dev cluster's daemons: one `shoal daemon` per node inside the node's
 * network namespace, then the swarm formed through their API sockets. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"
#include "dev/dev_int.h"
#include "http/http.h"

#define WAIT_POLL_MS 5

/* ---- starting ---- */

/* Gives the process its own hostname, so every node shows as node-i. */
static int enter_uts(const char *hostname, struct serr *err)
{
    if (unshare(CLONE_NEWUTS) < 0)
        return serr_errno(err, "unshare(CLONE_NEWUTS)");
    if (sethostname(hostname, strlen(hostname)) < 0)
        return serr_errno(err, "sethostname");
    return 0;
}

/* In the forked child: never returns. Errors go to the node's log, where the
 * parent points when the daemon does not answer. */
static void daemon_child(const struct dev_cluster *c, const struct dev_node *node)
{
    int logfd = open(node->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0)
        _exit(126);
    struct serr err = {0};
    /* Its own session: the daemons outlive `dev up` and ignore its terminal. */
    setsid();
    if (dev_netns_enter(node->netns, &err) < 0 ||
        dev_net_configure_inside(node->addr, c->prefix, &err) < 0 ||
        enter_uts(node->name, &err) < 0 || dev_volumes_mount_inside(c, &err) < 0) {
        dprintf(logfd, "shoal dev: %s: %s\n", node->name, err.msg);
        _exit(126);
    }
    /* Whatever the caller left open (a CI job's pipe) must not stay open for
     * the daemon's lifetime; the dup2()ed 0-2 do not get the flag. */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    dup2(nullfd, STDIN_FILENO);
    dup2(logfd, STDOUT_FILENO);
    dup2(logfd, STDERR_FILENO);
    /* managers serve the dashboard on their own address */
    char dashboard[40];
    snprintf(dashboard, sizeof(dashboard), "%s:%d", node->addr, DEV_DASHBOARD_PORT);
    bool manager = node->index <= c->managers;
    char *argv[] = {"shoal",          "daemon",           "--state-dir", node->state_dir,
                    "--run-dir",      node->run_dir,      "--socket",    node->socket,
                    manager ? "--dashboard-addr" : NULL,  dashboard,     NULL};
    signal(SIGPIPE, SIG_DFL);
    execv("/proc/self/exe", argv);
    dprintf(STDERR_FILENO, "shoal dev: exec /proc/self/exe: %s\n", strerror(errno));
    _exit(127);
}

static int prepare_node_dirs(const struct dev_node *node, struct serr *err)
{
    if (mkdir_p(node->state_dir, 0700, err) < 0 || mkdir_p(node->run_dir, 0700, err) < 0)
        return -1;
    /* unix socket paths are limited to 108 bytes (sun_path). */
    if (strlen(node->socket) >= 108)
        return serr_set(err, SERR_INVALID, "socket path %s is too long: use a shorter --dir",
                        node->socket);
    return 0;
}

int dev_start_daemons(struct dev_cluster *c, struct serr *err)
{
    if (dev_volumes_prepare(c, err) < 0)
        return -1;
    for (int i = 0; i < c->n; i++)
        if (prepare_node_dirs(&c->nodes[i], err) < 0)
            return -1;
    fflush(NULL); /* no buffered output duplicated into children */
    for (int i = 0; i < c->n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return serr_errno(err, "fork");
        if (pid == 0)
            daemon_child(c, &c->nodes[i]);
        c->nodes[i].pid = pid;
    }
    return 0;
}

/* ---- API calls ---- */

static int node_call(const struct dev_node *node, const char *method, const char *path,
                     json_t *body, json_t **out, struct serr *err)
{
    struct cli cli = {.host = node->socket};
    int rc = cli_call(&cli, method, path, body, out, err);
    http_client_close(cli.client);
    return rc;
}

static bool daemon_answers(const struct dev_node *node)
{
    if (access(node->socket, F_OK) < 0)
        return false;
    struct serr err;
    return node_call(node, "GET", "/v1/info", NULL, NULL, &err) == 0;
}

/* Fails when the daemon has exited: it will never answer. */
static int check_exited(const struct dev_node *node, struct serr *err)
{
    int status;
    if (waitpid(node->pid, &status, WNOHANG) != node->pid)
        return 0;
    return serr_set(err, SERR_INTERNAL, "%s: the daemon exited (%s %d): see %s", node->name,
                    WIFEXITED(status) ? "status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), node->log);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

int dev_wait_daemons(struct dev_cluster *c, int64_t timeout_ms, struct serr *err)
{
    bool *up = xcalloc((size_t)c->n, sizeof(bool));
    int pending = c->n, rc = 0;
    int64_t deadline = mono_ms() + timeout_ms;
    while (pending > 0 && rc == 0) {
        for (int i = 0; i < c->n && rc == 0; i++) {
            if (up[i])
                continue;
            if (daemon_answers(&c->nodes[i])) {
                up[i] = true;
                pending--;
            } else {
                rc = check_exited(&c->nodes[i], err);
            }
        }
        if (rc == 0 && pending > 0 && mono_ms() > deadline) {
            for (int i = 0; i < c->n; i++)
                if (!up[i])
                    rc = serr_set(err, SERR_INTERNAL, "%s: no answer on %s after %lld ms: see %s",
                                  c->nodes[i].name, c->nodes[i].socket, (long long)timeout_ms,
                                  c->nodes[i].log);
        }
        if (rc == 0 && pending > 0)
            sleep_ms(WAIT_POLL_MS);
    }
    free(up);
    return rc;
}

bool dev_pid_running(pid_t pid)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (pid <= 0 || read_file(path, &text, NULL, NULL) < 0)
        return false;
    /* "pid (comm) S ...": comm may hold spaces and parentheses. */
    const char *paren = strrchr(text, ')');
    bool running = paren != NULL && paren[1] == ' ' && paren[2] != 'Z';
    free(text);
    return running;
}

bool dev_daemon_alive(const struct dev_node *node)
{
    if (!dev_pid_running(node->pid))
        return false;
    /* A reused pid would live in another network namespace. */
    char path[64];
    struct stat ns;
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)node->pid);
    return stat(path, &ns) == 0 && ns.st_ino == dev_netns_inode(node->netns);
}

/* ---- the swarm ---- */

struct join_job {
    const struct dev_cluster *c;
    struct dev_node *node;
    const char *token;
    struct serr err;
    int rc;
};

static void *join_thread(void *arg)
{
    struct join_job *job = arg;
    char remote[32], advertise[32];
    snprintf(remote, sizeof(remote), "%s:%d", job->c->nodes[0].addr, DEV_CLUSTER_PORT);
    snprintf(advertise, sizeof(advertise), "%s:%d", job->node->addr, DEV_CLUSTER_PORT);
    json_t *body = json_pack("{s:s, s:s, s:s}", "token", job->token, "remote_addr", remote,
                             "advertise_addr", advertise);
    json_t *answer = NULL;
    job->rc = node_call(job->node, "POST", "/v1/swarm/join", body, &answer, &job->err);
    if (job->rc == 0) {
        const char *role = json_string_value(json_object_get(answer, "role"));
        snprintf(job->node->role, sizeof(job->node->role), "%s", role ? role : "");
    } else {
        serr_wrap(&job->err, "%s: joining", job->node->name);
    }
    json_decref(answer);
    json_decref(body);
    return NULL;
}

/* The token of `role` from the first manager; NULL when not needed. */
static int fetch_token(const struct dev_node *leader, const char *role, char **token,
                       struct serr *err)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/swarm/join-token/%s", role);
    json_t *answer = NULL;
    if (node_call(leader, "GET", path, NULL, &answer, err) < 0)
        return -1;
    const char *t = json_string_value(json_object_get(answer, "token"));
    *token = t ? xstrdup(t) : NULL;
    json_decref(answer);
    return t ? 0 : serr_set(err, SERR_INTERNAL, "no token in the %s join-token answer", role);
}

static int init_first(struct dev_cluster *c, const char *overlay, struct serr *err)
{
    struct dev_node *first = &c->nodes[0];
    char advertise[32];
    snprintf(advertise, sizeof(advertise), "%s:%d", first->addr, DEV_CLUSTER_PORT);
    json_t *body = json_pack("{s:s}", "advertise_addr", advertise);
    if (overlay)
        json_object_set_new(body, "overlay", json_string(overlay));
    int rc = node_call(first, "POST", "/v1/swarm/init", body, NULL, err);
    json_decref(body);
    if (rc < 0)
        return serr_wrap(err, "%s: swarm init", first->name);
    snprintf(first->role, sizeof(first->role), "manager");
    return 0;
}

/* Every join runs at once: each is a blocking HTTP call to its own node, and
 * the leader batches the node records into few Raft entries. */
static int join_all(struct dev_cluster *c, char *manager_token, char *worker_token,
                    struct serr *err)
{
    int count = c->n - 1;
    struct join_job *jobs = xcalloc((size_t)count, sizeof(*jobs));
    pthread_t *threads = xcalloc((size_t)count, sizeof(*threads));
    for (int k = 0; k < count; k++) {
        struct dev_node *node = &c->nodes[k + 1];
        jobs[k] = (struct join_job){.c = c, .node = node,
                                    .token = node->index <= c->managers ? manager_token
                                                                       : worker_token};
        if (pthread_create(&threads[k], NULL, join_thread, &jobs[k]) != 0)
            abort(); /* like allocation failure: not worth surviving */
    }
    int rc = 0;
    for (int k = 0; k < count; k++) {
        pthread_join(threads[k], NULL);
        if (jobs[k].rc < 0 && rc == 0) {
            *err = jobs[k].err;
            rc = -1;
        }
    }
    free(threads);
    free(jobs);
    return rc;
}

int dev_form_swarm(struct dev_cluster *c, const char *overlay, struct serr *err)
{
    if (init_first(c, overlay, err) < 0)
        return -1;
    if (c->n == 1)
        return 0;
    char *manager_token = NULL, *worker_token = NULL;
    int rc = 0;
    if (c->managers > 1)
        rc = fetch_token(&c->nodes[0], "manager", &manager_token, err);
    if (rc == 0 && c->n > c->managers)
        rc = fetch_token(&c->nodes[0], "worker", &worker_token, err);
    if (rc < 0 && err->kind == SERR_NOT_FOUND)
        rc = 1; /* a daemon from before join tokens */
    else if (rc == 0)
        rc = join_all(c, manager_token, worker_token, err);
    free(manager_token);
    free(worker_token);
    return rc;
}

/* True when the node's copy of the cluster state lists every node as ready. */
static bool sees_all_ready(const struct dev_cluster *c, const struct dev_node *node)
{
    json_t *nodes = NULL;
    struct serr err;
    if (node_call(node, "GET", "/v1/nodes", NULL, &nodes, &err) < 0)
        return false;
    size_t i, ready = 0;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *status = json_string_value(json_object_get(n, "status"));
        ready += status != NULL && strcmp(status, "ready") == 0;
    }
    json_decref(nodes);
    return ready == (size_t)c->n;
}

int dev_wait_converged(const struct dev_cluster *c, int64_t timeout_ms, struct serr *err)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (int i = 0; i < c->n; i++) {
        const struct dev_node *node = &c->nodes[i];
        if (strcmp(node->role, "manager") != 0)
            continue;
        while (!sees_all_ready(c, node)) {
            if (mono_ms() > deadline)
                return serr_set(err, SERR_UNAVAILABLE,
                                "%s does not see all %d nodes ready after %lld ms: see %s",
                                node->name, c->n, (long long)timeout_ms, node->log);
            sleep_ms(WAIT_POLL_MS);
        }
    }
    return 0;
}
