/* Docker's hijacked exec stream (exec_hijack.c; docs/api.md). */
#ifndef SHOAL_API_EXEC_HIJACK_H
#define SHOAL_API_EXEC_HIJACK_H

#include <stdbool.h>
#include <stddef.h>

struct agent_reply;
struct http_req;
struct shoal;

/* A reply for an exec whose request asked `Upgrade: tcp`: the exec's
 * frames written to it become `101 UPGRADED` and Docker's stream on `req`
 * (raw with `tty`, multiplexed without), and the client's bytes the
 * session's input (with `interactive` or `tty`; else they are dropped). Takes over req (data, on_abort, on_input); frees itself
 * once both the exec and the client are done. An error before the command
 * runs is answered as a normal one. */
struct agent_reply *exec_hijack_reply(struct shoal *sh, struct http_req *req, bool tty,
                                      bool interactive);

/* routes_cexec.c: `len` bytes to the input of session `id` (then its end
 * with `close`), here or on its node; `done` gets 0, or -1 when the session
 * takes no more. */
void exec_session_send(struct shoal *sh, const char *id, const char *data, size_t len, bool close,
                       void (*done)(void *arg, int status), void *arg);

#endif
