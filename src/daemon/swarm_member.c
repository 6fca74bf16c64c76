/* Starting and stopping the node's swarm parts (raft, cluster port,
 * dispatcher, session), resuming after a restart, and what the swarm's nodes
 * are (addresses, this node's record). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/log.h"
#include "base/platform.h"
#include "base/util.h"
#include "daemon/addr.h"
#include "daemon/clusternet.h"
#include "daemon/dispatch_host.h"
#include "daemon/session.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "daemon/swarm_int.h"
#include "manager/dispatcher.h"
#include "raft/cluster.h"
#include "store/store.h"

static void on_store_change(void *arg)
{
    shoal_kick(arg);
}

int swarm_start_cluster(struct shoal *sh, bool bootstrap, bool force_new, struct serr *err)
{
    char *dir = shoal_state_path(sh, "raft");
    struct cluster_config cfg = {.dir = dir,
                                 .raft_id = sh->raft_id,
                                 .addr = sh->swarm_addr,
                                 .bootstrap = bootstrap,
                                 .force_new = force_new,
                                 .transport = clusternet_raft_transport(sh)};
    int rc = cluster_start(sh->loop, sh->store, &cfg, on_store_change, sh, &sh->cluster, err);
    free(dir);
    return rc;
}

int swarm_start_member(struct shoal *sh, bool bootstrap, json_t *managers, struct serr *err)
{
    if (clusternet_load_tls(sh, err) < 0)
        return -1;
    if (strcmp(sh->role, "manager") == 0) {
        /* the port first: a busy one fails before raft runs */
        if (clusternet_listen(sh, err) < 0)
            return -1;
        if (swarm_start_cluster(sh, bootstrap, false, err) < 0)
            return -1;
        sh->dispatcher = shoal_dispatcher_start(sh);
    } else if (clusternet_listen(sh, err) < 0) {
        /* a worker's port serves managers only (its tasks' logs): not fatal */
        log_warn("%s: `service logs` cannot read this node's tasks", err->msg);
        memset(err, 0, sizeof(*err));
    }
    sh->session = session_start(sh, managers);
    return 0;
}

json_t *swarm_managers_with(json_t *managers, const char *join_addr)
{
    json_t *out = json_is_array(managers) ? json_deep_copy(managers) : json_array();
    size_t i;
    json_t *m;
    json_array_foreach(out, i, m)
    {
        if (join_addr && strcmp(json_string_value(m) ? json_string_value(m) : "", join_addr) == 0)
            join_addr = NULL;
    }
    if (join_addr)
        json_array_append_new(out, json_string(join_addr));
    return out;
}

void swarm_set_addrs(struct shoal *sh, const char *listen, const char *advertise)
{
    free(sh->listen_addr);
    free(sh->swarm_addr);
    sh->listen_addr = listen ? xstrdup(listen) : NULL;
    sh->swarm_addr = advertise ? xstrdup(advertise) : NULL;
}

/* write_file_atomic's leftovers of a daemon killed mid-write in ca/ and tls/:
 * nothing writes there before the membership resumes. */
static void remove_stale_swarm_tmp(struct shoal *sh)
{
    static const char *const dirs[] = {"ca", "tls", NULL};
    int64_t start_ms = now_ms();
    for (int i = 0; dirs[i]; i++) {
        char *dir = shoal_state_path(sh, dirs[i]);
        remove_stale_tmp_files(dir, start_ms);
        free(dir);
    }
}

int swarm_check_tls(struct shoal *sh, struct serr *err)
{
    char *path = shoal_state_path(sh, "swarm.json");
    bool member = access(path, F_OK) == 0;
    free(path);
    return member ? clusternet_check_tls(sh, err) : 0;
}

