#include <archive_entry.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

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

/* A tar of one file of `size` bytes named `name`, in memory (freed by the caller). */
static void *tar_of_one_file(const char *name, size_t size, size_t *len)
{
    size_t cap = size + 64 * 1024;
    void *tar = malloc(cap);
    char *data = calloc(1, size);
    CHECK(tar && data);
    struct archive *w = archive_write_new();
    archive_write_set_format_pax_restricted(w);
    CHECK(archive_write_open_memory(w, tar, cap, len) == ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)size);
    CHECK(archive_write_header(w, e) == ARCHIVE_OK);
    CHECK(archive_write_data(w, data, size) == (la_ssize_t)size);
    CHECK(archive_write_close(w) == ARCHIVE_OK);
    archive_write_free(w);
    archive_entry_free(e);
    free(data);
    return tar;
}

/* A full disk while writing a file's data fails the unpacking, in the
 * errno's words, instead of leaving the file cut short. */
TEST(untar_entries_fails_on_a_full_disk)
{
    if (geteuid() != 0) {
        fprintf(stderr, "skipped: needs root\n");
        return;
    }
    /* a private mount namespace: the tmpfs goes with this (forked) test */
    CHECK(unshare(CLONE_NEWNS) == 0);
    /* "none", not NULL, as the type: valgrind reports a NULL type */
    CHECK(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0);
    char root[] = "/tmp/shoal-untar-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    CHECK(mount("tmpfs", root, "tmpfs", 0, "size=64k") == 0);
    size_t len;
    void *tar = tar_of_one_file("big", 256 * 1024, &len);
    struct archive *in = archive_read_new(), *disk = archive_write_disk_new();
    archive_read_support_format_tar(in);
    CHECK(archive_read_open_memory(in, tar, len) == ARCHIVE_OK);
    static const struct untar_words words = {"the test tar", "unpacking", "it"};
    struct serr err = {0};
    int rc = untar_entries(in, disk, root, &words, &err);
    archive_write_free(disk);
    archive_read_free(in);
    free(tar);
    umount(root);
    rmdir(root);
    CHECK(rc < 0);
    CHECK(strstr(err.msg, "No space left on device") != NULL);
}
