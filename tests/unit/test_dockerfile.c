/* Dockerfiles' bases (model/dockerfile.h). */
#include <stdlib.h>
#include <string.h>

#include "model/dockerfile.h"
#include "unit.h"

static char *bases_of(const char *text)
{
    json_t *b = dockerfile_bases(text);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

TEST(dockerfile_bases_cases)
{
    char *s = bases_of("FROM busybox\nRUN true\n");
    CHECK_STR(s, "[\"busybox\"]");
    free(s);
    s = bases_of("# comment\n  from --platform=linux/arm64 reg:5000/a/b:1 AS build\n"
                 "RUN make\nFROM scratch\nCOPY --from=build /x /x\nFROM build\n"
                 "ARG V=1\nFROM base:$V\nFROM\tbusybox:1.36\nFROM reg:5000/a/b:1\n");
    CHECK_STR(s, "[\"reg:5000/a/b:1\",\"busybox:1.36\"]");
    free(s);
    s = bases_of("RUN FROM x\nFROMAGE y\n");
    CHECK_STR(s, "[]");
    free(s);
}
