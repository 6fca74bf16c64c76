/* The pages of a shared library that this process mapped but no longer uses,
 * handed back: OpenSSL's handshake (provider start, certificate parsing and
 * verification, key exchange, signatures) touches nearly every 64 KiB of
 * libcrypto's text once per link, and the idle records after it use a
 * third of that (docs/benchmarks.md, Footprint, Session 13); the start of
 * a daemon runs code of libc, ld.so, libm and its own that idle never
 * runs again (Session 14). */
#ifndef SHOAL_BASE_LIB_PAGES_H
#define SHOAL_BASE_LIB_PAGES_H

/* Unmaps (madvise MADV_DONTNEED) the read-only segments of the loaded
 * libraries whose file names start with one of `names` (NULL-terminated,
 * e.g. "libcrypto.so."), or, with names NULL, of every object loaded from
 * a file, the program itself included (not the vDSO): text, symbol tables,
 * read-only data, found by dl_iterate_phdr from the objects' program
 * headers, whole pages only. The loader never writes those (a library with
 * text relocations is skipped), so their content is always the file's:
 * nothing this process wrote can be lost (relocated data, .data and .bss
 * are in writable segments, swapped out or not), whatever another thread
 * does meanwhile. A page that is a private copy all the same (a debugger's
 * breakpoint, a uprobe of perf or bpftrace), as /proc/self/pagemap tells,
 * is kept. The pages stay in the page cache (shared with every process
 * that maps them) and come back on their next use by a page fault, as at
 * load. A library not loaded is skipped. Returns the kB of the ranges
 * unmapped (not all of them were mapped). */
long lib_pages_release(const char *const names[]);

#endif
