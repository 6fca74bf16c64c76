/* Secrets: base64, AES-256-GCM sealing at rest, the key file. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"
#include "manager/secret.h"
#include "unit.h"

static const unsigned char key_a[SECRET_KEY_LEN] = {1, 2, 3};
static const unsigned char key_b[SECRET_KEY_LEN] = {9, 9, 9};

TEST(secret_base64_round_trip)
{
    const char *cases[] = {"", "a", "ab", "abc", "abcd", "hello world\n"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *enc = base64_encode((const unsigned char *)cases[i], strlen(cases[i]));
        size_t len = 99;
        unsigned char *dec = base64_decode(enc, &len);
        CHECK(dec != NULL);
        CHECK(len == strlen(cases[i]));
        CHECK(memcmp(dec, cases[i], len) == 0);
        free(enc);
        free(dec);
    }
    size_t len;
    CHECK(base64_decode("abc", &len) == NULL);  /* not a multiple of 4 */
    CHECK(base64_decode("!!!!", &len) == NULL); /* not the alphabet */
}

TEST(secret_seal_unseal)
{
    const unsigned char msg[] = "the password\0with a NUL";
    struct serr err = {0};
    char *sealed = secret_seal(key_a, "id1", msg, sizeof(msg), &err);
    CHECK(sealed != NULL);
    CHECK(strstr(sealed, "cGFzc3dvcmQ") == NULL);
    size_t len = 0;
    unsigned char *out = secret_unseal(key_a, "id1", sealed, &len, &err);
    CHECK(out != NULL && len == sizeof(msg) && memcmp(out, msg, len) == 0);
    free(out);
    /* a fresh nonce each time: the same plaintext seals differently */
    char *again = secret_seal(key_a, "id1", msg, sizeof(msg), &err);
    CHECK(strcmp(again, sealed) != 0);
    free(again);
    /* wrong key, other record id, changed ciphertext, garbage: refused */
    CHECK(secret_unseal(key_b, "id1", sealed, &len, &err) == NULL);
    CHECK(secret_unseal(key_a, "id2", sealed, &len, &err) == NULL);
    size_t raw_len = 0;
    unsigned char *raw = base64_decode(sealed, &raw_len);
    raw[14] ^= 1;
    char *tampered = base64_encode(raw, raw_len);
    CHECK(secret_unseal(key_a, "id1", tampered, &len, &err) == NULL);
    CHECK(secret_unseal(key_a, "id1", "AAAA", &len, &err) == NULL);
    CHECK(secret_unseal(key_a, "id1", "not base64", &len, &err) == NULL);
    free(tampered);
    free(raw);
    free(sealed);
}

TEST(secret_encrypt_record_hides_data)
{
    json_t *rec = json_pack("{s:s, s:s, s:s}", "id", "abc", "name", "pw", "data",
                            "c2VjcmV0"); /* "secret" */
    struct serr err = {0};
    CHECK(secret_encrypt_record(rec, key_a, &err) == 0);
    CHECK(json_object_get(rec, "data") == NULL);
    char *text = json_dumps(rec, 0);
    CHECK(strstr(text, "c2VjcmV0") == NULL);
    free(text);
    size_t len = 0;
    unsigned char *out = secret_record_data(rec, key_a, &len, &err);
    CHECK(out != NULL && len == 6 && memcmp(out, "secret", 6) == 0);
    free(out);
    CHECK(secret_record_data(rec, key_b, &len, &err) == NULL);
    json_t *view = secret_view("secrets", rec);
    CHECK(json_object_get(view, "data_enc") == NULL);
    json_decref(view);
    json_decref(rec);
}

TEST(secret_key_file)
{
    char dir[] = "/tmp/shoal-test-key-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = xasprintf("%s/secrets.key", dir);
    struct serr err = {0};
    unsigned char k1[SECRET_KEY_LEN], k2[SECRET_KEY_LEN];
    CHECK(secret_key_read(path, k1, &err) < 0);
    CHECK(secret_key_create(path, &err) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(secret_key_read(path, k1, &err) == 0);
    CHECK(secret_key_create(path, &err) == 0); /* present: kept */
    CHECK(secret_key_read(path, k2, &err) == 0);
    CHECK(memcmp(k1, k2, sizeof(k1)) == 0);
    CHECK(secret_key_write(path, "short", &err) < 0);
    unlink(path);
    rmdir(dir);
    free(path);
}

TEST(secret_cli_refs)
{
    json_t *spec = json_object();
    struct serr err = {0};
    CHECK(cli_add_secret_ref(spec, "secrets", "--secret", "db", &err) == 0);
    CHECK(cli_add_secret_ref(spec, "secrets", "--secret",
                             "source=api,target=/etc/api,uid=100,gid=101,mode=0400", &err) == 0);
    json_t *refs = json_object_get(spec, "secrets");
    CHECK(json_array_size(refs) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(refs, 0), "source")), "db");
    json_t *api = json_array_get(refs, 1);
    CHECK_STR(json_string_value(json_object_get(api, "target")), "/etc/api");
    CHECK_STR(json_string_value(json_object_get(api, "uid")), "100");
    CHECK(json_integer_value(json_object_get(api, "mode")) == 0400);
    CHECK(cli_add_secret_ref(spec, "secrets", "--secret", "source=x,color=red", &err) < 0);
    CHECK(strstr(err.msg, "color") != NULL);
    CHECK(cli_add_secret_ref(spec, "secrets", "--secret", "source=x,mode=999", &err) < 0);
    CHECK(cli_add_secret_ref(spec, "secrets", "--secret", "target=/x", &err) < 0);
    CHECK(strstr(err.msg, "source is required") != NULL);
    CHECK(cli_add_secret_ref(spec, "secrets", "--secret", "", &err) < 0);
    CHECK(cli_add_secret_ref(spec, "secrets_rm", "--secret-rm", "db", &err) == 0);
    CHECK(json_is_string(json_array_get(json_object_get(spec, "secrets_rm"), 0)));
    /* the patch: rm by name in any case, then add */
    json_t *patch = json_pack("{s:[s], s:[{s:s}]}", "secrets_rm", "DB", "secrets_add", "source",
                              "new");
    CHECK(secret_refs_patch(spec, patch, &err) == 0);
    refs = json_object_get(spec, "secrets");
    CHECK(json_array_size(refs) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(refs, 1), "source")), "new");
    json_decref(patch);
    patch = json_pack("{s:[s]}", "secrets_rm", "nosuch");
    CHECK(secret_refs_patch(spec, patch, &err) < 0);
    CHECK(strstr(err.msg, "does not use") != NULL);
    json_decref(patch);
    json_decref(spec);
}
