/* agent/volumes.c: archives of a volume, their checksums, retention and
 * restores that never leave a half-restored volume; manager/volume.c: the
 * records services make. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/volumes.h"
#include "base/util.h"
#include "manager/volume.h"
#include "store/store.h"
#include "store_ops.h"
#include "unit.h"

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/shoal-unit-vol-XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    return xstrdup(tmpl);
}

static void put(const char *dir, const char *rel, const char *text)
{
    char *path = xasprintf("%s/%s", dir, rel);
    CHECK(write_file_atomic(path, text, strlen(text), false, NULL) == 0);
    free(path);
}

static char *get(const char *dir, const char *rel)
{
    char *path = xasprintf("%s/%s", dir, rel), *text = NULL;
    if (read_file(path, &text, NULL, NULL) < 0)
        text = NULL;
    free(path);
    return text;
}

/* A volume dir with _data holding a file, a subdirectory and a symlink. */
static char *volume(void)
{
    char *vol = tmpdir();
    char *sub = xasprintf("%s/_data/sub", vol);
    CHECK(mkdir_p(sub, 0755, NULL) == 0);
    free(sub);
    char *data = xasprintf("%s/_data", vol);
    put(data, "db.sql", "INSERT 42;\n");
    put(data, "sub/deep", "deep\n");
    char *link = xasprintf("%s/link", data);
    CHECK(symlink("db.sql", link) == 0);
    free(link);
    free(data);
    return vol;
}

static const char *path_of(json_t *b)
{
    return json_string_value(json_object_get(b, "path"));
}

TEST(volumes_archive_restore_roundtrip)
{
    char *vol = volume(), *backups = tmpdir(), *other = tmpdir();
    char *data = xasprintf("%s/_data", vol);
    json_t *b = NULL;
    struct serr err = {0};
    CHECK(volumes_archive(data, backups, "pg", 0, &b, &err) == 0);
    CHECK(strncmp(json_string_value(json_object_get(b, "name")), "pg-", 3) == 0);
    CHECK(strlen(json_string_value(json_object_get(b, "sha256"))) == 64);
    CHECK(volumes_verify(path_of(b), &err) == 0);
    json_t *list = volumes_list(backups, "pg");
    CHECK(json_array_size(list) == 1);
    CHECK(volumes_restore(path_of(b), other, false, &err) == 0);
    char *t = get(other, "_data/db.sql"), *d = get(other, "_data/sub/deep");
    CHECK_STR(t, "INSERT 42;\n");
    CHECK_STR(d, "deep\n");
    free(t);
    free(d);
    char target[64] = "";
    char *link = xasprintf("%s/_data/link", other);
    CHECK(readlink(link, target, sizeof(target) - 1) > 0);
    CHECK_STR(target, "db.sql");
    free(link);
    /* by hand, replacing: the new _data is the archive's exactly */
    put(other, "_data/extra", "x");
    CHECK(volumes_restore(path_of(b), other, true, &err) == 0);
    char *gone = get(other, "_data/extra");
    CHECK(gone == NULL);
    json_decref(list);
    json_decref(b);
    free(data);
    rm_rf(vol, NULL);
    rm_rf(backups, NULL);
    rm_rf(other, NULL);
    free(vol);
    free(backups);
    free(other);
}

