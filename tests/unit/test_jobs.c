#include <string.h>

#include "manager/jobs_sched.h"
#include "unit.h"

TEST(job_res_parse_table)
{
    static const struct {
        const char *text;
        int ok, nodes, cores;
        long long walltime;
    } cases[] = {
        {"/nodes=2/core=1,walltime=00:10:00", 1, 2, 1, 600},
        {"core=4,walltime=1:0:0", 1, 1, 4, 3600},
        {"nodes=1", 1, 1, 1, JOB_DEFAULT_WALLTIME_S},
        {"", 1, 1, 1, JOB_DEFAULT_WALLTIME_S},
        {NULL, 1, 1, 1, JOB_DEFAULT_WALLTIME_S},
        {"walltime=2", 1, 1, 1, 7200},
        {"walltime=0:1", 1, 1, 1, 60},
        {"/host=3/cpu=2", 1, 3, 2, JOB_DEFAULT_WALLTIME_S},
        {"walltime=0", 0, 0, 0, 0},
        {"walltime=00:00:00", 0, 0, 0, 0},
        {"walltime=1:60:00", 0, 0, 0, 0},
        {"walltime=abc", 0, 0, 0, 0},
        {"walltime=1:2:3:4", 0, 0, 0, 0},
        {"nodes=0", 0, 0, 0, 0},
        {"nodes=-1", 0, 0, 0, 0},
        {"nodes=two", 0, 0, 0, 0},
        {"nodes=2x", 0, 0, 0, 0},
        {"gpu=1", 0, 0, 0, 0},
        {"nodes", 0, 0, 0, 0},
        {"nodes=", 0, 0, 0, 0},
        {"//nodes=1", 0, 0, 0, 0},
        {"nodes=1/", 0, 0, 0, 0},
        {"walltime=1,nodes=2", 0, 0, 0, 0},
        {"walltime=1,walltime=2", 0, 0, 0, 0},
        {"nodes=99999999999999999999", 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct job_res r = {0};
        struct serr err = {0};
        int rc = job_res_parse(cases[i].text, &r, &err);
        if ((rc == 0) != cases[i].ok)
            fprintf(stderr, "case %zu '%s': rc %d (%s)\n", i, cases[i].text, rc, err.msg);
        CHECK((rc == 0) == cases[i].ok);
        if (!cases[i].ok) {
            CHECK(err.msg[0] != '\0');
            continue;
        }
        CHECK(r.nodes == cases[i].nodes && r.cores == cases[i].cores);
        CHECK(r.walltime_s == cases[i].walltime);
    }
    struct job_res r = {2, 1, 600};
    char buf[80];
    job_res_format(&r, buf, sizeof(buf));
    CHECK_STR(buf, "/nodes=2/core=1,walltime=0:10:00");
}

/* One table row: nodes (cores each), running allocations, waiting jobs, and
 * the expected start of each waiting job (-1: never fits) and first node. */
struct bf_case {
    const char *name;
    int nnodes, cores[4];
    int nrunning;
    struct sched_alloc running[4];
    int njobs;
    struct sched_job jobs[5];
    int64_t start[5];
    int first_node[5];
};

TEST(sched_backfill_table)
{
    static const bool second_only[] = {false, true};
    static const struct bf_case cases[] = {
        {"empty cluster: all start now, side by side", 2, {2, 2}, 0, {{0}}, 2,
         {{1, 2, 10, 0, NULL}, {1, 2, 10, 0, NULL}}, {0, 0}, {0, 1}},
        {"FIFO: second waits for the first", 1, {2}, 0, {{0}}, 2,
         {{1, 2, 10, 0, NULL}, {1, 2, 10, 0, NULL}}, {0, 10}, {0, 0}},
        {"backfill: a short job fills the hole before a big one", 2, {2, 2}, 1,
         {{0, 2, 0, 100}}, 2, {{2, 2, 50, 0, NULL}, {1, 2, 30, 0, NULL}}, {100, 0}, {0, 1}},
        {"no backfill when it would delay the big job", 2, {2, 2}, 1,
         {{0, 2, 0, 100}}, 2, {{2, 2, 50, 0, NULL}, {1, 2, 200, 0, NULL}}, {100, 150}, {0, 0}},
        {"a job that fits in the hole's cores runs beside the plan", 1, {4}, 1,
         {{0, 2, 0, 100}}, 3, {{1, 4, 10, 0, NULL}, {1, 2, 500, 0, NULL}, {1, 1, 5, 0, NULL}},
         {100, 110, 0}, {0, 0, 0}},
        {"impossible: more nodes or cores than there are", 2, {2, 2}, 0, {{0}}, 3,
         {{3, 1, 10, 0, NULL}, {1, 3, 10, 0, NULL}, {2, 2, 10, 0, NULL}}, {-1, -1, 0}, {0, 0, 0}},
        {"multi-node waits for both nodes", 2, {1, 1}, 2,
         {{0, 1, 0, 20}, {1, 1, 0, 40}}, 1, {{2, 1, 10, 0, NULL}}, {40}, {0}},
        {"cores are counted per node", 2, {4, 4}, 1,
         {{0, 3, 0, 50}}, 2, {{1, 2, 10, 0, NULL}, {2, 1, 10, 0, NULL}}, {0, 0}, {1, 0}},
        {"a reservation holds its time: a long job waits past it, a short one backfills", 1, {2}, 0,
         {{0}}, 3, {{1, 1, 100, 0, NULL}, {1, 2, 50, 30, NULL}, {1, 1, 20, 0, NULL}}, {80, 30, 0},
         {0, 0, 0}},
        {"a reservation that does not fit beside a running job is refused", 1, {2}, 1,
         {{0, 1, 0, 100}}, 2, {{1, 2, 10, 50, NULL}, {1, 1, 10, 50, NULL}}, {-1, 50}, {0, 0}},
        {"properties: a job only on the nodes it allows (-p)", 2, {2, 2}, 1,
         {{1, 1, 0, 100}}, 3, {{1, 2, 10, 0, second_only}, {1, 1, 10, 0, second_only},
         {2, 1, 10, 0, second_only}}, {100, 0, -1}, {1, 1, 0}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const struct bf_case *k = &cases[c];
        struct sched_node nodes[4];
        for (int i = 0; i < k->nnodes; i++)
            nodes[i].cores = k->cores[i];
        struct sched_plan *p =
            sched_backfill(nodes, k->nnodes, k->running, k->nrunning, k->jobs, k->njobs, 0);
        for (int j = 0; j < k->njobs; j++) {
            if (p[j].start != k->start[j] ||
                (p[j].start >= 0 && p[j].node_idx[0] != k->first_node[j]))
                fprintf(stderr, "%s: job %d starts %lld on %d\n", k->name, j,
                        (long long)p[j].start, p[j].node_idx[0]);
            CHECK(p[j].start == k->start[j]);
            CHECK(p[j].start < 0 || p[j].node_idx[0] == k->first_node[j]);
        }
        sched_plans_free(p, k->njobs);
    }
}
