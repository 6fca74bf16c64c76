/* `shoal daemon`: one libuv loop running the API server, Raft, the
 * orchestrator (when leader) and the agent. */
#include "daemon/daemon.h"

#include <getopt.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/image.h"
#include "agent/net.h"
#include "base/lib_pages.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/agent_upstream.h"
#include "daemon/alerting.h"
#include "daemon/clusternet.h"
#include "daemon/daemon_config.h"
#include "daemon/image_gc.h"
#include "daemon/layers.h"
#include "daemon/metrics_keeper.h"
#include "daemon/node_metrics.h"
#include "daemon/session.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "http/http.h"
#include "manager/dispatcher.h"
#include "manager/jobs.h"
#include "manager/orchestrator.h"
#include "raft/cluster.h"
#include "store/store.h"

char *shoal_state_path(struct shoal *sh, const char *rel)
{
    return xasprintf("%s/%s", sh->state_dir, rel);
}

char *shoal_run_path(struct shoal *sh, const char *rel)
{
    return xasprintf("%s/%s", sh->run_dir, rel);
}

/* ---- reconcile ---- */

static void wakeup_cb(uv_timer_t *t)
{
    shoal_kick(t->data);
}

/* How often the leader trims the job history. */
#define JOB_TRIM_EVERY_MS 1000
/* A settled pass is run again at least this often all the same. */
#define ORCH_SETTLED_MAX_MS 10000

/* A pass depends on the store and the time, and names the time it waits
 * for (wake): after one that proposed nothing, none again (each reads every
 * task) while the store is at the same version, before its wake-up time,
 * within ORCH_SETTLED_MAX_MS (what no wake-up announces). */
static bool orchestration_settled(struct shoal *sh, int64_t now)
{
    return sh->orch_settled != 0 && sh->orch_settled == store_version(sh->store) &&
           now - sh->orch_settled_at < ORCH_SETTLED_MAX_MS &&
           (sh->orch_settled_wake == 0 || now < sh->orch_settled_wake);
}

static void orchestrate(struct shoal *sh)
{
    if (sh->cluster == NULL || !cluster_is_leader(sh->cluster)) {
        sh->orch_settled = 0;
        if (sh->orch_tasks) {
            orch_tasks_free(sh->orch_tasks);
            sh->orch_tasks = NULL;
            store_forget_changed_tasks(sh->store);
        }
        return;
    }
    if (cluster_busy(sh->cluster))
        return; /* a pass runs again after the entry in flight is applied */
    int64_t now = now_ms(), wake = 0;
    bool settled = orchestration_settled(sh, now);
    if (!settled && sh->orch_tasks == NULL)
        sh->orch_tasks = orch_tasks_new();
    json_t *ops = settled ? json_array() : orchestrator_pass_kept(sh->orch_tasks, sh->store, now, &wake);
    if (!settled) {
        sh->orch_settled = json_array_size(ops) == 0 ? store_version(sh->store) : 0;
        sh->orch_settled_at = now;
        sh->orch_settled_wake = wake;
    }
    if (now - sh->jobs_trimmed_at >= JOB_TRIM_EVERY_MS) {
        /* reads every job: at most once a second (the 1 s tick passes again) */
        jobs_trim_history(sh->store, sh->job_history ? sh->job_history : JOB_HISTORY_DEFAULT, ops);
        sh->jobs_trimmed_at = now;
    }
    if (json_array_size(ops) > 0)
        cluster_propose(sh->cluster, ops, NULL, NULL);
    else
        json_decref(ops);
    if (wake > 0)
        uv_timer_start(&sh->wakeup_timer, wakeup_cb, (uint64_t)(wake > now ? wake - now : 0), 0);
}

