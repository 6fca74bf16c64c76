/* The orchestrator's pass alone (issue 13): the leader's CPU for placing
 * SERVICES services of REPLICAS replicas on NODES nodes of an in-memory
 * store, the services created one after the other as bench/c1m.py does:
 * after each create, passes until one proposes nothing (each pass's ops
 * applied as the entry it proposes). Two ways, alternated per run:
 *   fresh: orchestrator_pass, which reads and parses every task each pass;
 *   kept:  orchestrator_pass_kept, the tasks kept between passes (what the
 *          leader runs), reading only the tasks changed since.
 * Prints the CPU seconds (process CPU time) and placements per CPU second.
 * Built by `make bench` (build/orch_bench); not part of the tests.
 * Usage: orch_bench [SERVICES [REPLICAS [NODES [WAY [DRAINED]]]]]   (defaults 100 1000 500
 * both 0; WAY: fresh, kept or both; DRAINED: the first nodes drained, without tasks, as
 * bench/c1m.py drains its leader: each pass looks for their tasks) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/orchestrator.h"
#include "store/store.h"

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Applies `ops` (stolen) as one entry; returns how many there were. */
static size_t apply(struct store *st, json_t *ops)
{
    size_t n = json_array_size(ops);
    json_t *entry = json_pack("{s:[o]}", "groups", ops);
    char *text = json_dumps(entry, JSON_COMPACT);
    if (store_apply(st, text, strlen(text), NULL, NULL) < 0) {
        fprintf(stderr, "orch_bench: an entry did not apply\n");
        exit(1);
    }
    free(text);
    json_decref(entry);
    return n;
}

static struct store *store_with_nodes(int nodes, int drained)
{
    struct store *st;
    if (store_open(&st, NULL) < 0)
        exit(1);
    json_t *ops = json_array();
    for (int i = 0; i < nodes; i++) {
        char id[32], host[32];
        snprintf(id, sizeof(id), "node%05d", i);
        snprintf(host, sizeof(host), "sim-%05d", i);
        json_array_append_new(ops, op_put("nodes", json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id,
                                                             "hostname", host, "role", "worker",
                                                             "status", "ready", "availability",
                                                             i < drained ? "drain" : "active")));
    }
    json_array_append_new(ops, op_put("images", json_pack("{s:s, s:{}}", "id", "sha256:abc",
                                                          "config")));
    json_array_append_new(ops, op_put("tags", json_pack("{s:s, s:s}", "id", "busybox:latest",
                                                        "image_id", "sha256:abc")));
    apply(st, ops);
    return st;
}

static void create_service(struct store *st, int i, int replicas)
{
    char id[32];
    snprintf(id, sizeof(id), "s%04d", i);
    json_t *spec = json_pack("{s:s, s:s, s:i, s:[s,s,s]}", "image", "busybox:latest", "mode",
                             "replicated", "replicas", replicas, "args", "sleep", "1d", "x");
    apply(st, json_pack("[o]", op_put("services", json_pack("{s:s, s:s, s:i, s:o}", "id", id,
                                                            "name", id, "version", 1, "spec",
                                                            spec))));
}

/* Returns the CPU seconds of all the passes; *passes gets their number,
 * *applied the CPU seconds of their entries' dump and apply. */
static double run(bool kept_tasks, int services, int replicas, int nodes, int drained,
                  int *passes, double *applied)
{
    struct store *st = store_with_nodes(nodes, drained);
    struct orch_tasks *kept = kept_tasks ? orch_tasks_new() : NULL;
    double cpu = 0;
    int64_t now = 1000000;
    *passes = 0;
    *applied = 0;
    for (int s = 0; s < services; s++) {
        create_service(st, s, replicas);
        for (;;) {
            int64_t wake = 0;
            double t0 = cpu_seconds();
            json_t *ops = kept ? orchestrator_pass_kept(kept, st, now++, &wake)
                               : orchestrator_pass(st, now++, &wake);
            double t1 = cpu_seconds();
            cpu += t1 - t0;
            (*passes)++;
            size_t n = apply(st, ops);
            *applied += cpu_seconds() - t1;
            if (n == 0)
                break;
        }
    }
    orch_tasks_free(kept);
    store_close(st);
    return cpu;
}

int main(int argc, char **argv)
{
    int services = argc > 1 ? atoi(argv[1]) : 100;
    int replicas = argc > 2 ? atoi(argv[2]) : 1000;
    int nodes = argc > 3 ? atoi(argv[3]) : 500;
    const char *way = argc > 4 ? argv[4] : "both";
    int drained = argc > 5 ? atoi(argv[5]) : 0;
    for (int k = 0; k < 2; k++) {
        if (strcmp(way, "both") != 0 && strcmp(way, k == 1 ? "kept" : "fresh") != 0)
            continue;
        int passes;
        double applied;
        double cpu = run(k == 1, services, replicas, nodes, drained, &passes, &applied);
        printf("%s %d services x %d replicas on %d nodes (%d drained): %d passes, %.2f CPU s, "
               "%.0f placements per CPU second; entries dumped and applied: %.2f CPU s, "
               "%.0f per CPU second\n",
               k == 1 ? "kept " : "fresh", services, replicas, nodes, drained, passes, cpu,
               (double)services * replicas / cpu, applied, (double)services * replicas / applied);
        fflush(stdout);
    }
    return 0;
}
