/* The daemon's shared context: one per process, owned by the loop thread.
 * Modules receive it and never keep pointers into it past its lifetime. */
#ifndef SHOAL_DAEMON_SHOAL_H
#define SHOAL_DAEMON_SHOAL_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "agent/runtime.h"
#include "agent/upstream.h"
#include "base/version.h"
#include "http/http.h"

struct store;
struct cluster;
struct image_store;
struct agent;
struct http_server;
struct net;
struct session;
struct dispatcher;
struct orch_tasks;
struct node_metrics;
struct alerting;
struct metrics_keeper;
struct events_hub;
struct dashboard;
struct daemon_front;


struct shoal {
    uv_loop_t *loop;
    char *state_dir;   /* persistent: raft log, layers, volumes, container records */
    char *run_dir;     /* volatile (tmpfs): logs, crun state */
    char *socket_path; /* API */
    char *exe;         /* this binary, run for helper processes; NULL if unknown */
    char node_id[33];
    char hostname[256];

    struct store *store;     /* always open; empty while not in a swarm */
    struct cluster *cluster; /* NULL while not in a swarm */
    char *swarm_addr;        /* advertised cluster address while in a swarm */
    char *listen_addr;       /* where the cluster port listens ("IP:PORT"), NULL: swarm_addr */
    uint64_t raft_id;
    char role[16];           /* "manager" or "worker" while in a swarm, else "" */
    char secrets_key[65];    /* autolock: the secrets data key (hex) once unlocked, else "" */
    char autolock_key_id[17]; /* autolock: key_id of the unlock key the key file is sealed with */
    struct net *net;         /* cluster port: TLS contexts, listener, raft transport */
    struct session *session; /* heartbeats to the leader (every node but the leader) */
    struct dispatcher *dispatcher; /* managers: the leader side of sessions */
    long long job_last_id;   /* the highest batch job id this node gave as leader */
    long long job_history;   /* daemon.json "job-history": finished jobs kept (0: default) */
    int64_t jobs_trimmed_at; /* when the leader last trimmed the job history (ms) */
    /* The store version after which an orchestrator pass proposed nothing
     * (0: none since this node leads), when, and its wake-up time (0: none) */
    unsigned long long orch_settled;
    int64_t orch_settled_at, orch_settled_wake;
    struct orch_tasks *orch_tasks; /* the leader's tasks between passes, or NULL */

    struct image_store *images;
    char **insecure_registries; /* daemon.json "insecure-registries", NULL-terminated */
    bool node_exec_disabled;    /* daemon.json "node-exec": false (node exec, node cp) */
    bool host_jobs_disabled;    /* daemon.json "host-jobs": false (job sub --host) */
    char *job_image;            /* daemon.json "job-image": container jobs' default image */
    int image_gc_high;          /* daemon.json "image-gc-high-percent" (daemon/image_gc.h) */
    int image_gc_low;           /* daemon.json "image-gc-low-percent" */
    char **allowed_registries;  /* daemon.json "allowed-registries"; NULL: any */
    char *smtp_relay;           /* daemon.json "smtp-relay" (smtp://HOST:PORT), or NULL */
    json_t *engine_labels;      /* daemon.json "labels" ["k=v"] as {"k":"v"}, or NULL */
    char *smtp_from;            /* daemon.json "smtp-from", or NULL: shoal@HOSTNAME */
    char *backup_dir;           /* daemon.json "backup-dir" (volume backups), or NULL */
    double heat_threshold;      /* daemon.json "heat-threshold-celsius"; 0: off */
    double heat_hysteresis;     /* daemon.json "heat-hysteresis-celsius" (default 5) */
    struct alerting *alerting;  /* alert rules on the leader (daemon/alerting.h) */
    int metrics_history_days;   /* daemon.json "metrics-history-days" (default 7; 0: off) */
    struct metrics_keeper *metrics_keeper; /* stored metrics history (daemon/metrics_keeper.h) */
    struct runtime rt;
    const char *bridge;      /* bridged tasks' bridge (--bridge, default NET_BRIDGE) */
    struct agent *agent;
    struct agent_env agent_env;           /* the agent's, pointing into this */
    struct agent_upstream agent_upstream; /* daemon/agent_upstream.h */
    const struct daemon_front *front; /* the API served (daemon/daemon.h), from main.c */
    struct http_server *api;
    struct node_metrics *metrics; /* this node's samples (daemon/node_metrics.h) */
    /* Made and freed by the front (api/front.c): */
    struct events_hub *events;   /* GET /v1/events streams */
    struct dashboard *dashboard; /* --dashboard-addr, else NULL */
    /* The network listeners' limits (dashboard, cluster port; daemon flags,
     * docs/design.md "Security model"); the caps apply to each listener. */
    struct http_limits net_limits;

    uv_timer_t kick_timer;   /* coalesces "the state changed" into one reconcile */
    uv_timer_t wakeup_timer; /* orchestrator's next deadline (restart delays, updates) */
    uv_timer_t tick_timer;   /* a slow periodic pass */
    unsigned long ticks;     /* tick_timer's count (memory trim every minute) */
    uv_timer_t stop_timer;   /* ends a stop that hangs */
    uv_signal_t sigterm, sigint;
    bool stopping;
};

/* Schedules a reconcile pass (orchestrator on the leader, agent everywhere)
 * on the next loop iteration. Cheap: many calls make one pass. */
void shoal_kick(struct shoal *sh);

/* The agent's view of the cluster (daemon/agent_upstream.c, handed to the
 * agent as its struct agent_upstream), the same on managers (local store,
 * reports proposed or forwarded to the leader) and on workers (the session
 * with the leader). Each returns a new reference; report takes `fields`. */
json_t *shoal_assigned_tasks(struct shoal *sh, json_t *held);
/* The ids of this node's tasks deleted since the last call (a manager's
 * store), or NULL when not known (a worker, or the first call): see struct
 * agent_upstream's deleted_tasks. */
json_t *shoal_deleted_tasks(struct shoal *sh);
json_t *shoal_image_get(struct shoal *sh, const char *image_id);
/* Every node's [{"id","addr","subnet"}] (daemon/swarm.h); NULL when unknown. */
json_t *shoal_nodes(struct shoal *sh);
/* The cluster's overlay mode, NET_OVERLAY_DIRECT or NET_OVERLAY_VXLAN (a
 * static string): the store's meta "cluster" on managers, the session's
 * last answer on workers; NET_OVERLAY_DIRECT when unknown. */
const char *shoal_overlay(struct shoal *sh);
/* Networks and services' endpoints for the agent (manager/netmodel.h
 * mesh_build), new reference or NULL. */
json_t *shoal_mesh(struct shoal *sh);
void shoal_report_task(struct shoal *sh, const char *task_id, json_t *fields);

/* Path helpers: newly allocated "<state_dir>/<rel>" and "<run_dir>/<rel>". */
char *shoal_state_path(struct shoal *sh, const char *rel);
char *shoal_run_path(struct shoal *sh, const char *rel);

#endif
