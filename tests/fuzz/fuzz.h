/* Helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.c, docs/fuzzing.md).
 * Each target is one translation unit linked with build-fuzz/libshoal.a. */
#ifndef SHOAL_TESTS_FUZZ_H
#define SHOAL_TESTS_FUZZ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The input as a NUL-terminated string (caller frees). */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = xmalloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A new temporary directory under $TMPDIR or /tmp (caller frees the path and
 * removes the directory). */
static inline char *fuzz_tmpdir(const char *what)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = xasprintf("%s/shoal-fuzz-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    return dir;
}

/* Splits the input at NUL bytes into at most `max` strings (argv style):
 * returns how many, each a pointer into `text` (a fuzz_string copy). */
static inline int fuzz_split(char *text, size_t size, char **out, int max)
{
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && n < max; i++) {
        if (i == size || text[i] == '\0') {
            out[n++] = text + start;
            start = i + 1;
        }
    }
    return n;
}

/* With SHOAL_FUZZ_VERBOSE set, says why an input was refused (to check
 * that a seed gets as far as it should: `SHOAL_FUZZ_VERBOSE=1 build-fuzz/fuzz_x seed`). */
static inline void fuzz_result(const char *what, int rc, const struct serr *err)
{
    if (getenv("SHOAL_FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz: %s: %s\n", what, rc == 0 ? "ok" : err->msg);
}

/* The targets' log lines would flood the fuzzer's output. */
static inline void fuzz_quiet(void)
{
    log_set_level(LOG_ERROR + 1);
}

#endif
