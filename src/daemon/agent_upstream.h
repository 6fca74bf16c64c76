/* The agent's environment and upstream (agent/upstream.h) over the daemon:
 * the upstream answers from the local store and Raft on managers and from
 * the session with the leader on workers, deciding at each call, so a role
 * change (join, promotion, demotion, leave) needs nothing from the agent. */
#ifndef SHOAL_DAEMON_AGENT_UPSTREAM_H
#define SHOAL_DAEMON_AGENT_UPSTREAM_H

struct shoal;
struct agent_env;
struct agent_upstream;

/* Fill `env` and `up` from `sh`, which they point into: valid while `sh` is. */
void agent_env_from_shoal(struct shoal *sh, struct agent_env *env);
void agent_upstream_from_shoal(struct shoal *sh, struct agent_upstream *up);

#endif
