/* Small helpers used everywhere: allocation, ids, time, files, parsers of
 * sizes and durations.
 *
 * Out-of-memory policy: shoal does not try to survive allocation failure.
 * xmalloc() and friends abort with a message; no caller checks for NULL. */
#ifndef SHOAL_BASE_UTIL_H
#define SHOAL_BASE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes `len` random lowercase hex characters and a NUL into out[len+1]. */
void random_hex(char *out, size_t len);

/* Wall clock and monotonic clock, in milliseconds. */
int64_t now_ms(void);
int64_t mono_ms(void);

/* Whether `s` is one of `list` (NULL-terminated). */
bool str_in_list(const char *s, const char *const *list);
/* Decodes in place a field of /proc/self/mountinfo, where space, tab,
 * newline and backslash stand as \ooo (octal). */
void mountinfo_unescape(char *s);

/* Reads a whole file into a new NUL-terminated buffer (caller frees).
 * *len gets the size without the NUL when len is not NULL. */
int read_file(const char *path, char **out, size_t *len, struct serr *err);
/* Writes via a temporary file of its own (mode 0600) and rename(2), fsynced
 * first when `sync`: concurrent writers of one path each leave a whole file. */
int write_file_atomic(const char *path, const void *data, size_t len, bool sync,
                      struct serr *err);
/* Removes the temporary files of write_file_atomic (NAME.tmp.XXXXXX, regular
 * files) a crash left in `dir`, not below it, but only those last modified
 * before `before_ms` (wall clock): a writer of now keeps its own. Returns how
 * many went; a missing or unreadable dir has none. */
int remove_stale_tmp_files(const char *dir, int64_t before_ms);
/* write(2) until all of `data` is written (EINTR retried); 0 or -1 with errno. */
int write_all(int fd, const void *data, size_t len);
/* Appends to a growable NUL-terminated buffer (*data may be NULL at first):
 * *len bytes used, *cap allocated; doubles as it grows. */
void buf_append(char **data, size_t *len, size_t *cap, const char *src, size_t n);
/* A stream cut into lines (an answer of JSON lines read in pieces): feed it
 * the pieces as they come; on_line gets each whole line (without its '\n'),
 * the start of a line waits in buf (the splitter's) for its end. */
struct line_split {
    void (*on_line)(void *arg, const char *line, size_t len);
    void *arg;
    char *buf;
    size_t len, cap;
};
void line_split_feed(struct line_split *s, const char *data, size_t len);
/* After the stream: the last line when it had no '\n' (when `feed`: the
 * stream ended well), then buf is freed. */
void line_split_end(struct line_split *s, bool feed);
int mkdir_p(const char *path, unsigned mode, struct serr *err);
/* Asks the filesystem to place each new subdirectory of `path` (one
 * container's tree) in a group of its own, away from its siblings (ext4's
 * top-directory flag, `chattr +T`): there a new inode need not skip every
 * inode freed in the last minutes near `path`, which ext4 without a journal
 * does for each one. Best effort: filesystems without the flag are left. */
void dir_spread_subdirs(const char *path);
/* Removes a tree; does not cross mount points (skips them). Missing is ok. */
int rm_rf(const char *path, struct serr *err);

/* "512M", "1g", "1024", "1.5G" -> bytes (binary units, like docker). */
int parse_size(const char *s, int64_t *bytes, struct serr *err);
/* "10s", "1m30s", "500ms", "2h", "0" -> milliseconds (Go duration subset). */
int parse_duration(const char *s, int64_t *ms, struct serr *err);
/* Formats an age like docker: "5 seconds", "2 minutes", "3 hours". */
void format_age(int64_t ms, char *out, size_t outlen);

#endif
