/* Image archives (agent/image_load.c): the input is a file given to `shoal image
 * import` (a root filesystem tarball, any compression) or `shoal image load`
 * (docker save or OCI layout), unpacked into an image store in a new
 * temporary directory that is removed after each input. The first byte picks
 * import or load. Files the archives write are capped at 16 MiB each
 * (RLIMIT_FSIZE) so that a compression bomb fails instead of filling /tmp.
 * Seeds try to write through symlinks to OUTSIDE: it must never appear. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/image.h"
#include "fuzz.h"

#define MAX_FILE_SIZE (16 * 1024 * 1024)
#define OUTSIDE "/tmp/shoal-fuzz-outside"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    struct rlimit fsize = {MAX_FILE_SIZE, MAX_FILE_SIZE};
    signal(SIGXFSZ, SIG_IGN); /* a write past the cap fails with EFBIG */
    if (setrlimit(RLIMIT_FSIZE, &fsize) < 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *dir = fuzz_tmpdir("image");
    char *archive = xasprintf("%s/archive", dir);
    char *store_dir = xasprintf("%s/store", dir);
    struct serr err = {0};
    struct image_store *store = NULL;
    if (write_file_atomic(archive, data + 1, size - 1, false, &err) < 0 ||
        image_store_open(store_dir, &store, &err) < 0) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    json_t *out = NULL;
    int rc;
    if (data[0] % 2 == 0) {
        rc = image_import(store, archive, "fuzz:latest", &out, &err);
        fuzz_result("import", rc, &err);
        if (rc == 0 && !image_has_layers(store, out))
            abort(); /* imported without its layer */
    } else {
        rc = image_load(store, archive, &out, &err);
        fuzz_result("load", rc, &err);
        size_t i;
        json_t *img;
        json_array_foreach(out, i, img) if (!image_has_layers(store, img)) abort();
    }
    json_decref(out);
    image_store_close(store);
    struct stat st;
    if (lstat(OUTSIDE, &st) == 0) {
        fprintf(stderr, "fuzz: the archive wrote %s, outside its directory\n", OUTSIDE);
        abort();
    }
    if (rm_rf(dir, &err) < 0) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    free(store_dir);
    free(archive);
    free(dir);
    return 0;
}
