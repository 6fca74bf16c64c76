/* The pages of a shared library that this process mapped but no longer uses,
 * handed back: OpenSSL's handshake (provider start, certificate parsing and
 * verification, key exchange, signatures) touches nearly every 64 KiB of
 * libcrypto's text once per link, and the idle records after it use a
 * third of that (docs/benchmarks.md, Footprint, Session 13). */
#ifndef SHOAL_BASE_LIB_PAGES_H
#define SHOAL_BASE_LIB_PAGES_H

/* Unmaps (madvise MADV_DONTNEED) every page of the mappings of the libraries
 * whose file names start with one of `names` (NULL-terminated, e.g.
 * "libcrypto.so."), keeping whatever this process wrote: only read-only
 * mappings without private or anonymous pages (text, symbol tables, read-only
 * data; never relocated data, .data, .bss). The pages stay in the page cache
 * (shared with every process that maps them) and come back on their next use
 * by a page fault, as at load; a thread running that code meanwhile only
 * faults. A library not loaded is skipped. Only for libraries never unloaded
 * (libcrypto and libssl are NODELETE): another thread's dlclose between the
 * read of smaps and the madvise could hand the range to another mapping.
 * Returns the kB of RSS the mappings held, or -1 when /proc/self/smaps cannot
 * be read. */
long lib_pages_release(const char *const names[]);

#endif
