#include "manager/secret.h"

#include <ctype.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/json_get.h"
#include "base/util.h"
#include "model/mount.h"
#include "store/store.h"

const char *secret_table(const char *kind)
{
    if (kind && (strcmp(kind, "secrets") == 0 || strcmp(kind, "configs") == 0))
        return kind;
    return NULL;
}

const char *secret_noun(const char *table)
{
    return strcmp(table, "secrets") == 0 ? "secret" : "config";
}

/* Docker's rule for secret and config names. */
static bool valid_secret_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

static int check_body(json_t *body, const char *noun, struct serr *err)
{
    static const char *const known[] = {"name", "data", NULL};
    if (!json_is_object(body))
        return serr_set(err, SERR_INVALID, "%s must be a JSON object", noun);
    const char *key;
    json_t *val;
    json_object_foreach(body, key, val)
    {
        if (!str_in_list(key, known))
            return serr_set(err, SERR_INVALID, "unknown field '%s' in %s", key, noun);
        if (!json_is_string(val))
            return serr_set(err, SERR_INVALID, "%s: expected a string", key);
    }
    const char *name = jstr(body, "name");
    if (!valid_secret_name(name))
        return serr_set(err, SERR_INVALID, "invalid %s name '%s' (letters, digits, '_', '.', "
                        "'-', starting and ending with a letter or digit; at most 64)",
                        noun, name ? name : "");
    return 0;
}

static int check_data(json_t *body, const char *noun, struct serr *err)
{
    const char *text = jstr(body, "data");
    if (text == NULL)
        return serr_set(err, SERR_INVALID, "data is required (base64)");
    size_t len = 0;
    unsigned char *raw = base64_decode(text, &len);
    if (raw == NULL)
        return serr_set(err, SERR_INVALID, "data: not valid base64");
    free(raw);
    if (len == 0 || len > SECRET_MAX_SIZE)
        return serr_set(err, SERR_INVALID, "%s data must be larger than 0 and at most 500 KB "
                        "(%zu bytes given)", noun, len);
    return 0;
}

json_t *secret_new(struct store *st, const char *table, json_t *body, struct serr *err)
{
    const char *noun = secret_noun(table);
    if (check_body(body, noun, err) < 0 || check_data(body, noun, err) < 0)
        return NULL;
    const char *name = jstr(body, "name");
    json_t *dup = store_find_name(st, table, name, NULL);
    if (dup) {
        const char *taken = jstr(dup, "name");
        if (strcmp(taken, name) == 0)
            serr_set(err, SERR_CONFLICT, "%s %s already exists", noun, name);
        else
            serr_set(err, SERR_CONFLICT, "%s %s already exists (name conflicts with %s %s: "
                     "names are unique regardless of case)", noun, name, noun, taken);
        json_decref(dup);
        return NULL;
    }
    char id[26];
    random_hex(id, 25);
    json_int_t now = (json_int_t)now_ms();
    return json_pack("{s:s, s:s, s:O, s:I, s:I}", "id", id, "name", name, "data",
                     json_object_get(body, "data"), "created_at", now, "updated_at", now);
}

json_t *secret_find(struct store *st, const char *table, const char *ref, struct serr *err)
{
    json_t *rec = store_find(st, table, ref, err);
    if (rec == NULL && err && err->msg[0] == '\0')
        serr_set(err, SERR_NOT_FOUND, "%s %s not found", secret_noun(table), ref ? ref : "");
    return rec;
}

json_t *secret_view(const char *table, json_t *rec)
{
    json_t *v = json_deep_copy(rec);
    if (strcmp(table, "secrets") == 0) {
        json_object_del(v, "data");
        json_object_del(v, "data_enc");
    }
    return v;
}

json_t *secret_users(struct store *st, const char *table, const char *name)
{
    json_t *svcs = store_list(st, "services", "name"), *out = json_array();
    size_t i, j;
    json_t *s, *ref;
    json_array_foreach(svcs, i, s)
    {
        json_t *refs = json_object_get(json_object_get(s, "spec"), table);
        json_array_foreach(refs, j, ref)
        {
            const char *src = jstr(ref, "source");
            if (src && strcasecmp(src, name) == 0) {
                json_array_append(out, json_object_get(s, "name"));
                break;
            }
        }
    }
    json_decref(svcs);
    return out;
}

