/* Property filters of batch jobs (`job sub -p`, `oarsub -p`, the REST
 * "property"): OAR's SQL-like WHERE clause, evaluated on a node's labels.
 *
 *   expr  := term { OR term }
 *   term  := factor { AND factor }
 *   factor:= NOT factor | '(' expr ')' | KEY OP VALUE
 *   OP    := = | != | <> | < | <= | > | >=
 *   VALUE := 'text' (a quote doubled inside: '') | a bare number or word
 *
 * AND, OR, NOT in any case. KEY is a node label; `host` and
 * `network_address` are the node's hostname unless a label has that name.
 * A node without the label has the value '' (so gpu!='yes' matches it).
 * The ordered operators compare numbers when both sides are numbers, text
 * otherwise, and never match a missing label.
 *
 * Pure: no store, no I/O. */
#ifndef SHOAL_MODEL_JOB_PROPS_H
#define SHOAL_MODEL_JOB_PROPS_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

/* Longest filter accepted. */
#define JOB_PROPS_MAX 1024

/* Checks `expr`'s syntax: 0, or -1 with err saying what is wrong and where
 * (its column, from 1). */
int job_props_check(const char *expr, struct serr *err);

/* Whether `node` (a store node: "labels", "hostname") satisfies `expr`; an
 * invalid expression matches no node. */
bool job_props_match(const char *expr, json_t *node);

#endif
