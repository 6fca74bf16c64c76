/* Nodes as the core reads them: a node is a store record (JSON object, table
 * "nodes") written when it joins and by its heartbeats (docs/design.md,
 * Nodes). The accessors name the fields the core reads (model/record.h:
 * NULL-safe, borrowed). */
#ifndef SHOAL_MODEL_NODE_H
#define SHOAL_MODEL_NODE_H

#include "model/record.h"

RECORD_STR(node_id, "id")
RECORD_STR(node_hostname, "hostname")
/* "manager" or "worker". */
RECORD_STR(node_role, "role")
/* The address the node joined with (host:port). */
RECORD_STR(node_addr, "addr")
/* "ready" or "down", and when the manager last saw it change (ms since the epoch). */
RECORD_STR(node_status, "status")
RECORD_STR_IS(node_status_is, "status")
RECORD_INT(node_updated_at, "updated_at")
/* "active" or "drain" (the scheduler places tasks only on "active"). */
RECORD_STR(node_availability, "availability")
/* The node's labels and its resources (cpus, memory). */
RECORD_JSON(node_labels, "labels")
RECORD_JSON(node_resources, "resources")

#endif
