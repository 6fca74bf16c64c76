/* Docker's verbs on one container of this node (agent/agent_ctl.c):
 * POST /v1/containers/{ref}/stop|restart?t=S, /kill?signal=SIG, /start,
 * GET /v1/containers/{ref}/json, GET /v1/containers/stats and
 * /v1/containers/{ref}/stats (docs/api.md). */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "api/agent_reply.h"
#include "api/api_int.h"
#include "daemon/shoal.h"
#include "http/http.h"

bool require_agent(struct shoal *sh, struct http_req *req)
{
    if (sh->agent != NULL)
        return true;
    respond_err(req, SERR_UNAVAILABLE, "this node runs no containers yet");
    return false;
}

/* ?t=SECONDS: 0..3600, or -1 when not given; false once answered (bad value). */
static bool stop_timeout(struct http_req *req, int *timeout_s)
{
    char text[16];
    *timeout_s = -1;
    if (!http_query_get(req, "t", text, sizeof(text)) || text[0] == '\0')
        return true;
    char *end;
    long t = strtol(text, &end, 10);
    if (*end != '\0' || t < 0 || t > 3600) {
        respond_err(req, SERR_INVALID, "t: seconds from 0 to 3600");
        return false;
    }
    *timeout_s = (int)t;
    return true;
}

static void stop_or_restart(struct shoal *sh, struct http_req *req, char **args, bool restart)
{
    int timeout_s;
    if (require_agent(sh, req) && stop_timeout(req, &timeout_s))
        agent_ctr_stop(sh->agent, args[0], timeout_s, restart, agent_reply_http(req));
}

void post_container_stop(struct shoal *sh, struct http_req *req, char **args)
{
    stop_or_restart(sh, req, args, false);
}

void post_container_restart(struct shoal *sh, struct http_req *req, char **args)
{
    stop_or_restart(sh, req, args, true);
}

void post_container_start(struct shoal *sh, struct http_req *req, char **args)
{
    if (require_agent(sh, req))
        agent_ctr_start(sh->agent, args[0], agent_reply_http(req));
}

void post_container_kill(struct shoal *sh, struct http_req *req, char **args)
{
    char signal[32] = "";
    if (!require_agent(sh, req))
        return;
    http_query_get(req, "signal", signal, sizeof(signal));
    struct serr err = {0};
    if (agent_ctr_kill(sh->agent, args[0], signal[0] ? signal : NULL, &err) < 0)
        http_respond_error(req, &err);
    else
        respond_json(req, 200, json_object());
}

void respond_result(struct http_req *req, json_t *out /* stolen */, const struct serr *err)
{
    if (out)
        respond_json(req, 200, out);
    else
        http_respond_error(req, err);
}

void get_container_json(struct shoal *sh, struct http_req *req, char **args)
{
    struct serr err = {0};
    if (require_agent(sh, req))
        respond_result(req, agent_ctr_inspect(sh->agent, args[0], &err), &err);
}

static void container_stats(struct shoal *sh, struct http_req *req, const char *ref)
{
    struct serr err = {0};
    if (require_agent(sh, req))
        respond_result(req, agent_ctr_stats(sh->agent, ref, query_flag(req, "all"), &err), &err);
}

void get_containers_stats(struct shoal *sh, struct http_req *req, char **args)
{
    container_stats(sh, req, NULL);
}

void get_container_stats(struct shoal *sh, struct http_req *req, char **args)
{
    container_stats(sh, req, args[0]);
}
