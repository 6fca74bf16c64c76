/* `shoal dev up|ls|exec|shell|down`: a cluster of N daemons on this machine, each
 * in its own network namespace on one bridge (src/dev/dev_int.h). */
#ifndef SHOAL_DEV_DEV_H
#define SHOAL_DEV_DEV_H

#include "cli/cli.h" /* cli_dev, the entry point */

#endif
