#include "manager/prune.h"

#include <string.h>

#include "base/json_get.h"
#include "manager/service.h"
#include "store/store.h"

void prune_mark_ref(struct store *st, json_t *in_use, const char *ref)
{
    if (ref == NULL || *ref == '\0')
        return;
    json_t *img = image_resolve(st, ref, NULL);
    if (img && jstr(img, "id"))
        json_object_set_new(in_use, jstr(img, "id"), json_true());
    json_decref(img);
    json_t *variants = image_variants(st, ref); /* an index's: each node's platform */
    size_t i;
    json_t *v;
    json_array_foreach(variants, i, v)
    {
        if (jstr(v, "id"))
            json_object_set_new(in_use, jstr(v, "id"), json_true());
    }
    json_decref(variants);
}

static void mark_id(json_t *in_use, const char *id)
{
    if (id && *id)
        json_object_set_new(in_use, id, json_true());
}

json_t *prune_images_in_use(struct store *st)
{
    json_t *in_use = json_object();
    json_t *services = store_list(st, "services", NULL);
    size_t i;
    json_t *o;
    json_array_foreach(services, i, o)
    {
        prune_mark_ref(st, in_use, jstr(json_object_get(o, "spec"), "image"));
        prune_mark_ref(st, in_use, jstr(json_object_get(o, "previous_spec"), "image"));
    }
    json_decref(services);
    json_t *tasks = store_list(st, "tasks", NULL);
    json_array_foreach(tasks, i, o)
    {
        const char *id = jstr(json_object_get(o, "container"), "image_id");
        if (id)
            mark_id(in_use, id);
        else /* a task rejected before its image was resolved */
            prune_mark_ref(st, in_use, jstr(o, "image"));
    }
    json_decref(tasks);
    json_t *jobs = store_list(st, "jobs", NULL);
    json_array_foreach(jobs, i, o) mark_id(in_use, jstr(o, "image_id"));
    json_decref(jobs);
    return in_use;
}

static json_t *tags_of(struct store *st, const char *image_id)
{
    json_t *rows = store_list_where(st, "tags", "image_id", image_id);
    json_t *names = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(rows, i, t) json_array_append(names, json_object_get(t, "id"));
    json_decref(rows);
    return names;
}

json_t *prune_image_candidates(struct store *st, json_t *in_use, bool all)
{
    json_t *images = store_list(st, "images", NULL);
    json_t *out = json_array();
    size_t i;
    json_t *img;
    json_array_foreach(images, i, img)
    {
        const char *id = jstr(img, "id");
        if (id == NULL || json_object_get(in_use, id))
            continue;
        json_t *tags = tags_of(st, id);
        if (!all && json_array_size(tags) > 0) {
            json_decref(tags);
            continue;
        }
        json_t *c = json_deep_copy(img);
        json_object_set_new(c, "tags", tags);
        /* insertion sort by created_at: oldest first, ties by id (the store's order) */
        size_t at = json_array_size(out);
        while (at > 0 &&
               jint(json_array_get(out, at - 1), "created_at", 0) > jint(c, "created_at", 0))
            at--;
        json_array_insert_new(out, at, c);
    }
    json_decref(images);
    return out;
}

json_t *prune_image_ops(json_t *candidates)
{
    json_t *group = json_array();
    size_t i, k;
    json_t *img, *tag;
    json_array_foreach(candidates, i, img)
    {
        json_array_foreach(json_object_get(img, "tags"), k, tag)
            json_array_append_new(group, op_del("tags", json_string_value(tag)));
        json_array_append_new(group, op_del("images", jstr(img, "id")));
    }
    return group;
}

long long prune_images_size(json_t *images)
{
    long long total = 0;
    size_t i;
    json_t *img;
    json_array_foreach(images, i, img) total += jint(img, "size", 0);
    return total;
}

json_t *prune_gc_choice(json_t *candidates, double used_pct, int high_pct, int low_pct,
                        long long capacity)
{
    json_t *out = json_array();
    if (used_pct <= high_pct)
        return out;
    double need = (used_pct - low_pct) / 100.0 * (double)capacity;
    double chosen = 0;
    size_t i;
    json_t *img;
    json_array_foreach(candidates, i, img)
    {
        if (chosen >= need)
            break;
        json_array_append(out, img);
        chosen += (double)jint(img, "size", 0);
    }
    return out;
}
