#include <stdlib.h>
#include <string.h>

#include "agent/untar.h"
#include "unit.h"

/* Entry names that would leave the root are refused, the others kept under it. */
TEST(untar_path_under_keeps_entries_inside)
{
    static const char *const outside[] = {"/etc/passwd", "..", "../x", "a/../../x", "a/..", NULL};
    for (int i = 0; outside[i]; i++)
        CHECK(untar_path_under("/r", outside[i]) == NULL);
    CHECK(untar_path_under("/r", NULL) == NULL);
    char *p = untar_path_under("/r", "a/b..c/..d");
    CHECK_STR(p, "/r/a/b..c/..d");
    free(p);
}
