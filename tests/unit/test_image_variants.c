/* Per-platform variants of an index pinned by digest: image_variant_for, and
 * the orchestrator giving each node the variant of its platform. */
#include <stdlib.h>
#include <string.h>

#include "manager/orchestrator.h"
#include "manager/prune.h"
#include "manager/service.h"
#include "store/store.h"
#include "store_ops.h"
#include "unit.h"

#define PINNED                                                                                     \
    "reg.local:5000/app:1@sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define REPO_DIGEST                                                                                \
    "reg.local:5000/app@sha256:1111111111111111111111111111111111111111111111111111111111111111"

static json_t *variant(const char *id, const char *platform)
{
    return json_pack("{s:s, s:[s], s:s, s:[s,s,s], s:{s:[s]}}", "id", id, "digests", REPO_DIGEST,
                     "platform", platform, "platforms", "linux/amd64", "linux/arm64/v8",
                     "linux/arm/v7", "config", "Cmd", "true");
}

TEST(image_variant_for_platforms)
{
    json_t *vs = json_pack("[o,o]", variant("sha256:aa", "linux/amd64"),
                           variant("sha256:bb", "linux/arm64/v8"));
    struct serr err = {0};
    json_t *v = image_variant_for(vs, PINNED, "linux/arm64", &err); /* arm64 is arm64/v8 */
    CHECK(v != NULL);
    CHECK_STR(json_string_value(json_object_get(v, "id")), "sha256:bb");
    v = image_variant_for(vs, PINNED, "linux/amd64", &err);
    CHECK_STR(json_string_value(json_object_get(v, "id")), "sha256:aa");
    CHECK(image_variant_for(vs, PINNED, NULL, &err) == json_array_get(vs, 0));
    /* offered by the index, not pulled */
    CHECK(image_variant_for(vs, PINNED, "linux/arm/v7", &err) == NULL);
    CHECK(err.kind == SERR_UNAVAILABLE && strstr(err.msg, "image pull --platform linux/arm/v7"));
    /* not offered: the list */
    CHECK(image_variant_for(vs, PINNED, "linux/s390x", &err) == NULL);
    CHECK(err.kind == SERR_INVALID);
    CHECK(strstr(err.msg, "(it has: linux/amd64, linux/arm64/v8, linux/arm/v7)") != NULL);
    /* a plain manifest (no "platforms") runs anywhere */
    json_t *plain = json_pack("[{s:s, s:s}]", "id", "sha256:cc", "platform", "linux/amd64");
    CHECK(image_variant_for(plain, PINNED, "linux/s390x", &err) == json_array_get(plain, 0));
    json_decref(plain);
    json_decref(vs);
}

static json_t *node(const char *id, const char *arch)
{
    return op_put("nodes",
                  json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "id", id, "hostname", id,
                            "role", "manager", "status", "ready", "availability", "active",
                            "platform", "os", "linux", "architecture", arch));
}

static json_t *task_on(struct store *st, const char *node_id)
{
    json_t *tasks = store_list(st, "tasks", NULL);
    json_t *found = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const char *slot = json_string_value(json_object_get(t, "slot"));
        if (found == NULL && slot && strcmp(slot, node_id) == 0)
            found = json_incref(t);
    }
    json_decref(tasks);
    return found;
}

TEST(orchestrator_gives_each_node_its_platform_variant)
{
    struct store *st;
    CHECK(store_open(&st, NULL) == 0);
    /* the fields task_container_spec reads, as service_spec_normalize sets them */
    json_t *spec =
        json_pack("{s:s, s:s, s:i, s:[], s:[], s:b, s:i}", "image", PINNED, "mode", "global",
                  "restart_delay_ms", 0, "env", "mounts", "init", 0, "stop_grace_period_ms", 10000);
    unit_apply_ops(
        st, json_pack("[o,o,o,o,o,o]", node("amd", "amd64"), node("arm", "arm64"),
                      node("zed", "s390x"), op_put("images", variant("sha256:aa", "linux/amd64")),
                      op_put("images", variant("sha256:bb", "linux/arm64/v8")),
                      op_put("services", json_pack("{s:s, s:s, s:i, s:o}", "id", "web", "name",
                                                   "web", "version", 1, "spec", spec))));
    int64_t wake = 0;
    unit_apply_ops(st, orchestrator_pass(st, 1000, &wake));
    json_t *amd = task_on(st, "amd"), *arm = task_on(st, "arm"), *zed = task_on(st, "zed");
    CHECK(amd && arm && zed);
    CHECK_STR(json_string_value(json_object_get(amd, "node_id")), "amd");
    CHECK_STR(json_string_value(json_object_get(arm, "node_id")), "arm");
    CHECK_STR(json_string_value(json_object_get(json_object_get(amd, "container"), "image_id")),
              "sha256:aa");
    CHECK_STR(json_string_value(json_object_get(json_object_get(arm, "container"), "image_id")),
              "sha256:bb");
    CHECK_STR(json_string_value(json_object_get(zed, "state")), "rejected");
    CHECK(strstr(json_string_value(json_object_get(zed, "error")), "no variant for this node's "
                                                                   "platform linux/s390x") != NULL);
    json_decref(amd);
    json_decref(arm);
    json_decref(zed);
    store_close(st);
}

TEST(prune_keeps_every_variant_of_a_pinned_index)
{
    struct store *st;
    CHECK(store_open(&st, NULL) == 0);
    json_t *spec = json_pack("{s:s}", "image", PINNED);
    unit_apply_ops(
        st, json_pack("[o,o,o]", op_put("images", variant("sha256:aa", "linux/amd64")),
                      op_put("images", variant("sha256:bb", "linux/arm64/v8")),
                      op_put("services", json_pack("{s:s, s:s, s:i, s:o}", "id", "web", "name",
                                                   "web", "version", 1, "spec", spec))));
    json_t *in_use = prune_images_in_use(st);
    CHECK(json_object_get(in_use, "sha256:aa") != NULL);
    CHECK(json_object_get(in_use, "sha256:bb") != NULL); /* no task yet on an arm64 node */
    json_decref(in_use);
    store_close(st);
}

TEST(orchestrator_places_replicas_on_nodes_with_a_variant)
{
    struct store *st;
    CHECK(store_open(&st, NULL) == 0);
    json_t *spec = json_pack("{s:s, s:s, s:i, s:i, s:[], s:[], s:b, s:i}", "image", PINNED, "mode",
                             "replicated", "replicas", 3, "restart_delay_ms", 0, "env", "mounts",
                             "init", 0, "stop_grace_period_ms", 10000);
    unit_apply_ops(
        st, json_pack("[o,o,o,o]", node("zed", "s390x"), node("arm", "arm64"),
                      op_put("images", variant("sha256:bb", "linux/arm64/v8")),
                      op_put("services", json_pack("{s:s, s:s, s:i, s:o}", "id", "web", "name",
                                                   "web", "version", 1, "spec", spec))));
    int64_t wake = 0;
    unit_apply_ops(st, orchestrator_pass(st, 1000, &wake));
    json_t *tasks = store_list(st, "tasks", NULL);
    CHECK(json_array_size(tasks) == 3);
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        CHECK_STR(json_string_value(json_object_get(t, "node_id")), "arm");
        CHECK_STR(json_string_value(json_object_get(json_object_get(t, "container"), "image_id")),
                  "sha256:bb");
    }
    json_decref(tasks);
    store_close(st);
}
