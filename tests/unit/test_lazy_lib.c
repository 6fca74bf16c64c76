#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

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

/* Threads that each hold the library, call into it, then release it: none
 * runs code of a library another one unloaded (a crash), and the last
 * release unloads it. */
#define HOLDERS 4
#define ROUNDS 300

static void *hold_call_release(void *arg)
{
    struct lazy_lib *lib = arg;
    for (int i = 0; i < ROUNDS; i++) {
        size_t (*fn)(void) = (size_t(*)(void))lazy_lib_hold(lib, SYMBOL);
        size_t (*again)(void) = (size_t(*)(void))lazy_lib_sym(lib, SYMBOL);
        if (fn == NULL || again != fn || fn() == 0)
            return (void *)1;
        lazy_lib_release(lib);
    }
    return NULL;
}

TEST(lazy_lib_holders_in_threads_never_see_it_unloaded)
{
    struct lazy_lib lib = LAZY_LIB(SONAME);
    pthread_t th[HOLDERS];
    for (int i = 0; i < HOLDERS; i++)
        CHECK(pthread_create(&th[i], NULL, hold_call_release, &lib) == 0);
    int failed = 0;
    for (int i = 0; i < HOLDERS; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        failed += rc != NULL;
    }
    CHECK(failed == 0);
    CHECK(lib.users == 0);
    CHECK(!is_loaded());
}
