/* Volume backups: archive, list, verify, restore (agent/volumes.h). */
#include "agent/volumes.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/untar.h"
#include "base/json_get.h"
#include "base/util.h"

#define SUFFIX ".tar.gz"
#define BLOCK (64 * 1024)

/* ---- checksums ---- */

static int sha256_file(const char *path, char hex[65], struct serr *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return serr_errno(err, "%s", path);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *buf = xmalloc(BLOCK);
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    ssize_t n;
    while (ok && (n = read(fd, buf, BLOCK)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0 && EVP_DigestUpdate(md, buf, (size_t)n) == 1;
    }
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    ok = ok && EVP_DigestFinal_ex(md, sum, &len) == 1 && len == 32;
    for (unsigned i = 0; ok && i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    free(buf);
    EVP_MD_CTX_free(md);
    close(fd);
    return ok ? 0 : serr_set(err, SERR_INTERNAL, "%s: cannot compute its sha256", path);
}

/* The hex digest a .sha256 file records (first 64 characters). */
static int read_sum(const char *archive, char hex[65], struct serr *err)
{
    char *path = xasprintf("%s.sha256", archive), *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, err);
    if (rc == 0 && (len < 64 || strspn(text, "0123456789abcdef") < 64))
        rc = serr_set(err, SERR_INVALID, "%s is malformed", path);
    if (rc == 0) {
        memcpy(hex, text, 64);
        hex[64] = '\0';
    }
    free(text);
    free(path);
    return rc;
}

int volumes_verify(const char *archive, struct serr *err)
{
    char want[65], got[65];
    if (read_sum(archive, want, err) < 0)
        return serr_wrap(err, "backup %s has no valid checksum", archive);
    if (sha256_file(archive, got, err) < 0)
        return -1;
    if (strcmp(want, got) != 0)
        return serr_set(err, SERR_INVALID, "backup %s is corrupt: its sha256 is %.12s..., its "
                        "checksum file says %.12s...", archive, got, want);
    return 0;
}

/* ---- listing ---- */

static bool is_backup_of(const char *file, const char *name)
{
    size_t n = strlen(name), f = strlen(file), s = strlen(SUFFIX);
    return f > n + 1 + s && strncmp(file, name, n) == 0 && file[n] == '-' &&
           strcmp(file + f - s, SUFFIX) == 0;
}

static json_t *describe(const char *dir, const char *file)
{
    char *path = xasprintf("%s/%s", dir, file);
    char hex[65];
    struct stat st;
    json_t *out = NULL;
    if (stat(path, &st) == 0 && read_sum(path, hex, NULL) == 0)
        out = json_pack("{s:s, s:s, s:I, s:I, s:s}", "name", file, "path", path, "size",
                        (json_int_t)st.st_size, "created_at",
                        (json_int_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000,
                        "sha256", hex);
    free(path);
    return out;
}

static int newest_first(const void *a, const void *b)
{
    return -strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *volumes_list(const char *backup_dir, const char *name)
{
    char *dir = xasprintf("%s/%s", backup_dir, name);
    json_t *out = json_array();
    DIR *d = opendir(dir);
    char **files = NULL;
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!is_backup_of(de->d_name, name))
            continue;
        files = xrealloc(files, (n + 1) * sizeof(*files));
        files[n++] = xstrdup(de->d_name);
    }
    if (d)
        closedir(d);
    if (n > 0)
        qsort(files, n, sizeof(*files), newest_first); /* timestamps sort as text */
    for (size_t i = 0; i < n; i++) {
        json_t *b = describe(dir, files[i]);
        if (b)
            json_array_append_new(out, b);
        free(files[i]);
    }
    free(files);
    free(dir);
    return out;
}

/* write_file_atomic's leftovers in a volume's backup directory (a .sha256,
 * policy.json) are removed after an hour: other nodes write there too, with
 * their own clocks. */
#define STALE_TMP_MS (60 * 60 * 1000)

/* Removes the backups of `name` beyond the `keep` newest, and the stale
 * temporary files beside them. */
static void remove_beyond(const char *backup_dir, const char *name, int keep)
{
    char *dir = xasprintf("%s/%s", backup_dir, name);
    remove_stale_tmp_files(dir, now_ms() - STALE_TMP_MS);
    free(dir);
    json_t *all = volumes_list(backup_dir, name);
    for (size_t i = (size_t)keep; keep > 0 && i < json_array_size(all); i++) {
        const char *path = jstr(json_array_get(all, i), "path");
        char *sum = xasprintf("%s.sha256", path);
        unlink(sum); /* first: a half-removed backup is never listed */
        unlink(path);
        free(sum);
    }
    json_decref(all);
}

/* ---- archiving ---- */

/* "./REL" for a path under `root` ("." for root itself), new string. */
static char *relative_name(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (strncmp(path, root, n) != 0)
        return NULL;
    return xasprintf(".%s", path + n);
}

static int copy_file_data(struct archive *disk, struct archive *w, struct serr *err)
{
    char *buf = xmalloc(BLOCK);
    la_ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = archive_read_data(disk, buf, BLOCK)) != 0) {
        if (n < 0 || archive_write_data(w, buf, (size_t)n) < 0)
            rc = serr_set(err, SERR_INTERNAL, "archiving: %s",
                          n < 0 ? archive_error_string(disk) : archive_error_string(w));
    }
    free(buf);
    return rc;
}

