/* `shoal dev up|ls|exec|shell|down`: a cluster of N daemons on this machine, each
 * in its own network namespace on one bridge (src/dev/dev_int.h). */
#ifndef SHOAL_DEV_DEV_H
#define SHOAL_DEV_DEV_H

struct cli;

int cli_dev(struct cli *cli, int argc, char **argv);

#endif