int swarm_resume(struct shoal *sh, struct serr *err)
{
    remove_stale_swarm_tmp(sh);
    char *path = shoal_state_path(sh, "swarm.json");
    json_t *cfg = json_load_file(path, 0, NULL);
    free(path);
    if (cfg == NULL)
        return 0; /* not in a swarm */
    const char *addr = json_string_value(json_object_get(cfg, "addr"));
    const char *raft_id = json_string_value(json_object_get(cfg, "raft_id"));
    const char *role = json_string_value(json_object_get(cfg, "role"));
    if (addr == NULL || raft_id == NULL) {
        json_decref(cfg);
        return serr_set(err, SERR_INTERNAL, "swarm.json is damaged");
    }
    swarm_set_addrs(sh, json_string_value(json_object_get(cfg, "listen_addr")), addr);
    sh->raft_id = strtoull(raft_id, NULL, 16);
    snprintf(sh->role, sizeof(sh->role), "%s", role ? role : "manager");
    log_info("resuming swarm membership as a %s, address %s", sh->role, sh->swarm_addr);
    json_t *managers = swarm_managers_with(json_object_get(cfg, "managers"),
                                           json_string_value(json_object_get(cfg, "join_addr")));
    int rc = swarm_start_member(sh, false, managers, err);
    json_decref(managers);
    json_decref(cfg);
    return rc;
}

json_t *swarm_self_node(struct shoal *sh, const char *role)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long long mem = (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
    json_int_t now = (json_int_t)now_ms();
    char raft_id[17];
    snprintf(raft_id, sizeof(raft_id), "%016llx", (unsigned long long)sh->raft_id);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{}, s:{s:i, s:I}, s:I, s:I, s:s, s:o, s:o}",
                     "id", sh->node_id, "hostname", sh->hostname, "addr", sh->swarm_addr, "role",
                     role, "availability", "active", "status", "ready", "labels", "resources",
                     "cpus", (int)cpus, "memory", (json_int_t)mem, "created_at", now, "updated_at",
                     now, "raft_id", raft_id, "platform", platform_self(), "engine_labels",
                     sh->engine_labels ? json_deep_copy(sh->engine_labels) : json_object());
}

void swarm_new_raft_id(struct shoal *sh)
{
    do {
        if (getrandom(&sh->raft_id, sizeof(sh->raft_id), 0) != sizeof(sh->raft_id))
            abort();
    } while (sh->raft_id == 0 || sh->raft_id > (1ULL << 62));
}

void swarm_reset_store(struct shoal *sh)
{
    struct serr err = {0};
    store_close(sh->store);
    if (store_open(&sh->store, &err) < 0) {
        log_error("store: %s", err.msg);
        abort();
    }
}

int swarm_choose_addrs(struct shoal *sh, json_t *body, const char *toward_ip, char *listen,
                       char *advertise, struct serr *err)
{
    json_t *lis = json_object_get(body, "listen_addr");
    json_t *adv = json_object_get(body, "advertise_addr");
    if ((lis && !json_is_string(lis) && !json_is_null(lis)) ||
        (adv && !json_is_string(adv) && !json_is_null(adv)))
        return serr_set(err, SERR_INVALID, "listen_addr and advertise_addr must be strings");
    struct addr_env env;
    if (addr_env_load(&env, sh->bridge, toward_ip, err) < 0)
        return -1;
    int rc = addr_pick(&env, json_string_value(lis), json_string_value(adv), listen, 40,
                       advertise, 40, err);
    addr_env_free(&env);
    return rc;
}

const char swarm_already_member[] = "This node is already part of a swarm. Use \"shoal swarm "
                                    "leave\" to leave this swarm and join another one.";

void swarm_stop_member(struct shoal *sh)
{
    session_stop(sh->session);
    sh->session = NULL;
    swarm_secrets_key_drop(sh);
    dispatcher_stop(sh->dispatcher);
    sh->dispatcher = NULL;
    clusternet_stop(sh);
}

json_t *swarm_manager_addrs(struct shoal *sh)
{
    json_t *nodes = store_list(sh->store, "nodes", NULL), *addrs = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *role = json_string_value(json_object_get(n, "role"));
        if (role && strcmp(role, "manager") == 0)
            json_array_append(addrs, json_object_get(n, "addr"));
    }
    json_decref(nodes);
    return addrs;
}

json_t *swarm_node_addrs(struct shoal *sh)
{
    json_t *nodes = store_list(sh->store, "nodes", NULL), *out = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        if (json_object_get(n, "subnet"))
            json_array_append_new(out, json_pack("{s:O, s:O, s:O}", "id", json_object_get(n, "id"),
                                                 "addr", json_object_get(n, "addr"), "subnet",
                                                 json_object_get(n, "subnet")));
    }
    json_decref(nodes);
    return out;
}
