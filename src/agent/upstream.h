/* What the agent is handed down by the daemon that runs it, so that it never
 * calls its host (as the C raft library takes `struct raft_io` and
 * `struct raft_fsm`, and swarmkit's agent an Executor and a StatusReporter):
 *
 * - struct agent_env: the node's local resources (loop, runtime, image
 *   store, directories, identity);
 * - struct agent_upstream: the cluster as this node sees it (its tasks,
 *   images, nodes and mesh) and where its reports go. A manager answers from
 *   its store and Raft, a worker from its session with the leader
 *   (daemon/agent_upstream.c); the agent cannot tell them apart.
 *
 * Both are owned by the caller of agent_start and must outlive the agent and
 * the work its containers left in the thread pool (the daemon's lifetime).
 * Every function runs on the loop thread. */
#ifndef SHOAL_AGENT_UPSTREAM_H
#define SHOAL_AGENT_UPSTREAM_H

#include <jansson.h>
#include <uv.h>

#include "base/err.h"

struct runtime;
struct image_store;

struct agent_env {
    uv_loop_t *loop;
    struct runtime *rt;
    struct image_store *images;
    const char *state_dir; /* persistent: container records, volumes, networks.local */
    const char *run_dir;   /* volatile (tmpfs): logs, health probes, secrets */
    const char *node_id;   /* this node's id (the mesh's key for its addresses) */
    const char *bridge;    /* the "bridge" network's bridge (--bridge) */
    const char *backup_dir; /* daemon.json "backup-dir": volume backups, shared by every
                             * node (agent/volumes.h); NULL: none */
    bool host_jobs_disabled; /* daemon.json "host-jobs": false: host jobs are rejected */
    /* How long a batch job's `running` report is held (agent.c); 0: the
     * default, AGENT_JOB_RUNNING_HOLD_MS (tests set it to be sure a job
     * ends within it, or not). */
    int job_running_hold_ms;
};

/* Runs once, later, when a fetch of layers ended: status 0, or <0 with why. */
typedef void (*agent_layers_cb)(void *arg, int status, const char *errmsg);

struct agent_upstream {
    void *data; /* the first argument of every function below */

    /* The tasks assigned to this node, history included (new reference), or
     * NULL when not known yet (a worker that has not heard from the leader):
     * the agent then changes nothing. Outside a swarm: an empty array. A task
     * in a final state may come as only {"id", "state", "desired_state"}: all
     * the agent reads of one. With `held` (the ids of the tasks whose
     * containers the agent holds; NULL: the whole history), the ended tasks
     * not in it may be left out (a manager does: the agent does nothing for
     * them, and the history would cost each sync its length). */
    json_t *(*assigned_tasks)(void *data, json_t *held);

    /* The ids of this node's tasks that left the store since the last call
     * (new reference), or NULL when not known (the first call, a worker, a
     * restored snapshot; or no such function): the agent then asks for the
     * whole list and sweeps the logs with it. Given ids, it removes those
     * tasks' logs only, and asks assigned_tasks with `held` (issue 14). */
    json_t *(*deleted_tasks)(void *data);

    /* An image's description {"id", "layers": [diff_ids]...} (new
     * reference), or NULL when unknown. */
    json_t *(*image_get)(void *data, const char *image_id);

    /* Takes `fields` (a task's observed state: "state", "message", "error",
     * "health"...): merged into the task on the leader, now or with the next
     * heartbeat. Dropped outside a swarm. */
    void (*report_task)(void *data, const char *task_id, json_t *fields);

    /* Every node's [{"id","addr","subnet"}] while in a swarm (new reference);
     * NULL outside one or when unknown. */
    json_t *(*nodes)(void *data);

    /* Networks and services' endpoints (manager/netmodel.h mesh_build), new
     * reference or NULL when unknown. */
    json_t *(*mesh)(void *data);

    /* The cluster's overlay mode, NET_OVERLAY_DIRECT or NET_OVERLAY_VXLAN (a
     * static string); NET_OVERLAY_DIRECT when unknown. */
    const char *(*overlay)(void *data);

    /* A count that moves whenever what nodes, mesh and overlay answer may
     * have changed; 0 when not known (or no such function): the agent then
     * reads them and plans the node's network at every sync. */
    unsigned long long (*net_changes)(void *data);

    /* A number that moves whenever what a sync reads may have changed: this
     * node's tasks (deleted ones included) or what net_changes counts; 0 when
     * not known (or no such function): every agent_sync_if_changed syncs. */
    unsigned long long (*sync_key)(void *data);

    /* Fetches the layers of `image` (borrowed) this node lacks into the image
     * store; `cb` runs once, later, on the loop. */
    void (*fetch_layers)(void *data, json_t *image, agent_layers_cb cb, void *arg);

    /* The data of a secret or config (`table`: "secrets" or "configs"),
     * base64, newly allocated (the caller wipes and frees it); NULL with
     * `err` set when it cannot be had. */
    char *(*secret_data)(void *data, const char *table, const char *id, struct serr *err);

    /* The task container spec a service of `spec` (a `shoal run` body turned
     * into a service spec, borrowed) would have: normalized, its image
     * resolved. New reference, or NULL with `err` set. */
    json_t *(*run_container_spec)(void *data, json_t *spec, struct serr *err);
};

#endif