/* ---- encryption at rest ---- */

#define NONCE_LEN 12
#define TAG_LEN 16

char *secret_seal(const unsigned char key[SECRET_KEY_LEN], const char *aad,
                  const unsigned char *data, size_t len, struct serr *err)
{
    size_t total = NONCE_LEN + len + TAG_LEN;
    unsigned char *buf = xmalloc(total);
    unsigned char *ct = buf + NONCE_LEN;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    bool ok = ctx && RAND_bytes(buf, NONCE_LEN) == 1 &&
              EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
              EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
              EVP_EncryptUpdate(ctx, ct, &n, data, (int)len) == 1 &&
              EVP_EncryptFinal_ex(ctx, ct + n, &fin) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, ct + len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    char *out = ok ? base64_encode(buf, total) : NULL;
    free(buf);
    if (!ok)
        serr_set(err, SERR_INTERNAL, "encrypting a secret failed (OpenSSL)");
    return out;
}

unsigned char *secret_unseal(const unsigned char key[SECRET_KEY_LEN], const char *aad,
                             const char *sealed, size_t *len, struct serr *err)
{
    size_t total = 0;
    unsigned char *buf = sealed ? base64_decode(sealed, &total) : NULL;
    if (buf == NULL || total < NONCE_LEN + TAG_LEN) {
        free(buf);
        serr_set(err, SERR_INTERNAL, "a stored secret is malformed");
        return NULL;
    }
    size_t ctlen = total - NONCE_LEN - TAG_LEN;
    unsigned char *ct = buf + NONCE_LEN, *out = xmalloc(ctlen + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    bool ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
              EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
              EVP_DecryptUpdate(ctx, out, &n, ct, (int)ctlen) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, ct + ctlen) == 1 &&
              EVP_DecryptFinal_ex(ctx, out + n, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    free(buf);
    if (!ok) {
        OPENSSL_cleanse(out, ctlen);
        free(out);
        serr_set(err, SERR_INTERNAL, "a stored secret does not decrypt with this manager's key");
        return NULL;
    }
    *len = ctlen;
    return out;
}

int secret_encrypt_record(json_t *rec, const unsigned char key[SECRET_KEY_LEN], struct serr *err)
{
    size_t len = 0;
    const char *text = jstr(rec, "data");
    unsigned char *raw = text ? base64_decode(text, &len) : NULL;
    if (raw == NULL)
        return serr_set(err, SERR_INVALID, "data: not valid base64");
    char *sealed = secret_seal(key, jstr(rec, "id"), raw, len, err);
    OPENSSL_cleanse(raw, len);
    free(raw);
    if (sealed == NULL)
        return -1;
    json_object_del(rec, "data");
    json_object_set_new(rec, "data_enc", json_string(sealed));
    free(sealed);
    return 0;
}

unsigned char *secret_record_data(json_t *rec, const unsigned char key[SECRET_KEY_LEN],
                                  size_t *len, struct serr *err)
{
    const char *sealed = jstr(rec, "data_enc");
    if (sealed)
        return secret_unseal(key, jstr(rec, "id"), sealed, len, err);
    const char *text = jstr(rec, "data");
    unsigned char *raw = text ? base64_decode(text, len) : NULL;
    if (raw == NULL)
        serr_set(err, SERR_INTERNAL, "a stored %s has no data", "record");
    return raw;
}

int secret_key_create(const char *path, struct serr *err)
{
    if (access(path, F_OK) == 0)
        return 0;
    unsigned char key[SECRET_KEY_LEN];
    if (RAND_bytes(key, sizeof(key)) != 1)
        return serr_set(err, SERR_INTERNAL, "no random bytes for the secrets key");
    char hex[2 * SECRET_KEY_LEN + 2];
    for (size_t i = 0; i < sizeof(key); i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    OPENSSL_cleanse(key, sizeof(key));
    int rc = secret_key_write(path, hex, err);
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}

int secret_key_write(const char *path, const char *hex, struct serr *err)
{
    if (strlen(hex) != 2 * SECRET_KEY_LEN)
        return serr_set(err, SERR_INVALID, "the secrets key is malformed");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return serr_errno(err, "%s", path);
    int rc = write_all(fd, hex, strlen(hex)) == 0 && fsync(fd) == 0 ? 0 : -1;
    close(fd);
    return rc < 0 ? serr_errno(err, "writing %s", path) : 0;
}

int secret_key_read_hex(const char *path, char hex[2 * SECRET_KEY_LEN + 1], struct serr *err)
{
    char *text = NULL;
    size_t len = 0;
    if (read_file(path, &text, &len, err) < 0)
        return serr_wrap(err, "this manager has no secrets key");
    int rc = 0;
    if (len != 2 * SECRET_KEY_LEN)
        rc = serr_set(err, SERR_INTERNAL, "%s is malformed", path);
    else
        memcpy(hex, text, len + 1);
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}

int secret_key_read(const char *path, unsigned char key[SECRET_KEY_LEN], struct serr *err)
{
    char hex[2 * SECRET_KEY_LEN + 1];
    if (secret_key_read_hex(path, hex, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < SECRET_KEY_LEN; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            rc = serr_set(err, SERR_INTERNAL, "%s is malformed", path);
        key[i] = (unsigned char)v;
    }
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}

/* ---- references from service specs ---- */

/* Where a reference is mounted: secrets under /run/secrets/ unless absolute,
 * configs at /NAME unless absolute. */
static char *default_target(const char *table, const char *target)
{
    if (target[0] == '/')
        return xstrdup(target);
    return strcmp(table, "secrets") == 0 ? xasprintf("/run/secrets/%s", target)
                                         : xasprintf("/%s", target);
}

static int check_ref_keys(json_t *ref, const char *noun, struct serr *err)
{
    static const char *const known[] = {"source", "target", "uid", "gid", "mode", "id", NULL};
    const char *key;
    json_t *val;
    json_object_foreach(ref, key, val)
    {
        if (!str_in_list(key, known))
            return serr_set(err, SERR_INVALID, "%s: unknown field '%s'", noun, key);
    }
    json_t *mode = json_object_get(ref, "mode");
    if (mode && (!json_is_integer(mode) || json_integer_value(mode) < 0 ||
                 json_integer_value(mode) > 0777))
        return serr_set(err, SERR_INVALID, "%s: mode must be an octal file mode up to 0777",
                        noun);
    static const char *const ids[] = {"uid", "gid", NULL};
    for (int i = 0; ids[i]; i++) {
        json_t *v = json_object_get(ref, ids[i]);
        char *end = NULL;
        if (v && (!json_is_string(v) || strtoul(json_string_value(v), &end, 10) > 0xfffffffeUL ||
                  end == json_string_value(v) || *end != '\0'))
            return serr_set(err, SERR_INVALID, "%s: %s must be a number", noun, ids[i]);
    }
    const char *target = jstr(ref, "target");
    if (json_object_get(ref, "target") &&
        (target == NULL || *target == '\0' || strstr(target, "..") || strchr(target, '\n')))
        return serr_set(err, SERR_INVALID, "%s: invalid target", noun);
    return 0;
}

/* One reference, normalised: the stored name and id, the absolute target,
 * uid/gid "0" and mode 0444 by default (new reference, NULL with err). */
static json_t *normalize_ref(struct store *st, const char *table, json_t *ref, struct serr *err)
{
    const char *noun = secret_noun(table);
    if (json_is_string(ref))
        ref = json_pack("{s:O}", "source", ref);
    else
        json_incref(ref);
    json_t *out = NULL, *rec = NULL;
    const char *source = jstr(ref, "source");
    if (!json_is_object(ref) || check_ref_keys(ref, noun, err) < 0)
        goto done;
    if (source == NULL) {
        serr_set(err, SERR_INVALID, "%s: source (the %s's name) is required", noun, noun);
        goto done;
    }
    if ((rec = store_find_name(st, table, source, err)) == NULL) {
        if (err->msg[0] == '\0')
            serr_set(err, SERR_NOT_FOUND, "%s not found: %s", noun, source);
        goto done;
    }
    const char *name = jstr(rec, "name");
    const char *target = jstr(ref, "target");
    char *path = default_target(table, target ? target : name);
    const char *reserved = mount_reserved_target(path);
    if (reserved || strcmp(path, "/") == 0) {
        serr_set(err, SERR_INVALID, "%s: target %s is reserved: the container's %s is set up "
                 "by the runtime", noun, path, reserved ? reserved : "/");
        free(path);
        goto done;
    }
    json_t *mode = json_object_get(ref, "mode");
    const char *uid = jstr(ref, "uid");
    const char *gid = jstr(ref, "gid");
    out = json_pack("{s:s, s:O, s:s, s:s, s:s, s:I}", "source", name, "id",
                    json_object_get(rec, "id"), "target", path, "uid", uid ? uid : "0", "gid",
                    gid ? gid : "0", "mode", mode ? json_integer_value(mode) : (json_int_t)0444);
    free(path);
done:
    json_decref(rec);
    json_decref(ref);
    return out;
}

int secret_refs_normalize(struct store *st, json_t *spec, struct serr *err)
{
    static const char *const tables[] = {"secrets", "configs", NULL};
    for (int t = 0; tables[t]; t++) {
        json_t *refs = json_object_get(spec, tables[t]);
        if (refs == NULL)
            continue;
        if (!json_is_array(refs))
            return serr_set(err, SERR_INVALID, "%s must be an array", tables[t]);
        json_t *norm = json_array();
        size_t i, j;
        json_t *ref, *other;
        json_array_foreach(refs, i, ref)
        {
            json_t *n = normalize_ref(st, tables[t], ref, err);
            if (n == NULL) {
                json_decref(norm);
                return -1;
            }
            json_array_foreach(norm, j, other)
            {
                if (strcmp(jstr(other, "target"), jstr(n, "target")) == 0) {
                    serr_set(err, SERR_INVALID, "%s and %s are both mounted at %s",
                             jstr(other, "source"), jstr(n, "source"), jstr(n, "target"));
                    json_decref(n);
                    json_decref(norm);
                    return -1;
                }
            }
            json_array_append_new(norm, n);
        }
        if (json_array_size(norm) == 0) { /* absent when unused: older specs compare equal */
            json_decref(norm);
            json_object_del(spec, tables[t]);
        } else {
            json_object_set_new(spec, tables[t], norm);
        }
    }
    return 0;
}

int secret_refs_patch(json_t *spec, json_t *patch, struct serr *err)
{
    static const char *const tables[] = {"secrets", "configs", NULL};
    for (int t = 0; tables[t]; t++) {
        char rm_key[16], add_key[16];
        snprintf(rm_key, sizeof(rm_key), "%s_rm", tables[t]);
        snprintf(add_key, sizeof(add_key), "%s_add", tables[t]);
        json_t *rm = json_object_get(patch, rm_key), *add = json_object_get(patch, add_key);
        if ((rm && !json_is_array(rm)) || (add && !json_is_array(add)))
            return serr_set(err, SERR_INVALID, "%s and %s must be arrays", rm_key, add_key);
        json_t *refs = json_object_get(spec, tables[t]);
        if (!json_is_array(refs)) {
            refs = json_array();
            json_object_set_new(spec, tables[t], refs);
        }
        size_t i;
        json_t *name;
        json_array_foreach(rm, i, name)
        {
            bool found = false;
            for (size_t k = json_array_size(refs); k-- > 0;) {
                const char *src = jstr(json_array_get(refs, k), "source");
                if (src && json_string_value(name) &&
                    strcasecmp(src, json_string_value(name)) == 0) {
                    json_array_remove(refs, k);
                    found = true;
                }
            }
            if (!found)
                return serr_set(err, SERR_NOT_FOUND, "%s_rm: the service does not use %s %s",
                                tables[t], secret_noun(tables[t]),
                                json_string_value(name) ? json_string_value(name) : "?");
        }
        if (add)
            json_array_extend(refs, add);
    }
    return 0;
}
