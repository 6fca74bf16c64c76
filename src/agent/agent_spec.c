/* From a task's container spec (cluster state) to what the runtime needs on
 * this node: layer directories and a runtime spec with host paths. */
#include <string.h>

#include "agent/agent_int.h"
#include "agent/image.h"
#include "agent/net.h"
#include "base/json_get.h"
#include "base/util.h"
#include "model/container_opts.h"

static int resolve_layers(struct ctr *c, json_t *container, struct serr *err)
{
    const char *image_ref = jstr(container, "image");
    const char *image_id = jstr(container, "image_id");
    json_t *image = image_id ? c->up->image_get(c->up->data, image_id) : NULL;
    if (image == NULL)
        return serr_set(err, SERR_NOT_FOUND, "No such image: %s", image_ref ? image_ref : "?");
    json_t *layers = json_object_get(image, "layers");
    c->layer_ids = json_incref(layers); /* claimed before they are resolved */
    size_t n = json_array_size(layers);
    c->layers = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const char *diff = json_string_value(json_array_get(layers, i));
        c->layers[i] = diff ? image_layer_dir(c->env->images, diff) : NULL;
        if (c->layers[i] == NULL) {
            json_decref(image);
            return serr_set(err, SERR_NOT_FOUND,
                            "No such image: %s (layer %s is not on this node)", image_ref,
                            diff ? diff : "?");
        }
    }
    json_decref(image);
    return 0;
}

/* A tmpfs of the task (--mount type=tmpfs): the runtime mounts it. */
static json_t *tmpfs_mount(json_t *m)
{
    json_t *out = json_pack("{s:s, s:O, s:b}", "type", "tmpfs", "target",
                            json_object_get(m, "target"), "readonly",
                            json_is_true(json_object_get(m, "readonly")));
    json_t *size = json_object_get(m, "tmpfs_size"), *mode = json_object_get(m, "tmpfs_mode");
    if (size)
        json_object_set(out, "size", size);
    if (mode)
        json_object_set(out, "mode", mode);
    return out;
}

/* Volumes are directories under <state_dir>/volumes/NAME/_data, made on
 * first use or restored from a backup (agent_volumes.c). */
static json_t *resolve_mounts(struct ctr *c, json_t *mounts, struct serr *err)
{
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m)
    {
        const char *type = jstr(m, "type");
        const char *src = jstr(m, "source");
        if (type && strcmp(type, "tmpfs") == 0) {
            json_array_append_new(out, tmpfs_mount(m));
            continue;
        }
        json_t *bind = json_pack("{s:s, s:O, s:b}", "type", "bind", "target",
                                 json_object_get(m, "target"), "readonly",
                                 json_is_true(json_object_get(m, "readonly")));
        if (type && strcmp(type, "volume") == 0) {
            char *path = ctr_volume_prepare(c, src, err);
            if (path == NULL) {
                json_decref(bind);
                json_decref(out);
                return NULL;
            }
            json_object_set_new(bind, "source", json_string(path));
            free(path);
        } else {
            json_object_set_new(bind, "source", json_string(src ? src : ""));
        }
        json_array_append_new(out, bind);
    }
    return out;
}

/* A container on one of our networks gets an address now (on the loop:
 * the allocator needs no lock), the path of the namespace work_create
 * makes, and the node's DNS server. A local container (`shoal run`) on a
 * node outside a swarm has no network: it keeps the host's. */
static int prepare_network(struct ctr *c, const char *network, struct serr *err)
{
    if (network == NULL || strcmp(network, "host") == 0)
        return 0;
    if (!agent_net_ready(c->a, network)) {
        if (c->local && strcmp(network, "bridge") == 0)
            return 0;
        return serr_set(err, SERR_UNAVAILABLE, "network %s is not ready on this node%s%s",
                        network, agent_net_error(c->a) ? ": " : "",
                        agent_net_error(c->a) ? agent_net_error(c->a) : "");
    }
    if (agent_net_attach(c->a, network, c->bridge, &c->addr, err) < 0)
        return -1;
    char path[128];
    net_netns_path(c->id, path, sizeof(path));
    json_object_set_new(c->rspec, "netns", json_string(path));
    char *resolv = ctr_record_path(c, "resolv");
    json_object_set_new(c->rspec, "resolv_conf", json_string(resolv));
    free(resolv);
    return 0;
}

