/* Unmapping a shared library's clean pages. See lib_pages.h. */
#include "base/lib_pages.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* One mapping of /proc/self/smaps as read so far: its header line, then its
 * "Key: value kB" lines. */
struct mapping {
    unsigned long start, end;
    bool wanted;  /* a read-only mapping of one of the libraries */
    bool written; /* private dirty or anonymous pages: this process's own data */
    long rss_kb;
};

static bool is_wanted_file(const char *line, const char *perms, const char *const names[])
{
    const char *slash = strrchr(line, '/');
    if (perms[1] == 'w' || slash == NULL)
        return false;
    for (size_t i = 0; names[i]; i++)
        if (strncmp(slash + 1, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

/* The mapping's pages unmapped when it qualifies; returns its RSS in kB then, else 0. */
static long release(const struct mapping *m)
{
    if (!m->wanted || m->written || m->rss_kb == 0)
        return 0;
    if (madvise((void *)m->start, m->end - m->start, MADV_DONTNEED) < 0)
        return 0;
    return m->rss_kb;
}

/* Reads one smaps line into *m; a header line ends the previous mapping,
 * whose release is added to *released. */
static void read_line(const char *line, struct mapping *m, const char *const names[],
                      long *released)
{
    unsigned long start, end;
    char perms[5];
    long kb;
    if (sscanf(line, "%lx-%lx %4s", &start, &end, perms) == 3) {
        *released += release(m);
        *m = (struct mapping){start, end, is_wanted_file(line, perms, names), false, 0};
    } else if (sscanf(line, "Rss: %ld", &kb) == 1) {
        m->rss_kb = kb;
    } else if ((sscanf(line, "Private_Dirty: %ld", &kb) == 1 ||
                sscanf(line, "Anonymous: %ld", &kb) == 1) &&
               kb > 0) {
        m->written = true;
    }
}

long lib_pages_release(const char *const names[])
{
    FILE *smaps = fopen("/proc/self/smaps", "re");
    if (smaps == NULL)
        return -1;
    struct mapping m = {0};
    long released = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, smaps) >= 0)
        read_line(line, &m, names, &released);
    released += release(&m);
    free(line);
    fclose(smaps);
    return released;
}
