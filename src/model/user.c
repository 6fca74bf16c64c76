#include "model/user.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define USER_NAME_MAX 32

bool user_part_numeric(const char *part, size_t len)
{
    if (len == 0 || len > 10)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)part[i]))
            return false;
    return strtoull(part, NULL, 10) <= UINT32_MAX - 1;
}

static bool part_valid(const char *part, size_t len)
{
    if (len > 0 && strspn(part, "0123456789") >= len)
        return user_part_numeric(part, len);
    if (len == 0 || len > USER_NAME_MAX || part[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)part[i]) && strchr("_.-", part[i]) == NULL)
            return false;
    return true;
}

bool user_spec_valid(const char *spec)
{
    if (spec == NULL)
        return false;
    const char *colon = strchr(spec, ':');
    if (colon == NULL)
        return part_valid(spec, strlen(spec));
    return part_valid(spec, (size_t)(colon - spec)) && part_valid(colon + 1, strlen(colon + 1));
}
