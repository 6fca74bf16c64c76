/* A container's user as Docker takes it (`--user`): "user", "user:group",
 * each a name or a decimal id. The agent resolves names in the container's
 * /etc/passwd and /etc/group (agent/runtime_user.c). */
#ifndef SHOAL_MODEL_USER_H
#define SHOAL_MODEL_USER_H

#include <stdbool.h>
#include <stddef.h>

/* Syntax only: each part a decimal id below 2^32 - 1, or a name of 1 to 32
 * characters from [A-Za-z0-9_.-] not starting with '-' (and not all digits). */
bool user_spec_valid(const char *spec);
/* A part ("1000", len 4) is a decimal id. */
bool user_part_numeric(const char *part, size_t len);

#endif
