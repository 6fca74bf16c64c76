/* manager/prune.c: which images a prune (or the automatic GC) may remove;
 * the command lines of `system prune` and `swarm update`. */
#include <string.h>

#include "cli/cli.h"
#include "manager/prune.h"
#include "store/store.h"
#include "store_ops.h"
#include "unit.h"

static json_t *image(const char *id, int created_at, int size)
{
    return op_put("images", json_pack("{s:s, s:i, s:i, s:{}}", "id", id, "created_at", created_at,
                                      "size", size, "config"));
}

static json_t *tag(const char *name, const char *image_id)
{
    return op_put("tags", json_pack("{s:s, s:s}", "id", name, "image_id", image_id));
}

/* sha256:a1 dangling; a2 tagged, unused; s1 a service's; p1 its previous
 * spec's; t1 a task's (history); j1 a job's; a3 tagged, unused, oldest. */
static struct store *fixture(void)
{
    struct store *st;
    CHECK(store_open(&st, NULL) == 0);
    json_t *g = json_pack(
        "[o,o,o,o,o,o,o, o,o,o,o,o]", image("sha256:a1", 30, 10), image("sha256:a2", 20, 20),
        image("sha256:s1", 10, 1000), image("sha256:p1", 10, 1000), image("sha256:t1", 10, 1000),
        image("sha256:j1", 10, 1000), image("sha256:a3", 5, 40), tag("unused:1", "sha256:a2"),
        tag("old:1", "sha256:a3"), tag("web:1", "sha256:s1"), tag("web:0", "sha256:p1"),
        tag("gone:1", "sha256:t1"));
    json_array_append_new(
        g,
        op_put("services", json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "id", "svc", "name", "web",
                                     "spec", "image", "web:1", "previous_spec", "image", "web:0")));
    json_array_append_new(
        g, op_put("tasks", json_pack("{s:s, s:s, s:{s:s}}", "id", "t", "state", "failed",
                                     "container", "image_id", "sha256:t1")));
    json_array_append_new(g, op_put("jobs", json_pack("{s:s, s:s, s:s}", "id", "1", "state",
                                                      "running", "image_id", "sha256:j1")));
    unit_apply_ops(st, g);
    return st;
}

static const char *id_at(json_t *list, size_t i)
{
    return json_string_value(json_object_get(json_array_get(list, i), "id"));
}

TEST(prune_keeps_what_services_tasks_and_jobs_need)
{
    struct store *st = fixture();
    json_t *in_use = prune_images_in_use(st);
    CHECK(json_object_size(in_use) == 4);
    CHECK(json_object_get(in_use, "sha256:s1") && json_object_get(in_use, "sha256:p1"));
    CHECK(json_object_get(in_use, "sha256:t1") && json_object_get(in_use, "sha256:j1"));

    json_t *dangling = prune_image_candidates(st, in_use, false);
    CHECK(json_array_size(dangling) == 1);
    CHECK_STR(id_at(dangling, 0), "sha256:a1");
    CHECK(prune_images_size(dangling) == 10);

    /* -a: every unused image, least recently arrived first */
    json_t *unused = prune_image_candidates(st, in_use, true);
    CHECK(json_array_size(unused) == 3);
    CHECK_STR(id_at(unused, 0), "sha256:a3");
    CHECK_STR(id_at(unused, 1), "sha256:a2");
    CHECK_STR(id_at(unused, 2), "sha256:a1");
    CHECK(prune_images_size(unused) == 70);

    /* the ops drop the tags first, then the images; applied, the rest stays */
    unit_apply_ops(st, prune_image_ops(unused));
    json_t *left = store_list(st, "images", NULL);
    CHECK(json_array_size(left) == 4);
    json_t *t = store_get(st, "tags", "unused:1");
    CHECK(t == NULL);
    json_decref(left);
    json_decref(unused);
    json_decref(dangling);
    json_decref(in_use);
    store_close(st);
}

TEST(prune_mark_ref_adds_a_containers_image)
{
    struct store *st = fixture();
    json_t *in_use = json_object();
    prune_mark_ref(st, in_use, "old:1");
    prune_mark_ref(st, in_use, "nosuch:1");
    prune_mark_ref(st, in_use, NULL);
    CHECK(json_object_size(in_use) == 1 && json_object_get(in_use, "sha256:a3"));
    json_decref(in_use);
    store_close(st);
}

TEST(cli_system_prune_flags)
{
    bool all, force, volumes;
    struct serr err;
    char *a1[] = {"prune", "-a", "--volumes", "-f", NULL};
    CHECK(cli_build_system_prune(4, a1, &all, &force, &volumes, &err) == 0);
    CHECK(all && force && volumes);
    char *a2[] = {"prune", NULL};
    CHECK(cli_build_system_prune(1, a2, &all, &force, &volumes, &err) == 0);
    CHECK(!all && !force && !volumes);
    char *a3[] = {"prune", "extra", NULL};
    CHECK(cli_build_system_prune(2, a3, &all, &force, &volumes, &err) < 0);
    char *a4[] = {"prune", "--bogus", NULL};
    CHECK(cli_build_system_prune(2, a4, &all, &force, &volumes, &err) < 0);
}

TEST(cli_swarm_update_history_limit)
{
    struct serr err;
    json_t *body;
    char *a1[] = {"update", "--task-history-limit", "3", NULL};
    CHECK(cli_build_swarm_update(3, a1, &body, &err) == 0);
    CHECK(json_integer_value(json_object_get(body, "task_history_limit")) == 3);
    json_decref(body);
    char *a2[] = {"update", "--task-history-limit", "-1", NULL};
    CHECK(cli_build_swarm_update(3, a2, &body, &err) == 0);
    CHECK(json_integer_value(json_object_get(body, "task_history_limit")) == -1);
    json_decref(body);
    char *a3[] = {"update", "--task-history-limit", "x", NULL};
    CHECK(cli_build_swarm_update(3, a3, &body, &err) < 0 && body == NULL);
    char *a4[] = {"update", NULL};
    CHECK(cli_build_swarm_update(1, a4, &body, &err) < 0 && body == NULL);
}

TEST(prune_gc_choice_frees_down_to_low_least_recently_used_first)
{
    json_t *c = json_pack("[{s:s, s:i}, {s:s, s:i}, {s:s, s:i}]", "id", "old", "size", 30, "id",
                          "mid", "size", 30, "id", "new", "size", 30);
    /* 90% of 1000 bytes used, 85/80: 100 bytes to free, all three (90 would not do) */
    json_t *g = prune_gc_choice(c, 90, 85, 80, 1000);
    CHECK(json_array_size(g) == 3);
    json_decref(g);
    /* 86%: 60 bytes: the two oldest */
    g = prune_gc_choice(c, 86, 85, 80, 1000);
    CHECK(json_array_size(g) == 2);
    CHECK_STR(id_at(g, 0), "old");
    CHECK_STR(id_at(g, 1), "mid");
    json_decref(g);
    /* at or below high: nothing */
    g = prune_gc_choice(c, 85, 85, 80, 1000);
    CHECK(json_array_size(g) == 0);
    json_decref(g);
    json_decref(c);
}
