/* Join tokens: shown, or rotated (the CA's new secrets proposed to the store). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/http.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "daemon/swarm_int.h"
#include "manager/ca.h"
#include "raft/cluster.h"
#include "store/store.h"

struct token_ctx {
    struct http_req *req;
    json_t *reply;
};

static void token_committed(void *arg, int status, const struct serr *err)
{
    struct token_ctx *t = arg;
    if (status < 0) {
        http_respond_error(t->req, err);
        json_decref(t->reply);
    } else {
        respond_json(t->req, 200, t->reply);
    }
    free(t);
}

void swarm_join_token(struct shoal *sh, struct http_req *req, const char *role, bool rotate)
{
    struct serr err = {0};
    if (strcmp(role, "worker") != 0 && strcmp(role, "manager") != 0) {
        respond_err(req, SERR_INVALID, "join token role is worker or manager");
        return;
    }
    char *dir = swarm_ca_dir(sh, &err);
    char token[200];
    if (dir == NULL || (rotate && ca_token_rotate(dir, role, &err) < 0) ||
        ca_token(dir, role, token, sizeof(token), &err) < 0) {
        http_respond_error(req, &err);
        free(dir);
        return;
    }
    free(dir);
    char command[400];
    snprintf(command, sizeof(command), "shoal swarm join --token %s %s", token, sh->swarm_addr);
    json_t *reply = json_pack("{s:s, s:s, s:s}", "role", role, "token", token, "command", command);
    if (!rotate) {
        respond_json(req, 200, reply);
        return;
    }
    json_t *meta = swarm_state_ca_meta(sh, &err);
    if (meta == NULL) {
        http_respond_error(req, &err);
        json_decref(reply);
        return;
    }
    struct token_ctx *t = xcalloc(1, sizeof(*t));
    t->req = req;
    t->reply = reply;
    cluster_propose(sh->cluster, json_pack("[o]", op_put("meta", meta)), token_committed, t);
}
