/* Secrets and configs (Docker Swarm's): named blobs of at most 500 KB kept in
 * the Raft-replicated store, tables "secrets" and "configs". A record is
 * {"id", "name", "created_at", "updated_at", "data": base64}; a secret's data
 * is never shown by the API's views (a config's is, as Docker's --pretty).
 * Names are unique regardless of case within each kind. */
#ifndef SHOAL_MANAGER_SECRET_H
#define SHOAL_MANAGER_SECRET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

struct store;

#define SECRET_MAX_SIZE (500 * 1024)

/* "secrets" or "configs" (the store table) from an API kind; NULL if neither. */
const char *secret_table(const char *kind);
/* "secret" or "config" for messages. */
const char *secret_noun(const char *table);

/* A new record from an API body {"name", "data": base64}: validated (name,
 * size 1..500 KB, name free in any case). NULL with err otherwise. */
json_t *secret_new(struct store *st, const char *table, json_t *body, struct serr *err);
/* The record by id, unique id prefix or name (any case); new reference. */
json_t *secret_find(struct store *st, const char *table, const char *ref, struct serr *err);
/* What the API shows: a secret without its data (new reference). */
json_t *secret_view(const char *table, json_t *rec);
/* Names of the services whose spec uses the record (spec "secrets" or
 * "configs" entries with "source" equal to its name). */
json_t *secret_users(struct store *st, const char *table, const char *name);

/* Base64 (standard alphabet, padded). decode: NULL when malformed; *len set. */
char *base64_encode(const unsigned char *data, size_t len);
unsigned char *base64_decode(const char *text, size_t *len);

#endif
