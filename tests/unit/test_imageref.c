/* Image references (model/imageref.h): Docker's grammar. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "model/imageref.h"
#include "unit.h"

static void check_ref(const char *in, const char *want)
{
    char out[300];
    struct serr err;
    if (want) {
        CHECK(image_normalize_ref(in, out, sizeof(out), &err) == 0);
        CHECK_STR(out, want);
    } else {
        CHECK(image_normalize_ref(in, out, sizeof(out), &err) < 0);
        CHECK(err.kind == SERR_INVALID);
    }
}

TEST(image_normalize_ref_cases)
{
    check_ref("busybox", "busybox:latest");
    check_ref("busybox:1.36", "busybox:1.36");
    check_ref("reg:5000/a/b:tag", "reg:5000/a/b:tag");
    check_ref("reg:5000/a/b", "reg:5000/a/b:latest");
    check_ref("localhost/app", "localhost/app:latest");
    check_ref("My.Registry.io/team/app:V1_x-2.0", "My.Registry.io/team/app:V1_x-2.0");
    check_ref("a__b/c-d--e/f.g", "a__b/c-d--e/f.g:latest");
    check_ref("", NULL);
    check_ref("UPPER:x", NULL);
    check_ref("a:b:c", NULL);
    check_ref("a___b", NULL);
    check_ref("-a", NULL);
    check_ref("a/", NULL);
    check_ref("a//b", NULL);
    check_ref("a:", NULL);
    check_ref("a:.x", NULL);
    check_ref("a@sha256:0000", NULL);
    check_ref("a b", NULL);
    char tag[140];
    memset(tag, 'x', 129);
    tag[129] = '\0';
    char *long_ref = xasprintf("a:%s", tag);
    check_ref(long_ref, NULL);
    long_ref[strlen(long_ref) - 1] = '\0'; /* 128 is the limit */
    char out[300];
    CHECK(image_normalize_ref(long_ref, out, sizeof(out), NULL) == 0);
    free(long_ref);
    struct serr err;
    CHECK(image_normalize_ref("busybox", out, 8, &err) < 0 && err.kind == SERR_INVALID);
}

static void check_parse(const char *in, const char *domain, const char *path, const char *tag,
                        const char *digest, const char *name)
{
    struct image_ref r;
    struct serr err;
    CHECK(image_parse_ref(in, &r, &err) == 0);
    CHECK_STR(r.domain, domain);
    CHECK_STR(r.path, path);
    CHECK_STR(r.tag, tag);
    CHECK_STR(r.digest, digest);
    CHECK_STR(r.name, name);
}

TEST(image_parse_ref_docker_forms)
{
    const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    check_parse("nginx", "docker.io", "library/nginx", "latest", "", "nginx");
    check_parse("library/nginx:1.25", "docker.io", "library/nginx", "1.25", "", "nginx");
    check_parse("docker.io/library/nginx:1.25", "docker.io", "library/nginx", "1.25", "", "nginx");
    check_parse("index.docker.io/user/app", "docker.io", "user/app", "latest", "", "user/app");
    check_parse("user/app:v1", "docker.io", "user/app", "v1", "", "user/app");
    check_parse("localhost/app", "localhost", "app", "latest", "", "localhost/app");
    char *ref = xasprintf("reg.local:5000/a/b@%s", d);
    check_parse(ref, "reg.local:5000", "a/b", "", d, "reg.local:5000/a/b");
    free(ref);
    ref = xasprintf("127.0.0.1:5000/a:v2@%s", d);
    check_parse(ref, "127.0.0.1:5000", "a", "v2", d, "127.0.0.1:5000/a");
    free(ref);
    struct image_ref r;
    struct serr err;
    CHECK(image_parse_ref("a@sha256:0000", &r, &err) < 0 && err.kind == SERR_INVALID);
    CHECK(image_parse_ref("a@", &r, &err) < 0);
    CHECK(image_parse_ref("A/b", &r, &err) < 0);
    check_ref("docker.io/library/busybox", "busybox:latest");
    check_ref("library/busybox:1", "busybox:1");
}
