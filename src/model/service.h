/* Services as the core reads them: a service is a store record (JSON object,
 * table "services") whose user-given part is `spec` (docs/design.md,
 * Services). The accessors name the fields the core reads (model/record.h:
 * NULL-safe, borrowed). */
#ifndef SHOAL_MODEL_SERVICE_H
#define SHOAL_MODEL_SERVICE_H

#include "model/record.h"

RECORD_STR(service_id, "id")
RECORD_STR(service_name, "name")
/* The spec the user gave (image, mode, replicas, ...). */
RECORD_JSON(service_spec, "spec")
/* The spec's version: each update adds one. */
RECORD_INT(service_version, "version")
/* A job's current run (manager/job_runs.h); 0 for services and jobs not yet run. */
RECORD_INT(service_run, "run")
/* Times in milliseconds since the epoch. */
RECORD_INT(service_created_at, "created_at")
RECORD_INT(service_updated_at, "updated_at")
/* The rolling update's state ("updating", "paused", "rollback_started", ...) or NULL. */
RECORD_STR(service_update_state, "update_state")

#endif
