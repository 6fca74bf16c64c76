/* Base64 (standard alphabet, padded), over OpenSSL's EVP_EncodeBlock. */
#ifndef SHOAL_BASE_BASE64_H
#define SHOAL_BASE_BASE64_H

#include <stddef.h>

/* A new NUL-terminated string (caller frees). */
char *base64_encode(const unsigned char *data, size_t len);
/* The decoded bytes (caller frees; one spare byte past *len), or NULL when
 * `text` is malformed. */
unsigned char *base64_decode(const char *text, size_t *len);

#endif
