#include "daemon/daemon.h"

#include <stdio.h>

int daemon_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "shoal daemon: not implemented yet\n");
    return 1;
}
