/* swarm leave: the task containers stopped, the node's parts and raft
 * stopped, the swarm files removed; the node takes a new id. */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/net.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/clusternet.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "daemon/swarm_int.h"
#include "raft/cluster.h"

struct leave_ctx {
    struct shoal *sh;
    swarm_done_cb done;
    void *data;
};

static void leave_done(struct leave_ctx *ctx)
{
    struct shoal *sh = ctx->sh;
    clusternet_free(sh);
    swarm_state_forget(sh);
    swarm_reset_store(sh);
    swarm_set_addrs(sh, NULL, NULL);
    sh->raft_id = 0;
    sh->role[0] = '\0';
    /* like docker, a node that joins again is a new node: its old record
     * stays Down in the swarm it left until a manager removes it */
    random_hex(sh->node_id, 25);
    struct serr err = {0};
    if (swarm_state_write_text(sh, "node_id", sh->node_id, &err) < 0)
        log_warn("node id: %s", err.msg);
    agent_sync(sh->agent); /* forgets the finished task containers */
    agent_net_leave(sh->agent);
    ctx->done(ctx->data, 0, json_object(), NULL);
    log_info("left the swarm");
    free(ctx);
}

static void leave_cluster_stopped(void *arg)
{
    leave_done(arg);
}

static void leave_tasks_stopped(void *arg)
{
    struct leave_ctx *ctx = arg;
    struct shoal *sh = ctx->sh;
    swarm_stop_member(sh);
    struct cluster *c = sh->cluster;
    sh->cluster = NULL;
    if (c)
        cluster_stop(c, leave_cluster_stopped, ctx);
    else
        leave_done(ctx);
}

int swarm_leave(struct shoal *sh, bool force, swarm_done_cb done, void *data, struct serr *err)
{
    if (sh->role[0] == '\0' || strcmp(sh->role, "joining") == 0)
        return serr_set(err, SERR_UNAVAILABLE, "This node is not part of a swarm");
    if (!force && strcmp(sh->role, "manager") == 0)
        return serr_set(err, SERR_CONFLICT,
                        "You are attempting to leave the swarm on a node that is participating "
                        "as a manager. Removing the last manager erases all current state of the "
                        "swarm. Use `--force` to ignore this message.");
    struct leave_ctx *ctx = xcalloc(1, sizeof(*ctx));
    ctx->sh = sh;
    ctx->done = done;
    ctx->data = data;
    agent_stop_all(sh->agent, leave_tasks_stopped, ctx);
    return 0;
}