/* Writes the tree of data_dir into the open archive w. */
static int write_tree(struct archive *w, const char *data_dir, struct serr *err)
{
    struct archive *disk = archive_read_disk_new();
    archive_read_disk_set_symlink_physical(disk);
    archive_read_disk_set_standard_lookup(disk);
    int rc = 0;
    if (archive_read_disk_open(disk, data_dir) != ARCHIVE_OK)
        rc = serr_set(err, SERR_INTERNAL, "%s: %s", data_dir, archive_error_string(disk));
    while (rc == 0) {
        struct archive_entry *e = archive_entry_new();
        int r = archive_read_next_header2(disk, e);
        if (r == ARCHIVE_EOF) {
            archive_entry_free(e);
            break;
        }
        char *rel = r >= ARCHIVE_WARN ? relative_name(data_dir, archive_entry_pathname(e)) : NULL;
        if (rel == NULL)
            rc = serr_set(err, SERR_INTERNAL, "reading %s: %s", data_dir,
                          archive_error_string(disk));
        else {
            archive_read_disk_descend(disk);
            archive_entry_set_pathname(e, rel);
            if (archive_write_header(w, e) < ARCHIVE_WARN)
                rc = serr_set(err, SERR_INTERNAL, "archiving %s: %s", rel,
                              archive_error_string(w));
            else if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0)
                rc = copy_file_data(disk, w, err);
        }
        free(rel);
        archive_entry_free(e);
    }
    archive_read_close(disk);
    archive_read_free(disk);
    return rc;
}

static char *backup_file_name(const char *name)
{
    int64_t ms = now_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y%m%dT%H%M%S", &tm);
    return xasprintf("%s-%s.%03dZ%s", name, ts, (int)(ms % 1000), SUFFIX);
}

