/* Unmapping a shared library's clean pages. See lib_pages.h. */
#include "base/lib_pages.h"

#include <elf.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct release {
    const char *const *names;
    size_t page;
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

/* The whole pages of a loaded segment that the loader mapped read-only:
 * their content is the file's, whatever this process did. */
static void release_segment(const struct dl_phdr_info *info, const ElfW(Phdr) *ph,
                            struct release *r)
{
    uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
    uintptr_t first = (start + r->page - 1) & ~(uintptr_t)(r->page - 1);
    uintptr_t last = end & ~(uintptr_t)(r->page - 1);
    if (last <= first) /* (a page shared with a neighbour segment is kept) */
        return;
    if (madvise((void *)first, last - first, MADV_DONTNEED) == 0)
        r->released_kb += (long)((last - first) / 1024);
}

/* Runs with the loader's list lock held: a library in the list is not
 * unmapped meanwhile by another thread's dlclose. */
static int release_library(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct release *r = arg;
    if (info->dlpi_name == NULL || !is_named(info->dlpi_name, r->names) ||
        has_text_relocations(info))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && !(ph->p_flags & PF_W))
            release_segment(info, ph, r);
    }
    return 0;
}

long lib_pages_release(const char *const names[])
{
    long page = sysconf(_SC_PAGESIZE);
    struct release r = {.names = names, .page = page > 0 ? (size_t)page : 4096};
    dl_iterate_phdr(release_library, &r);
    return r.released_kb;
}