/* --stop-signal (checked by the manager) and --dns: the nameservers of the
 * resolv.conf work_create writes, on the host network too. */
static int prepare_stop_and_dns(struct ctr *c, json_t *container)
{
    c->stop_signal = container_signal_number(jstr(container, "stop_signal"));
    if (c->stop_signal < 0)
        c->stop_signal = 0;
    json_t *dns = json_object_get(container, "dns");
    if (json_array_size(dns) == 0)
        return 0;
    c->dns = json_incref(dns);
    char *resolv = ctr_record_path(c, "resolv");
    json_object_set_new(c->rspec, "resolv_conf", json_string(resolv));
    free(resolv);
    return 0;
}

/* A host job's runtime spec: its command, environment and cores. */
static int prepare_host_spec(struct ctr *c, json_t *container, struct serr *err)
{
    if (c->env->host_jobs_disabled)
        return serr_set(err, SERR_FORBIDDEN, "this node refuses host jobs (its daemon.json has "
                        "\"host-jobs\": false)");
    c->rspec = json_pack("{s:O, s:O}", "args", json_object_get(container, "args"), "env",
                         json_object_get(container, "env"));
    if (c->rspec == NULL)
        return serr_set(err, SERR_INVALID, "host job spec is incomplete");
    json_t *limits = json_object_get(container, "limits");
    if (limits)
        json_object_set(c->rspec, "limits", limits);
    const char *nodefile = jstr(container, "nodefile");
    /* only a node file: nothing else is removed */
    if (nodefile && strncmp(nodefile, JOB_NODEFILE_PREFIX, strlen(JOB_NODEFILE_PREFIX)) == 0 &&
        !strstr(nodefile, "..")) {
        json_object_set_new(c->rspec, "nodefile", json_string(nodefile)); /* removed at the end */
        json_t *text = json_object_get(container, "nodefile_text"); /* written at the start */
        if (json_is_string(text))
            json_object_set(c->rspec, "nodefile_text", text);
    }
    return 0;
}

int ctr_prepare_spec(struct ctr *c, json_t *container, struct serr *err)
{
    if (!json_is_object(container))
        return serr_set(err, SERR_INVALID, "task has no container spec");
    c->host = json_is_true(json_object_get(container, "host"));
    if (c->host)
        return prepare_host_spec(c, container, err);
    json_t *args = json_object_get(container, "args");
    if (json_array_size(args) == 0)
        return serr_set(err, SERR_INVALID, "no command specified (the image has no Cmd)");
    if (resolve_layers(c, container, err) < 0)
        return -1;
    json_t *mounts = resolve_mounts(c, json_object_get(container, "mounts"), err);
    if (mounts == NULL)
        return -1;
    if (ctr_secret_mounts(c, container, mounts, err) < 0) {
        json_decref(mounts);
        return -1;
    }
    char hostname[13];
    snprintf(hostname, sizeof(hostname), "%s", c->id);
    const char *spec_hostname = jstr(container, "hostname");
    c->rspec = json_pack("{s:O, s:O, s:O, s:O, s:s, s:o, s:b}", "args", args, "env",
                         json_object_get(container, "env"), "workdir",
                         json_object_get(container, "workdir"), "user",
                         json_object_get(container, "user"), "hostname",
                         spec_hostname ? spec_hostname : hostname, "mounts",
                         mounts, "init", json_is_true(json_object_get(container, "init")));
    if (c->rspec == NULL)
        return serr_set(err, SERR_INVALID, "task container spec is incomplete");
    json_t *limits = json_object_get(container, "limits");
    if (limits)
        json_object_set(c->rspec, "limits", limits);
    json_t *labels = json_object_get(container, "labels");
    if (labels)
        json_object_set(c->rspec, "annotations", labels);
    static const char *const runtime_options[] = {"read_only", "cap_add", "cap_drop", "sysctls",
                                                  "ulimits", NULL};
    for (int i = 0; runtime_options[i]; i++) {
        json_t *v = json_object_get(container, runtime_options[i]);
        if (v)
            json_object_set(c->rspec, runtime_options[i], v);
    }
    if (prepare_network(c, jstr(container, "network"), err) < 0)
        return -1;
    if (c->ports && c->addr == 0)
        return serr_set(err, SERR_INVALID, "-p needs the container on the bridge network of a "
                                           "node in a swarm (--network host publishes nothing)");
    return prepare_stop_and_dns(c, container);
}
