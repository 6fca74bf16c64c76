/* Helpers shared by the route files. */
#ifndef SHOAL_API_API_INT_H
#define SHOAL_API_API_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

struct shoal;
struct http_req;

void respond_json(struct http_req *req, int status, json_t *obj /* stolen */);
void respond_err(struct http_req *req, enum serr_kind kind, const char *msg);
bool require_leader(struct shoal *sh, struct http_req *req);
bool require_swarm(struct shoal *sh, struct http_req *req);
/* A node route a manager relays (node exec, volume backups, builds): the
 * local socket or a manager's certificate; else 403 "only managers may
 * `what`" and false. */
bool require_manager_caller(struct http_req *req, const char *what);
/* true when this node has its agent (runs containers); else answers 503. */
bool require_agent(struct shoal *sh, struct http_req *req);
/* 200 with `out` (stolen), or the error it came with. */
void respond_result(struct http_req *req, json_t *out, const struct serr *err);
/* 503 with {"message", "leader": address} so that the caller can retry there. */
void respond_not_leader(struct shoal *sh, struct http_req *req);
/* Proposes `group` (stolen); answers `status` + `reply` (stolen) when committed. */
void propose_and_reply(struct shoal *sh, struct http_req *req, json_t *group, int status,
                       json_t *reply);
/* The answer of a swarm operation (daemon/swarm.h's swarm_done_cb): 200 with
 * `result`, or the error; `data` is the request. */
void swarm_answer(void *data, int status, json_t *result, const struct serr *err);
json_t *body_json(struct http_req *req, bool required);
/* On the leader, the request's JSON body (new reference); NULL once the
 * request is answered (not the leader: 503 with its address; no body or a
 * malformed one: 400). */
json_t *leader_body(struct shoal *sh, struct http_req *req);
bool query_flag(struct http_req *req, const char *key);
/* A query parameter that is a number of ms (a time or a length) into *out,
 * `fallback` when absent or empty; false once answered 400 (not a whole
 * number >= 0 that fits). */
bool query_ms(struct http_req *req, const char *key, int64_t fallback, int64_t *out);
/* A node by id, id prefix or hostname (new); NULL once answered (404, or 409
 * when the reference is ambiguous). */
json_t *find_node(struct shoal *sh, struct http_req *req, const char *ref);
/* The service with replicas_running, replicas_desired and update_status (new). */
json_t *service_view(struct shoal *sh, json_t *svc);
/* Sends the request to the leader over the cluster port and relays its
 * answer; `answer_type` (a literal) is the content type of a 2xx answer. */
void forward_to_leader(struct shoal *sh, struct http_req *req, const char *answer_type);

/* routes_logs.c */
/* `since` (RFC 3339 in UTC, Unix seconds, or a duration before now_ns) as a
 * log timestamp "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" in out[31]. */
int logs_since_ts(const char *in, long double now_ns, char *out, struct serr *err);
/* Answers GET /v1/services/{id}/logs: the lines of the service's tasks on
 * every node, merged by time (task_id: only that task's; since: a log
 * timestamp or ""). */
void service_logs_fanout(struct shoal *sh, struct http_req *req, json_t *svc,
                         const char *task_id, long tail, const char *since);

/* routes_containers.c: stop, restart, start, kill, inspect and stats of a
 * container of this node */
void post_container_stop(struct shoal *sh, struct http_req *req, char **args);
void post_container_restart(struct shoal *sh, struct http_req *req, char **args);
void post_container_start(struct shoal *sh, struct http_req *req, char **args);
void post_container_kill(struct shoal *sh, struct http_req *req, char **args);
void get_container_json(struct shoal *sh, struct http_req *req, char **args);
void get_containers_stats(struct shoal *sh, struct http_req *req, char **args);
void get_container_stats(struct shoal *sh, struct http_req *req, char **args);

/* routes_images.c */
void get_images(struct shoal *sh, struct http_req *req, char **args);
/* Every image of the store, each with "tags": its tag names (new array). */
json_t *images_with_tags(struct shoal *sh);
void get_image(struct shoal *sh, struct http_req *req, char **args);
void post_image_import(struct shoal *sh, struct http_req *req, char **args);
void post_image_load(struct shoal *sh, struct http_req *req, char **args);
void post_image_pull(struct shoal *sh, struct http_req *req, char **args);
/* Ops storing each image description of `images` (without its tags, created
 * at `now`) and pointing each of its tags at it: a new array. */
