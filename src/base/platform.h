/* The node's platform as OCI image indexes and Docker name it: os "linux",
 * architecture "amd64", "arm64", "arm" ..., variant "v7" for 32-bit ARM. */
#ifndef SHOAL_BASE_PLATFORM_H
#define SHOAL_BASE_PLATFORM_H

#include <jansson.h>

struct platform {
    const char *os, *architecture, *variant; /* variant "" when there is none */
};

/* Maps a kernel machine name (uname -m: "x86_64", "aarch64", "armv7l") to an
 * OCI platform the way containerd's platforms.Normalize does. An unknown name
 * is kept as it is. The strings are static or point into `machine`. */
struct platform platform_from_machine(const char *machine);

/* {"os", "architecture", "variant"} of this host (from uname(2)), variant
 * omitted when there is none. Tests make a node claim another platform with
 * the environment variable SHOAL_TEST_PLATFORM="os/arch[/variant]" (what the
 * node reports when it joins, and the default of its pulls). */
json_t *platform_self(void);

/* "linux/arm/v7", "linux/amd64" into out[size]. */
void platform_format(json_t *platform, char *out, size_t size);

#endif
