/* node exec / node cp: the target's resolution on the manager
 * (exec_target_nodes) and the command lines (cli_build_node_exec, _cp). */
#include <jansson.h>
#include <string.h>

#include "api/api_int.h"
#include "cli/cli.h"
#include "unit.h"

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

static json_t *three_nodes(void)
{
    return json_loads("[{\"id\":\"aa1\",\"hostname\":\"node-1\",\"role\":\"manager\"},"
                      "{\"id\":\"bb2\",\"hostname\":\"node-2\",\"role\":\"worker\","
                      "\"labels\":{\"rack\":\"top\"}},"
                      "{\"id\":\"cc3\",\"hostname\":\"node-3\",\"role\":\"worker\","
                      "\"labels\":{\"rack\":\"bottom\"}}]",
                      0, NULL);
}

/* The hostnames a target names, "a,b", or "ERR: message". */
static char *targeted(const char *target_json)
{
    static char out[600];
    json_t *nodes = three_nodes(), *target = json_loads(target_json, 0, NULL), *m;
    struct serr err = {0};
    if (exec_target_nodes(nodes, target, &m, &err) < 0) {
        snprintf(out, sizeof(out), "ERR: %s", err.msg);
    } else {
        out[0] = '\0';
        size_t i;
        json_t *n;
        json_array_foreach(m, i, n)
        {
            if (i)
                strcat(out, ",");
            strcat(out, json_string_value(json_object_get(n, "hostname")));
        }
        json_decref(m);
    }
    json_decref(target);
    json_decref(nodes);
    return out;
}

TEST(node_exec_target_forms)
{
    CHECK_STR(targeted("{}"), "node-1,node-2,node-3");
    CHECK_STR(targeted("{\"glob\":\"node-[12]\"}"), "node-1,node-2");
    CHECK_STR(targeted("{\"glob\":\"*3\"}"), "node-3");
    CHECK_STR(targeted("{\"regex\":\"node-[23]\"}"), "node-2,node-3");
    CHECK_STR(targeted("{\"list\":[\"node-3\",\"aa1\"]}"), "node-1,node-3");
    CHECK_STR(targeted("{\"label\":\"rack=top\"}"), "node-2");
    CHECK_STR(targeted("{\"label\":\"rack\"}"), "node-2,node-3");
    CHECK_STR(targeted("{\"role\":\"manager\"}"), "node-1");
    CHECK_STR(targeted("{\"role\":\"worker\",\"glob\":\"*2\"}"), "node-2");
}

TEST(node_exec_target_errors)
{
    /* a regex matches whole names */
    CHECK_STR(targeted("{\"regex\":\"node\"}"), "ERR: no node matches the target");
    CHECK_STR(targeted("{\"glob\":\"web*\"}"), "ERR: no node matches the target");
    CHECK_STR(targeted("{\"list\":[\"node-1\",\"node-9\"]}"),
              "ERR: target: no node is named 'node-9'");
    CHECK(strncmp(targeted("{\"regex\":\"node-(\"}"),
                  "ERR: target: invalid regular expression", 39) == 0);
    CHECK_STR(targeted("{\"role\":\"boss\"}"), "ERR: target.role: manager or worker");
    CHECK_STR(targeted("{\"label\":\"=x\"}"), "ERR: target.label: KEY=VALUE or KEY is required");
}

TEST(cli_node_exec_command_line)
{
    json_t *b;
    bool group;
    struct serr err;
    CHECK(cli_build_node_exec(ARGC("exec", "node*", "-E", "x.*", "--timeout", "5", "--group",
                                   "--", "sh", "-c", "echo -E"),
                              ARGV("exec", "node*", "-E", "x.*", "--timeout", "5", "--group",
                                   "--", "sh", "-c", "echo -E"),
                              &b, &group, &err) == 0);
    CHECK(group);
    json_t *t = json_object_get(b, "target");
    CHECK_STR(json_string_value(json_object_get(t, "glob")), "node*");
    CHECK_STR(json_string_value(json_object_get(t, "regex")), "x.*");
    CHECK(json_integer_value(json_object_get(b, "timeout")) == 5);
    CHECK(json_array_size(json_object_get(b, "argv")) == 3);
    CHECK_STR(json_string_value(json_array_get(json_object_get(b, "argv"), 2)), "echo -E");
    json_decref(b);
    CHECK(cli_build_node_exec(ARGC("exec", "-L", "a,b", "--workers", "-G", "k=v", "--", "true"),
                              ARGV("exec", "-L", "a,b", "--workers", "-G", "k=v", "--", "true"),
                              &b, &group, &err) == 0);
    t = json_object_get(b, "target");
    CHECK(!group && json_array_size(json_object_get(t, "list")) == 2);
    CHECK_STR(json_string_value(json_object_get(t, "role")), "worker");
    CHECK_STR(json_string_value(json_object_get(t, "label")), "k=v");
    CHECK(json_object_get(b, "timeout") == NULL);
    json_decref(b);
    /* errors */
    CHECK(cli_build_node_exec(ARGC("exec", "node*"), ARGV("exec", "node*"), &b, &group, &err) ==
          -1);
    CHECK(strstr(err.msg, "the command is missing") != NULL);
    CHECK(cli_build_node_exec(ARGC("exec", "a", "b", "--", "x"), ARGV("exec", "a", "b", "--", "x"),
                              &b, &group, &err) == -1);
    CHECK(cli_build_node_exec(ARGC("exec", "--timeout", "0", "--", "x"),
                              ARGV("exec", "--timeout", "0", "--", "x"), &b, &group, &err) == -1);
    CHECK(cli_build_node_exec(ARGC("exec", "--managers", "--workers", "--", "x"),
                              ARGV("exec", "--managers", "--workers", "--", "x"), &b, &group,
                              &err) == -1);
}

TEST(cli_node_cp_command_line)
{
    json_t *b;
    const char *file;
    struct serr err;
    CHECK(cli_build_node_cp(ARGC("cp", "/tmp/a.sh", "node-*", "--workers", "/usr/local/bin/"),
                            ARGV("cp", "/tmp/a.sh", "node-*", "--workers", "/usr/local/bin/"), &b,
                            &file, &err) == 0);
    CHECK_STR(file, "/tmp/a.sh");
    json_t *f = json_object_get(b, "file");
    CHECK_STR(json_string_value(json_object_get(f, "path")), "/usr/local/bin/");
    CHECK_STR(json_string_value(json_object_get(f, "name")), "a.sh");
    CHECK_STR(json_string_value(json_object_get(json_object_get(b, "target"), "glob")),
              "node-*");
    json_decref(b);
    CHECK(cli_build_node_cp(ARGC("cp", "a", "/x"), ARGV("cp", "a", "/x"), &b, &file, &err) == 0);
    CHECK(json_object_get(json_object_get(b, "target"), "glob") == NULL);
    json_decref(b);
    CHECK(cli_build_node_cp(ARGC("cp", "a"), ARGV("cp", "a"), &b, &file, &err) == -1);
    CHECK(cli_build_node_cp(ARGC("cp", "a", "rel"), ARGV("cp", "a", "rel"), &b, &file, &err) ==
          -1);
    CHECK(strstr(err.msg, "absolute path") != NULL);
    CHECK(cli_build_node_cp(ARGC("cp", "a", "--timeout", "3", "/x"),
                            ARGV("cp", "a", "--timeout", "3", "/x"), &b, &file, &err) == -1);
}
