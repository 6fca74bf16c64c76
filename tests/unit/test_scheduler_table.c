/* Table tests of the scheduler: constraint matching against one node, and
 * scheduler_pick (filters, then spread) over nodes and tasks. JSON in the
 * tables is written with ' for " (table.h). */
#include <stdbool.h>
#include <string.h>

#include "manager/scheduler.h"
#include "table.h"
#include "unit.h"

struct match_case {
    const char *expr;
    bool want;
};

/* Against {'id':'n1', 'hostname':'pi-1', 'role':'manager', 'labels':{'zone':'a', 'disk':'ssd'},
 * 'platform':{'os':'linux', 'architecture':'arm', 'variant':'v7'}}. */
static const struct match_case match_cases[] = {
    {"node.role==manager", true},
    {"node.role!=manager", false},
    {"node.role==worker", false},
    {"node.role != worker", true},
    {"node.hostname==pi-1", true},
    {" node.hostname == pi-1 ", true},
    {"node.hostname==pi-[1-4]", false}, /* no patterns */
    {"node.hostname==PI-1", false},     /* case matters */
    {"node.id==n1", true},
    {"node.id!=n1", false},
    {"node.labels.zone==a", true},
    {"node.labels.zone==b", false},
    {"node.labels.zone!=b", true},
    {"node.labels.disk==ssd", true},
    {"node.labels.missing==x", false},
    {"node.labels.missing!=x", true}, /* an absent label differs from any value */
    /* platform: Docker's and the kernel's arch names alike, no case */
    {"node.platform.os==linux", true},
    {"node.platform.os==Linux", true},
    {"node.platform.os!=linux", false},
    {"node.platform.os==windows", false},
    {"node.platform.arch==arm", true},
    {"node.platform.arch==armv7l", true},
    {"node.platform.arch==ARMv7l", true},
    {"node.platform.arch==armhf", true},
    {"node.platform.arch==armv6l", false}, /* another variant */
    {"node.platform.arch!=armv7l", false},
    {"node.platform.arch==arm64", false},
    {"node.platform.arch!=aarch64", true},
    {"node.platform.arch==x86_64", false},
    {"node.platform.arch==", false},
    {"node.platform.variant==v7", false}, /* not a key */
    /* engine labels: the node's daemon.json "labels" */
    {"engine.labels.board==pi4", true},
    {"engine.labels.board!=pi4", false},
    {"engine.labels.board==pi5", false},
    {"engine.labels.x!=1", true},
    {"engine.labels.==x", false},
    {"node.engine_labels.board==pi4", false},
    /* invalid expressions never match, whatever the operator */
    {"node.role=manager", false},
    {"node.color==red", false},
    {"node.color!=red", false},
    {"node.role==", false},
    {"node.role==boss", false},
    {"node.labels.!=x", false},
};

TEST(constraint_match_table)
{
    json_t *node = table_json("{'id':'n1', 'hostname':'pi-1', 'role':'manager',"
                              " 'labels':{'zone':'a', 'disk':'ssd'},"
                              " 'engine_labels':{'board':'pi4'},"
                              " 'platform':{'os':'linux', 'architecture':'arm', 'variant':'v7'}}");
    int failed = 0;
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        bool got = constraint_match(match_cases[i].expr, node);
        if (got != match_cases[i].want) {
            fprintf(stderr, "constraint_match(\"%s\") = %d, want %d\n", match_cases[i].expr, got,
                    match_cases[i].want);
            failed++;
        }
    }
    json_decref(node);
    CHECK(failed == 0);
}

struct arch_case {
    const char *platform; /* the node's, JSON */
    const char *expr;
    bool want;
};

/* Boards mix armv7 and arm64 with x86_64 servers. */
static const struct arch_case arch_cases[] = {
    {"{'os':'linux', 'architecture':'amd64'}", "node.platform.arch==x86_64", true},
    {"{'os':'linux', 'architecture':'amd64'}", "node.platform.arch==amd64", true},
    {"{'os':'linux', 'architecture':'amd64'}", "node.platform.arch!=x86_64", false},
    {"{'os':'linux', 'architecture':'amd64'}", "node.platform.arch==arm64", false},
    {"{'os':'linux', 'architecture':'arm64'}", "node.platform.arch==aarch64", true},
    {"{'os':'linux', 'architecture':'arm64'}", "node.platform.arch==arm64", true},
    {"{'os':'linux', 'architecture':'arm64'}", "node.platform.arch==arm", false},
    {"{'os':'linux', 'architecture':'arm64'}", "node.platform.arch!=armv7l", true},
    {"{'os':'linux', 'architecture':'arm', 'variant':'v6'}", "node.platform.arch==arm", true},
    {"{'os':'linux', 'architecture':'arm', 'variant':'v6'}", "node.platform.arch==armv7l", false},
    {NULL, "node.platform.arch==amd64", false}, /* a node that did not say */
    {NULL, "node.platform.os!=linux", true},
};

TEST(constraint_platform_arch_table)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(arch_cases) / sizeof(arch_cases[0]); i++) {
        json_t *node = table_json("{'id':'n1'}");
        if (arch_cases[i].platform)
            json_object_set_new(node, "platform", table_json(arch_cases[i].platform));
        bool got = constraint_match(arch_cases[i].expr, node);
        if (got != arch_cases[i].want) {
            fprintf(stderr, "%s on %s = %d, want %d\n", arch_cases[i].expr,
                    arch_cases[i].platform ? arch_cases[i].platform : "no platform", got,
                    arch_cases[i].want);
            failed++;
        }
        json_decref(node);
    }
    CHECK(failed == 0);
}