static void kick_cb(uv_timer_t *t)
{
    struct shoal *sh = t->data;
    if (sh->stopping)
        return;
    /* The agent first: the starts an applied entry hands this node go to the
     * thread pool before the pass (the longer part) runs, so a start overlaps
     * the pass on another core instead of waiting for it (issue 14). Neither
     * sees the other's work: the pass's ops and the agent's reports are only
     * proposed here. */
    agent_sync_if_changed(sh->agent);
    orchestrate(sh);
    layers_replicate(sh);
    layers_gc_pass(sh);
    image_gc_pass(sh);
}

void shoal_kick(struct shoal *sh)
{
    /* State changes reach here: tell the API's streams (no front: a test's shoal). */
    if (sh->front)
        sh->front->changed(sh);
    if (!uv_is_active((uv_handle_t *)&sh->kick_timer))
        uv_timer_start(&sh->kick_timer, kick_cb, 0, 0);
}

/* A slow periodic pass catches what no event announces (a wake-up lost to
 * a failed proposal, a leadership change). */
/* Boards have 1-2 GB: two malloc arenas rather than one per thread of the
 * pools (each keeps its own free pages), and what is free handed back to
 * the kernel once a minute, so the RSS follows what is in use rather than
 * each arena's peak (docs/benchmarks.md, Soak). */
#define TRIM_EVERY_TICKS 60

static void memory_setup(void)
{
#ifdef __GLIBC__
    mallopt(M_ARENA_MAX, 2);
#endif
}

/* Code run once need not stay mapped: OpenSSL's handshake (once per link),
 * SQLite's opening of the store (schema, migrations; a worker queries
 * nothing at idle), the start's own code in libc, ld.so, libm and the
 * binary. The read-only pages of every loaded object are unmapped with the
 * heap's trim, and what idle uses comes back from the page cache at its
 * next use (base/lib_pages.h, docs/design.md); the stubs never unload
 * these libraries. */
static void memory_trim(struct shoal *sh)
{
    if (++sh->ticks % TRIM_EVERY_TICKS != 0)
        return;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    lib_pages_release(NULL); /* every library and the program */
}

static void tick_cb(uv_timer_t *t)
{
    struct shoal *sh = t->data;
    memory_trim(sh);
    swarm_autolock_sync(sh);
    shoal_kick(sh);
}

/* ---- shutdown ---- */

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void cluster_stopped_free_net(void *arg)
{
    clusternet_free(arg);
}

static void agent_closed(void *arg)
{
    struct shoal *sh = arg;
    sh->agent = NULL;
    session_stop(sh->session);
    sh->session = NULL;
    dispatcher_stop(sh->dispatcher);
    sh->dispatcher = NULL;
    clusternet_stop(sh);
    if (sh->cluster) {
        cluster_stop(sh->cluster, cluster_stopped_free_net, sh);
        sh->cluster = NULL;
    } else {
        clusternet_free(sh);
    }
    close_handle((uv_handle_t *)&sh->kick_timer);
    close_handle((uv_handle_t *)&sh->wakeup_timer);
    close_handle((uv_handle_t *)&sh->tick_timer);
    close_handle((uv_handle_t *)&sh->sigterm);
    close_handle((uv_handle_t *)&sh->sigint);
}

/* A stop that hangs (a peer that never answers, raft waiting on I/O) ends
 * anyway: everything durable is already on disk. */
#define STOP_GRACE_MS 15000

static void log_open_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h) && h != arg)
        log_warn("still open: %s handle %p (%s)", uv_handle_type_name(uv_handle_get_type(h)),
                 (void *)h, uv_is_active(h) ? "active" : "inactive");
}

