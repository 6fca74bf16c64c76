/* A tiny unit-test harness. Each test file defines tests with TEST(name); they
 * register themselves before main(). `unit_tests --list` prints their names,
 * `unit_tests NAME...` runs some, no argument runs all. Each test runs in a
 * forked child so a crash fails only that test. */
#ifndef SHOAL_TESTS_UNIT_H
#define SHOAL_TESTS_UNIT_H

#include <stdio.h>
#include <stdlib.h>

void unit_register(const char *name, void (*fn)(void));

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void register_##name(void)                                 \
    {                                                                                              \
        unit_register(#name, test_##name);                                                         \
    }                                                                                              \
    static void test_##name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                     \
            fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__,     \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#endif