TEST(volumes_corrupt_archive_restores_nothing)
{
    char *vol = volume(), *backups = tmpdir(), *other = tmpdir();
    char *data = xasprintf("%s/_data", vol);
    json_t *b = NULL;
    struct serr err = {0};
    CHECK(volumes_archive(data, backups, "pg", 0, &b, &err) == 0);
    int fd = open(path_of(b), O_RDWR);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, "XXXX", 4, 20) == 4);
    close(fd);
    CHECK(volumes_verify(path_of(b), &err) < 0);
    CHECK(strstr(err.msg, "is corrupt") != NULL);
    memset(&err, 0, sizeof(err));
    CHECK(volumes_restore(path_of(b), other, false, &err) < 0);
    CHECK(strstr(err.msg, "is corrupt") != NULL);
    char *ls = xasprintf("%s/_data", other);
    struct stat st;
    CHECK(stat(ls, &st) < 0); /* nothing restored, no temporary left */
    free(ls);
    char *cmd = xasprintf("ls -A %s | wc -l", other);
    FILE *p = popen(cmd, "r");
    char line[16] = "";
    CHECK(p && fgets(line, sizeof(line), p));
    pclose(p);
    CHECK(atoi(line) == 0);
    free(cmd);
    json_decref(b);
    free(data);
    rm_rf(vol, NULL);
    rm_rf(backups, NULL);
    rm_rf(other, NULL);
    free(vol);
    free(backups);
    free(other);
}

TEST(volumes_keep_removes_the_oldest)
{
    char *vol = volume(), *backups = tmpdir();
    char *data = xasprintf("%s/_data", vol);
    struct serr err = {0};
    char first[128] = "";
    for (int i = 0; i < 4; i++) {
        json_t *b = NULL;
        CHECK(volumes_archive(data, backups, "pg", 2, &b, &err) == 0);
        if (i == 0)
            snprintf(first, sizeof(first), "%s", json_string_value(json_object_get(b, "name")));
        json_decref(b);
        usleep(3000); /* names have millisecond timestamps */
    }
    json_t *list = volumes_list(backups, "pg");
    CHECK(json_array_size(list) == 2);
    const char *n0 = json_string_value(json_object_get(json_array_get(list, 0), "name"));
    const char *n1 = json_string_value(json_object_get(json_array_get(list, 1), "name"));
    CHECK(strcmp(n0, n1) > 0 && strcmp(n1, first) > 0); /* newest first; the first went */
    json_t *none = volumes_list(backups, "other");
    CHECK(json_array_size(none) == 0);
    json_decref(none);
    json_decref(list);
    free(data);
    rm_rf(vol, NULL);
    rm_rf(backups, NULL);
    free(vol);
    free(backups);
}

/* A file of `age_s` seconds at dir/name. */
static void put_aged(const char *dir, const char *name, int age_s)
{
    put(dir, name, "x");
    char *path = xasprintf("%s/%s", dir, name);
    struct timespec t[2] = {{.tv_sec = time(NULL) - age_s}, {.tv_sec = time(NULL) - age_s}};
    CHECK(utimensat(AT_FDCWD, path, t, 0) == 0);
    free(path);
}

/* A backup removes write_file_atomic's leftovers of an hour ago in the
 * volume's backup directory; a fresh one (another node writing) stays. */
TEST(volumes_archive_removes_stale_tmp_files)
{
    char *vol = volume(), *backups = tmpdir();
    char *data = xasprintf("%s/_data", vol), *dir = xasprintf("%s/pg", backups);
    CHECK(mkdir_p(dir, 0700, NULL) == 0);
    put_aged(dir, "policy.json.tmp.Ab12Z9", 2 * 60 * 60);
    put_aged(dir, "policy.json.tmp.NOWnow", 60);
    struct serr err = {0};
    json_t *b = NULL;
    CHECK(volumes_archive(data, backups, "pg", 0, &b, &err) == 0);
    char *old = get(dir, "policy.json.tmp.Ab12Z9"), *fresh = get(dir, "policy.json.tmp.NOWnow");
    CHECK(old == NULL && fresh != NULL);
    free(old);
    free(fresh);
    json_decref(b);
    rm_rf(vol, NULL);
    rm_rf(backups, NULL);
    free(vol);
    free(backups);
    free(data);
    free(dir);
}