static void stop_overdue(uv_timer_t *t)
{
    log_error("stopping takes more than %d s: exiting now", STOP_GRACE_MS / 1000);
    uv_walk(t->loop, log_open_handle, t);
    _exit(1);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct shoal *sh = s->data;
    if (sh->stopping) {
        log_warn("signal %d again: exiting now", signum);
        _exit(1);
    }
    sh->stopping = true;
    log_info("signal %d: stopping (containers keep running)", signum);
    uv_timer_start(&sh->stop_timer, stop_overdue, STOP_GRACE_MS, 0);
    uv_unref((uv_handle_t *)&sh->stop_timer); /* it does not keep the loop */
    sh->front->stop(sh); /* ends the streams while their connections live */
    http_server_stop(sh->api);
    sh->api = NULL;
    alerting_stop(sh->alerting);
    sh->alerting = NULL;
    metrics_keeper_stop(sh->metrics_keeper);
    sh->metrics_keeper = NULL;
    node_metrics_stop(sh->metrics); /* it reads the agent's list */
    sh->metrics = NULL;
    agent_close(sh->agent, agent_closed, sh);
}

/* ---- start ---- */

/* Image uploads larger than this are refused (413) unless --max-upload says otherwise. */
#define DEFAULT_MAX_UPLOAD (4LL * 1024 * 1024 * 1024)

struct options {
    const char *state_dir, *run_dir, *socket, *runtime, *dashboard_addr, *bridge;
    const char *config; /* --config, NULL: DAEMON_CONFIG_DEFAULT when it exists */
    int64_t max_upload; /* bytes; 0: no cap */
    bool debug;
    struct http_limits limits;
};

/* Defaults of the network listeners' limits (docs/design.md, "Security model"). */
#define DEFAULT_MAX_CONNS 1000
#define DEFAULT_MAX_CONNS_PER_ADDR 100
#define DEFAULT_REQUEST_TIMEOUT_S 10
#define DEFAULT_IDLE_TIMEOUT_S 60

/* A positive count for flag `name`; -1 (message printed) otherwise. */
static long positive_flag(const char *name, const char *value, long max)
{
    char *end;
    long n = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || n < 1 || n > max) {
        fprintf(stderr, "shoal daemon: --%s wants a whole number from 1 to %ld, got '%s'\n",
                name, max, value);
        return -1;
    }
    return n;
}

