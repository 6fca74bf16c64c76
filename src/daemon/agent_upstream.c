/* The agent's view of the cluster (daemon/agent_upstream.h): the same on
 * managers (local store, reports proposed or forwarded to the leader) and on
 * workers (the session with the leader). */
#include "daemon/agent_upstream.h"

#include <string.h>

#include "agent/net.h"
#include "agent/upstream.h"
#include "base/util.h"
#include "daemon/layers.h"
#include "daemon/session.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "manager/dispatcher.h"
#include "manager/service.h"
#include "model/task.h"
#include "raft/cluster.h"
#include "store/store.h"

json_t *shoal_assigned_tasks(struct shoal *sh, json_t *held)
{
    if (sh->cluster)
        return store_node_tasks(sh->store, sh->node_id, task_final_states, held);
    if (sh->session)
        return session_tasks(sh->session);
    return json_array();
}

/* A manager's store keeps the deletions of this node's tasks; a worker's
 * session gives the whole list (history included) instead: NULL, the agent
 * then sweeps with it. The store's first answer after the node becomes a
 * manager is NULL too (not known), and so a full sweep. */
json_t *shoal_deleted_tasks(struct shoal *sh)
{
    if (sh->cluster)
        return store_take_deleted_tasks(sh->store, sh->node_id);
    return NULL;
}

json_t *shoal_image_get(struct shoal *sh, const char *image_id)
{
    if (sh->cluster)
        return store_get(sh->store, "images", image_id);
    return sh->session ? session_image(sh->session, image_id) : NULL;
}

json_t *shoal_nodes(struct shoal *sh)
{
    if (sh->cluster)
        return swarm_node_addrs(sh);
    return sh->session ? session_nodes(sh->session) : NULL;
}

const char *shoal_overlay(struct shoal *sh)
{
    json_t *meta = sh->cluster ? store_get(sh->store, "meta", "cluster") : NULL;
    const char *mode = meta          ? json_string_value(json_object_get(meta, "overlay"))
                       : sh->session ? session_overlay(sh->session)
                                     : NULL;
    bool vxlan = mode != NULL && strcmp(mode, NET_OVERLAY_VXLAN) == 0;
    json_decref(meta);
    return vxlan ? NET_OVERLAY_VXLAN : NET_OVERLAY_DIRECT;
}

json_t *shoal_mesh(struct shoal *sh)
{
    if (sh->cluster && sh->dispatcher)
        return json_incref(dispatcher_mesh(sh->dispatcher));
    return sh->session ? session_mesh(sh->session) : NULL;
}

/* The leader proposes reports itself; every other node sends them with its
 * next heartbeat. */
void shoal_report_task(struct shoal *sh, const char *task_id, json_t *fields)
{
    if (sh->cluster && cluster_is_leader(sh->cluster)) {
        cluster_propose(sh->cluster, json_pack("[o]", op_merge("tasks", task_id, fields)), NULL,
                        NULL);
    } else if (sh->session) {
        session_report(sh->session, task_id, fields);
    } else {
        json_decref(fields);
    }
}

/* ---- struct agent_upstream over the functions above ---- */

static json_t *up_assigned_tasks(void *data, json_t *held)
{
    return shoal_assigned_tasks(data, held);
}

static json_t *up_deleted_tasks(void *data)
{
    return shoal_deleted_tasks(data);
}

static json_t *up_image_get(void *data, const char *image_id)
{
    return shoal_image_get(data, image_id);
}

static void up_report_task(void *data, const char *task_id, json_t *fields)
{
    shoal_report_task(data, task_id, fields);
}

static json_t *up_nodes(void *data)
{
    struct shoal *sh = data;
    return sh->role[0] ? shoal_nodes(sh) : NULL;
}

static json_t *up_mesh(void *data)
{
    return shoal_mesh(data);
}

static const char *up_overlay(void *data)
{
    return shoal_overlay(data);
}

/* A manager answers nodes, mesh and overlay from its store: its count of
 * the ops that may change them (never 0); a worker cannot tell. */
static unsigned long long up_net_changes(void *data)
{
    struct shoal *sh = data;
    if (sh->role[0] == '\0' || sh->cluster == NULL || sh->dispatcher == NULL)
        return 0;
    return store_net_changes(sh->store) + 1;
}

/* A manager: the last change of this node's tasks plus the count above, both
 * only growing, so the sum moves when either does; a worker cannot tell. */
static unsigned long long up_sync_key(void *data)
{
    struct shoal *sh = data;
    unsigned long long net = up_net_changes(data);
    if (net == 0)
        return 0;
    return store_node_tasks_changed_at(sh->store, sh->node_id) + net;
}

static void up_fetch_layers(void *data, json_t *image, agent_layers_cb cb, void *arg)
{
    layers_fetch(data, image, cb, arg);
}

static char *up_secret_data(void *data, const char *table, const char *id, struct serr *err)
{
    return shoal_secret_data(data, table, id, err);
}

/* A local run resolves its image as a service would, in the local store. */
static json_t *up_run_container_spec(void *data, json_t *spec, struct serr *err)
{
    struct shoal *sh = data;
    json_t *norm = service_spec_normalize(sh->store, spec, err);
    if (norm == NULL)
        return NULL;
    json_t *image =
        image_resolve(sh->store, json_string_value(json_object_get(norm, "image")), err);
    json_t *container = image ? task_container_spec(norm, image) : NULL;
    json_decref(image);
    json_decref(norm);
    return container;
}

void agent_upstream_from_shoal(struct shoal *sh, struct agent_upstream *up)
{
    *up = (struct agent_upstream){
        .data = sh,
        .assigned_tasks = up_assigned_tasks,
        .deleted_tasks = up_deleted_tasks,
        .image_get = up_image_get,
        .report_task = up_report_task,
        .nodes = up_nodes,
        .mesh = up_mesh,
        .overlay = up_overlay,
        .net_changes = up_net_changes,
        .sync_key = up_sync_key,
        .fetch_layers = up_fetch_layers,
        .secret_data = up_secret_data,
        .run_container_spec = up_run_container_spec,
    };
}

void agent_env_from_shoal(struct shoal *sh, struct agent_env *env)
{
    *env = (struct agent_env){
        .loop = sh->loop,
        .rt = &sh->rt,
        .images = sh->images,
        .state_dir = sh->state_dir,
        .run_dir = sh->run_dir,
        .node_id = sh->node_id,
        .bridge = sh->bridge,
        .backup_dir = sh->backup_dir,
        .host_jobs_disabled = sh->host_jobs_disabled,
    };
}