json_t *image_ops(json_t *images, int64_t now);
/* routes_build.c: POST /v1/images/build (docs/api.md); POST /v1/node/build,
 * the build a manager asks of another node (managers only). */
void post_image_build(struct shoal *sh, struct http_req *req, char **args);
void post_node_build(struct shoal *sh, struct http_req *req, char **args);
void post_registry_login(struct shoal *sh, struct http_req *req, char **args);
/* Service create/update with an image the store lacks: image_needs_pull says
 * whether obj's "image" is such a registry reference; image_pull_then pulls
 * it on the leader (credentials from obj's "registry_auth" {"username",
 * "password"}), commits it, pins obj's "image" to NAME[:TAG]@sha256:DIGEST
 * and calls then(sh, req, obj, arg); a failed pull answers "No such image"
 * with the registry's error. */
typedef void (*image_pulled_fn)(struct shoal *sh, struct http_req *req, json_t *obj,
                                const char *arg);
bool image_needs_pull(struct shoal *sh, json_t *obj);
/* A tag in the store whose image came from a registry: obj's "image" becomes
 * NAME:TAG@DIGEST (the digest it was pulled with), as Swarm pins it. */
void image_pin(struct shoal *sh, json_t *obj);
void image_pull_then(struct shoal *sh, struct http_req *req, json_t *obj, const char *arg,
                     image_pulled_fn then);
/* On the leader after a node joined: for each service pinned to an index
 * whose variant for a node's platform the store lacks (the index has it), a
 * pull in the background (anonymous: service credentials are never stored)
 * of every node platform's image from that index. Failures are logged. */
void image_pull_missing_variants(struct shoal *sh);
void delete_image(struct shoal *sh, struct http_req *req, char **args);
/* POST /v1/images/{name|id}/tag {"target": NAME[:TAG]}: the target tag
 * (normalised) now names the image. */
void post_image_tag(struct shoal *sh, struct http_req *req, char **args);
/* POST /v1/images/{NAME[:TAG]}/push: streams progress lines (docs/api.md). */
void post_image_push(struct shoal *sh, struct http_req *req, char **args);
/* GET /v1/images/{name|id}/history: the config's history, newest first. */
void get_image_history(struct shoal *sh, struct http_req *req, char **args);
/* GET /v1/layers/{diff_id}: the layer as it arrived, for another node's
 * layers_fetch (daemon/layers.h). */
void get_layer(struct shoal *sh, struct http_req *req, char **args);

/* routes_prune.c */
void post_images_prune(struct shoal *sh, struct http_req *req, char **args);
void post_containers_prune(struct shoal *sh, struct http_req *req, char **args);
/* Bytes used by the files under a directory (du); 0 when unreadable. */
long long api_dir_size(const char *dir);

/* routes_volumes.c (manager/volume.h) */
void get_volumes(struct shoal *sh, struct http_req *req, char **args);
void get_volume(struct shoal *sh, struct http_req *req, char **args);
void post_volume(struct shoal *sh, struct http_req *req, char **args);
void delete_volume(struct shoal *sh, struct http_req *req, char **args);
void post_volumes_prune(struct shoal *sh, struct http_req *req, char **args);
/* routes_volume_backups.c */
void post_volume_backup(struct shoal *sh, struct http_req *req, char **args);
void post_volume_restore(struct shoal *sh, struct http_req *req, char **args);
void get_volume_backups(struct shoal *sh, struct http_req *req, char **args);
void post_node_volume(struct shoal *sh, struct http_req *req, char **args);
void get_system_df(struct shoal *sh, struct http_req *req, char **args);

/* routes_networks.c */
void get_networks(struct shoal *sh, struct http_req *req, char **args);
void get_network(struct shoal *sh, struct http_req *req, char **args);
void post_network(struct shoal *sh, struct http_req *req, char **args);
void delete_network(struct shoal *sh, struct http_req *req, char **args);

