/* The JSON bodies of the API's writes, as the leader handles them before
 * proposing: service create (manager/service.c spec validation, virtual IP and
 * port assignment), service update/scale patches, network create
 * (manager/netmodel.c), node update (api/routes.c) and the metrics of a
 * node's heartbeat (POST /v1/cluster/session, manager/stats.c). The first
 * byte picks the body; the rest is the body as it came over HTTP. */
#include "fuzz.h"
#include "manager/stats.h"

/* apply_node_update() is static: the routes are compiled in here. */
#include "api/routes.c"

#define IMAGE_ID "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static struct store *st;
static json_t *base_spec; /* an existing service's spec, for patches */
static json_t *image;
static struct stats *node_stats;
static int64_t mono_now; /* a heartbeat every 10 s: each input adds a point */

static void put(const char *table, json_t *obj)
{
    json_t *entry = json_pack("{s:[[o]]}", "groups", op_put(table, obj));
    char *text = json_dumps(entry, JSON_COMPACT);
    struct serr err = {0};
    if (store_apply(st, text, strlen(text), NULL, &err) < 0) {
        fprintf(stderr, "fuzz: store: %s\n", err.msg);
        abort();
    }
    free(text);
    json_decref(entry);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    struct serr err = {0};
    if (store_open(&st, &err) < 0)
        abort();
    put("meta", json_pack("{s:s, s:s, s:s, s:s}", "id", "cluster", "cluster_id", "c1",
                          "default_addr_pool", "10.42.0.0/16", "overlay", "direct"));
    image = json_pack("{s:s, s:[s], s:[], s:i, s:{s:[s], s:[s], s:s}}", "id", IMAGE_ID, "tags",
                      "busybox:latest", "layers", "size", 0, "config", "Cmd", "sh", "Env",
                      "PATH=/bin", "WorkingDir", "/");
    put("images", json_incref(image));
    put("tags", json_pack("{s:s, s:s}", "id", "busybox:latest", "image_id", IMAGE_ID));
    put("networks", json_pack("{s:s, s:s, s:s}", "id", "net1", "name", "appnet", "subnet",
                              "10.50.0.0/16"));
    json_t *spec = json_pack("{s:s, s:s, s:i, s:[{s:i, s:i}], s:s}", "name", "web", "image",
                             "busybox", "replicas", 2, "ports", "published", 8080, "target", 80,
                             "network", "appnet");
    base_spec = service_spec_normalize(st, spec, &err);
    json_decref(spec);
    if (base_spec == NULL) {
        fprintf(stderr, "fuzz: base spec: %s\n", err.msg);
        abort();
    }
    json_t *svc = json_pack("{s:s, s:s, s:i, s:O}", "id", "svc1", "name", "web", "version", 1,
                            "spec", base_spec);
    if (service_endpoint_assign(st, svc, base_spec, &err) < 0)
        abort();
    put("services", svc);
    node_stats = stats_new();
    return 0;
}

/* What post_service() does with a valid spec, without proposing. */
static void service_created(json_t *spec)
{
    struct serr err = {0};
    json_t *svc = json_pack("{s:s, s:s, s:i, s:O}", "id", "svc2", "name", "new", "version", 1,
                            "spec", spec);
    if (service_endpoint_assign(st, svc, spec, &err) == 0) {
        json_t *group = json_array();
        service_port_ops(group, "svc2", NULL, spec);
        json_decref(group);
    }
    json_decref(svc);
    json_decref(task_container_spec(spec, image));
    service_spec_template_changed(base_spec, spec);
}

static void one_body(int kind, json_t *body)
{
    struct serr err = {0};
    json_t *out = NULL;
    switch (kind) {
    case 0:
        out = service_spec_normalize(st, body, &err);
        if (out)
            service_created(out);
        break;
    case 1:
        out = service_spec_patch(st, base_spec, body, &err);
        if (out) {
            json_t *group = json_array();
            service_port_ops(group, "svc1", base_spec, out);
            json_decref(group);
            service_spec_template_changed(base_spec, out);
        }
        break;
    case 2:
        out = network_new(st, body, &err);
        break;
    case 3:
        out = json_pack("{s:s, s:s, s:s, s:{s:s}}", "id", "n1", "role", "manager",
                        "availability", "active", "labels", "zone", "east");
        apply_node_update(out, body, &err);
        break;
    default: /* what dispatcher_session() keeps of a heartbeat */
        mono_now += STATS_POINT_EVERY_MS;
        stats_record(node_stats, "n1", json_object_get(body, "metrics"), mono_now);
        out = stats_history(node_stats, "n1");
        break;
    }
    fuzz_result("body", out ? 0 : -1, &err);
    json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    json_t *body = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (body == NULL)
        return 0;
    one_body(data[0] % 5, body);
    json_decref(body);
    return 0;
}