static int limit_option(int ch, const char *value, struct http_limits *l)
{
    long n;
    switch (ch) {
    case 'M':
        n = positive_flag("max-connections", value, 1000000);
        l->max_conns = (int)n;
        break;
    case 'P':
        n = positive_flag("max-connections-per-ip", value, 1000000);
        l->max_conns_per_addr = (int)n;
        break;
    case 'T':
        n = positive_flag("request-timeout", value, 86400);
        l->request_timeout_ms = (unsigned)n * 1000;
        break;
    default: /* 'I' */
        n = positive_flag("idle-timeout", value, 86400);
        l->idle_timeout_ms = (unsigned)n * 1000;
        break;
    }
    return n < 0 ? -1 : 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"state-dir", required_argument, NULL, 's'}, {"run-dir", required_argument, NULL, 'r'},
        {"socket", required_argument, NULL, 'S'},    {"runtime", required_argument, NULL, 'R'},
        {"debug", no_argument, NULL, 'd'},           {"help", no_argument, NULL, 'h'},
        {"dashboard-addr", required_argument, NULL, 'D'},
        {"bridge", required_argument, NULL, 'B'},
        {"max-upload", required_argument, NULL, 'U'},
        {"max-connections", required_argument, NULL, 'M'},
        {"max-connections-per-ip", required_argument, NULL, 'P'},
        {"request-timeout", required_argument, NULL, 'T'},
        {"idle-timeout", required_argument, NULL, 'I'},
        {"config", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0}};
    *o = (struct options){.state_dir = "/var/lib/shoal", .run_dir = "/run/shoal",
                          .bridge = NET_BRIDGE, .max_upload = DEFAULT_MAX_UPLOAD,
                          .limits = {.max_conns = DEFAULT_MAX_CONNS,
                                     .max_conns_per_addr = DEFAULT_MAX_CONNS_PER_ADDR,
                                     .request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_S * 1000,
                                     .idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_S * 1000}};
    struct serr err = {0};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "dh", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': o->state_dir = optarg; break;
        case 'r': o->run_dir = optarg; break;
        case 'S': o->socket = optarg; break;
        case 'R': o->runtime = optarg; break;
        case 'D': o->dashboard_addr = optarg; break;
        case 'B': o->bridge = optarg; break;
        case 'C': o->config = optarg; break;
        case 'U':
            if (parse_size(optarg, &o->max_upload, &err) < 0) {
                fprintf(stderr, "shoal daemon: --max-upload: %s\n", err.msg);
                return -1;
            }
            break;
        case 'd': o->debug = true; break;
        case 'M':
        case 'P':
        case 'T':
        case 'I':
            if (limit_option(ch, optarg, &o->limits) < 0)
                return -1;
            break;
        case 'h':
            printf("Usage: shoal daemon [--state-dir DIR] [--run-dir DIR] [--socket PATH] "
                   "[--runtime PATH] [--dashboard-addr IP:PORT] [--bridge NAME] [--max-upload SIZE] "
                   "[--config PATH] [--debug]\n"
                   "       [--max-connections N] [--max-connections-per-ip N] "
                   "[--request-timeout S] [--idle-timeout S]\n\n"
                   "  --state-dir DIR  persistent state (default /var/lib/shoal)\n"
                   "  --run-dir DIR    volatile state: logs, runtime state (default /run/shoal)\n"
                   "  --socket PATH    API socket (default RUN_DIR/shoal.sock)\n"
                   "  --runtime PATH   OCI runtime (default crun; runc is accepted)\n"
                   "  --dashboard-addr IP:PORT  serve the web dashboard there (plain HTTP,\n"
                   "                   token required: shoal dashboard url); off by default\n"
                   "  --bridge NAME    bridge of the bridged tasks (default shoal0); daemons\n"
                   "                   sharing a network namespace need one each\n"
                   "  --max-upload SIZE  largest image upload accepted (default 4G; 0: no cap)\n"
                   "  --config PATH    configuration file (default /etc/shoal/daemon.json when\n"
                   "                   it exists; keys in docs/design.md)\n"
                   "  --max-connections N  connections each network listener (dashboard,\n"
                   "                   cluster port) holds at once (default %d)\n"
                   "  --max-connections-per-ip N  of those, from one IP address (default %d)\n"
                   "  --request-timeout S  seconds a network client has to send a request's\n"
                   "                   headers, or to go on with its body (default %d)\n"
                   "  --idle-timeout S seconds a network keep-alive connection may wait\n"
                   "                   between requests (default %d)\n",
                   DEFAULT_MAX_CONNS, DEFAULT_MAX_CONNS_PER_ADDR, DEFAULT_REQUEST_TIMEOUT_S,
                   DEFAULT_IDLE_TIMEOUT_S);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shoal daemon: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!net_valid_ifname(o->bridge)) {
        fprintf(stderr, "shoal daemon: invalid --bridge '%s' (letters, digits, '_', '-'; at "
                        "most 15)\n", o->bridge);
        return -1;
    }
    return 0;
}

/* The node's identity survives restarts: <state_dir>/node_id. */
static int load_node_id(struct shoal *sh, struct serr *err)
{
    char *path = shoal_state_path(sh, "node_id");
    char *text = NULL;
    int rc = 0;
    if (read_file(path, &text, NULL, NULL) == 0 && strlen(text) >= 25) {
        snprintf(sh->node_id, sizeof(sh->node_id), "%.25s", text);
    } else {
        random_hex(sh->node_id, 25);
        rc = write_file_atomic(path, sh->node_id, strlen(sh->node_id), true, err);
    }
    free(text);
    free(path);
    return rc;
}

/* Descriptors: the soft limit goes up to the hard one, and the network
 * listeners may hold at most half of them (a cluster-port connection takes
 * three: TCP and a socketpair; a dashboard one takes one), so the daemon's
 * own work (sockets to other nodes, network passes, files) never hits EMFILE
 * however many clients connect. */