/* routes_secrets.c (secrets and configs) */
void get_secrets(struct shoal *sh, struct http_req *req, char **args);
void get_secret(struct shoal *sh, struct http_req *req, char **args);
void post_secret(struct shoal *sh, struct http_req *req, char **args);
void delete_secret(struct shoal *sh, struct http_req *req, char **args);
void post_swarm_unlock(struct shoal *sh, struct http_req *req, char **args);
void get_swarm_unlock_key(struct shoal *sh, struct http_req *req, char **args);
void post_swarm_unlock_key_rotate(struct shoal *sh, struct http_req *req, char **args);

/* routes_metrics.c */
void get_node_stats(struct shoal *sh, struct http_req *req, char **args);
void get_prometheus(struct shoal *sh, struct http_req *req, char **args);
/* GET /v1/nodes/{id}/metrics?since=MS&step=MS: the leader's recent points
 * and the stored history (manager/metrics_history.h). */
void get_node_metrics(struct shoal *sh, struct http_req *req, char **args);

/* routes_alerts.c */
void get_alert_rules(struct shoal *sh, struct http_req *req, char **args);
void get_alert_history(struct shoal *sh, struct http_req *req, char **args);
void post_alert_rule(struct shoal *sh, struct http_req *req, char **args);
void delete_alert_rule(struct shoal *sh, struct http_req *req, char **args);

/* routes_jobs.c */
void get_jobs(struct shoal *sh, struct http_req *req, char **args);
void get_job(struct shoal *sh, struct http_req *req, char **args);
void post_job(struct shoal *sh, struct http_req *req, char **args);
void delete_job(struct shoal *sh, struct http_req *req, char **args);
void post_job_hold(struct shoal *sh, struct http_req *req, char **args);
void post_job_resume(struct shoal *sh, struct http_req *req, char **args);
void get_job_logs(struct shoal *sh, struct http_req *req, char **args);
void get_oar_jobs(struct shoal *sh, struct http_req *req, char **args);
void get_oar_job(struct shoal *sh, struct http_req *req, char **args);
void post_oar_job(struct shoal *sh, struct http_req *req, char **args);
void delete_oar_job(struct shoal *sh, struct http_req *req, char **args);

/* routes_jobs_views.c: the Gantt and Resources views' data, OAR's resources */
void get_jobs_gantt(struct shoal *sh, struct http_req *req, char **args);
void get_resources(struct shoal *sh, struct http_req *req, char **args);
void get_oar_resources(struct shoal *sh, struct http_req *req, char **args);

/* routes_exec.c: node exec and node cp */
/* The nodes (store records, in their order) a target {"glob", "regex",
 * "list", "label", "role"} names (every one given must match; none: all
 * nodes). *out is a new array; SERR_NOT_FOUND when no node matches or a
 * listed name is no node's, SERR_INVALID for a malformed target. */
int exec_target_nodes(json_t *nodes, json_t *target, json_t **out, struct serr *err);
void post_nodes_exec(struct shoal *sh, struct http_req *req, char **args);
void post_nodes_cp(struct shoal *sh, struct http_req *req, char **args);
void post_node_exec(struct shoal *sh, struct http_req *req, char **args);

/* routes_cexec.c: `shoal exec` in a container or task; a task of another
 * node through that node (POST /v1/node/containers/{task}/exec). */
void post_container_exec(struct shoal *sh, struct http_req *req, char **args);
void post_node_container_exec(struct shoal *sh, struct http_req *req, char **args);
/* The input and terminal size of an interactive session, routed by its id. */
void post_exec_input(struct shoal *sh, struct http_req *req, char **args);
void post_exec_resize(struct shoal *sh, struct http_req *req, char **args);
/* Docker's exec inspect: {"id","running","exit_code"} of a session (GET). */
void get_exec_json(struct shoal *sh, struct http_req *req, char **args);
void get_node_exec_json(struct shoal *sh, struct http_req *req, char **args);
void post_node_exec_input(struct shoal *sh, struct http_req *req, char **args);
void post_node_exec_resize(struct shoal *sh, struct http_req *req, char **args);

#endif
