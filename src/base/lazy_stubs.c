/* The resolver of the stubs of base/lazy_stubs.S: which library and function
 * each slot stands for, from base/lazy_stubs.def. */
#include <stdlib.h>

#include "base/lazy_lib.h"
#include "base/log.h"

enum stub_lib {
#define STUB_LIB(id, soname) STUB_LIB_##id,
#define STUB_FN(id, name)
#include "base/lazy_stubs.def"
#undef STUB_LIB
#undef STUB_FN
};

static struct lazy_lib libs[] = {
#define STUB_LIB(id, soname) [STUB_LIB_##id] = LAZY_LIB(soname),
#define STUB_FN(id, name)
#include "base/lazy_stubs.def"
#undef STUB_LIB
#undef STUB_FN
};

static const struct stub {
    enum stub_lib lib;
    const char *name;
} stubs[] = {
#define STUB_LIB(id, soname)
#define STUB_FN(id, name) {STUB_LIB_##id, #name},
#include "base/lazy_stubs.def"
#undef STUB_LIB
#undef STUB_FN
};

/* Defined in lazy_stubs.S, one per entry of stubs[], in the same order. */
extern void *lazy_stub_slots[];

void *lazy_stub_resolve(void **slot) __attribute__((visibility("hidden")));

/* Called by lazy_stub_common with the slot of the stub called: its function,
 * now also in the slot, so that the next calls jump there directly. Without
 * the library (or the function), nothing the caller could do would work: the
 * process ends with the reason. */
void *lazy_stub_resolve(void **slot)
{
    const struct stub *stub = &stubs[slot - lazy_stub_slots];
    void *fn = lazy_lib_sym(&libs[stub->lib], stub->name);
    if (fn == NULL) {
        log_error("%s: not found in %s", stub->name, libs[stub->lib].soname);
        abort();
    }
    __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    return fn;
}
