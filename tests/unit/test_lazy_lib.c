#include <dlfcn.h>

#include "base/lazy_lib.h"
#include "unit.h"

/* A library of glibc (libc6) that nothing else loads. */
#define SONAME "libBrokenLocale.so.1"
#define SYMBOL "__ctype_get_mb_cur_max"

static bool is_loaded(void)
{
    void *h = dlopen(SONAME, RTLD_NOW | RTLD_NOLOAD);
    if (h)
        dlclose(h);
    return h != NULL;
}

TEST(lazy_lib_is_unloaded_when_its_last_holder_releases_it)
{
    struct lazy_lib lib = LAZY_LIB(SONAME);
    CHECK(!is_loaded());
    CHECK(lazy_lib_hold(&lib, SYMBOL) != NULL);
    CHECK(lazy_lib_hold(&lib, SYMBOL) != NULL);
    CHECK(is_loaded());
    lazy_lib_release(&lib);
    CHECK(is_loaded()); /* one holder left */
    lazy_lib_release(&lib);
    CHECK(!is_loaded());
    CHECK(lazy_lib_sym(&lib, SYMBOL) != NULL); /* loaded again at the next call */
    CHECK(is_loaded());
    CHECK(lazy_lib_hold(&lib, SYMBOL) != NULL);
    lazy_lib_release(&lib);
    CHECK(!is_loaded());
}

TEST(lazy_lib_hold_of_a_missing_symbol_holds_nothing)
{
    struct lazy_lib lib = LAZY_LIB(SONAME);
    CHECK(lazy_lib_hold(&lib, "no_such_function") == NULL);
    CHECK(lazy_lib_hold(&lib, SYMBOL) != NULL);
    lazy_lib_release(&lib);
    CHECK(!is_loaded());
}
