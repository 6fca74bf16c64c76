/* The dev cluster's description: names derived from (DIR, NAME, i), and the
 * state file DIR/NAME/cluster.json that `up` writes for `ls` and for people. */
#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "dev/dev_int.h"

int dev_check_name(const char *name, struct serr *err)
{
    size_t len = strlen(name);
    if (len == 0 || len > DEV_MAX_NAME)
        return serr_set(err, SERR_INVALID, "invalid name '%s': 1 to %d characters", name,
                        DEV_MAX_NAME);
    for (const char *p = name; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p))
            return serr_set(err, SERR_INVALID,
                            "invalid name '%s': only lowercase letters and digits", name);
    return 0;
}

int dev_node_index(const char *text)
{
    if (strncmp(text, "node-", 5) == 0)
        text += 5;
    if (*text == '\0' || strlen(text) > 3)
        return 0;
    for (const char *p = text; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    return atoi(text);
}

static void node_init(struct dev_node *node, const struct dev_cluster *c, int i)
{
    node->index = i;
    snprintf(node->name, sizeof(node->name), "node-%d", i);
    dev_node_netns(c->name, i, node->netns, sizeof(node->netns));
    snprintf(node->veth, sizeof(node->veth), "sh-%s-%d", c->name, i);
    struct in_addr a = {.s_addr = htonl(c->net + (uint32_t)i)};
    inet_ntop(AF_INET, &a, node->addr, sizeof(node->addr));
    node->dir = xasprintf("%s/%s", c->dir, node->name);
    node->state_dir = xasprintf("%s/state", node->dir);
    node->run_dir = xasprintf("%s/run", node->dir);
    node->socket = xasprintf("%s/shoal.sock", node->run_dir);
    node->log = xasprintf("%s/daemon.log", node->dir);
}

int dev_cluster_init(struct dev_cluster *c, const char *dir, const char *name, int n,
                     int managers, const char *subnet, struct serr *err)
{
    memset(c, 0, sizeof(*c));
    if (dev_check_name(name, err) < 0)
        return -1;
    if (n < 1 || n > DEV_MAX_NODES)
        return serr_set(err, SERR_INVALID, "invalid node count %d: 1 to %d", n, DEV_MAX_NODES);
    if (managers < 1 || managers > n)
        return serr_set(err, SERR_INVALID, "invalid manager count %d: 1 to the node count (%d)",
                        managers, n);
    if (dev_parse_subnet(subnet, &c->net, &c->prefix, err) < 0)
        return -1;
    /* Node addresses are base+1 .. base+n; the last address is broadcast. */
    if ((uint64_t)n + 2 > (1ull << (32 - c->prefix)))
        return serr_set(err, SERR_INVALID, "subnet %s is too small for %d nodes", subnet, n);
    struct in_addr a = {.s_addr = htonl(c->net)};
    char base[16];
    inet_ntop(AF_INET, &a, base, sizeof(base));
    snprintf(c->subnet, sizeof(c->subnet), "%s/%d", base, c->prefix);
    snprintf(c->name, sizeof(c->name), "%s", name);
    dev_bridge_name(name, c->bridge, sizeof(c->bridge));
    dev_lan_netns(name, c->lan, sizeof(c->lan));
    c->dir = xasprintf("%s/%s", dir, name);
    c->n = n;
    c->managers = managers;
    c->nodes = xcalloc((size_t)n, sizeof(*c->nodes));
    for (int i = 0; i < n; i++)
        node_init(&c->nodes[i], c, i + 1);
    return 0;
}

void dev_cluster_free(struct dev_cluster *c)
{
    for (int i = 0; i < c->n; i++) {
        struct dev_node *node = &c->nodes[i];
        free(node->dir);
        free(node->state_dir);
        free(node->run_dir);
        free(node->socket);
        free(node->log);
    }
    free(c->nodes);
    free(c->dir);
    dev_volumes_free(c);
    memset(c, 0, sizeof(*c));
}

char *dev_cluster_file(const struct dev_cluster *c)
{
    return xasprintf("%s/cluster.json", c->dir);
}

static json_t *node_json(const struct dev_node *node)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s}", "name", node->name,
                     "hostname", node->name, "netns", node->netns, "veth", node->veth, "addr",
                     node->addr, "pid", (int)node->pid, "role", node->role, "socket",
                     node->socket, "state_dir", node->state_dir, "log", node->log);
}

int dev_cluster_save(const struct dev_cluster *c, struct serr *err)
{
    json_t *nodes = json_array();
    for (int i = 0; i < c->n; i++)
        json_array_append_new(nodes, node_json(&c->nodes[i]));
    json_t *volumes = dev_volumes_json(c);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:o, s:o}", "name", c->name, "dir",
                            c->dir, "bridge", c->bridge, "lan_netns", c->lan, "subnet",
                            c->subnet, "managers", c->managers, "nodes", nodes, "volumes",
                            volumes);
    char *text = json_dumps(doc, JSON_INDENT(2));
    char *path = dev_cluster_file(c);
    int rc = write_file_atomic(path, text, strlen(text), false, err);
    free(path);
    free(text);
    json_decref(doc);
    return rc;
}

/* Copies what `up` learnt (pids, roles) from the file into the nodes. */
static void load_nodes(struct dev_cluster *c, json_t *nodes)
{
    size_t i;
    json_t *j;
    json_array_foreach(nodes, i, j)
    {
        if (i >= (size_t)c->n)
            break;
        c->nodes[i].pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
        const char *role = json_string_value(json_object_get(j, "role"));
        snprintf(c->nodes[i].role, sizeof(c->nodes[i].role), "%s", role ? role : "");
    }
}

int dev_cluster_load(struct dev_cluster *c, const char *dir, const char *name,
                     struct serr *err)
{
    memset(c, 0, sizeof(*c));
    if (dev_check_name(name, err) < 0)
        return -1;
    char *path = xasprintf("%s/%s/cluster.json", dir, name);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    int rc = 0;
    if (doc == NULL) {
        rc = access(path, F_OK) == 0
                 ? serr_set(err, SERR_INTERNAL, "%s: %s", path, jerr.text)
                 : serr_set(err, SERR_NOT_FOUND, "no dev cluster '%s' (no %s)", name, path);
        free(path);
        return rc;
    }
    json_t *nodes = json_object_get(doc, "nodes");
    const char *subnet = json_string_value(json_object_get(doc, "subnet"));
    int managers = (int)json_integer_value(json_object_get(doc, "managers"));
    rc = dev_cluster_init(c, dir, name, (int)json_array_size(nodes), managers,
                          subnet ? subnet : DEV_DEFAULT_SUBNET, err);
    if (rc < 0)
        serr_wrap(err, "%s", path);
    else {
        load_nodes(c, nodes);
        dev_volumes_load(c, json_object_get(doc, "volumes"));
    }
    json_decref(doc);
    free(path);
    return rc;
}