TEST(volume_records_from_service_specs)
{
    struct store *st;
    CHECK(store_open(&st, NULL) == 0);
    CHECK(volume_name_valid("pg-data_1.x") && !volume_name_valid("a/b") && !volume_name_valid("-a"));
    struct serr err = {0};
    json_t *body = json_pack("{s:s, s:{s:s}}", "name", "kept", "labels", "k", "v");
    json_t *rec = volume_new(st, body, "node1", &err);
    CHECK(rec != NULL);
    unit_apply_ops(st, json_pack("[o]", op_put("volumes", rec)));
    CHECK(volume_new(st, body, "node1", &err) == NULL && err.kind == SERR_CONFLICT);
    json_decref(body);
    json_t *spec = json_pack("{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}]}", "mounts",
                             "type", "volume", "source", "kept", "target", "/k", "type", "volume",
                             "source", "fresh", "target", "/f", "type", "bind", "source", "/etc",
                             "target", "/e");
    json_t *group = json_array();
    volume_missing_ops(st, group, spec);
    CHECK(json_array_size(group) == 1); /* only "fresh": "kept" exists, a bind is no volume */
    unit_apply_ops(st, group);
    json_t *fresh = volume_get(st, "fresh", &err);
    CHECK(fresh && strcmp(json_string_value(json_object_get(fresh, "node_id")), "") == 0);
    json_decref(fresh);
    json_t *service = json_pack("{s:s, s:s, s:O}", "id", "s1", "name", "web", "spec", spec);
    unit_apply_ops(st, json_pack("[o]", op_put("services", service)));
    json_t *users = volume_services(st, "kept");
    CHECK(json_array_size(users) == 1);
    json_decref(users);
    json_t *dangling = volume_dangling(st);
    CHECK(json_array_size(dangling) == 0);
    json_decref(dangling);
    CHECK(volume_get(st, "KEPT", &err) == NULL && err.kind == SERR_NOT_FOUND);
    json_decref(spec);
    store_close(st);
}

TEST(volume_backup_policy_schedules)
{
    long long s = 0;
    struct serr err = {0};
    CHECK(volume_schedule_seconds("daily", &s, &err) == 0 && s == 86400);
    CHECK(volume_schedule_seconds("hourly", &s, &err) == 0 && s == 3600);
    CHECK(volume_schedule_seconds("10m", &s, &err) == 0 && s == 600);
    CHECK(volume_schedule_seconds("1h30m", &s, &err) == 0 && s == 5400);
    CHECK(volume_schedule_seconds("500ms", &s, &err) < 0);
    CHECK(volume_schedule_seconds("1500ms", &s, &err) < 0); /* whole seconds */
    CHECK(volume_schedule_seconds("weekly", &s, &err) < 0);
    CHECK(strstr(err.msg, "invalid backup schedule 'weekly'") != NULL);
    CHECK(volume_schedule_seconds(NULL, &s, &err) < 0);
    json_t *in = json_pack("{s:s}", "schedule", "daily");
    json_t *p = volume_backup_policy(in, &err);
    CHECK(p && json_integer_value(json_object_get(p, "keep")) == VOLUME_KEEP_DEFAULT);
    CHECK(json_object_get(p, "hook") == NULL);
    json_decref(p);
    json_decref(in);
    in = json_pack("{s:s, s:i, s:s}", "schedule", "2s", "keep", 3, "hook", "pg_dump > /d/x");
    p = volume_backup_policy(in, &err);
    CHECK(p && json_integer_value(json_object_get(p, "interval_s")) == 2);
    CHECK_STR(json_string_value(json_object_get(p, "hook")), "pg_dump > /d/x");
    json_decref(p);
    json_decref(in);
    static const char *const bad[] = {"{\"schedule\":\"daily\",\"keep\":0}",
                                      "{\"schedule\":\"daily\",\"keep\":\"3\"}",
                                      "{\"schedule\":\"daily\",\"hook\":\"\"}",
                                      "{\"schedule\":\"daily\",\"when\":1}", "{\"keep\":3}", "[]",
                                      NULL};
    for (int i = 0; bad[i]; i++) {
        in = json_loads(bad[i], 0, NULL);
        CHECK(volume_backup_policy(in, &err) == NULL);
        json_decref(in);
    }
}
