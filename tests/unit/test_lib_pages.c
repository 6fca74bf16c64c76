#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/lib_pages.h"
#include "unit.h"

static const char *const libcrypto[] = {"libcrypto.so.", NULL};

/* Sum of `field` (e.g. "Rss:") over the mappings of files whose path holds
 * `file` (e.g. "/libcrypto.so."), in kB. */
static long mapped_kb(const char *file, const char *field)
{
    FILE *smaps = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in_lib = false;
    long total = 0, kb;
    while (fgets(line, sizeof(line), smaps)) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
            in_lib = strstr(line, file) != NULL;
        else if (in_lib && strncmp(line, field, strlen(field)) == 0 &&
                 sscanf(line + strlen(field), "%ld", &kb) == 1)
            total += kb;
    }
    fclose(smaps);
    return total;
}

static long libcrypto_kb(const char *field)
{
    return mapped_kb("/libcrypto.so.", field);
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

/* The page map's entry of the page at `addr` (Documentation/admin-guide/mm/pagemap.rst). */
static uint64_t pagemap_entry(uintptr_t addr)
{
    uint64_t entry = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    CHECK(fd >= 0);
    long page = sysconf(_SC_PAGESIZE);
    CHECK(pread(fd, &entry, sizeof(entry), (off_t)(addr / (uintptr_t)page * sizeof(entry))) ==
          sizeof(entry));
    close(fd);
    return entry;
}

static bool is_present(uintptr_t addr)
{
    return (pagemap_entry(addr) >> 63) & 1;
}

/* The start of the first mapping of a file whose path holds `file`: its ELF
 * header, in a read-only segment. */
static uintptr_t file_start(const char *file)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long start = 0;
    while (start == 0 && fgets(line, sizeof(line), maps))
        if (strstr(line, file) == NULL || sscanf(line, "%lx-", &start) != 1)
            start = 0;
    fclose(maps);
    CHECK(start != 0);
    return start;
}

static uintptr_t libcrypto_start(void)
{
    return file_start("/libcrypto.so.");
}

TEST(lib_pages_release_of_no_names_unmaps_libc_too)
{
    CHECK(lib_pages_release(NULL) > 0); /* (the lazy binding of what it calls done) */
    /* libc's ELF header, read (so mapped) and not used again below (a lazy
     * binding would read the program's symbol tables, not libc's header). */
    volatile const char *libc = (const char *)file_start("/libc.so.");
    CHECK(libc[1] == 'E');
    CHECK(is_present((uintptr_t)libc));
    CHECK(lib_pages_release(NULL) > 0);
    CHECK(!is_present((uintptr_t)libc));
    CHECK(libc[1] == 'E'); /* back at its next use */
}

TEST(lib_pages_release_keeps_a_page_a_debugger_wrote)
{
    unsigned char md[32];
    sha256_of_abc(md); /* libcrypto loaded */
    uintptr_t header = libcrypto_start();
    /* What gdb does to set a breakpoint: a write through /proc/PID/mem, which
     * gives the process a private copy of that read-only page (here, the
     * same byte written back). */
    int mem = open("/proc/self/mem", O_RDWR);
    CHECK(mem >= 0);
    unsigned char magic = 0;
    CHECK(pread(mem, &magic, 1, (off_t)header) == 1 && magic == 0x7f);
    CHECK(pwrite(mem, &magic, 1, (off_t)header) == 1);
    close(mem);
    uint64_t copy = pagemap_entry(header);
    CHECK((copy >> 63) & 1);    /* present */
    CHECK(!((copy >> 61) & 1)); /* a private copy, not the file's page */
    CHECK(lib_pages_release(libcrypto) > 0);
    CHECK(pagemap_entry(header) == copy); /* still there, still the copy */
    CHECK(memcmp((const void *)header, "\177ELF", 4) == 0);
}
