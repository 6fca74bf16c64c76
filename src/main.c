#include <string.h>

#include "daemon/daemon.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "daemon") == 0)
        return daemon_main(argc - 1, argv + 1);
    return 2;
}
