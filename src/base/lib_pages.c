/* Unmapping a shared library's clean pages. See lib_pages.h. */
#include "base/lib_pages.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* /proc/PID/pagemap: one 64-bit entry per page (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61) /* a page of the file (or shared anonymous), not a private copy */
#define PM_BATCH 512         /* entries read at a time */

struct release {
    const char *const *names;
    size_t page;
    int pagemap; /* -1: not readable, each segment released whole */
    long released_kb;
};

static bool is_named(const char *path, const char *const names[])
{
    const char *slash = strrchr(path, '/');
    const char *file = slash ? slash + 1 : path;
    for (size_t i = 0; names[i]; i++)
        if (strncmp(file, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

/* The objects a pass looks at: those named, or (names NULL) every object
 * loaded from a file, the program (named "") included, but not the vDSO,
 * which the kernel maps from no file. */
static bool is_chosen(const char *name, const char *const names[])
{
    if (name == NULL)
        return false;
    if (names)
        return is_named(name, names);
    return strstr(name, "linux-vdso.so") == NULL && strstr(name, "linux-gate.so") == NULL;
}

/* A library whose code the loader wrote (text relocations) has private
 * copies of those pages: they must stay. */
static bool has_text_relocations(const struct dl_phdr_info *info)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_DYNAMIC)
            continue;
        for (const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
             d->d_tag != DT_NULL; d++) {
            if (d->d_tag == DT_TEXTREL || (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_TEXTREL)))
                return true;
        }
    }
    return false;
}

static void unmap(uintptr_t from, uintptr_t to, struct release *r)
{
    if (to > from && madvise((void *)from, to - from, MADV_DONTNEED) == 0)
        r->released_kb += (long)((to - from) / 1024);
}

/* A page of a read-only segment that is not the file's: a copy written by
 * a debugger's breakpoint or a uprobe (perf, bpftrace), which unmapping
 * would silently drop. */
static bool is_private_copy(uint64_t entry)
{
    return (entry & PM_SWAPPED) || ((entry & PM_PRESENT) && !(entry & PM_FILE));
}

/* Unmaps [first, last) but for its private copies, by runs of pages; the
 * whole range when the page map cannot be read. */
static void unmap_file_pages(uintptr_t first, uintptr_t last, struct release *r)
{
    uint64_t entries[PM_BATCH];
    uintptr_t run = first;
    for (uintptr_t at = first; at < last;) {
        size_t n = (last - at) / r->page;
        n = n < PM_BATCH ? n : PM_BATCH;
        off_t offset = (off_t)(at / r->page * sizeof(uint64_t));
        if (r->pagemap < 0 ||
            pread(r->pagemap, entries, n * sizeof(uint64_t), offset) != (ssize_t)(n * sizeof(uint64_t)))
            break; /* the rest released whole */
        for (size_t i = 0; i < n; i++, at += r->page) {
            if (is_private_copy(entries[i])) {
                unmap(run, at, r);
                run = at + r->page;
            }
        }
    }
    unmap(run, last, r);
}

/* The whole pages of a loaded segment that the loader mapped read-only:
 * their content is the file's, whatever this process did. */
struct segment {
    uintptr_t first, last;
};

#define MAX_SEGMENTS 16 /* read-only PT_LOADs of one object: 2 to 4 in practice */

static size_t read_only_segments(const struct dl_phdr_info *info, size_t page,
                                 struct segment out[MAX_SEGMENTS])
{
    size_t n = 0;
    for (int i = 0; i < info->dlpi_phnum && n < MAX_SEGMENTS; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
            continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
        struct segment seg = {(start + page - 1) & ~(uintptr_t)(page - 1),
                              end & ~(uintptr_t)(page - 1)};
        if (seg.last > seg.first) /* (a page shared with a neighbour segment is kept) */
            out[n++] = seg;
    }
    return n;
}

/* Runs with the loader's list lock held: a library in the list is not
 * unmapped meanwhile by another thread's dlclose. The program headers are
 * read before anything is unmapped: they are in the first segment, whose
 * next read would map its first 64 KiB again (the kernel's fault-around). */
static int release_library(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct release *r = arg;
    if (!is_chosen(info->dlpi_name, r->names) || has_text_relocations(info))
        return 0;
    struct segment segs[MAX_SEGMENTS];
    size_t n = read_only_segments(info, r->page, segs);
    for (size_t i = 0; i < n; i++)
        unmap_file_pages(segs[i].first, segs[i].last, r);
    return 0;
}

long lib_pages_release(const char *const names[])
{
    long page = sysconf(_SC_PAGESIZE);
    struct release r = {.names = names,
                        .page = page > 0 ? (size_t)page : 4096,
                        .pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)};
    dl_iterate_phdr(release_library, &r);
    if (r.pagemap >= 0)
        close(r.pagemap);
    return r.released_kb;
}
