#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "unit.h"

TEST(parse_size_units)
{
    int64_t b;
    CHECK(parse_size("512M", &b, NULL) == 0 && b == 512LL * 1024 * 1024);
    CHECK(parse_size("1g", &b, NULL) == 0 && b == 1024LL * 1024 * 1024);
    CHECK(parse_size("1024", &b, NULL) == 0 && b == 1024);
    CHECK(parse_size("64MiB", &b, NULL) == 0 && b == 64LL * 1024 * 1024);
    struct serr err;
    CHECK(parse_size("12Q", &b, &err) < 0 && err.kind == SERR_INVALID);
    CHECK(parse_size("", &b, &err) < 0);
    CHECK(parse_size("-1M", &b, &err) < 0);
}

TEST(parse_duration_units)
{
    int64_t ms;
    CHECK(parse_duration("10s", &ms, NULL) == 0 && ms == 10000);
    CHECK(parse_duration("1m30s", &ms, NULL) == 0 && ms == 90000);
    CHECK(parse_duration("500ms", &ms, NULL) == 0 && ms == 500);
    CHECK(parse_duration("0", &ms, NULL) == 0 && ms == 0);
    CHECK(parse_duration("10", &ms, NULL) < 0);
    CHECK(parse_duration("x", &ms, NULL) < 0);
}

struct atomic_writer {
    const char *path;
    char byte;
    int failures;
};

static void *write_same_path(void *arg)
{
    struct atomic_writer *w = arg;
    char data[4096];
    memset(data, w->byte, sizeof(data));
    for (int i = 0; i < 1000; i++)
        if (write_file_atomic(w->path, data, sizeof(data), false, NULL) < 0)
            w->failures++;
    return NULL;
}

/* Two threads writing one path: every write succeeds, the file is one
 * writer's whole, and no temporary file is left beside it. */
