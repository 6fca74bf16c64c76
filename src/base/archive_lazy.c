/* libarchive, loaded when first called: the functions of its API that shoal
 * uses, defined here and forwarded to libarchive.so.13, which the binary does
 * not link (as libcurl: base/curl_lazy.c). It brings libxml2, ICU and
 * libstdc++, ~1.2 ms of CPU at the start of every CLI command. Without it,
 * constructors return NULL and the others fail (ARCHIVE_FATAL), with the
 * reason logged once. Each archive and entry holds the library
 * (lazy_lib_hold); once the last one is freed, it is unloaded: a daemon that
 * imported or pulled an image does not keep ~2 MB of libarchive, libxml2,
 * ICU and compressors mapped (libstdc++, NODELETE, stays). Loading it again
 * costs ~1 ms of CPU. */
#include <archive.h>
#include <archive_entry.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "base/lazy_lib.h"

static struct lazy_lib libarchive = LAZY_LIB("libarchive.so.13");

#define ARCHIVE_FN(name) LAZY_FN(&libarchive, name)

/* A constructor's `fn`: the library held, while the object it makes lives. */
#define ARCHIVE_NEW_FN(name) __typeof__(&name) fn = (__typeof__(&name))lazy_lib_hold(&libarchive, #name)

/* What a constructor made; when it made nothing, its hold released. */
static void *made(void *object, bool held)
{
    if (held && object == NULL)
        lazy_lib_release(&libarchive);
    return object;
}

/* A destructor (NULL: nothing freed): the object's hold released after. */
static int freed(int rc, const void *object)
{
    if (object)
        lazy_lib_release(&libarchive);
    return rc;
}

void archive_entry_copy_hardlink(struct archive_entry *a0, const char *a1)
{
    ARCHIVE_FN(archive_entry_copy_hardlink);
    if (fn)
        fn(a0, a1);
}

void archive_entry_copy_pathname(struct archive_entry *a0, const char *a1)
{
    ARCHIVE_FN(archive_entry_copy_pathname);
    if (fn)
        fn(a0, a1);
}

mode_t archive_entry_filetype(struct archive_entry *a0)
{
    ARCHIVE_FN(archive_entry_filetype);
    return fn ? fn(a0) : 0;
}

void archive_entry_free(struct archive_entry *a0)
{
    if (a0 == NULL)
        return; /* as libarchive: nothing to free, and nothing loaded for it */
    ARCHIVE_FN(archive_entry_free);
    if (fn)
        fn(a0);
    freed(0, a0);
}

const char *archive_entry_hardlink(struct archive_entry *a0)
{
    ARCHIVE_FN(archive_entry_hardlink);
    return fn ? fn(a0) : NULL;
}

struct archive_entry *archive_entry_new(void)
{
    ARCHIVE_NEW_FN(archive_entry_new);
    return made(fn ? fn() : NULL, fn != NULL);
}

const char *archive_entry_pathname(struct archive_entry *a0)
{
    ARCHIVE_FN(archive_entry_pathname);
    return fn ? fn(a0) : NULL;
}

void archive_entry_set_filetype(struct archive_entry *a0, unsigned int a1)
{
    ARCHIVE_FN(archive_entry_set_filetype);
    if (fn)
        fn(a0, a1);
}

void archive_entry_set_hardlink(struct archive_entry *a0, const char *a1)
{
    ARCHIVE_FN(archive_entry_set_hardlink);
    if (fn)
        fn(a0, a1);
}

void archive_entry_set_pathname(struct archive_entry *a0, const char *a1)
{
    ARCHIVE_FN(archive_entry_set_pathname);
    if (fn)
        fn(a0, a1);
}

void archive_entry_set_perm(struct archive_entry *a0, mode_t a1)
{
    ARCHIVE_FN(archive_entry_set_perm);
    if (fn)
        fn(a0, a1);
}

