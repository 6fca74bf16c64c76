#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

#define MAX_TESTS 512

static struct {
    const char *name;
    void (*fn)(void);
} tests[MAX_TESTS];
static int ntests;

void unit_register(const char *name, void (*fn)(void))
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "too many unit tests\n");
        exit(2);
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

static int run_one(int i)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        tests[i].fn();
        exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("%s %s\n", ok ? "ok" : "FAIL", tests[i].name);
    return ok;
}

static int wanted(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int a = 1; a < argc; a++)
        if (strcmp(argv[a], name) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < ntests; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    int passed = 0, failed = 0;
    for (int i = 0; i < ntests; i++) {
        if (!wanted(tests[i].name, argc, argv))
            continue;
        if (run_one(i))
            passed++;
        else
            failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
