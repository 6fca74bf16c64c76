/* A shared library loaded when one of its functions is first called, for
 * forwarders that stand in for a library the binary does not link
 * (base/curl_lazy.c, base/archive_lazy.c, base/yaml_lazy.c: a missing
 * library fails each call as the library would) and for the stubs of
 * base/lazy_stubs.S (lazy_stubs.c: a missing library ends the process). */
#ifndef SHOAL_BASE_LAZY_LIB_H
#define SHOAL_BASE_LAZY_LIB_H

#include <pthread.h>
#include <stdbool.h>

struct lazy_lib {
    const char *soname;
    pthread_mutex_t lock;
    bool tried; /* dlopen was called: handle is the library, or NULL */
    void *handle;
    int users; /* lazy_lib_hold not yet released */
};
#define LAZY_LIB(soname) {(soname), PTHREAD_MUTEX_INITIALIZER, false, NULL, 0}

/* The library's `name`, or NULL when it could not be loaded (the reason is
 * logged once, at the first call). */
void *lazy_lib_sym(struct lazy_lib *lib, const char *name);

/* As lazy_lib_sym, and when found, one user more: the library stays loaded
 * until as many lazy_lib_release. For the constructors of a library's
 * objects, all its other functions being called on live objects. */
void *lazy_lib_hold(struct lazy_lib *lib, const char *name);

/* One user less; the last one unloads the library (dlclose), loaded again at
 * the next call: its pages are not kept while nothing uses it. */
void lazy_lib_release(struct lazy_lib *lib);

/* Declares `fn`: the library's own `name`, of the same type (NULL when not loaded). */
#define LAZY_FN(lib, name) __typeof__(&name) fn = (__typeof__(&name))lazy_lib_sym((lib), #name)

#endif