static void reserve_fds(struct http_limits *l)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t budget = rl.rlim_cur / 2, per_conn = 3 + 1; /* cluster port + dashboard */
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)l->max_conns * per_conn > budget) {
        int fit = (int)(budget / per_conn);
        log_warn("--max-connections %d lowered to %d: the daemon may open %llu files", l->max_conns,
                 fit > 1 ? fit : 1, (unsigned long long)rl.rlim_cur);
        l->max_conns = fit > 1 ? fit : 1;
    }
    if (l->max_conns_per_addr > l->max_conns)
        l->max_conns_per_addr = l->max_conns;
}

/* This binary's path, for its helper processes (layers unpacked, the node
 * certificate checked): new string, or NULL when it cannot be named. */
static char *self_exe(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    return xstrdup(exe);
}

static int init_shoal(struct shoal *sh, const struct options *o, struct serr *err)
{
    int64_t start_ms = now_ms();
    if (daemon_config_load(sh, o->config, err) < 0) /* first: a bad file leaves nothing */
        return -1;
    sh->state_dir = realpath(o->state_dir, NULL);
    if (sh->state_dir == NULL && (mkdir_p(o->state_dir, 0700, err) < 0 ||
                                  (sh->state_dir = realpath(o->state_dir, NULL)) == NULL))
        return serr_errno(err, "state dir %s", o->state_dir);
    /* write_file_atomic's leftovers of a daemon killed mid-write (node_id,
     * swarm.json...): each store below removes those of its own directory
     * where it opens it. */
    remove_stale_tmp_files(sh->state_dir, start_ms);
    if (mkdir_p(o->run_dir, 0700, err) < 0 || (sh->run_dir = realpath(o->run_dir, NULL)) == NULL)
        return serr_wrap(err, "run dir");
    sh->socket_path = o->socket ? xstrdup(o->socket) : shoal_run_path(sh, "shoal.sock");
    sh->exe = self_exe();
    sh->bridge = o->bridge;
    sh->net_limits = o->limits;
    reserve_fds(&sh->net_limits);
    gethostname(sh->hostname, sizeof(sh->hostname) - 1);
    if (load_node_id(sh, err) < 0 || store_open(&sh->store, err) < 0)
        return -1;
    char *images = shoal_state_path(sh, "images");
    char *crun_root = shoal_run_path(sh, "runtime");
    char *bundles = shoal_state_path(sh, "containers");
    int rc = image_store_open(images, &sh->images, err);
    /* Layers are unpacked by processes of this binary: libarchive and what it
     * loads (libstdc++ among them, never unloaded) stay out of the daemon
     * (docs/benchmarks.md, Footprint). Unpacked here when it cannot be named. */
    if (rc == 0 && sh->exe)
        image_store_unpack_apart(sh->images, sh->exe);
    if (rc == 0)
        rc = runtime_init(&sh->rt, o->runtime, crun_root, bundles, err);
    free(images);
    free(crun_root);
    free(bundles);
    return rc;
}

