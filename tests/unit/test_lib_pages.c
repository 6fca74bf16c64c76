#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/lib_pages.h"
#include "unit.h"

static const char *const libcrypto[] = {"libcrypto.so.", NULL};

/* Sum of `field` (e.g. "Rss:") over libcrypto's mappings, in kB. */
static long libcrypto_kb(const char *field)
{
    FILE *smaps = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in_lib = false;
    long total = 0, kb;
    while (fgets(line, sizeof(line), smaps)) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
            in_lib = strstr(line, "/libcrypto.so.") != NULL;
        else if (in_lib && strncmp(line, field, strlen(field)) == 0 &&
                 sscanf(line + strlen(field), "%ld", &kb) == 1)
            total += kb;
    }
    fclose(smaps);
    return total;
}

static void sha256_of_abc(unsigned char out[32])
{
    unsigned int len = 0;
    CHECK(EVP_Digest("abc", 3, out, &len, EVP_sha256(), NULL) == 1 && len == 32);
}

TEST(lib_pages_release_unmaps_a_library_text_and_keeps_its_written_data)
{
    unsigned char before[32], after[32];
    sha256_of_abc(before); /* initialises OpenSSL: most of its text mapped */
    long rss = libcrypto_kb("Rss:"), dirty = libcrypto_kb("Private_Dirty:");
    CHECK(rss > dirty);
    long released = lib_pages_release(libcrypto);
    CHECK(released > 0);
    long rss_after = libcrypto_kb("Rss:");
    CHECK(rss_after < (rss - dirty) / 2 + dirty); /* most of the clean pages gone */
    CHECK(libcrypto_kb("Private_Dirty:") == dirty); /* relocated data untouched */
    sha256_of_abc(after);                           /* the code comes back at its next use */
    CHECK(memcmp(before, after, sizeof(before)) == 0);
    CHECK(libcrypto_kb("Rss:") > rss_after);
}

TEST(lib_pages_release_skips_libraries_not_loaded)
{
    static const char *const missing[] = {"libshoal-not-loaded.so.", NULL};
    CHECK(lib_pages_release(missing) == 0);
}
