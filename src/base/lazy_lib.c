#include "base/lazy_lib.h"

#include <dlfcn.h>

#include "base/log.h"

void *lazy_lib_sym(struct lazy_lib *lib, const char *name)
{
    pthread_mutex_lock(&lib->lock);
    if (!lib->tried) {
        lib->tried = true;
        lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
        if (lib->handle == NULL)
            log_error("cannot load %s: %s", lib->soname, dlerror());
    }
    void *handle = lib->handle;
    pthread_mutex_unlock(&lib->lock);
    return handle ? dlsym(handle, name) : NULL;
}
