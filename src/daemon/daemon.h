/* `shoal daemon`: the node daemon (one libuv loop: API, Raft, manager, agent). */
#ifndef SHOAL_DAEMON_DAEMON_H
#define SHOAL_DAEMON_DAEMON_H

/* Parses the daemon's flags (argv[0] is "daemon") and runs until SIGTERM/SIGINT.
 * Returns the process exit code. */
int daemon_main(int argc, char **argv);

#endif