/* The archive into `part`, synced. */
static int write_archive(const char *data_dir, const char *part, struct serr *err)
{
    struct archive *w = archive_write_new();
    archive_write_add_filter_gzip(w);
    archive_write_set_format_pax_restricted(w);
    int rc = 0;
    if (archive_write_open_filename(w, part) != ARCHIVE_OK)
        rc = serr_set(err, SERR_INTERNAL, "%s: %s", part, archive_error_string(w));
    else
        rc = write_tree(w, data_dir, err);
    if (archive_write_close(w) != ARCHIVE_OK && rc == 0)
        rc = serr_set(err, SERR_INTERNAL, "%s: %s", part, archive_error_string(w));
    archive_write_free(w);
    int fd = rc == 0 ? open(part, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return rc;
}

int volumes_archive(const char *data_dir, const char *backup_dir, const char *name, int keep,
                    json_t **out, struct serr *err)
{
    char *dir = xasprintf("%s/%s", backup_dir, name);
    char *file = backup_file_name(name);
    char *path = xasprintf("%s/%s", dir, file);
    char *part = xasprintf("%s.part", path);
    char hex[65];
    int rc = mkdir_p(dir, 0700, err);
    if (rc == 0 && access(dir, W_OK) < 0)
        rc = serr_errno(err, "backup directory %s is not writable", dir);
    if (rc == 0)
        rc = write_archive(data_dir, part, err);
    if (rc == 0 && rename(part, path) < 0)
        rc = serr_errno(err, "rename %s", part);
    if (rc == 0)
        rc = sha256_file(path, hex, err);
    if (rc == 0) {
        char *sum = xasprintf("%s.sha256", path), *line = xasprintf("%s  %s\n", hex, file);
        rc = write_file_atomic(sum, line, strlen(line), true, err);
        free(line);
        free(sum);
    }
    if (rc < 0) {
        unlink(part);
        unlink(path);
    } else {
        remove_beyond(backup_dir, name, keep);
        *out = describe(dir, file);
    }
    free(part);
    free(path);
    free(file);
    free(dir);
    return rc;
}

/* ---- restoring ---- */

/* ---- restoring: the archive is read, hashed and gunzipped by a thread of
 * its own while the calling thread writes the files (as `gzip -dc | tar -x`
 * runs two processes): a queue of QUEUE_BLOCKS blocks of tar bytes between
 * them. The sha256 of the file comes out of the same read. ---- */

#define QUEUE_BLOCKS 8

struct unzip {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int fd;
    const char *path;
    EVP_MD_CTX *md;    /* the producer's */
    unsigned char *file_buf; /* the producer's read of the file */
    unsigned char *blocks[QUEUE_BLOCKS];
    size_t lens[QUEUE_BLOCKS];
    int tail, count;   /* the oldest block not consumed (held by the consumer), blocks queued */
    bool held;         /* the consumer holds blocks[tail] */
    bool done, stop;   /* the producer ended; the consumer gave up */
    char error[256];   /* why the producer ended early ("" when it did not) */
    char hex[65];      /* the file's sha256, once done without error */
};

/* libarchive's read callback of the producer: the file's bytes, hashed. */
static la_ssize_t file_read(struct archive *a, void *data, const void **buf)
{
    struct unzip *u = data;
    ssize_t n;
    while ((n = read(u->fd, u->file_buf, BLOCK)) < 0 && errno == EINTR)
        ;
    if (n < 0) {
        archive_set_error(a, errno, "%s: %s", u->path, strerror(errno));
        return -1;
    }
    EVP_DigestUpdate(u->md, u->file_buf, (size_t)n);
    *buf = u->file_buf;
    return n;
}

/* Waits for a free slot; false when the consumer gave up. */
static bool push_block(struct unzip *u, const void *data, size_t len)
{
    pthread_mutex_lock(&u->lock);
    while (u->count == QUEUE_BLOCKS && !u->stop)
        pthread_cond_wait(&u->cond, &u->lock);
    bool ok = !u->stop;
    pthread_mutex_unlock(&u->lock);
    if (!ok)
        return false;
    int slot = (u->tail + u->count) % QUEUE_BLOCKS; /* free: only this thread adds */
    memcpy(u->blocks[slot], data, len);
    u->lens[slot] = len;
    pthread_mutex_lock(&u->lock);
    u->count++;
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
    return true;
}

/* Gunzips the whole file into the queue, then hashes what libarchive left. */
static void *unzip_main(void *arg)
{
    struct unzip *u = arg;
    struct archive *raw = archive_read_new();
    archive_read_support_filter_gzip(raw);
    archive_read_support_format_raw(raw);
    struct archive_entry *e;
    char *buf = xmalloc(BLOCK);
    const char *why = NULL;
    if (archive_read_open(raw, u, NULL, file_read, NULL) != ARCHIVE_OK ||
        archive_read_next_header(raw, &e) != ARCHIVE_OK)
        why = archive_error_string(raw);
    la_ssize_t n = 0;
    bool stopped = false;
    while (why == NULL && !stopped && (n = archive_read_data(raw, buf, BLOCK)) > 0)
        stopped = !push_block(u, buf, (size_t)n);
    if (why == NULL && n < 0)
        why = archive_error_string(raw);
    if (why == NULL && !stopped) { /* the rest of the file (a trailer libarchive skipped) */
        la_ssize_t more;
        const void *ignored;
        while ((more = file_read(raw, u, &ignored)) > 0)
            ;
        unsigned char sum[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        if (more < 0 || EVP_DigestFinal_ex(u->md, sum, &len) != 1 || len != 32)
            why = "cannot compute its sha256";
        for (unsigned i = 0; why == NULL && i < len; i++)
            snprintf(u->hex + 2 * i, 3, "%02x", sum[i]);
    }
    pthread_mutex_lock(&u->lock);
    if (why)
        snprintf(u->error, sizeof(u->error), "%s", why[0] ? why : "unreadable archive");
    u->done = true;
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
    archive_read_free(raw);
    free(buf);
    return NULL;
}

/* The consumer's read callback: the next block of tar bytes. */
static la_ssize_t queue_read(struct archive *a, void *data, const void **buf)
{
    struct unzip *u = data;
    pthread_mutex_lock(&u->lock);
    if (u->held) { /* the previous block is consumed: its slot is free */
        u->held = false;
        u->tail = (u->tail + 1) % QUEUE_BLOCKS;
        u->count--;
        pthread_cond_broadcast(&u->cond);
    }
    while (u->count == 0 && !u->done)
        pthread_cond_wait(&u->cond, &u->lock);
    la_ssize_t n = 0;
    if (u->count > 0) {
        u->held = true;
        *buf = u->blocks[u->tail];
        n = (la_ssize_t)u->lens[u->tail];
    } else if (u->error[0]) {
        archive_set_error(a, EIO, "%s", u->error);
        n = -1;
    }
    pthread_mutex_unlock(&u->lock);
    return n;
}

static void unzip_finish(struct unzip *u, bool started, char hex[65]);

static int unzip_start(struct unzip *u, const char *path, struct serr *err)
{
    memset(u, 0, sizeof(*u));
    u->path = path;
    u->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (u->fd < 0)
        return serr_errno(err, "%s", path);
    u->md = EVP_MD_CTX_new();
    if (u->md == NULL || EVP_DigestInit_ex(u->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(u->md);
        close(u->fd);
        return serr_set(err, SERR_INTERNAL, "%s: cannot compute its sha256", path);
    }
    u->file_buf = xmalloc(BLOCK);
    for (int i = 0; i < QUEUE_BLOCKS; i++)
        u->blocks[i] = xmalloc(BLOCK);
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cond, NULL);
    int rc = pthread_create(&u->thread, NULL, unzip_main, u);
    if (rc != 0) {
        char ignored[65];
        unzip_finish(u, false, ignored);
        errno = rc;
        return serr_errno(err, "starting the restore's reader");
    }
    return 0;
}

/* Stops (when the consumer ends early) and joins the producer, frees;
 * copies the file's sha256 into hex ("" when it was not read through). */
static void unzip_finish(struct unzip *u, bool started, char hex[65])
{
    if (started) {
        pthread_mutex_lock(&u->lock);
        u->stop = true;
        pthread_cond_broadcast(&u->cond);
        pthread_mutex_unlock(&u->lock);
        pthread_join(u->thread, NULL);
    }
    snprintf(hex, 65, "%s", u->error[0] ? "" : u->hex);
    pthread_cond_destroy(&u->cond);
    pthread_mutex_destroy(&u->lock);
    for (int i = 0; i < QUEUE_BLOCKS; i++)
        free(u->blocks[i]);
    free(u->file_buf);
    EVP_MD_CTX_free(u->md);
    close(u->fd);
}

/* Extracts `archive` under root; *hex: its sha256 ("" when not read through). */
static int extract(const char *archive, const char *root, char hex[65], struct serr *err)
{
    hex[0] = '\0';
    struct unzip u;
    if (unzip_start(&u, archive, err) < 0)
        return -1;
    struct archive *in = archive_read_new(), *disk = archive_write_disk_new();
    archive_read_support_format_tar(in);
    archive_write_disk_set_options(disk, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                             ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                             ARCHIVE_EXTRACT_SECURE_SYMLINKS);
    struct untar_words words = {archive, "restoring", "the volume"};
    int rc = 0;
    if (archive_read_open(in, &u, NULL, queue_read, NULL) != ARCHIVE_OK)
        rc = serr_set(err, SERR_INVALID, "%s: %s", archive, archive_error_string(in));
    else
        rc = untar_entries(in, disk, root, &words, err);
    while (rc == 0 && queue_read(in, &u, &(const void *){NULL}) > 0)
        ; /* the tar's end-of-archive padding: the producer hashes to the end */
    archive_write_free(disk);
    archive_read_free(in);
    if (rc == 0) { /* wait for the producer's end, then its verdict */
        pthread_mutex_lock(&u.lock);
        while (!u.done)
            pthread_cond_wait(&u.cond, &u.lock);
        pthread_mutex_unlock(&u.lock);
        if (u.error[0])
            rc = serr_set(err, SERR_INVALID, "%s: %s", archive, u.error);
    }
    unzip_finish(&u, true, hex);
    return rc;
}

/* Moves the extracted tree to _data (see volumes_restore). */
static int put_in_place(const char *tmp, const char *data, bool replace, struct serr *err)
{
    if (!replace) {
        if (rename(tmp, data) == 0)
            return 0;
        if (errno == EEXIST || errno == ENOTEMPTY) /* restored meanwhile */
            return rm_rf(tmp, err);
        return serr_errno(err, "rename %s", tmp);
    }
    char suffix[9];
    random_hex(suffix, 8);
    char *old = xasprintf("%s.old-%s", data, suffix);
    bool had = rename(data, old) == 0;
    int rc = 0;
    if (!had && errno != ENOENT)
        rc = serr_errno(err, "rename %s", data);
    else if (rename(tmp, data) < 0) {
        rc = serr_errno(err, "rename %s", tmp);
        if (had)
            rename(old, data); /* back as it was */
    }
    if (rc == 0 && had)
        rm_rf(old, err);
    free(old);
    return rc;
}

int volumes_restore(const char *archive, const char *vol_dir, bool replace, struct serr *err)
{
    char want[65], got[65];
    if (read_sum(archive, want, err) < 0)
        return serr_wrap(err, "backup %s has no valid checksum", archive);
    char suffix[9];
    random_hex(suffix, 8);
    char *tmp = xasprintf("%s/_data.restore-%s", vol_dir, suffix);
    char *data = xasprintf("%s/_data", vol_dir);
    int rc = mkdir_p(tmp, 0755, err);
    if (rc == 0 && extract(archive, tmp, got, err) < 0) {
        struct serr why = {0}; /* a corrupt archive says so, rather than how tar choked */
        if (volumes_verify(archive, &why) < 0)
            *err = why;
        rc = -1;
    }
    if (rc == 0 && strcmp(want, got) != 0)
        rc = serr_set(err, SERR_INVALID, "backup %s is corrupt: its sha256 is %.12s..., its "
                      "checksum file says %.12s...", archive, got, want);
    if (rc == 0)
        rc = put_in_place(tmp, data, replace, err);
    if (rc < 0) {
        struct serr ignored = {0};
        rm_rf(tmp, &ignored);
    }
    free(data);
    free(tmp);
    return rc;
}

json_t *volumes_policy(const char *backup_dir, const char *name)
{
    char *path = xasprintf("%s/%s/policy.json", backup_dir, name);
    json_t *p = json_load_file(path, 0, NULL);
    free(path);
    if (p && !json_is_object(p)) {
        json_decref(p);
        p = NULL;
    }
    return p;
}
