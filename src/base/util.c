#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "shoal: out of memory (%zu bytes)\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return out;
}

void random_hex(char *out, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char buf[64];
    size_t done = 0;
    while (done < len) {
        size_t want = (len - done + 1) / 2;
        if (want > sizeof(buf))
            want = sizeof(buf);
        if (getrandom(buf, want, 0) != (ssize_t)want)
            abort(); /* the kernel's CSPRNG does not fail after boot */
        for (size_t i = 0; i < want && done < len; i++) {
            out[done++] = digits[buf[i] >> 4];
            if (done < len)
                out[done++] = digits[buf[i] & 15];
        }
    }
    out[len] = '\0';
}

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int read_file(const char *path, char **out, size_t *len, struct serr *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return serr_errno(err, "open %s", path);
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap)
            buf = xrealloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            serr_errno(err, "read %s", path);
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, bool sync,
                      struct serr *err)
{
    /* a name of its own: two threads writing the same path (two loads of
     * images sharing a config) must not rename each other's file away */
    char *tmp = xasprintf("%s.tmp.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        serr_errno(err, "create %s", tmp);
        free(tmp);
        return -1;
    }
    if (write_all(fd, data, len) < 0)
        goto err_after_open;
    if (sync && fsync(fd) < 0)
        goto err_after_open;
    close(fd);
    if (rename(tmp, path) < 0) {
        serr_errno(err, "rename %s", tmp);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;

err_after_open:
    serr_errno(err, "write %s", tmp);
    close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}

/* NAME.tmp.XXXXXX as mkostemp makes it in write_file_atomic: its XXXXXX
 * become letters and digits. */
static bool is_atomic_tmp_name(const char *name)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t len = strlen(name);
    if (len <= sizeof(".tmp.XXXXXX") - 1)
        return false;
    const char *x = name + len - 6;
    return strncmp(x - 5, ".tmp.", 5) == 0 && strspn(x, alnum) == 6;
}

int remove_stale_tmp_files(const char *dir, int64_t before_ms)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!is_atomic_tmp_name(e->d_name) || fstatat(dirfd(d), e->d_name, &st,
                                                       AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        if (S_ISREG(st.st_mode) && mtime_ms < before_ms && unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

void buf_append(char **data, size_t *len, size_t *cap, const char *src, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1)
            c *= 2;
        *data = xrealloc(*data, c);
        *cap = c;
    }
    memcpy(*data + *len, src, n);
    *len += n;
    (*data)[*len] = '\0';
}

void line_split_feed(struct line_split *s, const char *data, size_t len)
{
    buf_append(&s->buf, &s->len, &s->cap, data, len);
    char *start = s->buf, *nl;
    while ((nl = memchr(start, '\n', s->len - (size_t)(start - s->buf))) != NULL) {
        s->on_line(s->arg, start, (size_t)(nl - start));
        start = nl + 1;
    }
    size_t rest = s->len - (size_t)(start - s->buf);
    memmove(s->buf, start, rest);
    s->len = rest;
}

void line_split_end(struct line_split *s, bool feed)
{
    if (feed && s->len > 0)
        s->on_line(s->arg, s->buf, s->len);
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

int mkdir_p(const char *path, unsigned mode, struct serr *err)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            serr_errno(err, "mkdir %s", p);
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        rc = serr_errno(err, "mkdir %s", p);
    free(p);
    return rc;
}

bool str_in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

void mountinfo_unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

void dir_spread_subdirs(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    int flags = 0; /* the kernel reads and writes an int, whatever the header says */
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && !(flags & FS_TOPDIR_FL)) {
        flags |= FS_TOPDIR_FL;
        ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    close(fd);
}

static int rm_tree(int parent, const char *name, dev_t dev, struct serr *err)
{
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : serr_errno(err, "stat %s", name);
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(parent, name, 0) < 0 && errno != ENOENT)
            return serr_errno(err, "unlink %s", name);
        return 0;
    }
    if (st.st_dev != dev)
        return serr_set(err, SERR_INTERNAL, "%s is a mount point, not removed", name);
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return serr_errno(err, "open %s", name);
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return serr_errno(err, "opendir %s", name);
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = rm_tree(dirfd(d), de->d_name, dev, err);
    }
    closedir(d);
    if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = serr_errno(err, "rmdir %s", name);
    return rc;
}

int rm_rf(const char *path, struct serr *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : serr_errno(err, "stat %s", path);
    return rm_tree(AT_FDCWD, path, st.st_dev, err);
}

int parse_size(const char *s, int64_t *bytes, struct serr *err)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= 0) || isinf(v))
        return serr_set(err, SERR_INVALID, "invalid size '%s'", s);
    double mult = 1;
    switch (*end) {
    case 'b': case 'B': mult = 1; end++; break;
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (mult > 1 && (*end == 'b' || *end == 'B'))
        end++;
    if (*end == 'i' && (end[1] == 'b' || end[1] == 'B'))
        end += 2;
    if (*end != '\0')
        return serr_set(err, SERR_INVALID, "invalid size '%s' (use e.g. 512M or 1G)", s);
    double total = v * mult;
    if (total > 9.0e18)
        return serr_set(err, SERR_INVALID, "size '%s' is too large", s);
    *bytes = (int64_t)total;
    return 0;
}

int parse_duration(const char *s, int64_t *ms, struct serr *err)
{
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    const char *p = s;
    double total = 0;
    if (*p == '\0')
        return serr_set(err, SERR_INVALID, "invalid duration ''");
    while (*p) {
        char *end = NULL;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno != 0 || !(v >= 0) || isinf(v))
            return serr_set(err, SERR_INVALID, "invalid duration '%s' (use e.g. 10s, 1m30s)", s);
        double unit;
        if (strncmp(end, "ms", 2) == 0) {
            unit = 1;
            end += 2;
        } else if (*end == 's') {
            unit = 1000;
            end++;
        } else if (*end == 'm') {
            unit = 60000;
            end++;
        } else if (*end == 'h') {
            unit = 3600000;
            end++;
        } else {
            return serr_set(err, SERR_INVALID, "invalid duration '%s' (missing unit: ms, s, m, h)", s);
        }
        total += v * unit;
        if (total > 9.0e15)
            return serr_set(err, SERR_INVALID, "duration '%s' is too large", s);
        p = end;
    }
    *ms = (int64_t)total;
    return 0;
}

void format_age(int64_t ms, char *out, size_t outlen)
{
    int64_t s = ms / 1000;
    if (s < 1)
        snprintf(out, outlen, "Less than a second");
    else if (s < 60)
        snprintf(out, outlen, "%lld second%s", (long long)s, s == 1 ? "" : "s");
    else if (s < 3600)
        snprintf(out, outlen, "%lld minute%s", (long long)(s / 60), s / 60 == 1 ? "" : "s");
    else if (s < 86400 * 2)
        snprintf(out, outlen, "%lld hour%s", (long long)(s / 3600), s / 3600 == 1 ? "" : "s");
    else
        snprintf(out, outlen, "%lld days", (long long)(s / 86400));
}