static int start_services(struct shoal *sh, const struct options *o, struct serr *err)
{
    uv_timer_init(sh->loop, &sh->kick_timer);
    uv_timer_init(sh->loop, &sh->wakeup_timer);
    uv_timer_init(sh->loop, &sh->tick_timer);
    uv_timer_init(sh->loop, &sh->stop_timer);
    sh->kick_timer.data = sh->wakeup_timer.data = sh->tick_timer.data = sh;
    agent_env_from_shoal(sh, &sh->agent_env);
    agent_upstream_from_shoal(sh, &sh->agent_upstream);
    if (agent_start(&sh->agent_env, &sh->agent_upstream, &sh->agent, err) < 0)
        return -1;
    sh->metrics = node_metrics_start(sh);
    sh->alerting = alerting_start(sh);
    sh->metrics_keeper = metrics_keeper_start(sh);
    if (swarm_resume(sh, err) < 0)
        return -1;
    static const char *const spool[] = {"/v1/images/import", "/v1/images/load",
                                        "/v1/images/build", "/v1/node/build", NULL};
    char *spool_dir = shoal_state_path(sh, "tmp");
    /* Upload spools and layer downloads left by a daemon killed mid-way:
     * nothing else uses the directory before the API starts. */
    if (rm_rf(spool_dir, err) < 0 || mkdir_p(spool_dir, 0700, err) < 0) {
        free(spool_dir);
        return -1;
    }
    sh->api = http_server_start(sh->loop, sh->socket_path, spool_dir, spool, sh->front->route, sh,
                                err);
    free(spool_dir);
    if (sh->api == NULL)
        return -1;
    http_server_set_spool_max(sh->api, (uint64_t)o->max_upload);
    /* Its remote connections come from the cluster port (capped there). */
    http_server_set_limits(sh->api, &(struct http_limits){
                                        .request_timeout_ms = sh->net_limits.request_timeout_ms,
                                        .idle_timeout_ms = sh->net_limits.idle_timeout_ms});
    http_server_set_headers(sh->api, sh->front->headers);
    if (sh->front->start(sh, o->dashboard_addr, err) < 0)
        return -1;
    uv_timer_start(&sh->tick_timer, tick_cb, 1000, 1000);
    uv_signal_init(sh->loop, &sh->sigterm);
    uv_signal_init(sh->loop, &sh->sigint);
    sh->sigterm.data = sh->sigint.data = sh;
    uv_signal_start(&sh->sigterm, on_signal, SIGTERM);
    uv_signal_start(&sh->sigint, on_signal, SIGINT);
    shoal_kick(sh);
    return 0;
}

static void free_shoal(struct shoal *sh)
{
    orch_tasks_free(sh->orch_tasks);
    store_close(sh->store);
    image_store_close(sh->images);
    daemon_config_free(sh);
    runtime_free(&sh->rt);
    free(sh->state_dir);
    free(sh->exe);
    free(sh->run_dir);
    free(sh->socket_path);
    free(sh->swarm_addr);
    free(sh->listen_addr);
}

static int start_failed(const struct serr *err)
{
    fprintf(stderr, "shoal daemon: %s\n", err->msg);
    return 1;
}

int daemon_main(int argc, char **argv, const struct daemon_front *front)
{
    struct options o;
    if (parse_options(argc, argv, &o) < 0)
        return 2;
    if (o.debug)
        log_set_level(LOG_DEBUG);
    if (geteuid() != 0) {
        fprintf(stderr, "shoal daemon: must run as root (containers, mounts, cgroups)\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    memory_setup(); /* before any thread */
    /* A registry pull holds a thread-pool thread for its whole download; libuv's
     * default of 4 would let four slow pulls stall uploads, layer GC and name
     * lookups. Read by libuv at the first uv_queue_work. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    /* Containers are re-parented to the daemon when crun exits, so their exit
     * status reaches us (waitpid on the pidfd's process). */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    struct shoal sh = {.loop = uv_default_loop(), .front = front};
    struct serr err = {0};
    if (init_shoal(&sh, &o, &err) < 0)
        return start_failed(&err);
    if (swarm_check_tls(&sh, &err) < 0) { /* nothing runs yet: all is freed */
        free_shoal(&sh);
        return start_failed(&err);
    }
    if (start_services(&sh, &o, &err) < 0)
        return start_failed(&err);
    log_info("shoal %s: node %s (%s), API on %s", SHOAL_VERSION, sh.node_id, sh.hostname,
             sh.socket_path);
    uv_run(sh.loop, UV_RUN_DEFAULT);
    close_handle((uv_handle_t *)&sh.stop_timer);
    uv_run(sh.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(sh.loop);
    if (rc != 0)
        log_warn("loop closed with handles still open");
    free_shoal(&sh);
    log_info("stopped");
    return 0;
}
