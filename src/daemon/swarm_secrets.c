/* The managers' secrets data key (manager/secret.h): <state_dir>/ca/secrets.key,
 * mode 0600, made at swarm init and handed to each new manager over TLS (the
 * join answer; the session answer that carries a promoted node's manager
 * certificate). Never in the store nor the Raft log. */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/shoal.h"
#include "daemon/swarm.h"
#include "manager/secret.h"

static char *key_path(struct shoal *sh)
{
    return shoal_state_path(sh, "ca/secrets.key");
}

int swarm_secrets_key_init(struct shoal *sh, struct serr *err)
{
    char *dir = shoal_state_path(sh, "ca"), *path = key_path(sh);
    int rc = mkdir_p(dir, 0700, err);
    if (rc == 0)
        rc = secret_key_create(path, err);
    free(dir);
    free(path);
    return rc;
}

int swarm_secrets_key(struct shoal *sh, unsigned char key[SECRET_KEY_LEN], struct serr *err)
{
    char *path = key_path(sh);
    int rc = secret_key_read(path, key, err);
    free(path);
    return rc;
}

void swarm_secrets_key_offer(struct shoal *sh, json_t *reply)
{
    char hex[2 * SECRET_KEY_LEN + 1];
    char *path = key_path(sh);
    if (secret_key_read_hex(path, hex, NULL) == 0)
        json_object_set_new(reply, "secrets_key", json_string(hex));
    OPENSSL_cleanse(hex, sizeof(hex));
    free(path);
}

int swarm_secrets_key_take(struct shoal *sh, json_t *answer, struct serr *err)
{
    const char *hex = json_string_value(json_object_get(answer, "secrets_key"));
    if (hex == NULL)
        return 0;
    char *dir = shoal_state_path(sh, "ca"), *path = key_path(sh);
    int rc = mkdir_p(dir, 0700, err);
    if (rc == 0)
        rc = secret_key_write(path, hex, err);
    free(dir);
    free(path);
    return rc;
}

void swarm_secrets_key_drop(struct shoal *sh)
{
    char *path = key_path(sh);
    unlink(path);
    free(path);
}
