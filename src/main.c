/* shoal: `shoal daemon ...` runs the node daemon; every other command is the
 * CLI. Called as oarsub, oarstat... (a link to shoal), it is that OAR command.
 * The daemon also runs this binary to unpack image layers (agent/image.h) and
 * to check its node certificate at start (daemon/clusternet.h). */
#include <string.h>

#include "agent/image.h"
#include "api/front.h"
#include "cli/cli.h"
#include "daemon/clusternet.h"
#include "daemon/daemon.h"

int main(int argc, char **argv)
{
    const char *oar = argc > 0 ? cli_oar_name(argv[0]) : NULL;
    if (oar)
        return cli_oar_main(oar, argc, argv);
    if (argc > 1 && strcmp(argv[1], "daemon") == 0)
        return daemon_main(argc - 1, argv + 1, &api_front); /* the daemon serves the API */
    if (argc > 1 && strcmp(argv[1], IMAGE_UNPACK_COMMAND) == 0)
        return image_unpack_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], CLUSTERNET_CHECK_COMMAND) == 0)
        return clusternet_check_main(argc, argv);
    return cli_main(argc, argv);
}
