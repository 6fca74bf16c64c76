/* The converge bench's `net` floor (bench/converge.sh): one task's network
 * made the way shoal makes it, by the same rtnetlink requests (the code of
 * src/agent/net_task.c, compiled in), from a plain program, then crun.
 *   floor_net ID BRIDGE MTU ADDRESS CMD...
 * makes the namespace /run/netns/ID, the veth vID (its peer eth0 inside, both
 * of MTU, as shoal gives them its bridge's) on BRIDGE, eth0's ADDRESS/24, lo,
 * the default route via .1, then execs CMD. Built by the bench:
 * cc -std=c11 -D_GNU_SOURCE -O2 -I src bench/floor_net.c src/base/err.c
 * src/agent/net_addr.c (the names and the MAC shoal gives a task's links). */
#include "../src/agent/net_task.c"

#include <stdarg.h>
#include <time.h>

/* (base/util.c's, which brings more than this program needs) */
int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void slog(enum log_level level, const char *fmt, ...)
{
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    struct in_addr a;
    if (argc < 6 || inet_pton(AF_INET, argv[4], &a) != 1) {
        fprintf(stderr, "usage: floor_net ID BRIDGE MTU ADDRESS CMD...\n");
        return 2;
    }
    struct serr err;
    if (net_task_make(argv[1], argv[2], atoi(argv[3]), ntohl(a.s_addr), &err) < 0) {
        fprintf(stderr, "floor_net %s: %s\n", argv[1], err.msg);
        return 1;
    }
    execvp(argv[5], argv + 5);
    fprintf(stderr, "floor_net: exec %s: %s\n", argv[5], strerror(errno));
    return 127;
}
