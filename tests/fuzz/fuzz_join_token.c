/* What a joining node sends the leader (manager/ca.c, tls/identity.c): join tokens
 * (`swarm join --token`, token_parse), the secret checked against the CA's
 * (ca_token_check), and the certificate request the CA signs (ca_sign), plus
 * certificate identities (cert_identity_pem). The first byte picks which;
 * the rest is the text. */
#include "fuzz.h"
#include "manager/ca.h"
#include "tls/identity.h"

static char *ca_dir;

static void remove_ca_dir(void)
{
    rm_rf(ca_dir, NULL);
    free(ca_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    ca_dir = fuzz_tmpdir("ca");
    struct serr err = {0};
    if (ca_create(ca_dir, &err) < 0) {
        fprintf(stderr, "fuzz: ca_create: %s\n", err.msg);
        abort();
    }
    atexit(remove_ca_dir);
    return 0;
}

static void token(const char *text)
{
    char digest[65], secret[CA_SECRET_LEN + 1], role[16];
    struct serr err = {0};
    int rc = token_parse(text, digest, secret, sizeof(secret), &err);
    fuzz_result("token", rc, &err);
    if (rc == 0)
        ca_token_check(ca_dir, secret, role, &err);
    ca_token_check(ca_dir, text, role, &err);
}

static void csr(const char *text)
{
    char *cert = NULL;
    struct serr err = {0};
    int rc = ca_sign(ca_dir, text, "node1", "worker", &cert, &err);
    fuzz_result("csr", rc, &err);
    if (rc == 0) {
        char id[64], role[16];
        if (cert_identity_pem(cert, id, sizeof(id), role, sizeof(role), &err) < 0)
            abort(); /* we just issued it */
        free(cert);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = fuzz_string(data + 1, size - 1);
    char id[64], role[16];
    struct serr err = {0};
    switch (data[0] % 3) {
    case 0: token(text); break;
    case 1: csr(text); break;
    default: cert_identity_pem(text, id, sizeof(id), role, sizeof(role), &err); break;
    }
    free(text);
    return 0;
}
