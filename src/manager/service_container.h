/* Service spec fields that shape the task containers: hostname, user,
 * workdir, entrypoint, labels, container_labels (docs/api.md). */
#ifndef SHOAL_MANAGER_SERVICE_CONTAINER_H
#define SHOAL_MANAGER_SERVICE_CONTAINER_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

/* Checks those fields of `spec` (absent ones are fine): SERR_INVALID with
 * the field named. */
int service_container_check(json_t *spec, struct serr *err);

/* "uid" or "uid:gid" in decimal. */
bool service_valid_user(const char *s);

/* `labels` is an object of string values with sane keys; `field` names it
 * in the error. */
int service_check_labels(json_t *labels, const char *field, struct serr *err);

/* Copies hostname, user, workdir and container_labels (as "labels") of a
 * checked spec into a task's container spec, over the image's values. */
void service_container_apply(json_t *spec, json_t *container);

/* The task's command line (new reference): the spec's entrypoint and args,
 * or the image's Entrypoint followed by the spec's args or the image's Cmd. */
json_t *service_task_args(json_t *spec, json_t *image_config);

/* A hostname template of the spec for one task: {{.Service.Name}},
 * {{.Service.ID}}, {{.Task.Name}}, {{.Task.ID}}, {{.Task.Slot}} replaced
 * (Swarm's; node placeholders are not known when the task is made). NULL
 * for an unknown placeholder; caller frees. */
char *service_hostname_expand(const char *tmpl, const char *service_id, const char *service_name,
                              const char *task_id, const char *task_name, const char *slot);

/* The fields of an update patch handled here (NULL-terminated). */
extern const char *const service_container_patch_fields[];

/* Applies those fields of `patch` to the spec copy `s` (docs/api.md, patch);
 * the result is validated with the whole spec afterwards. */
int service_container_patch(json_t *s, json_t *patch, struct serr *err);

#endif
