/* Alert routes (manager/alert.h): rules in "alert_rules", fired alerts in
 * "alerts"; the leader evaluates them (daemon/alerting.c). */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "base/json_get.h"
#include "base/util.h"
#include "daemon/shoal.h"
#include "http/http.h"
#include "manager/alert.h"
#include "store/store.h"

/* A rule by id or name (new reference), or NULL. */
static json_t *find_rule(struct shoal *sh, const char *ref)
{
    json_t *rules = store_list(sh->store, "alert_rules", NULL), *found = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        if (jstr_is(r, "id", ref) || jstr_is(r, "name", ref)) {
            found = json_incref(r);
            break;
        }
    }
    json_decref(rules);
    return found;
}

/* A webhook URL may hold a secret (Slack's do, in the path): the read-only
 * dashboard token sees "https://host/..." only. */
static void redact_webhooks(json_t *rules)
{
    size_t i, j;
    json_t *r, *n;
    json_array_foreach(rules, i, r)
    {
        json_array_foreach(json_object_get(r, "notify"), j, n)
        {
            const char *url = jstr(n, "to"), *host = url ? strstr(url, "://") : NULL;
            if (!jstr_is(n, "type", "webhook") || host == NULL)
                continue;
            size_t keep = (size_t)(host + 3 - url) + strcspn(host + 3, "/?#");
            char *cut = xasprintf("%.*s/...", (int)keep, url);
            json_object_set_new(n, "to", json_string(cut));
            free(cut);
        }
    }
}

void get_alert_rules(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    json_t *rules = store_list(sh->store, "alert_rules", "json_extract(data, '$.name')");
    if (req->peer_role && strcmp(req->peer_role, HTTP_ROLE_READ_ONLY) == 0)
        redact_webhooks(rules);
    respond_json(req, 200, rules);
}

/* Open alerts first, then past ones, newest first in each. */
void get_alert_history(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    if (!require_swarm(sh, req))
        return;
    json_t *open = store_list_where(sh->store, "alerts", "state", "open");
    json_t *past = store_list_where(sh->store, "alerts", "state", "resolved");
    json_t *out = json_array();
    for (size_t i = json_array_size(open); i > 0; i--)
        json_array_append(out, json_array_get(open, i - 1));
    for (size_t i = json_array_size(past); i > 0; i--)
        json_array_append(out, json_array_get(past, i - 1));
    json_decref(open);
    json_decref(past);
    respond_json(req, 200, out);
}

void post_alert_rule(struct shoal *sh, struct http_req *req, char **args)
{
    (void)args;
    json_t *body = leader_body(sh, req);
    if (body == NULL)
        return;
    char id[25];
    random_hex(id, sizeof(id) - 1);
    struct serr err = {0};
    json_t *rule = alert_rule_new(body, id, now_ms(), &err);
    json_t *dup = rule ? find_rule(sh, jstr(rule, "name")) : NULL;
    json_decref(body);
    if (dup) {
        serr_set(&err, SERR_CONFLICT, "alert %s already exists", jstr(rule, "name"));
        json_decref(dup);
        json_decref(rule);
        rule = NULL;
    }
    if (rule == NULL) {
        http_respond_error(req, &err);
        return;
    }
    json_t *reply = json_pack("{s:O, s:O}", "id", json_object_get(rule, "id"), "name",
                              json_object_get(rule, "name"));
    propose_and_reply(sh, req, json_pack("[o]", op_put("alert_rules", rule)), 201, reply);
}

void delete_alert_rule(struct shoal *sh, struct http_req *req, char **args)
{
    if (!require_leader(sh, req))
        return;
    json_t *rule = find_rule(sh, args[0]);
    if (rule == NULL) {
        char msg[200];
        snprintf(msg, sizeof(msg), "No such alert: %.150s", args[0]);
        respond_err(req, SERR_NOT_FOUND, msg);
        return;
    }
    json_t *reply = json_pack("{s:O}", "id", json_object_get(rule, "id"));
    propose_and_reply(sh, req, json_pack("[o]", op_del("alert_rules", jstr(rule, "id"))), 200,
                      reply);
    json_decref(rule);
}
