/* shoal: `shoal daemon ...` runs the node daemon; every other command is the CLI. */
#include <string.h>

#include "cli/cli.h"
#include "daemon/daemon.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "daemon") == 0)
        return daemon_main(argc - 1, argv + 1);
    return cli_main(argc, argv);
}
