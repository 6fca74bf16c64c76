/* Helpers shared by the route files. */
#ifndef SHOAL_API_API_INT_H
#define SHOAL_API_API_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

struct shoal;
struct http_req;

void respond_json(struct http_req *req, int status, json_t *obj /* stolen */);
void respond_err(struct http_req *req, enum serr_kind kind, const char *msg);
bool require_leader(struct shoal *sh, struct http_req *req);
bool require_swarm(struct shoal *sh, struct http_req *req);
/* Proposes `group` (stolen); answers `status` + `reply` (stolen) when committed. */
void propose_and_reply(struct shoal *sh, struct http_req *req, json_t *group, int status,
                       json_t *reply);
json_t *body_json(struct http_req *req, bool required);
bool query_flag(struct http_req *req, const char *key);
/* The service with replicas_running, replicas_desired and update_status (new). */
json_t *service_view(struct shoal *sh, json_t *svc);
/* Sends the request to the leader over the cluster port and relays its
 * answer; `answer_type` (a literal) is the content type of a 2xx answer. */
void forward_to_leader(struct shoal *sh, struct http_req *req, const char *answer_type);

/* routes_images.c */
void get_images(struct shoal *sh, struct http_req *req, char **args);
void post_image_import(struct shoal *sh, struct http_req *req, char **args);
void post_image_load(struct shoal *sh, struct http_req *req, char **args);
void delete_image(struct shoal *sh, struct http_req *req, char **args);

/* routes_networks.c */
void get_networks(struct shoal *sh, struct http_req *req, char **args);
void get_network(struct shoal *sh, struct http_req *req, char **args);
void post_network(struct shoal *sh, struct http_req *req, char **args);
void delete_network(struct shoal *sh, struct http_req *req, char **args);

/* routes_metrics.c */
void get_node_stats(struct shoal *sh, struct http_req *req, char **args);
void get_prometheus(struct shoal *sh, struct http_req *req, char **args);

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

#endif
