#include "base/lazy_lib.h"

#include <dlfcn.h>

#include "base/log.h"

/* The library, loaded if need be (NULL: it cannot be); lib->lock held. */
static void *loaded(struct lazy_lib *lib)
{
    if (!lib->tried) {
        lib->tried = true;
        lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
        if (lib->handle == NULL)
            log_error("cannot load %s: %s", lib->soname, dlerror());
    }
    return lib->handle;
}

void *lazy_lib_sym(struct lazy_lib *lib, const char *name)
{
    pthread_mutex_lock(&lib->lock);
    void *handle = loaded(lib);
    pthread_mutex_unlock(&lib->lock);
    return handle ? dlsym(handle, name) : NULL;
}

void *lazy_lib_hold(struct lazy_lib *lib, const char *name)
{
    pthread_mutex_lock(&lib->lock);
    void *handle = loaded(lib);
    void *sym = handle ? dlsym(handle, name) : NULL;
    if (sym)
        lib->users++;
    pthread_mutex_unlock(&lib->lock);
    return sym;
}

void lazy_lib_release(struct lazy_lib *lib)
{
    pthread_mutex_lock(&lib->lock);
    if (--lib->users == 0 && lib->handle) {
        dlclose(lib->handle);
        lib->handle = NULL;
        lib->tried = false;
    }
    pthread_mutex_unlock(&lib->lock);
}
