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

#include "base/base64.h" /* secrets' data is base64 */
#include "base/err.h"
#include "model/secret.h"

struct store;


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

/* ---- encryption at rest (AES-256-GCM, OpenSSL EVP) ----
 * A secret's data is kept in the store as "data_enc": base64 of a 12-byte
 * random nonce, the ciphertext and the 16-byte tag, with the record's id as
 * additional data (a ciphertext moved to another record does not open). The
 * 32-byte data key is the managers' (a file in their state dir, never in the
 * store nor the Raft log). */
#define SECRET_KEY_LEN 32

/* Encrypts `len` bytes: a new base64 string, NULL on an OpenSSL failure. */
char *secret_seal(const unsigned char key[SECRET_KEY_LEN], const char *aad,
                  const unsigned char *data, size_t len, struct serr *err);
/* Decrypts what secret_seal made: new buffer (*len bytes), NULL when the
 * text is malformed, the key wrong or the data changed. */
unsigned char *secret_unseal(const unsigned char key[SECRET_KEY_LEN], const char *aad,
                             const char *sealed, size_t *len, struct serr *err);
/* A secret record's "data" (base64 plaintext) replaced by "data_enc". */
int secret_encrypt_record(json_t *rec, const unsigned char key[SECRET_KEY_LEN], struct serr *err);
/* A record's plaintext (secrets: decrypted; configs: decoded); caller frees. */
unsigned char *secret_record_data(json_t *rec, const unsigned char key[SECRET_KEY_LEN],
                                  size_t *len, struct serr *err);

/* The key file: created (random, mode 0600) when absent / read (32 bytes). */
int secret_key_create(const char *path, struct serr *err);
int secret_key_read(const char *path, unsigned char key[SECRET_KEY_LEN], struct serr *err);
/* The key as 64 hex digits (how it travels to a new manager, over TLS). */
int secret_key_read_hex(const char *path, char hex[2 * SECRET_KEY_LEN + 1], struct serr *err);
int secret_key_write(const char *path, const char *hex, struct serr *err);

/* ---- references from service specs ----
 * spec "secrets" / "configs": [{"source": NAME, "target", "uid", "gid",
 * "mode"}] (a bare NAME string is accepted). Normalised in place: the stored
 * name (any case given), its "id", an absolute target (secrets:
 * /run/secrets/TARGET, configs: /TARGET; TARGET defaults to the name), uid
 * and gid "0", mode 0444. Unknown names are SERR_NOT_FOUND. */
int secret_refs_normalize(struct store *st, json_t *spec, struct serr *err);
/* Applies an update's secrets_rm/secrets_add/configs_rm/configs_add (names
 * to remove; references to add, normalised later). */
int secret_refs_patch(json_t *spec, json_t *patch, struct serr *err);

#endif
