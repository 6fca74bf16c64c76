/* Join tokens: shown, or rotated (the CA's new secrets proposed to the store). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "daemon/swarm_int.h"
#include "manager/ca.h"
#include "raft/cluster.h"
#include "store/store.h"

struct token_ctx {
    swarm_done_cb done;
    void *data;
    json_t *reply;
};

static void token_committed(void *arg, int status, const struct serr *err)
{
    struct token_ctx *t = arg;
    if (status < 0) {
        t->done(t->data, -1, NULL, err);
        json_decref(t->reply);
    } else {
        t->done(t->data, 0, t->reply, NULL);
    }
    free(t);
}

/* The answer with the role's token, after a new secret when `rotate`. */
static json_t *token_reply(struct shoal *sh, const char *role, bool rotate, struct serr *err)
{
    if (strcmp(role, "worker") != 0 && strcmp(role, "manager") != 0) {
        serr_set(err, SERR_INVALID, "join token role is worker or manager");
        return NULL;
    }
    char *dir = swarm_ca_dir(sh, err);
    char token[200];
    if (dir == NULL || (rotate && ca_token_rotate(dir, role, err) < 0) ||
        ca_token(dir, role, token, sizeof(token), err) < 0) {
        free(dir);
        return NULL;
    }
    free(dir);
    char command[400];
    snprintf(command, sizeof(command), "shoal swarm join --token %s %s", token, sh->swarm_addr);
    json_t *reply =
        json_pack("{s:s, s:s, s:s}", "role", role, "token", token, "command", command);
    if (reply == NULL)
        serr_set(err, SERR_INTERNAL, "the answer cannot be encoded as JSON");
    return reply;
}

json_t *swarm_join_token(struct shoal *sh, const char *role, struct serr *err)
{
    return token_reply(sh, role, false, err);
}

int swarm_join_token_rotate(struct shoal *sh, const char *role, swarm_done_cb done, void *data,
                            struct serr *err)
{
    json_t *reply = token_reply(sh, role, true, err);
    if (reply == NULL)
        return -1;
    json_t *meta = swarm_state_ca_meta(sh, err);
    if (meta == NULL) {
        json_decref(reply);
        return -1;
    }
    struct token_ctx *t = xcalloc(1, sizeof(*t));
    t->done = done;
    t->data = data;
    t->reply = reply;
    cluster_propose(sh->cluster, json_pack("[o]", op_put("meta", meta)), token_committed, t);
    return 0;
}
