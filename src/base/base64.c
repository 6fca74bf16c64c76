#include "base/base64.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

char *base64_encode(const unsigned char *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

unsigned char *base64_decode(const char *text, size_t *len)
{
    size_t n = strlen(text);
    if (n % 4 != 0)
        return NULL;
    unsigned char *out = xmalloc(n / 4 * 3 + 1);
    int got = n ? EVP_DecodeBlock(out, (const unsigned char *)text, (int)n) : 0;
    if (got < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes */
    size_t pad = (n >= 1 && text[n - 1] == '=') + (n >= 2 && text[n - 2] == '=');
    *len = (size_t)got - pad;
    return out;
}
