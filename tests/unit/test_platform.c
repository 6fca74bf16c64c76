#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "base/platform.h"
#include "unit.h"

static void check_machine(const char *machine, const char *arch, const char *variant)
{
    struct platform p = platform_from_machine(machine);
    CHECK_STR(p.os, "linux");
    CHECK_STR(p.architecture, arch);
    CHECK_STR(p.variant, variant);
}

TEST(platform_from_machine_names)
{
    check_machine("x86_64", "amd64", "");
    check_machine("aarch64", "arm64", "");
    check_machine("armv7l", "arm", "v7");
    check_machine("armv8l", "arm", "v7");
    check_machine("armv6l", "arm", "v6");
    check_machine("i686", "386", "");
    check_machine("riscv64", "riscv64", "");
}

TEST(platform_self_and_format)
{
    json_t *self = platform_self();
    struct utsname u;
    CHECK(uname(&u) == 0);
    struct platform p = platform_from_machine(u.machine);
    CHECK_STR(json_string_value(json_object_get(self, "architecture")), p.architecture);
    char text[64], want[64];
    platform_format(self, text, sizeof(text));
    snprintf(want, sizeof(want), "linux/%s%s%s", p.architecture, p.variant[0] ? "/" : "",
             p.variant);
    CHECK_STR(text, want);
    json_decref(self);

    json_t *arm = json_pack("{s:s, s:s, s:s}", "os", "linux", "architecture", "arm", "variant", "v7");
    platform_format(arm, text, sizeof(text));
    CHECK_STR(text, "linux/arm/v7");
    json_decref(arm);
    platform_format(NULL, text, sizeof(text));
    CHECK_STR(text, "");
}

TEST(platform_self_test_knob)
{
    setenv("SHOAL_TEST_PLATFORM", "linux/arm/v7", 1);
    json_t *p = platform_self();
    char text[64];
    platform_format(p, text, sizeof(text));
    CHECK_STR(text, "linux/arm/v7");
    json_decref(p);
    setenv("SHOAL_TEST_PLATFORM", "linux/arm64", 1);
    p = platform_self();
    platform_format(p, text, sizeof(text));
    CHECK_STR(text, "linux/arm64");
    CHECK(json_object_get(p, "variant") == NULL);
    json_decref(p);
    unsetenv("SHOAL_TEST_PLATFORM");
}