struct pick_case {
    const char *name;
    const char *nodes;       /* JSON array; missing fields: table_node */
    const char *tasks;       /* JSON array; desired_state and state default to running */
    const char *constraints; /* JSON array of strings, or NULL */
    const char *want;        /* the picked node's id, or the error message */
};

/* Every pick is for a task of service s1. */
static const struct pick_case pick_cases[] = {
    {"full_tie_first_node", "[{'id':'n1'}, {'id':'n2'}]", "[]", NULL, "n1"},
    {"spread_fewest_of_the_service",
     "[{'id':'n1'}, {'id':'n2'}, {'id':'n3'}]",
     "[{'node_id':'n1', 'service_id':'s1'}, {'node_id':'n2', 'service_id':'s1'},"
     " {'node_id':'n3', 'service_id':'s2'}, {'node_id':'n3', 'service_id':'s2'}]",
     NULL, "n3"},
    {"service_tie_breaks_on_total_load",
     "[{'id':'n1'}, {'id':'n2'}]",
     "[{'node_id':'n1', 'service_id':'s2'}, {'node_id':'n1', 'service_id':'s2'},"
     " {'node_id':'n2', 'service_id':'s3'}]",
     NULL, "n2"},
    {"finished_tasks_do_not_count",
     "[{'id':'n1'}, {'id':'n2'}]",
     "[{'node_id':'n1', 'service_id':'s1', 'state':'complete'},"
     " {'node_id':'n1', 'service_id':'s1', 'state':'failed'},"
     " {'node_id':'n2', 'service_id':'s1'}]",
     NULL, "n1"},
    {"tasks_being_stopped_do_not_count",
     "[{'id':'n1'}, {'id':'n2'}]",
     "[{'node_id':'n1', 'service_id':'s1', 'desired_state':'shutdown'},"
     " {'node_id':'n2', 'service_id':'s1', 'state':'assigned'}]",
     NULL, "n1"},
    {"drained_node_never_picked",
     "[{'id':'n1', 'availability':'drain'}, {'id':'n2'}]",
     "[{'node_id':'n2', 'service_id':'s1'}, {'node_id':'n2', 'service_id':'s1'}]",
     NULL, "n2"},
    {"paused_node_never_picked", "[{'id':'n1', 'availability':'pause'}, {'id':'n2'}]",
     "[{'node_id':'n2', 'service_id':'s1'}]", NULL, "n2"},
    {"down_node_never_picked", "[{'id':'n1', 'status':'down'}, {'id':'n2'}]",
     "[{'node_id':'n2', 'service_id':'s1'}]", NULL, "n2"},
    {"constraint_excludes_the_emptier_node",
     "[{'id':'n1', 'role':'manager'}, {'id':'n2'}]",
     "[{'node_id':'n2', 'service_id':'s1'}, {'node_id':'n2', 'service_id':'s1'}]",
     "['node.role==worker']", "n2"},
    {"all_constraints_must_match",
     "[{'id':'n1', 'labels':{'zone':'a'}}, {'id':'n2', 'labels':{'zone':'a', 'disk':'ssd'}},"
     " {'id':'n3', 'labels':{'disk':'ssd'}}]",
     "[]", "['node.labels.zone==a', 'node.labels.disk==ssd']", "n2"},
    {"constraints_match_none",
     "[{'id':'n1'}, {'id':'n2'}]", "[]", "['node.hostname==elsewhere']",
     "no suitable node (scheduling constraints not satisfied on 2 nodes)"},
    {"each_node_counts_at_its_first_failed_stage",
     "[{'id':'n1', 'status':'down'}, {'id':'n2', 'availability':'drain'}, {'id':'n3'}]", "[]",
     "['node.role==manager']",
     "no suitable node (2 nodes not available for new tasks; "
     "scheduling constraints not satisfied on 1 node)"},
    {"no_node_available", "[{'id':'n1', 'availability':'drain'}]", "[]", NULL,
     "no suitable node (1 node not available for new tasks)"},
    {"empty_swarm", "[]", "[]", NULL, "no suitable node (no node in the swarm)"},
};

static json_t *pick_nodes(const char *text)
{
    json_t *nodes = table_json(text);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) table_node(n);
    return nodes;
}

static json_t *pick_tasks(const char *text)
{
    json_t *tasks = table_json(text);
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) json_object_update_missing_new(
        t, json_pack("{s:s, s:s}", "desired_state", "running", "state", "running"));
    return tasks;
}

/* Returns whether the pick (or its error) is the table's. */
static bool run_pick(const struct pick_case *c)
{
    json_t *nodes = pick_nodes(c->nodes);
    json_t *tasks = pick_tasks(c->tasks);
    json_t *constraints = c->constraints ? table_json(c->constraints) : NULL;
    struct serr err = {0};
    json_t *node = scheduler_pick(nodes, tasks, "s1", constraints, &err);
    const char *got = node ? json_string_value(json_object_get(node, "id")) : err.msg;
    bool ok = strcmp(got, c->want) == 0 && (node != NULL || err.kind == SERR_UNAVAILABLE);
    if (!ok)
        fprintf(stderr, "%s: picked %s, want %s\n", c->name, got, c->want);
    json_decref(constraints);
    json_decref(tasks);
    json_decref(nodes);
    return ok;
}

TEST(scheduler_pick_table)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(pick_cases) / sizeof(pick_cases[0]); i++)
        failed += !run_pick(&pick_cases[i]);
    CHECK(failed == 0);
}
