/* Table tests of model/job_props.c: OAR's property filters on node labels
 * (matches on two nodes, then syntax errors and where they are found). */
#include <string.h>

#include "model/job_props.h"
#include "unit.h"

static const struct match_case {
    const char *expr;
    bool gpu_node;   /* node1: gpu=yes, mem=64, rack=a */
    bool plain_node; /* node2: mem=8, rack=b */
} match_cases[] = {
    {"gpu='yes'", true, false},
    {"gpu = 'yes'", true, false},
    {"gpu=yes", true, false},
    {"gpu=='yes'", true, false},
    {"gpu!='yes'", false, true}, /* a missing label is '' */
    {"gpu<>'yes'", false, true},
    {"gpu=''", false, true},
    {"gpu='YES'", false, false}, /* values are case sensitive */
    {"gpu='yes' AND rack='a'", true, false},
    {"gpu='yes' and rack='b'", false, false},
    {"gpu='yes' OR rack='b'", true, true},
    {"rack='a' or rack='b' and mem='8'", true, true}, /* AND binds tighter */
    {"(rack='a' or rack='b') and mem='8'", false, true},
    {"NOT gpu='yes'", false, true},
    {"not (rack='a' or rack='b')", false, false},
    {"mem > 16", true, false}, /* numbers compared as numbers: 8 < 16 < 64 */
    {"mem >= 8", true, true},
    {"mem < '16'", false, true},
    {"mem <= 64 AND mem > 8", true, false},
    {"gpu > 'a'", true, false}, /* text: 'yes' > 'a'; a missing label never */
    {"host='node1'", true, false},
    {"network_address='node2'", false, true},
    {"rack='a''b'", false, false}, /* '' is a quote */
    {"  ( ( gpu='yes' ) )  ", true, false},
};

static json_t *node(const char *hostname, json_t *labels)
{
    return json_pack("{s:s, s:o}", "hostname", hostname, "labels", labels);
}

TEST(job_props_match_table)
{
    json_t *gpu =
        node("node1", json_pack("{s:s, s:s, s:s}", "gpu", "yes", "mem", "64", "rack", "a"));
    json_t *plain = node("node2", json_pack("{s:s, s:s}", "mem", "8", "rack", "b"));
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const struct match_case *k = &match_cases[i];
        struct serr err = {0};
        if (job_props_check(k->expr, &err) < 0)
            fprintf(stderr, "  %s: %s\n", k->expr, err.msg);
        CHECK(job_props_check(k->expr, NULL) == 0);
        if (job_props_match(k->expr, gpu) != k->gpu_node ||
            job_props_match(k->expr, plain) != k->plain_node)
            fprintf(stderr, "  %s: want %d %d\n", k->expr, k->gpu_node, k->plain_node);
        CHECK(job_props_match(k->expr, gpu) == k->gpu_node);
        CHECK(job_props_match(k->expr, plain) == k->plain_node);
    }
    json_decref(gpu);
    json_decref(plain);
}

static const struct error_case {
    const char *expr;
    const char *says; /* part of the message */
} error_cases[] = {
    {"", "empty"},
    {"   ", "empty"},
    {"gpu", "expected an operator (=, !=, <>, <, <=, >, >=) at column 4"},
    {"gpu=", "expected a value ('text' or a number) at column 5"},
    {"gpu='yes", "unterminated quote at column 5"},
    {"='yes'", "expected a property name at column 1"},
    {"gpu='yes' AND", "expected a property name at column 14"},
    {"gpu='yes' rack='a'", "expected AND, OR or the end at column 11"},
    {"(gpu='yes'", "expected ')' at column 11"},
    {"gpu='yes')", "expected AND, OR or the end at column 10"},
    {"gpu ~ 'yes'", "expected an operator"},
    {"gpu='yes' OR OR rack='a'", "expected a property name at column 14"},
    {"NOT", "expected a property name at column 4"},
    {"gpu='yes'; drop table", "expected AND, OR or the end at column 10"},
};

TEST(job_props_errors_table)
{
    json_t *n = node("node1", json_pack("{s:s}", "gpu", "yes"));
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const struct error_case *k = &error_cases[i];
        struct serr err = {0};
        CHECK(job_props_check(k->expr, &err) < 0);
        if (strstr(err.msg, k->says) == NULL)
            fprintf(stderr, "  '%s': got \"%s\", want \"%s\"\n", k->expr, err.msg, k->says);
        CHECK(strstr(err.msg, k->says) != NULL);
        CHECK(strstr(err.msg, "invalid property filter") != NULL);
        CHECK(!job_props_match(k->expr, n));
    }
    json_decref(n);
    /* nesting is bounded; a long filter is refused */
    char deep[300];
    memset(deep, '(', 200);
    strcpy(deep + 200, "gpu='yes'");
    struct serr err = {0};
    CHECK(job_props_check(deep, &err) < 0 && strstr(err.msg, "nested too deep") != NULL);
    char lng[JOB_PROPS_MAX + 20];
    memset(lng, ' ', sizeof(lng) - 1);
    lng[sizeof(lng) - 1] = '\0';
    memcpy(lng, "gpu='yes'", 9);
    CHECK(job_props_check(lng, &err) < 0 && strstr(err.msg, "longer than") != NULL);
}
