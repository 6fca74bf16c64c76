/* Network routes: user networks are store records (manager/netmodel.h). */
#include <string.h>

#include "api/api_int.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "manager/netmodel.h"
#include "store/store.h"

void get_networks(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (require_swarm(sh, req))
        respond_json(req, 200, network_list(sh->store));
}

void get_network(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_swarm(sh, req))
        return;
    struct serr err = {0};
    json_t *n = network_find(sh->store, args[0], &err);
    if (n)
        respond_json(req, 200, n);
    else
        http_respond_error(req, &err);
}

void post_network(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    json_t *body = leader_body(sh, req);
    if (body == NULL)
        return;
    struct serr err = {0};
    json_t *net = network_new(sh->store, body, &err);
    json_decref(body);
    if (net == NULL) {
        http_respond_error(req, &err);
        return;
    }
    json_t *reply = json_pack("{s:O, s:O, s:O}", "id", json_object_get(net, "id"), "name",
                              json_object_get(net, "name"), "subnet",
                              json_object_get(net, "subnet"));
    propose_and_reply(sh, req, json_pack("[o]", op_put_unique_name("networks", net)), 201, reply);
}

void delete_network(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    struct serr err = {0};
    json_t *n = network_find(sh->store, args[0], &err);
    if (n == NULL) {
        http_respond_error(req, &err);
        return;
    }
    json_t *users = json_object_get(n, "services");
    if (json_is_true(json_object_get(n, "builtin"))) {
        respond_err(req, SERR_INVALID, "the built-in networks cannot be removed");
    } else if (json_array_size(users) > 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "network %s is in use by service %s%s",
                 json_string_value(json_object_get(n, "name")),
                 json_string_value(json_array_get(users, 0)),
                 json_array_size(users) > 1 ? " and others" : "");
        respond_err(req, SERR_CONFLICT, msg);
    } else {
        const char *id = json_string_value(json_object_get(n, "id"));
        propose_and_reply(sh, req, json_pack("[o]", op_del("networks", id)), 200,
                          json_pack("{s:s}", "id", id));
    }
    json_decref(n);
}