TEST(write_file_atomic_concurrent_writers_of_one_path)
{
    char dir[] = "/tmp/shoal-unit-atomic.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = xasprintf("%s/config.json", dir);
    struct atomic_writer w[2] = {{path, 'a', 0}, {path, 'b', 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, write_same_path, &w[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK(w[0].failures == 0 && w[1].failures == 0);
    char *got;
    size_t len;
    CHECK(read_file(path, &got, &len, NULL) == 0 && len == 4096);
    CHECK(got[0] == 'a' || got[0] == 'b');
    for (size_t i = 1; i < len; i++)
        CHECK(got[i] == got[0]);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        entries += e->d_name[0] != '.';
    closedir(d);
    CHECK(entries == 1);
    unlink(path);
    rmdir(dir);
    free(got);
    free(path);
}

static void collect_line(void *arg, const char *line, size_t len)
{
    json_array_append_new(arg, json_stringn(line, len));
}

/* An answer's JSON lines come in pieces cut anywhere: each whole line once. */
TEST(line_split_whole_lines_from_pieces)
{
    json_t *got = json_array();
    struct line_split lines = {.on_line = collect_line, .arg = got};
    const char *pieces[] = {"{\"a\"", ":1}\n{\"b\":2}\n", "", "{\"c\"", ":3}\n\n{\"d\":4}"};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
        line_split_feed(&lines, pieces[i], strlen(pieces[i]));
    CHECK(json_array_size(got) == 4); /* {"d":4} waits for its end */
    line_split_end(&lines, true);
    CHECK(lines.buf == NULL);
    char *text = json_dumps(got, JSON_COMPACT);
    CHECK_STR(text, "[\"{\\\"a\\\":1}\",\"{\\\"b\\\":2}\",\"{\\\"c\\\":3}\",\"\","
                    "\"{\\\"d\\\":4}\"]");
    free(text);
    json_decref(got);
}

/* A file of `name` under dir, last modified `age_s` seconds ago. */
static void file_aged(const char *dir, const char *name, int age_s)
{
    char *path = xasprintf("%s/%s", dir, name);
    CHECK(write_file_atomic(path, "x", 1, false, NULL) == 0);
    struct timespec t[2] = {{.tv_sec = time(NULL) - age_s}, {.tv_sec = time(NULL) - age_s}};
    CHECK(utimensat(AT_FDCWD, path, t, 0) == 0);
    free(path);
}

static bool present(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    bool here = access(path, F_OK) == 0;
    free(path);
    return here;
}

/* Only write_file_atomic's leftovers older than the start go: a temporary
 * file being written now, the real files, and names, directories or
 * subdirectories' files that merely look alike stay. */
TEST(remove_stale_tmp_files_takes_only_old_leftovers)
{
    char dir[] = "/tmp/shoal-unit-stale.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *made = xasprintf("%s/node_id.tmp.XXXXXX", dir); /* as write_file_atomic names it */
    int fd = mkostemp(made, O_CLOEXEC);
    CHECK(fd >= 0);
    close(fd);
    struct timespec old[2] = {{.tv_sec = time(NULL) - 60}, {.tv_sec = time(NULL) - 60}};
    CHECK(utimensat(AT_FDCWD, made, old, 0) == 0);
    static const char *const kept[] = {"node_id", "a.tmp", "b.tmp.abc", "c.tmp.abcdefg",
                                       "d.tmp.ab-def", "sub/e.tmp.Ab12Z9", NULL};
    char *sub = xasprintf("%s/sub", dir), *subdir_lookalike = xasprintf("%s/f.tmp.Ab12Z9", dir);
    CHECK(mkdir(sub, 0700) == 0 && mkdir(subdir_lookalike, 0700) == 0);
    for (int i = 0; kept[i]; i++)
        file_aged(dir, kept[i], 60);
    file_aged(dir, "swarm.json.tmp.Ab12Z9", 60);
    file_aged(dir, "dashboard.json.tmp.NOWnow", 0);

    CHECK(remove_stale_tmp_files(dir, now_ms() - 10000) == 2);
    CHECK(access(made, F_OK) != 0 && !present(dir, "swarm.json.tmp.Ab12Z9"));
    CHECK(present(dir, "dashboard.json.tmp.NOWnow") && present(dir, "f.tmp.Ab12Z9"));
    for (int i = 0; kept[i]; i++)
        CHECK(present(dir, kept[i]));
    CHECK(remove_stale_tmp_files("/nonexistent/shoal", now_ms()) == 0);

    CHECK(rm_rf(dir, NULL) == 0);
    free(made);
    free(sub);
    free(subdir_lookalike);
}

/* The directory's flags, or -1 when its filesystem keeps none. */
static int dir_flags(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), flags = 0;
    int rc = fd >= 0 ? ioctl(fd, FS_IOC_GETFLAGS, &flags) : -1;
    if (fd >= 0)
        close(fd);
    return rc == 0 ? flags : -1;
}

TEST(dir_spread_subdirs_sets_ext4s_top_directory_flag)
{
    char dir[] = "/tmp/shoal-unit-spread.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct statfs fs;
    CHECK(statfs(dir, &fs) == 0);
    dir_spread_subdirs(dir);
    if (fs.f_type == EXT4_SUPER_MAGIC) /* elsewhere: left as it was, without an error */
        CHECK(dir_flags(dir) >= 0 && (dir_flags(dir) & FS_TOPDIR_FL));
    dir_spread_subdirs(dir); /* again: no change */
    CHECK(fs.f_type != EXT4_SUPER_MAGIC || (dir_flags(dir) & FS_TOPDIR_FL));
    dir_spread_subdirs("/nonexistent/shoal");
    CHECK(rm_rf(dir, NULL) == 0);
}

TEST(str_in_list_finds_only_whole_members)
{
    static const char *const list[] = {"image", "env", NULL};
    static const char *const empty[] = {NULL};
    CHECK(str_in_list("image", list) && str_in_list("env", list));
    CHECK(!str_in_list("im", list) && !str_in_list("envs", list) && !str_in_list("", list));
    CHECK(!str_in_list("image", empty));
}

TEST(mountinfo_unescape_decodes_octal_escapes_only)
{
    char point[] = "/mnt/a\\040b\\011c\\134d\\012";
    mountinfo_unescape(point);
    CHECK_STR(point, "/mnt/a b\tc\\d\n");
    char kept[] = "/x\\08y\\7\\";
    mountinfo_unescape(kept); /* not three octal digits: as is */
    CHECK_STR(kept, "/x\\08y\\7\\");
}
