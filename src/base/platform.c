#include "base/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

static const struct {
    const char *machine, *architecture, *variant;
} machines[] = {
    {"x86_64", "amd64", ""},  {"amd64", "amd64", ""},   {"i386", "386", ""},
    {"i486", "386", ""},      {"i586", "386", ""},      {"i686", "386", ""},
    {"aarch64", "arm64", ""}, {"arm64", "arm64", ""},
    /* a 32-bit process on an arm64 kernel sees "armv8l": an armhf userland, it runs v7 images */
    {"armv8l", "arm", "v7"},  {"armv7l", "arm", "v7"},  {"armv7", "arm", "v7"},
    {"armhf", "arm", "v7"},   {"armv6l", "arm", "v6"},  {"armel", "arm", "v6"},
    {"armv5tel", "arm", "v5"}, {"armv5l", "arm", "v5"},
};

struct platform platform_from_machine(const char *machine)
{
    for (size_t i = 0; i < sizeof(machines) / sizeof(machines[0]); i++)
        if (strcmp(machine, machines[i].machine) == 0)
            return (struct platform){"linux", machines[i].architecture, machines[i].variant};
    return (struct platform){"linux", machine, ""};
}

/* SHOAL_TEST_PLATFORM "os/arch[/variant]" as a JSON platform, or NULL. */
static json_t *platform_from_test_knob(void)
{
    const char *knob = getenv("SHOAL_TEST_PLATFORM");
    char os[32], arch[32], variant[32] = "";
    if (knob == NULL || sscanf(knob, "%31[^/]/%31[^/]/%31s", os, arch, variant) < 2)
        return NULL;
    json_t *j = json_pack("{s:s, s:s}", "os", os, "architecture", arch);
    if (variant[0])
        json_object_set_new(j, "variant", json_string(variant));
    return j;
}

json_t *platform_self(void)
{
    json_t *knob = platform_from_test_knob();
    if (knob)
        return knob;
    struct utsname u;
    if (uname(&u) < 0)
        snprintf(u.machine, sizeof(u.machine), "unknown");
    struct platform p = platform_from_machine(u.machine);
    json_t *j = json_pack("{s:s, s:s}", "os", p.os, "architecture", p.architecture);
    if (p.variant[0])
        json_object_set_new(j, "variant", json_string(p.variant));
    return j;
}

void platform_format(json_t *platform, char *out, size_t size)
{
    const char *os = json_string_value(json_object_get(platform, "os"));
    const char *arch = json_string_value(json_object_get(platform, "architecture"));
    const char *variant = json_string_value(json_object_get(platform, "variant"));
    if (os == NULL || arch == NULL)
        snprintf(out, size, "%s", "");
    else
        snprintf(out, size, "%s/%s%s%s", os, arch, variant ? "/" : "", variant ? variant : "");
}