void archive_entry_set_rdev(struct archive_entry *a0, dev_t a1)
{
    ARCHIVE_FN(archive_entry_set_rdev);
    if (fn)
        fn(a0, a1);
}

void archive_entry_set_size(struct archive_entry *a0, la_int64_t a1)
{
    ARCHIVE_FN(archive_entry_set_size);
    if (fn)
        fn(a0, a1);
}

la_int64_t archive_entry_size(struct archive_entry *a0)
{
    ARCHIVE_FN(archive_entry_size);
    return fn ? fn(a0) : 0;
}

int archive_errno(struct archive *a0)
{
    ARCHIVE_FN(archive_errno);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

const char *archive_error_string(struct archive *a0)
{
    ARCHIVE_FN(archive_error_string);
    return fn ? fn(a0) : "libarchive could not be loaded";
}

int archive_read_close(struct archive *a0)
{
    ARCHIVE_FN(archive_read_close);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

la_ssize_t archive_read_data(struct archive *a0, void *a1, size_t a2)
{
    ARCHIVE_FN(archive_read_data);
    return fn ? fn(a0, a1, a2) : ARCHIVE_FATAL;
}

int archive_read_data_block(struct archive *a0, const void **a1, size_t *a2, la_int64_t *a3)
{
    ARCHIVE_FN(archive_read_data_block);
    return fn ? fn(a0, a1, a2, a3) : ARCHIVE_FATAL;
}

int archive_read_disk_descend(struct archive *a0)
{
    ARCHIVE_FN(archive_read_disk_descend);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

struct archive *archive_read_disk_new(void)
{
    ARCHIVE_NEW_FN(archive_read_disk_new);
    return made(fn ? fn() : NULL, fn != NULL);
}

int archive_read_disk_open(struct archive *a0, const char *a1)
{
    ARCHIVE_FN(archive_read_disk_open);
    return fn ? fn(a0, a1) : ARCHIVE_FATAL;
}

int archive_read_disk_set_standard_lookup(struct archive *a0)
{
    ARCHIVE_FN(archive_read_disk_set_standard_lookup);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

int archive_read_disk_set_symlink_physical(struct archive *a0)
{
    ARCHIVE_FN(archive_read_disk_set_symlink_physical);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

int archive_read_free(struct archive *a0)
{
    if (a0 == NULL)
        return ARCHIVE_OK; /* as libarchive, without loading it unheld */
    ARCHIVE_FN(archive_read_free);
    return freed(fn ? fn(a0) : ARCHIVE_FATAL, a0);
}

struct archive *archive_read_new(void)
{
    ARCHIVE_NEW_FN(archive_read_new);
    return made(fn ? fn() : NULL, fn != NULL);
}

int archive_read_next_header(struct archive *a0, struct archive_entry **a1)
{
    ARCHIVE_FN(archive_read_next_header);
    return fn ? fn(a0, a1) : ARCHIVE_FATAL;
}

int archive_read_next_header2(struct archive *a0, struct archive_entry *a1)
{
    ARCHIVE_FN(archive_read_next_header2);
    return fn ? fn(a0, a1) : ARCHIVE_FATAL;
}

int archive_read_open(struct archive *a0, void *a1, archive_open_callback *a2,
                      archive_read_callback *a3, archive_close_callback *a4)
{
    ARCHIVE_FN(archive_read_open);
    return fn ? fn(a0, a1, a2, a3, a4) : ARCHIVE_FATAL;
}

int archive_read_open_filename(struct archive *a0, const char *a1, size_t a2)
{
    ARCHIVE_FN(archive_read_open_filename);
    return fn ? fn(a0, a1, a2) : ARCHIVE_FATAL;
}

int archive_read_support_filter_all(struct archive *a0)
{
    ARCHIVE_FN(archive_read_support_filter_all);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

int archive_read_support_filter_gzip(struct archive *a0)
{
    ARCHIVE_FN(archive_read_support_filter_gzip);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

int archive_read_support_format_raw(struct archive *a0)
{
    ARCHIVE_FN(archive_read_support_format_raw);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

int archive_read_support_format_tar(struct archive *a0)
{
    ARCHIVE_FN(archive_read_support_format_tar);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

void archive_set_error(struct archive *a, int error, const char *fmt, ...)
{
    ARCHIVE_FN(archive_set_error);
    if (fn == NULL)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    fn(a, error, "%s", text);
}

int archive_write_add_filter_gzip(struct archive *a0)
{
    ARCHIVE_FN(archive_write_add_filter_gzip);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

int archive_write_close(struct archive *a0)
{
    ARCHIVE_FN(archive_write_close);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

la_ssize_t archive_write_data(struct archive *a0, const void *a1, size_t a2)
{
    ARCHIVE_FN(archive_write_data);
    return fn ? fn(a0, a1, a2) : ARCHIVE_FATAL;
}

la_ssize_t archive_write_data_block(struct archive *a0, const void *a1, size_t a2, la_int64_t a3)
{
    ARCHIVE_FN(archive_write_data_block);
    return fn ? fn(a0, a1, a2, a3) : ARCHIVE_FATAL;
}

struct archive *archive_write_disk_new(void)
{
    ARCHIVE_NEW_FN(archive_write_disk_new);
    return made(fn ? fn() : NULL, fn != NULL);
}

int archive_write_disk_set_options(struct archive *a0, int a1)
{
    ARCHIVE_FN(archive_write_disk_set_options);
    return fn ? fn(a0, a1) : ARCHIVE_FATAL;
}

int archive_write_disk_set_standard_lookup(struct archive *a0)
{
    ARCHIVE_FN(archive_write_disk_set_standard_lookup);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

int archive_write_finish_entry(struct archive *a0)
{
    ARCHIVE_FN(archive_write_finish_entry);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

int archive_write_free(struct archive *a0)
{
    if (a0 == NULL)
        return ARCHIVE_OK; /* as libarchive, without loading it unheld */
    ARCHIVE_FN(archive_write_free);
    return freed(fn ? fn(a0) : ARCHIVE_FATAL, a0);
}

int archive_write_header(struct archive *a0, struct archive_entry *a1)
{
    ARCHIVE_FN(archive_write_header);
    return fn ? fn(a0, a1) : ARCHIVE_FATAL;
}

struct archive *archive_write_new(void)
{
    ARCHIVE_NEW_FN(archive_write_new);
    return made(fn ? fn() : NULL, fn != NULL);
}

int archive_write_open(struct archive *a0, void *a1, archive_open_callback *a2,
                       archive_write_callback *a3, archive_close_callback *a4)
{
    ARCHIVE_FN(archive_write_open);
    return fn ? fn(a0, a1, a2, a3, a4) : ARCHIVE_FATAL;
}

int archive_write_open_filename(struct archive *a0, const char *a1)
{
    ARCHIVE_FN(archive_write_open_filename);
    return fn ? fn(a0, a1) : ARCHIVE_FATAL;
}

int archive_write_set_bytes_in_last_block(struct archive *a0, int a1)
{
    ARCHIVE_FN(archive_write_set_bytes_in_last_block);
    return fn ? fn(a0, a1) : ARCHIVE_FATAL;
}

int archive_write_set_filter_option(struct archive *a0, const char *a1, const char *a2,
                                    const char *a3)
{
    ARCHIVE_FN(archive_write_set_filter_option);
    return fn ? fn(a0, a1, a2, a3) : ARCHIVE_FATAL;
}

int archive_write_set_format_pax_restricted(struct archive *a0)
{
    ARCHIVE_FN(archive_write_set_format_pax_restricted);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}

int archive_write_set_format_raw(struct archive *a0)
{
    ARCHIVE_FN(archive_write_set_format_raw);
    return fn ? fn(a0) : ARCHIVE_FATAL;
}
