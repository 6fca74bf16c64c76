/* Services as desired state: validation of specs and patches, image
 * resolution, and the container spec each new task is given. */
#ifndef SHOAL_MANAGER_SERVICE_H
#define SHOAL_MANAGER_SERVICE_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

struct store;

/* The network a service's tasks get when its spec names none: "bridge" (a
 * namespace and address of the node's subnet, agent/net.h) or "host". */
#define SERVICE_DEFAULT_NETWORK "bridge"

/* Modes of a spec: "global" and "global-job" run one task per eligible node
 * (slots named by the node id), "replicated-job" and "global-job" run to
 * completion (manager/job_runs.h). */
bool service_mode_global(json_t *spec);
bool service_mode_job(json_t *spec);

/* Validates an API spec and returns a normalised copy (defaults filled in,
 * image reference normalised to NAME:TAG). Unknown fields, bad values and
 * unknown images are errors (SERR_INVALID / SERR_NOT_FOUND). */
json_t *service_spec_normalize(struct store *st, json_t *spec, struct serr *err);

/* Applies an update patch (docs/api.md) to a spec: returns a new normalised spec. */
json_t *service_spec_patch(struct store *st, json_t *spec, json_t *patch, struct serr *err);

/* True when two specs give tasks different containers (a rolling update is
 * needed), false when only replicas/update_config/name changed. */
int service_spec_template_changed(json_t *a, json_t *b);

/* Finds an image by NAME[:TAG], full id or unique id prefix (new reference). */
json_t *image_resolve(struct store *st, const char *ref, struct serr *err);

/* The stored images of a reference pinned to a digest (NAME[:TAG]@DIGEST):
 * one per platform pulled from that index (a new array, empty when none),
 * or NULL for any other reference (no variants: image_resolve). */
json_t *image_variants(struct store *st, const char *ref);

/* The variant of `variants` (image_variants) for a node of `platform`
 * ("os/arch[/variant]"), borrowed. A single image pulled from a plain
 * manifest (no "platforms") runs everywhere, as before. NULL with `err`: the
 * index has no manifest for the platform (SERR_INVALID; the message lists
 * the platforms it has), or has one that the store lacks (SERR_UNAVAILABLE:
 * it says how to pull it). `ref` is for messages. */
json_t *image_variant_for(json_t *variants, const char *ref, const char *platform,
                          struct serr *err);

/* The container spec of a new task: the image's Entrypoint/Cmd/Env/WorkingDir
 * /User merged with the service spec (new reference). */
json_t *task_container_spec(json_t *spec, json_t *image);

#endif
